#!/usr/bin/env bash
# Builds the helm client from its Go module (cached by version) and prints its path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"; . "$here/lib.sh"
if [ ! -x "$HELM" ]; then
  dir=$PM_CACHE/gobuild/helm-$HELM_VERSION
  mkdir -p "$dir" "$(dirname "$HELM")"
  printf 'module podmigration.dev/e2e-build/helm\ngo 1.26\nrequire helm.sh/helm/v3 %s\n' "$HELM_VERSION" > "$dir/go.mod"
  log "building helm $HELM_VERSION"
  (cd "$dir" && GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" -o "$HELM.tmp" helm.sh/helm/v3/cmd/helm)
  mv "$HELM.tmp" "$HELM"
fi
echo "$HELM"
