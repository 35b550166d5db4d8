#!/usr/bin/env bash
# bad_kubeconfig.sh: run mode fails at start, exit 1 with one error line,
# when the Kubernetes connection cannot be resolved: a kubeconfig that does
# not exist (host.cfg key and --kubeconfig flag), an unknown --context, and
# in-cluster without the service environment.
. "$CCM_SOURCE_DIR/tests/cli/lib.sh"
need_module ccm-lab.so

write_cfg() {
  {
    printf 'state_dir = "%s/state";\n' "$T"
    [ -z "$1" ] || printf 'kubeconfig = "%s";\n' "$1"
    printf 'leader_election = { enabled = true; };\n'
    printf 'providers = ( { name = "lab"; module = "%s/ccm-lab.so"; default = true;\n' "$CCM_MODULE_DIR"
    printf '  config = { state_file = "%s/lab.json"; }; } );\n' "$T"
  } >"$T/host.cfg"
}

# --log-level error: only the error line may reach stderr.
missing="$T/no-such-dir/kubeconfig"
write_cfg "$missing"
run_cli missing --config "$T/host.cfg" --log-level error
expect_rc 1 missing
expect_one_err_line missing "ERROR \\[host\\] $missing: "
[ ! -s "$T/missing.out" ] || fail "missing: wrote to stdout"

# The flag overrides the key, and names its own file.
write_cfg "$T/also-missing"
run_cli flag --config "$T/host.cfg" --kubeconfig "$missing" --log-level error
expect_rc 1 flag
expect_one_err_line flag "ERROR \\[host\\] $missing: "

# An existing kubeconfig without that context.
cat >"$T/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: u, user: {}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
KC
write_cfg "$T/kubeconfig"
run_cli context --config "$T/host.cfg" --context other --log-level error
expect_rc 1 context
expect_one_err_line context "$T/kubeconfig: context \"other\" not found"

# No kubeconfig, no master, not in a pod.
write_cfg ""
set +e
env -u KUBERNETES_SERVICE_HOST -u KUBERNETES_SERVICE_PORT \
  CCM_SERVICEACCOUNT_DIR="$T/no-sa" \
  "$CCM_HOST" --config "$T/host.cfg" --log-level error >"$T/incluster.out" 2>"$T/incluster.err"
rc=$?
set -e
expect_rc 1 incluster
expect_one_err_line incluster 'in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set'
echo "ok"
