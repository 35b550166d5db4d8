/*
 * policy_lib.c: the read-only `ccm` table every policy sees: the
 * IMPLEMENTED_ELSEWHERE sentinel, annotation parsers (split, kv_list, bool,
 * int), string validators (trim, quote, is_ipv4, is_ipv6, is_cidr),
 * match_labels, default_name and a rate-limited log. It must not give
 * access to anything outside the state (files, processes, the network, the
 * clock).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "policy/policy_int.h"
#include "util/log.h"

#define CCM_POLICY_LOG_PER_S 20 /* ccm.log lines per state per second */
#define CCM_POLICY_LOG_MAX 512  /* bytes of one ccm.log message */
#define CCM_POLICY_QUOTE_MAX 80 /* characters of a ccm.quote result body */

static bool policy_space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

/* Trim [*s, *e) in place. */
static void policy_trim(const char **s, const char **e)
{
  while (*s < *e && policy_space(**s))
    (*s)++;
  while (*e > *s && policy_space((*e)[-1]))
    (*e)--;
}

/* ccm.split(s[, sep]) -> list of trimmed, non-empty items. */
static int policy_lib_split(lua_State *L)
{
  size_t len, slen;
  const char *s, *sep, *end, *p;
  lua_Integer n = 0;

  if (lua_isnoneornil(L, 1)) {
    lua_newtable(L);
    return 1;
  }
  s = luaL_checklstring(L, 1, &len);
  sep = luaL_optlstring(L, 2, ",", &slen);
  luaL_argcheck(L, slen > 0, 2, "empty separator");
  end = s + len;
  lua_newtable(L);
  p = s;
  while (p <= end) {
    const char *q = p, *a, *b;
    while (q < end && !(q + slen <= end && memcmp(q, sep, slen) == 0))
      q++;
    a = p;
    b = q;
    policy_trim(&a, &b);
    if (b > a) {
      lua_pushlstring(L, a, (size_t)(b - a));
      lua_rawseti(L, -2, ++n);
    }
    if (q >= end)
      break;
    p = q + slen;
  }
  return 1;
}

/* ccm.kv_list("k1=v1, k2=v2, keyonly") -> {k1="v1", k2="v2", keyonly=""};
 * nil, reason on an empty key. */
static int policy_lib_kv_list(lua_State *L)
{
  size_t len;
  const char *s, *end, *p;

  lua_newtable(L);
  if (lua_isnoneornil(L, 1))
    return 1;
  s = luaL_checklstring(L, 1, &len);
  end = s + len;
  p = s;
  while (p <= end) {
    const char *q = memchr(p, ',', (size_t)(end - p));
    const char *a = p, *b, *eq, *ka, *kb, *va, *vb;
    if (q == NULL)
      q = end;
    b = q;
    policy_trim(&a, &b);
    if (b > a) {
      eq = memchr(a, '=', (size_t)(b - a));
      ka = a;
      kb = eq != NULL ? eq : b;
      va = eq != NULL ? eq + 1 : b;
      vb = b;
      policy_trim(&ka, &kb);
      policy_trim(&va, &vb);
      if (kb == ka) {
        /* The item, then the message built from it; then nil under the
         * message, so the two results are exactly nil, reason. */
        const char *item = lua_pushlstring(L, a, (size_t)(b - a));

        lua_pushfstring(L, "empty key in \"%s\"", item);
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
      }
      lua_pushlstring(L, ka, (size_t)(kb - ka));
      lua_pushlstring(L, va, (size_t)(vb - va));
      lua_rawset(L, -3);
    }
    if (q >= end)
      break;
    p = q + 1;
  }
  return 1;
}

