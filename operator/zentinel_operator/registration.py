"""The only module with kopf decorators. Each handler is a short call into domain code."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from . import config, k8s
from .handlers import zentinel as zentinel_handlers
from .models.common import GROUP, VERSION

SETTINGS = config.load()


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Framework state goes to annotations, so every status field is ours and schema-checked.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=SETTINGS.kopf_prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=SETTINGS.kopf_prefix, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{SETTINGS.kopf_prefix}/finalizer"
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.peering.standalone = True
    k8s.configure()
    memo.settings = SETTINGS


@kopf.on.probe(id="alive")
def alive(**_: Any) -> bool:
    return True


@kopf.timer(GROUP, VERSION, "zentinels", interval=SETTINGS.scan_interval, initial_delay=0.0)
async def zentinel_pass(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    await zentinel_handlers.reconcile(body, logger)  # type: ignore[arg-type]
