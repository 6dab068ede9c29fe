#!/usr/bin/env bash
# Builds the control plane (kube-apiserver, kube-controller-manager, kubectl, etcd), the node binaries
# (kubelet, kube-scheduler, kube-proxy, CNI plugins, flanneld) and helm for the chart's tests from Go
# modules into a cache outside the repo.
# Idempotent: binaries already built for the pinned versions are only checked and their versions printed.
#
# Usage: hack/build-control-plane.sh [build|bin-dir|cni-bin-dir|flannel-bin-dir|helm-bin-dir|gen-go-mod]
#   build            (default) build what is missing, print one line per binary with elapsed seconds
#   bin-dir          print the cache bin directory of the Kubernetes binaries and etcd, and exit
#   cni-bin-dir      print the cache bin directory of the CNI plugins (a containerd CNI bin_dir), and exit
#   flannel-bin-dir  print the cache bin directory of flanneld, and exit
#   helm-bin-dir     print the cache bin directory of helm, and exit
#   gen-go-mod       rewrite hack/go.mod's replace block from the published k8s.io/kubernetes go.mod
# Env: PODCIDR_ALLOCATOR_CACHE  cache root (default ~/.cache/podcidr-allocator)
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "${HACK_DIR}/versions.env"

CACHE_ROOT="${PODCIDR_ALLOCATOR_CACHE:-${HOME}/.cache/podcidr-allocator}"
BIN_DIR="${CACHE_ROOT}/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}/bin"
# Dirs of their own: a CNI or flannel bump rebuilds neither Kubernetes nor the other, and containerd's CNI
# bin_dir holds only plugins.
CNI_BIN_DIR="${CACHE_ROOT}/cni-plugins-${CNI_PLUGINS_VERSION}/bin"
FLANNEL_BIN_DIR="${CACHE_ROOT}/flannel-${FLANNEL_VERSION}/bin"
K8S_BINARIES=(kube-apiserver kube-controller-manager kubectl kube-scheduler kubelet kube-proxy)
# What a flannel-style node needs: bridge + host-local from subnet.env, portmap for hostPorts, loopback for containerd.
CNI_PLUGINS=(plugins/main/bridge plugins/ipam/host-local plugins/main/loopback plugins/meta/portmap)
# A directory of its own, so that bumping helm neither rebuilds nor mixes with the control plane.
HELM_BIN_DIR="${CACHE_ROOT}/helm-${HELM_VERSION}/bin"
# Bump when the way binaries are built changes, so a warm cache built the old way is rebuilt.
RECIPE=1

T0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - T0 ))s"; }
log() { echo "[control-plane build +$(elapsed)] $*"; }

# Kubernetes binaries report their version from link-time variables; without these /version says v0.0.0-master.
k8s_ldflags() {
  local minor build_date
  minor="$(echo "${K8S_VERSION}" | cut -d. -f2)"
  build_date="$(cd "${HACK_DIR}" && go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"Time": "\(.*\)".*/\1/p')"
  local flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    flags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${build_date:-unknown}"
  done
  echo "${flags}"
}

is_cni_plugin() {
  local p
  for p in "${CNI_PLUGINS[@]}"; do [[ "$(basename "${p}")" == "$1" ]] && return 0; done
  return 1
}

bin_dir_for() {
  if is_cni_plugin "$1"; then echo "${CNI_BIN_DIR}"
  elif [[ "$1" == flanneld ]]; then echo "${FLANNEL_BIN_DIR}"
  elif [[ "$1" == helm ]]; then echo "${HELM_BIN_DIR}"
  else echo "${BIN_DIR}"; fi
}

stamp_for() {
  if is_cni_plugin "$1"; then echo "recipe=${RECIPE} cni-plugins=${CNI_PLUGINS_VERSION} bin=$1"
  elif [[ "$1" == flanneld ]]; then echo "recipe=${RECIPE} flannel=${FLANNEL_VERSION} bin=$1"
  elif [[ "$1" == helm ]]; then echo "recipe=${RECIPE} helm=${HELM_VERSION} bin=helm"
  else echo "recipe=${RECIPE} k8s=${K8S_VERSION} etcd=${ETCD_VERSION} bin=$1"; fi
}

