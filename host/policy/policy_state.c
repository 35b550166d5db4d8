/*
 * policy_state.c: one sandboxed lua_State: counting allocator, instruction
 * and deadline budget, per-file _ENV, loading source text, and running one
 * hook across the files of a set. It must not know about threads or
 * generations (policy.c) nor convert results to C (policy_marshal.c).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "policy/policy_int.h"
#include "util/log.h"
#include "util/mem.h"

#define CCM_POLICY_TICK 1000 /* instructions between budget checks */
#define CCM_POLICY_NODE_CACHE 4096 /* node tables kept by node_labels */

const char *const policy_hook_names[POLICY_HOOK_COUNT] = {
    "load_balancer_name", "load_balancer_options", "backend_nodes",
    "resource_tags", "node_labels"};

/* Registry keys (addresses are unique). */
static const char policy_key_elsewhere = 'e';


int64_t policy_now_ns(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct policy_state *policy_st(lua_State *L)
{
  return *(struct policy_state **)lua_getextraspace(L);
}

/* ---- allocator ------------------------------------------------------- */

/* Counts bytes per state and refuses growth past the cap (Lua then raises
 * LUA_ERRMEM). realloc(p, 0) is never used as a free. */
static void *policy_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
  struct policy_state *st = ud;
  size_t used = atomic_load_explicit(&st->mem_used, memory_order_relaxed);
  void *p;

  if (ptr == NULL)
    osize = 0; /* osize then encodes the object type */
  if (nsize == 0) {
    mem_free(ptr);
    atomic_store_explicit(&st->mem_used, used - osize, memory_order_relaxed);
    return NULL;
  }
  if (nsize > osize && nsize - osize > st->mem_cap - used) {
    st->mem_hit = true;
    return NULL;
  }
  p = mem_realloc(ptr, nsize);
  if (p == NULL)
    return nsize <= osize ? ptr : NULL; /* shrinking must not fail */
  atomic_store_explicit(&st->mem_used, used - osize + nsize,
                        memory_order_relaxed);
  return p;
}

/* ---- budget ---------------------------------------------------------- */

static void policy_hook(lua_State *L, lua_Debug *ar)
{
  struct policy_state *st = policy_st(L);
  const char *what;

  if (ar->event == LUA_HOOKRET) {
    if (st->ret_track_ref == LUA_NOREF || st->kill != POLICY_KILL_NONE)
      return;
    if (!lua_checkstack(L, 2) || !lua_getinfo(L, "fl", ar))
      return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->ret_track_ref);
    if (lua_rawequal(L, -1, -2))
      st->ret_line = ar->currentline;
    lua_pop(L, 2);
    return;
  }
  if (st->kill == POLICY_KILL_NONE) {
    if (ar->event != LUA_HOOKCOUNT)
      return;
    st->ticks++;
    if (st->ticks > st->max_ticks)
      st->kill = POLICY_KILL_INSTRUCTIONS;
    else if (policy_now_ns() > st->deadline_ns)
      st->kill = POLICY_KILL_DEADLINE;
    else
      return;
    /* From now on every instruction raises again, so a pcall inside the
     * policy cannot swallow the kill. */
    lua_sethook(L, policy_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
  }
  what = st->kill == POLICY_KILL_INSTRUCTIONS ? "instruction budget"
                                               : "deadline";
  lua_getinfo(L, "Sl", ar);
  /* not luaL_error: it would prefix the caller's position */
  if (st->kill == POLICY_KILL_INSTRUCTIONS)
    lua_pushfstring(L, "%s:%d: %s exceeded (%I instructions)", ar->short_src,
                    ar->currentline, what, (lua_Integer)st->lim.instructions);
  else
    lua_pushfstring(L, "%s:%d: %s exceeded (%d ms)", ar->short_src,
                    ar->currentline, what, (int)st->limit_ms);
  lua_error(L);
}

static void policy_arm(struct policy_state *st, uint32_t ms)
{
  uint64_t ins = st->lim.instructions;

  st->ticks = 0;
  st->max_ticks = (ins + CCM_POLICY_TICK - 1) / CCM_POLICY_TICK;
  st->limit_ms = ms;
  st->deadline_ns = policy_now_ns() + (int64_t)ms * 1000000;
  st->kill = POLICY_KILL_NONE;
  st->mem_hit = false;
  st->cur_file = -1;
  lua_sethook(st->L, policy_hook, LUA_MASKCOUNT,
              ins < CCM_POLICY_TICK ? (int)ins : CCM_POLICY_TICK);
}

static void policy_disarm(struct policy_state *st)
{
  if (st->kill != POLICY_KILL_NONE || st->mem_hit)
    st->broken = true; /* its Lua data may be half built: start afresh */
  st->kill = POLICY_KILL_NONE;
  lua_sethook(st->L, policy_hook, LUA_MASKCOUNT, CCM_POLICY_TICK);
}

