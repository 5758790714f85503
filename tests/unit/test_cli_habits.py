"""The CLI's kubectl habits without a cluster: --version, completion scripts, -o wide|name|jsonpath=,
incidents -w over a fake watch, notify test's report, and the krew plugin manifest."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from unit.test_cli import NOW, FakeApi, cli, incident
from zentinel_operator.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, app, commands
from zentinel_operator.cli.jsonpath import TemplateError, render
from zentinel_operator.cli.notifytest import ReceiverCheck, exit_code, policy_receivers, probe_incident, render_checks
from zentinel_operator.cli.render import IncidentFilter, output_arg
from zentinel_operator.core.notify_payloads import build_payload
from zentinel_operator.models.policy import ReceiverType

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
SUBCOMMANDS = [
    "incidents",
    "show",
    "ack",
    "resolve",
    "approve",
    "postmortem",
    "evidence",
    "triage",
    "notify",
    "silence",
]


# ------------------------------------------------------------------------------ --version
def test_version_prints_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(FakeApi(), "--version", capsys=capsys)
    assert (code, out) == (0, f"zentinelctl {PYPROJECT_VERSION}\n")


# ------------------------------------------------------------------------------ completion
def _completion(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = cli(FakeApi(), "completion", shell, capsys=capsys)
    assert code == EXIT_OK, err
    return out


def test_bash_completion_is_valid_bash_and_names_every_subcommand(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    script = _completion("bash", capsys)
    path = tmp_path / "zentinelctl.bash"
    path.write_text(script)
    checked = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    for name in [*SUBCOMMANDS, "completion", "--watch", "--as", "--output"]:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", script), name
    # Sourcing it registers the completion function for the program.
    sourced = subprocess.run(
        ["bash", "-c", f"source {path} && complete -p zentinelctl"], capture_output=True, text=True, check=False
    )
    assert sourced.returncode == 0 and "zentinelctl" in sourced.stdout, sourced.stderr


def test_zsh_and_fish_scripts_name_the_subcommands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    zsh = _completion("zsh", capsys)
    assert zsh.startswith("#compdef zentinelctl")
    fish = _completion("fish", capsys)
    lines = fish.splitlines()
    assert all(line.startswith(("#", "complete -c zentinelctl")) for line in lines)
    top = next(line for line in lines if "not __fish_seen_subcommand_from" in line and " -a " in line)
    for name in [*SUBCOMMANDS, "completion"]:
        assert name in top.split("-a", 1)[1], name
    assert any("__fish_seen_subcommand_from notify" in line and "test" in line for line in lines)
    assert any("__fish_seen_subcommand_from silence" in line and "add list expire" in line for line in lines)
    assert any("__fish_seen_subcommand_from completion" in line and "bash zsh fish" in line for line in lines)
    for shell, text in (("zsh", zsh), ("fish", fish)):
        if shutil.which(shell):  # checked by the shell itself where it is installed
            path = tmp_path / f"script.{shell}"
            path.write_text(text)
            done = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stderr


def test_completion_rejects_an_unknown_shell(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(FakeApi(), "completion", "powershell", capsys=capsys)
    assert code == EXIT_USAGE and "invalid choice" in err


# ------------------------------------------------------------------------------ -o
def two_incidents() -> FakeApi:
    return FakeApi(
        [
            incident(),
            incident(
                "inc-20261127-002", severity="SEV3", category="HighErrorRate", status={"escalationLevel": "primary"}
            ),
        ]
    )


def test_output_name_prints_kubectl_resource_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(two_incidents(), "incidents", "-o", "name", capsys=capsys)
    assert code == 0
    assert out == "zentinelincident.zentinel.io/inc-20261127-001\nzentinelincident.zentinel.io/inc-20261127-002\n"
    code, out, _ = cli(two_incidents(), "show", "inc-20261127-002", "-o", "name", capsys=capsys)
    assert (code, out) == (0, "zentinelincident.zentinel.io/inc-20261127-002\n")


def test_output_wide_adds_count_escalation_detection_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(two_incidents(), "incidents", "-o", "wide", capsys=capsys)
    assert code == 0
    header, first, second = out.splitlines()
    assert header.split() == [
        "NAME", "SEVERITY", "CATEGORY", "ZENTINEL", "STATE", "ACKED-BY", "AGE", "LAST-SEEN",
        "COUNT", "ESCALATED", "DETECTED", "SUMMARY",
    ]  # fmt: skip
    assert first.split()[8:10] == ["2", "<none>"] and second.split()[8:10] == ["2", "primary"]
    assert first.endswith("Proxy down: no Zentinel process running (0 of 3 pods)")
    plain = cli(two_incidents(), "incidents", capsys=capsys)[1]
    assert "SUMMARY" not in plain and "COUNT" not in plain


def test_output_jsonpath_reads_the_list_as_kubectl_does(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(two_incidents(), "incidents", "-o", "jsonpath={.items[*].metadata.name}", capsys=capsys)
    assert (code, out) == (0, "inc-20261127-001 inc-20261127-002")
    template = 'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.status.severity}{"\\n"}{end}'
    out = cli(two_incidents(), "incidents", "-o", template, capsys=capsys)[1]
    assert out == "inc-20261127-001\tSEV1\ninc-20261127-002\tSEV3\n"
    out = cli(two_incidents(), "show", "inc-20261127-001", "-o", "jsonpath={.spec.category}", capsys=capsys)[1]
    assert out == "ProcessCrash"
    # managedFields are left out, as kubectl get does by default.
    out = cli(two_incidents(), "incidents", "-o", "jsonpath={.items[0].metadata}", capsys=capsys)[1]
    assert "managedFields" not in json.loads(out) and json.loads(out)["name"] == "inc-20261127-001"


def test_existing_formats_still_work(capsys: pytest.CaptureFixture[str]) -> None:
    rows = json.loads(cli(two_incidents(), "incidents", "-o", "json", capsys=capsys)[1])
    assert [r["name"] for r in rows] == ["inc-20261127-001", "inc-20261127-002"]
    assert yaml.safe_load(cli(two_incidents(), "incidents", "-o", "yaml", capsys=capsys)[1])[1]["severity"] == "SEV3"


@pytest.mark.parametrize(
    ("template", "data", "expected"),
    [
        ("{.a.b}", {"a": {"b": "x"}}, "x"),
        (".a.b", {"a": {"b": "x"}}, "x"),  # no braces: one expression, as kubectl takes it
        ("{.a}", {"a": {"b": 1}}, '{"b":1}'),
        ("{.a[*]}", {"a": [1, "two", True]}, "1 two true"),
        ("{.missing}", {"a": 1}, ""),
        ("n={.a}!", {"a": 3}, "n=3!"),
        ('{"{literal}"}', {}, "{literal}"),
        ("{@.a}", {"a": "cur"}, "cur"),
        ('{.items[?(@.k=="y")].v}', {"items": [{"k": "x", "v": 1}, {"k": "y", "v": 2}]}, "2"),
        ("{range .a}[{@}]{end}", {"a": [1, 2]}, "[1][2]"),
        (
            "{range .o[*]}{.n}:{range .l[*]}{@},{end};{end}",
            {"o": [{"n": "a", "l": [1, 2]}, {"n": "b", "l": []}]},
            "a:1,2,;b:;",
        ),
    ],
)
def test_jsonpath_templates(template: str, data: Any, expected: str) -> None:
    assert render(template, data) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{.a", "unclosed"),
        ("{.a[}", "jsonpath {.a[}"),
        ("{range .a}{.b}", "without {end}"),
        ("{end}", "without {range"),
        ("", "empty"),
    ],
)
def test_bad_jsonpath_templates_are_refused_with_the_reason(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)):
        render(template, {})
    with pytest.raises(ValueError, match=re.escape(message)):
        output_arg("jsonpath=" + template)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ack", "x", "-o", "name"], "-o name goes with incidents, show and silence"),
        (["approve", "x", "-o", "wide"], "-o wide goes with incidents, show and silence"),
        (["incidents", "--timeout", "5"], "--timeout goes with --watch"),
        (["--as-group", "g", "incidents"], "--as-group needs --as"),
        (["--as", "u", "--as-group", "a", "--as-group", "b", "incidents"], "one --as-group at most"),
    ],
)
def test_options_that_do_not_go_together_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(FakeApi([incident("x")]), *argv, capsys=capsys)
    assert code == EXIT_USAGE and message in err


def test_a_bad_template_is_a_usage_error_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(FakeApi(), "incidents", "-o", "jsonpath={.items[", capsys=capsys)
    assert code == EXIT_USAGE and "unclosed action" in err


# ------------------------------------------------------------------------------ -w
def test_watch_prints_the_table_then_a_row_per_change_in_the_same_columns() -> None:
    api = two_incidents()
    changed = incident(status={"state": "Acknowledged", "acknowledgedBy": "dave"})
    new = incident("inc-20261127-003", severity="SEV4")
    other = incident("inc-20261127-004", zentinel="other")
    api.watch_events = [("MODIFIED", changed), ("ADDED", other), ("ADDED", new)]
    out: list[str] = []
    code = commands.watch_incidents(
        api, "edge-ns", IncidentFilter(zentinel="edge"), fmt="table", timeout=7,
        write=out.append, clock=lambda: NOW,
    )  # fmt: skip
    assert code == EXIT_OK
    assert api.watched == [("edge-ns", "100", 7)]  # from the list's resourceVersion, with the bound
    lines = "".join(out).splitlines()
    assert lines[0].split()[:2] == ["NAME", "SEVERITY"] and len(lines) == 5
    assert [ln.split()[0] for ln in lines[1:]] == [
        "inc-20261127-001",
        "inc-20261127-002",
        "inc-20261127-001",
        "inc-20261127-003",
    ]  # fmt: skip  the other Zentinel's incident is filtered out
    assert lines[3].split()[4:6] == ["Acknowledged", "dave"]
    state = lines[0].index("STATE")
    assert all(ln[state:].startswith(("Detected", "Acknowledged", "STATE")) for ln in lines)


def test_watch_in_other_formats_prints_one_object_per_change() -> None:
    api = FakeApi([incident()])
    api.watch_events = [("DELETED", incident())]
    out: list[str] = []
    commands.watch_incidents(
        api, None, IncidentFilter(), fmt="name", timeout=None,
        write=out.append, clock=lambda: NOW,
    )  # fmt: skip
    assert out == ["zentinelincident.zentinel.io/inc-20261127-001\n"] * 2
    out.clear()
    commands.watch_incidents(
        api, None, IncidentFilter(), fmt='jsonpath={.metadata.name}{"\\n"}',
        timeout=None, write=out.append, clock=lambda: NOW,
    )  # fmt: skip
    assert out == ["inc-20261127-001\n"] * 2


def test_watch_through_main_and_its_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi([incident()])
    api.watch_events = [("ADDED", incident("inc-20261127-009"))]
    code, out, _ = cli(api, "incidents", "-w", "--timeout", "3", capsys=capsys)
    assert code == 0 and api.watched == [("edge-ns", "100", 3)]
    assert [ln.split()[0] for ln in out.splitlines()] == ["NAME", "inc-20261127-001", "inc-20261127-009"]
    code, _, err = cli(api, "incidents", "-w", "--timeout", "0", capsys=capsys)
    assert code == EXIT_USAGE and "greater than zero" in err


# ------------------------------------------------------------------------------ notify test
def test_notify_test_report_and_exit_code() -> None:
    ok = ReceiverCheck("oncall", "Webhook", True, "delivered (HTTP 200)", 1)
    bad = ReceiverCheck("slack", "Slack", False, "HTTP 404 from https://hooks.slack.com/…", 1)
    assert exit_code([ok]) == EXIT_OK and exit_code([ok, bad]) == EXIT_ERROR
    text = render_checks("edge", [ok, bad])
    rows = [ln.split()[:3] for ln in text.splitlines()]
    assert rows[:3] == [["RECEIVER", "TYPE", "RESULT"], ["oncall", "Webhook", "OK"], ["slack", "Slack", "FAILED"]]
    assert text.endswith("1 of 2 receivers of edge failed.\n")
    assert render_checks("edge", [ok]).endswith("All 1 receivers of edge took the test message.\n")


def test_the_test_message_says_it_is_a_test_for_every_receiver_type() -> None:
    inc = probe_incident("edge-ns", "edge", NOW)
    for kind in ReceiverType:
        body = build_payload(kind, inc, "trigger", "primary", key="k", now=NOW, routing_key="rk")
        assert "Test notification from `zentinelctl notify test edge`" in json.dumps(body), kind


def test_notify_test_needs_a_policy_with_receivers(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(FakeApi(), "notify", "test", "edge", capsys=capsys)
    assert code == 3 and 'ZentinelIncidentPolicy "edge" not found in namespace "edge-ns"' in err
    with pytest.raises(app.CliError, match="has no receivers"):
        policy_receivers({"metadata": {"name": "p"}, "spec": {}})


# ------------------------------------------------------------------------------ krew
def test_krew_manifest_names_the_plugin_binary_and_the_package_version() -> None:
    manifest = yaml.safe_load((ROOT / "plugins" / "krew" / "zentinel.yaml").read_text())
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin" and manifest["metadata"]["name"] == "zentinel"
    spec = manifest["spec"]
    assert spec["version"] == f"v{PYPROJECT_VERSION}"
    assert spec["shortDescription"] and len(spec["shortDescription"]) <= 50
    assert spec["platforms"]
    for platform in spec["platforms"]:
        assert platform["bin"] == "kubectl-zentinel"
        assert f"v{PYPROJECT_VERSION}" in platform["uri"]
        assert re.fullmatch(r"[0-9a-f]{64}", platform["sha256"])
        assert platform["selector"]["matchLabels"]["os"] in ("linux", "darwin")
        assert any(f.get("to") == "." for f in platform["files"])


def test_krew_archive_matches_the_manifest_and_its_launcher_runs_the_cli(tmp_path: Path) -> None:
    import sys
    import tarfile

    checked = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "krew-archive"), "--check"], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    built = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "krew-archive")], capture_output=True, text=True, check=True
    )
    name = f"kubectl-zentinel-v{PYPROJECT_VERSION}.tar.gz"
    with tarfile.open(ROOT / "dist" / name) as tar:
        assert tar.getnames() == ["kubectl-zentinel"]
        tar.extractall(tmp_path, filter="data")
    sha = yaml.safe_load((ROOT / "plugins" / "krew" / "zentinel.yaml").read_text())["spec"]["platforms"][0]["sha256"]
    assert sha in built.stdout
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    ran = subprocess.run(
        [str(tmp_path / "kubectl-zentinel"), "--version"], capture_output=True, text=True, env=env, check=False
    )
    assert (ran.returncode, ran.stdout) == (0, f"zentinelctl {PYPROJECT_VERSION}\n"), ran.stderr
