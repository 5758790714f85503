"""I/O the evidence bundle needs beyond the pass's API client: the namespace's events, and error text.

Admin pages are not fetched here: the pass's observation holds them, read on the shared aiohttp session
(:mod:`zentinel_operator.signals.gather`).

Synchronous, like :mod:`.k8s`: call from a worker thread. Nothing here logs a response body.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import k8s

log = logging.getLogger(__name__)

EVENTS_LIMIT = 2000


def list_events(namespace: str, limit: int = EVENTS_LIMIT) -> list[dict[str, Any]]:
    """The namespace's core/v1 Events (at most ``limit``; events expire after an hour by default)."""
    result = k8s.core().list_namespaced_event(namespace, limit=limit)
    return [k8s.to_dict(e) for e in result.items]


def api_error(e: BaseException) -> str:
    """An exception for the log, without the response body an ApiException carries."""
    if isinstance(e, ApiException):
        return f"API error {e.status} {e.reason or ''}".strip()
    text = " ".join(str(e).split())[:200]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
