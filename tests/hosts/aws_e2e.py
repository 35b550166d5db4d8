# aws_e2e.py: the checks of tests/hosts/aws_e2e.sh (run by it, never alone).
# It reads the Kubernetes API double (kubeconfig: server, CA, token) and the
# AWS double's /_double/ hooks; it writes nothing to Kubernetes (the shell
# drives kubectl for that). Every wait polls up to TIMEOUT seconds and
# prints why it failed; exit 1 = check failed, 3 = NLB not implemented.
#
# usage: aws_e2e.py KUBECONFIG AWS_URL SEED CMD ARGS...
import datetime, json, os, re, sys, time, urllib.error, urllib.parse, urllib.request
sys.path.insert(0, os.path.join(os.environ["CCM_SOURCE_DIR"], "tests/hosts"))
from hostkube import Kube

KC, AWS, SEED_FILE, CMD = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3], sys.argv[4]
ARGS = sys.argv[5:]
SEED = json.load(open(SEED_FILE))
CLUSTER_TAG = "kubernetes.io/cluster/kubernetes"
SVC_TAG = "kubernetes.io/service-name"
UNINIT = "node.cloudprovider.kubernetes.io/uninitialized"
SHUTDOWN = "node.cloudprovider.kubernetes.io/shutdown"
LBNAME_ANN = "ccmhost.io/load-balancer-name"
MUTATING = re.compile(r"^(Create|Delete|Register|Deregister|Modify|Authorize|Revoke|Apply|"
                      r"Attach|Detach|Set|Configure|AddTags|RemoveTags|Replace)")

K = Kube(KC)
server, ctx = K.server, K.ctx
kube = K.get


