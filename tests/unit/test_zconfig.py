"""Zentinel config checks and comment-preserving edits (pure functions over config text)."""

from __future__ import annotations

import json
from pathlib import Path

import ckdl
import pytest

from zentinel_operator.core import kdl, zconfig
from zentinel_operator.core.zconfig import (
    ConfigEditError,
    EditResult,
    RouteRateLimit,
    UndoRecord,
    check_config,
    enable_rate_limit,
    remove_targets,
    revert,
    set_limits,
)

FIXTURES = Path(__file__).parent / "fixtures" / "kdl"
FIXTURE_FILES = sorted(FIXTURES.glob("*.kdl"))


def read(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode("utf-8")


PROD = read("production.kdl")
COMPACT = read("compact.kdl")
CRLF = read("crlf-no-final-newline.kdl")
TABS = read("tabs-and-ratelimit.kdl")

MINIMAL = """\
system {
    worker-threads 1
}
listeners {
    listener "http" {
        address "0.0.0.0:8080"
    }
}
routes {
    route "api" {
        matches {
            path-prefix "/"
        }
        upstream "api"
    }
}
upstreams {
    upstream "api" {
        target "10.0.0.1:80"
        target "10.0.0.2:80"
    }
}
"""


def outer_span(text: str, path: str) -> tuple[int, int]:
    node = kdl.parse(text).find(path)
    assert node is not None, path
    return node.outer_start, node.outer_end


def assert_only_changed_within(old: str, new: str, start: int, end: int) -> None:
    """Everything before ``start`` and after ``end`` (offsets in ``old``) is byte-identical in ``new``."""
    assert new.startswith(old[:start])
    assert new.endswith(old[end:])
    assert len(new) >= start + len(old) - end


def assert_good(result: EditResult) -> None:
    """Every edit result parses as KDL v2 (ckdl) and passes the checks; its undo survives JSON."""
    ckdl.parse(result.text, version=2)
    check = check_config(result.text)
    assert check.valid, check.errors
    restored = UndoRecord.from_dict(json.loads(json.dumps(result.undo.to_dict())))
    assert restored == result.undo
    assert result.undo.after_revision == zconfig.config_revision(result.text)


def assert_round_trip(original: str, result: EditResult) -> None:
    """Reverting straight away gives the original text exactly; reverting the revert redoes the edit."""
    undo = UndoRecord.from_dict(json.loads(json.dumps(result.undo.to_dict())))
    back = revert(result.text, undo)
    assert back.text == original
    assert_good(back)
    again = revert(back.text, back.undo)
    assert again.text == result.text


# =============================================================================================
# config_revision
# =============================================================================================


def test_config_revision() -> None:
    rev = zconfig.config_revision(PROD)
    assert len(rev) == 16
    assert int(rev, 16) >= 0
    assert rev == zconfig.config_revision(PROD)
    assert rev != zconfig.config_revision(PROD + " ")
    assert check_config(PROD).revision == rev


# =============================================================================================
# check_config: typed view
# =============================================================================================


def test_typed_view_of_production_fixture() -> None:
    c = check_config(PROD)
    assert c.valid, c.errors
    assert c.errors == ()
    assert c.upstreams == {
        "api": ("10.0.1.10:8080", "10.0.1.11:8080", "10.0.1.12:8080", "api-3.shop.svc.cluster.local:8080"),
        "catalog": ("10.0.2.20:9000", "10.0.2.21:9000"),
    }
    assert c.routes == ("health", "api", "catalog")
    assert c.route_upstreams == {"health": None, "api": "api", "catalog": "catalog"}
    assert c.limits == {"max-header-count": 100, "max-total-connections": 10000}
    assert c.system == {
        "worker-threads": 0,
        "max-connections": 20000,
        "graceful-shutdown-timeout-secs": 30,
        "auto-reload": True,
    }
    assert c.auto_reload is True
    assert c.route_rate_limits == {}


def test_typed_view_of_other_fixtures() -> None:
    compact = check_config(COMPACT)
    assert compact.valid, compact.errors
    assert compact.upstreams == {"web": ("192.168.0.10:80", "192.168.0.11:80", "[fd00::12]:80")}
    assert compact.routes == ("web", "admin")
    assert compact.auto_reload is False
    tabs = check_config(TABS)
    assert tabs.valid, tabs.errors
    assert tabs.route_rate_limits == {"login": RouteRateLimit(20, 40, "client-ip")}
    assert tabs.route_upstreams["docs"] is None
    assert tabs.system["auto-reload"] is False
    crlf = check_config(CRLF)
    assert crlf.valid, crlf.errors
    assert crlf.upstreams == {"api": ("10.9.0.1:80", "10.9.0.2:80")}


def test_rate_limit_burst_defaults_to_rate_and_key_to_client_ip() -> None:
    text = MINIMAL.replace(
        'upstream "api"\n    }', 'upstream "api"\n        policies { rate-limit { requests-per-second 7 } }\n    }'
    )
    assert check_config(text).route_rate_limits == {"api": RouteRateLimit(7, 7, "client-ip")}


# =============================================================================================
# check_config: every structural check
# =============================================================================================


def errors_of(text: str) -> str:
    c = check_config(text)
    assert not c.valid
    return "\n".join(c.errors)


def test_not_kdl_v2() -> None:
    text = MINIMAL.replace("worker-threads 1", "worker-threads 1\n    auto-reload true")
    c = check_config(text)
    assert not c.valid
    assert len(c.errors) == 1
    assert "line 3" in c.errors[0]
    assert "#true" in c.errors[0]
    assert c.upstreams == {}
    broken = check_config("system {\n")
    assert not broken.valid and "line 1" in broken.errors[0] and "never closed" in broken.errors[0]


def test_unknown_top_level_block_with_suggestion() -> None:
    msg = errors_of(MINIMAL + "limit {\n    max-total-connections 5\n}\n")
    assert "line 23: unknown top-level block 'limit'" in msg
    assert "Did you mean 'limits'?" in msg


def test_deprecated_aliases_are_accepted_with_a_warning() -> None:
    c = check_config('version "1"\n' + MINIMAL.replace("system {", "server {"))
    assert c.valid, c.errors
    assert any("'server' is deprecated" in w for w in c.warnings)
    assert c.system == {"worker-threads": 1}


def test_system_and_listeners_are_required() -> None:
    no_system = MINIMAL.replace("system {\n    worker-threads 1\n}\n", "")
    assert "missing the required 'system' block" in errors_of(no_system)
    no_listeners = MINIMAL.replace('listeners {\n    listener "http" {\n        address "0.0.0.0:8080"\n    }\n}\n', "")
    assert "missing the required 'listeners' block" in errors_of(no_listeners)


def test_include_turns_what_this_file_cannot_show_into_warnings() -> None:
    text = 'include "routes/*.kdl"\n' + MINIMAL.replace('upstream "api"\n    }', 'upstream "elsewhere"\n    }')
    c = check_config(text)
    assert c.valid, c.errors
    assert c.has_include
    assert any("'elsewhere'" in w for w in c.warnings)


def test_max_connections_under_limits_is_the_runbook_mistake() -> None:
    text = MINIMAL + "limits {\n    max-connections 1000\n}\n"
    msg = errors_of(text)
    assert "line 24: 'max-connections' does not belong in 'limits'" in msg
    assert "'max-total-connections'" in msg and "'system'" in msg


def test_limits_values_and_keys() -> None:
    assert "limits max-total-connections must be a whole number" in errors_of(
        MINIMAL + 'limits {\n    max-total-connections "lots"\n}\n'
    )
    assert "must not be negative" in errors_of(MINIMAL + "limits {\n    max-total-connections -1\n}\n")
    c = check_config(MINIMAL + "limits {\n    max-header-size-bytes 8192\n}\n")
    assert c.valid
    assert any("'max-header-size-bytes' is not read" in w and "max-header-size" in w for w in c.warnings)


def test_last_limits_block_wins_with_a_warning() -> None:
    text = MINIMAL + "limits { max-total-connections 1 }\nlimits { max-total-connections 2 }\n"
    c = check_config(text)
    assert c.valid
    assert c.limits == {"max-total-connections": 2}
    assert any("'limits' appears 2 times" in w for w in c.warnings)


@pytest.mark.parametrize(
    ("address", "needle"),
    [
        ("10.0.0.1", "no ':port'"),
        ("10.0.0.1:0", "port '0'"),
        ("10.0.0.1:70000", "port '70000'"),
        ("10.0.0.1:http", "port 'http'"),
        ("::1:80", "brackets"),
        ("[zz::1]:80", "not a valid IPv6"),
        (":80", "host is empty"),
        ("bad host:80", "not a valid host name"),
        (" 10.0.0.1:80", "whitespace"),
    ],
)
def test_bad_target_addresses(address: str, needle: str) -> None:
    text = MINIMAL.replace('target "10.0.0.2:80"', f"target {kdl.format_string(address)}")
    msg = errors_of(text)
    assert "line 20: upstream 'api' target" in msg
    assert needle in msg


@pytest.mark.parametrize("address", ["[::1]:80", "api.default.svc.cluster.local:8443", "a:65535", "10.0.0.9:1"])
def test_good_target_addresses(address: str) -> None:
    text = MINIMAL.replace('target "10.0.0.2:80"', f"target {kdl.format_string(address)}")
    assert check_config(text).valid


def test_all_target_forms_are_read() -> None:
    text = MINIMAL.replace(
        '        target "10.0.0.2:80"\n',
        '        target address="10.0.0.2:80" weight=2\n'
        '        target { address "10.0.0.3:80"; weight 2 }\n'
        '        targets {\n            target "10.0.0.4:80"\n        }\n',
    )
    c = check_config(text)
    assert c.valid, c.errors
    assert c.upstreams["api"] == ("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80")
    shorthand = MINIMAL.replace(
        '        target "10.0.0.1:80"\n        target "10.0.0.2:80"\n', '        address "10.1.1.1:80"\n'
    )
    assert check_config(shorthand).upstreams["api"] == ("10.1.1.1:80",)


def test_upstream_without_targets() -> None:
    text = MINIMAL.replace(
        '        target "10.0.0.1:80"\n        target "10.0.0.2:80"\n', '        load-balancing "random"\n'
    )
    assert "upstream 'api' has no targets" in errors_of(text)
    discovered = MINIMAL.replace(
        '        target "10.0.0.1:80"\n        target "10.0.0.2:80"\n',
        '        discovery "dns" { hostname "api"; port 80 }\n',
    )
    assert check_config(discovered).valid


def test_duplicate_ids() -> None:
    dup_up = MINIMAL + 'upstreams {\n    upstream "api" {\n        target "10.0.0.3:80"\n    }\n}\n'
    assert "line 24: duplicate upstream id 'api'" in errors_of(dup_up)
    dup_route = MINIMAL.replace(
        "routes {\n", 'routes {\n    route "api" {\n        matches { path "/x" }\n        upstream "api"\n    }\n'
    )
    assert "duplicate route id 'api'" in errors_of(dup_route)


def test_ids_are_required_and_a_node_without_one_is_skipped() -> None:
    no_up_id = MINIMAL + 'upstreams {\n    upstream {\n        target "10.0.0.3:80"\n    }\n}\n'
    c = check_config(no_up_id)
    assert 'line 24: an upstream needs an id, e.g. upstream "api" { ... }' in c.errors
    assert list(c.upstreams) == ["api"]
    no_route_id = MINIMAL.replace("routes {\n", 'routes {\n    route {\n        upstream "api"\n    }\n')
    c = check_config(no_route_id)
    assert any(e.endswith('a route needs an id, e.g. route "api" { ... }') for e in c.errors)
    assert c.routes == check_config(MINIMAL).routes


def test_route_upstream_must_exist() -> None:
    msg = errors_of(MINIMAL.replace('        upstream "api"\n    }', '        upstream "ap"\n    }'))
    assert "line 14: route 'api' uses upstream 'ap', which is not defined (defined upstreams: api)" in msg


def test_builtin_and_static_routes_need_no_upstream() -> None:
    text = MINIMAL.replace(
        "routes {\n",
        'routes {\n    route "health" {\n        matches { path "/health" }\n        builtin-handler "health"\n    }\n'
        '    route "site" {\n        matches { path-prefix "/s" }\n        static-files { root "/srv" }\n    }\n',
    )
    c = check_config(text)
    assert c.valid, c.errors
    assert c.route_upstreams == {"health": None, "site": None, "api": "api"}
    both = text.replace('static-files { root "/srv" }', 'static-files { root "/srv" }\n        upstream "api"')
    assert "has both 'upstream' and 'static-files'" in errors_of(both)
    bare = MINIMAL.replace('        upstream "api"\n    }', "    }")
    c = check_config(bare)
    assert c.valid and any("no upstream, static-files or builtin-handler" in w for w in c.warnings)


def test_route_rate_limit_checks() -> None:
    def with_policy(body: str) -> str:
        return MINIMAL.replace('upstream "api"\n    }', f'upstream "api"\n        policies {{ {body} }}\n    }}')

    assert "needs requests-per-second" in errors_of(with_policy("rate-limit { burst 5 }"))
    assert "unknown key 'ip-address'" in errors_of(
        with_policy('rate-limit { requests-per-second 5; key "ip-address" }')
    )
    assert "needs a header name" in errors_of(with_policy('rate-limit { requests-per-second 5; key "header:" }'))
    ok = check_config(with_policy('rate-limit { requests-per-second 5; key "header:X-Api-Key" }'))
    assert ok.route_rate_limits == {"api": RouteRateLimit(5, 5, "header:X-Api-Key")}


def test_route_filters_must_exist_and_rate_limit_filters_shadow_policies() -> None:
    missing = MINIMAL.replace('upstream "api"\n    }', 'upstream "api"\n        filters "nope"\n    }')
    assert "uses filter 'nope', which is not defined" in errors_of(missing)
    both = TABS.replace(
        '\t\tfilters "search-limit"',
        '\t\tfilters "search-limit"\n\t\tpolicies { rate-limit { requests-per-second 1 } }',
    )
    c = check_config(both)
    assert c.valid, c.errors
    assert any("also uses rate-limit filter 'search-limit'" in w for w in c.warnings)


def test_auto_reload_must_be_a_keyword() -> None:
    c = check_config(MINIMAL.replace("worker-threads 1", 'worker-threads 1\n    auto-reload "yes"'))
    assert c.auto_reload is False
    assert any("auto-reload must be #true or #false" in w for w in c.warnings)
    assert "system worker-threads must be an integer" in errors_of(
        MINIMAL.replace("worker-threads 1", 'worker-threads "1"')
    )


# =============================================================================================
# set_limits
# =============================================================================================


def test_set_limits_updates_existing_value_and_adds_the_missing_one() -> None:
    result = set_limits(PROD, max_total_connections=500, max_connections_per_client=20)
    assert_good(result)
    assert check_config(result.text).limits == {
        "max-header-count": 100,
        "max-total-connections": 500,
        "max-connections-per-client": 20,
    }
    start, end = outer_span(PROD, "limits")
    assert_only_changed_within(PROD, result.text, start, end)
    expected_block = (
        "limits {\n    max-header-count 100 // headers per request\n    max-total-connections 500\n"
        "    max-connections-per-client 20\n}\n"
    )
    assert result.text[start : start + len(expected_block)] == expected_block
    assert "-    max-total-connections 10000\n+    max-total-connections 500\n" in result.diff
    assert result.diff.startswith("--- a/zentinel.kdl\n+++ b/zentinel.kdl\n")
    assert [c.op for c in result.undo.changes] == ["replace", "insert"]
    assert_round_trip(PROD, result)


def test_set_limits_replaces_only_the_value_token() -> None:
    text = MINIMAL + "limits {\n    max-total-connections (u64)10_000   // keep this comment\n}\n"
    result = set_limits(text, max_total_connections=750, max_connections_per_client=None)
    assert result.text == text.replace("10_000", "750")
    assert_round_trip(text, result)


def test_set_limits_creates_the_block() -> None:
    result = set_limits(MINIMAL, max_total_connections=None, max_connections_per_client=50)
    assert_good(result)
    assert result.text == MINIMAL + "\nlimits {\n    max-connections-per-client 50\n}\n"
    assert_round_trip(MINIMAL, result)


def test_set_limits_follows_tabs_crlf_and_one_line_blocks() -> None:
    tabs = set_limits(TABS, max_total_connections=9, max_connections_per_client=None)
    assert tabs.text == TABS + "\nlimits {\n\tmax-total-connections 9\n}\n"
    crlf = set_limits(CRLF, max_total_connections=9, max_connections_per_client=None)
    assert crlf.text == CRLF + "\r\n\r\nlimits {\r\n    max-total-connections 9\r\n}\r\n"
    compact = set_limits(COMPACT, max_total_connections=9, max_connections_per_client=3)
    assert compact.text == COMPACT.replace(
        "limits { max-header-count 64 }",
        "limits { max-header-count 64; max-total-connections 9; max-connections-per-client 3 }",
    )
    for original, result in ((TABS, tabs), (CRLF, crlf), (COMPACT, compact)):
        assert_good(result)
        assert_round_trip(original, result)


def test_set_limits_into_empty_and_semicolon_blocks() -> None:
    for block, expected in (
        ("limits {}", "limits { max-total-connections 4 }"),
        ("limits { max-header-count 9; }", "limits { max-header-count 9; max-total-connections 4; }"),
        ("limits {\n}", "limits {\n    max-total-connections 4\n}"),
    ):
        text = MINIMAL + block + "\n"
        result = set_limits(text, max_total_connections=4, max_connections_per_client=None)
        assert result.text == MINIMAL + expected + "\n"
        assert_round_trip(text, result)


def test_set_limits_is_a_no_op_when_already_so() -> None:
    result = set_limits(PROD, max_total_connections=10000, max_connections_per_client=None)
    assert result.text == PROD
    assert result.diff == ""
    assert not result.changed
    assert revert(PROD, result.undo).text == PROD


def test_set_limits_edits_the_limits_block_zentinel_uses() -> None:
    text = MINIMAL + "limits { max-total-connections 1 }\n// the one that counts:\nlimits { max-total-connections 2 }\n"
    result = set_limits(text, max_total_connections=3, max_connections_per_client=None)
    assert result.text == text.replace("connections 2", "connections 3")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"max_total_connections": None, "max_connections_per_client": None}, "needs"),
        ({"max_total_connections": 0, "max_connections_per_client": None}, "between 1 and"),
        ({"max_total_connections": -5, "max_connections_per_client": None}, "between 1 and"),
        ({"max_total_connections": True, "max_connections_per_client": None}, "whole number"),
        ({"max_total_connections": 2**63, "max_connections_per_client": None}, "between 1 and"),
    ],
)
def test_set_limits_refuses_bad_values(kwargs: dict[str, int | None], needle: str) -> None:
    with pytest.raises(ConfigEditError, match=needle):
        set_limits(MINIMAL, **kwargs)  # type: ignore[arg-type]


