#!/bin/sh
# bench_host_rss.sh: memory of an idle ccm-host that caches 5,000 Nodes and
# 10,000 Services from the Kubernetes API double (DESIGN.md section 8:
# <= 64 MiB RSS). Prints a table; asserts nothing.
# usage: bench/bench_host_rss.sh [BUILD_DIR] [NODES] [SERVICES]
#   BENCH_FULL=1: 5,000 Nodes and 10,000 Services (default 1,000 and 2,000).
set -u
build=$(cd "${1:-build}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
. "$src/bench/lib_bench.sh"
if bl_full; then nodes=${2:-5000}; services=${3:-10000}
else nodes=${2:-1000}; services=${3:-2000}; fi
T=$(mktemp -d "${TMPDIR:-/tmp}/ccm-bench-rss.XXXXXX")
dpid="" hpid=""
cleanup() {
  bl_stop "$hpid" 5  # a SIGTERM drain of the service backlog can take minutes
  bl_stop "$dpid" 5
  rm -rf "$T"
}
trap cleanup EXIT INT TERM

# Wait until FILE has a line matching PATTERN (at most SECONDS).
wait_for() {
  i=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt $(($3 * 10)) ] && { echo "bench: timed out waiting for '$2' in $1" >&2; exit 1; }
    sleep 0.1
  done
}

/usr/bin/python3 "$src/tests/doubles/kube_apiserver.py" --port 0 \
  --kubeconfig-out "$T/kubeconfig" --seed-nodes "$nodes" \
  --seed-services "$services" > "$T/double.out" 2> "$T/double.err" &
dpid=$!
wait_for "$T/double.out" '^PORT ' 120

mkdir -m 700 "$T/state"
cat > "$T/host.cfg" <<CFG
state_dir = "$T/state";
kubeconfig = "$T/kubeconfig";
leader_election = { enabled = false; };
providers = ( { name = "lab"; module = "$build/modules/ccm-lab.so";
  config = { state_file = "$T/state/lab.json"; ipv4_pools = ["192.0.2.0/24"]; }; } );
CFG

start=$(date +%s.%N)
"$build/ccm-host" --config "$T/host.cfg" > "$T/host.log" 2>&1 &
hpid=$!
wait_for "$T/host.log" 'informers synced' 300
synced=$(date +%s.%N)
sleep 2 # idle: the watches are open, nothing changes
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$hpid/status")
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$hpid/status")
counts=$(sed -n 's/.*informers synced: \([0-9]*\) node(s), \([0-9]*\) service(s).*/\1 \2/p' "$T/host.log")

echo
echo "Idle ccm-host with the Node and Service caches (API double, lab provider)"
echo
printf '| %-32s | %14s |\n' "measure" "value"
printf '|----------------------------------|----------------|\n'
printf '| %-32s | %14s |\n' "Nodes cached" "${counts% *}"
printf '| %-32s | %14s |\n' "Services cached" "${counts#* }"
printf '| %-32s | %12.2f s |\n' "start to informers synced" \
  "$(awk "BEGIN{print $synced - $start}")"
printf '| %-32s | %10.1f MiB |\n' "RSS, idle (VmRSS)" "$(awk "BEGIN{print $rss/1024}")"
printf '| %-32s | %10.1f MiB |\n' "peak RSS (VmHWM)" "$(awk "BEGIN{print $hwm/1024}")"
printf '| %-32s | %14s |\n' "budget (DESIGN.md section 8)" "<= 64 MiB"
echo
