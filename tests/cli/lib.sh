# lib.sh: helpers shared by the CLI tests (sourced, never run). They use the
# ccm-host and modules that ctest names in CCM_HOST and CCM_MODULE_DIR, and
# a private temp dir removed on exit. Exit 77 means "skipped".
set -euo pipefail

: "${CCM_HOST:?CCM_HOST must name the ccm-host binary}"
: "${CCM_SOURCE_DIR:?}"
: "${CCM_MODULE_DIR:?}"

T=$(mktemp -d "${TMPDIR:-/tmp}/ccm-cli-XXXXXX")
cleanup_hooks=()
cleanup() {
  local h
  for h in "${cleanup_hooks[@]+"${cleanup_hooks[@]}"}"; do eval "$h" || true; done
  rm -rf "$T"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

skip() {
  echo "SKIP: $*" >&2
  exit 77
}

need_module() {
  [ -f "$CCM_MODULE_DIR/$1" ] || skip "$CCM_MODULE_DIR/$1 is not built yet"
}

# run_cli NAME ARGS...: run ccm-host, keep stdout, stderr and the status in
# $T/NAME.out, $T/NAME.err and $rc.
run_cli() {
  local name=$1
  shift
  set +e
  "$CCM_HOST" "$@" >"$T/$name.out" 2>"$T/$name.err"
  rc=$?
  set -e
}

expect_rc() {
  [ "$rc" -eq "$1" ] || {
    cat "$T/$2.out" "$T/$2.err" >&2
    fail "$2: exit status $rc, want $1"
  }
}

# One line on stderr, matching an extended regex.
expect_one_err_line() {
  local name=$1 re=$2 n
  n=$(wc -l <"$T/$name.err")
  [ "$n" -eq 1 ] || { cat "$T/$name.err" >&2; fail "$name: $n stderr lines, want 1"; }
  grep -Eq -- "$re" "$T/$name.err" || {
    cat "$T/$name.err" >&2
    fail "$name: stderr does not match /$re/"
  }
}

expect_out() {
  grep -Eq -- "$2" "$T/$1.out" || {
    cat "$T/$1.out" >&2
    fail "$1: stdout does not match /$2/"
  }
}

# wait_log FILE REGEX [PID]: poll FILE until a line matches, for up to
# CCM_CLI_WAIT seconds (default 120; machines are slow and busy), failing
# early when PID has exited.
wait_log() {
  local file=$1 re=$2 pid=${3:-} i limit
  limit=$(( ${CCM_CLI_WAIT:-120} * 10 ))
  for (( i = 0; i < limit; i++ )); do
    grep -Eq -- "$re" "$file" 2>/dev/null && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      grep -Eq -- "$re" "$file" 2>/dev/null && return 0
      cat "$file" >&2
      fail "process $pid exited before the log matched /$re/"
    fi
    sleep 0.1
  done
  cat "$file" >&2
  fail "timed out waiting for /$re/ in $file"
}

# wait_exit PID: wait for a child to exit (bounded as wait_log); sets $rc.
wait_exit() {
  local pid=$1 i limit
  limit=$(( ${CCM_CLI_WAIT:-120} * 10 ))
  for (( i = 0; i < limit; i++ )); do
    if ! kill -0 "$pid" 2>/dev/null; then
      set +e
      wait "$pid"
      rc=$?
      set -e
      return 0
    fi
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  fail "process $pid did not exit"
}
