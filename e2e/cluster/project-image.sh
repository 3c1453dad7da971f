#!/usr/bin/env bash
# Builds the project image from the Containerfile at the top of the checkout and loads it into every node of the
# local cluster. No registry can be reached here, so the Containerfile's BASE is a local image made of the node root
# file system (build-rootfs.sh: Debian trixie with python3, buildah and skopeo) plus crictl: its stages then install
# only what that base lacks (pip for the build stage, from Debian) and the PyPI dependencies.
# The tag is the content key of the image (Containerfile, pyproject.toml, the packages, the base), so that a code
# change rolls the operator and the helpers and an unchanged tree costs nothing; it is written to
# $STATE/project-image for e2e/install.sh.
#   project-image.sh [NAME]    (default localhost/podmigration)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"; . "$here/lib.sh"; . "$here/topology.sh"
name=${1:-localhost/podmigration}
base=$("$here/build-rootfs.sh" node)
app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$REPO_ROOT/charts/podmigration/Chart.yaml")
# The build context: what the Containerfile copies (.dockerignore keeps the rest out of other builds as well).
context() { tar -C "$REPO_ROOT" -c --exclude=__pycache__ --sort=name --mtime=@0 --owner=0 --group=0 \
  Containerfile .dockerignore pyproject.toml operator node-helper contract; }
key=$( { echo "$base $CRICTL_VERSION $app_version"; sha256sum "$BIN_DIR/crictl"; context; } | sha256sum | cut -c1-16)
ref=$name:$key
archive=$PM_CACHE/images/podmigration-$key.tar
mkdir -p "$PM_CACHE/images"
if [ ! -f "$archive" ]; then
  log "building $ref from the Containerfile (base: the node root file system)"
  rm -rf "$STATE/builder" "$STATE/image-context"
  mkdir -p "$STATE/image-context"; context | tar -x -C "$STATE/image-context"
  # The host's resolver and CA bundle (a proxy may re-sign TLS): the build stages reach Debian and PyPI as it does.
  PM_BINDS="$base:/ctx/rootfs $BIN_DIR/crictl:/ctx/crictl $STATE/image-context:/ctx/src /etc/resolv.conf:/etc/resolv.conf
    /etc/ssl/certs/ca-certificates.crt:/ctx/ca-certificates.crt" \
    unshare --mount --uts --propagation private --fork \
    "$here/node-root.sh" "$base" "$STATE/builder" builder bash -euc "
      b() { buildah --storage-driver vfs \"\$@\"; }
      c=\$(b from scratch)
      b copy \$c /ctx/rootfs / >/dev/null
      b copy \$c /ctx/crictl /usr/local/bin/crictl >/dev/null
      b commit --rm -q \$c localhost/podmigration-base:local >/dev/null
      # No CAP_SYS_RESOURCE here (ENVIRONMENT.md): RUN steps keep this shell's limits instead of raising them.
      b bud --isolation chroot -q --ulimit nofile=\$(ulimit -Sn):\$(ulimit -Hn) --ulimit nproc=\$(ulimit -Su):\$(ulimit -Hu) \
        -v /ctx/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro --build-arg BASE=localhost/podmigration-base:local \
        --build-arg APP_VERSION=$app_version -t $ref -f /ctx/src/Containerfile /ctx/src >/dev/null
      b push -q $ref oci-archive:/pm-images/${archive##*/}.tmp:$ref" >&2
  rm -rf "$STATE/builder" "$STATE/image-context"
  mv "$archive.tmp" "$archive"
fi
"$here/image.sh" load "$archive" "$ref"
echo "$ref" > "$STATE/project-image"
log "image $ref is loaded on every node"