def test_set_limits_refuses_duplicate_keys() -> None:
    text = MINIMAL + "limits {\n    max-total-connections 1\n    max-total-connections 2\n}\n"
    with pytest.raises(ConfigEditError, match="sets max-total-connections 2 times"):
        set_limits(text, max_total_connections=3, max_connections_per_client=None)


def test_revert_limits_after_unrelated_changes() -> None:
    result = set_limits(PROD, max_total_connections=500, max_connections_per_client=20)
    # Meanwhile someone edits elsewhere: a new comment at the top and a changed health check.
    meanwhile = "// edited by alice\n" + result.text.replace("interval-secs 5", "interval-secs 7")
    back = revert(meanwhile, result.undo)
    assert back.text == "// edited by alice\n" + PROD.replace("interval-secs 5", "interval-secs 7")
    assert_good(back)


def test_revert_limits_refuses_to_clobber_a_later_change() -> None:
    result = set_limits(PROD, max_total_connections=500, max_connections_per_client=20)
    meanwhile = result.text.replace("max-total-connections 500", "max-total-connections 800")
    with pytest.raises(ConfigEditError, match="changed after the edit"):
        revert(meanwhile, result.undo)
    edited_inserted = result.text.replace("max-connections-per-client 20", "max-connections-per-client 25")
    with pytest.raises(ConfigEditError, match="changed after the edit"):
        revert(edited_inserted, result.undo)