/* ---- errors ---------------------------------------------------------- */

/* Message handler: the message plus a traceback. */
static int policy_msgh(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);

  if (msg == NULL)
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static void policy_copy_line(char *dst, size_t cap, const char *s, size_t n)
{
  size_t i, j = 0;

  for (i = 0; i < n && j + 1 < cap; i++)
    dst[j++] = (s[i] == '\n' || s[i] == '\r' || s[i] == '\t') ? ' ' : s[i];
  dst[j] = '\0';
}

/* Split "base:LINE: text\nstack traceback:..." into err; file is the file
 * that was running (-1 unknown). */
static void policy_fill_error(const struct policy_state *st, int file,
                              const char *text, struct policy_error *err)
{
  const char *tb = strstr(text, "\nstack traceback:");
  size_t mlen = tb != NULL ? (size_t)(tb - text) : strlen(text);
  const char *msg = text;
  size_t i;

  err->where[0] = '\0';
  if (file >= 0 && (size_t)file < st->set->n)
    snprintf(err->policy, sizeof err->policy, "%s",
             st->set->files[file].base);
  /* A position prefix of any file of the set names the file and line. */
  for (i = 0; i < st->set->n; i++) {
    const char *b = st->set->files[i].base;
    size_t bl = strlen(b), k = bl + 1;
    if (mlen <= bl + 1 || strncmp(text, b, bl) != 0 || text[bl] != ':')
      continue;
    while (k < mlen && text[k] >= '0' && text[k] <= '9')
      k++;
    if (k == bl + 1 || k >= mlen || text[k] != ':')
      continue;
    policy_copy_line(err->where, sizeof err->where, text, k);
    snprintf(err->policy, sizeof err->policy, "%s", b);
    msg = text + k + 1;
    while (*msg == ' ')
      msg++;
    break;
  }
  if (err->where[0] == '\0' && err->policy[0] != '\0')
    snprintf(err->where, sizeof err->where, "%s", err->policy);
  policy_copy_line(err->message, sizeof err->message, msg,
                   mlen - (size_t)(msg - text));
  if (tb != NULL)
    snprintf(err->traceback, sizeof err->traceback, "%s", tb + 1);
  else
    err->traceback[0] = '\0';
}

static void policy_status_error(struct policy_state *st, int status,
                                int file, struct policy_error *err)
{
  /* only a string is read: converting a number would allocate */
  const char *text = lua_type(st->L, -1) == LUA_TSTRING
                         ? lua_tostring(st->L, -1)
                         : NULL;

  if (status == LUA_ERRMEM || st->mem_hit) {
    policy_fill_error(st, file, "", err);
    if (st->mem_hit)
      snprintf(err->message, sizeof err->message,
               "memory limit exceeded (%zu bytes)", st->mem_cap);
    else
      snprintf(err->message, sizeof err->message, "out of memory");
    return;
  }
  if (text == NULL)
    text = "error with no message";
  if (status == LUA_ERRERR)
    text = "error while handling an error (stack or memory exhausted)";
  policy_fill_error(st, file, text, err);
}

/* ---- the sandbox ----------------------------------------------------- */

static const char *const policy_base_allowed[] = {
    "assert",  "error",    "getmetatable", "ipairs",   "next",
    "pairs",   "pcall",    "rawequal",     "rawget",   "rawlen",
    "select",  "tonumber", "tostring",     "type",     "xpcall",
    "_VERSION", NULL};

static const char *const policy_libs[] = {"string", "table", "math", "utf8",
                                          NULL};

static int policy_global_write(lua_State *L)
{
  if (lua_type(L, 2) == LUA_TSTRING)
    return luaL_error(L, "assignment to global '%s' (declare it local)",
                      lua_tostring(L, 2));
  return luaL_error(L, "assignment to a global (declare it local)");
}

/* setmetatable without finalizers (a __gc could run outside any budget)
 * and never on a protected metatable. */
static int policy_setmetatable(lua_State *L)
{
  int t = lua_type(L, 2);

  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "__gc metamethods are not allowed in policies");
    lua_pop(L, 1);
  }
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

static void policy_copy_table(lua_State *L, int src)
{
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, src) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
}

/* Runs protected: open the allowed libraries and build the template. */
static int policy_open(lua_State *L)
{
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
  lua_settop(L, 0);
  /* string.dump goes from the shared string table too: ("").dump reaches
   * it through the string metatable. */
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  policy_ro_init(L);
  policy_lib_open(L, &policy_key_elsewhere); /* ccm proxy on the stack */
  lua_setfield(L, LUA_REGISTRYINDEX, "ccm.lib");
  return 0;
}

