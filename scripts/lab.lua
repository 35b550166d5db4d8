-- lab.lua: Service annotations under lab.ccmhost.io/ -> the lab module's
-- options (pool, ipv4-address, ipv6-address, declared in modules/lab/lab.c).
-- It only validates and translates; whether an address is inside a pool is
-- the module's check, made with the pools of its config.
--
--   lab.ccmhost.io/pool:          name of the pool(s) to allocate from
--                                 ([a-z0-9-], as in the lab config's NAME=range)
--   lab.ccmhost.io/ipv4-address:  fixed IPv4 address (wins over loadBalancerIP)
--   lab.ccmhost.io/ipv6-address:  fixed IPv6 address (wins over loadBalancerIP)
--
-- Any other key under lab.ccmhost.io/ is rejected as a likely typo.

local PREFIX = "lab.ccmhost.io/"

local KNOWN = { pool = true, ["ipv4-address"] = true, ["ipv6-address"] = true }

-- Shared ccm helpers (docs/policies.md), bound once at load.
local quote, trim = ccm.quote, ccm.trim
local is_ipv4, is_ipv6 = ccm.is_ipv4, ccm.is_ipv6

local function has_family(service, family)
  local fams = service.ip_families or {}
  if #fams == 0 then return true end -- not set: the cluster decides
  for _, f in ipairs(fams) do
    if f == family then return true end
  end
  return false
end

local policy = {}

function policy.load_balancer_options(service, ctx)
  if ctx.module ~= nil and ctx.module ~= "lab" then return {} end
  local ann = service.annotations or {}
  local opts = {}

  -- Typos in our own prefix are errors, not silently ignored settings.
  local keys = {}
  for k in pairs(ann) do
    if k:sub(1, #PREFIX) == PREFIX then keys[#keys + 1] = k end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if not KNOWN[k:sub(#PREFIX + 1)] then
      return nil, "unknown annotation " .. quote(k) ..
        " (known: lab.ccmhost.io/pool, lab.ccmhost.io/ipv4-address, " ..
        "lab.ccmhost.io/ipv6-address)"
    end
  end

  local pool = ann[PREFIX .. "pool"]
  if pool ~= nil then
    local p = trim(pool)
    if p == "" then
      return nil, PREFIX .. "pool is empty (name a pool of the lab config)"
    end
    if #p > 63 or not p:match("^[a-z0-9-]+$") then
      return nil, PREFIX .. "pool: " .. quote(pool) ..
        " is not a pool name (lowercase letters, digits and '-', at most 63)"
    end
    opts.pool = p
  end

  local v4 = ann[PREFIX .. "ipv4-address"]
  if v4 ~= nil then
    local a = trim(v4)
    if not is_ipv4(a) then
      return nil, PREFIX .. "ipv4-address: " .. quote(v4) ..
        " is not an IPv4 address (like 192.0.2.10)"
    end
    if not has_family(service, "IPv4") then
      return nil, PREFIX .. "ipv4-address is set but spec.ipFamilies has no IPv4"
    end
    opts["ipv4-address"] = a
  end

  local v6 = ann[PREFIX .. "ipv6-address"]
  if v6 ~= nil then
    local a = trim(v6)
    if not is_ipv6(a) then
      return nil, PREFIX .. "ipv6-address: " .. quote(v6) ..
        " is not an IPv6 address (like 2001:db8::10)"
    end
    if not has_family(service, "IPv6") then
      return nil, PREFIX .. "ipv6-address is set but spec.ipFamilies has no IPv6"
    end
    opts["ipv6-address"] = a:lower()
  end

  return opts
end

return policy
