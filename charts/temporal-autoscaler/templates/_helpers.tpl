{{/* The chart name, truncated to 63 characters. */}}
{{- define "temporal-autoscaler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: fullnameOverride, else <release>-<chart> unless one contains the other. */}}
{{- define "temporal-autoscaler.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "temporal-autoscaler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "temporal-autoscaler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "temporal-autoscaler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "temporal-autoscaler.labels" -}}
helm.sh/chart: {{ include "temporal-autoscaler.chart" . }}
{{ include "temporal-autoscaler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "temporal-autoscaler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "temporal-autoscaler.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "temporal-autoscaler.leaseName" -}}
{{- default (include "temporal-autoscaler.fullname" .) .Values.lease.name }}
{{- end }}

{{- define "temporal-autoscaler.scalersConfigMap" -}}
{{- printf "%s-scalers" (include "temporal-autoscaler.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "temporal-autoscaler.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The namespaces that get namespaced RBAC (Roles) instead of a ClusterRole: those in
watchNamespaces plus those of the values-defined scalers. Empty when watchNamespaces is empty
(cluster-wide). Output: a JSON list, sorted and deduplicated.
*/}}
{{- define "temporal-autoscaler.rbacNamespaces" -}}
{{- $nss := list }}
{{- if .Values.watchNamespaces }}
{{- $nss = concat $nss .Values.watchNamespaces }}
{{- range .Values.scalers }}
{{- $nss = append $nss (default $.Release.Namespace .namespace) }}
{{- end }}
{{- end }}
{{- $nss | uniq | sortAlpha | toJson }}
{{- end }}

{{/*
The rules the agent needs where it scales and watches: the /scale subresource of the listed
kinds, TemporalScalers (list/watch, status patch) unless CRs are off, events, and Secrets only
with rbac.secretReferences.
*/}}
{{- define "temporal-autoscaler.scalingRules" -}}
{{- range .Values.rbac.scaleTargets }}
- apiGroups: [{{ .apiGroup | quote }}]
  resources:
  {{- range .resources }}
    - {{ printf "%s/scale" . | quote }}
  {{- end }}
  verbs: ["get", "update", "patch"]
{{- end }}
{{- if .Values.watchCustomResources }}
- apiGroups: ["scaling.example.com"]
  resources: ["temporalscalers"]
  verbs: ["list", "watch"]
- apiGroups: ["scaling.example.com"]
  resources: ["temporalscalers/status"]
  verbs: ["patch"]
{{- end }}
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# Never fight another autoscaler: a target that a HorizontalPodAutoscaler (or KEDA, through
# one) scales is not written. One list per namespace in use, every 30 s.
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list"]
{{- if .Values.rbac.secretReferences }}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}
{{- if .Values.rbac.targetEnvironment }}
# `<key>FromEnv` trigger keys (KEDA's): the scale target's pod template and the ConfigMaps its
# container's env reads (Secrets it reads need rbac.secretReferences). Only `get`.
{{- range .Values.rbac.scaleTargets }}
- apiGroups: [{{ .apiGroup | quote }}]
  resources:
  {{- range .resources }}
    - {{ . | quote }}
  {{- end }}
  verbs: ["get"]
{{- end }}
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
{{- end }}
{{- if .Values.idleFirst.enabled }}
# Idle pods first: list the target's pods (metadata) and patch their deletion cost. The
# admission policy (templates/idle-first-policy.yaml) refuses any other change to a pod.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "patch"]
{{- end }}
{{- end }}

{{/*
The remote clusters of `clusters`, checked and laid out: one entry per cluster with its name,
the Secret, the pod volume's name, the directory the Secret is mounted at, and the kubeconfig
file in it (the --cluster=<name>=<file> path). Volume names are DNS labels of at most 63
characters: cluster-<name>, or cluster-<hash of the name> when that is too long. Duplicate
names fail the render (the schema cannot check uniqueness of a field). Output: a JSON list.
*/}}
{{- define "temporal-autoscaler.clusters" -}}
{{- $out := list }}
{{- $seen := dict }}
{{- range $i, $c := .Values.clusters }}
{{- if hasKey $seen $c.name }}
{{- fail (printf "clusters[%d]: the cluster name %s is already used by another entry" $i $c.name) }}
{{- end }}
{{- $_ := set $seen $c.name true }}
{{- $volume := printf "cluster-%s" $c.name }}
{{- if gt (len $volume) 63 }}
{{- $volume = printf "cluster-%s" (sha256sum $c.name | trunc 16) }}
{{- end }}
{{- $dir := printf "/etc/temporal-autoscaler/clusters/%s" $c.name }}
{{- $file := printf "%s/%s" $dir (default "kubeconfig" $c.key) }}
{{- $out = append $out (dict "name" $c.name "secretName" $c.secretName "volume" $volume "dir" $dir "file" $file) }}
{{- end }}
{{- $out | toJson }}
{{- end }}

{{/*
The file mode of the kubeconfig Secrets' files. The kubelet writes them owned by root; the
agent runs as a non-root user. With podSecurityContext.fsGroup the files' group is that group,
which the agent's process has: 0440 (288). Without it (the default values) the agent's user is
neither the owner nor in the group, so it reads them as "other": 0444 (292). Decimal, so that
every YAML reader (1.1 or 1.2) sees the same number.
*/}}
{{- define "temporal-autoscaler.clusterSecretMode" -}}
{{- if (.Values.podSecurityContext | default dict).fsGroup }}288{{ else }}292{{ end }}
{{- end }}
