# Pinned versions of every component of the local cluster; sourced by the other scripts.
# A change here changes the cache keys, so the next cluster-up rebuilds exactly what changed.
KUBE_VERSION=v1.36.3
CRIO_VERSION=v1.36.3
CRICTL_VERSION=v1.36.0
HELM_VERSION=v3.22.0
DEBIAN_SUITE=trixie
# Debian packages of the node root filesystem (CRIU >= 4 is why it is trixie, not the host's bookworm).
NODE_PACKAGES="criu runc conmon buildah skopeo netavark etcd-server containernetworking-plugins iptables busybox-static \
  ca-certificates iproute2 procps util-linux mount kmod socat conntrack ethtool python3 zstd"
# Taken from Debian sid instead: CRIU 4.1.1 (trixie) cannot dump a TCP socket on kernel 6.18
# (getsockopt SO_PASSCRED answers EOPNOTSUPP); CRIU 4.2.1 can.
NODE_SID_PACKAGES="criu"
# Debian packages of the workload base image (the Python-based test counter).
IMAGE_PACKAGES="python3-minimal"
# Debian packages of the Redis test image (a real server that keeps client connections open).
REDIS_PACKAGES="redis-server"

PM_CACHE=${PM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/podmigration}
BIN_DIR=$PM_CACHE/bin/kube-$KUBE_VERSION-crio-$CRIO_VERSION-crictl-$CRICTL_VERSION
HELM=$PM_CACHE/bin/helm-$HELM_VERSION/helm
