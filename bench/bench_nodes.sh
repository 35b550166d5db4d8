#!/bin/sh
# bench_nodes.sh: N Nodes join with the uninitialized taint while the real
# ccm-host (node controller, lab provider with zone patterns) runs against
# the Kubernetes API double: time until every one is initialised, host CPU
# per Node, peak RSS, and the double's own load. Prints a table; asserts
# nothing.
# usage: bench/bench_nodes.sh [BUILD_DIR] [NODES] [WORKERS]
#   BENCH_FULL=1: 5,000 Nodes (default 500); KUBE_QPS (20, upstream's
#   default): the host's kube_api_qps (burst 1.5x).
set -u
build=$(cd "${1:-build}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
. "$src/bench/lib_bench.sh"
if bl_full; then def_nodes=5000; else def_nodes=500; fi
nodes=${2:-$def_nodes}
workers=${3:-4}
T=$(mktemp -d "${TMPDIR:-/tmp}/ccm-bench-nodes.XXXXXX")
dpid="" hpid="" jpid=""
cleanup() {
  [ -n "$jpid" ] && kill "$jpid" 2>/dev/null && wait "$jpid" 2>/dev/null
  bl_stop "$hpid" 5
  bl_stop "$dpid" 5
  rm -rf "$T"
}
trap cleanup EXIT INT TERM

bl_start_double "$T" || exit 1
mport=$(bl_free_port)
{
  bl_host_cfg_common "$T" "$mport"
  cat <<CFG
controllers = ["node"];
node_workers = $workers;
providers = ( { name = "lab"; module = "$build/modules/ccm-lab.so";
  config = { state_file = "$T/state/lab.json"; ipv4_pools = ["192.0.2.0/24"];
    zone = "lab-a"; region = "lab"; instance_type = "lab-node";
    zones = (
      { match = "*0"; zone = "lab-a"; instance_type = "lab-large"; },
      { match = "*[13579]"; zone = "lab-b"; },
      { match = "*[2468]"; zone = "lab-c"; }
    ); }; } );
CFG
} > "$T/host.cfg"

start=$(bl_now)
bl_start_host "$T" 120 || exit 1
synced=$(bl_now)
hcpu0=$(bl_cpu_s "$hpid")
dcpu0=$(bl_cpu_s "$dpid")

# The Nodes arrive as fast as one client can create them (a cluster start).
join0=$(bl_now)
( /usr/bin/python3 "$src/bench/kube_load.py" join "$api" "$nodes" node
  echo "$?" > "$T/join.rc"; bl_now > "$T/join.end" ) &
jpid=$!

done_t=""
limit=$((nodes / 5 + 300))
while :; do
  now=$(bl_now)
  if [ "$(awk "BEGIN{print ($now - $join0 > $limit)}")" = 1 ]; then
    echo "bench: not done after ${limit}s; reporting what was reached" >&2
    break
  fi
  if ! bl_get "http://127.0.0.1:$mport/metrics" > "$T/m.txt" 2>/dev/null; then
    sleep 0.5
    continue
  fi
  init=$(bl_metric "$T/m.txt" ccm_node_controller_initialized_total)
  busy=$(( $(bl_metric "$T/m.txt" ccm_node_controller_queue_depth) + \
           $(bl_metric "$T/m.txt" ccm_node_controller_queue_held) ))
  if [ "$init" -ge "$nodes" ] && [ "$busy" -eq 0 ] && [ -f "$T/join.end" ]; then
    t_obs=$now
    read -r total left <<EOF
$(/usr/bin/python3 "$src/bench/kube_load.py" tainted "$api")
EOF
    if [ "$total" -ge "$nodes" ] && [ "$left" -eq 0 ]; then
      done_t=$t_obs
      break
    fi
  fi
  sleep 1
done
end=${done_t:-$(bl_now)}
hcpu1=$(bl_cpu_s "$hpid")
dcpu1=$(bl_cpu_s "$dpid")
hwm=$(bl_hwm_kib "$hpid")
wait "$jpid" 2>/dev/null
jpid=""
join1=$(cat "$T/join.end" 2>/dev/null || echo "$end")
bl_get "http://127.0.0.1:$mport/metrics" > "$T/m.txt"
read -r total left <<EOF
$(/usr/bin/python3 "$src/bench/kube_load.py" tainted "$api")
EOF

init=$(bl_metric "$T/m.txt" ccm_node_controller_initialized_total)
errs=$(bl_metric "$T/m.txt" ccm_node_controller_errors_total)
bcalls=$(bl_metric "$T/m.txt" ccm_node_controller_metadata_batch_calls_total)
bnodes=$(bl_metric "$T/m.txt" ccm_node_controller_metadata_batch_nodes_total)
calls=$(bl_metric "$T/m.txt" ccm_provider_calls_total)
t_join=$(bl_calc "$join1 - $join0")
t_all=$(bl_calc "$end - $join0")
t_tail=$(bl_calc "$end - $join1")
hcpu=$(bl_calc "$hcpu1 - $hcpu0")
dcpu=$(bl_calc "$dcpu1 - $dcpu0")
/usr/bin/python3 "$src/bench/kube_load.py" reqlog "$T/requests.jsonl" \
  "$join0" "$end" > "$T/req.txt"
read -r _ nreq rate mean_ms <<EOF
$(sed -n 1p "$T/req.txt")
EOF

row() { printf '| %-46s | %18s |\n' "$1" "$2"; }
echo
echo "Nodes joining with the uninitialized taint: ccm-host node controller + lab provider + API double"
echo
printf '| %-46s | %18s |\n' "measure" "value"
printf '|------------------------------------------------|--------------------|\n'
row "Nodes (total / still tainted)" "$total / $left"
row "node_workers" "$workers"
row "Nodes initialised (metric)" "$init"
row "node sync errors (requeued)" "$errs"
row "provider calls (all)" "$calls"
row "batched metadata calls / Nodes in them" "$bcalls / $bnodes"
row "host start to informers synced (empty)" "$(printf '%.2f s' "$(bl_calc "$synced - $start")")"
row "first create to last create (arrival)" "$(printf '%.2f s' "$t_join")"
row "first create to every Node initialised" "$(printf '%.2f s' "$t_all")"
row "last create to every Node initialised" "$(printf '%.2f s' "$t_tail")"
row "Nodes initialised per second" "$(printf '%.0f /s' "$(bl_calc "$init / $t_all")")"
row "host CPU, first create to done" "$(printf '%.2f s' "$hcpu")"
row "host CPU per Node" "$(printf '%.1f us' "$(bl_calc "$hcpu * 1e6 / ($init > 0 ? $init : 1)")")"
row "host peak RSS (VmHWM)" "$(printf '%.1f MiB' "$(bl_calc "$hwm / 1024")")"
row "double CPU, first create to done" "$(printf '%.2f s' "$dcpu")"
row "double CPU share (1.00 = one core)" "$(printf '%.2f' "$(bl_calc "$dcpu / $t_all")")"
row "API requests, first create to done" "$nreq"
row "API request rate" "$(printf '%.0f /s' "$rate")"
row "double's mean time per request" "$(printf '%.2f ms' "$mean_ms")"
echo
echo "API requests by verb and resource, first create to done:"
sed -n '2,$p' "$T/req.txt" | while read -r verb res n; do
  printf '  %-6s %-16s %8s\n' "$verb" "$res" "$n"
done
echo