/* Push a fresh _ENV proxy with private copies of the allowed libraries. */
static void policy_push_env(lua_State *L)
{
  int real, g;

  lua_newtable(L);
  real = lua_gettop(L);
  lua_pushglobaltable(L);
  g = lua_gettop(L);
  for (size_t i = 0; policy_base_allowed[i] != NULL; i++) {
    lua_getfield(L, g, policy_base_allowed[i]);
    lua_setfield(L, real, policy_base_allowed[i]);
  }
  for (size_t i = 0; policy_libs[i] != NULL; i++) {
    lua_getfield(L, g, policy_libs[i]);
    policy_copy_table(L, lua_gettop(L));
    lua_setfield(L, real, policy_libs[i]);
    lua_pop(L, 1);
  }
  lua_pop(L, 1); /* the real globals */
  lua_pushcfunction(L, policy_setmetatable);
  lua_setfield(L, real, "setmetatable");
  lua_pushcfunction(L, policy_ro_next);
  lua_setfield(L, real, "next");
  lua_getfield(L, LUA_REGISTRYINDEX, "ccm.lib");
  lua_setfield(L, real, "ccm");
  lua_getfield(L, LUA_REGISTRYINDEX, "ccm.lib");
  lua_getfield(L, -1, "log");
  lua_setfield(L, real, "print"); /* print goes to the debug log too */
  lua_pop(L, 1);
  /* proxy: reads go to real, every write is an error */
  lua_newtable(L);
  lua_newtable(L);
  lua_pushvalue(L, real);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, policy_global_write);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, real, "_G");
  lua_remove(L, real);
}

struct policy_load {
  struct policy_state *st;
  size_t file;
};

/* Runs protected: compile one file as text, run its top level, keep its
 * hooks. */
