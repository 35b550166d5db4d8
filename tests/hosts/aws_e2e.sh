#!/usr/bin/env bash
# aws_e2e.sh: ccm-host with the aws module (every controller, the shipped
# scripts/aws.lua policy) against the AWS double (tests/doubles/aws.py,
# fixture seed) and the Kubernetes API double, driven with kubectl. Checks:
# Node initialisation from the instances, routes, a Classic ELB with its
# listeners, instances, health check, managed group and tags, an annotation
# change, an NLB (skipped while the module refuses nlb), a throttling storm
# (converges, one ELB, retries within AWS_RETRY_ATTEMPTS), a restart with
# nothing changed (0 mutating AWS calls), the shutdown taint and deletion of
# a terminated instance's Node, zero resources after the Services are
# deleted, and the unowned group legacy-unowned never touched. Polls only;
# helper checks live in aws_e2e.py. Nothing leaves 127.0.0.1.
. "$(dirname "$0")/lib.sh"
need_module ccm-aws.so
command -v kubectl >/dev/null 2>&1 || skip "kubectl is not on PATH"

WAIT=${CCM_HOSTS_WAIT:-120}
SEED="$CCM_SOURCE_DIR/tests/doubles/fixtures/aws_seed.json"
AWSPY="$CCM_SOURCE_DIR/tests/doubles/aws.py"
LEGACY_SG=sg-0a1b2c3d4e5f60303
RTB=rtb-0a1b2c3d4e5f60200
# AWS_RETRY_ATTEMPTS in modules/aws/aws.h: the per-operation budget.
BUDGET=$(sed -nE 's/^#define AWS_RETRY_ATTEMPTS ([0-9]+).*/\1/p' \
  "$CCM_SOURCE_DIR/modules/aws/aws.h")
[ -n "$BUDGET" ] || fail "AWS_RETRY_ATTEMPTS not found in modules/aws/aws.h"
N1=ip-10-0-128-10.ec2.internal I1=i-0a1b2c3d4e5f60001
N2=ip-10-0-144-20.ec2.internal I2=i-0a1b2c3d4e5f60002
N3=ip-10-0-32-30.ec2.internal I3=i-0a1b2c3d4e5f60003

start_double

# The AWS double on a free port, with the fixture seed.
: >"$T/aws.out"
"$PY" "$AWSPY" --port 0 --seed "$SEED" >"$T/aws.out" 2>"$T/aws.err" &
aws_pid=$!
cleanup_hooks+=("kill -KILL $aws_pid 2>/dev/null; wait $aws_pid 2>/dev/null")
for (( i = 0; i < WAIT * 10; i++ )); do
  aws_port=$(sed -nE 's/^PORT ([0-9]+)$/\1/p' "$T/aws.out")
  [ -n "$aws_port" ] && break
  kill -0 "$aws_pid" 2>/dev/null || { cat "$T/aws.err" >&2; fail "the AWS double exited"; }
  sleep 0.1
done
[ -n "${aws_port:-}" ] || fail "the AWS double did not print its port"
AWS="http://127.0.0.1:$aws_port"

a() { "$PY" "$CCM_SOURCE_DIR/tests/hosts/aws_e2e.py" "$kubeconfig" "$AWS" "$SEED" "$@"; }
k() { kubectl --kubeconfig "$kubeconfig" "$@"; }
# check NAME CMD...: run a helper check; on failure show the host log tail.
check() {
  local what=$1 out
  shift
  if ! out=$(a "$@" 2>&1); then
    echo "$out" >&2
    tail -n 40 "$log" >&2
    fail "$what"
  fi
  [ -z "$out" ] || echo "$out"
}

