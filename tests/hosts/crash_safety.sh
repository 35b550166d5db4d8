#!/usr/bin/env bash
# crash_safety.sh: the real ccm-host (lab provider, API double with TLS and
# a token) killed with SIGKILL at random points while it ensures and
# deletes load balancers, 20 times, restarted each time. After every kill
# and at the end: no load balancer leaks (each one in the lab state file
# belongs to an existing Service that carries our finalizer and records
# that load-balancer name), so no Service lacks the finalizer while its
# load balancer exists. Then a restart with nothing changed makes 0
# mutating provider calls (ccm_provider_calls_total from /metrics). Seeded:
# CCM_CRASH_SEED=N replays a run; CCM_CRASH_ROUNDS sets the kill count.
. "$(dirname "$0")/lib.sh"
need_module ccm-lab.so

SEED=${CCM_CRASH_SEED:-$(( $(date +%s) % 100000 ))}
ROUNDS=${CCM_CRASH_ROUNDS:-20}
RANDOM=$SEED
echo "crash_safety: seed $SEED ($ROUNDS rounds; replay with CCM_CRASH_SEED=$SEED)"

start_double --seed-nodes 2
mkdir -p "$T/state"
cat >"$T/host.cfg" <<CFG
cluster_name = "crash";
kubeconfig = "$kubeconfig";
controllers = ["service"];
service_workers = 4;
listen = "127.0.0.1:0";
state_dir = "$T/state";
leader_election = { enabled = false; };
providers = (
  { name = "lab"; module = "$CCM_MODULE_DIR/ccm-lab.so"; default = true;
    config = { state_file = "$T/lab.json"; ipv4_pools = ["10.201.0.0/16"]; }; }
);
CFG

# k.py KUBECONFIG CMD ...: Services and the lab state (names c<round>-<i>).
#   create ROUND COUNT: create COUNT LoadBalancer Services.
#   delete SEED COUNT: delete COUNT random existing Services (seeded).
#   check LABSTATE: the no-leak invariant now; prints a summary, exit 1.
#   settled LABSTATE TIMEOUT: wait until every Service has finalizer,
#     recorded name and ingress, none is being deleted, and the lab holds
#     exactly their load balancers; exit 1 on timeout.
#   mutating URL: sum of the mutating ccm_provider_calls_total at URL.
#   idle URL TIMEOUT: wait until the service queue is empty, nothing is
#     in flight and the reconcile count did not move for 2 s.
cat >"$T/k.py" <<'PY'
import json, os, random, sys, time, urllib.error
sys.path.insert(0, os.path.join(os.environ["CCM_SOURCE_DIR"], "tests/hosts"))
from hostkube import FINALIZER as FIN, NAME_ANNOTATION as ANN, SVCS, Kube
from hostkube import metrics_text

req = Kube(sys.argv[1]).req

def ours():
    return [s for s in req("GET", SVCS)["items"]
            if s["metadata"]["name"] != "kubernetes"]

def lab(path):
    try:
        return json.load(open(path)).get("load_balancers") or []
    except FileNotFoundError:
        return []

def check(path):
    svcs = {s["metadata"]["name"]: s for s in ours()}
    lbs = lab(path)
    bad = []
    for lb in lbs:
        name = lb["service"].split("/", 1)[1]
        s = svcs.get(name)
        if s is None:
            bad.append("leak: %s for %s, which is gone" % (lb["name"], lb["service"]))
        elif FIN not in (s["metadata"].get("finalizers") or []):
            bad.append("%s has load balancer %s but no finalizer" % (name, lb["name"]))
        elif (s["metadata"].get("annotations") or {}).get(ANN) != lb["name"]:
            bad.append("%s records %r, the lab holds %s" % (
                name, (s["metadata"].get("annotations") or {}).get(ANN), lb["name"]))
    ips = [ip for lb in lbs for ip in lb.get("ips") or []]
    if len(ips) != len(set(ips)):
        bad.append("an address is held twice")
    return svcs, lbs, bad

def settled(path):
    svcs, lbs, bad = check(path)
    if bad:
        return bad[0]
    for n, s in svcs.items():
        md = s["metadata"]
        if md.get("deletionTimestamp"):
            return "%s is still being deleted" % n
        if FIN not in (md.get("finalizers") or []) or not (md.get("annotations") or {}).get(ANN):
            return "%s has no finalizer or recorded name yet" % n
        if not ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
            return "%s has no ingress yet" % n
    if len(lbs) != len(svcs):
        return "lab holds %d load balancers for %d Services" % (len(lbs), len(svcs))
    return None

def metrics(url):
    return metrics_text(url)

def value(text, prefix):
    n = 0
    for line in text.splitlines():
        if line.startswith(prefix):
            n += float(line.rsplit(" ", 1)[1])
    return n

MUTATING = ("lb_ensure", "lb_update_hosts", "lb_delete", "route_create", "route_delete")

cmd = sys.argv[2]
if cmd == "create":
    rnd, count = sys.argv[3], int(sys.argv[4])
    for i in range(count):
        req("POST", SVCS, {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "c%s-%d" % (rnd, i)},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]}})
