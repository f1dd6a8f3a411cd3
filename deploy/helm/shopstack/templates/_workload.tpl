{{/*
The objects that are the same for every service, each rendered by its component's own file
(gateway/service.yaml, users/hpa.yaml, ...). Each takes (dict "root" . "component" name
"values" v).
*/}}

{{/* A Service with the API port and a separate metrics port, which no route references. */}}
{{- define "shopstack.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "shopstack.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "shopstack.componentLabels" . | nindent 4 }}
  {{- with (merge (dict) .values.service.annotations .root.Values.commonAnnotations) }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: ClusterIP
  selector:
    {{- include "shopstack.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ .values.service.ports.http }}
      targetPort: http
      protocol: TCP
    - name: metrics
      port: {{ .values.service.ports.metrics }}
      targetPort: metrics
      protocol: TCP
{{- end -}}

{{/* The pods' own identity, with no API token: no service talks to the Kubernetes API. */}}
{{- define "shopstack.serviceAccount" -}}
{{- if .values.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "shopstack.serviceAccountName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "shopstack.componentLabels" . | nindent 4 }}
  {{- with (merge (dict) .values.serviceAccount.annotations .root.Values.commonAnnotations) }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end }}
{{- end -}}

{{- define "shopstack.hpa" -}}
{{- if .values.autoscaling.enabled }}
{{- if lt (int .values.autoscaling.maxReplicas) (int .values.autoscaling.minReplicas) -}}
{{- fail (printf "%s.autoscaling.maxReplicas must be at least minReplicas" .component) -}}
{{- end }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "shopstack.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "shopstack.componentLabels" . | nindent 4 }}
  {{- with .root.Values.commonAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "shopstack.componentName" . }}
  minReplicas: {{ .values.autoscaling.minReplicas }}
  maxReplicas: {{ .values.autoscaling.maxReplicas }}
  metrics:
    {{- with .values.autoscaling.targetCPU }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with .values.autoscaling.targetMemory }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  {{- with .values.autoscaling.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "shopstack.pdb" -}}
{{- if .values.pdb.create }}
{{- if and .values.pdb.minAvailable .values.pdb.maxUnavailable -}}
{{- fail (printf "%s.pdb: set minAvailable or maxUnavailable, not both" .component) -}}
{{- end }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "shopstack.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "shopstack.componentLabels" . | nindent 4 }}
  {{- with .root.Values.commonAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- if .values.pdb.minAvailable }}
  minAvailable: {{ .values.pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .values.pdb.maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "shopstack.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/* For the Prometheus Operator (kube-prometheus-stack): the metrics port, never the API's. */}}
{{- define "shopstack.serviceMonitor" -}}
{{- with .root.Values.metrics.serviceMonitor }}
{{- if .enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "shopstack.componentName" $ }}
  namespace: {{ .namespace | default $.root.Release.Namespace }}
  labels:
    {{- include "shopstack.componentLabels" $ | nindent 4 }}
    {{- with .labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $.root.Values.commonAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  jobLabel: app.kubernetes.io/component
  namespaceSelector:
    matchNames: [{{ $.root.Release.Namespace }}]
  selector:
    matchLabels:
      {{- include "shopstack.selectorLabels" $ | nindent 6 }}
  endpoints:
    - port: metrics
      path: /metrics
      interval: {{ .interval }}
      scrapeTimeout: {{ .scrapeTimeout }}
      {{- with .relabelings }}
      relabelings:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The ConfigMap of a service: the shared server settings, then the service's own (.settings, a
YAML map), then the values' `config`; a later one wins.
*/}}
{{- define "shopstack.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "shopstack.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "shopstack.componentLabels" . | nindent 4 }}
  {{- with .root.Values.commonAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- $own := dict -}}
{{- range $name, $value := .values.config }}
{{- $_ := set $own $name ($value | toString) }}
{{- end }}
{{- $service := .settings | default "" | fromYaml }}
{{- $server := include "shopstack.serverSettings" . | fromYaml }}
data:
  {{- merge $own $service $server | toYaml | nindent 2 }}
{{- end -}}

{{/*
A service's Deployment. Besides root, component and values it takes what only that service
has, each a YAML string: env (more EnvVars), annotations (more pod annotations), volumeMounts
and volumes.
*/}}
{{- define "shopstack.deployment" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "shopstack.componentName" $ }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "shopstack.componentLabels" $ | nindent 4 }}
  {{- with .root.Values.commonAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- if not .values.autoscaling.enabled }}
  replicas: {{ .values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: {{ .root.Values.revisionHistoryLimit }}
  strategy:
    {{- toYaml .values.updateStrategy | nindent 4 }}
  selector:
    matchLabels:
      {{- include "shopstack.selectorLabels" $ | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "shopstack.podLabels" $ | nindent 8 }}
      annotations:
        {{- include "shopstack.podAnnotations" $ | nindent 8 }}
        {{- with .annotations }}
        {{- . | trim | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "shopstack.serviceAccountName" $ }}
      automountServiceAccountToken: false
      {{- with include "shopstack.imagePullSecrets" .root | trim }}{{ . | nindent 6 }}{{ end }}
      {{- with include "shopstack.podScheduling" $ | trim }}{{ . | nindent 6 }}{{ end }}
      securityContext:
        {{- include "shopstack.podSecurityContext" $ | nindent 8 }}
      terminationGracePeriodSeconds: {{ .values.terminationGracePeriodSeconds }}
      containers:
        - name: {{ .component }}
          image: {{ include "shopstack.image" $ }}
          imagePullPolicy: {{ include "shopstack.imagePullPolicy" $ }}
          command: ["shopstack-{{ .component }}"]
          args: ["serve"]
          ports:
            {{- include "shopstack.containerPorts" $ | nindent 12 }}
          envFrom:
            {{- include "shopstack.envFrom" $ | nindent 12 }}
          env:
            {{- include "shopstack.redisEnv" .root | nindent 12 }}
            {{- with .env }}
            {{- . | trim | nindent 12 }}
            {{- end }}
            {{- with include "shopstack.extraEnv" $ | trim }}{{ . | nindent 12 }}{{ end }}
          {{- include "shopstack.probes" $ | trim | nindent 10 }}
          {{- with include "shopstack.lifecycle" $ | trim }}{{ . | nindent 10 }}{{ end }}
          resources:
            {{- toYaml .values.resources | nindent 12 }}
          securityContext:
            {{- include "shopstack.containerSecurityContext" $ | nindent 12 }}
          volumeMounts:
            {{- include "shopstack.writableVolumeMounts" $ | nindent 12 }}
            {{- with .volumeMounts }}
            {{- . | trim | nindent 12 }}
            {{- end }}
            {{- with .values.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        {{- include "shopstack.writableVolumes" $ | nindent 8 }}
        {{- with .volumes }}
        {{- . | trim | nindent 8 }}
        {{- end }}
        {{- with .values.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- end -}}
