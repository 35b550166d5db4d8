#!/usr/bin/python3
# AWS test double: EC2, Classic ELB (2012-06-01), ELBv2 (2015-12-01), STS and IMDSv2 on one
# 127.0.0.1 port, with real Query/XML shapes, SigV4 verification, call log and fault injection.
# Stdlib only; in-memory state seeded from JSON. It must never contact another address.
"""AWS API double. See tests/doubles/README.md (section aws.py)."""

import argparse
import base64
import copy
import datetime
import fnmatch
import hashlib
import hmac
import http.server
import ipaddress
import json
import posixpath
import re
import secrets
import signal
import socketserver
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from xml.sax.saxutils import escape as xml_escape

DEFAULT_ACCESS_KEY = "AKIDEXAMPLE"
DEFAULT_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
EC2_VERSION = "2016-11-15"
ELB_VERSION = "2012-06-01"
ELBV2_VERSION = "2015-12-01"
STS_VERSION = "2011-06-15"
ELB_NS = "http://elasticloadbalancing.amazonaws.com/doc/%s/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
MAX_SKEW = 15 * 60
STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
               "stopping": 64, "stopped": 80}
# Hosted zone IDs AWS publishes per region; other regions fall back to us-east-1's.
ELB_ZONE_IDS = {"us-east-1": "Z35SXDOTRQ7X7K", "us-east-2": "Z3AADJGX6KTTL2",
                "us-west-2": "Z1H1FL5HABSF5", "eu-west-1": "Z32O12XQLNTSW2"}
NLB_ZONE_IDS = {"us-east-1": "Z26RNL4JYFTOTI", "us-east-2": "ZLMOA37VPKANP",
                "us-west-2": "Z18D5FSROUN65G", "eu-west-1": "Z2IFOLAFXWLO4F"}
ELB_POLICY_TYPES = ("ProxyProtocolPolicyType", "SSLNegotiationPolicyType",
                    "BackendServerAuthenticationPolicyType", "PublicKeyPolicyType",
                    "AppCookieStickinessPolicyType", "LBCookieStickinessPolicyType")
PREDEFINED_SSL_POLICIES = ("ELBSecurityPolicy-2016-08", "ELBSecurityPolicy-TLS-1-2-2017-01",
                           "ELBSecurityPolicy-TLS-1-1-2017-01", "ELBSecurityPolicy-2015-05")


class AwsError(Exception):
    """An error answered in the service's own error shape."""

    def __init__(self, code, message, status=400, sender=True):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.sender = sender


def now_ts():
    return time.time()


