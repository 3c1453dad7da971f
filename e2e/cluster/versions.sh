# Pinned versions of every component of the local cluster; sourced by the other scripts.
# A change here changes the cache keys, so the next cluster-up rebuilds exactly what changed.
KUBE_VERSION=v1.36.3
CRIO_VERSION=v1.36.3
CRICTL_VERSION=v1.36.0
DEBIAN_SUITE=trixie
# Debian packages of the node root filesystem (CRIU >= 4 is why it is trixie, not the host's bookworm).
NODE_PACKAGES="criu runc conmon buildah skopeo netavark etcd-server containernetworking-plugins iptables busybox-static \
  ca-certificates iproute2 procps util-linux mount kmod socat conntrack ethtool python3-minimal zstd"
# Debian packages of the workload base image (the Python-based test counter).
IMAGE_PACKAGES="python3-minimal"

PM_CACHE=${PM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/podmigration}
BIN_DIR=$PM_CACHE/bin/kube-$KUBE_VERSION-crio-$CRIO_VERSION-crictl-$CRICTL_VERSION
