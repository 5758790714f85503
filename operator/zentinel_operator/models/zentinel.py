"""``Zentinel``: one proxy deployment under watch."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from pydantic import Field, model_validator

from .. import names
from .common import Condition, CRDInfo, KModel, Meta, ObjectName, cel, validations


class ReloadMode(enum.StrEnum):
    AUTO_RELOAD = "AutoReload"
    ROLLING_RESTART = "RollingRestart"


class IssuerType(enum.StrEnum):
    CERT_MANAGER = "CertManager"
    CA_SECRET = "CASecret"  # noqa: S105 - an issuer kind, not a secret
    SELF_SIGNED = "SelfSigned"
    EXTERNAL = "External"


class MetricsSource(enum.StrEnum):
    SCRAPE = "Scrape"
    PROMETHEUS = "Prometheus"


class WorkloadRef(KModel):
    kind: str = Field(default="Deployment", pattern="^Deployment$", description="Only `Deployment` for now.")
    name: ObjectName = Field(description="Name of the Deployment running Zentinel, in the same namespace.")
    container: str | None = Field(
        default=None, description="Container running Zentinel; default: the Deployment's first container."
    )


class ConfigRef(KModel):
    config_map_name: ObjectName = Field(description="ConfigMap holding Zentinel's KDL configuration.")
    key: str = Field(default="zentinel.kdl", min_length=1, description="Key of the KDL file in the ConfigMap.")
    reload_mode: ReloadMode = Field(
        default=ReloadMode.ROLLING_RESTART,
        description=(
            "How a changed config reaches the process: `AutoReload` (the config sets "
            "`system { auto-reload #true }` and Zentinel polls the file) or `RollingRestart` "
            "(the operator patches a pod-template annotation). The image has no shell, so there is no SIGHUP."
        ),
    )
    verify_live: bool = Field(
        default=True,
        description=(
            "After a config change (rollback, ejection, rate limit, connection limits), confirm from every pod's "
            "`/admin/config` (`spec.admin.configPath`) that the change is the one running, not only that the "
            "ConfigMap was written; not live within `verifyTimeout` fails the step. Turn off only for proxies "
            "without the config route."
        ),
    )


def _issuer_needs(issuer_type: str, field: str) -> dict[str, str]:
    return cel(
        f"self.type != '{issuer_type}' || has(self.{field})",
        f"required when issuer.type is {issuer_type}",
        field_path=f".{field}",
        reason="FieldValueRequired",
    )


class Issuer(KModel):
    # The CRD refuses what _refs_present refuses; the pydantic check stays for parsing and the CLI.
    model_config = KModel.model_config | {
        "json_schema_extra": validations(
            _issuer_needs("CertManager", "certificateName"), _issuer_needs("CASecret", "caSecretName")
        )
    }

    type: IssuerType = Field(
        default=IssuerType.EXTERNAL,
        description=(
            "Who issues the certificate: `CertManager` (a cert-manager Certificate), `CASecret` (the operator "
            "signs with a CA kept in a Secret), `SelfSigned` (development only) or `External` (never rotated "
            "by the operator)."
        ),
    )
    certificate_name: ObjectName | None = Field(
        default=None, description="cert-manager Certificate name (type `CertManager`)."
    )
    ca_secret_name: ObjectName | None = Field(
        default=None,
        description="Secret with `tls.crt` and `tls.key` of the signing CA (type `CASecret`).",
    )

    @model_validator(mode="after")
    def _refs_present(self) -> Issuer:
        if self.type == IssuerType.CERT_MANAGER and not self.certificate_name:
            raise ValueError("issuer.certificateName is required when issuer.type is CertManager")
        if self.type == IssuerType.CA_SECRET and not self.ca_secret_name:
            raise ValueError("issuer.caSecretName is required when issuer.type is CASecret")
        return self


class TLSRef(KModel):
    name: str = Field(min_length=1, max_length=63, description="A name for this certificate, unique in the list.")
    secret_name: ObjectName = Field(description="`kubernetes.io/tls` Secret mounted by the Zentinel pods.")
    ca_secret_name: ObjectName | None = Field(
        default=None,
        description="Secret whose `ca.crt` (or `tls.crt`) the chain must verify against; default: the issuer's CA.",
    )
    issuer: Issuer = Field(default_factory=Issuer, description="How the certificate is (re-)issued.")
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="TLS port of the listener serving this certificate, for a handshake check against each pod.",
    )
    server_name: str | None = Field(default=None, description="SNI to send in the handshake check.")


class AdminEndpoint(KModel):
    """Where each pod answers the operator: Zentinel's admin listener (routes with `builtin-handler`)
    and its metrics server (`observability { metrics { address } }`), which may be separate ports."""

    port: int = Field(
        default=9090, ge=1, le=65535, description="Pod port of the admin listener (upstreams and config routes)."
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Pod port serving Prometheus metrics; default: `port`."
    )
    scheme: str = Field(default="http", pattern="^https?$", description="`http` or `https`.")
    metrics_path: str = Field(default="/metrics", pattern="^/", description="Prometheus exposition path.")
    upstreams_path: str = Field(
        default="/admin/upstreams", pattern="^/", description='Route with `builtin-handler "upstreams"`.'
    )
    config_path: str = Field(
        default="/admin/config", pattern="^/", description='Route with `builtin-handler "config"`.'
    )

    @property
    def effective_metrics_port(self) -> int:
        return self.metrics_port or self.port


class ZentinelSpec(KModel):
    workload: WorkloadRef = Field(description="The workload running Zentinel.")
    config: ConfigRef = Field(description="Where Zentinel's configuration lives and how it is delivered.")
    tls: list[TLSRef] = Field(
        default_factory=list,
        description="TLS certificates the proxy serves; names are unique.",
        # A map keyed by name: the API server refuses a repeated name, and server-side apply merges by name.
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    admin: AdminEndpoint = Field(default_factory=AdminEndpoint, description="Admin port (metrics, upstreams).")
    metrics_source: MetricsSource = Field(
        default=MetricsSource.SCRAPE,
        description="`Scrape` each pod's admin port, or read the same series from `Prometheus` (operator setting).",
    )
    paused: bool = Field(
        default=False, description="Observe and record, but take no remediation action on this Zentinel."
    )

    @model_validator(mode="after")
    def _unique_tls_names(self) -> ZentinelSpec:
        names = [t.name for t in self.tls]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tls[].name must be unique; repeated: {', '.join(dupes)}")
        return self


class SignalSummary(KModel):
    """A one-glance summary of the latest signals."""

    pods: str | None = Field(default=None, description="Ready pods over desired, e.g. `2/3`.")
    error_rate: str | None = Field(default=None, description="5xx share of requests over the last interval.")
    latency_p99: str | None = Field(
        default=None,
        description="p99 request duration over the last interval, as the step of a 1-2-5 ladder at or above it "
        "(e.g. `≤20ms`): it changes when the latency does, not with every scrape.",
    )
    upstreams: str | None = Field(default=None, description="Healthy targets over all targets.")
    certificates: str | None = Field(default=None, description="Soonest expiry among the TLS certificates.")
    config: str | None = Field(default=None, description="Config revision and whether it validates.")
    observed_at: dt.datetime | None = Field(default=None, description="When these signals were gathered.")


class ConfigRevision(KModel):
    revision: str = Field(description="sha256 of the config content (first 16 hex digits).")
    first_seen: dt.datetime = Field(description="When the operator first saw this content in the ConfigMap.")
    snapshot: str | None = Field(default=None, description="ConfigMap holding a copy of this content.")
    proven_good: bool = Field(default=False, description="Every pod ran Ready on it, with no incident, long enough.")
    valid: bool = Field(default=True, description="It parsed and passed structural checks.")
    healthy_since: dt.datetime | None = Field(
        default=None, description="Since when every pod ran Ready on it with no open incident (while current)."
    )
    proven_at: dt.datetime | None = Field(default=None, description="When it was proven good.")


class RemediationLedgerEntry(KModel):
    action: str = Field(description="Action name.")
    at: dt.datetime = Field(description="When it ran.")
    incident: str | None = Field(default=None, description="The incident it served.")
    id: str | None = Field(default=None, description="The remediation record's id.")


class PolicyReason(enum.StrEnum):
    SELECTED = "Selected"  # the only kind of policy selecting the Zentinel, or the winner among its scope
    SHADOWS_CLUSTER_POLICY = "ShadowsClusterPolicy"  # a namespaced policy wins over a matching cluster policy


class GoverningPolicy(KModel):
    """The policy in force for a Zentinel, and why that one (``core.selection.choose_governing``)."""

    kind: str = Field(description="`ZentinelIncidentPolicy` or `ZentinelClusterIncidentPolicy`.")
    name: str = Field(description="The policy's name.")
    namespace: str = Field(default="", description="The policy's namespace; empty for a cluster policy.")
    reason: PolicyReason = Field(
        description="`Selected`, or `ShadowsClusterPolicy`: a namespaced policy wins over a cluster policy."
    )
    message: str = Field(default="", description="Which policies were candidates, in words.")


class ZentinelStatus(KModel):
    observed_generation: int | None = Field(default=None, description="Last generation the operator handled.")
    health: str | None = Field(
        default=None, description="`Healthy`, `Degraded`, `Down` or `Unknown`, from the worst open incident."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description=(
            "`Healthy`, `ConfigValid`, `CertificatesValid`, `UpstreamsHealthy`, `PassDegraded` (a stage of the "
            "last pass failed: which, and why), and `Ready` (for `kubectl wait`, kstatus, Argo CD and Flux): the "
            "operator watches this generation and every stage of the last pass succeeded. False with "
            "`PassDegraded`'s reason (e.g. `GatherFailed`), Unknown until a pass completed for this generation. "
            "It does not follow the proxy's health (that is `Healthy` and `health`)."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    summary: SignalSummary | None = Field(default=None, description="Latest signals at a glance.")
    policy: GoverningPolicy | None = Field(
        default=None, description="The policy governing this Zentinel; absent: none selects it (the defaults)."
    )
    open_incidents: int = Field(default=0, ge=0, description="Number of open incidents for this Zentinel.")
    incidents: list[str] = Field(default_factory=list, description="Names of the open incidents.")
    current_revision: str | None = Field(default=None, description="Revision of the config in the ConfigMap now.")
    last_known_good_revision: str | None = Field(
        default=None, description="Newest revision proven good; the only kind the operator rolls back to."
    )
    revisions: list[ConfigRevision] = Field(
        default_factory=list, description="Bounded history of config revisions, newest last."
    )
    remediations: list[RemediationLedgerEntry] = Field(
        default_factory=list,
        description="Recent remediation actions (budgets and cooldowns survive restarts).",
    )


class Zentinel(KModel, CRDInfo):
    kind: ClassVar[str] = names.KIND_ZENTINEL
    plural: ClassVar[str] = names.ZENTINELS
    singular: ClassVar[str] = names.SINGULAR_ZENTINEL
    short_names: ClassVar[list[str]] = ["zen"]
    description: ClassVar[str] = "A Zentinel reverse-proxy deployment watched by the incident operator."
    printer_columns: ClassVar[list[dict[str, Any]]] = [
        {"name": "Workload", "type": "string", "jsonPath": ".spec.workload.name"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Health", "type": "string", "jsonPath": ".status.health"},
        {
            "name": "Open",
            "type": "integer",
            "jsonPath": ".status.openIncidents",
            "description": "Open incidents",
        },
        {"name": "Pods", "type": "string", "jsonPath": ".status.summary.pods"},
        {
            "name": "Paused",
            "type": "boolean",
            "jsonPath": ".spec.paused",
            "description": "No remediation action while true",
        },
        {"name": "Errors", "type": "string", "jsonPath": ".status.summary.errorRate", "priority": 1},
        {"name": "P99", "type": "string", "jsonPath": ".status.summary.latencyP99", "priority": 1},
        {"name": "Upstreams", "type": "string", "jsonPath": ".status.summary.upstreams", "priority": 1},
        {"name": "Certs", "type": "string", "jsonPath": ".status.summary.certificates", "priority": 1},
        {"name": "Config", "type": "string", "jsonPath": ".status.currentRevision", "priority": 1},
        {
            "name": "Policy",
            "type": "string",
            "jsonPath": ".status.policy.name",
            "description": "The governing policy (status.policy says its kind and why)",
            "priority": 1,
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]

    metadata: Meta = Field(default_factory=Meta)
    spec: ZentinelSpec
    status: ZentinelStatus = Field(default_factory=ZentinelStatus)