def iso_ms(ts):
    d = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (d.microsecond // 1000)


def iso_s(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def rand_hex(n):
    return secrets.token_hex((n + 1) // 2)[:n]


def rand_upper(n):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "".join(secrets.choice(alphabet) for _ in range(n))


# --------------------------------------------------------------------------
# XML rendering: dict -> elements in order, list -> repeated item/member, None -> omitted.


def to_xml(tag, value, item):
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, str):
        text = xml_escape(value)
    elif isinstance(value, dict):
        text = "".join(to_xml(k, v, item) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = "".join(to_xml(item, v, item) for v in value)
    else:
        text = xml_escape(str(value))
    return "<%s>%s</%s>" % (tag, text, tag)


def body_xml(fields, item):
    return "".join(to_xml(k, v, item) for k, v in fields.items())


# --------------------------------------------------------------------------
# Query parameter helpers (flat EC2 lists "X.N", query lists "X.member.N").


def indexed(params, prefix):
    """[(n, sub)] for keys prefix.N[.rest]; sub maps rest ('' for the bare value)."""
    out = {}
    plen = len(prefix) + 1
    for k, v in params.items():
        if not k.startswith(prefix + "."):
            continue
        rest = k[plen:]
        num, _, tail = rest.partition(".")
        if not num.isdigit():
            continue
        out.setdefault(int(num), {})[tail] = v
    return [out[n] for n in sorted(out)]


def plist(params, prefix):
    return [s[""] for s in indexed(params, prefix) if "" in s]


def qlist(params, name):
    """A query-protocol list: Name.member.N, or [] when sent empty ('Name=')."""
    return plist(params, name + ".member")


def qstructs(params, name):
    return indexed(params, name + ".member")


def req(params, name):
    v = params.get(name)
    if v is None or v == "":
        raise AwsError("MissingParameter", "The request must contain the parameter %s" % name)
    return v


def qreq(params, name):
    v = params.get(name)
    if v is None or v == "":
        raise AwsError("ValidationError", "1 validation error detected: Value null at '%s' "
                       "failed to satisfy constraint: Member must not be null"
                       % (name[:1].lower() + name[1:]))
    return v


def as_int(v, name, err="InvalidParameterValue"):
    try:
        return int(v)
    except (TypeError, ValueError):
        raise AwsError(err, "Invalid value '%s' for %s" % (v, name))


def as_bool(v):
    return str(v).lower() == "true"


def tags_list(tags):
    return [{"key": k, "value": v} for k, v in tags.items()]


def qtags_list(tags):
    return [{"Key": k, "Value": v} for k, v in tags.items()]


# Tags of the load-balancer APIs, shared by Classic ELB and ELBv2: objects are dicts
# with a "tags" dict; the handlers differ only in how they name the objects.

def qtags(p):
    """Tags.member.N.Key/Value (ELB and ELBv2 requests); a key must not be empty."""
    tags = {}
    for t in qstructs(p, "Tags"):
        if not t.get("Key"):
            raise AwsError("ValidationError", "Tag key must not be empty")
        tags[t["Key"]] = t.get("Value", "")
    return tags


def lb_tags_add(objs, tags, quota_msg):
    """AddTags: tags merged into each object's in turn; an object that would pass 50
    tags keeps its own and the call fails (TooManyTags, quota_msg)."""
    for o in objs:
        merged = dict(o["tags"], **tags)
        if len(merged) > 50:
            raise AwsError("TooManyTags", quota_msg)
        o["tags"] = merged
    return {}


def lb_tags_remove(objs, keys):
    """RemoveTags: keys dropped from every object (absent keys are fine)."""
    for o in objs:
        for k in keys:
            o["tags"].pop(k, None)
    return {}


def lb_tags_describe(named, id_key):
    """DescribeTags: one TagDescription per (id, object), the id under id_key."""
    return {"TagDescriptions": [{id_key: i, "Tags": qtags_list(o["tags"])}
                                for i, o in named]}


# --------------------------------------------------------------------------
# SigV4


def sig_key(secret, date, region, service):
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def canonical_uri(path):
    # Non-S3 services normalise the path and then URI-encode it once more.
    norm = posixpath.normpath(path) if path not in ("", "/") else "/"
    if path.endswith("/") and norm != "/":
        norm += "/"
    if not norm.startswith("/"):
        norm = "/" + norm
    return urllib.parse.quote(norm, safe="/~")


def canonical_query(raw_query):
    pairs = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
    enc = [(urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
           for k, v in pairs]
    return "&".join("%s=%s" % kv for kv in sorted(enc))


AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),"
                     r"\s*Signature=([0-9a-fA-F]+)\s*$")


def parse_authorization(value):
    m = AUTH_RE.match(value or "")
    if not m:
        return None
    cred = m.group(1).split("/")
    if len(cred) != 5 or cred[4] != "aws4_request":
        return None
    return {"access_key": cred[0], "date": cred[1], "region": cred[2], "service": cred[3],
            "signed_headers": m.group(2), "signature": m.group(3).lower()}


def string_to_sign(method, path, raw_query, headers, signed_headers, payload_hash, amz_date,
                   scope):
    lines = []
    for h in signed_headers.split(";"):
        vals = headers.get_all(h) or []
        joined = ",".join(" ".join(v.strip().split()) for v in vals)
        lines.append("%s:%s\n" % (h, joined))
    creq = "\n".join([method, canonical_uri(path), canonical_query(raw_query),
                      "".join(lines), signed_headers, payload_hash])
    return "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                      hashlib.sha256(creq.encode()).hexdigest()]), creq


# --------------------------------------------------------------------------
# State


class State:
    def __init__(self, seed, region_override=None):
        self.lock = threading.RLock()
        self.seed = copy.deepcopy(seed)
        self.load(seed, region_override)

    def load(self, seed, region_override=None):
        seed = copy.deepcopy(seed)
        self.account = str(seed.get("account_id", "123456789012"))
        self.region = region_override or seed.get("region", "us-east-1")
        self.dns_suffix = "ec2.internal" if self.region == "us-east-1" else \
            "%s.compute.internal" % self.region
        self.azs = []
        for i, az in enumerate(seed.get("availability_zones") or [
                {"name": self.region + s} for s in "abc"]):
            self.azs.append({"name": az["name"],
                             "zone_id": az.get("zone_id", "%s-az%d" % (
                                 region_short(self.region), i + 1)),
                             "zone_type": az.get("zone_type", "availability-zone"),
                             "state": az.get("state", "available")})
        self.vpcs = {}
        for v in seed.get("vpcs", []):
            self.vpcs[v["id"]] = {"id": v["id"], "cidr": v.get("cidr", "10.0.0.0/16"),
                                  "default": bool(v.get("default", False)),
                                  "tags": dict(v.get("tags", {}))}
        self.subnets = {}
        for s in seed.get("subnets", []):
            net = ipaddress.ip_network(s["cidr"])
            self.subnets[s["id"]] = {"id": s["id"], "vpc": s["vpc"], "az": s["az"],
                                     "cidr": s["cidr"], "tags": dict(s.get("tags", {})),
                                     "map_public_ip": bool(s.get("map_public_ip", False)),
                                     "free": max(0, net.num_addresses - 5)}
        self.route_tables = {}
        for r in seed.get("route_tables", []):
            assocs = []
            for a in r.get("associations", []):
                assocs.append({"id": a.get("id", "rtbassoc-" + rand_hex(17)),
                               "main": bool(a.get("main", False)),
                               "subnet": a.get("subnet")})
            routes = []
            for rt in r.get("routes", []):
                routes.append({"cidr": rt["cidr"], "gateway": rt.get("gateway"),
                               "instance": rt.get("instance"), "eni": rt.get("eni"),
                               "nat": rt.get("nat"),
                               "origin": rt.get("origin", "CreateRouteTable"
                                                if rt.get("gateway") == "local"
                                                else "CreateRoute")})
            self.route_tables[r["id"]] = {"id": r["id"], "vpc": r["vpc"],
                                          "associations": assocs, "routes": routes,
                                          "tags": dict(r.get("tags", {}))}
        self.security_groups = {}
        for g in seed.get("security_groups", []):
            sg = {"id": g["id"], "name": g["name"],
                  "description": g.get("description", g["name"]), "vpc": g.get("vpc"),
                  "tags": dict(g.get("tags", {})), "ingress": [], "egress": []}
            for direction in ("ingress", "egress"):
                src = g.get(direction)
                if src is None and direction == "egress":
                    src = [{"protocol": "-1", "cidrs": ["0.0.0.0/0"]}]
                for p in src or []:
                    sg[direction].extend(self._seed_rules(p))
            self.security_groups[sg["id"]] = sg
        self.instances = {}
        for i in seed.get("instances", []):
            self.add_instance(i)
        self.credentials = {DEFAULT_ACCESS_KEY: {
            "secret": DEFAULT_SECRET_KEY, "arn": "arn:aws:iam::%s:user/ccm-double" % self.account,
            "user_id": "AIDAEXAMPLEDOUBLE0001", "token": None, "expires": None}}
        for c in seed.get("credentials", []):
            self.credentials[c["access_key"]] = {
                "secret": c["secret_key"],
                "arn": c.get("arn", "arn:aws:iam::%s:user/%s" % (self.account, c["access_key"])),
                "user_id": c.get("user_id", "AIDA" + rand_upper(17)), "token": None,
                "expires": None}
        self.web_identity_tokens = list(seed.get("web_identity_tokens", []))
        self.roles = seed.get("roles")
        imds = seed.get("imds") or {}
        first = next(iter(self.instances), None)
        self.imds = {"instance_id": imds.get("instance_id", first),
                     "role": imds.get("role", "ccm-double-node-role")}
        self.imds_tokens = {}
        self.imds_creds = None
        self.elbs = {}
        self.lbs = {}
        self.tgs = {}
        self.listeners = {}
        self.target_health = {}

    def _seed_rules(self, p):
        proto = norm_protocol(str(p.get("protocol", "-1")))
        fp = p.get("from")
        tp = p.get("to")
        if proto == "-1":
            fp = tp = None
        out = []
        for c in p.get("cidrs", []):
            out.append({"proto": proto, "from": fp, "to": tp, "kind": "cidr", "src": c,
                        "desc": p.get("description"), "id": "sgr-" + rand_hex(17)})
        for c in p.get("ipv6_cidrs", []):
            out.append({"proto": proto, "from": fp, "to": tp, "kind": "cidr6", "src": c,
                        "desc": p.get("description"), "id": "sgr-" + rand_hex(17)})
        for gid in p.get("groups", []):
            out.append({"proto": proto, "from": fp, "to": tp, "kind": "group", "src": gid,
                        "desc": p.get("description"), "id": "sgr-" + rand_hex(17)})
        return out

    def add_instance(self, i):
        iid = i["id"]
        subnet = self.subnets.get(i.get("subnet"))
        az = i.get("az") or (subnet["az"] if subnet else self.azs[0]["name"])
        vpc = i.get("vpc") or (subnet["vpc"] if subnet else next(iter(self.vpcs), None))
        priv = i.get("private_ip")
        enis = []
        for n, e in enumerate(i.get("enis") or [{"device_index": 0,
                                                   "private_ips": [priv] if priv else []}]):
            ips = list(e.get("private_ips", []))
            enis.append({"id": e.get("id", "eni-" + rand_hex(17)),
                         "device_index": int(e.get("device_index", n)),
                         "mac": e.get("mac", "0e:%s" % ":".join(rand_hex(2) for _ in range(5))),
                         "private_ips": ips, "ipv6": list(e.get("ipv6", [])),
                         "status": e.get("status", "in-use"),
                         "subnet": e.get("subnet", i.get("subnet")),
                         "attachment_id": "eni-attach-" + rand_hex(17)})
        if not priv:
            primary = sorted(enis, key=lambda e: e["device_index"])
            if primary and primary[0]["private_ips"]:
                priv = primary[0]["private_ips"][0]
        pdns = i.get("private_dns")
        if pdns is None and priv:
            pdns = "ip-%s.%s" % (priv.replace(".", "-"), self.dns_suffix)
        pub = i.get("public_ip")
        pubdns = i.get("public_dns")
        if pub and pubdns is None:
            pubdns = "ec2-%s.compute-1.amazonaws.com" % pub.replace(".", "-") \
                if self.region == "us-east-1" else \
                "ec2-%s.%s.compute.amazonaws.com" % (pub.replace(".", "-"), self.region)
        self.instances[iid] = {
            "id": iid, "type": i.get("type", "m5.large"), "az": az, "subnet": i.get("subnet"),
            "vpc": vpc, "state": i.get("state", "running"), "private_ip": priv,
            "private_dns": pdns or "", "public_ip": pub, "public_dns": pubdns or "",
            "image_id": i.get("image_id", "ami-0abcdef1234567890"),
            "launch_time": i.get("launch_time", iso_ms(now_ts() - 86400)),
            "security_groups": list(i.get("security_groups", [])),
            "tags": dict(i.get("tags", {})), "enis": enis,
            "source_dest_check": bool(i.get("source_dest_check", True)),
            "reservation": i.get("reservation", "r-" + rand_hex(17)),
            "reason": ""}

    def dump(self):
        with self.lock:
            return {"account_id": self.account, "region": self.region,
                    "availability_zones": self.azs, "vpcs": self.vpcs,
                    "subnets": self.subnets, "route_tables": self.route_tables,
                    "security_groups": self.security_groups, "instances": self.instances,
                    "classic_load_balancers": self.elbs, "load_balancers": self.lbs,
                    "target_groups": self.tgs, "listeners": self.listeners,
                    "imds": self.imds,
                    "issued_credentials": sorted(k for k, c in self.credentials.items()
                                                 if c.get("token"))}


def region_short(region):
    """us-east-1 -> use1, ap-northeast-1 -> apne1, as AWS zone IDs spell regions."""
    parts = region.split("-")
    if len(parts) != 3:
        return region.replace("-", "")
    dirs = {"east": "e", "west": "w", "north": "n", "south": "s", "central": "c",
            "northeast": "ne", "southeast": "se", "northwest": "nw", "southwest": "sw"}
    return parts[0] + dirs.get(parts[1], parts[1][:1]) + parts[2]


def norm_protocol(p):
    p = p.lower()
    return {"6": "tcp", "17": "udp", "1": "icmp", "all": "-1", "58": "icmpv6"}.get(p, p)


# --------------------------------------------------------------------------
# EC2 (protocol "ec2": flat lists, lowerCamel responses, <xSet><item> lists)

INSTANCE_ID_RE = re.compile(r"^i-([0-9a-f]{8}|[0-9a-f]{17})$")
ID_NOT_FOUND = {"i": ("InvalidInstanceID.NotFound", "instance ID"),
                "sg": ("InvalidGroup.NotFound", "security group"),
                "subnet": ("InvalidSubnetID.NotFound", "subnet ID"),
                "rtb": ("InvalidRouteTableID.NotFound", "route table ID"),
                "vpc": ("InvalidVpcID.NotFound", "vpc ID")}


def ec2_filters(params):
    out = []
    for f in indexed(params, "Filter"):
        name = f.get("Name")
        if not name:
            raise AwsError("InvalidParameterValue", "The filter 'null' is invalid")
        out.append((name, plist(f, "Value")))
    return out


def match_values(value, patterns):
    if value is None:
        return False
    vals = value if isinstance(value, (list, set, tuple)) else [value]
    for v in vals:
        sv = str(v).lower() if isinstance(v, bool) else str(v)
        for p in patterns:
            if fnmatch.fnmatchcase(sv, p):
                return True
    return False


def apply_filters(objs, filters, getters):
    out = []
    for o in objs:
        ok = True
        for name, values in filters:
            if name.startswith("tag:"):
                key = name[4:]
                v = o["tags"].get(key)
                ok = v is not None and match_values(v, values)
            elif name == "tag-key":
                ok = match_values(list(o["tags"].keys()), values)
            elif name == "tag-value":
                ok = match_values(list(o["tags"].values()), values)
            elif name in getters:
                ok = match_values(getters[name](o), values)
            else:
                raise AwsError("InvalidParameterValue", "The filter '%s' is invalid" % name)
            if not ok:
                break
        if ok:
            out.append(o)
    return out


def page(items, params, action, lo=5, hi=1000, allow=True):
    mr = params.get("MaxResults")
    tok = params.get("NextToken")
    if mr is None and not tok:
        return items, None
    start = 0
    if tok:
        try:
            d = json.loads(base64.urlsafe_b64decode(tok.encode()).decode())
            if d.get("a") != action:
                raise ValueError
            start = int(d["o"])
        except (ValueError, KeyError, TypeError):
            raise AwsError("InvalidParameterValue", "Invalid value '%s' for nextToken" % tok)
    n = hi
    if mr is not None:
        n = as_int(mr, "MaxResults")
        if n < lo or n > hi:
            raise AwsError("InvalidParameterValue",
                           "Value ( %d ) for parameter maxResults is invalid. Expecting a value "
                           "greater than %d and less than %d." % (n, lo, hi))
    chunk = items[start:start + n]
    nxt = None
    if start + n < len(items):
        nxt = base64.urlsafe_b64encode(json.dumps(
            {"a": action, "o": start + n, "r": rand_hex(8)}).encode()).decode()
    return chunk, nxt


class Ec2:
    def __init__(self, st):
        self.st = st

    # -- rendering
    def sg_ref(self, gid):
        g = self.st.security_groups.get(gid)
        return {"groupId": gid, "groupName": g["name"] if g else ""}

    def render_instance(self, i):
        st = self.st
        state = i["state"]
        live = state not in ("terminated",)
        running = state in ("running", "pending")
        sgs = [self.sg_ref(g) for g in i["security_groups"]] if live else []
        enis = []
        if live:
            for e in sorted(i["enis"], key=lambda x: x["device_index"]):
                sub = st.subnets.get(e["subnet"]) or {}
                ips = []
                for n, ip in enumerate(e["private_ips"]):
                    item = {"privateIpAddress": ip,
                            "privateDnsName": "ip-%s.%s" % (ip.replace(".", "-"),
                                                            st.dns_suffix),
                            "primary": n == 0}
                    if n == 0 and e["device_index"] == 0 and running and i["public_ip"]:
                        item["association"] = {"publicIp": i["public_ip"],
                                               "publicDnsName": i["public_dns"],
                                               "ipOwnerId": "amazon"}
                    ips.append(item)
                ent = {"networkInterfaceId": e["id"], "subnetId": e["subnet"],
                       "vpcId": sub.get("vpc", i["vpc"]), "description": "",
                       "ownerId": st.account, "status": e["status"],
                       "macAddress": e["mac"],
                       "privateIpAddress": e["private_ips"][0] if e["private_ips"] else None,
                       "privateDnsName": ips[0]["privateDnsName"] if ips else None,
                       "sourceDestCheck": i["source_dest_check"], "groupSet": sgs,
                       "attachment": {"attachmentId": e["attachment_id"],
                                      "deviceIndex": e["device_index"],
                                      "status": "attached", "attachTime": i["launch_time"],
                                      "deleteOnTermination": e["device_index"] == 0,
                                      "networkCardIndex": 0}}
                if e["device_index"] == 0 and running and i["public_ip"]:
                    ent["association"] = {"publicIp": i["public_ip"],
                                          "publicDnsName": i["public_dns"],
                                          "ipOwnerId": "amazon"}
                ent["privateIpAddressesSet"] = ips
                ent["ipv6AddressesSet"] = [{"ipv6Address": a} for a in e["ipv6"]]
                ent["interfaceType"] = "interface"
                enis.append(ent)
        out = {"instanceId": i["id"], "imageId": i["image_id"],
               "instanceState": {"code": STATE_CODES.get(state, 16), "name": state},
               "privateDnsName": i["private_dns"] if live else "",
               "dnsName": i["public_dns"] if running else "",
               "reason": i["reason"], "amiLaunchIndex": 0, "productCodes": [],
               "instanceType": i["type"], "launchTime": i["launch_time"],
               "placement": {"availabilityZone": i["az"], "groupName": "",
                             "tenancy": "default"},
               "monitoring": {"state": "disabled"},
               "subnetId": i["subnet"] if live else None,
               "vpcId": i["vpc"] if live else None,
               "privateIpAddress": i["private_ip"] if live else None,
               "ipAddress": i["public_ip"] if running else None,
               "sourceDestCheck": i["source_dest_check"] if live else None,
               "groupSet": sgs, "architecture": "x86_64", "rootDeviceType": "ebs",
               "rootDeviceName": "/dev/xvda", "blockDeviceMapping": [],
               "virtualizationType": "hvm", "clientToken": "",
               "tagSet": tags_list(i["tags"]), "hypervisor": "xen",
               "networkInterfaceSet": enis, "ebsOptimized": False, "enaSupport": True}
        if state in ("stopped", "stopping", "terminated", "shutting-down"):
            out["stateReason"] = {"code": "Client.UserInitiatedShutdown",
                                  "message": "Client.UserInitiatedShutdown: User initiated "
                                  "shutdown"}
        return out

    def rules_xml(self, rules):
        groups = {}
        order = []
        for r in rules:
            key = (r["proto"], r["from"], r["to"])
            if key not in groups:
                groups[key] = {"cidr": [], "cidr6": [], "group": []}
                order.append(key)
            groups[key][r["kind"]].append(r)
        out = []
        for key in order:
            g = groups[key]
            item = {"ipProtocol": key[0]}
            if key[1] is not None:
                item["fromPort"] = key[1]
            if key[2] is not None:
                item["toPort"] = key[2]
            item["groups"] = [dict({"groupId": r["src"], "userId": self.st.account},
                                   **({"description": r["desc"]} if r["desc"] else {}))
                              for r in g["group"]]
            item["ipRanges"] = [dict({"cidrIp": r["src"]},
                                     **({"description": r["desc"]} if r["desc"] else {}))
                                for r in g["cidr"]]
            item["ipv6Ranges"] = [dict({"cidrIpv6": r["src"]},
                                       **({"description": r["desc"]} if r["desc"] else {}))
                                  for r in g["cidr6"]]
            item["prefixListIds"] = []
            out.append(item)
        return out

    def render_sg(self, g):
        return {"ownerId": self.st.account, "groupId": g["id"], "groupName": g["name"],
                "groupDescription": g["description"],
                "ipPermissions": self.rules_xml(g["ingress"]),
                "ipPermissionsEgress": self.rules_xml(g["egress"]),
                "vpcId": g["vpc"], "tagSet": tags_list(g["tags"])}

    def route_state(self, r):
        if r.get("instance"):
            i = self.st.instances.get(r["instance"])
            if i is None or i["state"] in ("terminated", "shutting-down"):
                return "blackhole"
        if r.get("eni"):
            found = any(e["id"] == r["eni"] for i in self.st.instances.values()
                        if i["state"] != "terminated" for e in i["enis"])
            if not found and not r.get("instance"):
                return "blackhole"
        return "active"

    def render_rtb(self, t):
        routes = []
        for r in t["routes"]:
            item = {"destinationCidrBlock": r["cidr"]}
            if r.get("gateway"):
                item["gatewayId"] = r["gateway"]
            if r.get("nat"):
                item["natGatewayId"] = r["nat"]
            if r.get("instance"):
                item["instanceId"] = r["instance"]
                item["instanceOwnerId"] = self.st.account
            if r.get("eni"):
                item["networkInterfaceId"] = r["eni"]
            item["state"] = self.route_state(r)
            item["origin"] = r["origin"]
            routes.append(item)
        assocs = []
        for a in t["associations"]:
            item = {"routeTableAssociationId": a["id"], "routeTableId": t["id"]}
            if a.get("subnet"):
                item["subnetId"] = a["subnet"]
            item["main"] = a["main"]
            item["associationState"] = {"state": "associated"}
            assocs.append(item)
        return {"routeTableId": t["id"], "vpcId": t["vpc"], "ownerId": self.st.account,
                "routeSet": routes, "associationSet": assocs, "propagatingVgwSet": [],
                "tagSet": tags_list(t["tags"])}

    # -- lookups
    def need_instance(self, iid):
        if not INSTANCE_ID_RE.match(iid or ""):
            raise AwsError("InvalidInstanceID.Malformed", 'Invalid id: "%s"' % iid)
        i = self.st.instances.get(iid)
        if i is None:
            raise AwsError("InvalidInstanceID.NotFound",
                           "The instance ID '%s' does not exist" % iid)
        return i

    def need_sg(self, params, id_key="GroupId", name_key="GroupName"):
        gid = params.get(id_key)
        if gid:
            g = self.st.security_groups.get(gid)
            if g is None:
                if not re.match(r"^sg-[0-9a-f]+$", gid):
                    raise AwsError("InvalidGroupId.Malformed",
                                   'Invalid id: "%s" (expecting "sg-...")' % gid)
                raise AwsError("InvalidGroup.NotFound",
                               "The security group '%s' does not exist" % gid)
            return g
        name = params.get(name_key)
        if name:
            vpc = self.default_vpc()
            for g in self.st.security_groups.values():
                if g["name"] == name and g["vpc"] == vpc:
                    return g
            raise AwsError("InvalidGroup.NotFound",
                           "The security group '%s' does not exist in default VPC '%s'"
                           % (name, vpc or "none"))
        raise AwsError("MissingParameter", "The request must contain the parameter groupId")

    def default_vpc(self):
        for v in self.st.vpcs.values():
            if v["default"]:
                return v["id"]
        return None

    def resource(self, rid):
        st = self.st
        prefix = rid.split("-", 1)[0]
        table = {"i": st.instances, "sg": st.security_groups, "subnet": st.subnets,
                 "rtb": st.route_tables, "vpc": st.vpcs}.get(prefix)
        if table is None or "-" not in rid:
            raise AwsError("InvalidID", "The ID '%s' is not valid" % rid)
        obj = table.get(rid)
        if obj is None:
            code, what = ID_NOT_FOUND[prefix]
            raise AwsError(code, "The %s '%s' does not exist" % (what, rid))
        return obj

    # -- operations
    def DescribeInstances(self, p):
        st = self.st
        ids = plist(p, "InstanceId")
        if ids and p.get("MaxResults"):
            raise AwsError("InvalidParameterCombination", "The parameter instancesSet cannot "
                           "be used with the parameter maxResults")
        if ids:
            bad = [x for x in ids if not INSTANCE_ID_RE.match(x)]
            if bad:
                raise AwsError("InvalidInstanceID.Malformed", 'Invalid id: "%s"' % bad[0])
            missing = [x for x in ids if x not in st.instances]
            if len(missing) == 1:
                raise AwsError("InvalidInstanceID.NotFound",
                               "The instance ID '%s' does not exist" % missing[0])
            if missing:
                raise AwsError("InvalidInstanceID.NotFound", "The instance IDs '%s' do not "
                               "exist" % ", ".join(missing))
            objs = [st.instances[x] for x in dict.fromkeys(ids)]
        else:
            objs = list(st.instances.values())
        objs = apply_filters(objs, ec2_filters(p), {
            "instance-id": lambda o: o["id"],
            "private-dns-name": lambda o: o["private_dns"],
            "dns-name": lambda o: o["public_dns"],
            "instance-state-name": lambda o: o["state"],
            "instance-state-code": lambda o: str(STATE_CODES.get(o["state"], 16)),
            "vpc-id": lambda o: o["vpc"], "subnet-id": lambda o: o["subnet"],
            "availability-zone": lambda o: o["az"],
            "instance-type": lambda o: o["type"],
            "private-ip-address": lambda o: o["private_ip"],
            "ip-address": lambda o: o["public_ip"],
            "instance.group-id": lambda o: o["security_groups"],
            "network-interface.addresses.private-ip-address":
                lambda o: [ip for e in o["enis"] for ip in e["private_ips"]]})
        objs, nxt = page(objs, p, "DescribeInstances")
        res = [{"reservationId": i["reservation"], "ownerId": st.account, "groupSet": [],
                "instancesSet": [self.render_instance(i)]} for i in objs]
        return {"reservationSet": res, "nextToken": nxt}

    def DescribeVpcs(self, p):
        st = self.st
        ids = plist(p, "VpcId")
        for x in ids:
            if x not in st.vpcs:
                raise AwsError("InvalidVpcID.NotFound",
                               "The vpc ID '%s' does not exist" % x)
        objs = [st.vpcs[x] for x in ids] if ids else list(st.vpcs.values())
        objs = apply_filters(objs, ec2_filters(p), {
            "vpc-id": lambda o: o["id"], "cidr": lambda o: o["cidr"],
            "cidr-block-association.cidr-block": lambda o: o["cidr"],
            "state": lambda o: "available", "is-default": lambda o: "false"})
        out = []
        for v in objs:
            out.append({"vpcId": v["id"], "state": "available", "cidrBlock": v["cidr"],
                        "cidrBlockAssociationSet": [{
                            "associationId": "vpc-cidr-assoc-" + v["id"][4:],
                            "cidrBlock": v["cidr"],
                            "cidrBlockState": {"state": "associated"}}],
                        "dhcpOptionsId": "dopt-0a1b2c3d", "instanceTenancy": "default",
                        "isDefault": False, "ownerId": st.account,
                        "tagSet": tags_list(v.get("tags", {}))})
        return {"vpcSet": out}

    def DescribeSubnets(self, p):
        st = self.st
        ids = plist(p, "SubnetId")
        for x in ids:
            if x not in st.subnets:
                raise AwsError("InvalidSubnetID.NotFound",
                               "The subnet ID '%s' does not exist" % x)
        objs = [st.subnets[x] for x in ids] if ids else list(st.subnets.values())
        azid = {a["name"]: a["zone_id"] for a in st.azs}
        objs = apply_filters(objs, ec2_filters(p), {
            "vpc-id": lambda o: o["vpc"], "subnet-id": lambda o: o["id"],
            "availability-zone": lambda o: o["az"],
            "availability-zone-id": lambda o: azid.get(o["az"]),
            "cidr-block": lambda o: o["cidr"], "cidr": lambda o: o["cidr"],
            "cidrBlock": lambda o: o["cidr"], "state": lambda o: "available",
            "default-for-az": lambda o: "false"})
        objs, nxt = page(objs, p, "DescribeSubnets")
        out = []
        for s in objs:
            out.append({"subnetId": s["id"], "subnetArn": "arn:aws:ec2:%s:%s:subnet/%s" % (
                st.region, st.account, s["id"]), "state": "available", "vpcId": s["vpc"],
                "cidrBlock": s["cidr"], "ipv6CidrBlockAssociationSet": [],
                "availableIpAddressCount": s["free"], "availabilityZone": s["az"],
                "availabilityZoneId": azid.get(s["az"]), "defaultForAz": False,
                "mapPublicIpOnLaunch": s["map_public_ip"],
                "assignIpv6AddressOnCreation": False, "ownerId": st.account,
                "tagSet": tags_list(s["tags"])})
        return {"subnetSet": out, "nextToken": nxt}

    def DescribeRouteTables(self, p):
        st = self.st
        ids = plist(p, "RouteTableId")
        for x in ids:
            if x not in st.route_tables:
                raise AwsError("InvalidRouteTableID.NotFound",
                               "The routeTable ID '%s' does not exist" % x)
        objs = [st.route_tables[x] for x in ids] if ids else list(st.route_tables.values())
        objs = apply_filters(objs, ec2_filters(p), {
            "vpc-id": lambda o: o["vpc"], "route-table-id": lambda o: o["id"],
            "association.subnet-id": lambda o: [a["subnet"] for a in o["associations"]
                                                if a.get("subnet")],
            "association.main": lambda o: "true" if any(a["main"] for a in o["associations"])
            else "false",
            "association.route-table-association-id":
                lambda o: [a["id"] for a in o["associations"]],
            "route.destination-cidr-block": lambda o: [r["cidr"] for r in o["routes"]],
            "route.gateway-id": lambda o: [r["gateway"] for r in o["routes"] if r["gateway"]],
            "route.instance-id": lambda o: [r["instance"] for r in o["routes"]
                                            if r["instance"]]})
        objs, nxt = page(objs, p, "DescribeRouteTables", lo=5, hi=100)
        return {"routeTableSet": [self.render_rtb(t) for t in objs], "nextToken": nxt}

    def DescribeAvailabilityZones(self, p):
        st = self.st
        names = plist(p, "ZoneName")
        zids = plist(p, "ZoneId")
        objs = list(st.azs)
        for n in names:
            if not any(a["name"] == n for a in objs):
                raise AwsError("InvalidParameterValue",
                               "The zone '%s' does not exist." % n)
        for z in zids:
            if not any(a["zone_id"] == z for a in objs):
                raise AwsError("InvalidParameterValue",
                               "The zone ID '%s' does not exist." % z)
        if names or zids:
            objs = [a for a in objs if a["name"] in names or a["zone_id"] in zids]
        objs = [dict(a, tags={}) for a in objs]
        objs = apply_filters(objs, ec2_filters(p), {
            "zone-name": lambda o: o["name"], "zone-id": lambda o: o["zone_id"],
            "zone-type": lambda o: o["zone_type"], "state": lambda o: o["state"],
            "region-name": lambda o: st.region, "group-name": lambda o: st.region,
            "opt-in-status": lambda o: "opt-in-not-required"})
        return {"availabilityZoneInfo": [
            {"zoneName": a["name"], "zoneState": a["state"], "regionName": st.region,
             "messageSet": [], "zoneId": a["zone_id"], "zoneType": a["zone_type"],
             "groupName": st.region, "networkBorderGroup": st.region,
             "optInStatus": "opt-in-not-required"} for a in objs]}

    def DescribeSecurityGroups(self, p):
        st = self.st
        ids = plist(p, "GroupId")
        names = plist(p, "GroupName")
        if (ids or names) and p.get("MaxResults"):
            raise AwsError("InvalidParameterCombination", "The parameter groupIds cannot be "
                           "used with the parameter maxResults")
        for x in ids:
            if x not in st.security_groups:
                raise AwsError("InvalidGroup.NotFound",
                               "The security group '%s' does not exist" % x)
        objs = list(st.security_groups.values())
        if ids:
            objs = [st.security_groups[x] for x in dict.fromkeys(ids)]
        if names:
            dv = self.default_vpc()
            for n in names:
                if not any(g["name"] == n and g["vpc"] == dv for g in objs):
                    raise AwsError("InvalidGroup.NotFound", "The security group '%s' does not "
                                   "exist in default VPC '%s'" % (n, dv or "none"))
            objs = [g for g in objs if g["name"] in names and g["vpc"] == dv]
        objs = apply_filters(objs, ec2_filters(p), {
            "group-name": lambda o: o["name"], "group-id": lambda o: o["id"],
            "vpc-id": lambda o: o["vpc"], "description": lambda o: o["description"],
            "owner-id": lambda o: st.account,
            "ip-permission.group-id": lambda o: [r["src"] for r in o["ingress"]
                                                 if r["kind"] == "group"],
            "ip-permission.cidr": lambda o: [r["src"] for r in o["ingress"]
                                             if r["kind"] == "cidr"]})
        objs, nxt = page(objs, p, "DescribeSecurityGroups")
        return {"securityGroupInfo": [self.render_sg(g) for g in objs], "nextToken": nxt}

    def tag_specs(self, p, rtype):
        tags = {}
        for spec in indexed(p, "TagSpecification"):
            rt = spec.get("ResourceType")
            if rt and rt != rtype:
                raise AwsError("InvalidParameterValue", "'%s' is not a valid taggable "
                               "resource type for this operation." % rt)
            for t in indexed(spec, "Tag"):
                if not t.get("Key"):
                    raise AwsError("InvalidParameterValue", "Tag key must not be empty")
                tags[t["Key"]] = t.get("Value", "")
        return tags

    def CreateSecurityGroup(self, p):
        st = self.st
        name = req(p, "GroupName")
        desc = req(p, "GroupDescription")
        vpc = p.get("VpcId") or self.default_vpc()
        if vpc is None:
            raise AwsError("VPCIdNotSpecified", "No default VPC for this user")
        if vpc not in st.vpcs:
            raise AwsError("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist" % vpc)
        if name.lower().startswith("sg-"):
            raise AwsError("InvalidParameterValue", "Group names may not be in the format "
                           "sg-*.")
        if len(name) > 255 or len(desc) > 255:
            raise AwsError("InvalidParameterValue", "Value for parameter GroupName or "
                           "GroupDescription is too long (max 255)")
        tags = self.tag_specs(p, "security-group")
        for g in st.security_groups.values():
            if g["name"] == name and g["vpc"] == vpc:
                raise AwsError("InvalidGroup.Duplicate", "The security group '%s' already "
                               "exists for VPC '%s'" % (name, vpc))
        gid = "sg-" + rand_hex(17)
        st.security_groups[gid] = {"id": gid, "name": name, "description": desc, "vpc": vpc,
                                   "tags": tags, "ingress": [], "egress": [
                                       {"proto": "-1", "from": None, "to": None,
                                        "kind": "cidr", "src": "0.0.0.0/0", "desc": None,
                                        "id": "sgr-" + rand_hex(17)}]}
        out = {"return": True, "groupId": gid}
        if tags:
            out["tagSet"] = tags_list(tags)
        return out

    def sg_users(self, gid):
        st = self.st
        users = []
        for e in st.elbs.values():
            if gid in e["security_groups"]:
                users.append("elb " + e["name"])
        for lb in st.lbs.values():
            if gid in lb["security_groups"]:
                users.append("loadbalancer " + lb["name"])
        for g in st.security_groups.values():
            if g["id"] != gid and any(r["kind"] == "group" and r["src"] == gid
                                      for r in g["ingress"] + g["egress"]):
                users.append("sg " + g["id"])
        for i in st.instances.values():
            if i["state"] != "terminated" and gid in i["security_groups"]:
                users.append("instance " + i["id"])
        return users

    def DeleteSecurityGroup(self, p):
        g = self.need_sg(p)
        if g["name"] == "default":
            raise AwsError("CannotDelete", 'the specified group: "%s" name: "default" cannot '
                           "be deleted by a user" % g["id"])
        if self.sg_users(g["id"]):
            raise AwsError("DependencyViolation",
                           "resource %s has a dependent object" % g["id"])
        del self.st.security_groups[g["id"]]
        return {"return": True, "groupId": g["id"]}

    def parse_perms(self, p):
        rules = []
        perms = indexed(p, "IpPermissions")
        if not perms and p.get("IpProtocol"):
            perms = [{"IpProtocol": p.get("IpProtocol"), "FromPort": p.get("FromPort"),
                      "ToPort": p.get("ToPort"), "IpRanges.1.CidrIp": p.get("CidrIp")}]
            if p.get("CidrIp") is None:
                del perms[0]["IpRanges.1.CidrIp"]
        if not perms:
            raise AwsError("MissingParameter", "The request must contain the parameter "
                           "ipPermissions")
        for perm in perms:
            proto = norm_protocol(perm.get("IpProtocol") or "")
            if proto not in ("tcp", "udp", "icmp", "icmpv6", "-1") and not proto.isdigit():
                raise AwsError("InvalidParameterValue", "Invalid value '%s' for IP protocol. "
                               "Unknown protocol." % perm.get("IpProtocol"))
            fp = tp = None
            if proto != "-1":
                if perm.get("FromPort") is None or perm.get("ToPort") is None:
                    if proto in ("tcp", "udp"):
                        raise AwsError("InvalidParameterValue", "Invalid value 'null' for "
                                       "port range: must specify FromPort and ToPort")
                else:
                    fp = as_int(perm["FromPort"], "FromPort")
                    tp = as_int(perm["ToPort"], "ToPort")
                    if proto in ("tcp", "udp") and not (0 <= fp <= tp <= 65535):
                        raise AwsError("InvalidParameterValue", "Invalid port range %d-%d"
                                       % (fp, tp))
            n_src = 0
            for r in indexed(perm, "IpRanges"):
                cidr = r.get("CidrIp", "")
                try:
                    ipaddress.IPv4Network(cidr, strict=False)
                except ValueError:
                    raise AwsError("InvalidParameterValue",
                                   "CIDR block %s is malformed" % cidr)
                rules.append({"proto": proto, "from": fp, "to": tp, "kind": "cidr",
                              "src": cidr, "desc": r.get("Description")})
                n_src += 1
            for r in indexed(perm, "Ipv6Ranges"):
                cidr = r.get("CidrIpv6", "")
                try:
                    ipaddress.IPv6Network(cidr, strict=False)
                except ValueError:
                    raise AwsError("InvalidParameterValue",
                                   "CIDR block %s is malformed" % cidr)
                rules.append({"proto": proto, "from": fp, "to": tp, "kind": "cidr6",
                              "src": cidr, "desc": r.get("Description")})
                n_src += 1
            for r in indexed(perm, "Groups"):
                src = r.get("GroupId")
                if not src and r.get("GroupName"):
                    src = self.need_sg({"GroupName": r["GroupName"]})["id"]
                if not src or src not in self.st.security_groups:
                    raise AwsError("InvalidGroup.NotFound",
                                   "The security group '%s' does not exist" % src)
                rules.append({"proto": proto, "from": fp, "to": tp, "kind": "group",
                              "src": src, "desc": r.get("Description")})
                n_src += 1
            if n_src == 0:
                raise AwsError("MissingParameter", "The request must contain the parameter "
                               "ipPermissions.ipRanges, ipv6Ranges or groups")
        return rules

    @staticmethod
    def rule_key(r):
        return (r["proto"], r["from"], r["to"], r["kind"], r["src"])

    @staticmethod
    def rule_text(r):
        port = "" if r["from"] is None else ", from port: %s, to port: %s" % (r["from"],
                                                                              r["to"])
        proto = "ALL" if r["proto"] == "-1" else r["proto"].upper()
        return 'peer: %s, %s%s, ALLOW' % (r["src"], proto, port)

    def authorize(self, p, direction):
        g = self.need_sg(p)
        rules = self.parse_perms(p)
        have = {self.rule_key(r) for r in g[direction]}
        seen = set()
        for r in rules:
            k = self.rule_key(r)
            if k in have or k in seen:
                raise AwsError("InvalidPermission.Duplicate", 'the specified rule "%s" already '
                               "exists" % self.rule_text(r))
            seen.add(k)
        out = []
        for r in rules:
            r["id"] = "sgr-" + rand_hex(17)
            g[direction].append(r)
            item = {"securityGroupRuleId": r["id"], "groupId": g["id"],
                    "groupOwnerId": self.st.account, "isEgress": direction == "egress",
                    "ipProtocol": r["proto"], "fromPort": -1 if r["from"] is None else
                    r["from"], "toPort": -1 if r["to"] is None else r["to"]}
            if r["kind"] == "cidr":
                item["cidrIpv4"] = r["src"]
            elif r["kind"] == "cidr6":
                item["cidrIpv6"] = r["src"]
            else:
                item["referencedGroupInfo"] = {"groupId": r["src"],
                                               "userId": self.st.account}
            if r["desc"]:
                item["description"] = r["desc"]
            out.append(item)
        return {"return": True, "securityGroupRuleSet": out}

    def revoke(self, p, direction):
        g = self.need_sg(p)
        rules = self.parse_perms(p)
        have = {self.rule_key(r) for r in g[direction]}
        for r in rules:
            if self.rule_key(r) not in have:
                raise AwsError("InvalidPermission.NotFound", "The specified rule does not "
                               "exist in this security group.")
        drop = {self.rule_key(r) for r in rules}
        g[direction] = [r for r in g[direction] if self.rule_key(r) not in drop]
        return {"return": True}

    def AuthorizeSecurityGroupIngress(self, p):
        return self.authorize(p, "ingress")

    def RevokeSecurityGroupIngress(self, p):
        return self.revoke(p, "ingress")

    def AuthorizeSecurityGroupEgress(self, p):
        return self.authorize(p, "egress")

    def RevokeSecurityGroupEgress(self, p):
        return self.revoke(p, "egress")

    def CreateTags(self, p):
        ids = plist(p, "ResourceId")
        if not ids:
            raise AwsError("MissingParameter", "The request must contain the parameter "
                           "resourceIdSet")
        tags = indexed(p, "Tag")
        if not tags:
            raise AwsError("MissingParameter", "The request must contain the parameter tagSet")
        objs = [self.resource(r) for r in ids]
        for t in tags:
            k = t.get("Key", "")
            if not k or k.lower().startswith("aws:"):
                raise AwsError("InvalidParameterValue", "Tag key '%s' is not valid" % k)
        for o in objs:
            for t in tags:
                o["tags"][t["Key"]] = t.get("Value", "")
            if len(o["tags"]) > 50:
                raise AwsError("TagLimitExceeded", "The maximum number of Tags for a resource "
                               "has been reached.")
        return {"return": True}

    def DeleteTags(self, p):
        ids = plist(p, "ResourceId")
        if not ids:
            raise AwsError("MissingParameter", "The request must contain the parameter "
                           "resourceIdSet")
        objs = [self.resource(r) for r in ids]
        tags = indexed(p, "Tag")
        for o in objs:
            if not tags:
                o["tags"].clear()
            for t in tags:
                k = t.get("Key")
                if k in o["tags"] and ("Value" not in t or o["tags"][k] == t["Value"]):
                    del o["tags"][k]
        return {"return": True}

    def need_rtb(self, p):
        rid = req(p, "RouteTableId")
        t = self.st.route_tables.get(rid)
        if t is None:
            raise AwsError("InvalidRouteTableID.NotFound",
                           "The routeTable ID '%s' does not exist" % rid)
        return t

    def route_target(self, p, t):
        tgt = {"gateway": None, "instance": None, "eni": None, "nat": None}
        if p.get("InstanceId"):
            i = self.need_instance(p["InstanceId"])
            if i["state"] == "terminated":
                raise AwsError("IncorrectInstanceState", "The instance '%s' is not in a "
                               "valid state for this operation." % i["id"])
            if i["vpc"] != t["vpc"]:
                raise AwsError("InvalidParameterValue", "route table %s and instance %s "
                               "belong to different networks" % (t["id"], i["id"]))
            tgt["instance"] = i["id"]
            primary = sorted(i["enis"], key=lambda e: e["device_index"])
            tgt["eni"] = primary[0]["id"] if primary else None
        elif p.get("GatewayId"):
            tgt["gateway"] = p["GatewayId"]
        elif p.get("NatGatewayId"):
            tgt["nat"] = p["NatGatewayId"]
        elif p.get("NetworkInterfaceId"):
            tgt["eni"] = p["NetworkInterfaceId"]
            for i in self.st.instances.values():
                if any(e["id"] == tgt["eni"] for e in i["enis"]):
                    tgt["instance"] = i["id"]
        else:
            raise AwsError("MissingParameter", "The request must contain the parameter "
                           "gatewayId, instanceId, natGatewayId or networkInterfaceId")
        return tgt

    @staticmethod
    def norm_cidr(c):
        try:
            return str(ipaddress.ip_network(c, strict=True))
        except ValueError:
            raise AwsError("InvalidParameterValue", "Value (%s) for parameter "
                           "destinationCidrBlock is invalid. This is not a valid CIDR block."
                           % c)

    def CreateRoute(self, p):
        t = self.need_rtb(p)
        cidr = self.norm_cidr(req(p, "DestinationCidrBlock"))
        tgt = self.route_target(p, t)
        for r in t["routes"]:
            if r["cidr"] == cidr:
                same = all(r.get(k) == v for k, v in tgt.items() if v)
                if same and r["origin"] != "CreateRouteTable":
                    return {"return": True}
                raise AwsError("RouteAlreadyExists", "The route identified by %s already "
                               "exists." % cidr)
        t["routes"].append(dict(tgt, cidr=cidr, origin="CreateRoute"))
        return {"return": True}

    def find_route(self, t, cidr):
        for r in t["routes"]:
            if r["cidr"] == cidr:
                return r
        return None

    def DeleteRoute(self, p):
        t = self.need_rtb(p)
        cidr = req(p, "DestinationCidrBlock")
        r = self.find_route(t, cidr)
        if r is None:
            raise AwsError("InvalidRoute.NotFound", "no route with destination-cidr-block %s "
                           "in route table %s" % (cidr, t["id"]))
        if r.get("gateway") == "local":
            raise AwsError("InvalidParameterValue", "cannot remove local route %s in route "
                           "table %s" % (cidr, t["id"]))
        t["routes"].remove(r)
        return {"return": True}

    def ReplaceRoute(self, p):
        t = self.need_rtb(p)
        cidr = req(p, "DestinationCidrBlock")
        r = self.find_route(t, cidr)
        if r is None:
            raise AwsError("InvalidParameterValue", "There is no route defined for '%s' in "
                           "the route table. Use CreateRoute instead." % cidr)
        tgt = self.route_target(p, t)
        r.update(tgt)
        r["origin"] = "CreateRoute"
        return {"return": True}

    def ModifyInstanceAttribute(self, p):
        i = self.need_instance(req(p, "InstanceId"))
        if i["state"] == "terminated":
            raise AwsError("IncorrectInstanceState", "The instance '%s' is not in a valid "
                           "state for this operation." % i["id"])
        if "SourceDestCheck.Value" in p:
            i["source_dest_check"] = as_bool(p["SourceDestCheck.Value"])
        elif p.get("Attribute") == "sourceDestCheck" and "Value" in p:
            i["source_dest_check"] = as_bool(p["Value"])
        elif plist(p, "GroupId"):
            gids = plist(p, "GroupId")
            for g in gids:
                self.need_sg({"GroupId": g})
            i["security_groups"] = gids
        elif "InstanceType.Value" in p:
            if i["state"] != "stopped":
                raise AwsError("IncorrectInstanceState", "The instance '%s' is not in the "
                               "'stopped' state." % i["id"])
            i["type"] = p["InstanceType.Value"]
        else:
            raise AwsError("MissingParameter", "The request must contain the parameter "
                           "attribute or a value")
        return {"return": True}

    OPS = ("DescribeInstances", "DescribeVpcs", "DescribeSubnets", "DescribeRouteTables",
           "DescribeAvailabilityZones", "DescribeSecurityGroups", "CreateSecurityGroup",
           "DeleteSecurityGroup", "AuthorizeSecurityGroupIngress",
           "RevokeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
           "RevokeSecurityGroupEgress", "CreateTags", "DeleteTags", "CreateRoute",
           "DeleteRoute", "ReplaceRoute", "ModifyInstanceAttribute")


# --------------------------------------------------------------------------
# Classic ELB (2012-06-01, protocol "query": X.member.N, UpperCamel, <member> lists)

LB_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")
HC_TARGET_RE = re.compile(r"^(TCP|SSL):(\d+)$|^(HTTP|HTTPS):(\d+)(/.*)$")


class Elb:
    def __init__(self, st):
        self.st = st

    def need(self, name):
        e = self.st.elbs.get(name)
        if e is None:
            raise AwsError("LoadBalancerNotFound",
                           "There is no ACTIVE Load Balancer named '%s'" % name)
        return e

    def check_sgs(self, sgs):
        for g in sgs:
            if g not in self.st.security_groups:
                raise AwsError("InvalidSecurityGroup", "One or more of the specified security "
                               "groups do not exist.")

    def check_subnets(self, subnets, current=()):
        azs = {}
        for s in list(current) + list(subnets):
            sub = self.st.subnets.get(s)
            if sub is None:
                raise AwsError("SubnetNotFound", "One or more subnets were not found: %s" % s)
            if sub["az"] in azs and azs[sub["az"]] != s:
                raise AwsError("InvalidConfigurationRequest", "LoadBalancer attached to "
                               "multiple subnets in AZ %s." % sub["az"], 409)
            azs[sub["az"]] = s

    @staticmethod
    def parse_listeners(p):
        out = []
        for m in qstructs(p, "Listeners"):
            proto = (m.get("Protocol") or "").upper()
            if proto not in ("HTTP", "HTTPS", "TCP", "SSL"):
                raise AwsError("ValidationError", "Invalid LoadBalancer protocol '%s'"
                               % m.get("Protocol"))
            lp = as_int(m.get("LoadBalancerPort"), "LoadBalancerPort", "ValidationError")
            ip = as_int(m.get("InstancePort"), "InstancePort", "ValidationError")
            if not (1 <= lp <= 65535 and 1 <= ip <= 65535):
                raise AwsError("ValidationError", "Port out of range")
            iproto = (m.get("InstanceProtocol") or "").upper() or \
                {"HTTPS": "HTTP", "SSL": "TCP"}.get(proto, proto)
            cert = m.get("SSLCertificateId")
            if proto in ("HTTPS", "SSL") and not cert:
                raise AwsError("ValidationError", "SSLCertificateId is required for HTTPS "
                               "and SSL listeners")
            out.append({"Protocol": proto, "LoadBalancerPort": lp, "InstanceProtocol": iproto,
                        "InstancePort": ip, "SSLCertificateId": cert, "PolicyNames": []})
        return out

    def render(self, e):
        st = self.st
        pol = [n for n in e["policies"]]
        return {"LoadBalancerName": e["name"], "DNSName": e["dns"],
                "CanonicalHostedZoneName": e["dns"] if e["scheme"] != "internal" else None,
                "CanonicalHostedZoneNameID": ELB_ZONE_IDS.get(st.region, "Z35SXDOTRQ7X7K"),
                "ListenerDescriptions": [
                    {"Listener": {k: l[k] for k in ("Protocol", "LoadBalancerPort",
                                                    "InstanceProtocol", "InstancePort",
                                                    "SSLCertificateId")},
                     "PolicyNames": l["PolicyNames"]} for l in e["listeners"]],
                "Policies": {"AppCookieStickinessPolicies": [],
                             "LBCookieStickinessPolicies": [], "OtherPolicies": pol},
                "BackendServerDescriptions": [
                    {"InstancePort": port, "PolicyNames": names}
                    for port, names in sorted(e["backend_policies"].items()) if names],
                "AvailabilityZones": sorted({st.subnets[s]["az"] for s in e["subnets"]
                                             if s in st.subnets}),
                "Subnets": e["subnets"], "VPCId": e["vpc"],
                "Instances": [{"InstanceId": i} for i in e["instances"]],
                "HealthCheck": e["health_check"],
                "SourceSecurityGroup": {"OwnerAlias": st.account, "GroupName":
                                        st.security_groups[e["security_groups"][0]]["name"]
                                        if e["security_groups"] and e["security_groups"][0]
                                        in st.security_groups else "default"},
                "SecurityGroups": e["security_groups"], "CreatedTime": e["created"],
                "Scheme": e["scheme"]}

    def CreateLoadBalancer(self, p):
        st = self.st
        name = qreq(p, "LoadBalancerName")
        if not LB_NAME_RE.match(name):
            raise AwsError("ValidationError", "LoadBalancerName '%s' must have at most 32 "
                           "characters: letters, digits and hyphens, not starting or ending "
                           "with a hyphen" % name)
        listeners = self.parse_listeners(p)
        if not listeners:
            raise AwsError("ValidationError", "Listeners must not be empty")
        subnets = qlist(p, "Subnets")
        azs = qlist(p, "AvailabilityZones")
        if not subnets and not azs:
            raise AwsError("ValidationError", "Either AvailabilityZones or SubnetIds must be "
                           "specified")
        scheme = p.get("Scheme") or "internet-facing"
        if scheme not in ("internet-facing", "internal"):
            raise AwsError("ValidationError", "Invalid Scheme '%s'" % scheme)
        sgs = qlist(p, "SecurityGroups")
        tags = qtags(p)
        existing = st.elbs.get(name)
        if existing:
            same = existing["scheme"] == scheme and sorted(
                (l["LoadBalancerPort"], l["Protocol"], l["InstancePort"])
                for l in existing["listeners"]) == sorted(
                (l["LoadBalancerPort"], l["Protocol"], l["InstancePort"]) for l in listeners)
            if not same:
                raise AwsError("DuplicateLoadBalancerName", "Load Balancer named '%s' already "
                               "exists and it is configured with different parameters." % name)
            return {"DNSName": existing["dns"]}
        self.check_subnets(subnets)
        self.check_sgs(sgs)
        ports = [l["LoadBalancerPort"] for l in listeners]
        if len(set(ports)) != len(ports):
            raise AwsError("DuplicateListener", "A listener already exists for %s with "
                           "LoadBalancerPort %d" % (name, ports[0]))
        vpc = st.subnets[subnets[0]]["vpc"] if subnets else None
        if vpc and not sgs:
            sgs = [g["id"] for g in st.security_groups.values()
                   if g["vpc"] == vpc and g["name"] == "default"][:1]
        dns = "%s%s-%d.%s.elb.amazonaws.com" % ("internal-" if scheme == "internal" else "",
                                                 name, secrets.randbelow(9 * 10 ** 9) +
                                                 10 ** 9, st.region)
        first = listeners[0]
        st.elbs[name] = {
            "name": name, "dns": dns, "scheme": scheme, "listeners": listeners,
            "subnets": subnets, "vpc": vpc, "security_groups": sgs, "instances": [],
            "tags": tags, "created": iso_ms(now_ts()),
            "health_check": {"Target": "TCP:%d" % first["InstancePort"], "Interval": 30,
                             "Timeout": 5, "UnhealthyThreshold": 2, "HealthyThreshold": 10},
            "attributes": {"CrossZoneLoadBalancing": {"Enabled": False},
                           "AccessLog": {"Enabled": False},
                           "ConnectionDraining": {"Enabled": False, "Timeout": 300},
                           "ConnectionSettings": {"IdleTimeout": 60},
                           "AdditionalAttributes": []},
            "policies": {}, "backend_policies": {}}
        return {"DNSName": dns}

    def DescribeLoadBalancers(self, p):
        names = qlist(p, "LoadBalancerNames")
        for n in names:
            self.need(n)
        objs = [self.st.elbs[n] for n in dict.fromkeys(names)] if names else \
            list(self.st.elbs.values())
        objs, nxt = marker_page(objs, p, 400)
        return {"LoadBalancerDescriptions": [self.render(e) for e in objs], "NextMarker": nxt}

    def DeleteLoadBalancer(self, p):
        self.st.elbs.pop(qreq(p, "LoadBalancerName"), None)
        return {}

    def CreateLoadBalancerListeners(self, p):
        e = self.need(qreq(p, "LoadBalancerName"))
        new = self.parse_listeners(p)
        have = {l["LoadBalancerPort"]: l for l in e["listeners"]}
        for l in new:
            old = have.get(l["LoadBalancerPort"])
            if old and any(old[k] != l[k] for k in ("Protocol", "InstancePort",
                                                     "InstanceProtocol", "SSLCertificateId")):
                raise AwsError("DuplicateListener", "A listener already exists for %s with "
                               "LoadBalancerPort %d, but with a different InstancePort, "
                               "Protocol, or SSLCertificateId" % (e["name"],
                                                                  l["LoadBalancerPort"]))
        for l in new:
            if l["LoadBalancerPort"] not in have:
                e["listeners"].append(l)
        return {}

    def DeleteLoadBalancerListeners(self, p):
        e = self.need(qreq(p, "LoadBalancerName"))
        ports = {as_int(x, "LoadBalancerPorts", "ValidationError")
                 for x in qlist(p, "LoadBalancerPorts")}
        e["listeners"] = [l for l in e["listeners"] if l["LoadBalancerPort"] not in ports]
        return {}

    def instance_ids(self, p):
        ids = [m.get("InstanceId") for m in qstructs(p, "Instances")]
        for i in ids:
            inst = self.st.instances.get(i or "")
            if inst is None or inst["state"] == "terminated":
                raise AwsError("InvalidInstance", "The requested instance(s) is not valid: "
                               "[%s]" % i)
        return ids

    def RegisterInstancesWithLoadBalancer(self, p):
        e = self.need(qreq(p, "LoadBalancerName"))
        for i in self.instance_ids(p):
            if self.st.instances[i]["vpc"] != e["vpc"] and e["vpc"]:
                raise AwsError("InvalidInstance", "EC2 instance %s is not in the same VPC as "
                               "the ELB." % i)
            if i not in e["instances"]:
                e["instances"].append(i)
        return {"Instances": [{"InstanceId": i} for i in e["instances"]]}

    def DeregisterInstancesFromLoadBalancer(self, p):
        e = self.need(qreq(p, "LoadBalancerName"))
        ids = [m.get("InstanceId") for m in qstructs(p, "Instances")]
        for i in ids:
            if i not in e["instances"] and i not in self.st.instances:
                raise AwsError("InvalidInstance", "The requested instance(s) is not valid: "
                               "[%s]" % i)
        e["instances"] = [i for i in e["instances"] if i not in ids]
        return {"Instances": [{"InstanceId": i} for i in e["instances"]]}

    def ConfigureHealthCheck(self, p):
        e = self.need(qreq(p, "LoadBalancerName"))
        hc = {}
        for k in ("Target", "Interval", "Timeout", "UnhealthyThreshold", "HealthyThreshold"):
            hc[k] = qreq(p, "HealthCheck." + k)
        if not HC_TARGET_RE.match(hc["Target"]):
            raise AwsError("ValidationError", "Invalid Target '%s'. Must be of the form "
                           "PROTOCOL:PORT[/PATH]" % hc["Target"])
        for k in ("Interval", "Timeout", "UnhealthyThreshold", "HealthyThreshold"):
            hc[k] = as_int(hc[k], k, "ValidationError")
        if hc["Timeout"] >= hc["Interval"]:
            raise AwsError("ValidationError", "Interval must be greater than the timeout.")
        e["health_check"] = hc
        return {"HealthCheck": hc}

    def DescribeLoadBalancerAttributes(self, p):
        e = self.need(qreq(p, "LoadBalancerName"))
        return {"LoadBalancerAttributes": e["attributes"]}

    def ModifyLoadBalancerAttributes(self, p):
        e = self.need(qreq(p, "LoadBalancerName"))
        a = copy.deepcopy(e["attributes"])
        pre = "LoadBalancerAttributes."
        typed = {"CrossZoneLoadBalancing.Enabled": as_bool, "AccessLog.Enabled": as_bool,
                 "AccessLog.S3BucketName": str, "AccessLog.S3BucketPrefix": str,
                 "AccessLog.EmitInterval": int, "ConnectionDraining.Enabled": as_bool,
                 "ConnectionDraining.Timeout": int, "ConnectionSettings.IdleTimeout": int}
        for key, conv in typed.items():
            if pre + key in p:
                grp, field = key.split(".")
                try:
                    a[grp][field] = conv(p[pre + key])
                except ValueError:
                    raise AwsError("ValidationError", "Invalid value for %s" % key)
        idle = a["ConnectionSettings"]["IdleTimeout"]
        if not 1 <= idle <= 4000:
            raise AwsError("ValidationError", "IdleTimeout must be between 1 and 4000")
        if a["AccessLog"].get("EmitInterval") not in (None, 5, 60):
            raise AwsError("ValidationError", "EmitInterval must be 5 or 60")
        if a["AccessLog"]["Enabled"] and not a["AccessLog"].get("S3BucketName"):
            raise AwsError("InvalidConfigurationRequest", "S3BucketName is required when "
                           "access logs are enabled", 409)
        extra = {x["Key"]: x["Value"] for x in a["AdditionalAttributes"]}
        for m in qstructs(p, pre + "AdditionalAttributes"):
            extra[m.get("Key", "")] = m.get("Value", "")
        a["AdditionalAttributes"] = [{"Key": k, "Value": v} for k, v in extra.items()]
        for grp in ("AccessLog",):
            a[grp] = {k: a[grp][k] for k in ("Enabled", "S3BucketName", "EmitInterval",
                                              "S3BucketPrefix") if k in a[grp]}
        e["attributes"] = a
        return {"LoadBalancerName": e["name"], "LoadBalancerAttributes": a}

    def ApplySecurityGroupsToLoadBalancer(self, p):
        e = self.need(qreq(p, "LoadBalancerName"))
        sgs = qlist(p, "SecurityGroups")
        if not sgs:
            raise AwsError("ValidationError", "SecurityGroups must not be empty")
        self.check_sgs(sgs)
        for g in sgs:
            if self.st.security_groups[g]["vpc"] != e["vpc"]:
                raise AwsError("InvalidSecurityGroup", "Security group %s is not in the "
                               "load balancer's VPC" % g)
        e["security_groups"] = sgs
        return {"SecurityGroups": sgs}

    def AttachLoadBalancerToSubnets(self, p):
        e = self.need(qreq(p, "LoadBalancerName"))
        subs = qlist(p, "Subnets")
        self.check_subnets([s for s in subs if s not in e["subnets"]], e["subnets"])
        for s in subs:
            if self.st.subnets[s]["vpc"] != e["vpc"]:
                raise AwsError("InvalidSubnet", "Subnet %s is not in the load balancer's VPC"
                               % s)
            if s not in e["subnets"]:
                e["subnets"].append(s)
        return {"Subnets": e["subnets"]}

    def DetachLoadBalancerFromSubnets(self, p):
        e = self.need(qreq(p, "LoadBalancerName"))
        subs = set(qlist(p, "Subnets"))
        left = [s for s in e["subnets"] if s not in subs]
        if not left:
            raise AwsError("InvalidConfigurationRequest", "Requested configuration change is "
                           "invalid: a load balancer needs at least one subnet.", 409)
        e["subnets"] = left
        return {"Subnets": left}

    def AddTags(self, p):
        names = qlist(p, "LoadBalancerNames")
        tags = qtags(p)
        if not names or not tags:
            raise AwsError("ValidationError", "LoadBalancerNames and Tags are required")
        return lb_tags_add([self.need(n) for n in names], tags,
                           "The quota for the number of tags that can be assigned to a "
                           "load balancer has been reached.")

    def RemoveTags(self, p):
        objs = [self.need(n) for n in qlist(p, "LoadBalancerNames")]
        return lb_tags_remove(objs, [m.get("Key") for m in qstructs(p, "Tags")])

    def DescribeTags(self, p):
        names = qlist(p, "LoadBalancerNames")
        if not names:
            raise AwsError("ValidationError", "LoadBalancerNames is required")
        objs = [self.need(n) for n in names]
        return lb_tags_describe([(e["name"], e) for e in objs], "LoadBalancerName")

    def CreateLoadBalancerPolicy(self, p):
        e = self.need(qreq(p, "LoadBalancerName"))
        name = qreq(p, "PolicyName")
        ptype = qreq(p, "PolicyTypeName")
        if ptype not in ELB_POLICY_TYPES:
            raise AwsError("PolicyTypeNotFound", "One or more of the specified policy types "
                           "do not exist.")
        if name in e["policies"]:
            raise AwsError("DuplicatePolicyName", "Policy with the same name exists for this "
                           "LoadBalancer. Please choose another name.")
        attrs = [{"AttributeName": m.get("AttributeName", ""),
                  "AttributeValue": m.get("AttributeValue", "")}
                 for m in qstructs(p, "PolicyAttributes")]
        if ptype == "SSLNegotiationPolicyType":
            ref = [a for a in attrs if a["AttributeName"] == "Reference-Security-Policy"]
            if ref and ref[0]["AttributeValue"] not in PREDEFINED_SSL_POLICIES:
                raise AwsError("InvalidConfigurationRequest", "Reference-Security-Policy '%s' "
                               "is not a predefined policy" % ref[0]["AttributeValue"], 409)
        e["policies"][name] = {"PolicyName": name, "PolicyTypeName": ptype,
                               "PolicyAttributeDescriptions": attrs}
        return {}

    def DescribeLoadBalancerPolicies(self, p):
        names = qlist(p, "PolicyNames")
        lbn = p.get("LoadBalancerName")
        if lbn:
            pool = self.need(lbn)["policies"]
        else:
            pool = {n: {"PolicyName": n, "PolicyTypeName": "SSLNegotiationPolicyType",
                        "PolicyAttributeDescriptions": [
                            {"AttributeName": "Protocol-TLSv1.2", "AttributeValue": "true"}]}
                    for n in PREDEFINED_SSL_POLICIES}
        for n in names:
            if n not in pool:
                raise AwsError("PolicyNotFound", "There is no policy with name %s for load "
                               "balancer %s" % (n, lbn or "(predefined)"))
        objs = [pool[n] for n in names] if names else list(pool.values())
        return {"PolicyDescriptions": objs}

    def SetLoadBalancerPoliciesForBackendServer(self, p):
        e = self.need(qreq(p, "LoadBalancerName"))
        port = as_int(qreq(p, "InstancePort"), "InstancePort", "ValidationError")
        names = qlist(p, "PolicyNames")
        for n in names:
            if n not in e["policies"]:
                raise AwsError("PolicyNotFound", "There is no policy with name %s for load "
                               "balancer %s" % (n, e["name"]))
        e["backend_policies"][port] = names
        return {}

    def SetLoadBalancerPoliciesOfListener(self, p):
        e = self.need(qreq(p, "LoadBalancerName"))
        port = as_int(qreq(p, "LoadBalancerPort"), "LoadBalancerPort", "ValidationError")
        names = qlist(p, "PolicyNames")
        lis = [l for l in e["listeners"] if l["LoadBalancerPort"] == port]
        if not lis:
            raise AwsError("ListenerNotFound", "There is no listener with port %d for load "
                           "balancer %s" % (port, e["name"]))
        for n in names:
            if n not in e["policies"]:
                raise AwsError("PolicyNotFound", "There is no policy with name %s for load "
                               "balancer %s" % (n, e["name"]))
        lis[0]["PolicyNames"] = names
        return {}

    OPS = ("CreateLoadBalancer", "DescribeLoadBalancers", "DeleteLoadBalancer",
           "CreateLoadBalancerListeners", "DeleteLoadBalancerListeners",
           "RegisterInstancesWithLoadBalancer", "DeregisterInstancesFromLoadBalancer",
           "ConfigureHealthCheck", "DescribeLoadBalancerAttributes",
           "ModifyLoadBalancerAttributes", "ApplySecurityGroupsToLoadBalancer",
           "AttachLoadBalancerToSubnets", "DetachLoadBalancerFromSubnets", "AddTags",
           "RemoveTags", "DescribeTags", "CreateLoadBalancerPolicy",
           "DescribeLoadBalancerPolicies", "SetLoadBalancerPoliciesForBackendServer",
           "SetLoadBalancerPoliciesOfListener")


def marker_page(items, p, hi):
    size = p.get("PageSize")
    marker = p.get("Marker")
    start = 0
    if marker:
        try:
            start = int(base64.urlsafe_b64decode(marker.encode()).decode().split(":")[1])
        except (ValueError, IndexError):
            raise AwsError("ValidationError", "Invalid Marker '%s'" % marker)
    n = hi
    if size is not None:
        n = as_int(size, "PageSize", "ValidationError")
        if not 1 <= n <= hi:
            raise AwsError("ValidationError", "PageSize must be between 1 and %d" % hi)
    chunk = items[start:start + n]
    nxt = None
    if start + n < len(items):
        nxt = base64.urlsafe_b64encode(("m:%d:%s" % (start + n, rand_hex(6))).encode()).decode()
    return chunk, nxt


# --------------------------------------------------------------------------
# ELBv2 (2015-12-01)

NLB_LB_ATTRS = {"deletion_protection.enabled": "false",
                "load_balancing.cross_zone.enabled": "false",
                "access_logs.s3.enabled": "false", "access_logs.s3.bucket": "",
                "access_logs.s3.prefix": "", "ipv6.deny_all_igw_traffic": "false",
                "dns_record.client_routing_policy": "any_availability_zone"}
ALB_LB_ATTRS = {"deletion_protection.enabled": "false", "idle_timeout.timeout_seconds": "60",
                "access_logs.s3.enabled": "false", "access_logs.s3.bucket": "",
                "access_logs.s3.prefix": "", "routing.http2.enabled": "true",
                "routing.http.drop_invalid_header_fields.enabled": "false",
                "load_balancing.cross_zone.enabled": "true"}
TCP_TG_ATTRS = {"deregistration_delay.timeout_seconds": "300",
                "deregistration_delay.connection_termination.enabled": "false",
                "proxy_protocol_v2.enabled": "false", "preserve_client_ip.enabled": "true",
                "stickiness.enabled": "false", "stickiness.type": "source_ip",
                "load_balancing.cross_zone.enabled": "use_load_balancer_configuration",
                "target_health_state.unhealthy.connection_termination.enabled": "true"}
HTTP_TG_ATTRS = {"deregistration_delay.timeout_seconds": "300", "stickiness.enabled": "false",
                 "stickiness.type": "lb_cookie", "load_balancing.algorithm.type": "round_robin",
                 "slow_start.duration_seconds": "0",
                 "load_balancing.cross_zone.enabled": "use_load_balancer_configuration"}
NLB_PROTOCOLS = ("TCP", "UDP", "TLS", "TCP_UDP")
HC_FIELDS = (("HealthCheckProtocol", str), ("HealthCheckPort", str), ("HealthCheckPath", str),
             ("HealthCheckEnabled", as_bool), ("HealthCheckIntervalSeconds", int),
             ("HealthCheckTimeoutSeconds", int), ("HealthyThresholdCount", int),
             ("UnhealthyThresholdCount", int))


class Elbv2:
    def __init__(self, st):
        self.st = st

    def arn(self, kind, rest):
        return "arn:aws:elasticloadbalancing:%s:%s:%s/%s" % (self.st.region, self.st.account,
                                                             kind, rest)

    def need_lb(self, arn):
        lb = self.st.lbs.get(arn)
        if lb is None:
            raise AwsError("LoadBalancerNotFound", "One or more load balancers not found")
        return lb

    def need_tg(self, arn):
        tg = self.st.tgs.get(arn)
        if tg is None:
            raise AwsError("TargetGroupNotFound", "One or more target groups not found")
        return tg

    def need_listener(self, arn):
        li = self.st.listeners.get(arn)
        if li is None:
            raise AwsError("ListenerNotFound", "One or more listeners not found")
        return li

    def render_lb(self, lb):
        st = self.st
        azs = []
        for m in lb["mappings"]:
            item = {"ZoneName": st.subnets[m["SubnetId"]]["az"], "SubnetId": m["SubnetId"],
                    "LoadBalancerAddresses": []}
            if m.get("AllocationId") or m.get("PrivateIPv4Address"):
                item["LoadBalancerAddresses"] = [{"AllocationId": m.get("AllocationId"),
                                                  "PrivateIPv4Address":
                                                  m.get("PrivateIPv4Address"),
                                                  "IpAddress": m.get("public_ip")}]
            azs.append(item)
        return {"LoadBalancerArn": lb["arn"], "DNSName": lb["dns"],
                "CanonicalHostedZoneId": (NLB_ZONE_IDS if lb["type"] == "network"
                                          else ELB_ZONE_IDS).get(st.region, "Z26RNL4JYFTOTI"),
                "CreatedTime": lb["created"], "LoadBalancerName": lb["name"],
                "Scheme": lb["scheme"], "VpcId": lb["vpc"],
                "State": {"Code": lb["state"]}, "Type": lb["type"],
                "AvailabilityZones": azs,
                "SecurityGroups": lb["security_groups"] if lb["security_groups"] else None,
                "IpAddressType": lb["ip_type"]}

    def tg_lbs(self, tg_arn):
        out = []
        for li in self.st.listeners.values():
            if any(a.get("TargetGroupArn") == tg_arn for a in li["actions"]):
                if li["lb"] not in out:
                    out.append(li["lb"])
        return out

    def render_tg(self, tg):
        out = {"TargetGroupArn": tg["arn"], "TargetGroupName": tg["name"],
               "Protocol": tg["protocol"], "Port": tg["port"], "VpcId": tg["vpc"]}
        for k, _ in HC_FIELDS:
            if tg.get(k) is not None:
                out[k] = tg[k]
        if tg.get("Matcher"):
            out["Matcher"] = tg["Matcher"]
        out["LoadBalancerArns"] = self.tg_lbs(tg["arn"])
        out["TargetType"] = tg["target_type"]
        out["IpAddressType"] = "ipv4"
        return out

    def render_listener(self, li):
        out = {"ListenerArn": li["arn"], "LoadBalancerArn": li["lb"], "Port": li["port"],
               "Protocol": li["protocol"]}
        if li["certificates"]:
            out["Certificates"] = [{"CertificateArn": c} for c in li["certificates"]]
        if li["ssl_policy"]:
            out["SslPolicy"] = li["ssl_policy"]
        acts = []
        for a in li["actions"]:
            item = {"Type": a["Type"]}
            if a.get("TargetGroupArn"):
                item["TargetGroupArn"] = a["TargetGroupArn"]
                item["ForwardConfig"] = {"TargetGroups": [
                    {"TargetGroupArn": a["TargetGroupArn"], "Weight": 1}],
                    "TargetGroupStickinessConfig": {"Enabled": False}}
            if a.get("Order"):
                item["Order"] = a["Order"]
            acts.append(item)
        out["DefaultActions"] = acts
        if li["alpn"]:
            out["AlpnPolicy"] = li["alpn"]
        return out

    def CreateLoadBalancer(self, p):
        st = self.st
        name = qreq(p, "Name")
        if not LB_NAME_RE.match(name) or name.startswith("internal-"):
            raise AwsError("ValidationError", "Load balancer name '%s' must have at most 32 "
                           "alphanumeric characters or hyphens, must not begin or end with a "
                           "hyphen and must not begin with 'internal-'" % name)
        lbtype = p.get("Type") or "application"
        if lbtype not in ("application", "network", "gateway"):
            raise AwsError("ValidationError", "Invalid load balancer type '%s'" % lbtype)
        scheme = p.get("Scheme") or "internet-facing"
        if scheme not in ("internet-facing", "internal"):
            raise AwsError("ValidationError", "Invalid scheme '%s'" % scheme)
        maps = [{"SubnetId": s} for s in qlist(p, "Subnets")]
        smaps = [{k: m.get(k) for k in ("SubnetId", "AllocationId", "PrivateIPv4Address",
                                          "IPv6Address") if m.get(k)}
                 for m in qstructs(p, "SubnetMappings")]
        if maps and smaps:
            raise AwsError("ValidationError", "You cannot specify both subnets and subnet "
                           "mappings")
        maps = maps or smaps
        if not maps:
            raise AwsError("ValidationError", "At least one subnet must be specified")
        seen_az = set()
        for m in maps:
            sub = st.subnets.get(m.get("SubnetId", ""))
            if sub is None:
                raise AwsError("SubnetNotFound", "The subnet ID '%s' is not valid"
                               % m.get("SubnetId"))
            if sub["az"] in seen_az:
                raise AwsError("InvalidConfigurationRequest", "A load balancer cannot be "
                               "attached to multiple subnets in the same Availability Zone")
            seen_az.add(sub["az"])
            if m.get("AllocationId") and scheme == "internal":
                raise AwsError("InvalidConfigurationRequest", "Elastic IP addresses cannot be "
                               "used with internal load balancers")
            if m.get("PrivateIPv4Address"):
                try:
                    ok = ipaddress.ip_address(m["PrivateIPv4Address"]) in \
                        ipaddress.ip_network(sub["cidr"])
                except ValueError:
                    ok = False
                if not ok:
                    raise AwsError("InvalidConfigurationRequest", "Private IPv4 address '%s' "
                                   "is not in subnet '%s'" % (m["PrivateIPv4Address"],
                                                             sub["id"]))
        vpcs = {st.subnets[m["SubnetId"]]["vpc"] for m in maps}
        if len(vpcs) != 1:
            raise AwsError("InvalidConfigurationRequest", "All subnets must be in the same VPC")
        vpc = vpcs.pop()
        sgs = qlist(p, "SecurityGroups")
        for g in sgs:
            if g not in st.security_groups or st.security_groups[g]["vpc"] != vpc:
                raise AwsError("InvalidSecurityGroup", "Security group '%s' does not exist"
                               % g)
        tags = qtags(p)
        for lb in st.lbs.values():
            if lb["name"] == name:
                if lb["type"] == lbtype and lb["scheme"] == scheme:
                    return {"LoadBalancers": [self.render_lb(lb)]}
                raise AwsError("DuplicateLoadBalancerName", "A load balancer with the same name "
                               "'%s' exists, but with different settings" % name)
        hexid = rand_hex(16)
        short = {"network": "net", "application": "app", "gateway": "gwy"}[lbtype]
        arn = self.arn("loadbalancer", "%s/%s/%s" % (short, name, hexid))
        if lbtype == "network":
            dns = "%s-%s.elb.%s.amazonaws.com" % (name, hexid, st.region)
        else:
            dns = "%s%s-%d.%s.elb.amazonaws.com" % ("internal-" if scheme == "internal" else
                                                     "", name, secrets.randbelow(9 * 10 ** 9)
                                                     + 10 ** 9, st.region)
        for m in maps:
            if m.get("AllocationId"):
                m["public_ip"] = "203.0.113.%d" % (secrets.randbelow(250) + 2)
        lb = {"arn": arn, "name": name, "type": lbtype, "scheme": scheme, "vpc": vpc,
              "dns": dns, "mappings": maps, "security_groups": sgs, "tags": tags,
              "created": iso_ms(now_ts()), "state": "provisioning",
              "ip_type": p.get("IpAddressType") or "ipv4",
              "attributes": dict(NLB_LB_ATTRS if lbtype == "network" else ALB_LB_ATTRS)}
        st.lbs[arn] = lb
        out = {"LoadBalancers": [self.render_lb(lb)]}
        lb["state"] = "active"
        return out

    def DescribeLoadBalancers(self, p):
        names = qlist(p, "Names")
        arns = qlist(p, "LoadBalancerArns")
        if names and arns:
            raise AwsError("ValidationError", "Load balancer names and load balancer ARNs "
                           "cannot be specified at the same time")
        objs = list(self.st.lbs.values())
        if names:
            byname = {lb["name"]: lb for lb in objs}
            if any(n not in byname for n in names):
                raise AwsError("LoadBalancerNotFound", "One or more load balancers not found")
            objs = [byname[n] for n in dict.fromkeys(names)]
        elif arns:
            objs = [self.need_lb(a) for a in dict.fromkeys(arns)]
        objs, nxt = marker_page(objs, p, 400)
        return {"LoadBalancers": [self.render_lb(lb) for lb in objs], "NextMarker": nxt}

    def DeleteLoadBalancer(self, p):
        arn = qreq(p, "LoadBalancerArn")
        lb = self.st.lbs.get(arn)
        if lb is None:
            # Documented: deleting a missing or already deleted load balancer succeeds.
            if not arn.startswith("arn:aws:elasticloadbalancing:"):
                raise AwsError("ValidationError", "'%s' is not a valid load balancer ARN"
                               % arn)
            return {}
        if lb["attributes"].get("deletion_protection.enabled") == "true":
            raise AwsError("OperationNotPermitted", "Load balancer '%s' cannot be deleted "
                           "because deletion protection is enabled" % arn)
        for la in [a for a, li in self.st.listeners.items() if li["lb"] == arn]:
            del self.st.listeners[la]
        del self.st.lbs[arn]
        return {}

    def tg_hc(self, p, base):
        out = dict(base)
        for k, conv in HC_FIELDS:
            if p.get(k) not in (None, ""):
                try:
                    out[k] = conv(p[k])
                except ValueError:
                    raise AwsError("ValidationError", "Invalid value '%s' for %s" % (p[k], k))
        if p.get("Matcher.HttpCode"):
            out["Matcher"] = {"HttpCode": p["Matcher.HttpCode"]}
        hp = out.get("HealthCheckProtocol")
        if hp not in ("TCP", "HTTP", "HTTPS", "TLS", "UDP", "TCP_UDP", "GENEVE"):
            raise AwsError("ValidationError", "Invalid health check protocol '%s'" % hp)
        if hp in ("HTTP", "HTTPS"):
            out.setdefault("HealthCheckPath", "/")
            out.setdefault("Matcher", {"HttpCode": "200-399"})
        else:
            if p.get("HealthCheckPath"):
                raise AwsError("ValidationError", "You cannot specify a health check path "
                               "for a target group with a %s health check" % hp)
            out.pop("HealthCheckPath", None)
            out.pop("Matcher", None)
        port = out.get("HealthCheckPort")
        if port != "traffic-port" and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise AwsError("ValidationError", "Health check port '%s' must be "
                           "'traffic-port' or 1-65535" % port)
        if not 5 <= out["HealthCheckIntervalSeconds"] <= 300:
            raise AwsError("ValidationError", "Health check interval must be between 5 and "
                           "300 seconds")
        if not 2 <= out["HealthCheckTimeoutSeconds"] <= 120:
            raise AwsError("ValidationError", "Health check timeout must be between 2 and "
                           "120 seconds")
        for k in ("HealthyThresholdCount", "UnhealthyThresholdCount"):
            if not 2 <= out[k] <= 10:
                raise AwsError("ValidationError", "%s must be between 2 and 10" % k)
        return out

    def CreateTargetGroup(self, p):
        st = self.st
        name = qreq(p, "Name")
        if not LB_NAME_RE.match(name):
            raise AwsError("ValidationError", "Target group name '%s' must have at most 32 "
                           "alphanumeric characters or hyphens" % name)
        ttype = p.get("TargetType") or "instance"
        proto = (p.get("Protocol") or "").upper()
        if ttype != "lambda":
            if proto not in NLB_PROTOCOLS + ("HTTP", "HTTPS", "GENEVE"):
                raise AwsError("ValidationError", "A valid protocol must be specified")
            port = as_int(qreq(p, "Port"), "Port", "ValidationError")
            if not 1 <= port <= 65535:
                raise AwsError("ValidationError", "Port must be between 1 and 65535")
            vpc = qreq(p, "VpcId")
            if vpc not in st.vpcs:
                raise AwsError("ValidationError", "The VPC ID '%s' is not found" % vpc)
        else:
            port, vpc = None, None
        base = {"HealthCheckProtocol": "HTTP" if proto in ("HTTP", "HTTPS") else "TCP",
                "HealthCheckPort": "traffic-port", "HealthCheckEnabled": True,
                "HealthCheckIntervalSeconds": 30,
                "HealthCheckTimeoutSeconds": 6 if proto in ("HTTP", "HTTPS") else 10,
                "HealthyThresholdCount": 5, "UnhealthyThresholdCount": 2}
        if proto == "HTTPS":
            base["HealthCheckProtocol"] = "HTTPS"
        hc = self.tg_hc(p, base)
        tags = qtags(p)
        for tg in st.tgs.values():
            if tg["name"] == name:
                same = (tg["protocol"], tg["port"], tg["vpc"], tg["target_type"]) == \
                    (proto, port, vpc, ttype) and all(tg.get(k) == hc.get(k)
                                                      for k, _ in HC_FIELDS)
                if same:
                    return {"TargetGroups": [self.render_tg(tg)]}
                raise AwsError("DuplicateTargetGroupName", "A target group with the same name "
                               "'%s' exists, but with different settings" % name)
        arn = self.arn("targetgroup", "%s/%s" % (name, rand_hex(16)))
        tg = dict(hc, arn=arn, name=name, protocol=proto, port=port, vpc=vpc,
                  target_type=ttype, tags=tags, targets=[],
                  attributes=dict(TCP_TG_ATTRS if proto in NLB_PROTOCOLS else HTTP_TG_ATTRS))
        st.tgs[arn] = tg
        return {"TargetGroups": [self.render_tg(tg)]}

    def DescribeTargetGroups(self, p):
        lb = p.get("LoadBalancerArn")
        names = qlist(p, "Names")
        arns = qlist(p, "TargetGroupArns")
        if sum(bool(x) for x in (lb, names, arns)) > 1:
            raise AwsError("ValidationError", "Only one of LoadBalancerArn, TargetGroupArns "
                           "or Names can be specified")
        objs = list(self.st.tgs.values())
        if lb:
            self.need_lb(lb)
            objs = [tg for tg in objs if lb in self.tg_lbs(tg["arn"])]
        elif names:
            byname = {tg["name"]: tg for tg in objs}
            if any(n not in byname for n in names):
                raise AwsError("TargetGroupNotFound", "One or more target groups not found")
            objs = [byname[n] for n in dict.fromkeys(names)]
        elif arns:
            objs = [self.need_tg(a) for a in dict.fromkeys(arns)]
        objs, nxt = marker_page(objs, p, 400)
        return {"TargetGroups": [self.render_tg(tg) for tg in objs], "NextMarker": nxt}

    def ModifyTargetGroup(self, p):
        tg = self.need_tg(qreq(p, "TargetGroupArn"))
        hc = self.tg_hc(p, {k: tg.get(k) for k, _ in HC_FIELDS if tg.get(k) is not None})
        for k, _ in HC_FIELDS:
            tg.pop(k, None)
        tg.pop("Matcher", None)
        tg.update(hc)
        return {"TargetGroups": [self.render_tg(tg)]}

    def DeleteTargetGroup(self, p):
        arn = qreq(p, "TargetGroupArn")
        if arn not in self.st.tgs:
            return {}
        if self.tg_lbs(arn):
            raise AwsError("ResourceInUse", "Target group '%s' is currently in use by a "
                           "listener or a rule" % arn)
        del self.st.tgs[arn]
        for k in [k for k in self.st.target_health if k[0] == arn]:
            del self.st.target_health[k]
        return {}

    def parse_targets(self, p, tg):
        out = []
        for m in qstructs(p, "Targets"):
            tid = m.get("Id")
            if not tid:
                raise AwsError("ValidationError", "Target Id is required")
            port = as_int(m["Port"], "Port", "ValidationError") if m.get("Port") else tg["port"]
            out.append({"Id": tid, "Port": port})
        if not out:
            raise AwsError("ValidationError", "Targets must not be empty")
        return out

    def RegisterTargets(self, p):
        tg = self.need_tg(qreq(p, "TargetGroupArn"))
        targets = self.parse_targets(p, tg)
        if tg["target_type"] == "instance":
            bad = [t["Id"] for t in targets if t["Id"] not in self.st.instances]
            if bad:
                raise AwsError("InvalidTarget", "The following targets are not valid instances:"
                               " '%s'" % "', '".join(bad))
            bad = [t["Id"] for t in targets
                   if self.st.instances[t["Id"]]["state"] != "running"]
            if bad:
                raise AwsError("InvalidTarget", "The following targets are not in a running "
                               "state and cannot be registered: '%s'" % "', '".join(bad))
            bad = [t["Id"] for t in targets if self.st.instances[t["Id"]]["vpc"] != tg["vpc"]]
            if bad:
                raise AwsError("InvalidTarget", "The following targets are not in the target "
                               "group VPC '%s': '%s'" % (tg["vpc"], "', '".join(bad)))
        for t in targets:
            if t not in tg["targets"]:
                tg["targets"].append(t)
        return {}

    def DeregisterTargets(self, p):
        tg = self.need_tg(qreq(p, "TargetGroupArn"))
        targets = self.parse_targets(p, tg)
        tg["targets"] = [t for t in tg["targets"] if t not in targets]
        for t in targets:
            self.st.target_health.pop((tg["arn"], t["Id"], t["Port"]), None)
        return {}

    def health(self, tg, t, registered):
        if not registered:
            return {"State": "unused", "Reason": "Target.NotRegistered",
                    "Description": "Target is not registered to the target group"}
        over = self.st.target_health.get((tg["arn"], t["Id"], t["Port"]))
        if over:
            return over
        inst = self.st.instances.get(t["Id"])
        if tg["target_type"] == "instance" and (inst is None or inst["state"] != "running"):
            return {"State": "unused", "Reason": "Target.InvalidState",
                    "Description": "Target is in the %s state" %
                    (inst["state"] if inst else "terminated")}
        if not self.tg_lbs(tg["arn"]):
            return {"State": "unused", "Reason": "Target.NotInUse",
                    "Description": "Target group is not configured to receive traffic from "
                    "the load balancer"}
        return {"State": "healthy"}

    def DescribeTargetHealth(self, p):
        tg = self.need_tg(qreq(p, "TargetGroupArn"))
        asked = []
        for m in qstructs(p, "Targets"):
            asked.append({"Id": m.get("Id"), "Port": int(m["Port"]) if m.get("Port") else
                          tg["port"]})
        if asked:
            items = [(t, t in tg["targets"]) for t in asked]
        else:
            items = [(t, True) for t in tg["targets"]]
        out = []
        for t, reg in items:
            hcp = tg["HealthCheckPort"]
            out.append({"Target": {"Id": t["Id"], "Port": t["Port"]},
                        "HealthCheckPort": str(t["Port"]) if hcp == "traffic-port" else hcp,
                        "TargetHealth": self.health(tg, t, reg)})
        return {"TargetHealthDescriptions": out}

    def parse_actions(self, p, lb):
        acts = []
        for m in qstructs(p, "DefaultActions"):
            typ = m.get("Type")
            if typ not in ("forward", "redirect", "fixed-response", "authenticate-oidc",
                           "authenticate-cognito"):
                raise AwsError("ValidationError", "Invalid action type '%s'" % typ)
            tga = m.get("TargetGroupArn")
            if typ == "forward" and not tga:
                fwd = qstructs(m, "ForwardConfig.TargetGroups")
                tga = fwd[0].get("TargetGroupArn") if fwd else None
            if typ == "forward":
                if not tga:
                    raise AwsError("ValidationError", "A target group ARN must be specified")
                tg = self.need_tg(tga)
                other = [x for x in self.tg_lbs(tga) if x != lb["arn"]]
                if other:
                    raise AwsError("TargetGroupAssociationLimit", "The following target "
                                   "groups cannot be associated with more than one load "
                                   "balancer: '%s'" % tga)
                if lb["type"] == "network" and tg["protocol"] not in NLB_PROTOCOLS:
                    raise AwsError("IncompatibleProtocols", "The target group protocol '%s' "
                                   "is not compatible with a network load balancer"
                                   % tg["protocol"])
            acts.append({"Type": typ, "TargetGroupArn": tga,
                         "Order": int(m["Order"]) if m.get("Order") else None})
        if not acts:
            raise AwsError("ValidationError", "DefaultActions must not be empty")
        return acts

    def listener_fields(self, p, lb, cur=None):
        proto = (p.get("Protocol") or (cur or {}).get("protocol") or "").upper()
        valid = NLB_PROTOCOLS if lb["type"] == "network" else ("HTTP", "HTTPS")
        if proto not in valid:
            raise AwsError("ValidationError", "Listener protocol '%s' must be one of '%s'"
                           % (proto, "', '".join(valid)))
        port = p.get("Port")
        port = as_int(port, "Port", "ValidationError") if port else (cur or {}).get("port")
        if port is None or not 1 <= port <= 65535:
            raise AwsError("ValidationError", "Port must be between 1 and 65535")
        certs = [m.get("CertificateArn") for m in qstructs(p, "Certificates")]
        if not certs and cur and "Certificates.member.1.CertificateArn" not in p:
            certs = cur["certificates"]
        if proto in ("TLS", "HTTPS") and not certs:
            raise AwsError("CertificateNotFound", "A certificate must be specified for %s "
                           "listeners" % proto)
        ssl = p.get("SslPolicy") or ((cur or {}).get("ssl_policy") if proto in
                                     ("TLS", "HTTPS") else None)
        if proto in ("TLS", "HTTPS") and not ssl:
            ssl = "ELBSecurityPolicy-2016-08"
        if proto not in ("TLS", "HTTPS"):
            certs, ssl = [], None
        return proto, port, certs, ssl

    def CreateListener(self, p):
        st = self.st
        lb = self.need_lb(qreq(p, "LoadBalancerArn"))
        proto, port, certs, ssl = self.listener_fields(p, lb)
        acts = self.parse_actions(p, lb)
        for li in st.listeners.values():
            if li["lb"] == lb["arn"] and li["port"] == port:
                if li["protocol"] == proto and [a["TargetGroupArn"] for a in li["actions"]] \
                        == [a["TargetGroupArn"] for a in acts]:
                    return {"Listeners": [self.render_listener(li)]}
                raise AwsError("DuplicateListener", "A listener already exists on this port "
                               "for this load balancer '%s'" % lb["arn"])
        short = lb["arn"].split(":loadbalancer/", 1)[1]
        arn = self.arn("listener", "%s/%s" % (short, rand_hex(16)))
        li = {"arn": arn, "lb": lb["arn"], "port": port, "protocol": proto,
              "certificates": certs, "ssl_policy": ssl, "actions": acts,
              "alpn": qlist(p, "AlpnPolicy"), "tags": qtags(p)}
        st.listeners[arn] = li
        return {"Listeners": [self.render_listener(li)]}

    def DescribeListeners(self, p):
        lb = p.get("LoadBalancerArn")
        arns = qlist(p, "ListenerArns")
        if lb and arns:
            raise AwsError("ValidationError", "Listener ARNs and a load balancer ARN cannot be "
                           "specified at the same time")
        if not lb and not arns:
            raise AwsError("ValidationError", "You must specify either listener ARNs or a load "
                           "balancer ARN")
        if lb:
            self.need_lb(lb)
            objs = [li for li in self.st.listeners.values() if li["lb"] == lb]
        else:
            objs = [self.need_listener(a) for a in dict.fromkeys(arns)]
        objs, nxt = marker_page(objs, p, 400)
        return {"Listeners": [self.render_listener(li) for li in objs], "NextMarker": nxt}

    def ModifyListener(self, p):
        li = self.need_listener(qreq(p, "ListenerArn"))
        lb = self.st.lbs[li["lb"]]
        proto, port, certs, ssl = self.listener_fields(p, lb, li)
        acts = self.parse_actions(p, lb) if qstructs(p, "DefaultActions") else li["actions"]
        for other in self.st.listeners.values():
            if other is not li and other["lb"] == lb["arn"] and other["port"] == port:
                raise AwsError("DuplicateListener", "A listener already exists on this port "
                               "for this load balancer '%s'" % lb["arn"])
        li.update(protocol=proto, port=port, certificates=certs, ssl_policy=ssl, actions=acts)
        if qlist(p, "AlpnPolicy"):
            li["alpn"] = qlist(p, "AlpnPolicy")
        return {"Listeners": [self.render_listener(li)]}

    def DeleteListener(self, p):
        li = self.need_listener(qreq(p, "ListenerArn"))
        del self.st.listeners[li["arn"]]
        return {}

    @staticmethod
    def modify_attrs(p, attrs, what):
        new = dict(attrs)
        items = qstructs(p, "Attributes")
        if not items:
            raise AwsError("ValidationError", "Attributes must not be empty")
        for m in items:
            k = m.get("Key", "")
            if k not in attrs:
                raise AwsError("InvalidConfigurationRequest", "%s attribute key '%s' is not "
                               "recognized" % (what, k))
            v = m.get("Value", "")
            if attrs[k] in ("true", "false") and v not in ("true", "false"):
                raise AwsError("InvalidConfigurationRequest", "%s attribute '%s' must be "
                               "'true' or 'false'" % (what, k))
            if k.endswith("timeout_seconds") and not v.isdigit():
                raise AwsError("InvalidConfigurationRequest", "%s attribute '%s' must be an "
                               "integer" % (what, k))
            new[k] = v
        if new.get("access_logs.s3.enabled") == "true" and not new.get("access_logs.s3.bucket"):
            raise AwsError("InvalidConfigurationRequest", "The value of "
                           "'access_logs.s3.bucket' cannot be empty when access logs are "
                           "enabled")
        return new

    def DescribeLoadBalancerAttributes(self, p):
        lb = self.need_lb(qreq(p, "LoadBalancerArn"))
        return {"Attributes": [{"Key": k, "Value": v} for k, v in lb["attributes"].items()]}

    def ModifyLoadBalancerAttributes(self, p):
        lb = self.need_lb(qreq(p, "LoadBalancerArn"))
        lb["attributes"] = self.modify_attrs(p, lb["attributes"], "Load balancer")
        return {"Attributes": [{"Key": k, "Value": v} for k, v in lb["attributes"].items()]}

    def DescribeTargetGroupAttributes(self, p):
        tg = self.need_tg(qreq(p, "TargetGroupArn"))
        return {"Attributes": [{"Key": k, "Value": v} for k, v in tg["attributes"].items()]}

    def ModifyTargetGroupAttributes(self, p):
        tg = self.need_tg(qreq(p, "TargetGroupArn"))
        tg["attributes"] = self.modify_attrs(p, tg["attributes"], "Target group")
        return {"Attributes": [{"Key": k, "Value": v} for k, v in tg["attributes"].items()]}

    def resource(self, arn):
        if ":loadbalancer/" in arn:
            return self.need_lb(arn)
        if ":targetgroup/" in arn:
            return self.need_tg(arn)
        if ":listener/" in arn:
            return self.need_listener(arn)
        raise AwsError("ValidationError", "'%s' is not a valid resource ARN" % arn)

    def AddTags(self, p):
        arns = qlist(p, "ResourceArns")
        tags = qtags(p)
        if not arns or not tags:
            raise AwsError("ValidationError", "ResourceArns and Tags are required")
        return lb_tags_add([self.resource(a) for a in arns], tags,
                           "The quota for the number of tags that can be assigned to a "
                           "load balancer has been reached")

    def RemoveTags(self, p):
        objs = [self.resource(a) for a in qlist(p, "ResourceArns")]
        return lb_tags_remove(objs, qlist(p, "TagKeys"))

    def DescribeTags(self, p):
        arns = qlist(p, "ResourceArns")
        if not arns:
            raise AwsError("ValidationError", "ResourceArns is required")
        if len(arns) > 20:
            raise AwsError("ValidationError", "At most 20 resource ARNs can be specified")
        return lb_tags_describe([(a, self.resource(a)) for a in arns], "ResourceArn")

    def SetSecurityGroups(self, p):
        lb = self.need_lb(qreq(p, "LoadBalancerArn"))
        sgs = qlist(p, "SecurityGroups")
        if lb["type"] == "network" and not lb["security_groups"]:
            raise AwsError("InvalidConfigurationRequest", "You cannot set security groups on "
                           "a Network Load Balancer which was created without any security "
                           "groups.")
        for g in sgs:
            if g not in self.st.security_groups or \
                    self.st.security_groups[g]["vpc"] != lb["vpc"]:
                raise AwsError("InvalidSecurityGroup", "Security group '%s' does not exist"
                               % g)
        if lb["type"] == "network" and not sgs:
            raise AwsError("InvalidConfigurationRequest", "A Network Load Balancer created "
                           "with security groups must keep at least one")
        lb["security_groups"] = sgs
        return {"SecurityGroupIds": sgs}

    OPS = ("CreateLoadBalancer", "DescribeLoadBalancers", "DeleteLoadBalancer",
           "CreateTargetGroup", "DescribeTargetGroups", "ModifyTargetGroup",
           "DeleteTargetGroup", "RegisterTargets", "DeregisterTargets", "DescribeTargetHealth",
           "CreateListener", "DescribeListeners", "ModifyListener", "DeleteListener",
           "DescribeLoadBalancerAttributes", "ModifyLoadBalancerAttributes",
           "DescribeTargetGroupAttributes", "ModifyTargetGroupAttributes", "AddTags",
           "RemoveTags", "DescribeTags", "SetSecurityGroups")


# --------------------------------------------------------------------------
# STS (2011-06-15)

ROLE_ARN_RE = re.compile(r"^arn:aws:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$")
SESSION_RE = re.compile(r"^[\w+=,.@-]{2,64}$")


class Sts:
    def __init__(self, st):
        self.st = st
        self.caller = None

    def issue(self, role_arn, session, duration):
        m = ROLE_ARN_RE.match(role_arn)
        role = m.group(2) if m else "role"
        akid = "ASIA" + rand_upper(16)
        secret = base64.b64encode(secrets.token_bytes(30)).decode()
        token = "IQoJb3JpZ2luX2VjE" + base64.b64encode(secrets.token_bytes(180)).decode()
        exp = now_ts() + duration
        role_id = "AROA" + rand_upper(17)
        arn = "arn:aws:sts::%s:assumed-role/%s/%s" % (self.st.account, role, session)
        self.st.credentials[akid] = {"secret": secret, "token": token, "expires": exp,
                                     "arn": arn, "user_id": "%s:%s" % (role_id, session)}
        return {"Credentials": {"AccessKeyId": akid, "SecretAccessKey": secret,
                                "SessionToken": token, "Expiration": iso_s(exp)},
                "AssumedRoleUser": {"AssumedRoleId": "%s:%s" % (role_id, session),
                                    "Arn": arn}}

    def common(self, p):
        role = qreq(p, "RoleArn")
        session = qreq(p, "RoleSessionName")
        if not ROLE_ARN_RE.match(role):
            raise AwsError("ValidationError", "%s is invalid" % role)
        if not SESSION_RE.match(session):
            raise AwsError("ValidationError", "1 validation error detected: Value '%s' at "
                           "'roleSessionName' failed to satisfy constraint: Member must "
                           "satisfy regular expression pattern: [\\w+=,.@-]*" % session)
        dur = as_int(p.get("DurationSeconds", "3600"), "DurationSeconds", "ValidationError")
        if not 900 <= dur <= 43200:
            raise AwsError("ValidationError", "1 validation error detected: Value '%d' at "
                           "'durationSeconds' failed to satisfy constraint: Member must have "
                           "value between 900 and 43200" % dur)
        if self.st.roles is not None and role not in self.st.roles:
            raise AwsError("AccessDenied", "User: %s is not authorized to perform: "
                           "sts:AssumeRole on resource: %s" % (
                               self.caller["arn"] if self.caller else "anonymous", role), 403)
        return role, session, dur

    def AssumeRole(self, p):
        role, session, dur = self.common(p)
        out = self.issue(role, session, dur)
        out["PackedPolicySize"] = 0 if p.get("Policy") else None
        return out

    def AssumeRoleWithWebIdentity(self, p):
        role, session, dur = self.common(p)
        tok = qreq(p, "WebIdentityToken")
        if tok not in self.st.web_identity_tokens:
            raise AwsError("InvalidIdentityToken", "Couldn't verify the web identity token")
        out = self.issue(role, session, dur)
        res = {"Credentials": out["Credentials"],
               "SubjectFromWebIdentityToken":
                   "system:serviceaccount:kube-system:cloud-controller-manager",
               "AssumedRoleUser": out["AssumedRoleUser"],
               "Provider": "arn:aws:iam::%s:oidc-provider/oidc.double.local" % self.st.account,
               "Audience": "sts.amazonaws.com"}
        return res

    def GetCallerIdentity(self, p):
        c = self.caller
        return {"UserId": c["user_id"], "Account": self.st.account, "Arn": c["arn"]}

    OPS = ("AssumeRole", "AssumeRoleWithWebIdentity", "GetCallerIdentity")


# --------------------------------------------------------------------------
# The server

class Double:
    def __init__(self, seed, region=None, verbose=False):
        self.st = State(seed, region)
        self.region_override = region
        self.verbose = verbose
        self.calls = []
        self.calls_lock = threading.Lock()
        self.faults = []
        self.fault_lock = threading.Lock()
        self.seq = 0
        self.httpd = None

    # -- call log and faults
    def log_call(self, entry):
        with self.calls_lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.calls.append(entry)
            if len(self.calls) > 100000:
                del self.calls[:10000]

    def add_faults(self, spec):
        if spec.get("clear"):
            with self.fault_lock:
                self.faults = []
            return []
        kind = spec.get("kind")
        if kind not in ("throttle", "5xx", "latency"):
            raise ValueError("kind must be throttle, 5xx or latency")
        status = int(spec.get("status", 500 if kind == "5xx" else 0))
        if kind == "5xx" and status not in (500, 502, 503, 504):
            raise ValueError("status must be 500, 502, 503 or 504")
        count = spec.get("count")
        f = {"id": rand_hex(8), "action": spec.get("action", "*") or "*",
             "service": spec.get("service", "*") or "*", "kind": kind,
             "count": None if count is None else int(count), "fired": 0,
             "latency_ms": int(spec.get("latency_ms", 0)), "status": status}
        with self.fault_lock:
            self.faults.append(f)
        return [f]

    @staticmethod
    def svc_match(want, svc):
        if want in ("*", svc):
            return True
        return want == "elasticloadbalancing" and svc in ("elb", "elbv2")

    def take_faults(self, svc, action):
        """Consumes the matching faults; returns (latency seconds, error fault or None)."""
        delay = 0.0
        err = None
        with self.fault_lock:
            for f in self.faults:
                if f["count"] is not None and f["fired"] >= f["count"]:
                    continue
                if not self.svc_match(f["service"], svc) or f["action"] not in ("*", action):
                    continue
                if f["kind"] == "latency":
                    f["fired"] += 1
                    delay += f["latency_ms"] / 1000.0
                elif err is None:
                    f["fired"] += 1
                    err = f
                    delay += f["latency_ms"] / 1000.0
        return delay, err

    @staticmethod
    def fault_error(svc, f):
        if f["kind"] == "throttle":
            if svc == "ec2":
                return AwsError("RequestLimitExceeded", "Request limit exceeded.", 503)
            return AwsError("Throttling", "Rate exceeded", 400)
        st = f["status"]
        if svc == "ec2":
            code = {500: "InternalError", 503: "Unavailable"}.get(st, "InternalError")
            msg = "An internal error has occurred" if st != 503 else \
                "The service is unavailable. Please try again shortly."
        else:
            code = {503: "ServiceUnavailable"}.get(st, "InternalFailure")
            msg = "The request processing has failed because of an unknown error, exception " \
                "or failure." if st != 503 else "Service is unavailable"
        return AwsError(code, msg, st, sender=False)

    def serve(self, port):
        dbl = self

        class H(Handler):
            double = dbl

        self.httpd = Server(("127.0.0.1", port), H)
        return self.httpd.server_address[1]


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    double = None
    def version_string(self):
        return "aws-double"

    def log_message(self, fmt, *args):
        if self.double.verbose:
            sys.stderr.write("aws-double: %s\n" % (fmt % args))

    def setup(self):
        super().setup()
        try:
            import socket
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def read_body(self):
        n = self.headers.get("Content-Length")
        if n is None:
            return b""
        try:
            n = int(n)
        except ValueError:
            return b""
        return self.rfile.read(n) if n > 0 else b""

    def send(self, status, body, ctype="text/xml", extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, status, obj):
        self.send(status, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n",
                  "application/json")

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def dispatch(self):
        path, _, query = self.path.partition("?")
        try:
            if path.startswith("/_double/"):
                self.hooks(path, query)
            elif path.startswith("/latest/") or path == "/latest":
                self.imds(path)
            else:
                self.api(path, query)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- test hooks
    def hooks(self, path, query):
        d = self.double
        body = self.read_body()
        try:
            spec = json.loads(body.decode() or "{}") if body else {}
        except ValueError:
            self.send_json(400, {"error": "body is not JSON"})
            return
        q = dict(urllib.parse.parse_qsl(query))
        m = self.command
        if path == "/_double/calls" and m == "GET":
            with d.calls_lock:
                calls = [c for c in d.calls
                         if (not q.get("service") or c["service"] == q["service"]) and
                         (not q.get("action") or c["action"] == q["action"])]
            self.send_json(200, {"calls": calls, "count": len(calls)})
        elif path in ("/_double/calls/reset", "/_double/calls") and m in ("POST", "DELETE"):
            with d.calls_lock:
                d.calls = []
            self.send_json(200, {"ok": True})
        elif path == "/_double/faults" and m == "GET":
            with d.fault_lock:
                self.send_json(200, {"faults": d.faults})
        elif (path == "/_double/faults" and m == "DELETE") or path == "/_double/faults/reset":
            d.add_faults({"clear": True})
            self.send_json(200, {"ok": True})
        elif path == "/_double/faults" and m == "POST":
            try:
                added = []
                for s in spec if isinstance(spec, list) else [spec]:
                    added += d.add_faults(s)
            except (ValueError, TypeError) as e:
                self.send_json(400, {"error": str(e)})
                return
            self.send_json(200, {"ok": True, "faults": added})
        elif path == "/_double/state" and m == "GET":
            self.send_json(200, d.st.dump())
        elif path == "/_double/state" and m == "POST":
            try:
                out = self.state_change(spec)
            except (ValueError, KeyError, TypeError) as e:
                self.send_json(400, {"error": "%s: %s" % (type(e).__name__, e)})
                return
            self.send_json(200, out)
        elif path == "/_double/health":
            self.send_json(200, {"ok": True})
        else:
            self.send_json(404, {"error": "unknown hook %s %s" % (m, path)})

    def state_change(self, spec):
        d = self.double
        st = d.st
        with st.lock:
            if spec.get("reset"):
                st.load(st.seed, d.region_override)
                return {"ok": True}
            if "add_instance" in spec:
                st.add_instance(spec["add_instance"])
                return {"ok": True, "instance": st.instances[spec["add_instance"]["id"]]}
            if "target_health" in spec:
                th = spec["target_health"]
                tg = st.tgs[th["target_group_arn"]]
                port = int(th.get("port") or tg["port"])
                key = (tg["arn"], th["id"], port)
                if th.get("state"):
                    h = {"State": th["state"]}
                    if th.get("reason"):
                        h["Reason"] = th["reason"]
                    if th.get("description"):
                        h["Description"] = th["description"]
                    st.target_health[key] = h
                else:
                    st.target_health.pop(key, None)
                return {"ok": True}
            iid = spec["instance_id"]
            inst = st.instances[iid]
            action = spec.get("action")
            state = spec.get("state") or {"stop": "stopped", "start": "running",
                                          "terminate": "terminated"}.get(action)
            if action == "delete":
                del st.instances[iid]
                return {"ok": True}
            if state not in STATE_CODES:
                raise ValueError("state must be one of %s" % ", ".join(STATE_CODES))
            inst["state"] = state
            inst["reason"] = "" if state in ("running", "pending") else \
                "User initiated (%s)" % datetime.datetime.now(datetime.timezone.utc).strftime(
                    "%Y-%m-%d %H:%M:%S GMT")
            return {"ok": True, "instance_id": iid, "state": state}

    # -- IMDSv2
    def imds(self, path):
        d = self.double
        entry = {"time": iso_ms(now_ts()), "service": "imds", "action": path,
                 "method": self.command, "params": {}, "status": 200, "error": None}
        self.read_body()
        delay, fault = d.take_faults("imds", path)
        if delay:
            time.sleep(delay)
        if fault is not None and fault["kind"] != "latency":
            entry["status"] = fault["status"] or 503
            entry["error"] = "injected"
            d.log_call(entry)
            self.send(entry["status"], "", "text/plain")
            return
        status, body, ctype, extra = self.imds_answer(path)
        entry["status"] = status
        d.log_call(entry)
        self.send(status, body, ctype, extra)

    def imds_answer(self, path):
        st = self.double.st
        if path == "/latest/api/token":
            if self.command != "PUT":
                return 405, "", "text/plain", None
            if self.headers.get("X-Forwarded-For"):
                return 403, "Forbidden", "text/plain", None
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if ttl is None or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return 400, "Bad Request", "text/plain", None
            tok = base64.b64encode(secrets.token_bytes(42)).decode()
            with st.lock:
                st.imds_tokens[tok] = now_ts() + int(ttl)
            return 200, tok, "text/plain", {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
        if self.command not in ("GET", "HEAD"):
            return 405, "", "text/plain", None
        tok = self.headers.get("X-aws-ec2-metadata-token")
        with st.lock:
            exp = st.imds_tokens.get(tok or "")
            if exp is None or exp < now_ts():
                return 401, "", "text/plain", None
            val = self.imds_value(path[len("/latest/"):] if path.startswith("/latest/")
                                  else "")
        if val is None:
            return 404, "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<html><head><title>" \
                "404 - Not Found</title></head><body><h1>404 - Not Found</h1></body></html>\n", \
                "text/html", None
        if isinstance(val, (dict, list)):
            return 200, json.dumps(val, indent=2), "text/plain", None
        return 200, val, "text/plain", None

    def imds_value(self, rel):
        st = self.double.st
        inst = st.instances.get(st.imds["instance_id"] or "")
        if inst is None:
            return None
        role = st.imds["role"]
        enis = sorted(inst["enis"], key=lambda e: e["device_index"])
        macs = {e["mac"]: e for e in enis}
        primary = enis[0] if enis else None
        sgnames = [st.security_groups[g]["name"] for g in inst["security_groups"]
                   if g in st.security_groups]
        azid = {a["name"]: a["zone_id"] for a in st.azs}.get(inst["az"], "")
        tree = {
            "meta-data/ami-id": inst["image_id"],
            "meta-data/instance-id": inst["id"],
            "meta-data/instance-type": inst["type"],
            "meta-data/hostname": inst["private_dns"],
            "meta-data/local-hostname": inst["private_dns"],
            "meta-data/local-ipv4": inst["private_ip"],
            "meta-data/public-hostname": inst["public_dns"] or None,
            "meta-data/public-ipv4": inst["public_ip"],
            "meta-data/mac": primary["mac"] if primary else None,
            "meta-data/security-groups": "\n".join(sgnames),
            "meta-data/placement/availability-zone": inst["az"],
            "meta-data/placement/availability-zone-id": azid,
            "meta-data/placement/region": st.region,
            "meta-data/services/domain": "amazonaws.com",
            "meta-data/services/partition": "aws",
            "meta-data/iam/security-credentials/": role,
            "meta-data/network/interfaces/macs/": "\n".join(m + "/" for m in macs),
            "dynamic/instance-identity/document": {
                "accountId": st.account, "architecture": "x86_64",
                "availabilityZone": inst["az"], "billingProducts": None,
                "devpayProductCodes": None, "marketplaceProductCodes": None,
                "imageId": inst["image_id"], "instanceId": inst["id"],
                "instanceType": inst["type"], "kernelId": None, "pendingTime":
                    inst["launch_time"][:19] + "Z", "privateIp": inst["private_ip"],
                "ramdiskId": None, "region": st.region, "version": "2017-09-30"},
        }
        if role:
            tree["meta-data/iam/info"] = {
                "Code": "Success", "LastUpdated": iso_s(now_ts()),
                "InstanceProfileArn": "arn:aws:iam::%s:instance-profile/%s" % (st.account, role),
                "InstanceProfileId": "AIPA" + "EXAMPLEDOUBLE00001"}
        else:
            tree.pop("meta-data/iam/security-credentials/")
        for mac, e in macs.items():
            base = "meta-data/network/interfaces/macs/%s/" % mac
            sub = st.subnets.get(e["subnet"]) or {}
            vpc = st.vpcs.get(sub.get("vpc")) or {}
            tree.update({base + "device-number": str(e["device_index"]),
                         base + "interface-id": e["id"],
                         base + "local-ipv4s": "\n".join(e["private_ips"]),
                         base + "mac": mac, base + "subnet-id": e["subnet"],
                         base + "subnet-ipv4-cidr-block": sub.get("cidr"),
                         base + "vpc-id": sub.get("vpc"),
                         base + "vpc-ipv4-cidr-block": vpc.get("cidr"),
                         base + "security-group-ids": "\n".join(inst["security_groups"]),
                         base + "owner-id": st.account,
                         base + "ipv6s": "\n".join(e["ipv6"]) or None})
        if role and rel in ("meta-data/iam/security-credentials/" + role,
                            "meta-data/iam/security-credentials/" + role + "/"):
            c = st.imds_creds
            if c is None or c["expires"] - now_ts() < 300:
                sts = Sts(st)
                out = sts.issue("arn:aws:iam::%s:role/%s" % (st.account, role), inst["id"],
                                6 * 3600)
                c = st.credentials[out["Credentials"]["AccessKeyId"]]
                c["akid"] = out["Credentials"]["AccessKeyId"]
                st.imds_creds = c
            return {"Code": "Success", "LastUpdated": iso_s(now_ts()), "Type": "AWS-HMAC",
                    "AccessKeyId": c["akid"], "SecretAccessKey": c["secret"],
                    "Token": c["token"], "Expiration": iso_s(c["expires"])}
        if rel in tree:
            v = tree[rel]
            return None if v is None else v
        if rel in ("", "meta-data", "meta-data/", "dynamic/", "dynamic/instance-identity/"):
            prefix = rel.rstrip("/") + "/" if rel else ""
            kids = []
            for k in tree:
                if k.startswith(prefix) and tree[k] is not None:
                    head = k[len(prefix):].split("/", 1)
                    name = head[0] + ("/" if len(head) > 1 else "")
                    if name and name not in kids:
                        kids.append(name)
            return "\n".join(sorted(kids)) if kids else None
        return None

    # -- the AWS Query APIs
    def api(self, path, query):
        d = self.double
        st = d.st
        body = self.read_body()
        rid = str(uuid.uuid4())
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        ctype = self.headers.get("Content-Type", "")
        if body and (ctype.startswith("application/x-www-form-urlencoded") or not ctype):
            try:
                params.update(urllib.parse.parse_qsl(body.decode("utf-8"),
                                                     keep_blank_values=True))
            except UnicodeDecodeError:
                pass
        action = params.get("Action", "")
        version = params.get("Version", "")
        auth = parse_authorization(self.headers.get("Authorization"))
        if auth:
            svc = {"ec2": "ec2", "sts": "sts"}.get(auth["service"])
            if auth["service"] == "elasticloadbalancing":
                svc = "elbv2" if version == ELBV2_VERSION else "elb"
        else:
            # Unsigned (or unparseable) requests are routed by API version.
            svc = {EC2_VERSION: "ec2", ELB_VERSION: "elb", ELBV2_VERSION: "elbv2",
                   STS_VERSION: "sts"}.get(version)
        entry = {"time": iso_ms(now_ts()), "service": svc or "unknown", "action": action,
                 "params": {k: v for k, v in params.items() if k not in ("Action", "Version")},
                 "status": 200, "error": None, "access_key": auth["access_key"] if auth
                 else None, "request_id": rid}
        try:
            if svc is None:
                raise AwsError("InvalidAction", "Could not determine the service for this "
                               "request (Version '%s')" % version)
            caller = self.authenticate(svc, auth, action, body, path, query)
            impl, ns = self.implementation(svc, version, action)
            delay, fault = d.take_faults(svc, action)
            if delay:
                time.sleep(delay)
            if fault is not None:
                raise d.fault_error(svc, fault)
            with st.lock:
                if isinstance(impl, Sts):
                    impl.caller = caller
                result = getattr(impl, action)(params)
            payload = self.render_ok(svc, action, ns, result, rid)
            d.log_call(entry)
            self.send(200, payload, "text/xml;charset=UTF-8" if svc == "ec2" else "text/xml",
                      {"x-amzn-RequestId": rid} if svc != "ec2" else None)
        except Exception as ex:  # noqa: BLE001 - a double bug must still answer, as a 500
            e = ex
            if not isinstance(e, AwsError):
                traceback.print_exc()
                e = AwsError("InternalError" if svc == "ec2" else "InternalFailure",
                             "double bug: %s: %s" % (type(ex).__name__, ex), 500, sender=False)
            entry["status"] = e.status
            entry["error"] = e.code
            d.log_call(entry)
            self.send(e.status, self.render_error(svc or "elb", e, rid),
                      "text/xml;charset=UTF-8" if svc == "ec2" else "text/xml",
                      {"x-amzn-RequestId": rid} if svc != "ec2" else None)

    def implementation(self, svc, version, action):
        st = self.double.st
        if svc == "ec2":
            if not version:
                raise AwsError("MissingParameter", "The request must contain the parameter "
                               "Version")
            impl, ops, ns = Ec2(st), Ec2.OPS, "http://ec2.amazonaws.com/doc/%s/" % version
        elif svc == "elb":
            impl, ops, ns = Elb(st), Elb.OPS, ELB_NS % ELB_VERSION
            if version != ELB_VERSION:
                ops = ()
        elif svc == "elbv2":
            impl, ops, ns = Elbv2(st), Elbv2.OPS, ELB_NS % ELBV2_VERSION
        else:
            impl, ops, ns = Sts(st), Sts.OPS, STS_NS
            if version != STS_VERSION:
                ops = ()
        if action not in ops:
            if svc == "ec2":
                raise AwsError("InvalidAction", "The action %s is not valid for this web "
                               "service." % (action or "null"))
            raise AwsError("InvalidAction", "Could not find operation %s for version %s"
                           % (action or "null", version or "NO_VERSION_SPECIFIED"))
        return impl, ns

    def authenticate(self, svc, auth, action, body, path, query):
        """Verifies SigV4 (or allows the unsigned STS web-identity call); returns the caller."""
        st = self.double.st
        ec2 = svc == "ec2"

        def fail(code_other, msg_other, status_other=403):
            if ec2:
                return AwsError("AuthFailure", "AWS was not able to validate the provided "
                                "access credentials", 401)
            return AwsError(code_other, msg_other, status_other)

        if auth is None:
            if svc == "sts" and action == "AssumeRoleWithWebIdentity":
                return None
            if self.headers.get("Authorization"):
                raise fail("IncompleteSignature", "Authorization header requires "
                           "'Credential', 'Signature' and 'SignedHeaders' parameters.")
            if ec2:
                raise AwsError("MissingParameter", "The request must contain the parameter "
                               "AWSAccessKeyId")
            raise AwsError("MissingAuthenticationToken", "Request is missing Authentication "
                           "Token", 403)
        with st.lock:
            cred = st.credentials.get(auth["access_key"])
            cred = dict(cred) if cred else None
        if cred is None:
            raise fail("InvalidClientTokenId", "The security token included in the request is "
                       "invalid.")
        if cred.get("token"):
            if self.headers.get("X-Amz-Security-Token") != cred["token"]:
                raise fail("InvalidClientTokenId", "The security token included in the request "
                           "is invalid.")
            if cred["expires"] < now_ts():
                if ec2:
                    raise AwsError("RequestExpired", "Request has expired.", 400)
                raise AwsError("ExpiredToken", "The security token included in the request is "
                               "expired", 403)
        amz_date = self.headers.get("X-Amz-Date")
        if not amz_date:
            raise fail("IncompleteSignature", "Authorization header requires existence of "
                       "either a 'X-Amz-Date' or a 'Date' header.")
        try:
            t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            raise fail("IncompleteSignature", "Date must be in ISO-8601 'basic format'. Got "
                       "'%s'." % amz_date)
        now = now_ts()
        if abs(now - t) > MAX_SKEW:
            if ec2:
                raise AwsError("RequestExpired", "Request has expired.", 400)
            fmt = "%Y%m%dT%H%M%SZ"
            nowu = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
            if t < now:
                msg = "Signature expired: %s is now earlier than %s (%s - 15 min.)" % (
                    amz_date, (nowu - datetime.timedelta(minutes=15)).strftime(fmt),
                    nowu.strftime(fmt))
            else:
                msg = "Signature not yet current: %s is still later than %s (%s + 15 min.)" % (
                    amz_date, (nowu + datetime.timedelta(minutes=15)).strftime(fmt),
                    nowu.strftime(fmt))
            raise AwsError("SignatureDoesNotMatch", msg, 403)
        if auth["date"] != amz_date[:8]:
            raise fail("SignatureDoesNotMatch", "Date in Credential scope does not match "
                       "YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from "
                       "'%s'." % (auth["date"], amz_date[:8], amz_date))
        regions = {st.region} | ({"us-east-1"} if svc == "sts" else set())
        if auth["region"] not in regions:
            raise fail("SignatureDoesNotMatch", "Credential should be scoped to a valid "
                       "region, not '%s'. " % auth["region"])
        signed = auth["signed_headers"]
        if "host" not in signed.split(";"):
            raise fail("SignatureDoesNotMatch", "'Host' must be a 'SignedHeader' in the AWS "
                       "Authorization.")
        payload_hash = self.headers.get("X-Amz-Content-Sha256")
        if payload_hash != "UNSIGNED-PAYLOAD":
            payload_hash = hashlib.sha256(body).hexdigest()
        scope = "/".join([auth["date"], auth["region"], auth["service"], "aws4_request"])
        sts_str, creq = string_to_sign(self.command, path, query, self.headers, signed,
                                       payload_hash, amz_date, scope)
        key = sig_key(cred["secret"], auth["date"], auth["region"], auth["service"])
        want = hmac.new(key, sts_str.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, auth["signature"]):
            if self.double.verbose:
                sys.stderr.write("aws-double: signature mismatch\n--canonical--\n%s\n--sts--\n"
                                 "%s\n" % (creq, sts_str))
            raise fail("SignatureDoesNotMatch", "The request signature we calculated does not "
                       "match the signature you provided. Check your AWS Secret Access Key and "
                       "signing method. Consult the service documentation for details.")
        return cred

    @staticmethod
    def render_ok(svc, action, ns, result, rid):
        if svc == "ec2":
            return ('<?xml version="1.0" encoding="UTF-8"?>\n<%sResponse xmlns="%s">'
                    "<requestId>%s</requestId>%s</%sResponse>"
                    % (action, ns, rid, body_xml(result, "item"), action))
        return ('<%sResponse xmlns="%s">\n  <%sResult>%s</%sResult>\n  <ResponseMetadata>'
                "<RequestId>%s</RequestId></ResponseMetadata>\n</%sResponse>\n"
                % (action, ns, action, body_xml(result, "member"), action, rid, action))

    @staticmethod
    def render_error(svc, e, rid):
        if svc == "ec2":
            return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s'
                    "</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID>"
                    "</Response>" % (xml_escape(e.code), xml_escape(e.message), rid))
        ns = STS_NS if svc == "sts" else ELB_NS % (ELBV2_VERSION if svc == "elbv2"
                                                    else ELB_VERSION)
        return ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>%s</Type>\n    <Code>%s</Code>'
                "\n    <Message>%s</Message>\n  </Error>\n  <RequestId>%s</RequestId>\n"
                "</ErrorResponse>\n" % (ns, "Sender" if e.sender else "Receiver",
                                        xml_escape(e.code), xml_escape(e.message), rid))


def load_seed(path):
    if not path:
        return {}
    with open(path) as f:
        return json.load(f)


def main(argv=None):
    ap = argparse.ArgumentParser(description="AWS API test double (EC2, ELB, ELBv2, STS, "
                                 "IMDSv2) on 127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seed", help="JSON seed file (see fixtures/aws_seed.json)")
    ap.add_argument("--region", help="region (default: the seed's, else us-east-1)")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args(argv)
    try:
        seed = load_seed(args.seed)
    except (OSError, ValueError) as e:
        sys.stderr.write("aws-double: cannot read seed %s: %s\n" % (args.seed, e))
        return 2
    d = Double(seed, args.region, args.verbose)
    port = d.serve(args.port)

    def stop(_sig, _frm):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    sys.stdout.write("PORT %d\n" % port)
    sys.stdout.flush()
    try:
        d.httpd.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        d.httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
