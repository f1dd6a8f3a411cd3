{{/*
NetworkPolicy pieces. Policies add up: every pod of the release is first denied all traffic
(networkpolicy/default-deny.yaml), then each component's policy lets in and out only what it
needs. users and orders trust the gateway's identity headers because only the gateway may
reach their API port.
*/}}

{{/* A peer: the pods of one component of this release. */}}
{{- define "shopstack.netpol.componentPeer" -}}
- podSelector:
    matchLabels:
      {{- include "shopstack.selectorLabels" . | nindent 6 }}
{{- end -}}

{{/* A peer in another namespace, from a {namespaceSelector, podSelector} value. */}}
{{- define "shopstack.netpol.namespacedPeer" -}}
- namespaceSelector:
    {{- toYaml .namespaceSelector | nindent 4 }}
  podSelector:
    {{- toYaml (.podSelector | default dict) | nindent 4 }}
{{- end -}}

{{/* Prometheus may scrape the metrics port, and nothing else may. */}}
{{- define "shopstack.netpol.metricsIngress" -}}
- from:
    {{- include "shopstack.netpol.namespacedPeer" .root.Values.networkPolicy.prometheus | nindent 4 }}
  ports:
    - port: {{ .values.containerPorts.metrics }}
      protocol: TCP
{{- end -}}

{{- define "shopstack.netpol.dnsEgress" -}}
- to:
    {{- include "shopstack.netpol.namespacedPeer" .Values.networkPolicy.dns | nindent 4 }}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end -}}

{{/* PostgreSQL: the in-chart pod, or the external server's peers (any address when none). */}}
{{- define "shopstack.netpol.databaseEgress" -}}
{{- if .Values.postgresql.enabled }}
- to:
    {{- include "shopstack.netpol.componentPeer" (dict "root" . "component" "postgresql") | nindent 4 }}
  ports:
    - {port: 5432, protocol: TCP}
{{- else }}
- ports:
    - {port: {{ .Values.networkPolicy.externalDatabase.port }}, protocol: TCP}
  {{- with .Values.networkPolicy.externalDatabase.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "shopstack.netpol.redisEgress" -}}
{{- if .Values.redis.enabled }}
- to:
    {{- include "shopstack.netpol.componentPeer" (dict "root" . "component" "redis") | nindent 4 }}
  ports:
    - {port: 6379, protocol: TCP}
{{- else }}
- ports:
    - {port: {{ .Values.networkPolicy.externalRedis.port }}, protocol: TCP}
  {{- with .Values.networkPolicy.externalRedis.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "shopstack.netpol.telemetryEgress" -}}
{{- if .Values.telemetry.otlpEndpoint }}
- ports:
    - {port: {{ .Values.telemetry.port }}, protocol: TCP}
  {{- with .Values.networkPolicy.telemetry.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- with .Values.networkPolicy.extraEgress }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The metadata and pod selector of a component's policy. */}}
{{- define "shopstack.netpol.head" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "shopstack.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "shopstack.componentLabels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "shopstack.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
{{- end -}}

{{/*
users and orders: their API only from the gateway, metrics only from Prometheus; out to DNS,
PostgreSQL, Redis and the OTLP endpoint.
*/}}
{{- define "shopstack.netpol.upstream" -}}
{{- if .root.Values.networkPolicy.enabled }}
{{ include "shopstack.netpol.head" . }}
  ingress:
    - from:
        {{- include "shopstack.netpol.componentPeer" (dict "root" .root "component" "gateway") | nindent 8 }}
      ports:
        - port: {{ .values.containerPorts.http }}
          protocol: TCP
    {{- include "shopstack.netpol.metricsIngress" . | nindent 4 }}
  egress:
    {{- include "shopstack.netpol.dnsEgress" .root | nindent 4 }}
    {{- with include "shopstack.netpol.databaseEgress" .root | trim }}{{ . | nindent 4 }}{{ end }}
    {{- with include "shopstack.netpol.redisEgress" .root | trim }}{{ . | nindent 4 }}{{ end }}
    {{- with include "shopstack.netpol.telemetryEgress" .root | trim }}{{ . | nindent 4 }}{{ end }}
    {{- with .extraEgress }}{{ . | nindent 4 }}{{ end }}
{{- end }}
{{- end -}}