/* ccm.bool(s): Go's strconv.ParseBool spellings, else nil. */
static int policy_lib_bool(lua_State *L)
{
  static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
  const char *s;

  if (lua_type(L, 1) == LUA_TBOOLEAN) {
    lua_settop(L, 1);
    return 1;
  }
  if (lua_type(L, 1) != LUA_TSTRING) {
    lua_pushnil(L);
    return 1;
  }
  s = lua_tostring(L, 1);
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcmp(s, yes[i]) == 0) {
      lua_pushboolean(L, 1);
      return 1;
    }
    if (strcmp(s, no[i]) == 0) {
      lua_pushboolean(L, 0);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

/* ccm.int(s[, min[, max]]): a decimal integer in [min, max], else nil. */
static int policy_lib_int(lua_State *L)
{
  lua_Integer v, lo = luaL_optinteger(L, 2, LUA_MININTEGER),
                 hi = luaL_optinteger(L, 3, LUA_MAXINTEGER);

  if (lua_type(L, 1) == LUA_TNUMBER && lua_isinteger(L, 1)) {
    v = lua_tointeger(L, 1);
  } else if (lua_type(L, 1) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, 1, &len), *d = s;
    char *end = NULL;
    long long ll;
    if (*d == '+' || *d == '-')
      d++;
    if (*d < '0' || *d > '9') {
      lua_pushnil(L);
      return 1;
    }
    errno = 0;
    ll = strtoll(s, &end, 10);
    if (errno != 0 || end != s + len) {
      lua_pushnil(L);
      return 1;
    }
    v = (lua_Integer)ll;
  } else {
    lua_pushnil(L);
    return 1;
  }
  if (v < lo || v > hi)
    lua_pushnil(L);
  else
    lua_pushinteger(L, v);
  return 1;
}

/* The validators take only strings: a number or nil there is the policy's
 * bug, and converting it would hide the bug behind a "not valid" answer.
 * The message names the helper, and the policy line that called it. */
static const char *policy_lib_checkstr(lua_State *L, int arg, const char *fn,
                                       size_t *len)
{
  if (lua_type(L, arg) != LUA_TSTRING) {
    const char *got = luaL_typename(L, arg);

    luaL_where(L, 1);
    lua_pushfstring(L, "ccm.%s: argument %d must be a string, not %s", fn,
                    arg, got);
    lua_concat(L, 2);
    lua_error(L);
  }
  return lua_tolstring(L, arg, len);
}

/* ccm.trim(s) -> s without leading and trailing whitespace. */
static int policy_lib_trim(lua_State *L)
{
  size_t len;
  const char *s = policy_lib_checkstr(L, 1, "trim", &len), *a = s, *b = s + len;

  policy_trim(&a, &b);
  if (a == s && b == s + len)
    lua_settop(L, 1); /* nothing to cut: the same string, no copy */
  else
    lua_pushlstring(L, a, (size_t)(b - a));
  return 1;
}

/* ccm.quote(s) -> s in double quotes for a message: control characters,
 * '"' and '\\' become '?', and over CCM_POLICY_QUOTE_MAX characters it is
 * cut to CCM_POLICY_QUOTE_MAX - 3 plus "...". */
static int policy_lib_quote(lua_State *L)
{
  char buf[CCM_POLICY_QUOTE_MAX + 2];
  size_t len, n;
  const char *s = policy_lib_checkstr(L, 1, "quote", &len);

  n = len > CCM_POLICY_QUOTE_MAX ? CCM_POLICY_QUOTE_MAX - 3 : len;
  buf[0] = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    buf[i + 1] = c < 0x20 || c == 0x7f || c == '"' || c == '\\' ? '?' : (char)c;
  }
  if (len > CCM_POLICY_QUOTE_MAX) {
    memcpy(buf + 1 + n, "...", 3);
    n += 3;
  }
  buf[n + 1] = '"';
  lua_pushlstring(L, buf, n + 2);
  return 1;
}

/* An address of family af (AF_INET, AF_INET6) in [s, s + len). inet_pton
 * refuses leading zeros in an IPv4 octet (glibc and musl alike), a group of
 * more than 4 hex digits, a zone and anything around the address. */
