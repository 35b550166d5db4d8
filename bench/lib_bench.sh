#!/bin/sh
# lib_bench.sh: shell helpers shared by the bench/bench_*.sh scripts
# (sourced, never run: `make bench` runs bench_*.sh).
# It owns process CPU/RSS readings, metric scraping and waiting; it asserts
# nothing and starts no process of its own that outlives a call.

# Seconds since the epoch with sub-second precision.
bl_now() { date +%s.%N; }

# Arithmetic on decimals: bl_calc "EXPR" prints the result.
bl_calc() { awk "BEGIN{ printf \"%.6f\", $1 }"; }

# User+system CPU seconds of a live process (utime and stime of
# /proc/PID/stat, in clock ticks). The comm field may hold spaces, so the
# fields are counted after the closing parenthesis.
bl_cpu_s() {
  hz=$(getconf CLK_TCK)
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null |
    awk -v hz="$hz" '{ printf "%.2f", ($12 + $13) / hz }'
}

# VmHWM (peak RSS) and VmRSS of a live process in KiB.
bl_hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
bl_rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# Wait until FILE has a line matching PATTERN, at most SECONDS.
bl_wait_for() {
  i=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt $(($3 * 10)) ]; then
      echo "bench: timed out waiting for '$2' in $1" >&2
      return 1
    fi
    sleep 0.1
  done
}

# Body of a plain-HTTP GET on 127.0.0.1 (the host's /metrics, the
# double's control endpoint): curl, which is cheaper to start than Python,
# else Python.
bl_get() {
  if command -v curl > /dev/null 2>&1; then
    curl -sf --max-time 30 "$1"
    return
  fi
  /usr/bin/python3 -c '
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=30).read().decode())
' "$1"
}

# Sum of the samples of one metric (all label sets) whose line matches the
# optional extended regex FILTER, times SCALE (default 1), rounded to an
# integer: bl_metric FILE NAME [FILTER [SCALE]].
bl_metric() {
  awk -v n="$2" -v f="${3:-}" -v k="${4:-1}" '
    $1 ~ ("^" n "({|$)") && (f == "" || $0 ~ f) { s += $NF }
    END { printf "%.0f", s * k }' "$1"
}

# A free TCP port on 127.0.0.1.
bl_free_port() {
  /usr/bin/python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Sizes: BENCH_FULL=1 selects the full size, anything else the reduced one.
bl_full() { [ "${BENCH_FULL:-0}" = 1 ]; }

# Stop a process this bench started: SIGTERM, then SIGKILL after SECONDS
# (default 5). ccm-host drains its ready queue on SIGTERM, which at the
# client's 20 QPS can take minutes when a backlog is left.
bl_stop() {
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || return 0
  i=0
  while kill -0 "$1" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt $((${2:-5} * 10)) ]; then
      kill -9 "$1" 2>/dev/null
      break
    fi
    sleep 0.1
  done
  wait "$1" 2>/dev/null
  return 0
}

# CPU clock ticks per thread name of a live process, one "NAME TICKS" line
# per name (ccm-host names its threads: svc-worker, watch-services, ...).
bl_thread_ticks() {
  for t in /proc/"$1"/task/*; do
    sed 's/^[0-9]* (\(.*\)) /\1 /' "$t/stat" 2>/dev/null |
      awk '{ print $1, $13 + $14 }'
  done | awk '{ s[$1] += $2 } END { for (n in s) print n, s[n] }'
}

# Per-thread CPU between two bl_thread_ticks snapshots, divided by COUNT:
# bl_thread_table BEFORE AFTER COUNT prints "NAME SECONDS US_PER_COUNT".
bl_thread_table() {
  hz=$(getconf CLK_TCK)
  awk -v hz="$hz" -v n="$3" '
    FNR == NR { b[$1] = $2; next }
    { d = ($2 - b[$1]) / hz; if (d > 0) printf "%s %.2f %.1f\n", $1, d, d * 1e6 / n }
  ' "$1" "$2" | sort -k2 -rn
}

# Start the Kubernetes API double in DIR with extra ARGS (seeds); sets
# dpid (for bl_stop) and api (its base URL). $src is the source tree.
bl_start_double() {
  bl_dir=$1
  shift
  /usr/bin/python3 "$src/tests/doubles/kube_apiserver.py" --port 0 \
    --kubeconfig-out "$bl_dir/kubeconfig" \
    --request-log "$bl_dir/requests.jsonl" "$@" \
    > "$bl_dir/double.out" 2> "$bl_dir/double.err" &
  dpid=$!
  bl_wait_for "$bl_dir/double.out" '^PORT ' 120 || return 1
  api="http://127.0.0.1:$(sed -n 's/^PORT //p' "$bl_dir/double.out")"
}

# The host.cfg lines the benches share, for DIR (made by bl_start_double)
# and metrics PORT: a private state dir, the double's kubeconfig, the
# client rate from KUBE_QPS (default 20, upstream's; burst 1.5x, >= 30),
# and no leader election.
bl_host_cfg_common() {
  mkdir -m 700 "$1/state"
  bl_qps=${KUBE_QPS:-20}
  cat <<CFG
state_dir = "$1/state";
kubeconfig = "$1/kubeconfig";
listen = "127.0.0.1:$2";
kube_api_qps = $bl_qps;
kube_api_burst = $(( bl_qps * 3 / 2 > 30 ? bl_qps * 3 / 2 : 30 ));
leader_election = { enabled = false; };
CFG
}

# Start ccm-host with DIR/host.cfg and wait up to SECONDS for its
# informers; sets hpid.
bl_start_host() {
  "$build/ccm-host" --config "$1/host.cfg" > "$1/host.log" 2>&1 &
  hpid=$!
  bl_wait_for "$1/host.log" 'informers synced' "$2"
}
