{{/* Names and labels as `helm create` makes them, plus the controller's arguments. */}}

{{- define "podcidr-allocator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release name when it already contains the chart name (`helm install podcidr-allocator`). */}}
{{- define "podcidr-allocator.fullname" -}}
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

{{- define "podcidr-allocator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "podcidr-allocator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "podcidr-allocator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* part-of as the kustomize base sets it; the rest are Helm's standard labels. */}}
{{- define "podcidr-allocator.labels" -}}
helm.sh/chart: {{ include "podcidr-allocator.chart" . }}
{{ include "podcidr-allocator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: podcidr-allocator
{{- end }}

{{- define "podcidr-allocator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "podcidr-allocator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Lease and the controller's ConfigMaps live in --leader-elect-resource-namespace, whose default in the
controller is kube-system. Released elsewhere, the flag follows the release so that the Role, which is
created here, is where the controller looks.
*/}}
{{- define "podcidr-allocator.stateNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.resourceNamespace }}
{{- end }}

{{/* The controller's own default name, for the Role's resourceNames. */}}
{{- define "podcidr-allocator.leaseName" -}}
{{- default "podcidr-allocator" .Values.leaderElection.resourceName }}
{{- end }}

{{- define "podcidr-allocator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The port of metricsBindAddress (host:port or [ipv6]:port). */}}
{{- define "podcidr-allocator.metricsPort" -}}
{{- regexFind "[0-9]+$" .Values.metricsBindAddress }}
{{- end }}

{{/*
`run` and one `--flag=value` per value that is set: null, "" and [] are left out so that the controller's
default applies. Lists are joined with commas, as the flags take them. Numbers go through toJson, which
never writes an exponent (1e+06) that the controller would refuse. The order is the kustomize base's:
ranges first, leader election, then the metrics address.
*/}}
{{- define "podcidr-allocator.args" -}}
{{- $v := .Values }}
{{- $le := $v.leaderElection }}
{{- $namespace := $le.resourceNamespace }}
{{- if and (not $namespace) (ne .Release.Namespace "kube-system") }}
{{- $namespace = .Release.Namespace }}
{{- end }}
{{- $flags := list
  (list "allocate-node-cidrs" $v.allocateNodeCIDRs)
  (list "cluster-cidr" $v.clusterCIDR)
  (list "node-cidr-mask-size" $v.nodeCIDRMaskSize)
  (list "node-cidr-mask-size-ipv4" $v.nodeCIDRMaskSizeIPv4)
  (list "node-cidr-mask-size-ipv6" $v.nodeCIDRMaskSizeIPv6)
  (list "service-cluster-ip-range" $v.serviceClusterIPRange)
  (list "exclude-cidr" $v.excludeCIDRs)
  (list "release-quarantine" $v.releaseQuarantine)
  (list "kubeconfig" $v.kubeconfig)
  (list "master" $v.master)
  (list "kube-api-qps" $v.kubeAPIQPS)
  (list "kube-api-burst" $v.kubeAPIBurst)
  (list "kube-api-content-type" $v.kubeAPIContentType)
  (list "concurrent-node-syncs" $v.concurrentNodeSyncs)
  (list "audit-interval" $v.auditInterval)
  (list "handoff-interval" $v.handoffInterval)
  (list "log-level" $v.logLevel)
  (list "leader-elect" $le.enabled)
  (list "leader-elect-lease-duration" $le.leaseDuration)
  (list "leader-elect-renew-deadline" $le.renewDeadline)
  (list "leader-elect-retry-period" $le.retryPeriod)
  (list "leader-elect-resource-name" $le.resourceName)
  (list "leader-elect-resource-namespace" $namespace)
  (list "metrics-bind-address" $v.metricsBindAddress)
}}
{{- $args := list "run" }}
{{- range $flags }}
{{- $name := index . 0 }}
{{- $value := index . 1 }}
{{- if kindIs "slice" $value }}
{{- if $value }}
{{- $args = append $args (printf "--%s=%s" $name (join "," $value)) }}
{{- end }}
{{- else if kindIs "string" $value }}
{{- if ne $value "" }}
{{- $args = append $args (printf "--%s=%s" $name $value) }}
{{- end }}
{{- else if not (kindIs "invalid" $value) }}
{{- $args = append $args (printf "--%s=%s" $name (toJson $value)) }}
{{- end }}
{{- end }}
{{- toYaml (concat $args $v.extraArgs) }}
{{- end }}
