"""I/O the evidence collector needs beyond :mod:`zentinel_operator.k8s`: events, bulk deletes, small GETs.

Synchronous, like :mod:`.k8s`: call from a worker thread. Nothing here logs a response body.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from kubernetes.client.exceptions import ApiException

from . import k8s

log = logging.getLogger(__name__)

EVENTS_LIMIT = 2000


def list_events(namespace: str, limit: int = EVENTS_LIMIT) -> list[dict[str, Any]]:
    """The namespace's core/v1 Events (at most ``limit``; events expire after an hour by default)."""
    result = k8s.core().list_namespaced_event(namespace, limit=limit)
    return [k8s.to_dict(e) for e in result.items]


def delete_configmaps(namespace: str, label_selector: str) -> None:
    """Delete every ConfigMap matching ``label_selector`` (nothing when none match)."""
    try:
        k8s.core().delete_collection_namespaced_config_map(namespace, label_selector=label_selector)
    except ApiException as e:
        if e.status != 404:
            raise


def api_error(e: BaseException) -> str:
    """An exception for the log, without the response body an ApiException carries."""
    if isinstance(e, ApiException):
        return f"API error {e.status} {e.reason or ''}".strip()
    text = " ".join(str(e).split())[:200]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def fetch(url: str, *, timeout: float, max_bytes: int) -> str | None:
    """GET ``url``: the body of a 2xx answer (cut at ``max_bytes``), or None. Never raises."""
    deadline = time.monotonic() + timeout
    try:
        with _opener.open(url, timeout=timeout) as resp:
            if not 200 <= resp.status < 300:
                return None
            parts: list[bytes] = []
            size = 0
            while size < max_bytes:
                if time.monotonic() > deadline:
                    log.debug("GET %s: took longer than %.1fs, kept what came", url, timeout)
                    break
                chunk = resp.read(min(64 * 1024, max_bytes - size))
                if not chunk:
                    break
                parts.append(chunk)
                size += len(chunk)
    except (OSError, urllib.error.URLError, ValueError) as e:
        log.debug("GET %s failed: %s", url, api_error(e))
        return None
    return b"".join(parts).decode("utf-8", errors="replace")


def fetch_many(urls: Sequence[str], *, timeout: float, max_bytes: int, workers: int = 8) -> dict[str, str | None]:
    """GET each URL (a few at a time, each within ``timeout``): URL -> body or None."""
    unique = list(dict.fromkeys(urls))
    if not unique:
        return {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(workers, len(unique))) as pool:
        bodies = pool.map(lambda u: fetch(u, timeout=timeout, max_bytes=max_bytes), unique)
        return dict(zip(unique, bodies, strict=True))
