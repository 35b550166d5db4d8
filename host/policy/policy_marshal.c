/*
 * policy_marshal.c: objects to read-only Lua tables, Lua results to
 * validated C results (options, names, key/values), and the built-in
 * sample objects. Readers run outside lua_pcall and must not allocate in
 * Lua; pushers run inside it. It must not run policy code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>

#include "policy/policy_int.h"
#include "util/mem.h"

#define CCM_POLICY_MAX_DECLS 1024
#define CCM_POLICY_GENERIC_CHARS "abcdefghijklmnopqrstuvwxyz0123456789-"

/* ---- read-only proxies ----------------------------------------------- */

/* A proxy is a table holding only [&policy_ro_key] = the real table (a key
 * no policy can build) under one shared, protected metatable per state:
 * cheaper to build than a metatable per proxy. */
static const char policy_ro_key = 'r';
static const char policy_ro_mt_key = 'm';
static const char policy_ro_empty_key = 'e';
static const char policy_svc_lazy_key = 'l';

static void policy_svc_materialize(lua_State *L, int real);
static int policy_svc_lazy(lua_State *L);

static int policy_ro_newindex(lua_State *L)
{
  if (lua_type(L, 2) == LUA_TSTRING)
    return luaL_error(L, "attempt to set field '%s' of a read-only table",
                      lua_tostring(L, 2));
  return luaL_error(L, "attempt to modify a read-only table");
}

static int policy_ro_index(lua_State *L)
{
  lua_rawgetp(L, 1, &policy_ro_key);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int policy_ro_len(lua_State *L)
{
  lua_rawgetp(L, 1, &policy_ro_key);
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
  return 1;
}

/* next() that walks the real table behind a proxy (and never shows the
 * proxy's private key); replaces the base next in every policy _ENV. */
int policy_ro_next(lua_State *L)
{
  bool proxy;

  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  proxy = lua_rawgetp(L, 1, &policy_ro_key) == LUA_TTABLE;
  lua_pop(L, 1);
  policy_ro_unwrap(L, 1);
  if (proxy && lua_isnil(L, 2))
    policy_svc_materialize(L, 1);
  if (lua_next(L, 1))
    return 2;
  lua_pushnil(L);
  return 1;
}

static int policy_ro_pairs(lua_State *L)
{
  lua_pushcfunction(L, policy_ro_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

/* What every read-only metatable (at the top) has besides __index:
 * writes refused, length and pairs of the real table, and hidden. */
static void policy_ro_mt_fill(lua_State *L)
{
  lua_pushcfunction(L, policy_ro_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, policy_ro_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, policy_ro_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
}

void policy_ro_init(lua_State *L)
{
  lua_createtable(L, 0, 5);
  lua_pushcfunction(L, policy_ro_index);
  lua_setfield(L, -2, "__index");
  policy_ro_mt_fill(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &policy_ro_mt_key);
  lua_newtable(L);
  policy_ro_wrap(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &policy_ro_empty_key);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, policy_svc_lazy);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &policy_svc_lazy_key);
}

void policy_ro_wrap(lua_State *L)
{
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, &policy_ro_key);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &policy_ro_mt_key);
  lua_setmetatable(L, -2);
  lua_replace(L, -2);
}

/* The same with a metatable of its own whose __index is the real table:
 * reads stay in the VM (no C call). Costs more to build; used for the
 * tables policies read most (the Service and its annotations), which are
 * cached across calls. */
void policy_ro_wrap_fast(lua_State *L)
{
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, &policy_ro_key);
  lua_createtable(L, 0, 5);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  policy_ro_mt_fill(L);
  lua_setmetatable(L, -2);
  lua_replace(L, -2);
}

/* A proxy holds its real table under a key no policy can build. */
void policy_ro_unwrap(lua_State *L, int idx)
{
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    return;
  if (lua_rawgetp(L, idx, &policy_ro_key) == LUA_TTABLE)
    lua_replace(L, idx);
  else
    lua_pop(L, 1);
}

