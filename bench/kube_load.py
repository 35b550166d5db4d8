#!/usr/bin/python3
"""kube_load.py: the Kubernetes side of bench/bench_services.sh and
bench/bench_nodes.sh against the API double: count ingress and taints, make
Nodes join, summarise the double's request log. It measures; it asserts
nothing and talks to 127.0.0.1 only.

  kube_load.py ingress URL              Services with status ingress / total
  kube_load.py tainted URL              Nodes / Nodes still uninitialised
  kube_load.py join URL N [PREFIX]      create N uninitialised Nodes
  kube_load.py reqlog FILE T0 T1        request counts between T0 and T1
"""
import http.client
import json
import sys
import urllib.parse
from datetime import datetime

TAINT = "node.cloudprovider.kubernetes.io/uninitialized"


def get_json(url):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    c.request("GET", u.path + ("?" + u.query if u.query else ""))
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit("GET %s: %d %s" % (url, r.status, body[:200]))
    return json.loads(body)


def cmd_ingress(base):
    items = get_json(base + "/api/v1/services")["items"]
    lb = [s for s in items if s["spec"].get("type") == "LoadBalancer"]
    done = sum(1 for s in lb if s.get("status", {}).get("loadBalancer", {}).get("ingress"))
    print(done, len(lb))


def cmd_tainted(base):
    items = get_json(base + "/api/v1/nodes")["items"]
    left = sum(1 for n in items
               if any(t.get("key") == TAINT for t in n["spec"].get("taints") or []))
    print(len(items), left)


def node_body(name, i):
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"taints": [{"key": TAINT, "value": "true", "effect": "NoSchedule"}]},
        "status": {
            "addresses": [
                {"type": "InternalIP",
                 "address": "10.%d.%d.%d" % (i // 65536 % 256, i // 256 % 256, i % 256)},
                {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "architecture": "amd64",
                         "operatingSystem": "linux"}}}


def cmd_join(base, n, prefix):
    """Create the Nodes over one keep-alive connection, as fast as the
    double takes them (kubelets registering at cluster start)."""
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    hdr = {"Content-Type": "application/json", "User-Agent": "bench-kubelet"}
    for i in range(n):
        name = "%s-%05d" % (prefix, i)
        c.request("POST", "/api/v1/nodes", json.dumps(node_body(name, i)), hdr)
        r = c.getresponse()
        body = r.read()
        if r.status not in (200, 201):
            raise SystemExit("create %s: %d %s" % (name, r.status, body[:200]))


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def cmd_reqlog(path, t0, t1):
    """Requests by verb and resource (":code" added for failures) within
    [t0, t1] (epoch seconds), their rate and the double's mean time per
    request."""
    by = {}
    n = 0
    dur = 0.0
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            t = ts(e["time"])
            if t < t0 or t > t1:
                continue
            q = e.get("query") or ""
            if "watch=" in q and ("watch=1" in q or "watch=true" in q):
                verb = "WATCH"
            else:
                verb = e["method"]
            parts = [p for p in e["path"].split("/") if p]
            res = "?"
            for known in ("services", "nodes", "events", "leases"):
                if known in parts:
                    res = known
                    if parts[-1] == "status":
                        res += "/status"
            if int(e.get("status") or 0) >= 300:
                res += ":%s" % e["status"]
            by[(verb, res)] = by.get((verb, res), 0) + 1
            n += 1
            dur += float(e.get("durationMs") or 0)
    span = max(t1 - t0, 1e-9)
    print("total %d %.1f %.3f" % (n, n / span, dur / n if n else 0.0))
    for (verb, res), k in sorted(by.items(), key=lambda kv: -kv[1]):
        print("%s %s %d" % (verb, res, k))


def main(argv):
    if len(argv) >= 3 and argv[1] == "ingress":
        cmd_ingress(argv[2])
    elif len(argv) >= 3 and argv[1] == "tainted":
        cmd_tainted(argv[2])
    elif len(argv) >= 4 and argv[1] == "join":
        cmd_join(argv[2], int(argv[3]), argv[4] if len(argv) > 4 else "join")
    elif len(argv) >= 5 and argv[1] == "reqlog":
        cmd_reqlog(argv[2], float(argv[3]), float(argv[4]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
