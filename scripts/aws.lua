-- aws.lua: the annotations of upstream's AWS cloud provider
-- (service.beta.kubernetes.io/aws-load-balancer-*) -> the aws module's
-- options, validated; additional-resource-tags -> resource tags and
-- target-node-labels -> backend nodes. It makes no cloud decisions: values
-- the Service does not set are left to the module's upstream defaults.
--
-- Option names are the annotation suffixes; the list and types are the
-- shared contract with modules/aws (docs/policies-shipped.md, "aws").
-- A bad value rejects the Service with a message naming the annotation.

local P = "service.beta.kubernetes.io/aws-load-balancer-"

-- Shared ccm helpers (docs/policies.md), bound once at load.
local quote, trim, is_ipv4 = ccm.quote, ccm.trim, ccm.is_ipv4
local match_labels = ccm.match_labels
local bool, int, split, kv_list = ccm.bool, ccm.int, ccm.split, ccm.kv_list
local find = string.find

-- A Kubernetes port name (IANA_SVC_NAME): 1-15 of [a-z0-9-] with a letter,
-- no '-' at either end and no "--".
local function is_port_name(s)
  return #s <= 15 and s:match("^[a-z0-9-]+$") ~= nil and s:find("%a") ~= nil
    and not s:find("^%-") and not s:find("%-$") and not s:find("--", 1, true)
end

---------------------------------------------------------------- parsers
-- Each parser takes the raw annotation value and returns the option value,
-- or nil and the end of a message ("... is not ...").

local function p_bool(v)
  local b = bool(trim(v))
  if b == nil then return nil, "is not a boolean (true or false)" end
  return b
end

local function p_int(min, max)
  return function(v)
    local n = int(trim(v), min, max)
    if n == nil then
      return nil, string.format("is not an integer from %d to %d", min, max)
    end
    return n
  end
end

local function p_enum(...)
  local allowed = { ... }
  return function(v)
    local l = trim(v):lower()
    for _, a in ipairs(allowed) do
      if l == a then return a end
    end
    return nil, "is not one of " .. table.concat(allowed, ", ")
  end
end

-- A comma list whose every item passes check(item), which answers false,
-- true, or the item rewritten in canonical form.
local function p_list(what, check)
  return function(v)
    local items = split(v, ",")
    if #items == 0 then return nil, "is an empty list" end
    for i, it in ipairs(items) do
      local r = check(it)
      if not r then
        return nil, "has item " .. quote(it) .. ", not " .. what
      end
      if type(r) == "string" then items[i] = r end
    end
    return items
  end
end

local function p_string(what, check)
  return function(v)
    local s = trim(v)
    if s == "" or not check(s) then return nil, "is not " .. what end
    return s
  end
end

local function any(s) return s ~= "" end

local function arn_cert(s)
  -- arn:<partition>:<acm|iam>:<region>:<account>:<resource>
  local part, svc, res = s:match("^arn:(aws[%w-]*):(%w+):[%w-]*:%d*:(.+)$")
  if not part then return false end
  if svc == "acm" then return res:match("^certificate/[%w-]+$") ~= nil end
  if svc == "iam" then return res:match("^server%-certificate/.+$") ~= nil end
  return false
end

local function ssl_port(s)
  if s == "*" then return true end
  local n = int(s, 1, 65535)
  if n then return true end
  return is_port_name(s)
end

local function hc_port(s)
  return s == "traffic-port" or int(s, 1, 65535) ~= nil
end

local function hc_path(s)
  return s:sub(1, 1) == "/" and #s <= 1024 and not s:find("[%s%c]")
end

local function s3_bucket(s)
  return #s >= 3 and #s <= 63 and s:match("^[a-z0-9][a-z0-9.-]*[a-z0-9]$") ~= nil
    and not s:find("..", 1, true) and not is_ipv4(s)
end

local function tg_attr(s)
  local k, v = s:match("^([%w_.]+)%s*=%s*(%S+)$")
  return k ~= nil and (k .. "=" .. v)
end