/* ---- pushers ---------------------------------------------------------- */

static void policy_set_str(lua_State *L, const char *key, const char *v)
{
  if (v == NULL)
    return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, key);
}

static void policy_set_int(lua_State *L, const char *key, lua_Integer v)
{
  lua_pushinteger(L, v);
  lua_setfield(L, -2, key);
}

/* One shared empty read-only table for every empty list or map. */
static void policy_push_empty(lua_State *L)
{
  lua_rawgetp(L, LUA_REGISTRYINDEX, &policy_ro_empty_key);
}

static void policy_push_strv(lua_State *L, const char *const *v, size_t n)
{
  if (n == 0) {
    policy_push_empty(L);
    return;
  }
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, v[i] != NULL ? v[i] : "");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  policy_ro_wrap(L);
}

static void policy_push_kvs(lua_State *L, const struct obj_kv *kv, size_t n)
{
  if (n == 0) {
    policy_push_empty(L);
    return;
  }
  lua_createtable(L, 0, (int)n);
  for (size_t i = 0; i < n; i++) {
    if (kv[i].key == NULL)
      continue;
    lua_pushstring(L, kv[i].value != NULL ? kv[i].value : "");
    lua_setfield(L, -2, kv[i].key);
  }
  policy_ro_wrap(L);
}

/* The Service's collections are built on first read (most policies read
 * only annotations): the real table's metatable has this __index. It
 * builds from the Service of the running call only, so a table a policy
 * kept from an earlier call cannot reach a freed object. */
static const char *const policy_svc_lazy_keys[] = {
    "annotations", "labels", "ports", "source_ranges", "ip_families",
    "external_ips", NULL};

static void policy_push_ports(lua_State *L, const struct obj_service *svc)
{
  if (svc->n_ports == 0) {
    policy_push_empty(L);
    return;
  }
  lua_createtable(L, svc->n_ports, 0);
  for (size_t i = 0; i < svc->n_ports; i++) {
    const struct obj_port *p = &svc->ports[i];
    lua_createtable(L, 0, 6);
    policy_set_str(L, "name", p->name);
    policy_set_str(L, "protocol", p->protocol != NULL ? p->protocol : "TCP");
    policy_set_int(L, "port", p->port);
    if (p->node_port > 0)
      policy_set_int(L, "node_port", p->node_port);
    policy_set_str(L, "target_port", p->target_port);
    policy_set_str(L, "app_protocol", p->app_protocol);
    policy_ro_wrap(L);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  policy_ro_wrap(L);
}

static int policy_svc_lazy(lua_State *L)
{
  struct policy_state *st = *(struct policy_state **)lua_getextraspace(L);
  const struct obj_service *svc = st->call_svc;
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
  int which = -1;

  for (int i = 0; policy_svc_lazy_keys[i] != NULL; i++) {
    if (strcmp(k, policy_svc_lazy_keys[i]) == 0)
      which = i;
  }
  if (which < 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->svc_real_ref);
  if (svc == NULL || !lua_rawequal(L, 1, -1))
    return luaL_error(L, "service.%s read outside the hook call that "
                         "received this service", k);
  lua_pop(L, 1);
  switch (which) {
  case 0:
    if (svc->meta.n_annotations == 0) {
      policy_push_empty(L);
      break;
    }
    lua_createtable(L, 0, (int)svc->meta.n_annotations);
    for (size_t i = 0; i < svc->meta.n_annotations; i++) {
      const struct obj_kv *kv = &svc->meta.annotations[i];
      if (kv->key == NULL)
        continue;
      lua_pushstring(L, kv->value != NULL ? kv->value : "");
      lua_setfield(L, -2, kv->key);
    }
    policy_ro_wrap_fast(L); /* the table policies read most */
    break;
  case 1:
    policy_push_kvs(L, svc->meta.labels, svc->meta.n_labels);
    break;
  case 2:
    policy_push_ports(L, svc);
    break;
  case 3:
    policy_push_strv(L, svc->source_ranges, svc->n_source_ranges);
    break;
  case 4:
    policy_push_strv(L, svc->ip_families, svc->n_ip_families);
    break;
  default:
    policy_push_strv(L, svc->external_ips, svc->n_external_ips);
    break;
  }
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1); /* read once per table */
  return 1;
}

