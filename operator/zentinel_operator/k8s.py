"""Thin, synchronous wrappers over the official Kubernetes client.

Call these from sync kopf handlers (kopf runs them in a thread pool) or via ``asyncio.to_thread``;
never straight from an async handler. Secret values returned here are handed to the code that
needs them and are never logged.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from . import names
from .names import GROUP, VERSION

FIELD_MANAGER = "zentinel-incident-operator"  # every write names the operator in managedFields


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("zentinel-incident-operator")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0"


USER_AGENT = f"{FIELD_MANAGER}/{_version()}"  # what the API server sees on every request

_configured = False


def configure(config_file: str | None = None, context: str | None = None) -> None:
    """Load in-cluster credentials, or the kubeconfig (``KUBECONFIG``) outside a cluster.

    An explicit ``config_file`` or ``context`` (the CLI's ``--kubeconfig``/``--context``) wins.
    """
    global _configured  # noqa: PLW0603 - process-wide client configuration, set once at start-up
    if config_file or context:
        kubernetes.config.load_kube_config(config_file=config_file, context=context)
        _configured = True
        return
    if _configured:
        return
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    _configured = True


@functools.cache
def api_client() -> Any:
    """The one client every API object shares, sending :data:`USER_AGENT`."""
    configure()
    client = kubernetes.client.ApiClient()
    client.user_agent = USER_AGENT
    return client


@functools.cache
def core() -> Any:
    return kubernetes.client.CoreV1Api(api_client())


@functools.cache
def apps() -> Any:
    return kubernetes.client.AppsV1Api(api_client())


@functools.cache
def custom() -> Any:
    return kubernetes.client.CustomObjectsApi(api_client())


@functools.cache
def policy_api() -> Any:
    return kubernetes.client.PolicyV1Api(api_client())


def to_dict(obj: Any) -> dict[str, Any]:
    """A client model as the camelCase dict the API speaks."""
    if isinstance(obj, dict):
        return obj
    result: dict[str, Any] = kubernetes.client.ApiClient().sanitize_for_serialization(obj)
    return result


def is_not_found(e: Exception) -> bool:
    return isinstance(e, ApiException) and e.status == 404


def is_conflict(e: Exception) -> bool:
    return isinstance(e, ApiException) and e.status == 409


# Resource plurals as the API's Status details name them -> kinds, for messages a person reads.
_KINDS = {
    "deployments": "Deployment",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    "pods": "Pod",
    "events": "Event",
    "poddisruptionbudgets": "PodDisruptionBudget",
    "certificates": "Certificate",
    **names.KIND_BY_PLURAL,
}
_STATUS_WORDS = {
    "NotFound": "not found",
    "AlreadyExists": "already exists",
    "Conflict": "was changed concurrently (conflict)",
    "Invalid": "is invalid",
    "Forbidden": "forbidden",
    "Unauthorized": "unauthorized",
    "Gone": "gone",
    "TooManyRequests": "throttled",
    "Timeout": "timed out",
    "ServerTimeout": "timed out",
    "InternalError": "internal error",
    "ServiceUnavailable": "unavailable",
}


def describe_error(e: BaseException) -> str:
    """One line for a record, an event or a log: e.g. ``Deployment edge not found (404)``.

    Built from the API's Status (kind, name, reason, code, the names of invalid fields), never from its
    message text, which can quote submitted values: nothing a request carried ends up here.
    """
    if not isinstance(e, ApiException):
        return type(e).__name__
    try:
        parsed = json.loads(e.body) if e.body else {}
    except (TypeError, ValueError):
        parsed = {}
    body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    details: dict[str, Any] = body["details"] if isinstance(body.get("details"), dict) else {}
    kind = _KINDS.get(str(details.get("kind") or ""), str(details.get("kind") or "")) or "API request"
    name = str(details.get("name") or "")
    reason = str(body.get("reason") or "")
    words = _STATUS_WORDS.get(reason) or (reason or str(e.reason or "failed")).lower()
    text = f"{kind} {name} {words}" if name else f"{kind} {words}"
    fields = [str(c["field"]) for c in details.get("causes") or [] if isinstance(c, dict) and c.get("field")]
    if fields:
        text += ": " + ", ".join(dict.fromkeys(fields))[:300]
    return f"{text} ({e.status})" if e.status else text


# ------------------------------------------------------------------ custom objects
def get_custom(plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = custom().get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    return result


def list_custom(plural: str, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
    kwargs = {"label_selector": label_selector} if label_selector else {}
    result = custom().list_namespaced_custom_object(GROUP, VERSION, namespace, plural, **kwargs)
    items: list[dict[str, Any]] = result.get("items", [])
    return items


def list_custom_all(plural: str) -> list[dict[str, Any]]:
    """Every object of ``plural`` in every namespace."""
    result = custom().list_cluster_custom_object(GROUP, VERSION, plural)
    items: list[dict[str, Any]] = result.get("items", [])
    return items


def list_custom_versioned(plural: str, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
    """The objects of ``plural`` in ``namespace`` (``None``: every namespace) and the list's
    resourceVersion, to start a watch from (:func:`watch_custom`)."""
    if namespace is None:
        result = custom().list_cluster_custom_object(GROUP, VERSION, plural)
    else:
        result = custom().list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
    items: list[dict[str, Any]] = result.get("items", [])
    return items, str((result.get("metadata") or {}).get("resourceVersion") or "")


def watch_custom(
    plural: str, namespace: str | None, *, resource_version: str, timeout_seconds: int | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(ADDED|MODIFIED|DELETED, object)`` for each change after ``resource_version``. With
    ``timeout_seconds`` the API server ends the watch then; without, it is resumed until interrupted."""
    args: tuple[str, ...]
    if namespace is None:
        func, args = custom().list_cluster_custom_object, (GROUP, VERSION, plural)
    else:
        func, args = custom().list_namespaced_custom_object, (GROUP, VERSION, namespace, plural)
    kwargs: dict[str, Any] = {"resource_version": resource_version}
    if timeout_seconds is not None:
        kwargs["timeout_seconds"] = timeout_seconds
    for event in kubernetes.watch.Watch().stream(func, *args, **kwargs):
        yield str(event["type"]), event["object"]


def impersonate(user: str | None, groups: Sequence[str] = ()) -> None:
    """Send ``Impersonate-User`` (and ``Impersonate-Group``) on every request of :func:`api_client`,
    as ``kubectl --as/--as-group`` does. The official client keeps one value per header name, so
    one group at most."""
    if not user:
        if groups:
            raise ValueError("--as-group needs --as (the API server impersonates groups of a user)")
        return
    if len(groups) > 1:
        raise ValueError("one --as-group at most: the Kubernetes Python client sends one value per header")
    client = api_client()
    client.set_default_header("Impersonate-User", user)
    for group in groups:
        client.set_default_header("Impersonate-Group", group)


def create_custom(plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = custom().create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, body, field_manager=FIELD_MANAGER
    )
    return result


def patch_custom(plural: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = custom().patch_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, name, patch, field_manager=FIELD_MANAGER
    )
    return result


def patch_custom_status(plural: str, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
    """Merge-patch ``.status`` through the status subresource."""
    result: dict[str, Any] = custom().patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, plural, name, {"status": status}, field_manager=FIELD_MANAGER
    )
    return result


class Updated(enum.StrEnum):
    """What :func:`update_custom` did."""

    GONE = "gone"  # no such object (or deleted meanwhile)
    UNCHANGED = "unchanged"  # ``change`` asked for no write
    PATCHED = "patched"


def update_custom(
    plural: str,
    namespace: str,
    name: str,
    change: Callable[[dict[str, Any]], dict[str, Any] | None],
    *,
    status: bool = False,
    attempts: int = 5,
) -> Updated:
    """Read, change, write, with optimistic concurrency: ``change`` is given the object as read and returns
    the merge patch to send (``{"status": ...}`` with ``status=True``, through the status subresource; None:
    nothing to write). The patch carries the ``resourceVersion`` it was decided on, so a concurrent write
    makes the API answer 409, and the object is read and changed again, at most ``attempts`` times."""
    for _ in range(attempts):
        obj = get_custom(plural, namespace, name)
        if obj is None:
            return Updated.GONE
        patch = change(obj)
        if patch is None:
            return Updated.UNCHANGED
        meta = {**(patch.get("metadata") or {}), "resourceVersion": obj["metadata"]["resourceVersion"]}
        body = {**patch, "metadata": meta}
        try:
            if status:
                custom().patch_namespaced_custom_object_status(
                    GROUP,
                    VERSION,
                    namespace,
                    plural,
                    name,
                    body,
                    field_manager=FIELD_MANAGER,
                    _content_type="application/merge-patch+json",
                )
            else:
                patch_custom(plural, namespace, name, body)
        except ApiException as e:
            if e.status == 409:
                continue
            if e.status == 404:
                return Updated.GONE
            raise
        return Updated.PATCHED
    raise RuntimeError(f"{plural} {namespace}/{name}: still conflicting after {attempts} attempts")


def patch_cluster_custom(plural: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    """Merge-patch a cluster-scoped object."""
    result: dict[str, Any] = custom().patch_cluster_custom_object(
        GROUP, VERSION, plural, name, patch, field_manager=FIELD_MANAGER
    )
    return result


def patch_cluster_status(plural: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
    """Merge-patch ``.status`` of a cluster-scoped object through the status subresource."""
    result: dict[str, Any] = custom().patch_cluster_custom_object_status(
        GROUP, VERSION, plural, name, {"status": status}, field_manager=FIELD_MANAGER
    )
    return result


# ------------------------------------------------------------------------ workloads
def get_deployment(namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return to_dict(apps().read_namespaced_deployment(name, namespace))
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def list_pods(namespace: str, label_selector: str) -> list[dict[str, Any]]:
    pods = core().list_namespaced_pod(namespace, label_selector=label_selector)
    return [to_dict(p) for p in pods.items]


def get_configmap(namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return to_dict(core().read_namespaced_config_map(name, namespace))
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def get_secret(namespace: str, name: str) -> dict[str, Any] | None:
    """The Secret, base64 data included. Callers must never log or store its values."""
    try:
        return to_dict(core().read_namespaced_secret(name, namespace))
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def pod_log(namespace: str, pod: str, container: str | None, *, previous: bool, tail_lines: int) -> str | None:
    try:
        text: str = core().read_namespaced_pod_log(
            pod, namespace, container=container, previous=previous, tail_lines=tail_lines, timestamps=True
        )
    except ApiException as e:
        if e.status in (400, 404):
            return None
        raise
    return text


def label_selector_string(selector: dict[str, Any]) -> str:
    """``matchLabels``/``matchExpressions`` as the query-string form the API takes."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


# --------------------------------------------------------------------------- events
def post_event(
    involved: dict[str, Any],
    *,
    reason: str,
    message: str,
    type_: str = "Normal",
    now: dt.datetime | None = None,
) -> None:
    """A core/v1 Event on ``involved`` (a full object with apiVersion, kind and metadata)."""
    meta = involved["metadata"]
    now = now or dt.datetime.now(dt.UTC)
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "reason": reason,
        "message": message[:1024],
        "type": type_,
        "source": {"component": "zentinel-incident-operator"},
        "reportingComponent": names.REPORTING_COMPONENT,
        "reportingInstance": "zentinel-incident-operator",
        "firstTimestamp": now.isoformat(),
        "lastTimestamp": now.isoformat(),
        "count": 1,
    }
    core().create_namespaced_event(meta["namespace"], event, field_manager=FIELD_MANAGER)


# ------------------------------------------------------------------------- writes
def create_configmap(namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """Create; None when it already exists (create-or-409)."""
    try:
        return to_dict(core().create_namespaced_config_map(namespace, body, field_manager=FIELD_MANAGER))
    except ApiException as e:
        if e.status == 409:
            return None
        raise


def patch_configmap(namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    return to_dict(core().patch_namespaced_config_map(name, namespace, patch, field_manager=FIELD_MANAGER))


def delete_configmap(namespace: str, name: str) -> None:
    try:
        core().delete_namespaced_config_map(name, namespace)
    except ApiException as e:
        if e.status != 404:
            raise


def list_configmaps(namespace: str, label_selector: str) -> list[dict[str, Any]]:
    return [to_dict(c) for c in core().list_namespaced_config_map(namespace, label_selector=label_selector).items]


def delete_configmaps(namespace: str, label_selector: str) -> None:
    """Delete every ConfigMap matching ``label_selector`` (nothing when none match)."""
    try:
        core().delete_collection_namespaced_config_map(namespace, label_selector=label_selector)
    except ApiException as e:
        if e.status != 404:
            raise


def patch_deployment(namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    return to_dict(apps().patch_namespaced_deployment(name, namespace, patch, field_manager=FIELD_MANAGER))


def delete_pod(namespace: str, name: str, uid: str | None = None) -> bool:
    """Delete the pod (only the one with ``uid`` when given); False when it is already gone."""
    body = {"preconditions": {"uid": uid}} if uid else None
    try:
        core().delete_namespaced_pod(name, namespace, body=body)
    except ApiException as e:
        if e.status in (404, 409):
            return False
        raise
    return True


def replace_secret_data(namespace: str, name: str, data: dict[str, str], resource_version: str | None) -> None:
    """Write a Secret's data, refusing if someone changed it since ``resource_version`` was read."""
    patch: dict[str, Any] = {"data": data}
    if resource_version:
        patch["metadata"] = {"resourceVersion": resource_version}
    core().patch_namespaced_secret(name, namespace, patch, field_manager=FIELD_MANAGER)


def list_pdbs(namespace: str) -> list[dict[str, Any]]:
    return [to_dict(p) for p in policy_api().list_namespaced_pod_disruption_budget(namespace).items]


def patch_cluster_custom_status(
    group: str, version: str, plural: str, namespace: str, name: str, patch: dict[str, Any]
) -> dict[str, Any]:
    result: dict[str, Any] = custom().patch_namespaced_custom_object_status(
        group, version, namespace, plural, name, patch, field_manager=FIELD_MANAGER
    )
    return result


def get_other_custom(group: str, version: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = custom().get_namespaced_custom_object(group, version, namespace, plural, name)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    return result
