-- default.lua: the host's built-in behaviour written out as a policy, to copy
-- from. It names load balancers as upstream does, sets no options and no tags
-- and keeps every backend node. It must stay equivalent to the built-ins.
--
-- How a policy works (docs/policies.md has the full contract):
--
-- * The file is a Lua 5.4 chunk that RETURNS a table of hooks. Every hook is
--   optional; a hook you leave out falls back to the host's built-in default
--   (exactly what this file does).
-- * It runs in a sandbox: the base library without load/loadfile/dofile/
--   require/collectgarbage/print, and string (without dump), table, math,
--   utf8. There is no io, os or debug. Writing a global is an error, so keep
--   everything in locals, as below.
-- * Every call has an instruction budget and a deadline: keep hooks short and
--   free of unbounded loops.
-- * Inputs (service, node, nodes, metadata, ctx) are read-only tables.
-- * A read-only global `ccm` offers helpers:
--     ccm.IMPLEMENTED_ELSEWHERE   return it from load_balancer_options to make
--                                 the host skip the Service silently
--     ccm.split(s[, sep])         "a, b,,c" -> {"a", "b", "c"} (sep ",")
--     ccm.kv_list(s)              "k1=v1,k2=v2,keyonly" -> {k1="v1", k2="v2",
--                                 keyonly=""}; nil, "reason" on an empty key
--     ccm.bool(s)                 Go ParseBool spellings -> true/false, else nil
--     ccm.int(s, min, max)        decimal integer within [min, max], else nil
--     ccm.trim(s)                 s without leading/trailing whitespace
--     ccm.quote(s)                '"s"' for a message: controls, '"' and '\' -> '?',
--                                 over 80 characters cut to 77 + "..."
--     ccm.is_ipv4(s), ccm.is_ipv6(s)  an address (no leading zeros in IPv4)
--     ccm.is_cidr(s[, family])    ADDR/PREFIX; family 4, 6 or nil for either
--     ccm.match_labels(labels, selector)  every selector key is a label with
--                                 that value ("" in the selector: any value)
--     ccm.default_name(service)   "a" + UID without dashes, cut to 32
--     ccm.log(msg)                a line in the host log
--
-- The tables the hooks receive:
--   service: namespace, name, uid, labels, annotations (string maps), type,
--            load_balancer_class, load_balancer_ip, external_traffic_policy,
--            session_affinity, health_check_node_port,
--            ports = {{name, protocol, port, node_port, target_port,
--                      app_protocol}, ...},
--            source_ranges, ip_families, external_ips (lists of strings)
--   node:    name, uid, provider_id, labels, taints = {{key, value, effect}},
--            addresses = {{type, address}}, ready, unschedulable, pod_cidrs
--   metadata (node_labels): provider_id, instance_type, zone, region, labels
--   ctx:     cluster_name, provider (the provider's name in the host config),
--            module (the module's own name: "aws", "gcp", "openstack", "lab";
--            nil when no module is at hand), class (loadBalancerClass served
--            by that provider, nil for the default provider)

local policy = {}

-- The load balancer's cloud name. The host checks it against the module's
-- name rules and records it on first use: changing this hook later never
-- renames (or orphans) an existing load balancer, only new Services get the
-- new name.
function policy.load_balancer_name(service, ctx) -- luacheck: no unused args
  -- Same as ccm.default_name(service): "a" + UID without dashes, cut to 32.
  local uid = (service.uid or ""):gsub("-", "")
  return ("a" .. uid):sub(1, 32)
end

-- Provider options: parse, validate, default and translate the Service's
-- annotations here. Return a table {option = value}; value types are
-- string, integer, boolean or a list of strings, and must match what the
-- module declares (`ccm-host --check-policy FILE --provider MODULE.so` lists
-- them). Unknown keys are rejected by the host.
--
-- Return nil, "reason" to reject the Service: the host records a Warning
-- Event naming this policy, the line and the reason, and makes no cloud call.
-- Return ccm.IMPLEMENTED_ELSEWHERE when another controller owns the Service.
--
-- When several policy files are configured, their option tables merge in
-- order, so a provider-specific policy returns {} for other modules:
--   if ctx.module ~= nil and ctx.module ~= "aws" then return {} end
function policy.load_balancer_options(service, ctx) -- luacheck: no unused args
  return {}
end

-- The subset of `nodes` that back the load balancer. The host has already
-- applied upstream's predicates (ready, not excluded, ...). Return a list of
-- the node tables you keep, as received.
function policy.backend_nodes(service, nodes, ctx) -- luacheck: no unused args
  return nodes
end

-- Tags for every cloud resource the module creates for this Service, as
-- {key = value}. The module adds its own ownership tags.
function policy.resource_tags(service, ctx) -- luacheck: no unused args
  return {}
end

-- Extra labels for a Node from its instance metadata, as {key = value}. The
-- host drops keys under kubernetes.io/ or k8s.io/ (and their subdomains), as
-- upstream filters AdditionalLabels.
function policy.node_labels(node, metadata, ctx) -- luacheck: no unused args
  return {}
end

return policy