/* Build every lazy field of a real Service table (before iterating). */
static void policy_svc_materialize(lua_State *L, int real)
{
  if (!lua_getmetatable(L, real))
    return;
  lua_pop(L, 1);
  for (int i = 0; policy_svc_lazy_keys[i] != NULL; i++) {
    lua_getfield(L, real, policy_svc_lazy_keys[i]);
    lua_pop(L, 1);
  }
}

void policy_push_service(lua_State *L, const struct obj_service *svc,
                         int real_ref)
{
  const char *type = svc->type_name != NULL ? svc->type_name : "ClusterIP";

  lua_createtable(L, 0, 16);
  policy_set_str(L, "namespace", svc->meta.ns);
  policy_set_str(L, "name", svc->meta.name);
  policy_set_str(L, "uid", svc->meta.uid);
  policy_set_str(L, "resource_version", svc->meta.resource_version);
  policy_set_str(L, "type", type);
  policy_set_str(L, "load_balancer_class", svc->lb_class);
  policy_set_str(L, "load_balancer_ip", svc->lb_ip);
  policy_set_str(L, "external_traffic_policy", svc->external_traffic_policy);
  policy_set_str(L, "session_affinity", svc->session_affinity);
  if (svc->health_check_node_port > 0)
    policy_set_int(L, "health_check_node_port", svc->health_check_node_port);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &policy_svc_lazy_key);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawseti(L, LUA_REGISTRYINDEX, real_ref);
  policy_ro_wrap_fast(L);
}

