#!/usr/bin/python3
# Unit tests of the Kubernetes API double's semantics that kubectl cannot show
# easily: watch expiry, bookmarks, pagination, status separation, faults, auth, TLS.
# Runs the double in-process on 127.0.0.1; never touches another address.
"""Run: /usr/bin/python3 -m unittest tests/doubles/test_kube_semantics.py"""

import base64
import http.client
import json
import os
import shutil
import ssl
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kube_apiserver as kd  # noqa: E402


class DoubleCase(unittest.TestCase):
    history = 1000
    bookmark_interval = 60.0
    token = None
    token_file = None

    def setUp(self):
        cfg = kd.Config()
        cfg.history = self.history
        cfg.bookmark_interval = self.bookmark_interval
        cfg.token = self.token
        self.tmp = tempfile.mkdtemp(prefix="kube-sem-")
        if self.token_file:
            cfg.token_file = os.path.join(self.tmp, "token")
        self.d = kd.Double(cfg)
        if cfg.token_file:
            self.d.rotate_token(cfg.token)
        self.port = self.d.serve(0)
        self.tls_ctx = None
        self.setup_tls()
        self.th = threading.Thread(target=self.d.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                   daemon=True)
        self.th.start()

    def setup_tls(self):
        pass

    def tearDown(self):
        self.d.drop_watches()
        self.d.httpd.shutdown()
        self.d.httpd.server_close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def conn(self, timeout=30):
        if self.tls_ctx is not None:
            return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.tls_ctx,
                                               timeout=timeout)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def req(self, method, path, body=None, ctype="application/json", headers=None, token=None):
        c = self.conn()
        h = {"Content-Type": ctype}
        tok = token if token is not None else self.d.token
        if tok:
            h["Authorization"] = "Bearer " + tok
        h.update(headers or {})
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        c.close()
        try:
            obj = json.loads(raw) if raw else None
        except ValueError:
            obj = raw
        return r.status, obj, r

    def watch(self, path, until=None, max_events=1000, token=None):
        """Reads watch events until the stream ends, `until(events)` is true, or max_events."""
        c = self.conn()
        h = {}
        tok = token if token is not None else self.d.token
        if tok:
            h["Authorization"] = "Bearer " + tok
        c.request("GET", path, headers=h)
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
        events = []
        ended = "eof"
        try:
            while len(events) < max_events:
                line = r.fp.readline() if False else r.readline()
                if not line:
                    break
                events.append(json.loads(line))
                if until and until(events):
                    ended = "until"
                    break
        except (http.client.IncompleteRead, ConnectionError, OSError):
            ended = "dropped"
        c.close()
        return events, ended

    def cm(self, name, ns="default", **extra):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
        body.update(extra)
        st, obj, _ = self.req("POST", "/api/v1/namespaces/%s/configmaps" % ns, body)
        self.assertEqual(st, 201, obj)
        return obj


