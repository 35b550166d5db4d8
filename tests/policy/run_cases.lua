-- run_cases.lua: a stand-alone Lua 5.4 runner for the shipped-policy fixtures
-- (tests/policy/cases/*.json). It emulates the engine's sandbox and the ccm
-- helpers so the fixtures document themselves; the C runner is the real check.
-- Usage: lua5.4 run_cases.lua SCRIPT.lua CASES.json [DECLS.json]

local ARRAY = {} -- metatable marking decoded JSON arrays

---------------------------------------------------------------- JSON decoder
local function json_decode(text)
  local pos = 1
  local function fail(msg)
    error(string.format("json: %s at byte %d", msg, pos), 0)
  end
  local function ws()
    pos = text:find("[^ \t\r\n]", pos) or #text + 1
  end
  local value
  local function str()
    pos = pos + 1
    local out = {}
    while true do
      local c = text:sub(pos, pos)
      if c == "" then fail("unterminated string") end
      if c == '"' then pos = pos + 1; break end
      if c == "\\" then
        local e = text:sub(pos + 1, pos + 1)
        local map = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t",
                      ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }
        if map[e] then
          out[#out + 1] = map[e]; pos = pos + 2
        elseif e == "u" then
          local cp = tonumber(text:sub(pos + 2, pos + 5), 16)
          if not cp then fail("bad \\u escape") end
          pos = pos + 6
          if cp >= 0xD800 and cp <= 0xDBFF and text:sub(pos, pos + 1) == "\\u" then
            local lo = tonumber(text:sub(pos + 2, pos + 5), 16)
            if lo and lo >= 0xDC00 and lo <= 0xDFFF then
              cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
              pos = pos + 6
            end
          end
          out[#out + 1] = utf8.char(cp)
        else
          fail("bad escape")
        end
      else
        local j = text:find('["\\]', pos) or #text + 1
        out[#out + 1] = text:sub(pos, j - 1)
        pos = j
      end
    end
    return table.concat(out)
  end
  function value()
    ws()
    local c = text:sub(pos, pos)
    if c == "{" then
      pos = pos + 1
      local t = {}
      ws()
      if text:sub(pos, pos) == "}" then pos = pos + 1; return t end
      while true do
        ws()
        if text:sub(pos, pos) ~= '"' then fail("expected key") end
        local k = str()
        ws()
        if text:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        t[k] = value()
        ws()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return t end
        if d ~= "," then fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      pos = pos + 1
      local t = setmetatable({}, ARRAY)
      ws()
      if text:sub(pos, pos) == "]" then pos = pos + 1; return t end
      while true do
        t[#t + 1] = value()
        ws()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return t end
        if d ~= "," then fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    elseif text:find("^true", pos) then
      pos = pos + 4; return true
    elseif text:find("^false", pos) then
      pos = pos + 5; return false
    elseif text:find("^null", pos) then
      pos = pos + 4; return nil
    else
      local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if not num or num == "" then fail("unexpected character") end
      pos = pos + #num
      local n = tonumber(num)
      return math.tointeger(n) or n
    end
  end
  local v = value()
  ws()
  if pos <= #text then fail("trailing data") end
  return v
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

---------------------------------------------------------------- ccm helpers
-- Same contract as the engine's (docs/policies.md).
local IMPLEMENTED_ELSEWHERE = setmetatable({}, {
  __tostring = function() return "ccm.IMPLEMENTED_ELSEWHERE" end })

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- The validators take only strings, as the engine's do.
local function need_string(fn, ...)
  local s = ...
  if type(s) ~= "string" then
    error(string.format("ccm.%s: argument 1 must be a string, not %s",
      fn, select("#", ...) == 0 and "no value" or type(s)), 3)
  end
end

local function is_ipv4(s)
  local parts = { s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$") }
  if #parts ~= 4 then return false end
  for _, p in ipairs(parts) do
    -- no leading zeros (inet_pton refuses them too)
    if #p > 3 or (#p > 1 and p:sub(1, 1) == "0") or tonumber(p) > 255 then
      return false
    end
  end
  return true
end

-- Number of 16-bit groups in one side of "::", or nil when malformed.
local function ipv6_groups(part, v4_tail)
  if part == "" then return 0 end
  local items = {}
  for g in (part .. ":"):gmatch("([^:]*):") do items[#items + 1] = g end
  local n = 0
  for i, g in ipairs(items) do
    if i == #items and v4_tail and g:find(".", 1, true) then
      if not is_ipv4(g) then return nil end
      n = n + 2
    elseif g:match("^%x%x?%x?%x?$") then
      n = n + 1
    else
      return nil
    end
  end
  return n
end

local function is_ipv6(s)
  if #s > 45 or s:find("[^%x:%.]") or not s:find(":", 1, true) then
    return false
  end
  local dc = s:find("::", 1, true)
  if not dc then return ipv6_groups(s, true) == 8 end
  if s:find("::", dc + 1, true) then return false end
  local head = ipv6_groups(s:sub(1, dc - 1), false)
  local tail = ipv6_groups(s:sub(dc + 2), true)
  return head ~= nil and tail ~= nil and head + tail <= 7
end

local function is_cidr(s, family)
  local addr, len = s:match("^([^/]+)/(%d+)$")
  if not addr then return false end
  local bits = tonumber(len)
  if family ~= 6 and is_ipv4(addr) then return bits <= 32 end
  if family ~= 4 and is_ipv6(addr) then return bits <= 128 end
  return false
end

local ccm_impl = {
  IMPLEMENTED_ELSEWHERE = IMPLEMENTED_ELSEWHERE,
  trim = function(...)
    need_string("trim", ...)
    return trim((...))
  end,
  quote = function(...)
    need_string("quote", ...)
    local s = (...):gsub("[%c\"\\]", "?")
    if #s > 80 then s = s:sub(1, 77) .. "..." end
    return '"' .. s .. '"'
  end,
  is_ipv4 = function(...)
    need_string("is_ipv4", ...)
    return is_ipv4((...))
  end,
  is_ipv6 = function(...)
    need_string("is_ipv6", ...)
    return is_ipv6((...))
  end,
  is_cidr = function(...)
    need_string("is_cidr", ...)
    local s, family = ...
    if family ~= nil and (math.type(family) ~= "integer" or (family ~= 4 and family ~= 6)) then
      error("ccm.is_cidr: family must be 4, 6 or nil, not " .. tostring(family), 2)
    end
    return is_cidr(s, family)
  end,
  match_labels = function(...)
    local labels, selector = ...
    for i = 1, 2 do
      local t = select(i, ...)
      if type(t) ~= "table" then
        error(string.format("ccm.match_labels: argument %d must be a table, not %s", i,
          select("#", ...) < i and "no value" or type(t)), 2)
      end
    end
    for k, want in pairs(selector) do
      local have = labels[k]
      if have == nil or (want ~= "" and have ~= want) then return false end
    end
    return true
  end,
  split = function(s, sep)
    sep = sep or ","
    local out = {}
    local start = 1
    while true do
      local i = s:find(sep, start, true)
      local item = trim(s:sub(start, (i or #s + 1) - 1))
      if item ~= "" then out[#out + 1] = item end
      if not i then break end
      start = i + #sep
    end
    return out
  end,
  kv_list = nil, -- set below (uses split)
  bool = function(s)
    local t = { ["1"] = true, t = true, T = true, TRUE = true, ["true"] = true,
                True = true, ["0"] = false, f = false, F = false,
                FALSE = false, ["false"] = false, False = false }
    if type(s) ~= "string" then return nil end
    return t[s]
  end,
  int = function(s, min, max)
    if type(s) ~= "string" or not s:match("^[-+]?%d+$") then return nil end
    local n = math.tointeger(tonumber(s))
    if not n then return nil end
    if (min and n < min) or (max and n > max) then return nil end
    return n
  end,
  default_name = function(service)
    return ("a" .. (service.uid or ""):gsub("-", "")):sub(1, 32)
  end,
  log = function(msg)
    io.stderr:write("policy log: ", tostring(msg), "\n")
  end,
}
ccm_impl.kv_list = function(s)
  local out = {}
  for _, item in ipairs(ccm_impl.split(s, ",")) do
    local eq = item:find("=", 1, true)
    local k, v
    if eq then
      k, v = trim(item:sub(1, eq - 1)), trim(item:sub(eq + 1))
    else
      k, v = item, ""
    end
    if k == "" then return nil, "empty key in \"" .. item .. "\"" end
    out[k] = v
  end
  return out
end

local function readonly(t, what)
  return setmetatable({}, {
    __index = t,
    __newindex = function(_, k) error("attempt to write " .. what .. "." .. tostring(k), 2) end,
    __metatable = false,
  })
end

local function make_env()
  local env = {}
  for _, k in ipairs({ "assert", "error", "getmetatable", "ipairs", "next",
                       "pairs", "pcall", "rawequal", "rawget", "rawlen",
                       "rawset", "select", "setmetatable", "tonumber",
                       "tostring", "type", "xpcall", "_VERSION" }) do
    env[k] = _G[k]
  end
  local str = {}
  for k, v in pairs(string) do if k ~= "dump" then str[k] = v end end
  env.string = readonly(str, "string")
  env.table = readonly(table, "table")
  env.math = readonly(math, "math")
  env.utf8 = readonly(utf8, "utf8")
  env.ccm = readonly(ccm_impl, "ccm")
  env._G = env
  return setmetatable(env, {
    __newindex = function(_, k)
      error("assignment to global '" .. tostring(k) .. "' (use local)", 2)
    end,
  })
end

---------------------------------------------------------------- objects
local function plain(t)
  -- strip the ARRAY marker so policies see ordinary tables
  if type(t) ~= "table" then return t end
  local out = {}
  for k, v in pairs(t) do out[k] = plain(v) end
  return out
end

-- Read-only proxies, like the engine's: reads pass through, writes fail,
-- # and pairs work, next() on the proxy itself sees nothing.
local function freeze(t)
  if type(t) ~= "table" then return t end
  local real = {}
  for k, v in pairs(t) do real[k] = freeze(v) end
  return setmetatable({}, {
    __index = real,
    __newindex = function(_, k)
      error("attempt to set field '" .. tostring(k) .. "' of a read-only table", 2)
    end,
    __len = function() return #real end,
    __pairs = function() return next, real, nil end,
    __metatable = false,
  })
end

local function service_table(j)
  local md, spec = j.metadata or {}, j.spec or {}
  local ports = {}
  for _, p in ipairs(spec.ports or {}) do
    ports[#ports + 1] = {
      name = p.name, protocol = p.protocol or "TCP", port = p.port,
      node_port = p.nodePort or 0,
      target_port = p.targetPort ~= nil and tostring(p.targetPort) or nil,
      app_protocol = p.appProtocol,
    }
  end
  return freeze({
    namespace = md.namespace, name = md.name, uid = md.uid,
    labels = plain(md.labels or {}), annotations = plain(md.annotations or {}),
    type = spec.type, load_balancer_class = spec.loadBalancerClass,
    load_balancer_ip = spec.loadBalancerIP,
    external_traffic_policy = spec.externalTrafficPolicy,
    session_affinity = spec.sessionAffinity,
    health_check_node_port = spec.healthCheckNodePort or 0,
    ports = ports,
    source_ranges = plain(spec.loadBalancerSourceRanges or {}),
    ip_families = plain(spec.ipFamilies or {}),
    external_ips = plain(spec.externalIPs or {}),
  })
end

local function node_table(j)
  local md, spec, st = j.metadata or {}, j.spec or {}, j.status or {}
  local ready = false
  for _, c in ipairs(st.conditions or {}) do
    if c.type == "Ready" then ready = c.status == "True" end
  end
  local taints = {}
  for _, t in ipairs(spec.taints or {}) do
    taints[#taints + 1] = { key = t.key, value = t.value, effect = t.effect }
  end
  local addrs = {}
  for _, a in ipairs(st.addresses or {}) do
    addrs[#addrs + 1] = { type = a.type, address = a.address }
  end
  return freeze({
    name = md.name, uid = md.uid, provider_id = spec.providerID,
    labels = plain(md.labels or {}), taints = taints, addresses = addrs,
    ready = ready, unschedulable = spec.unschedulable == true,
    pod_cidrs = plain(spec.podCIDRs or (spec.podCIDR and { spec.podCIDR }) or {}),
  })
end

---------------------------------------------------------------- checks
local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. show(v[k]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function is_list(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n == #v
end

local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then
    if math.type(a) ~= math.type(b) then return false end
    return a == b
  end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- The engine's validation: declared name, matching type.
local function check_types(opts, decls)
  if type(opts) ~= "table" then return "options is not a table" end
  for k, v in pairs(opts) do
    if type(k) ~= "string" then return "option key " .. tostring(k) .. " is not a string" end
    local want = decls and decls[k]
    if decls and not want then return "option " .. k .. " is not declared by the module" end
    local got
    if type(v) == "string" then got = "string"
    elseif type(v) == "boolean" then got = "bool"
    elseif math.type(v) == "integer" then got = "int"
    elseif is_list(v) then
      got = "string_list"
      for _, s in ipairs(v) do
        if type(s) ~= "string" then return "option " .. k .. " has a non-string item" end
      end
    else return "option " .. k .. " has an unsupported value " .. show(v) end
    if want and want ~= got then
      -- an empty table decodes as either list or map; accept it as a list
      return "option " .. k .. " is " .. got .. ", declared " .. want
    end
  end
  return nil
end

---------------------------------------------------------------- main
local script_path, cases_path, decls_path = arg[1], arg[2], arg[3]
if not script_path or not cases_path then
  io.stderr:write("usage: lua5.4 run_cases.lua SCRIPT.lua CASES.json [DECLS.json]\n")
  os.exit(2)
end

local decls_by_module = {}
if decls_path then
  for module, list in pairs(json_decode(read_file(decls_path))) do
    local m = {}
    for _, d in ipairs(list) do m[d.name] = d.type end
    decls_by_module[module] = m
  end
end

local env = make_env()
local chunk, cerr = load(read_file(script_path), "@" .. script_path:match("[^/]+$"), "t", env)
if not chunk then
  io.stderr:write("compile: ", cerr, "\n")
  os.exit(1)
end
local ok, policy = pcall(chunk)
if not ok or type(policy) ~= "table" then
  io.stderr:write("load: ", tostring(policy), "\n")
  os.exit(1)
end

local cases = json_decode(read_file(cases_path))
local failures, count = 0, 0

for _, case in ipairs(cases) do
  count = count + 1
  local problems = {}
  local function bad(msg) problems[#problems + 1] = msg end
  local c = case.ctx or {}
  local ctx = freeze({ cluster_name = c.cluster_name, provider = c.provider,
                       module = c.module, class = c.class })
  local svc = service_table(case.service or {})
  local exp = case.expect or {}

  -- options
  local hook = policy.load_balancer_options
  local opts, reason
  if hook then
    local okc, r1, r2 = pcall(hook, svc, ctx)
    if not okc then bad("load_balancer_options raised: " .. tostring(r1)) end
    opts, reason = r1, r2
  else
    opts = {}
  end
  if #problems == 0 then
    if exp.reject then
      if opts ~= nil then
        bad("expected a rejection containing " .. show(exp.reject) .. ", got " .. show(opts))
      elseif type(reason) ~= "string" or not reason:find(exp.reject, 1, true) then
        bad("rejection " .. show(reason) .. " lacks " .. show(exp.reject))
      end
    elseif exp.elsewhere then
      if opts ~= IMPLEMENTED_ELSEWHERE then
        bad("expected ccm.IMPLEMENTED_ELSEWHERE, got " .. show(opts) ..
            (reason and (" / " .. show(reason)) or ""))
      end
    else
      if opts == nil then
        bad("unexpected rejection: " .. show(reason))
      elseif opts == IMPLEMENTED_ELSEWHERE then
        bad("unexpected ccm.IMPLEMENTED_ELSEWHERE")
      else
        local terr = check_types(opts, decls_by_module[c.module or ""])
        if terr then bad(terr) end
        local want = plain(exp.options or {})
        if not same(opts, want) then
          bad("options " .. show(opts) .. " ~= expected " .. show(want))
        end
      end
    end
  end

  -- name
  if case.expect_name then
    local got = policy.load_balancer_name and policy.load_balancer_name(svc, ctx)
              or ccm_impl.default_name(svc)
    if got ~= case.expect_name then
      bad("name " .. show(got) .. " ~= " .. show(case.expect_name))
    end
  end

  -- tags
  if case.expect_tags then
    local got = policy.resource_tags and policy.resource_tags(svc, ctx) or {}
    if not same(plain(got), plain(case.expect_tags)) then
      bad("tags " .. show(got) .. " ~= " .. show(plain(case.expect_tags)))
    end
  end

  -- backend nodes
  if case.expect_nodes then
    local nodes = {}
    for _, n in ipairs(case.nodes or {}) do nodes[#nodes + 1] = node_table(n) end
    local kept = nodes
    if policy.backend_nodes then
      local okc, r = pcall(policy.backend_nodes, svc, nodes, ctx)
      if not okc then bad("backend_nodes raised: " .. tostring(r)) end
      kept = r or {}
    end
    local names = {}
    for _, n in ipairs(kept) do names[#names + 1] = n.name end
    if not same(names, plain(case.expect_nodes)) then
      bad("nodes " .. show(names) .. " ~= " .. show(plain(case.expect_nodes)))
    end
  end

  if #problems == 0 then
    print("ok " .. count .. " - " .. tostring(case.name))
  else
    failures = failures + 1
    print("not ok " .. count .. " - " .. tostring(case.name))
    for _, p in ipairs(problems) do print("#   " .. p) end
  end
end

print(string.format("1..%d (%d failed)", count, failures))
os.exit(failures == 0 and count > 0 and 0 or 1)
