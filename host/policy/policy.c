/*
 * policy.c: the policy engine: generations of policy sets, one state per
 * calling thread, reload with self-test, the inotify watcher, stats and the
 * public hook functions. It must not touch Lua beyond policy_state_* and the
 * readers, nor call providers or Kubernetes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "policy/policy_int.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/thread.h"

#define CCM_POLICY_MAX_FILE (1024u * 1024u) /* bytes of one policy file */
#define CCM_POLICY_DEBOUNCE_MS 100
#define CCM_POLICY_MAX_WATCHES 64

struct policy_slot {
  struct policy_engine *pe;
  struct policy_set *set;   /* the generation this thread runs */
  struct policy_state *st;  /* NULL until a hook needs Lua */
  struct policy_slot *prev, *next;
};

struct policy_watch {
  int wd;
  char *dir;
};

struct policy_engine {
  struct policy_limits lim;
  pthread_mutex_t mu;        /* cur, slots, slot->st pointers, watches */
  pthread_mutex_t reload_mu; /* one reload at a time */
  struct policy_set *cur;
  _Atomic uint64_t cur_id;
  uint64_t next_id;
  pthread_key_t key;
  struct policy_slot *slots;
  struct policy_samples samples;
  _Atomic uint64_t calls, errors, rejections, reloads, reload_failures;
  _Atomic uint64_t states;
  /* watcher */
  bool watching;
  pthread_t watch_th;
  int ino_fd;
  int stop_pipe[2];
  struct policy_watch watches[CCM_POLICY_MAX_WATCHES];
  size_t n_watches;
};

/* ---- sets ------------------------------------------------------------- */

static void policy_set_free(struct policy_set *set)
{
  for (size_t i = 0; i < set->n; i++) {
    mem_free(set->files[i].path);
    mem_free(set->files[i].text);
  }
  mem_free(set->files);
  mem_free(set);
}

void policy_set_unref(struct policy_set *set)
{
  if (set != NULL && atomic_fetch_sub(&set->refs, 1) == 1)
    policy_set_free(set);
}

static int policy_read_file(const char *path, struct policy_src *src,
                            char *err, size_t errlen)
{
  FILE *f = fopen(path, "rb");
  struct stat sb;
  size_t got;
  const char *slash;

  if (f == NULL) {
    snprintf(err, errlen, "policy %s: cannot open: %s", path,
             strerror(errno));
    return -1;
  }
  if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) ||
      (uint64_t)sb.st_size > CCM_POLICY_MAX_FILE) {
    snprintf(err, errlen, "policy %s: not a regular file of at most %u "
             "bytes", path, CCM_POLICY_MAX_FILE);
    fclose(f);
    return -1;
  }
  src->path = mem_strdup(path);
  src->text = mem_alloc((size_t)sb.st_size + 1);
  if (src->path == NULL || src->text == NULL) {
    snprintf(err, errlen, "policy %s: out of memory", path);
    fclose(f);
    return -1;
  }
  got = fread(src->text, 1, (size_t)sb.st_size, f);
  fclose(f);
  if (got != (size_t)sb.st_size) {
    snprintf(err, errlen, "policy %s: short read", path);
    return -1;
  }
  src->text[got] = '\0';
  src->len = got;
  slash = strrchr(src->path, '/');
  src->base = slash != NULL ? (char *)slash + 1 : src->path;
  return 0;
}

int policy_set_load(const char *const *files, size_t n,
                    struct policy_set **out, char *err, size_t errlen)
{
  struct policy_set *set = mem_calloc(1, sizeof(*set));

  *out = NULL;
  if (set == NULL)
    goto nomem;
  atomic_init(&set->refs, 1);
  set->files = mem_calloc(n ? n : 1, sizeof(*set->files));
  if (set->files == NULL)
    goto nomem;
  set->n = n;
  for (size_t i = 0; i < n; i++) {
    if (policy_read_file(files[i], &set->files[i], err, errlen) != 0)
      goto fail;
  }
  *out = set;
  return 0;
nomem:
  snprintf(err, errlen, "policy: out of memory");
fail:
  if (set != NULL)
    policy_set_free(set);
  return -1;
}

