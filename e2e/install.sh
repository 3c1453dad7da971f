#!/usr/bin/env bash
# Installs (or upgrades) the chart on the cluster of KUBECONFIG with the project image that
# e2e/cluster/project-image.sh loaded, and waits until the operator and every node-helper are ready.
# PM_FAULT_INJECTION=true turns on operator.faultInjection, which the fault suite (e2e/tests/test_faults.py) needs:
# `make e2e` sets it; the demo and the benchmark install without it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cluster/versions.sh"; . "$here/cluster/lib.sh"; . "$here/cluster/topology.sh"
export KUBECONFIG=${KUBECONFIG:-$KUBECONFIG_FILE}
ref=$(cat "$STATE/project-image" 2>/dev/null) || die "no project image: run 'make image' first"
helm=$("$here/cluster/build-helm.sh")
# Helm installs the chart's CRDs once and never upgrades them: apply the current ones first.
kubectl apply --server-side --force-conflicts -f "$REPO_ROOT/crds/" >&2
log "helm upgrade --install podmigration charts/podmigration (image $ref)"
"$helm" upgrade --install podmigration "$REPO_ROOT/charts/podmigration" -n podmigration-system --create-namespace \
  --set image.repository="${ref%:*}" --set image.tag="${ref##*:}" --set operator.faultInjection="${PM_FAULT_INJECTION:-false}" --wait --timeout 5m 2>&1 | grep -v "symbolic link" >&2
kubectl -n podmigration-system rollout status deploy/podmigration-operator --timeout 120s >&2
kubectl -n podmigration-system rollout status ds/podmigration-node-helper --timeout 120s >&2