void policy_push_node(lua_State *L, const struct obj_node *node)
{
  lua_createtable(L, 0, 10);
  policy_set_str(L, "name", node->meta.name);
  policy_set_str(L, "uid", node->meta.uid);
  policy_set_str(L, "provider_id", node->provider_id);
  policy_push_kvs(L, node->meta.labels, node->meta.n_labels);
  lua_setfield(L, -2, "labels");
  if (node->n_taints == 0)
    policy_push_empty(L);
  else
    lua_createtable(L, node->n_taints, 0);
  for (size_t i = 0; i < node->n_taints; i++) {
    lua_createtable(L, 0, 3);
    policy_set_str(L, "key", node->taints[i].key);
    policy_set_str(L, "value", node->taints[i].value);
    policy_set_str(L, "effect", node->taints[i].effect);
    policy_ro_wrap(L);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  if (node->n_taints > 0)
    policy_ro_wrap(L);
  lua_setfield(L, -2, "taints");
  lua_createtable(L, node->n_addresses, 0);
  for (size_t i = 0; i < node->n_addresses; i++) {
    lua_createtable(L, 0, 2);
    policy_set_str(L, "type", node->addresses[i].type);
    policy_set_str(L, "address", node->addresses[i].address);
    policy_ro_wrap(L);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  policy_ro_wrap(L);
  lua_setfield(L, -2, "addresses");
  if (node->ready != OBJ_COND_UNKNOWN) {
    lua_pushboolean(L, node->ready == OBJ_COND_TRUE);
    lua_setfield(L, -2, "ready");
  }
  lua_pushboolean(L, node->unschedulable);
  lua_setfield(L, -2, "unschedulable");
  policy_push_strv(L, node->pod_cidrs, node->n_pod_cidrs);
  lua_setfield(L, -2, "pod_cidrs");
  policy_ro_wrap(L);
}

void policy_push_meta(lua_State *L, const struct policy_node_meta *meta)
{
  lua_createtable(L, 0, 5);
  if (meta != NULL) {
    policy_set_str(L, "provider_id", meta->provider_id);
    policy_set_str(L, "instance_type", meta->instance_type);
    policy_set_str(L, "zone", meta->zone);
    policy_set_str(L, "region", meta->region);
  }
  lua_createtable(L, 0, meta != NULL ? (int)meta->n_labels : 0);
  for (size_t i = 0; meta != NULL && i < meta->n_labels; i++) {
    const struct ccm_kv *kv = meta->labels[i];
    if (kv == NULL || kv->key == NULL)
      continue;
    lua_pushstring(L, kv->value != NULL ? kv->value : "");
    lua_setfield(L, -2, kv->key);
  }
  policy_ro_wrap(L);
  lua_setfield(L, -2, "labels");
  policy_ro_wrap(L);
}

void policy_push_ctx(lua_State *L, const struct policy_ctx *ctx)
{
  lua_createtable(L, 0, 4);
  policy_set_str(L, "cluster_name", ctx->cluster_name);
  policy_set_str(L, "provider", ctx->provider_name);
  policy_set_str(L, "class", ctx->provider_class);
  if (ctx->provider != NULL)
    policy_set_str(L, "module", ctx->provider->name);
  policy_ro_wrap(L);
}

/* ---- names ------------------------------------------------------------ */

int policy_default_name(const char *uid, char *out, size_t cap)
{
  size_t j = 0;

  if (uid == NULL || cap < 2)
    return -1;
  out[j++] = 'a';
  for (size_t i = 0; uid[i] != '\0' && j < 32 && j + 1 < cap; i++) {
    if (uid[i] != '-')
      out[j++] = uid[i];
  }
  out[j] = '\0';
  return (int)j;
}

static bool policy_in_set(const char *set, char c)
{
  if (set == NULL)
    return c > ' ' && c < 0x7f;
  return c != '\0' && strchr(set, c) != NULL;
}

int policy_check_name(const char *name, size_t len,
                      const struct ccm_provider *prov, char *msg,
                      size_t msglen)
{
  const struct ccm_name_rules *r = NULL;
  uint32_t min = 1, max = CCM_MAX_NAME;
  const char *allowed = CCM_POLICY_GENERIC_CHARS, *first = NULL,
             *last = NULL;

  if (prov != NULL && prov->lb_name_rules != NULL &&
      prov->lb_name_rules->struct_size >=
          offsetof(struct ccm_name_rules, allowed_last) + sizeof(char *))
    r = prov->lb_name_rules;
  if (r != NULL) {
    min = r->min_length;
    max = r->max_length != 0 ? r->max_length : CCM_MAX_NAME;
    allowed = r->allowed;
    first = r->allowed_first;
    last = r->allowed_last;
  }
  if (strlen(name) != len) {
    snprintf(msg, msglen, "load-balancer name contains a NUL byte");
    return -1;
  }
  if (len < min || len > max) {
    snprintf(msg, msglen, "load-balancer name \"%.80s\" has %zu characters, "
             "allowed %u..%u", name, len, (unsigned)min, (unsigned)max);
    return -1;
  }
  for (size_t i = 0; i < len; i++) {
    if (!policy_in_set(allowed, name[i])) {
      snprintf(msg, msglen, "load-balancer name \"%.80s\": character '%c' "
               "at %zu is not allowed (allowed: %s)", name, name[i], i + 1,
               allowed != NULL ? allowed : "printable ASCII");
      return -1;
    }
  }
  if (len > 0 && first != NULL && !policy_in_set(first, name[0])) {
    snprintf(msg, msglen, "load-balancer name \"%.80s\" must start with one "
             "of \"%s\"", name, first);
    return -1;
  }
  if (len > 0 && last != NULL && !policy_in_set(last, name[len - 1])) {
    snprintf(msg, msglen, "load-balancer name \"%.80s\" must end with one "
             "of \"%s\"", name, last);
    return -1;
  }
  return 0;
}

int policy_read_name(lua_State *L, int idx, const struct ccm_provider *prov,
                     char *name, size_t cap, char *msg, size_t msglen)
{
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);

  if (s == NULL || lua_type(L, idx) != LUA_TSTRING) {
    snprintf(msg, msglen, "load_balancer_name must return a string");
    return -1;
  }
  if (policy_check_name(s, len, prov, msg, msglen) != 0)
    return -1;
  if (len >= cap) {
    snprintf(msg, msglen, "load-balancer name \"%.80s\" is longer than %zu "
             "characters", s, cap - 1);
    return -1;
  }
  memcpy(name, s, len + 1);
  return 0;
}

/* ---- options ---------------------------------------------------------- */

static const char *policy_type_name(uint32_t type)
{
  switch (type) {
  case CCM_OPT_STRING: return "a string";
  case CCM_OPT_INT: return "an integer";
  case CCM_OPT_BOOL: return "a boolean";
  case CCM_OPT_STRING_LIST: return "a list of strings";
  default: return "an unknown type";
  }
}

static const struct ccm_option_decl *
policy_find_decl(const struct ccm_provider *prov, const char *name)
{
  if (prov->options == NULL)
    return NULL;
  for (size_t i = 0; i < CCM_POLICY_MAX_DECLS && prov->options[i] != NULL;
       i++) {
    const struct ccm_option_decl *d = prov->options[i];
    if (d->struct_size < offsetof(struct ccm_option_decl, type) +
                             sizeof(d->type) ||
        d->name == NULL)
      continue;
    if (strcmp(d->name, name) == 0)
      return d;
  }
  return NULL;
}

static void policy_declared(const struct ccm_provider *prov, char *buf,
                            size_t cap)
{
  size_t used = 0;

  buf[0] = '\0';
  for (size_t i = 0; prov->options != NULL && i < CCM_POLICY_MAX_DECLS &&
                     prov->options[i] != NULL;
       i++) {
    int n = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "",
                     prov->options[i]->name != NULL ? prov->options[i]->name
                                                    : "?");
    if (n < 0 || (size_t)n >= cap - used)
      break;
    used += (size_t)n;
  }
  if (used == 0)
    snprintf(buf, cap, "none");
}

