{{/*
Migration hook Jobs. Each service migrates its own schema before its new pods start; a
PostgreSQL advisory lock per schema keeps two runs from racing.

With external data stores (production) the Jobs are pre-install and pre-upgrade hooks. The
in-chart PostgreSQL and Redis and the chart-made Secrets are ordinary resources, which Helm
creates only after the pre-install hooks; so with any of them the first install migrates
post-install instead, and the Job waits for PostgreSQL. Upgrades are pre-upgrade either way.
*/}}
{{- define "shopstack.migrations.hookEvents" -}}
{{- $generatedAdmin := and .Values.users.bootstrapAdmin.enabled (not .Values.users.bootstrapAdmin.existingSecret) -}}
{{- $generatedConsole := and .Values.users.console.enabled (not .Values.users.console.existingSecret) -}}
{{- if or .Values.postgresql.enabled .Values.redis.enabled $generatedAdmin $generatedConsole -}}
post-install,pre-upgrade
{{- else -}}
pre-install,pre-upgrade
{{- end -}}
{{- end -}}

{{/*
One service's migration Job. Takes (dict "root" . "component" name "values" v "weight" w
"env" more-EnvVars-as-YAML). The weight orders the Jobs (users first: it owns the accounts the
other schemas refer to by id).
*/}}
{{- define "shopstack.migrationJob" -}}
{{- if .root.Values.migrations.enabled }}
{{- $job := dict "root" .root "component" (printf "%s-migrate" .component) "values" .values -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "shopstack.componentName" $job }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "shopstack.componentLabels" $job | nindent 4 }}
  annotations:
    helm.sh/hook: {{ include "shopstack.migrations.hookEvents" .root }}
    helm.sh/hook-weight: {{ .weight | quote }}
    # A new run replaces the last; a run that succeeded goes at once; a failed one stays
    # (until ttlSecondsAfterFinished) so `kubectl logs job/...` can say why.
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
    {{- with .root.Values.commonAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  backoffLimit: {{ .root.Values.migrations.backoffLimit }}
  activeDeadlineSeconds: {{ .root.Values.migrations.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: {{ .root.Values.migrations.ttlSecondsAfterFinished }}
  template:
    metadata:
      labels:
        {{- include "shopstack.componentLabels" $job | nindent 8 }}
        {{- with .values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .values.podAnnotations }}
      annotations:
        {{- include "shopstack.tplvalues" (dict "value" . "context" $.root) | nindent 8 }}
      {{- end }}
    spec:
      restartPolicy: Never
      # Its own, made as a hook too: the services' ServiceAccounts do not exist yet before an install.
      serviceAccountName: {{ include "shopstack.componentName" (dict "root" .root "component" "migrate") }}
      automountServiceAccountToken: false
      {{- with include "shopstack.imagePullSecrets" .root | trim }}{{ . | nindent 6 }}{{ end }}
      {{- with .values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with .values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- include "shopstack.podSecurityContext" $ | nindent 8 }}
      {{- if .root.Values.postgresql.enabled }}
      {{- $pg := dict "root" .root "component" "postgresql" "values" .root.Values.postgresql }}
      initContainers:
        # The in-chart PostgreSQL is created with this release; wait until it accepts.
        - name: wait-for-postgresql
          image: {{ include "shopstack.storeImage" $pg }}
          imagePullPolicy: {{ .root.Values.postgresql.image.pullPolicy }}
          command: ["sh", "-c", "until pg_isready --host=\"$PGHOST\" --timeout=2; do sleep 2; done"]
          env:
            - name: PGHOST
              value: {{ include "shopstack.componentName" $pg }}
            # libpq would otherwise ask the system for a name of uid 10001, which has none here.
            - name: PGUSER
              value: {{ .root.Values.postgresql.username | quote }}
          resources:
            requests: {cpu: 10m, memory: 16Mi}
            limits: {cpu: 100m, memory: 64Mi}
          securityContext:
            {{- include "shopstack.containerSecurityContext" $ | nindent 12 }}
      {{- end }}
      containers:
        - name: migrate
          image: {{ include "shopstack.image" $ }}
          imagePullPolicy: {{ include "shopstack.imagePullPolicy" $ }}
          command: ["shopstack-{{ .component }}"]
          args: ["migrate"]
          env:
            - name: ENVIRONMENT
              value: {{ .root.Values.environment | quote }}
            - name: LOG_LEVEL
              value: {{ .values.logLevel | default .root.Values.logLevel | quote }}
            {{- include "shopstack.databaseEnv" .root | nindent 12 }}
            {{- include "shopstack.redisEnv" .root | nindent 12 }}
            {{- with .env }}
            {{- . | nindent 12 }}
            {{- end }}
          resources:
            {{- toYaml .root.Values.migrations.resources | nindent 12 }}
          securityContext:
            {{- include "shopstack.containerSecurityContext" $ | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 16Mi
{{- end }}
{{- end -}}