-- Annotation suffix -> option parser. When several annotations are bad, the
-- first in this list is reported. type and internal are handled apart.
local SPECS = {
  { "subnets", p_list("a subnet ID or name", any) },
  { "eip-allocations", p_list("an Elastic IP allocation ID (eipalloc-...)",
      function(s) return s:match("^eipalloc%-%x+$") ~= nil end) },
  { "private-ipv4-addresses", p_list("an IPv4 address", is_ipv4) },
  { "ssl-cert", p_string("an ACM or IAM certificate ARN " ..
      "(arn:aws:acm:<region>:<account>:certificate/<id>)", arn_cert) },
  { "ssl-ports", p_list("a port number, a port name or *", ssl_port) },
  { "ssl-negotiation-policy", p_string("a policy name (like ELBSecurityPolicy-TLS-1-2-2017-01)",
      function(s) return #s <= 255 and s:match("^[%w._-]+$") ~= nil end) },
  { "backend-protocol", p_enum("http", "https", "ssl", "tcp") },
  { "proxy-protocol", function(v)
      if trim(v) == "*" then return true end
      return nil, 'is not "*" (the only value: proxy protocol on all ports)'
    end },
  { "healthcheck-protocol", p_enum("tcp", "http", "https") },
  { "healthcheck-port", p_string("traffic-port or a port number from 1 to 65535", hc_port) },
  { "healthcheck-path", p_string("an HTTP path starting with /", hc_path) },
  { "healthcheck-interval", p_int(5, 300) },
  { "healthcheck-timeout", p_int(2, 120) },
  { "healthcheck-healthy-threshold", p_int(2, 10) },
  { "healthcheck-unhealthy-threshold", p_int(2, 10) },
  { "security-groups", p_list("a security group ID (sg-...)",
      function(s) return s:match("^sg%-%x+$") ~= nil end) },
  { "extra-security-groups", p_list("a security group ID (sg-...)",
      function(s) return s:match("^sg%-%x+$") ~= nil end) },
  { "target-group-attributes", p_list("key=value", tg_attr) },
  { "connection-idle-timeout", p_int(1, 4000) },
  { "connection-draining-enabled", p_bool },
  { "connection-draining-timeout", p_int(1, 3600) },
  { "cross-zone-load-balancing-enabled", p_bool },
  { "access-log-enabled", p_bool },
  { "access-log-emit-interval", function(v)
      local n = int(trim(v), 5, 60)
      if n == 5 or n == 60 then return n end
      return nil, "is not 5 or 60 (minutes)"
    end },
  { "access-log-s3-bucket-name", p_string("an S3 bucket name", s3_bucket) },
  { "access-log-s3-bucket-prefix", p_string("an S3 key prefix",
      function(s) return #s <= 1024 and not s:find("%c") end) },
}

-- additional-resource-tags: "K1=V1,K2=V2,KeyOnly" (KeyOnly -> "").
local function parse_tags(v)
  local tags, err = kv_list(v)
  if type(tags) ~= "table" then return nil, "is not a K=V list (" .. tostring(err) .. ")" end
  -- Each tag is a part of v: the rules below cannot fail on a short v
  -- without a ':' (no "aws:" prefix), so the common case skips the loop.
  if #v <= 128 and not find(v, ":", 1, true) then return tags end
  for k, val in pairs(tags) do
    if #k > 128 or #val > 256 then
      return nil, "has a tag over AWS limits (key <= 128, value <= 256): " .. quote(k)
    end
    if find(k, "^[Aa][Ww][Ss]:") then
      return nil, "uses the reserved tag prefix aws: in " .. quote(k)
    end
  end
  return tags
end

-- target-node-labels: "k=v,k2=v2"; a key alone matches any value.
local function parse_labels(v)
  local labels, err = kv_list(v)
  if type(labels) ~= "table" then return nil, "is not a k=v list (" .. tostring(err) .. ")" end
  if next(labels) == nil then return nil, "is an empty list" end
  return labels
end

-- Two annotations that load_balancer_options only validates, after all the
-- options; resource_tags and backend_nodes use them.
SPECS[#SPECS + 1] = { "additional-resource-tags", parse_tags, hook = true }
SPECS[#SPECS + 1] = { "target-node-labels", parse_labels, hook = true }

-- Full annotation key -> spec, built once at load. spec.order is the place
-- of the spec in SPECS: when several annotations are bad, the lowest order
-- is reported.
local BY_KEY = {}
for i, spec in ipairs(SPECS) do
  spec.name, spec.parse, spec.order = spec[1], spec[2], i
  spec.key = P .. spec.name
  BY_KEY[spec.key] = spec
end

-- Every full key is a constant: keys this long are Lua "long strings", and
-- building one in a hook allocates and hashes it on every call.
local TYPE, INTERNAL = P .. "type", P .. "internal"
local TAGS, LABELS = P .. "additional-resource-tags", P .. "target-node-labels"
local ELSEWHERE = ccm.IMPLEMENTED_ELSEWHERE
local EMPTY = {}

local function reject(spec, value, why)
  return nil, spec.key .. ": " .. quote(value) .. " " .. why
end

local function for_aws(ctx)
  return ctx.module == nil or ctx.module == "aws"
end

local policy = {}

function policy.load_balancer_options(service, ctx)
  if not for_aws(ctx) then return {} end
  local opts = {}
  local lbtype, internal
  local bad, bad_value, bad_why -- the bad annotation of lowest order so far

  -- One pass over the annotations the Service has, each dispatched through
  -- BY_KEY, rather than one lookup per known annotation: the cost follows
  -- the few annotations a Service sets, not the 28 this policy knows.
  for k, v in pairs(service.annotations or EMPTY) do
    local spec = BY_KEY[k]
    if spec ~= nil then
      local val, why = spec.parse(v)
      if val == nil then
        if bad == nil or spec.order < bad.order then bad, bad_value, bad_why = spec, v, why end
      elseif not spec.hook then
        opts[spec.name] = val
      end
    elseif k == TYPE then
      lbtype = v
    elseif k == INTERNAL then
      internal = v
    end
  end

  if lbtype == "external" or lbtype == "nlb-ip" then
    -- the AWS Load Balancer Controller owns these (upstream: ImplementedElsewhere)
    return ELSEWHERE
  end
  if lbtype ~= nil then
    opts.type = lbtype == "nlb" and "nlb" or "classic"
  end
  local nlb = lbtype == "nlb"
  if internal ~= nil then
    -- upstream: "false" and "" mean external, any other value internal
    opts.internal = internal ~= "false" and internal ~= ""
  end
  if bad ~= nil then return reject(bad, bad_value, bad_why) end

  -- Combinations upstream refuses (or silently ignores) at the cloud.
  local n_subnets = opts.subnets and #opts.subnets
  local eips, privs = opts["eip-allocations"], opts["private-ipv4-addresses"]
  if eips then
    if not nlb then
      return nil, P .. "eip-allocations needs " .. P .. "type: nlb"
    end
    if opts.internal then
      return nil, P .. "eip-allocations cannot be used with an internal load balancer"
    end
    if n_subnets and #eips ~= n_subnets then
      return nil, string.format("%seip-allocations has %d entries but %ssubnets has %d",
        P, #eips, P, n_subnets)
    end
  end
  if privs then
    if not nlb or not opts.internal then
      return nil, P .. "private-ipv4-addresses needs " .. P .. "type: nlb and " ..
        P .. "internal: true"
    end
    if n_subnets and #privs ~= n_subnets then
      return nil, string.format("%sprivate-ipv4-addresses has %d entries but %ssubnets has %d",
        P, #privs, P, n_subnets)
    end
  end
  local iv, to = opts["healthcheck-interval"], opts["healthcheck-timeout"]
  if iv and to and to >= iv then
    return nil, string.format("%shealthcheck-timeout (%d) must be less than " ..
      "%shealthcheck-interval (%d)", P, to, P, iv)
  end
  if opts["access-log-enabled"] and not opts["access-log-s3-bucket-name"] then
    return nil, P .. "access-log-enabled is true but " .. P ..
      "access-log-s3-bucket-name is not set"
  end

  return opts
end

function policy.resource_tags(service, ctx)
  if not for_aws(ctx) then return {} end
  local v = (service.annotations or EMPTY)[TAGS]
  if v == nil then return {} end
  -- invalid values were rejected by load_balancer_options already
  return parse_tags(v) or {}
end

function policy.backend_nodes(service, nodes, ctx)
  if not for_aws(ctx) then return nodes end
  local v = (service.annotations or EMPTY)[LABELS]
  if v == nil then return nodes end
  local want = parse_labels(v)
  if not want then return nodes end
  local kept = {}
  for _, node in ipairs(nodes) do
    if match_labels(node.labels or EMPTY, want) then kept[#kept + 1] = node end
  end
  return kept
end

return policy
