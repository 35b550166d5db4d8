/*
 * registry.c: provider slots, their generations, hot-swap and the prov_*
 * call wrappers. Callers hold a slot lock only to read the published
 * generation and count a reference; no lock is held across a provider call
 * except a CCM_THREAD_SERIAL module's own serial mutex. It must not parse
 * config files or talk to Kubernetes.
 */
#include "modules/registry.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "modules/host_api.h"
#include "server/metrics.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/thread.h"

#define LOG_PREFIX "registry"

/* Provider-call metrics, per provider name (slots outlive swaps). */
static const char *const prov_op_names[] = {
    "lb_get", "lb_ensure", "lb_update_hosts", "lb_delete",
    "instance_exists", "instance_shutdown", "instance_metadata",
    "instance_metadata_batch", "route_list", "route_create", "route_delete"};
#define PROV_N_OPS (sizeof(prov_op_names) / sizeof(prov_op_names[0]))
#define PROV_N_STATUS (1 - CCM_ERR_INTERNAL) /* CCM_OK .. CCM_ERR_INTERNAL */

struct prov_metrics {
  atomic_uint_fast64_t calls[PROV_N_OPS][PROV_N_STATUS];
  struct metrics_histogram duration[PROV_N_OPS]; /* calls made only */
};

struct provider_slot {
  struct registry *reg;
  char *name;
  char *lb_class;              /* binding, under reg->slots_lock */
  bool is_default;             /* binding, under reg->slots_lock */
  pthread_mutex_t lock;        /* current, paused, and refs reaching 0 */
  pthread_cond_t gate;         /* acquirers wait here while paused */
  pthread_cond_t drained;      /* some generation's refs reached 0 */
  struct generation *current;  /* published; NULL when removed */
  bool paused;                 /* state transfer: admit no new calls */
  uint64_t next_number;        /* under reg->admin */
  char last_error[256];        /* under lock */
  struct prov_metrics metrics; /* atomics; kept for the slot's life */
  struct provider_slot *next;
};

/* An old generation that missed its drain deadline, reaped later. */
struct drain_node {
  struct generation *gen;
  struct drain_node *next;
};

struct registry {
  char *private_dir;               /* <state_dir>/modules */
  uint32_t drain_timeout_ms;
  pthread_mutex_t admin;           /* serialises swap, apply and free */
  pthread_rwlock_t slots_lock;     /* the slot list and bindings */
  struct provider_slot *slots;     /* never freed before registry_free */
  struct drain_node *draining;     /* under admin */
  atomic_uint_fast64_t swaps;
  atomic_uint_fast64_t failed_swaps;
  atomic_uint_fast64_t destroyed;
  atomic_uint_fast64_t drain_timeouts;
  atomic_uint_fast64_t live;
};

/* One provider's part of a swap or an apply. */
struct swap_item {
  const struct provider_config *pc; /* NULL: remove the provider */
  const char *name;
  struct provider_slot *slot;       /* NULL for a provider not seen yet */
  struct generation *next;          /* prepared, unpublished */
  struct generation *old;
  bool paused;                      /* slot paused for state transfer */
  bool transferred;                 /* old drained and exported */
};

static void reg_err(char *err, size_t errlen, const char *fmt, ...)
    CCM_PRINTF(3, 4);

