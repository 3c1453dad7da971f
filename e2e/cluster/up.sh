#!/usr/bin/env bash
# Creates the local cluster (control-plane, worker-1, worker-2), or reuses it when it is already up and healthy.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"; . "$here/lib.sh"; . "$here/topology.sh"
e2e=$(cd "$here/.." && pwd)
start=$(date +%s)
kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }

node_running() { local pid; pid=$(cat "$(node_dir "$1")/init.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; }
ready_nodes() { kc get nodes --no-headers 2>/dev/null | awk '$2 == "Ready"' | wc -l; }
usage() {
  cat <<MSG
Cluster is up ($(ready_nodes) Ready nodes, $(( $(date +%s) - start )) s). Use it with:
  export KUBECONFIG=$KUBECONFIG_FILE
  kubectl get nodes -o wide
Enter a node: e2e/cluster/node-exec worker-1     Logs: $STATE/nodes/<node>/data/log/
MSG
}

load_base_images() {
  local pause counter redis script scripts=()
  mkdir -p "$PM_CACHE/images"
  cc -O2 -static -o "$PM_CACHE/images/pause" "$e2e/images/pause/pause.c"
  pause=$("$here/image.sh" build localhost/pm-pause:1 "--cmd /pause" "$PM_CACHE/images/pause:/pause")
  # The workload image: counter.py by default; seqwriter.py, linkclient.py and sockets.py run through the pod's command.
  for script in jsonline counter seqwriter linkclient sockets; do scripts+=("$e2e/images/counter/$script.py:/app/$script.py"); done
  counter=$("$here/image.sh" build localhost/pm-counter:e2e \
    "--cmd '[\"python3\",\"-u\",\"/app/counter.py\"]' --port 8080" \
    "$("$here/build-rootfs.sh" image):/" "${scripts[@]}")
  # Debian's Redis, in memory only (no RDB, no AOF); DEBUG is enabled for DEBUG POPULATE (test datasets).
  redis=$("$here/image.sh" build localhost/pm-redis:e2e \
    "--cmd '[\"redis-server\",\"--port\",\"6379\",\"--save\",\"\",\"--appendonly\",\"no\",\"--protected-mode\",\"no\",\"--enable-debug-command\",\"yes\"]' --port 6379" \
    "$("$here/build-rootfs.sh" redis):/")
  "$here/image.sh" load "$pause" localhost/pm-pause:1
  "$here/image.sh" load "$counter" localhost/pm-counter:e2e
  "$here/image.sh" load "$redis" localhost/pm-redis:e2e
}

# A cluster started by older scripts lacks what these configure: its API server was started without the admission
# configuration (node-config.sh writes it only for a new cluster), so it presents no client certificate to webhooks.
current_config() { [ -f "$(node_dir control-plane)/config/admission.yaml" ]; }

all_running=1
for n in $NODES; do node_running "$n" || all_running=0; done
if [ $all_running = 1 ] && [ "$(ready_nodes)" = 3 ]; then
  if current_config; then
    log "reusing the running cluster"
    load_base_images
    usage; exit 0
  fi
  log "the running cluster predates the API server's admission client certificate: rebuilding it"
fi

ensure_host_packages
command -v kubectl >/dev/null || die "kubectl is missing (Debian package kubectl)"
"$here/build-components.sh"
base=$("$here/build-rootfs.sh" node)
"$here/down.sh"
mkdir -p "$STATE"
"$here/pki.sh"

log "creating the node network ($BRIDGE $BRIDGE_IP/$NODE_NET_PREFIX)"
mkdir -p "$HOST_RECORD"
[ -f "$HOST_RECORD/ip_forward" ] || sysctl -n net.ipv4.ip_forward > "$HOST_RECORD/ip_forward"
sysctl -qw net.ipv4.ip_forward=1
ip link add "$BRIDGE" type bridge
ip addr add "$BRIDGE_IP/$NODE_NET_PREFIX" dev "$BRIDGE"
ip link set "$BRIDGE" up
for n in $NODES; do
  ns=$(node_netns "$n") ip=$(node_ip "$n")
  ip netns add "$ns"
  ip link add "$(node_veth "$n")" type veth peer name eth0 netns "$ns"
  ip link set "$(node_veth "$n")" master "$BRIDGE" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$ip/$NODE_NET_PREFIX" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "$BRIDGE_IP"
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
  ip route add "$(node_pod_cidr "$n")" via "$ip"
  for m in $NODES; do [ "$m" = "$n" ] || ip -n "$ns" route add "$(node_pod_cidr "$m")" via "$(node_ip "$m")"; done
done
# Service IPs from the host go through the control-plane node's kube-proxy rules.
ip route add "$SERVICE_CIDR" via "$APISERVER_IP"

for n in $NODES; do
  dir=$(node_dir "$n") cg=$(node_cgroup "$n")
  "$here/node-config.sh" "$n"
  # The kubelet's cgroup root must exist in every hierarchy; a new cpuset starts empty and needs its parent's sets.
  for h in /sys/fs/cgroup/*/; do [ -e "$h/cgroup.procs" ] && mkdir -p "$h$cg"; done
  cat /sys/fs/cgroup/cpuset/cpuset.cpus > "/sys/fs/cgroup/cpuset/$cg/cpuset.cpus"
  cat /sys/fs/cgroup/cpuset/cpuset.mems > "/sys/fs/cgroup/cpuset/$cg/cpuset.mems"
  mkdir -p "$dir/data/log"
  log "starting node $n ($(node_ip "$n"))"
  setsid nsenter --net="/run/netns/$(node_netns "$n")" unshare --mount --uts --propagation private --fork \
    bash -c 'echo $$ > "$1"; shift; exec "$@"' _ "$dir/init.pid" \
    "$here/node-root.sh" "$base" "$dir" "$n" /opt/pm-cluster/node-services.sh "$n" "$(node_ip "$n")" \
    > "$dir/data/log/init.log" 2>&1 < /dev/null &
done

ca=$(base64 -w0 < "$STATE/pki/ca.crt") crt=$(base64 -w0 < "$STATE/pki/admin.crt") key=$(base64 -w0 < "$STATE/pki/admin.key")
umask 077
cat > "$KUBECONFIG_FILE" <<KC
apiVersion: v1
kind: Config
clusters:
- name: podmigration-e2e
  cluster: {server: "https://$APISERVER_IP:$APISERVER_PORT", certificate-authority-data: $ca}
users:
- name: admin
  user: {client-certificate-data: $crt, client-key-data: $key}
contexts:
- name: podmigration-e2e
  context: {cluster: podmigration-e2e, user: admin}
current-context: podmigration-e2e
KC
umask 022

log "waiting for the API server"
for _ in $(seq 1 240); do kc get --raw /readyz >/dev/null 2>&1 && break; sleep 0.5; done
kc get --raw /readyz >/dev/null || die "the API server did not become ready (log: $(node_dir control-plane)/data/log/kube-apiserver.log)"
load_base_images
log "waiting for 3 Ready nodes"
for _ in $(seq 1 240); do [ "$(ready_nodes)" = 3 ] && break; sleep 0.5; done
[ "$(ready_nodes)" = 3 ] || { kc get nodes >&2 || true; die "nodes did not become Ready (logs: $STATE/nodes/<node>/data/log/kubelet.log)"; }
kc label node control-plane node-role.kubernetes.io/control-plane= --overwrite >/dev/null
usage
