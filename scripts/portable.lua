-- portable.lua: one vendor-neutral annotation set under ccmhost.io/, mapped
-- onto the options of whichever module serves the Service (ctx.module: aws,
-- gcp, openstack, lab). A setting the module cannot honour rejects the
-- Service with a message saying so, rather than being dropped silently.
--
--   ccmhost.io/internal                  true|false
--   ccmhost.io/source-ranges             CIDR list (spec.loadBalancerSourceRanges wins)
--   ccmhost.io/healthcheck-protocol      tcp|http|https
--   ccmhost.io/healthcheck-port          traffic-port | 1-65535
--   ccmhost.io/healthcheck-path          /path
--   ccmhost.io/healthcheck-interval      seconds
--   ccmhost.io/healthcheck-timeout       seconds
--   ccmhost.io/healthcheck-healthy-threshold    checks
--   ccmhost.io/healthcheck-unhealthy-threshold  checks
--   ccmhost.io/proxy-protocol            true|false|v1|v2
--   ccmhost.io/idle-timeout              seconds
--   ccmhost.io/node-selector             k=v,k2,... -> backend nodes (any module)
--   ccmhost.io/resource-tags             K=V,K2,... -> resource tags (any module)
--
-- docs/policies-shipped.md has the table of what each key becomes per
-- module. Combine with a provider policy by listing portable.lua FIRST: the
-- provider's own annotations, merged later, then win key by key.

local P = "ccmhost.io/"

-- Shared ccm helpers (docs/policies.md), bound once at load.
local quote, trim, is_cidr = ccm.quote, ccm.trim, ccm.is_cidr
local match_labels = ccm.match_labels
local bool, int, split, kv_list = ccm.bool, ccm.int, ccm.split, ccm.kv_list

---------------------------------------------------------------- parsing
-- Each parser: raw value -> portable value, or nil and the end of a message.

local function p_int(min, max, unit)
  return function(v)
    local n = int(trim(v), min, max)
    if n == nil then
      return nil, string.format("is not an integer from %d to %d%s", min, max, unit)
    end
    return n
  end
end

local function p_kv(v)
  local m, err = kv_list(v)
  if type(m) ~= "table" then return nil, "is not a k=v list (" .. tostring(err) .. ")" end
  if next(m) == nil then return nil, "is an empty list" end
  return m
end

local PARSERS = {
  internal = function(v)
    local b = bool(trim(v))
    if b == nil then return nil, "is not a boolean (true or false)" end
    return b
  end,
  ["source-ranges"] = function(v)
    local items = split(v, ",")
    if #items == 0 then return nil, "is an empty list" end
    for _, r in ipairs(items) do
      if not is_cidr(r) then
        return nil, "has item " .. quote(r) .. ", not a CIDR (like 203.0.113.0/24)"
      end
    end
    return items
  end,
  ["healthcheck-protocol"] = function(v)
    local l = trim(v):lower()
    if l == "tcp" or l == "http" or l == "https" then return l end
    return nil, "is not one of tcp, http, https"
  end,
  ["healthcheck-port"] = function(v)
    local s = trim(v)
    if s == "traffic-port" or int(s, 1, 65535) then return s end
    return nil, "is not traffic-port or a port number from 1 to 65535"
  end,
  ["healthcheck-path"] = function(v)
    local s = trim(v)
    if s:sub(1, 1) == "/" and #s <= 1024 and not s:find("[%s%c]") then return s end
    return nil, "is not an HTTP path starting with /"
  end,
  ["healthcheck-interval"] = p_int(1, 3600, " (seconds)"),
  ["healthcheck-timeout"] = p_int(1, 3600, " (seconds)"),
  ["healthcheck-healthy-threshold"] = p_int(1, 10, ""),
  ["healthcheck-unhealthy-threshold"] = p_int(1, 10, ""),
  ["proxy-protocol"] = function(v)
    local l = trim(v):lower()
    local b = bool(l)
    if b ~= nil then return b and "any" or false end -- "any": the module picks
    if l == "v1" or l == "v2" then return l end
    return nil, "is not true, false, v1 or v2"
  end,
  ["idle-timeout"] = p_int(1, 86400, " (seconds)"),
  ["node-selector"] = p_kv,
  ["resource-tags"] = function(v)
    local m, why = kv_list(v)
    if type(m) ~= "table" then return nil, "is not a K=V list (" .. tostring(why) .. ")" end
    for k, val in pairs(m) do
      if #k > 128 or #val > 256 then
        return nil, "has a tag over 128 (key) or 256 (value) bytes: " .. quote(k)
      end
    end
    return m
  end,
}

