#!/usr/bin/env bash
# The init of one node, run inside it by node-root.sh: installs /etc/pm config, then starts and
# supervises the node's daemons (restarted when they exit), each logging to /var/log/pm/<name>.log.
#   node-services.sh NODE NODE_IP
set -uo pipefail
n=$1 ip=$2
pki=/etc/kubernetes/pki
mkdir -p /etc/crio /etc/containers /etc/cni/net.d /var/log/pm/pods /var/run/crio
cp /etc/pm/crio.conf /etc/crio/crio.conf
rm -rf /etc/crio/crio.conf.d
cp /etc/pm/storage.conf /etc/pm/policy.json /etc/pm/registries.conf /etc/containers/
rm -f /etc/cni/net.d/*; cp /etc/pm/10-pm-bridge.conflist /etc/cni/net.d/
printf "runtime-endpoint: unix:///var/run/crio/crio.sock\nimage-endpoint: unix:///var/run/crio/crio.sock\n" > /etc/crictl.yaml
echo "nameserver 127.0.0.1" > /etc/resolv.conf
printf '127.0.0.1 localhost\n%s %s\n' "$ip" "$n" > /etc/hosts

say() { printf '%s %s\n' "$(date +%T)" "$*" >> /var/log/pm/supervisor.log; }
# supervise NAME CMD...: run CMD forever, restarting it a second after it exits.
supervise() {
  local name=$1; shift
  ( while :; do
      say "starting $name"
      "$@" >> "/var/log/pm/$name.log" 2>&1
      say "$name exited with $?"
      sleep 1
    done ) &
}
wait_for() { local i; for i in $(seq 1 "$2"); do eval "$1" >/dev/null 2>&1 && return 0; sleep 0.5; done; say "timed out waiting for: $1"; return 1; }

if [ "$n" = control-plane ]; then
  supervise etcd etcd --name "$n" --data-dir /var/lib/etcd --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
    --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster "$n=http://127.0.0.1:2380" \
    --unsafe-no-fsync --snapshot-count 10000
  supervise kube-apiserver kube-apiserver --advertise-address "$ip" --bind-address 0.0.0.0 --secure-port 6443 \
    --etcd-servers http://127.0.0.1:2379 --service-cluster-ip-range 10.96.0.0/16 --allow-privileged=true \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --admission-control-config-file /etc/pm/admission.yaml \
    --client-ca-file $pki/ca.crt --tls-cert-file $pki/apiserver.crt --tls-private-key-file $pki/apiserver.key \
    --kubelet-client-certificate $pki/apiserver-kubelet-client.crt --kubelet-client-key $pki/apiserver-kubelet-client.key \
    --kubelet-certificate-authority $pki/ca.crt --kubelet-preferred-address-types InternalIP \
    --service-account-key-file $pki/sa.pub --service-account-signing-key-file $pki/sa.key \
    --service-account-issuer https://kubernetes.default.svc.cluster.local --endpoint-reconciler-type lease
  wait_for "[ -n \"\$(ss -Hltn 'sport = :6443')\" ]" 120
  supervise kube-controller-manager kube-controller-manager --kubeconfig /etc/pm/controller-manager.kubeconfig \
    --authentication-kubeconfig /etc/pm/controller-manager.kubeconfig --authorization-kubeconfig /etc/pm/controller-manager.kubeconfig \
    --leader-elect=false --use-service-account-credentials --service-account-private-key-file $pki/sa.key \
    --root-ca-file $pki/ca.crt --cluster-signing-cert-file $pki/ca.crt --cluster-signing-key-file $pki/ca.key \
    --allocate-node-cidrs=false --bind-address 127.0.0.1
  supervise kube-scheduler kube-scheduler --kubeconfig /etc/pm/scheduler.kubeconfig \
    --authentication-kubeconfig /etc/pm/scheduler.kubeconfig --authorization-kubeconfig /etc/pm/scheduler.kubeconfig \
    --leader-elect=false --bind-address 127.0.0.1
fi

# CRI-O's working directory: a directory of its own (the chart's nodeHelper.runtimeWorkingDir default), where the
# node-helper links checkpoint archives for CRI-O to restore from, so that the helper mounts that and not the node's /.
crio_cwd=/var/lib/podmigration/runtime-cwd
mkdir -p -m 0700 "$crio_cwd"
supervise crio env -C "$crio_cwd" crio --config /etc/crio/crio.conf
wait_for "[ -S /var/run/crio/crio.sock ]" 120
supervise kubelet kubelet --config /etc/pm/kubelet.yaml --kubeconfig /etc/pm/kubelet.kubeconfig \
  --hostname-override "$n" --node-ip "$ip" --v 2
supervise kube-proxy kube-proxy --config /etc/pm/kube-proxy.yaml
say "node $n started"
wait
