/*
 * nodelifecycle.c: the cloud node lifecycle controller (section 4): every
 * node_monitor_period_s it deletes NotReady Nodes whose instance the
 * provider answered (CCM_OK, in time) does not exist, and adds or removes
 * the shutdown taint. Decisions are node_logic.c's; it owns only the loop,
 * the provider calls and the writes. Errors and timeouts never delete.
 */
#include "controllers/nodelifecycle.h"

#include <string.h>
#include <time.h>

#include "controllers/node_internal.h"
#include "kube/store.h"
#include "kube/writes.h"
#include "server/metrics.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/thread.h"

#define CCM_LC_LOG "node-lifecycle"
#define CCM_LC_TAINT_TRIES 5 /* upstream taint patch retries */

struct lc_ctrl {
  struct ctrl_env env;
  struct kube_client *kc;
  struct store *store;
  struct kube_events *events; /* component cloud-node-lifecycle-controller */
  uint32_t period_s;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  bool stopping, started;
  pthread_t thread;
  atomic_ulong passes, standby_passes, probes, deletions, delete_errors;
  atomic_ulong exists_errors, late_answers, shutdown_errors;
  atomic_ulong taints_added, taints_removed, taint_errors;
};

static bool lc_late(const struct ccm_call *call)
{
  return call->deadline_ms > 0 && call_now_ms() > call->deadline_ms;
}

static int lc_taint_mutate(cJSON *obj, void *ud)
{
  const bool *add = ud;
  int r;

  if (*add) {
    r = node_json_taint_add(obj, CCM_NODE_TAINT_SHUTDOWN, "NoSchedule");
    if (r < 0)
      return KUBE_ERROR;
    return r > 0 ? 0 : 1;
  }
  return node_json_taint_remove(obj, CCM_NODE_TAINT_SHUTDOWN) > 0 ? 0 : 1;
}

static void lc_taint(struct lc_ctrl *c, const struct obj_node *n, bool add)
{
  char path[512], msg[256] = "";
  int st;

  if (!runtime_is_leader(c->env.rt))
    return;
  if (kube_path(path, sizeof(path), "/api/v1", "nodes", NULL, n->meta.name,
                NULL) != 0)
    return;
  st = kube_update_retry(c->kc, path, NULL, false, lc_taint_mutate, &add,
                         CCM_LC_TAINT_TRIES, NULL, msg, sizeof(msg));
  if (st != KUBE_OK) {
    atomic_fetch_add(&c->taint_errors, 1);
    log_msg(CCM_LOG_WARN, CCM_LC_LOG, "failed to %s the shutdown taint on "
            "node %s: %s %s", add ? "add" : "remove", n->meta.name,
            kube_status_name(st), msg);
    return;
  }
  atomic_fetch_add(add ? &c->taints_added : &c->taints_removed, 1);
  log_msg(CCM_LOG_INFO, CCM_LC_LOG, "%s shutdown taint %s node %s",
          add ? "added" : "removed", add ? "to" : "from", n->meta.name);
}

static void lc_delete(struct lc_ctrl *c, const struct obj_node *n)
{
  struct kube_object_ref ref;
  char path[512], msg[256] = "";
  int st;

  if (!runtime_is_leader(c->env.rt))
    return;
  if (kube_path(path, sizeof(path), "/api/v1", "nodes", NULL, n->meta.name,
                NULL) != 0)
    return;
  log_msg(CCM_LOG_INFO, CCM_LC_LOG, "deleting node since it is no longer "
          "present in cloud provider: %s", n->meta.name);
  node_event_ref(n, &ref);
  if (c->events)
    kube_event_emit(c->events, &ref, "Normal", "DeletingNode",
                    "Deleting node %s because it does not exist in the cloud "
                    "provider", n->meta.name);
  /* the UID precondition: a Node re-created under the same name since the
   * probe is another machine and is not deleted */
  st = kube_delete(c->kc, path, n->meta.uid, msg, sizeof(msg));
  if (st != KUBE_OK) {
    atomic_fetch_add(&c->delete_errors, 1);
    log_msg(CCM_LOG_WARN, CCM_LC_LOG, "unable to delete node %s: %s %s",
            n->meta.name, kube_status_name(st), msg);
    if (c->events)
      kube_event_emit(c->events, &ref, "Warning", "DeletingNodeFailed",
                      "Error deleting node %s: %s", n->meta.name,
                      msg[0] ? msg : kube_status_name(st));
    return;
  }
  atomic_fetch_add(&c->deletions, 1);
}

