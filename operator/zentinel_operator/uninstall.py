"""``zentinel-operator release-finalizers``: what the chart's pre-delete hook runs on ``helm uninstall``.

kopf puts its finalizer (``<kopfPrefix>/finalizer``; shard ``i`` above 0 of a sharded operator
``<kopfPrefix>/finalizer-shard-<i>``, ``core/shards.Shard.finalizer``) on every Zentinel, policy and silence:
their timers need one, so that kopf can stop a timer before the object goes. Once the operator is uninstalled
nothing removes it, and deleting a Zentinel, a policy or their namespace would hang in
Terminating. Before Helm deletes anything, the hook:

1. scales the operator's Deployment to 0 and waits until its pods are gone (a running operator
   would put the finalizer straight back);
2. deletes the admission webhook's configuration (the release would delete it next anyway; with
   nobody serving it and ``failurePolicy: Fail``, the API server would refuse step 3 on policies);
3. removes the operator's finalizer (every shard's), and only that, from every object of the operator's kinds
   in the watched namespaces (every namespace when none is given). Objects stay; only the
   operator's hold on them goes.

Run by hand it does the same, e.g. before deleting the CRDs of a cluster whose operator is gone.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from . import k8s
from .core.shards import is_finalizer_of_a_shard
from .names import CLUSTER_POLICIES, INCIDENTS, POLICIES, SILENCES, ZENTINELS

log = logging.getLogger("zentinel_operator.uninstall")

# Every namespaced kind the operator handles (kopf adds its finalizer to those with timers).
PLURALS = (ZENTINELS, POLICIES, INCIDENTS, SILENCES)
# The cluster-scoped ones: released whatever namespaces the operator watched.
CLUSTER_PLURALS = (CLUSTER_POLICIES,)


def without_finalizer(body: dict[str, Any], finalizer: str) -> dict[str, Any] | None:
    """The merge patch that removes ``finalizer``, and every shard's variant of it (``<finalizer>-shard-<i>``,
    ``core/shards.Shard.finalizer``), from ``body``; None when it holds none of them.

    The patch carries the resourceVersion, so a concurrent change makes it fail (409) rather than
    drop a finalizer someone else just added.
    """
    meta = body.get("metadata") or {}
    held = list(meta.get("finalizers") or [])
    kept = [f for f in held if not is_finalizer_of_a_shard(f, finalizer)]
    if kept == held:
        return None
    return {
        "metadata": {
            "finalizers": kept,
            "resourceVersion": meta.get("resourceVersion"),
        }
    }


def stop_operator(namespace: str, deployment: str, timeout: float, poll: float = 1.0) -> None:
    """Scale the operator's Deployment to 0 and wait until none of its pods is left."""
    dep = k8s.get_deployment(namespace, deployment)
    if dep is None:
        log.info("deployment %s/%s is gone already", namespace, deployment)
        return
    selector = k8s.label_selector_string(dep["spec"]["selector"])
    k8s.patch_deployment(namespace, deployment, {"spec": {"replicas": 0}})
    deadline = time.monotonic() + timeout
    while pods := k8s.list_pods(namespace, selector):
        if time.monotonic() > deadline:
            names = ", ".join(p["metadata"]["name"] for p in pods)
            raise SystemExit(f"release-finalizers: the operator's pods are still there after {timeout:g}s: {names}")
        time.sleep(poll)
    log.info("deployment %s/%s scaled to 0, no pod left", namespace, deployment)


def delete_webhook_configuration(name: str) -> None:
    try:
        kubernetes.client.AdmissionregistrationV1Api(k8s.api_client()).delete_validating_webhook_configuration(name)
        log.info("deleted ValidatingWebhookConfiguration %s", name)
    except ApiException as e:
        if e.status != 404:
            raise


def release(
    finalizer: str,
    namespaces: Iterable[str] = (),
    *,
    lister: Callable[[str, str | None], list[dict[str, Any]]] | None = None,
    patcher: Callable[[str, str, str, dict[str, Any]], object] | None = None,
    attempts: int = 5,
) -> int:
    """Remove ``finalizer`` from every object of :data:`PLURALS` (in ``namespaces``; none: all) and of
    :data:`CLUSTER_PLURALS`; the number of objects released. ``patcher`` gets namespace ``""`` for the
    cluster-scoped ones."""
    lister = lister or _list
    patcher = patcher or _patch
    scopes: list[str | None] = list(namespaces) or [None]
    released = 0
    for plural in (*PLURALS, *CLUSTER_PLURALS):
        for scope in scopes if plural in PLURALS else [None]:
            for body in lister(plural, scope):
                if _release_one(plural, body, finalizer, lister, patcher, attempts):
                    released += 1
    return released


def _patch(plural: str, namespace: str, name: str, patch: dict[str, Any]) -> object:
    if namespace:
        return k8s.patch_custom(plural, namespace, name, patch)
    return k8s.patch_cluster_custom(plural, name, patch)


def _list(plural: str, namespace: str | None) -> list[dict[str, Any]]:
    try:
        return k8s.list_custom(plural, namespace) if namespace else k8s.list_custom_all(plural)
    except ApiException as e:
        if e.status == 404:  # the CRD is not installed
            return []
        raise


def _release_one(
    plural: str,
    body: dict[str, Any],
    finalizer: str,
    lister: Callable[[str, str | None], list[dict[str, Any]]],
    patcher: Callable[[str, str, str, dict[str, Any]], object],
    attempts: int,
) -> bool:
    namespace, name = body["metadata"].get("namespace") or "", body["metadata"]["name"]
    for _ in range(attempts):
        patch = without_finalizer(body, finalizer)
        if patch is None:
            return False
        try:
            patcher(plural, namespace, name, patch)
            log.info("released %s %s/%s", plural, namespace, name)
            return True
        except ApiException as e:
            if e.status == 404:
                return False
            if e.status != 409:
                raise
        fresh = [b for b in lister(plural, namespace) if b["metadata"]["name"] == name]
        if not fresh:
            return False
        body = fresh[0]
    raise SystemExit(f"release-finalizers: {plural} {namespace}/{name} kept changing; run again")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zentinel-operator release-finalizers", description=__doc__.split("\n")[0])
    parser.add_argument("--namespace", required=True, help="the operator's namespace")
    parser.add_argument(
        "--deployment",
        required=True,
        action="append",
        help="the operator's Deployment, scaled to 0 first (once per Deployment: one per shard)",
    )
    parser.add_argument("--finalizer", required=True, help="kopf's finalizer, <kopfPrefix>/finalizer")
    parser.add_argument("--watch-namespaces", default="", help="comma-separated; empty: every namespace")
    parser.add_argument("--webhook-configuration", default="", help="ValidatingWebhookConfiguration to delete")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the pods to go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for deployment in args.deployment:
        stop_operator(args.namespace, deployment, args.timeout)
    if args.webhook_configuration:
        delete_webhook_configuration(args.webhook_configuration)
    namespaces = [n.strip() for n in args.watch_namespaces.split(",") if n.strip()]
    count = release(args.finalizer, namespaces)
    log.info("released %d object(s) from %s", count, args.finalizer)
    return 0
