/*
 * node.c: the cloud node controller's frame: informer handlers, the
 * "Nodes" work queue, the collector that hands held keys to workers in
 * batches, the workers (one batched metadata call per batch), start/stop
 * and metrics. Per-node work lives in node_sync.c and node_status.c.
 *
 * Batching: one collector thread takes keys from the queue (the queue
 * still guarantees a key is held by one worker at a time: it stays held
 * until a worker calls wq_done) into a bounded FIFO. A worker takes a
 * fair share of that FIFO (at most CCM_NODE_BATCH_MAX, at least one, about
 * len / workers so idle workers get work too) and asks the provider for
 * all of them in one batch. A key that failed before is taken alone, so a
 * slow or failing node ends up in its own call instead of holding up the
 * next batch of healthy nodes.
 */
#include "controllers/node.h"

#include <string.h>

#include "controllers/node_internal.h"
#include "kube/informer.h"
#include "kube/store.h"
#include "server/metrics.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/thread.h"

/* ---- informer handlers: enqueue the node name on add and every update */

static void node_on_add(void *ud, const struct obj_meta *obj)
{
  struct node_ctrl *c = ud;

  if (obj && obj->name)
    wq_add(c->q, obj->name);
}

static void node_on_update(void *ud, const struct obj_meta *old,
                           const struct obj_meta *cur)
{
  (void)old;
  node_on_add(ud, cur);
}

/* ---- the collector --------------------------------------------------- */

static void *node_collector_main(void *arg)
{
  struct node_ctrl *c = arg;
  const char *key;

  thread_name("node-collect");

  while (wq_get(c->q, &key)) {
    pthread_mutex_lock(&c->lock);
    while (c->held_len >= c->held_cap && !c->stopping)
      pthread_cond_wait(&c->have_room, &c->lock);
    if (c->stopping) {
      pthread_mutex_unlock(&c->lock);
      wq_done(c->q, key);
      continue;
    }
    c->held[(c->held_head + c->held_len) % c->held_cap] = (char *)key;
    c->held_len++;
    pthread_cond_signal(&c->have_keys);
    pthread_mutex_unlock(&c->lock);
  }
  pthread_mutex_lock(&c->lock);
  c->collector_done = true;
  pthread_cond_broadcast(&c->have_keys);
  pthread_mutex_unlock(&c->lock);
  return NULL;
}

/* Caller holds c->lock; the FIFO is not empty. */
static size_t node_take_batch(struct node_ctrl *c, const char **keys)
{
  size_t share = (c->held_len + c->n_workers - 1) / c->n_workers;
  size_t n = 0;

  if (share > c->batch_max)
    share = c->batch_max;
  if (share == 0)
    share = 1;
  while (n < share && c->held_len > 0) {
    const char *k = c->held[c->held_head];
    bool failed = wq_failures(c->q, k) > 0;

    if (failed && n > 0)
      break; /* a retry goes alone, in the next batch */
    keys[n++] = k;
    c->held_head = (c->held_head + 1) % c->held_cap;
    c->held_len--;
    if (failed)
      break;
  }
  pthread_cond_broadcast(&c->have_room);
  return n;
}

/* ---- one batch ------------------------------------------------------- */

enum node_result { NODE_DONE, NODE_RETRY, NODE_RETRY_AFTER };

static void node_process(struct node_ctrl *c, const char **keys, size_t n,
                         enum node_result *res, uint32_t *after)
{
  struct obj_meta **objs = mem_calloc(n, sizeof(*objs));
  const struct obj_node **need = mem_calloc(n, sizeof(*need));
  size_t *need_idx = mem_calloc(n, sizeof(*need_idx));
  struct ccm_instance_meta *metas = mem_calloc(n, sizeof(*metas));
  int *status = mem_calloc(n, sizeof(*status));
  size_t k = 0;
  uint32_t retry_after = 0;
  char err[CCM_MAX_ERROR + 64];