-- Checked (and reported) in this order.
local ORDER = {
  "internal", "source-ranges", "healthcheck-protocol", "healthcheck-port",
  "healthcheck-path", "healthcheck-interval", "healthcheck-timeout",
  "healthcheck-healthy-threshold", "healthcheck-unhealthy-threshold",
  "proxy-protocol", "idle-timeout", "node-selector", "resource-tags",
}

-- Full annotation key -> { name, key, order }, built once at load; order is
-- the place in ORDER. Every key is a constant, never built in a hook.
local BY_KEY = {}
for i, name in ipairs(ORDER) do
  BY_KEY[P .. name] = { name = name, key = P .. name, order = i }
end
local PREFIX = "^" .. P:gsub("%p", "%%%0") -- a pattern matching P at the start
local KNOWN = "(known: " .. P .. table.concat(ORDER, ", " .. P) .. ")"
local NODE_SELECTOR, RESOURCE_TAGS = P .. "node-selector", P .. "resource-tags"
local EMPTY = {}

-- Every ccmhost.io/ key of the Service, parsed (nil when there is none);
-- nil, why on an error. One pass over the annotations the Service has,
-- each dispatched through BY_KEY, rather than a sorted list of its keys and
-- one lookup per known key: the cost follows the Service's annotations.
-- The reports do not depend on the order of the pass: an unknown key wins,
-- the first in sort order; then the bad value first in ORDER.
local function parse_all(service)
  local out, unknown
  local bad, bad_value, bad_why
  for k, v in pairs(service.annotations or EMPTY) do
    local spec = BY_KEY[k]
    if spec ~= nil then
      local val, why = PARSERS[spec.name](v)
      if val == nil then
        if bad == nil or spec.order < bad.order then bad, bad_value, bad_why = spec, v, why end
      else
        out = out or {}
        out[spec.name] = val
      end
    elseif k:find(PREFIX) and (unknown == nil or k < unknown) then
      unknown = k
    end
  end
  if unknown then return nil, "unknown annotation " .. quote(unknown) .. " " .. KNOWN end
  if bad then return nil, bad.key .. ": " .. quote(bad_value) .. " " .. bad_why end
  return out or EMPTY
end

---------------------------------------------------------------- mapping
-- mapper(opts, value, service, all) -> nil on success, or the reason.

local function unsupported(what)
  return function() return what end
end

local function ranged(option, min, max)
  return function(opts, v, _, module)
    if v < min or v > max then
      return string.format("%d is outside %d-%d on %s", v, min, max, module)
    end
    opts[option] = v
  end
end

local function set(option)
  return function(opts, v) opts[option] = v end
end

local function monitor(option)
  return function(opts, v)
    opts[option] = v
    opts["enable-health-monitor"] = true
  end
end

local NO_HC_GCP = "the gcp module's health check is kube-proxy's /healthz, " ..
  "set by the module (GCP L4 load balancers), not configurable"
local NO_HC_OS = "the openstack module derives the monitor type, port and path " ..
  "from the Service (HTTP /healthz on healthCheckNodePort for Local)"
local NO_LAB = "the lab module has no such setting (it only hands out addresses)"

