#!/usr/bin/env bash
# Builds container images without a registry or a container engine, and loads them into every node.
#   image.sh build NAME:TAG 'BUILDAH CONFIG ARGS' SRC:DEST...  -> prints the OCI archive (cached by content)
#   image.sh load ARCHIVE NAME:TAG                               -> loads it into every running node (skips nodes that have it)
# SRC may be a directory or a file; the image is `buildah from scratch` + those copies + the config.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"; . "$here/lib.sh"; . "$here/topology.sh"
images=$PM_CACHE/images
mkdir -p "$images"

build() {
  local ref=$1 config=$2; shift 2
  local key name archive binds="" copies="" i=0 src
  # The key covers the reference, config and the content of every source (a cached rootfs is keyed by its path).
  key=$( { echo "$ref $config $*"; for s in "$@"; do src=${s%%:*}
           case $src in "$PM_CACHE"/rootfs/*) ;; *) tar -C "$(dirname "$src")" -c --exclude=__pycache__ --sort=name --mtime=@0 --owner=0 --group=0 "$(basename "$src")";; esac
         done; } | sha256sum | cut -c1-16)
  name=${ref##*/}; archive=$images/${name%%:*}-$key.tar
  [ -f "$archive" ] && { echo "$archive"; return; }
  for s in "$@"; do
    i=$((i + 1)); binds="$binds ${s%%:*}:/ctx/$i"
    copies="$copies; buildah --storage-driver vfs copy \$c /ctx/$i ${s#*:} >/dev/null"
  done
  log "building image $ref"
  rm -rf "$STATE/builder"
  PM_BINDS="$binds" unshare --mount --uts --propagation private --fork \
    "$here/node-root.sh" "$("$here/build-rootfs.sh" node)" "$STATE/builder" builder bash -euc "
      c=\$(buildah --storage-driver vfs from scratch) $copies
      buildah --storage-driver vfs config $config \$c
      buildah --storage-driver vfs commit --rm -q \$c oci-archive:/pm-images/${archive##*/}.tmp:$ref >/dev/null" >&2
  rm -rf "$STATE/builder"
  mv "$archive.tmp" "$archive"
  echo "$archive"
}

load() {
  local archive=$1 ref=$2 n stamp
  for n in $NODES; do
    stamp=$(node_dir "$n")/images/$(echo "${archive##*/} $ref" | sha256sum | cut -c1-16)
    [ -f "$stamp" ] && continue
    "$here/node-exec" "$n" skopeo copy -q "oci-archive:/pm-images/${archive##*/}" "containers-storage:$ref" >&2
    mkdir -p "${stamp%/*}"; touch "$stamp"
    log "loaded $ref into $n"
  done
}

cmd=${1:?usage: image.sh build|load ...}; shift
case $cmd in
  build) build "$@" ;;
  load) load "$@" ;;
  *) die "unknown command $cmd" ;;
esac
