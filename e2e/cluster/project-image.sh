#!/usr/bin/env bash
# Builds the project image (operator and node-helper: python3, buildah, skopeo, crictl, this checkout's packages
# and their PyPI dependencies) and loads it into every node of the local cluster.
# The tag is the content key of the image, so that a code change rolls the operator and the helpers; it is
# written to $STATE/project-image for e2e/install.sh.
#   project-image.sh [NAME]    (default localhost/podmigration)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"; . "$here/lib.sh"; . "$here/topology.sh"
name=${1:-localhost/podmigration}
base=$("$here/build-rootfs.sh" node)
pyver=$(chroot "$base" python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')

# The runtime dependencies from pyproject.toml, as wheels for the image's Python (cached by the dependency list).
deps=$(python3 -c 'import tomllib,sys; print(" ".join(tomllib.load(open(sys.argv[1],"rb"))["project"]["dependencies"]))' "$REPO_ROOT/pyproject.toml")
site=$PM_CACHE/pysite/cp$pyver-$(echo "$deps" | sha256sum | cut -c1-12)
if [ ! -f "$site.complete" ]; then
  log "installing Python dependencies for cp$pyver: $deps"
  rm -rf "$site"
  # shellcheck disable=SC2086
  python3 -m pip install -q --no-warn-conflicts --target "$site" --python-version "${pyver:0:1}.${pyver:1}" --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --only-binary=:all: $deps
  touch "$site.complete"
fi

archive=$("$here/image.sh" build "$name:dev" \
  "--env PYTHONPATH=/opt/podmigration/lib:/opt/podmigration/site --env PYTHONUNBUFFERED=1 --workingdir /opt/podmigration" \
  "$base:/" "$site:/opt/podmigration/site" "$BIN_DIR/crictl:/usr/local/bin/crictl" \
  "$REPO_ROOT/operator/podmigration:/opt/podmigration/lib/podmigration" \
  "$REPO_ROOT/node-helper/nodehelper:/opt/podmigration/lib/nodehelper")
key=${archive##*-}
ref=$name:${key%.tar}
"$here/image.sh" load "$archive" "$ref"
echo "$ref" > "$STATE/project-image"
log "image $ref is loaded on every node"
