/*
 * policy_int.h: what the files of host/policy share: a policy set (one
 * generation of sources), a sandboxed lua_State built from it, and the
 * marshalling between objects and Lua. Nothing outside host/policy uses it.
 */
#ifndef CCM_POLICY_INT_H
#define CCM_POLICY_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "policy/policy.h"

enum policy_hook {
  POLICY_HOOK_NAME = 0,
  POLICY_HOOK_OPTIONS,
  POLICY_HOOK_BACKENDS,
  POLICY_HOOK_TAGS,
  POLICY_HOOK_LABELS,
  POLICY_HOOK_COUNT
};

extern const char *const policy_hook_names[POLICY_HOOK_COUNT];

/* One policy file as read at reload; states compile this text, never the
 * file again, so every state of a generation runs the same code. */
struct policy_src {
  char *path;
  char *base; /* points into path */
  char *text;
  size_t len;
};

/* A generation: immutable once published, shared by reference. */
struct policy_set {
  atomic_uint refs;
  uint64_t id;
  size_t n;
  struct policy_src *files;
  unsigned mask; /* bit h: some file defines hook h (set before publish) */
};

/* Read files into a new set (refs 1, id 0). On failure returns -1 with one
 * line in err. */
int policy_set_load(const char *const *files, size_t n,
                    struct policy_set **out, char *err, size_t errlen);
void policy_set_unref(struct policy_set *set);

enum policy_kill {
  POLICY_KILL_NONE = 0,
  POLICY_KILL_INSTRUCTIONS,
  POLICY_KILL_DEADLINE
};

/* One sandboxed lua_State for one thread and one generation. */
struct policy_state {
  lua_State *L;
  struct policy_set *set; /* one reference */
  struct policy_limits lim;
  _Atomic size_t mem_used; /* written by the owner only; read by stats */
  size_t mem_cap;
  bool mem_hit;            /* the cap refused an allocation */
  /* budget of the running call */
  uint64_t ticks, max_ticks;
  int64_t deadline_ns;
  int kill;                /* enum policy_kill, sticky until the call ends */
  uint32_t limit_ms;
  int ret_track_ref;       /* function whose return line is tracked */
  int ret_line;
  int cur_file;            /* file whose hook runs, -1 otherwise */
  bool broken;             /* killed: rebuild before the next call */
  int *refs;               /* refs[h * n + f]: hook function or LUA_NOREF */
  unsigned mask;           /* bit h: some file defines hook h */
  /* caches of the last Service and ctx tables */
  const void *svc_ptr;
  char svc_uid[64], svc_rv[64];
  int svc_ref;
  int svc_real_ref;        /* the real table behind the current service */
  const struct obj_service *call_svc; /* the running call's, else NULL */
  bool ctx_valid;
  bool ctx_set[4];
  char ctx_strs[4][128]; /* cluster, provider, class, module */
  int ctx_ref;
  int node_ref;            /* node table cache (see policy_state.c) */
  size_t node_cached;
  /* backend_nodes: the last node set (one reference each, so a pointer
   * cannot be reused by another object while cached) and its Lua tables */
  int be_ref;              /* registry: {idx, list}, or LUA_NOREF */
  struct obj_meta **be_objs;
  size_t be_n;
  /* ccm.log rate limit */
  int64_t log_window;
  int log_count;
};

/* Build a state for set (which gains a reference). On failure returns -1
 * and fills err (file, line, message); *out is NULL. */
int policy_state_new(struct policy_set *set, const struct policy_limits *lim,
                     struct policy_state **out, struct policy_error *err);
void policy_state_free(struct policy_state *st);

/* One hook call: the inputs and, after policy_state_call, the outcome. */
struct policy_call {
  enum policy_hook hook;
  const struct obj_service *svc;
  const struct obj_node *node;
  const struct obj_node *const *nodes;
  size_t n_nodes;
  const struct policy_node_meta *meta;
  const struct policy_ctx *ctx;
  bool *keep;       /* backend_nodes */
  int file;         /* the file that rejected or failed, -1 */
  int reject_line;  /* the line of the rejecting return, 0 unknown */
};

/* Run hook on st. Returns POLICY_OK (the merged result is on the Lua stack
 * top; the caller pops it), POLICY_ELSEWHERE, POLICY_REJECT or
 * POLICY_ERROR (err filled, nothing left on the stack). */
int policy_state_call(struct policy_state *st, struct policy_call *call,
                      struct policy_error *err);

/* Built-in sample objects for self-tests and --check-policy. */
struct policy_samples {
  struct obj_meta *svc;
  struct obj_meta *nodes[2];
};
int policy_samples_new(struct policy_samples *s, char *err, size_t errlen);
void policy_samples_free(struct policy_samples *s);

/* The ccm library (policy_lib.c): pushes the read-only ccm table and
 * stores the IMPLEMENTED_ELSEWHERE sentinel in the registry at key. */
void policy_lib_open(lua_State *L, const void *elsewhere_key);

/* Marshalling (policy_marshal.c). push_* run inside lua_pcall only. */
/* The Service proxy; its real table also goes to registry[real_ref]. */
void policy_push_service(lua_State *L, const struct obj_service *svc,
                         int real_ref);
void policy_push_node(lua_State *L, const struct obj_node *node);
void policy_push_meta(lua_State *L, const struct policy_node_meta *meta);
void policy_push_ctx(lua_State *L, const struct policy_ctx *ctx);
/* Read-only proxies: push a proxy for the table at the top (replacing it);
 * unwrap replaces a proxy at idx by the table it guards. */
void policy_ro_wrap(lua_State *L);
/* The same, reads staying in the VM (its own metatable, __index = table):
 * for tables read often and kept across calls. */
void policy_ro_wrap_fast(lua_State *L);
void policy_ro_unwrap(lua_State *L, int idx);
void policy_ro_init(lua_State *L);
int policy_ro_next(lua_State *L);

/* Result readers: no allocation inside Lua. They return 0, or -1 with one
 * line in msg. */
int policy_read_name(lua_State *L, int idx, const struct ccm_provider *prov,
                     char *name, size_t cap, char *msg, size_t msglen);
int policy_check_name(const char *name, size_t len,
                      const struct ccm_provider *prov, char *msg,
                      size_t msglen);
int policy_read_options(lua_State *L, int idx,
                        const struct ccm_provider *prov,
                        struct policy_options **out, char *msg,
                        size_t msglen);
int policy_read_kvs(lua_State *L, int idx, const char *what,
                    struct policy_kvs **out, char *msg, size_t msglen);
struct policy_options *policy_options_empty(void);
struct policy_kvs *policy_kvs_empty(void);

/* "a" + uid without dashes, cut to 32; returns the length or -1. */
int policy_default_name(const char *uid, char *out, size_t cap);

/* Monotonic clock, ns. */
int64_t policy_now_ns(void);

#endif
