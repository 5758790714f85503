"""Property-based fuzzing (hypothesis) of every parser that reads what the operator does not control.

Targets: KDL configs (the checker, and the span editor: an edit and its undo give back the original
bytes), metrics pages, ``/admin/upstreams`` JSON, PEM and TLS Secrets, Alertmanager payloads, and
policies through the models and the admission checks. Each property says: no crash, only the
target's own error type, and every refusal is a message that names what is wrong. The number of
inputs each target tried is printed at the end of the session (``fuzz: …``; see
``support/fuzzing.py``); coverage-guided runs with atheris are in ``tests/unit/test_atheris.py``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from support import configs
from support.fuzzing import PROPERTY, tried
from zentinel_devcluster.pki import CA
from zentinel_operator.core import kdl
from zentinel_operator.core.certs import inspect_tls_secret, issue_from_ca, tls_secret_data
from zentinel_operator.core.policy_checks import check_policy, check_policy_beyond_schema
from zentinel_operator.core.zconfig import (
    ConfigEditError,
    UndoRecord,
    check_config,
    enable_rate_limit,
    remove_targets,
    revert,
    set_limits,
)
from zentinel_operator.notify.intake import PayloadError, parse_payload
from zentinel_operator.signals.metrics import MetricsError, parse_exposition
from zentinel_operator.signals.upstreams import UpstreamsError, parse_upstreams

# The CA below is made with the wall clock, so the checks read the same clock.
NOW = dt.datetime.now(dt.UTC)

json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)


def mutate(text: str) -> st.SearchStrategy[str]:
    """``text`` with a few bytes inserted, deleted or replaced at places hypothesis picks."""

    @st.composite
    def mutated(draw: st.DrawFn) -> str:
        out = text
        for _ in range(draw(st.integers(1, 4))):
            pos = draw(st.integers(0, len(out)))
            op = draw(st.sampled_from(["insert", "delete", "replace"]))
            piece = draw(st.text(alphabet=st.sampled_from('{}";=#/\\\n\t *-0123456789abcrx'), min_size=1, max_size=6))
            if op == "insert":
                out = out[:pos] + piece + out[pos:]
            elif op == "delete":
                out = out[:pos] + out[pos + len(piece) :]
            else:
                out = out[:pos] + piece + out[pos + len(piece) :]
        return out

    return mutated()


# ============================================================================ KDL configs


@st.composite
def zentinel_configs(draw: st.DrawFn) -> tuple[str, dict[str, list[str]], list[str]]:
    """A valid Zentinel config in a layout hypothesis picks (indentation, comments, blank lines,
    properties, block order), with its upstreams' targets and its route ids."""
    unit = draw(st.sampled_from(["\t", "  ", "    "]))
    nl = "\n"

    def comment() -> str:
        return draw(st.sampled_from(["", " // note", " /* inline */"]))

    def blank() -> str:
        return draw(st.sampled_from(["", "\n"]))

    n_up = draw(st.integers(1, 3))
    upstreams: dict[str, list[str]] = {}
    for i in range(n_up):
        count = draw(st.integers(1, 4))
        ports = draw(st.lists(st.integers(1024, 65000), min_size=count, max_size=count, unique=True))
        upstreams[f"up{i}"] = [f"127.0.0.{i + 1}:{p}" for p in ports]
    routes = [f"r{i}" for i in range(draw(st.integers(1, 3)))]
    blocks = {
        "system": [
            "system {" + comment(),
            f"{unit}worker-threads {draw(st.integers(1, 8))}",
            f"{unit}auto-reload {draw(st.sampled_from(['#true', '#false']))}",
            "}",
        ],
        "listeners": [
            "listeners {",
            f'{unit}listener "http" {{',
            f'{unit}{unit}address "0.0.0.0:{draw(st.integers(1024, 65000))}"',
            f'{unit}{unit}protocol "http"',
            f"{unit}}}",
            "}",
        ],
        "routes": [
            "routes {",
            *[
                line
                for j, r in enumerate(routes)
                for line in (
                    f'{unit}route "{r}" {{' + comment(),
                    f'{unit}{unit}matches {{ path-prefix "/{r}{j}" }}',
                    f'{unit}{unit}upstream "{draw(st.sampled_from(sorted(upstreams)))}"',
                    f"{unit}}}",
                )
            ],
            "}",
        ],
        "upstreams": [
            "upstreams {",
            *[
                line
                for u, targets in upstreams.items()
                for line in (
                    f'{unit}upstream "{u}" {{',
                    *[
                        f'{unit}{unit}target "{t}"'
                        + draw(st.sampled_from(["", " weight=1", f" weight={draw(st.integers(1, 9))}"]))
                        + comment()
                        for t in targets
                    ],
                    f"{unit}}}",
                )
            ],
            "}",
        ],
    }
    if draw(st.booleans()):
        blocks["limits"] = [
            "limits {",
            f"{unit}max-total-connections {draw(st.integers(1, 100_000))}",
            f"{unit}max-connections-per-client {draw(st.integers(1, 1000))}",
            "}",
        ]
    order = draw(st.permutations(sorted(blocks)))
    text = 'schema-version "1.0"' + nl + blank()
    for name in order:
        text += nl.join(blocks[name]) + nl + blank()
    return text, upstreams, routes