/* The type of the value at the top, or 0 with msg set. For lists, *n
 * gets the item count and *bytes their string bytes. */
static uint32_t policy_value_type(lua_State *L, const char *key, size_t *n,
                                  size_t *bytes, char *msg, size_t msglen)
{
  size_t len, count = 0;
  lua_Integer rl;

  *n = 0;
  *bytes = 0;
  switch (lua_type(L, -1)) {
  case LUA_TSTRING:
    lua_tolstring(L, -1, &len);
    if (len != strlen(lua_tostring(L, -1))) {
      snprintf(msg, msglen, "option '%s' contains a NUL byte", key);
      return 0;
    }
    *bytes = len + 1;
    return CCM_OPT_STRING;
  case LUA_TNUMBER:
    if (lua_isinteger(L, -1))
      return CCM_OPT_INT;
    snprintf(msg, msglen, "option '%s' is a float (%g); options take "
             "integers", key, (double)lua_tonumber(L, -1));
    return 0;
  case LUA_TBOOLEAN:
    return CCM_OPT_BOOL;
  case LUA_TTABLE:
    rl = (lua_Integer)lua_rawlen(L, -1);
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      count++;
      lua_pop(L, 1);
    }
    if ((lua_Integer)count != rl) {
      snprintf(msg, msglen, "option '%s' is a table but not a list of "
               "strings", key);
      return 0;
    }
    for (lua_Integer i = 1; i <= rl; i++) {
      const char *s;
      if (lua_rawgeti(L, -1, i) != LUA_TSTRING) {
        snprintf(msg, msglen, "option '%s': item %lld is a %s, not a "
                 "string", key, (long long)i, luaL_typename(L, -1));
        lua_pop(L, 1);
        return 0;
      }
      s = lua_tolstring(L, -1, &len);
      lua_pop(L, 1);
      if (len != strlen(s)) {
        snprintf(msg, msglen, "option '%s': item %lld contains a NUL byte",
                 key, (long long)i);
        return 0;
      }
      *bytes += len + 1;
    }
    *n = count;
    return CCM_OPT_STRING_LIST;
  default:
    snprintf(msg, msglen, "option '%s' is a %s; options are strings, "
             "integers, booleans or lists of strings", key,
             luaL_typename(L, -1));
    return 0;
  }
}

