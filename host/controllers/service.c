/*
 * service.c: the service load-balancer controller's life cycle: informer
 * handlers (upstream's enqueue rules), the workers and what they do with
 * each outcome, the node-sync and leadership thread, and metrics. The
 * sync passes live in service_sync.c; it must not call providers itself.
 */
#include "controllers/service.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "controllers/service_int.h"
#include "controllers/service_logic.h"
#include "modules/host_api.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/thread.h"

/* ---- queueing ------------------------------------------------------ */

/* Queue a full sync of key (never called with c->lock held). */
static void svc_enqueue_full(struct svc_ctrl *c, const char *key)
{
  struct svc_entry *e;

  pthread_mutex_lock(&c->lock);
  e = svc_cache_get(&c->cache, key);
  if (e != NULL)
    e->want_full = true;
  pthread_mutex_unlock(&c->lock);
  wq_add(c->q, key);
}

static void svc_enqueue_obj(struct svc_ctrl *c, const struct obj_meta *obj)
{
  char key[512];

  if (obj_key(obj, key, sizeof(key)) < 0)
    return;
  svc_enqueue_full(c, key);
}

/* ---- informer handlers (informer threads; quick) -------------------- */

static void svc_on_add(void *ud, const struct obj_meta *obj)
{
  struct svc_ctrl *c = ud;
  const struct obj_service *s = obj_as_service(obj);

  if (s != NULL && svc_should_enqueue(s, svc_class_served(c, s->lb_class)))
    svc_enqueue_obj(c, obj);
}

static void svc_on_update(void *ud, const struct obj_meta *old,
                          const struct obj_meta *cur)
{
  struct svc_ctrl *c = ud;
  const struct obj_service *o = obj_as_service(old);
  const struct obj_service *s = obj_as_service(cur);

  if (s == NULL)
    return;
  if (svc_needs_update(o, o ? svc_class_served(c, o->lb_class) : false, s,
                       svc_class_served(c, s->lb_class)) ||
      svc_needs_cleanup(s))
    svc_enqueue_obj(c, cur);
}

/* Upstream has no delete handler. A Service that vanished without our
 * finalizer (removed by hand) would keep its load balancer until the
 * name is reused; queueing it lets syncService delete it by its cached
 * object. Keys we never processed are not queued. */
static void svc_on_delete(void *ud, const struct obj_meta *old)
{
  struct svc_ctrl *c = ud;
  char key[512];
  bool cached;

  if (obj_key(old, key, sizeof(key)) < 0)
    return;
  pthread_mutex_lock(&c->lock);
  cached = svc_cache_get(&c->cache, key) != NULL;
  pthread_mutex_unlock(&c->lock);
  if (cached)
    svc_enqueue_full(c, key);
}

static void svc_node_event(struct svc_ctrl *c, bool sync)
{
  pthread_mutex_lock(&c->lock);
  c->nodes_stale = true;
  if (sync) {
    c->node_dirty = true;
    pthread_cond_signal(&c->cond);
  }
  pthread_mutex_unlock(&c->lock);
}

static void svc_on_node_add(void *ud, const struct obj_meta *obj)
{
  (void)obj;
  svc_node_event(ud, true);
}

static void svc_on_node_update(void *ud, const struct obj_meta *old,
                               const struct obj_meta *cur)
{
  /* Every update refreshes the snapshot (addresses, labels); only the
   * exclusion predicate or providerID trigger a node sync (upstream). */
  svc_node_event(ud, svc_node_update_triggers(obj_as_node(old),
                                              obj_as_node(cur)));
}

static void svc_on_node_delete(void *ud, const struct obj_meta *old)
{
  (void)old;
  svc_node_event(ud, true);
}

/* ---- workers -------------------------------------------------------- */

static void svc_mark_full(struct svc_ctrl *c, const char *key)
{
  struct svc_entry *e;

  pthread_mutex_lock(&c->lock);
  e = svc_cache_get(&c->cache, key);
  if (e != NULL)
    e->want_full = true;
  pthread_mutex_unlock(&c->lock);
}

void svc_requeue_failed(struct svc_ctrl *c, const char *key)
{
  svc_mark_full(c, key);
  wq_add_rate_limited(c->q, key);
}