def assert_undo_gives_back(original: str, edited_text: str, undo: UndoRecord) -> None:
    restored = UndoRecord.from_dict(json.loads(json.dumps(undo.to_dict())))
    back = revert(edited_text, restored)
    assert back.text == original  # byte for byte


@PROPERTY
@given(zentinel_configs(), st.data())
def test_removing_targets_and_undoing_gives_back_the_original_bytes(
    generated: tuple[str, dict[str, list[str]], list[str]], data: st.DataObject
) -> None:
    tried("kdl-edit-undo")
    text, upstreams, _ = generated
    check = check_config(text)
    assert check.valid, (check.errors, text)
    upstream = data.draw(st.sampled_from(sorted(upstreams)))
    targets = upstreams[upstream]
    assume(len(targets) > 1)
    gone = data.draw(st.lists(st.sampled_from(targets), min_size=1, max_size=len(targets) - 1, unique=True))
    result = remove_targets(text, upstream, gone)
    assert set(check_config(result.text).upstreams[upstream]) == set(targets) - set(gone)
    assert_undo_gives_back(text, result.text, result.undo)


@PROPERTY
@given(zentinel_configs(), st.integers(1, 2**31), st.integers(1, 2**20))
def test_setting_limits_and_undoing_gives_back_the_original_bytes(
    generated: tuple[str, dict[str, list[str]], list[str]], total: int, per_client: int
) -> None:
    tried("kdl-edit-undo")
    text, _, _ = generated
    result = set_limits(text, max_total_connections=total, max_connections_per_client=per_client)
    assert check_config(result.text).limits == {
        "max-total-connections": total,
        "max-connections-per-client": per_client,
    }
    assert_undo_gives_back(text, result.text, result.undo)


@PROPERTY
@given(zentinel_configs(), st.data())
def test_rate_limiting_routes_and_undoing_gives_back_the_original_bytes(
    generated: tuple[str, dict[str, list[str]], list[str]], data: st.DataObject
) -> None:
    tried("kdl-edit-undo")
    text, _, routes = generated
    chosen = data.draw(st.lists(st.sampled_from(routes), min_size=1, unique=True))
    rps, burst = data.draw(st.integers(1, 10_000)), data.draw(st.integers(1, 10_000))
    result = enable_rate_limit(text, chosen, requests_per_second=rps, burst=burst)
    limits = check_config(result.text).route_rate_limits
    assert sorted(limits) == sorted(chosen)
    assert_undo_gives_back(text, result.text, result.undo)


@PROPERTY
@given(mutate(configs.GOOD) | st.text(max_size=300))
def test_the_checker_and_the_editor_take_any_text_without_crashing(text: str) -> None:
    tried("kdl-checker")
    check = check_config(text)
    assert check.valid or check.errors, "an invalid config must say why"
    assert all(isinstance(e, str) and e for e in check.errors)
    try:
        kdl.parse(text)
    except kdl.KdlError as exc:
        assert str(exc)
    for edit in (
        lambda: remove_targets(text, "api", ["10.0.1.10:8000"]),
        lambda: set_limits(text, max_total_connections=5, max_connections_per_client=None),
        lambda: enable_rate_limit(text, ["api"], requests_per_second=5, burst=5),
    ):
        try:
            result = edit()
        except ConfigEditError as exc:
            assert str(exc)
        else:
            # An edit that went through leaves a config the checker accepts (a broken one is never applied).
            assert check_config(result.text).valid


# ============================================================================ metrics pages