static int policy_cmp_opt(const void *a, const void *b)
{
  const struct ccm_option_value *x = *(const struct ccm_option_value *const *)a;
  const struct ccm_option_value *y = *(const struct ccm_option_value *const *)b;

  return strcmp(x->name, y->name);
}

static char *policy_put(char **pool, const char *s, size_t len)
{
  char *d = *pool;

  memcpy(d, s, len);
  d[len] = '\0';
  *pool += len + 1;
  return d;
}

struct policy_options *policy_options_empty(void)
{
  return mem_calloc(1, sizeof(struct policy_options));
}

struct policy_kvs *policy_kvs_empty(void)
{
  return mem_calloc(1, sizeof(struct policy_kvs));
}

int policy_read_options(lua_State *L, int idx,
                        const struct ccm_provider *prov,
                        struct policy_options **out, char *msg,
                        size_t msglen)
{
  size_t n = 0, items = 0, bytes = 0, size;
  struct policy_options *o;
  const struct ccm_option_value **ptrs;
  struct ccm_option_value *vals;
  const char **lists;
  char *pool;
  size_t k = 0;

  *out = NULL;
  idx = lua_absindex(L, idx);
  if (!lua_checkstack(L, 8)) {
    snprintf(msg, msglen, "out of Lua stack reading options");
    return -1;
  }
  /* pass 1: check every entry and size the one allocation */
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    const char *key;
    size_t klen, ln, lb;
    uint32_t type;
    if (lua_type(L, -2) != LUA_TSTRING) {
      snprintf(msg, msglen, "option names must be strings, got a %s",
               luaL_typename(L, -2));
      lua_pop(L, 2);
      return -1;
    }
    key = lua_tolstring(L, -2, &klen);
    type = policy_value_type(L, key, &ln, &lb, msg, msglen);
    if (type == 0) {
      lua_pop(L, 2);
      return -1;
    }
    if (prov != NULL) {
      const struct ccm_option_decl *d = policy_find_decl(prov, key);
      if (d == NULL) {
        char decl[512];
        policy_declared(prov, decl, sizeof decl);
        snprintf(msg, msglen, "unknown option '%s' (provider module '%s' "
                 "declares: %s)", key, prov->name ? prov->name : "?", decl);
        lua_pop(L, 2);
        return -1;
      }
      if (d->type != type) {
        snprintf(msg, msglen, "option '%s' must be %s, got %s", key,
                 policy_type_name(d->type), policy_type_name(type));
        lua_pop(L, 2);
        return -1;
      }
    }
    n++;
    items += ln;
    bytes += klen + 1 + lb;
    lua_pop(L, 1);
  }
  size = sizeof(*o) + n * (sizeof(*ptrs) + sizeof(*vals)) +
         (items + n) * sizeof(char *) + bytes;
  o = mem_calloc(1, size);
  if (o == NULL) {
    snprintf(msg, msglen, "out of memory");
    return -1;
  }
  ptrs = (const struct ccm_option_value **)(void *)(o + 1);
  vals = (struct ccm_option_value *)(void *)(ptrs + n);
  lists = (const char **)(void *)(vals + n);
  pool = (char *)(lists + items + n);
  /* pass 2: fill (the table did not change in between) */
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    struct ccm_option_value *v = &vals[k];
    if (k == n) { /* defensive: the table did not grow in between */
      lua_pop(L, 2);
      break;
    }
    size_t klen, len;
    const char *key = lua_tolstring(L, -2, &klen);
    v->struct_size = sizeof(*v);
    v->name = policy_put(&pool, key, klen);
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
      const char *s = lua_tolstring(L, -1, &len);
      v->type = CCM_OPT_STRING;
      v->string_value = policy_put(&pool, s, len);
      break;
    }
    case LUA_TNUMBER:
      v->type = CCM_OPT_INT;
      v->int_value = (int64_t)lua_tointeger(L, -1);
      break;
    case LUA_TBOOLEAN:
      v->type = CCM_OPT_BOOL;
      v->bool_value = lua_toboolean(L, -1);
      break;
    default: {
      size_t m = lua_rawlen(L, -1);
      v->type = CCM_OPT_STRING_LIST;
      v->list = lists;
      v->list_len = m;
      for (size_t i = 0; i < m; i++) {
        const char *s;
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        s = lua_tolstring(L, -1, &len);
        lists[i] = policy_put(&pool, s, len);
        lua_pop(L, 1);
      }
      lists[m] = NULL;
      lists += m + 1;
      break;
    }
    }
    ptrs[k] = v;
    k++;
    lua_pop(L, 1);
  }
  n = k;
  qsort(ptrs, n, sizeof(*ptrs), policy_cmp_opt);
  o->options = (const struct ccm_option_value *const *)ptrs;
  o->n = n;
  *out = o;
  return 0;
}