def test_revert_skips_an_inserted_node_someone_already_removed() -> None:
    result = set_limits(PROD, max_total_connections=None, max_connections_per_client=20)
    meanwhile = result.text.replace("    max-connections-per-client 20\n", "")
    back = revert(meanwhile, result.undo)
    assert back.text == PROD
    assert back.notes and "already gone" in back.notes[0]


# =============================================================================================
# remove_targets
# =============================================================================================


def test_remove_targets_keeps_everything_else() -> None:
    result = remove_targets(PROD, "api", ["10.0.1.11:8080", "10.0.1.12:8080"])
    assert_good(result)
    assert check_config(result.text).upstreams["api"] == ("10.0.1.10:8080", "api-3.shop.svc.cluster.local:8080")
    expected = PROD.replace('        target "10.0.1.11:8080" weight=3   // api-1\n', "").replace(
        '        target "10.0.1.12:8080" weight=1   /* api-2 (canary) */\n', ""
    )
    assert result.text == expected
    assert [c.op for c in result.undo.changes] == ["remove", "remove"]
    assert '-        target "10.0.1.11:8080" weight=3   // api-1\n' in result.diff
    assert_round_trip(PROD, result)


@pytest.mark.parametrize("addresses", [["10.0.2.20:9000"], ["10.0.2.21:9000"]])
def test_remove_targets_inside_a_targets_block(addresses: list[str]) -> None:
    result = remove_targets(PROD, "catalog", addresses)
    assert_good(result)
    start, end = outer_span(PROD, 'upstreams > upstream "catalog"')
    assert_only_changed_within(PROD, result.text, start, end)
    left = check_config(result.text).upstreams["catalog"]
    assert addresses[0] not in left and len(left) == 1
    assert_round_trip(PROD, result)