/* ---- errors ----------------------------------------------------------- */

int policy_error_format(const struct policy_error *err, char *buf,
                        size_t cap)
{
  const char *where = err->where[0] != '\0' ? err->where : err->policy;

  return snprintf(buf, cap, "policy %s %s: %s",
                  where[0] != '\0' ? where : "(built-in)",
                  err->hook[0] != '\0' ? err->hook : "-", err->message);
}

static void policy_err_clear(struct policy_error *err, enum policy_hook h)
{
  err->policy[0] = '\0';
  err->where[0] = '\0';
  err->message[0] = '\0';
  err->traceback[0] = '\0';
  memcpy(err->hook, policy_hook_names[h], strlen(policy_hook_names[h]) + 1);
}

/* The files defining hook h, for errors not tied to one file. */
static void policy_err_files(const struct policy_state *st, int h,
                             int file, struct policy_error *err)
{
  size_t used = 0, only = 0, defining = 0;

  for (size_t f = 0; f < st->set->n; f++) {
    if (st->refs[(size_t)h * st->set->n + f] != LUA_NOREF) {
      only = f;
      defining++;
    }
  }
  if (file < 0 && defining == 1)
    file = (int)only;
  if (file >= 0) {
    lua_Debug ar;
    int ref = st->refs[(size_t)h * st->set->n + (size_t)file];
    snprintf(err->policy, sizeof err->policy, "%s",
             st->set->files[file].base);
    /* no line of its own: name the hook's definition */
    lua_rawgeti(st->L, LUA_REGISTRYINDEX, ref);
    if (lua_getinfo(st->L, ">S", &ar) && ar.linedefined > 0) {
      snprintf(err->where, sizeof err->where, "%s:%d", err->policy,
               ar.linedefined);
      return;
    }
  } else {
    err->policy[0] = '\0';
    for (size_t f = 0; f < st->set->n; f++) {
      int n;
      if (st->refs[(size_t)h * st->set->n + f] == LUA_NOREF)
        continue;
      n = snprintf(err->policy + used, sizeof err->policy - used, "%s%s",
                   used ? "," : "", st->set->files[f].base);
      if (n < 0 || (size_t)n >= sizeof err->policy - used)
        break;
      used += (size_t)n;
    }
  }
  snprintf(err->where, sizeof err->where, "%s", err->policy);
}

/* ---- one hook on one state: run, then validate and convert ------------- */

struct policy_out {
  char *name;
  size_t cap;
  struct policy_options **opts;
  struct policy_kvs **kvs;
};

static int policy_exec(struct policy_state *st, struct policy_call *call,
                       struct policy_out *o, struct policy_error *err)
{
  lua_State *L = st->L;
  char msg[sizeof err->message];
  int rc = policy_state_call(st, call, err), bad = 0;

  if (rc != POLICY_OK)
    return rc;
  switch (call->hook) {
  case POLICY_HOOK_NAME:
    bad = policy_read_name(L, -1, call->ctx->provider, o->name, o->cap, msg,
                           sizeof msg);
    break;
  case POLICY_HOOK_OPTIONS:
    bad = policy_read_options(L, -1, call->ctx->provider, o->opts, msg,
                              sizeof msg);
    break;
  case POLICY_HOOK_TAGS:
    bad = policy_read_kvs(L, -1, "tag", o->kvs, msg, sizeof msg);
    break;
  case POLICY_HOOK_LABELS:
    bad = policy_read_kvs(L, -1, "label", o->kvs, msg, sizeof msg);
    break;
  default:
    break;
  }
  lua_settop(L, 0);
  if (bad != 0) {
    policy_err_files(st, (int)call->hook,
                     call->hook == POLICY_HOOK_NAME ? call->file : -1, err);
    snprintf(err->message, sizeof err->message, "%s", msg);
    return POLICY_ERROR;
  }
  return POLICY_OK;
}

/* ---- self-test -------------------------------------------------------- */

