#!/usr/bin/env bash
# demo.sh: the main job on the embedded default (make demo). Starts the
# Kubernetes API test server with three uninitialised nodes, runs ccm-host
# with the lab provider, drives it with kubectl, hot-swaps the lab module
# while Services are created, and prints a summary. Loopback only; it ends
# by itself and cleans up.
# usage: examples/demo.sh [BUILD_DIR]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/ccmhost-demo.XXXXXX")
chmod 700 "$T"
export HOME="$T/home" KUBECONFIG="$T/kubeconfig"
mkdir -p "$HOME"
dpid="" hpid=""
# Under set -e a failing wait (a child killed by our SIGTERM answers 143)
# would end the trap early and make the demo exit 143: no command here
# may fail.
cleanup() {
  if [ -n "$hpid" ]; then kill "$hpid" 2>/dev/null || true; wait "$hpid" 2>/dev/null || true; fi
  if [ -n "$dpid" ]; then kill "$dpid" 2>/dev/null || true; wait "$dpid" 2>/dev/null || true; fi
  rm -rf "$T"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; echo "--- ccm-host log (last 30 lines)" >&2; tail -n 30 "$T/host.log" >&2 || true; exit 1; }
# wait_until SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_until() {
  local limit=$1 what=$2 i=0
  shift 2
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -gt $((limit * 5)) ] && die "timed out after ${limit}s waiting for $what"
    sleep 0.2
  done
}
k() { kubectl --request-timeout=20s "$@"; }
metric() { # metric NAME: sum of a Prometheus counter over its labels
  /usr/bin/python3 - "$port" "$1" <<'PY'
import sys, urllib.request
port, name = sys.argv[1], sys.argv[2]
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=10).read().decode()
total = 0.0
for line in text.splitlines():
    if line.startswith(name + "{") or line.startswith(name + " "):
        total += float(line.rsplit(" ", 1)[1])
print(int(total))
PY
}

metric_ok_calls() { # provider calls that answered ok or not found
  /usr/bin/python3 - "$port" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode()
print(int(sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
              if l.startswith("ccm_provider_calls_total{")
              and ('status="ok"' in l or 'status="not_found"' in l))))
PY
}

step "1. Kubernetes API test server with three nodes carrying the uninitialized taint"
/usr/bin/python3 "$src/tests/doubles/kube_apiserver.py" --port 0 \
  --kubeconfig-out "$KUBECONFIG" > "$T/double.out" 2> "$T/double.err" &
dpid=$!
wait_until 60 "the API server" grep -q '^PORT ' "$T/double.out"
for i in 1 2 3; do
  cat <<YAML
apiVersion: v1
kind: Node
metadata:
  name: lab-node-$i
  labels: {kubernetes.io/hostname: lab-node-$i}
spec:
  taints:
  - {key: node.cloudprovider.kubernetes.io/uninitialized, value: "true", effect: NoSchedule}
---
YAML
done > "$T/nodes.yaml"
k apply -f "$T/nodes.yaml"
for i in 1 2 3; do
  k patch node "lab-node-$i" --subresource=status --type=merge -p \
    '{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}],"addresses":[{"type":"InternalIP","address":"10.0.0.'"$i"'"}]}}' >/dev/null
done
k get nodes -o custom-columns='NAME:.metadata.name,TAINTS:.spec.taints[*].key'

step "2. ccm-host with the lab provider (a private copy of the module, so the demo can swap it)"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -m 700 "$T/state" "$T/modules"
cp "$build/modules/ccm-lab.so" "$T/modules/ccm-lab.so"
chmod 755 "$T/modules/ccm-lab.so"
cat > "$T/host.cfg" <<CFG
cluster_name = "demo";
kubeconfig = "$KUBECONFIG";
listen = "127.0.0.1:$port";
state_dir = "$T/state";
leader_election = { lease_duration_s = 6; renew_deadline_s = 4; retry_period_s = 1; };
providers = ( {
  name = "lab";
  module = "$T/modules/ccm-lab.so";
  config = {
    state_file = "$T/state/lab-state.json";
    ipv4_pools = [ "203.0.113.0/24" ];
    zones = ( { match = "lab-node-*"; zone = "lab-zone-a"; region = "lab-region"; instance_type = "lab.small"; } );
  };
} );
CFG
"$build/ccm-host" --config "$T/host.cfg" > "$T/host.log" 2>&1 &
hpid=$!
wait_until 60 "ccm-host to become leader" grep -q 'became leader\|leader election disabled' "$T/host.log"
grep -E 'generation 1 published|became leader|informers synced' "$T/host.log" | sed 's/^[^ ]* //' | head -5

step "3. Services of type LoadBalancer created with kubectl"
for s in web api db; do
  k create service loadbalancer "$s" --tcp=80:8080 >/dev/null
  echo "service/$s created"
done