/* ---- key/values ------------------------------------------------------- */

static int policy_cmp_kv(const void *a, const void *b)
{
  const struct ccm_kv *x = *(const struct ccm_kv *const *)a;
  const struct ccm_kv *y = *(const struct ccm_kv *const *)b;

  return strcmp(x->key, y->key);
}

int policy_read_kvs(lua_State *L, int idx, const char *what,
                    struct policy_kvs **out, char *msg, size_t msglen)
{
  size_t n = 0, bytes = 0, k = 0;
  struct policy_kvs *o;
  const struct ccm_kv **ptrs;
  struct ccm_kv *kvs;
  char *pool;

  *out = NULL;
  idx = lua_absindex(L, idx);
  if (!lua_checkstack(L, 8)) {
    snprintf(msg, msglen, "out of Lua stack reading %ss", what);
    return -1;
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    size_t klen, vlen;
    const char *key, *val;
    if (lua_type(L, -2) != LUA_TSTRING) {
      snprintf(msg, msglen, "%s keys must be strings, got a %s", what,
               luaL_typename(L, -2));
      lua_pop(L, 2);
      return -1;
    }
    key = lua_tolstring(L, -2, &klen);
    if (lua_type(L, -1) != LUA_TSTRING) {
      snprintf(msg, msglen, "%s '%s' must have a string value, got a %s",
               what, key, luaL_typename(L, -1));
      lua_pop(L, 2);
      return -1;
    }
    val = lua_tolstring(L, -1, &vlen);
    if (klen == 0 || strlen(key) != klen || strlen(val) != vlen) {
      snprintf(msg, msglen, "%s '%s': empty key or NUL byte", what, key);
      lua_pop(L, 2);
      return -1;
    }
    n++;
    bytes += klen + vlen + 2;
    lua_pop(L, 1);
  }
  o = mem_calloc(1, sizeof(*o) + n * (sizeof(*ptrs) + sizeof(*kvs)) + bytes);
  if (o == NULL) {
    snprintf(msg, msglen, "out of memory");
    return -1;
  }
  ptrs = (const struct ccm_kv **)(void *)(o + 1);
  kvs = (struct ccm_kv *)(void *)(ptrs + n);
  pool = (char *)(kvs + n);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    size_t klen, vlen;
    const char *key, *val;
    if (k == n) {
      lua_pop(L, 2);
      break;
    }
    key = lua_tolstring(L, -2, &klen);
    val = lua_tolstring(L, -1, &vlen);
    kvs[k].struct_size = sizeof(kvs[k]);
    kvs[k].key = policy_put(&pool, key, klen);
    kvs[k].value = policy_put(&pool, val, vlen);
    ptrs[k] = &kvs[k];
    k++;
    lua_pop(L, 1);
  }
  n = k;
  qsort(ptrs, n, sizeof(*ptrs), policy_cmp_kv);
  o->kvs = (const struct ccm_kv *const *)ptrs;
  o->n = n;
  *out = o;
  return 0;
}

