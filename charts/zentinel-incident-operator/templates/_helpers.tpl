{{/* Names ------------------------------------------------------------------------------- */}}

{{- define "zio.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "zio.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "zio.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "zio.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "zio.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "zio.webhookServiceName" -}}
{{- printf "%s-webhook" (include "zio.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "zio.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "zio.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "zio.metricsServiceName" -}}
{{- printf "%s-metrics" (include "zio.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "zio.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Labels ------------------------------------------------------------------------------ */}}

{{- define "zio.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zio.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "zio.labels" -}}
helm.sh/chart: {{ include "zio.chart" . }}
{{ include "zio.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: zentinel-incident-operator
{{- end -}}

{{/* Modes ------------------------------------------------------------------------------- */}}

{{/* "true" when the operator watches only .Values.watchNamespaces (Roles), "" when cluster-wide. */}}
{{- define "zio.namespaced" -}}
{{- if .Values.watchNamespaces -}}true{{- end -}}
{{- end -}}

{{/* "true" when the webhook is on and the chart owns its configuration and certificate. */}}
{{- define "zio.webhookByChart" -}}
{{- if and .Values.webhook.enabled (eq .Values.webhook.managedBy "chart") -}}true{{- end -}}
{{- end -}}

{{/* "true" when the webhook is on and the operator creates its own configuration. */}}
{{- define "zio.webhookByOperator" -}}
{{- if and .Values.webhook.enabled (eq .Values.webhook.managedBy "operator") -}}true{{- end -}}
{{- end -}}

{{/*
RBAC rules. Two parts, kept apart so that each permission can be traced to a reason:

  framework    what kopf itself needs to run at all, whatever the handlers do;
  application  what the operator's handlers read and write (zentinel_operator.k8s and handlers/).

Each part is split again into what is cluster-scoped (always a ClusterRole) and what is
namespaced (a ClusterRole when watching every namespace, a Role per watched namespace otherwise).
*/}}

{{/* Framework, cluster-scoped. */}}
{{- define "zio.rules.framework.cluster" -}}
# Framework: kopf observes CRDs at run time (resources appearing, disappearing, changing versions).
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
# Framework: kopf watches the cluster-scoped kind and keeps its progress, diff base and finalizer
# in annotations and metadata of the objects themselves (never in status).
- apiGroups: [zentinel.io]
  resources: [zentinelclusterincidentpolicies]
  verbs: [list, watch, patch]
{{- if include "zio.namespaced" . }}
# Framework: with a list of namespaces, kopf observes namespaces to start and stop watching them
# as they are created and deleted (cluster-wide, it watches all of them at once instead).
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
{{- if include "zio.webhookByOperator" . }}
# Framework: the operator manages its own admission webhook configuration (webhook.managedBy
# operator): kopf creates it if absent (create cannot be limited by name) and patches it.
- apiGroups: [admissionregistration.k8s.io]
  resources: [validatingwebhookconfigurations]
  verbs: [create]
- apiGroups: [admissionregistration.k8s.io]
  resources: [validatingwebhookconfigurations]
  resourceNames: [validating.zentinel.io]
  verbs: [patch]
{{- end }}
{{- end -}}

{{/* Application, cluster-scoped (always a ClusterRole). */}}
{{- define "zio.rules.application.cluster" -}}
# Application: cluster policies (ZentinelClusterIncidentPolicy, cluster-scoped) are read, never
# changed; their status says which Zentinels they govern and whether they are accepted.
- apiGroups: [zentinel.io]
  resources: [zentinelclusterincidentpolicies]
  verbs: [get, list, watch]
- apiGroups: [zentinel.io]
  resources: [zentinelclusterincidentpolicies/status]
  verbs: [patch]
{{- end -}}

{{/* Framework, namespaced. */}}
{{- define "zio.rules.framework.namespaced" -}}
# Framework: kopf posts events about handler errors and retries.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# Framework: kopf watches the four kinds and keeps its progress, diff base and finalizer in
# annotations and metadata of the objects themselves (never in status).
- apiGroups: [zentinel.io]
  resources: [zentinels, zentinelincidentpolicies, zentinelincidents, zentinelsilences]
  verbs: [list, watch, patch]
{{- end -}}

{{/* Application, namespaced (cluster-wide through a ClusterRole when no namespaces are listed). */}}
{{- define "zio.rules.application" -}}
# Application: the Zentinels under watch; the pass writes their status (health, signals,
# open incidents, last-known-good config revision).
- apiGroups: [zentinel.io]
  resources: [zentinels]
  verbs: [get, list, watch, patch]
- apiGroups: [zentinel.io]
  resources: [zentinels/status]
  verbs: [get, patch, update]
# Application: policies are read, never changed; their status says which Zentinels they govern
# and whether they are accepted.
- apiGroups: [zentinel.io]
  resources: [zentinelincidentpolicies]
  verbs: [get, list, watch]
- apiGroups: [zentinel.io]
  resources: [zentinelincidentpolicies/status]
  verbs: [patch]
# Application: incidents are created by name (inc-YYYYMMDD-NNN, retry on 409), updated as they
# evolve, and deleted after their retention period.
- apiGroups: [zentinel.io]
  resources: [zentinelincidents]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [zentinel.io]
  resources: [zentinelincidents/status]
  verbs: [get, patch, update]
# Application: silences are read, never changed; their status says whether they are Pending,
# Active or Expired.
- apiGroups: [zentinel.io]
  resources: [zentinelsilences]
  verbs: [get, list, watch]
- apiGroups: [zentinel.io]
  resources: [zentinelsilences/status]
  verbs: [patch]
# Application: pod states and container logs are signals (crash loops, OOM kills, "REJECTED"
# reloads); deleting a pod is the runbook's restart remediation. Watched: a change to a Zentinel's
# pods starts its pass at once (operator.eventPasses), as do the three kinds below.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, delete]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
# Application: the Zentinel workload (watched, and indexed by its selector to map pods to it); a
# rolling restart is a patch of its pod-template annotation.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, patch]
# Application: Zentinel's KDL config (read, watched, rolled back to the last known good revision),
# config snapshots and evidence bundles (created, owned by the incident, deleted with it).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
# Application: TLS Secrets (expiry, key match, certificate rotation; watched, only their names
# are used) and the receivers' Secrets (Slack / PagerDuty keys). Secret values are never logged
# or copied into incidents.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, update, patch]
# Application: events on Zentinels and incidents (both APIs; patch updates a repeated event's count);
# listing them puts the pods' and the Deployment's events into evidence bundles.
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch, list]
# Application: the blast-radius guardrail never restarts more pods than the disruption budget allows.
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch]
{{- if .Values.certManager.enabled }}
# Application (certManager.enabled): certificates issued by cert-manager are renewed by asking
# cert-manager to reissue them.
- apiGroups: [cert-manager.io]
  resources: [certificates]
  verbs: [get, list, watch, patch]
- apiGroups: [cert-manager.io]
  resources: [certificates/status]
  verbs: [patch]
{{- end }}
{{- end -}}
