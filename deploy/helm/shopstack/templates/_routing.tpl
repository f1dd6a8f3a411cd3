{{/*
The public paths, for the Ingress and the HTTPRoute alike: a YAML list of {path, pathType}.
Both send them to the gateway Service's http port; no route names the metrics port, and
/healthz, /readyz and /metrics are not among them.
*/}}
{{- define "shopstack.routing.paths" -}}
{{- $paths := .Values.routing.paths -}}
{{- if .Values.routing.exposeDocs -}}
{{- $paths = concat $paths (list (dict "path" "/docs" "pathType" "Prefix") (dict "path" "/openapi.json" "pathType" "Exact")) -}}
{{- end -}}
{{- range $paths }}
{{- if has .path (list "/" "/metrics" "/healthz" "/readyz") -}}
{{- fail (printf "routing.paths must not route %s: the public reaches only the API" .path) -}}
{{- end }}
{{- end }}
{{- toYaml $paths -}}
{{- end -}}

{{- define "shopstack.ingress.tlsSecret" -}}
{{- .Values.ingress.existingTlsSecret | default (printf "%s-tls" .Values.ingress.hostname) -}}
{{- end -}}