def test_remove_targets_on_one_line() -> None:
    result = remove_targets(COMPACT, "web", ["192.168.0.11:80"])
    assert result.text == COMPACT.replace('target "192.168.0.11:80"; ', "")
    assert_round_trip(COMPACT, result)
    last = remove_targets(COMPACT, "web", ["[fd00::12]:80"])
    assert_good(last)
    assert check_config(last.text).upstreams["web"] == ("192.168.0.10:80", "192.168.0.11:80")
    assert_round_trip(COMPACT, last)


def test_remove_targets_crlf() -> None:
    result = remove_targets(CRLF, "api", ["10.9.0.2:80"])
    assert result.text == CRLF.replace('        target "10.9.0.2:80"\r\n', "")
    assert_round_trip(CRLF, result)


def test_remove_targets_refuses_to_empty_an_upstream() -> None:
    with pytest.raises(ConfigEditError, match="no target left"):
        remove_targets(MINIMAL, "api", ["10.0.0.1:80", "10.0.0.2:80"])
    shorthand = MINIMAL.replace(
        '        target "10.0.0.1:80"\n        target "10.0.0.2:80"\n', '        address "10.1.1.1:80"\n'
    )
    with pytest.raises(ConfigEditError, match="shorthand"):
        remove_targets(shorthand, "api", ["10.1.1.1:80"])


