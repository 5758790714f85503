"""kopf's login, so kopf's own requests name the operator as ours do.

kopf sends its watches, its finalizer and progress patches, its Events and the webhook configuration
it manages over a session of its own, as ``kopf/<version>`` unless that session already carries a
User-Agent. kopf has no setting for a field manager either; the API server files a write that names
none under the user agent's part before the first ``/``. So the login hands kopf a connection whose
headers carry :data:`k8s.USER_AGENT`: kopf's requests say ``zentinel-incident-operator/<version>``
and its writes land under the field manager ``zentinel-incident-operator`` in managedFields.

The credentials themselves are kopf's own ``login_via_client`` (in-cluster, else the kubeconfig),
the login kopf runs when none is registered.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import kopf

from . import k8s


@dataclasses.dataclass(frozen=True, kw_only=True)
class IdentifiedConnection(kopf.ConnectionInfo):
    """kopf's connection info, with the operator's user agent on every request."""

    user_agent: str = k8s.USER_AGENT

    def as_http_headers(self) -> dict[str, str]:
        return {**super().as_http_headers(), "User-Agent": self.user_agent}


def identified(info: kopf.ConnectionInfo | None) -> IdentifiedConnection | None:
    if info is None:
        return None
    fields = {f.name: getattr(info, f.name) for f in dataclasses.fields(kopf.ConnectionInfo)}
    return IdentifiedConnection(**fields)


def login(**kwargs: Any) -> IdentifiedConnection | None:
    """kopf's default login (the official client's configuration), identified."""
    return identified(kopf.login_via_client(**kwargs))