static bool policy_ip_valid(int af, const char *s, size_t len)
{
  char text[INET6_ADDRSTRLEN];
  unsigned char addr[sizeof(struct in6_addr)];

  if (len == 0 || len >= sizeof text || memchr(s, '\0', len) != NULL)
    return false;
  memcpy(text, s, len);
  text[len] = '\0';
  return inet_pton(af, text, addr) == 1;
}

/* ccm.is_ipv4(s): a dotted quad, each octet 0-255 without leading zeros. */
static int policy_lib_is_ipv4(lua_State *L)
{
  size_t len;
  const char *s = policy_lib_checkstr(L, 1, "is_ipv4", &len);

  lua_pushboolean(L, policy_ip_valid(AF_INET, s, len));
  return 1;
}

/* ccm.is_ipv6(s): RFC 4291 text, "::" and a trailing IPv4 allowed. */
static int policy_lib_is_ipv6(lua_State *L)
{
  size_t len;
  const char *s = policy_lib_checkstr(L, 1, "is_ipv6", &len);

  lua_pushboolean(L, policy_ip_valid(AF_INET6, s, len));
  return 1;
}

/* ADDRESS/PREFIX with the prefix in decimal digits (leading zeros allowed,
 * as the scripts' ccm.int check did) no larger than the family's bits;
 * family 4 or 6 restricts the address, 0 takes either. Host bits may be set
 * ("10.0.0.1/8"), as upstream's source ranges allow. */
static bool policy_cidr_valid(const char *s, size_t len, lua_Integer family)
{
  const char *slash = memchr(s, '/', len);
  unsigned prefix = 0;

  if (slash == NULL || slash == s || slash + 1 == s + len)
    return false;
  for (const char *p = slash + 1; p < s + len; p++) {
    if (*p < '0' || *p > '9')
      return false;
    if (prefix <= 128) /* past 128 it only has to stay too large */
      prefix = prefix * 10 + (unsigned)(*p - '0');
  }
  if (family != 6 && policy_ip_valid(AF_INET, s, (size_t)(slash - s)))
    return prefix <= 32;
  if (family != 4 && policy_ip_valid(AF_INET6, s, (size_t)(slash - s)))
    return prefix <= 128;
  return false;
}

/* ccm.is_cidr(s[, family]): family 4, 6 or nil (either). */
static int policy_lib_is_cidr(lua_State *L)
{
  size_t len;
  const char *s = policy_lib_checkstr(L, 1, "is_cidr", &len);
  lua_Integer family = 0;

  if (!lua_isnoneornil(L, 2)) {
    family = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : 0;
    if (family != 4 && family != 6) {
      const char *got = luaL_tolstring(L, 2, NULL);

      luaL_where(L, 1);
      lua_pushfstring(L, "ccm.is_cidr: family must be 4, 6 or nil, not %s",
                      got);
      lua_concat(L, 2);
      lua_error(L);
    }
  }
  lua_pushboolean(L, policy_cidr_valid(s, len, family));
  return 1;
}

static void policy_lib_checktable(lua_State *L, int arg, const char *fn)
{
  if (lua_type(L, arg) != LUA_TTABLE) {
    const char *got = luaL_typename(L, arg);

    luaL_where(L, 1);
    lua_pushfstring(L, "ccm.%s: argument %d must be a table, not %s", fn, arg,
                    got);
    lua_concat(L, 2);
    lua_error(L);
  }
}

/* ccm.match_labels(labels, selector): every key of selector is among
 * labels, with the same value unless the selector's value is "" (a key
 * alone in a ccm.kv_list selector: any value). The selector may be a plain
 * table or a read-only input table (walked through its __pairs). */
