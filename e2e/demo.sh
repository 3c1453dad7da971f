#!/usr/bin/env bash
# `make demo` (after `make install`): starts an in-memory counter behind a Service on
# worker-1, migrates it to worker-2 with `kubectl migrate`, and shows that its state continued.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cluster/versions.sh"; . "$here/cluster/lib.sh"; . "$here/cluster/topology.sh"
export KUBECONFIG=${KUBECONFIG:-$KUBECONFIG_FILE}
migrate=${KUBECTL_MIGRATE:-$REPO_ROOT/.venv/bin/kubectl-migrate}

log "starting the counter pod on worker-1 behind Service demo-counter"
kubectl delete pod,svc -l app=demo-counter --ignore-not-found --wait >/dev/null
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: demo-counter, labels: {app: demo-counter}}
spec:
  nodeName: worker-1
  automountServiceAccountToken: false
  containers:
  - name: counter
    image: localhost/pm-counter:e2e
    imagePullPolicy: IfNotPresent
    ports: [{containerPort: 8080}]
    resources: {requests: {cpu: 10m, memory: 32Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: demo-counter, labels: {app: demo-counter}}
spec:
  selector: {app: demo-counter}
  ports: [{port: 80, targetPort: 8080}]
YAML
kubectl wait --for=condition=Ready pod/demo-counter --timeout 120s >/dev/null
svc=$(kubectl get svc demo-counter -o jsonpath='{.spec.clusterIP}')
read_counter() { python3 -c 'import socket,sys; print(socket.create_connection((sys.argv[1], 80), timeout=5).makefile().readline().strip())' "$svc"; }
for _ in $(seq 1 60); do before=$(read_counter 2>/dev/null) && break; sleep 0.5; done
sleep 2; before=$(read_counter)
echo "before: node $(kubectl get pod demo-counter -o jsonpath='{.spec.nodeName}'), service $svc says $before"

"$migrate" demo-counter --to worker-2

new=$(kubectl get pods -l app=demo-counter --field-selector spec.nodeName=worker-2 -o jsonpath='{.items[0].metadata.name}')
for _ in $(seq 1 60); do after=$(read_counter 2>/dev/null) && break; sleep 0.5; done
echo "after:  pod $new on node worker-2, service $svc says $after"
python3 - "$before" "$after" <<'PY'
import json, sys
b, a = (json.loads(x) for x in sys.argv[1:3])
assert a["token"] == b["token"], "a different process answers: the state did not continue"
assert a["count"] >= b["count"], "the counter went backwards"
print(f"state continued: same process token {a['token']}, count {b['count']} -> {a['count']}")
PY
