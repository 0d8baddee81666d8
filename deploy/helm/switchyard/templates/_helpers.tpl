{{/* Name of the chart, or nameOverride. */}}
{{- define "switchyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name when it already holds the chart's name. */}}
{{- define "switchyard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "switchyard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The mode, checked: every template includes this first. */}}
{{- define "switchyard.mode" -}}
{{- $mode := required "mode must be set: daemonset, deployment or statefulset" .Values.mode }}
{{- if not (has $mode (list "daemonset" "deployment" "statefulset")) }}
{{- fail (printf "mode %q is not one of daemonset, deployment, statefulset" $mode) }}
{{- end }}
{{- $mode }}
{{- end }}

{{- define "switchyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "switchyard.labels" -}}
helm.sh/chart: {{ include "switchyard.chart" . }}
{{ include "switchyard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: {{ include "switchyard.component" . }}
{{- end }}

{{/* agent for a DaemonSet, gateway otherwise (as the collector's chart says). */}}
{{- define "switchyard.component" -}}
{{- if eq .Values.mode "daemonset" }}agent{{ else if eq .Values.mode "statefulset" }}statefulset{{ else }}gateway{{ end }}
{{- end }}

{{- define "switchyard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "switchyard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "switchyard.configMapName" -}}
{{- if .Values.configMap.create }}
{{- include "switchyard.fullname" . }}
{{- else }}
{{- required "configMap.existingName must be set when configMap.create is false" .Values.configMap.existingName }}
{{- end }}
{{- end }}

{{/*
A Kubernetes memory quantity in MiB (a float): 512Mi, 1Gi, 1.5Gi, 500M, 1G,
2000Ki, or a number of bytes (536870912); the exponent forms (1e9, 5e6M) are
refused with a message.
*/}}
{{- define "switchyard.memoryMiB" -}}
{{- if kindIs "float64" . }}
{{- divf . 1048576.0 }}
{{- else }}
{{- $q := toString . }}
{{- $units := dict "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $q }}
{{- $unit := trimPrefix $num $q }}
{{- if or (eq $num "") (and (ne $unit "") (not (hasKey $units $unit))) }}
{{- fail (printf "resources.limits.memory %q: expected a number with Ki, Mi, Gi, Ti, k, M, G or T" $q) }}
{{- end }}
{{- divf (mulf (float64 $num) (get $units $unit | default 1.0)) 1048576.0 }}
{{- end }}
{{- end }}

{{/*
Switchyard's configuration: config (merged over the chart's defaults by Helm) or
alternateConfig, then the presets, then the memory limit; rendered with tpl.
*/}}
{{- define "switchyard.config" -}}
{{- $config := deepCopy .Values.config }}
{{- if .Values.alternateConfig }}
{{- $config = deepCopy .Values.alternateConfig }}
{{- end }}
{{- $config = mustMergeOverwrite (dict "exporters" dict "processors" dict "service" (dict "pipelines" dict)) $config }}
{{- $pipelines := $config.service.pipelines }}
{{- with .Values.presets.agent }}
{{- if .enabled }}
{{- $_ := set $config.exporters "otlp/gateway" (dict "endpoint" (required "presets.agent.gatewayEndpoint must be set (host:port of the gateway's OTLP/gRPC port)" .gatewayEndpoint) "compression" .compression "tls" .tls) }}
{{- range $name := list "traces" "metrics" "logs" }}
{{- $p := get $pipelines $name }}
{{- if $p }}
{{- $_ := set $p "exporters" (append (without ($p.exporters | default list) "debug") "otlp/gateway" | uniq) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.presets.loadBalancing }}
{{- if .enabled }}
{{- $dns := dict "hostname" (required "presets.loadBalancing.hostname must be set (the headless Service of the sampling tier)" .hostname) "port" .port "interval" .interval "timeout" .timeout }}
{{- $_ := set $config.exporters "loadbalancing" (dict "routing_key" .routingKey "protocol" (dict "otlp" (dict "tls" .tls)) "resolver" (dict "dns" $dns)) }}
{{- range $name := list "traces" "logs" }}
{{- $p := get $pipelines $name }}
{{- if $p }}
{{- $_ := set $p "exporters" (append (without ($p.exporters | default list) "debug") "loadbalancing" | uniq) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.presets.tailSampling }}
{{- if .enabled }}
{{- $ts := dict "decision_wait" .decisionWait "num_traces" .numTraces "policies" .policies }}
{{- if .expectedNewTracesPerSec }}
{{- $_ := set $ts "expected_new_traces_per_sec" .expectedNewTracesPerSec }}
{{- end }}
{{- $_ := set $config.processors "tail_sampling" $ts }}
{{- $p := required "presets.tailSampling needs a traces pipeline in the configuration" $pipelines.traces }}
{{- $procs := without ($p.processors | default list) "tail_sampling" }}
{{- if has "memory_limiter" $procs }}
{{- $rest := without $procs "memory_limiter" }}
{{- $_ := set $p "processors" (prepend (prepend $rest "tail_sampling") "memory_limiter") }}
{{- else }}
{{- $_ := set $p "processors" (prepend $procs "tail_sampling") }}
{{- end }}
{{- end }}
{{- end }}
{{- $limits := (.Values.resources | default dict).limits | default dict }}
{{- if and $limits.memory (hasKey $config.processors "memory_limiter") }}
{{- $ml := get $config.processors "memory_limiter" | default dict }}
{{- $limitMiB := floor (divf (mulf (include "switchyard.memoryMiB" $limits.memory) .Values.memoryLimiter.limitPercentage) 100) | int }}
{{- $spikeMiB := floor (divf (mulf $limitMiB .Values.memoryLimiter.spikePercentage) 100) | int }}
{{- $ml = omit $ml "limit_percentage" "spike_limit_percentage" }}
{{- $_ := set $ml "limit_mib" $limitMiB }}
{{- $_ := set $ml "spike_limit_mib" $spikeMiB }}
{{- $_ := set $config.processors "memory_limiter" $ml }}
{{- end }}
{{- tpl (toYaml $config) . }}
{{- end }}

{{- define "switchyard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The enabled ports, in name order, each checked. */}}
{{- define "switchyard.containerPorts" -}}
{{- range $name, $port := .Values.ports }}
{{- if $port.enabled }}
- name: {{ $name }}
  containerPort: {{ required (printf "ports.%s.containerPort must be set" $name) $port.containerPort }}
  protocol: {{ $port.protocol | default "TCP" }}
  {{- if and (eq $.Values.mode "daemonset") $port.hostPort }}
  hostPort: {{ $port.hostPort }}
  {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The pod template shared by the DaemonSet, Deployment and StatefulSet. */}}
{{- define "switchyard.podTemplate" -}}
metadata:
  annotations:
    checksum/config: {{ include "switchyard.config" . | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  labels:
    {{- include "switchyard.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "switchyard.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- if .Values.hostNetwork }}
  hostNetwork: true
  {{- end }}
  {{- with .Values.dnsPolicy }}
  dnsPolicy: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  containers:
    - name: {{ include "switchyard.name" . }}
      image: {{ include "switchyard.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command:
        - {{ .Values.command.name }}
      args:
        - --config
        - /conf/config.yaml
        - --plugin-dir
        - {{ .Values.command.pluginDir }}
        {{- range .Values.command.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      {{- with .Values.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      env:
        - name: MY_POD_IP
          valueFrom:
            fieldRef:
              apiVersion: v1
              fieldPath: status.podIP
        {{- with .Values.extraEnvs }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- $ports := include "switchyard.containerPorts" . }}
      {{- if $ports }}
      ports:
        {{- $ports | trim | nindent 8 }}
      {{- end }}
      {{- with .Values.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: config
          mountPath: /conf
          readOnly: true
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "switchyard.configMapName" . }}
        items:
          - key: config.yaml
            path: config.yaml
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* metadata shared by every object: name, namespace, labels. */}}
{{- define "switchyard.metadata" -}}
name: {{ include "switchyard.fullname" . }}
namespace: {{ .Release.Namespace }}
labels:
  {{- include "switchyard.labels" . | nindent 2 }}
{{- end }}

{{/* metadata of the DaemonSet, Deployment or StatefulSet. */}}
{{- define "switchyard.workloadMetadata" -}}
{{ include "switchyard.metadata" . }}
{{- with .Values.annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Deployment strategy, DaemonSet / StatefulSet updateStrategy. */}}
{{- define "switchyard.rollout" -}}
type: {{ .Values.rollout.strategy }}
{{- if and (eq .Values.rollout.strategy "RollingUpdate") .Values.rollout.rollingUpdate }}
rollingUpdate:
  {{- toYaml .Values.rollout.rollingUpdate | nindent 2 }}
{{- end }}
{{- end }}
