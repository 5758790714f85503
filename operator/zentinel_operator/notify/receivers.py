"""Send one notification to one receiver over HTTP (aiohttp), with bounded retries.

Secrets (the Slack incoming-webhook URL, the PagerDuty routing key, a webhook URL held in a Secret,
bearer tokens) are read from their Secret at send time, used for the one request and dropped. They
never reach a log line, an exception message, an Event or the incident's status: every error text
built here names the endpoint as ``scheme://host[:port]/…`` only, never includes an exception's own
text where that could carry the URL (aiohttp's errors do), and is passed through a scrubber that
removes each secret value (plain, percent-encoded and base64) should a receiver echo it back.

Retries: exponential backoff with jitter, bounded by a number of attempts and a total time; 408,
425, 429, 5xx and network errors are retried (``Retry-After`` is honoured within the time bound),
other 4xx answers and redirects are permanent. Each request has its own timeout.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime as dt
import json
import random
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiohttp

from .. import k8s
from ..core import notify_payloads as payloads
from ..models.common import SecretKeyRef
from ..models.incident import ZentinelIncident
from ..models.policy import Receiver, ReceiverType

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
ALERTMANAGER_ALERTS_PATH = "/api/v2/alerts"
USER_AGENT = k8s.USER_AGENT  # receivers see the same name and version as the API server
_RETRYABLE = {408, 425, 429}
_rng = random.SystemRandom()


class NotifyError(Exception):
    """A delivery problem whose message is safe to log and store (no secret in it)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


SecretReader = Callable[[str, SecretKeyRef], Awaitable[str]]


async def read_secret(namespace: str, ref: SecretKeyRef) -> str:
    """The decoded value of one Secret key, read in a worker thread (the official client is synchronous)."""
    where = f"Secret {namespace}/{ref.name}"
    try:
        obj = await asyncio.to_thread(k8s.get_secret, namespace, ref.name)
    except Exception as e:  # never include the client's exception text: keep the message predictable
        status = getattr(e, "status", None)
        raise NotifyError(f"could not read {where}: {'HTTP ' + str(status) if status else type(e).__name__}") from None
    if obj is None:
        raise NotifyError(f"{where} not found")
    data = obj.get("data") or {}
    if ref.key not in data:
        raise NotifyError(f"{where} has no key {ref.key!r}")
    try:
        value = base64.b64decode(data[ref.key], validate=True).decode("utf-8").strip()
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
        raise NotifyError(f"{where} key {ref.key!r} is not valid base64-encoded UTF-8", permanent=True) from None
    if not value:
        raise NotifyError(f"{where} key {ref.key!r} is empty")
    return value


