# Topology of the local cluster; sourced by the other scripts.
# Each node: its own network namespace (pm-<node>), IP on the host bridge, pod subnet, cgroup root and filesystem view.
NODES="control-plane worker-1 worker-2"
BRIDGE=pm-br0
BRIDGE_IP=10.213.0.1
NODE_NET_PREFIX=24
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
CLUSTER_CIDR=10.244.0.0/16
APISERVER_PORT=6443

node_index() { case $1 in control-plane) echo 0 ;; worker-1) echo 1 ;; worker-2) echo 2 ;; *) return 1 ;; esac; }
node_ip() { echo "10.213.0.$((10 + $(node_index "$1")))"; }
node_pod_cidr() { echo "10.244.$(node_index "$1").0/24"; }
node_netns() { echo "pm-$1"; }
node_veth() { echo "pmv$(node_index "$1")"; }  # interface names are at most 15 characters
node_cgroup() { echo "pm-$1"; }
APISERVER_IP=$(node_ip control-plane)

# Where the cluster lives: state in the checkout (git-ignored), build caches outside it.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${PM_STATE:-$REPO_ROOT/.e2e}
KUBECONFIG_FILE=$STATE/kubeconfig
# Host settings the cluster changes, kept once per machine (not per checkout), so that whichever checkout removes
# the cluster puts back what the host had before any cluster ran.
HOST_RECORD=/run/podmigration-e2e
node_dir() { echo "$STATE/nodes/$1"; }