static const struct ccm_kv policy_sample_label = {
    sizeof(struct ccm_kv), "example.com/rack", "r1"};
static const struct ccm_kv *const policy_sample_labels[] = {
    &policy_sample_label};

static int policy_self_test(struct policy_state *st,
                            const struct policy_samples *s,
                            struct policy_error *err)
{
  const struct policy_ctx ctx = {"kubernetes", "sample", NULL, NULL};
  const struct policy_node_meta meta = {
      "lab://node-a", "m5.large", "zone-a", "region-1",
      policy_sample_labels, 1};
  const struct obj_node *nodes[2] = {obj_as_node(s->nodes[0]),
                                     obj_as_node(s->nodes[1])};
  const struct obj_service *svc = obj_as_service(s->svc);

  for (int h = 0; h < POLICY_HOOK_COUNT; h++) {
    struct policy_call call = {.hook = (enum policy_hook)h, .svc = svc,
                               .ctx = &ctx, .node = nodes[0],
                               .nodes = nodes, .n_nodes = 2, .meta = &meta};
    struct policy_options *opts = NULL;
    struct policy_kvs *kvs = NULL;
    char name[CCM_MAX_NAME + 1];
    struct policy_out o = {name, sizeof name, &opts, &kvs};
    bool keep[2];
    int rc;
    if (!(st->mask & (1u << h)))
      continue;
    call.keep = keep;
    policy_err_clear(err, (enum policy_hook)h);
    rc = policy_exec(st, &call, &o, err);
    policy_options_free(opts);
    policy_kvs_free(kvs);
    if (rc == POLICY_ERROR)
      return -1;
    if (st->broken)
      return -1;
  }
  return 0;
}

/* Compile set in a scratch state and self-test it; err gets one line. */
static int policy_validate(const struct policy_limits *lim,
                           struct policy_set *set,
                           const struct policy_samples *s, char *err,
                           size_t errlen)
{
  struct policy_state *st = NULL;
  struct policy_error perr;
  char line[1024];

  if (policy_state_new(set, lim, &st, &perr) != 0) {
    if (perr.hook[0] == '\0')
      snprintf(perr.hook, sizeof perr.hook, "load");
    policy_error_format(&perr, line, sizeof line);
    snprintf(err, errlen, "%s", line);
    return -1;
  }
  if (policy_self_test(st, s, &perr) != 0) {
    policy_error_format(&perr, line, sizeof line);
    snprintf(err, errlen, "%s (self-test on the sample objects)", line);
    policy_state_free(st);
    return -1;
  }
  set->mask = st->mask;
  policy_state_free(st);
  return 0;
}

/* ---- engine ----------------------------------------------------------- */

static void policy_slot_drop(struct policy_slot *slot)
{
  if (slot->st != NULL) {
    policy_state_free(slot->st);
    atomic_fetch_sub(&slot->pe->states, 1);
  }
  policy_set_unref(slot->set);
  mem_free(slot);
}

/* pthread key destructor: the thread exits; its state goes with it. */
static void policy_slot_exit(void *p)
{
  struct policy_slot *slot = p;
  struct policy_engine *pe = slot->pe;

  pthread_mutex_lock(&pe->mu);
  if (slot->prev != NULL)
    slot->prev->next = slot->next;
  else
    pe->slots = slot->next;
  if (slot->next != NULL)
    slot->next->prev = slot->prev;
  pthread_mutex_unlock(&pe->mu);
  policy_slot_drop(slot);
}

static void policy_limits_fill(struct policy_limits *lim,
                               const struct policy_limits *in)
{
  memset(lim, 0, sizeof(*lim));
  if (in != NULL)
    *lim = *in;
  if (lim->mem_bytes == 0)
    lim->mem_bytes = CCM_POLICY_DEFAULT_MEM;
  if (lim->instructions == 0)
    lim->instructions = CCM_POLICY_DEFAULT_INSTRUCTIONS;
  if (lim->call_ms == 0)
    lim->call_ms = CCM_POLICY_DEFAULT_CALL_MS;
  if (lim->load_ms == 0)
    lim->load_ms = CCM_POLICY_DEFAULT_LOAD_MS;
}

