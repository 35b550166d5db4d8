-- gcp.lua: the Service annotations of upstream's GCE provider -> the options
-- the gcp module declares (docs/policies-shipped.md, "gcp"), validated. It
-- also hands Services owned by GKE's other L4 controllers back as
-- ccm.IMPLEMENTED_ELSEWHERE. It makes no cloud decisions of its own.
--
--   networking.gke.io/load-balancer-type: Internal|External -> load-balancer-type
--     (legacy cloud.google.com/load-balancer-type, same values)
--   networking.gke.io/internal-load-balancer-allow-global-access: bool
--   networking.gke.io/internal-load-balancer-subnet: subnet name
--   alpha.cloud.google.com/load-balancer-backend-share: bool
--   cloud.google.com/network-tier: Standard|Premium -> network-tier
--   cloud.google.com/l4-rbs: enabled -> elsewhere (GKE's RBS controller)
--   service.beta.kubernetes.io/load-balancer-source-ranges: CIDR list, used
--     when spec.loadBalancerSourceRanges is empty (as upstream)
-- spec.loadBalancerClass: networking.gke.io/l4-regional-{internal,external}-legacy
-- are served here (and imply the scheme); other networking.gke.io/ classes
-- belong to GKE's own controllers.

local TYPE = "networking.gke.io/load-balancer-type"
local TYPE_OLD = "cloud.google.com/load-balancer-type"
local GLOBAL = "networking.gke.io/internal-load-balancer-allow-global-access"
local SUBNET = "networking.gke.io/internal-load-balancer-subnet"
local SHARE = "alpha.cloud.google.com/load-balancer-backend-share"
local TIER = "cloud.google.com/network-tier"
local RBS = "cloud.google.com/l4-rbs"
local RANGES = "service.beta.kubernetes.io/load-balancer-source-ranges"

local CLASS_PREFIX = "networking.gke.io/"
local CLASS_SCHEME = {
  ["networking.gke.io/l4-regional-internal-legacy"] = "internal",
  ["networking.gke.io/l4-regional-external-legacy"] = "external",
}

-- Shared ccm helpers (docs/policies.md), bound once at load.
local quote, trim, is_cidr = ccm.quote, ccm.trim, ccm.is_cidr

-- A GCE resource name (RFC 1035 label, at most 63).
local function is_gce_name(s)
  return #s <= 63 and s:match("^[a-z][a-z0-9-]*$") ~= nil and not s:find("%-$")
end

-- "internal" or "external" from one type annotation; nil, why when bad.
local function scheme_of(key, v)
  local l = trim(v):lower()
  if l == "internal" or l == "external" then return l end
  return nil, key .. ": " .. quote(v) .. " is not Internal or External"
end

local function bool_of(key, v)
  local b = ccm.bool(trim(v))
  if b == nil then
    return nil, key .. ": " .. quote(v) .. " is not a boolean (true or false)"
  end
  return b
end

local policy = {}

function policy.load_balancer_options(service, ctx)
  if ctx.module ~= nil and ctx.module ~= "gcp" then return {} end
  local ann = service.annotations or {}
  local opts = {}

  -- Other GKE L4 controllers own their classes.
  local class = service.load_balancer_class
  local class_scheme = class and CLASS_SCHEME[class]
  if class and not class_scheme and class:sub(1, #CLASS_PREFIX) == CLASS_PREFIX then
    return ccm.IMPLEMENTED_ELSEWHERE
  end

  -- Scheme: the current annotation wins over the legacy one, as upstream;
  -- two that disagree are a mistake worth reporting.
  local scheme, why
  local new, old = ann[TYPE], ann[TYPE_OLD]
  if new ~= nil then
    scheme, why = scheme_of(TYPE, new)
    if not scheme then return nil, why end
  end
  if old ~= nil then
    local s
    s, why = scheme_of(TYPE_OLD, old)
    if not s then return nil, why end
    if scheme and s ~= scheme then
      return nil, TYPE .. " (" .. new .. ") and " .. TYPE_OLD .. " (" .. old ..
        ") disagree; remove the legacy one"
    end
    scheme = scheme or s
  end
  if class_scheme then
    if scheme and scheme ~= class_scheme then
      return nil, "spec.loadBalancerClass " .. class .. " asks for an " ..
        class_scheme .. " load balancer but " .. (new and TYPE or TYPE_OLD) ..
        " says " .. scheme
    end
    scheme = class_scheme
  end
  if scheme then opts["load-balancer-type"] = scheme end
  local internal = scheme == "internal"

  -- Regional backend services for external LBs are GKE's RBS controller's.
  local rbs = ann[RBS]
  if rbs ~= nil and not internal then
    if trim(rbs) == "enabled" then return ccm.IMPLEMENTED_ELSEWHERE end
    return nil, RBS .. ": " .. quote(rbs) ..
      ' is not "enabled" (the only value: hand the Service to GKE\'s RBS controller)'
  end

  local v = ann[GLOBAL]
  if v ~= nil then
    local b
    b, why = bool_of(GLOBAL, v)
    if b == nil then return nil, why end
    if b and not internal then
      return nil, GLOBAL .. " applies only to an internal load balancer (" ..
        TYPE .. ": Internal)"
    end
    opts["internal-load-balancer-allow-global-access"] = b
  end

  v = ann[SUBNET]
  if v ~= nil then
    local s = trim(v)
    if not is_gce_name(s) then
      return nil, SUBNET .. ": " .. quote(v) ..
        " is not a subnet name (lowercase letter first, then letters, digits, '-', at most 63)"
    end
    if not internal then
      return nil, SUBNET .. " applies only to an internal load balancer (" ..
        TYPE .. ": Internal)"
    end
    opts["internal-load-balancer-subnet"] = s
  end

  v = ann[SHARE]
  if v ~= nil then
    local b
    b, why = bool_of(SHARE, v)
    if b == nil then return nil, why end
    if b and not internal then
      return nil, SHARE .. " applies only to an internal load balancer (" ..
        TYPE .. ": Internal)"
    end
    opts["load-balancer-backend-share"] = b
  end

  v = ann[TIER]
  if v ~= nil then
    local t = trim(v):lower()
    if t ~= "standard" and t ~= "premium" then
      return nil, TIER .. ": " .. quote(v) .. " is not Standard or Premium"
    end
    if t == "standard" and internal then
      return nil, TIER .. ": Standard applies only to external load balancers"
    end
    opts["network-tier"] = t
  end

  v = ann[RANGES]
  if v ~= nil and #(service.source_ranges or {}) == 0 then
    local ranges = ccm.split(v, ",")
    if #ranges == 0 then return nil, RANGES .. ": " .. quote(v) .. " is an empty list" end
    for _, r in ipairs(ranges) do
      if not is_cidr(r) then
        return nil, RANGES .. ": " .. quote(v) .. " has item " .. quote(r) ..
          ", not a CIDR (like 203.0.113.0/24)"
      end
    end
    opts["load-balancer-source-ranges"] = ranges
  end

  return opts
end

return policy