class TestWatch(DoubleCase):
    history = 5
    bookmark_interval = 0.2

    def test_old_resource_version_is_410(self):
        first = self.cm("c0")
        for i in range(1, 10):
            self.cm("c%d" % i)
        ev, _ = self.watch("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=%s"
                           % first["metadata"]["resourceVersion"])
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0]["type"], "ERROR")
        self.assertEqual(ev[0]["object"]["code"], 410)
        self.assertEqual(ev[0]["object"]["reason"], "Expired")
        self.assertIn("too old resource version", ev[0]["object"]["message"])
        st, obj, _ = self.req("GET", "/api/v1/namespaces/default/configmaps?resourceVersion=%s"
                              "&resourceVersionMatch=Exact" % first["metadata"]["resourceVersion"])
        self.assertEqual(st, 410)
        self.assertEqual(obj["reason"], "Expired")

    def test_recent_resource_version_replays(self):
        a = self.cm("a")
        self.cm("b")
        self.req("DELETE", "/api/v1/namespaces/default/configmaps/a")
        ev, ended = self.watch("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=%s"
                               "&timeoutSeconds=1" % a["metadata"]["resourceVersion"])
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in ev],
                         [("ADDED", "b"), ("DELETED", "a")])
        self.assertEqual(ended, "eof")  # timeoutSeconds closes the stream cleanly

    def test_bookmarks(self):
        self.cm("x")
        ev, _ = self.watch("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=%d"
                           "&allowWatchBookmarks=true&timeoutSeconds=5" % self.d.api.store.rv,
                           until=lambda e: len([x for x in e if x["type"] == "BOOKMARK"]) >= 2)
        bms = [e for e in ev if e["type"] == "BOOKMARK"]
        self.assertGreaterEqual(len(bms), 2)
        self.assertEqual(bms[0]["object"]["kind"], "ConfigMap")
        self.assertEqual(int(bms[0]["object"]["metadata"]["resourceVersion"]),
                         self.d.api.store.rv)
        # without allowWatchBookmarks there are none
        ev, _ = self.watch("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=%d"
                           "&timeoutSeconds=1" % self.d.api.store.rv)
        self.assertEqual(ev, [])

    def test_initial_events_without_rv(self):
        self.cm("p")
        self.cm("q")
        ev, _ = self.watch("/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1")
        self.assertEqual(sorted(e["object"]["metadata"]["name"] for e in ev), ["p", "q"])
        self.assertTrue(all(e["type"] == "ADDED" for e in ev))

    def test_label_selector_transitions(self):
        c = self.cm("sel", )
        rv = c["metadata"]["resourceVersion"]
        self.req("PATCH", "/api/v1/namespaces/default/configmaps/sel",
                 {"metadata": {"labels": {"app": "x"}}}, "application/merge-patch+json")
        self.req("PATCH", "/api/v1/namespaces/default/configmaps/sel",
                 {"metadata": {"labels": {"app": "y"}}}, "application/merge-patch+json")
        ev, _ = self.watch("/api/v1/namespaces/default/configmaps?watch=1&labelSelector=app%%3Dx"
                           "&resourceVersion=%s&timeoutSeconds=1" % rv)
        self.assertEqual([e["type"] for e in ev], ["ADDED", "DELETED"])


class TestBookmarkOnRequest(DoubleCase):
    bookmark_interval = 3600

    def test_control_bookmark(self):
        result = {}

        def run():
            result["ev"], _ = self.watch(
                "/api/v1/nodes?watch=1&allowWatchBookmarks=true&resourceVersion=%d"
                "&timeoutSeconds=30" % self.d.api.store.rv,
                until=lambda e: any(x["type"] == "BOOKMARK" for x in e))
        th = threading.Thread(target=run)
        th.start()
        deadline = time.time() + 30
        while not self.d.watches and time.time() < deadline:
            time.sleep(0.02)
        st, _, _ = self.req("POST", "/_control/bookmark", {})
        self.assertEqual(st, 200)
        th.join(30)
        self.assertFalse(th.is_alive())
        self.assertEqual(result["ev"][-1]["type"], "BOOKMARK")


class TestRestartAndDrop(DoubleCase):
    def test_drop_watches(self):
        result = {}

        def run():
            result["ev"], result["end"] = self.watch("/api/v1/nodes?watch=1&resourceVersion=%d"
                                                     % self.d.api.store.rv)
        th = threading.Thread(target=run)
        th.start()
        deadline = time.time() + 30
        while not self.d.watches and time.time() < deadline:
            time.sleep(0.02)
        st, obj, _ = self.req("POST", "/_control/drop-watches", {})
        self.assertEqual(obj["dropped"], 1)
        th.join(30)
        self.assertFalse(th.is_alive())
        self.assertIn(result["end"], ("dropped", "eof"))

    def test_restart_compacts(self):
        c = self.cm("before")
        self.cm("middle")
        st, obj, _ = self.req("POST", "/_control/restart", {})
        self.assertEqual(st, 200)
        self.cm("after")
        ev, _ = self.watch("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=%s"
                           % c["metadata"]["resourceVersion"])
        self.assertEqual(ev[0]["type"], "ERROR")
        self.assertEqual(ev[0]["object"]["code"], 410)
        # objects survive a restart
        st, obj, _ = self.req("GET", "/api/v1/namespaces/default/configmaps/before")
        self.assertEqual(st, 200)


