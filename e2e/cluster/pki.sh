#!/usr/bin/env bash
# Creates the cluster's CA and every certificate the components use (once; kept in $STATE/pki).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"; . "$here/topology.sh"
pki=$STATE/pki
[ -f "$pki/.complete" ] && exit 0
rm -rf "$pki"; mkdir -p "$pki"; chmod 700 "$pki"
cd "$pki"
log "creating cluster PKI in $pki"
# Strict X.509 verification (Python >= 3.13 by default) wants key usage on the CA and key identifiers everywhere.
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=podmigration-e2e-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
  -addext "subjectKeyIdentifier=hash" -keyout ca.key -out ca.crt 2>/dev/null

# cert NAME SUBJECT [SAN]  -> NAME.crt / NAME.key signed by the CA
cert() {
  local name=$1 subj=$2 san=${3:-}
  openssl req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$name.key" -out "$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid,issuer"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
cert apiserver "/CN=kube-apiserver" \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:$APISERVER_IP,IP:$KUBERNETES_SERVICE_IP,IP:127.0.0.1"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
# What the API server presents to admission webhooks (node-config.sh): no group, a name only the operator's
# webhooks.clientAuth.allowedNames knows.
cert apiserver-admission "/CN=kube-apiserver-admission"
cert admin "/O=system:masters/CN=kubernetes-admin"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert kube-proxy "/CN=system:kube-proxy"
for n in $NODES; do
  cert "kubelet-$n" "/O=system:nodes/CN=system:node:$n" "DNS:$n,IP:$(node_ip "$n")"
done
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
chmod 600 ./*.key
touch .complete
