{{- define "nonstop.labels" -}}
app.kubernetes.io/name: nonstop
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- /* operator.namespaces as `nonstop run -n` reads them: every value split at commas,
trimmed, empty parts dropped; a JSON list (read it with fromJsonArray). */}}
{{- define "nonstop.namespaceList" -}}
{{- $out := list -}}
{{- range .Values.operator.namespaces -}}
{{- range splitList "," . -}}
{{- $part := trim . -}}
{{- if $part }}{{ $out = append $out $part }}{{ end -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{- /* Where the operator's rights are granted: "cluster" or "namespaced" (rbac.scope; auto:
namespaced when operator.namespaces are plain names, cluster otherwise). A namespaced grant is
a Role per namespace, so it needs names: a pattern (team-*, !kube-*) cannot become a Role. */}}
{{- define "nonstop.rbacScope" -}}
{{- $namespaces := include "nonstop.namespaceList" . | fromJsonArray -}}
{{- $patterns := list -}}
{{- range $namespaces }}{{ if regexMatch "[][*?!]" . }}{{ $patterns = append $patterns . }}{{ end }}{{ end -}}
{{- $scope := .Values.rbac.scope -}}
{{- if eq $scope "auto" -}}
{{- $scope = ternary "namespaced" "cluster" (and (gt (len $namespaces) 0) (eq (len $patterns) 0)) -}}
{{- end -}}
{{- if eq $scope "namespaced" -}}
{{- if not $namespaces -}}
{{- fail "rbac.scope=namespaced: list the namespaces to serve in operator.namespaces (the operator's rights are granted in those namespaces only)" -}}
{{- end -}}
{{- if $patterns -}}
{{- fail (printf "rbac.scope=namespaced grants the operator's rights namespace by namespace, so operator.namespaces must be names, not patterns (%s): list the namespaces, or set rbac.scope=cluster" (join ", " $patterns)) -}}
{{- end -}}
{{- end -}}
{{- $scope -}}
{{- end -}}

{{- /* The operator's rules in the namespaces it serves, every verb one it uses: kept equal
to operator/nonstop/kube/access.py (OPERATOR, where "served") by tests/unit/test_rbac.py. A
pass reads the watch-fed cache, so most reads are list+watch only; writes are merge patches
(no update) except the route and flag documents, which are replaced whole under their
resourceVersion. */}}
{{- define "nonstop.operatorRules" -}}
- apiGroups: [nonstop.dev]
  resources: [rollouts]
  verbs: [list, watch, patch]  # patch: an undo puts spec.template back
- apiGroups: [nonstop.dev]
  resources: [rollouts/status]
  verbs: [patch]
- apiGroups: [nonstop.dev]
  # the Deployments and Services it makes name their Rollout as owner with
  # blockOwnerDeletion, which the OwnerReferencesPermissionEnforcement admission plugin
  # (OpenShift, hardened clusters) allows only to who may update the owner's finalizers
  resources: [rollouts/finalizers]
  verbs: [update]
- apiGroups: [nonstop.dev]
  resources: [rolloutactions]
  verbs: [list, watch, delete]  # delete: answered actions are kept an hour, then go
- apiGroups: [nonstop.dev]
  resources: [rolloutactions/status]
  verbs: [patch]  # the answer
- apiGroups: [nonstop.dev]
  resources: [analysistemplates]
  verbs: [list, watch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]  # get: whose is a Deployment under its name?
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch]  # get: a Service that exists when it creates one
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, update]  # get: before the route's watch has listed
- apiGroups: [""]
  resources: [configmaps]  # a feature toggle's flag document; list/watch only by name
  verbs: [get, list, watch, update]
- apiGroups: [""]
  resources: [secrets]  # only get: the credentials an analysis metric names (opted in)
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]  # patch: a repeated Event counts up
{{- end -}}