int policy_engine_new(const char *const *files, size_t n,
                      const struct policy_limits *limits,
                      struct policy_engine **out, char *err, size_t errlen)
{
  struct policy_engine *pe = mem_calloc(1, sizeof(*pe));
  struct policy_set *set = NULL;
  char e[256];

  *out = NULL;
  if (pe == NULL) {
    snprintf(err, errlen, "policy: out of memory");
    return -1;
  }
  policy_limits_fill(&pe->lim, limits);
  pe->ino_fd = -1;
  pe->stop_pipe[0] = pe->stop_pipe[1] = -1;
  if (pthread_key_create(&pe->key, policy_slot_exit) != 0) {
    snprintf(err, errlen, "policy: no thread-local key left");
    mem_free(pe);
    return -1;
  }
  pthread_mutex_init(&pe->mu, NULL);
  pthread_mutex_init(&pe->reload_mu, NULL);
  if (policy_samples_new(&pe->samples, e, sizeof e) != 0) {
    snprintf(err, errlen, "policy: sample objects: %s", e);
    goto fail;
  }
  if (policy_set_load(files, n, &set, err, errlen) != 0)
    goto fail;
  if (policy_validate(&pe->lim, set, &pe->samples, err, errlen) != 0)
    goto fail;
  set->id = ++pe->next_id;
  pe->cur = set;
  atomic_store(&pe->cur_id, set->id);
  *out = pe;
  return 0;
fail:
  policy_set_unref(set);
  policy_engine_free(pe);
  return -1;
}

static void policy_watch_stop(struct policy_engine *pe);

void policy_engine_free(struct policy_engine *pe)
{
  struct policy_slot *slot, *next;

  if (pe == NULL)
    return;
  policy_watch_stop(pe);
  /* First, so no thread that exits from now on runs the destructor on a
   * slot freed here (threads must not exit while this runs). */
  pthread_setspecific(pe->key, NULL);
  pthread_key_delete(pe->key);
  pthread_mutex_lock(&pe->mu);
  for (slot = pe->slots; slot != NULL; slot = next) {
    next = slot->next;
    policy_slot_drop(slot);
  }
  pe->slots = NULL;
  pthread_mutex_unlock(&pe->mu);
  policy_set_unref(pe->cur);
  policy_samples_free(&pe->samples);
  for (size_t i = 0; i < pe->n_watches; i++)
    mem_free(pe->watches[i].dir);
  pthread_mutex_destroy(&pe->mu);
  pthread_mutex_destroy(&pe->reload_mu);
  mem_free(pe);
}

static void policy_watch_sync(struct policy_engine *pe);

int policy_engine_reload(struct policy_engine *pe, const char *const *files,
                         size_t n, char *err, size_t errlen)
{
  struct policy_set *set = NULL, *old;

  pthread_mutex_lock(&pe->reload_mu);
  if (policy_set_load(files, n, &set, err, errlen) != 0 ||
      policy_validate(&pe->lim, set, &pe->samples, err, errlen) != 0) {
    policy_set_unref(set);
    atomic_fetch_add(&pe->reload_failures, 1);
    pthread_mutex_unlock(&pe->reload_mu);
    log_msg(CCM_LOG_WARN, "policy", "reload refused, the previous policies "
            "stay in force: %s", err);
    return -1;
  }
  pthread_mutex_lock(&pe->mu);
  set->id = ++pe->next_id;
  old = pe->cur;
  pe->cur = set;
  atomic_store(&pe->cur_id, set->id);
  pthread_mutex_unlock(&pe->mu);
  policy_set_unref(old);
  atomic_fetch_add(&pe->reloads, 1);
  policy_watch_sync(pe);
  pthread_mutex_unlock(&pe->reload_mu);
  log_msg(CCM_LOG_INFO, "policy", "loaded policy generation %llu (%zu "
          "file%s)", (unsigned long long)set->id, n, n == 1 ? "" : "s");
  return 0;
}

