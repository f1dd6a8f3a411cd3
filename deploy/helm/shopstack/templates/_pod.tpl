{{/*
The pieces every service pod shares. Each takes (dict "root" . "component" name "values" v).
*/}}

{{/* The restricted Pod Security Standard, pod level. fsGroup makes mounted Secrets readable. */}}
{{- define "shopstack.podSecurityContext" -}}
{{- toYaml .values.podSecurityContext }}
{{- end -}}

{{/* The restricted Pod Security Standard, container level. */}}
{{- define "shopstack.containerSecurityContext" -}}
{{- toYaml .values.containerSecurityContext }}
{{- end -}}

{{/* Pod labels: the selector, the common labels, then the values' own. */}}
{{- define "shopstack.podLabels" -}}
{{ include "shopstack.componentLabels" . }}
{{- with .values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Where pods go: priority, node selection, affinity, tolerations, and a soft spread over nodes
and zones (topologySpread) plus the values' own constraints.
*/}}
{{- define "shopstack.podScheduling" -}}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- include "shopstack.tplvalues" (dict "value" . "context" $.root) | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if or .root.Values.topologySpread.enabled .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- if .root.Values.topologySpread.enabled }}
  {{- range .root.Values.topologySpread.topologyKeys }}
  - maxSkew: {{ $.root.Values.topologySpread.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $.root.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "shopstack.selectorLabels" $ | nindent 8 }}
  {{- end }}
  {{- end }}
  {{- with .values.topologySpreadConstraints }}
  {{- include "shopstack.tplvalues" (dict "value" . "context" $.root) | nindent 2 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* The main container's ports: the API and /metrics, each its own. */}}
{{- define "shopstack.containerPorts" -}}
- name: http
  containerPort: {{ .values.containerPorts.http }}
  protocol: TCP
- name: metrics
  containerPort: {{ .values.containerPorts.metrics }}
  protocol: TCP
{{- end -}}

{{/* Startup and liveness ask /healthz (the process), readiness /readyz (its dependencies). */}}
{{- define "shopstack.probes" -}}
{{- with .values.startupProbe }}
{{- if .enabled }}
startupProbe:
  httpGet: {path: /healthz, port: http}
  {{- toYaml (omit . "enabled") | nindent 2 }}
{{- end }}
{{- end }}
{{- with .values.livenessProbe }}
{{- if .enabled }}
livenessProbe:
  httpGet: {path: /healthz, port: http}
  {{- toYaml (omit . "enabled") | nindent 2 }}
{{- end }}
{{- end }}
{{- with .values.readinessProbe }}
{{- if .enabled }}
readinessProbe:
  httpGet: {path: /readyz, port: http}
  {{- toYaml (omit . "enabled") | nindent 2 }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Shutdown: the pod leaves the Service's endpoints while preStop sleeps, so no new request is
sent to a server that stops; then SIGTERM, and the server finishes in-flight requests within
gracefulTimeoutSeconds. The grace period must cover both, or the kubelet kills mid-request.
*/}}
{{- define "shopstack.lifecycle" -}}
{{- $needed := add .values.preStopSleepSeconds (int .values.gracefulTimeoutSeconds) -}}
{{- if le (int .values.terminationGracePeriodSeconds) (int $needed) -}}
{{- fail (printf "%s.terminationGracePeriodSeconds (%v) must be longer than preStopSleepSeconds + gracefulTimeoutSeconds (%v)" .component .values.terminationGracePeriodSeconds $needed) -}}
{{- end -}}
{{- if gt (int .values.preStopSleepSeconds) 0 }}
lifecycle:
  preStop:
    exec:
      command: ["sleep", "{{ .values.preStopSleepSeconds }}"]
{{- end }}
{{- end -}}

{{/*
The settings `serve` reads, the same names in every service, for the service's ConfigMap.
The root filesystem is read-only: /tmp and the metrics directory are emptyDirs.
*/}}
{{- define "shopstack.serverSettings" -}}
ENVIRONMENT: {{ .root.Values.environment | quote }}
LOG_LEVEL: {{ .values.logLevel | default .root.Values.logLevel | quote }}
HOST: "0.0.0.0"
PORT: {{ .values.containerPorts.http | quote }}
METRICS_PORT: {{ .values.containerPorts.metrics | quote }}
WEB_CONCURRENCY: {{ .values.workers | quote }}
GRACEFUL_TIMEOUT_SECONDS: {{ .values.gracefulTimeoutSeconds | quote }}
{{- with .values.keepAliveSeconds }}
KEEP_ALIVE_SECONDS: {{ . | quote }}
{{- end }}
FORWARDED_ALLOW_IPS: {{ join "," .root.Values.trustedProxies.cidrs | quote }}
{{- /* Several workers share their samples through this directory. One keeps them in memory,
where prometheus-client also keeps exemplars (trace ids on the latency histograms). */}}
{{- if gt (int .values.workers) 1 }}
PROMETHEUS_MULTIPROC_DIR: /run/shopstack/metrics
{{- end }}
OTEL_SERVICE_NAME: {{ .component | quote }}
OTEL_TRACES_SAMPLER_ARG: {{ .root.Values.telemetry.sampleRatio | quote }}
{{- with .root.Values.telemetry.otlpEndpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* A Secret key as an environment variable. Takes (dict "name" env "secret" s "key" k). */}}
{{- define "shopstack.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end -}}

{{- define "shopstack.redisEnv" -}}
{{ include "shopstack.secretEnv" (dict "name" "REDIS_URL" "secret" (include "shopstack.redis.secretName" .) "key" (include "shopstack.redis.secretKey" .)) }}
{{- end -}}

{{- define "shopstack.databaseEnv" -}}
{{ include "shopstack.secretEnv" (dict "name" "DATABASE_URL" "secret" (include "shopstack.database.secretName" .) "key" (include "shopstack.database.secretKey" .)) }}
{{- end -}}

{{/* The values' own environment: a list of EnvVar, and whole ConfigMaps or Secrets. */}}
{{- define "shopstack.extraEnv" -}}
{{- with .values.extraEnvVars }}
{{ include "shopstack.tplvalues" (dict "value" . "context" $.root) }}
{{- end }}
{{- end -}}

{{- define "shopstack.envFrom" -}}
- configMapRef:
    name: {{ include "shopstack.componentName" . }}
{{- with .values.extraEnvVarsCM }}
- configMapRef:
    name: {{ . }}
{{- end }}
{{- with .values.extraEnvVarsSecret }}
- secretRef:
    name: {{ . }}
{{- end }}
{{- end -}}

{{/* The writable paths of a read-only root filesystem. */}}
{{- define "shopstack.writableVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: metrics
  mountPath: /run/shopstack/metrics
{{- end -}}

{{- define "shopstack.writableVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .values.tmpSizeLimit }}
# prometheus-client's multiprocess files: one small mmap file per worker and metric type.
- name: metrics
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- end -}}

{{/* Pod-level annotations: the values' own and the checksums that roll the pods. */}}
{{- define "shopstack.podAnnotations" -}}
checksum/config: {{ include (print .root.Template.BasePath "/" .component "/configmap.yaml") .root | sha256sum }}
{{- /* For a Prometheus that discovers pods by annotation; the Operator uses the ServiceMonitors. */}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .values.containerPorts.metrics | quote }}
prometheus.io/path: /metrics
{{- with .values.podAnnotations }}
{{ include "shopstack.tplvalues" (dict "value" . "context" $.root) }}
{{- end }}
{{- end -}}
