{{/*
Names, labels and images. Every named template that works on one component takes a dict:
  root       the chart's root context (.)
  component  the component's name: gateway, users, orders, postgresql, redis
  values     that component's values (.Values.<component>)
*/}}

{{/* The chart's name, for app.kubernetes.io/name. */}}
{{- define "shopstack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's base name, at most 63 characters (Helm's own convention). */}}
{{- define "shopstack.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's resource name: <fullname>-<component>. Takes (dict "root" . "component" name). */}}
{{- define "shopstack.componentName" -}}
{{- printf "%s-%s" (include "shopstack.fullname" .root | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{/* The labels every resource carries; a component's add app.kubernetes.io/component. */}}
{{- define "shopstack.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "shopstack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: shopstack
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "shopstack.componentLabels" -}}
{{ include "shopstack.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The labels of every pod of the release: what the default-deny policy selects. */}}
{{- define "shopstack.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "shopstack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels: name, instance and the component; never the version (selectors are immutable). */}}
{{- define "shopstack.selectorLabels" -}}
{{ include "shopstack.releaseSelectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Annotations every resource carries. */}}
{{- define "shopstack.annotations" -}}
{{- with .Values.commonAnnotations }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{/*
An image reference: registry/repository, then @digest if one is set, else :tag. A service image
falls back to image.registry and image.tag (one release, one version); the tag defaults to
the chart's appVersion.
*/}}
{{- define "shopstack.image" -}}
{{- $image := .values.image -}}
{{- $registry := $image.registry | default .root.Values.image.registry -}}
{{- $tag := $image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion | toString -}}
{{- $name := ternary (printf "%s/%s" $registry $image.repository) $image.repository (ne $registry "") -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $name $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $name $tag -}}
{{- end -}}
{{- end -}}

{{/* A data store's image (postgresql, redis): its own registry only. */}}
{{- define "shopstack.storeImage" -}}
{{- $image := .values.image -}}
{{- $name := ternary (printf "%s/%s" $image.registry $image.repository) $image.repository (ne $image.registry "") -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $name $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $name ($image.tag | toString) -}}
{{- end -}}
{{- end -}}

{{- define "shopstack.imagePullPolicy" -}}
{{- .values.image.pullPolicy | default .root.Values.image.pullPolicy -}}
{{- end -}}

{{- define "shopstack.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* The ServiceAccount a component's pods run as. */}}
{{- define "shopstack.serviceAccountName" -}}
{{- if .values.serviceAccount.create -}}
{{- .values.serviceAccount.name | default (include "shopstack.componentName" .) -}}
{{- else -}}
{{- .values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* Where each service listens, by Service DNS name. */}}
{{- define "shopstack.serviceURL" -}}
{{- printf "http://%s:%v" (include "shopstack.componentName" .) .values.service.ports.http -}}
{{- end -}}

{{/* Render a value that may hold templates (bitnami's common.tplvalues.render). */}}
{{- define "shopstack.tplvalues" -}}
{{- if typeIs "string" .value -}}
{{- tpl .value .context -}}
{{- else -}}
{{- tpl (.value | toYaml) .context -}}
{{- end -}}
{{- end -}}
