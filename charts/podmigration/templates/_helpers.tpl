{{- define "podmigration.labels" -}}
app.kubernetes.io/part-of: podmigration
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{- define "podmigration.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end }}

{{- /* The CA that signs every identity; mounted by the operator only. */ -}}
{{- define "podmigration.caSecret" -}}
{{ .Values.tls.existingCASecret | default (printf "%s-ca" .Release.Name) }}
{{- end }}

{{/* "true" when the helper's work directory lies inside the kubelet's checkpoint directory: then it is that mount's
subdirectory, not a mount of its own, so the kubelet's archive moves in by link(2) (across two mounts it is copied). */}}
{{- define "podmigration.workDirOnCheckpointMount" -}}
{{- if hasPrefix (printf "%s/" (trimSuffix "/" .Values.nodeHelper.kubeletCheckpointDir)) .Values.nodeHelper.workDir -}}true{{- end -}}
{{- end }}