mkdir -p "$T/state"
cat >"$T/host.cfg" <<CFG
cluster_name = "kubernetes";
kubeconfig = "$kubeconfig";
listen = "127.0.0.1:0";
state_dir = "$T/state";
controllers = ["*"];
cluster_cidr = "10.244.0.0/16";
node_monitor_period_s = 1;
route_reconcile_period_s = 1;
policies = ["$CCM_SOURCE_DIR/scripts/aws.lua"];
leader_election = { enabled = false; };
providers = (
  { name = "aws"; module = "$CCM_MODULE_DIR/ccm-aws.so"; default = true;
    config = {
      region = "us-east-1";
      cluster_id = "kubernetes";
      endpoints = { ec2 = "$AWS"; elb = "$AWS"; elbv2 = "$AWS"; sts = "$AWS"; imds = "$AWS"; };
    }; }
);
CFG

host_pid=
n_start=0
start_host() {
  n_start=$(( n_start + 1 ))
  log="$T/host$n_start.log"
  env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_WEB_IDENTITY_TOKEN_FILE -u AWS_ROLE_ARN \
    AWS_ACCESS_KEY_ID=AKIDEXAMPLE \
    AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY \
    AWS_REGION=us-east-1 AWS_EC2_METADATA_SERVICE_ENDPOINT="$AWS" \
    AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent \
    "$CCM_HOST" --config "$T/host.cfg" >"$log" 2>&1 &
  host_pid=$!
  cleanup_hooks+=("kill -KILL $host_pid 2>/dev/null; wait $host_pid 2>/dev/null")
  wait_log "$log" 'serving /healthz /readyz /metrics on 127\.0\.0\.1:[0-9]+' "$host_pid"
  metrics_url="http://$(sed -nE 's|.*serving /healthz /readyz /metrics on (127\.0\.0\.1:[0-9]+).*|\1|p' "$log" | head -n 1)/metrics"
}
stop_host() {
  kill -TERM "$host_pid"
  wait_exit "$host_pid"
  [ "$rc" -eq 0 ] || { tail -n 20 "$log" >&2; fail "ccm-host exit status $rc after SIGTERM"; }
}

legacy_before=$(a sg "$LEGACY_SG")
[ "$legacy_before" != MISSING ] || fail "the seed lacks $LEGACY_SG"

# Nodes as kubelet registers them with --cloud-provider=external: named by
# the private DNS name, uninitialized taint, no providerID; Ready.
node_json() { # NAME PODCIDR
  cat <<JSON
{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "$1"},
 "spec": {"podCIDR": "$2", "podCIDRs": ["$2"],
          "taints": [{"key": "node.cloudprovider.kubernetes.io/uninitialized",
                      "value": "true", "effect": "NoSchedule"}]}}