local MAP = {
  aws = {
    internal = set("internal"),
    ["source-ranges"] = unsupported("the aws module has no source-ranges option; " ..
      "set spec.loadBalancerSourceRanges"),
    ["healthcheck-protocol"] = set("healthcheck-protocol"),
    ["healthcheck-port"] = set("healthcheck-port"),
    ["healthcheck-path"] = set("healthcheck-path"),
    ["healthcheck-interval"] = ranged("healthcheck-interval", 5, 300),
    ["healthcheck-timeout"] = ranged("healthcheck-timeout", 2, 120),
    ["healthcheck-healthy-threshold"] = ranged("healthcheck-healthy-threshold", 2, 10),
    ["healthcheck-unhealthy-threshold"] = ranged("healthcheck-unhealthy-threshold", 2, 10),
    ["proxy-protocol"] = function(opts, v, service)
      if v == false then return end
      -- the module speaks v1 on a Classic ELB and v2 on an NLB
      local nlb = (service.annotations or {})
        ["service.beta.kubernetes.io/aws-load-balancer-type"] == "nlb"
      if v == "v1" and nlb then return "an AWS NLB speaks proxy protocol v2 only" end
      if v == "v2" and not nlb then return "a Classic ELB speaks proxy protocol v1 only" end
      opts["proxy-protocol"] = true
    end,
    ["idle-timeout"] = ranged("connection-idle-timeout", 1, 4000),
  },
  gcp = {
    internal = function(opts, v)
      opts["load-balancer-type"] = v and "internal" or "external"
    end,
    ["source-ranges"] = set("load-balancer-source-ranges"),
    ["healthcheck-protocol"] = unsupported(NO_HC_GCP),
    ["healthcheck-port"] = unsupported(NO_HC_GCP),
    ["healthcheck-path"] = unsupported(NO_HC_GCP),
    ["healthcheck-interval"] = unsupported(NO_HC_GCP),
    ["healthcheck-timeout"] = unsupported(NO_HC_GCP),
    ["healthcheck-healthy-threshold"] = unsupported(NO_HC_GCP),
    ["healthcheck-unhealthy-threshold"] = unsupported(NO_HC_GCP),
    ["proxy-protocol"] = function(_, v)
      if v ~= false then
        return "GCP passthrough network load balancers do not speak proxy protocol"
      end
    end,
    ["idle-timeout"] = unsupported("GCP passthrough network load balancers have no " ..
      "idle timeout to set"),
  },
  openstack = {
    internal = set("internal-load-balancer"),
    ["source-ranges"] = set("load-balancer-source-ranges"),
    ["healthcheck-protocol"] = unsupported(NO_HC_OS),
    ["healthcheck-port"] = unsupported(NO_HC_OS),
    ["healthcheck-path"] = unsupported(NO_HC_OS),
    ["healthcheck-interval"] = monitor("health-monitor-delay"),
    ["healthcheck-timeout"] = monitor("health-monitor-timeout"),
    ["healthcheck-healthy-threshold"] = monitor("health-monitor-max-retries"),
    ["healthcheck-unhealthy-threshold"] = monitor("health-monitor-max-retries-down"),
    ["proxy-protocol"] = function(opts, v)
      if v == false then return end
      opts["proxy-protocol"] = v == "v2" and "v2" or "v1"
    end,
    ["idle-timeout"] = function(opts, v)
      -- Octavia has two data-idle timeouts (client side, member side), in ms
      opts["timeout-client-data"] = v * 1000
      opts["timeout-member-data"] = v * 1000
    end,
  },
  lab = {
    internal = function(_, v)
      if v then return "the lab module has no internal load balancers" end
    end,
  },
}

-- Keys that do not become options: handled by the hooks below, any module.
local HOOKED = { ["node-selector"] = true, ["resource-tags"] = true }

local policy = {}

function policy.load_balancer_options(service, ctx)
  local values, why = parse_all(service)
  if not values then return nil, why end
  if ctx.module == nil then
    return {} -- no module at hand: validated, nothing to map onto
  end
  local map = MAP[ctx.module] or {}
  local opts = {}
  for _, name in ipairs(ORDER) do
    local v = values[name]
    if v ~= nil and not HOOKED[name] then
      local mapper = map[name]
      local err
      if mapper then
        err = mapper(opts, v, service, ctx.module)
      elseif ctx.module == "lab" then
        err = NO_LAB
      else
        err = "no mapping for the " .. ctx.module .. " module"
      end
      if err then return nil, P .. name .. " cannot be honoured: " .. err end
    end
  end
  if ctx.module == "aws" then
    local iv, to = opts["healthcheck-interval"], opts["healthcheck-timeout"]
    if iv and to and to >= iv then
      return nil, string.format("%shealthcheck-timeout (%d) must be less than " ..
        "%shealthcheck-interval (%d) on aws", P, to, P, iv)
    end
  elseif ctx.module == "openstack" then
    local d, to = opts["health-monitor-delay"], opts["health-monitor-timeout"]
    if d and to and to > d then
      return nil, string.format("%shealthcheck-timeout (%d) must not exceed " ..
        "%shealthcheck-interval (%d) on openstack", P, to, P, d)
    end
  end
  return opts
end

function policy.backend_nodes(service, nodes, ctx) -- luacheck: no unused args
  local v = (service.annotations or EMPTY)[NODE_SELECTOR]
  if v == nil then return nodes end
  local want = p_kv(v)
  if not want then return nodes end -- rejected by load_balancer_options
  local kept = {}
  for _, node in ipairs(nodes) do
    if match_labels(node.labels or EMPTY, want) then kept[#kept + 1] = node end
  end
  return kept
end

function policy.resource_tags(service, ctx) -- luacheck: no unused args
  local v = (service.annotations or EMPTY)[RESOURCE_TAGS]
  if v == nil then return {} end
  local tags = kv_list(v)
  return type(tags) == "table" and tags or {} -- bad values: rejected by options
end

return policy