  *after = 0;
  if (!objs || !need || !need_idx || !metas || !status) {
    for (size_t i = 0; i < n; i++)
      res[i] = NODE_RETRY;
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    const struct obj_node *node;

    res[i] = NODE_DONE;
    objs[i] = store_get_key(c->store, keys[i]);
    node = obj_as_node(objs[i]);
    if (!node)
      continue; /* gone: nothing to do */
    if (!runtime_is_leader(c->env.rt)) {
      /* a standby drops keys; taking the lead re-enqueues every node */
      atomic_fetch_add(&c->not_leader_skips, 1);
      continue;
    }
    if (!obj_node_taint(node, CCM_NODE_TAINT_UNINITIALIZED)) {
      if (node_sync_labels(c, node, err, sizeof(err)) != 0) {
        log_msg(CCM_LOG_WARN, CCM_NODE_LOG, "%s", err);
        res[i] = NODE_RETRY;
      }
      continue;
    }
    need[k] = node;
    need_idx[k] = i;
    k++;
  }
  if (k == 0)
    goto out;
  if (node_fetch_metadata(c, need, k, metas, status, &retry_after, err,
                          sizeof(err)) != CCM_OK)
    log_msg(CCM_LOG_WARN, CCM_NODE_LOG, "instance metadata for %zu node(s) "
            "failed: %s", k, err);
  for (size_t j = 0; j < k; j++) {
    size_t i = need_idx[j];
    char serr[CCM_MAX_ERROR + 128];

    if (status[j] != CCM_OK) {
      atomic_fetch_add(&c->meta_errors, 1);
      atomic_fetch_add(&c->init_errors, 1);
      log_msg(CCM_LOG_WARN, CCM_NODE_LOG, "failed to get instance metadata "
              "for node %s: %s", keys[i], ccm_status_name(status[j]));
      if (status[j] == CCM_ERR_RETRY && retry_after > 0) {
        res[i] = NODE_RETRY_AFTER;
        *after = retry_after;
      } else {
        res[i] = NODE_RETRY;
      }
      continue;
    }
    if (node_sync_init(c, need[j], &metas[j], serr, sizeof(serr)) != 0) {
      atomic_fetch_add(&c->init_errors, 1);
      log_msg(CCM_LOG_WARN, CCM_NODE_LOG, "failed to initialize node %s: %s",
              keys[i], serr);
      res[i] = NODE_RETRY;
    }
  }
out:
  if (metas) {
    for (size_t j = 0; j < k; j++)
      instance_meta_clear(&metas[j]);
  }
  if (objs) {
    for (size_t i = 0; i < n; i++)
      obj_unref(objs[i]);
  }
  mem_free(objs);
  mem_free(need);
  mem_free(need_idx);
  mem_free(metas);
  mem_free(status);
}

static void *node_worker_main(void *arg)
{
  struct node_ctrl *c = arg;
  const char **keys = mem_calloc(c->batch_max, sizeof(*keys));
  enum node_result *res = mem_calloc(c->batch_max, sizeof(*res));

  thread_name("node-worker");

  for (;;) {
    size_t n;
    bool stopping;
    uint32_t after = 0;

    pthread_mutex_lock(&c->lock);
    while (c->held_len == 0 && !c->collector_done)
      pthread_cond_wait(&c->have_keys, &c->lock);
    if (c->held_len == 0) {
      pthread_mutex_unlock(&c->lock);
      break;
    }
    if (!keys || !res) {
      /* no memory for a batch: hand the key back for later */
      const char *k = c->held[c->held_head];
      c->held_head = (c->held_head + 1) % c->held_cap;
      c->held_len--;
      pthread_mutex_unlock(&c->lock);
      wq_add_rate_limited(c->q, k);
      wq_done(c->q, k);
      continue;
    }
    n = node_take_batch(c, keys);
    stopping = c->stopping;
    pthread_mutex_unlock(&c->lock);
    if (stopping) {
      for (size_t i = 0; i < n; i++)
        wq_done(c->q, keys[i]);
      continue;
    }
    node_process(c, keys, n, res, &after);
    for (size_t i = 0; i < n; i++) {
      if (res[i] == NODE_DONE)
        wq_forget(c->q, keys[i]);
      else if (res[i] == NODE_RETRY_AFTER)
        wq_add_after(c->q, keys[i], after);
      else
        wq_add_rate_limited(c->q, keys[i]);
      wq_done(c->q, keys[i]);
    }
  }
  mem_free(keys);
  mem_free(res);
  return NULL;
}

