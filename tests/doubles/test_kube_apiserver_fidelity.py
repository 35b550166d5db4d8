#!/usr/bin/python3
# Fidelity test of the Kubernetes API double, driven by the real kubectl that the
# machine's dispatcher picks for the reported version. Owns no state outside a temp dir.
# Usage: test_kube_apiserver_fidelity.py --version 1.27|1.33 [--plain]
"""Runs kubectl against tests/doubles/kube_apiserver.py and asserts on what a real
API server returns. Prints 'N passed, N failed' and exits non-zero on any failure."""

import argparse
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
DOUBLE = os.path.join(HERE, "kube_apiserver.py")
FIX = os.path.join(HERE, "fixtures")
POLL_TIMEOUT = 60.0


class Run:
    def __init__(self, version, tls):
        self.version = version
        self.tls = tls
        self.passed = 0
        self.failed = []
        self.tmp = tempfile.mkdtemp(prefix="kube-fidelity-")
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        self.kc = os.path.join(self.tmp, "kubeconfig")
        self.reqlog = os.path.join(self.tmp, "requests.jsonl")
        self.env = {"HOME": self.home, "KUBECONFIG": self.kc, "PATH": os.environ.get(
            "PATH", "/usr/bin:/bin"), "KUBECACHEDIR": os.path.join(self.tmp, "cache"),
            "LANG": "C.UTF-8"}
        self.proc = None
        self.bg = []

    # -- plumbing
    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed.append(what)
            print("FAIL: %s %s" % (what, detail), flush=True)

    def start(self):
        args = ["/usr/bin/python3", DOUBLE, "--port", "0", "--kubeconfig-out", self.kc,
                "--version", self.version, "--request-log", self.reqlog, "--gen-token"]
        if self.tls:
            args += ["--tls", "--cert-dir", os.path.join(self.tmp, "pki")]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"^PORT (\d+)$", line.strip())
        if not m:
            raise SystemExit("double did not start: %r %s" % (line, self.proc.stderr.read()))
        self.port = int(m.group(1))

    def stop(self):
        for p in self.bg:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def k(self, *args, stdin=None, expect_ok=True, timeout=120):
        r = subprocess.run(["kubectl"] + list(args), input=stdin, capture_output=True,
                           text=True, env=self.env, timeout=timeout)
        if expect_ok and r.returncode != 0:
            self.check(False, "kubectl %s" % " ".join(args), r.stderr.strip())
        return r

    def kbg(self, *args, out):
        f = open(out, "w")
        p = subprocess.Popen(["kubectl"] + list(args), stdout=f, stderr=subprocess.STDOUT,
                             env=self.env, text=True)
        self.bg.append(p)
        return p

    def kjson(self, *args):
        r = self.k(*(list(args) + ["-o", "json"]))
        try:
            return json.loads(r.stdout)
        except ValueError:
            self.check(False, "json from kubectl %s" % " ".join(args), r.stdout + r.stderr)
            return {}

    def poll(self, fn, what):
        deadline = time.time() + POLL_TIMEOUT
        while time.time() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.1)
        self.check(False, "timed out waiting for " + what)
        return None

    def requests(self):
        out = []
        with open(self.reqlog) as f:
            for line in f:
                out.append(json.loads(line))
        return out


def json_stream(text):
    dec = json.JSONDecoder()
    i, out = 0, []
    text = text.strip()
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        try:
            obj, j = dec.raw_decode(text, i)
        except ValueError:
            break
        out.append(obj)
        i = j
    return out


def svc_net_has(ip):
    return ipaddress.ip_address(ip) in ipaddress.ip_network("10.96.0.0/12")


