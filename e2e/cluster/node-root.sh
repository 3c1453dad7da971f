#!/usr/bin/env bash
# Runs inside fresh mount and UTS namespaces (see start_node in up.sh): lays an overlay of the shared
# node root filesystem, binds the node's own real directories where overlayfs cannot serve
# (container storage, kubelet state), pivots into it and execs the command.
#   node-root.sh BASE_ROOTFS NODE_DIR HOSTNAME COMMAND...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"; . "$here/topology.sh"
base=$1 dir=$2 host=$3; shift 3

mkdir -p "$dir"/{upper,work,root,config} "$dir"/data/{containers,kubelet,etcd,log,cni} "$PM_CACHE/images"
r=$dir/root
mount -t overlay overlay -o "lowerdir=$base,upperdir=$dir/upper,workdir=$dir/work" "$r"
bind() {
  if [ -d "$1" ]; then mkdir -p "$r$2"; else mkdir -p "$(dirname "$r$2")"; touch "$r$2"; fi
  mount --bind "$1" "$r$2"
  [ "${3:-}" = ro ] && mount -o remount,bind,ro "$r$2" || true
}
bind "$dir/data/containers" /var/lib/containers
bind "$dir/data/kubelet" /var/lib/kubelet
bind "$dir/data/etcd" /var/lib/etcd
bind "$dir/data/cni" /var/lib/cni
bind "$dir/data/log" /var/log/pm
bind "$dir/config" /etc/pm ro
bind "$BIN_DIR" /usr/local/pm-bin ro
bind "$here" /opt/pm-cluster ro
bind "$PM_CACHE/images" /pm-images
[ -d "$STATE/pki" ] && bind "$STATE/pki" /etc/kubernetes/pki ro
# Extra binds for one-off uses such as image builds: PM_BINDS="HOST_DIR:INSIDE_DIR ..."
for b in ${PM_BINDS:-}; do bind "${b%%:*}" "${b#*:}"; done
mount -t tmpfs -o mode=755 tmpfs "$r/run"
mount -t proc proc "$r/proc"
# A fresh sysfs shows this node's network namespace; cgroups are the host's.
mount -t sysfs sysfs "$r/sys"
mount --rbind /sys/fs/cgroup "$r/sys/fs/cgroup"
# hugetlb is a cgroup2-only controller on these hybrid hosts, where runc (cgroup v1 mode) cannot set its limits:
# hide the hugepage sizes so that the kubelet asks for none.
mount -t tmpfs -o ro,mode=755,size=4k tmpfs "$r/sys/kernel/mm/hugepages"
mount --rbind /dev "$r/dev"
hostname "$host"

cd "$r"
mkdir -p .oldroot
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot
mount --make-rshared /
export PATH=/usr/local/pm-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
exec "$@"
