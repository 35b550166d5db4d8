"""hostkube.py: what the host tests' Python helpers share: a tiny client
for the Kubernetes API double (the kubeconfig's server, CA and token) and
a reader of ccm-host's /metrics. Standard library only; loopback only."""
import base64
import json
import ssl
import urllib.request

SVCS = "/api/v1/namespaces/default/services"
NODES = "/api/v1/nodes"
FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
NAME_ANNOTATION = "ccmhost.io/load-balancer-name"


class Kube:
    """Requests to the API server of a kubeconfig written by the double."""

    def __init__(self, kubeconfig):
        kc = json.load(open(kubeconfig))
        cluster = kc["clusters"][0]["cluster"]
        self.kc = kc
        self.token = kc["users"][0]["user"].get("token")
        self.server = cluster["server"]
        self.ctx = None
        if self.server.startswith("https:"):
            self.ctx = ssl.create_default_context(cadata=base64.b64decode(
                cluster["certificate-authority-data"]).decode())

    def req(self, method, path, body=None, ctype="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.server + path, data=data, method=method)
        if self.token:
            r.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            r.add_header("Content-Type", ctype)
        with urllib.request.urlopen(r, context=self.ctx, timeout=10) as resp:
            return json.load(resp)

    def get(self, path):
        return self.req("GET", path)

    def with_token(self, path, token):
        """Write a copy of the kubeconfig that authenticates with token."""
        kc = json.loads(json.dumps(self.kc))
        kc["users"][0]["user"]["token"] = token
        json.dump(kc, open(path, "w"))


def metrics_text(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def metric_sum(text, name, labels=None):
    """Sum of the samples of name (with exactly labels, "k=\\"v\\"", when
    given); 0 when there is none."""
    total = 0.0
    want = name + ("{%s}" % labels if labels else "")
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if labels is not None:
            if key == want:
                total += float(value)
        elif key == name or key.startswith(name + "{"):
            total += float(value)
    return total