class TestPagination(DoubleCase):
    def test_limit_continue(self):
        self.d.seed(0, 25, "default", "ClusterIP")
        names = []
        cont = ""
        pages = 0
        first_rv = None
        while True:
            st, obj, _ = self.req("GET", "/api/v1/namespaces/default/services?limit=10%s" % (
                "&continue=" + cont if cont else ""))
            self.assertEqual(st, 200)
            pages += 1
            names += [i["metadata"]["name"] for i in obj["items"]]
            self.assertNotIn("kind", obj["items"][0])  # typed list items omit kind
            first_rv = first_rv or obj["metadata"]["resourceVersion"]
            self.assertEqual(obj["metadata"]["resourceVersion"], first_rv)
            cont = obj["metadata"].get("continue")
            if not cont:
                self.assertNotIn("remainingItemCount", obj["metadata"])
                break
            self.assertEqual(obj["metadata"]["remainingItemCount"], 26 - len(names))
        self.assertEqual(pages, 3)
        self.assertEqual(len(names), 26)  # 25 seeded + default/kubernetes
        self.assertEqual(names, sorted(names))
        self.assertEqual(len(set(names)), 26)

    def test_continue_expires_after_compaction(self):
        self.d.seed(0, 5, "default", "ClusterIP")
        st, obj, _ = self.req("GET", "/api/v1/namespaces/default/services?limit=2")
        cont = obj["metadata"]["continue"]
        self.cm("bump")
        self.req("POST", "/_control/compact", {})
        st, obj, _ = self.req("GET", "/api/v1/namespaces/default/services?limit=2&continue=" + cont)
        self.assertEqual(st, 410)
        self.assertEqual(obj["reason"], "Expired")

    def test_big_seed_lists(self):
        self.d.seed(5000, 10000)
        total = 0
        cont = ""
        while True:
            st, obj, _ = self.req("GET", "/api/v1/services?limit=500%s" % (
                "&continue=" + cont if cont else ""))
            self.assertEqual(st, 200)
            total += len(obj["items"])
            cont = obj["metadata"].get("continue")
            if not cont:
                break
        self.assertEqual(total, 10001)
        st, obj, _ = self.req("GET", "/api/v1/nodes?limit=0")
        self.assertEqual(len(obj["items"]), 5000)
        ips = {i["spec"]["clusterIP"] for i in
               self.d.api.store.objects[("", "services")].values()}
        self.assertEqual(len(ips), 10001)


