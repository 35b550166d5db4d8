#!/bin/sh
# bench_aws.sh: the real ccm-host with the aws module against the AWS double
# (tests/doubles/aws.py) and the Kubernetes API double. Table 1: AWS calls
# per Service ensure (first, unchanged second, delete) for a Classic ELB and
# an NLB. Table 2: time to initialise N Nodes at 20 ms per AWS call, with
# and without DescribeInstances batching (describe_batch_size 500 / 1),
# beside the ideal time. Prints tables; asserts nothing; 127.0.0.1 only.
# usage: bench/bench_aws.sh [BUILD_DIR] [NODES]
#   BENCH_FULL=1: 1,000 Nodes (default 200); LATENCY_MS (20);
#   BENCH_KEEP=1 keeps the temp dir (logs, AWS call logs) for a look.
set -u
build=$(cd "${1:-build}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
. "$src/bench/lib_bench.sh"
if bl_full; then def_nodes=1000; else def_nodes=200; fi
nodes=${2:-$def_nodes}
latency=${LATENCY_MS:-20}
workers=4
PY=/usr/bin/python3
AB="$src/bench/aws_bench.py"
T=$(mktemp -d "${TMPDIR:-/tmp}/ccm-bench-aws.XXXXXX")
kpid="" apid="" hpid=""
cleanup() {
  bl_stop "$hpid" 5
  bl_stop "$apid" 5
  bl_stop "$kpid" 5
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench_aws: kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT INT TERM

if [ ! -x "$build/ccm-host" ] || [ ! -f "$build/modules/ccm-aws.so" ]; then
  echo "bench_aws: $build lacks ccm-host or modules/ccm-aws.so; skipped" >&2
  exit 0
fi

# start_doubles SEED: both doubles, fresh; sets kube, aws, kpid, apid.
start_doubles() {
  bl_stop "$kpid" 5
  bl_stop "$apid" 5
  rm -f "$T/kube.out" "$T/aws.out"
  $PY "$src/tests/doubles/kube_apiserver.py" --port 0 \
    --kubeconfig-out "$T/kubeconfig" > "$T/kube.out" 2> "$T/kube.err" &
  kpid=$!
  $PY "$src/tests/doubles/aws.py" --port 0 --seed "$1" \
    > "$T/aws.out" 2> "$T/aws.err" &
  apid=$!
  bl_wait_for "$T/kube.out" '^PORT ' 60 || exit 1
  bl_wait_for "$T/aws.out" '^PORT ' 60 || exit 1
  kube="http://127.0.0.1:$(sed -n 's/^PORT //p' "$T/kube.out")"
  aws="http://127.0.0.1:$(sed -n 's/^PORT //p' "$T/aws.out")"
}

# start_host CONTROLLER BATCH [QPS]: ccm-host with the aws module
# (describe_batch_size BATCH, provider http.qps QPS: default 10, burst 20,
# the shipped default; 0 = unlimited); sets hpid,
# metrics, t_start (process start) and t_synced (informers synced seen).
n_host=0
start_host() {
  n_host=$((n_host + 1))
  mport=$(bl_free_port)
  metrics="http://127.0.0.1:$mport/metrics"
  rm -rf "$T/state"
  mkdir -m 700 "$T/state"
  cat > "$T/host.cfg" <<CFG
cluster_name = "kubernetes";
state_dir = "$T/state";
kubeconfig = "$T/kubeconfig";
listen = "127.0.0.1:$mport";
controllers = ["$1"];
node_workers = $workers;
kube_api_qps = 1000;
kube_api_burst = 1500;
policies = ["$src/scripts/aws.lua"];
leader_election = { enabled = false; };
providers = (
  { name = "aws"; module = "$build/modules/ccm-aws.so"; default = true;
    http = { qps = ${3:-10}; burst = 20; };
    config = {
      region = "us-east-1";
      cluster_id = "kubernetes";
      describe_batch_size = $2;
      endpoints = { ec2 = "$aws"; elb = "$aws"; elbv2 = "$aws"; sts = "$aws"; imds = "$aws"; };
    }; }
);
CFG
  t_start=$(bl_now)
  env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_WEB_IDENTITY_TOKEN_FILE \
    -u AWS_ROLE_ARN \
    AWS_ACCESS_KEY_ID=AKIDEXAMPLE \
    AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY \
    AWS_REGION=us-east-1 AWS_EC2_METADATA_SERVICE_ENDPOINT="$aws" \
    AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent \
    "$build/ccm-host" --config "$T/host.cfg" > "$T/host$n_host.log" 2>&1 &
  hpid=$!
  if ! bl_wait_for "$T/host$n_host.log" 'informers synced' 60; then
    tail -n 20 "$T/host$n_host.log" >&2
    exit 1
  fi
  t_synced=$(bl_now)
}

# ---- 1. AWS calls per Service ensure ------------------------------------
start_doubles "$src/tests/doubles/fixtures/aws_seed.json"
$PY "$AB" nodes "$kube" "$src/tests/doubles/fixtures/aws_seed.json" ready || exit 1
start_host service 500
: > "$T/calls.txt"
# phase TYPE WHAT: count the calls since the last mark into calls.txt.
mark=0
phase() {
  line=$($PY "$AB" calls "$aws" "$mark") || exit 1
  echo "$1 $2 $line" >> "$T/calls.txt"
  mark=$($PY "$AB" seq "$aws")
}
for lb in clb nlb; do
  name="bench-$lb"
  $PY "$AB" idle "$metrics" "$aws" 0 60 || exit 1
  mark=$($PY "$AB" seq "$aws")
  r0=$($PY "$AB" reconciles "$metrics")
  $PY "$AB" svc "$kube" "$name" "$lb" || exit 1
  $PY "$AB" ingress "$kube" "$name" 60 || { tail -n 20 "$T/host$n_host.log" >&2; exit 1; }
  $PY "$AB" idle "$metrics" "$aws" $((r0 + 1)) 60 || exit 1
  phase "$lb" first
  r0=$($PY "$AB" reconciles "$metrics")
  $PY "$AB" touch "$kube" "$name" || exit 1
  $PY "$AB" idle "$metrics" "$aws" $((r0 + 1)) 60 || exit 1
  phase "$lb" second
  $PY "$AB" delete "$kube" "$name" || exit 1
  $PY "$AB" gone "$kube" "$name" 60 || exit 1
  $PY "$AB" idle "$metrics" "$aws" 0 60 || exit 1
  phase "$lb" delete
done
bl_stop "$hpid" 10
hpid=""

echo
echo "AWS API calls per Service ensure: ccm-host (controllers [service], scripts/aws.lua)"
echo "+ aws module against the AWS double (fixture seed, 3 ready Nodes) and the API double."
echo "One Service, ports 80 and 443. first = create to ingress set and idle; second ="
echo "an annotation no input uses changed, so the same inputs are ensured again; delete ="
echo "Service deleted until its finalizer is gone. read = Describe*/Get*/List*, mutating"
echo "= every other action; EC2 / ELB (2012-06-01) / ELBv2 (2015-12-01)."
echo
printf '| %-11s | %-7s | %20s | %22s | %5s |\n' "type" "ensure" \
  "read EC2/ELB/ELBv2" "mutating EC2/ELB/ELBv2" "total"
printf '|-------------|---------|----------------------|------------------------|-------|\n'
while read -r lb what r1 r2 r3 m1 m2 m3 other acts; do
  case $lb in clb) t="Classic ELB" ;; *) t="NLB" ;; esac
  printf '| %-11s | %-7s | %20s | %22s | %5d |\n' "$t" "$what" \
    "$r1 / $r2 / $r3" "$m1 / $m2 / $m3" $((r1 + r2 + r3 + m1 + m2 + m3 + other))