void policy_engine_stats(const struct policy_engine *pe,
                         struct policy_stats *out)
{
  struct policy_engine *m = (struct policy_engine *)pe;
  uint64_t bytes = 0;

  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&m->mu);
  out->generation = m->cur != NULL && m->cur->n > 0 ? m->cur->id : 0;
  for (const struct policy_slot *s = m->slots; s != NULL; s = s->next) {
    if (s->st != NULL)
      bytes += atomic_load_explicit(&s->st->mem_used, memory_order_relaxed);
  }
  pthread_mutex_unlock(&m->mu);
  out->calls = atomic_load(&m->calls);
  out->errors = atomic_load(&m->errors);
  out->rejections = atomic_load(&m->rejections);
  out->reloads = atomic_load(&m->reloads);
  out->reload_failures = atomic_load(&m->reload_failures);
  out->states = atomic_load(&m->states);
  out->state_bytes = bytes;
}

/* This thread's slot, moved to the current generation. */
static struct policy_slot *policy_slot_get(struct policy_engine *pe)
{
  struct policy_slot *slot = pthread_getspecific(pe->key);
  struct policy_state *old_st;
  struct policy_set *old_set;

  if (slot == NULL) {
    slot = mem_calloc(1, sizeof(*slot));
    if (slot == NULL)
      return NULL;
    slot->pe = pe;
    if (pthread_setspecific(pe->key, slot) != 0) {
      mem_free(slot);
      return NULL;
    }
    pthread_mutex_lock(&pe->mu);
    slot->next = pe->slots;
    if (pe->slots != NULL)
      pe->slots->prev = slot;
    pe->slots = slot;
    pthread_mutex_unlock(&pe->mu);
  }
  if (slot->set != NULL &&
      slot->set->id == atomic_load_explicit(&pe->cur_id,
                                            memory_order_acquire))
    return slot;
  pthread_mutex_lock(&pe->mu);
  old_set = slot->set;
  old_st = slot->st;
  slot->set = pe->cur;
  atomic_fetch_add(&slot->set->refs, 1);
  slot->st = NULL;
  pthread_mutex_unlock(&pe->mu);
  if (old_st != NULL) {
    policy_state_free(old_st);
    atomic_fetch_sub(&pe->states, 1);
  }
  policy_set_unref(old_set);
  return slot;
}

/* The slot's state, built (or rebuilt after a kill) for its generation. */
static struct policy_state *policy_slot_state(struct policy_slot *slot,
                                              struct policy_error *err)
{
  struct policy_engine *pe = slot->pe;
  struct policy_state *st = slot->st, *fresh;
  char hook[sizeof err->hook];

  if (st != NULL && !st->broken)
    return st;
  memcpy(hook, err->hook, sizeof hook);
  if (policy_state_new(slot->set, &pe->lim, &fresh, err) != 0) {
    memcpy(err->hook, hook, sizeof hook);
    return NULL;
  }
  memcpy(err->hook, hook, sizeof hook);
  pthread_mutex_lock(&pe->mu);
  slot->st = fresh;
  pthread_mutex_unlock(&pe->mu);
  if (st != NULL)
    policy_state_free(st);
  else
    atomic_fetch_add(&pe->states, 1);
  return fresh;
}

/* Run hook h for this thread: POLICY_DEFAULT without Lua when no file
 * defines it. */
static int policy_hook_run(struct policy_engine *pe, struct policy_call *call,
                           struct policy_out *o, struct policy_error *err)
{
  struct policy_slot *slot;
  struct policy_state *st;
  int rc;

  policy_err_clear(err, call->hook);
  slot = policy_slot_get(pe);
  if (slot == NULL) {
    snprintf(err->message, sizeof err->message, "out of memory");
    rc = POLICY_ERROR;
    goto done;
  }
  if (!(slot->set->mask & (1u << call->hook)))
    return POLICY_DEFAULT;
  st = policy_slot_state(slot, err);
  if (st == NULL) {
    rc = POLICY_ERROR;
    goto done;
  }
  atomic_fetch_add_explicit(&pe->calls, 1, memory_order_relaxed);
  rc = policy_exec(st, call, o, err);
done:
  if (rc == POLICY_ERROR) {
    char line[1024];
    atomic_fetch_add(&pe->errors, 1);
    policy_error_format(err, line, sizeof line);
    log_msg(CCM_LOG_WARN, "policy", "%s", line);
  } else if (rc == POLICY_REJECT) {
    atomic_fetch_add(&pe->rejections, 1);
  }
  return rc;
}