JSON
}
node_ready() { # NAME True|False
  local now
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  k patch node "$1" --subresource=status --type=merge -p "{\"status\": {\"conditions\": [
    {\"type\": \"Ready\", \"status\": \"$2\", \"reason\": \"Kubelet$([ "$2" = True ] && echo Ready || echo NotReady)\",
     \"lastHeartbeatTime\": \"$now\", \"lastTransitionTime\": \"$now\"}]}}" >/dev/null
}
for spec in "$N1 10.244.1.0/24" "$N2 10.244.2.0/24" "$N3 10.244.3.0/24"; do
  read -r name cidr <<<"$spec"
  node_json "$name" "$cidr" | k create -f - >/dev/null
  node_ready "$name" True
done

start_host

# 1. Node initialisation (and routes, from cluster_cidr + podCIDRs).
check "1: Nodes were not initialised from the instances" \
  nodes "$WAIT" "$N1=$I1" "$N2=$I2" "$N3=$I3"
echo "check 1 ok: 3 Nodes initialised (providerID, instance type, zone/region, addresses, taint gone)"
check "1b: the pod-CIDR routes were not created" \
  routes "$WAIT" "$RTB" "10.244.1.0/24=$I1" "10.244.2.0/24=$I2" "10.244.3.0/24=$I3"
echo "check 1b ok: routes for the 3 pod CIDRs in $RTB, SourceDestCheck off"

# 2. A Classic ELB; it also names the unowned group as an extra group.
k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-extra-security-groups: "$LEGACY_SG"
spec:
  type: LoadBalancer
  selector: {app: web}
  loadBalancerSourceRanges: ["203.0.113.0/24", "198.51.100.0/24"]
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
  - {name: https, port: 443, targetPort: 8443, protocol: TCP}
YAML
out=$(a elb "$WAIT" default web \
  "{\"instances\": [\"$I1\", \"$I2\", \"$I3\"], \"source_ranges\": [\"203.0.113.0/24\", \"198.51.100.0/24\"], \"extra_sgs\": [\"$LEGACY_SG\"]}" 2>&1) \
  || { echo "$out" >&2; tail -n 40 "$log" >&2; fail "2: the Classic ELB for default/web is wrong or missing"; }
echo "$out" | grep -v '^LB '
web_lb=$(echo "$out" | sed -nE 's/^LB ([^ ]+) .*/\1/p')
echo "check 2 ok: Classic ELB $web_lb for default/web (listeners, instances, health check, k8s-elb group, tags, hostname)"

# 3. Annotation change -> attributes and health check reconciled in place.
seq0=$(a seq)
k annotate service web --overwrite \
  service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout=120 \
  service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval=15 >/dev/null
check "3: the annotation change was not reconciled" elb_attr "$WAIT" "$web_lb" "$seq0" 120 15
echo "check 3 ok: annotation change reconciled on $web_lb"

# 4. NLB (skipped while the module refuses type nlb).
k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata:
  name: netlb
  namespace: default
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: nlb
spec:
  type: LoadBalancer
  selector: {app: nlb}
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
  - {name: https, port: 443, targetPort: 8443, protocol: TCP}
YAML
set +e
out=$(a nlb "$WAIT" default netlb "[\"$I1\", \"$I2\", \"$I3\"]" 2>&1)
rc=$?
set -e
case $rc in
  0) echo "$out"; echo "check 4 ok: NLB for default/netlb" ;;
  3) echo "$out"
     # An unimplemented type must not hold its Service forever.
     k delete service netlb --wait=false >/dev/null
     check "4: the refused nlb Service could not be deleted" gone_svc "$WAIT" default netlb ;;
  *) echo "$out" >&2; tail -n 40 "$log" >&2; fail "4: the NLB for default/netlb is wrong or missing" ;;
esac

# 8. A new Service under a throttling storm on EC2 and ELB. The EC2 faults
# hit the actions of the Service path only: the route and node loops poll
# every second, and their next round would read as more attempts of one call.
# 6 throttles on one action outlast one call's budget: the call gives up and
# the host retries the Service later (10 s), so one run ends and another starts.
seq_storm=$(a seq)
curl -sf -X POST "$AWS/_double/faults" -H 'Content-Type: application/json' \
  -d '[{"service": "ec2", "action": "DescribeSecurityGroups", "kind": "throttle", "count": 6},
       {"service": "ec2", "action": "CreateSecurityGroup", "kind": "throttle", "count": 2},
       {"service": "ec2", "action": "AuthorizeSecurityGroupIngress", "kind": "throttle", "count": 2},
       {"service": "elasticloadbalancing", "action": "*", "kind": "throttle", "count": 6}]' \
  >/dev/null || fail "8: could not inject faults"
k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: storm, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: storm}
  loadBalancerSourceRanges: ["192.0.2.0/24"]
  ports:
  - {name: http, port: 8080, protocol: TCP}
YAML
out=$(a elb "$WAIT" default storm \
  "{\"instances\": [\"$I1\", \"$I2\", \"$I3\"], \"source_ranges\": [\"192.0.2.0/24\"]}" 2>&1) \
  || { echo "$out" >&2; tail -n 40 "$log" >&2; fail "8: default/storm did not converge under throttling"; }
echo "$out" | grep -v '^LB '
fired=$(curl -sf "$AWS/_double/faults")
curl -sf -X DELETE "$AWS/_double/faults" >/dev/null
check "8: the throttling storm broke the budget or duplicated the ELB" \
  storm "$seq_storm" "$BUDGET" 5 default/storm 2
gaveup=$(grep -oE 'gave up after [0-9]+ attempts' "$log" | grep -oE '[0-9]+' | sort -n | tail -n 1)
[ "${gaveup:-0}" -le "$BUDGET" ] || fail "8: the host log shows a call that gave up after $gaveup attempts, budget $BUDGET"
echo "check 8 ok: converged under throttling, one ELB, retries within $BUDGET attempts (faults: $(echo "$fired" | tr -d '\n ' | cut -c1-200))"

