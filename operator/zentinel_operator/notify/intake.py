"""Alert intake: Alertmanager's webhook (payload version 4) as a source of incidents.

``POST /api/v1/alertmanager`` with ``Authorization: Bearer <token>`` (Alertmanager:
``http_config.authorization.credentials``). Each alert names the Zentinel it is about through its
labels (names configurable, see :class:`IntakeLabels`): ``namespace`` and ``zentinel``, optionally
``zentinel_category`` (a :class:`~zentinel_operator.models.common.Category`, else ``ExternalAlert``)
and ``severity`` (critical -> SEV1, error|major -> SEV2, warning -> SEV3, info|minor -> SEV4;
``SEV1``..``SEV4`` are taken as they are).

Deliveries are at least once: a post is deduplicated per alert on (groupKey, fingerprint, status,
startsAt), so a repeated post changes nothing. The intake is a signal source, not an incident writer: a
firing alert becomes a finding in :class:`AlertState` (``source: alertmanager``), and the intake then runs
that Zentinel's pass at once (the :data:`PassRunner` registration gives it, under the same per-Zentinel lock
as the timer's and the event passes), which merges the alerts' findings into its own
(:meth:`AlertState.merge`) and records them as it records every finding: on the open incident of the
category, or a resolved one still inside the policy's reopen window, else a new one, created with the
finding's source. So detection, severity, escalation, reopening and resolution follow the same lifecycle
as the operator's own signals, and there is one incident writer. The answer names the incident that
carries each alert; it is 200 only once the pass has recorded them (else 503, and Alertmanager posts
again). A resolved alert clears the signal; the lifecycle resolves an ``alertmanager`` incident once it
stays clear for ``resolveAfter``. The operator's own ``alertname=ZentinelIncident`` alerts are ignored,
so routing them back here cannot loop.

Until this process has heard about a (namespace, Zentinel, category) — after a restart, say —
:meth:`AlertState.known` is False and the pass must treat the signal as unknown, not healthy:
Alertmanager re-sends firing alerts every ``repeat_interval``.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import Any

from aiohttp import web

from ..core.redact import redact
from ..core.snapshot import Finding
from ..models.common import Category, Severity, Source
from ..names import KIND_INCIDENT as OWN_ALERTNAME

log = logging.getLogger(__name__)

PATH = "/api/v1/alertmanager"

SEVERITY_WORDS = {
    "critical": Severity.SEV1,
    "error": Severity.SEV2,
    "major": Severity.SEV2,
    "warning": Severity.SEV3,
    "info": Severity.SEV4,
    "minor": Severity.SEV4,
    "sev1": Severity.SEV1,
    "sev2": Severity.SEV2,
    "sev3": Severity.SEV3,
    "sev4": Severity.SEV4,
}
_CATEGORIES = {re.sub(r"[^a-z0-9]", "", c.value.lower()): c for c in Category}
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@dataclasses.dataclass(frozen=True)
class IntakeLabels:
    """Which alert labels name the Zentinel, its category and the severity."""

    namespace: str = "namespace"
    zentinel: str = "zentinel"
    category: str = "zentinel_category"
    severity: str = "severity"


def map_severity(value: str | None, default: Severity = Severity.SEV3) -> Severity:
    if not value:
        return default
    return SEVERITY_WORDS.get(value.strip().lower(), default)


def map_category(value: str | None) -> Category:
    if not value:
        return Category.EXTERNAL_ALERT
    return _CATEGORIES.get(re.sub(r"[^a-z0-9]", "", value.lower()), Category.EXTERNAL_ALERT)


def parse_time(value: str) -> dt.datetime:
    """RFC 3339 as Alertmanager writes it (nanoseconds included)."""
    m = _RFC3339.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not an RFC 3339 time")
    frac = (m.group(2) or "")[:7]
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return dt.datetime.fromisoformat(m.group(1) + frac + zone)


# ---------------------------------------------------------------------------- the state
SignalKey = tuple[str, str, Category]  # namespace, Zentinel, category


@dataclasses.dataclass(frozen=True)
class FiringAlert:
    fingerprint: str
    alertname: str
    severity: Severity
    summary: str
    starts_at: str
    description: str | None = None


class AlertState:
    """What Alertmanager says is firing now, per (namespace, Zentinel, category). Thread-safe.

    The intake writes it (event loop); the per-Zentinel pass reads it (``record`` runs in a thread).
    """

    def __init__(self, *, dedup_size: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._firing: dict[SignalKey, dict[str, FiringAlert]] = {}
        self._known: set[SignalKey] = set()
        self._seen: collections.OrderedDict[tuple[str, str, str, str], None] = collections.OrderedDict()
        self._dedup_size = dedup_size

    # ---- deduplication of deliveries
    def seen(self, key: tuple[str, str, str, str]) -> bool:
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return True
            return False

    def remember(self, key: tuple[str, str, str, str]) -> None:
        with self._lock:
            self._seen[key] = None
            self._seen.move_to_end(key)
            while len(self._seen) > self._dedup_size:
                self._seen.popitem(last=False)

    # ---- signal updates
    def fire(self, namespace: str, zentinel: str, category: Category, alert: FiringAlert) -> None:
        key = (namespace, zentinel, category)
        with self._lock:
            self._known.add(key)
            self._firing.setdefault(key, {})[alert.fingerprint] = alert

    def clear(self, namespace: str, zentinel: str, category: Category, fingerprint: str) -> None:
        key = (namespace, zentinel, category)
        with self._lock:
            self._known.add(key)
            alerts = self._firing.get(key)
            if alerts is not None:
                alerts.pop(fingerprint, None)
                if not alerts:
                    del self._firing[key]

    def withdraw(self, namespace: str, zentinel: str, category: Category, fingerprint: str) -> None:
        """Take back an alert just fired: it is about no Zentinel of this operator's, so nothing is known of it."""
        key = (namespace, zentinel, category)
        with self._lock:
            alerts = self._firing.get(key)
            if alerts is not None:
                alerts.pop(fingerprint, None)
            if not alerts:
                self._firing.pop(key, None)
                self._known.discard(key)

    # ---- reading, for the pass
    def known(self, namespace: str, zentinel: str, category: Category | str) -> bool:
        """True once this process has heard from Alertmanager about this signal (firing or resolved)."""
        with self._lock:
            return (namespace, zentinel, Category(category)) in self._known

    def active(self, namespace: str, zentinel: str, category: Category | str) -> Finding | None:
        """The signal as a finding (the worst firing alert's severity), or None when nothing fires."""
        with self._lock:
            alerts = list(self._firing.get((namespace, zentinel, Category(category)), {}).values())
        return _finding(Category(category), alerts)

    def signal(self, namespace: str, zentinel: str, category: Category | str) -> tuple[Finding | None, bool]:
        """``(finding, known)`` for an incident with ``source: alertmanager``: pass them to the lifecycle."""
        with self._lock:
            key = (namespace, zentinel, Category(category))
            known = key in self._known
            alerts = list(self._firing.get(key, {}).values())
        return _finding(Category(category), alerts), known

    def findings(self, namespace: str, zentinel: str) -> list[Finding]:
        """One finding per category with a firing alert for this Zentinel."""
        with self._lock:
            groups = [
                (cat, list(alerts.values()))
                for (ns, zen, cat), alerts in self._firing.items()
                if ns == namespace and zen == zentinel and alerts
            ]
        out = [_finding(cat, alerts) for cat, alerts in sorted(groups, key=lambda g: g[0].value)]
        return [f for f in out if f is not None]

    def merge(self, namespace: str, zentinel: str, findings: Iterable[Finding]) -> list[Finding]:
        """The pass's own findings plus the firing alerts' findings, one per category (the worse wins)."""
        merged: dict[Category, Finding] = {}
        order: list[Category] = []
        for f in [*findings, *self.findings(namespace, zentinel)]:
            old = merged.get(f.category)
            if old is None:
                order.append(f.category)
                merged[f.category] = f
            elif f.severity.worse_than(old.severity):
                merged[f.category] = f
        return [merged[c] for c in order]