GOOD_PAGE = """\
# HELP zentinel_requests_total Requests.
# TYPE zentinel_requests_total counter
zentinel_requests_total{route="api",method="GET",status="200"} 1200
zentinel_requests_total{route="api",method="GET",status="502"} 7
# TYPE zentinel_request_duration_seconds histogram
zentinel_request_duration_seconds_bucket{route="api",le="0.1"} 1100
zentinel_request_duration_seconds_bucket{route="api",le="+Inf"} 1207
zentinel_request_duration_seconds_count{route="api"} 1207
zentinel_request_duration_seconds_sum{route="api"} 30.5
# TYPE zentinel_open_connections gauge
zentinel_open_connections 12
"""


@PROPERTY
@given(mutate(GOOD_PAGE) | st.text(max_size=400) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_a_metrics_page_of_any_text_is_parsed_or_refused_with_a_reason(text: str) -> None:
    tried("metrics-text")
    try:
        page = parse_exposition(text)
    except MetricsError as exc:
        assert str(exc)
    else:
        assert all(v == v for v in page.requests.values())  # numbers, whatever the labels


@PROPERTY
@given(
    st.dictionaries(
        st.tuples(st.sampled_from(["api", "web", ""]), st.sampled_from(["200", "404", "500", "502", "503"])),
        st.integers(0, 10**9),
        min_size=1,
    )
)
def test_a_well_formed_page_is_read_back_exactly(counts: dict[tuple[str, str], int]) -> None:
    tried("metrics-text")
    page = "# TYPE zentinel_requests_total counter\n" + "".join(
        f'zentinel_requests_total{{route="{r}",status="{s}"}} {n}\n' for (r, s), n in counts.items()
    )
    assert parse_exposition(page).requests == {k: float(v) for k, v in counts.items()}


# ============================================================================ /admin/upstreams

upstream_docs = st.fixed_dictionaries(
    {
        "upstreams": st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.text(max_size=8) | json_values,
                    "targets": st.lists(
                        st.fixed_dictionaries(
                            {"address": st.text(max_size=20) | json_values, "status": st.text(max_size=10)},
                            optional={"failure_rate": json_values, "last_error": json_values},
                        ),
                        max_size=4,
                    )
                    | json_values,
                }
            ),
            max_size=3,
        )
        | json_values
    }
)


@PROPERTY
@given(upstream_docs | json_values | st.binary(max_size=100))
def test_an_upstreams_answer_of_any_shape_is_read_or_refused_naming_the_place(doc: Any) -> None:
    tried("admin-upstreams-json")
    body = doc if isinstance(doc, bytes) else json.dumps(doc)
    try:
        targets = parse_upstreams(body)
    except UpstreamsError as exc:
        assert str(exc)
    else:
        assert all(isinstance(t.address, str) and isinstance(t.upstream, str) for t in targets)


# ============================================================================ PEM and TLS Secrets

_CA = CA.create("fuzz CA")
_CA_PEM, _CA_KEY = _CA.pem()
_ISSUED = issue_from_ca(
    template_cert_pem=None,
    sans=["edge.example.com"],
    common_name="edge.example.com",
    ca_cert_pem=_CA_PEM,
    ca_key_pem=_CA_KEY,
    now=NOW,
    validity=dt.timedelta(days=30),
)
GOOD_SECRET = tls_secret_data(_ISSUED)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@st.composite
def tls_secrets(draw: st.DrawFn) -> dict[str, str | None]:
    """A TLS Secret's data with some entries mangled: truncated or mutated PEM, PEM of the wrong
    kind, bytes that are not PEM, text that is not base64, entries missing."""
    data: dict[str, str | None] = dict(GOOD_SECRET)
    for entry in draw(st.lists(st.sampled_from(["tls.crt", "tls.key", "ca.crt"]), unique=True, min_size=1)):
        raw = base64.b64decode(data.get(entry) or b64(_CA_PEM))
        how = draw(st.sampled_from(["truncate", "mutate", "swap", "garbage", "not-base64", "missing", "empty"]))
        if how == "truncate":
            data[entry] = b64(raw[: draw(st.integers(0, len(raw)))])
        elif how == "mutate":
            pos = draw(st.integers(0, len(raw) - 1))
            data[entry] = b64(raw[:pos] + bytes([draw(st.integers(0, 255))]) + raw[pos + 1 :])
        elif how == "swap":
            data[entry] = draw(st.sampled_from([GOOD_SECRET["tls.key"], GOOD_SECRET["tls.crt"], b64(_CA_KEY)]))
        elif how == "garbage":
            data[entry] = b64(draw(st.binary(max_size=300)))
        elif how == "not-base64":
            data[entry] = draw(st.text(max_size=40))
        elif how == "missing":
            data.pop(entry, None)
        else:
            data[entry] = ""
    return data


