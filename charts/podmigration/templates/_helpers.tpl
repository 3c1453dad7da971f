{{- /* The chart's name (nameOverride): the part-of label. */ -}}
{{- define "podmigration.name" -}}
{{ .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* The prefix of every object's name: fullnameOverride, else the release name (followed by nameOverride when
it is set), so that the default names stay <release>-operator, <release>-node-helper, ... The pods'
app.kubernetes.io/name labels (podmigration-operator, podmigration-node-helper) are fixed: the code selects by them. */ -}}
{{- define "podmigration.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if .Values.nameOverride }}
{{- printf "%s-%s" .Release.Name .Values.nameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "podmigration.labels" -}}
app.kubernetes.io/part-of: {{ include "podmigration.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end }}

{{- /* Labels and annotations of the operator's and the helpers' pods: the chart's, then podLabels / podAnnotations. */ -}}
{{- define "podmigration.podLabels" -}}
{{ include "podmigration.labels" . }}
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "podmigration.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- /* The CA that signs every identity; mounted by the operator only. */ -}}
{{- define "podmigration.caSecret" -}}
{{ .Values.tls.existingCASecret | default (printf "%s-ca" (include "podmigration.fullname" .)) }}
{{- end }}

{{/* "true" when the helper's work directory lies inside the kubelet's checkpoint directory: then it is that mount's
subdirectory, not a mount of its own, so the kubelet's archive moves in by link(2) (across two mounts it is copied). */}}
{{- define "podmigration.workDirOnCheckpointMount" -}}
{{- if hasPrefix (printf "%s/" (trimSuffix "/" .Values.nodeHelper.kubeletCheckpointDir)) .Values.nodeHelper.workDir -}}true{{- end -}}
{{- end }}

{{- /* "true" when the operator generates the CA (neither cert-manager nor tls.existingCASecret provides it). */ -}}
{{- define "podmigration.generatedCA" -}}
{{- if not (or .Values.tls.certManager.enabled .Values.tls.existingCASecret) -}}true{{- end -}}
{{- end }}

{{- /* The webhook configurations whose caBundle the operator sets (kind/name, comma-separated). */ -}}
{{- define "podmigration.webhookConfigurations" -}}
{{- $f := include "podmigration.fullname" . -}}
validating/{{ $f }}-eviction,mutating/{{ $f }}-statefulset-handover,validating/{{ $f }}-handover-guard,validating/{{ $f }}-ephemeral-guard,validating/{{ $f }}-preflight
{{- end }}