static int policy_lib_match_labels(lua_State *L)
{
  bool walk;

  policy_lib_checktable(L, 1, "match_labels");
  policy_lib_checktable(L, 2, "match_labels");
  lua_settop(L, 2);
  walk = luaL_getmetafield(L, 2, "__pairs") != LUA_TNIL;
  if (walk) {
    lua_pushvalue(L, 2);
    lua_call(L, 1, 3); /* iterator, state, control at 3, 4, 5 */
  } else {
    lua_pushnil(L); /* lua_next's key at 3 */
  }
  for (;;) {
    bool ok;

    if (walk) {
      lua_pushvalue(L, 3);
      lua_pushvalue(L, 4);
      lua_pushvalue(L, 5);
      lua_call(L, 2, 2);
      if (lua_isnil(L, -2))
        break;
      lua_copy(L, -2, 5);
    } else if (!lua_next(L, 2)) {
      break;
    }
    /* key, wanted value on top; then the label's value */
    lua_pushvalue(L, -2);
    lua_gettable(L, 1);
    if (lua_isnil(L, -1))
      ok = false;
    else if (lua_type(L, -2) == LUA_TSTRING && lua_rawlen(L, -2) == 0)
      ok = true;
    else
      ok = lua_compare(L, -1, -2, LUA_OPEQ);
    if (!ok) {
      lua_pushboolean(L, 0);
      return 1;
    }
    lua_settop(L, walk ? 5 : 3);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* ccm.default_name(service or uid): upstream's "a" + uid without dashes,
 * cut to 32 characters; nil without a uid. */
static int policy_lib_default_name(lua_State *L)
{
  char buf[40];
  const char *uid = NULL;

  if (lua_type(L, 1) == LUA_TSTRING)
    uid = lua_tostring(L, 1);
  else if (lua_type(L, 1) == LUA_TTABLE &&
           lua_getfield(L, 1, "uid") == LUA_TSTRING)
    uid = lua_tostring(L, -1);
  if (uid == NULL || policy_default_name(uid, buf, sizeof buf) < 2) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, buf);
  return 1;
}

/* ccm.log(...): one debug line in the host log, at most
 * CCM_POLICY_LOG_PER_S per second per state. */
static int policy_lib_log(lua_State *L)
{
  struct policy_state *st = *(struct policy_state **)lua_getextraspace(L);
  int64_t now = policy_now_ns();
  int n = lua_gettop(L);
  char where[160] = "policy";
  luaL_Buffer b;
  lua_Debug ar;

  if (log_get_level() < CCM_LOG_DEBUG)
    return 0;
  if (now - st->log_window > 1000000000) {
    st->log_window = now;
    st->log_count = 0;
  }
  if (++st->log_count > CCM_POLICY_LOG_PER_S)
    return 0;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar))
    snprintf(where, sizeof where, "%s:%d", ar.short_src, ar.currentline);
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1)
      luaL_addchar(&b, ' ');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  log_msg(CCM_LOG_DEBUG, "policy", "%s: %.*s", where, CCM_POLICY_LOG_MAX,
          lua_tostring(L, -1));
  return 0;
}

static int policy_lib_elsewhere_str(lua_State *L)
{
  lua_pushliteral(L, "ccm.IMPLEMENTED_ELSEWHERE");
  return 1;
}

static const luaL_Reg policy_lib_funcs[] = {
    {"split", policy_lib_split},
    {"kv_list", policy_lib_kv_list},
    {"bool", policy_lib_bool},
    {"int", policy_lib_int},
    {"trim", policy_lib_trim},
    {"quote", policy_lib_quote},
    {"is_ipv4", policy_lib_is_ipv4},
    {"is_ipv6", policy_lib_is_ipv6},
    {"is_cidr", policy_lib_is_cidr},
    {"match_labels", policy_lib_match_labels},
    {"default_name", policy_lib_default_name},
    {"log", policy_lib_log},
    {NULL, NULL}};

void policy_lib_open(lua_State *L, const void *elsewhere_key)
{
  lua_createtable(L, 0, 14);
  luaL_setfuncs(L, policy_lib_funcs, 0);
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, policy_lib_elsewhere_str);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "ccm.IMPLEMENTED_ELSEWHERE");
  lua_setfield(L, -2, "__name");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, elsewhere_key);
  lua_setfield(L, -2, "IMPLEMENTED_ELSEWHERE");
  policy_ro_wrap(L);
}
