#!/usr/bin/env bash
# standby.sh: a standby replica does no mutating work. Two ccm-host
# processes with every controller share one API double; the standby
# authenticates with its own token, so the double's request log tells the
# two apart. While the leader initialises Nodes, deletes a vanished one,
# creates routes and ensures load balancers, the standby sees every object
# (its controllers set each key aside), yet sends no write but Lease
# reads, makes no provider call and its lab state stays empty.
. "$(dirname "$0")/lib.sh"
need_module ccm-lab.so

LEASE_NS=kube-system
LEASE=ccm-standby
WAIT=${CCM_HOSTS_WAIT:-120}
N_SVC=5
STANDBY_TOKEN="standby-$$-$RANDOM$RANDOM"

start_double --request-log "$T/requests.jsonl" \
  --extra-token "standby=$STANDBY_TOKEN"

# s.py KUBECONFIG CMD ...: the workload and the checks.
#   token FILE TOKEN: write a copy of the kubeconfig that uses TOKEN.
#   nodes: create sb-1, sb-2 (Ready, uninitialised, podCIDRs) and sb-gone
#     (NotReady, not an instance the lab knows).
#   services N: create N LoadBalancer Services.
#   converged N TIMEOUT: wait until N Services have an ingress, sb-1 and
#     sb-2 lost the uninitialized taint and sb-gone is deleted.
#   writes LOG USER: print USER's non-GET requests other than Leases.
#   metric URL NAME: print the sum of the samples of NAME at URL.
cat >"$T/s.py" <<'PY'
import json, os, sys, time
sys.path.insert(0, os.path.join(os.environ["CCM_SOURCE_DIR"], "tests/hosts"))
from hostkube import Kube, NODES, SVCS, metric_sum, metrics_text

k = Kube(sys.argv[1])
req = k.req
TAINT = "node.cloudprovider.kubernetes.io/uninitialized"

def node(name, ready, cidr):
    req("POST", NODES, {
        "metadata": {"name": name},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr],
                 "taints": [{"key": TAINT, "value": "true", "effect": "NoSchedule"}]}})
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    req("PATCH", "/api/v1/nodes/%s/status" % name, {"status": {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                        "lastHeartbeatTime": now, "lastTransitionTime": now,
                        "reason": "KubeletReady" if ready else "KubeletNotReady"}],
        "addresses": [{"type": "InternalIP", "address": "10.0.0.%d" % (len(name) + ready)},
                      {"type": "Hostname", "address": name}]}},
        "application/merge-patch+json")

def converged(n):
    svcs = req("GET", SVCS)["items"]
    ready = [s for s in svcs if (s.get("status", {}).get("loadBalancer", {})
                                 .get("ingress"))]
    nodes = {x["metadata"]["name"]: x for x in req("GET", NODES)["items"]}
    tainted = [k for k, v in nodes.items()
               if any(t.get("key") == TAINT for t in v.get("spec", {}).get("taints") or [])]
    return (len(ready) >= n and "sb-gone" not in nodes and not tainted,
            "%d/%d ingress, nodes %s, tainted %s" % (len(ready), n, sorted(nodes), tainted))

cmd = sys.argv[2]
if cmd == "token":
    k.with_token(sys.argv[3], sys.argv[4])
elif cmd == "nodes":
    node("sb-1", True, "10.244.1.0/24")
    node("sb-2", True, "10.244.2.0/24")
    node("sb-gone", False, "10.244.3.0/24")