# --------------------------------------------------------------------------- redaction
def redact_url(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/secret`` -> ``https://hooks.slack.com/…``."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    netloc = f"[{host}]" if ":" in host else host
    if port:
        netloc += f":{port}"
    return f"{parts.scheme or '?'}://{netloc}/…"


class Scrubber:
    """Removes known secret values from text, in the forms a server might echo them."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._needles: list[str] = []
        for value in secrets:
            self.add(value)

    def add(self, value: str) -> None:
        if len(value) < 4:
            return
        forms = {
            value,
            urllib.parse.quote(value, safe=""),
            urllib.parse.quote_plus(value),
            urllib.parse.quote(value),
            base64.b64encode(value.encode()).decode(),
        }
        # A URL's path and query often hold the token: scrub those parts on their own too.
        try:
            parts = urllib.parse.urlsplit(value)
            if parts.scheme and parts.netloc:
                tail = parts.path + (f"?{parts.query}" if parts.query else "")
                if len(tail) > 1:
                    forms.add(tail)
        except ValueError:
            pass
        self._needles = sorted({*self._needles, *forms}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, "***")
        return text


# ---------------------------------------------------------------------------- endpoints
@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where and how to post; holds secrets, so it never prints them."""

    url: str = dataclasses.field(repr=False)
    headers: dict[str, str] = dataclasses.field(repr=False, default_factory=dict)
    routing_key: str | None = dataclasses.field(repr=False, default=None)
    secrets: tuple[str, ...] = dataclasses.field(repr=False, default=())

    @property
    def redacted(self) -> str:
        return redact_url(self.url)


def _check_url(url: str, receiver: Receiver) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        raise NotifyError(f"receiver {receiver.name!r}: the URL is not valid", permanent=True) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotifyError(f"receiver {receiver.name!r}: the URL must be http(s)://host/...", permanent=True)
    return url


async def resolve_endpoint(namespace: str, receiver: Receiver, read: SecretReader = read_secret) -> Endpoint:
    """Read the receiver's secrets and work out the URL, headers and routing key."""
    secrets: list[str] = []  # every value read from a Secret, scrubbed from the error texts
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    routing_key: str | None = None

    async def secret(ref: SecretKeyRef) -> str:
        value = await read(namespace, ref)
        secrets.append(value)
        return value

    async def secret_or_url(needs: str) -> str:
        """The URL from the receiver's Secret (the URL is a secret then), else its ``url``."""
        if receiver.secret_ref is not None:
            return await secret(receiver.secret_ref)
        if receiver.url:
            return receiver.url
        raise NotifyError(f"receiver {receiver.name!r}: {needs}", permanent=True)

    if receiver.type == ReceiverType.SLACK:
        url = await secret_or_url("Slack needs secretRef (the webhook URL)")
    elif receiver.type == ReceiverType.PAGERDUTY:
        if receiver.secret_ref is None:
            raise NotifyError(f"receiver {receiver.name!r}: PagerDuty needs secretRef (routing key)", permanent=True)
        routing_key = await secret(receiver.secret_ref)
        url = receiver.url or PAGERDUTY_EVENTS_URL
    elif receiver.type == ReceiverType.WEBHOOK:
        url = await secret_or_url("Webhook needs url or secretRef")
    elif receiver.type == ReceiverType.ALERTMANAGER:
        if not receiver.url:
            raise NotifyError(f"receiver {receiver.name!r}: Alertmanager needs url", permanent=True)
        base = receiver.url.rstrip("/")
        url = base if base.endswith(ALERTMANAGER_ALERTS_PATH) else base + ALERTMANAGER_ALERTS_PATH
    else:  # pragma: no cover - the enum is closed
        raise NotifyError(f"receiver {receiver.name!r}: unknown type", permanent=True)
    if receiver.token_secret_ref is not None and receiver.type in (ReceiverType.WEBHOOK, ReceiverType.ALERTMANAGER):
        headers["Authorization"] = f"Bearer {await secret(receiver.token_secret_ref)}"
    return Endpoint(url=_check_url(url, receiver), headers=headers, routing_key=routing_key, secrets=tuple(secrets))


# ------------------------------------------------------------------------------ retries
@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # per send (the dispatcher may try again later, see Dispatcher)
    base_delay: float = 0.5
    max_delay: float = 8.0
    total_timeout: float = 30.0  # for all attempts of one send, sleeps included
    request_timeout: float = 10.0  # for one request, connect to last byte

    def delay(self, attempt: int) -> float:
        """Backoff after the ``attempt``-th failure: exponential, capped, with jitter (half fixed, half random)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(0, attempt - 1))
        return float(ceiling / 2 + _rng.uniform(0, ceiling / 2))


@dataclasses.dataclass(frozen=True)
class SendResult:
    delivered: bool
    attempts: int
    permanent: bool = False
    error: str | None = None  # safe: redacted and scrubbed
    status: int | None = None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _describe(e: BaseException, where: str, timeout: float) -> str:
    """A safe description of a transport error: never the exception's own text (it may hold the URL)."""
    if isinstance(e, TimeoutError):
        return f"no answer from {where} within {timeout:.1f}s"
    if isinstance(e, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve {where}"
    if isinstance(e, aiohttp.ClientConnectorError):
        reason = e.os_error.strerror if isinstance(e.os_error, OSError) and e.os_error.strerror else "connect failed"
        return f"cannot connect to {where}: {reason}"
    if isinstance(e, aiohttp.ServerDisconnectedError):
        return f"{where} closed the connection without answering"
    if isinstance(e, aiohttp.ClientPayloadError):
        return f"{where} sent a broken response"
    return f"{type(e).__name__} talking to {where}"


async def post_json(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    body: Any,
    *,
    retry: RetryPolicy,
    extra_headers: dict[str, str] | None = None,
) -> SendResult:
    """POST ``body`` as JSON, retrying what may succeed later. Never raises for HTTP or network trouble."""
    scrub = Scrubber(endpoint.secrets)
    where = endpoint.redacted
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = {**endpoint.headers, **(extra_headers or {})}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry.total_timeout
    attempt = 0
    error = "not attempted"
    status: int | None = None
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0.05:
            return SendResult(False, attempt, error=scrub(error), status=status)
        attempt += 1
        per_request = min(retry.request_timeout, remaining)
        wait_hint: float | None = None
        try:
            async with session.post(
                endpoint.url,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=per_request),
                allow_redirects=False,
            ) as resp:
                status = resp.status
                excerpt = (await resp.content.read(300)).decode("utf-8", errors="replace")
                wait_hint = _retry_after(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            status = None
            error = _describe(e, where, per_request)
        else:
            if 200 <= status < 300:
                return SendResult(True, attempt, status=status)
            text = " ".join(excerpt.split())[:200]
            error = f"HTTP {status} from {where}" + (f": {text}" if text else "")
            if not (status in _RETRYABLE or status >= 500):
                if 300 <= status < 400:
                    error = f"HTTP {status} from {where}: redirects are not followed (the URL would leave with it)"
                return SendResult(False, attempt, permanent=True, error=scrub(error), status=status)
        if attempt >= retry.attempts:
            return SendResult(False, attempt, error=scrub(error), status=status)
        delay = retry.delay(attempt)
        if wait_hint is not None:
            delay = max(delay, wait_hint)
        if loop.time() + delay >= deadline:
            return SendResult(False, attempt, error=scrub(error), status=status)
        await asyncio.sleep(delay)


# ---------------------------------------------------------------------------------- send
class Sender:
    """Builds the body for a receiver's type and posts it; one per dispatcher (shares the session)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        retry: RetryPolicy | None = None,
        read: SecretReader = read_secret,
        slack_buttons: bool = False,
    ) -> None:
        self.session = session
        self.retry = retry or RetryPolicy()
        self.read = read
        self.slack_buttons = slack_buttons  # Acknowledge/Resolve buttons: only when the operator takes the presses

    async def send(
        self,
        namespace: str,
        receiver: Receiver,
        incident: ZentinelIncident,
        *,
        event: str,
        level: str,
        key: str,
        now: dt.datetime,
    ) -> SendResult:
        """Post one notification; ``namespace`` is where the receiver's Secrets are read."""
        try:
            endpoint = await resolve_endpoint(namespace, receiver, self.read)
        except NotifyError as e:  # counts as an attempt, so backoff and giving up apply to it too
            return SendResult(False, 1, permanent=e.permanent, error=str(e))
        try:
            body = payloads.build_payload(
                receiver.type,
                incident,
                event,
                level,
                key=key,
                now=now,
                routing_key=endpoint.routing_key,
                slack_buttons=self.slack_buttons,
            )
        except ValueError as e:
            return SendResult(False, 1, permanent=True, error=Scrubber(endpoint.secrets)(str(e)))
        extra = {"Idempotency-Key": key, "X-Zentinel-Event": event} if receiver.type == ReceiverType.WEBHOOK else None
        return await post_json(self.session, endpoint, body, retry=self.retry, extra_headers=extra)
