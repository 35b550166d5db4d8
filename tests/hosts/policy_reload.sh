#!/usr/bin/env bash
# policy_reload.sh: the real ccm-host with a Lua policy. A rejected Service
# gets no load balancer and shows in ccm_policy_rejections_total; editing
# the policy file reloads it live (inotify): a good edit bumps
# ccm_policy_generation and names the next Service by the new rule, a
# broken edit is refused (ccm_policy_reloads_total{result="failure"}) and
# the old policy stays in force; SIGHUP reloads too. Polls only.
. "$(dirname "$0")/lib.sh"
need_module ccm-lab.so

WAIT=${CCM_HOSTS_WAIT:-120}
start_double
mkdir -p "$T/state"

write_policy() { # PREFIX
  cat >"$T/policy.lua.tmp" <<LUA
return {
  load_balancer_name = function(service)
    return "$1-" .. service.name
  end,
  load_balancer_options = function(service)
    if (service.annotations or {})["test.ccmhost.io/reject"] then
      return nil, "rejected on request"
    end
    return {}
  end,
}
LUA
  mv "$T/policy.lua.tmp" "$T/policy.lua"
}
write_policy one

cat >"$T/host.cfg" <<CFG
kubeconfig = "$kubeconfig";
controllers = ["service"];
listen = "127.0.0.1:0";
state_dir = "$T/state";
policies = ["$T/policy.lua"];
leader_election = { enabled = false; };
providers = (
  { name = "lab"; module = "$CCM_MODULE_DIR/ccm-lab.so"; default = true;
    config = { state_file = "$T/lab.json"; ipv4_pools = ["192.0.2.0/24"]; }; }
);
CFG

# p.py KUBECONFIG CMD ...
#   svc NAME [reject]: create a LoadBalancer Service.
#   name NAME TIMEOUT: wait for the recorded load-balancer name; print it.
#   metric URL NAME [LABELS]: print the value of one sample (0 if absent).
#   wait_metric URL NAME LABELS MIN TIMEOUT: until the sample is >= MIN.
cat >"$T/p.py" <<'PY'
import os, sys, time
sys.path.insert(0, os.path.join(os.environ["CCM_SOURCE_DIR"], "tests/hosts"))
from hostkube import Kube, SVCS, metric_sum, metrics_text

req = Kube(sys.argv[1]).req

def metric(url, name, labels=""):
    return metric_sum(metrics_text(url), name, labels)

cmd = sys.argv[2]
if cmd == "svc":
    ann = {"test.ccmhost.io/reject": "yes"} if len(sys.argv) > 4 else {}
    req("POST", SVCS, {"metadata": {"name": sys.argv[3], "annotations": ann},
                       "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
elif cmd == "name":
    deadline = time.monotonic() + float(sys.argv[4])
    while True:
        s = req("GET", SVCS + "/" + sys.argv[3])
        n = (s["metadata"].get("annotations") or {}).get("ccmhost.io/load-balancer-name")
        if n and (s.get("status", {}).get("loadBalancer", {}).get("ingress")):
            print(n)
            sys.exit(0)
        if time.monotonic() > deadline:
            sys.exit("Service %s has no load balancer" % sys.argv[3])
        time.sleep(0.2)
elif cmd == "metric":
    print(int(metric(sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else "")))
elif cmd == "wait_metric":
    url, name, labels, low = sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6])
    deadline = time.monotonic() + float(sys.argv[7])
    while True:
        v = metric(url, name, labels)
        if v >= low:
            print(int(v))
            sys.exit(0)
        if time.monotonic() > deadline:
            sys.exit("%s{%s} = %d, want >= %d" % (name, labels, v, low))
        time.sleep(0.2)
PY
p() { "$PY" "$T/p.py" "$kubeconfig" "$@"; }

log="$T/host.log"
"$CCM_HOST" --config "$T/host.cfg" >"$log" 2>&1 &
pid=$!
cleanup_hooks+=("kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null")
wait_log "$log" 'serving /healthz /readyz /metrics on 127\.0\.0\.1:[0-9]+' "$pid"
url="http://$(sed -nE 's|.*serving /healthz /readyz /metrics on (127\.0\.0\.1:[0-9]+).*|\1|p' "$log" | head -n 1)/metrics"
gen0=$(p metric "$url" ccm_policy_generation)
[ "$gen0" -ge 1 ] || fail "ccm_policy_generation is $gen0 at start"

# A rejected Service and a served one.
p svc pr-no reject
p svc pr-a
name=$(p name pr-a "$WAIT") || fail "pr-a: $name"
[ "$name" = "one-pr-a" ] || fail "pr-a named $name, want one-pr-a"
p wait_metric "$url" ccm_policy_rejections_total "" 1 "$WAIT" >/dev/null \
  || fail "no rejection counted"
grep -q '"default/pr-a"' "$T/lab.json" || fail "the lab state does not name pr-a: $(cat "$T/lab.json")"
grep -q '"default/pr-no"' "$T/lab.json" && fail "the lab holds a load balancer for the rejected Service"

# A good edit, picked up by inotify.
write_policy two
p wait_metric "$url" ccm_policy_reloads_total 'result="success"' 1 "$WAIT" >/dev/null \
  || { tail -n 20 "$log" >&2; fail "the policy edit was not reloaded"; }
gen1=$(p metric "$url" ccm_policy_generation)
[ "$gen1" -gt "$gen0" ] || fail "generation $gen0 -> $gen1 after a good edit"
p svc pr-b
name=$(p name pr-b "$WAIT") || fail "pr-b: $name"
[ "$name" = "two-pr-b" ] || fail "pr-b named $name, want two-pr-b"

# A broken edit is refused; the policy in force stays.
printf 'return { load_balancer_name = function( }\n' >"$T/policy.lua.tmp"
mv "$T/policy.lua.tmp" "$T/policy.lua"
p wait_metric "$url" ccm_policy_reloads_total 'result="failure"' 1 "$WAIT" >/dev/null \
  || fail "the broken edit was not counted as a failed reload"
wait_log "$log" 'policy\.lua:1' "$pid"
gen2=$(p metric "$url" ccm_policy_generation)
[ "$gen2" -eq "$gen1" ] || fail "generation moved to $gen2 after a broken edit"
p svc pr-c
name=$(p name pr-c "$WAIT") || fail "pr-c: $name"
[ "$name" = "two-pr-c" ] || fail "pr-c named $name, want two-pr-c (old policy kept)"

# SIGHUP reloads the (fixed) file as well.
write_policy three
kill -HUP "$pid"
wait_log "$log" 'reloaded .*: 0 provider swap' "$pid"
p svc pr-d
name=$(p name pr-d "$WAIT") || fail "pr-d: $name"
[ "$name" = "three-pr-d" ] || fail "pr-d named $name, want three-pr-d"
# Existing load balancers keep their names.
name=$(p name pr-a 5) || fail "pr-a: $name"
[ "$name" = "one-pr-a" ] || fail "pr-a renamed to $name"

kill -TERM "$pid"
wait_exit "$pid"
[ "$rc" -eq 0 ] || { tail -n 20 "$log" >&2; fail "exit status $rc after SIGTERM"; }
echo "ok: rejection counted, live reload $gen0 -> $gen1, broken edit refused, SIGHUP reload"
