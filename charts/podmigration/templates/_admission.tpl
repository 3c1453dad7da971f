{{- /*
CEL shared by the admission policies (admission.yaml) and the handover-guard webhook (webhooks.yaml), so that what
the policy judges and what the webhook is sent cannot drift apart. The webhook's Python side
(operator/podmigration/guard.py) recognises checkpoint images by the same marker.
*/ -}}

{{- /* The username of the operator's service account: the one identity that creates restores and fences pods. */ -}}
{{- define "podmigration.operatorUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "podmigration.fullname" . }}-operator
{{- end }}

{{- /* The StatefulSet controller's usernames as a CEL list. */ -}}
{{- define "podmigration.cel.statefulSetControllers" -}}
[{{ range $i, $user := .Values.admission.statefulSetControllers }}{{ if $i }}, {{ end }}'{{ $user }}'{{ end }}]
{{- end }}

{{- /* CEL, argument "object" or "oldObject": the pod's image references that name checkpoint images, wherever a
pod can name an image (containers, init and ephemeral containers, image volumes). Matched anywhere in the reference
(a registry prefix or a digest does not hide it). */ -}}
{{- define "podmigration.cel.checkpointImages" -}}
({{ . }}.spec.containers.map(c, c.?image.orValue('')) + {{ . }}.spec.?initContainers.orValue([]).map(c, c.?image.orValue('')) + {{ . }}.spec.?ephemeralContainers.orValue([]).map(c, c.?image.orValue('')) + {{ . }}.spec.?volumes.orValue([]).map(v, v.?image.?reference.orValue(''))).filter(r, r.contains('podmigration-checkpoint/'))
{{- end }}

{{- /* CEL, argument "object" or "oldObject": the keys of the pod's podmigration.dev/ annotations. */ -}}
{{- define "podmigration.cel.ownAnnotations" -}}
{{ . }}.metadata.?annotations.orValue({}).filter(k, k.startsWith('podmigration.dev/'))
{{- end }}