def _finding(category: Category, alerts: list[FiringAlert]) -> Finding | None:
    if not alerts:
        return None
    alerts = sorted(alerts, key=lambda a: (a.severity.rank, a.starts_at, a.fingerprint))
    worst = alerts[0]
    if len(alerts) == 1:
        summary = f"{worst.alertname}: {worst.summary}" if worst.summary != worst.alertname else worst.alertname
    else:
        summary = f"{len(alerts)} alerts firing; worst {worst.alertname}: {worst.summary}"
    evidence = [
        f"Alertmanager: {a.alertname} ({a.severity.value}) firing since {a.starts_at}: {a.description or a.summary}"
        for a in alerts
    ]
    return Finding(
        category=category,
        severity=worst.severity,
        summary=summary[:500],
        evidence=tuple(e[:500] for e in evidence[:20]),
        subjects=tuple(a.fingerprint for a in alerts),
        source=Source.ALERTMANAGER,
    )


# ----------------------------------------------------------------------------- the pass
@dataclasses.dataclass(frozen=True)
class Passed:
    """What the Zentinel's pass made of the signals the intake had just set: the incident that carries each
    category, and which of them the pass created. ``reason`` set: the signals are not this operator's (no such
    Zentinel) and were taken back."""

    carriers: Mapping[Category, str] = dataclasses.field(default_factory=dict)
    created: frozenset[str] = frozenset()
    reason: str | None = None