/* Probe one NotReady Node: exists, then shutdown. */
static void lc_probe(struct lc_ctrl *c, const struct obj_node *n,
                     bool tainted)
{
  struct node_view v;
  struct provider_ref ref = {0};
  struct ccm_call call;
  bool exists = true, shutdown = false;
  enum node_lc_action act;
  int rc;

  if (node_view_init(&v, n) != 0)
    return;
  atomic_fetch_add(&c->probes, 1);
  rc = registry_for_nodes(c->env.reg, &ref);
  if (rc != CCM_OK) {
    atomic_fetch_add(&c->exists_errors, 1);
    goto out;
  }
  call_init(&call, c->env.call_timeout_ms);
  rc = prov_instance_exists(&ref, &call, &v.node, &exists);
  act = node_lc_after_exists(rc, exists, lc_late(&call));
  if (act == NODE_LC_SKIP) {
    atomic_fetch_add(rc == CCM_OK ? &c->late_answers : &c->exists_errors, 1);
    log_msg(CCM_LOG_WARN, CCM_LC_LOG, "error checking if node %s exists: %s"
            "%s%s", n->meta.name,
            rc == CCM_OK ? "answer after the call deadline"
                         : ccm_status_name(rc),
            call.error[0] ? ": " : "", call.error);
    goto out;
  }
  if (act == NODE_LC_DELETE) {
    registry_release(&ref);
    lc_delete(c, n);
    goto out;
  }
  call_init(&call, c->env.call_timeout_ms);
  rc = prov_instance_shutdown(&ref, &call, &v.node, &shutdown);
  act = node_lc_after_shutdown(rc, shutdown, lc_late(&call), tainted);
  registry_release(&ref);
  if (act == NODE_LC_SKIP) {
    atomic_fetch_add(&c->shutdown_errors, 1);
    log_msg(CCM_LOG_WARN, CCM_LC_LOG, "error checking if node %s is "
            "shutdown: %s%s%s", n->meta.name,
            rc == CCM_OK ? "answer after the call deadline"
                         : ccm_status_name(rc),
            call.error[0] ? ": " : "", call.error);
  } else if (act == NODE_LC_TAINT_SHUTDOWN) {
    lc_taint(c, n, true);
  } else if (act == NODE_LC_UNTAINT_SHUTDOWN) {
    lc_taint(c, n, false);
  }
out:
  registry_release(&ref);
  node_view_clear(&v);
}

static bool lc_stopping(struct lc_ctrl *c)
{
  bool s;

  pthread_mutex_lock(&c->lock);
  s = c->stopping;
  pthread_mutex_unlock(&c->lock);
  return s;
}

/* One pass of MonitorNodes. */
static void lc_pass(struct lc_ctrl *c)
{
  struct obj_meta **all = NULL;
  size_t n = 0;

  if (!runtime_is_leader(c->env.rt)) {
    atomic_fetch_add(&c->standby_passes, 1);
    return;
  }
  if (store_list(c->store, &all, &n) != 0)
    return;
  for (size_t i = 0; i < n && !lc_stopping(c); i++) {
    const struct obj_node *node = obj_as_node(all[i]);
    bool tainted;

    if (!node)
      continue;
    tainted = obj_node_taint(node, CCM_NODE_TAINT_SHUTDOWN) != NULL;
    if (!node_lc_needs_probe(node->ready)) {
      if (node_lc_when_ready(tainted) == NODE_LC_UNTAINT_SHUTDOWN)
        lc_taint(c, node, false);
      continue;
    }
    lc_probe(c, node, tainted);
  }
  store_list_free(all, n);
  atomic_fetch_add(&c->passes, 1);
}

static void *lc_main(void *arg)
{
  struct lc_ctrl *c = arg;

  thread_name("node-lifecycle");

  pthread_mutex_lock(&c->lock);
  while (!c->stopping) {
    struct timespec ts;

    pthread_mutex_unlock(&c->lock);
    lc_pass(c);
    pthread_mutex_lock(&c->lock);
    /* sliding period, as wait.Until: the next pass starts a full period
     * after this one ended */
    ts = thread_deadline_in(c->period_s * 1000u);
    while (!c->stopping &&
           pthread_cond_timedwait(&c->wake, &c->lock, &ts) == 0)
      ;
  }
  pthread_mutex_unlock(&c->lock);
  return NULL;
}

