#!/usr/bin/env bash
# lab_runs.sh: examples/lab.cfg, with only its paths moved into a private
# temp dir (module from this build, state under $T), runs against the API
# double given nothing but --kubeconfig: the lab initialises from the
# example's own config block, the informers sync, SIGTERM exits 0.
. "$(dirname "$0")/../hosts/lib.sh"
need_module ccm-lab.so
start_double

src="$CCM_SOURCE_DIR/examples/lab.cfg"
cfg="$T/lab.cfg"
log="$T/host.log"
grep -q '"../build/modules/ccm-lab.so"' "$src" \
  || fail "examples/lab.cfg: module is not ../build/modules/ccm-lab.so"
grep -q '/tmp/ccmhost-lab' "$src" || fail "examples/lab.cfg: no /tmp/ccmhost-lab"
sed -e "s#\"../build/modules/ccm-lab.so\"#\"$CCM_MODULE_DIR/ccm-lab.so\"#" \
    -e "s#\"../scripts/#\"$CCM_SOURCE_DIR/scripts/#g" \
    -e "s#/tmp/ccmhost-lab#$T/state#g" \
    -e 's#"127.0.0.1:10258"#"127.0.0.1:0"#' "$src" >"$cfg"
if grep -Eq '^[^#]*(kubeconfig|master) *=' "$cfg"; then
  fail "examples/lab.cfg sets kubeconfig or master: it must need only --kubeconfig"
fi

"$CCM_HOST" --config "$cfg" --kubeconfig "$kubeconfig" >"$log" 2>&1 &
pid=$!
cleanup_hooks+=("kill -KILL $pid 2>/dev/null")

wait_log "$log" 'provider lab: generation 1 published' "$pid"
wait_log "$log" 'informers synced' "$pid"
[ -f "$T/state/lab-state.json" ] || fail "no lab state file under state_dir"
if grep -q ' ERROR ' "$log"; then cat "$log" >&2; fail "errors logged"; fi

kill -TERM "$pid"
wait_exit "$pid"
[ "$rc" -eq 0 ] || { cat "$log" >&2; fail "exit status $rc after SIGTERM"; }
echo "examples/lab.cfg runs the lab provider"