class TestObjects(DoubleCase):
    def svc(self, name, **spec):
        body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": dict({"type": "LoadBalancer", "ports": [{"port": 80}]}, **spec)}
        return self.req("POST", "/api/v1/namespaces/default/services", body)

    def test_status_separation(self):
        st, s, _ = self.svc("sep")
        self.assertEqual(st, 201)
        s["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
        s["spec"]["sessionAffinity"] = "ClientIP"
        st, s2, _ = self.req("PUT", "/api/v1/namespaces/default/services/sep", s)
        self.assertEqual(st, 200)
        self.assertEqual(s2["status"], {"loadBalancer": {}})
        self.assertEqual(s2["spec"]["sessionAffinity"], "ClientIP")
        s2["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
        s2["spec"]["sessionAffinity"] = "None"
        st, s3, _ = self.req("PUT", "/api/v1/namespaces/default/services/sep/status", s2)
        self.assertEqual(st, 200)
        self.assertEqual(s3["status"]["loadBalancer"]["ingress"], [{"ip": "192.0.2.1"}])
        self.assertEqual(s3["spec"]["sessionAffinity"], "ClientIP")
        self.assertGreater(int(s3["metadata"]["resourceVersion"]),
                           int(s2["metadata"]["resourceVersion"]))
        # nodes: main PUT keeps status too
        st, n, _ = self.req("POST", "/api/v1/nodes", {"metadata": {"name": "n1"}})
        n["status"]["addresses"] = [{"type": "InternalIP", "address": "10.0.0.1"}]
        st, n2, _ = self.req("PUT", "/api/v1/nodes/n1", n)
        self.assertNotIn("addresses", n2["status"])

    def test_conflict_and_noop(self):
        st, s, _ = self.svc("cf")
        old_rv = s["metadata"]["resourceVersion"]
        st, s2, _ = self.req("PATCH", "/api/v1/namespaces/default/services/cf",
                             {"metadata": {"labels": {"a": "b"}}}, "application/merge-patch+json")
        self.assertGreater(int(s2["metadata"]["resourceVersion"]), int(old_rv))
        s["metadata"]["labels"] = {"c": "d"}
        st, obj, _ = self.req("PUT", "/api/v1/namespaces/default/services/cf", s)
        self.assertEqual(st, 409)
        self.assertEqual(obj["kind"], "Status")
        self.assertEqual(obj["reason"], "Conflict")
        self.assertEqual(obj["details"], {"name": "cf", "kind": "services"})
        # no-op patch keeps the resourceVersion
        st, s3, _ = self.req("PATCH", "/api/v1/namespaces/default/services/cf",
                             {"metadata": {"labels": {"a": "b"}}}, "application/merge-patch+json")
        self.assertEqual(s3["metadata"]["resourceVersion"], s2["metadata"]["resourceVersion"])
        # clusterIP is immutable
        st, obj, _ = self.req("PATCH", "/api/v1/namespaces/default/services/cf",
                              {"spec": {"clusterIP": "10.96.0.99"}}, "application/merge-patch+json")
        self.assertEqual(st, 422)
        self.assertEqual(obj["details"]["causes"][0]["field"], "spec.clusterIPs[0]")

    def test_validation_shapes(self):
        st, obj, _ = self.svc("1bad")
        self.assertEqual(st, 422)
        self.assertEqual(obj["reason"], "Invalid")
        self.assertEqual(obj["details"]["causes"][0]["field"], "metadata.name")
        st, obj, _ = self.req("POST", "/api/v1/namespaces/default/services",
                              {"metadata": {"generateName": "gen-"},
                               "spec": {"ports": [{"port": 80}]}})
        self.assertEqual(st, 201)
        self.assertRegex(obj["metadata"]["name"], r"^gen-[a-z0-9]{5}$")
        st, obj, _ = self.svc("gen-dup", ports=[{"port": 80}, {"port": 80}])
        self.assertEqual(st, 422)
        st, obj, _ = self.req("GET", "/api/v1/namespaces/default/services/none")
        self.assertEqual((st, obj["reason"], obj["code"]), (404, "NotFound", 404))
        st, obj, _ = self.req("POST", "/api/v1/namespaces/nons/configmaps",
                              {"metadata": {"name": "x"}})
        self.assertEqual((st, obj["message"]), (404, 'namespaces "nons" not found'))
        st, obj, _ = self.req("PUT", "/api/v1/namespaces/default/services", {})
        self.assertEqual((st, obj["reason"]), (405, "MethodNotAllowed"))
        st, obj, _ = self.svc("etp", type="ClusterIP", externalTrafficPolicy="Local")
        self.assertEqual(st, 422)
        st, s, _ = self.svc("hc", externalTrafficPolicy="Local")
        self.assertTrue(30000 <= s["spec"]["healthCheckNodePort"] <= 32767)
        st, s2, _ = self.req("PATCH", "/api/v1/namespaces/default/services/hc",
                             {"spec": {"type": "ClusterIP", "externalTrafficPolicy": None}},
                             "application/merge-patch+json")
        self.assertEqual(st, 200, s2)
        self.assertNotIn("healthCheckNodePort", s2["spec"])
        self.assertNotIn("nodePort", s2["spec"]["ports"][0])
        self.assertNotIn(s["spec"]["ports"][0]["nodePort"], self.d.api.store.node_ports)

    def test_finalizer_flow(self):
        self.cm("fin", )
        rv0 = self.d.api.store.rv
        self.req("PATCH", "/api/v1/namespaces/default/configmaps/fin",
                 {"metadata": {"finalizers": ["a/b", "c/d"]}}, "application/merge-patch+json")
        st, obj, _ = self.req("DELETE", "/api/v1/namespaces/default/configmaps/fin")
        self.assertEqual(st, 200)
        self.assertTrue(obj["metadata"]["deletionTimestamp"])
        self.assertEqual(obj["metadata"]["deletionGracePeriodSeconds"], 0)
        st, obj, _ = self.req("GET", "/api/v1/namespaces/default/configmaps/fin")
        self.assertEqual(st, 200)
        # strategic patch removing one finalizer; object stays
        self.req("PATCH", "/api/v1/namespaces/default/configmaps/fin",
                 {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/b"]}},
                 "application/strategic-merge-patch+json")
        st, obj, _ = self.req("GET", "/api/v1/namespaces/default/configmaps/fin")
        self.assertEqual(obj["metadata"]["finalizers"], ["c/d"])
        self.req("PATCH", "/api/v1/namespaces/default/configmaps/fin",
                 [{"op": "remove", "path": "/metadata/finalizers"}], "application/json-patch+json")
        st, obj, _ = self.req("GET", "/api/v1/namespaces/default/configmaps/fin")
        self.assertEqual(st, 404)
        ev, _ = self.watch("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=%d"
                           "&timeoutSeconds=1" % rv0)
        self.assertEqual([e["type"] for e in ev], ["MODIFIED", "MODIFIED", "MODIFIED", "DELETED"])

    def test_strategic_merge_keys(self):
        st, n, _ = self.req("POST", "/api/v1/nodes", {"metadata": {"name": "sm"}, "spec": {
            "taints": [{"key": "a", "effect": "NoSchedule"}]}})
        patch = {"status": {"conditions": [{"type": "Ready", "status": "False"}],
                            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}}
        self.req("PATCH", "/api/v1/nodes/sm/status", patch, "application/strategic-merge-patch+json")
        patch = {"status": {"conditions": [{"type": "Ready", "status": "True"},
                                           {"type": "NetworkUnavailable", "status": "False"}],
                            "addresses": [{"type": "Hostname", "address": "sm"},
                                          {"type": "InternalIP", "$patch": "delete"}]}}
        st, n, _ = self.req("PATCH", "/api/v1/nodes/sm/status", patch,
                            "application/strategic-merge-patch+json")
        self.assertEqual(n["status"]["conditions"], [{"type": "Ready", "status": "True"},
                                                     {"type": "NetworkUnavailable",
                                                      "status": "False"}])
        self.assertEqual(n["status"]["addresses"], [{"type": "Hostname", "address": "sm"}])
        # NodeSpec.taints has no patch strategy in the Go types: the list is replaced
        st, n, _ = self.req("PATCH", "/api/v1/nodes/sm", {"spec": {"taints": [
            {"key": "b", "effect": "NoExecute"}]}}, "application/strategic-merge-patch+json")
        self.assertEqual(n["spec"]["taints"], [{"key": "b", "effect": "NoExecute"}])
        st, s, _ = self.req("POST", "/api/v1/namespaces/default/services", {
            "metadata": {"name": "ing", "finalizers": ["x"]},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
        self.req("PATCH", "/api/v1/namespaces/default/services/ing/status",
                 {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}},
                 "application/strategic-merge-patch+json")
        st, s, _ = self.req("PATCH", "/api/v1/namespaces/default/services/ing/status",
                            {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.2"}]}}},
                            "application/strategic-merge-patch+json")
        self.assertEqual(s["status"]["loadBalancer"]["ingress"], [{"ip": "192.0.2.2"}])
        st, s, _ = self.req("PATCH", "/api/v1/namespaces/default/services/ing",
                            {"metadata": {"finalizers": ["y", "x"]}},
                            "application/strategic-merge-patch+json")
        self.assertEqual(s["metadata"]["finalizers"], ["x", "y"])
        st, s, _ = self.req("PATCH", "/api/v1/namespaces/default/services/ing",
                            {"spec": {"$retainKeys": ["ports", "type"], "ports": [{"port": 80}]}},
                            "application/strategic-merge-patch+json")
        self.assertNotIn("selector", s["spec"])

    def test_json_patch_ops(self):
        self.cm("jp", data={"a": "1"})
        ops = [{"op": "copy", "from": "/data/a", "path": "/data/b"},
               {"op": "move", "from": "/data/a", "path": "/data/c"},
               {"op": "replace", "path": "/data/b", "value": "2"},
               {"op": "test", "path": "/data/c", "value": "1"}]
        st, obj, _ = self.req("PATCH", "/api/v1/namespaces/default/configmaps/jp", ops,
                              "application/json-patch+json")
        self.assertEqual(obj["data"], {"b": "2", "c": "1"})
        st, obj, _ = self.req("PATCH", "/api/v1/namespaces/default/configmaps/jp",
                              [{"op": "test", "path": "/data/c", "value": "9"}],
                              "application/json-patch+json")
        self.assertEqual(st, 422)

    def test_server_side_apply_yaml(self):
        body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n  b: two\n"
        st, obj, _ = self.req("PATCH", "/api/v1/namespaces/default/configmaps/ssa?fieldManager=me",
                              body, "application/apply-patch+yaml")
        self.assertEqual(st, 201 if False else 200, obj)
        self.assertEqual(obj["data"], {"a": "1", "b": "two"})
        body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n"
        st, obj, _ = self.req("PATCH", "/api/v1/namespaces/default/configmaps/ssa?fieldManager=me",
                              body, "application/apply-patch+yaml")
        self.assertEqual(obj["data"], {"a": "1"})
        st, obj, _ = self.req("PATCH", "/api/v1/namespaces/default/configmaps/ssa",
                              body, "application/apply-patch+yaml")
        self.assertEqual(st, 400)

    def test_field_selectors_and_tables(self):
        self.req("POST", "/api/v1/nodes", {"metadata": {"name": "u1"},
                                           "spec": {"unschedulable": True}})
        self.req("POST", "/api/v1/nodes", {"metadata": {"name": "u2"}})
        st, obj, _ = self.req("GET", "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dtrue")
        self.assertEqual([i["metadata"]["name"] for i in obj["items"]], ["u1"])
        st, obj, _ = self.req("GET", "/api/v1/nodes?fieldSelector=metadata.name!%3Du1")
        self.assertEqual([i["metadata"]["name"] for i in obj["items"]], ["u2"])
        st, obj, _ = self.req("GET", "/api/v1/nodes", headers={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
        self.assertEqual(obj["kind"], "Table")
        self.assertEqual(obj["rows"][0]["cells"][1], "Unknown,SchedulingDisabled")
        self.assertEqual(obj["rows"][0]["object"]["kind"], "PartialObjectMetadata")


class TestFaults(DoubleCase):
    def test_every_nth_503_and_429(self):
        self.req("POST", "/_control/faults", {"status": 503, "every": 2})
        codes = [self.req("GET", "/api/v1/nodes")[0] for _ in range(4)]
        self.assertEqual(codes, [200, 503, 200, 503])
        st, obj, _ = self.req("GET", "/api/v1/nodes")
        self.req("POST", "/_control/faults", {"clear": True, "status": 429, "retryAfter": 3,
                                              "count": 1, "path": "/api/v1/nodes"})
        st, obj, r = self.req("GET", "/api/v1/nodes")
        self.assertEqual((st, obj["reason"], r.getheader("Retry-After")),
                         (429, "TooManyRequests", "3"))
        self.assertEqual(obj["details"]["retryAfterSeconds"], 3)
        self.assertEqual(self.req("GET", "/api/v1/nodes")[0], 200)  # count exhausted
        self.req("POST", "/_control/faults", {"clear": True, "status": 500, "probability": 1.0,
                                              "method": "POST"})
        self.assertEqual(self.req("GET", "/api/v1/nodes")[0], 200)
        st, obj, _ = self.req("POST", "/api/v1/nodes", {"metadata": {"name": "f"}})
        self.assertEqual((st, obj["reason"]), (500, "InternalError"))
        self.req("POST", "/_control/faults", {"clear": True})
        self.assertEqual(self.req("POST", "/api/v1/nodes", {"metadata": {"name": "f"}})[0], 201)

    def test_request_log(self):
        self.req("DELETE", "/_control/requests")
        self.req("GET", "/api/v1/nodes?limit=1", headers={"User-Agent": "probe/1"})
        st, obj, _ = self.req("GET", "/_control/requests")
        e = [x for x in obj["items"] if x["path"] == "/api/v1/nodes"][-1]
        self.assertEqual((e["method"], e["query"], e["status"], e["userAgent"]),
                         ("GET", "limit=1", 200, "probe/1"))
        self.assertIn("durationMs", e)


class TestToken(DoubleCase):
    token = "first-token"
    token_file = True

    def test_401_and_rotation(self):
        st, obj, _ = self.req("GET", "/api/v1/nodes", token="")
        self.assertEqual((st, obj["reason"]), (401, "Unauthorized"))
        self.assertEqual(self.req("GET", "/api/v1/nodes", token="wrong")[0], 401)
        self.assertEqual(self.req("GET", "/api/v1/nodes", token="first-token")[0], 200)
        with open(os.path.join(self.tmp, "token")) as f:
            self.assertEqual(f.read(), "first-token")
        st, obj, _ = self.req("POST", "/_control/rotate-token", {}, token="")
        new = obj["token"]
        self.assertNotEqual(new, "first-token")
        self.assertEqual(self.req("GET", "/api/v1/nodes", token="first-token")[0], 401)
        self.assertEqual(self.req("GET", "/api/v1/nodes", token=new)[0], 200)
        with open(os.path.join(self.tmp, "token")) as f:
            self.assertEqual(f.read(), new)


@unittest.skipUnless(shutil.which("openssl"), "openssl CLI missing")
class TestTLS(DoubleCase):
    token = "tls-token"

    def setup_tls(self):
        pki = os.path.join(self.tmp, "pki")
        os.makedirs(pki)
        self.ca, crt, key = kd.make_certs(pki)
        self.d.wrap_tls(crt, key)
        self.tls_ctx = ssl.create_default_context(cafile=self.ca)

    def test_tls_with_generated_ca(self):
        st, obj, _ = self.req("GET", "/version")
        self.assertEqual(st, 200)
        self.assertTrue(obj["gitVersion"].startswith("v1."))
        st, obj, _ = self.req("GET", "/api/v1/namespaces/default")
        self.assertEqual(st, 200)
        bad = ssl.create_default_context()
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=bad, timeout=10)
        with self.assertRaises(ssl.SSLError):
            c.request("GET", "/version")
            c.getresponse()
        c.close()
        kc = os.path.join(self.tmp, "kc")
        kd.write_kubeconfig(kc, "https://127.0.0.1:%d" % self.port, "tls-token", self.ca)
        with open(kc) as f:
            cfg = json.load(f)
        with open(self.ca, "rb") as f:
            self.assertEqual(base64.b64decode(cfg["clusters"][0]["cluster"][
                "certificate-authority-data"]), f.read())
        self.assertEqual(cfg["users"][0]["user"]["token"], "tls-token")


class TestSelectors(unittest.TestCase):
    def test_label_selector(self):
        L = kd.LabelSelector
        lab = {"a": "1", "b": "2"}
        self.assertTrue(L("a=1,b==2").matches(lab))
        self.assertFalse(L("a!=1").matches(lab))
        self.assertTrue(L("c!=1").matches(lab))
        self.assertTrue(L("a in (1,3)").matches(lab))
        self.assertFalse(L("a notin (1,3)").matches(lab))
        self.assertTrue(L("a,!c").matches(lab))
        self.assertFalse(L("!a").matches(lab))
        self.assertTrue(L("").matches(lab))
        with self.assertRaises(kd.ApiError):
            L("a in (")


if __name__ == "__main__":
    unittest.main()