def test_remove_targets_refuses_unknown_things() -> None:
    with pytest.raises(ConfigEditError, match="no upstream 'nope'"):
        remove_targets(MINIMAL, "nope", ["10.0.0.1:80"])
    with pytest.raises(
        ConfigEditError, match=r"has no target 10\.0\.0\.9:80 \(its targets: 10\.0\.0\.1:80, 10\.0\.0\.2:80\)"
    ):
        remove_targets(MINIMAL, "api", ["10.0.0.9:80"])
    with pytest.raises(ConfigEditError, match="at least one"):
        remove_targets(MINIMAL, "api", [])
    with pytest.raises(ConfigEditError, match="not one string"):
        remove_targets(MINIMAL, "api", "10.0.0.1:80")
    # the slashdashed target is not a target
    with pytest.raises(ConfigEditError, match=r"has no target 10\.0\.1\.13:8080"):
        remove_targets(PROD, "api", ["10.0.1.13:8080"])


def test_remove_targets_missing_ok() -> None:
    result = remove_targets(MINIMAL, "api", ["10.0.0.9:80"], missing_ok=True)
    assert result.text == MINIMAL and not result.changed
    partly = remove_targets(MINIMAL, "api", ["10.0.0.9:80", "10.0.0.2:80"], missing_ok=True)
    assert check_config(partly.text).upstreams["api"] == ("10.0.0.1:80",)


