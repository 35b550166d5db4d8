-- .luacheckrc: luacheck settings for the shipped policies. The standard is
-- Lua 5.4 cut down to what the policy sandbox offers (host/policy), plus the
-- read-only `ccm` helper table; nothing here may name io, os, debug or load.
stds.ccm_policy = {
  read_globals = {
    "_VERSION", "assert", "error", "getmetatable", "ipairs", "next", "pairs",
    "pcall", "rawequal", "rawget", "rawlen", "rawset", "select",
    "setmetatable", "tonumber", "tostring", "type", "xpcall",
    string = { fields = {
      "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower",
      "match", "pack", "packsize", "rep", "reverse", "sub", "unpack", "upper",
    } },
    table = { fields = {
      "concat", "insert", "move", "pack", "remove", "sort", "unpack",
    } },
    math = { fields = {
      "abs", "ceil", "cos", "deg", "exp", "floor", "fmod", "huge", "log",
      "max", "maxinteger", "min", "mininteger", "modf", "pi", "rad",
      "random", "randomseed", "sin", "sqrt", "tan", "tointeger", "type",
      "ult", "acos", "asin", "atan",
    } },
    utf8 = { fields = {
      "char", "charpattern", "codepoint", "codes", "len", "offset",
    } },
    ccm = { fields = {
      "IMPLEMENTED_ELSEWHERE", "split", "kv_list", "bool", "int",
      "trim", "quote", "is_ipv4", "is_ipv6", "is_cidr", "match_labels",
      "default_name", "log",
    } },
  },
}
std = "ccm_policy"
max_line_length = 100
