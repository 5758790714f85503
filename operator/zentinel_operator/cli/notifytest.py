"""``notify test POLICY``: a test message to each receiver of a policy, through the operator's own
senders (:mod:`zentinel_operator.notify.receivers`), with the receivers' Secrets read from the
cluster at send time. Like ``cmctl check api``: one line per receiver, and a non-zero exit when
one failed.

The message is a ``trigger`` of a SEV4 incident named ``zentinel-notify-test`` whose summary says it
is a test; for PagerDuty and Alertmanager, where a trigger stays open, a ``resolve`` with the same key
follows at once. What is reported comes from :class:`~zentinel_operator.notify.receivers.SendResult`:
endpoints are redacted to ``scheme://host[:port]/…`` and secret values scrubbed, so no webhook URL,
routing key or token held in a Secret is printed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ..models.incident import IncidentState, ZentinelIncident
from ..models.policy import Receiver, ReceiverType, ZentinelIncidentPolicySpec
from .exits import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError
from .render import one_line, table

TEST_INCIDENT = "zentinel-notify-test"
_CLOSE_AFTER = (ReceiverType.PAGERDUTY, ReceiverType.ALERTMANAGER)  # a trigger there stays open


@dataclasses.dataclass(frozen=True)
class ReceiverCheck:
    receiver: str
    type: str
    ok: bool
    detail: str  # safe to print: no secret value in it
    attempts: int


def policy_receivers(policy: Mapping[str, Any]) -> list[Receiver]:
    name = (policy.get("metadata") or {}).get("name")
    try:
        spec = ZentinelIncidentPolicySpec.model_validate(policy.get("spec") or {})
    except ValidationError as e:
        raise CliError(f"policy {name} is malformed: {one_line(e, 300)}", EXIT_ERROR) from e
    if not spec.receivers:
        raise CliError(f"policy {name} has no receivers", EXIT_USAGE)
    return list(spec.receivers)


def probe_incident(namespace: str, policy: str, now: dt.datetime) -> ZentinelIncident:
    """The incident the test message is about: SEV4, and saying it is a test in its summary."""
    return ZentinelIncident.model_validate(
        {
            "metadata": {"name": TEST_INCIDENT, "namespace": namespace},
            "spec": {
                "zentinelRef": {"name": "notify-test"},
                "category": "ExternalAlert",
                "fingerprint": f"notify-test/{policy}",
                "source": "zentinelctl",
            },
            "status": {
                "state": "Detected",
                "severity": "SEV4",
                "summary": f"Test notification from `zentinelctl notify test {policy}`: nothing is wrong",
                "count": 1,
                "detectedAt": now.isoformat(),
                "lastSeenAt": now.isoformat(),
            },
        }
    )


async def check_receivers(
    namespace: str,
    policy: str,
    receivers: Sequence[Receiver],
    *,
    per_receiver: float,
    now: dt.datetime,
) -> list[ReceiverCheck]:
    """Send the test message to every receiver at once; one result each, in the policy's order."""
    import aiohttp

    from ..notify.receivers import RetryPolicy, Sender

    incident = probe_incident(namespace, policy, now)
    key = f"{namespace}/{TEST_INCIDENT}/{policy}/{now.strftime('%Y%m%dT%H%M%S')}"
    retry = RetryPolicy(attempts=1, total_timeout=per_receiver, request_timeout=per_receiver)
    async with aiohttp.ClientSession() as session:
        sender = Sender(session, retry=retry)

        async def one(r: Receiver) -> ReceiverCheck:
            got = await sender.send(namespace, r, incident, event="trigger", level="primary", key=key, now=now)
            if got.delivered and r.type in _CLOSE_AFTER:
                resolved = {"resolved_at": now, "state": IncidentState.RESOLVED}
                closed = incident.model_copy(update={"status": incident.status.model_copy(update=resolved)})
                await sender.send(namespace, r, closed, event="resolve", level="primary", key=key, now=now)
            detail = f"delivered (HTTP {got.status})" if got.delivered else (got.error or "failed")
            return ReceiverCheck(r.name, r.type.value, got.delivered, detail, got.attempts)

        return list(await asyncio.gather(*(one(r) for r in receivers)))


def render_checks(policy: str, checks: Sequence[ReceiverCheck]) -> str:
    rows = [[c.receiver, c.type, "OK" if c.ok else "FAILED", one_line(c.detail, 200)] for c in checks]
    failed = sum(not c.ok for c in checks)
    verdict = (
        f"All {len(checks)} receivers of {policy} took the test message."
        if not failed
        else f"{failed} of {len(checks)} receivers of {policy} failed."
    )
    return table(["receiver", "type", "result", "detail"], rows) + verdict + "\n"


def exit_code(checks: Sequence[ReceiverCheck]) -> int:
    return EXIT_OK if all(c.ok for c in checks) else EXIT_ERROR
