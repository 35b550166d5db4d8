-- openstack.lua: the Service annotations of upstream's OpenStack cloud
-- controller manager (loadbalancer.openstack.org/*, the internal annotation
-- and the generic source-ranges one) -> the openstack module's options
-- (docs/policies-shipped.md, "openstack"), validated; node-selector ->
-- backend nodes. It makes no cloud decisions: unset values are the module's.
--
-- Option names are the annotation suffixes; service.beta.kubernetes.io/
-- openstack-internal-load-balancer becomes internal-load-balancer. Unknown
-- keys under loadbalancer.openstack.org/ are rejected as likely typos.

local O = "loadbalancer.openstack.org/"
local INTERNAL = "service.beta.kubernetes.io/openstack-internal-load-balancer"
local RANGES = "service.beta.kubernetes.io/load-balancer-source-ranges"

-- Annotations the module writes itself (status); never options.
local WRITTEN = { "load-balancer-address" }

-- Shared ccm helpers (docs/policies.md), bound once at load.
local quote, trim, is_cidr = ccm.quote, ccm.trim, ccm.is_cidr
local match_labels = ccm.match_labels
local bool, int, split, kv_list = ccm.bool, ccm.int, ccm.split, ccm.kv_list

local UUID = "^" .. ("%x"):rep(8) .. "%-" .. ("%x"):rep(4) .. "%-" ..
  ("%x"):rep(4) .. "%-" .. ("%x"):rep(4) .. "%-" .. ("%x"):rep(12) .. "$"

local function is_uuid(s)
  return s:match(UUID) ~= nil
end

local function is_dns_name(s)
  if #s > 253 then return false end
  for label in (s .. "."):gmatch("([^.]*)%.") do
    if #label == 0 or #label > 63 or not label:match("^[a-z0-9-]+$")
       or label:find("^%-") or label:find("%-$") then
      return false
    end
  end
  return true
end

---------------------------------------------------------------- parsers
-- Each takes the raw value and returns the option value, or nil and the end
-- of a message.

local function p_bool(v)
  local b = bool(trim(v))
  if b == nil then return nil, "is not a boolean (true or false)" end
  return b
end

local function p_int(min, max, unit)
  return function(v)
    local n = int(trim(v), min, max)
    if n == nil then
      return nil, string.format("is not an integer from %d to %d%s", min, max, unit or "")
    end
    return n
  end
end

local function p_uuid(what)
  return function(v)
    local s = trim(v):lower()
    if not is_uuid(s) then
      return nil, "is not a " .. what .. " UUID (like 0f3a6c2e-1b2d-4e5f-8a9b-0c1d2e3f4a5b)"
    end
    return s
  end
end

local function p_name(what)
  return function(v)
    local s = trim(v)
    if s == "" or #s > 255 or s:find("%c") then return nil, "is not " .. what end
    return s
  end
end

-- Octavia listener timeouts: 0 .. 365 days, in milliseconds.
local p_timeout = p_int(0, 31536000000, " (milliseconds)")

local METHODS = { ROUND_ROBIN = true, LEAST_CONNECTIONS = true, SOURCE_IP = true,
                  SOURCE_IP_PORT = true }

-- Annotation suffix -> parser, checked in this order.
local SPECS = {
  { "floating-network-id", p_uuid("network") },
  { "floating-subnet-id", p_uuid("subnet") },
  { "floating-subnet", p_name("a subnet name pattern") },
  { "floating-subnet-tags", function(v)
      local tags = split(v, ",")
      if #tags == 0 then return nil, "is an empty list" end
      return tags
    end },
  { "keep-floatingip", p_bool },
  { "class", function(v)
      local s = trim(v)
      if s:match("^[%w_.-]+$") and #s <= 255 then return s end
      return nil, "is not a [LoadBalancerClass] name of the module config"
    end },
  { "subnet-id", p_uuid("subnet") },
  { "network-id", p_uuid("network") },
  { "member-subnet-id", p_uuid("subnet") },
  { "port-id", p_uuid("port") },
  { "flavor-id", p_uuid("flavor") },
  { "availability-zone", function(v)
      local s = trim(v)
      if s:match("^[%w_.:-]+$") and #s <= 255 then return s end
      return nil, "is not an availability zone name"
    end },
  { "connection-limit", function(v)
      local n = int(trim(v), -1, 2147483647)
      if n ~= nil and n ~= 0 then return n end
      return nil, "is not -1 (unlimited) or a positive integer"
    end },
  { "proxy-protocol", function(v)
      local l = trim(v):lower()
      if l == "true" or l == "v1" then return "v1" end
      if l == "v2" then return "v2" end
      if l == "false" then return false end
      return nil, "is not true, v1, v2 or false"
    end },
  { "x-forwarded-for", p_bool },
  { "lb-method", function(v)
      local u = trim(v):upper()
      if METHODS[u] then return u end
      return nil, "is not one of ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP, SOURCE_IP_PORT"
    end },
  { "timeout-client-data", p_timeout },
  { "timeout-member-connect", p_timeout },
  { "timeout-member-data", p_timeout },
  { "timeout-tcp-inspect", p_timeout },
  { "default-tls-container-ref", function(v)
      local s = trim(v)
      local id = s:match("^https?://[^/%s]+/[^%s]-v1/containers/([%x-]+)$") or
        s:match("^https?://[^/%s]+/[^%s]-v1/secrets/([%x-]+)$")
      if id and is_uuid(id:lower()) then return s end
      return nil, "is not a Barbican reference (https://<barbican>/v1/containers/<uuid> " ..
        "or .../v1/secrets/<uuid>)"
    end },
  { "enable-health-monitor", p_bool },
  { "health-monitor-delay", p_int(1, 86400, " (seconds)") },
  { "health-monitor-timeout", p_int(1, 86400, " (seconds)") },
  { "health-monitor-max-retries", p_int(1, 10) },
  { "health-monitor-max-retries-down", p_int(1, 10) },
  { "hostname", function(v)
      local s = trim(v):lower()
      if is_dns_name(s) then return s end
      return nil, "is not a DNS name"
    end },
  { "load-balancer-id", p_uuid("load balancer") },
}

-- node-selector: "k=v, k2=v2, k3" (a key alone matches any value).
local function parse_selector(v)
  local sel, err = kv_list(v)
  if type(sel) ~= "table" then return nil, "is not a k=v list (" .. tostring(err) .. ")" end
  if next(sel) == nil then return nil, "is an empty list" end
  return sel
end

local function parse_ranges(v)
  local ranges = split(v, ",")
  if #ranges == 0 then return nil, "is an empty list" end
  for _, r in ipairs(ranges) do
    if not is_cidr(r) then
      return nil, "has item " .. quote(r) .. ", not a CIDR (like 203.0.113.0/24)"
    end
  end
  return ranges
end

-- Full annotation key -> spec, built once at load; spec.order is the order
-- of the checks: the internal annotation, SPECS, node-selector (validated
-- here, used by backend_nodes), then source-ranges (only when
-- spec.loadBalancerSourceRanges is empty). When several annotations are
-- bad, the lowest order is reported. Keys the module writes map to false.
local BY_KEY = {}
for _, suffix in ipairs(WRITTEN) do BY_KEY[O .. suffix] = false end
local RANGES_SPEC = { key = RANGES, name = "load-balancer-source-ranges", parse = parse_ranges }
local ALL = { { key = INTERNAL, name = "internal-load-balancer", parse = p_bool } }
for _, spec in ipairs(SPECS) do
  ALL[#ALL + 1] = { key = O .. spec[1], name = spec[1], parse = spec[2] }
end
ALL[#ALL + 1] = { key = O .. "node-selector", parse = parse_selector, hook = true }
ALL[#ALL + 1] = RANGES_SPEC
for i, spec in ipairs(ALL) do
  spec.order = i
  BY_KEY[spec.key] = spec
end

local NODE_SELECTOR = O .. "node-selector"
local PREFIX = "^" .. O:gsub("%p", "%%%0") -- a pattern matching O at the start
local FLOATING = { "floating-network-id", "floating-subnet-id", "floating-subnet",
                   "floating-subnet-tags" }
local MONITOR = { "health-monitor-delay", "health-monitor-timeout",
                  "health-monitor-max-retries", "health-monitor-max-retries-down" }
local EMPTY = {}

local function reject(key, value, why)
  return nil, key .. ": " .. quote(value) .. " " .. why
end

local function for_openstack(ctx)
  return ctx.module == nil or ctx.module == "openstack"
end

local policy = {}

function policy.load_balancer_options(service, ctx)
  if not for_openstack(ctx) then return {} end
  local opts = {}
  local unknown               -- the first unknown key under O, in sort order
  local bad, bad_value, bad_why -- the bad annotation of lowest order so far

  -- One pass over the annotations the Service has, each dispatched through
  -- BY_KEY, rather than one lookup per known annotation and a sorted list
  -- of the keys under O: the cost follows the few annotations a Service
  -- sets, not the 30 this policy knows.
  for k, v in pairs(service.annotations or EMPTY) do
    local spec = BY_KEY[k]
    if spec then
      if spec ~= RANGES_SPEC or #(service.source_ranges or EMPTY) == 0 then
        local val, why = spec.parse(v)
        if val == nil then
          if bad == nil or spec.order < bad.order then bad, bad_value, bad_why = spec, v, why end
        elseif not spec.hook and (val ~= false or spec.name ~= "proxy-protocol") then
          opts[spec.name] = val
        end
      end
    elseif spec == nil and k:find(PREFIX) and (unknown == nil or k < unknown) then
      unknown = k
    end
  end

  if unknown then
    return nil, "unknown annotation " .. quote(unknown) ..
      " (docs/policies-shipped.md lists the supported ones)"
  end
  if bad then return reject(bad.key, bad_value, bad_why) end

  -- Combinations that cannot do what they say.
  if opts["internal-load-balancer"] then
    for _, s in ipairs(FLOATING) do
      if opts[s] then
        return nil, O .. s .. " has no effect on an internal load balancer (" ..
          INTERNAL .. ": true)"
      end
    end
  end
  local n_float = (opts["floating-subnet-id"] and 1 or 0) + (opts["floating-subnet"] and 1 or 0)
    + (opts["floating-subnet-tags"] and 1 or 0)
  if n_float > 1 then
    return nil, "set only one of " .. O .. "floating-subnet-id, " .. O ..
      "floating-subnet and " .. O .. "floating-subnet-tags"
  end
  local delay, timeout = opts["health-monitor-delay"], opts["health-monitor-timeout"]
  if delay and timeout and timeout > delay then
    return nil, string.format("%shealth-monitor-timeout (%d) must not exceed " ..
      "%shealth-monitor-delay (%d)", O, timeout, O, delay)
  end
  if opts["enable-health-monitor"] == false then
    for _, s in ipairs(MONITOR) do
      if opts[s] then
        return nil, O .. s .. " is set but " .. O .. "enable-health-monitor is false"
      end
    end
  end

  return opts
end

function policy.backend_nodes(service, nodes, ctx)
  if not for_openstack(ctx) then return nodes end
  local v = (service.annotations or EMPTY)[NODE_SELECTOR]
  if v == nil then return nodes end
  local want = parse_selector(v)
  if not want then return nodes end
  local kept = {}
  for _, node in ipairs(nodes) do
    if match_labels(node.labels or EMPTY, want) then kept[#kept + 1] = node end
  end
  return kept
end

return policy
