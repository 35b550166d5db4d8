#!/usr/bin/env bash
# run_reload.sh: run mode with the fake module: start, SIGHUP after a
# provider config change (generation 2), a bad reload that changes nothing,
# then SIGTERM and exit 0. Polls the log; no fixed sleeps.
. "$(dirname "$0")/../hosts/lib.sh"
need_module ccm-fake.so
start_double

cfg="$T/host.cfg"
log="$T/host.log"
write_cfg() {
  cat >"$cfg.tmp" <<CFG
state_dir = "$T/state";
kubeconfig = "$kubeconfig";
leader_election = { enabled = false; };
providers = (
  { name = "fake"; module = "$CCM_MODULE_DIR/ccm-fake.so";
    config = { instances = ["$1"]; }; }
);
CFG
  mv "$cfg.tmp" "$cfg"
}

# A config that fails at start: exit 1, one error line.
printf 'providers = ();\n' >"$T/bad.cfg"
run_cli badstart --config "$T/bad.cfg"
expect_rc 1 badstart
grep -q "bad.cfg:1: providers: must list at least one provider" "$T/badstart.err" \
  || { cat "$T/badstart.err" >&2; fail "badstart: no error line"; }

write_cfg node-a
"$CCM_HOST" --config "$cfg" --log-level debug >"$log" 2>&1 &
pid=$!
cleanup_hooks+=("kill -KILL $pid 2>/dev/null")

wait_log "$log" 'ready: SIGHUP reloads' "$pid"
grep -q 'provider fake: generation 1' "$log" || fail "generation 1 not logged"
grep -q 'controllers enabled: service, node, node-lifecycle' "$log" \
  || fail "controllers not logged"
[ -d "$T/state/modules" ] || fail "no private module dir under state_dir"

# Changed provider config: hot-swap to generation 2.
write_cfg node-b
kill -HUP "$pid"
wait_log "$log" 'reloaded .*: 1 provider swap' "$pid"
wait_log "$log" 'provider fake: generation 2' "$pid"

# Unchanged config: nothing swaps.
kill -HUP "$pid"
wait_log "$log" 'reloaded .*: 0 provider swap' "$pid"

# A broken file: one line says why, generation 2 keeps serving.
echo 'this is = not libconfig' >>"$cfg"
kill -HUP "$pid"
wait_log "$log" 'reload failed, the running configuration stays: .*host.cfg:[0-9]+: syntax error' "$pid"
if grep -q 'provider fake: generation 3' "$log"; then fail "a failed reload swapped"; fi

# A module that fails to load: the registry refuses, nothing changes.
cat >"$cfg" <<CFG
state_dir = "$T/state";
kubeconfig = "$kubeconfig";
leader_election = { enabled = false; };
providers = ( { name = "fake"; module = "$T/missing.so"; } );
CFG
kill -HUP "$pid"
wait_log "$log" 'reload failed, the running configuration and providers stay' "$pid"
if grep -q 'provider fake: generation 3' "$log"; then fail "a failed reload swapped"; fi

kill -TERM "$pid"
wait_exit "$pid"
[ "$rc" -eq 0 ] || { cat "$log" >&2; fail "exit status $rc after SIGTERM, want 0"; }
grep -q 'SIGTERM: stopping' "$log" || fail "no stop line"
grep -q 'provider fake: generation 2 destroyed' "$log" || fail "generation 2 not destroyed"
grep -q '\] stopped$' "$log" || fail "no final line"

# SIGINT stops too.
write_cfg node-c
"$CCM_HOST" --config "$cfg" >"$log.2" 2>&1 &
pid2=$!
cleanup_hooks+=("kill -KILL $pid2 2>/dev/null")
wait_log "$log.2" 'ready: SIGHUP reloads' "$pid2"
kill -INT "$pid2"
wait_exit "$pid2"
[ "$rc" -eq 0 ] || { cat "$log.2" >&2; fail "exit status $rc after SIGINT, want 0"; }
echo "ok"
