{{/*
Secrets. In production every Secret is named by an existingSecret value and made beforehand.
Where one is not named, the chart makes it (dev mode): the values are generated once and then
kept across upgrades by reading the live Secret back with `lookup`. `helm template` cannot
look anything up, so it shows a fresh value each time.
*/}}

{{/* The data of a live Secret in the release namespace, or an empty dict. */}}
{{- define "shopstack.liveSecretData" -}}
{{- $secret := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- if $secret -}}
{{- $secret.data | default dict | toYaml -}}
{{- else -}}
{{- dict | toYaml -}}
{{- end -}}
{{- end -}}

{{/*
One base64 value of a chart-made Secret: the live one when the Secret exists, else the
given fresh value. Takes (dict "root" . "name" secretName "key" key "fresh" plaintext).
*/}}
{{- define "shopstack.keptSecretValue" -}}
{{- $live := include "shopstack.liveSecretData" . | fromYaml -}}
{{- if hasKey $live .key -}}
{{- index $live .key -}}
{{- else -}}
{{- .fresh | b64enc -}}
{{- end -}}
{{- end -}}

{{/* ---- PostgreSQL URL ------------------------------------------------------------------- */}}

{{- define "shopstack.database.secretName" -}}
{{- if .Values.database.existingSecret -}}
{{- .Values.database.existingSecret -}}
{{- else if .Values.postgresql.enabled -}}
{{- include "shopstack.componentName" (dict "root" . "component" "postgresql") -}}
{{- else -}}
{{- fail "database.existingSecret is required when postgresql.enabled is false: name a Secret whose key database.existingSecretKey holds the PostgreSQL URL (postgresql://user:password@host:5432/db)" -}}
{{- end -}}
{{- end -}}

{{- define "shopstack.database.secretKey" -}}
{{- ternary .Values.database.existingSecretKey "database-url" (ne .Values.database.existingSecret "") -}}
{{- end -}}

{{/* ---- Redis URL ------------------------------------------------------------------------ */}}

{{- define "shopstack.redis.secretName" -}}
{{- if .Values.cache.existingSecret -}}
{{- .Values.cache.existingSecret -}}
{{- else if .Values.redis.enabled -}}
{{- include "shopstack.componentName" (dict "root" . "component" "redis") -}}
{{- else -}}
{{- fail "cache.existingSecret is required when redis.enabled is false: name a Secret whose key cache.existingSecretKey holds the Redis URL (redis://:password@host:6379/0)" -}}
{{- end -}}
{{- end -}}

{{- define "shopstack.redis.secretKey" -}}
{{- ternary .Values.cache.existingSecretKey "redis-url" (ne .Values.cache.existingSecret "") -}}
{{- end -}}

{{/* ---- users: signing keys and the first admin ------------------------------------------ */}}

{{- define "shopstack.signingKeys.secretName" -}}
{{- .Values.users.signingKeys.existingSecret | default (printf "%s-signing-keys" (include "shopstack.componentName" (dict "root" . "component" "users"))) -}}
{{- end -}}

{{- define "shopstack.admin.enabled" -}}
{{- if .Values.users.bootstrapAdmin.enabled -}}true{{- end -}}
{{- end -}}

{{- define "shopstack.admin.secretName" -}}
{{- .Values.users.bootstrapAdmin.existingSecret | default (printf "%s-admin" (include "shopstack.componentName" (dict "root" . "component" "users"))) -}}
{{- end -}}

{{- define "shopstack.console.secretName" -}}
{{- .Values.users.console.existingSecret | default (printf "%s-console" (include "shopstack.componentName" (dict "root" . "component" "users"))) -}}
{{- end -}}

{{/*
The checksum of a Secret's data for a pod annotation, so a changed Secret rolls the pods on
the next `helm upgrade`: the live data where it can be read, else nothing to compare.
*/}}
{{- define "shopstack.secretChecksum" -}}
{{- include "shopstack.liveSecretData" . | sha256sum -}}
{{- end -}}
