#!/usr/bin/env bash
# Starts/stops a local etcd + kube-apiserver for development: up | down | env | status.
# up builds missing binaries first and returns once /readyz is ok; down leaves no process and no temp dir.
#   hack/control-plane.sh up [--max-requests-inflight N] [--apiserver-arg=--flag=value ...]
#   eval "$(hack/control-plane.sh env)"   # KUBECONFIG and the cached bin dir (kubectl) first on PATH
#   hack/control-plane.sh down
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The project's Node (node_modules/.bin/node) runs tsx, not whatever node is on the machine.
export PATH="${ROOT}/node_modules/.bin:${PATH}"
if [[ ! -x "${ROOT}/node_modules/.bin/tsx" ]]; then
  echo "node_modules missing: run npm ci first" >&2
  exit 1
fi
exec tsx "${ROOT}/hack/lib/control-plane-cli.ts" "$@"