/* ---- controller_ops -------------------------------------------------- */

static void node_destroy(void *state);

static int node_create(const struct ctrl_env *env, void **state, char *err,
                       size_t errlen)
{
  struct node_ctrl *c = mem_calloc(1, sizeof(*c));
  struct wq_opts qo = {.name = "Nodes",
                       .base_delay_ms = CCM_NODE_QUEUE_BASE_MS,
                       .max_delay_ms = CCM_NODE_QUEUE_MAX_MS};
  struct informer_handlers h = {.add = node_on_add, .update = node_on_update};

  *state = NULL;
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  c->env = *env;
  c->kc = runtime_client(env->rt);
  c->inf = runtime_nodes(env->rt);
  c->store = c->inf ? informer_store(c->inf) : NULL;
  c->n_workers = env->workers ? env->workers : 1;
  c->batch_max = CCM_NODE_BATCH_MAX;
  c->status_period_s = env->cfg ? env->cfg->node_status_update_period_s : 300;
  if (c->status_period_s == 0)
    c->status_period_s = 300;
  c->held_cap = (size_t)c->n_workers * c->batch_max;
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->have_keys, NULL);
  pthread_cond_init(&c->have_room, NULL);
  thread_cond_init_mono(&c->wake);
  /* upstream buckets: 1 s, x4, 6 buckets */
  node_histo_init(&c->taint_removal_delay, 1, 4);
  node_histo_init(&c->initial_sync_delay, 1, 4);
  if (!c->kc || !c->store) {
    snprintf(err, errlen, "node controller: no Kubernetes client or node "
             "informer");
    goto fail;
  }
  c->held = mem_calloc(c->held_cap, sizeof(*c->held));
  c->q = wq_new(&qo);
  if (!c->held || !c->q) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  c->events = env->events; /* the host names its source component */
  h.ud = c;
  if (informer_add_handlers(c->inf, &h) != 0) {
    snprintf(err, errlen, "node controller: cannot add informer handlers");
    goto fail;
  }
  *state = c;
  return 0;

fail:
  node_destroy(c);
  return -1;
}

static void node_stop(void *state);

static int node_start(void *state)
{
  struct node_ctrl *c = state;

  c->workers = mem_calloc(c->n_workers, sizeof(*c->workers));
  if (!c->workers)
    return -1;
  c->started = true;
  if (pthread_create(&c->collector, NULL, node_collector_main, c) != 0) {
    c->started = false;
    return -1;
  }
  for (uint32_t i = 0; i < c->n_workers; i++) {
    if (pthread_create(&c->workers[i], NULL, node_worker_main, c) != 0) {
      c->n_workers = i;
      node_stop(c);
      return -1;
    }
  }
  if (pthread_create(&c->status_thread, NULL, node_status_main, c) != 0) {
    c->status_thread = 0;
    node_stop(c);
    return -1;
  }
  log_msg(CCM_LOG_INFO, CCM_NODE_LOG, "started: %u workers, batches of up "
          "to %u, address refresh every %u s", c->n_workers, c->batch_max,
          c->status_period_s);
  return 0;
}

static void node_stop(void *state)
{
  struct node_ctrl *c = state;

  if (!c || !c->started)
    return;
  c->started = false;
  pthread_mutex_lock(&c->lock);
  c->stopping = true;
  pthread_cond_broadcast(&c->have_room);
  pthread_cond_broadcast(&c->have_keys);
  pthread_cond_broadcast(&c->wake);
  pthread_mutex_unlock(&c->lock);
  /* nothing is lost by not draining: every tainted Node is synced again
   * when the next leader starts */
  wq_shutdown(c->q, false);
  pthread_join(c->collector, NULL);
  for (uint32_t i = 0; i < c->n_workers; i++)
    pthread_join(c->workers[i], NULL);
  if (c->status_thread)
    pthread_join(c->status_thread, NULL);
  c->status_thread = 0;
}

