#!/usr/bin/env bash
# Writes the configuration of one node into $STATE/nodes/<node>/config (seen as /etc/pm inside the node).
#   node-config.sh NODE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"; . "$here/topology.sh"
n=$1
cfg=$(node_dir "$n")/config
mkdir -p "$cfg"
ip=$(node_ip "$n")
pki=/etc/kubernetes/pki

# kubeconfig FILE CERT: a kubeconfig for use inside a node, with the certificate files of $STATE/pki.
kubeconfig() {
  cat > "$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: pm
  cluster: {server: "https://$APISERVER_IP:$APISERVER_PORT", certificate-authority: $pki/ca.crt}
users:
- name: $2
  user: {client-certificate: $pki/$2.crt, client-key: $pki/$2.key}
contexts:
- name: pm
  context: {cluster: pm, user: $2}
current-context: pm
KC
}

cat > "$cfg/crio.conf" <<EOF2
[crio]
root = "/var/lib/containers/storage"
runroot = "/run/containers/storage"
storage_driver = "overlay"
log_dir = "/var/log/pm/pods"

[crio.api]
listen = "/var/run/crio/crio.sock"

[crio.runtime]
default_runtime = "runc"
cgroup_manager = "cgroupfs"
conmon_cgroup = "pod"
drop_infra_ctr = true
enable_criu_support = true
pinns_path = "/usr/local/pm-bin/pinns"
log_level = "info"

[crio.runtime.runtimes.runc]
runtime_path = "/usr/bin/runc"
runtime_type = "oci"
runtime_root = "/run/runc"
monitor_path = "/usr/bin/conmon"

[crio.image]
# No signature_policy here: CRI-O then refuses every restore, podmigration's too (README, node requirements);
# test_foreign_checkpoints.py sets one for its namespace alone.
pause_image = "localhost/pm-pause:1"

[crio.network]
network_dir = "/etc/cni/net.d/"
plugin_dirs = ["/usr/lib/cni"]
EOF2

cat > "$cfg/storage.conf" <<'EOF2'
[storage]
driver = "overlay"
graphroot = "/var/lib/containers/storage"
runroot = "/run/containers/storage"
EOF2
echo '{"default": [{"type": "insecureAcceptAnything"}]}' > "$cfg/policy.json"
echo 'unqualified-search-registries = []' > "$cfg/registries.conf"

cat > "$cfg/10-pm-bridge.conflist" <<EOF2
{
  "cniVersion": "1.0.0",
  "name": "pm-pods",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$(node_pod_cidr "$n")"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "/var/lib/cni/networks"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF2

taints=""
[ "$n" = control-plane ] && taints='registerWithTaints: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]'
cat > "$cfg/kubelet.yaml" <<EOF2
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $pki/kubelet-$n.crt
tlsPrivateKeyFile: $pki/kubelet-$n.key
containerRuntimeEndpoint: unix:///var/run/crio/crio.sock
cgroupDriver: cgroupfs
cgroupRoot: /$(node_cgroup "$n")
failCgroupV1: false
failSwapOn: false
resolvConf: /etc/resolv.conf
# Images are loaded by hand (no registry): never garbage-collect them, never evict for disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
featureGates: {ContainerCheckpoint: true}
$taints
EOF2
kubeconfig "$cfg/kubelet.kubeconfig" "kubelet-$n"

cat > "$cfg/kube-proxy.yaml" <<EOF2
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: /etc/pm/kube-proxy.kubeconfig}
hostnameOverride: $n
bindAddress: $ip
clusterCIDR: $CLUSTER_CIDR
# Service traffic from the host or another node returns through this node only when masqueraded.
iptables: {masqueradeAll: true}
# Per-node network namespaces cannot change the host-wide conntrack table size.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF2
kubeconfig "$cfg/kube-proxy.kubeconfig" kube-proxy
if [ "$n" = control-plane ]; then
  kubeconfig "$cfg/controller-manager.kubeconfig" controller-manager
  kubeconfig "$cfg/scheduler.kubeconfig" scheduler
  # The API server's client certificate to admission webhooks (--admission-control-config-file, node-services.sh),
  # so that the chart's webhooks.clientAuth can make the operator answer it alone (README "Webhook callers"). The
  # kubeconfig's user is picked by the webhook Service's host, <service>.<namespace>.svc[:443], exactly, then as
  # *.<namespace>.svc, then *.svc (k8s.io/apiserver/pkg/util/webhook/authentication.go): *.svc covers a release in
  # any namespace.
  webhook_auth="{apiVersion: apiserver.config.k8s.io/v1, kind: WebhookAdmissionConfiguration, kubeConfigFile: /etc/pm/admission-webhooks.kubeconfig}"
  cat > "$cfg/admission.yaml" <<EOF2
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- {name: ValidatingAdmissionWebhook, configuration: $webhook_auth}
- {name: MutatingAdmissionWebhook, configuration: $webhook_auth}
EOF2
  cat > "$cfg/admission-webhooks.kubeconfig" <<KC
apiVersion: v1
kind: Config
users:
- name: "*.svc"
  user: {client-certificate: $pki/apiserver-admission.crt, client-key: $pki/apiserver-admission.key}
KC
fi
