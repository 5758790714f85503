"""Acknowledge where people are: PagerDuty's webhooks (v3) and Slack's buttons reach the incident.

Two routes on the alert intake's server (:mod:`.intake`):

* ``POST /api/v1/pagerduty``: a PagerDuty webhook subscription (v3), signed with its signing secret
  (``X-PagerDuty-Signature``). ``incident.acknowledged`` and ``incident.resolved`` by a person act on
  the incident whose ``dedup_key`` the operator sent; every other event is answered 200 and ignored.
* ``POST /api/v1/slack/interactions``: a Slack app's interactivity request URL, signed with the app's
  signing secret (``X-Slack-Signature``, ``X-Slack-Request-Timestamp``); the Acknowledge and Resolve
  buttons the operator's Slack messages carry.

This module only reads the body, verifies it, and patches the incident's spec with what
:mod:`zentinel_operator.core.acks` decides (``spec.acknowledgedBy``, or ``spec.resolvedBy`` and
``spec.resolutionNote``): the lifecycle records it on its next pass, as for ``kubectl`` or
``zentinelctl``, so the acknowledgement stops the escalation the same way. The patch carries the
``resourceVersion`` it was decided on (a 409 is decided again on fresh data).

Answers: a missing or wrong signature, or a stale Slack timestamp, is 401 and changes nothing; a
signed body that is not PagerDuty's or Slack's is 400 naming the field; an API error is 503 (both
retry or let the person press again). An incident that does not exist (or is in a namespace this
operator does not watch): PagerDuty 200 ``ignored`` (a subscription may cover services that are not
the operator's, and a retry would not help), Slack 404 (the person who pressed sees that it failed).
Secrets are read from their mounted files, again when a file changes (a rotated Secret), and never
logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import Any

from aiohttp import web

from .. import k8s
from ..config import Settings
from ..core import acks
from ..core.lifecycle import human_input
from ..models import ZentinelIncident
from ..names import INCIDENTS
from . import intake

log = logging.getLogger(__name__)

PAGERDUTY_PATH = "/api/v1/pagerduty"
SLACK_PATH = "/api/v1/slack/interactions"


class SecretFile:
    """Secrets from a mounted file, one a line; read again when the file changes. Never printed."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"SecretFile({self.path})"

    def __call__(self) -> tuple[str, ...]:
        if self.path is None:
            return ()
        try:
            st = os.stat(self.path)
        except OSError:
            return self._secrets  # a Secret being swapped: keep what was read last
        stamp = (st.st_mtime_ns, st.st_ino)
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._secrets = acks.secrets_from_text(self.path.read_text())
                    self._stamp = stamp
                except (OSError, UnicodeDecodeError):
                    log.warning("could not read the secret file %s", self.path)
            return self._secrets


@dataclasses.dataclass(frozen=True)
class Applied:
    """What became of an act: ``applied``, ``ignored`` (with the reason) or ``not-found``."""

    outcome: str
    reason: str


Applier = Callable[[acks.Act], Awaitable[Applied]]


def apply_act(act: acks.Act, *, attempts: int = 5) -> Applied:
    """Synchronous (official client): patch the incident's spec with what the core decides for ``act``, on the
    version it decided on (:func:`k8s.update_custom`)."""
    refused: list[acks.Refusal] = []
    decisions: list[acks.Request] = []

    def change(obj: dict[str, Any]) -> dict[str, Any] | None:
        decided = acks.decide(act, ZentinelIncident.model_validate(obj).status, human_input(obj))
        if isinstance(decided, acks.Refusal):
            refused.append(decided)
            return None
        decisions.append(decided)
        return dict(decided.patch)

    done = k8s.update_custom(INCIDENTS, act.namespace, act.name, change, attempts=attempts)
    if done is k8s.Updated.GONE:
        return Applied("not-found", f"no incident {act.namespace}/{act.name}")
    if done is k8s.Updated.UNCHANGED:
        return Applied("ignored", refused[-1].reason)
    message = decisions[-1].message
    log.info("%s/%s: %s in %s: %s", act.namespace, act.name, act.action, act.source, message)
    return Applied("applied", message)


async def k8s_applier(act: acks.Act) -> Applied:
    return await asyncio.to_thread(apply_act, act)


def _answer(status: int, outcome: str, reason: str, act: acks.Act | None = None) -> web.Response:
    body: dict[str, Any] = {"status": outcome, "reason": reason}
    if act is not None:
        body["incident"] = f"{act.namespace}/{act.name}"
        body["action"] = act.action
    return web.json_response(body, status=status)