# helm reports its own version and the Kubernetes version `helm template` assumes (.Capabilities) from
# link-time variables, as its Makefile sets them; without them it claims v3.21 and Kubernetes v1.20.
helm_ldflags() {
  local client_go minor
  client_go="$(cd "${HACK_DIR}/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)"
  minor="$(echo "${client_go}" | cut -d. -f2)"
  local flags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
  flags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    flags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${minor}"
  done
  echo "${flags}"
}

is_fresh() {
  local name="$1" dir; dir="$(bin_dir_for "$1")"
  [[ -x "${dir}/${name}" && -f "${dir}/.${name}.stamp" ]] &&
    [[ "$(cat "${dir}/.${name}.stamp")" == "$(stamp_for "${name}")" ]]
}

# A module dir whose go.mod pins another version than versions.env would build the wrong binary under the right stamp.
check_pin() {
  local moddir="$1" mod="$2" want="$3" pinned
  pinned="$(cd "${moddir}" && go list -m -f '{{.Version}}' "${mod}")"
  if [[ "${pinned}" != "${want}" ]]; then
    log "${moddir#"${HACK_DIR}/"}/go.mod pins ${mod} ${pinned} but versions.env says ${want}"
    return 1
  fi
}

# Builds one binary into a temp name and renames it, so an interrupted build never leaves a half file.
# A heartbeat line every 60 s shows a long cold compile is alive.
build_one() {
  local name="$1" moddir="$2" pkg="$3" ldflags="$4"
  local dir; dir="$(bin_dir_for "${name}")"
  local start; start=$(date +%s)
  log "${name}: building ${pkg} (cold builds take minutes on 2 cores)"
  ( while sleep 60; do log "${name}: still building, $(( $(date +%s) - start ))s so far"; done ) &
  local beat=$!
  local rc=0
  (cd "${moddir}" && go build -trimpath -ldflags="${ldflags}" -o "${dir}/.${name}.tmp" "${pkg}") || rc=$?
  kill "${beat}" 2>/dev/null || true
  wait "${beat}" 2>/dev/null || true
  if [[ ${rc} -ne 0 ]]; then
    rm -f "${dir}/.${name}.tmp"
    log "${name}: FAILED after $(( $(date +%s) - start ))s"
    return "${rc}"
  fi
  mv "${dir}/.${name}.tmp" "${dir}/${name}"
  stamp_for "${name}" > "${dir}/.${name}.stamp"
  log "${name}: built in $(( $(date +%s) - start ))s"
}

report_versions() {
  log "kube-apiserver          $("${BIN_DIR}/kube-apiserver" --version)"
  log "kube-controller-manager $("${BIN_DIR}/kube-controller-manager" --version)"
  log "kubectl                 $("${BIN_DIR}/kubectl" version --client 2>/dev/null | head -1)"
  log "etcd                    $("${BIN_DIR}/etcd" --version | head -1)"
  log "helm                    $("${HELM_BIN_DIR}/helm" version --short)"
  log "kube-scheduler          $("${BIN_DIR}/kube-scheduler" --version)"
  log "kubelet                 $("${BIN_DIR}/kubelet" --version)"
  log "kube-proxy              $("${BIN_DIR}/kube-proxy" --version)"
  # A CNI plugin answers VERSION with the spec versions it speaks; its own version is in the about line.
  log "cni plugins             $(CNI_COMMAND=VERSION "${CNI_BIN_DIR}/bridge" </dev/null)"
  log "                        $("${CNI_BIN_DIR}/bridge" </dev/null 2>&1 | head -1)"
  log "flanneld                $("${FLANNEL_BIN_DIR}/flanneld" --version 2>&1)"
}

# CNI plugins report their version from a link-time variable, as in the plugins' release workflow.
cni_ldflags() {
  echo "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=${CNI_PLUGINS_VERSION}"
}

# As flannel's Makefile: its version from a link-time variable; static, with cgo on amd64 for the UDP backend.
flannel_ldflags() {
  echo "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=${FLANNEL_VERSION} -extldflags -static"
}

build_cni_plugins() {
  local p name
  for p in "${CNI_PLUGINS[@]}"; do
    name="$(basename "${p}")"
    if is_fresh "${name}"; then
      log "${name}: cached"
      continue
    fi
    check_pin "${HACK_DIR}/cni" github.com/containernetworking/plugins "${CNI_PLUGINS_VERSION}"
    # Static, as the plugins are exec'd by containerd in whatever environment it has.
    CGO_ENABLED=0 build_one "${name}" "${HACK_DIR}/cni" "github.com/containernetworking/plugins/${p}" "$(cni_ldflags)"
  done
}

