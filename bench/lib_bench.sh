#!/bin/sh
# lib_bench.sh: shell helpers shared by bench/bench_services.sh and
# bench/bench_nodes.sh (sourced, never run: `make bench` runs bench_*.sh).
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
# double's control endpoint); curl is not needed.
bl_get() {
  /usr/bin/python3 -c '
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=30).read().decode())
' "$1"
}

# Sum of the samples of one metric (all label sets) whose line matches the
# optional extended regex FILTER: bl_metric FILE NAME [FILTER].
bl_metric() {
  awk -v n="$2" -v f="${3:-}" '
    $1 ~ ("^" n "({|$)") && (f == "" || $0 ~ f) { s += $NF }
    END { printf "%.0f", s + 0 }' "$1"
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