def add_routes(
    app: web.Application,
    *,
    pagerduty_secrets: Callable[[], tuple[str, ...]] | None = None,
    slack_secrets: Callable[[], tuple[str, ...]] | None = None,
    applier: Applier | None = None,
    max_bytes: int = 1_000_000,
    namespaces: Collection[str] | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """Add the PagerDuty and Slack routes (each only when it has a secret source) to ``app``."""
    apply = applier or k8s_applier
    watched = set(namespaces) if namespaces else None

    async def act_on(source: str, act: acks.Act | acks.Ignored, missing: int) -> web.Response:
        if isinstance(act, acks.Ignored):
            log.info("%s: ignored: %s", source, act.reason)
            return _answer(200, "ignored", act.reason)
        if watched is not None and act.namespace not in watched:
            return _answer(missing, "not-found", f"namespace {act.namespace!r} is not watched by this operator", act)
        try:
            done = await apply(act)
        except Exception as e:
            log.warning(
                "%s: could not record %s of %s/%s: %s", source, act.action, act.namespace, act.name, type(e).__name__
            )
            return _answer(503, "error", "could not record it; try again", act)
        if done.outcome == "not-found":
            log.info("%s: %s", source, done.reason)
            return _answer(missing, done.outcome, done.reason, act)
        if done.outcome == "ignored":
            log.info("%s: %s/%s: ignored: %s", source, act.namespace, act.name, done.reason)
        return _answer(200, done.outcome, done.reason, act)

    def refused(source: str, reason: str) -> web.Response:
        log.warning("%s: refused a request: %s", source, reason)
        return _answer(401, "error", reason)

    async def pagerduty(request: web.Request) -> web.Response:
        body = await intake.read_body(request, max_bytes)
        if isinstance(body, web.Response):
            return body
        problem = acks.verify_pagerduty(body, request.headers.get("X-PagerDuty-Signature"), _secrets(pagerduty_secrets))
        if problem is not None:
            return refused(acks.PAGERDUTY, problem)
        try:
            act = acks.pagerduty_act(json.loads(body))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return _answer(400, "error", f"the body is not valid JSON: {e}")
        except acks.PayloadError as e:
            return _answer(400, "error", str(e))
        return await act_on(acks.PAGERDUTY, act, missing=200)

    async def slack(request: web.Request) -> web.Response:
        body = await intake.read_body(request, max_bytes)
        if isinstance(body, web.Response):
            return body
        problem = acks.verify_slack(
            body,
            request.headers.get("X-Slack-Request-Timestamp"),
            request.headers.get("X-Slack-Signature"),
            _secrets(slack_secrets),
            now=clock(),
        )
        if problem is not None:
            return refused(acks.SLACK, problem)
        try:
            form = urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=False)
            raw = form.get("payload")
            if not raw:
                return _answer(400, "error", "payload: required, the form field Slack posts")
            act = acks.slack_act(json.loads(raw[0]))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return _answer(400, "error", f"payload: not valid JSON: {e}")
        except acks.PayloadError as e:
            return _answer(400, "error", str(e))
        return await act_on(acks.SLACK, act, missing=404)

    if pagerduty_secrets is not None:
        app.router.add_post(PAGERDUTY_PATH, pagerduty)
    if slack_secrets is not None:
        app.router.add_post(SLACK_PATH, slack)


def _secrets(source: Callable[[], tuple[str, ...]] | None) -> tuple[str, ...]:
    return source() if source is not None else ()


def build_intake(
    settings: Settings,
    state: intake.AlertState,
    *,
    run_pass: intake.PassRunner,
    owns: Callable[[str, str], bool] | None = None,
) -> web.Application | None:
    """The intake's application from the settings: Alertmanager's route with a token file (alerts become
    signals, recorded by the Zentinel's pass that ``run_pass`` runs; ``owns``: this shard's Zentinels),
    PagerDuty's and Slack's with their secret files; None when the port is 0 or none of them is configured."""
    pd_file, slack_file = settings.alert_intake_pagerduty_secret_file, settings.alert_intake_slack_secret_file
    token_file = settings.alert_intake_token_file
    if not settings.alert_intake_port or not (token_file or pd_file or slack_file):
        return None
    namespaces = settings.namespaces or None
    max_bytes = settings.alert_intake_max_bytes
    if token_file is not None:
        app = intake.build_app(
            token=token_file.read_text().strip(),
            state=state,
            run_pass=run_pass,
            max_bytes=max_bytes,
            namespaces=namespaces,
            owns=owns,
        )
    else:
        app = intake.bare_app(max_bytes)
    add_routes(
        app,
        pagerduty_secrets=SecretFile(pd_file) if pd_file else None,
        slack_secrets=SecretFile(slack_file) if slack_file else None,
        max_bytes=max_bytes,
        namespaces=namespaces,
    )
    return app