/* ---- public hooks ----------------------------------------------------- */

/* True also when the thread's slot cannot be made: the hook call then
 * reports that error. */
static bool policy_defines(struct policy_engine *pe, unsigned mask)
{
  struct policy_slot *slot = policy_slot_get(pe);

  return slot == NULL || (slot->set->mask & mask) != 0;
}

bool policy_defines_lb_inputs(struct policy_engine *pe)
{
  return policy_defines(pe, (1u << POLICY_HOOK_OPTIONS) |
                                (1u << POLICY_HOOK_TAGS));
}

bool policy_defines_backend_nodes(struct policy_engine *pe)
{
  return policy_defines(pe, 1u << POLICY_HOOK_BACKENDS);
}

static int policy_default_lb_name(const struct obj_service *svc,
                                  const struct policy_ctx *ctx, char *name,
                                  size_t cap, struct policy_error *err)
{
  char buf[40];
  int len = policy_default_name(svc->meta.uid, buf, sizeof buf);

  if (len < 2) {
    snprintf(err->message, sizeof err->message,
             "the Service has no uid to name its load balancer after");
    return POLICY_ERROR;
  }
  if (policy_check_name(buf, (size_t)len, ctx->provider, err->message,
                        sizeof err->message) != 0)
    return POLICY_ERROR;
  if ((size_t)len >= cap) {
    snprintf(err->message, sizeof err->message, "name buffer too small");
    return POLICY_ERROR;
  }
  memcpy(name, buf, (size_t)len + 1);
  return POLICY_DEFAULT;
}

int policy_lb_name(struct policy_engine *pe, const struct obj_service *svc,
                   const struct policy_ctx *ctx, char *name, size_t cap,
                   struct policy_error *err)
{
  struct policy_call call = {.hook = POLICY_HOOK_NAME, .svc = svc,
                             .ctx = ctx};
  struct policy_out o = {name, cap, NULL, NULL};
  int rc = policy_hook_run(pe, &call, &o, err);

  if (rc == POLICY_DEFAULT) {
    rc = policy_default_lb_name(svc, ctx, name, cap, err);
    if (rc == POLICY_ERROR)
      atomic_fetch_add(&pe->errors, 1);
  }
  return rc;
}

int policy_lb_options(struct policy_engine *pe, const struct obj_service *svc,
                      const struct policy_ctx *ctx,
                      struct policy_options **out, struct policy_error *err)
{
  struct policy_call call = {.hook = POLICY_HOOK_OPTIONS, .svc = svc,
                             .ctx = ctx};
  struct policy_out o = {NULL, 0, out, NULL};
  int rc;

  *out = NULL;
  rc = policy_hook_run(pe, &call, &o, err);
  if (rc == POLICY_DEFAULT) {
    *out = policy_options_empty();
    if (*out == NULL) {
      snprintf(err->message, sizeof err->message, "out of memory");
      return POLICY_ERROR;
    }
  }
  return rc;
}

void policy_options_free(struct policy_options *opts)
{
  mem_free(opts);
}

int policy_backend_nodes(struct policy_engine *pe,
                         const struct obj_service *svc,
                         const struct obj_node *const *nodes, size_t n,
                         const struct policy_ctx *ctx, bool *keep,
                         struct policy_error *err)
{
  struct policy_call call = {.hook = POLICY_HOOK_BACKENDS, .svc = svc,
                             .ctx = ctx, .nodes = nodes, .n_nodes = n,
                             .keep = keep};
  struct policy_out o = {NULL, 0, NULL, NULL};
  int rc;

