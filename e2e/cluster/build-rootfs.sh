#!/usr/bin/env bash
# Builds a Debian root filesystem with debootstrap and apt, cached by suite and package list.
#   build-rootfs.sh node   -> the root filesystem every cluster node runs in (CRIU 4, runc, conmon, ...)
#   build-rootfs.sh image  -> the base of the workload images (python3-minimal)
#   build-rootfs.sh redis  -> the root of the Redis test image (Debian's redis-server)
# Prints the directory. A second run with the same inputs finds the stamp file and does nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"
. "$here/lib.sh"

kind=${1:?usage: build-rootfs.sh node|image|redis}
case $kind in
  node) packages=$NODE_PACKAGES sid_packages=$NODE_SID_PACKAGES ;;
  image) packages=$IMAGE_PACKAGES sid_packages="" ;;
  redis) packages=$REDIS_PACKAGES sid_packages="" ;;
  *) die "unknown root filesystem kind: $kind" ;;
esac
key=$(printf '%s %s %s' "$DEBIAN_SUITE" "$packages" "$sid_packages" | sha256sum | cut -c1-12)
dir=$PM_CACHE/rootfs/$kind-$DEBIAN_SUITE-$key
if [ -f "$dir.complete" ]; then echo "$dir"; exit 0; fi

ensure_host_packages
rm -rf "$dir" "$dir.tmp"
mkdir -p "$(dirname "$dir")"
log "debootstrap $DEBIAN_SUITE ($kind) into $dir"
debootstrap --variant=minbase "$DEBIAN_SUITE" "$dir.tmp" >"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; die "debootstrap failed (log: $dir.log)"; }

log "installing into the $kind root filesystem: $packages${sid_packages:+ (from sid: $sid_packages)}"
SID=$sid_packages SUITE=$DEBIAN_SUITE unshare --mount --propagation private bash -euc '
  root=$1; shift
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
  if [ -n "$SID" ]; then
    # sid is pinned low so that only these packages (and what they need) come from it; its Release is past Valid-Until.
    sed "s/ $SUITE / sid /" "$root/etc/apt/sources.list" > "$root/etc/apt/sources.list.d/sid.list"
    printf "Package: *\nPin: release a=unstable\nPin-Priority: 100\n" > "$root/etc/apt/preferences.d/sid"
    chroot "$root" apt-get -o Acquire::Check-Valid-Until=false update -qq
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t sid $SID
    rm "$root/etc/apt/sources.list.d/sid.list" "$root/etc/apt/preferences.d/sid"
  fi
  chroot "$root" apt-get clean
' _ "$dir.tmp" $packages >>"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; die "package install failed (log: $dir.log)"; }
rm -rf "$dir.tmp"/var/lib/apt/lists/* "$dir.tmp"/usr/share/doc "$dir.tmp"/usr/share/man "$dir.tmp"/usr/share/locale
: > "$dir.tmp/etc/resolv.conf"
mv "$dir.tmp" "$dir"
touch "$dir.complete"
log "$kind root filesystem ready: $dir"
echo "$dir"
