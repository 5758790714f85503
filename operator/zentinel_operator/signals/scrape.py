"""Fetch many small HTTP endpoints at once (Zentinel's ``/metrics``, ``/admin/upstreams``) with bounds.

One slow, dead or misbehaving pod must not hold up or break a pass over hundreds: every request has
its own timeout, a semaphore bounds how many run at the same time, and a body is read in chunks and
cut off at ``max_bytes``. Endpoint problems never raise; they come back as a :class:`FetchResult`
with ``ok=False`` and a short ``error`` for people.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Sequence

import aiohttp

_CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True)
class FetchResult:
    url: str
    ok: bool  # a 2xx answer whose whole body was read
    status: int | None  # HTTP status, None when no answer came
    body: str | None  # UTF-8 (undecodable bytes replaced); also kept for a non-2xx answer
    error: str | None  # why not ok, for people
    elapsed: float  # seconds from sending the request to the end (excludes waiting for a slot)


class _BodyTooLargeError(Exception):
    pass


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise _BodyTooLargeError
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise _BodyTooLargeError
        parts.append(chunk)
    return b"".join(parts)


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}: {_os_reason(exc.os_error)}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection without an answer"
    if isinstance(exc, aiohttp.ClientOSError):
        return f"connection error: {_os_reason(exc)}"
    if isinstance(exc, aiohttp.ClientResponseError) and exc.status == 400 and exc.message:
        return f"not an HTTP answer: {' '.join(exc.message.split()).rstrip(' ^')[:120]}"
    if isinstance(exc, aiohttp.NonHttpUrlClientError):
        return f"not an http(s) URL: {exc}"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL: {exc.url}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:160]}"


def _os_reason(exc: OSError) -> str:
    if exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


async def _fetch_one(
    session: aiohttp.ClientSession,
    semaphore: asyncio.Semaphore,
    url: str,
    request_timeout: float,
    max_bytes: int,
) -> FetchResult:
    async with semaphore:
        started = time.monotonic()
        status: int | None = None
        try:
            async with asyncio.timeout(request_timeout):
                async with session.get(
                    url,
                    timeout=aiohttp.ClientTimeout(total=request_timeout),
                    allow_redirects=False,
                ) as response:
                    status = response.status
                    raw = await _read_capped(response, max_bytes)
        except _BodyTooLargeError:
            return FetchResult(
                url=url,
                ok=False,
                status=status,
                body=None,
                error=f"body larger than {max_bytes} bytes",
                elapsed=time.monotonic() - started,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # timeouts, refused, resets, malformed answers, bad URLs: all endpoint problems
            return FetchResult(
                url=url,
                ok=False,
                status=status,
                body=None,
                error=_describe(exc, request_timeout),
                elapsed=time.monotonic() - started,
            )
        elapsed = time.monotonic() - started
    body = raw.decode("utf-8", errors="replace")
    if 200 <= status < 300:
        return FetchResult(url=url, ok=True, status=status, body=body, error=None, elapsed=elapsed)
    return FetchResult(url=url, ok=False, status=status, body=body, error=f"HTTP {status}", elapsed=elapsed)


async def fetch_many(
    urls: Sequence[str],
    *,
    concurrency: int,
    timeout: float,  # noqa: ASYNC109 - a per-request bound, not one for the whole call
    max_bytes: int,
    session: aiohttp.ClientSession | None = None,
) -> dict[str, FetchResult]:
    """GET every URL, at most ``concurrency`` at a time, each within ``timeout`` seconds.

    Returns one result per distinct URL. Pass a long-lived ``session`` to reuse connections across
    passes; without one, a session is made for this call (its connector also limited to
    ``concurrency``) and closed at the end. Proxy variables in the environment are not used.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    if max_bytes < 0:
        raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
    unique = list(dict.fromkeys(urls))
    if not unique:
        return {}
    semaphore = asyncio.Semaphore(concurrency)
    own = session is None
    if session is None:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency, limit_per_host=0),
            trust_env=False,
        )
    try:
        results = await asyncio.gather(*(_fetch_one(session, semaphore, url, timeout, max_bytes) for url in unique))
    finally:
        if own:
            await session.close()
    return {result.url: result for result in results}