/* ---- samples ---------------------------------------------------------- */

static const char policy_sample_service[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{"
    "\"name\":\"sample\",\"namespace\":\"default\","
    "\"uid\":\"5f0c7a4e-2b1d-4c3e-9a8f-0123456789ab\","
    "\"resourceVersion\":\"1\",\"labels\":{\"app\":\"sample\"},"
    "\"annotations\":{"
    "\"service.beta.kubernetes.io/aws-load-balancer-internal\":\"true\","
    "\"service.beta.kubernetes.io/aws-load-balancer-connection-idle-"
    "timeout\":\"60\","
    "\"service.beta.kubernetes.io/aws-load-balancer-additional-resource-"
    "tags\":\"team=web, env=test\","
    "\"networking.gke.io/load-balancer-type\":\"Internal\","
    "\"example.com/owner\":\"sample-team\"}},"
    "\"spec\":{\"type\":\"LoadBalancer\",\"ports\":["
    "{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80,"
    "\"targetPort\":8080,\"nodePort\":30080},"
    "{\"name\":\"https\",\"protocol\":\"TCP\",\"port\":443,"
    "\"targetPort\":\"https\",\"nodePort\":30443}],"
    "\"externalTrafficPolicy\":\"Cluster\",\"sessionAffinity\":\"None\","
    "\"ipFamilies\":[\"IPv4\"],"
    "\"loadBalancerSourceRanges\":[\"10.0.0.0/8\",\"192.168.0.0/16\"]}}";

static const char *const policy_sample_nodes[2] = {
    "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{"
    "\"name\":\"node-a\",\"uid\":\"0a1b2c3d-0000-4000-8000-00000000000a\","
    "\"resourceVersion\":\"7\",\"labels\":{"
    "\"kubernetes.io/hostname\":\"node-a\","
    "\"topology.kubernetes.io/zone\":\"zone-a\","
    "\"node.kubernetes.io/instance-type\":\"m5.large\"}},"
    "\"spec\":{\"providerID\":\"lab://node-a\",\"podCIDRs\":[\"10.244.0.0/"
    "24\"]},"
    "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],"
    "\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.10\"},"
    "{\"type\":\"Hostname\",\"address\":\"node-a\"}]}}",
    "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{"
    "\"name\":\"node-b\",\"uid\":\"0a1b2c3d-0000-4000-8000-00000000000b\","
    "\"resourceVersion\":\"9\",\"labels\":{"
    "\"kubernetes.io/hostname\":\"node-b\","
    "\"topology.kubernetes.io/zone\":\"zone-b\","
    "\"node-role.kubernetes.io/control-plane\":\"\"}},"
    "\"spec\":{\"providerID\":\"lab://node-b\",\"taints\":[{\"key\":"
    "\"node-role.kubernetes.io/control-plane\",\"effect\":\"NoSchedule\"}]},"
    "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}],"
    "\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.11\"}]}}"};

int policy_samples_new(struct policy_samples *s, char *err, size_t errlen)
{
  memset(s, 0, sizeof(*s));
  if (obj_decode_text(OBJ_KIND_SERVICE, policy_sample_service,
                      strlen(policy_sample_service), &s->svc, err,
                      errlen) != OBJ_OK)
    goto fail;
  for (size_t i = 0; i < 2; i++) {
    if (obj_decode_text(OBJ_KIND_NODE, policy_sample_nodes[i],
                        strlen(policy_sample_nodes[i]), &s->nodes[i], err,
                        errlen) != OBJ_OK)
      goto fail;
  }
  return 0;
fail:
  policy_samples_free(s);
  return -1;
}

void policy_samples_free(struct policy_samples *s)
{
  obj_unref(s->svc);
  obj_unref(s->nodes[0]);
  obj_unref(s->nodes[1]);
  memset(s, 0, sizeof(*s));
}
