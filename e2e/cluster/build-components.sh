#!/usr/bin/env bash
# Builds the upstream Kubernetes components, CRI-O, pinns and crictl from their Go modules into a
# directory keyed by version. A second run finds the stamp file and builds nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"
. "$here/lib.sh"

[ -f "$BIN_DIR/.complete" ] && { log "components $KUBE_VERSION / CRI-O $CRIO_VERSION: cached in $BIN_DIR"; exit 0; }
ensure_host_packages
mkdir -p "$BIN_DIR"
work=$PM_CACHE/gobuild
export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local

kube_minor=${KUBE_VERSION#v1.}; kube_minor=${kube_minor%%.*}
staging_version=v0.${KUBE_VERSION#v1.}
staging="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider cluster-bootstrap
  code-generator component-base component-helpers controller-manager cri-api cri-client cri-streaming
  csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
  kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
  sample-apiserver sample-cli-plugin sample-controller streaming"

build_kube() {
  local dir=$work/kube-$KUBE_VERSION
  mkdir -p "$dir"
  {
    echo "module podmigration.dev/e2e-build/kube"
    echo "go 1.26"
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    for m in $staging; do echo "replace k8s.io/$m => k8s.io/$m $staging_version"; done
  } > "$dir/go.mod"
  local v=k8s.io/component-base/version
  local ldflags="-s -w -X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$kube_minor \
    -X $v.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
  log "building Kubernetes $KUBE_VERSION (kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, kubelet)"
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubelet)
}

build_crio() {
  local dir=$work/crio-$CRIO_VERSION
  mkdir -p "$dir"
  printf 'module podmigration.dev/e2e-build/crio\ngo 1.26\nrequire github.com/cri-o/cri-o %s\n' "$CRIO_VERSION" > "$dir/go.mod"
  log "building CRI-O $CRIO_VERSION"
  (cd "$dir" && CGO_ENABLED=1 go build -trimpath \
    -tags "containers_image_ostree_stub exclude_graphdriver_btrfs containers_image_openpgp seccomp libsqlite3" \
    -ldflags "-s -w" -o "$BIN_DIR/crio" github.com/cri-o/cri-o/cmd/crio)
  local src
  src=$(cd "$dir" && go list -m -f '{{.Dir}}' github.com/cri-o/cri-o)
  log "building pinns"
  cc -O2 -static -o "$BIN_DIR/pinns" "$src"/pinns/src/*.c
}

build_crictl() {
  local dir=$work/crictl-$CRICTL_VERSION
  mkdir -p "$dir"
  printf 'module podmigration.dev/e2e-build/crictl\ngo 1.26\nrequire sigs.k8s.io/cri-tools %s\n' "$CRICTL_VERSION" > "$dir/go.mod"
  log "building crictl $CRICTL_VERSION"
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/crictl" sigs.k8s.io/cri-tools/cmd/crictl)
}

build_crictl
build_crio
build_kube
touch "$BIN_DIR/.complete"
log "components built into $BIN_DIR"