done < "$T/calls.txt"
echo
echo "Actions per row (API:Action*count):"
while read -r lb what _ _ _ _ _ _ _ acts; do
  printf '  %-3s %-6s %s\n' "$lb" "$what" "$(echo "$acts" | sed 's/,/, /g')"
done < "$T/calls.txt"

# ---- 2. Time to initialise N Nodes -------------------------------------
$PY "$AB" seed "$src/tests/doubles/fixtures/aws_seed.json" "$nodes" "$T/seed.json" || exit 1
: > "$T/init.txt"
for run in 500:10 1:10 1:0; do
  batch=${run%:*} qps=${run#*:}
  start_doubles "$T/seed.json"
  $PY "$AB" latency "$aws" "$latency" || exit 1
  $PY "$AB" nodes "$kube" "$T/seed.json" init || exit 1
  start_host node "$batch" "$qps"
  limit=$((nodes / 2 + 120))
  done_t=""
  while :; do
    now=$(bl_now)
    if [ "$(awk "BEGIN{print ($now - $t_start > $limit)}")" = 1 ]; then
      echo "bench_aws: not done after ${limit}s; reporting what was reached" >&2
      break
    fi
    if bl_get "$metrics" > "$T/m.txt" 2>/dev/null &&
       [ "$(bl_metric "$T/m.txt" ccm_node_controller_initialized_total)" -ge "$nodes" ]; then
      read -r total left <<EOF
$($PY "$AB" tainted "$kube")
EOF
      if [ "$left" -eq 0 ]; then
        done_t=$now
        break
      fi
    fi
    sleep 0.2
  done
  end=${done_t:-$(bl_now)}
  bl_get "$metrics" > "$T/m.txt"
  read -r total left <<EOF
$($PY "$AB" tainted "$kube")
EOF
  read -r r1 _ _ _ _ _ _ acts <<EOF
$($PY "$AB" calls "$aws" 0)
EOF
  di=$(echo "$acts" | tr ',' '\n' | sed -n 's/^EC2:DescribeInstances\*//p')
  all=$(echo "$acts" | tr ',' '\n' | awk -F'*' '{ s += $2 } END { print s + 0 }')
  bcalls=$(bl_metric "$T/m.txt" ccm_node_controller_metadata_batch_calls_total)
  bl_get "$aws/_double/calls" > "$T/calls-$batch-$qps.json" 2>/dev/null
  echo "$batch $qps ${di:-0} $all $bcalls $left $(bl_calc "$t_synced - $t_start") \
$(bl_calc "$end - $t_synced") $(bl_calc "$end - $t_start")" >> "$T/init.txt"
  bl_stop "$hpid" 10
  hpid=""
done

echo
echo "Time to initialise $nodes Nodes (uninitialized taint, no providerID, named by private"
echo "DNS name): ccm-host (controllers [node], node_workers $workers, kube_api_qps 1000) + aws"
echo "module, AWS double at $latency ms per call. Timed from host start (the Nodes already"
echo "exist) until no Node has the taint. batching = the module's describe_batch_size (500:"
echo "one DescribeInstances per host batch of <= 64 Nodes; 1: one per Node). http.qps = the"
echo "host's rate limit on the module's HTTP (burst 20; 10/s is the shipped default, 0 ="
echo "unlimited). ideal = max(ceil(DescribeInstances / $workers workers) x $latency ms,"
echo "(DescribeInstances - 20 burst) / http.qps): the AWS calls alone, no Kubernetes writes."
echo
printf '| %-15s | %9s | %9s | %9s | %7s | %8s | %9s | %9s | %8s |\n' "batching" \
  "http.qps" "Describe-" "AWS calls" "batches" "start to" "synced to" "start to" "ideal"
printf '| %-15s | %9s | %9s | %9s | %7s | %8s | %9s | %9s | %8s |\n' "" "" \
  "Instances" "(all)" "(host)" "synced" "all init" "all init" ""
printf '|-----------------|-----------|-----------|-----------|---------|----------|-----------|-----------|----------|\n'
while read -r batch qps di all bcalls left t_sync t_init t_all; do
  if [ "$batch" = 1 ]; then what="off (size 1)"; else what="on (size $batch)"; fi
  ideal=$(bl_calc "int(($di + $workers - 1) / $workers) * $latency / 1000")
  if [ "$qps" != 0 ]; then
    ideal=$(bl_calc "(($di - 20) / $qps > $ideal ? ($di - 20) / $qps : $ideal)")
  fi
  extra=""
  [ "$left" -eq 0 ] || extra=" ($left left)"
  if [ "$qps" = 0 ]; then q="unlimited"; else q="$qps"; fi
  printf '| %-15s | %9s | %9s | %9s | %7s | %8s | %9s | %9s | %8s |\n' "$what" "$q" "$di" \
    "$all" "$bcalls" "$(printf '%.2f s' "$t_sync")" "$(printf '%.2f s' "$t_init")$extra" \
    "$(printf '%.2f s' "$t_all")" "$(printf '%.2f s' "$ideal")"
done < "$T/init.txt"
echo