static int policy_load_file(lua_State *L)
{
  struct policy_load *ld = lua_touserdata(L, 1);
  struct policy_state *st = ld->st;
  const struct policy_src *src = &st->set->files[ld->file];
  char chunk[160];
  int t;

  lua_settop(L, 0);
  if (src->len > 0 && src->text[0] == LUA_SIGNATURE[0])
    return luaL_error(L, "%s:1: precompiled bytecode is refused; a policy "
                         "is Lua source text", src->base);
  snprintf(chunk, sizeof chunk, "@%s", src->base);
  if (luaL_loadbufferx(L, src->text, src->len, chunk, "t") != LUA_OK)
    return lua_error(L);
  policy_push_env(L);
  if (lua_setupvalue(L, 1, 1) == NULL)
    lua_pop(L, 1);
  st->cur_file = (int)ld->file;
  lua_call(L, 0, 1);
  t = lua_type(L, 1);
  if (t != LUA_TTABLE)
    return luaL_error(L, "%s:1: a policy must return a table of hooks, "
                         "not %s", src->base, lua_typename(L, t));
  for (int h = 0; h < POLICY_HOOK_COUNT; h++) {
    t = lua_getfield(L, 1, policy_hook_names[h]);
    if (t == LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    if (t != LUA_TFUNCTION)
      return luaL_error(L, "%s:1: %s is a %s, not a function", src->base,
                        policy_hook_names[h], lua_typename(L, t));
    st->refs[(size_t)h * st->set->n + ld->file] =
        luaL_ref(L, LUA_REGISTRYINDEX);
    st->mask |= 1u << h;
  }
  return 0;
}

static int policy_ref_slot(lua_State *L)
{
  struct policy_state *st = lua_touserdata(L, 1);

  lua_pushboolean(L, 0);
  st->svc_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushboolean(L, 0);
  st->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  st->node_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushboolean(L, 0);
  st->svc_real_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushboolean(L, 0);
  st->be_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static int policy_pcall_c(struct policy_state *st, lua_CFunction fn,
                          void *ud)
{
  lua_settop(st->L, 0);
  lua_pushcfunction(st->L, policy_msgh);
  lua_pushcfunction(st->L, fn);
  lua_pushlightuserdata(st->L, ud);
  return lua_pcall(st->L, 1, 0, 1);
}

static void policy_panic_msg(void)
{
  log_msg(CCM_LOG_ERROR, "policy", "Lua panic: an error escaped lua_pcall");
}

static int policy_panic(lua_State *L)
{
  (void)L;
  policy_panic_msg();
  return 0;
}

int policy_state_new(struct policy_set *set, const struct policy_limits *lim,
                     struct policy_state **out, struct policy_error *err)
{
  struct policy_state *st;
  int status;

  *out = NULL;
  memset(err, 0, sizeof(*err));
  st = mem_calloc(1, sizeof(*st));
  if (st == NULL)
    goto nomem;
  st->lim = *lim;
  st->mem_cap = lim->mem_bytes;
  st->ret_track_ref = LUA_NOREF;
  st->svc_ref = LUA_NOREF;
  st->ctx_ref = LUA_NOREF;
  st->node_ref = LUA_NOREF;
  st->svc_real_ref = LUA_NOREF;
  st->be_ref = LUA_NOREF;
  st->cur_file = -1;
  st->set = set;
  atomic_fetch_add(&set->refs, 1);
  st->refs = mem_alloc((set->n ? set->n : 1) * POLICY_HOOK_COUNT *
                       sizeof(int));
  if (st->refs == NULL)
    goto nomem;
  for (size_t i = 0; i < set->n * POLICY_HOOK_COUNT; i++)
    st->refs[i] = LUA_NOREF;
  st->L = lua_newstate(policy_alloc, st);
  if (st->L == NULL)
    goto nomem;
  *(struct policy_state **)lua_getextraspace(st->L) = st;
  lua_atpanic(st->L, policy_panic);
  policy_arm(st, lim->load_ms);
  status = policy_pcall_c(st, policy_open, NULL);
  if (status == LUA_OK)
    status = policy_pcall_c(st, policy_ref_slot, st);
  if (status != LUA_OK) {
    policy_status_error(st, status, -1, err);
    goto fail;
  }
  for (size_t i = 0; i < set->n; i++) {
    struct policy_load ld = {st, i};
    policy_arm(st, lim->load_ms);
    status = policy_pcall_c(st, policy_load_file, &ld);
    if (status != LUA_OK || st->kill != POLICY_KILL_NONE) {
      policy_status_error(st, status, (int)i, err);
      snprintf(err->hook, sizeof err->hook, "load");
      goto fail;
    }
  }
  lua_settop(st->L, 0);
  policy_disarm(st);
  st->broken = false;
  lua_gc(st->L, LUA_GCGEN, 0, 0); /* short-lived call tables */
  *out = st;
  return 0;
nomem:
  if (st != NULL && st->mem_hit)
    snprintf(err->message, sizeof err->message, "memory limit exceeded "
             "(%zu bytes) building a Lua state", st->mem_cap);
  else
    snprintf(err->message, sizeof err->message,
             "out of memory building a Lua state");
fail:
  policy_state_free(st);
  return -1;
}

void policy_state_free(struct policy_state *st)
{
  if (st == NULL)
    return;
  if (st->L != NULL)
    lua_close(st->L);
  for (size_t i = 0; i < st->be_n; i++)
    obj_unref(st->be_objs[i]);
  mem_free(st->be_objs);
  mem_free(st->refs);
  if (st->set != NULL)
    policy_set_unref(st->set);
  mem_free(st);
}

/* ---- running a hook -------------------------------------------------- */

struct policy_run {
  struct policy_state *st;
  struct policy_call *call;
  struct policy_error *err;
  int outcome;
};

static int policy_hook_ref(const struct policy_state *st, int h, size_t f)
{
  return st->refs[(size_t)h * st->set->n + f];
}

static void policy_push_cached_service(lua_State *L, struct policy_state *st,
                                       const struct obj_service *svc)
{
  const char *uid = svc->meta.uid, *rv = svc->meta.resource_version;
  bool cacheable = rv != NULL && rv[0] != '\0' && uid != NULL &&
                   strlen(rv) < sizeof st->svc_rv &&
                   strlen(uid) < sizeof st->svc_uid;

  if (cacheable && st->svc_ptr == svc && strcmp(st->svc_rv, rv) == 0 &&
      strcmp(st->svc_uid, uid) == 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->svc_ref);
    return;
  }
  policy_push_service(L, svc, st->svc_real_ref);
  st->svc_ptr = NULL;
  if (cacheable) {
    lua_pushvalue(L, -1);
    lua_rawseti(L, LUA_REGISTRYINDEX, st->svc_ref);
    st->svc_ptr = svc;
    snprintf(st->svc_rv, sizeof st->svc_rv, "%s", rv);
    snprintf(st->svc_uid, sizeof st->svc_uid, "%s", uid);
  }
}

/* The ctx cache keeps copies: the caller's strings may be freed (a config
 * reload) while the state lives on. */
static bool policy_ctx_same(const struct policy_state *st, int i,
                            const char *s)
{
  if (s == NULL)
    return !st->ctx_set[i];
  return st->ctx_set[i] && strcmp(st->ctx_strs[i], s) == 0;
}

static bool policy_ctx_keep(struct policy_state *st, int i, const char *s)
{
  st->ctx_set[i] = s != NULL;
  if (s == NULL)
    return true;
  if (strlen(s) >= sizeof st->ctx_strs[i])
    return false;
  memcpy(st->ctx_strs[i], s, strlen(s) + 1);
  return true;
}

static void policy_push_cached_ctx(lua_State *L, struct policy_state *st,
                                   const struct policy_ctx *ctx)
{
  const char *v[4] = {ctx->cluster_name, ctx->provider_name,
                      ctx->provider_class,
                      ctx->provider != NULL ? ctx->provider->name : NULL};
  bool ok = true;

  if (st->ctx_valid && policy_ctx_same(st, 0, v[0]) &&
      policy_ctx_same(st, 1, v[1]) && policy_ctx_same(st, 2, v[2]) &&
      policy_ctx_same(st, 3, v[3])) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->ctx_ref);
    return;
  }
  policy_push_ctx(L, ctx);
  lua_pushvalue(L, -1);
  lua_rawseti(L, LUA_REGISTRYINDEX, st->ctx_ref);
  for (int i = 0; i < 4; i++)
    ok = policy_ctx_keep(st, i, v[i]) && ok;
  st->ctx_valid = ok;
}

