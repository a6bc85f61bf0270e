{{/*
Names and labels shared by every template. Names are truncated to 63 characters because
some Kubernetes name fields (Service, label values) are limited to a DNS label.
*/}}

{{- define "neuronfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "neuronfleet.fullname" -}}
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

{{- define "neuronfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Pod selector: only labels that never change over a release's life (selectors are immutable). */}}
{{- define "neuronfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "neuronfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "neuronfleet.labels" -}}
helm.sh/chart: {{ include "neuronfleet.chart" . }}
{{ include "neuronfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: neuronfleet
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "neuronfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "neuronfleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image: a digest pins it exactly; else the tag, else the chart's appVersion. */}}
{{- define "neuronfleet.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Watched namespaces: empty means every namespace (cluster-wide RBAC). */}}
{{- define "neuronfleet.clusterWide" -}}
{{- if not .Values.watchNamespaces }}true{{ end }}
{{- end }}

{{/* The namespace the operator itself runs in. */}}
{{- define "neuronfleet.namespace" -}}
{{- .Release.Namespace }}
{{- end }}

{{/* Selector of the operator's metrics series in PromQL, for alerts and the dashboard. */}}
{{- define "neuronfleet.metricsSelector" -}}
{{- if .Values.prometheusRule.operatorSelector }}
{{- .Values.prometheusRule.operatorSelector }}
{{- else }}
{{- printf "job=%q" (printf "%s-metrics" (include "neuronfleet.fullname" .)) }}
{{- end }}
{{- end }}
