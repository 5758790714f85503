"""The operator names itself on every write (field manager) and every request (user agent)."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from zentinel_operator import k8s
from zentinel_operator.notify import receivers


def test_user_agent_carries_the_package_version() -> None:
    from importlib.metadata import version

    assert f"zentinel-incident-operator/{version('zentinel-incident-operator')}" == k8s.USER_AGENT
    assert receivers.USER_AGENT == k8s.USER_AGENT


def test_the_shared_client_sends_the_user_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(k8s, "_configured", True)  # no kubeconfig needed to build the client
    k8s.api_client.cache_clear()
    k8s.core.cache_clear()
    k8s.custom.cache_clear()
    try:
        client = k8s.api_client()
        assert client.default_headers["User-Agent"] == k8s.USER_AGENT
        assert k8s.core().api_client is client
        assert k8s.custom().api_client is client
    finally:
        k8s.api_client.cache_clear()
        k8s.core.cache_clear()
        k8s.custom.cache_clear()


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(*_args: Any, **kwargs: Any) -> dict[str, Any]:
            self.calls.append((name, kwargs))
            return {}

        return call


def test_every_write_passes_the_field_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = _Recorder()
    for api in ("core", "apps", "custom", "policy_api"):
        monkeypatch.setattr(k8s, api, lambda rec=rec: rec)
    involved = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}}
    k8s.create_custom("zentinelincidents", "ns", {})
    k8s.patch_custom("zentinelincidents", "ns", "n", {})
    k8s.patch_custom_status("zentinelincidents", "ns", "n", {})
    k8s.post_event(involved, reason="R", message="m")
    k8s.create_configmap("ns", {})
    k8s.patch_configmap("ns", "n", {})
    k8s.patch_deployment("ns", "n", {})
    k8s.replace_secret_data("ns", "n", {}, None)
    k8s.patch_cluster_custom_status("g", "v1", "p", "ns", "n", {})
    writes = [(name, kw) for name, kw in rec.calls if re.match(r"(create|patch|replace)_", name)]
    assert len(writes) == 9
    assert all(kw.get("field_manager") == "zentinel-incident-operator" for _, kw in writes), writes


def test_no_write_in_k8s_forgets_the_field_manager() -> None:
    source = inspect.getsource(k8s)
    calls = re.findall(r"\.((?:create|patch|replace)_namespaced_\w+)\(([^)]*)\)", source, re.S)
    assert calls
    missing = [name for name, args in calls if "field_manager=FIELD_MANAGER" not in args]
    assert not missing, f"writes without a field manager: {missing}"