  for (size_t i = 0; i < n; i++)
    keep[i] = true;
  rc = policy_hook_run(pe, &call, &o, err);
  if (rc != POLICY_OK) {
    for (size_t i = 0; i < n; i++)
      keep[i] = true;
  }
  return rc;
}

static int policy_kvs_hook(struct policy_engine *pe, struct policy_call *call,
                           struct policy_kvs **out, struct policy_error *err)
{
  struct policy_out o = {NULL, 0, NULL, out};
  int rc;

  *out = NULL;
  rc = policy_hook_run(pe, call, &o, err);
  if (rc == POLICY_DEFAULT) {
    *out = policy_kvs_empty();
    if (*out == NULL) {
      snprintf(err->message, sizeof err->message, "out of memory");
      return POLICY_ERROR;
    }
  }
  return rc;
}

int policy_resource_tags(struct policy_engine *pe,
                         const struct obj_service *svc,
                         const struct policy_ctx *ctx,
                         struct policy_kvs **out, struct policy_error *err)
{
  struct policy_call call = {.hook = POLICY_HOOK_TAGS, .svc = svc,
                             .ctx = ctx};

  return policy_kvs_hook(pe, &call, out, err);
}

int policy_node_labels(struct policy_engine *pe, const struct obj_node *node,
                       const struct policy_node_meta *meta,
                       const struct policy_ctx *ctx, struct policy_kvs **out,
                       struct policy_error *err)
{
  struct policy_call call = {.hook = POLICY_HOOK_LABELS, .node = node,
                             .meta = meta, .ctx = ctx};

  return policy_kvs_hook(pe, &call, out, err);
}

void policy_kvs_free(struct policy_kvs *kvs)
{
  mem_free(kvs);
}

/* ---- watcher ---------------------------------------------------------- */

