"""An in-memory API server for the shells' unit tests: the operations of ``zentinel_operator.api.Api``.

It keeps objects by kind, namespace and name and behaves as the API does where the shells depend on it:

- a create of a taken name is a 409 (a ConfigMap's create returns None, as ``k8s.create_configmap`` does);
  a custom object's ``status`` is not created with it, and a patch of the object leaves its ``status``
  alone (the status subresource);
- a patch is a JSON merge patch (None deletes a key; lists are replaced);
- a pod delete with a ``uid`` deletes only the pod with that uid;
- a Secret's data replaced with a stale ``resourceVersion`` is a 409 (its data is patched, key by key);
- every write bumps the object's ``resourceVersion``.

``fail(operation, error, name=..., after=...)`` makes an operation raise (for one object, or all; after so
many calls that succeed); ``calls`` lists each operation with the name it was called for, in order, and
``patches`` each patch that was applied. The fake keeps no policies or silences: their status patches
(``StatusApi``) are recorded in ``status_patches`` as (plural, namespace, name, status).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import itertools
import json
from typing import Any

from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]
_PLURALS = {
    "incident": "zentinelincidents",
    "configmap": "configmaps",
    "deployment": "deployments",
    "pod": "pods",
    "pdb": "poddisruptionbudgets",
    "secret": "secrets",
    "certificate": "certificates",
    "zentinel": "zentinels",
}


def api_error(status: int, reason: str, plural: str = "", name: str = "") -> ApiException:
    """An error as the API server sends it (a Status body ``k8s.describe_error`` reads)."""
    body = {"kind": "Status", "reason": reason, "code": status, "details": {"kind": plural, "name": name}}
    return ApiException(status=status, reason=reason, body=json.dumps(body))


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386: ``patch`` merged into ``target`` (a copy)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def _selects(selector: str | None, labels: dict[str, str]) -> bool:
    for term in (selector or "").split(","):
        if not term:
            continue
        key, sep, value = term.partition("=")
        assert sep and "!" not in key, f"the fake takes equality selectors only, not {term!r}"
        if labels.get(key) != value:
            return False
    return True


@dataclasses.dataclass
class Event:
    kind: str
    name: str
    reason: str
    message: str
    type: str


class FakeApi:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.events: list[Event] = []
        self.calls: list[tuple[str, str]] = []
        self.patches: list[tuple[str, str, Obj]] = []  # (operation, name, patch) of each patch applied
        self.status_patches: list[tuple[str, str | None, str, Obj]] = []
        self._failures: dict[tuple[str, str | None], tuple[Exception, list[int]]] = {}
        self._versions = itertools.count(1)

    # ------------------------------------------------------------------ the test's side
    def put(self, kind: str, obj: Obj) -> Obj:
        """Store ``obj`` as it is (status included), as if it had been created before the test."""
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "shop")
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[(kind, meta["namespace"], meta["name"])] = obj
        return obj

    def get(self, kind: str, name: str, namespace: str = "shop") -> Obj | None:
        return self.objects.get((kind, namespace, name))

    def names(self, kind: str, namespace: str = "shop") -> list[str]:
        return sorted(n for k, ns, n in self.objects if k == kind and ns == namespace)

    def fail(self, operation: str, error: Exception, *, name: str | None = None, after: int = 0) -> None:
        """``operation`` raises ``error`` from now on (only for the object ``name``, when given), once ``after``
        more calls of it have succeeded."""
        self._failures[(operation, name)] = (error, [after])

    def heal(self) -> None:
        self._failures.clear()

    def called(self, operation: str) -> list[str]:
        """The names ``operation`` was called for, in order."""
        return [name for op, name in self.calls if op == operation]

    # ------------------------------------------------------------------ the machinery
    def _call(self, operation: str, name: str) -> None:
        self.calls.append((operation, name))
        failure = self._failures.get((operation, name)) or self._failures.get((operation, None))
        if failure is None:
            return
        error, left = failure
        if left[0] > 0:
            left[0] -= 1
            return
        raise error

    def _read(self, kind: str, namespace: str, name: str) -> Obj | None:
        obj = self.objects.get((kind, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def _list(self, kind: str, namespace: str, selector: str | None = None) -> list[Obj]:
        return [
            copy.deepcopy(obj)
            for (k, ns, _), obj in sorted(self.objects.items())
            if k == kind and ns == namespace and _selects(selector, obj["metadata"].get("labels") or {})
        ]

    def _create(self, kind: str, namespace: str, body: Obj, *, status: bool = True) -> Obj:
        name = body["metadata"]["name"]
        if (kind, namespace, name) in self.objects:
            raise api_error(409, "AlreadyExists", _PLURALS[kind], name)
        obj = copy.deepcopy(body)
        if not status:
            obj.pop("status", None)
        obj["metadata"] = {**obj["metadata"], "namespace": namespace}
        self.put(kind, obj)
        return copy.deepcopy(obj)

    def _patch(self, kind: str, namespace: str, name: str, patch: Obj, *, keep_status: bool = False) -> Obj:
        obj = self.objects.get((kind, namespace, name))
        if obj is None:
            raise api_error(404, "NotFound", _PLURALS[kind], name)
        self.patches.append((self.calls[-1][0], name, copy.deepcopy(patch)))
        if keep_status:
            patch = {k: v for k, v in patch.items() if k != "status"}
        merged = merge(obj, patch)
        merged["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[(kind, namespace, name)] = merged
        return copy.deepcopy(merged)

    # ------------------------------------------------------------------ IncidentApi
    def list_incidents(self, namespace: str, label_selector: str | None = None) -> list[Obj]:
        self._call("list_incidents", "")
        return self._list("incident", namespace, label_selector)

    def get_incident(self, namespace: str, name: str) -> Obj | None:
        self._call("get_incident", name)
        return self._read("incident", namespace, name)

    def create_incident(self, namespace: str, body: Obj) -> Obj:
        self._call("create_incident", body["metadata"]["name"])
        return self._create("incident", namespace, body, status=False)

    def patch_incident(self, namespace: str, name: str, patch: Obj) -> Obj:
        self._call("patch_incident", name)
        return self._patch("incident", namespace, name, patch, keep_status=True)

    def patch_incident_status(self, namespace: str, name: str, status: Obj) -> Obj:
        self._call("patch_incident_status", name)
        return self._patch("incident", namespace, name, {"status": status})

    def post_event(self, involved: Obj, *, reason: str, message: str, type_: str, now: dt.datetime) -> None:
        self._call("post_event", involved["metadata"]["name"])
        self.events.append(Event(involved["kind"], involved["metadata"]["name"], reason, message, type_))

    # ------------------------------------------------------------------ ZentinelApi
    def get_zentinel(self, namespace: str, name: str) -> Obj | None:
        self._call("get_zentinel", name)
        return self._read("zentinel", namespace, name)

    def patch_zentinel_status(self, namespace: str, name: str, status: Obj) -> Obj:
        self._call("patch_zentinel_status", name)
        return self._patch("zentinel", namespace, name, {"status": status})

    # ------------------------------------------------------------------ StatusApi
    def patch_status(self, plural: str, namespace: str | None, name: str, status: Obj) -> Obj:
        self._call("patch_status", name)
        self.status_patches.append((plural, namespace, name, copy.deepcopy(status)))
        return {"status": copy.deepcopy(status)}

    # ------------------------------------------------------------------ ActionApi
    def get_configmap(self, namespace: str, name: str) -> Obj | None:
        self._call("get_configmap", name)
        return self._read("configmap", namespace, name)

    def create_configmap(self, namespace: str, body: Obj) -> Obj | None:
        self._call("create_configmap", body["metadata"]["name"])
        try:
            return self._create("configmap", namespace, body)
        except ApiException as e:
            if e.status == 409:
                return None
            raise

    def patch_configmap(self, namespace: str, name: str, patch: Obj) -> Obj:
        self._call("patch_configmap", name)
        return self._patch("configmap", namespace, name, patch)

    # ------------------------------------------------------------------ EvidenceApi (with the ConfigMap calls above)
    def list_configmaps(self, namespace: str, label_selector: str) -> list[Obj]:
        self._call("list_configmaps", "")
        return self._list("configmap", namespace, label_selector)

    def delete_configmap(self, namespace: str, name: str) -> None:
        self._call("delete_configmap", name)
        self.objects.pop(("configmap", namespace, name), None)

    def delete_configmaps(self, namespace: str, label_selector: str) -> None:
        self._call("delete_configmaps", "")
        for cm in self._list("configmap", namespace, label_selector):
            self.objects.pop(("configmap", namespace, cm["metadata"]["name"]), None)

    # ------------------------------------------------------------------ ActionApi (the workload)
    def patch_deployment(self, namespace: str, name: str, patch: Obj) -> Obj:
        self._call("patch_deployment", name)
        return self._patch("deployment", namespace, name, patch)

    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        self._call("list_pods", "")
        return self._list("pod", namespace, label_selector)

    def delete_pod(self, namespace: str, name: str, uid: str | None = None) -> bool:
        self._call("delete_pod", name)
        pod = self.objects.get(("pod", namespace, name))
        if pod is None or (uid is not None and pod["metadata"].get("uid") != uid):
            return False
        del self.objects[("pod", namespace, name)]
        return True

    def list_pdbs(self, namespace: str) -> list[Obj]:
        self._call("list_pdbs", "")
        return self._list("pdb", namespace)

    def get_secret(self, namespace: str, name: str) -> Obj | None:
        self._call("get_secret", name)
        return self._read("secret", namespace, name)

    def replace_secret_data(
        self, namespace: str, name: str, data: dict[str, str], resource_version: str | None
    ) -> None:
        self._call("replace_secret_data", name)
        current = self.objects.get(("secret", namespace, name))
        if current is not None and resource_version and current["metadata"]["resourceVersion"] != resource_version:
            raise api_error(409, "Conflict", "secrets", name)
        self._patch("secret", namespace, name, {"data": dict(data)})  # a patch, as k8s.replace_secret_data sends

    def get_certificate(self, namespace: str, name: str) -> Obj | None:
        self._call("get_certificate", name)
        return self._read("certificate", namespace, name)

    def patch_certificate_status(self, namespace: str, name: str, patch: Obj) -> Obj:
        self._call("patch_certificate_status", name)
        return self._patch("certificate", namespace, name, patch)
