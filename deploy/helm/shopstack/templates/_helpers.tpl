{{/* The release's base name, at most 63 characters. */}}
{{- define "shopstack.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The labels every resource carries. */}}
{{- define "shopstack.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: shopstack
{{- end -}}

{{/* Selector labels: name and instance only, plus the component they select. */}}
{{- define "shopstack.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* A service image: registry/repository/service:tag. */}}
{{- define "shopstack.image" -}}
{{- $image := .root.Values.image -}}
{{- $override := (index .root.Values .component).image -}}
{{- if $override -}}
{{- $override -}}
{{- else -}}
{{- $tag := $image.tag | default .root.Chart.AppVersion -}}
{{- if $image.registry -}}
{{- printf "%s/%s/%s:%s" $image.registry $image.repository .component $tag -}}
{{- else -}}
{{- printf "%s/%s:%s" $image.repository .component $tag -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Fail early, with the setting to fix, when a required Secret is not named. */}}
{{- define "shopstack.requireSecrets" -}}
{{- if not .Values.database.existingSecret -}}
{{- fail "database.existingSecret is required: name a Secret holding the PostgreSQL URL" -}}
{{- end -}}
{{- if not .Values.users.signingKeysSecret -}}
{{- fail "users.signingKeysSecret is required: name a Secret of <kid>.pem Ed25519 keys that sign access tokens" -}}
{{- end -}}
{{- if not .Values.redis.existingSecret -}}
{{- fail "redis.existingSecret is required: name a Secret holding the Redis URL" -}}
{{- end -}}
{{- end -}}

{{/* Environment every service shares. */}}
{{- define "shopstack.commonEnv" -}}
- name: ENVIRONMENT
  value: {{ .Values.environment | quote }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.secretKey }}
{{- with .Values.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "shopstack.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.secretKey }}
{{- end -}}

{{/* The restricted Pod Security profile, for every container. */}}
{{- define "shopstack.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
