"""The CLI's view of the cluster: which kubeconfig, which namespace, and the few calls it makes.

Every call goes through :mod:`zentinel_operator.k8s`; :class:`Api` is the seam the unit tests
replace with a fake.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from .. import k8s
from ..names import CLUSTER_POLICIES, INCIDENTS, POLICIES, SILENCES, ZENTINELS

_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclasses.dataclass(frozen=True)
class KubeContext:
    namespace: str  # the context's namespace, "default" when it names none
    user: str | None  # the kubeconfig user of the context (a name, never a credential)


def connect(kubeconfig: str | None, context: str | None) -> KubeContext:
    """Load credentials for :mod:`zentinel_operator.k8s`: the kubeconfig (``--kubeconfig``, else
    ``KUBECONFIG``, else ``~/.kube/config``) and its context; inside a pod with neither given, the
    service account."""
    import kubernetes

    config: Any = kubernetes.config  # untyped module
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and _SA_NAMESPACE.exists()
    if in_cluster and not kubeconfig and not context and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config()
        result = KubeContext(namespace=_SA_NAMESPACE.read_text().strip() or "default", user=None)
    else:
        k8s.configure(kubeconfig, context)  # neither given: KUBECONFIG, else ~/.kube/config
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        if context:
            active = next((c for c in contexts if c.get("name") == context), active)
        ctx = (active or {}).get("context") or {}
        result = KubeContext(namespace=ctx.get("namespace") or "default", user=ctx.get("user") or None)
    return result


class Api(Protocol):
    """What the commands need from the cluster; objects come back as the API stores them."""

    def list_incidents(self, namespace: str | None) -> list[dict[str, Any]]: ...  # None: every namespace
    def get_incident(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def patch_incident(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]: ...
    def list_configmaps(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...
    def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def get_zentinel(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def list_policies(self, namespace: str) -> list[dict[str, Any]]: ...
    def list_cluster_policies(self) -> list[dict[str, Any]]: ...
    def get_policy(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def list_incidents_versioned(self, namespace: str | None) -> tuple[list[dict[str, Any]], str]: ...
    def list_silences(self, namespace: str | None) -> list[dict[str, Any]]: ...  # None: every namespace
    def get_silence(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def create_silence(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def patch_silence(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]: ...
    def watch_incidents(
        self, namespace: str | None, resource_version: str, timeout_seconds: int | None
    ) -> Iterator[tuple[str, dict[str, Any]]]: ...


class KubeApi:
    """:class:`Api` over :mod:`zentinel_operator.k8s` (synchronous, official client)."""

    def list_incidents(self, namespace: str | None) -> list[dict[str, Any]]:
        if namespace is not None:
            return k8s.list_custom(INCIDENTS, namespace)
        return k8s.list_custom_all(INCIDENTS)

    def get_incident(self, namespace: str, name: str) -> dict[str, Any] | None:
        return k8s.get_custom(INCIDENTS, namespace, name)

    def patch_incident(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return k8s.patch_custom(INCIDENTS, namespace, name, patch)

    def list_configmaps(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return k8s.list_configmaps(namespace, selector)

    def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return k8s.get_configmap(namespace, name)

    def get_zentinel(self, namespace: str, name: str) -> dict[str, Any] | None:
        return k8s.get_custom(ZENTINELS, namespace, name)

    def list_policies(self, namespace: str) -> list[dict[str, Any]]:
        return k8s.list_custom(POLICIES, namespace)

    def list_cluster_policies(self) -> list[dict[str, Any]]:
        return k8s.list_custom_all(CLUSTER_POLICIES)

    def get_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        return k8s.get_custom(POLICIES, namespace, name)

    def list_incidents_versioned(self, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        return k8s.list_custom_versioned(INCIDENTS, namespace)

    def list_silences(self, namespace: str | None) -> list[dict[str, Any]]:
        if namespace is not None:
            return k8s.list_custom(SILENCES, namespace)
        return k8s.list_custom_all(SILENCES)

    def get_silence(self, namespace: str, name: str) -> dict[str, Any] | None:
        return k8s.get_custom(SILENCES, namespace, name)

    def create_silence(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return k8s.create_custom(SILENCES, namespace, body)

    def patch_silence(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return k8s.patch_custom(SILENCES, namespace, name, patch)

    def watch_incidents(
        self, namespace: str | None, resource_version: str, timeout_seconds: int | None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        return k8s.watch_custom(
            INCIDENTS, namespace, resource_version=resource_version, timeout_seconds=timeout_seconds
        )
