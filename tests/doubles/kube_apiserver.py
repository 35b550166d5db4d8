#!/usr/bin/python3
# Kubernetes API server test double: in-memory objects, discovery, watch, patch,
# server-side apply, fault injection. Stdlib only; listens on 127.0.0.1 only.
# It must stay faithful enough that the real kubectl (1.27-1.33) works against it.
"""Kubernetes API server double. See tests/doubles/README.md."""

import argparse
import base64
import bisect
import collections
import copy
import http.server
import ipaddress
import json
import os
import random
import re
import secrets
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

# --------------------------------------------------------------------------
# Errors and Status bodies


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": self.message,
                "reason": self.reason}
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def gr_name(rt):
    return rt.plural if not rt.group else "%s.%s" % (rt.plural, rt.group)


def err_not_found(rt, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (gr_name(rt), name),
                    {"name": name, "kind": rt.plural} if not rt.group else
                    {"name": name, "group": rt.group, "kind": rt.plural})


def err_ns_not_found(ns):
    return ApiError(404, "NotFound", 'namespaces "%s" not found' % ns,
                    {"name": ns, "kind": "namespaces"})


def err_already_exists(rt, name):
    d = {"name": name, "kind": rt.plural}
    if rt.group:
        d["group"] = rt.group
    return ApiError(409, "AlreadyExists", '%s "%s" already exists' % (gr_name(rt), name), d)


def err_conflict(rt, name, msg=None):
    d = {"name": name, "kind": rt.plural}
    if rt.group:
        d["group"] = rt.group
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s' % (
        gr_name(rt), name, msg or "the object has been modified; please apply your "
        "changes to the latest version and try again"), d)


def err_invalid(rt, name, causes):
    """causes: list of (field, reason, message-after-field)."""
    parts = []
    out = []
    for field, reason, msg in causes:
        parts.append("%s: %s" % (field, msg))
        out.append({"reason": reason, "message": msg, "field": field})
    if len(parts) == 1:
        summary = parts[0]
    else:
        summary = "[" + ", ".join(parts) + "]"
    d = {"name": name, "kind": rt.kind, "causes": out}
    if rt.group:
        d["group"] = rt.group
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (rt.kind, name, summary), d)


def err_bad_request(msg):
    return ApiError(400, "BadRequest", msg)


def err_gone(msg):
    return ApiError(410, "Expired", msg)


def err_method(method=None):
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource")


# --------------------------------------------------------------------------
# Resource types

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class ResourceType:
    def __init__(self, group, version, kind, plural, singular, namespaced,
                 short_names=(), status=False, name_rule="subdomain",
                 field_selectors=(), categories=()):
        self.group = group
        self.version = version
        self.kind = kind
        self.plural = plural
        self.singular = singular
        self.namespaced = namespaced
        self.short_names = list(short_names)
        self.status = status
        self.name_rule = name_rule
        self.field_selectors = set(["metadata.name", "metadata.namespace"]) | set(field_selectors)
        self.categories = list(categories)
        self.key = (group, plural)

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def gv_path(self):
        return "/apis/%s/%s" % (self.group, self.version) if self.group else "/api/v1"


EVENT_FIELDS = ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                "involvedObject.uid", "involvedObject.apiVersion",
                "involvedObject.resourceVersion", "involvedObject.fieldPath",
                "reason", "reportingComponent", "source", "type"]

RESOURCES = [
    ResourceType("", "v1", "Namespace", "namespaces", "namespace", False, ["ns"], True,
                 "label", ["status.phase"]),
    ResourceType("", "v1", "Node", "nodes", "node", False, ["no"], True, "subdomain",
                 ["spec.unschedulable"]),
    ResourceType("", "v1", "Service", "services", "service", True, ["svc"], True, "dns1035",
                 ["spec.clusterIP", "spec.type"], ["all"]),
    ResourceType("", "v1", "Event", "events", "event", True, ["ev"], False, "subdomain",
                 EVENT_FIELDS),
    ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True, ["cm"], False),
    ResourceType("", "v1", "Secret", "secrets", "secret", True, [], False, "subdomain",
                 ["type"]),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", "lease", True, [], False),
    ResourceType("events.k8s.io", "v1", "Event", "events", "event", True, ["ev"], False,
                 "subdomain", ["regarding.kind", "regarding.namespace", "regarding.name",
                               "regarding.uid", "reason", "reportingController", "type"]),
]
RT_BY_PATH = {(rt.group, rt.version, rt.plural): rt for rt in RESOURCES}
RT_BY_KEY = {rt.key: rt for rt in RESOURCES}

# --------------------------------------------------------------------------
# Small helpers

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
QNAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def now_micro():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