elif cmd == "services":
    for i in range(int(sys.argv[3])):
        req("POST", SVCS, {
            "metadata": {"name": "sb-svc-%d" % i},
            "spec": {"type": "LoadBalancer",
                     "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
elif cmd == "converged":
    deadline = time.monotonic() + float(sys.argv[4])
    while True:
        ok, why = converged(int(sys.argv[3]))
        if ok:
            print(why)
            sys.exit(0)
        if time.monotonic() > deadline:
            sys.exit("not converged: " + why)
        time.sleep(0.3)
elif cmd == "writes":
    for line in open(sys.argv[3]):
        e = json.loads(line)
        if (e.get("user") == sys.argv[4] and e["method"] != "GET"
                and "/apis/coordination.k8s.io/" not in e["path"]):
            print(e["method"], e["path"], e["status"])
elif cmd == "metric":
    print(int(metric_sum(metrics_text(sys.argv[3]), sys.argv[4])))
else:
    sys.exit("unknown command " + cmd)
PY
s() { "$PY" "$T/s.py" "$kubeconfig" "$@"; }

s token "$T/kubeconfig-standby" "$STANDBY_TOKEN"

write_cfg() {
  local n=$1 kc=$2
  mkdir -p "$T/state$n"
  cat >"$T/host$n.cfg" <<CFG
state_dir = "$T/state$n";
kubeconfig = "$kc";
listen = "127.0.0.1:0";
controllers = ["*"];
cluster_cidr = "10.244.0.0/16";
node_monitor_period_s = 1;
route_reconcile_period_s = 1;
leader_election = {
  enabled = true;
  lease_name = "$LEASE";
  lease_namespace = "$LEASE_NS";
  lease_duration_s = 30;
  renew_deadline_s = 20;
  retry_period_s = 1;
};
providers = (
  { name = "lab"; module = "$CCM_MODULE_DIR/ccm-lab.so"; default = true;
    config = { state_file = "$T/lab$n.json"; ipv4_pools = ["192.0.2.0/24"];
               nodes = ["sb-1", "sb-2"]; }; }
);
CFG
}

declare -A pid log url
start_host() {
  local n=$1
  log[$n]="$T/host$n.log"
  "$CCM_HOST" --config "$T/host$n.cfg" >"${log[$n]}" 2>&1 &
  pid[$n]=$!
  cleanup_hooks+=("kill -KILL ${pid[$n]} 2>/dev/null; wait ${pid[$n]} 2>/dev/null")
  wait_log "${log[$n]}" 'serving /healthz /readyz /metrics on 127\.0\.0\.1:[0-9]+' "${pid[$n]}"
  url[$n]="http://$(sed -nE 's|.*serving /healthz /readyz /metrics on (127\.0\.0\.1:[0-9]+).*|\1|p' "${log[$n]}" | head -n 1)/metrics"
}

# The leader first, then the standby with its own token.
write_cfg 1 "$kubeconfig"
write_cfg 2 "$T/kubeconfig-standby"
start_host 1
wait_log "${log[1]}" "became leader as " "${pid[1]}"
start_host 2
wait_log "${log[2]}" "not leader until the lease is acquired" "${pid[2]}"
wait_log "${log[2]}" "informers synced" "${pid[2]}"

s nodes
s services "$N_SVC"
out=$(s converged "$N_SVC" "$WAIT") || {
  tail -n 30 "${log[1]}" >&2
  fail "the leader did not converge: $out"
}
echo "leader converged: $out"

# The standby saw every Service: its controller set each one aside.
for (( i = 0; i < WAIT * 5; i++ )); do
  skips=$("$PY" "$T/s.py" "$kubeconfig" metric "${url[2]}" ccm_service_not_leader_skips_total)
  [ "$skips" -ge "$N_SVC" ] && break
  sleep 0.2
done
[ "$skips" -ge "$N_SVC" ] || fail "the standby set aside $skips Service keys, want >= $N_SVC"
# Let its node, lifecycle (1 s) and route (1 s) loops run a few rounds.
sleep 3

grep -q "became leader" "${log[2]}" && fail "the standby became leader"
writes=$(s writes "$T/requests.jsonl" standby)
[ -z "$writes" ] || fail "the standby wrote to the API: $writes"
reads=$(grep -c '"user": "standby"' "$T/requests.jsonl" || true)
[ "$reads" -gt 0 ] || fail "no request of the standby in the request log"
calls=$(s metric "${url[2]}" ccm_provider_calls_total)
[ "$calls" -eq 0 ] || fail "the standby made $calls provider calls"
leader_calls=$(s metric "${url[1]}" ccm_provider_calls_total)
[ "$leader_calls" -gt 0 ] || fail "the leader shows no provider call: /metrics unreadable?"
if [ -f "$T/lab2.json" ] && grep -q '192\.0\.2\.' "$T/lab2.json"; then
  fail "the standby's lab state holds load balancers: $(cat "$T/lab2.json")"
fi
echo "standby: $skips Service keys set aside, $reads requests (all reads), 0 provider calls; leader: $leader_calls provider calls"

for n in 2 1; do
  kill -TERM "${pid[$n]}"
  wait_exit "${pid[$n]}"
  [ "$rc" -eq 0 ] || { tail -n 20 "${log[$n]}" >&2; fail "host $n: exit status $rc"; }
done
echo "ok"
