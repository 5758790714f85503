"""Silences end to end: the operator as a real process, a crash-looping pod, a local webhook receiver.

A ``ZentinelSilence`` (made with ``zentinelctl silence add``) holds the page of the incident it matches;
the incident records it (``status.silencedBy``, a ``Silenced`` timeline entry); when the silence ends by
itself, its state turns ``Expired`` and the page that was owed arrives. An incident the silence does not
match is paged as usual. The API server refuses a silence that ends before it starts or has no comment.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from support import crash
from support.kube import Kube, wait_for
from support.operator import OperatorProcess
from support.receivers import Receivers

from .test_notifications import crash_one, deliveries, policy, start_edge

pytestmark = pytest.mark.integration


def zentinelctl(kube: Kube, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "zentinel_operator.cli", *args]
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


def add_silence(kube: Kube, namespace: str, name: str, *matchers: str, duration: str = "10m") -> None:
    proc = zentinelctl(
        kube,
        *("silence", "add", "-n", namespace, "--name", name, *matchers, "-d", duration),
        *("-c", "CHG-42 proxy upgrade", "--by", "alice"),
    )
    assert proc.returncode == 0, proc.stderr


def edge_under_silence(kube: Kube, namespace: str, receivers: Receivers, name: str, *matchers: str) -> list[Any]:
    """An active silence ``name``, then the edge Zentinel paging one webhook; returns its pods.

    The silence comes first: a pass takes the silences as they are when it starts, so one created while a pass
    runs holds from the next pass on (within ``scanInterval``), and that pass could open the incident."""
    add_silence(kube, namespace, name, *matchers)
    wait_for(lambda: silence_state(kube, namespace, name) == "Active", timeout=30, what="silence Active")
    return start_edge(kube, namespace, hook_policy(receivers))


def silence_state(kube: Kube, namespace: str, name: str) -> str | None:
    obj = kube.get("zsil", name, namespace) or {}
    state: str | None = (obj.get("status") or {}).get("state")
    return state


def hook_policy(receivers: Receivers) -> dict[str, Any]:
    return policy([{"name": "hook", "type": "Webhook", "url": receivers.url("/hook")}], ["hook"])


def parse(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_a_silence_holds_the_page_is_recorded_and_when_it_expires_by_itself_the_page_arrives(
    kube: Kube, namespace: str, operator: OperatorProcess, receivers: Receivers
) -> None:
    pods = edge_under_silence(kube, namespace, receivers, "upgrade", "--zentinel", "edge", "--category", "ProcessCrash")

    name = crash_one(kube, namespace, pods)
    inc = wait_for(
        lambda: (o := kube.get("zinc", name, namespace)) and o["status"].get("silencedBy") and o,
        timeout=30,
        what="silencedBy on the incident",
    )
    st = inc["status"]
    assert st["silencedBy"] == ["upgrade"]
    silenced = [e for e in st["timeline"] if e["type"] == "Silenced"]
    assert len(silenced) == 1 and silenced[0]["message"].startswith("Silenced by upgrade until ")
    assert silenced[0]["message"].endswith("(pages held): CHG-42 proxy upgrade (alice)")
    assert st["escalations"][0]["receivers"] == ["hook"]  # the page is owed (recorded in status) ...

    # ... and held: the silence now ends by itself a little later; the page arrives only after that.
    ends = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)).replace(microsecond=0)
    kube.run(
        "patch", "zsil", "upgrade", "-n", namespace, "--type=merge", "-p",
        json.dumps({"spec": {"endsAt": ends.isoformat().replace("+00:00", "Z")}}),
    )  # fmt: skip
    wait_for(lambda: silence_state(kube, namespace, "upgrade") == "Expired", timeout=30, what="silence Expired")
    got = wait_for(lambda: receivers.got("/hook", name), timeout=30, what="the held page")
    assert [r.json["event"] for r in got] == ["trigger"]
    (record,) = [r for r in deliveries(kube, namespace, name) if r["event"] == "trigger"]
    assert record["state"] == "Delivered" and parse(record["at"]) >= ends, "the page went out while silenced"

    after = (kube.get("zinc", name, namespace) or {})["status"]
    assert not after.get("silencedBy")
    (unsilenced,) = [e for e in after["timeline"] if e["type"] == "Unsilenced"]
    assert unsilenced["message"].startswith("upgrade no longer holds it: it ended at ")
    assert parse(unsilenced["time"]) >= ends
    # Expired silences stay, for the record; kubectl's columns and the CLI say so.
    listed = zentinelctl(kube, "silence", "list", "-n", namespace, "-o", "json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["state"], row["matchers"]) == ("upgrade", "Expired", "zentinel=edge category=ProcessCrash")
    table = kube.run("get", "zsil", "-n", namespace).stdout
    assert table.split("\n")[1].split()[:2] == ["upgrade", "Expired"]
    crash.recover(kube, pods[0])


def test_an_incident_the_silence_does_not_match_is_paged_as_usual(
    kube: Kube, namespace: str, operator: OperatorProcess, receivers: Receivers
) -> None:
    pods = edge_under_silence(
        kube, namespace, receivers, "other-upgrade", "--zentinel", "other", "--category", "ProcessCrash"
    )
    name = crash_one(kube, namespace, pods)
    got = wait_for(lambda: receivers.got("/hook", name), timeout=30, what="the page")
    assert [r.json["event"] for r in got] == ["trigger"]
    st = (kube.get("zinc", name, namespace) or {})["status"]
    assert not st.get("silencedBy") and not [e for e in st["timeline"] if e["type"] == "Silenced"]
    assert silence_state(kube, namespace, "other-upgrade") == "Active"
    crash.recover(kube, pods[0])


def bad_silence(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "matchers": {"zentinel": "edge"},
        "startsAt": "2030-01-01T10:00:00Z",
        "endsAt": "2030-01-01T12:00:00Z",
        "createdBy": "alice",
        "comment": "CHG-42",
    }
    base.update(spec)
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelSilence",
        "metadata": {"name": "bad"},
        "spec": {k: v for k, v in base.items() if v is not None},
    }


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"endsAt": "2030-01-01T09:00:00Z"}, "spec.endsAt", "endsAt must not be before startsAt"),
        ({"comment": None}, "spec.comment", "Required value"),
        ({"comment": ""}, "spec.comment", "should be at least 1 chars long"),
        ({"matchers": {}}, "spec.matchers", "name at least one matcher"),
        ({"matchers": {"categories": ["Crash"]}}, "spec.matchers.categories[0]", "Unsupported value"),
    ],
)
def test_a_bad_silence_is_refused_at_apply_naming_the_field(
    kube: Kube, namespace: str, spec: dict[str, Any], field: str, message: str
) -> None:
    proc = kube.run("apply", "-n", namespace, "-f", "-", input=json.dumps(bad_silence(**spec)), check=False)
    assert proc.returncode != 0
    assert field in proc.stderr and message in proc.stderr, proc.stderr
    assert kube.get("zsil", "bad", namespace) is None