/* Node tables are cached per state: cache[ptr] = proxy, cache[proxy] =
 * "uid rv". A hit needs the same object, uid and resourceVersion. With
 * fresh != 0 the entry also goes into the table at index fresh (the cache
 * of this call, which replaces the old one: deleted Nodes drop out). */
static void policy_push_cached_node(lua_State *L, struct policy_state *st,
                                    const struct obj_node *node, int fresh)
{
  const char *uid = node->meta.uid, *rv = node->meta.resource_version;
  char key[160];
  int klen = -1, cache;

  if (uid != NULL && rv != NULL && rv[0] != '\0') {
    size_t ul = strlen(uid), rl = strlen(rv);
    if (ul + rl + 2 <= sizeof key) { /* no snprintf: this is per node */
      memcpy(key, uid, ul);
      key[ul] = ' ';
      memcpy(key + ul + 1, rv, rl + 1);
      klen = (int)(ul + rl + 1);
    }
  }
  if (klen < 0) {
    policy_push_node(L, node);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->node_ref);
  cache = lua_gettop(L);
  if (lua_rawgetp(L, cache, node) == LUA_TTABLE) {
    size_t len;
    const char *have;
    lua_pushvalue(L, -1);
    lua_rawget(L, cache);
    have = lua_tolstring(L, -1, &len);
    if (have != NULL && len == (size_t)klen && memcmp(have, key, len) == 0) {
      lua_pop(L, 1);
      goto done;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  policy_push_node(L, node);
  if (fresh == 0) {
    if (++st->node_cached > CCM_POLICY_NODE_CACHE) {
      lua_newtable(L); /* bound the cache of node_labels calls */
      lua_rawseti(L, LUA_REGISTRYINDEX, st->node_ref);
      st->node_cached = 0;
    } else {
      lua_pushvalue(L, -1);
      lua_rawsetp(L, cache, node);
      lua_pushvalue(L, -1);
      lua_pushlstring(L, key, (size_t)klen);
      lua_rawset(L, cache);
    }
  }
done:
  if (fresh != 0) {
    lua_pushvalue(L, -1);
    lua_rawsetp(L, fresh, node);
    lua_pushvalue(L, -1);
    lua_pushlstring(L, key, (size_t)klen);
    lua_rawset(L, fresh);
  }
  lua_remove(L, cache);
}

/* Call hook h of file f with the nargs values at the top (kept), leaving
 * two results. */
static void policy_call_file(lua_State *L, struct policy_run *r, size_t f,
                             int first, int nargs)
{
  r->st->cur_file = (int)f;
  lua_rawgeti(L, LUA_REGISTRYINDEX,
              policy_hook_ref(r->st, (int)r->call->hook, f));
  for (int i = 0; i < nargs; i++)
    lua_pushvalue(L, first + i);
  lua_call(L, nargs, 2);
}

/* Raise "file:line: hook must return ..." at the hook's definition. */
static int policy_bad_result(lua_State *L, struct policy_run *r, size_t f,
                             const char *want)
{
  lua_Debug ar;
  int line = 0;
  const char *got = luaL_typename(L, -2);

  lua_rawgeti(L, LUA_REGISTRYINDEX,
              policy_hook_ref(r->st, (int)r->call->hook, f));
  if (lua_getinfo(L, ">S", &ar))
    line = ar.linedefined;
  return luaL_error(L, "%s:%d: %s must return %s, not %s",
                    r->st->set->files[f].base, line,
                    policy_hook_names[r->call->hook], want, got);
}

/* The hook returned nil, "reason": note it and find the line of that
 * return by running the hook once more with a return hook (costless on
 * the common path; policies are pure functions of their inputs). */
static void policy_reject(lua_State *L, struct policy_run *r, size_t f,
                          int first, int nargs)
{
  struct policy_state *st = r->st;
  size_t len;
  const char *reason = lua_tolstring(L, -1, &len);
  lua_Debug ar;

  r->outcome = POLICY_REJECT;
  r->call->file = (int)f;
  policy_copy_line(r->err->message, sizeof r->err->message, reason, len);
  snprintf(r->err->policy, sizeof r->err->policy, "%s",
           st->set->files[f].base);
  lua_rawgeti(L, LUA_REGISTRYINDEX,
              policy_hook_ref(st, (int)r->call->hook, f));
  lua_pushvalue(L, -1);
  st->ret_track_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  st->ret_line = 0;
  if (lua_getinfo(L, ">S", &ar))
    r->call->reject_line = ar.linedefined;
  lua_sethook(L, policy_hook, LUA_MASKCOUNT | LUA_MASKRET, CCM_POLICY_TICK);
  policy_call_file(L, r, f, first, nargs);
  lua_sethook(L, policy_hook, LUA_MASKCOUNT, CCM_POLICY_TICK);
  luaL_unref(L, LUA_REGISTRYINDEX, st->ret_track_ref);
  st->ret_track_ref = LUA_NOREF;
  if (lua_isnil(L, -2) && lua_type(L, -1) == LUA_TSTRING && st->ret_line > 0)
    r->call->reject_line = st->ret_line;
  lua_pop(L, 2);
}

/* Classify the two results at the top: 1 = a value to use, 0 = nil (no
 * opinion), -1 = rejected (outcome set). */
static int policy_results(lua_State *L, struct policy_run *r, size_t f,
                          int first, int nargs)
{
  if (!lua_isnil(L, -2))
    return 1;
  if (lua_type(L, -1) == LUA_TSTRING) {
    policy_reject(L, r, f, first, nargs);
    return -1;
  }
  if (!lua_isnil(L, -1))
    policy_bad_result(L, r, f, "a value, or nil and a reason string");
  return 0;
}

static bool policy_is_elsewhere(lua_State *L, int idx)
{
  bool same;

  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &policy_key_elsewhere);
  same = lua_rawequal(L, idx, -1);
  lua_pop(L, 1);
  return same;
}

static void policy_run_name(lua_State *L, struct policy_run *r)
{
  const struct policy_set *set = r->st->set;
  size_t f = set->n;
  int got;

  policy_push_cached_service(L, r->st, r->call->svc);
  policy_push_cached_ctx(L, r->st, r->call->ctx);
  while (f > 0 && policy_hook_ref(r->st, POLICY_HOOK_NAME, f - 1) ==
                      LUA_NOREF)
    f--;
  if (f == 0) {
    r->outcome = POLICY_DEFAULT;
    return;
  }
  f--;
  policy_call_file(L, r, f, 1, 2);
  got = policy_results(L, r, f, 1, 2);
  if (got < 0)
    return;
  if (got == 0) {
    r->outcome = POLICY_DEFAULT;
    return;
  }
  if (lua_type(L, -2) != LUA_TSTRING)
    policy_bad_result(L, r, f, "a string");
  lua_pop(L, 1);
  r->call->file = (int)f;
  r->outcome = POLICY_OK;
}

/* options, tags, labels: merge the tables of every file in order. */
static void policy_run_merge(lua_State *L, struct policy_run *r, int nargs)
{
  const struct policy_set *set = r->st->set;
  int merged = nargs + 1;
  const char *want = r->call->hook == POLICY_HOOK_OPTIONS
                         ? "a table, ccm.IMPLEMENTED_ELSEWHERE, or nil and a "
                           "reason"
                         : "a table, or nil and a reason";

  lua_newtable(L);
  r->outcome = POLICY_DEFAULT;
  for (size_t f = 0; f < set->n; f++) {
    int got;
    if (policy_hook_ref(r->st, (int)r->call->hook, f) == LUA_NOREF)
      continue;
    r->outcome = POLICY_OK;
    policy_call_file(L, r, f, 1, nargs);
    got = policy_results(L, r, f, 1, nargs);
    if (got < 0)
      return;
    if (got > 0 && lua_type(L, -2) != LUA_TTABLE) {
      if (r->call->hook == POLICY_HOOK_OPTIONS && policy_is_elsewhere(L, -2)) {
        r->call->file = (int)f;
        r->outcome = POLICY_ELSEWHERE;
        return;
      }
      policy_bad_result(L, r, f, want);
    }
    lua_pop(L, 1);
    if (got > 0) {
      int t = lua_gettop(L);
      policy_ro_unwrap(L, t);
      lua_pushnil(L);
      while (lua_next(L, t) != 0) {
        if (lua_type(L, -1) == LUA_TTABLE)
          policy_ro_unwrap(L, lua_gettop(L));
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, merged);
      }
    }
    lua_pop(L, 1);
  }
  lua_settop(L, merged);
}