step "4. The result"
initialised() { [ -z "$(k get nodes -o jsonpath='{.items[*].spec.taints[?(@.key=="node.cloudprovider.kubernetes.io/uninitialized")].key}')" ]; }
wait_until 60 "the nodes to be initialised" initialised
k get nodes -o custom-columns='NAME:.metadata.name,PROVIDER-ID:.spec.providerID,ZONE:.metadata.labels.topology\.kubernetes\.io/zone,TYPE:.metadata.labels.node\.kubernetes\.io/instance-type,TAINTS:.spec.taints[*].key'
all_ingress() { [ "$(k get svc -o jsonpath='{range .items[?(@.spec.type=="LoadBalancer")]}{.status.loadBalancer.ingress[0].ip}{"\n"}{end}' | grep -c .)" -eq "$1" ]; }
wait_until 60 "every Service to get an ingress IP" all_ingress 3
k get svc -o custom-columns='NAME:.metadata.name,TYPE:.spec.type,EXTERNAL-IP:.status.loadBalancer.ingress[*].ip,FINALIZERS:.metadata.finalizers[*]'
echo
k get events --sort-by=.lastTimestamp -o custom-columns='TYPE:.type,REASON:.reason,OBJECT:.involvedObject.name,COUNT:.count,MESSAGE:.message' | tail -n 12

step "5. Delete a Service: its load balancer is deleted and its IP released"
ip=$(k get svc db -o jsonpath='{.status.loadBalancer.ingress[0].ip}')
k delete svc db --wait=true --timeout=60s
released() { ! grep -q "\"$ip\"" "$T/state/lab-state.json"; }
wait_until 60 "the lab provider to release $ip" released
echo "$ip is free again in the lab provider's state ($(grep -o '"ips"' "$T/state/lab-state.json" | wc -l) load balancers left)"

step "6. Hot-swap the lab module while 20 Services are being created"
swaps_before=$(metric ccm_module_swaps_total)
( for i in $(seq 1 20); do k create service loadbalancer "burst-$i" --tcp=80:8080 >/dev/null; done ) &
cpid=$!
# A rebuilt copy: same code with one byte of new content, so its hash
# changes and SIGHUP loads it as a new generation beside the old one.
cp "$T/modules/ccm-lab.so" "$T/modules/ccm-lab.so.new"
printf '\0' >> "$T/modules/ccm-lab.so.new"
chmod 755 "$T/modules/ccm-lab.so.new"
mv "$T/modules/ccm-lab.so.new" "$T/modules/ccm-lab.so"
kill -HUP "$hpid"
wait "$cpid"
wait_until 90 "all 22 Services to get an ingress IP" all_ingress 22
grep -E 'generation 2 published|state carried over|generation 1 destroyed' "$T/host.log" | sed 's/^[^ ]* //' | head -4

step "Summary"
swaps=$(( $(metric ccm_module_swaps_total) - swaps_before ))
failed_swaps=$(metric ccm_module_failed_swaps_total)
failed_reconciles=$(metric 'ccm_reconcile_total{controller="service",result="error"}')
provider_errors=$(( $(metric ccm_provider_calls_total) - $(metric_ok_calls) ))
lbs=$(k get svc -o jsonpath='{range .items[?(@.spec.type=="LoadBalancer")]}{.metadata.name}{"\n"}{end}' | grep -c .)
with_ip=$(k get svc -o jsonpath='{range .items[?(@.spec.type=="LoadBalancer")]}{.status.loadBalancer.ingress[0].ip}{"\n"}{end}' | grep -c .)
with_fin=$(k get svc -o jsonpath='{range .items[?(@.spec.type=="LoadBalancer")]}{.metadata.finalizers}{"\n"}{end}' | grep -c load-balancer-cleanup)
unique_ips=$(k get svc -o jsonpath='{range .items[?(@.spec.type=="LoadBalancer")]}{.status.loadBalancer.ingress[0].ip}{"\n"}{end}' | sort -u | grep -c .)
nodes_ok=$(k get nodes -o jsonpath='{range .items[*]}{.spec.providerID}{"\n"}{end}' | grep -c '^lab://')
printf '  nodes initialised (providerID lab://, taint removed): %s of 3\n' "$nodes_ok"
printf '  LoadBalancer Services: %s, with an ingress IP: %s, distinct IPs: %s, with the finalizer: %s\n' "$lbs" "$with_ip" "$unique_ips" "$with_fin"
printf '  deleted Service db: IP %s released\n' "$ip"
printf '  module hot-swaps during creation: %s, failed swaps: %s\n' "$swaps" "$failed_swaps"
printf '  failed Service reconciles: %s, provider calls that failed: %s\n' "$failed_reconciles" "$provider_errors"
kill -TERM "$hpid"
wait "$hpid" && hrc=0 || hrc=$?
hpid=""
printf '  ccm-host stopped on SIGTERM with exit status %s\n' "$hrc"
[ "$nodes_ok" -eq 3 ] && [ "$lbs" -eq 22 ] && [ "$with_ip" -eq 22 ] && \
  [ "$unique_ips" -eq 22 ] && [ "$with_fin" -eq 22 ] && [ "$swaps" -ge 1 ] && \
  [ "$failed_swaps" -eq 0 ] && [ "$failed_reconciles" -eq 0 ] && \
  [ "$provider_errors" -eq 0 ] && [ "$hrc" -eq 0 ] || die "the demo did not converge as expected"
echo
echo "demo: everything converged."