def test_revert_targets_after_unrelated_changes() -> None:
    result = remove_targets(PROD, "api", ["10.0.1.11:8080"])

    def elsewhere(t: str) -> str:
        t = t.replace('        priority "high"\n', '        priority "critical"\n')
        t = t.replace(
            '            target "10.0.2.20:9000"\n',
            '            target "10.0.2.20:9000"\n            target "10.0.2.22:9000"\n',
        )
        return t.replace("max-header-count 100", "max-header-count 120")

    back = revert(elsewhere(result.text), result.undo)
    assert back.text == elsewhere(PROD)
    assert_good(back)


def test_revert_targets_when_neighbours_changed() -> None:
    result = remove_targets(PROD, "api", ["10.0.1.11:8080"])
    # The previous neighbour lost its comment; the one after is gone too.
    meanwhile = result.text.replace("weight=3   // api-0", "weight=3").replace(
        '        target "10.0.1.12:8080" weight=1   /* api-2 (canary) */\n', ""
    )
    back = revert(meanwhile, result.undo)
    assert_good(back)
    assert back.text == meanwhile.replace(
        '        target "10.0.1.10:8080" weight=3\n',
        '        target "10.0.1.10:8080" weight=3\n        target "10.0.1.11:8080" weight=3   // api-1\n',
    )


def test_revert_targets_when_the_target_is_already_back() -> None:
    result = remove_targets(MINIMAL, "api", ["10.0.0.2:80"])
    readded = result.text.replace(
        '        target "10.0.0.1:80"\n', '        target "10.0.0.1:80"\n        target "10.0.0.2:80" weight=5\n'
    )
    back = revert(readded, result.undo)
    assert back.text == readded
    assert back.notes and "already present" in back.notes[0]


def test_remove_a_target_listed_twice_and_put_both_back() -> None:
    text = MINIMAL.replace(
        '        target "10.0.0.2:80"\n', '        target "10.0.0.2:80"\n        target "10.0.0.2:80" weight=2\n'
    )
    c = check_config(text)
    assert c.valid and any("lists target '10.0.0.2:80' 2 times" in w for w in c.warnings)
    result = remove_targets(text, "api", ["10.0.0.2:80"])
    assert result.text == MINIMAL.replace('        target "10.0.0.2:80"\n', "")
    assert_round_trip(text, result)


def test_revert_targets_when_the_upstream_is_gone() -> None:
    result = remove_targets(PROD, "catalog", ["10.0.2.21:9000"])
    doc = kdl.parse(result.text)
    catalog = doc.find('upstreams > upstream "catalog"')
    assert catalog is not None
    without = result.text[: catalog.outer_start] + result.text[catalog.outer_end :]
    without = without.replace('        upstream "catalog"\n', '        upstream "api"\n')
    with pytest.raises(ConfigEditError, match="no longer exists"):
        revert(without, result.undo)


# =============================================================================================
# enable_rate_limit
# =============================================================================================


def test_enable_rate_limit_adds_to_existing_policies_and_creates_policies() -> None:
    result = enable_rate_limit(PROD, ["api", "catalog"], requests_per_second=100, burst=200)
    assert_good(result)
    c = check_config(result.text)
    assert c.route_rate_limits == {
        "api": RouteRateLimit(100, 200, "client-ip"),
        "catalog": RouteRateLimit(100, 200, "client-ip"),
    }
    rl = (
        "            rate-limit {\n"
        "                requests-per-second 100\n"
        "                burst 200\n"
        '                key "client-ip"\n'
        "            }\n"
    )
    assert rl in result.text
    assert (
        "        policies {\n            rate-limit {\n                requests-per-second 100\n"
        '                burst 200\n                key "client-ip"\n            }\n        }\n    }\n}\n'
        in result.text
    )
    start, _ = outer_span(PROD, 'routes > route "api"')
    _, end = outer_span(PROD, 'routes > route "catalog"')
    assert_only_changed_within(PROD, result.text, start, end)
    assert [c.op for c in result.undo.changes] == ["insert", "insert"]
    assert_round_trip(PROD, result)


