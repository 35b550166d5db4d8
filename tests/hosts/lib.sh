# lib.sh: helpers for the multi-process host tests (sourced, never run):
# the CLI helpers (temp dir, fail/skip, wait_log, wait_exit), plus starting
# the Kubernetes API double and reading objects from it with python3.
. "$CCM_SOURCE_DIR/tests/cli/lib.sh"

PY=/usr/bin/python3
DOUBLE="$CCM_SOURCE_DIR/tests/doubles/kube_apiserver.py"
[ -x "$PY" ] || skip "$PY is not installed"
[ -f "$DOUBLE" ] || skip "$DOUBLE is missing"

# kget.py KUBECONFIG CMD ...: talk to the double with the kubeconfig's
# server, CA and token (the double may use TLS and a token).
#   lease NS NAME WANT TIMEOUT: poll every 0.2 s until the Lease's
#     holderIdentity matches WANT ("*": any non-empty, "": empty, else
#     exact); print "holder<TAB>leaseTransitions"; exit 1 on timeout.
#   count PATH: print the number of items of a list.
cat >"$T/kget.py" <<'PY'
import json, os, sys, time, urllib.error
sys.path.insert(0, os.path.join(os.environ["CCM_SOURCE_DIR"], "tests/hosts"))
from hostkube import Kube

get = Kube(sys.argv[1]).get

cmd = sys.argv[2]
if cmd == "count":
    print(len(get(sys.argv[3]).get("items") or []))
elif cmd == "lease":
    ns, name, want, timeout = sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6])
    path = "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s" % (ns, name)
    deadline = time.monotonic() + timeout
    last = "(no lease yet)"
    while True:
        try:
            spec = get(path).get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            last = "holder %r, spec %s" % (holder, json.dumps(spec))
            if (want == "*" and holder) or (want != "*" and holder == want):
                print("%s\t%d" % (holder, spec.get("leaseTransitions") or 0))
                sys.exit(0)
        except urllib.error.HTTPError as e:
            if e.code != 404:
                last = "HTTP %d" % e.code
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        if time.monotonic() > deadline:
            sys.stderr.write("lease %s/%s: timed out waiting for holder %r; last: %s\n"
                             % (ns, name, want, last))
            sys.exit(1)
        time.sleep(0.2)
else:
    sys.exit("unknown command " + cmd)
PY

# start_double [ARGS...]: start the API double with TLS and a generated
# token; sets $kubeconfig and $double_pid. The double writes nothing to
# our stdout, so it can never hold ctest's output pipe.
start_double() {
  local i
  kubeconfig="$T/kubeconfig"
  "$PY" "$DOUBLE" --port 0 --kubeconfig-out "$kubeconfig" --tls \
    --cert-dir "$T/certs" --gen-token "$@" >"$T/double.out" 2>"$T/double.err" &
  double_pid=$!
  cleanup_hooks+=("kill -KILL $double_pid 2>/dev/null; wait $double_pid 2>/dev/null")
  for (( i = 0; i < ${CCM_CLI_WAIT:-120} * 10; i++ )); do
    if grep -q '^CA ' "$T/double.out" 2>/dev/null && [ -s "$kubeconfig" ]; then
      return 0
    fi
    kill -0 "$double_pid" 2>/dev/null || {
      cat "$T/double.err" >&2
      fail "the API double exited at start"
    }
    sleep 0.1
  done
  cat "$T/double.err" >&2
  fail "the API double did not start"
}

kget() {
  "$PY" "$T/kget.py" "$kubeconfig" "$@"
}
