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


# ------------------------------------------------------------------ kopf's own session
def test_kopf_logs_in_through_the_operators_identified_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf's credentials are its own default login's; the connection adds the user agent."""
    import kopf

    from zentinel_operator import login, registration

    plain = kopf.ConnectionInfo(server="https://127.0.0.1:6443", scheme="Bearer", token="t0k", ca_path="/ca.crt")
    seen: list[dict[str, Any]] = []

    def default_login(**kwargs: Any) -> kopf.ConnectionInfo:
        seen.append(kwargs)
        return plain

    monkeypatch.setattr(kopf, "login_via_client", default_login)
    info = registration.kopf_login(logger=None, settings=None)
    assert seen == [{"logger": None, "settings": None}]
    assert isinstance(info, login.IdentifiedConnection)
    assert (info.server, info.token, info.ca_path) == (plain.server, plain.token, plain.ca_path)
    assert info.as_http_headers() == {"Authorization": "Bearer t0k", "User-Agent": k8s.USER_AGENT}
    monkeypatch.setattr(kopf, "login_via_client", lambda **_: None)
    assert registration.kopf_login() is None


def test_the_login_handler_is_registered_with_kopf() -> None:
    import kopf
    from kopf._core.intents.causes import Activity

    from zentinel_operator import registration

    handlers = kopf.get_default_registry()._activities.get_handlers(activity=Activity.AUTHENTICATION)
    assert [h.fn for h in handlers] == [registration.kopf_login]  # kopf's fallbacks are then not used


async def test_kopfs_session_sends_the_operators_user_agent() -> None:
    """The header reaches kopf's aiohttp session, which sends every watch, patch and Event kopf makes."""
    from kopf._cogs.clients.auth import APIContext

    from zentinel_operator import login

    info = login.identified(kopf_info())
    assert info is not None
    context = APIContext(info)
    try:
        assert context.session.headers["User-Agent"] == k8s.USER_AGENT
        assert context.session.headers["Authorization"] == "Bearer t0k"
    finally:
        await context.close()


def kopf_info() -> Any:
    import kopf

    return kopf.ConnectionInfo(server="https://127.0.0.1:6443", token="t0k")


def test_every_api_object_in_the_package_is_built_on_the_shared_client() -> None:
    """An API object built without ``k8s.api_client()`` would send the client library's own user agent."""
    from pathlib import Path

    package = Path(k8s.__file__).parent
    bare = [
        f"{path.relative_to(package)}: {match}"
        for path in sorted(package.rglob("*.py"))
        for match in re.findall(r"kubernetes\.client\.\w+Api\(\)", path.read_text())
    ]
    assert not bare, f"API objects on a client of their own: {bare}"
