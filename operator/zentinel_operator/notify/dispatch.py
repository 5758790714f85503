"""Deliver what each incident's status says is owed, in the background, and record it in ``status.deliveries``.

Level, not edge: :meth:`Dispatcher.sync` is given an incident as it is now; it works out every
delivery the status calls for (:func:`~zentinel_operator.core.notify_payloads.expected_deliveries`),
takes away those already ``Delivered`` or given up (``Failed``) in ``status.deliveries`` or in this
process's memory of its own recent results, and queues the rest. It never waits on the network:
a pool of workers sends, so a receiver that is down or hangs holds one worker until its timeout and
nothing else (not the pass, not other receivers).

Order per receiver: each ``(incident, receiver)`` pair is a lane whose deliveries go out one at a
time, oldest fact first, so a receiver never sees ``resolve`` before ``trigger``. Once a later
delivery to a receiver got through, earlier ones still missing are stale and are not sent.

Retries: one send makes a few attempts (:class:`~.receivers.RetryPolicy`). When all fail with
a retryable error the delivery stays ``Pending`` (attempts and the redacted error are recorded)
and is tried again after a growing pause (``cycle_backoff`` doubling to ``max_cycle_backoff``);
after ``max_cycles`` sends, or at once on a permanent error (4xx, bad configuration), it is
``Failed`` and a Warning Event says so on the incident.

Silences: while ``status.silencedBy`` names a silence, pages (``trigger``, ``escalate``) are held, and
the notices after a held page to the same receiver wait behind it (:mod:`~zentinel_operator.core.silences`).
Once no silence holds an open incident, what it owes goes out; the age limit (``max_age``) of a page
held that way counts from the silence's end.

Writes: only ``status.deliveries`` is written, by read-modify-patch with ``metadata.resourceVersion``
(optimistic concurrency, retried on 409), so other writers' status fields are never touched.

Alertmanager forgets a firing alert that is not re-posted within its ``resolve_timeout`` (5m by
default); while an incident is open, its Alertmanager receivers get the alert again every
``alertmanager_resend`` seconds (not recorded as a new delivery).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from .. import k8s
from .. import operator_metrics as metrics
from ..core import lifecycle as lc
from ..core.notify_payloads import ESCALATE, TRIGGER, PlannedDelivery, expected_deliveries
from ..core.silences import HELD_EVENTS, held, unsilenced_at
from ..models import ZentinelIncident
from ..models.incident import DeliveryRecord, DeliveryState
from ..models.policy import Receiver, ReceiverType, ZentinelIncidentPolicySpec
from ..names import API_VERSION, KIND_INCIDENT
from ..names import INCIDENTS as PLURAL
from .receivers import USER_AGENT, RetryPolicy, SecretReader, Sender, SendResult, read_secret

log = logging.getLogger(__name__)

DELIVERED = DeliveryState.DELIVERED.value
PENDING = DeliveryState.PENDING.value
FAILED = DeliveryState.FAILED.value
MAX_RECORDS = 300  # per incident; the oldest finished records go first beyond this

IncidentKey = tuple[str, str]  # namespace, incident name
LaneKey = tuple[str, str, str]  # namespace, incident name, receiver name
StatusWriter = Callable[[str, str, list[DeliveryRecord]], bool]  # (namespace, name, records) -> still exists


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclasses.dataclass
class _Job:
    lane: LaneKey
    planned: PlannedDelivery
    prior_attempts: int = 0
    refresh: bool = False  # an Alertmanager re-post: not recorded


@dataclasses.dataclass
class _Seen:
    incident: ZentinelIncident
    policy: ZentinelIncidentPolicySpec
    at: float  # monotonic time of the last sync
    secrets_namespace: str | None = None  # where the receivers' Secrets are; None: the incident's namespace


# ------------------------------------------------------------------------------ status
def merge_records(current: Iterable[DeliveryRecord], updates: Iterable[DeliveryRecord]) -> list[DeliveryRecord]:
    """``current`` with ``updates`` applied by key; ``Delivered`` is never downgraded; bounded in size."""
    merged: dict[str, DeliveryRecord] = {r.key: r for r in current}
    for rec in updates:
        old = merged.get(rec.key)
        if old is not None and old.state == DELIVERED and rec.state != DELIVERED:
            continue
        merged[rec.key] = rec
    records = list(merged.values())
    if len(records) > MAX_RECORDS:
        finished = sorted(
            (r for r in records if r.state != PENDING),
            key=lambda r: r.at or dt.datetime.min.replace(tzinfo=dt.UTC),
        )
        drop = {r.key for r in finished[: len(records) - MAX_RECORDS]}
        records = [r for r in records if r.key not in drop]
    return records


def write_deliveries(namespace: str, name: str, updates: list[DeliveryRecord], *, attempts: int = 10) -> bool:
    """Upsert ``updates`` into ``status.deliveries`` (synchronous: run it in a thread).

    Merges them into the deliveries as read and merge-patches ``status.deliveries`` on that version
    (:func:`k8s.update_custom`), so a concurrent write is merged again on fresh data.
    Returns False when the incident no longer exists.
    """

    def change(obj: dict[str, Any]) -> dict[str, Any] | None:
        raw = (obj.get("status") or {}).get("deliveries") or []
        current = [DeliveryRecord.model_validate(r) for r in raw]
        merged = merge_records(current, updates)
        if [r.dump() for r in merged] == [r.dump() for r in current]:
            return None
        return {"status": {"deliveries": [r.dump() for r in merged]}}

    done = k8s.update_custom(PLURAL, namespace, name, change, status=True, attempts=attempts)
    return done is not k8s.Updated.GONE


def _api_error(e: BaseException) -> str:
    status = getattr(e, "status", None)
    return f"HTTP {status}" if status else type(e).__name__


# -------------------------------------------------------------------------- dispatcher
class Dispatcher:
    """Notification delivery for the whole operator; one instance, started once.

    ``sync`` and ``submit`` return at once; a pool of ``workers`` tasks sends. Construct it anywhere
    (no event loop needed); it starts itself on first use inside the operator's loop, or explicitly
    with ``await start()``. ``await stop()`` cancels sends in progress and flushes pending status writes.
    """

    def __init__(
        self,
        *,
        workers: int = 8,
        retry: RetryPolicy | None = None,
        cycle_backoff: float = 10.0,
        max_cycle_backoff: float = 300.0,
        max_cycles: int = 6,
        max_age: dt.timedelta = dt.timedelta(hours=24),
        alertmanager_resend: float = 60.0,
        read: SecretReader = read_secret,
        post_events: bool = True,
        trust_env: bool = True,
        write: StatusWriter | None = None,
        slack_buttons: bool = False,
    ) -> None:
        self.workers = max(1, workers)
        self.retry = retry or RetryPolicy()
        self.cycle_backoff = cycle_backoff
        self.max_cycle_backoff = max_cycle_backoff
        self.max_cycles = max(1, max_cycles)
        self.max_age = max_age
        self.alertmanager_resend = alertmanager_resend
        self.post_events = post_events
        self.slack_buttons = slack_buttons
        self._read = read
        self._trust_env = trust_env
        self._write_records: StatusWriter = write or write_deliveries
        self._started = False
        self._session: aiohttp.ClientSession | None = None
        self._sender: Sender | None = None
        self._queue: asyncio.Queue[LaneKey] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._lanes: dict[LaneKey, list[_Job]] = {}
        self._scheduled: set[LaneKey] = set()
        self._inflight: set[str] = set()  # keys queued or being sent
        self._recent: dict[IncidentKey, dict[str, tuple[DeliveryRecord, float]]] = {}
        self._seen: dict[IncidentKey, _Seen] = {}
        self._unwritten: dict[IncidentKey, dict[str, DeliveryRecord]] = {}
        self._writers: dict[IncidentKey, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._am_posted: dict[LaneKey, float] = {}
        self._last_prune = 0.0

    # ---------------------------------------------------------------- life cycle
    async def start(self) -> None:
        self._start()

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._queue = asyncio.Queue()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.workers * 2),
            headers={"User-Agent": USER_AGENT},
            trust_env=self._trust_env,
        )
        self._sender = Sender(self._session, retry=self.retry, read=self._read, slack_buttons=self.slack_buttons)
        self._workers = [asyncio.create_task(self._work(), name=f"notify-worker-{i}") for i in range(self.workers)]

    async def stop(self, flush_timeout: float = 10.0) -> None:
        if not self._started:
            return
        for task in [*self._workers, *self._background]:
            task.cancel()
        await asyncio.gather(*self._workers, *self._background, return_exceptions=True)
        self._workers = []
        writers = [t for t in self._writers.values() if not t.done()]
        if writers:
            await asyncio.wait(writers, timeout=flush_timeout)
        if self._session is not None:
            await self._session.close()
        self._started = False

    # ------------------------------------------------------------------- inputs
    async def submit(
        self,
        namespace: str,
        incident_name: str,
        notification: lc.Notification,
        policy: ZentinelIncidentPolicySpec,
        *,
        secrets_namespace: str | None = None,
    ) -> None:
        """The pass's edge-triggered hook: read the incident afresh (in the background) and sync it."""
        self._start()

        async def fetch_and_sync() -> None:
            try:
                obj = await asyncio.to_thread(k8s.get_custom, PLURAL, namespace, incident_name)
            except Exception as e:
                log.warning("notifications for %s/%s: could not read it (%s)", namespace, incident_name, _api_error(e))
                return
            if obj is not None:
                await self.sync(
                    namespace, ZentinelIncident.model_validate(obj), policy, secrets_namespace=secrets_namespace
                )

        self._spawn(fetch_and_sync())

    async def sync(
        self,
        namespace: str,
        incident: ZentinelIncident,
        policy: ZentinelIncidentPolicySpec,
        *,
        secrets_namespace: str | None = None,
    ) -> None:
        """Queue every delivery ``incident``'s status calls for that is not done yet. Returns at once.
        ``secrets_namespace``: where the receivers' Secrets are (a cluster policy's: the operator's namespace);
        ``None``: the incident's own namespace."""
        self._start()
        try:
            self._sync(namespace, incident, policy, secrets_namespace)
        except Exception:  # never break the caller's pass over a notification problem
            log.exception("notifications for %s/%s: planning failed", namespace, incident.metadata.name)

    def _sync(
        self,
        namespace: str,
        incident: ZentinelIncident,
        policy: ZentinelIncidentPolicySpec,
        secrets_namespace: str | None = None,
    ) -> None:
        name = incident.metadata.name
        ik = (namespace, name)
        mono = time.monotonic()
        now = _utcnow()
        self._seen[ik] = _Seen(incident, policy, mono, secrets_namespace)
        self._prune(mono)
        records = self._records(ik, incident)
        receivers = {r.name: r for r in policy.receivers}
        hold = held(incident)
        fresh_from = unsilenced_at(incident.status)
        lanes: dict[str, list[PlannedDelivery]] = {}
        for planned in expected_deliveries(incident, policy):
            lanes.setdefault(planned.receiver, []).append(planned)
        for receiver_name, planned_list in lanes.items():
            lane = (namespace, name, receiver_name)
            delivered = [i for i, p in enumerate(planned_list) if (r := records.get(p.key)) and r.state == DELIVERED]
            start = delivered[-1] + 1 if delivered else 0
            jobs: list[_Job] = []
            for planned in planned_list[start:]:
                record = records.get(planned.key)
                if record is not None and record.state in (DELIVERED, FAILED):
                    continue
                if planned.key in self._inflight:
                    continue
                if hold and planned.event in HELD_EVENTS:
                    break  # a silence holds it; what comes after to this receiver waits behind it
                if now - max(planned.at, fresh_from or planned.at) > self.max_age:
                    continue  # too old to be worth a page now (held pages count from the silence's end)
                if record is not None and record.state == PENDING and record.attempts > 0:
                    due = (record.at or now) + dt.timedelta(seconds=self._cycle_delay(record.attempts))
                    if now < due:
                        break  # later deliveries wait their turn behind this one
                jobs.append(_Job(lane, planned, prior_attempts=record.attempts if record else 0))
            if jobs:
                self._enqueue(lane, jobs)
            receiver = receivers.get(receiver_name)
            if receiver is not None and receiver.type == ReceiverType.ALERTMANAGER:
                self._maybe_resend(lane, incident, planned_list, records, mono)

    def _records(self, ik: IncidentKey, incident: ZentinelIncident) -> dict[str, DeliveryRecord]:
        """Status records, overlaid with this process's own results (newer than any status it was handed)."""
        records = {r.key: r for r in incident.status.deliveries}
        for key, (rec, _) in self._recent.get(ik, {}).items():
            old = records.get(key)
            if old is None or old.state != DELIVERED:
                records[key] = rec
        return records

    def _cycle_delay(self, attempts: int) -> float:
        cycles = max(1, -(-attempts // self.retry.attempts))
        return float(min(self.max_cycle_backoff, self.cycle_backoff * 2 ** (cycles - 1)))

    def _maybe_resend(
        self,
        lane: LaneKey,
        incident: ZentinelIncident,
        planned: list[PlannedDelivery],
        records: dict[str, DeliveryRecord],
        mono: float,
    ) -> None:
        if incident.status.resolved_at is not None or self._lanes.get(lane) or lane in self._scheduled:
            return
        pages = [
            p for p in planned if p.event in (TRIGGER, ESCALATE) and (r := records.get(p.key)) and r.state == DELIVERED
        ]
        if not pages:
            return
        last = self._am_posted.get(lane)
        if last is not None and mono - last < self.alertmanager_resend:
            return
        self._am_posted[lane] = mono
        self._enqueue(lane, [_Job(lane, pages[-1], refresh=True)])

    def _enqueue(self, lane: LaneKey, jobs: list[_Job]) -> None:
        queued = self._lanes.setdefault(lane, [])
        for job in jobs:
            if not job.refresh:
                self._inflight.add(job.planned.key)
            queued.append(job)
        queued.sort(key=lambda j: (j.refresh, j.planned.order))
        if lane not in self._scheduled:
            self._scheduled.add(lane)
            assert self._queue is not None
            self._queue.put_nowait(lane)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _prune(self, mono: float) -> None:
        if mono - self._last_prune < 60:
            return
        self._last_prune = mono
        for ik, recent in list(self._recent.items()):
            for key, (_, written) in list(recent.items()):
                if written and mono - written > 600:
                    del recent[key]
            if not recent:
                del self._recent[ik]
        busy = {(lane[0], lane[1]) for lane in [*self._lanes, *self._scheduled]}
        for ik, seen in list(self._seen.items()):
            if mono - seen.at > 3600 and ik not in busy and ik not in self._recent:
                del self._seen[ik]
                for lane in [lane for lane in self._am_posted if (lane[0], lane[1]) == ik]:
                    del self._am_posted[lane]

    # ------------------------------------------------------------------- workers
    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            lane = await self._queue.get()
            try:
                await self._run_lane(lane)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification lane %s/%s -> %s failed", *lane)
                for job in self._lanes.pop(lane, []):
                    self._inflight.discard(job.planned.key)
            finally:
                self._scheduled.discard(lane)
                if self._lanes.get(lane):
                    self._scheduled.add(lane)
                    self._queue.put_nowait(lane)
                elif lane in self._lanes:
                    del self._lanes[lane]

    async def _run_lane(self, lane: LaneKey) -> None:
        while self._lanes.get(lane):
            job = self._lanes[lane].pop(0)
            ok = await self._deliver(job)
            if not ok:
                # Keep the order: what came after waits until this one is retried.
                for later in self._lanes.pop(lane, []):
                    self._inflight.discard(later.planned.key)
                return

    async def _deliver(self, job: _Job) -> bool:
        """Send one job; True when the lane may go on (delivered, given up, or nothing to do)."""
        namespace, name, receiver_name = job.lane
        ik = (namespace, name)
        seen = self._seen.get(ik)
        receiver = {r.name: r for r in seen.policy.receivers}.get(receiver_name) if seen else None
        if seen is None or receiver is None:
            self._inflight.discard(job.planned.key)
            return True  # the receiver left the policy meanwhile
        incident = seen.incident
        if job.refresh and incident.status.resolved_at is not None:
            return True
        p = job.planned
        assert self._sender is not None
        event = TRIGGER if job.refresh else p.event
        try:
            result = await self._sender.send(
                seen.secrets_namespace or namespace,
                receiver,
                incident,
                event=event,
                level=p.level,
                key=p.key,
                now=_utcnow(),
            )
        except asyncio.CancelledError:
            self._inflight.discard(p.key)
            raise
        except Exception as e:  # a bug, not a receiver problem; keep the message free of any detail
            result = SendResult(False, 1, error=f"internal error ({type(e).__name__})")
            log.error(
                "notification to %s for %s/%s: internal error %s", receiver_name, namespace, name, type(e).__name__
            )
        if job.refresh:
            if not result.delivered:
                log.warning(
                    "re-posting %s/%s to Alertmanager %s failed: %s", namespace, name, receiver_name, result.error
                )
            return True
        return self._settle(job, receiver, incident, result)

    def _settle(self, job: _Job, receiver: Receiver, incident: ZentinelIncident, result: SendResult) -> bool:
        namespace, name, receiver_name = job.lane
        p = job.planned
        attempts = job.prior_attempts + result.attempts
        cycles = max(1, -(-attempts // self.retry.attempts))
        if result.delivered:
            state, outcome = DELIVERED, "delivered"
        elif result.permanent or cycles >= self.max_cycles:
            state, outcome = FAILED, "failed"
        else:
            state, outcome = PENDING, "retrying"
        metrics.NOTIFICATIONS.labels(namespace, incident.spec.zentinel_ref.name, receiver.type.value, outcome).inc()
        record = DeliveryRecord(
            receiver=receiver_name,
            event=p.event,
            key=p.key,
            state=state,
            attempts=attempts,
            last_error=None if result.delivered else result.error,
            at=_utcnow(),
        )
        ik = (namespace, name)
        self._recent.setdefault(ik, {})[p.key] = (record, 0.0)
        self._inflight.discard(p.key)
        self._unwritten.setdefault(ik, {})[p.key] = record
        writer = self._writers.get(ik)
        if writer is None or writer.done():
            self._writers[ik] = asyncio.create_task(self._write(ik))
        where = f"{namespace}/{name}"
        if state == DELIVERED:
            log.info(
                "%s: delivered %s (%s) to %s [%s] after %d attempt(s)",
                where,
                p.event,
                p.level,
                receiver_name,
                receiver.type.value,
                attempts,
            )
            if receiver.type == ReceiverType.ALERTMANAGER:
                self._am_posted[job.lane] = time.monotonic()
        elif state == PENDING:
            log.warning(
                "%s: %s to %s [%s] not delivered yet (%d attempts, retry in %.0fs): %s",
                where,
                p.event,
                receiver_name,
                receiver.type.value,
                attempts,
                self._cycle_delay(attempts),
                result.error,
            )
        else:
            log.warning(
                "%s: %s to %s [%s] failed for good after %d attempts: %s",
                where,
                p.event,
                receiver_name,
                receiver.type.value,
                attempts,
                result.error,
            )
            if self.post_events:
                self._spawn(self._post_failure(incident, receiver, p, attempts, result.error or "unknown error"))
        return state != PENDING

    async def _write(self, ik: IncidentKey) -> None:
        failures = 0
        while self._unwritten.get(ik):
            batch = self._unwritten.pop(ik)
            try:
                exists = await asyncio.to_thread(self._write_records, ik[0], ik[1], list(batch.values()))
            except asyncio.CancelledError:
                raise
            except Exception as e:
                failures += 1
                log.warning("could not record deliveries on %s/%s (%s)", ik[0], ik[1], _api_error(e))
                pending = self._unwritten.setdefault(ik, {})
                for key, rec in batch.items():
                    pending.setdefault(key, rec)
                if failures >= 5:
                    return  # kept in memory (_recent); the next result for this incident writes them again
                await asyncio.sleep(min(30.0, 2.0 * failures))
                continue
            mono = time.monotonic()
            recent = self._recent.get(ik, {})
            for key, rec in batch.items():
                if key in recent and recent[key][0] is rec:
                    recent[key] = (rec, mono)
            if not exists:
                self._recent.pop(ik, None)
                self._seen.pop(ik, None)
                return

    async def _post_failure(
        self, incident: ZentinelIncident, receiver: Receiver, p: PlannedDelivery, attempts: int, error: str
    ) -> None:
        involved = {
            "apiVersion": API_VERSION,
            "kind": KIND_INCIDENT,
            "metadata": {
                "name": incident.metadata.name,
                "namespace": incident.metadata.namespace,
                "uid": incident.metadata.uid,
            },
        }
        message = (
            f"{p.event} to {receiver.name} ({receiver.type.value}) not delivered after {attempts} attempts: {error}"
        )
        try:
            await asyncio.to_thread(
                k8s.post_event, involved, reason="NotificationFailed", message=message, type_="Warning"
            )
        except Exception as e:
            log.warning("could not post NotificationFailed event (%s)", _api_error(e))

    # ----------------------------------------------------------------- inspection
    def idle(self) -> bool:
        """Nothing queued, being sent, or waiting to be written (for tests and shutdown)."""
        return (
            not self._inflight
            and not any(self._lanes.values())
            and not any(self._unwritten.values())
            and all(t.done() for t in self._writers.values())
        )