def kube_opt(path):
    try:
        return kube(path)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def aws(path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(AWS + path, data=data, method="POST" if data else "GET")
    if data:
        r.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(r, timeout=10) as resp:
        return json.load(resp)


def kube_control(what, body):
    r = urllib.request.Request(server + "/_control/" + what, method="POST",
                               data=json.dumps(body).encode())
    r.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(r, context=ctx, timeout=10) as resp:
        return json.load(resp)


def state():
    return aws("/_double/state")


def calls(since=0):
    return [c for c in aws("/_double/calls")["calls"] if c["seq"] > since]


def poll(timeout, probe):
    """Call probe() until it returns (True, x); return x, or exit 1 with the
    last reason after timeout seconds."""
    deadline = time.monotonic() + float(timeout)
    while True:
        try:
            ok, val = probe()
        except (urllib.error.URLError, OSError, KeyError, ValueError) as e:
            ok, val = False, "error: %s" % e
        if ok:
            return val
        if time.monotonic() > deadline:
            sys.exit("timed out after %ss: %s" % (timeout, val))
        time.sleep(0.5)


def fail(msg):
    sys.exit(msg)


def svc_path(ns, name):
    return "/api/v1/namespaces/%s/services/%s" % (ns, name)


def seed_instance(iid):
    return next(i for i in SEED["instances"] if i["id"] == iid)


def elbs_for(st, key):
    return [e for e in st["classic_load_balancers"].values()
            if (e.get("tags") or {}).get(SVC_TAG) == key]


def warning_events(ns, name):
    q = urllib.parse.urlencode({"fieldSelector": "involvedObject.name=%s" % name})
    evs = kube("/api/v1/namespaces/%s/events?%s" % (ns, q)).get("items") or []
    return [e for e in evs if e.get("type") == "Warning"]


# ---------------------------------------------------------------- nodes
def cmd_nodes(timeout, *pairs):
    """NAME=INSTANCE ...: wait until each Node lost the uninitialized taint,
    then check providerID, labels and addresses against the seed."""
    want = dict(p.split("=", 1) for p in pairs)

    def probe():
        left = []
        for name in want:
            n = kube_opt("/api/v1/nodes/" + name)
            if n is None:
                left.append(name + " (missing)")
                continue
            taints = [t["key"] for t in (n["spec"].get("taints") or [])]
            if UNINIT in taints or not n["spec"].get("providerID"):
                left.append("%s (providerID %r, taints %s)" % (
                    name, n["spec"].get("providerID"), taints))
        return not left, "not initialised: " + ", ".join(left)
    poll(timeout, probe)
    for name, iid in want.items():
        n = kube("/api/v1/nodes/" + name)
        i = seed_instance(iid)
        region = SEED["region"]
        pid = "aws:///%s/%s" % (i["az"], iid)
        if n["spec"].get("providerID") != pid:
            fail("node %s: providerID %r, want %r" % (name, n["spec"].get("providerID"), pid))
        labels = n["metadata"].get("labels") or {}
        for k, v in (("node.kubernetes.io/instance-type", i["type"]),
                     ("topology.kubernetes.io/zone", i["az"]),
                     ("topology.kubernetes.io/region", region)):
            if labels.get(k) != v:
                fail("node %s: label %s=%r, want %r (labels %s)" % (name, k, labels.get(k), v,
                                                                   labels))
        addrs = {(a["type"], a["address"]) for a in (n.get("status") or {}).get("addresses") or []}
        want_addrs = {("InternalIP", i["private_ip"]), ("InternalDNS", i["private_dns"])}
        if i.get("public_ip"):
            want_addrs.add(("ExternalIP", i["public_ip"]))
        if i.get("public_dns"):
            want_addrs.add(("ExternalDNS", i["public_dns"]))
        for eni in i.get("enis") or []:
            for ip in eni.get("private_ips") or []:
                want_addrs.add(("InternalIP", ip))
        missing = want_addrs - addrs
        if missing:
            fail("node %s: addresses %s lack %s" % (name, sorted(addrs), sorted(missing)))
        print("  %s: %s, %s, %d addresses" % (name, pid, i["type"], len(addrs)))


def cmd_routes(timeout, rtb, *pairs):
    """CIDR=INSTANCE ...: wait until the route table holds each route."""
    want = dict(p.split("=", 1) for p in pairs)

    def probe():
        rt = state()["route_tables"][rtb]
        have = {r.get("cidr"): r.get("instance") for r in rt["routes"]}
        bad = {c: have.get(c) for c, i in want.items() if have.get(c) != i}
        return not bad, "route table %s: want %s, have %s" % (rtb, want, have)
    poll(timeout, probe)
    st = state()
    for iid in set(want.values()):
        if st["instances"][iid].get("source_dest_check"):
            fail("instance %s still has SourceDestCheck on after its route was made" % iid)


# ---------------------------------------------------------------- classic ELB
def cmd_elb(timeout, ns, name, want_json):
    """Wait for the Service's ingress and its Classic ELB, then check it.
    want: {instances:[...], source_ranges:[...], extra_sgs:[...]}."""
    want = json.loads(want_json)
    key = "%s/%s" % (ns, name)

    def probe():
        svc = kube(svc_path(ns, name))
        ing = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        st = state()
        elbs = elbs_for(st, key)
        if not ing or not ing[0].get("hostname"):
            return False, "no ingress hostname yet (%d ELBs tagged %s); warnings: %s" % (
                len(elbs), key, [e.get("message") for e in warning_events(ns, name)][-2:])
        if len(elbs) != 1:
            return False, "%d ELBs tagged %s" % (len(elbs), key)
        if sorted(elbs[0]["instances"]) != sorted(want["instances"]):
            return False, "ELB instances %s, want %s" % (elbs[0]["instances"],
                                                         want["instances"])
        return True, (svc, ing, st, elbs[0])
    svc, ing, st, elb = poll(timeout, probe)
    lbname = (svc["metadata"].get("annotations") or {}).get(LBNAME_ANN)
    if lbname and elb["name"] != lbname:
        fail("ELB named %s, the Service records %s" % (elb["name"], lbname))
    if ing[0]["hostname"] != elb["dns"]:
        fail("ingress hostname %r != ELB DNSName %r" % (ing[0]["hostname"], elb["dns"]))
    tags = elb.get("tags") or {}
    if tags.get(CLUSTER_TAG) != "owned" or tags.get(SVC_TAG) != key:
        fail("ELB %s tags %s: want %s=owned and %s=%s" % (elb["name"], tags, CLUSTER_TAG,
                                                          SVC_TAG, key))
    # listeners: one per Service port, LB port -> NodePort, TCP
    have = sorted((l["LoadBalancerPort"], l["InstancePort"], l["Protocol"].upper())
                  for l in elb["listeners"])
    exp = sorted((p["port"], p["nodePort"], "TCP") for p in svc["spec"]["ports"])
    if have != exp:
        fail("ELB %s listeners %s, want %s" % (elb["name"], have, exp))
    hc = elb["health_check"]
    node_ports = {p["nodePort"] for p in svc["spec"]["ports"]}
    m = re.match(r"^(TCP|HTTP|HTTPS|SSL):(\d+)", hc.get("Target", ""))
    if not m or int(m.group(2)) not in node_ports:
        fail("ELB %s health check target %r is not one of the NodePorts %s" % (
            elb["name"], hc.get("Target"), sorted(node_ports)))
    # the managed security group
    sgname = "k8s-elb-" + elb["name"]
    sgs = [g for g in st["security_groups"].values() if g["name"] == sgname]
    if len(sgs) != 1:
        fail("%d security groups named %s, want 1" % (len(sgs), sgname))
    sg = sgs[0]
    sgt = sg.get("tags") or {}
    if sgt.get(CLUSTER_TAG) != "owned":
        fail("security group %s tags %s: no %s=owned" % (sg["id"], sgt, CLUSTER_TAG))
    if sg["id"] not in elb["security_groups"]:
        fail("ELB %s groups %s lack its managed group %s" % (elb["name"],
                                                             elb["security_groups"], sg["id"]))
    for extra in want.get("extra_sgs") or []:
        if extra not in elb["security_groups"]:
            fail("ELB %s groups %s lack the extra group %s" % (elb["name"],
                                                               elb["security_groups"], extra))
    rules = {(r["proto"], r["from"], r["to"], r["src"]) for r in sg["ingress"]}
    for p in svc["spec"]["ports"]:
        for cidr in want["source_ranges"]:
            if ("tcp", p["port"], p["port"], cidr) not in rules:
                fail("security group %s lacks ingress tcp %d from %s: rules %s" % (
                    sg["id"], p["port"], cidr, sorted(rules, key=str)))
    stray = [r for r in rules if r[3] not in want["source_ranges"] and r[0] != "icmp"]
    if stray:
        fail("security group %s has ingress from outside loadBalancerSourceRanges: %s" % (
            sg["id"], stray))
    # node security group allows the ELB group in
    node_sg = st["security_groups"]["sg-0a1b2c3d4e5f60301"]
    if not any(r["kind"] == "group" and r["src"] == sg["id"] for r in node_sg["ingress"]):
        fail("node group sg-0a1b2c3d4e5f60301 has no ingress from %s: %s" % (
            sg["id"], node_sg["ingress"]))
    print("  ELB %s: %d listeners %s, instances %s, health %s, group %s (%s), hostname ok" % (
        elb["name"], len(have), have, sorted(elb["instances"]), hc["Target"], sg["id"],
        sorted(rules, key=str)))
    print("LB %s %s" % (elb["name"], sg["id"]))


def cmd_elb_attr(timeout, lbname, since, idle, interval):
    """Wait until the ELB's idle timeout and health-check interval match,
    through ModifyLoadBalancerAttributes and ConfigureHealthCheck calls."""
    idle, interval, since = int(idle), int(interval), int(since)

    def probe():
        e = state()["classic_load_balancers"].get(lbname)
        if e is None:
            return False, "ELB %s is gone" % lbname
        got = (e["attributes"]["ConnectionSettings"]["IdleTimeout"],
               e["health_check"]["Interval"])
        return got == (idle, interval), "idle timeout/interval %s, want %s" % (
            got, (idle, interval))
    poll(timeout, probe)
    cs = calls(since)
    mod = [c for c in cs if c["action"] == "ModifyLoadBalancerAttributes"
           and c["params"].get("LoadBalancerName") == lbname and c["status"] == 200]
    hcs = [c for c in cs if c["action"] == "ConfigureHealthCheck"
           and c["params"].get("LoadBalancerName") == lbname and c["status"] == 200]
    if not mod or not hcs:
        fail("want ModifyLoadBalancerAttributes and ConfigureHealthCheck for %s after seq %d,"
             " saw %d and %d" % (lbname, since, len(mod), len(hcs)))
    recreated = [c for c in cs if c["action"] in ("CreateLoadBalancer", "DeleteLoadBalancer")
                 and c["params"].get("LoadBalancerName") == lbname]
    if recreated:
        fail("the annotation change recreated the ELB: %s" % recreated)
    print("  ELB %s: idle timeout %d, health interval %d (%d Modify, %d ConfigureHealthCheck)"
          % (lbname, idle, interval, len(mod), len(hcs)))


# ---------------------------------------------------------------- NLB
def cmd_nlb(timeout, ns, name, instances_json):
    instances = sorted(json.loads(instances_json))
    key = "%s/%s" % (ns, name)

    def probe():
        svc = kube(svc_path(ns, name))
        ing = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        for e in warning_events(ns, name):
            msg = e.get("message") or ""
            if (e.get("reason") == "SyncLoadBalancerFailed" and not ing
                    and re.search(r"\bnlb\b", msg, re.I)
                    and re.search(r"not (implemented|supported)|invalid", msg, re.I)):
                return True, ("skip", msg)
        st = state()
        lbs = [l for l in st["load_balancers"].values()
               if (l.get("tags") or {}).get(SVC_TAG) == key]
        if not ing or not ing[0].get("hostname") or len(lbs) != 1:
            return False, "ingress %s, %d NLBs tagged %s" % (ing, len(lbs), key)
        tgs = [t for t in st["target_groups"].values()
               if (t.get("tags") or {}).get(SVC_TAG) == key]
        if len(tgs) != len(svc["spec"]["ports"]):
            return False, "%d target groups tagged %s, want %d" % (
                len(tgs), key, len(svc["spec"]["ports"]))
        for t in tgs:
            ids = sorted(x["Id"] if isinstance(x, dict) else x[0] for x in t["targets"])
            if ids != instances:
                return False, "target group %s targets %s, want %s" % (t["name"], ids,
                                                                      instances)
        return True, (svc, ing, st, lbs[0], tgs)
    got = poll(timeout, probe)
    if got[0] == "skip":
        print("SKIP nlb: not implemented (%s)" % got[1])
        sys.exit(3)
    svc, ing, st, lb, tgs = got
    if lb["type"] != "network":
        fail("load balancer %s is type %s, want network" % (lb["name"], lb["type"]))
    if ing[0]["hostname"] != lb["dns"]:
        fail("ingress hostname %r != NLB DNSName %r" % (ing[0]["hostname"], lb["dns"]))
    for obj, what in [(lb, "NLB %s" % lb["name"])] + [(t, "target group %s" % t["name"])
                                                     for t in tgs]:
        tags = obj.get("tags") or {}
        if tags.get(CLUSTER_TAG) != "owned" or tags.get(SVC_TAG) != key:
            fail("%s tags %s: want %s=owned and %s=%s" % (what, tags, CLUSTER_TAG, SVC_TAG,
                                                          key))
    by_port = {p["port"]: p for p in svc["spec"]["ports"]}
    lis = [l for l in st["listeners"].values() if l["lb"] == lb["arn"]]
    if sorted(l["port"] for l in lis) != sorted(by_port):
        fail("NLB listeners on ports %s, want %s" % (sorted(l["port"] for l in lis),
                                                      sorted(by_port)))
    tg_by_arn = {t["arn"]: t for t in tgs}
    for l in lis:
        fw = [a.get("TargetGroupArn") for a in l["actions"]]
        if len(fw) != 1 or fw[0] not in tg_by_arn:
            fail("listener %d forwards to %s, not to one of the Service's groups" % (
                l["port"], fw))
        tg = tg_by_arn[fw[0]]
        want_np = by_port[l["port"]]["nodePort"]
        if tg["port"] != want_np or tg["protocol"] != by_port[l["port"]]["protocol"]:
            fail("target group %s port %s/%s, want the NodePort %d/%s" % (
                tg["name"], tg["port"], tg["protocol"], want_np,
                by_port[l["port"]]["protocol"]))
        if l["protocol"] != by_port[l["port"]]["protocol"]:
            fail("listener %d protocol %s" % (l["port"], l["protocol"]))
    print("  NLB %s: %d listeners -> %d target groups on NodePorts, targets %s, hostname ok"
          % (lb["name"], len(lis), len(tgs), instances))


# ---------------------------------------------------------------- lifecycle
def cmd_taint(timeout, node, key):
    def probe():
        n = kube_opt("/api/v1/nodes/" + node)
        if n is None:
            return False, "node %s is gone" % node
        taints = n["spec"].get("taints") or []
        return any(t["key"] == key for t in taints), "taints of %s: %s" % (node, taints)
    poll(timeout, probe)


def cmd_gone_node(timeout, node):
    poll(timeout, lambda: (kube_opt("/api/v1/nodes/" + node) is None,
                           "node %s still exists" % node))


def cmd_gone_svc(timeout, ns, name):
    poll(timeout, lambda: (kube_opt(svc_path(ns, name)) is None,
                           "Service %s/%s still exists" % (ns, name)))


def cmd_present_node(node):
    if kube_opt("/api/v1/nodes/" + node) is None:
        fail("node %s was deleted, but its instance only stopped" % node)


# ---------------------------------------------------------------- cleanup
def cmd_empty(timeout, ns, *names):
    def probe():
        left = [n for n in names if kube_opt(svc_path(ns, n)) is not None]
        st = state()
        sgs = [g["id"] + " " + g["name"] for g in st["security_groups"].values()
               if g["name"].startswith("k8s-elb-")]
        why = []
        if left:
            why.append("Services %s still exist" % left)
        for k in ("classic_load_balancers", "load_balancers", "target_groups", "listeners"):
            if st[k]:
                why.append("%d %s: %s" % (len(st[k]), k, sorted(st[k])))
        if sgs:
            why.append("groups %s" % sgs)
        node_sg = st["security_groups"]["sg-0a1b2c3d4e5f60301"]
        leftover = [r for r in node_sg["ingress"] if r["kind"] == "group"
                    and r["src"] != "sg-0a1b2c3d4e5f60301"]
        if leftover:
            why.append("node group keeps rules from deleted groups: %s" % leftover)
        return not why, "; ".join(why)
    poll(timeout, probe)


# ---------------------------------------------------------------- legacy group
def sg_snapshot(gid):
    g = state()["security_groups"].get(gid)
    if g is None:
        return "MISSING"
    rules = lambda rs: sorted((r["proto"], r["from"], r["to"], r["src"]) for r in rs)
    return json.dumps({"name": g["name"], "tags": g.get("tags") or {},
                       "ingress": rules(g["ingress"]), "egress": rules(g["egress"])},
                      sort_keys=True, default=str)


def targets(c):
    p = c["params"]
    out = {v for k, v in p.items() if k in ("GroupId", "GroupName") or
           re.match(r"^ResourceId\.\d+$", k)}
    return out


def cmd_untouched(gid):
    bad, refs = [], 0
    for c in calls():
        touches = gid in targets(c)
        if touches and re.match(r"^(Authorize|Revoke|Delete|Create|Modify)", c["action"]):
            bad.append("seq %d %s %s" % (c["seq"], c["action"], c["params"]))
        elif gid in json.dumps(c["params"]):
            refs += 1
    if bad:
        fail("mutating calls on %s: %s" % (gid, bad[:5]))
    print(refs)


# ---------------------------------------------------------------- call log
def cmd_seq():
    cs = aws("/_double/calls")["calls"]
    print(max([c["seq"] for c in cs] or [0]))


def cmd_mutating(since):
    out = [c for c in calls(int(since)) if MUTATING.match(c["action"] or "")]
    for c in out:
        print("seq %d %s %s %s" % (c["seq"], c["service"], c["action"],
                                   json.dumps(c["params"])[:200]))


def parse_t(s):
    d = datetime.datetime.strptime(s.rstrip("Z")[:23], "%Y-%m-%dT%H:%M:%S.%f")
    return d.timestamp()


def cmd_storm(since, attempts, gap_s, key, total):
    """Check the throttling storm after seq SINCE: at least one throttle
    fired, exactly one ELB for KEY, and no operation attempted more than
    ATTEMPTS times: attempts of the same (service, action, params) whose
    predecessor failed transiently and came less than GAP_S later are one
    operation's retries (the host requeues a given-up call 10 s later)."""
    attempts, gap_s = int(attempts), float(gap_s)
    cs = calls(int(since))
    throttled = [c for c in cs if c["error"] in ("RequestLimitExceeded", "Throttling")]
    if not throttled:
        fail("no throttling error fired in the storm: faults not injected?")
    runs, last, worst = {}, {}, (0, None)
    for c in cs:
        k = (c["service"], c["action"], json.dumps(c["params"], sort_keys=True))
        t = parse_t(c["time"])
        prev = last.get(k)
        if prev is not None and prev[1] and t - prev[0] < gap_s:
            runs[k] += 1
        else:
            runs[k] = 1
        transient = c["status"] >= 500 or c["error"] in ("RequestLimitExceeded", "Throttling")
        last[k] = (t, transient)
        if runs[k] > worst[0]:
            worst = (runs[k], "%s %s (seq %d)" % (c["service"], c["action"], c["seq"]))
    if worst[0] > attempts:
        fail("%s was attempted %d times in a row, budget %d" % (worst[1], worst[0], attempts))
    st = state()
    n = len(elbs_for(st, key))
    if n != 1:
        fail("%d ELBs tagged %s after the storm, want exactly 1" % (n, key))
    if len(st["classic_load_balancers"]) != int(total):
        fail("%d ELBs after the storm, want %s: %s" % (
            len(st["classic_load_balancers"]), total, sorted(st["classic_load_balancers"])))
    creates = [c for c in cs if c["action"] == "CreateLoadBalancer" and c["status"] == 200]
    print("  %d throttling errors over %d calls; longest retry run %d (%s), budget %d; "
          "%d successful CreateLoadBalancer, 1 ELB for it, %s in all" % (len(throttled), len(cs), worst[0],
                                                      worst[1], attempts, len(creates), total))


def cmd_calls_since(since, action):
    print(len([c for c in calls(int(since)) if c["action"] == action]))


def cmd_metric_idle(url, timeout, min_done):
    """Wait until the service queue is empty and at least MIN_DONE service
    reconciles finished, with the count unchanged for one more poll."""
    def value(text, prefix):
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                   if l.startswith(prefix))
    last = [None]

    def probe():
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        busy = sum(value(text, 'ccm_workqueue_%s{queue="service"}' % k)
                   for k in ("depth", "delayed", "processing"))
        done = value(text, 'ccm_reconcile_total{controller="service"')
        ok = busy == 0 and done >= float(min_done) and done == last[0]
        last[0] = done if busy == 0 else None
        return ok, "service queue busy %d, reconciles %d (want >= %s)" % (busy, done, min_done)
    deadline = time.monotonic() + float(timeout)
    while True:
        ok, why = probe()
        if ok:
            return
        if time.monotonic() > deadline:
            fail("not idle: " + why)
        time.sleep(2)


CMDS = {"nodes": cmd_nodes, "routes": cmd_routes, "elb": cmd_elb, "elb_attr": cmd_elb_attr,
        "nlb": cmd_nlb, "taint": cmd_taint, "gone_node": cmd_gone_node, "gone_svc": cmd_gone_svc,
        "present_node": cmd_present_node, "empty": cmd_empty,
        "sg": lambda gid: print(sg_snapshot(gid)), "untouched": cmd_untouched,
        "seq": cmd_seq, "kfault": lambda body: kube_control("faults", json.loads(body)), "mutating": cmd_mutating, "storm": cmd_storm,
        "count": cmd_calls_since, "idle": cmd_metric_idle}
if CMD not in CMDS:
    sys.exit("unknown command " + CMD)
CMDS[CMD](*ARGS)
