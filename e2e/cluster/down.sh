#!/usr/bin/env bash
# Removes the local cluster and everything it started or created: processes (found by network namespace,
# mount namespace and cgroup, so it also cleans a cluster left by another checkout), network namespaces,
# veths, the bridge and its routes, cgroups and node state. Build caches are kept. Idempotent.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"; . "$here/topology.sh"

# node_pids NODE: every process of the node: in its network namespace, in its mount namespace, or in its cgroups.
node_pids() {
  local n=$1 ns mnt pid
  ns=$(node_netns "$n")
  ip netns pids "$ns" 2>/dev/null
  pid=$(cat "$(node_dir "$n")/init.pid" 2>/dev/null) && mnt=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) && \
    for p in /proc/[0-9]*; do [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$mnt" ] && echo "${p#/proc/}"; done
  find /sys/fs/cgroup/*/"$(node_cgroup "$n")" -name cgroup.procs -exec cat {} + 2>/dev/null
}

for n in $NODES; do
  for attempt in $(seq 1 30); do
    pids=$(node_pids "$n" | sort -u | grep -vx "$$" || true)
    [ -z "$pids" ] && break
    [ "$attempt" = 1 ] && log "stopping node $n ($(echo "$pids" | wc -w) processes)"
    # Thaw frozen containers first: a frozen process cannot die.
    for f in $(find /sys/fs/cgroup/freezer/"$(node_cgroup "$n")" -name freezer.state 2>/dev/null); do echo THAWED > "$f" 2>/dev/null; done
    kill -9 $pids 2>/dev/null
    sleep 0.3
  done
  [ -n "${pids:-}" ] && log "warning: node $n still has processes: $pids"
  # Remove the node's cgroup trees, deepest first.
  for root in /sys/fs/cgroup/*/"$(node_cgroup "$n")"; do
    [ -d "$root" ] && find "$root" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  ip netns del "$(node_netns "$n")" 2>/dev/null
  ip link del "$(node_veth "$n")" 2>/dev/null
done
ip link del "$BRIDGE" 2>/dev/null && log "removed bridge $BRIDGE and its routes"
if [ -f "$HOST_RECORD/ip_forward" ]; then
  sysctl -qw net.ipv4.ip_forward="$(cat "$HOST_RECORD/ip_forward")"
  rm -rf "$HOST_RECORD"
fi
# Unmount anything still mounted under the state directory (nothing is, unless a node died half-way).
grep -o " $STATE/[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | while read -r m; do umount -l "$m"; done
rm -rf "$STATE/nodes" "$STATE/builder" "$STATE/kubeconfig" "$STATE/pki"
log "cluster is down"