/* backend_nodes input tables for c's node set at stack slots 4 (idx: node
 * proxy or name -> index), 5 (list: the proxies in order) and 6 (a
 * read-only view of list, what policies get: a kept list must not be
 * changed by a policy). The service
 * controller passes the same node snapshot for every Service until a Node
 * changes, so the tables of the last set are kept and reused: validating
 * them is n pointer compares, where building them marshals every Node. */
static void policy_push_backend_tables(lua_State *L, struct policy_state *st,
                                       const struct policy_call *c)
{
  struct obj_meta **objs;
  bool same = st->be_n == c->n_nodes && st->be_objs != NULL;

  for (size_t i = 0; same && i < c->n_nodes; i++)
    same = st->be_objs[i] == &c->nodes[i]->meta;
  if (same && lua_rawgeti(L, LUA_REGISTRYINDEX, st->be_ref) == LUA_TTABLE) {
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    lua_rawgeti(L, -3, 3);
    lua_remove(L, -4);
    return;
  }
  if (same)
    lua_pop(L, 1);
  lua_createtable(L, 0, (int)(c->n_nodes * 2)); /* 4: proxy/name -> i */
  lua_createtable(L, (int)c->n_nodes, 0);       /* 5: all proxies */
  lua_createtable(L, 0, (int)(c->n_nodes * 2)); /* next node cache */
  for (size_t i = 0; i < c->n_nodes; i++) {
    policy_push_cached_node(L, st, c->nodes[i], 6);
    lua_pushvalue(L, -1);
    lua_rawseti(L, 5, (lua_Integer)i + 1);
    lua_pushinteger(L, (lua_Integer)i);
    lua_rawset(L, 4);
    if (c->nodes[i]->meta.name != NULL) {
      lua_pushstring(L, c->nodes[i]->meta.name);
      lua_pushinteger(L, (lua_Integer)i);
      lua_rawset(L, 4);
    }
  }
  lua_rawseti(L, LUA_REGISTRYINDEX, st->node_ref); /* pops the cache */
  st->node_cached = 0;
  lua_pushvalue(L, 5);
  policy_ro_wrap_fast(L);                        /* 6 */
  /* Remember the set; without memory the tables are simply not kept. */
  objs = mem_calloc(c->n_nodes ? c->n_nodes : 1, sizeof(*objs));
  for (size_t i = 0; i < st->be_n; i++)
    obj_unref(st->be_objs[i]);
  mem_free(st->be_objs);
  st->be_objs = objs;
  st->be_n = 0;
  if (objs == NULL)
    return;
  for (size_t i = 0; i < c->n_nodes; i++)
    objs[i] = obj_ref(&c->nodes[i]->meta);
  st->be_n = c->n_nodes;
  lua_createtable(L, 3, 0);
  for (int k = 1; k <= 3; k++) {
    lua_pushvalue(L, 3 + k);
    lua_rawseti(L, -2, k);
  }
  lua_rawseti(L, LUA_REGISTRYINDEX, st->be_ref);
}