PassRunner = Callable[[str, str, Callable[[], None]], Awaitable[Passed]]
"""``(namespace, zentinel, update)``: with the Zentinel's pass lock held, call ``update`` (it sets the alerts'
signals in :class:`AlertState`), then run that Zentinel's pass, which records them as it records its own: the
one incident writer. Raises when the pass could not record them; the intake then answers 503, and Alertmanager
posts again."""


# ------------------------------------------------------------------------ the payload
class PayloadError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Alert:
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    fingerprint: str


def _strings(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise PayloadError(f"{where}: must be an object of strings")
    return dict(value)


def parse_payload(data: Any) -> tuple[str, list[Alert]]:
    """``(groupKey, alerts)`` from an Alertmanager webhook body; raise :class:`PayloadError` saying what is wrong."""
    if not isinstance(data, Mapping):
        raise PayloadError("the body must be a JSON object (Alertmanager webhook payload)")
    version = data.get("version")
    if version != "4":
        raise PayloadError(f'version: expected "4" (Alertmanager webhook payload version 4), got {version!r}')
    group_key = data.get("groupKey")
    if not isinstance(group_key, str) or not group_key:
        raise PayloadError("groupKey: required, a non-empty string")
    raw_alerts = data.get("alerts")
    if not isinstance(raw_alerts, list):
        raise PayloadError("alerts: required, a list")
    alerts: list[Alert] = []
    for i, raw in enumerate(raw_alerts):
        where = f"alerts[{i}]"
        if not isinstance(raw, Mapping):
            raise PayloadError(f"{where}: must be an object")
        status = raw.get("status")
        if status not in ("firing", "resolved"):
            raise PayloadError(f'{where}.status: must be "firing" or "resolved", got {status!r}')
        if "labels" not in raw:
            raise PayloadError(f"{where}.labels: required")
        labels = _strings(raw.get("labels"), f"{where}.labels")
        annotations = _strings(raw.get("annotations") or {}, f"{where}.annotations")
        starts_at = raw.get("startsAt")
        if not isinstance(starts_at, str):
            raise PayloadError(f"{where}.startsAt: required, an RFC 3339 time")
        try:
            parse_time(starts_at)
        except ValueError as e:
            raise PayloadError(f"{where}.startsAt: {e}") from None
        fingerprint = raw.get("fingerprint")
        if fingerprint is not None and not isinstance(fingerprint, str):
            raise PayloadError(f"{where}.fingerprint: must be a string")
        if not fingerprint:
            canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
            fingerprint = hashlib.sha256(canonical.encode()).hexdigest()[:16]
        alerts.append(Alert(status, labels, annotations, starts_at, fingerprint))
    return group_key, alerts


# ------------------------------------------------------------------------------ the app
def _error(status: int, message: str) -> web.Response:
    return web.json_response({"status": "error", "error": message}, status=status)


async def read_body(request: web.Request, max_bytes: int) -> bytes | web.Response:
    """The raw body, or a 413 answer once it grows past ``max_bytes`` (announced or streamed)."""
    if request.content_length is not None and request.content_length > max_bytes:
        return _error(413, f"body larger than {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.content.iter_chunked(65536):
        body += chunk
        if len(body) > max_bytes:
            return _error(413, f"body larger than {max_bytes} bytes")
    return bytes(body)


def build_app(
    *,
    token: str,
    state: AlertState,
    run_pass: PassRunner,
    labels: IntakeLabels | None = None,
    max_bytes: int = 1_000_000,
    namespaces: Collection[str] | None = None,
    owns: Callable[[str, str], bool] | None = None,
    default_severity: Severity = Severity.SEV3,
) -> web.Application:
    """The intake as an aiohttp application (``POST /api/v1/alertmanager``, ``GET /healthz``).

    ``owns``: whether a Zentinel is this operator's (its shard's); an alert about another is ignored here, since
    that shard's intake, which Alertmanager also posts to, takes it, so no two shards record one alert."""
    if not token:
        raise ValueError("the alert intake needs a bearer token")
    expected = f"Bearer {token}".encode()
    names = labels or IntakeLabels()
    watched = set(namespaces) if namespaces else None

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"status": "error", "error": "missing or wrong bearer token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="zentinel-alert-intake"'},
            )
        body = await read_body(request, max_bytes)
        if isinstance(body, web.Response):
            return body
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return _error(400, f"the body is not valid JSON: {e}")
        try:
            group_key, alerts = parse_payload(data)
        except PayloadError as e:
            return _error(400, str(e))

        processed = duplicates = 0
        ignored: list[dict[str, str]] = []
        touched: dict[str, bool] = {}
        # The firing alerts of each Zentinel: set, and recorded, by one pass of that Zentinel's.
        firing: dict[tuple[str, str], list[tuple[Category, FiringAlert, tuple[str, str, str, str]]]] = {}
        for alert in alerts:
            dedup = (group_key, alert.fingerprint, alert.status, alert.starts_at)
            if state.seen(dedup):
                duplicates += 1
                continue
            alertname = alert.labels.get("alertname", "alert")
            namespace = alert.labels.get(names.namespace)
            zentinel = alert.labels.get(names.zentinel)
            reason = None
            if alertname == OWN_ALERTNAME:
                reason = "the operator's own ZentinelIncident alert"
            elif not namespace or not zentinel:
                reason = f"labels {names.namespace!r} and {names.zentinel!r} are required to name the Zentinel"
            elif watched is not None and namespace not in watched:
                reason = f"namespace {namespace!r} is not watched by this operator"
            elif owns is not None and not owns(namespace, zentinel):
                reason = f"Zentinel {namespace}/{zentinel} is not of this operator's shard"
            if reason is not None or namespace is None or zentinel is None:
                ignored.append({"fingerprint": alert.fingerprint, "reason": reason or "unnamed Zentinel"})
                state.remember(dedup)
                continue
            category = map_category(alert.labels.get(names.category))
            if alert.status == "resolved":
                state.clear(namespace, zentinel, category, alert.fingerprint)
                state.remember(dedup)
                processed += 1
                continue
            # Free text from outside: what it may hold of a credential goes before it reaches a status, an Event
            # or a page.
            summary = redact(alert.annotations.get("summary") or alert.annotations.get("description") or alertname)
            description = alert.annotations.get("description")
            fired = FiringAlert(
                fingerprint=alert.fingerprint,
                alertname=alertname,
                severity=map_severity(alert.labels.get(names.severity), default_severity),
                summary=summary,
                starts_at=alert.starts_at,
                description=None if description is None else redact(description),
            )
            firing.setdefault((namespace, zentinel), []).append((category, fired, dedup))

        for (namespace, zentinel), items in firing.items():

            def update(ns: str = namespace, zen: str = zentinel, todo: list[Any] = items) -> None:
                for category, fired, _ in todo:
                    state.fire(ns, zen, category, fired)

            try:
                passed = await run_pass(namespace, zentinel, update)
            except Exception as e:
                # What was fired stays: it is true, and the next pass records it. Nothing is remembered, so
                # Alertmanager's retry is processed (the alerts already handled come back as duplicates).
                log.warning("alert intake: the pass of %s/%s could not record the alerts: %s", namespace, zentinel, e)
                return _error(503, "could not record the alert; try again")
            for category, fired, dedup in items:
                state.remember(dedup)
                if passed.reason is not None:
                    state.withdraw(namespace, zentinel, category, fired.fingerprint)
                    ignored.append({"fingerprint": fired.fingerprint, "reason": passed.reason})
                    continue
                name = passed.carriers.get(category)
                if name is not None:
                    touched[name] = touched.get(name, False) or name in passed.created
                processed += 1
            for name in sorted(passed.created):
                log.info("alert intake: %s/%s opened for the alerts about %s", namespace, name, zentinel)
        return web.json_response(
            {
                "status": "ok",
                "received": len(alerts),
                "processed": processed,
                "duplicates": duplicates,
                "ignored": ignored,
                "incidents": [{"name": n, "created": c} for n, c in sorted(touched.items())],
            }
        )

    app = bare_app(max_bytes)
    app.router.add_post(PATH, receive)
    return app


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def bare_app(max_bytes: int = 1_000_000) -> web.Application:
    """The intake's application with ``GET /healthz`` only; routes are added to it (see :mod:`.acks`)."""
    app = web.Application(client_max_size=max_bytes + 1)
    app.router.add_get("/healthz", _healthz)
    return app


async def serve(host: str, port: int, *, app: web.Application | None = None, **kwargs: Any) -> web.AppRunner:
    """Start ``app`` (else :func:`build_app` of ``kwargs``) on ``host:port`` (0: any free port).

    Returns the started runner: ``runner.addresses`` has the bound address, ``await runner.cleanup()`` stops it.
    """
    runner = web.AppRunner(app if app is not None else build_app(**kwargs), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