def parse_ts(s):
    try:
        return time.mktime(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    except (TypeError, ValueError):
        return None


def human_age(ts):
    t = parse_ts(ts) if ts else None
    if t is None:
        return "<unknown>"
    d = max(0, int(time.time() - t))
    if d < 120:
        return "%ds" % d
    m = d // 60
    if m < 10:
        s = d % 60
        return "%dm%ds" % (m, s) if s else "%dm" % m
    if m < 180:
        return "%dm" % m
    h = d // 3600
    if h < 8:
        mm = m % 60
        return "%dh%dm" % (h, mm) if mm else "%dh" % h
    if h < 48:
        return "%dh" % h
    days = h // 24
    if days < 8:
        hh = h % 24
        return "%dd%dh" % (days, hh) if hh else "%dd" % days
    if days < 730:
        return "%dd" % days
    return "%dy%dd" % (days // 365, days % 365)


def check_name(rt, name, field="metadata.name"):
    """Return a list of invalid causes for a resource name."""
    if not name:
        return [(field, "FieldValueRequired", "Required value: name or generateName is required")]
    if rt.name_rule == "dns1035":
        if len(name) > 63 or not DNS1035.match(name):
            return [(field, "FieldValueInvalid",
                     'Invalid value: "%s": a DNS-1035 label must consist of lower case '
                     "alphanumeric characters or '-', start with an alphabetic character, "
                     "and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                     "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')" % name)]
    elif rt.name_rule == "label":
        if len(name) > 63 or not DNS1123_LABEL.match(name):
            return [(field, "FieldValueInvalid",
                     'Invalid value: "%s": a lowercase RFC 1123 label must consist of lower '
                     "case alphanumeric characters or '-', and must start and end with an "
                     "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                     "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')" % name)]
    else:
        if len(name) > 253 or not DNS1123_SUB.match(name):
            return [(field, "FieldValueInvalid",
                     'Invalid value: "%s": a lowercase RFC 1123 subdomain must consist of '
                     "lower case alphanumeric characters, '-' or '.', and must start and end "
                     "with an alphanumeric character (e.g. 'example.com', regex used for "
                     "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
                     "[a-z0-9])?)*')" % name)]
    return []


def check_labels(labels, field):
    causes = []
    if labels is None:
        return causes
    if not isinstance(labels, dict):
        return [(field, "FieldValueTypeInvalid", "Invalid value: must be a map")]
    for k, v in labels.items():
        name = k.split("/", 1)[-1]
        prefix = k.split("/", 1)[0] if "/" in k else None
        if not name or len(name) > 63 or not QNAME.match(name) or (
                prefix is not None and not DNS1123_SUB.match(prefix)):
            causes.append((field, "FieldValueInvalid",
                           'Invalid value: "%s": name part must consist of alphanumeric '
                           "characters, '-', '_' or '.', and must start and end with an "
                           "alphanumeric character" % k))
        if field.endswith("labels") and (not isinstance(v, str) or len(v) > 63 or
                                         not LABEL_VALUE.match(v)):
            causes.append(("%s" % field, "FieldValueInvalid",
                           'Invalid value: "%s": a valid label must be an empty string or '
                           "consist of alphanumeric characters, '-', '_' or '.', and must "
                           "start and end with an alphanumeric character" % (v,)))
    return causes


def get_path(obj, dotted):
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def field_value_str(obj, dotted):
    v = get_path(obj, dotted)
    if v is None:
        if dotted == "spec.unschedulable":
            return "false"
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        if dotted == "source":
            return v.get("component", "")
        return ""
    return str(v)


# --------------------------------------------------------------------------
# Selectors

class LabelSelector:
    """Parses the label selector string form (=, ==, !=, in, notin, exists, !key)."""

    def __init__(self, text):
        self.reqs = []
        text = (text or "").strip()
        if not text:
            return
        for part in self._split(text):
            part = part.strip()
            if not part:
                raise err_bad_request("unable to parse requirement: found '', expected: identifier")
            m = re.match(r"^([A-Za-z0-9_./-]+)\s+(in|notin)\s+\((.*)\)$", part)
            if m:
                vals = set(v.strip() for v in m.group(3).split(","))
                self.reqs.append((m.group(1), m.group(2), vals))
                continue
            m = re.match(r"^!\s*([A-Za-z0-9_./-]+)$", part)
            if m:
                self.reqs.append((m.group(1), "!exists", None))
                continue
            m = re.match(r"^([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)$", part)
            if m:
                op = "!=" if m.group(2) == "!=" else "="
                self.reqs.append((m.group(1), op, m.group(3)))
                continue
            m = re.match(r"^([A-Za-z0-9_./-]+)$", part)
            if m:
                self.reqs.append((m.group(1), "exists", None))
                continue
            m = re.match(r"^([A-Za-z0-9_./-]+)\s*(>|<)\s*(-?[0-9]+)$", part)
            if m:
                self.reqs.append((m.group(1), m.group(2), int(m.group(3))))
                continue
            raise err_bad_request("unable to parse requirement: %s" % part)

    @staticmethod
    def _split(text):
        out, depth, cur = [], 0, ""
        for ch in text:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            if ch == "," and depth == 0:
                out.append(cur)
                cur = ""
            else:
                cur += ch
        out.append(cur)
        return out

    def empty(self):
        return not self.reqs

    def matches(self, labels):
        labels = labels or {}
        for key, op, val in self.reqs:
            has = key in labels
            v = labels.get(key)
            if op == "=" and (not has or v != val):
                return False
            if op == "!=" and has and v == val:
                return False
            if op == "in" and (not has or v not in val):
                return False
            if op == "notin" and has and v in val:
                return False
            if op == "exists" and not has:
                return False
            if op == "!exists" and has:
                return False
            if op in (">", "<"):
                try:
                    iv = int(v)
                except (TypeError, ValueError):
                    return False
                if (op == ">" and not iv > val) or (op == "<" and not iv < val):
                    return False
        return True


class FieldSelector:
    def __init__(self, text, rt):
        self.reqs = []
        text = (text or "").strip()
        if not text:
            return
        for part in text.split(","):
            m = re.match(r"^([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*)$", part.strip())
            if not m:
                raise err_bad_request("invalid field selector: %s" % part)
            field, op, val = m.group(1), m.group(2), m.group(3)
            if field not in rt.field_selectors:
                raise err_bad_request('field label not supported: %s' % field)
            self.reqs.append((field, op != "!=", val))

    def empty(self):
        return not self.reqs

    def matches(self, obj):
        for field, eq, val in self.reqs:
            got = field_value_str(obj, field)
            if (got == val) != eq:
                return False
        return True


# --------------------------------------------------------------------------
# Patches

class PatchError(Exception):
    pass


def json_merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = json_merge_patch(result.get(k), v)
    return result


def _ptr_parts(ptr):
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise PatchError("invalid JSON pointer %r" % ptr)
    return [p.replace("~1", "/").replace("~0", "~") for p in ptr[1:].split("/")]


def _ptr_parent(doc, parts, op):
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict):
            if p not in cur:
                raise PatchError("%s operation does not apply: doc is missing path: /%s" % (
                    op, "/".join(parts)))
            cur = cur[p]
        elif isinstance(cur, list):
            try:
                cur = cur[int(p)]
            except (ValueError, IndexError):
                raise PatchError("%s operation does not apply: doc is missing path: /%s" % (
                    op, "/".join(parts)))
        else:
            raise PatchError("%s operation does not apply: doc is missing path" % op)
    return cur


def _ptr_get(doc, ptr):
    parts = _ptr_parts(ptr)
    if not parts:
        return doc
    parent = _ptr_parent(doc, parts, "get")
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError("doc is missing path: %s" % ptr)
        return parent[last]
    if isinstance(parent, list):
        try:
            return parent[int(last)]
        except (ValueError, IndexError):
            raise PatchError("doc is missing path: %s" % ptr)
    raise PatchError("doc is missing path: %s" % ptr)


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError("invalid operation %r" % (op,))
        kind = op["op"]
        path = op.get("path")
        if path is None:
            raise PatchError("operation missing path")
        parts = _ptr_parts(path)
        if kind == "test":
            if _ptr_get(doc, path) != op.get("value"):
                raise PatchError("testing value %s failed: test failed" % path)
            continue
        if kind in ("move", "copy"):
            val = copy.deepcopy(_ptr_get(doc, op.get("from", "")))
            if kind == "move":
                doc = json_patch(doc, [{"op": "remove", "path": op.get("from", "")}])
            kind, op = "add", {"op": "add", "path": path, "value": val}
        if not parts:
            if kind in ("add", "replace"):
                doc = copy.deepcopy(op.get("value"))
                continue
            raise PatchError("cannot remove root")
        parent = _ptr_parent(doc, parts, kind)
        last = parts[-1]
        if kind == "add":
            if "value" not in op:
                raise PatchError("add operation missing value")
            val = copy.deepcopy(op["value"])
            if isinstance(parent, dict):
                parent[last] = val
            elif isinstance(parent, list):
                if last == "-":
                    parent.append(val)
                else:
                    try:
                        i = int(last)
                    except ValueError:
                        raise PatchError("invalid index %r" % last)
                    if i < 0 or i > len(parent):
                        raise PatchError("add operation does not apply: index out of range")
                    parent.insert(i, val)
            else:
                raise PatchError("add operation does not apply: doc is missing path: %s" % path)
        elif kind == "remove":
            if isinstance(parent, dict):
                if last not in parent:
                    raise PatchError("remove operation does not apply: doc is missing path: %s"
                                     % path)
                del parent[last]
            elif isinstance(parent, list):
                try:
                    del parent[int(last)]
                except (ValueError, IndexError):
                    raise PatchError("remove operation does not apply: doc is missing path: %s"
                                     % path)
            else:
                raise PatchError("remove operation does not apply: doc is missing path: %s" % path)
        elif kind == "replace":
            if "value" not in op:
                raise PatchError("replace operation missing value")
            val = copy.deepcopy(op["value"])
            if isinstance(parent, dict):
                if last not in parent:
                    raise PatchError("replace operation does not apply: doc is missing key: %s"
                                     % path)
                parent[last] = val
            elif isinstance(parent, list):
                try:
                    parent[int(last)] = val
                except (ValueError, IndexError):
                    raise PatchError("replace operation does not apply: doc is missing path: %s"
                                     % path)
            else:
                raise PatchError("replace operation does not apply: doc is missing path")
        else:
            raise PatchError("Unexpected kind: %s" % kind)
    return doc


# Strategic merge patch metadata: list fields with patchStrategy merge, by kind.
# Lists not named here are atomic (replaced whole), as in the Go types
# (e.g. NodeSpec.Taints and LoadBalancerStatus.Ingress carry no patch strategy).
COMMON_SMP = {
    ("metadata", "finalizers"): None,       # merge, primitive set
    ("metadata", "ownerReferences"): "uid",
}
KIND_SMP = {
    "Service": {("spec", "ports"): "port", ("status", "conditions"): "type",
                ("spec", "externalIPs"): "<atomic>"},
    "Node": {("status", "addresses"): "type", ("status", "conditions"): "type",
             ("spec", "podCIDRs"): None, ("status", "volumesAttached"): "name"},
    "Namespace": {("status", "conditions"): "type"},
}


def smp_meta(kind, path):
    m = KIND_SMP.get(kind, {})
    if path in m:
        v = m[path]
        return ("atomic", None) if v == "<atomic>" else ("merge", v)
    if path in COMMON_SMP:
        return ("merge", COMMON_SMP[path])
    return ("atomic", None)


def _strip_directives(v):
    if isinstance(v, dict):
        return {k: _strip_directives(x) for k, x in v.items()
                if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip_directives(x) for x in v
                if not (isinstance(x, dict) and x.get("$patch") in ("delete", "replace"))]
    return v


def strategic_merge(orig, patch, kind, path=()):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return None
    result = copy.deepcopy(orig) if isinstance(orig, dict) else {}
    orders = {}
    deletes = {}
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            deletes[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$"):
            continue
        if v is None:
            result.pop(k, None)
            continue
        sub = path + (k,)
        if isinstance(v, dict):
            merged = strategic_merge(result.get(k), v, kind, sub)
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list):
            strategy, key = smp_meta(kind, sub)
            if strategy == "merge":
                result[k] = _merge_list(result.get(k) or [], v, key, kind, sub)
            else:
                result[k] = _strip_directives(v)
        else:
            result[k] = v
    for k, dels in deletes.items():
        if isinstance(result.get(k), list):
            result[k] = [x for x in result[k] if x not in (dels or [])]
    for k, order in orders.items():
        if isinstance(result.get(k), list) and isinstance(order, list):
            result[k] = _apply_order(result[k], order, smp_meta(kind, path + (k,))[1])
    if isinstance(retain, list):
        for k in list(result.keys()):
            if k not in retain:
                result.pop(k, None)
    return result


def _merge_list(orig, patch, key, kind, path):
    if any(isinstance(e, dict) and e.get("$patch") == "replace" for e in patch):
        return _strip_directives(patch)
    result = copy.deepcopy(orig)
    if key is None:
        for e in patch:
            if e not in result:
                result.append(copy.deepcopy(e))
        return result
    for e in patch:
        if not isinstance(e, dict):
            raise PatchError("merge list element must be a map")
        kv = e.get(key)
        if e.get("$patch") == "delete":
            result = [x for x in result if not (isinstance(x, dict) and x.get(key) == kv)]
            continue
        for i, x in enumerate(result):
            if isinstance(x, dict) and x.get(key) == kv:
                result[i] = strategic_merge(x, e, kind, path)
                break
        else:
            result.append(_strip_directives(e))
    return result


def _apply_order(items, order, key):
    def ident(x):
        return x.get(key) if key and isinstance(x, dict) else x
    pos = {}
    for i, o in enumerate(order):
        pos[json.dumps(ident(o) if key else o, sort_keys=True)] = i
    ordered = sorted(range(len(items)), key=lambda i: (
        pos.get(json.dumps(ident(items[i]), sort_keys=True), len(order) + i)))
    return [items[i] for i in ordered]


# --- server-side apply (simplified field ownership) ---

def ssa_fields(obj, kind, path=()):
    """Set of field paths (tuples) an applied config sets. List items with a
    merge key are addressed by their key; atomic lists are leaves."""
    out = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if path == () and k in ("apiVersion", "kind"):
                continue
            if path == ("metadata",) and k in ("name", "namespace"):
                continue
            sub = path + (k,)
            if isinstance(v, dict) and v:
                out |= ssa_fields(v, kind, sub)
            elif isinstance(v, list):
                strategy, key = smp_meta(kind, sub)
                if strategy == "merge" and key:
                    for e in v:
                        if isinstance(e, dict) and key in e:
                            ek = sub + ("k:" + json.dumps({key: e[key]}, separators=(",", ":")),)
                            out.add(ek)
                            out |= ssa_fields(e, kind, ek)
                elif strategy == "merge":
                    for e in v:
                        out.add(sub + ("v:" + json.dumps(e, separators=(",", ":")),))
                else:
                    out.add(sub)
            else:
                out.add(sub)
    return out


def _ssa_remove(obj, path):
    cur = obj
    for i, p in enumerate(path[:-1]):
        if isinstance(cur, dict):
            cur = cur.get(p)
        elif isinstance(cur, list) and p.startswith("k:"):
            (k, v), = json.loads(p[2:]).items()
            cur = next((e for e in cur if isinstance(e, dict) and e.get(k) == v), None)
        else:
            return
        if cur is None:
            return
    last = path[-1]
    if isinstance(cur, dict):
        cur.pop(last, None)
    elif isinstance(cur, list):
        if last.startswith("k:"):
            (k, v), = json.loads(last[2:]).items()
            cur[:] = [e for e in cur if not (isinstance(e, dict) and e.get(k) == v)]
        elif last.startswith("v:"):
            val = json.loads(last[2:])
            cur[:] = [e for e in cur if e != val]


def _ssa_value(obj, path):
    cur = obj
    for p in path:
        if isinstance(cur, dict):
            cur = cur.get(p)
        elif isinstance(cur, list) and p.startswith("k:"):
            (k, v), = json.loads(p[2:]).items()
            cur = next((e for e in cur if isinstance(e, dict) and e.get(k) == v), None)
        elif isinstance(cur, list) and p.startswith("v:"):
            return json.loads(p[2:]) in cur
        else:
            return None
        if cur is None:
            return None
    return cur


def fields_v1(paths):
    root = {}
    for p in sorted(paths):
        cur = root
        for part in p:
            if part.startswith("k:") or part.startswith("v:"):
                name = part
            else:
                name = "f:" + part
            cur = cur.setdefault(name, {})
    return root


# --------------------------------------------------------------------------
# Store

class WatchEvent:
    __slots__ = ("rv", "rtkey", "ns", "type", "obj", "prev")

    def __init__(self, rv, rtkey, ns, etype, obj, prev):
        self.rv = rv
        self.rtkey = rtkey
        self.ns = ns
        self.type = etype
        self.obj = obj
        self.prev = prev


META_ORDER = ["name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
              "generation", "creationTimestamp", "deletionTimestamp",
              "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
              "finalizers", "managedFields"]


def normalize(obj, rt):
    """Key order as a real server writes it; objects in the store are never mutated."""
    out = {"kind": rt.kind, "apiVersion": rt.api_version}
    meta = obj.get("metadata") or {}
    m = {}
    for k in META_ORDER:
        if k in meta and meta[k] is not None:
            m[k] = meta[k]
    for k, v in meta.items():
        if k not in m and v is not None:
            m[k] = v
    out["metadata"] = m
    for k, v in obj.items():
        if k not in ("kind", "apiVersion", "metadata"):
            out[k] = v
    return out


class Store:
    def __init__(self, history=1000):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.rv = 0
        self.objects = {rt.key: {} for rt in RESOURCES}   # key -> {(ns, name): obj}
        self.sorted_keys = {rt.key: None for rt in RESOURCES}
        self.history = collections.deque()
        self.history_max = history
        self.compacted_rv = 0          # events with rv <= this are gone
        self.watch_epoch = 0           # bumped to drop all watches
        self.bookmark_epoch = 0        # bumped to ask watches for a bookmark
        self.ssa = {}                  # (rtkey, ns, name) -> {manager: set(paths)}
        self.cluster_ips = set()
        self.node_ports = set()
        self.svc_net = ipaddress.ip_network("10.96.0.0/12")
        self.rand = random.Random(12345)

    def next_rv(self):
        self.rv += 1
        return self.rv

    def record(self, rt, etype, obj, prev=None):
        """Caller holds the lock; obj already carries its new resourceVersion."""
        rv = int(obj["metadata"]["resourceVersion"])
        ns = obj["metadata"].get("namespace", "")
        self.history.append(WatchEvent(rv, rt.key, ns, etype, obj, prev))
        while len(self.history) > self.history_max:
            ev = self.history.popleft()
            self.compacted_rv = ev.rv
        self.cond.notify_all()

    def compact(self):
        with self.lock:
            self.history.clear()
            self.compacted_rv = self.rv
            self.watch_epoch += 1
            self.cond.notify_all()

    def put(self, rt, obj):
        meta = obj["metadata"]
        k = (meta.get("namespace", ""), meta["name"])
        d = self.objects[rt.key]
        if k not in d:
            self.sorted_keys[rt.key] = None
        d[k] = obj

    def remove(self, rt, ns, name):
        self.objects[rt.key].pop((ns, name), None)
        self.sorted_keys[rt.key] = None
        self.ssa.pop((rt.key, ns, name), None)

    def keys_sorted(self, rt):
        ks = self.sorted_keys[rt.key]
        if ks is None:
            ks = sorted(self.objects[rt.key].keys())
            self.sorted_keys[rt.key] = ks
        return ks

    def alloc_cluster_ip(self):
        n = self.svc_net.num_addresses
        base = int(self.svc_net.network_address)
        for _ in range(100000):
            ip = str(ipaddress.ip_address(base + self.rand.randint(2, n - 2)))
            if ip not in self.cluster_ips:
                self.cluster_ips.add(ip)
                return ip
        raise ApiError(500, "InternalError", "range is full")

    def alloc_node_port(self):
        if len(self.node_ports) >= 2768:
            raise ApiError(422, "Invalid", "range is full")
        while True:
            p = self.rand.randint(30000, 32767)
            if p not in self.node_ports:
                self.node_ports.add(p)
                return p


# --------------------------------------------------------------------------
# Per-kind defaulting and validation

SVC_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


def svc_release(store, svc):
    spec = (svc or {}).get("spec") or {}
    ip = spec.get("clusterIP")
    if ip and ip != "None":
        store.cluster_ips.discard(ip)
    for p in spec.get("ports") or []:
        if isinstance(p, dict) and p.get("nodePort"):
            store.node_ports.discard(p["nodePort"])
    if spec.get("healthCheckNodePort"):
        store.node_ports.discard(spec["healthCheckNodePort"])


def svc_prepare(store, rt, new, old, name):
    """Default and validate a Service spec; allocate IPs and ports.
    Allocations are committed only if validation passes."""
    spec = new.setdefault("spec", {})
    if not isinstance(spec, dict):
        raise err_invalid(rt, name, [("spec", "FieldValueTypeInvalid", "Invalid value: must be an object")])
    ospec = (old or {}).get("spec") or {}
    causes = []
    stype = spec.setdefault("type", "ClusterIP")
    if stype not in SVC_TYPES:
        causes.append(("spec.type", "FieldValueNotSupported",
                       'Unsupported value: "%s": supported values: "ClusterIP", '
                       '"ExternalName", "LoadBalancer", "NodePort"' % stype))
    # Keep allocated values the client omitted on update (patchAllocatedValues).
    if old is not None:
        if not spec.get("clusterIP") and ospec.get("clusterIP") and stype != "ExternalName":
            spec["clusterIP"] = ospec["clusterIP"]
            if not spec.get("clusterIPs") and ospec.get("clusterIPs"):
                spec["clusterIPs"] = list(ospec["clusterIPs"])
        if stype in ("NodePort", "LoadBalancer"):
            oldports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                        for p in ospec.get("ports") or [] if isinstance(p, dict)}
            for p in spec.get("ports") or []:
                if isinstance(p, dict) and not p.get("nodePort"):
                    np_ = oldports.get((p.get("port"), p.get("protocol", "TCP")))
                    if np_:
                        p["nodePort"] = np_
            if not spec.get("healthCheckNodePort") and ospec.get("healthCheckNodePort") \
                    and spec.get("externalTrafficPolicy") == "Local":
                spec["healthCheckNodePort"] = ospec["healthCheckNodePort"]
        oip = ospec.get("clusterIP")
        if oip and spec.get("clusterIP") and spec["clusterIP"] != oip and \
                stype != "ExternalName" and ospec.get("type") != "ExternalName":
            causes.append(("spec.clusterIPs[0]", "FieldValueInvalid",
                           'Invalid value: []string{"%s"}: may not change once set'
                           % spec["clusterIP"]))
    ports = spec.get("ports")
    if stype != "ExternalName" and spec.get("clusterIP") != "None" and not ports:
        causes.append(("spec.ports", "FieldValueRequired", "Required value"))
    seen = set()
    new_nodeports = []
    for i, p in enumerate(ports or []):
        if not isinstance(p, dict):
            causes.append(("spec.ports[%d]" % i, "FieldValueTypeInvalid", "Invalid value: must be an object"))
            continue
        p.setdefault("protocol", "TCP")
        port = p.get("port")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            causes.append(("spec.ports[%d].port" % i, "FieldValueInvalid",
                           "Invalid value: %s: must be between 1 and 65535, inclusive"
                           % json.dumps(port)))
        if (port, p["protocol"]) in seen:
            causes.append(("spec.ports[%d]" % i, "FieldValueDuplicate",
                           'Duplicate value: core.ServicePort{Name:"%s", Protocol:"%s", Port:%s}'
                           % (p.get("name", ""), p["protocol"], port)))
        seen.add((port, p["protocol"]))
        if len(ports) > 1 and not p.get("name"):
            causes.append(("spec.ports[%d].name" % i, "FieldValueRequired", "Required value"))
        if p["protocol"] not in ("TCP", "UDP", "SCTP"):
            causes.append(("spec.ports[%d].protocol" % i, "FieldValueNotSupported",
                           'Unsupported value: "%s": supported values: "SCTP", "TCP", "UDP"'
                           % p["protocol"]))
        if "targetPort" not in p and isinstance(port, int):
            p["targetPort"] = port
        if stype in ("NodePort", "LoadBalancer") and not (
                stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is False):
            npv = p.get("nodePort")
            if npv:
                if not isinstance(npv, int) or not 30000 <= npv <= 32767:
                    causes.append(("spec.ports[%d].nodePort" % i, "FieldValueInvalid",
                                   "Invalid value: %s: provided port is not in the valid range. "
                                   "The range of valid ports is 30000-32767" % json.dumps(npv)))
                else:
                    owned = any(isinstance(q, dict) and q.get("nodePort") == npv
                                for q in ospec.get("ports") or [])
                    if npv in store.node_ports and not owned:
                        causes.append(("spec.ports[%d].nodePort" % i, "FieldValueInvalid",
                                       "Invalid value: %d: provided port is already allocated"
                                       % npv))
                    elif not owned:
                        new_nodeports.append(npv)
        elif stype in ("ClusterIP", "ExternalName"):
            p.pop("nodePort", None)
    etp = spec.get("externalTrafficPolicy")
    if stype in ("NodePort", "LoadBalancer"):
        if not etp:
            spec["externalTrafficPolicy"] = etp = "Cluster"
        if etp not in ("Cluster", "Local"):
            causes.append(("spec.externalTrafficPolicy", "FieldValueNotSupported",
                           'Unsupported value: "%s": supported values: "Cluster", "Local"' % etp))
    elif etp:
        causes.append(("spec.externalTrafficPolicy", "FieldValueInvalid",
                       'Invalid value: "%s": may only be set when `type` is \'NodePort\' or '
                       "'LoadBalancer'" % etp))
    if stype == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    else:
        spec.pop("healthCheckNodePort", None)
        if stype != "LoadBalancer" and "loadBalancerClass" in spec and old is None:
            causes.append(("spec.loadBalancerClass", "FieldValueForbidden",
                           "Forbidden: may only be used when `type` is 'LoadBalancer'"))
    if stype == "ExternalName":
        if not spec.get("externalName"):
            causes.append(("spec.externalName", "FieldValueRequired", "Required value"))
        for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            spec.pop(k, None)
    else:
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        if spec.get("sessionAffinity") not in ("None", "ClientIP"):
            causes.append(("spec.sessionAffinity", "FieldValueNotSupported",
                           'Unsupported value: "%s": supported values: "ClientIP", "None"'
                           % spec.get("sessionAffinity")))
    cip = spec.get("clusterIP")
    if cip and cip != "None" and stype != "ExternalName":
        try:
            addr = ipaddress.ip_address(cip)
            if addr not in store.svc_net:
                raise ValueError
        except ValueError:
            causes.append(("spec.clusterIPs", "FieldValueInvalid",
                           'Invalid value: []string{"%s"}: failed to allocate IP %s: the '
                           "provided IP (%s) is not in the valid range. The range of valid "
                           "IPs is 10.96.0.0/12" % (cip, cip, cip)))
        else:
            if old is None and cip in store.cluster_ips:
                causes.append(("spec.clusterIPs", "FieldValueInvalid",
                               'Invalid value: []string{"%s"}: failed to allocate IP %s: '
                               "provided IP is already allocated" % (cip, cip)))
    if causes:
        raise err_invalid(rt, name, causes)
    # Commit allocations.
    if stype != "ExternalName":
        if not cip:
            spec["clusterIP"] = store.alloc_cluster_ip()
        elif cip != "None" and old is None:
            store.cluster_ips.add(cip)
        spec["clusterIPs"] = [spec["clusterIP"]]
    for npv in new_nodeports:
        store.node_ports.add(npv)
    if stype in ("NodePort", "LoadBalancer") and not (
            stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is False):
        for p in ports or []:
            if isinstance(p, dict) and not p.get("nodePort"):
                p["nodePort"] = store.alloc_node_port()
    if stype == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local":
        if not spec.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = store.alloc_node_port()
    else:
        spec.pop("healthCheckNodePort", None)
    # Release what the old object held and the new one no longer does.
    if old is not None:
        keep = {p.get("nodePort") for p in ports or [] if isinstance(p, dict)}
        keep.add(spec.get("healthCheckNodePort"))
        for p in ospec.get("ports") or []:
            if isinstance(p, dict) and p.get("nodePort") and p["nodePort"] not in keep:
                store.node_ports.discard(p["nodePort"])
        if ospec.get("healthCheckNodePort") and ospec["healthCheckNodePort"] not in keep:
            store.node_ports.discard(ospec["healthCheckNodePort"])
        if ospec.get("clusterIP") and ospec["clusterIP"] != spec.get("clusterIP"):
            store.cluster_ips.discard(ospec["clusterIP"])
    new.setdefault("status", {}).setdefault("loadBalancer", {})


def node_prepare(store, rt, new, old, name):
    new.setdefault("spec", {})
    st = new.setdefault("status", {})
    st.setdefault("daemonEndpoints", {"kubeletEndpoint": {"Port": 0}})
    st.setdefault("nodeInfo", {"architecture": "", "bootID": "", "containerRuntimeVersion": "",
                               "kernelVersion": "", "kubeProxyVersion": "", "kubeletVersion": "",
                               "machineID": "", "operatingSystem": "", "osImage": "",
                               "systemUUID": ""})
    causes = []
    for i, t in enumerate((new["spec"].get("taints") or [])):
        if not isinstance(t, dict) or not t.get("key"):
            causes.append(("spec.taints[%d].key" % i, "FieldValueRequired", "Required value"))
            continue
        if t.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            causes.append(("spec.taints[%d].effect" % i, "FieldValueNotSupported",
                           'Unsupported value: "%s": supported values: "NoSchedule", '
                           '"PreferNoSchedule", "NoExecute"' % t.get("effect", "")))
    if causes:
        raise err_invalid(rt, name, causes)


def ns_prepare(store, rt, new, old, name):
    new.setdefault("metadata", {}).setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    new.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    st = new.setdefault("status", {})
    if old is None:
        st["phase"] = "Active"
    else:
        st.setdefault("phase", ((old.get("status") or {}).get("phase")) or "Active")


def secret_prepare(store, rt, new, old, name):
    new.setdefault("type", "Opaque")
    if "stringData" in new:
        data = new.setdefault("data", {})
        for k, v in (new.pop("stringData") or {}).items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def core_event_prepare(store, rt, new, old, name):
    new.setdefault("reportingComponent", "")
    new.setdefault("reportingInstance", "")
    if not new.get("involvedObject"):
        raise err_invalid(rt, name, [("involvedObject", "FieldValueRequired", "Required value")])


def events_v1_prepare(store, rt, new, old, name):
    if not new.get("eventTime"):
        raise err_invalid(rt, name, [("eventTime", "FieldValueRequired", "Required value")])


PREPARE = {
    ("", "services"): svc_prepare,
    ("", "nodes"): node_prepare,
    ("", "namespaces"): ns_prepare,
    ("", "secrets"): secret_prepare,
    ("", "events"): core_event_prepare,
    ("events.k8s.io", "events"): events_v1_prepare,
}

# --------------------------------------------------------------------------
# Tables (kubectl get's default output)


def col(name, typ="string", fmt="", prio=0, desc=""):
    return {"name": name, "type": typ, "format": fmt, "description": desc or name,
            "priority": prio}


def node_row(o):
    conds = {c.get("type"): c.get("status") for c in
             (o.get("status") or {}).get("conditions") or [] if isinstance(c, dict)}
    r = conds.get("Ready")
    status = "Ready" if r == "True" else "NotReady" if r == "False" else "Unknown"
    if (o.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in (o["metadata"].get("labels") or {})
                   if k.startswith("node-role.kubernetes.io/") and "/" in k)
    roles = [r for r in roles if r] or ["<none>"]
    info = (o.get("status") or {}).get("nodeInfo") or {}
    addrs = (o.get("status") or {}).get("addresses") or []

    def addr(t):
        for a in addrs:
            if isinstance(a, dict) and a.get("type") == t:
                return a.get("address", "")
        return "<none>"
    return [o["metadata"]["name"], status, ",".join(roles),
            human_age(o["metadata"].get("creationTimestamp")),
            info.get("kubeletVersion", ""), addr("InternalIP"), addr("ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def svc_row(o):
    spec = o.get("spec") or {}
    st = spec.get("type", "ClusterIP")
    ext = "<none>"
    if st == "LoadBalancer":
        ing = ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        ips = [i.get("ip") or i.get("hostname") for i in ing if isinstance(i, dict)]
        ips += spec.get("externalIPs") or []
        ext = ",".join(x for x in ips if x) or "<pending>"
    elif st == "ExternalName":
        ext = spec.get("externalName", "")
    elif spec.get("externalIPs"):
        ext = ",".join(spec["externalIPs"])
    ports = []
    for p in spec.get("ports") or []:
        if p.get("nodePort"):
            ports.append("%s:%s/%s" % (p.get("port"), p["nodePort"], p.get("protocol", "TCP")))
        else:
            ports.append("%s/%s" % (p.get("port"), p.get("protocol", "TCP")))
    sel = spec.get("selector") or {}
    return [o["metadata"]["name"], st, spec.get("clusterIP") or "<none>", ext,
            ",".join(ports) or "<none>", human_age(o["metadata"].get("creationTimestamp")),
            ",".join("%s=%s" % kv for kv in sorted(sel.items())) or "<none>"]


TABLES = {
    ("", "nodes"): ([col("Name", fmt="name"), col("Status"), col("Roles"), col("Age"),
                     col("Version"), col("Internal-IP", prio=1), col("External-IP", prio=1),
                     col("OS-Image", prio=1), col("Kernel-Version", prio=1),
                     col("Container-Runtime", prio=1)], node_row),
    ("", "services"): ([col("Name", fmt="name"), col("Type"), col("Cluster-IP"),
                        col("External-IP"), col("Port(s)"), col("Age"),
                        col("Selector", prio=1)], svc_row),
    ("", "namespaces"): ([col("Name", fmt="name"), col("Status"), col("Age")],
                         lambda o: [o["metadata"]["name"],
                                    (o.get("status") or {}).get("phase", ""),
                                    human_age(o["metadata"].get("creationTimestamp"))]),
    ("", "configmaps"): ([col("Name", fmt="name"), col("Data", "integer"), col("Age")],
                         lambda o: [o["metadata"]["name"],
                                    len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                                    human_age(o["metadata"].get("creationTimestamp"))]),
    ("", "secrets"): ([col("Name", fmt="name"), col("Type"), col("Data", "integer"), col("Age")],
                      lambda o: [o["metadata"]["name"], o.get("type", ""),
                                 len(o.get("data") or {}),
                                 human_age(o["metadata"].get("creationTimestamp"))]),
    ("coordination.k8s.io", "leases"): (
        [col("Name", fmt="name"), col("Holder"), col("Age")],
        lambda o: [o["metadata"]["name"], (o.get("spec") or {}).get("holderIdentity", ""),
                   human_age(o["metadata"].get("creationTimestamp"))]),
    ("", "events"): (
        [col("Last Seen"), col("Type"), col("Reason"), col("Object"), col("Message"),
         col("Name", fmt="name", prio=1)],
        lambda o: [human_age(o.get("lastTimestamp") or o.get("eventTime") or
                             o["metadata"].get("creationTimestamp")),
                   o.get("type", ""), o.get("reason", ""),
                   "%s/%s" % ((o.get("involvedObject") or {}).get("kind", "").lower(),
                              (o.get("involvedObject") or {}).get("name", "")),
                   o.get("message", ""), o["metadata"]["name"]]),
}


def table_for(rt, objs, list_meta, include):
    cols, rowf = TABLES.get(rt.key, (
        [col("Name", fmt="name"), col("Created At", "date")],
        lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]))
    rows = []
    for o in objs:
        row = {"cells": rowf(o)}
        if include == "Object":
            row["object"] = o
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": o["metadata"]}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": cols, "rows": rows}


# --------------------------------------------------------------------------
# API operations (independent of HTTP)

GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class Api:
    def __init__(self, cfg):
        self.cfg = cfg
        self.store = Store(cfg.history)
        self.gen_rand = random.Random()

    # -- helpers
    def _ns_check(self, rt, ns):
        if rt.namespaced and ns is not None:
            if ("", ns) not in self.store.objects[("", "namespaces")]:
                raise err_ns_not_found(ns)

    def get(self, rt, ns, name):
        with self.store.lock:
            o = self.store.objects[rt.key].get((ns or "", name))
            if o is None:
                raise err_not_found(rt, name)
            return o

    def _finish(self, rt, obj, old, etype, dry):
        """Store obj (dict already complete) with a new resourceVersion."""
        st = self.store
        if dry:
            return obj
        obj["metadata"]["resourceVersion"] = str(st.next_rv())
        obj = normalize(obj, rt)
        st.put(rt, obj)
        st.record(rt, etype, obj, old)
        return obj

    def create(self, rt, ns, body, dry=False, manager=None, apply_fields=None):
        if not isinstance(body, dict):
            raise err_bad_request("the body of the request was in an unknown format")
        body = copy.deepcopy(body)
        self._check_kind(rt, body)
        meta = body.get("metadata")
        if meta is None or not isinstance(meta, dict):
            meta = body["metadata"] = {}
        if rt.namespaced:
            bns = meta.get("namespace")
            if bns and ns and bns != ns:
                raise err_bad_request("the namespace of the provided object does not match "
                                      "the namespace sent on the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        with self.store.lock:
            name = meta.get("name")
            if not name and meta.get("generateName"):
                for _ in range(100):
                    cand = meta["generateName"] + "".join(
                        self.gen_rand.choice(GENERATE_ALPHABET) for _ in range(5))
                    if (ns or "", cand) not in self.store.objects[rt.key]:
                        break
                name = meta["name"] = cand
            causes = check_name(rt, name)
            if meta.get("generateName") and causes:
                causes = check_name(rt, name, "metadata.generateName")
            causes += check_labels(meta.get("labels"), "metadata.labels")
            causes += check_labels(meta.get("annotations"), "metadata.annotations")
            if causes:
                raise err_invalid(rt, name or meta.get("generateName", ""), causes)
            self._ns_check(rt, ns)
            if (ns or "", name) in self.store.objects[rt.key]:
                raise err_already_exists(rt, name)
            if meta.get("resourceVersion"):
                raise err_bad_request("resourceVersion should not be set on objects to be created")
            for k in ("uid", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
                meta.pop(k, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            meta.pop("generation", None)
            meta.pop("managedFields", None)
            if rt.status and rt.key == ("", "services"):
                body.pop("status", None)
            prep = PREPARE.get(rt.key)
            if prep:
                prep(self.store, rt, body, None, name)
            if dry and rt.key == ("", "services"):
                svc_release(self.store, body)
            self._managed(rt, body, manager, "Apply" if apply_fields is not None else "Update",
                          apply_fields, None)
            return self._finish(rt, body, None, "ADDED", dry)

    def _check_kind(self, rt, body):
        k, av = body.get("kind"), body.get("apiVersion")
        if k and k != rt.kind:
            raise err_bad_request("the API version in the data (%s) does not match the expected "
                                  "API version (%s)" % (av, rt.api_version) if av and
                                  av != rt.api_version else
                                  "kind %s does not match expected %s" % (k, rt.kind))
        if av and av != rt.api_version:
            raise err_bad_request("the API version in the data (%s) does not match the expected "
                                  "API version (%s)" % (av, rt.api_version))

    def _managed(self, rt, obj, manager, operation, apply_fields, old):
        if not manager:
            if old is not None and "managedFields" in (old.get("metadata") or {}):
                obj["metadata"]["managedFields"] = old["metadata"]["managedFields"]
            return
        mf = [e for e in ((old or {}).get("metadata") or {}).get("managedFields") or []
              if not (e.get("manager") == manager and e.get("operation") == operation)]
        entry = {"manager": manager, "operation": operation, "apiVersion": rt.api_version,
                 "time": now_rfc3339(), "fieldsType": "FieldsV1"}
        if apply_fields is not None:
            entry["fieldsV1"] = fields_v1(apply_fields)
        else:
            entry["fieldsV1"] = {}
        mf.append(entry)
        obj["metadata"]["managedFields"] = mf

    def update(self, rt, ns, name, body, subresource=None, dry=False, manager=None,
               expect_rv=None, from_patch=False, apply_fields=None, allow_create=False):
        """PUT semantics. body is the full desired object."""
        if not isinstance(body, dict):
            raise err_bad_request("the body of the request was in an unknown format")
        with self.store.lock:
            old = self.store.objects[rt.key].get((ns or "", name))
            if old is None:
                if allow_create and subresource is None:
                    return self.create(rt, ns, body, dry, manager, apply_fields)
                raise err_not_found(rt, name)
            body = copy.deepcopy(body)
            self._check_kind(rt, body)
            meta = body.get("metadata")
            if not isinstance(meta, dict):
                meta = body["metadata"] = {}
            if meta.get("name") and meta["name"] != name:
                raise err_bad_request("the name of the object (%s) does not match the name on "
                                      "the URL (%s)" % (meta["name"], name))
            if rt.namespaced and meta.get("namespace") and meta["namespace"] != ns:
                raise err_bad_request("the namespace of the provided object does not match the "
                                      "namespace sent on the request")
            rv = meta.get("resourceVersion")
            if expect_rv is not None:
                rv = expect_rv
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise err_conflict(rt, name)
            omd = old["metadata"]
            meta["name"] = name
            if rt.namespaced:
                meta["namespace"] = ns
            for k in ("uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation", "generateName"):
                if k in omd:
                    meta[k] = omd[k]
                else:
                    meta.pop(k, None)
            meta.pop("selfLink", None)
            if rt.status:
                if subresource == "status":
                    # Status writes keep spec; metadata other than labels,
                    # annotations, finalizers and ownerReferences is kept too.
                    for k, v in old.items():
                        if k not in ("metadata", "status", "kind", "apiVersion"):
                            body[k] = copy.deepcopy(v)
                    for k in list(body.keys()):
                        if k not in old and k not in ("metadata", "status", "kind", "apiVersion"):
                            del body[k]
                else:
                    if "status" in old:
                        body["status"] = copy.deepcopy(old["status"])
                    else:
                        body.pop("status", None)
            causes = check_labels(meta.get("labels"), "metadata.labels")
            causes += check_labels(meta.get("annotations"), "metadata.annotations")
            if omd.get("deletionTimestamp"):
                newf = set(meta.get("finalizers") or [])
                if newf - set(omd.get("finalizers") or []):
                    causes.append(("metadata.finalizers", "FieldValueForbidden",
                                   "Forbidden: no new finalizers can be added if the object is "
                                   "being deleted, found new finalizers %s" % json.dumps(
                                       sorted(newf - set(omd.get("finalizers") or [])))))
            if causes:
                raise err_invalid(rt, name, causes)
            prep = PREPARE.get(rt.key)
            if prep and subresource is None:
                prep(self.store, rt, body, old, name)
            elif rt.key == ("", "services") and subresource == "status":
                body.setdefault("status", {}).setdefault("loadBalancer", {})
            if self.cfg.generation_kinds and rt.kind in self.cfg.generation_kinds:
                g = omd.get("generation", 1)
                if subresource is None and body.get("spec") != old.get("spec"):
                    g += 1
                meta["generation"] = g
            self._managed(rt, body, manager, "Apply" if apply_fields is not None else "Update",
                          apply_fields, old)
            # No-op writes keep the resourceVersion and emit no event.
            cmp_new = dict(body)
            cmp_new["metadata"] = {k: v for k, v in meta.items() if k not in (
                "resourceVersion", "managedFields")}
            cmp_old = {k: v for k, v in old.items() if k not in ("kind", "apiVersion")}
            cmp_old["metadata"] = {k: v for k, v in omd.items() if k not in (
                "resourceVersion", "managedFields")}
            cmp_new.pop("kind", None)
            cmp_new.pop("apiVersion", None)
            if cmp_new == cmp_old:
                return old
            if omd.get("deletionTimestamp") and not meta.get("finalizers"):
                if dry:
                    return normalize(body, rt)
                return self._delete_now(rt, ns, name, body, old)
            return self._finish(rt, body, old, "MODIFIED", dry)

    def _delete_now(self, rt, ns, name, final, old):
        st = self.store
        final = copy.deepcopy(final)
        final["metadata"]["resourceVersion"] = str(st.next_rv())
        final = normalize(final, rt)
        st.remove(rt, ns or "", name)
        if rt.key == ("", "services"):
            svc_release(st, old)
        if rt.key == ("", "namespaces"):
            for ort in RESOURCES:
                if ort.namespaced:
                    for (ons, oname), o in list(st.objects[ort.key].items()):
                        if ons == name:
                            o2 = copy.deepcopy(o)
                            o2["metadata"]["resourceVersion"] = str(st.next_rv())
                            st.remove(ort, ons, oname)
                            if ort.key == ("", "services"):
                                svc_release(st, o)
                            st.record(ort, "DELETED", normalize(o2, ort), o)
        st.record(rt, "DELETED", final, old)
        return final

    def delete(self, rt, ns, name, opts=None, dry=False):
        opts = opts or {}
        with self.store.lock:
            old = self.store.objects[rt.key].get((ns or "", name))
            if old is None:
                raise err_not_found(rt, name)
            pre = opts.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise err_conflict(rt, name, "Precondition failed: UID in precondition: %s, UID "
                                   "in object meta: %s" % (pre["uid"], old["metadata"]["uid"]))
            if pre.get("resourceVersion") and pre["resourceVersion"] != \
                    old["metadata"]["resourceVersion"]:
                raise err_conflict(rt, name, "Precondition failed: ResourceVersion in "
                                   "precondition: %s, ResourceVersion in object meta: %s" % (
                                       pre["resourceVersion"], old["metadata"]["resourceVersion"]))
            fins = list(old["metadata"].get("finalizers") or [])
            policy = opts.get("propagationPolicy")
            if policy == "Orphan" or opts.get("orphanDependents") is True:
                if "orphan" not in fins:
                    fins.append("orphan")
            elif policy == "Foreground":
                if "foregroundDeletion" not in fins:
                    fins.append("foregroundDeletion")
            if fins:
                if old["metadata"].get("deletionTimestamp"):
                    return old
                new = copy.deepcopy(old)
                new["metadata"]["deletionTimestamp"] = now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                new["metadata"]["finalizers"] = fins
                if self.cfg.generation_kinds and rt.kind in self.cfg.generation_kinds:
                    new["metadata"]["generation"] = new["metadata"].get("generation", 1) + 1
                return self._finish(rt, new, old, "MODIFIED", dry)
            if dry:
                return old
            return self._delete_now(rt, ns, name, old, old)

    def patch(self, rt, ns, name, ptype, raw, subresource=None, dry=False, manager=None,
              force=False):
        try:
            if ptype == "application/apply-patch+yaml":
                patch = parse_yaml_or_json(raw)
            else:
                patch = json.loads(raw.decode("utf-8") if raw else "null")
        except (ValueError, UnicodeDecodeError) as e:
            raise err_bad_request("error decoding patch: %s" % e)
        with self.store.lock:
            old = self.store.objects[rt.key].get((ns or "", name))
            if ptype == "application/apply-patch+yaml":
                return self._apply(rt, ns, name, patch, old, subresource, dry, manager, force)
            if old is None:
                raise err_not_found(rt, name)
            base = {k: v for k, v in old.items()}
            try:
                if ptype == "application/json-patch+json":
                    new = json_patch(base, patch)
                elif ptype == "application/merge-patch+json":
                    if not isinstance(patch, dict):
                        raise PatchError("merge patch must be a JSON object")
                    new = json_merge_patch(base, patch)
                elif ptype == "application/strategic-merge-patch+json":
                    if not isinstance(patch, dict):
                        raise PatchError("strategic merge patch must be a JSON object")
                    new = strategic_merge(base, patch, rt.kind)
                else:
                    raise ApiError(415, "UnsupportedMediaType",
                                   'the body of the request was in an unknown format - accepted '
                                   'media types include: application/json-patch+json, '
                                   'application/merge-patch+json, application/apply-patch+yaml, '
                                   'application/strategic-merge-patch+json')
            except PatchError as e:
                raise ApiError(422, "Invalid", str(e)) if ptype.startswith(
                    "application/json-patch") else err_bad_request(str(e))
            if not isinstance(new, dict):
                raise err_bad_request("patch produced a non-object")
            nmeta = new.get("metadata") or {}
            expect = nmeta.get("resourceVersion")
            if expect == old["metadata"]["resourceVersion"]:
                expect = None
            if isinstance(nmeta, dict):
                nmeta["resourceVersion"] = old["metadata"]["resourceVersion"] \
                    if expect is None else expect
            if isinstance(nmeta, dict) and nmeta.get("uid") and nmeta["uid"] != \
                    old["metadata"]["uid"]:
                raise err_conflict(rt, name, "Precondition failed: UID in precondition: %s, UID "
                                   "in object meta: %s" % (nmeta["uid"], old["metadata"]["uid"]))
            return self.update(rt, ns, name, new, subresource, dry, manager or "kubectl-patch",
                               from_patch=True)

    def _apply(self, rt, ns, name, cfg, old, subresource, dry, manager, force):
        if not manager:
            raise err_bad_request("PATCH, application/apply-patch+yaml requests must have a "
                                  "fieldManager")
        if not isinstance(cfg, dict):
            raise err_bad_request("error decoding YAML: apply patch must be an object")
        self._check_kind(rt, cfg)
        if not cfg.get("kind") or not cfg.get("apiVersion"):
            raise err_bad_request("invalid object type: /, Kind=")
        cmeta = cfg.get("metadata") or {}
        if cmeta.get("name") and cmeta["name"] != name:
            raise err_bad_request("the name of the object (%s) does not match the name on the "
                                  "URL (%s)" % (cmeta["name"], name))
        fields = ssa_fields(cfg, rt.kind)
        if subresource == "status":
            fields = {f for f in fields if f[0] in ("status",)}
        key = (rt.key, ns or "", name)
        if old is None:
            if subresource:
                raise err_not_found(rt, name)
            body = copy.deepcopy(cfg)
            body.setdefault("metadata", {})["name"] = name
            res = self.create(rt, ns, body, dry, manager, fields)
            if not dry:
                self.store.ssa[key] = {manager: fields}
            return res
        owners = self.store.ssa.setdefault(key, {})
        if not force:
            conflicts = []
            for other, ofields in owners.items():
                if other == manager:
                    continue
                for f in fields & ofields:
                    if _ssa_value(old, f) != _ssa_value(cfg, f) and \
                            not f[-1].startswith("k:") and not f[-1].startswith("v:"):
                        conflicts.append((other, f))
            if conflicts:
                causes = [{"reason": "FieldManagerConflict",
                           "message": 'conflict with "%s"' % o,
                           "field": "." + ".".join(p for p in f)} for o, f in conflicts]
                msg = "Apply failed with %d conflict%s: %s" % (
                    len(conflicts), "" if len(conflicts) == 1 else "s",
                    "; ".join('conflict with "%s": .%s' % (o, ".".join(f))
                              for o, f in conflicts))
                raise ApiError(409, "Conflict", msg, {"causes": causes})
        else:
            for other in list(owners):
                if other != manager:
                    owners[other] = owners[other] - fields
        prev = owners.get(manager, set())
        new = strategic_merge({k: v for k, v in old.items()}, _strip_directives(cfg), rt.kind)
        others = set().union(*[f for m, f in owners.items() if m != manager]) \
            if len(owners) > 1 or (owners and manager not in owners) else set()
        for f in sorted(prev - fields, key=len):
            if f not in others:
                _ssa_remove(new, f)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        res = self.update(rt, ns, name, new, subresource, dry, manager, apply_fields=fields)
        if not dry:
            owners[manager] = fields
        return res

    def list(self, rt, ns, label_sel, field_sel, limit, cont):
        """Returns (items, list_meta)."""
        st = self.store
        with st.lock:
            start_after = None
            list_rv = st.rv
            if cont:
                try:
                    tok = json.loads(base64.urlsafe_b64decode(cont.encode() + b"==").decode())
                    start_after = tuple(tok["start"])
                    list_rv = int(tok["rv"])
                except (ValueError, KeyError, TypeError):
                    raise err_bad_request("continue key is not valid: illegal base64 data")
                if list_rv < st.compacted_rv and self.cfg.expire_continue:
                    raise err_gone("The provided continue parameter is too old to display a "
                                   "consistent list result. You can start a new list without "
                                   "the continue parameter, or use the continue token in this "
                                   "response to retrieve the remainder of the results. "
                                   "Continuing with the provided token results in an "
                                   "inconsistent list - objects that were created, modified, or "
                                   "deleted between the time the first chunk was returned and "
                                   "now may show up in the list.")
            keys = st.keys_sorted(rt)
            objs = st.objects[rt.key]
            lo = 0
            hi = len(keys)
            if ns is not None and rt.namespaced:
                lo = bisect.bisect_left(keys, (ns, ""))
                hi = bisect.bisect_left(keys, (ns + "\x00", ""))
            if start_after is not None:
                lo = max(lo, bisect.bisect_right(keys, start_after))
            items = []
            nxt = None
            filtered = not label_sel.empty() or not field_sel.empty()
            i = lo
            while i < hi:
                o = objs[keys[i]]
                if (label_sel.empty() or label_sel.matches(o["metadata"].get("labels"))) and \
                        (field_sel.empty() or field_sel.matches(o)):
                    if limit and len(items) >= limit:
                        nxt = keys[i - 1] if i > lo else start_after
                        break
                    items.append(o)
                i += 1
            meta = {"resourceVersion": str(list_rv)}
            if nxt is not None:
                last = items[-1]["metadata"]
                tok = {"v": "meta.k8s.io/v1", "rv": list_rv,
                       "start": [last.get("namespace", ""), last["name"]]}
                meta["continue"] = base64.urlsafe_b64encode(
                    json.dumps(tok).encode()).decode().rstrip("=")
                if not filtered:
                    meta["remainingItemCount"] = hi - i
            return items, meta


def parse_yaml_or_json(raw):
    text = raw.decode("utf-8") if raw else ""
    s = text.strip()
    if s.startswith("{"):
        return json.loads(s)
    return mini_yaml(text)


def mini_yaml(text):
    """A small YAML subset (block maps, block lists, scalars, flow JSON) for
    apply-patch+yaml bodies from non-kubectl clients; kubectl sends JSON."""
    lines = []
    for raw in text.splitlines():
        if raw.strip() in ("---", "") or raw.lstrip().startswith("#"):
            continue
        lines.append(raw)
    pos = [0]

    def scalar(v):
        v = v.strip()
        if v == "" or v in ("~", "null"):
            return None
        if v[0] in "{[\"":
            try:
                return json.loads(v)
            except ValueError:
                pass
        if v[0] == "'" and v[-1] == "'":
            return v[1:-1].replace("''", "'")
        if v in ("true", "True"):
            return True
        if v in ("false", "False"):
            return False
        if re.match(r"^-?[0-9]+$", v):
            return int(v)
        if re.match(r"^-?[0-9]*\.[0-9]+$", v):
            return float(v)
        return v

    def indent(line):
        return len(line) - len(line.lstrip(" "))

    def parse_block(ind):
        if pos[0] >= len(lines):
            return None
        first = lines[pos[0]]
        if first.strip().startswith("- ") or first.strip() == "-":
            out = []
            while pos[0] < len(lines) and indent(lines[pos[0]]) == ind and \
                    lines[pos[0]].strip().startswith("-"):
                content = lines[pos[0]].strip()[1:]
                if not content.strip():
                    pos[0] += 1
                    out.append(parse_block(indent(lines[pos[0]])) if pos[0] < len(lines) else None)
                    continue
                # rewrite "- key: v" as a map line at deeper indentation
                lines[pos[0]] = " " * (ind + 2) + content.strip()
                if ":" in content and not content.strip()[0] in "{[\"'":
                    out.append(parse_block(ind + 2))
                else:
                    pos[0] += 1
                    out.append(scalar(content))
            return out
        out = {}
        while pos[0] < len(lines) and indent(lines[pos[0]]) == ind:
            line = lines[pos[0]].strip()
            m = re.match(r'^("[^"]*"|[^:]+):(\s+(.*))?$', line)
            if not m:
                raise ValueError("cannot parse YAML line: %s" % line)
            key = m.group(1).strip('"')
            rest = (m.group(3) or "").strip()
            pos[0] += 1
            if rest in ("", "|", ">"):
                if pos[0] < len(lines) and (indent(lines[pos[0]]) > ind or (
                        indent(lines[pos[0]]) == ind and lines[pos[0]].strip().startswith("-"))):
                    out[key] = parse_block(indent(lines[pos[0]]))
                else:
                    out[key] = None
            else:
                out[key] = scalar(rest)
        return out

    if not lines:
        return None
    return parse_block(indent(lines[0]))


# --------------------------------------------------------------------------
# Protobuf request bodies. kubectl >= 1.32 sends typed creates (kubectl create
# namespace/configmap/secret/service) as application/vnd.kubernetes.protobuf. We
# decode the types those commands send; responses are always JSON, which the
# client accepts (it asks for "protobuf,json").

PB_TIME = "Time"
PB = {
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "bytes"),
                3: ("contentEncoding", "str"), 4: ("contentType", "str")},
    "TypeMeta": {1: ("apiVersion", "str"), 2: ("kind", "str")},
    "ObjectMeta": {1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"),
                   4: ("selfLink", "str"), 5: ("uid", "str"), 6: ("resourceVersion", "str"),
                   7: ("generation", "int"), 8: ("creationTimestamp", PB_TIME),
                   9: ("deletionTimestamp", PB_TIME), 10: ("deletionGracePeriodSeconds", "int"),
                   11: ("labels", "map:str"), 12: ("annotations", "map:str"),
                   13: ("ownerReferences", "[]OwnerReference"), 14: ("finalizers", "[]str")},
    "OwnerReference": {1: ("kind", "str"), 3: ("name", "str"), 4: ("uid", "str"),
                       5: ("apiVersion", "str"), 6: ("controller", "bool"),
                       7: ("blockOwnerDeletion", "bool")},
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec"),
                  3: ("status", "NamespaceStatus")},
    "NamespaceSpec": {1: ("finalizers", "[]str")},
    "NamespaceStatus": {1: ("phase", "str")},
    "ConfigMap": {1: ("metadata", "ObjectMeta"), 2: ("data", "map:str"),
                  3: ("binaryData", "map:bytes"), 4: ("immutable", "bool")},
    "Secret": {1: ("metadata", "ObjectMeta"), 2: ("data", "map:bytes"), 3: ("type", "str"),
               4: ("stringData", "map:str"), 5: ("immutable", "bool")},
    "Service": {1: ("metadata", "ObjectMeta"), 2: ("spec", "ServiceSpec"),
                3: ("status", "ServiceStatus")},
    "ServiceSpec": {1: ("ports", "[]ServicePort"), 2: ("selector", "map:str"),
                    3: ("clusterIP", "str"), 4: ("type", "str"), 5: ("externalIPs", "[]str"),
                    7: ("sessionAffinity", "str"), 8: ("loadBalancerIP", "str"),
                    9: ("loadBalancerSourceRanges", "[]str"), 10: ("externalName", "str"),
                    11: ("externalTrafficPolicy", "str"), 12: ("healthCheckNodePort", "int"),
                    13: ("publishNotReadyAddresses", "bool"), 17: ("ipFamilyPolicy", "str"),
                    18: ("clusterIPs", "[]str"), 19: ("ipFamilies", "[]str"),
                    20: ("allocateLoadBalancerNodePorts", "bool"),
                    21: ("loadBalancerClass", "str"), 22: ("internalTrafficPolicy", "str"),
                    23: ("trafficDistribution", "str")},
    "ServicePort": {1: ("name", "str"), 2: ("protocol", "str"), 3: ("port", "int"),
                    4: ("targetPort", "IntOrString"), 5: ("nodePort", "int"),
                    6: ("appProtocol", "str")},
    "IntOrString": {1: ("type", "int"), 2: ("intVal", "int"), 3: ("strVal", "str")},
    "ServiceStatus": {1: ("loadBalancer", "LoadBalancerStatus")},
    "LoadBalancerStatus": {1: ("ingress", "[]LoadBalancerIngress")},
    "LoadBalancerIngress": {1: ("ip", "str"), 2: ("hostname", "str"), 4: ("ipMode", "str")},
    "Time": {1: ("seconds", "int"), 2: ("nanos", "int")},
    "MapEntry": {1: ("key", "str"), 2: ("value", "bytes")},
}
PB_KINDS = {"Namespace", "ConfigMap", "Secret", "Service"}


def _pb_read_varint(buf, i):
    shift = 0
    val = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        val |= (b & 0x7F) << shift
        if not b & 0x80:
            return val, i
        shift += 7


def _pb_fields(buf):
    i = 0
    while i < len(buf):
        key, i = _pb_read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _pb_read_varint(buf, i)
        elif wt == 2:
            n, i = _pb_read_varint(buf, i)
            v = bytes(buf[i:i + n])
            i += n
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        yield num, wt, v


def _pb_decode(buf, mtype):
    schema = PB[mtype]
    out = {}
    for num, wt, v in _pb_fields(buf):
        if num not in schema:
            continue
        name, typ = schema[num]
        rep = typ.startswith("[]")
        base = typ[2:] if rep else typ
        if base.startswith("map:"):
            ent = {}
            for n2, _, v2 in _pb_fields(v):
                ent[n2] = v2
            k = ent.get(1, b"").decode()
            raw = ent.get(2, b"")
            out.setdefault(name, {})[k] = raw.decode() if base == "map:str" else \
                base64.b64encode(raw).decode()
            continue
        if base == "str":
            val = v.decode()
        elif base == "bytes":
            val = v
        elif base == "int":
            val = v - (1 << 64) if v >= 1 << 63 else v
        elif base == "bool":
            val = bool(v)
        elif base == PB_TIME:
            t = _pb_decode(v, "Time")
            sec = t.get("seconds", 0)
            val = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec)) if sec else None
        elif base == "IntOrString":
            t = _pb_decode(v, "IntOrString")
            val = t.get("strVal", "") if t.get("type") == 1 else t.get("intVal", 0)
        else:
            val = _pb_decode(v, base)
        if rep:
            out.setdefault(name, []).append(val)
        else:
            out[name] = val
    # Go writes every optional scalar; JSON omits the empty ones.
    return {k: v for k, v in out.items() if v not in ("", 0, False, None, {}, []) or
            k in ("port",)}


def decode_k8s_protobuf(raw):
    if raw[:4] != b"k8s\x00":
        raise ValueError("missing protobuf envelope")
    unk = _pb_decode(raw[4:], "Unknown")
    tm = unk.get("typeMeta") or {}
    kind = tm.get("kind", "")
    if kind not in PB_KINDS:
        raise ValueError("protobuf body of kind %r is not supported by this double" % kind)
    obj = _pb_decode(unk.get("raw", b""), kind)
    out = {"kind": kind, "apiVersion": tm.get("apiVersion", "v1")}
    out.update(obj)
    return out


# --------------------------------------------------------------------------
# Config, faults, logging

class Config:
    def __init__(self):
        self.version = "1.33"
        self.history = 1000
        self.bookmark_interval = 60.0
        self.token = None
        self.token_file = None
        self.extra_tokens = {}  # token -> user name, for per-client request logs
        self.tls = False
        self.expire_continue = True
        self.generation_kinds = set()
        self.request_log = None
        self.min_watch_timeout = 1800


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []      # dicts: status, every, probability, count, retryAfter, path, method
        self.latency = 0.0
        self.counter = 0
        self.rand = random.Random(7)

    def set(self, spec):
        with self.lock:
            if spec.get("clear"):
                self.rules = []
                self.latency = 0.0
            if "latencyMs" in spec:
                self.latency = float(spec["latencyMs"]) / 1000.0
            if "status" in spec:
                r = dict(spec)
                r["seen"] = 0
                r["fired"] = 0
                self.rules.append(r)

    def pick(self, method, path):
        with self.lock:
            for r in self.rules:
                if r.get("path") and not re.search(r["path"], path):
                    continue
                if r.get("method") and r["method"].upper() != method:
                    continue
                if r.get("count") is not None and r["fired"] >= int(r["count"]):
                    continue
                r["seen"] += 1
                hit = False
                if r.get("every"):
                    hit = r["seen"] % int(r["every"]) == 0
                elif r.get("probability") is not None:
                    hit = self.rand.random() < float(r["probability"])
                else:
                    hit = True
                if hit:
                    r["fired"] += 1
                    return r
            return None


KUBE_CODES = {500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
              429: "TooManyRequests", 502: "InternalError"}

# --------------------------------------------------------------------------
# HTTP


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-double"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    # -- plumbing
    def send_response(self, code, message=None):
        # Log before the first byte goes out: a client that reads the
        # request log right after its response must find the entry.
        self._status = code
        self._log_once()
        super().send_response(code, message)

    def _log_once(self):
        if getattr(self, "_logged", True):
            return
        self._logged = True
        srv = self.server.kube
        srv.log_request(self._log_method, self._log_path, self._log_query,
                        self._status, self.headers.get("User-Agent", ""),
                        time.time() - self._log_t0,
                        getattr(self, "_log_user", "default"))

    def _send_json(self, code, body, headers=None):
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(data)))
        # Headers and body in one write, as the real API server sends a
        # small reply: two writes would wake the client twice per request
        # and inflate its measured CPU.
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(data)
        self.flush_headers()
        self._status = code

    def _send_error(self, e):
        self._send_json(e.code, e.status(), e.headers)

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            out = b""
            while True:
                line = self.rfile.readline()
                n = int(line.strip().split(b";")[0] or b"0", 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _auth_ok(self):
        srv = self.server.kube
        tok = srv.current_token()
        if tok is None:
            return True
        h = self.headers.get("Authorization", "")
        if not h.startswith("Bearer "):
            return False
        given = h[7:].strip()
        if secrets.compare_digest(given, tok):
            return True
        for extra, user in srv.cfg.extra_tokens.items():
            if secrets.compare_digest(given, extra):
                self._log_user = user
                return True
        return False

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_OPTIONS(self):
        self._dispatch("OPTIONS")

    def _dispatch(self, method):
        t0 = time.time()
        self._status = 0
        u = urllib.parse.urlsplit(self.path)
        self._log_t0, self._log_method = t0, method
        self._log_path, self._log_query = u.path, u.query
        self._logged = False
        self._log_user = "default"
        path = u.path
        q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        query = {k: v[-1] for k, v in q.items()}
        srv = self.server.kube
        body = b""
        try:
            body = self._read_body()
            if path.startswith("/_control/"):
                self._control(method, path, query, body)
                return
            if not self._auth_ok():
                self._send_json(401, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                      "status": "Failure", "message": "Unauthorized",
                                      "reason": "Unauthorized", "code": 401})
                return
            if srv.faults.latency:
                time.sleep(srv.faults.latency)
            rule = srv.faults.pick(method, path)
            if rule is not None:
                code = int(rule["status"])
                hdr = {}
                if rule.get("retryAfter") is not None or code == 429:
                    hdr["Retry-After"] = str(rule.get("retryAfter", 1))
                reason = KUBE_CODES.get(code, "InternalError")
                msg = rule.get("message") or ("Too many requests, please try again later."
                                              if code == 429 else "injected fault")
                e = ApiError(code, reason, msg, {"retryAfterSeconds": int(
                    rule.get("retryAfter", 1))} if code == 429 else None, hdr)
                self._send_error(e)
                return
            self._route(method, path, query, body)
        except ApiError as e:
            try:
                self._send_error(e)
            except OSError:
                pass
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # report, keep serving
            import traceback
            traceback.print_exc()
            try:
                self._send_error(ApiError(500, "InternalError", "Internal error occurred: %s" % e))
            except OSError:
                pass
        finally:
            self._log_once()  # when no response was sent at all

    # -- routing
    def _route(self, method, path, query, body):
        srv = self.server.kube
        if path in ("/version", "/version/"):
            return self._send_json(200, srv.version_info())
        if path in ("/healthz", "/livez", "/readyz"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self._status = 200
            return
        if path == "/api":
            return self._send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                         "serverAddressByClientCIDRs": [{
                                             "clientCIDR": "0.0.0.0/0",
                                             "serverAddress": "127.0.0.1:%d" % srv.port}]})
        if path == "/apis":
            return self._send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                         "groups": [self._group(g) for g in groups()]})
        if path == "/openapi/v3":
            return self._send_json(200, openapi_v3_root())
        if path.startswith("/openapi/v3/"):
            doc = openapi_v3_doc(path[len("/openapi/v3/"):])
            if doc is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self._send_json(200, doc)
        if path == "/openapi/v2":
            acc = self.headers.get("Accept", "")
            if "protobuf" in acc:
                data = openapi_v2_protobuf()
                self.send_response(200)
                self.send_header("Content-Type",
                                 "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self._status = 200
                return
            return self._send_json(200, openapi_v2_json())
        parts = [p for p in path.split("/") if p != ""]
        if not parts or parts[0] not in ("api", "apis"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if parts[0] == "api":
            if len(parts) < 2 or parts[1] != "v1":
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            group, version, rest = "", "v1", parts[2:]
        else:
            if len(parts) == 2:
                g = [x for x in groups() if x == parts[1]]
                if not g:
                    raise ApiError(404, "NotFound",
                                   "the server could not find the requested resource")
                return self._send_json(200, dict(self._group(parts[1]), kind="APIGroup",
                                                 apiVersion="v1"))
            if len(parts) < 3:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            group, version, rest = parts[1], parts[2], parts[3:]
        if not any(rt.group == group and rt.version == version for rt in RESOURCES):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return self._send_json(200, resource_list(group, version))
        watch_prefix = False
        if rest[0] == "watch":
            watch_prefix = True
            rest = rest[1:]
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces" and (group, version, rest[2]) in RT_BY_PATH:
            ns = rest[1]
            rest = rest[2:]
        rt = RT_BY_PATH.get((group, version, rest[0])) if rest else None
        if rt is None or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if ns is not None and not rt.namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and not (sub == "status" and rt.status):
            if not (rt.key == ("", "namespaces") and sub == "finalize"):
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if watch_prefix or (name is None and method == "GET" and
                            query.get("watch") in ("1", "true", "True")):
            if method != "GET":
                raise err_method()
            return self._watch(rt, ns, name, query)
        self._resource(method, rt, ns, name, sub, query, body)

    @staticmethod
    def _group(g):
        rts = [rt for rt in RESOURCES if rt.group == g]
        v = rts[0].version
        gv = {"groupVersion": "%s/%s" % (g, v), "version": v}
        return {"name": g, "versions": [gv], "preferredVersion": gv}

    def _accept_table(self):
        acc = self.headers.get("Accept", "")
        return "as=Table" in acc and "g=meta.k8s.io" in acc

    def _decode_body(self, body):
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if ctype == "application/vnd.kubernetes.protobuf":
            try:
                return decode_k8s_protobuf(body)
            except (ValueError, KeyError, UnicodeDecodeError) as e:
                raise ApiError(415, "UnsupportedMediaType", str(e))
        if ctype not in ("application/json", "application/yaml", "*/*", ""):
            raise ApiError(415, "UnsupportedMediaType",
                           'the body of the request was in an unknown format - accepted media '
                           'types include: application/json, application/yaml')
        try:
            if ctype == "application/yaml":
                return parse_yaml_or_json(body)
            return json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise err_bad_request("the object provided is unrecognized (%s)" % e)

    def _resource(self, method, rt, ns, name, sub, query, body):
        api = self.server.kube.api
        dry = query.get("dryRun") == "All"
        manager = query.get("fieldManager") or None
        if manager is None:
            ua = self.headers.get("User-Agent", "")
            manager = ua.split("/")[0] if ua else None
        if rt.namespaced and ns is None and name is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if rt.namespaced and ns is None and method not in ("GET",):
            raise err_method()
        if name is None:
            if method == "GET":
                return self._list(rt, ns, query)
            if method == "POST":
                obj = api.create(rt, ns, self._decode_body(body), dry, manager)
                return self._send_json(201, obj)
            if method == "DELETE":
                return self._delete_collection(rt, ns, query, body, dry)
            raise err_method()
        if method in ("GET", "HEAD"):
            return self._send_obj(200, api.get(rt, ns, name))
        if method == "PUT":
            if sub == "finalize":
                sub = None
            obj = api.update(rt, ns, name, self._decode_body(body), sub, dry, manager)
            return self._send_json(200, obj)
        if method == "PATCH":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype == "application/apply-patch+yaml":
                manager = query.get("fieldManager")
            obj = api.patch(rt, ns, name, ctype, body, sub, dry, manager,
                            query.get("force") in ("true", "1"))
            return self._send_json(200, obj)
        if method == "DELETE":
            if sub:
                raise err_method()
            opts = {}
            if body.strip() and not body.startswith(b"k8s\x00"):
                try:
                    opts = json.loads(body.decode("utf-8"))
                except ValueError:
                    raise err_bad_request("invalid DeleteOptions")
            if "propagationPolicy" in query:
                opts["propagationPolicy"] = query["propagationPolicy"]
            obj = api.delete(rt, ns, name, opts, dry)
            # Real servers answer 200 with the object, deleted or only marked; 202 only
            # when the client set orphanDependents=false and deletion is pending.
            pending = bool(obj.get("metadata", {}).get("deletionTimestamp")) and \
                api.store.objects[rt.key].get((ns or "", name)) is not None
            return self._send_json(202 if pending and opts.get("orphanDependents") is False
                                   else 200, obj)
        raise err_method()

    def _send_obj(self, code, obj):
        if self._accept_table():
            rt = next(r for r in RESOURCES if r.api_version == obj["apiVersion"] and
                      r.kind == obj["kind"])
            tbl = table_for(rt, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]},
                            self._include())
            return self._send_json(code, tbl)
        return self._send_json(code, obj)

    def _include(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        return (q.get("includeObject") or ["Metadata"])[-1]

    def _list(self, rt, ns, query):
        api = self.server.kube.api
        ls = LabelSelector(query.get("labelSelector"))
        fs = FieldSelector(query.get("fieldSelector"), rt)
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise err_bad_request("invalid limit")
        if query.get("resourceVersionMatch") and not query.get("resourceVersion"):
            raise err_invalid(rt, "", [("resourceVersionMatch", "FieldValueForbidden",
                                        "Forbidden: resourceVersionMatch is forbidden unless "
                                        "resourceVersion is provided")])
        rvq = query.get("resourceVersion")
        if rvq and rvq != "0" and query.get("resourceVersionMatch") == "Exact":
            st = api.store
            if int(rvq) <= st.compacted_rv or int(rvq) != st.rv:
                raise err_gone("too old resource version: %s (%d)" % (rvq, st.compacted_rv + 1))
        items, meta = api.list(rt, ns, ls, fs, limit, query.get("continue"))
        if self._accept_table():
            return self._send_json(200, table_for(rt, items, meta, self._include()))
        # Streamed assembly: items are serialised without kind/apiVersion, as typed lists are.
        head = '{"kind":"%sList","apiVersion":"%s","metadata":%s,"items":[' % (
            rt.kind, rt.api_version, json.dumps(meta, separators=(",", ":")))
        enc = json.JSONEncoder(separators=(",", ":")).encode
        parts = []
        for o in items:
            s = enc(o)
            # strip leading kind and apiVersion written first by normalize()
            idx = s.find('"metadata":')
            parts.append("{" + s[idx:])
        data = (head + ",".join(parts) + "]}").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self._status = 200

    def _delete_collection(self, rt, ns, query, body, dry):
        api = self.server.kube.api
        ls = LabelSelector(query.get("labelSelector"))
        fs = FieldSelector(query.get("fieldSelector"), rt)
        items, meta = api.list(rt, ns, ls, fs, 0, None)
        out = []
        for o in items:
            try:
                out.append(api.delete(rt, o["metadata"].get("namespace"), o["metadata"]["name"],
                                      {}, dry))
            except ApiError as e:
                if e.code != 404:
                    raise
        resp = {"kind": "%sList" % rt.kind, "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(api.store.rv)}, "items": out}
        self._send_json(200, resp)

    # -- watch
    def _watch(self, rt, ns, name, query):
        srv = self.server.kube
        st = srv.api.store
        ls = LabelSelector(query.get("labelSelector"))
        fs = FieldSelector(query.get("fieldSelector"), rt)
        if name is not None:
            fs.reqs.append(("metadata.name", True, name))
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        try:
            timeout = float(query.get("timeoutSeconds") or srv.cfg.min_watch_timeout)
        except ValueError:
            raise err_bad_request("invalid timeoutSeconds")
        rvq = query.get("resourceVersion")
        table = self._accept_table()
        include = self._include()
        send_initial = query.get("sendInitialEvents") in ("true", "1")
        initial = []
        with st.lock:
            epoch = st.watch_epoch
            bm_epoch = st.bookmark_epoch
            if rvq in (None, "", "0") or send_initial:
                items, _ = srv.api.list(rt, ns, ls, fs, 0, None)
                initial = items
                start = st.rv
                expired = False
            else:
                try:
                    start = int(rvq)
                except ValueError:
                    raise err_bad_request('invalid resource version: "%s"' % rvq)
                expired = start < st.compacted_rv
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._status = 200
        sock = self.connection
        self._watch_sock = sock

        def emit(etype, obj):
            if table and etype in ("ADDED", "MODIFIED", "DELETED"):
                obj = table_for(rt, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]},
                                include)
            data = json.dumps({"type": etype, "object": obj}, separators=(",", ":")).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def bookmark(rv):
            emit("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version,
                              "metadata": {"resourceVersion": str(rv),
                                           "creationTimestamp": None}})
        srv.register_watch(self)
        try:
            if expired:
                emit("ERROR", {"kind": "Status", "apiVersion": "v1", "metadata": {},
                               "status": "Failure",
                               "message": "too old resource version: %d (%d)" % (
                                   start, st.compacted_rv + 1),
                               "reason": "Expired", "code": 410})
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                return
            for o in initial:
                emit("ADDED", o)
            if send_initial and bookmarks:
                b = {"kind": rt.kind, "apiVersion": rt.api_version,
                     "metadata": {"resourceVersion": str(start), "creationTimestamp": None,
                                  "annotations": {"k8s.io/initial-events-end": "true"}}}
                emit("BOOKMARK", b)
            deadline = time.time() + timeout
            last_bm = time.time()
            pos = start
            while True:
                batch = []
                with st.lock:
                    while True:
                        if st.watch_epoch != epoch:
                            raise ConnectionAbortedError("dropped")
                        if pos < st.compacted_rv:
                            batch = None
                            break
                        if st.history and st.history[-1].rv > pos:
                            break
                        now = time.time()
                        if now >= deadline:
                            break
                        if bookmarks and (now - last_bm >= srv.cfg.bookmark_interval or
                                          st.bookmark_epoch != bm_epoch):
                            break
                        st.cond.wait(min(deadline - now, 0.5,
                                         max(0.01, srv.cfg.bookmark_interval - (now - last_bm))))
                    if batch is not None and st.history and st.history[-1].rv > pos:
                        # history rvs are increasing; find first > pos
                        h = st.history
                        lo = 0
                        first = h[0].rv
                        lo = max(0, pos - first + 1) if first <= pos + 1 else 0
                        # rvs may have gaps; scan forward from the estimate
                        while lo > 0 and h[lo - 1].rv > pos:
                            lo -= 1
                        while lo < len(h) and h[lo].rv <= pos:
                            lo += 1
                        batch = [h[i] for i in range(lo, len(h))]
                    cur_rv = st.rv
                    bm_now = st.bookmark_epoch
                if batch is None:
                    emit("ERROR", {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                   "status": "Failure",
                                   "message": "too old resource version: %d (%d)" % (
                                       pos, st.compacted_rv + 1),
                                   "reason": "Expired", "code": 410})
                    break
                for ev in batch:
                    pos = ev.rv
                    if ev.rtkey != rt.key:
                        continue
                    if ns is not None and rt.namespaced and ev.ns != ns:
                        continue
                    cur_match = self._match(ev.obj, ls, fs)
                    prev_match = ev.prev is not None and self._match(ev.prev, ls, fs)
                    if ev.type == "MODIFIED":
                        if cur_match and prev_match:
                            emit("MODIFIED", ev.obj)
                        elif cur_match:
                            emit("ADDED", ev.obj)
                        elif prev_match:
                            emit("DELETED", ev.obj)
                    elif cur_match:
                        emit(ev.type, ev.obj)
                if time.time() >= deadline:
                    break
                if bookmarks and (time.time() - last_bm >= srv.cfg.bookmark_interval or
                                  bm_now != bm_epoch):
                    bm_epoch = bm_now
                    last_bm = time.time()
                    bookmark(max(pos, cur_rv) if not batch else pos)
                    pos = max(pos, cur_rv) if not batch else pos
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except ConnectionAbortedError:
            self.close_connection = True
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        finally:
            srv.unregister_watch(self)

    @staticmethod
    def _match(obj, ls, fs):
        return (ls.empty() or ls.matches(obj["metadata"].get("labels"))) and \
            (fs.empty() or fs.matches(obj))

    # -- control endpoint
    def _control(self, method, path, query, body):
        srv = self.server.kube
        try:
            spec = json.loads(body.decode("utf-8")) if body.strip() else {}
        except ValueError:
            spec = {}
        spec.update({k: _num(v) for k, v in query.items()})
        op = path[len("/_control/"):].strip("/")
        if op == "faults":
            srv.faults.set(spec)
            return self._send_json(200, {"rules": [{k: v for k, v in r.items()}
                                                   for r in srv.faults.rules],
                                         "latencyMs": srv.faults.latency * 1000})
        if op == "drop-watches":
            n = srv.drop_watches()
            return self._send_json(200, {"dropped": n})
        if op == "restart":
            n = srv.drop_watches(compact=True)
            return self._send_json(200, {"dropped": n, "compactedRV": srv.api.store.compacted_rv})
        if op == "compact":
            st = srv.api.store
            with st.lock:
                st.history.clear()
                st.compacted_rv = st.rv
            return self._send_json(200, {"compactedRV": st.compacted_rv})
        if op == "bookmark":
            st = srv.api.store
            with st.lock:
                st.bookmark_epoch += 1
                st.cond.notify_all()
            return self._send_json(200, {"ok": True})
        if op == "rotate-token":
            tok = srv.rotate_token(spec.get("token"))
            return self._send_json(200, {"token": tok})
        if op == "seed":
            t0 = time.time()
            srv.seed(int(spec.get("nodes", 0)), int(spec.get("services", 0)),
                     spec.get("namespace", "default"), spec.get("serviceType", "LoadBalancer"))
            return self._send_json(200, {"ok": True, "seconds": round(time.time() - t0, 3),
                                         "resourceVersion": str(srv.api.store.rv)})
        if op == "requests":
            with srv.log_lock:
                entries = list(srv.requests)
            if method == "DELETE":
                with srv.log_lock:
                    srv.requests.clear()
            return self._send_json(200, {"items": entries})
        if op == "state":
            st = srv.api.store
            return self._send_json(200, {"resourceVersion": st.rv,
                                         "compactedRV": st.compacted_rv,
                                         "watches": len(srv.watches),
                                         "history": len(st.history),
                                         "counts": {"%s/%s" % k if k[0] else k[1]: len(v)
                                                    for k, v in st.objects.items()}})
        raise ApiError(404, "NotFound", "unknown control operation %s" % op)


