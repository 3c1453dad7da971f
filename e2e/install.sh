#!/usr/bin/env bash
# Installs (or upgrades) the packaged chart (`make chart`: dist/podmigration-<version>.tgz, what the README gives a
# platform team) on the cluster of KUBECONFIG with the project image that e2e/cluster/project-image.sh loaded, and
# waits until the operator and every node-helper are ready.
# PM_FAULT_INJECTION=true turns on operator.faultInjection, which the fault suite (e2e/tests/test_faults.py) needs:
# `make e2e` sets it; the demo and the benchmark install without it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cluster/versions.sh"; . "$here/cluster/lib.sh"; . "$here/cluster/topology.sh"
export KUBECONFIG=${KUBECONFIG:-$KUBECONFIG_FILE}
ref=$(cat "$STATE/project-image" 2>/dev/null) || die "no project image: run 'make image' first"
helm=$("$here/cluster/build-helm.sh")
version=$(sed -n 's/^version: *//p' "$REPO_ROOT/charts/podmigration/Chart.yaml")
chart=$REPO_ROOT/dist/podmigration-$version.tgz
[ -f "$chart" ] || die "no $chart: run 'make chart' first"
# Helm installs the chart's CRDs once and never upgrades them: apply the current ones first (README "Upgrade").
kubectl apply --server-side --force-conflicts -f "$REPO_ROOT/charts/podmigration/crds/" >&2
# The working directory CRI-O runs in on the nodes (node-services.sh sets it; a cluster started before it did runs
# CRI-O in /): the helper links archives there (nodeHelper.runtimeWorkingDir).
cwd=$("$here/cluster/node-exec" worker-1 sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = crio ] &&
  [ "$(readlink $p/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ] && readlink $p/cwd && break; done')
[ -n "$cwd" ] || die "CRI-O is not running on worker-1"
# The end-to-end install (fault points on) collects garbage every 5 s, so the tests of it wait seconds, not minutes.
gc_period=${PM_GC_PERIOD_SECONDS:-60}
[ "${PM_FAULT_INJECTION:-false}" = true ] && gc_period=${PM_GC_PERIOD_SECONDS:-5}
# The local kubelets evict at 1% free (node-config.sh evictionHard), not at the 10-15% the chart's floor is set above:
# a floor of 2% keeps the helpers' writes above theirs on a shared development disk.
# The webhooks answer only the API server (webhooks.clientAuth): the local cluster's presents its admission client
# certificate, CN kube-apiserver-admission, signed by the cluster CA that kube-root-ca.crt holds (e2e/cluster/pki.sh,
# node-config.sh); PM_WEBHOOK_CLIENT_AUTH=false installs for a cluster whose API server presents none.
# No priority class for the helpers here: the kubelet gives node-critical pods oom_score_adj -997, which these
# machines refuse without CAP_SYS_RESOURCE (ENVIRONMENT.md), so their containers would never start.
# Base images (operator.baseImages): pull, the chart's default; the local cluster has no registry, but its images are
# loaded into every node and the pods ask for them IfNotPresent, so the kubelet finds them. test_migration.py's copy
# test switches to copy for itself.
log "helm upgrade --install podmigration ${chart#"$REPO_ROOT"/} (image $ref, CRI-O working directory $cwd)"
"$helm" upgrade --install podmigration "$chart" -n podmigration-system --create-namespace \
  --set image.repository="${ref%:*}" --set image.tag="${ref##*:}" --set operator.faultInjection="${PM_FAULT_INJECTION:-false}" \
  --set nodeHelper.runtimeWorkingDir="$cwd" --set operator.gcPeriodSeconds="$gc_period" \
  --set nodeHelper.minFreePercent=2 --set nodeHelper.priorityClassName= --set operator.baseImages="${PM_BASE_IMAGES:-pull}" \
  --set webhooks.clientAuth.enabled="${PM_WEBHOOK_CLIENT_AUTH:-true}" --wait --timeout 5m >&2
kubectl -n podmigration-system rollout status deploy/podmigration-operator --timeout 120s >&2
kubectl -n podmigration-system rollout status ds/podmigration-node-helper --timeout 120s >&2