static void svc_process(struct svc_ctrl *c, const char *key)
{
  struct svc_result r;
  struct svc_entry *e;
  bool full = true;

  if (!runtime_is_leader(c->env.rt)) {
    /* A standby does nothing; the key is queued again (with every other)
     * when this replica becomes the leader. */
    atomic_fetch_add(&c->m.not_leader_skips, 1);
    pthread_mutex_lock(&c->lock);
    c->parked = true;
    pthread_mutex_unlock(&c->lock);
    return;
  }
  pthread_mutex_lock(&c->lock);
  e = svc_cache_get(&c->cache, key);
  if (e != NULL) {
    full = e->want_full || !e->want_hosts;
    e->want_full = false;
    e->want_hosts = false;
  }
  pthread_mutex_unlock(&c->lock);
  if (full)
    svc_sync(c, key, &r);
  else
    svc_sync_hosts(c, key, &r);
  switch (r.out) {
  case SVC_OUT_DONE:
    wq_forget(c->q, key);
    break;
  case SVC_OUT_PERMANENT:
    log_msg(CCM_LOG_WARN, "service", "%s: not retried: %s", key, r.err);
    wq_forget(c->q, key);
    break;
  case SVC_OUT_FAILED:
    log_msg(CCM_LOG_WARN, "service", "%s: %s (retry with backoff)", key,
            r.err);
    svc_mark_full(c, key);
    wq_add_rate_limited(c->q, key);
    break;
  case SVC_OUT_RETRY_AFTER:
    log_msg(CCM_LOG_WARN, "service", "%s: %s (retry in %u ms)", key, r.err,
            (unsigned)r.retry_after_ms);
    svc_mark_full(c, key);
    wq_add_after(c->q, key, r.retry_after_ms);
    break;
  case SVC_OUT_REQUEUE:
    svc_mark_full(c, key);
    wq_add(c->q, key);
    break;
  case SVC_OUT_PARKED:
    atomic_fetch_add(&c->m.not_leader_skips, 1);
    svc_mark_full(c, key);
    pthread_mutex_lock(&c->lock);
    c->parked = true;
    pthread_mutex_unlock(&c->lock);
    break;
  }
}

/* Upstream's WaitForCacheSync: no Service is reconciled before both
 * caches listed, or an ensure after a restart would see no Nodes and
 * take every backend out of its load balancer. False when stopping. */
static bool svc_wait_caches(struct svc_ctrl *c)
{
  for (;;) {
    bool stopping;

    if (runtime_wait_synced(c->env.rt, CCM_SVC_SYNC_POLL_MS))
      return true;
    pthread_mutex_lock(&c->lock);
    stopping = c->stopping;
    pthread_mutex_unlock(&c->lock);
    if (stopping)
      return false;
  }
}

static void *svc_worker(void *arg)
{
  struct svc_ctrl *c = arg;
  const char *key;

  thread_name("svc-worker");

  if (!svc_wait_caches(c)) {
    /* stopping before the caches listed: drop what was queued */
    while (wq_get(c->q, &key))
      wq_done(c->q, key);
    return NULL;
  }
  while (wq_get(c->q, &key)) {
    svc_process(c, key);
    wq_done(c->q, key);
  }
  return NULL;
}

/* ---- node sync and leadership thread ------------------------------- */

struct svc_keys {
  char **v;
  size_t n, cap;
  struct svc_ctrl *c;
  struct svc_nodes *nodes;
};

static int svc_keys_push(struct svc_keys *k, const char *key)
{
  char *copy;

  if (k->n == k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 64;
    char **v = mem_realloc(k->v, cap * sizeof(*v));

    if (v == NULL)
      return -1;
    k->v = v;
    k->cap = cap;
  }
  copy = mem_strdup(key);
  if (copy == NULL)
    return -1;
  k->v[k->n++] = copy;
  return 0;
}

static void svc_keys_flush(struct svc_keys *k, struct workqueue *q)
{
  size_t i;

  for (i = 0; i < k->n; i++) {
    wq_add(q, k->v[i]);
    mem_free(k->v[i]);
  }
  mem_free(k->v);
  k->v = NULL;
  k->n = k->cap = 0;
}

/* Under c->lock: entries whose host set differs from the snapshot. */
static int svc_collect_hosts(struct svc_entry *e, void *ud)
{
  struct svc_keys *k = ud;
  const struct obj_service *s = obj_as_service(e->obj);

  if (s == NULL || e->lb_name == NULL || s->type != OBJ_SVC_LOAD_BALANCER ||
      s->meta.deleting)
    return 0;
  if (svc_nodes_same(e->synced, k->nodes))
    return 0;
  if (svc_keys_push(k, e->key) == 0)
    e->want_hosts = true;
  return 0;
}

/* Upstream's syncNodes: every cached LB Service whose last synced host
 * set differs gets an UpdateLoadBalancer pass on the workers (so one key
 * is never in two places at once, and parallelism is service_workers). */