static void node_destroy(void *state)
{
  struct node_ctrl *c = state;

  if (!c)
    return;
  node_stop(c);
  if (c->q) {
    wq_shutdown(c->q, false);
    wq_free(c->q);
  }
  mem_free(c->held);
  mem_free(c->workers);
  node_histo_destroy(&c->taint_removal_delay);
  node_histo_destroy(&c->initial_sync_delay);
  pthread_cond_destroy(&c->wake);
  pthread_cond_destroy(&c->have_room);
  pthread_cond_destroy(&c->have_keys);
  pthread_mutex_destroy(&c->lock);
  mem_free(c);
}

static void node_metrics(void *state, FILE *out)
{
  struct node_ctrl *c = state;
  struct wq_stats qs;

  node_histo_write(&c->taint_removal_delay, out,
                   "node_controller_cloud_provider_taint_removal_delay_seconds",
                   "Number of seconds after node creation when NodeController "
                   "removed the cloud-provider taint of a single node.");
  node_histo_write(&c->initial_sync_delay, out,
                   "node_controller_initial_node_sync_delay_seconds",
                   "Number of seconds after node creation when NodeController "
                   "finished the initial synchronization of a single node.");
  metrics_write_counter(out, "ccm_node_controller_initialized_total",
                        "Nodes initialised (uninitialized taint removed).",
                        atomic_load(&c->initialized));
  metrics_write_counter(out, "ccm_node_controller_already_initialized_total",
                        "Syncs that found the taint already gone on the fresh "
                        "copy (an earlier pass's watch event still in flight) "
                        "and wrote nothing.", atomic_load(&c->init_already));
  metrics_write_counter(out, "ccm_node_controller_errors_total",
                        "Node syncs that failed and were requeued.",
                        atomic_load(&c->init_errors));
  metrics_write_counter(out, "ccm_node_controller_metadata_errors_total",
                        "Nodes whose instance metadata the provider did not "
                        "return.", atomic_load(&c->meta_errors));
  metrics_write_counter(out, "ccm_node_controller_api_errors_total",
                        "Kubernetes writes of the node controller that failed.",
                        atomic_load(&c->api_errors));
  metrics_write_counter(out, "ccm_node_controller_metadata_batch_calls_total",
                        "Batched instance metadata calls.",
                        atomic_load(&c->batch_calls));
  metrics_write_counter(out, "ccm_node_controller_metadata_batch_nodes_total",
                        "Nodes asked for in batched instance metadata calls.",
                        atomic_load(&c->batch_nodes));
  metrics_write_counter(out, "ccm_node_controller_address_updates_total",
                        "Node status address patches.",
                        atomic_load(&c->address_patches));
  metrics_write_counter(out, "ccm_node_controller_address_errors_total",
                        "Address updates skipped or failed.",
                        atomic_load(&c->address_errors));
  metrics_write_counter(out, "ccm_node_controller_label_reconciles_total",
                        "GA labels copied from their beta labels.",
                        atomic_load(&c->label_patches));
  metrics_write_counter(out, "ccm_node_controller_extra_labels_dropped_total",
                        "Provider extra labels dropped by the kubernetes.io / "
                        "k8s.io filter.", atomic_load(&c->labels_dropped));
  metrics_write_counter(out, "ccm_node_controller_status_passes_total",
                        "Address refresh passes over every initialised node.",
                        atomic_load(&c->status_passes));
  wq_get_stats(c->q, &qs);
  metrics_write_gauge(out, "ccm_node_controller_queue_depth",
                      "Node keys waiting in the Nodes queue.",
                      (uint64_t)(qs.depth + qs.delayed));
  pthread_mutex_lock(&c->lock);
  size_t held = c->held_len;
  pthread_mutex_unlock(&c->lock);
  metrics_write_gauge(out, "ccm_node_controller_queue_held",
                      "Node keys taken from the queue, waiting for a batch.",
                      (uint64_t)held);
  metrics_write_counter(out, "ccm_node_controller_queue_adds_total",
                        "Keys queued.", qs.adds);
  metrics_write_counter(out, "ccm_node_controller_queue_retries_total",
                        "Keys requeued with backoff.", qs.retries);
}

const struct controller_ops node_controller_ops = {
  .name = "node",
  .create = node_create,
  .start = node_start,
  .stop = node_stop,
  .destroy = node_destroy,
  .metrics = node_metrics,
};
