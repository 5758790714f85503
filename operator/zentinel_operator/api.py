"""The API client the incident, remediation and evidence shells are given, as the operations they use.

``handlers/incidents.py`` reads and writes incidents through an :class:`IncidentApi`; ``remediation/`` acts
on the workload, its ConfigMaps and Secrets through an :class:`ActionApi`; ``handlers/evidence.py`` keeps
bundles and post-mortem drafts in ConfigMaps through an :class:`EvidenceApi`; ``handlers/remediation.py``,
which records on incidents what the actions did, and the pass (which also reads and writes its Zentinel
through a :class:`ZentinelApi`) take them all (:class:`Api`). The policy and silence handlers write their
objects' status through a :class:`StatusApi`. The operator
passes :class:`KubeApi`, which wraps :mod:`zentinel_operator.k8s`; unit tests pass an in-memory fake.

Errors are the official client's: a call that fails raises its ``ApiException`` (a 404 on a read is None).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from . import k8s
from .names import INCIDENTS, ZENTINELS

Obj = dict[str, Any]


class IncidentApi(Protocol):
    """``ZentinelIncident`` objects (``status`` through its subresource) and the Events posted on them."""

    def list_incidents(self, namespace: str, label_selector: str | None = None) -> list[Obj]: ...

    def get_incident(self, namespace: str, name: str) -> Obj | None: ...

    def create_incident(self, namespace: str, body: Obj) -> Obj:
        """Create by name; a taken name raises the API's 409 (``k8s.is_conflict``)."""
        ...

    def patch_incident(self, namespace: str, name: str, patch: Obj) -> Obj: ...

    def patch_incident_status(self, namespace: str, name: str, status: Obj) -> Obj: ...

    def post_event(self, involved: Obj, *, reason: str, message: str, type_: str, now: dt.datetime) -> None: ...


class ActionApi(Protocol):
    """What remediation actions read and change: the ConfigMaps, the Deployment and its pods, the PDBs,
    the TLS Secrets and cert-manager's Certificates."""

    def get_configmap(self, namespace: str, name: str) -> Obj | None: ...

    def create_configmap(self, namespace: str, body: Obj) -> Obj | None:
        """None when it exists already (create-or-409)."""
        ...

    def patch_configmap(self, namespace: str, name: str, patch: Obj) -> Obj: ...

    def patch_deployment(self, namespace: str, name: str, patch: Obj) -> Obj: ...

    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]: ...

    def delete_pod(self, namespace: str, name: str, uid: str | None = None) -> bool:
        """Only the pod with ``uid`` when given; False when it is gone (or was replaced)."""
        ...

    def list_pdbs(self, namespace: str) -> list[Obj]: ...

    def get_secret(self, namespace: str, name: str) -> Obj | None: ...

    def replace_secret_data(
        self, namespace: str, name: str, data: dict[str, str], resource_version: str | None
    ) -> None:
        """Refused (409) when the Secret changed since ``resource_version``."""
        ...

    def get_certificate(self, namespace: str, name: str) -> Obj | None:
        """A cert-manager ``Certificate``."""
        ...

    def patch_certificate_status(self, namespace: str, name: str, patch: Obj) -> Obj: ...


class EvidenceApi(Protocol):
    """The evidence ConfigMaps (bundles by label, post-mortem drafts by name) and the incident's status."""

    def list_configmaps(self, namespace: str, label_selector: str) -> list[Obj]: ...

    def get_configmap(self, namespace: str, name: str) -> Obj | None: ...

    def create_configmap(self, namespace: str, body: Obj) -> Obj | None:
        """None when it exists already (create-or-409)."""
        ...

    def patch_configmap(self, namespace: str, name: str, patch: Obj) -> Obj: ...

    def delete_configmap(self, namespace: str, name: str) -> None:
        """Nothing when it is gone already."""
        ...

    def delete_configmaps(self, namespace: str, label_selector: str) -> None:
        """Every ConfigMap ``label_selector`` matches (nothing when none match)."""
        ...

    def patch_incident_status(self, namespace: str, name: str, status: Obj) -> Obj: ...


class ZentinelApi(Protocol):
    """The ``Zentinel`` a pass is for: read afresh when the watched copy may be stale, and its status."""

    def get_zentinel(self, namespace: str, name: str) -> Obj | None: ...

    def patch_zentinel_status(self, namespace: str, name: str, status: Obj) -> Obj:
        """A merge patch of ``status`` (the subresource); returns the Zentinel as written."""
        ...


