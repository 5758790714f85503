"""Reconcile one ``Zentinel``: observe its workload and write its status."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import kopf
from pydantic import ValidationError

from .. import k8s
from ..core.conditions import set_condition
from ..models import Zentinel
from ..models.common import ConditionStatus
from ..models.zentinel import SignalSummary, ZentinelStatus


def parse(body: Any) -> Zentinel:
    try:
        return Zentinel.model_validate(dict(body))
    except ValidationError as e:
        raise kopf.PermanentError(f"invalid Zentinel spec: {e}") from e


async def reconcile(body: Any, logger: logging.Logger) -> None:
    zen = parse(body)
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    deployment = await asyncio.to_thread(k8s.get_deployment, namespace, zen.spec.workload.name)
    status = zen.status.model_copy(deep=True)
    if deployment is None:
        status.summary = SignalSummary(pods="0/0", observed_at=now)
        status.conditions = set_condition(
            status.conditions,
            "Healthy",
            ConditionStatus.FALSE,
            "WorkloadMissing",
            f"Deployment {zen.spec.workload.name} does not exist",
            now=now,
            generation=meta.get("generation"),
        )
    else:
        selector = k8s.label_selector_string(deployment["spec"]["selector"])
        pods = await asyncio.to_thread(k8s.list_pods, namespace, selector)
        desired = int(deployment["spec"].get("replicas", 1))
        ready = sum(1 for p in pods if _pod_ready(p))
        status.summary = SignalSummary(pods=f"{ready}/{desired}", observed_at=now)
        healthy = ready >= desired > 0
        status.conditions = set_condition(
            status.conditions,
            "Healthy",
            healthy,
            "PodsReady" if healthy else "PodsNotReady",
            f"{ready} of {desired} pods Ready",
            now=now,
            generation=meta.get("generation"),
        )
    status.observed_generation = meta.get("generation")
    await write_status(namespace, name, zen.status, status, logger)


def _pod_ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _comparable(status: ZentinelStatus) -> dict[str, Any]:
    data = status.dump()
    data.get("summary", {}).pop("observedAt", None)
    return data


async def write_status(
    namespace: str, name: str, old: ZentinelStatus, new: ZentinelStatus, logger: logging.Logger
) -> bool:
    """Patch ``.status`` only when something other than the observation time changed."""
    if _comparable(old) == _comparable(new):
        return False
    await asyncio.to_thread(k8s.patch_custom_status, "zentinels", namespace, name, new.dump())
    logger.debug("status updated")
    return True