@PROPERTY
@given(tls_secrets() | st.none() | st.dictionaries(st.text(max_size=8), st.text(max_size=30) | st.none()))
def test_a_tls_secret_of_any_content_is_a_finding_never_a_crash(data: dict[str, str | None] | None) -> None:
    tried("pem-tls-secret")
    signal = inspect_tls_secret(name="public", secret="edge-tls", data=data, now=NOW)
    assert signal.error or signal.not_after is not None, "a certificate that cannot be read must say why"
    secret_values = [v for v in (data or {}).values() if v and len(v) > 24]
    for value in secret_values:
        assert value not in (signal.error or ""), "a Secret's value is never quoted"


def test_the_unmangled_secret_reads_clean() -> None:
    """The fuzzed secrets start from a good one: it reads without error (else the property above
    would only ever see broken input)."""
    signal = inspect_tls_secret(name="public", secret="edge-tls", data=GOOD_SECRET, now=NOW)
    assert signal.error is None and signal.key_matches


# ============================================================================ Alertmanager payloads

alerts = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["firing", "resolved"]) | json_values,
        "labels": st.dictionaries(st.sampled_from(["alertname", "namespace", "zentinel", "severity"]), st.text())
        | json_values,
        "startsAt": st.sampled_from(["2026-12-02T10:00:00Z", "2026-12-02T10:00:00.123456789+01:00", "yesterday"])
        | json_values,
    },
    optional={"annotations": json_values, "fingerprint": json_values | st.text(max_size=16)},
)
payloads = st.fixed_dictionaries(
    {"version": st.sampled_from(["4", "3", 4]), "groupKey": st.text(max_size=10) | json_values},
    optional={"alerts": st.lists(alerts, max_size=3) | json_values, "status": json_values},
)


@PROPERTY
@given(payloads | json_values)
def test_an_alertmanager_payload_of_any_shape_is_read_or_refused_naming_the_field(data: Any) -> None:
    tried("alertmanager-payload")
    try:
        group, parsed = parse_payload(data)
    except PayloadError as exc:
        message = str(exc)
        assert message
        field = re.split(r"[:.\[]", message, maxsplit=1)[0]
        assert field in {
            "the body must be a JSON object (Alertmanager webhook payload)",
            "version",
            "groupKey",
            "alerts",
        }, message
    else:
        assert group and all(a.status in ("firing", "resolved") and a.fingerprint for a in parsed)


# ============================================================================ policies

VALID_POLICY: dict[str, Any] = {
    "selector": {"matchLabels": {"tier": "edge"}},
    "thresholds": {"minRequests": 5},
    "receivers": [{"name": "oncall", "type": "Webhook", "url": "http://127.0.0.1:9/oncall"}],
    "escalation": {"sev1": {"primary": ["oncall"]}},
    "remediation": {"defaultMode": "DryRun", "cooldown": "1m", "actions": {"rateLimit": {"ttl": "5m"}}},
    "lifecycle": {"resolveAfter": "1m", "reopenWindow": "30m"},
}


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    """The valid policy with one to three places replaced by any JSON value."""
    doc = json.loads(json.dumps(VALID_POLICY))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)[1:]))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict | list):
            parent[path[-1]] = draw(json_values)
    return doc


def test_the_unmutated_policy_is_accepted() -> None:
    assert check_policy(VALID_POLICY) == []


@PROPERTY
@given(policies() | st.dictionaries(st.text(max_size=12), json_values, max_size=4))
def test_a_policy_of_any_shape_is_accepted_or_refused_naming_the_field(spec: dict[str, Any]) -> None:
    tried("policy-admission")
    problems = check_policy(spec)
    assert all(isinstance(p, str) and p.startswith("spec") for p in problems), problems
    beyond = check_policy_beyond_schema(spec)
    assert all(p.startswith("spec.selector") for p in beyond), beyond


@pytest.mark.parametrize("field", ["thresholds", "receivers", "escalation", "remediation", "lifecycle", "selector"])
def test_a_wrong_type_at_a_top_level_field_is_named(field: str) -> None:
    spec = {**VALID_POLICY, field: 42}
    assert any(p.startswith(f"spec.{field}") for p in check_policy(spec)), check_policy(spec)
