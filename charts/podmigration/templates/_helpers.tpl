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