# 9. Restart with nothing changed: no mutating call to AWS. The first two
# Node lists fail (503), so the Service informer syncs first: a host that
# reconciles Services before it knows the Nodes would hand the module an
# empty backend set and deregister every instance.
n_svc=$(k get services -o name | grep -vc '^service/kubernetes$' || true)
a idle "$metrics_url" "$WAIT" 1 || fail "9: the host did not become idle before the restart"
stop_host
seq_restart=$(a seq)
a kfault '{"status": 503, "count": 2, "path": "^/api/v1/nodes$", "method": "GET"}'
start_host
wait_log "$log" "informers synced" "$host_pid"
a kfault '{"clear": true}'
a idle "$metrics_url" "$WAIT" "$n_svc" || { tail -n 40 "$log" >&2; fail "9: the restarted host did not become idle"; }
# Let the route (1 s) and lifecycle (1 s) loops run at least twice.
for (( i = 0; i < WAIT * 2; i++ )); do
  [ "$(a count "$seq_restart" DescribeRouteTables)" -ge 2 ] && break
  sleep 0.5
done
[ "$(a count "$seq_restart" DescribeRouteTables)" -ge 2 ] \
  || fail "9: the restarted host's route controller never listed the routes"
mut=$(a mutating "$seq_restart")
[ -z "$mut" ] || {
  echo "$mut" >&2
  tail -n 40 "$log" >&2
  fail "9: a restart with nothing changed made mutating AWS calls (UnAvailableLoadBalancer above: Services reconciled before the Nodes were known?)"
}
echo "check 9 ok: restart with nothing changed, $(( $(a seq) - seq_restart )) AWS calls, 0 mutating"

# 5. Lifecycle: stopped -> shutdown taint; terminated -> Node deleted.
curl -sf -X POST "$AWS/_double/state" -H 'Content-Type: application/json' \
  -d "{\"instance_id\": \"$I2\", \"action\": \"stop\"}" >/dev/null || fail "5: could not stop $I2"
node_ready "$N2" False
check "5: the stopped instance's Node got no shutdown taint" \
  taint "$WAIT" "$N2" node.cloudprovider.kubernetes.io/shutdown
check "5: the stopped instance's Node was deleted" present_node "$N2"
curl -sf -X POST "$AWS/_double/state" -H 'Content-Type: application/json' \
  -d "{\"instance_id\": \"$I3\", \"action\": \"terminate\"}" >/dev/null || fail "5: could not terminate $I3"
node_ready "$N3" False
check "5: the terminated instance's Node was not deleted" gone_node "$WAIT" "$N3"
echo "check 5 ok: stopped $I2 -> $N2 tainted shutdown (kept); terminated $I3 -> $N3 deleted"

# 6. Deleting the Services leaves nothing in AWS.
k delete service web storm --wait=false >/dev/null
k delete service netlb --wait=false --ignore-not-found >/dev/null
check "6: resources are left after deleting the Services" empty "$WAIT" default web storm netlb
echo "check 6 ok: Services gone; 0 ELBs, 0 ELBv2 load balancers, 0 target groups, 0 listeners, 0 k8s-elb groups"

# 7. The unowned group: same rules and tags, no mutating call on it.
legacy_after=$(a sg "$LEGACY_SG")
[ "$legacy_before" = "$legacy_after" ] \
  || fail "7: $LEGACY_SG changed: before $legacy_before, after $legacy_after"
refs=$(a untouched "$LEGACY_SG" 2>&1) || { echo "$refs" >&2; fail "7: a mutating call named $LEGACY_SG"; }
[ "$refs" -gt 0 ] || fail "7: no call referenced $LEGACY_SG: the extra-security-groups annotation never reached the module"
echo "check 7 ok: $LEGACY_SG unchanged, no mutating call on it ($refs calls referenced it)"

stop_host
echo "ok"