static void policy_dir_of(const char *path, char *dir, size_t cap)
{
  const char *slash = strrchr(path, '/');

  if (slash == NULL)
    snprintf(dir, cap, ".");
  else if (slash == path)
    snprintf(dir, cap, "/");
  else
    snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

/* Watch the directory of every current file (editors replace files). */
static void policy_watch_sync(struct policy_engine *pe)
{
  pthread_mutex_lock(&pe->mu);
  if (!pe->watching || pe->cur == NULL) {
    pthread_mutex_unlock(&pe->mu);
    return;
  }
  for (size_t i = 0; i < pe->cur->n; i++) {
    char dir[4096];
    bool have = false;
    int wd;
    policy_dir_of(pe->cur->files[i].path, dir, sizeof dir);
    for (size_t k = 0; k < pe->n_watches; k++)
      have = have || strcmp(pe->watches[k].dir, dir) == 0;
    if (have || pe->n_watches == CCM_POLICY_MAX_WATCHES)
      continue;
    wd = inotify_add_watch(pe->ino_fd, dir,
                           IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE |
                               IN_DELETE | IN_ATTRIB);
    if (wd < 0) {
      log_msg(CCM_LOG_WARN, "policy", "cannot watch %s: %s", dir,
              strerror(errno));
      continue;
    }
    pe->watches[pe->n_watches].wd = wd;
    pe->watches[pe->n_watches].dir = mem_strdup(dir);
    if (pe->watches[pe->n_watches].dir != NULL)
      pe->n_watches++;
  }
  pthread_mutex_unlock(&pe->mu);
}

/* Does an event (wd, name) concern a current policy file? */
static bool policy_watch_match(struct policy_engine *pe, int wd,
                               const char *name)
{
  const char *dir = NULL;
  bool hit = false;

  pthread_mutex_lock(&pe->mu);
  for (size_t k = 0; k < pe->n_watches; k++) {
    if (pe->watches[k].wd == wd)
      dir = pe->watches[k].dir;
  }
  for (size_t i = 0; dir != NULL && pe->cur != NULL && i < pe->cur->n; i++) {
    char d[4096];
    policy_dir_of(pe->cur->files[i].path, d, sizeof d);
    hit = hit || (strcmp(d, dir) == 0 &&
                  strcmp(pe->cur->files[i].base, name) == 0);
  }
  pthread_mutex_unlock(&pe->mu);
  return hit;
}

/* Drain the inotify fd; true when a relevant event came. */
static bool policy_watch_drain(struct policy_engine *pe)
{
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  bool hit = false;

  for (;;) {
    ssize_t n = read(pe->ino_fd, buf, sizeof buf);
    if (n <= 0)
      break;
    for (char *p = buf; p < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
      if (ev->len > 0 && policy_watch_match(pe, ev->wd, ev->name))
        hit = true;
      p += sizeof(*ev) + ev->len;
    }
  }
  return hit;
}

static void policy_watch_reload(struct policy_engine *pe)
{
  struct policy_set *set;
  const char **paths;
  char err[1024];

  pthread_mutex_lock(&pe->mu);
  set = pe->cur;
  atomic_fetch_add(&set->refs, 1);
  pthread_mutex_unlock(&pe->mu);
  paths = mem_calloc(set->n ? set->n : 1, sizeof(*paths));
  if (paths != NULL) {
    for (size_t i = 0; i < set->n; i++)
      paths[i] = set->files[i].path;
    policy_engine_reload(pe, paths, set->n, err, sizeof err);
    mem_free(paths);
  }
  policy_set_unref(set);
}

static void *policy_watch_main(void *arg)
{
  struct policy_engine *pe = arg;
  struct pollfd fds[2] = {{pe->ino_fd, POLLIN, 0},
                          {pe->stop_pipe[0], POLLIN, 0}};

  thread_name("policy-watch");

  for (;;) {
    bool pending;
    if (poll(fds, 2, -1) < 0 && errno != EINTR)
      break;
    if (fds[1].revents != 0)
      break;
    pending = policy_watch_drain(pe);
    /* debounce: wait for a quiet period, then reload once */
    while (pending) {
      int r = poll(fds, 2, CCM_POLICY_DEBOUNCE_MS);
      if (r > 0 && fds[1].revents != 0)
        return NULL;
      if (r > 0) {
        policy_watch_drain(pe);
        continue;
      }
      policy_watch_reload(pe);
      pending = false;
    }
  }
  return NULL;
}

int policy_engine_watch(struct policy_engine *pe)
{
  pthread_mutex_lock(&pe->mu);
  if (pe->watching) {
    pthread_mutex_unlock(&pe->mu);
    return 0;
  }
  pe->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (pe->ino_fd < 0 || pipe(pe->stop_pipe) != 0)
    goto fail;
  fcntl(pe->stop_pipe[0], F_SETFD, FD_CLOEXEC);
  fcntl(pe->stop_pipe[1], F_SETFD, FD_CLOEXEC);
  pe->watching = true;
  pthread_mutex_unlock(&pe->mu);
  policy_watch_sync(pe);
  if (pthread_create(&pe->watch_th, NULL, policy_watch_main, pe) != 0) {
    pthread_mutex_lock(&pe->mu);
    pe->watching = false;
    goto fail;
  }
  return 0;
fail:
  log_msg(CCM_LOG_WARN, "policy", "cannot watch policy files: %s",
          strerror(errno));
  if (pe->ino_fd >= 0)
    close(pe->ino_fd);
  if (pe->stop_pipe[0] >= 0) {
    close(pe->stop_pipe[0]);
    close(pe->stop_pipe[1]);
  }
  pe->ino_fd = -1;
  pe->stop_pipe[0] = pe->stop_pipe[1] = -1;
  pthread_mutex_unlock(&pe->mu);
  return -1;
}

static void policy_watch_stop(struct policy_engine *pe)
{
  char c = 'x';

  if (!pe->watching)
    return;
  if (write(pe->stop_pipe[1], &c, 1) != 1)
    log_msg(CCM_LOG_WARN, "policy", "cannot stop the watcher cleanly");
  pthread_join(pe->watch_th, NULL);
  close(pe->ino_fd);
  close(pe->stop_pipe[0]);
  close(pe->stop_pipe[1]);
  pe->ino_fd = -1;
  pe->watching = false;
}
