"""Every name the operator shares with the API server: its API group and version, the plurals and kinds
of its resources, and the labels and annotations it sets or reads. Pure constants, importable from
every layer (the core included); declared here once and nowhere else."""

from __future__ import annotations

# ---------------------------------------------------------------------------- API group and resources
GROUP = "zentinel.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

KIND_ZENTINEL = "Zentinel"
KIND_INCIDENT = "ZentinelIncident"
KIND_POLICY = "ZentinelIncidentPolicy"
KIND_CLUSTER_POLICY = "ZentinelClusterIncidentPolicy"  # cluster-scoped
KIND_SILENCE = "ZentinelSilence"

ZENTINELS = "zentinels"
INCIDENTS = "zentinelincidents"
POLICIES = "zentinelincidentpolicies"
CLUSTER_POLICIES = "zentinelclusterincidentpolicies"
SILENCES = "zentinelsilences"

SINGULAR_ZENTINEL = "zentinel"
SINGULAR_INCIDENT = "zentinelincident"
SINGULAR_POLICY = "zentinelincidentpolicy"
SINGULAR_CLUSTER_POLICY = "zentinelclusterincidentpolicy"
SINGULAR_SILENCE = "zentinelsilence"

KIND_BY_PLURAL = {
    ZENTINELS: KIND_ZENTINEL,
    INCIDENTS: KIND_INCIDENT,
    POLICIES: KIND_POLICY,
    CLUSTER_POLICIES: KIND_CLUSTER_POLICY,
    SILENCES: KIND_SILENCE,
}

# The component named on the Events the operator posts.
REPORTING_COMPONENT = f"{GROUP}/incident-operator"

# ---------------------------------------------------------------------------- labels
LABEL_ZENTINEL = f"{GROUP}/zentinel"  # on incidents and evidence: the Zentinel concerned
LABEL_CATEGORY = f"{GROUP}/category"  # on incidents
LABEL_FINGERPRINT = f"{GROUP}/fingerprint"  # on incidents: what makes two findings the same incident
LABEL_INCIDENT = f"{GROUP}/incident"  # on evidence ConfigMaps
LABEL_PHASE = f"{GROUP}/evidence-phase"  # on evidence ConfigMaps: detection or resolution
LABEL_ARTIFACT = f"{GROUP}/artifact"  # on evidence ConfigMaps: "evidence" or "postmortem"
LABEL_REVISION = f"{GROUP}/revision"  # on config revision snapshots

# ---------------------------------------------------------------------------- annotations
# On the ConfigMap: the config revision the operator wrote itself. The operator recognises its own
# config writes by this annotation matching the revision it reads.
ANN_WRITTEN_BY_OPERATOR = f"{GROUP}/written-by-operator"
ANN_CONFIG_REVISION = f"{GROUP}/config-revision"  # pod template: the revision pods were rolled for
ANN_RESTART = f"{GROUP}/restarted-for"  # pod template: the remediation record that rolled the pods
ANN_TLS = f"{GROUP}/tls-fingerprint"  # pod template: certificate fingerprints pods were rolled for
ANN_ACKNOWLEDGED_BY = f"{GROUP}/acknowledged-by"  # on incidents
ANN_RESOLVED_BY = f"{GROUP}/resolved-by"  # on incidents
ANN_RESOLUTION_NOTE = f"{GROUP}/resolution-note"  # on incidents
ANN_APPROVED_BY = f"{GROUP}/approved-by"  # on incidents: approves the pending remediation
ANN_CHUNK = f"{GROUP}/evidence-chunk"  # on evidence ConfigMaps: "<index>/<count>", e.g. "0/3"
ANN_COLLECTED_AT = f"{GROUP}/collected-at"  # on evidence ConfigMaps
ANN_POSTMORTEM_INPUTS = f"{GROUP}/postmortem-inputs"  # digest of the incident record the draft was made from
ANN_POSTMORTEM_SHA256 = f"{GROUP}/postmortem-sha256"  # sha256 of postmortem.md as the operator wrote it