build_flanneld() {
  if is_fresh flanneld; then
    log "flanneld: cached"
    return
  fi
  check_pin "${HACK_DIR}/flannel" github.com/flannel-io/flannel "${FLANNEL_VERSION}"
  local cgo=0
  [[ "$(go env GOARCH)" == amd64 ]] && cgo=1
  CGO_ENABLED="${cgo}" build_one flanneld "${HACK_DIR}/flannel" github.com/flannel-io/flannel "$(flannel_ldflags)"
}

build() {
  command -v go >/dev/null || { echo "go is not installed; it is needed to build the control plane" >&2; exit 1; }
  mkdir -p "${BIN_DIR}" "${CNI_BIN_DIR}" "${FLANNEL_BIN_DIR}" "${HELM_BIN_DIR}"
  log "bin dirs ${BIN_DIR} ${CNI_BIN_DIR} ${FLANNEL_BIN_DIR} ${HELM_BIN_DIR} ($(go version | cut -d' ' -f3))"
  local k8s_flags=""
  for name in "${K8S_BINARIES[@]}"; do
    if is_fresh "${name}"; then
      log "${name}: cached"
      continue
    fi
    [[ -n "${k8s_flags}" ]] || k8s_flags="$(k8s_ldflags)"
    build_one "${name}" "${HACK_DIR}" "k8s.io/kubernetes/cmd/${name}" "${k8s_flags}"
  done
  if is_fresh etcd; then
    log "etcd: cached"
  else
    build_one etcd "${HACK_DIR}/etcd" "go.etcd.io/etcd/server/v3" "-s -w"
  fi
  build_cni_plugins
  build_flanneld
  if is_fresh helm; then
    log "helm: cached"
  else
    local pinned
    pinned="$(cd "${HACK_DIR}/helm" && go list -m -f '{{.Version}}' helm.sh/helm/v3)"
    if [[ "${pinned}" != "${HELM_VERSION}" ]]; then
      log "helm: hack/helm/go.mod pins ${pinned} but versions.env says ${HELM_VERSION}"
      return 1
    fi
    # CGO off as in helm's own release builds: a static binary with Go's DNS resolver.
    CGO_ENABLED=0 build_one helm "${HACK_DIR}/helm" "helm.sh/helm/v3/cmd/helm" "$(helm_ldflags)"
  fi
  report_versions
  log "done"
}

# Kubernetes publishes its staging modules (k8s.io/api, ...) at v0.0.0 with local replaces; a consumer
# must replace each one with the matching published version. Derive the list instead of typing it.
gen_go_mod() {
  cd "${HACK_DIR}"
  local upstream
  upstream="$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  local mods
  mods="$(sed -n '/^replace (/,/^)/p' "${upstream}" | awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }')"
  local drops=()
  while read -r mod; do drops+=(-dropreplace="${mod}"); done <<< "${mods}"
  go mod edit -require="k8s.io/kubernetes@${K8S_VERSION}" "${drops[@]}"
  {
    echo
    echo "replace ("
    while read -r mod; do printf '\t%s => %s %s\n' "${mod}" "${mod}" "${K8S_STAGING_VERSION}"; done <<< "${mods}"
    echo ")"
  } >> go.mod
  go mod tidy
  log "hack/go.mod: $(grep -c "=> k8s.io/.* ${K8S_STAGING_VERSION}" go.mod) staging replaces at ${K8S_STAGING_VERSION}"
}

case "${1:-build}" in
  build) build ;;
  bin-dir) echo "${BIN_DIR}" ;;
  cni-bin-dir) echo "${CNI_BIN_DIR}" ;;
  flannel-bin-dir) echo "${FLANNEL_BIN_DIR}" ;;
  helm-bin-dir) echo "${HELM_BIN_DIR}" ;;
  gen-go-mod) gen_go_mod ;;
  *) echo "usage: $0 [build|bin-dir|cni-bin-dir|flannel-bin-dir|helm-bin-dir|gen-go-mod]" >&2; exit 2 ;;
esac