def test_enable_rate_limit_updates_an_existing_one_in_place() -> None:
    result = enable_rate_limit(TABS, ["login"], requests_per_second=5, burst=10, key="client-ip-and-path")
    assert_good(result)
    assert result.text == TABS.replace(
        "requests-per-second 20\n\t\t\t\tburst 40\n",
        'requests-per-second 5\n\t\t\t\tburst 10\n\t\t\t\tkey "client-ip-and-path"\n',
    )
    assert "// tightened after credential stuffing" in result.text
    assert check_config(result.text).route_rate_limits["login"] == RouteRateLimit(5, 10, "client-ip-and-path")
    assert [c.op for c in result.undo.changes] == ["replace", "replace", "insert"]
    assert_round_trip(TABS, result)


def test_enable_rate_limit_on_one_line_routes() -> None:
    result = enable_rate_limit(COMPACT, ["web", "admin"], requests_per_second=50, burst=60, key="header:X-Tenant")
    assert_good(result)
    assert (
        'upstream "web"; policies { rate-limit { requests-per-second 50; burst 60; key "header:X-Tenant" } } }'
        in result.text
    )
    assert (
        'policies { timeout-secs 5; rate-limit { requests-per-second 50; burst 60; key "header:X-Tenant" } }'
        in result.text
    )
    assert_round_trip(COMPACT, result)


def test_enable_rate_limit_crlf() -> None:
    result = enable_rate_limit(CRLF, ["api"], requests_per_second=1, burst=1)
    assert_good(result)
    assert "\n" not in result.text.replace("\r\n", "")
    assert_round_trip(CRLF, result)


def test_enable_rate_limit_is_idempotent() -> None:
    once = enable_rate_limit(PROD, ["api"], requests_per_second=100, burst=200)
    twice = enable_rate_limit(once.text, ["api"], requests_per_second=100, burst=200)
    assert twice.text == once.text and not twice.changed


def test_enable_rate_limit_refusals() -> None:
    with pytest.raises(ConfigEditError, match="rate-limit filter 'search-limit'"):
        enable_rate_limit(TABS, ["login", "search"], requests_per_second=5, burst=5)
    with pytest.raises(ConfigEditError, match=r"no route 'nope' \(routes: health, api, catalog\)"):
        enable_rate_limit(PROD, ["nope"], requests_per_second=5, burst=5)
    with pytest.raises(ConfigEditError, match="unknown key 'ip'"):
        enable_rate_limit(PROD, ["api"], requests_per_second=5, burst=5, key="ip")
    with pytest.raises(ConfigEditError, match="between 1 and 4294967295"):
        enable_rate_limit(PROD, ["api"], requests_per_second=2**32, burst=5)
    with pytest.raises(ConfigEditError, match="between 1 and"):
        enable_rate_limit(PROD, ["api"], requests_per_second=5, burst=0)
    with pytest.raises(ConfigEditError, match="at least one route"):
        enable_rate_limit(PROD, [], requests_per_second=5, burst=5)
    with pytest.raises(ConfigEditError, match="not one string"):
        enable_rate_limit(PROD, "api", requests_per_second=5, burst=5)


def test_revert_rate_limit_refuses_when_someone_retuned_it() -> None:
    result = enable_rate_limit(TABS, ["login"], requests_per_second=5, burst=10)
    meanwhile = result.text.replace("requests-per-second 5", "requests-per-second 8")
    with pytest.raises(ConfigEditError, match="changed after the edit"):
        revert(meanwhile, result.undo)
    added = enable_rate_limit(PROD, ["api"], requests_per_second=5, burst=10)
    retuned = added.text.replace("burst 10", "burst 11")
    with pytest.raises(ConfigEditError, match="changed after the edit"):
        revert(retuned, added.undo)


# =============================================================================================
# Bad input never gives bad output
# =============================================================================================

BAD_INPUTS = {
    "v1 syntax": MINIMAL.replace("worker-threads 1", "worker-threads 1\n    auto-reload true"),
    "unclosed block": MINIMAL[:-2],
    "unknown block": MINIMAL + "limitz { }\n",
    "runbook limits": MINIMAL + "limits {\n    max-connections 100\n}\n",
    "dangling upstream": MINIMAL.replace('upstream "api"\n    }', 'upstream "gone"\n    }'),
    "bad target": MINIMAL.replace("10.0.0.2:80", "10.0.0.2"),
    "no system": MINIMAL.replace("system {\n    worker-threads 1\n}\n", ""),
}