def run_all(t):
    v = t.version
    # -- the dispatcher must pick the kubectl release matching the server
    ver = json.loads(t.k("version", "-o", "json").stdout or "{}")
    t.check(ver.get("serverVersion", {}).get("minor") == v.split(".")[1], "server minor version")
    t.check(ver.get("clientVersion", {}).get("minor") == v.split(".")[1],
            "dispatcher picked kubectl %s" % v, str(ver.get("clientVersion")))

    # -- auth: wrong token is rejected with 401
    r = t.k("get", "ns", "--token", "wrong-token", expect_ok=False)
    t.check(r.returncode != 0 and ("Unauthorized" in r.stderr or
                                  "provide credentials" in r.stderr), "401 on wrong token",
            r.stderr)

    # -- namespaces present at start
    names = t.k("get", "ns", "-o", "name").stdout.split()
    for ns in ("default", "kube-system", "kube-public"):
        t.check("namespace/" + ns in names, "namespace %s exists" % ns)

    # -- create from YAML
    r = t.k("create", "-f", os.path.join(FIX, "nodes.yaml"), "-f", os.path.join(FIX, "services.yaml"))
    t.check("service/web created" in r.stdout and "node/node-a created" in r.stdout, "create output",
            r.stdout)
    web = t.kjson("get", "svc", "web")
    spec = web.get("spec", {})
    t.check(svc_net_has(spec.get("clusterIP", "0.0.0.0")), "clusterIP allocated in 10.96.0.0/12",
            spec.get("clusterIP"))
    t.check(spec.get("clusterIPs") == [spec.get("clusterIP")], "clusterIPs mirrors clusterIP")
    nps = [p.get("nodePort") for p in spec.get("ports", [])]
    t.check(len(nps) == 2 and all(isinstance(n, int) and 30000 <= n <= 32767 for n in nps)
            and nps[0] != nps[1], "nodePorts allocated in range", str(nps))
    t.check([p.get("protocol") for p in spec.get("ports", [])] == ["TCP", "TCP"], "protocol default")
    t.check(spec.get("sessionAffinity") == "None", "sessionAffinity default")
    t.check(spec.get("ipFamilies") == ["IPv4"] and spec.get("ipFamilyPolicy") == "SingleStack",
            "ipFamilies defaults")
    t.check(spec.get("internalTrafficPolicy") == "Cluster", "internalTrafficPolicy default")
    t.check(spec.get("externalTrafficPolicy") == "Cluster", "externalTrafficPolicy default for LB")
    t.check(spec.get("allocateLoadBalancerNodePorts") is True, "allocateLoadBalancerNodePorts")
    t.check("healthCheckNodePort" not in spec, "no healthCheckNodePort for Cluster policy")
    t.check(web.get("status") == {"loadBalancer": {}}, "empty LB status", str(web.get("status")))
    t.check("generation" not in web["metadata"], "services carry no generation (as real servers)")
    uid = web["metadata"].get("uid", "")
    try:
        t.check(uuid.UUID(uid).version == 4, "uid is a uuid4")
    except ValueError:
        t.check(False, "uid is a uuid", uid)
    t.check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
                     web["metadata"].get("creationTimestamp", "")) is not None, "creationTimestamp")
    local = t.kjson("get", "svc", "local")
    hc = local.get("spec", {}).get("healthCheckNodePort")
    t.check(isinstance(hc, int) and 30000 <= hc <= 32767 and hc not in nps,
            "healthCheckNodePort allocated for Local", str(hc))
    t.check(local["spec"]["ports"][0].get("targetPort") == 5432, "targetPort defaults to port")
    internal = t.kjson("get", "svc", "internal")
    t.check("nodePort" not in internal["spec"]["ports"][0] and
            "externalTrafficPolicy" not in internal["spec"], "ClusterIP has no nodePort/ETP")
    node_b = t.kjson("get", "node", "node-b")
    t.check(node_b.get("status", {}).get("daemonEndpoints") == {"kubeletEndpoint": {"Port": 0}},
            "node status zero values as a real server writes them")

    # -- errors in the real Status shape
    r = t.k("create", "-f", os.path.join(FIX, "services.yaml"), expect_ok=False)
    t.check(r.returncode != 0 and 'services "web" already exists' in r.stderr, "AlreadyExists",
            r.stderr)
    bad = json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "Bad_Name"},
                      "spec": {"ports": [{"port": 80}]}})
    r = t.k("create", "-f", "-", stdin=bad, expect_ok=False)
    t.check(r.returncode != 0 and 'The Service "Bad_Name" is invalid' in r.stderr and
            'metadata.name: Invalid value: "Bad_Name"' in r.stderr and "DNS-1035" in r.stderr,
            "422 Invalid names the field", r.stderr)
    r = t.k("get", "svc", "nope", expect_ok=False)
    t.check(r.returncode != 0 and 'services "nope" not found' in r.stderr, "404 NotFound", r.stderr)
    r = t.k("get", "svc", "-n", "ghost", "x", expect_ok=False)
    t.check(r.returncode != 0 and "not found" in r.stderr, "404 in missing namespace")
    npbad = json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
                        "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": nps[0]}]}})
    r = t.k("create", "-f", "-", stdin=npbad, expect_ok=False)
    t.check(r.returncode != 0 and "provided port is already allocated" in r.stderr,
            "nodePort collision rejected", r.stderr)

    # -- get: table, wide, selectors, field selectors, yaml
    r = t.k("get", "svc", "-o", "wide")
    hdr = r.stdout.splitlines()[0].split() if r.stdout else []
    t.check(hdr[:7] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"],
            "service wide table columns", str(hdr))
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("web ")]
    t.check(bool(line) and "<pending>" in line[0] and "80:%d/TCP" % nps[0] in line[0],
            "service row content", str(line))
    t.check(t.k("get", "svc", "-l", "tier=front", "-o", "name").stdout.split() == ["service/web"],
            "label selector =")
    t.check(sorted(t.k("get", "svc", "-l", "tier in (front,back)", "-o", "name").stdout.split())
            == ["service/local", "service/web"], "label selector in")
    t.check(sorted(t.k("get", "svc", "-l", "!tier", "-o", "name").stdout.split())
            == ["service/internal", "service/kubernetes"], "label selector !exists")
    t.check(sorted(t.k("get", "svc", "-l", "tier,tier notin (front)", "-o", "name").stdout.split())
            == ["service/local"], "label selector exists + notin")
    t.check(t.k("get", "svc", "-l", "tier!=front,app", "-o", "name").stdout.split().count(
        "service/web") == 0, "label selector !=")
    t.check(t.k("get", "svc", "--field-selector", "metadata.name=local", "-o", "name")
            .stdout.split() == ["service/local"], "field selector metadata.name")
    t.check(t.k("get", "nodes", "--field-selector", "spec.unschedulable=false", "-o", "name")
            .stdout.split() == ["node/node-a", "node/node-b"], "field selector spec.unschedulable")
    r = t.k("get", "svc", "--field-selector", "spec.bogus=1", expect_ok=False)
    t.check(r.returncode != 0 and "field label not supported" in r.stderr,
            "unknown field selector is 400", r.stderr)
    r = t.k("get", "svc", "web", "-o", "yaml")
    t.check("clusterIP: %s" % spec.get("clusterIP") in r.stdout and "kind: Service" in r.stdout,
            "yaml output")
    r = t.k("get", "nodes", "-l", "pool=blue")
    t.check(r.stdout.splitlines()[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"] and
            "node-a" in r.stdout and "node-b" not in r.stdout, "node table + selector", r.stdout)
    # kubectl pagination (limit/continue)
    r = t.k("get", "svc", "--chunk-size=1", "-o", "name")
    t.check(len(r.stdout.split()) == 4, "chunked list returns everything", r.stdout)
    t.check(any(e["path"] == "/api/v1/namespaces/default/services" and "continue=" in e["query"]
                for e in t.requests()), "kubectl followed a continue token")

    # -- label, annotate, taint
    rv0 = int(t.kjson("get", "node", "node-a")["metadata"]["resourceVersion"])
    t.k("label", "node", "node-a", "env=prod")
    t.k("annotate", "svc", "web", "team=core")
    t.k("taint", "node", "node-a", "dedicated=infra:NoSchedule")
    na = t.kjson("get", "node", "node-a")
    t.check(na["metadata"]["labels"].get("env") == "prod", "label applied")
    t.check(na["spec"].get("taints") == [{"effect": "NoSchedule", "key": "dedicated",
                                          "value": "infra"}], "taint applied", str(na["spec"]))
    t.check(int(na["metadata"]["resourceVersion"]) > rv0, "resourceVersion increases")
    t.check(t.kjson("get", "svc", "web")["metadata"].get("annotations", {}).get("team") == "core",
            "annotation applied")
    t.k("taint", "node", "node-b", "node.cloudprovider.kubernetes.io/uninitialized-")
    t.check("taints" not in t.kjson("get", "node", "node-b")["spec"], "taint removed")
    r = t.k("label", "node", "node-a", "env=dev", expect_ok=False)
    t.check(r.returncode != 0 and "already has a value" in r.stderr, "label without --overwrite")
    t.k("label", "node", "node-a", "env-")
    t.check("env" not in t.kjson("get", "node", "node-a")["metadata"]["labels"], "label removed")

    # -- status subresource
    t.k("patch", "svc", "web", "--subresource=status", "--type=merge", "-p",
        '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}')
    w2 = t.kjson("get", "svc", "web")
    t.check(w2["status"]["loadBalancer"].get("ingress") == [{"ip": "192.0.2.10"}],
            "status patched via subresource")
    t.check(w2["metadata"]["uid"] == uid, "uid stable across updates")
    line = [ln for ln in t.k("get", "svc", "web").stdout.splitlines() if ln.startswith("web ")]
    t.check(bool(line) and "192.0.2.10" in line[0], "EXTERNAL-IP column shows ingress")
    t.k("patch", "svc", "web", "--type=merge", "-p",
        '{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.1"}]}}}')
    t.check(t.kjson("get", "svc", "web")["status"]["loadBalancer"].get("ingress") ==
            [{"ip": "192.0.2.10"}], "main resource ignores status")
    t.k("patch", "svc", "web", "--subresource=status", "--type=merge", "-p",
        '{"spec":{"sessionAffinity":"ClientIP"}}')
    t.check(t.kjson("get", "svc", "web")["spec"]["sessionAffinity"] == "None",
            "status subresource ignores spec")
    t.k("patch", "node", "node-a", "--subresource=status", "-p",
        '{"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.1"}]}}')
    t.k("patch", "node", "node-a", "--subresource=status", "-p",
        '{"status":{"addresses":[{"type":"ExternalIP","address":"198.51.100.7"}]}}')
    addrs = t.kjson("get", "node", "node-a")["status"].get("addresses")
    t.check(addrs == [{"type": "InternalIP", "address": "10.0.0.1"},
                      {"type": "ExternalIP", "address": "198.51.100.7"}],
            "strategic merge of status.addresses by type", str(addrs))
    t.k("patch", "node", "node-a", "--subresource=status", "-p", json.dumps({"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "ok", "lastHeartbeatTime": "2025-01-01T00:00:00Z",
                        "lastTransitionTime": "2025-01-01T00:00:00Z"}]}}))
    r = t.k("wait", "--for=condition=Ready", "node/node-a", "--timeout=60s")
    t.check(r.returncode == 0 and "condition met" in r.stdout, "wait --for=condition")
    r = t.k("get", "nodes", "-o", "wide")
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("node-a ")]
    t.check(bool(line) and line[0].split()[1] == "Ready" and "198.51.100.7" in line[0],
            "node wide row", str(line))

    # -- json, merge, strategic patches
    t.k("patch", "svc", "web", "--type=json", "-p",
        '[{"op":"test","path":"/metadata/labels/app","value":"web"},'
        '{"op":"add","path":"/metadata/labels/patched","value":"json"}]')
    t.check(t.kjson("get", "svc", "web")["metadata"]["labels"].get("patched") == "json",
            "json patch add after test")
    r = t.k("patch", "svc", "web", "--type=json", "-p",
            '[{"op":"test","path":"/metadata/labels/app","value":"nope"}]', expect_ok=False)
    t.check(r.returncode != 0 and "test failed" in r.stderr, "json patch failing test op", r.stderr)
    t.k("patch", "svc", "web", "--type=merge", "-p", '{"metadata":{"labels":{"patched":null,'
        '"m":"1"}}}')
    lb = t.kjson("get", "svc", "web")["metadata"]["labels"]
    t.check("patched" not in lb and lb.get("m") == "1", "merge patch null deletes")
    t.k("patch", "svc", "web", "-p", '{"spec":{"ports":[{"port":80,"targetPort":9090}]}}')
    ports = t.kjson("get", "svc", "web")["spec"]["ports"]
    t.check(len(ports) == 2 and ports[0]["targetPort"] == 9090 and ports[0]["nodePort"] == nps[0]
            and ports[1]["port"] == 443, "strategic patch merges ports by port", str(ports))
    t.k("patch", "svc", "web", "--type=merge", "-p", '{"spec":{"ports":[{"name":"http","port":80}]}}')
    ports = t.kjson("get", "svc", "web")["spec"]["ports"]
    t.check(len(ports) == 1 and ports[0]["nodePort"] == nps[0],
            "merge patch replaces list, nodePort kept", str(ports))

    # -- optimistic concurrency: replace with a stale resourceVersion
    stale = t.k("get", "svc", "web", "-o", "json").stdout
    t.k("label", "svc", "web", "bump=1")
    r = t.k("replace", "-f", "-", stdin=stale, expect_ok=False)
    t.check(r.returncode != 0 and "Conflict" in r.stderr and
            "the object has been modified" in r.stderr, "409 on stale replace", r.stderr)
    cur = json.loads(t.k("get", "svc", "web", "-o", "json").stdout)
    cur["metadata"]["labels"]["replaced"] = "yes"
    r = t.k("replace", "-f", "-", stdin=json.dumps(cur))
    t.check(r.returncode == 0 and t.kjson("get", "svc", "web")["metadata"]["labels"].get(
        "replaced") == "yes", "replace with current resourceVersion")

    # -- client-side apply
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings",
                                                                 "labels": {"a": "1"}},
          "data": {"k1": "v1", "k2": "v2"}}
    r = t.k("apply", "-f", "-", stdin=json.dumps(cm))
    t.check("configmap/settings created" in r.stdout, "apply creates", r.stdout)
    cm["data"] = {"k1": "v1", "k3": "v3"}
    r = t.k("apply", "-f", "-", stdin=json.dumps(cm))
    t.check("configmap/settings configured" in r.stdout, "apply configures", r.stdout + r.stderr)
    got = t.kjson("get", "cm", "settings")
    t.check(got.get("data") == {"k1": "v1", "k3": "v3"}, "apply removed k2 (3-way)", str(got))
    t.check("kubectl.kubernetes.io/last-applied-configuration" in
            got["metadata"].get("annotations", {}), "last-applied annotation")
    r = t.k("apply", "-f", "-", stdin=json.dumps(cm))
    t.check("configmap/settings unchanged" in r.stdout, "apply unchanged", r.stdout)

    # -- server-side apply
    ss = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ssa",
                                                               "labels": {"owner": "ssa"}},
          "spec": {"type": "LoadBalancer", "ports": [{"name": "a", "port": 80},
                                                     {"name": "b", "port": 81}]}}
    r = t.k("apply", "--server-side", "-f", "-", stdin=json.dumps(ss))
    t.check("serverside-applied" in r.stdout, "server-side apply creates", r.stdout)
    s1 = t.kjson("get", "svc", "ssa")
    t.check([p["port"] for p in s1["spec"]["ports"]] == [80, 81] and
            svc_net_has(s1["spec"]["clusterIP"]), "ssa object persisted and defaulted")
    ss["spec"]["ports"] = [{"name": "a", "port": 80}]
    t.k("apply", "--server-side", "-f", "-", stdin=json.dumps(ss))
    s2 = t.kjson("get", "svc", "ssa")
    t.check([p["port"] for p in s2["spec"]["ports"]] == [80] and
            s2["spec"]["ports"][0]["nodePort"] == s1["spec"]["ports"][0]["nodePort"],
            "ssa removes a field the manager dropped", str(s2["spec"]["ports"]))
    mf = t.kjson("get", "svc", "ssa", "--show-managed-fields")["metadata"].get("managedFields", [])
    t.check(any(e.get("manager") == "kubectl" and e.get("operation") == "Apply" for e in mf),
            "managedFields records the applier", str(mf))
    other = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ssa",
                                                                  "labels": {"owner": "other"}}}
    r = t.k("apply", "--server-side", "--field-manager=other", "-f", "-",
            stdin=json.dumps(other), expect_ok=False)
    t.check(r.returncode != 0 and "conflict" in r.stderr.lower(), "ssa conflict", r.stderr)
    t.k("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-",
        stdin=json.dumps(other))
    t.check(t.kjson("get", "svc", "ssa")["metadata"]["labels"]["owner"] == "other",
            "ssa --force-conflicts takes the field")

    # -- watch: kubectl get -w in the background while another kubectl changes objects
    nsvc = len(t.k("get", "svc", "-o", "name").stdout.split())
    wout = os.path.join(t.tmp, "watch.json")
    wp = t.kbg("get", "svc", "-w", "--output-watch-events", "-o", "json", out=wout)
    tout = os.path.join(t.tmp, "watch.table")
    tp = t.kbg("get", "nodes", "-w", out=tout)

    def wevents():
        with open(wout) as f:
            return json_stream(f.read())
    t.poll(lambda: len([e for e in wevents() if e.get("type") == "ADDED"]) >= nsvc,
           "watch initial ADDED events")
    t.poll(lambda: "node-b" in open(tout).read(), "node table watch initial rows")
    t.k("create", "service", "clusterip", "watched", "--tcp=80:8080")
    t.k("label", "svc", "watched", "phase=two")
    t.k("delete", "svc", "watched")
    t.k("create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Node",
                                               "metadata": {"name": "node-c"}}))
    got = t.poll(lambda: [e for e in wevents() if e.get("object", {}).get("metadata", {}).get(
        "name") == "watched"] if any(e.get("type") == "DELETED" for e in wevents()) else None,
        "watch events for the changed service")
    seq = [e["type"] for e in got or []]
    t.check(seq == ["ADDED", "MODIFIED", "DELETED"], "watch event sequence", str(seq))
    if got:
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in got]
        t.check(rvs == sorted(rvs) and len(set(rvs)) == 3, "watch resourceVersions increase",
                str(rvs))
        t.check(got[1]["object"]["metadata"]["labels"].get("phase") == "two",
                "MODIFIED carries the new object")
    t.poll(lambda: "node-c" in open(tout).read(), "node table watch shows the new node")
    for p in (wp, tp):
        p.terminate()
        p.wait()

    # -- delete with finalizers
    t.k("patch", "svc", "local", "--type=merge", "-p",
        '{"metadata":{"finalizers":["service.kubernetes.io/load-balancer-cleanup"]}}')
    r = t.k("delete", "svc", "local", "--wait=false")
    t.check('service "local" deleted' in r.stdout, "delete accepted", r.stdout)
    lo = t.kjson("get", "svc", "local")
    t.check(bool(lo.get("metadata", {}).get("deletionTimestamp")) and
            lo["metadata"].get("deletionGracePeriodSeconds") == 0,
            "object stays with deletionTimestamp", str(lo.get("metadata")))
    wait_out = os.path.join(t.tmp, "wait.out")
    waiter = t.kbg("wait", "--for=delete", "svc/local", "--timeout=120s", out=wait_out)
    t.poll(lambda: any(e["path"].endswith("/services") and "watch" in e["query"] and
                       "local" in e["query"] for e in t.requests()) or
           any("fieldSelector=metadata.name%3Dlocal" in e["query"] for e in t.requests()),
           "kubectl wait to start watching")
    t.check(waiter.poll() is None, "wait --for=delete still waiting while finalizer remains")
    r = t.k("patch", "svc", "local", "--type=json", "-p",
            '[{"op":"add","path":"/metadata/finalizers/-","value":"new/one"}]', expect_ok=False)
    t.check(r.returncode != 0 and "no new finalizers" in r.stderr,
            "no new finalizers while deleting", r.stderr)
    t.k("patch", "svc", "local", "--type=json", "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]')
    try:
        rc = waiter.wait(POLL_TIMEOUT)
    except subprocess.TimeoutExpired:
        rc = None
    t.check(rc == 0, "kubectl wait --for=delete succeeds", open(wait_out).read())
    r = t.k("get", "svc", "local", expect_ok=False)
    t.check(r.returncode != 0 and "not found" in r.stderr, "object gone after finalizer removal")
    r = t.k("delete", "cm", "settings")
    t.check(t.k("get", "cm", "settings", expect_ok=False).returncode != 0, "plain delete")

    # -- other resources
    t.k("create", "namespace", "team-a")
    t.k("create", "configmap", "c1", "-n", "team-a", "--from-literal=a=b")
    t.k("create", "secret", "generic", "s1", "-n", "team-a", "--from-literal=p=q")
    sec = t.kjson("get", "secret", "s1", "-n", "team-a")
    t.check(sec.get("type") == "Opaque" and sec.get("data") == {"p": "cQ=="}, "secret stored")
    r = t.k("get", "cm", "-A", "-o", "name")
    t.check("configmap/c1" in r.stdout.split(), "get -A lists across namespaces")
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "cloud-controller-manager", "namespace": "kube-system"},
             "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}}
    t.k("apply", "-f", "-", stdin=json.dumps(lease))
    r = t.k("get", "lease", "-n", "kube-system")
    t.check("cloud-controller-manager" in r.stdout and "me" in r.stdout, "lease table", r.stdout)
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
          "metadata": {"name": "ev1", "namespace": "default"},
          "eventTime": "2025-01-01T00:00:00.000000Z", "reason": "EnsuredLoadBalancer",
          "note": "Ensured load balancer", "type": "Normal", "action": "Ensure",
          "reportingController": "ccm", "reportingInstance": "ccm-1",
          "regarding": {"kind": "Service", "name": "web", "namespace": "default"}}
    t.k("create", "-f", "-", stdin=json.dumps(ev))
    t.check(t.kjson("get", "events.v1.events.k8s.io", "ev1").get("reason") == "EnsuredLoadBalancer",
            "events.k8s.io event stored")
    cev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "ev2"},
           "involvedObject": {"kind": "Service", "name": "web", "namespace": "default"},
           "reason": "Synced", "message": "hello", "type": "Warning"}
    t.k("create", "-f", "-", stdin=json.dumps(cev))
    r = t.k("get", "events", "--field-selector", "type=Warning", "-o", "name")
    t.check(r.stdout.split() == ["event/ev2"], "core event field selector type", r.stdout)
    r = t.k("delete", "namespace", "team-a")
    t.check(t.k("get", "cm", "c1", "-n", "team-a", expect_ok=False).returncode != 0,
            "namespace delete removes its objects")
    # dry run never stores
    t.k("create", "configmap", "dry", "--dry-run=server", "--from-literal=a=b")
    t.check(t.k("get", "cm", "dry", expect_ok=False).returncode != 0, "server dry-run")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", default="1.33")
    ap.add_argument("--plain", action="store_true", help="HTTP instead of HTTPS")
    a = ap.parse_args()
    for tool in ("kubectl",) + (() if a.plain else ("openssl",)):
        if not shutil.which(tool):
            print("missing tool: %s" % tool)
            print("0 passed, 1 failed")
            return 1
    t = Run(a.version, not a.plain)
    try:
        t.start()
        run_all(t)
    finally:
        t.stop()
    print("kubectl %s: %d passed, %d failed" % (a.version, t.passed, len(t.failed)))
    print("%d passed, %d failed" % (t.passed, len(t.failed)))
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