static void svc_node_sync_round(struct svc_ctrl *c)
{
  struct svc_keys k = {0};
  struct timespec t0, t1;

  clock_gettime(CLOCK_MONOTONIC, &t0);
  k.c = c;
  k.nodes = svc_ctrl_nodes(c);
  if (k.nodes == NULL) {
    atomic_fetch_add(&c->m.nodesync_errors, 1);
    return;
  }
  pthread_mutex_lock(&c->lock);
  svc_cache_foreach(&c->cache, svc_collect_hosts, &k);
  pthread_mutex_unlock(&c->lock);
  svc_keys_flush(&k, c->q);
  svc_nodes_unref(k.nodes);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  svc_hist_observe(&c->m.nodesync_latency,
                   (double)(t1.tv_sec - t0.tv_sec) +
                       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

static int svc_collect_store(const struct obj_meta *obj, void *ud)
{
  struct svc_keys *k = ud;
  const struct obj_service *s = obj_as_service(obj);
  char key[512];

  if (s != NULL && svc_should_enqueue(s, svc_class_served(k->c, s->lb_class))
      && obj_key(obj, key, sizeof(key)) >= 0)
    svc_keys_push(k, key);
  return 0;
}

static int svc_collect_cache(struct svc_entry *e, void *ud)
{
  e->want_full = true;
  svc_keys_push(ud, e->key);
  return 0;
}

/* This replica became the leader after setting keys aside: queue every
 * Service the add handler would have queued, and every cached one. */
static void svc_requeue_all(struct svc_ctrl *c)
{
  struct svc_keys k = {0};

  k.c = c;
  store_foreach(c->svc_store, svc_collect_store, &k);
  pthread_mutex_lock(&c->lock);
  svc_cache_foreach(&c->cache, svc_collect_cache, &k);
  pthread_mutex_unlock(&c->lock);
  log_msg(CCM_LOG_INFO, "service", "leading: queueing %zu Services", k.n);
  svc_keys_flush(&k, c->q);
}

static void *svc_background(void *arg)
{
  struct svc_ctrl *c = arg;
  int64_t next = call_now_ms() + c->node_sync_period_ms;

  thread_name("svc-nodesync");

  pthread_mutex_lock(&c->lock);
  while (!c->stopping) {
    struct timespec ts;
    int64_t now = call_now_ms(), wake = now + 1000;
    bool leader, requeue = false, sync = false;

    if (!c->node_dirty) {
      if (next < wake)
        wake = next;
      ts = thread_deadline_in(wake > now ? (uint32_t)(wake - now) : 0);
      pthread_cond_timedwait(&c->cond, &c->lock, &ts);
    }
    if (c->stopping)
      break;
    leader = runtime_is_leader(c->env.rt);
    now = call_now_ms();
    if (leader && c->parked) {
      c->parked = false;
      requeue = true;
    }
    if (leader && (c->node_dirty || now >= next)) {
      c->node_dirty = false;
      next = now + c->node_sync_period_ms;
      sync = true;
    } else if (!leader) {
      c->node_dirty = false; /* the requeue on leading covers it */
    }
    pthread_mutex_unlock(&c->lock);
    if (requeue)
      svc_requeue_all(c);
    if (sync)
      svc_node_sync_round(c);
    pthread_mutex_lock(&c->lock);
  }
  pthread_mutex_unlock(&c->lock);
  return NULL;
}

/* ---- controller_ops ------------------------------------------------- */

static void svc_destroy(void *state);

static int svc_create(const struct ctrl_env *env, void **state, char *err,
                      size_t errlen)
{
  struct informer_handlers sh = {svc_on_add, svc_on_update, svc_on_delete,
                                 NULL};
  struct informer_handlers nh = {svc_on_node_add, svc_on_node_update,
                                 svc_on_node_delete, NULL};
  struct wq_opts qo = {"service", CCM_SVC_BASE_DELAY_MS,
                       CCM_SVC_MAX_DELAY_MS};
  struct svc_ctrl *c;

  *state = NULL;
  if (env == NULL || env->rt == NULL || env->reg == NULL) {
    snprintf(err, errlen, "service controller: missing runtime or registry");
    return -1;
  }
  c = mem_calloc(1, sizeof(*c));
  if (c == NULL)
    goto oom;
  c->env = *env;
  if (c->env.cluster_name == NULL)
    c->env.cluster_name = "kubernetes";
  c->n_workers = env->workers > 0 ? env->workers : 1;
  c->node_sync_period_ms = CCM_SVC_NODE_SYNC_PERIOD_MS;
  if (env->cfg != NULL && env->cfg->service_node_sync_period_s > 0)
    c->node_sync_period_ms = env->cfg->service_node_sync_period_s * 1000u;
  c->tail_wanted = env->cfg == NULL || env->cfg->service_status_writer;
  pthread_mutex_init(&c->lock, NULL);
  pthread_mutex_init(&c->tail_lock, NULL);
  thread_cond_init_mono(&c->tail_wake);
  pthread_cond_init(&c->tail_idle, NULL);
  thread_cond_init_mono(&c->cond);
  svc_metrics_init(&c->m);
  if (svc_cache_init(&c->cache) != 0)
    goto oom;
  c->q = wq_new(&qo);
  c->workers = mem_calloc(c->n_workers, sizeof(*c->workers));
  if (c->q == NULL || c->workers == NULL)
    goto oom;
  c->svc_store = informer_store(runtime_services(env->rt));
  c->node_store = informer_store(runtime_nodes(env->rt));
  sh.ud = c;
  nh.ud = c;
  if (informer_add_handlers(runtime_services(env->rt), &sh) != 0 ||
      informer_add_handlers(runtime_nodes(env->rt), &nh) != 0) {
    snprintf(err, errlen, "service controller: cannot add informer "
             "handlers (informers already started?)");
    svc_destroy(c);
    return -1;
  }
  *state = c;
  return 0;
oom:
  snprintf(err, errlen, "service controller: out of memory");
  svc_destroy(c);
  return -1;
}

static void svc_stop(void *state);

static int svc_start(void *state)
{
  struct svc_ctrl *c = state;
  uint32_t i;

  if (c->tail_wanted && svc_tail_start(c) != 0)
    goto fail;
  for (i = 0; i < c->n_workers; i++) {
    if (pthread_create(&c->workers[i], NULL, svc_worker, c) != 0)
      goto fail;
    c->n_started++;
  }
  if (pthread_create(&c->bg, NULL, svc_background, c) != 0)
    goto fail;
  c->bg_started = true;
  log_msg(CCM_LOG_INFO, "service", "started %u workers%s (node sync every "
          "%u s)", (unsigned)c->n_workers,
          c->tail_started ? " and a status writer" : "",
          (unsigned)(c->node_sync_period_ms / 1000));
  return 0;
fail:
  log_msg(CCM_LOG_ERROR, "service", "cannot start threads: %s",
          strerror(errno));
  svc_stop(c);
  return -1;
}

static void svc_stop(void *state)
{
  struct svc_ctrl *c = state;
  uint32_t i;

  if (c == NULL)
    return;
  pthread_mutex_lock(&c->lock);
  c->stopping = true;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->lock);
  if (c->bg_started) {
    pthread_join(c->bg, NULL);
    c->bg_started = false;
  }
  /* Stop: each worker finishes the Service it holds (in-flight provider
   * calls complete, bounded by their call deadline); queued keys are
   * dropped, as upstream's workers stop with their context. A backlog
   * must not keep a stopping host reconciling for minutes; the next
   * leader (or this host restarted) lists every Service again, and the
   * recorded input fingerprint spares the ones already done. */
  wq_shutdown(c->q, false);
  for (i = 0; i < c->n_started; i++)
    pthread_join(c->workers[i], NULL);
  c->n_started = 0;
  /* After the workers, which queue tails: what is queued is written. */
  svc_tail_stop(c);
}

static void svc_destroy(void *state)
{
  struct svc_ctrl *c = state;

  if (c == NULL)
    return;
  svc_stop(c);
  if (c->q != NULL)
    wq_free(c->q);
  svc_cache_free(&c->cache);
  svc_nodes_unref(c->nodes);
  mem_free(c->workers);
  pthread_cond_destroy(&c->cond);
  pthread_mutex_destroy(&c->lock);
  pthread_cond_destroy(&c->tail_idle);
  pthread_cond_destroy(&c->tail_wake);
  pthread_mutex_destroy(&c->tail_lock);
  mem_free(c);
}

static void svc_metrics(void *state, FILE *out)
{
  struct svc_ctrl *c = state;
  struct wq_stats st;
  size_t cached;

  wq_get_stats(c->q, &st);
  pthread_mutex_lock(&c->lock);
  cached = c->cache.n;
  pthread_mutex_unlock(&c->lock);
  svc_metrics_write(&c->m, out, st.depth, st.delayed, st.processing,
                    st.adds, st.retries, cached);
}

const struct controller_ops service_controller_ops = {
  .name = "service",
  .create = svc_create,
  .start = svc_start,
  .stop = svc_stop,
  .destroy = svc_destroy,
  .metrics = svc_metrics,
};
