"""A clock step forward, for the operator alone (issue 15, item 4).

The operator runs under libfaketime (``LD_PRELOAD``), its wall clock offset by what a file says: the
real time at first, then two hours later, mid-incident, as an NTP step or a VM resumed from suspension
does. Only ``CLOCK_REALTIME`` steps (``FAKETIME_DONT_FAKE_MONOTONIC=1``): the monotonic clock (kopf's
timers, the Lease's renew deadline, retry pauses) goes on as it does on a real machine. The API server,
etcd and the pods keep the real time. Changing the clock of this shared machine instead would disturb
every other process on it.

libfaketime 0.9.10 (Debian bookworm) hands the kernel a negative deadline for the
``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`` Python 3.11's ``time.sleep`` makes when the
monotonic clock is not faked (libfaketime issue 426), so ``time.sleep`` raises ``EINVAL``. The operator
process gets a ``sitecustomize`` that makes ``time.sleep`` wait in ``select`` instead (a relative
timeout libfaketime leaves alone); nothing else of the operator is changed.

Two hours is past the SEV3 response target (1 h): the step must escalate the unacknowledged incident to
the secondary once, and nothing else: one incident, one trigger, one escalate, one resolve per receiver,
no remediation step twice, the process alive and passing.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import time
from pathlib import Path
from typing import Any

import pytest

from integration.test_control_plane import crash_incidents, passes
from integration.test_notifications import deliveries, events_of, policy, remediations_once, start_edge
from support import crash
from support.kube import Kube, open_incident, wait_for
from support.operator import OperatorProcess
from support.receivers import Receivers

pytestmark = pytest.mark.integration

LIBFAKETIME = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
STEP = dt.timedelta(hours=2)

SLEEP_SHIM = '''\
"""Test-only: time.sleep without clock_nanosleep (libfaketime issue 426); see tests/integration/test_clock_step.py."""
import select
import time


def _sleep(seconds):
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        select.select([], [], [], left)


time.sleep = _sleep
'''


@pytest.fixture
def clock_file(tmp_path: Path) -> Path:
    path = tmp_path / "faketime"
    path.write_text("+0\n")  # the real time, until the test steps it
    return path


@pytest.fixture
def operator_env(tmp_path: Path, clock_file: Path) -> dict[str, str]:
    if not LIBFAKETIME:
        pytest.skip("libfaketime is not installed (Debian package libfaketime; scripts/setup installs it)")
    shim = tmp_path / "sleep-shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SLEEP_SHIM)
    return {
        "LD_PRELOAD": LIBFAKETIME[0],
        "FAKETIME_TIMESTAMP_FILE": str(clock_file),
        "FAKETIME_CACHE_DURATION": "1",  # the file is read again every second
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")]),
    }


def timestamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_clock_step_forward_escalates_once_and_repeats_nothing(
    kube: Kube, namespace: str, operator: OperatorProcess, receivers: Receivers, clock_file: Path
) -> None:
    pol = policy(
        [
            {"name": "oncall", "type": "Webhook", "url": receivers.url("/oncall")},
            {"name": "lead", "type": "Webhook", "url": receivers.url("/lead")},
        ],
        ["oncall"],
        escalation={"sev3": {"primary": ["oncall"], "secondary": ["lead"]}},
    )
    pods = start_edge(kube, namespace, pol)
    uids = {p["metadata"]["uid"] for p in pods}
    wait_for(lambda: kube.status("zen", "edge", namespace).get("summary"), timeout=60, what="a first pass")
    crash.crash_loop(kube, pods[0], restarts=4)
    inc = wait_for(lambda: open_incident(kube, namespace, "ProcessCrash"), timeout=60, what="ProcessCrash incident")
    name = inc["metadata"]["name"]
    assert inc["status"]["severity"] == "SEV3"
    detected = timestamp(inc["status"]["detectedAt"])
    assert abs(detected - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5), "the operator's clock was off already"
    assert timestamp(inc["status"]["responseDueAt"]) - detected == dt.timedelta(hours=1)
    wait_for(lambda: events_of(receivers.got("/oncall", name), "event") == ["trigger"], timeout=30, what="the trigger")
    time.sleep(3)  # passes on the real time: the response target is an hour away
    assert receivers.got("/lead", name) == []

    before = passes(operator)
    clock_file.write_text(f"+{int(STEP.total_seconds())}\n")
    stepped = time.monotonic()
    escalated = wait_for(
        lambda: (o := kube.get("zinc", name, namespace)) and o["status"].get("escalationLevel") == "secondary" and o,
        timeout=60,
        what="the escalation to the secondary after the step",
    )
    at = timestamp(next(e["at"] for e in escalated["status"]["escalations"] if e["level"] == "secondary"))
    assert at - detected >= STEP, "the escalation came without the step: the operator's clock did not move"
    wait_for(lambda: events_of(receivers.got("/lead", name), "event") == ["escalate"], timeout=30, what="the page")
    print(f"\n[figures] the secondary paged {receivers.got('/lead', name)[0].at - stepped:.1f} s after the step")
    time.sleep(5)  # passes on the stepped clock: nothing may be paged again
    assert events_of(receivers.got("/lead", name), "event") == ["escalate"]
    assert events_of(receivers.got("/oncall", name), "event") == ["trigger"]
    assert passes(operator) > before + 2, "passes stopped after the step"

    crash.recover(kube, kube.get("pod", pods[0]["metadata"]["name"], namespace) or pods[0])
    done = wait_for(
        lambda: (o := kube.get("zinc", name, namespace)) and o["status"].get("resolvedAt") and o,
        timeout=60,
        what="resolved after the pod recovered",
    )
    assert timestamp(done["status"]["resolvedAt"]) - detected >= STEP
    wait_for(
        lambda: (
            events_of(receivers.got("/oncall", name), "event") == ["trigger", "resolve"]
            and events_of(receivers.got("/lead", name), "event") == ["escalate", "resolve"]
        ),
        timeout=60,
        what="the resolve at both receivers",
    )
    time.sleep(4)  # more passes: nothing may be sent again
    assert events_of(receivers.got("/oncall", name), "event") == ["trigger", "resolve"]
    assert events_of(receivers.got("/lead", name), "event") == ["escalate", "resolve"]

    final: dict[str, Any] = kube.get("zinc", name, namespace) or {}
    st = final["status"]
    assert [i["metadata"]["name"] for i in crash_incidents(kube, namespace)] == [name]
    assert [t["type"] for t in st["timeline"]].count("Detected") == 1
    assert [t["type"] for t in st["timeline"]].count("Escalated") == 1
    assert [e["level"] for e in st["escalations"]] == ["primary", "secondary"]
    assert sorted((r["receiver"], r["event"], r["state"]) for r in deliveries(kube, namespace, name)) == [
        ("lead", "escalate", "Delivered"),
        ("lead", "resolve", "Delivered"),
        ("oncall", "resolve", "Delivered"),
        ("oncall", "trigger", "Delivered"),
    ]
    recs = remediations_once(final)
    # The policy's default mode: the ladder's actions are dry runs (its last rung records a page).
    assert {r["mode"] for r in recs if r["action"] != "page"} == {"DryRun"}, recs
    assert {p["metadata"]["uid"] for p in kube.list("pods", namespace, "app=edge")} == uids, "a pod was deleted"
    assert operator.proc is not None and operator.proc.poll() is None, "the operator exited"
    after = passes(operator)
    wait_for(lambda: passes(operator) > after + 2, timeout=30, what="more passes")
