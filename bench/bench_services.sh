#!/bin/sh
# bench_services.sh: the real ccm-host with the fake provider (20 ms per
# call) against the Kubernetes API double seeded with N LoadBalancer
# Services: time until every ingress is set beside the ideal bound, host
# CPU per reconcile, peak RSS, and the double's own load. Prints a table;
# asserts nothing (DESIGN.md section 8 targets are printed beside).
# usage: bench/bench_services.sh [BUILD_DIR] [SERVICES] [WORKERS] [NODES]
#   BENCH_FULL=1: 10,000 Services (default 1,000); LATENCY_MS (20);
#   BENCH_PERF=1: also sample the host with perf and split its CPU by module;
#   KUBE_QPS (20, upstream's default): the host's kube_api_qps (burst 1.5x).
set -u
build=$(cd "${1:-build}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
. "$src/bench/lib_bench.sh"
if bl_full; then def_svcs=10000; else def_svcs=300; fi
services=${2:-$def_svcs}
workers=${3:-4}
nodes=${4:-100}
latency=${LATENCY_MS:-20}
T=$(mktemp -d "${TMPDIR:-/tmp}/ccm-bench-svc.XXXXXX")
dpid="" hpid="" ppid_perf=""
cleanup() {
  [ -n "$ppid_perf" ] && kill -INT "$ppid_perf" 2>/dev/null && wait "$ppid_perf" 2>/dev/null
  bl_stop "$hpid" 5
  bl_stop "$dpid" 5
  rm -rf "$T"
}
trap cleanup EXIT INT TERM

bl_start_double "$T" --seed-nodes "$nodes" --seed-services "$services" ||
  exit 1
mport=$(bl_free_port)
{
  bl_host_cfg_common "$T" "$mport"
  cat <<CFG
controllers = ["service"];
service_workers = $workers;
providers = ( { name = "fake"; module = "$build/modules/ccm-fake.so";
  config = { latency_ms = { all = $latency; }; }; } );
CFG
} > "$T/host.cfg"

dcpu0=$(bl_cpu_s "$dpid")
start=$(bl_now)
bl_start_host "$T" 600 || exit 1
synced=$(bl_now)
hcpu_sync=$(bl_cpu_s "$hpid")
bl_get "http://127.0.0.1:$mport/metrics" > "$T/m0.txt" 2>/dev/null || : > "$T/m0.txt"
bl_thread_ticks "$hpid" > "$T/threads0"
dcpu_sync=$(bl_cpu_s "$dpid")
if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null 2>&1; then
  perf record -q -F 499 -g -p "$hpid" -o "$T/perf.data" > /dev/null 2>&1 &
  ppid_perf=$!
fi

# Done when the service workers are idle after at least one reconcile per
# LoadBalancer Service, and the API server agrees that every one has ingress.
done_t="" checked=0
# Give up (and report) well past both bounds: 4 API requests per Service at
# the client QPS, and 3 provider calls per Service per worker.
limit=$(bl_calc "$services * 4 / ${KUBE_QPS:-20} * 1.5 + $services * 3 * $latency / 1000 / $workers * 4 + 120")
while :; do
  now=$(bl_now)
  if [ "$(awk "BEGIN{print ($now - $synced > $limit)}")" = 1 ]; then
    echo "bench: not done after ${limit}s; reporting what was reached" >&2
    break
  fi
  if ! bl_get "http://127.0.0.1:$mport/metrics" > "$T/m.txt" 2>/dev/null; then
    sleep 0.5
    continue
  fi
  ok=$(bl_metric "$T/m.txt" ccm_reconcile_total 'controller="service",result="success"')
  busy=$(( $(bl_metric "$T/m.txt" ccm_workqueue_depth 'queue="service"') + \
           $(bl_metric "$T/m.txt" ccm_workqueue_delayed 'queue="service"') + \
           $(bl_metric "$T/m.txt" ccm_workqueue_processing 'queue="service"') ))
  if [ "$ok" -ge "$services" ] && [ "$busy" -eq 0 ]; then
    t_obs=$now
    read -r have total <<EOF
$(/usr/bin/python3 "$src/bench/kube_load.py" ingress "$api")
EOF
    checked=$((checked + 1))
    if [ "$have" -ge "$total" ]; then
      done_t=$t_obs
      break
    fi
  fi
  sleep 0.25
done
end=${done_t:-$(bl_now)}
hcpu_end=$(bl_cpu_s "$hpid")
cp "$T/m.txt" "$T/m1.txt" 2>/dev/null || : > "$T/m1.txt" # the last poll's
bl_thread_ticks "$hpid" > "$T/threads1"
dcpu_end=$(bl_cpu_s "$dpid")
hwm=$(bl_hwm_kib "$hpid")
# The host's own idle rate (timers, watches), to take out of the figure.
sleep 5
hcpu_idle=$(bl_calc "($(bl_cpu_s "$hpid") - $hcpu_end) / 5")
bl_get "http://127.0.0.1:$mport/metrics" > "$T/m.txt"
read -r have total <<EOF
$(/usr/bin/python3 "$src/bench/kube_load.py" ingress "$api")
EOF
if [ -n "$ppid_perf" ]; then
  kill -INT "$ppid_perf" 2>/dev/null
  wait "$ppid_perf" 2>/dev/null
  ppid_perf=""
fi

rec_ok=$(bl_metric "$T/m.txt" ccm_reconcile_total 'controller="service",result="success"')
rec_err=$(bl_metric "$T/m.txt" ccm_reconcile_total 'controller="service",result="error"')
recs=$((rec_ok + rec_err))
calls=$(bl_metric "$T/m.txt" ccm_provider_calls_total)
ensure=$(bl_metric "$T/m.txt" ccm_provider_calls_total 'operation="lb_ensure"')
lbget=$(bl_metric "$T/m.txt" ccm_provider_calls_total 'operation="lb_get"')
lb_syncs=$(bl_metric "$T/m.txt" service_controller_loadbalancer_sync_total)
cps=$(bl_calc "$calls / $total")
bound=$(bl_calc "$total * $cps * $latency / 1000 / $workers")
up_bound=$(bl_calc "$total * $cps * $latency / 1000")
t_sync=$(bl_calc "$synced - $start")
t_ing=$(bl_calc "$end - $synced")
t_all=$(bl_calc "$end - $start")
hcpu_rec=$(bl_calc "$hcpu_end - $hcpu_sync")
us_per=$(bl_calc "$hcpu_rec * 1e6 / ($recs > 0 ? $recs : 1)")
dcpu_rec=$(bl_calc "$dcpu_end - $dcpu_sync")
/usr/bin/python3 "$src/bench/kube_load.py" reqlog "$T/requests.jsonl" \
  "$synced" "$end" > "$T/req.txt"
read -r _ nreq rate mean_ms <<EOF
$(sed -n 1p "$T/req.txt")
EOF
nwatch=$(awk '$1 == "WATCH" { s += $3 } END { print s + 0 }' "$T/req.txt")
rps=$(bl_calc "($nreq - $nwatch) / $total")
qps=${KUBE_QPS:-20}
bound_api=$(bl_calc "$total * $rps / $qps")
cpu_part() {
  bl_metric "$T/m.txt" ccm_reconcile_cpu_seconds_total "part=\"$1\"" 1e6
}
us_host=$(bl_calc "$(cpu_part host) / ($recs > 0 ? $recs : 1)")
us_api=$(bl_calc "$(cpu_part api_requests) / ($recs > 0 ? $recs : 1)")
us_prov=$(bl_calc "$(cpu_part provider) / ($recs > 0 ? $recs : 1)")
# Bytes to and from the API server, all threads (requests, watch reads).
io_us() {
  bl_metric "$1" ccm_kube_client_cpu_seconds_total "part=\"$2\"" 1e6
}
io_per() {
  bl_calc "($(io_us "$T/m1.txt" "$1") - $(io_us "$T/m0.txt" "$1")) / ($recs > 0 ? $recs : 1)"
}
us_io_req=$(io_per requests)
us_io_watch=$(io_per watch_reads)
us_io=$(bl_calc "$us_io_req + $us_io_watch")
us_net=$(bl_calc "($hcpu_rec - $hcpu_idle * $t_ing) * 1e6 / ($recs > 0 ? $recs : 1)")

row() { printf '| %-46s | %18s |\n' "$1" "$2"; }
echo
echo "LoadBalancer Services: ccm-host + fake provider ($latency ms per call) + API double"
echo
printf '| %-46s | %18s |\n' "measure" "value"
printf '|------------------------------------------------|--------------------|\n'
row "LoadBalancer Services (with ingress / total)" "$have / $total"
row "Nodes (backends of every load balancer)" "$nodes"
row "service_workers" "$workers"
row "provider calls (lb_get / lb_ensure / all)" "$lbget / $ensure / $calls"
row "provider calls per Service (c)" "$(printf %.2f "$cps")"
row "reconciles (ok / error)" "$rec_ok / $rec_err"
row "load balancer syncs (upstream metric)" "$lb_syncs"
row "start to informers synced" "$(printf '%.2f s' "$t_sync")"
row "synced to every ingress set (T)" "$(printf '%.2f s' "$t_ing")"
row "start to every ingress set" "$(printf '%.2f s' "$t_all")"
row "ideal bound B = N * c * ${latency} ms / workers" "$(printf '%.2f s' "$bound")"
row "T / B (target <= 1.2)" "$(printf '%.2f' "$(bl_calc "$t_ing / $bound")")"
row "API requests per Service (r, no watches)" "$(printf '%.2f' "$rps")"
row "client QPS bound B_api = N * r / ${qps} QPS" "$(printf '%.2f s' "$bound_api")"
row "T / max(B, B_api)" "$(printf '%.2f' "$(bl_calc "$t_ing / ($bound > $bound_api ? $bound : $bound_api)")")"
row "upstream default, 1 worker: N * c * ${latency} ms" "$(printf '%.1f s' "$up_bound")"
row "host CPU, start to synced" "$(printf '%.2f s' "$(bl_calc "$hcpu_sync")")"
row "host CPU, synced to done" "$(printf '%.2f s' "$hcpu_rec")"
row "host CPU per reconcile, raw" "$(printf '%.1f us' "$us_per")"
row "... talking to the API server, all threads" "$(printf '%.1f us' "$us_io")"
row "...... requests / watch reads" "$(printf '%.0f / %.0f us' "$us_io_req" "$us_io_watch")"
row "... inside the provider module" "$(printf '%.1f us' "$us_prov")"
# /proc ticks are 10 ms, the client's counters exact: on a short, mostly
# idle run the difference can fall below zero and says nothing.
us_own=$(bl_calc "$us_per - $us_io - $us_prov")
if [ "$(awk "BEGIN{print ($us_own > 0)}")" = 1 ]; then
  row "... ccm-host's own work, all threads" "$(printf '%.1f us' "$us_own")"
else
  row "... ccm-host's own work, all threads" "n/a (tick noise)"
fi
row "host idle CPU rate (after done)" "$(printf '%.4f s/s' "$hcpu_idle")"
# 10 ms ticks over 5 s: the idle rate is coarse, and can exceed the rate
# during the run; then the difference says nothing.
if [ "$(awk "BEGIN{print ($us_net > 0)}")" = 1 ]; then
  row "host CPU per reconcile, less idle" "$(printf '%.1f us' "$us_net")"
else
  row "host CPU per reconcile, less idle" "n/a (idle noise)"
fi
row "reconcile CPU: ccm-host's own code (<= 50 us)" "$(printf '%.1f us' "$us_host")"
row "reconcile CPU: inside API requests" "$(printf '%.1f us' "$us_api")"
row "reconcile CPU: inside the provider module" "$(printf '%.1f us' "$us_prov")"
row "host peak RSS (VmHWM)" "$(printf '%.1f MiB' "$(bl_calc "$hwm / 1024")")"
row "double CPU, start to synced" "$(printf '%.2f s' "$(bl_calc "$dcpu_sync - $dcpu0")")"
row "double CPU, synced to done" "$(printf '%.2f s' "$dcpu_rec")"
row "double CPU share of T (1.00 = one core)" "$(printf '%.2f' "$(bl_calc "$dcpu_rec / $t_ing")")"
row "API requests, synced to done" "$nreq"
row "API request rate" "$(printf '%.0f /s' "$rate")"
row "double's mean time per request" "$(printf '%.2f ms' "$mean_ms")"
echo
echo "API requests by verb and resource, synced to done:"
sed -n '2,$p' "$T/req.txt" | while read -r verb res n; do
  printf '  %-6s %-16s %8s\n' "$verb" "$res" "$n"
done
echo
echo "Host CPU by thread, synced to done (seconds, us per reconcile):"
bl_thread_table "$T/threads0" "$T/threads1" "$((recs > 0 ? recs : 1))" |
  while read -r name sec us; do
    printf '  %-16s %8s %10s\n' "$name" "$sec" "$us"
  done
if [ -f "$T/perf.data" ]; then
  echo
  echo "Host CPU by module (perf, synced to done):"
  perf report -i "$T/perf.data" --no-children --sort dso --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | head -8
  echo
  echo "Host CPU by function (perf, top 25):"
  perf report -i "$T/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | head -25
fi
echo