class StatusApi(Protocol):
    """The status subresource of one of the operator's own objects (policies, silences)."""

    def patch_status(self, plural: str, namespace: str | None, name: str, status: Obj) -> Obj:
        """A merge patch of ``status``; ``namespace`` None: a cluster-scoped object."""
        ...


class Api(IncidentApi, ActionApi, EvidenceApi, ZentinelApi, StatusApi, Protocol):
    """All of them: respond acts and records on the incident what it did; the pass reads and writes its
    Zentinel, and keeps evidence."""


_CERT_MANAGER = ("cert-manager.io", "v1", "certificates")


class KubeApi:
    """The real client: each operation is one call of :mod:`zentinel_operator.k8s`."""

    def list_incidents(self, namespace: str, label_selector: str | None = None) -> list[Obj]:
        return k8s.list_custom(INCIDENTS, namespace, label_selector)

    def get_incident(self, namespace: str, name: str) -> Obj | None:
        return k8s.get_custom(INCIDENTS, namespace, name)

    def create_incident(self, namespace: str, body: Obj) -> Obj:
        return k8s.create_custom(INCIDENTS, namespace, body)

    def patch_incident(self, namespace: str, name: str, patch: Obj) -> Obj:
        return k8s.patch_custom(INCIDENTS, namespace, name, patch)

    def patch_incident_status(self, namespace: str, name: str, status: Obj) -> Obj:
        return k8s.patch_custom_status(INCIDENTS, namespace, name, status)

    def post_event(self, involved: Obj, *, reason: str, message: str, type_: str, now: dt.datetime) -> None:
        k8s.post_event(involved, reason=reason, message=message, type_=type_, now=now)

    def get_zentinel(self, namespace: str, name: str) -> Obj | None:
        return k8s.get_custom(ZENTINELS, namespace, name)

    def patch_zentinel_status(self, namespace: str, name: str, status: Obj) -> Obj:
        return k8s.patch_custom_status(ZENTINELS, namespace, name, status)

    def patch_status(self, plural: str, namespace: str | None, name: str, status: Obj) -> Obj:
        if namespace is None:
            return k8s.patch_cluster_status(plural, name, status)
        return k8s.patch_custom_status(plural, namespace, name, status)

    def get_configmap(self, namespace: str, name: str) -> Obj | None:
        return k8s.get_configmap(namespace, name)

    def create_configmap(self, namespace: str, body: Obj) -> Obj | None:
        return k8s.create_configmap(namespace, body)

    def patch_configmap(self, namespace: str, name: str, patch: Obj) -> Obj:
        return k8s.patch_configmap(namespace, name, patch)

    def list_configmaps(self, namespace: str, label_selector: str) -> list[Obj]:
        return k8s.list_configmaps(namespace, label_selector)

    def delete_configmap(self, namespace: str, name: str) -> None:
        k8s.delete_configmap(namespace, name)

    def delete_configmaps(self, namespace: str, label_selector: str) -> None:
        k8s.delete_configmaps(namespace, label_selector)

    def patch_deployment(self, namespace: str, name: str, patch: Obj) -> Obj:
        return k8s.patch_deployment(namespace, name, patch)

    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        return k8s.list_pods(namespace, label_selector)

    def delete_pod(self, namespace: str, name: str, uid: str | None = None) -> bool:
        return k8s.delete_pod(namespace, name, uid)

    def list_pdbs(self, namespace: str) -> list[Obj]:
        return k8s.list_pdbs(namespace)

    def get_secret(self, namespace: str, name: str) -> Obj | None:
        return k8s.get_secret(namespace, name)

    def replace_secret_data(
        self, namespace: str, name: str, data: dict[str, str], resource_version: str | None
    ) -> None:
        k8s.replace_secret_data(namespace, name, data, resource_version)

    def get_certificate(self, namespace: str, name: str) -> Obj | None:
        return k8s.get_other_custom(*_CERT_MANAGER, namespace, name)

    def patch_certificate_status(self, namespace: str, name: str, patch: Obj) -> Obj:
        return k8s.patch_cluster_custom_status(*_CERT_MANAGER, namespace, name, patch)
