#!/usr/bin/env bash
# two_hosts.sh: two ccm-host processes against one API double (TLS and a
# token). Exactly one holds the Lease; the other stands by. kill -9 of the
# leader hands the Lease to the standby after the lease duration (one more
# transition); SIGTERM of the survivor releases it (holderIdentity "") and
# exits 0. Both hosts list Nodes and Services. Polls only; no fixed sleeps.
. "$(dirname "$0")/lib.sh"
need_module ccm-lab.so

LEASE_NS=kube-system
LEASE=ccm-two-hosts
WAIT=${CCM_HOSTS_WAIT:-60}

start_double --seed-nodes 2 --seed-services 1
want_nodes=$(kget count /api/v1/nodes)
want_svcs=$(kget count /api/v1/services)
[ "$want_nodes" -eq 2 ] || fail "the double lists $want_nodes nodes, want 2"

# Lease 6 s, renew deadline 5 s, retry 1 s: a takeover is quick, and a
# leader on a busy machine has 5 s to renew before it steps down.
write_cfg() {
  local n=$1
  mkdir -p "$T/state$n"
  cat >"$T/host$n.cfg" <<CFG
state_dir = "$T/state$n";
kubeconfig = "$kubeconfig";
listen = "127.0.0.1:0";
leader_election = {
  enabled = true;
  lease_name = "$LEASE";
  lease_namespace = "$LEASE_NS";
  lease_duration_s = 6;
  renew_deadline_s = 5;
  retry_period_s = 1;
};
providers = (
  { name = "lab"; module = "$CCM_MODULE_DIR/ccm-lab.so"; default = true;
    config = { state_file = "$T/lab$n.json"; ipv4_pools = ["192.0.2.0/24"]; }; }
);
CFG
}

declare -A pid log id
for n in 1 2; do
  write_cfg $n
  log[$n]="$T/host$n.log"
  "$CCM_HOST" --config "$T/host$n.cfg" >"${log[$n]}" 2>&1 &
  pid[$n]=$!
  cleanup_hooks+=("kill -KILL ${pid[$n]} 2>/dev/null; wait ${pid[$n]} 2>/dev/null")
done

# Each host logs its identity before it competes.
id_re='leader election on lease '"$LEASE_NS/$LEASE"' as ([^ :]+): not leader'
for n in 1 2; do
  wait_log "${log[$n]}" "$id_re" "${pid[$n]}"
  id[$n]=$(sed -nE "s|.*$id_re.*|\\1|p" "${log[$n]}" | head -n 1)
  [ -n "${id[$n]}" ] || fail "host $n: no identity in its log"
done
[ "${id[1]}" != "${id[2]}" ] || fail "both hosts have identity ${id[1]}"

# Both caches fill, leader or not.
for n in 1 2; do
  wait_log "${log[$n]}" \
    "informers synced: $want_nodes node\\(s\\), $want_svcs service\\(s\\)" "${pid[$n]}"
done

# Exactly one holds the Lease.
out=$(kget lease "$LEASE_NS" "$LEASE" '*' "$WAIT") || fail "no host took the lease"
holder=${out%%$'\t'*}
if [ "$holder" = "${id[1]}" ]; then
  L=1 S=2
elif [ "$holder" = "${id[2]}" ]; then
  L=2 S=1
else
  fail "lease held by \"$holder\", neither ${id[1]} nor ${id[2]}"
fi
wait_log "${log[$L]}" "became leader as ${id[$L]}" "${pid[$L]}"
grep -q "not leader until the lease is acquired" "${log[$S]}" \
  || fail "host $S: no 'not leader' line"
if grep -q "became leader" "${log[$S]}"; then
  cat "${log[$S]}" >&2
  fail "host $S became leader while host $L holds the lease"
fi
# SIGHUP reloads providers; Kubernetes settings wait for the next start.
sed -i 's/lease_duration_s = 6;/lease_duration_s = 7;/' "$T/host$S.cfg"
kill -HUP "${pid[$S]}"
wait_log "${log[$S]}" 'kubeconfig, master and leader_election are read at start only' "${pid[$S]}"
wait_log "${log[$S]}" 'reloaded .*: 0 provider swap' "${pid[$S]}"
# The standby's view of the Lease is still the leader's.
out=$(kget lease "$LEASE_NS" "$LEASE" "${id[$L]}" "$WAIT") \
  || fail "the lease moved away from host $L"
trans0=${out##*$'\t'}

# Crash the leader: nothing is released; the standby waits out the lease.
kill -KILL "${pid[$L]}"
wait "${pid[$L]}" 2>/dev/null || true
out=$(kget lease "$LEASE_NS" "$LEASE" "${id[$S]}" "$WAIT") \
  || { cat "${log[$S]}" >&2; fail "host $S did not take over the lease"; }
trans1=${out##*$'\t'}
[ "$trans1" -eq $(( trans0 + 1 )) ] \
  || fail "leaseTransitions $trans0 -> $trans1, want +1"
wait_log "${log[$S]}" "became leader as ${id[$S]}" "${pid[$S]}"

# Graceful stop: the Lease is released and the host exits 0.
kill -TERM "${pid[$S]}"
wait_exit "${pid[$S]}"
[ "$rc" -eq 0 ] || { cat "${log[$S]}" >&2; fail "host $S: exit status $rc after SIGTERM"; }
out=$(kget lease "$LEASE_NS" "$LEASE" "" "$WAIT") \
  || fail "the lease was not released"
grep -q "released lease $LEASE_NS/$LEASE" "${log[$S]}" \
  || fail "host $S: no 'released lease' line"
grep -q '\] stopped$' "${log[$S]}" || fail "host $S: no final line"
echo "ok"