static void lc_destroy(void *state);

static int lc_create(const struct ctrl_env *env, void **state, char *err,
                     size_t errlen)
{
  struct lc_ctrl *c = mem_calloc(1, sizeof(*c));
  struct informer *inf;

  *state = NULL;
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  c->env = *env;
  c->period_s = env->cfg ? env->cfg->node_monitor_period_s : 5;
  if (c->period_s == 0)
    c->period_s = 5;
  pthread_mutex_init(&c->lock, NULL);
  thread_cond_init_mono(&c->wake);
  c->kc = runtime_client(env->rt);
  inf = runtime_nodes(env->rt);
  c->store = inf ? informer_store(inf) : NULL;
  if (!c->kc || !c->store) {
    snprintf(err, errlen, "node lifecycle controller: no Kubernetes client "
             "or node informer");
    lc_destroy(c);
    return -1;
  }
  c->events = env->events; /* the host names its source component */
  *state = c;
  return 0;
}

static int lc_start(void *state)
{
  struct lc_ctrl *c = state;

  if (pthread_create(&c->thread, NULL, lc_main, c) != 0)
    return -1;
  c->started = true;
  log_msg(CCM_LOG_INFO, CCM_LC_LOG, "started: monitor period %u s",
          c->period_s);
  return 0;
}

static void lc_stop(void *state)
{
  struct lc_ctrl *c = state;

  if (!c || !c->started)
    return;
  pthread_mutex_lock(&c->lock);
  c->stopping = true;
  pthread_cond_broadcast(&c->wake);
  pthread_mutex_unlock(&c->lock);
  pthread_join(c->thread, NULL);
  c->started = false;
}

static void lc_destroy(void *state)
{
  struct lc_ctrl *c = state;

  if (!c)
    return;
  lc_stop(c);
  pthread_cond_destroy(&c->wake);
  pthread_mutex_destroy(&c->lock);
  mem_free(c);
}

static void lc_metrics(void *state, FILE *out)
{
  struct lc_ctrl *c = state;

  metrics_write_counter(out, "ccm_node_lifecycle_passes_total",
                        "Monitor passes over every node while leading.",
                        atomic_load(&c->passes));
  metrics_write_counter(out, "ccm_node_lifecycle_probes_total",
                        "NotReady nodes whose instance was probed.",
                        atomic_load(&c->probes));
  metrics_write_counter(out, "ccm_node_lifecycle_deletions_total",
                        "Nodes deleted because the provider answered that the "
                        "instance does not exist.", atomic_load(&c->deletions));
  metrics_write_counter(out, "ccm_node_lifecycle_delete_errors_total",
                        "Node deletions that failed.",
                        atomic_load(&c->delete_errors));
  metrics_write_counter(out, "ccm_node_lifecycle_exists_errors_total",
                        "instance_exists errors (the node is left alone).",
                        atomic_load(&c->exists_errors));
  metrics_write_counter(out, "ccm_node_lifecycle_late_answers_total",
                        "Provider answers after the call deadline (treated as "
                        "timeouts: the node is left alone).",
                        atomic_load(&c->late_answers));
  metrics_write_counter(out, "ccm_node_lifecycle_shutdown_errors_total",
                        "instance_shutdown errors (the taint is left alone).",
                        atomic_load(&c->shutdown_errors));
  metrics_write_counter(out, "ccm_node_lifecycle_shutdown_taints_added_total",
                        "Shutdown taints added.",
                        atomic_load(&c->taints_added));
  metrics_write_counter(out, "ccm_node_lifecycle_shutdown_taints_removed_total",
                        "Shutdown taints removed.",
                        atomic_load(&c->taints_removed));
  metrics_write_counter(out, "ccm_node_lifecycle_taint_errors_total",
                        "Shutdown taint writes that failed.",
                        atomic_load(&c->taint_errors));
}

const struct controller_ops node_lifecycle_controller_ops = {
  .name = "node-lifecycle",
  .create = lc_create,
  .start = lc_start,
  .stop = lc_stop,
  .destroy = lc_destroy,
  .metrics = lc_metrics,
};