/* backend_nodes: each file filters what the previous one kept. */
static void policy_run_backends(lua_State *L, struct policy_run *r)
{
  const struct policy_call *c = r->call;
  const struct policy_set *set = r->st->set;
  const int idx = 4, list = 5, view = 6;
  bool *seen, all = true;

  policy_push_cached_service(L, r->st, c->svc); /* 1 */
  lua_pushnil(L);                               /* 2: the node list */
  policy_push_cached_ctx(L, r->st, c->ctx);     /* 3 */
  policy_push_backend_tables(L, r->st, c);      /* 4, 5, 6 */
  seen = lua_newuserdatauv(L, c->n_nodes ? c->n_nodes : 1, 0); /* 7 */
  for (size_t i = 0; i < c->n_nodes; i++)
    c->keep[i] = true;
  r->outcome = POLICY_DEFAULT;
  for (size_t f = 0; f < set->n; f++) {
    lua_Integer len;
    int got;
    if (policy_hook_ref(r->st, POLICY_HOOK_BACKENDS, f) == LUA_NOREF)
      continue;
    r->outcome = POLICY_OK;
    /* the input: what is still kept, in the original order (the shared
     * list itself while nothing was dropped) */
    if (all) {
      lua_pushvalue(L, view);
    } else {
      lua_newtable(L);
      len = 0;
      for (size_t i = 0; i < c->n_nodes; i++) {
        if (!c->keep[i])
          continue;
        lua_rawgeti(L, list, (lua_Integer)i + 1);
        lua_rawseti(L, -2, ++len);
      }
    }
    lua_replace(L, 2);
    policy_call_file(L, r, f, 1, 3);
    got = policy_results(L, r, f, 1, 3);
    if (got < 0)
      return;
    if (got > 0 && lua_type(L, -2) != LUA_TTABLE)
      policy_bad_result(L, r, f, "a list of nodes or node names");
    lua_pop(L, 1);
    if (got == 0) {
      lua_pop(L, 1);
      continue;
    }
    if (lua_rawequal(L, -1, 2)) { /* its input, as is: nothing dropped */
      lua_pop(L, 1);
      continue;
    }
    policy_ro_unwrap(L, lua_gettop(L));
    memset(seen, 0, c->n_nodes);
    len = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer k = 1; k <= len; k++) {
      int t = lua_rawgeti(L, -1, k);
      lua_Integer i;
      if (t != LUA_TSTRING && t != LUA_TTABLE)
        luaL_error(L, "backend_nodes: item %I is a %s, not a node or node "
                      "name", k, lua_typename(L, t));
      if (lua_rawget(L, idx) != LUA_TNUMBER) {
        if (t == LUA_TSTRING) { /* a name not (or no longer) there */
          lua_pop(L, 1);
          continue;
        }
        luaL_error(L, "backend_nodes: item %I is a table but not one of the "
                      "nodes it was given", k);
      }
      i = lua_tointeger(L, -1);
      seen[i] = 1;
      lua_pop(L, 1);
    }
    for (size_t i = 0; i < c->n_nodes; i++) {
      c->keep[i] = c->keep[i] && seen[i];
      all = all && c->keep[i];
    }
    lua_pop(L, 1);
  }
  lua_settop(L, 0);
  lua_pushboolean(L, 1);
}