@pytest.mark.parametrize("text", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_edits_refuse_invalid_input(text: str) -> None:
    assert not check_config(text).valid
    with pytest.raises(ConfigEditError, match="already invalid"):
        set_limits(text, max_total_connections=10, max_connections_per_client=None)
    with pytest.raises(ConfigEditError, match="already invalid"):
        remove_targets(text, "api", ["10.0.0.1:80"])
    with pytest.raises(ConfigEditError, match="already invalid"):
        enable_rate_limit(text, ["api"], requests_per_second=1, burst=1)


def test_revert_refuses_when_the_result_would_be_invalid() -> None:
    result = remove_targets(MINIMAL, "api", ["10.0.0.2:80"])
    broken = result.text.replace('target "10.0.0.1:80"', 'target "10.0.0.1"')
    with pytest.raises(ConfigEditError, match="would be invalid"):
        revert(broken, result.undo)
    with pytest.raises(ConfigEditError, match="not KDL v2"):
        revert("system {", result.undo)


def test_limits_block_goes_before_a_trailing_comment() -> None:
    text = MINIMAL + "// trailing comment without newline"
    result = set_limits(text, max_total_connections=5, max_connections_per_client=None)
    assert_good(result)
    assert result.text == MINIMAL + "\nlimits {\n    max-total-connections 5\n}\n// trailing comment without newline"
    assert_round_trip(text, result)


def test_limits_node_without_a_block() -> None:
    result = set_limits(MINIMAL + "limits\n", max_total_connections=5, max_connections_per_client=None)
    assert result.text == MINIMAL + "limits {\n    max-total-connections 5\n}\n"
    assert_round_trip(MINIMAL + "limits\n", result)
    with pytest.raises(ConfigEditError, match="ends in a comment"):
        set_limits(MINIMAL + "limits // later\n", max_total_connections=5, max_connections_per_client=None)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_all_edits_on_all_fixtures_reparse_and_round_trip(path: Path) -> None:
    text = path.read_bytes().decode("utf-8")
    check = check_config(text)
    assert check.valid, check.errors
    results = [set_limits(text, max_total_connections=123, max_connections_per_client=7)]
    for uid, addrs in check.upstreams.items():
        for addr in addrs[:-1] if len(addrs) > 1 else ():
            results.append(remove_targets(text, uid, [addr]))
    eligible = [r for r in check.routes if r not in ("search",)]
    results.append(enable_rate_limit(text, eligible, requests_per_second=9, burst=18))
    for r in results:
        assert_good(r)
        assert_round_trip(text, r)


# =============================================================================================
# Undo records and diffs
# =============================================================================================


def test_undo_record_json_shape() -> None:
    result = remove_targets(PROD, "api", ["10.0.1.11:8080"])
    data = result.undo.to_dict()
    assert data["version"] == 1
    assert data["action"] == "remove_targets"
    assert data["beforeRevision"] == zconfig.config_revision(PROD)
    change = data["changes"][0]  # type: ignore[index]
    assert change["op"] == "remove"
    assert change["path"] == [["upstreams"], ["upstream", "api"], ["target", "10.0.1.11:8080"]]
    assert change["prev"] == ["target", "10.0.1.10:8080"]
    assert change["next"] == ["target", "10.0.1.12:8080"]
    assert change["before"] == '        target "10.0.1.11:8080" weight=3   // api-1\n'
    json.dumps(data)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(version=99),
        lambda d: d.update(changes="nope"),
        lambda d: d["changes"][0].update(op="explode"),
        lambda d: d["changes"][0].update(path=[]),
        lambda d: d["changes"][0].update(path=[["upstreams", True]]),
        lambda d: d["changes"][0].update(before=5),
        lambda d: d["changes"][0].update(nodeOffset="x"),
    ],
)
def test_malformed_undo_records_are_refused(mutate: object) -> None:
    data = json.loads(json.dumps(remove_targets(PROD, "api", ["10.0.1.11:8080"]).undo.to_dict()))
    mutate(data)  # type: ignore[operator]
    with pytest.raises(ConfigEditError, match="undo record"):
        UndoRecord.from_dict(data)


def test_unified_diff() -> None:
    assert zconfig.unified_diff("a\n", "a\n", "x.kdl") == ""
    d = zconfig.unified_diff("a\nb\n", "a\nc", "x.kdl")
    assert d.startswith("--- a/x.kdl\n+++ b/x.kdl\n")
    assert "-b\n+c\n\\ No newline at end of file\n" in d


def test_an_upstreams_http_health_check_is_read() -> None:
    from support import realpods

    check = check_config(realpods.config(["127.0.0.2:8000"]))
    assert check.valid, check.errors
    assert check.health_checks["api"].path == "/healthz" and check.health_checks["api"].expected_status == 200
    tcp = check_config(realpods.config(["127.0.0.2:8000"]).replace('type "http"', 'type "tcp"'))
    assert tcp.health_checks == {}