static void reg_err(char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;

  if (!err || errlen == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

bool ccm_status_valid(int status)
{
  return status <= CCM_OK && status >= CCM_ERR_INTERNAL;
}

const char *ccm_status_name(int status)
{
  switch (status) {
  case CCM_OK: return "ok";
  case CCM_ERR_NOT_FOUND: return "not_found";
  case CCM_ERR_NOT_IMPLEMENTED: return "not_implemented";
  case CCM_ERR_RETRY: return "retry";
  case CCM_ERR_INVALID: return "invalid";
  case CCM_ERR_AUTH: return "auth";
  case CCM_ERR_THROTTLED: return "throttled";
  case CCM_ERR_INTERNAL: return "internal";
  default: return "invalid_status";
  }
}

/* ---- time ------------------------------------------------------------ */

/* ---- slots ----------------------------------------------------------- */

static struct provider_slot *slot_new(struct registry *reg, const char *name)
{
  struct provider_slot *s = mem_calloc(1, sizeof(*s));

  if (!s)
    return NULL;
  s->name = mem_strdup(name);
  if (!s->name) {
    mem_free(s);
    return NULL;
  }
  s->reg = reg;
  pthread_mutex_init(&s->lock, NULL);
  thread_cond_init_mono(&s->gate);
  thread_cond_init_mono(&s->drained);
  return s;
}

static void slot_free(struct provider_slot *s)
{
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->gate);
  pthread_cond_destroy(&s->drained);
  mem_free(s->lb_class);
  mem_free(s->name);
  mem_free(s);
}

/* Caller holds slots_lock (read or write) or admin. */
static struct provider_slot *slot_find(struct registry *reg, const char *name)
{
  for (struct provider_slot *s = reg->slots; s; s = s->next) {
    if (strcmp(s->name, name) == 0)
      return s;
  }
  return NULL;
}

static void slot_set_error(struct provider_slot *s, const char *msg)
{
  if (!s)
    return;
  pthread_mutex_lock(&s->lock);
  snprintf(s->last_error, sizeof(s->last_error), "%s", msg ? msg : "");
  pthread_mutex_unlock(&s->lock);
}

static int slot_acquire(struct provider_slot *s, struct provider_ref *ref)
{
  struct generation *gen;

  pthread_mutex_lock(&s->lock);
  while (s->paused)
    pthread_cond_wait(&s->gate, &s->lock);
  gen = s->current;
  if (gen)
    atomic_fetch_add(&gen->refs, 1);
  pthread_mutex_unlock(&s->lock);
  ref->gen = gen;
  return gen ? CCM_OK : CCM_ERR_NOT_FOUND;
}

/* Wait until gen has no calls in flight; deadline_ms < 0 waits forever.
 * Returns false when the deadline passed first. */
static bool gen_wait_drained(struct provider_slot *s, struct generation *gen,
                             int64_t deadline_ms)
{
  bool drained = true;

  pthread_mutex_lock(&s->lock);
  while (atomic_load(&gen->refs) > 0) {
    if (deadline_ms < 0) {
      pthread_cond_wait(&s->drained, &s->lock);
      continue;
    }
    struct timespec ts = thread_deadline_at(deadline_ms);
    int rc = pthread_cond_timedwait(&s->drained, &s->lock, &ts);
    if (rc == ETIMEDOUT && atomic_load(&gen->refs) > 0) {
      drained = false;
      break;
    }
  }
  pthread_mutex_unlock(&s->lock);
  return drained;
}

static long gen_refs(struct provider_slot *s, struct generation *gen)
{
  long refs;

  pthread_mutex_lock(&s->lock);
  refs = atomic_load(&gen->refs);
  pthread_mutex_unlock(&s->lock);
  return refs;
}

/* ---- generations ----------------------------------------------------- */

/* Load, build the host handle and init; nothing is published. */
static struct generation *gen_prepare(struct registry *reg,
                                      const struct provider_config *pc,
                                      char *err, size_t errlen)
{
  struct generation *gen = mem_calloc(1, sizeof(*gen));
  struct ccm_call call;
  char why[512];
  int rc;

  if (!gen) {
    reg_err(err, errlen, "provider %s: out of memory", pc->name);
    return NULL;
  }
  atomic_init(&gen->refs, 0);
  pthread_mutex_init(&gen->serial, NULL);
  snprintf(gen->config_hash, sizeof(gen->config_hash), "%s", pc->config_hash);
  gen->config = pc->owner;
  config_hold(gen->config);
  if (loader_open(pc->module_abs, reg->private_dir, &gen->mod, why,
                 sizeof(why)) != 0) {
    reg_err(err, errlen, "provider %s: %s", pc->name, why);
    goto fail;
  }
  gen->host = host_new(pc->name, pc->config, &pc->http, why, sizeof(why));
  if (!gen->host) {
    reg_err(err, errlen, "provider %s: %s", pc->name, why);
    goto fail;
  }
  call_init(&call, pc->call_timeout_ms);
  rc = gen->mod->provider->init(host_api(), gen->host, &call, &gen->instance);
  if (rc != CCM_OK) {
    reg_err(err, errlen, "provider %s: module %s: init failed: %s", pc->name,
            pc->module_abs, call.error[0] ? call.error : ccm_status_name(rc));
    goto fail;
  }
  return gen;

fail:
  if (gen->host)
    host_free(gen->host);
  loader_close(gen->mod);
  config_free(gen->config);
  pthread_mutex_destroy(&gen->serial);
  mem_free(gen);
  return NULL;
}

/* Destroy an initialised generation with no calls in flight. */
static void gen_destroy(struct registry *reg, struct generation *gen)
{
  bool published = gen->slot != NULL;

  atomic_store(&gen->host->closing, true);
  gen->mod->provider->destroy(gen->instance);
  host_free(gen->host);
  if (published)
    log_msg(CCM_LOG_INFO, LOG_PREFIX, "provider %s: generation %llu "
            "destroyed", gen->slot->name, (unsigned long long)gen->number);
  loader_close(gen->mod);
  config_free(gen->config);
  pthread_mutex_destroy(&gen->serial);
  mem_free(gen);
  if (published) {
    atomic_fetch_add(&reg->destroyed, 1);
    atomic_fetch_sub(&reg->live, 1);
  }
}

static void gen_park(struct registry *reg, struct generation *gen)
{
  struct drain_node *n = mem_calloc(1, sizeof(*n));

  atomic_fetch_add(&reg->drain_timeouts, 1);
  log_msg(CCM_LOG_WARN, LOG_PREFIX, "provider %s: generation %llu still has "
          "%ld calls in flight after %u ms; parked, it is destroyed once "
          "they finish", gen->slot->name, (unsigned long long)gen->number,
          (long)atomic_load(&gen->refs), reg->drain_timeout_ms);
  if (!n) {
    /* Without a node the generation cannot be tracked: wait it out rather
     * than dlclose code that is still running. */
    gen_wait_drained(gen->slot, gen, -1);
    gen_destroy(reg, gen);
    return;
  }
  n->gen = gen;
  n->next = reg->draining;
  reg->draining = n;
}

/* Destroy parked generations that have drained; wait forever when asked. */
static void registry_reap(struct registry *reg, bool wait)
{
  struct drain_node **pp = &reg->draining;

  while (*pp) {
    struct drain_node *n = *pp;
    if (wait)
      gen_wait_drained(n->gen->slot, n->gen, -1);
    if (gen_refs(n->gen->slot, n->gen) > 0) {
      pp = &n->next;
      continue;
    }
    *pp = n->next;
    gen_destroy(reg, n->gen);
    mem_free(n);
  }
}

/* ---- swap plans ------------------------------------------------------ */

/* State moves only between versions of the same provider: another
 * provider's export is not a format the new module can read (ABI.md rule
 * 14), and a swap to another provider starts from that provider's own
 * state. */
static bool gen_has_state_path(const struct generation *old,
                               const struct generation *next)
{
  return MODULE_HAS(old->mod, state_export) &&
         MODULE_HAS(next->mod, state_import) &&
         strcmp(old->mod->provider->name, next->mod->provider->name) == 0;
}

/* Pause the slot, drain the old generation, move its state to the new
 * one. On failure the caller unpauses and the old generation serves on. */
static int item_transfer(struct registry *reg, struct swap_item *it,
                         char *err, size_t errlen)
{
  struct generation *old = it->old;
  struct ccm_blob blob = {0};
  struct ccm_call call;
  int rc;

  pthread_mutex_lock(&it->slot->lock);
  it->slot->paused = true;
  pthread_mutex_unlock(&it->slot->lock);
  it->paused = true;
  if (!gen_wait_drained(it->slot, old,
                       call_now_ms() + (int64_t)reg->drain_timeout_ms)) {
    reg_err(err, errlen, "provider %s: generation %llu did not drain within "
            "%u ms before the state transfer; swap aborted, it keeps "
            "serving", it->name, (unsigned long long)old->number,
            reg->drain_timeout_ms);
    return -1;
  }
  call_init(&call, it->pc->call_timeout_ms);
  rc = old->mod->provider->state_export(old->instance, &call, &blob);
  if (rc != CCM_OK) {
    reg_err(err, errlen, "provider %s: state export from generation %llu "
            "failed: %s", it->name, (unsigned long long)old->number,
            call.error[0] ? call.error : ccm_status_name(rc));
    blob_clear(&blob);
    return -1;
  }
  call_init(&call, it->pc->call_timeout_ms);
  rc = it->next->mod->provider->state_import(it->next->instance, &call,
                                             blob.data, blob.len);
  if (rc != CCM_OK) {
    reg_err(err, errlen, "provider %s: state import into the new generation "
            "failed: %s", it->name,
            call.error[0] ? call.error : ccm_status_name(rc));
    blob_clear(&blob);
    return -1;
  }
  log_msg(CCM_LOG_INFO, LOG_PREFIX, "provider %s: moved %zu bytes of state "
          "from generation %llu", it->name, blob.len,
          (unsigned long long)old->number);
  blob_clear(&blob);
  it->transferred = true;
  return 0;
}

static int binding_set(struct provider_slot *s, bool is_default,
                       const char *lb_class)
{
  char *copy = NULL;

  if (lb_class && *lb_class) {
    copy = mem_strdup(lb_class);
    if (!copy)
      return -1;
  }
  mem_free(s->lb_class);
  s->lb_class = copy;
  s->is_default = is_default;
  return 0;
}

/* Publish every prepared generation and the bindings; cannot fail after
 * the slots exist. cfg NULL: a single registry_swap (bindings from pc). */
static int plan_publish(struct registry *reg, struct swap_item *items,
                        size_t n, const struct host_config *cfg, char *err,
                        size_t errlen)
{
  pthread_rwlock_wrlock(&reg->slots_lock);
  for (size_t i = 0; i < n; i++) {
    if (items[i].slot || !items[i].pc)
      continue;
    items[i].slot = slot_new(reg, items[i].name);
    if (!items[i].slot) {
      pthread_rwlock_unlock(&reg->slots_lock);
      reg_err(err, errlen, "provider %s: out of memory", items[i].name);
      return -1;
    }
    items[i].slot->next = reg->slots;
    reg->slots = items[i].slot;
  }
  if (cfg) {
    for (struct provider_slot *s = reg->slots; s; s = s->next)
      binding_set(s, false, NULL);
    for (size_t i = 0; i < cfg->n_providers; i++) {
      const struct provider_config *pc = &cfg->providers[i];
      struct provider_slot *s = slot_find(reg, pc->name);
      if (s)
        binding_set(s, pc->is_default, pc->is_default ? NULL : pc->lb_class);
    }
  } else if (n == 1 && items[0].pc) {
    const struct provider_config *pc = items[0].pc;
    if (pc->is_default) {
      for (struct provider_slot *s = reg->slots; s; s = s->next)
        s->is_default = false;
    }
    binding_set(items[0].slot, pc->is_default,
                pc->is_default ? NULL : pc->lb_class);
  }
  pthread_rwlock_unlock(&reg->slots_lock);

  for (size_t i = 0; i < n; i++) {
    struct swap_item *it = &items[i];
    struct provider_slot *s = it->slot;
    if (!s)
      continue;
    if (it->next) {
      it->next->slot = s;
      it->next->number = ++s->next_number;
      atomic_fetch_add(&reg->live, 1);
    }
    pthread_mutex_lock(&s->lock);
    it->old = s->current;
    s->current = it->next;
    s->paused = false;
    s->last_error[0] = '\0';
    pthread_cond_broadcast(&s->gate);
    pthread_mutex_unlock(&s->lock);
    it->paused = false;
    if (it->next && it->old)
      atomic_fetch_add(&reg->swaps, 1);
    if (it->next)
      log_msg(CCM_LOG_INFO, LOG_PREFIX, "provider %s: generation %llu "
              "published (%s %s from %s)%s", s->name,
              (unsigned long long)it->next->number,
              it->next->mod->provider->name,
              it->next->mod->provider->version
                  ? it->next->mod->provider->version : "?",
              it->next->mod->path,
              it->transferred ? ", state carried over" : "");
    else
      log_msg(CCM_LOG_INFO, LOG_PREFIX, "provider %s: removed", s->name);
  }
  return 0;
}

/* After publishing: drain each old generation within one common deadline,
 * destroy the drained ones and park the others. */
static void plan_retire(struct registry *reg, struct swap_item *items,
                        size_t n)
{
  int64_t deadline = call_now_ms() + (int64_t)reg->drain_timeout_ms;

  for (size_t i = 0; i < n; i++) {
    struct generation *old = items[i].old;
    if (!old)
      continue;
    if (gen_wait_drained(old->slot, old, deadline))
      gen_destroy(reg, old);
    else
      gen_park(reg, old);
    items[i].old = NULL;
  }
}

static void plan_abort(struct registry *reg, struct swap_item *items,
                       size_t n, const char *why)
{
  for (size_t i = 0; i < n; i++) {
    struct swap_item *it = &items[i];
    if (it->paused) {
      pthread_mutex_lock(&it->slot->lock);
      it->slot->paused = false;
      pthread_cond_broadcast(&it->slot->gate);
      pthread_mutex_unlock(&it->slot->lock);
      it->paused = false;
    }
    if (it->next) {
      gen_destroy(reg, it->next);
      it->next = NULL;
    }
    slot_set_error(it->slot, why);
  }
  atomic_fetch_add(&reg->failed_swaps, 1);
  log_msg(CCM_LOG_ERROR, LOG_PREFIX, "swap failed, the serving generations "
          "are unchanged: %s", why);
}

/* Prepare every new generation, move state where both sides can, then
 * publish all and retire the old ones. Caller holds admin. */
static int plan_run(struct registry *reg, struct swap_item *items, size_t n,
                    const struct host_config *cfg, char *err, size_t errlen)
{
  char why[1024] = "";

  for (size_t i = 0; i < n; i++) {
    if (!items[i].pc)
      continue;
    items[i].next = gen_prepare(reg, items[i].pc, why, sizeof(why));
    if (!items[i].next)
      goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    struct swap_item *it = &items[i];
    if (!it->next || !it->slot || !it->slot->current)
      continue;
    it->old = it->slot->current; /* stable: only admin changes it */
    if (gen_has_state_path(it->old, it->next) &&
       item_transfer(reg, it, why, sizeof(why)) != 0)
      goto fail;
    it->old = NULL;
  }
  if (plan_publish(reg, items, n, cfg, why, sizeof(why)) != 0)
    goto fail;
  plan_retire(reg, items, n);
  return 0;

fail:
  for (size_t i = 0; i < n; i++)
    items[i].old = NULL;
  plan_abort(reg, items, n, why);
  reg_err(err, errlen, "%s", why);
  return -1;
}

/* ---- public: lifecycle ---------------------------------------------- */

struct registry *registry_new(const char *state_dir, uint32_t drain_timeout_ms)
{
  struct registry *reg;
  size_t len;

  if (!state_dir || !*state_dir)
    return NULL;
  reg = mem_calloc(1, sizeof(*reg));
  if (!reg)
    return NULL;
  len = strlen(state_dir) + sizeof("/modules");
  reg->private_dir = mem_alloc(len);
  if (!reg->private_dir) {
    mem_free(reg);
    return NULL;
  }
  snprintf(reg->private_dir, len, "%s/modules", state_dir);
  reg->drain_timeout_ms = drain_timeout_ms;
  pthread_mutex_init(&reg->admin, NULL);
  pthread_rwlock_init(&reg->slots_lock, NULL);
  atomic_init(&reg->swaps, 0);
  atomic_init(&reg->failed_swaps, 0);
  atomic_init(&reg->destroyed, 0);
  atomic_init(&reg->drain_timeouts, 0);
  atomic_init(&reg->live, 0);
  return reg;
}

void registry_free(struct registry *reg)
{
  struct provider_slot *s, *next;

  if (!reg)
    return;
  pthread_mutex_lock(&reg->admin);
  for (s = reg->slots; s; s = s->next) {
    struct generation *gen;
    pthread_mutex_lock(&s->lock);
    gen = s->current;
    s->current = NULL;
    s->paused = false;
    pthread_cond_broadcast(&s->gate);
    pthread_mutex_unlock(&s->lock);
    if (!gen)
      continue;
    gen_wait_drained(s, gen, -1);
    gen_destroy(reg, gen);
  }
  registry_reap(reg, true);
  pthread_mutex_unlock(&reg->admin);

  for (s = reg->slots; s; s = next) {
    next = s->next;
    slot_free(s);
  }
  pthread_rwlock_destroy(&reg->slots_lock);
  pthread_mutex_destroy(&reg->admin);
  mem_free(reg->private_dir);
  mem_free(reg);
}

int registry_swap(struct registry *reg, const struct provider_config *pc,
                  char *err, size_t errlen)
{
  struct swap_item item;
  int rc;

  if (err && errlen)
    err[0] = '\0';
  if (!reg || !pc || !pc->name) {
    reg_err(err, errlen, "registry_swap: no provider");
    return -1;
  }
  memset(&item, 0, sizeof(item));
  item.pc = pc;
  item.name = pc->name;
  pthread_mutex_lock(&reg->admin);
  registry_reap(reg, false);
  pthread_rwlock_rdlock(&reg->slots_lock);
  item.slot = slot_find(reg, pc->name);
  pthread_rwlock_unlock(&reg->slots_lock);
  rc = plan_run(reg, &item, 1, NULL, err, errlen);
  pthread_mutex_unlock(&reg->admin);
  return rc;
}

int registry_apply(struct registry *reg, const struct host_config *cfg,
                   char *err, size_t errlen)
{
  struct swap_item *items = NULL;
  size_t n = 0, cap;
  char why[1024];
  int rc = -1;

  if (err && errlen)
    err[0] = '\0';
  if (!reg || !cfg) {
    reg_err(err, errlen, "registry_apply: no config");
    return -1;
  }
  pthread_mutex_lock(&reg->admin);
  registry_reap(reg, false);
  cap = cfg->n_providers;
  for (struct provider_slot *s = reg->slots; s; s = s->next)
    cap++;
  items = mem_calloc(cap ? cap : 1, sizeof(*items));
  if (!items) {
    reg_err(err, errlen, "registry_apply: out of memory");
    goto done;
  }
  for (size_t i = 0; i < cfg->n_providers; i++) {
    const struct provider_config *pc = &cfg->providers[i];
    struct provider_slot *s = slot_find(reg, pc->name);
    char hash[CCM_HASH_HEX];
    if (s && s->current) {
      if (loader_file_hash(pc->module_abs, hash, why, sizeof(why)) != 0) {
        reg_err(err, errlen, "provider %s: %s", pc->name, why);
        atomic_fetch_add(&reg->failed_swaps, 1);
        slot_set_error(s, err);
        log_msg(CCM_LOG_ERROR, LOG_PREFIX, "apply failed, nothing changed: "
                "%s", err);
        goto done;
      }
      if (strcmp(hash, s->current->mod->hash) == 0 &&
         strcmp(pc->config_hash, s->current->config_hash) == 0)
        continue; /* unchanged: keep serving */
    }
    items[n].pc = pc;
    items[n].name = pc->name;
    items[n].slot = s;
    n++;
  }
  for (struct provider_slot *s = reg->slots; s; s = s->next) {
    bool listed = false;
    if (!s->current)
      continue;
    for (size_t i = 0; i < cfg->n_providers && !listed; i++)
      listed = strcmp(cfg->providers[i].name, s->name) == 0;
    if (listed)
      continue;
    items[n].name = s->name;
    items[n].slot = s;
    n++;
  }
  rc = plan_run(reg, items, n, cfg, err, errlen);

done:
  mem_free(items);
  pthread_mutex_unlock(&reg->admin);
  return rc;
}

/* ---- public: lookups ------------------------------------------------- */

int registry_acquire(struct registry *reg, const char *provider_name,
                     struct provider_ref *ref)
{
  struct provider_slot *s;

  ref->gen = NULL;
  if (!reg || !provider_name)
    return CCM_ERR_NOT_FOUND;
  pthread_rwlock_rdlock(&reg->slots_lock);
  s = slot_find(reg, provider_name);
  pthread_rwlock_unlock(&reg->slots_lock);
  if (!s)
    return CCM_ERR_NOT_FOUND;
  return slot_acquire(s, ref);
}

int registry_for_service(struct registry *reg, const char *lb_class,
                         struct provider_ref *ref)
{
  struct provider_slot *found = NULL;

  ref->gen = NULL;
  if (!reg)
    return CCM_ERR_NOT_FOUND;
  pthread_rwlock_rdlock(&reg->slots_lock);
  for (struct provider_slot *s = reg->slots; s && !found; s = s->next) {
    if (!lb_class || !*lb_class) {
      if (s->is_default)
        found = s;
    } else if (s->lb_class && strcmp(s->lb_class, lb_class) == 0) {
      found = s;
    }
  }
  pthread_rwlock_unlock(&reg->slots_lock);
  if (!found)
    return CCM_ERR_NOT_FOUND;
  return slot_acquire(found, ref);
}

int registry_for_nodes(struct registry *reg, struct provider_ref *ref)
{
  return registry_for_service(reg, NULL, ref);
}

const char *registry_ref_name(const struct provider_ref *ref)
{
  return ref->gen != NULL ? ref->gen->slot->name : NULL;
}

void registry_release(struct provider_ref *ref)
{
  struct generation *gen;
  struct provider_slot *s;

  if (!ref || !ref->gen)
    return;
  gen = ref->gen;
  s = gen->slot;
  ref->gen = NULL;
  /* Decrement under the slot lock: a drainer that sees 0 may free gen at
   * once, and it checks refs under the same lock. */
  pthread_mutex_lock(&s->lock);
  if (atomic_fetch_sub(&gen->refs, 1) == 1)
    pthread_cond_broadcast(&s->drained);
  pthread_mutex_unlock(&s->lock);
}

/* ---- public: stats --------------------------------------------------- */

void registry_get_stats(struct registry *reg, struct registry_stats *out)
{
  memset(out, 0, sizeof(*out));
  if (!reg)
    return;
  out->swaps = atomic_load(&reg->swaps);
  out->failed_swaps = atomic_load(&reg->failed_swaps);
  out->generations_destroyed = atomic_load(&reg->destroyed);
  out->drain_timeouts = atomic_load(&reg->drain_timeouts);
  out->live_generations = atomic_load(&reg->live);
}

/* ccm_provider_calls_total and ccm_provider_call_duration_seconds, for
 * every provider slot (removed providers keep their counts). Only series
 * that saw a call are written. */
static void registry_call_metrics_write(struct registry *reg, FILE *out)
{
  char name[256], labels[512];

  metrics_write_header(out, "ccm_provider_calls_total", "counter",
                       "Provider operation calls by provider, operation "
                       "and status.");
  pthread_rwlock_rdlock(&reg->slots_lock);
  for (struct provider_slot *s = reg->slots; s; s = s->next) {
    metrics_escape_label_value(name, sizeof(name), s->name);
    for (size_t op = 0; op < PROV_N_OPS; op++)
      for (int st = 0; st < PROV_N_STATUS; st++) {
        uint64_t n = atomic_load(&s->metrics.calls[op][st]);
        if (n == 0)
          continue;
        fprintf(out, "ccm_provider_calls_total{provider=\"%s\","
                "operation=\"%s\",status=\"%s\"} %llu\n", name,
                prov_op_names[op], ccm_status_name(-st),
                (unsigned long long)n);
      }
  }
  metrics_write_header(out, "ccm_provider_call_duration_seconds",
                       "histogram", "Duration of provider operation calls "
                       "(the module's own time, without queueing).");
  for (struct provider_slot *s = reg->slots; s; s = s->next) {
    metrics_escape_label_value(name, sizeof(name), s->name);
    for (size_t op = 0; op < PROV_N_OPS; op++) {
      if (metrics_histogram_count(&s->metrics.duration[op]) == 0)
        continue;
      snprintf(labels, sizeof(labels), "provider=\"%s\",operation=\"%s\"",
               name, prov_op_names[op]);
      metrics_histogram_write(out, "ccm_provider_call_duration_seconds",
                              labels, &s->metrics.duration[op]);
    }
  }
  pthread_rwlock_unlock(&reg->slots_lock);
}

void registry_metrics_write(struct registry *reg, FILE *out)
{
  struct registry_stats st;

  registry_get_stats(reg, &st);
  fprintf(out, "# HELP ccm_module_generation Generation number serving each "
          "provider (0 when removed).\n"
          "# TYPE ccm_module_generation gauge\n");
  if (reg) {
    pthread_rwlock_rdlock(&reg->slots_lock);
    for (struct provider_slot *s = reg->slots; s; s = s->next) {
      unsigned long long number = 0;
      pthread_mutex_lock(&s->lock);
      if (s->current)
        number = (unsigned long long)s->current->number;
      pthread_mutex_unlock(&s->lock);
      fprintf(out, "ccm_module_generation{provider=\"%s\"} %llu\n", s->name,
              number);
    }
    pthread_rwlock_unlock(&reg->slots_lock);
  }
  fprintf(out,
          "# HELP ccm_module_swaps_total Successful module swaps.\n"
          "# TYPE ccm_module_swaps_total counter\n"
          "ccm_module_swaps_total %llu\n"
          "# HELP ccm_module_failed_swaps_total Swaps that failed before "
          "publishing (the old generation kept serving).\n"
          "# TYPE ccm_module_failed_swaps_total counter\n"
          "ccm_module_failed_swaps_total %llu\n"
          "# HELP ccm_module_drain_timeouts_total Old generations that missed "
          "the drain deadline and were parked.\n"
          "# TYPE ccm_module_drain_timeouts_total counter\n"
          "ccm_module_drain_timeouts_total %llu\n"
          "# HELP ccm_module_generations_destroyed_total Generations "
          "destroyed and unloaded.\n"
          "# TYPE ccm_module_generations_destroyed_total counter\n"
          "ccm_module_generations_destroyed_total %llu\n"
          "# HELP ccm_module_live_generations Generations loaded now "
          "(serving or draining).\n"
          "# TYPE ccm_module_live_generations gauge\n"
          "ccm_module_live_generations %llu\n",
          (unsigned long long)st.swaps, (unsigned long long)st.failed_swaps,
          (unsigned long long)st.drain_timeouts,
          (unsigned long long)st.generations_destroyed,
          (unsigned long long)st.live_generations);
  if (reg)
    registry_call_metrics_write(reg, out);
}

void registry_describe(struct registry *reg, FILE *out)
{
  if (!reg)
    return;
  pthread_rwlock_rdlock(&reg->slots_lock);
  for (struct provider_slot *s = reg->slots; s; s = s->next) {
    char caps[128];
    pthread_mutex_lock(&s->lock);
    if (s->current) {
      const struct module *m = s->current->mod;
      loader_caps_string(m->capabilities, caps, sizeof(caps));
      fprintf(out, "provider %s: generation %llu, %s %s (ABI %u.%u, caps %s) "
              "from %s, %s%s%s, %ld calls in flight%s%s\n", s->name,
              (unsigned long long)s->current->number, m->provider->name,
              m->provider->version ? m->provider->version : "?",
              m->abi_major, m->abi_minor, caps, m->path,
              s->is_default ? "default" : "class ",
              s->is_default ? "" : (s->lb_class ? s->lb_class : "(none)"),
              s->paused ? ", swapping" : "",
              (long)atomic_load(&s->current->refs),
              s->last_error[0] ? "; last swap failed: " : "", s->last_error);
    } else {
      fprintf(out, "provider %s: not loaded%s%s\n", s->name,
              s->last_error[0] ? "; last swap failed: " : "", s->last_error);
    }
    pthread_mutex_unlock(&s->lock);
  }
  pthread_rwlock_unlock(&reg->slots_lock);
}

/* ---- provider calls -------------------------------------------------- */

static struct generation *prov_gen(struct provider_ref *ref, const char *op)
{
  if (!ref || !ref->gen) {
    log_msg(CCM_LOG_ERROR, LOG_PREFIX, "%s called without a provider "
            "reference", op);
    return NULL;
  }
  return ref->gen;
}

static void prov_lock(struct generation *g)
{
  if (g->mod->provider->thread_safety == CCM_THREAD_SERIAL)
    pthread_mutex_lock(&g->serial);
}

static void prov_unlock(struct generation *g)
{
  if (g->mod->provider->thread_safety == CCM_THREAD_SERIAL)
    pthread_mutex_unlock(&g->serial);
}

static void prov_not_implemented(struct generation *g, struct ccm_call *call,
                                 const char *op)
{
  if (call)
    snprintf(call->error, sizeof(call->error), "provider %s (module %s) does "
             "not implement %s", g->slot ? g->slot->name : "?",
             g->mod->provider->name, op);
}

/* Map a status outside the enum to CCM_ERR_INTERNAL, loudly. */
static int prov_status(struct generation *g, struct ccm_call *call,
                       const char *op, int rc)
{
  if (ccm_status_valid(rc))
    return rc;
  log_msg(CCM_LOG_ERROR, LOG_PREFIX, "provider %s: module %s (%s) %s "
          "returned status %d, which is not an enum ccm_status value; "
          "treated as internal error", g->slot ? g->slot->name : "?",
          g->mod->provider->name, g->mod->path, op, rc);
  if (call && !call->error[0])
    snprintf(call->error, sizeof(call->error), "module %s: %s returned "
             "invalid status %d", g->mod->provider->name, op, rc);
  return CCM_ERR_INTERNAL;
}

static int64_t prov_clock_ns(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Count one call of op with status rc on g's provider; elapsed_ns < 0:
 * the module was not called (not implemented), no duration. */
static void prov_record(struct generation *g, const char *op, int rc,
                        int64_t elapsed_ns)
{
  struct prov_metrics *m;
  size_t i;

  if (!g->slot || !ccm_status_valid(rc))
    return;
  for (i = 0; i < PROV_N_OPS; i++)
    if (strcmp(prov_op_names[i], op) == 0)
      break;
  if (i == PROV_N_OPS)
    return;
  m = &g->slot->metrics;
  atomic_fetch_add_explicit(&m->calls[i][-rc], 1, memory_order_relaxed);
  if (elapsed_ns >= 0)
    metrics_histogram_observe(&m->duration[i], (double)elapsed_ns / 1e9);
}

static _Thread_local uint64_t prov_call_cpu_ns;

uint64_t prov_thread_call_cpu_ns(void)
{
  return prov_call_cpu_ns;
}

/* Call operation `field` of the referenced generation; sets rc. */
#define PROV_DISPATCH(ref, call, field, ...)                                 \
  do {                                                                       \
    struct generation *g_ = prov_gen((ref), #field);                         \
    int64_t t0_;                                                             \
    uint64_t cpu0_;                                                          \
    if (!g_) {                                                                \
      rc = CCM_ERR_INTERNAL;                                                 \
      break;                                                                 \
    }                                                                        \
    if (!MODULE_HAS(g_->mod, field)) {                                        \
      prov_not_implemented(g_, (call), #field);                              \
      rc = CCM_ERR_NOT_IMPLEMENTED;                                          \
      prov_record(g_, #field, rc, -1);                                       \
      break;                                                                 \
    }                                                                        \
    prov_lock(g_);                                                           \
    t0_ = prov_clock_ns();                                                   \
    cpu0_ = thread_cpu_ns();                                                 \
    rc = g_->mod->provider->field(g_->instance, (call), __VA_ARGS__);        \
    prov_call_cpu_ns += thread_cpu_ns() - cpu0_;                             \
    t0_ = prov_clock_ns() - t0_;                                             \
    prov_unlock(g_);                                                         \
    rc = prov_status(g_, (call), #field, rc);                                \
    prov_record(g_, #field, rc, t0_);                                        \
  } while (0)

int prov_lb_get(struct provider_ref *ref, struct ccm_call *call,
                const struct ccm_service *svc, struct ccm_lb_status *out)
{
  int rc;

  PROV_DISPATCH(ref, call, lb_get, svc, out);
  if (rc != CCM_OK && out)
    lb_status_clear(out);
  return rc;
}

int prov_lb_ensure(struct provider_ref *ref, struct ccm_call *call,
                   const struct ccm_service *svc,
                   const struct ccm_node_list *nodes,
                   struct ccm_lb_status *out)
{
  int rc;

  PROV_DISPATCH(ref, call, lb_ensure, svc, nodes, out);
  if (rc != CCM_OK && out)
    lb_status_clear(out);
  return rc;
}

int prov_lb_update_hosts(struct provider_ref *ref, struct ccm_call *call,
                         const struct ccm_service *svc,
                         const struct ccm_node_list *nodes)
{
  int rc;

  PROV_DISPATCH(ref, call, lb_update_hosts, svc, nodes);
  return rc;
}

int prov_lb_delete(struct provider_ref *ref, struct ccm_call *call,
                   const struct ccm_service *svc)
{
  int rc;

  PROV_DISPATCH(ref, call, lb_delete, svc);
  return rc;
}

int prov_instance_exists(struct provider_ref *ref, struct ccm_call *call,
                         const struct ccm_node *node, bool *exists)
{
  int rc;

  PROV_DISPATCH(ref, call, instance_exists, node, exists);
  if (rc != CCM_OK && exists)
    *exists = false;
  return rc;
}

int prov_instance_shutdown(struct provider_ref *ref, struct ccm_call *call,
                           const struct ccm_node *node, bool *shutdown)
{
  int rc;

  PROV_DISPATCH(ref, call, instance_shutdown, node, shutdown);
  if (rc != CCM_OK && shutdown)
    *shutdown = false;
  return rc;
}

int prov_instance_metadata(struct provider_ref *ref, struct ccm_call *call,
                           const struct ccm_node *node,
                           struct ccm_instance_meta *out)
{
  int rc;

  PROV_DISPATCH(ref, call, instance_metadata, node, out);
  if (rc != CCM_OK && out)
    instance_meta_clear(out);
  return rc;
}

int prov_instance_metadata_batch(struct provider_ref *ref,
                                 struct ccm_call *call,
                                 const struct ccm_node *const *nodes,
                                 size_t n, struct ccm_instance_meta *const *out,
                                 int *status)
{
  struct generation *g = prov_gen(ref, "instance_metadata_batch");
  int rc;

  if (!g) {
    rc = CCM_ERR_INTERNAL;
    goto fail;
  }
  if (!MODULE_HAS(g->mod, instance_metadata_batch)) {
    if (!MODULE_HAS(g->mod, instance_metadata)) {
      prov_not_implemented(g, call, "instance_metadata");
      rc = CCM_ERR_NOT_IMPLEMENTED;
      goto fail;
    }
    for (size_t i = 0; i < n; i++) {
      if (call && atomic_load(&call->cancelled))
        status[i] = CCM_ERR_RETRY;
      else
        status[i] = prov_instance_metadata(ref, call, nodes[i], out[i]);
    }
    return CCM_OK;
  }
  PROV_DISPATCH(ref, call, instance_metadata_batch, nodes, n, out, status);
  if (rc != CCM_OK)
    goto fail;
  for (size_t i = 0; i < n; i++) {
    status[i] = prov_status(g, call, "instance_metadata_batch", status[i]);
    if (status[i] != CCM_OK)
      instance_meta_clear(out[i]);
  }
  return CCM_OK;

fail:
  for (size_t i = 0; i < n; i++) {
    status[i] = rc;
    instance_meta_clear(out[i]);
  }
  return rc;
}

int prov_route_list(struct provider_ref *ref, struct ccm_call *call,
                    const char *cluster, struct ccm_route_list *out)
{
  int rc;

  PROV_DISPATCH(ref, call, route_list, cluster, out);
  if (rc != CCM_OK && out)
    route_list_clear(out);
  return rc;
}

int prov_route_create(struct provider_ref *ref, struct ccm_call *call,
                      const char *cluster, const char *name_hint,
                      const struct ccm_route *route)
{
  int rc;

  PROV_DISPATCH(ref, call, route_create, cluster, name_hint, route);
  return rc;
}

int prov_route_delete(struct provider_ref *ref, struct ccm_call *call,
                      const char *cluster, const struct ccm_route *route)
{
  int rc;

  PROV_DISPATCH(ref, call, route_delete, cluster, route);
  return rc;
}