static int policy_run(lua_State *L)
{
  struct policy_run *r = lua_touserdata(L, 1);
  const struct policy_call *c = r->call;

  lua_settop(L, 0);
  r->st->call_svc = c->svc;
  switch (c->hook) {
  case POLICY_HOOK_NAME:
    policy_run_name(L, r);
    break;
  case POLICY_HOOK_OPTIONS:
  case POLICY_HOOK_TAGS:
    policy_push_cached_service(L, r->st, c->svc);
    policy_push_cached_ctx(L, r->st, c->ctx);
    policy_run_merge(L, r, 2);
    break;
  case POLICY_HOOK_LABELS:
    policy_push_cached_node(L, r->st, c->node, 0);
    policy_push_meta(L, c->meta);
    policy_push_cached_ctx(L, r->st, c->ctx);
    policy_run_merge(L, r, 3);
    break;
  case POLICY_HOOK_BACKENDS:
    policy_run_backends(L, r);
    break;
  default:
    return luaL_error(L, "unknown hook");
  }
  if (r->outcome != POLICY_OK)
    lua_settop(L, 0);
  /* room for the readers, which must not grow the stack themselves */
  luaL_checkstack(L, 16, "result");
  if (r->outcome != POLICY_OK)
    lua_pushnil(L);
  return 1; /* the result is at the top */
}

int policy_state_call(struct policy_state *st, struct policy_call *call,
                      struct policy_error *err)
{
  struct policy_run r = {st, call, err, POLICY_ERROR};
  lua_State *L = st->L;
  int status;

  call->file = -1;
  call->reject_line = 0;
  lua_settop(L, 0);
  policy_arm(st, st->lim.call_ms);
  lua_pushcfunction(L, policy_msgh);
  lua_pushcfunction(L, policy_run);
  lua_pushlightuserdata(L, &r);
  status = lua_pcall(L, 1, 1, 1);
  st->call_svc = NULL;
  if (st->ret_track_ref != LUA_NOREF) { /* the replay failed midway */
    luaL_unref(L, LUA_REGISTRYINDEX, st->ret_track_ref);
    st->ret_track_ref = LUA_NOREF;
  }
  if (status == LUA_OK && st->kill == POLICY_KILL_NONE && !st->mem_hit) {
    policy_disarm(st);
    lua_remove(L, 1);
    if (r.outcome != POLICY_OK)
      lua_settop(L, 0);
    if (r.outcome == POLICY_REJECT) {
      if (call->reject_line > 0)
        snprintf(err->where, sizeof err->where, "%s:%d", err->policy,
                 call->reject_line);
      else
        snprintf(err->where, sizeof err->where, "%s", err->policy);
      err->traceback[0] = '\0';
    }
    return r.outcome;
  }
  if (status == LUA_OK) { /* killed, yet it returned: still killed */
    policy_fill_error(st, st->cur_file, "", err);
    snprintf(err->message, sizeof err->message, "%s exceeded",
             st->kill == POLICY_KILL_DEADLINE ? "deadline"
                                              : "instruction budget");
  } else {
    policy_status_error(st, status, st->cur_file, err);
  }
  policy_disarm(st);
  lua_settop(L, 0);
  st->svc_ptr = NULL; /* caches may be half written */
  st->ctx_valid = false;
  return POLICY_ERROR;
}
