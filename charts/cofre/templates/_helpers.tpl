{{/* Chart name, overridable. */}}
{{- define "cofre.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource-name prefix: fullnameOverride, else "<release>" if it contains the chart name, else "<release>-<name>". */}}
{{- define "cofre.fullname" -}}
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

{{/* "name-version" for the helm.sh/chart label. */}}
{{- define "cofre.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "cofre.labels" -}}
helm.sh/chart: {{ include "cofre.chart" . }}
app.kubernetes.io/name: {{ include "cofre.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cofre
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "server"). */}}
{{- define "cofre.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cofre.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "cofre.server.fullname" -}}
{{- printf "%s-server" (include "cofre.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cofre.operator.fullname" -}}
{{- printf "%s-operator" (include "cofre.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cofre.server.serviceAccountName" -}}
{{- if .Values.server.serviceAccount.create }}
{{- default (include "cofre.server.fullname" .) .Values.server.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.server.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cofre.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "cofre.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cofre.clusterAgent.fullname" -}}
{{- printf "%s-cluster-agent" (include "cofre.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cofre.clusterAgent.serviceAccountName" -}}
{{- if .Values.clusterAgent.serviceAccount.create }}
{{- default (include "cofre.clusterAgent.fullname" .) .Values.clusterAgent.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.clusterAgent.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference, tag defaulting to the appVersion. */}}
{{- define "cofre.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "cofre.server.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "cofre.fullname" .)) .Values.server.tls.secretName }}
{{- end }}

{{/* In-cluster URL of this release's server. */}}
{{- define "cofre.server.url" -}}
{{- printf "%s://%s.%s.svc:%d" (ternary "http" "https" .Values.server.tls.disable) (include "cofre.server.fullname" .) .Release.Namespace (int .Values.server.port) }}
{{- end }}

{{- define "cofre.injector.fullname" -}}
{{- printf "%s-injector" (include "cofre.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cofre.injector.serviceAccountName" -}}
{{- if .Values.injector.serviceAccount.create }}
{{- default (include "cofre.injector.fullname" .) .Values.injector.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.injector.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the injector's serving certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "cofre.injector.tlsSecretName" -}}
{{- printf "%s-tls" (include "cofre.injector.fullname" .) }}
{{- end }}

{{/* The Secret and key of the CA that signed Cofre's certificate, given to the agents; empty for the system CAs. */}}
{{- define "cofre.injector.cofreCaSecretName" -}}
{{- if .Values.injector.cofreCaCertSecret.name }}
{{- .Values.injector.cofreCaCertSecret.name }}
{{- else if and .Values.server.enabled (not .Values.server.tls.disable) (not .Values.injector.cofreAddress) }}
{{- include "cofre.server.tlsSecretName" . }}
{{- end }}
{{- end }}

{{- define "cofre.csiProvider.fullname" -}}
{{- printf "%s-csi-provider" (include "cofre.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cofre.csiProvider.serviceAccountName" -}}
{{- if .Values.csiProvider.serviceAccount.create }}
{{- default (include "cofre.csiProvider.fullname" .) .Values.csiProvider.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.csiProvider.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret of the CA that signed Cofre's certificate, for the CSI provider; empty for the system CAs. */}}
{{- define "cofre.csiProvider.cofreCaSecretName" -}}
{{- if .Values.csiProvider.cofreCaCertSecret.name }}
{{- .Values.csiProvider.cofreCaCertSecret.name }}
{{- else if and .Values.server.enabled (not .Values.server.tls.disable) (not .Values.csiProvider.cofreAddress) }}
{{- include "cofre.server.tlsSecretName" . }}
{{- end }}
{{- end }}