def _num(v):
    if re.match(r"^-?[0-9]+$", v):
        return int(v)
    if re.match(r"^-?[0-9]*\.[0-9]+$", v):
        return float(v)
    return v


def groups():
    out = []
    for rt in RESOURCES:
        if rt.group and rt.group not in out:
            out.append(rt.group)
    return out


def resource_list(group, version):
    res = []
    for rt in RESOURCES:
        if rt.group != group or rt.version != version:
            continue
        r = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
             "kind": rt.kind, "verbs": ALL_VERBS}
        if rt.short_names:
            r["shortNames"] = rt.short_names
        if rt.categories:
            r["categories"] = rt.categories
        r["storageVersionHash"] = base64.b64encode(
            ("%s/%s" % (rt.api_version, rt.kind)).encode()).decode()[:12]
        res.append(r)
        if rt.status:
            res.append({"name": rt.plural + "/status", "singularName": "",
                        "namespaced": rt.namespaced, "kind": rt.kind,
                        "verbs": ["get", "patch", "update"]})
        if rt.key == ("", "namespaces"):
            res.append({"name": "namespaces/finalize", "singularName": "", "namespaced": False,
                        "kind": "Namespace", "verbs": ["update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": "%s/%s" % (group, version) if group else version, "resources": res}


def _gv_key(rt):
    return "api/v1" if not rt.group else "apis/%s/%s" % (rt.group, rt.version)


def openapi_v3_root():
    paths = {}
    for rt in RESOURCES:
        k = _gv_key(rt)
        paths[k] = {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (
            k, base64.b16encode(k.encode()).decode()[:32])}
    return {"paths": paths}


def openapi_v3_doc(gvpath):
    """A minimal OpenAPI v3 document: enough for kubectl to learn that the server
    supports the fieldValidation query parameter (so it validates server-side).
    Request bodies do not advertise strategic-merge-patch, so kubectl apply builds
    its patches from its compiled-in types, as it does with no OpenAPI at all."""
    rts = [rt for rt in RESOURCES if _gv_key(rt) == gvpath]
    if not rts:
        return None
    paths = {}
    fv = {"name": "fieldValidation", "in": "query", "schema": {"type": "string"},
          "uniqueItems": True}
    fm = {"name": "fieldManager", "in": "query", "schema": {"type": "string"},
          "uniqueItems": True}
    dr = {"name": "dryRun", "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
    for rt in rts:
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        base = "/%s/%s%s" % (gvpath, "namespaces/{namespace}/" if rt.namespaced else "",
                             rt.plural)
        ext = {"x-kubernetes-group-version-kind": gvk}
        paths[base] = {"post": dict(ext, parameters=[fv, fm, dr],
                                    **{"x-kubernetes-action": "post",
                                       "operationId": "create" + rt.kind}),
                       "get": dict(ext, **{"x-kubernetes-action": "list"})}
        paths[base + "/{name}"] = {
            "get": dict(ext, **{"x-kubernetes-action": "get"}),
            "put": dict(ext, parameters=[fv, fm, dr], **{"x-kubernetes-action": "put"}),
            "patch": dict(ext, parameters=[fv, fm, dr],
                          requestBody={"content": {
                              "application/json-patch+json": {"schema": {"type": "object"}},
                              "application/merge-patch+json": {"schema": {"type": "object"}},
                              "application/apply-patch+yaml": {"schema": {"type": "object"}}}},
                          **{"x-kubernetes-action": "patch"}),
            "delete": dict(ext, parameters=[dr], **{"x-kubernetes-action": "delete"})}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1"},
            "paths": paths, "components": {"schemas": {}}}


# --- OpenAPI v2 (kubectl 1.27-1.29 read it as protobuf to learn about fieldValidation)

def _pb_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _pb_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return _pb_varint(num << 3 | 2) + _pb_varint(len(data)) + data


def _pb_bool(num, v):
    return _pb_varint(num << 3) + _pb_varint(1 if v else 0)


def _v2_ops():
    """(path, method, rt) for every write operation, as a real server lists them."""
    out = []
    for rt in RESOURCES:
        prefix = "/api/v1" if not rt.group else "/apis/%s/%s" % (rt.group, rt.version)
        base = "%s/%s%s" % (prefix, "namespaces/{namespace}/" if rt.namespaced else "",
                            rt.plural)
        out.append((base, "post", rt))
        out.append((base + "/{name}", "put", rt))
        out.append((base + "/{name}", "patch", rt))
    return out


def openapi_v2_protobuf():
    """A minimal gnostic openapi_v2.Document: paths with write operations that carry
    x-kubernetes-group-version-kind and the fieldValidation query parameter. No
    definitions, so kubectl uses its compiled-in types for strategic merge."""
    paths = {}
    order = []
    for path, method, rt in _v2_ops():
        params = b""
        for pname in ("fieldValidation", "fieldManager", "dryRun"):
            q = _pb_bytes(2, "query") + _pb_bytes(4, pname) + _pb_bytes(6, "string") + \
                _pb_bool(20, True)
            nonbody = _pb_bytes(3, q)
            param = _pb_bytes(2, nonbody)
            params += _pb_bytes(8, _pb_bytes(1, param))
        gvk_yaml = 'group: "%s"\nkind: %s\nversion: %s\n' % (rt.group, rt.kind, rt.version)
        ext = _pb_bytes(13, _pb_bytes(1, "x-kubernetes-group-version-kind") +
                        _pb_bytes(2, _pb_bytes(2, gvk_yaml)))
        action = {"post": "post", "put": "put", "patch": "patch"}[method]
        ext += _pb_bytes(13, _pb_bytes(1, "x-kubernetes-action") +
                         _pb_bytes(2, _pb_bytes(2, action + "\n")))
        op = _pb_bytes(5, method + rt.kind) + params + ext
        field = {"put": 3, "post": 4, "patch": 8}[method]
        if path not in paths:
            paths[path] = b""
            order.append(path)
        paths[path] += _pb_bytes(field, op)
    body = b"".join(_pb_bytes(2, _pb_bytes(1, p) + _pb_bytes(2, paths[p])) for p in order)
    doc = _pb_bytes(1, "2.0") + _pb_bytes(2, _pb_bytes(1, "Kubernetes") +
                                          _pb_bytes(2, "v1.0.0")) + _pb_bytes(8, body)
    return doc


def openapi_v2_json():
    paths = {}
    for path, method, rt in _v2_ops():
        paths.setdefault(path, {})[method] = {
            "operationId": method + rt.kind,
            "parameters": [{"name": n, "in": "query", "type": "string", "uniqueItems": True}
                           for n in ("fieldValidation", "fieldManager", "dryRun")],
            "x-kubernetes-action": method,
            "x-kubernetes-group-version-kind": {"group": rt.group, "kind": rt.kind,
                                                "version": rt.version}}
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.0.0"},
            "paths": paths, "definitions": {}}


class KubeServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    ssl_ctx = None

    def finish_request(self, request, client_address):
        # TLS handshake in the connection's own thread, never in the accept loop.
        if self.ssl_ctx is None:
            return super().finish_request(request, client_address)
        try:
            request.settimeout(30)
            conn = self.ssl_ctx.wrap_socket(request, server_side=True)
            conn.settimeout(None)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            try:
                conn.close()
            except OSError:
                pass


class Double:
    def __init__(self, cfg):
        self.cfg = cfg
        self.api = Api(cfg)
        self.faults = Faults()
        self.watches = set()
        self.watch_lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.requests = collections.deque(maxlen=10000)
        self.log_file = open(cfg.request_log, "a", buffering=1) if cfg.request_log else None
        self.token = cfg.token
        self.port = 0
        self.httpd = None
        self._bootstrap()

    def _bootstrap(self):
        ns_rt = RT_BY_KEY[("", "namespaces")]
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.api.create(ns_rt, None, {"metadata": {"name": ns}})
        svc_rt = RT_BY_KEY[("", "services")]
        self.api.create(svc_rt, "default", {
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver",
                                                          "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443,
                                                          "protocol": "TCP",
                                                          "targetPort": 6443}],
                     "sessionAffinity": "None", "type": "ClusterIP"}})

    def version_info(self):
        v = self.cfg.version
        parts = v.lstrip("v").split(".")
        major, minor = parts[0], parts[1] if len(parts) > 1 else "0"
        patch = parts[2] if len(parts) > 2 else "0"
        return {"major": major, "minor": minor,
                "gitVersion": "v%s.%s.%s" % (major, minor, patch),
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.22.0", "compiler": "gc", "platform": "linux/amd64"}

    def current_token(self):
        return self.token

    def rotate_token(self, tok=None):
        tok = tok or secrets.token_hex(24)
        self.token = tok
        if self.cfg.token_file:
            tmp = self.cfg.token_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(tok)
            os.replace(tmp, self.cfg.token_file)
        return tok

    def register_watch(self, h):
        with self.watch_lock:
            self.watches.add(h)

    def unregister_watch(self, h):
        with self.watch_lock:
            self.watches.discard(h)

    def drop_watches(self, compact=False):
        st = self.api.store
        with self.watch_lock:
            n = len(self.watches)
        if compact:
            st.compact()
        else:
            with st.lock:
                st.watch_epoch += 1
                st.cond.notify_all()
        return n

    def log_request(self, method, path, query, status, ua, dur, user="default"):
        e = {"time": now_micro(), "method": method, "path": path, "query": query,
             "status": status, "userAgent": ua, "user": user,
             "durationMs": round(dur * 1000, 3)}
        with self.log_lock:
            self.requests.append(e)
            if self.log_file:
                self.log_file.write(json.dumps(e) + "\n")

    def seed(self, nodes, services, namespace="default", stype="LoadBalancer"):
        api = self.api
        node_rt = RT_BY_KEY[("", "nodes")]
        svc_rt = RT_BY_KEY[("", "services")]
        ts = now_rfc3339()
        with api.store.lock:
            if namespace and ("", namespace) not in api.store.objects[("", "namespaces")]:
                api.create(RT_BY_KEY[("", "namespaces")], None, {"metadata": {"name": namespace}})
            base = len(api.store.objects[node_rt.key])
            for i in range(nodes):
                n = base + i
                name = "node-%05d" % n
                if ("", name) in api.store.objects[node_rt.key]:
                    continue
                obj = {"metadata": {"name": name, "uid": str(uuid.uuid4()),
                                    "creationTimestamp": ts,
                                    "labels": {"kubernetes.io/hostname": name,
                                               "topology.kubernetes.io/zone": "zone-%d" % (n % 3)}},
                       "spec": {"providerID": "lab://%s" % name},
                       "status": {"addresses": [
                           {"type": "InternalIP",
                            "address": "10.%d.%d.%d" % (n // 65536 % 256, n // 256 % 256, n % 256)},
                           {"type": "Hostname", "address": name}],
                           "conditions": [{"type": "Ready", "status": "True",
                                           "lastHeartbeatTime": ts, "lastTransitionTime": ts,
                                           "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status"}],
                           "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                           "nodeInfo": {"kubeletVersion": "v" + self.cfg.version,
                                        "osImage": "Debian GNU/Linux 12 (bookworm)",
                                        "kernelVersion": "6.1.0",
                                        "containerRuntimeVersion": "containerd://1.7.0",
                                        "architecture": "amd64", "operatingSystem": "linux",
                                        "bootID": "", "kubeProxyVersion": "", "machineID": "",
                                        "systemUUID": ""}}}
                api._finish(node_rt, obj, None, "ADDED", False)
            sbase = len(api.store.objects[svc_rt.key])
            for i in range(services):
                name = "svc-%05d" % (sbase + i)
                if (namespace, name) in api.store.objects[svc_rt.key]:
                    continue
                obj = {"metadata": {"name": name, "namespace": namespace,
                                    "uid": str(uuid.uuid4()), "creationTimestamp": ts,
                                    "labels": {"app": name}},
                       "spec": {"type": stype, "selector": {"app": name},
                                "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                           "targetPort": 8080}]}}
                if stype != "LoadBalancer" or len(api.store.node_ports) < 2700:
                    svc_prepare(api.store, svc_rt, obj, None, name)
                else:
                    # nodePort space (2768) is exhausted by large seeds; allocate
                    # ClusterIPs only, as allocateLoadBalancerNodePorts=false would.
                    obj["spec"]["allocateLoadBalancerNodePorts"] = False
                    svc_prepare(api.store, svc_rt, obj, None, name)
                api._finish(svc_rt, obj, None, "ADDED", False)

    def serve(self, port, host="127.0.0.1"):
        self.httpd = KubeServer((host, port), Handler)
        self.httpd.kube = self
        self.port = self.httpd.server_address[1]
        return self.port

    def wrap_tls(self, certfile, keyfile):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        ctx.set_alpn_protocols(["http/1.1"])
        self.httpd.ssl_ctx = ctx


def make_certs(outdir):
    """CA + server cert (SAN 127.0.0.1, localhost) with the openssl CLI."""
    if not shutil.which("openssl"):
        raise SystemExit("--tls needs the openssl command (Debian package openssl)")
    ca_key = os.path.join(outdir, "ca.key")
    ca_crt = os.path.join(outdir, "ca.crt")
    key = os.path.join(outdir, "server.key")
    csr = os.path.join(outdir, "server.csr")
    crt = os.path.join(outdir, "server.crt")
    ext = os.path.join(outdir, "server.ext")

    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt,
        "-days", "2", "-subj", "/CN=kube-double-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=kube-apiserver")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    return ca_crt, crt, key


def write_kubeconfig(path, server, token, ca_file=None):
    cluster = {"server": server}
    if ca_file:
        with open(ca_file, "rb") as f:
            cluster["certificate-authority-data"] = base64.b64encode(f.read()).decode()
    user = {"token": token} if token else {}
    # JSON is valid YAML; kubectl and our C client both read it.
    cfg = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": "double", "cluster": cluster}],
           "users": [{"name": "double", "user": user}],
           "contexts": [{"name": "double", "context": {"cluster": "double", "user": "double",
                                                      "namespace": "default"}}],
           "current-context": "double", "preferences": {}}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=2)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Kubernetes API server test double")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--kubeconfig-out")
    ap.add_argument("--version", default="1.33",
                    help="Kubernetes version reported at /version, e.g. 1.27 or 1.33.2")
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--cert-dir", help="where --tls writes ca.crt/server.* (default: temp dir)")
    ap.add_argument("--token", help="require this bearer token")
    ap.add_argument("--gen-token", action="store_true", help="require a generated token")
    ap.add_argument("--token-file", help="write the current token here (rotated by "
                    "/_control/rotate-token); implies a generated token if --token is absent")
    ap.add_argument("--extra-token", action="append", default=[], metavar="USER=TOKEN",
                    help="also accept TOKEN; the request log names its requests USER")
    ap.add_argument("--history", type=int, default=1000, help="watch event history size")
    ap.add_argument("--bookmark-interval", type=float, default=60.0)
    ap.add_argument("--request-log")
    ap.add_argument("--seed-nodes", type=int, default=0)
    ap.add_argument("--seed-services", type=int, default=0)
    ap.add_argument("--seed-service-type", default="LoadBalancer")
    ap.add_argument("--generation-kinds", default="",
                    help="comma-separated kinds that get metadata.generation (real servers: "
                    "none of the served core kinds)")
    args = ap.parse_args(argv)
    cfg = Config()
    cfg.version = args.version
    cfg.history = args.history
    cfg.bookmark_interval = args.bookmark_interval
    cfg.request_log = args.request_log
    cfg.generation_kinds = set(k for k in args.generation_kinds.split(",") if k)
    cfg.token = args.token
    cfg.token_file = args.token_file
    for spec in args.extra_token:
        user, sep, tok = spec.partition("=")
        if not sep or not user or not tok:
            ap.error("--extra-token: expected USER=TOKEN, got %r" % spec)
        cfg.extra_tokens[tok] = user
    if (args.gen_token or args.token_file) and not cfg.token:
        cfg.token = secrets.token_hex(24)
    d = Double(cfg)
    if cfg.token_file:
        d.rotate_token(cfg.token)
    if args.seed_nodes or args.seed_services:
        d.seed(args.seed_nodes, args.seed_services, "default", args.seed_service_type)
    port = d.serve(args.port)
    scheme = "http"
    ca = None
    if args.tls:
        cdir = args.cert_dir or tempfile.mkdtemp(prefix="kube-double-tls-")
        os.makedirs(cdir, exist_ok=True)
        ca, crt, key = make_certs(cdir)
        d.wrap_tls(crt, key)
        scheme = "https"
    if args.kubeconfig_out:
        write_kubeconfig(args.kubeconfig_out, "%s://127.0.0.1:%d" % (scheme, port), cfg.token, ca)
    sys.stdout.write("PORT %d\n" % port)
    if ca:
        sys.stdout.write("CA %s\n" % ca)
    sys.stdout.flush()
    try:
        d.httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