elif cmd == "delete":
    rng = random.Random(int(sys.argv[3]))
    names = sorted(s["metadata"]["name"] for s in ours()
                   if not s["metadata"].get("deletionTimestamp"))
    for n in rng.sample(names, min(int(sys.argv[4]), len(names))):
        try:
            req("DELETE", SVCS + "/" + n)
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
elif cmd == "check":
    svcs, lbs, bad = check(sys.argv[3])
    print("%d Services, %d load balancers" % (len(svcs), len(lbs)))
    for b in bad:
        print("VIOLATION: " + b)
    sys.exit(1 if bad else 0)
elif cmd == "settled":
    deadline = time.monotonic() + float(sys.argv[4])
    while True:
        why = settled(sys.argv[3])
        if why is None:
            sys.exit(0)
        if time.monotonic() > deadline:
            sys.stderr.write("not settled: %s\n" % why)
            sys.exit(1)
        time.sleep(0.3)
elif cmd == "mutating":
    text = metrics(sys.argv[3])
    total = 0
    for op in MUTATING:
        n = value(text, 'ccm_provider_calls_total{provider="lab",operation="%s",' % op)
        print("%s %d" % (op, n))
        total += n
    print("total %d" % total)
elif cmd == "idle":
    deadline = time.monotonic() + float(sys.argv[4])
    last = None
    while True:
        text = metrics(sys.argv[3])
        busy = (value(text, 'ccm_workqueue_depth{queue="service"}') +
                value(text, 'ccm_workqueue_delayed{queue="service"}') +
                value(text, 'ccm_workqueue_processing{queue="service"}'))
        done = value(text, 'ccm_reconcile_total{controller="service"')
        if busy == 0 and done == last and done > 0:
            sys.exit(0)
        last = done if busy == 0 else None
        if time.monotonic() > deadline:
            sys.stderr.write("not idle: busy %d, reconciles %d\n" % (busy, done))
            sys.exit(1)
        time.sleep(2)
else:
    sys.exit("unknown command " + cmd)
PY
k() {
  "$PY" "$T/k.py" "$kubeconfig" "$@"
}

host_pid=
n_start=0
# start_host: start ccm-host, wait until it serves; sets $host_pid, $log,
# $metrics_url.
start_host() {
  n_start=$(( n_start + 1 ))
  log="$T/host$n_start.log"
  "$CCM_HOST" --config "$T/host.cfg" >"$log" 2>&1 &
  host_pid=$!
  cleanup_hooks+=("kill -KILL $host_pid 2>/dev/null; wait $host_pid 2>/dev/null")
  wait_log "$log" 'serving /healthz /readyz /metrics on 127\.0\.0\.1:[0-9]+' "$host_pid"
  metrics_url="http://$(sed -nE 's|.*serving /healthz /readyz /metrics on (127\.0\.0\.1:[0-9]+).*|\1|p' "$log" | head -n 1)/metrics"
}

kills=0
for (( r = 1; r <= ROUNDS; r++ )); do
  start_host
  # Work for the controller: new Services to ensure and old ones to
  # delete; the kill lands somewhere inside it.
  n_new=$(( 4 + RANDOM % 8 ))
  n_del=$(( RANDOM % 6 ))
  k create "$r" "$n_new"
  (( r > 1 )) && k delete "$(( SEED * 100 + r ))" "$n_del"
  ms=$(( RANDOM % 301 ))
  sleep "$(printf '0.%03d' "$ms")"
  kill -KILL "$host_pid"
  wait "$host_pid" 2>/dev/null || true
  kills=$(( kills + 1 ))
  if ! out=$(k check "$T/lab.json"); then
    echo "$out" >&2
    tail -n 30 "$log" >&2
    fail "round $r (seed $SEED): invariant broken after SIGKILL at +${ms} ms"
  fi
  echo "round $r: +$n_new Services, -$n_del, killed at +${ms} ms: $out"
done

# Recovery: one more start converges everything. One more Service makes
# sure it has something to ensure even when the last kill found every
# write done, so the probe of the metric below cannot miss.
k create recovery 1
start_host
k settled "$T/lab.json" "${CCM_HOSTS_WAIT:-180}" \
  || { tail -n 40 "$log" >&2; fail "did not converge after $kills kills (seed $SEED)"; }
out=$(k check "$T/lab.json") || { echo "$out" >&2; fail "invariant broken after convergence"; }
echo "converged after $kills kills: $out"
k idle "$metrics_url" 120 || fail "the host did not become idle"
calls=$(k mutating "$metrics_url")
echo "recovery run, mutating provider calls:" $calls
# The metric is read correctly: the recovery run ensured at least the
# Service created for it.
[ "$(echo "$calls" | sed -n 's/^total //p')" -gt 0 ] \
  || fail "the recovery run shows no mutating provider call: /metrics unreadable?"

# Restart with nothing changed; count the mutating provider calls.
kill -TERM "$host_pid"
wait_exit "$host_pid"
[ "$rc" -eq 0 ] || { tail -n 20 "$log" >&2; fail "exit status $rc after SIGTERM"; }
start_host
k idle "$metrics_url" 120 || fail "the restarted host did not become idle"
calls=$(k mutating "$metrics_url")
out=$(k check "$T/lab.json") || { echo "$out" >&2; fail "invariant broken after the idle restart"; }
k settled "$T/lab.json" 5 || fail "the idle restart changed the converged state"
echo "restart with nothing changed, mutating provider calls:" $calls
[ "$(echo "$calls" | sed -n 's/^total //p')" -eq 0 ] \
  || fail "a restart with nothing changed made mutating provider calls: $calls"
kill -TERM "$host_pid"
wait_exit "$host_pid"
echo "ok"
