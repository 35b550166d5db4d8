/*
 * route.c: the route controller. One loop thread reconciles the provider's
 * routes against the Node cache every period and soon after a Node change:
 * list, plan (route_plan.c), create and delete with bounded concurrency,
 * then set NetworkUnavailable. It must not decide anything route_plan.c
 * decides, and must not mutate anything unless runtime_is_leader().
 */
#include "controllers/route.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "controllers/route_plan.h"
#include "kube/objects.h"
#include "kube/store.h"
#include "kube/writes.h"
#include "modules/loader.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/thread.h"

#define CCM_ROUTE_LOG "route"
#define CCM_ROUTE_MAX_INFLIGHT 200     /* provider ops in flight, upstream */
#define CCM_ROUTE_STATUS_WORKERS 8     /* concurrent condition writes */
#define CCM_ROUTE_STACK (256u * 1024u) /* pool thread stack */
#define CCM_ROUTE_KICK_GAP_MS 500      /* batch bursts of Node changes */
#define CCM_ROUTE_RETRY_MS 200         /* cache not synced, or standby */
#define CCM_ROUTE_DEFAULT_PERIOD_S 10
#define CCM_ROUTE_HIST_N 13

static const double route_hist_bounds[CCM_ROUTE_HIST_N] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

struct route_ctl {
  struct ctrl_env env;  /* cfg cleared: the keys are copied below */
  char *cluster_name;   /* own copies: a reload may free the config */
  char *cluster_cidr;
  struct route_cidr cluster[CCM_ROUTE_MAX_CLUSTER_CIDRS];
  size_t n_cluster;
  bool enabled;
  char idle_why[256];
  uint32_t period_ms;

  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool kick;            /* a Node change asks for a reconcile */
  bool started;
  atomic_bool stopping;
  pthread_t thread;
  atomic_bool unsupported; /* last check: the provider has no routes */

  atomic_uint_fast64_t syncs, list_failures, creates, create_failures;
  atomic_uint_fast64_t deletes, delete_failures, cond_updates, cond_failures;
  pthread_mutex_t hist_mu;
  uint64_t hist[CCM_ROUTE_HIST_N + 1];
  uint64_t hist_count;
  double hist_sum;
};

/* One reconcile's working set. */
struct route_run {
  struct route_ctl *rc;
  struct provider_ref ref;
  struct obj_meta **objs;
  size_t n_objs;
  const struct obj_node **nodes;
  struct route_plan_node *pn;
  size_t n_nodes;
  struct ccm_route_list list;
  struct route_plan_route *pr;
  struct route_plan plan;
  atomic_size_t *ok;       /* per node: podCIDRs with a route */
  size_t *patch;           /* nodes whose condition changes */
  enum route_cond_want *want;
  size_t n_patch;
  char now[32];            /* RFC 3339, for the condition */
};

typedef void route_task_fn(struct route_run *run, size_t i);

struct route_pool {
  struct route_run *run;
  route_task_fn *fn;
  size_t n;
  atomic_size_t next;
};

/* ---- small helpers ----------------------------------------------------- */

static void route_duration(int64_t ms, char *buf, size_t cap) {
  if (ms < 1000)
    snprintf(buf, cap, "%lldms", (long long)ms);
  else
    snprintf(buf, cap, "%.3fs", (double)ms / 1000.0);
}

static uint32_t route_addr_type(const char *t) {
  static const struct {
    const char *name;
    uint32_t type;
  } map[] = {{"Hostname", CCM_ADDR_HOSTNAME},
             {"ExternalIP", CCM_ADDR_EXTERNAL_IP},
             {"InternalIP", CCM_ADDR_INTERNAL_IP},
             {"ExternalDNS", CCM_ADDR_EXTERNAL_DNS},
             {"InternalDNS", CCM_ADDR_INTERNAL_DNS}};
  for (size_t i = 0; t != NULL && i < sizeof(map) / sizeof(map[0]); i++)
    if (strcmp(t, map[i].name) == 0)
      return map[i].type;
  return 0;
}

static void *route_pool_worker(void *arg) {
  struct route_pool *p = arg;

  thread_name("route-pool");
  for (;;) {
    size_t i = atomic_fetch_add(&p->next, 1);
    if (i >= p->n)
      break;
    p->fn(p->run, i);
  }
  return NULL;
}

/* Run fn for 0..n-1 on up to max threads, the caller being one of them.
 * A thread that cannot be created just leaves more work to the others. */
static void route_pool_run(struct route_run *run, size_t n, size_t max,
                           route_task_fn *fn) {
  struct route_pool p = {.run = run, .fn = fn, .n = n};
  pthread_t *th = NULL;
  size_t want = n < max ? n : max, made = 0;
  pthread_attr_t attr;

  atomic_init(&p.next, 0);
  if (want > 1) {
    th = mem_calloc(want - 1, sizeof(*th));
    if (th != NULL && pthread_attr_init(&attr) == 0) {
      pthread_attr_setstacksize(&attr, CCM_ROUTE_STACK);
      for (size_t i = 0; i + 1 < want; i++) {
        if (pthread_create(&th[made], &attr, route_pool_worker, &p) != 0)
          break;
        made++;
      }
      pthread_attr_destroy(&attr);
    }
  }
  route_pool_worker(&p);
  for (size_t i = 0; i < made; i++)
    pthread_join(th[i], NULL);
  mem_free(th);
}

/* ---- provider operations ------------------------------------------------ */

static void route_event_failed(struct route_ctl *rc, const char *node,
                               const char *hint, const char *cidr,
                               const char *dur, const char *why) {
  /* Upstream's reference: kind Node, UID = the node name (kubectl
   * describe node finds Events by that UID). */
  struct kube_object_ref ref = {.api_version = "v1", .kind = "Node",
                                .name = node, .uid = node};
  if (rc->env.events == NULL)
    return;
  kube_event_emit(rc->env.events, &ref, "Warning", CCM_ROUTE_EVENT_FAILED,
                  "Could not create route %s %s for node %s after %s: %s",
                  hint, cidr, node, dur, why);
}

static void route_do_create(struct route_run *run, size_t i) {
  struct route_ctl *rc = run->rc;
  const struct route_plan_create *c = &run->plan.creates[i];
  const struct obj_node *n = run->nodes[c->node];
  const char *dest = n->pod_cidrs[c->cidr];
  const char *hint = n->meta.uid != NULL ? n->meta.uid : n->meta.name;
  struct ccm_node_address *addrs = NULL;
  const struct ccm_node_address **ptrs = NULL;
  size_t k = 0;
  struct ccm_call call;
  char dur[32];

  if (atomic_load(&rc->stopping) || !runtime_is_leader(rc->env.rt))
    return;
  if (n->n_addresses > 0) {
    addrs = mem_calloc(n->n_addresses, sizeof(*addrs));
    ptrs = mem_calloc(n->n_addresses, sizeof(*ptrs));
    if (addrs == NULL || ptrs == NULL) {
      log_msg(CCM_LOG_ERROR, CCM_ROUTE_LOG,
              "out of memory creating the route for node %s", n->meta.name);
      atomic_fetch_add(&rc->create_failures, 1);
      goto done;
    }
    for (size_t a = 0; a < n->n_addresses; a++) {
      uint32_t t = route_addr_type(n->addresses[a].type);
      if (t == 0 || n->addresses[a].address == NULL)
        continue;
      addrs[k].struct_size = sizeof(addrs[k]);
      addrs[k].type = t;
      addrs[k].address = n->addresses[a].address;
      ptrs[k] = &addrs[k];
      k++;
    }
  }
  struct ccm_route r = {.struct_size = sizeof(r),
                        .target_node = n->meta.name,
                        .destination_cidr = dest,
                        .target_addresses = ptrs,
                        .n_target_addresses = k};
  log_msg(CCM_LOG_INFO, CCM_ROUTE_LOG,
          "creating route for node %s %s with hint %s", n->meta.name, dest,
          hint);
  call_init(&call, rc->env.call_timeout_ms);
  int64_t t0 = call_now_ms();
  int st = prov_route_create(&run->ref, &call, rc->env.cluster_name, hint, &r);
  route_duration(call_now_ms() - t0, dur, sizeof(dur));
  if (st != CCM_OK) {
    const char *why = call.error[0] != '\0' ? call.error
                                            : ccm_status_name(st);
    log_msg(CCM_LOG_WARN, CCM_ROUTE_LOG,
            "could not create route %s %s for node %s after %s: %s", hint,
            dest, n->meta.name, dur, why);
    route_event_failed(rc, n->meta.name, hint, dest, dur, why);
    atomic_fetch_add(&rc->create_failures, 1);
    goto done;
  }
  atomic_fetch_add(&run->ok[c->node], 1);
  atomic_fetch_add(&rc->creates, 1);
  log_msg(CCM_LOG_INFO, CCM_ROUTE_LOG,
          "created route for node %s %s with hint %s after %s", n->meta.name,
          dest, hint, dur);
done:
  mem_free(addrs);
  mem_free(ptrs);
}

static void route_do_delete(struct route_run *run, size_t i) {
  struct route_ctl *rc = run->rc;
  const struct route_entry *e = &run->list.items[run->plan.deletes[i]];
  struct ccm_call call;
  char dur[32];

  if (atomic_load(&rc->stopping) || !runtime_is_leader(rc->env.rt))
    return;
  struct ccm_route r = {.struct_size = sizeof(r),
                        .name = e->name,
                        .target_node = e->target_node,
                        .destination_cidr = e->destination_cidr,
                        .blackhole = e->blackhole};
  log_msg(CCM_LOG_INFO, CCM_ROUTE_LOG, "deleting route %s %s",
          e->name != NULL ? e->name : "", e->destination_cidr);
  call_init(&call, rc->env.call_timeout_ms);
  int64_t t0 = call_now_ms();
  int st = prov_route_delete(&run->ref, &call, rc->env.cluster_name, &r);
  route_duration(call_now_ms() - t0, dur, sizeof(dur));
  if (st != CCM_OK) {
    log_msg(CCM_LOG_WARN, CCM_ROUTE_LOG,
            "could not delete route %s %s after %s: %s",
            e->name != NULL ? e->name : "", e->destination_cidr, dur,
            call.error[0] != '\0' ? call.error : ccm_status_name(st));
    atomic_fetch_add(&rc->delete_failures, 1);
    return;
  }
  atomic_fetch_add(&rc->deletes, 1);
  log_msg(CCM_LOG_INFO, CCM_ROUTE_LOG, "deleted route %s %s after %s",
          e->name != NULL ? e->name : "", e->destination_cidr, dur);
}

/* ---- the NetworkUnavailable condition ---------------------------------- */

struct route_cond_edit {
  enum route_cond_want want;
  const char *now;
};

static int route_set_str(cJSON *obj, const char *key, const char *value) {
  cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
  return cJSON_AddStringToObject(obj, key, value) != NULL ? 0 : -1;
}

/* kube_update_retry callback: set the condition on a fresh copy, or say
 * nothing needs writing when the copy already carries it. */
static int route_cond_mutate(cJSON *obj, void *ud) {
  const struct route_cond_edit *ed = ud;
  bool created = ed->want == ROUTE_COND_CREATED;
  cJSON *status = cJSON_GetObjectItemCaseSensitive(obj, "status");
  cJSON *conds, *cond = NULL, *item;

  if (!cJSON_IsObject(status)) {
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
    status = cJSON_AddObjectToObject(obj, "status");
    if (status == NULL)
      return KUBE_ERROR;
  }
  conds = cJSON_GetObjectItemCaseSensitive(status, "conditions");
  if (!cJSON_IsArray(conds)) {
    cJSON_DeleteItemFromObjectCaseSensitive(status, "conditions");
    conds = cJSON_AddArrayToObject(status, "conditions");
    if (conds == NULL)
      return KUBE_ERROR;
  }
  cJSON_ArrayForEach(item, conds) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(item, "type");
    if (cJSON_IsString(t) && strcmp(t->valuestring, CCM_ROUTE_COND_TYPE) == 0) {
      cond = item;
      break;
    }
  }
  if (cond != NULL) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(cond, "status");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(cond, "reason");
    int cur = !cJSON_IsString(s)                       ? OBJ_COND_UNKNOWN
              : strcmp(s->valuestring, "True") == 0    ? OBJ_COND_TRUE
              : strcmp(s->valuestring, "False") == 0   ? OBJ_COND_FALSE
                                                       : OBJ_COND_UNKNOWN;
    if (route_cond_matches(ed->want, cur,
                           cJSON_IsString(r) ? r->valuestring : NULL))
      return 1;
  } else {
    cond = cJSON_CreateObject();
    if (cond == NULL || !cJSON_AddItemToArray(conds, cond)) {
      cJSON_Delete(cond);
      return KUBE_ERROR;
    }
  }
  /* As upstream's SetNodeCondition: both times are now. */
  if (route_set_str(cond, "type", CCM_ROUTE_COND_TYPE) != 0 ||
      route_set_str(cond, "status", created ? "False" : "True") != 0 ||
      route_set_str(cond, "reason", created ? CCM_ROUTE_REASON_CREATED
                                            : CCM_ROUTE_REASON_FAILED) != 0 ||
      route_set_str(cond, "message", created ? CCM_ROUTE_MSG_CREATED
                                             : CCM_ROUTE_MSG_FAILED) != 0 ||
      route_set_str(cond, "lastTransitionTime", ed->now) != 0 ||
      route_set_str(cond, "lastHeartbeatTime", ed->now) != 0)
    return KUBE_ERROR;
  return 0;
}

static void route_do_condition(struct route_run *run, size_t i) {
  struct route_ctl *rc = run->rc;
  size_t idx = run->patch[i];
  const struct obj_node *n = run->nodes[idx];
  struct route_cond_edit ed = {.want = run->want[idx], .now = run->now};
  char path[512], msg[256];

  if (atomic_load(&rc->stopping) || !runtime_is_leader(rc->env.rt))
    return;
  if (kube_path(path, sizeof(path), "/api/v1", "nodes", NULL, n->meta.name,
                NULL) != 0) {
    atomic_fetch_add(&rc->cond_failures, 1);
    return;
  }
  msg[0] = '\0';
  int st = kube_update_retry(runtime_client(rc->env.rt), path, NULL, true,
                             route_cond_mutate, &ed, 0, NULL, msg,
                             sizeof(msg));
  if (st != KUBE_OK) {
    log_msg(CCM_LOG_WARN, CCM_ROUTE_LOG,
            "could not set %s on node %s: %s: %s", CCM_ROUTE_COND_TYPE,
            n->meta.name, kube_status_name(st), msg);
    atomic_fetch_add(&rc->cond_failures, 1);
    return;
  }
  atomic_fetch_add(&rc->cond_updates, 1);
  log_msg(CCM_LOG_INFO, CCM_ROUTE_LOG, "node %s: %s=%s (%s)", n->meta.name,
          CCM_ROUTE_COND_TYPE,
          ed.want == ROUTE_COND_CREATED ? "False" : "True",
          ed.want == ROUTE_COND_CREATED ? CCM_ROUTE_REASON_CREATED
                                        : CCM_ROUTE_REASON_FAILED);
}

/* ---- one reconcile ------------------------------------------------------ */

enum { ROUTE_RAN = 0, ROUTE_NOT_READY = 1, ROUTE_FAILED = -1 };

static void route_run_free(struct route_run *run) {
  route_plan_free(&run->plan);
  route_list_clear(&run->list);
  mem_free(run->pr);
  mem_free(run->pn);
  mem_free(run->nodes);
  mem_free(run->ok);
  mem_free(run->patch);
  mem_free(run->want);
  if (run->objs != NULL)
    store_list_free(run->objs, run->n_objs);
  if (run->ref.gen != NULL)
    registry_release(&run->ref);
}

/* The provider serves routes: log when that changes, not every period. */
static bool route_supported(struct route_ctl *rc, struct route_run *run) {
  const struct module *m = run->ref.gen->mod;
  bool ok = MODULE_HAS(m, route_list) && MODULE_HAS(m, route_create) &&
            MODULE_HAS(m, route_delete);
  if (!ok && !atomic_load(&rc->unsupported))
    log_msg(CCM_LOG_WARN, CCM_ROUTE_LOG,
            "provider %s does not support routes; the route controller "
            "stays idle",
            run->ref.gen->host != NULL ? run->ref.gen->host->name : "?");
  else if (ok && atomic_load(&rc->unsupported))
    log_msg(CCM_LOG_INFO, CCM_ROUTE_LOG,
            "provider %s now supports routes",
            run->ref.gen->host != NULL ? run->ref.gen->host->name : "?");
  atomic_store(&rc->unsupported, !ok);
  return ok;
}

static int route_collect(struct route_run *run) {
  struct informer *inf = runtime_nodes(run->rc->env.rt);
  if (store_list(informer_store(inf), &run->objs, &run->n_objs) != 0)
    return -1;
  size_t n = run->n_objs + 1;
  run->nodes = mem_calloc(n, sizeof(*run->nodes));
  run->pn = mem_calloc(n, sizeof(*run->pn));
  run->ok = mem_calloc(n, sizeof(*run->ok));
  run->patch = mem_calloc(n, sizeof(*run->patch));
  run->want = mem_calloc(n, sizeof(*run->want));
  run->pr = mem_calloc(run->list.n + 1, sizeof(*run->pr));
  if (run->nodes == NULL || run->pn == NULL || run->ok == NULL ||
      run->patch == NULL || run->want == NULL || run->pr == NULL)
    return -1;
  for (size_t i = 0; i < run->n_objs; i++) {
    const struct obj_node *nd = obj_as_node(run->objs[i]);
    if (nd == NULL || nd->meta.name == NULL)
      continue;
    run->nodes[run->n_nodes] = nd;
    run->pn[run->n_nodes].name = nd->meta.name;
    run->pn[run->n_nodes].pod_cidrs = nd->pod_cidrs;
    run->pn[run->n_nodes].n_pod_cidrs = nd->n_pod_cidrs;
    atomic_init(&run->ok[run->n_nodes], 0);
    run->n_nodes++;
  }
  for (size_t i = 0; i < run->list.n; i++) {
    const struct route_entry *e = &run->list.items[i];
    run->pr[i].name = e->name;
    run->pr[i].target_node = e->target_node;
    run->pr[i].destination_cidr = e->destination_cidr;
    run->pr[i].blackhole = e->blackhole;
  }
  return 0;
}

static void route_now(char *buf, size_t cap) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  if (strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(buf, cap, "1970-01-01T00:00:00Z");
}

static int route_reconcile(struct route_ctl *rc) {
  struct route_run run;
  struct ccm_call call;
  int result = ROUTE_FAILED;

  memset(&run, 0, sizeof(run));
  run.rc = rc;
  if (!informer_has_synced(runtime_nodes(rc->env.rt)) ||
      !runtime_is_leader(rc->env.rt))
    return ROUTE_NOT_READY;
  if (registry_for_nodes(rc->env.reg, &run.ref) != CCM_OK) {
    run.ref.gen = NULL;
    return ROUTE_NOT_READY;
  }
  if (!route_supported(rc, &run)) {
    result = ROUTE_RAN;
    goto done;
  }

  call_init(&call, rc->env.call_timeout_ms);
  int st = prov_route_list(&run.ref, &call, rc->env.cluster_name, &run.list);
  if (st != CCM_OK) {
    log_msg(CCM_LOG_WARN, CCM_ROUTE_LOG, "could not list routes: %s",
            call.error[0] != '\0' ? call.error : ccm_status_name(st));
    atomic_fetch_add(&rc->list_failures, 1);
    goto done;
  }
  if (route_collect(&run) != 0 ||
      route_plan_build(rc->cluster, rc->n_cluster, run.pn, run.n_nodes,
                       run.pr, run.list.n, &run.plan) != 0) {
    log_msg(CCM_LOG_ERROR, CCM_ROUTE_LOG, "out of memory planning routes");
    goto done;
  }

  /* Deletes first, then creates, each bounded like upstream's limiter.
   * Upstream runs both at once; a provider that names routes after the
   * hint could then see a stale route's delete remove the route just
   * re-created under the same name (a node whose podCIDR changed). */
  if (run.plan.n_deletes > 0)
    route_pool_run(&run, run.plan.n_deletes, CCM_ROUTE_MAX_INFLIGHT,
                   route_do_delete);
  if (run.plan.n_creates > 0)
    route_pool_run(&run, run.plan.n_creates, CCM_ROUTE_MAX_INFLIGHT,
                   route_do_create);

  route_now(run.now, sizeof(run.now));
  for (size_t i = 0; i < run.n_nodes; i++) {
    const struct obj_node *n = run.nodes[i];
    size_t ok = run.plan.kept[i] + atomic_load(&run.ok[i]);
    enum route_cond_want w =
        route_cond_decide(run.plan.wanted[i], ok, run.plan.has_routes[i]);
    run.want[i] = w;
    if (!route_cond_matches(w, n->network_unavailable,
                            n->network_unavailable_reason))
      run.patch[run.n_patch++] = i;
  }
  if (run.n_patch > 0)
    route_pool_run(&run, run.n_patch, CCM_ROUTE_STATUS_WORKERS,
                   route_do_condition);
  result = ROUTE_RAN;
done:
  route_run_free(&run);
  return result;
}

/* ---- loop and informer handlers ---------------------------------------- */

static void route_observe(struct route_ctl *rc, int64_t ms) {
  double s = (double)ms / 1000.0;
  size_t b = 0;
  while (b < CCM_ROUTE_HIST_N && s > route_hist_bounds[b])
    b++;
  pthread_mutex_lock(&rc->hist_mu);
  rc->hist[b]++;
  rc->hist_count++;
  rc->hist_sum += s;
  pthread_mutex_unlock(&rc->hist_mu);
}

static void *route_loop(void *arg) {
  struct route_ctl *rc = arg;
  int64_t next = 0, last = 0;

  thread_name("routes");

  pthread_mutex_lock(&rc->mu);
  while (!atomic_load(&rc->stopping)) {
    int64_t now = call_now_ms(), due = next;
    if (rc->kick && last + CCM_ROUTE_KICK_GAP_MS < due)
      due = last + CCM_ROUTE_KICK_GAP_MS;
    if (now < due) {
      struct timespec ts = thread_deadline_at(due);
      pthread_cond_timedwait(&rc->cv, &rc->mu, &ts);
      continue;
    }
    rc->kick = false;
    pthread_mutex_unlock(&rc->mu);
    int64_t start = call_now_ms();
    int r = route_reconcile(rc);
    int64_t end = call_now_ms();
    if (r != ROUTE_NOT_READY) {
      atomic_fetch_add(&rc->syncs, 1);
      route_observe(rc, end - start);
    }
    pthread_mutex_lock(&rc->mu);
    last = end;
    /* Non-sliding: the period counts from the start of the run. */
    if (r == ROUTE_NOT_READY)
      next = end + CCM_ROUTE_RETRY_MS;
    else
      next = start + rc->period_ms > end ? start + rc->period_ms : end;
  }
  pthread_mutex_unlock(&rc->mu);
  return NULL;
}

static void route_kick(struct route_ctl *rc) {
  pthread_mutex_lock(&rc->mu);
  rc->kick = true;
  pthread_cond_signal(&rc->cv);
  pthread_mutex_unlock(&rc->mu);
}

static bool route_cidrs_equal(const struct obj_node *a,
                              const struct obj_node *b) {
  if (a->n_pod_cidrs != b->n_pod_cidrs)
    return false;
  for (size_t i = 0; i < a->n_pod_cidrs; i++)
    if (strcmp(a->pod_cidrs[i], b->pod_cidrs[i]) != 0)
      return false;
  return true;
}

static void route_on_add(void *ud, const struct obj_meta *obj) {
  (void)obj;
  route_kick(ud);
}

static void route_on_update(void *ud, const struct obj_meta *old,
                            const struct obj_meta *cur) {
  const struct obj_node *a = obj_as_node(old), *b = obj_as_node(cur);
  if (a == NULL || b == NULL || !route_cidrs_equal(a, b))
    route_kick(ud);
}

static void route_on_delete(void *ud, const struct obj_meta *old) {
  (void)old;
  route_kick(ud);
}

/* ---- controller_ops ----------------------------------------------------- */

static int route_create(const struct ctrl_env *env, void **state, char *err,
                        size_t errlen) {
  struct route_ctl *rc = mem_calloc(1, sizeof(*rc));
  const struct host_config *cfg = env->cfg;
  char why[256];

  *state = NULL;
  if (rc == NULL) {
    snprintf(err, errlen, "route controller: out of memory");
    return -1;
  }
  rc->env = *env;
  rc->env.cfg = NULL;
  rc->cluster_name = mem_strdup(env->cluster_name != NULL ? env->cluster_name
                                                          : "kubernetes");
  rc->env.cluster_name = rc->cluster_name;
  pthread_mutex_init(&rc->mu, NULL);
  pthread_mutex_init(&rc->hist_mu, NULL);
  thread_cond_init_mono(&rc->cv);
  atomic_init(&rc->stopping, false);
  uint32_t period_s = cfg != NULL && cfg->route_reconcile_period_s > 0
                          ? cfg->route_reconcile_period_s
                          : CCM_ROUTE_DEFAULT_PERIOD_S;
  rc->period_ms = period_s * 1000u;

  if (cfg == NULL || !cfg->configure_cloud_routes) {
    snprintf(rc->idle_why, sizeof(rc->idle_why),
             "configure_cloud_routes is false");
  } else if (cfg->cluster_cidr == NULL || cfg->cluster_cidr[0] == '\0') {
    snprintf(rc->idle_why, sizeof(rc->idle_why), "cluster_cidr is not set");
  } else if (route_cluster_cidrs_parse(cfg->cluster_cidr, rc->cluster,
                                       &rc->n_cluster, why,
                                       sizeof(why)) != 0) {
    snprintf(err, errlen, "route controller: %s", why);
    goto fail;
  } else {
    rc->cluster_cidr = mem_strdup(cfg->cluster_cidr);
    rc->enabled = true;
  }
  if (rc->cluster_name == NULL || (rc->enabled && rc->cluster_cidr == NULL)) {
    snprintf(err, errlen, "route controller: out of memory");
    goto fail;
  }
  if (rc->enabled) {
    struct informer_handlers h = {.add = route_on_add,
                                  .update = route_on_update,
                                  .del = route_on_delete,
                                  .ud = rc};
    if (informer_add_handlers(runtime_nodes(env->rt), &h) != 0) {
      snprintf(err, errlen, "route controller: cannot add Node handlers");
      goto fail;
    }
  }
  *state = rc;
  return 0;

fail:
  pthread_cond_destroy(&rc->cv);
  pthread_mutex_destroy(&rc->mu);
  pthread_mutex_destroy(&rc->hist_mu);
  mem_free(rc->cluster_name);
  mem_free(rc->cluster_cidr);
  mem_free(rc);
  return -1;
}

static int route_start(void *state) {
  struct route_ctl *rc = state;
  if (!rc->enabled) {
    log_msg(CCM_LOG_INFO, CCM_ROUTE_LOG, "route controller idle: %s",
            rc->idle_why);
    return 0;
  }
  atomic_store(&rc->stopping, false);
  if (pthread_create(&rc->thread, NULL, route_loop, rc) != 0) {
    log_msg(CCM_LOG_ERROR, CCM_ROUTE_LOG, "cannot start the route loop");
    return -1;
  }
  rc->started = true;
  log_msg(CCM_LOG_INFO, CCM_ROUTE_LOG,
          "route controller started: cluster %s, cluster_cidr %s, every %u s",
          rc->cluster_name, rc->cluster_cidr,
          rc->period_ms / 1000u);
  return 0;
}

static void route_stop(void *state) {
  struct route_ctl *rc = state;
  if (rc == NULL || !rc->started)
    return;
  pthread_mutex_lock(&rc->mu);
  atomic_store(&rc->stopping, true);
  pthread_cond_broadcast(&rc->cv);
  pthread_mutex_unlock(&rc->mu);
  pthread_join(rc->thread, NULL);
  rc->started = false;
}

static void route_destroy(void *state) {
  struct route_ctl *rc = state;
  if (rc == NULL)
    return;
  route_stop(rc);
  pthread_cond_destroy(&rc->cv);
  pthread_mutex_destroy(&rc->mu);
  pthread_mutex_destroy(&rc->hist_mu);
  mem_free(rc->cluster_name);
  mem_free(rc->cluster_cidr);
  mem_free(rc);
}

static void route_counter(FILE *out, const char *name, const char *help,
                          uint64_t v) {
  fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help,
          name, name, (unsigned long long)v);
}

static void route_metrics(void *state, FILE *out) {
  struct route_ctl *rc = state;
  uint64_t hist[CCM_ROUTE_HIST_N + 1], count, cum = 0;
  double sum;

  route_counter(out, "route_controller_route_sync_total",
                "Route reconciles run (upstream name).",
                atomic_load(&rc->syncs));
  route_counter(out, "ccm_route_created_total", "Routes created.",
                atomic_load(&rc->creates));
  route_counter(out, "ccm_route_create_failures_total",
                "Route creations that failed.",
                atomic_load(&rc->create_failures));
  route_counter(out, "ccm_route_deleted_total", "Stale routes deleted.",
                atomic_load(&rc->deletes));
  route_counter(out, "ccm_route_delete_failures_total",
                "Route deletions that failed.",
                atomic_load(&rc->delete_failures));
  route_counter(out, "ccm_route_list_failures_total",
                "Route listings that failed.",
                atomic_load(&rc->list_failures));
  route_counter(out, "ccm_route_condition_updates_total",
                "NetworkUnavailable conditions written.",
                atomic_load(&rc->cond_updates));
  route_counter(out, "ccm_route_condition_failures_total",
                "NetworkUnavailable writes that failed.",
                atomic_load(&rc->cond_failures));
  fprintf(out, "# HELP ccm_route_controller_active 1 when the route "
               "controller runs, 0 when it is idle.\n"
               "# TYPE ccm_route_controller_active gauge\n"
               "ccm_route_controller_active %d\n",
          rc->enabled && !atomic_load(&rc->unsupported) ? 1 : 0);

  pthread_mutex_lock(&rc->hist_mu);
  memcpy(hist, rc->hist, sizeof(hist));
  count = rc->hist_count;
  sum = rc->hist_sum;
  pthread_mutex_unlock(&rc->hist_mu);
  fprintf(out, "# HELP ccm_route_reconcile_duration_seconds Time of one "
               "route reconcile.\n"
               "# TYPE ccm_route_reconcile_duration_seconds histogram\n");
  for (size_t i = 0; i < CCM_ROUTE_HIST_N; i++) {
    cum += hist[i];
    fprintf(out, "ccm_route_reconcile_duration_seconds_bucket{le=\"%g\"} "
                 "%llu\n",
            route_hist_bounds[i], (unsigned long long)cum);
  }
  fprintf(out, "ccm_route_reconcile_duration_seconds_bucket{le=\"+Inf\"} "
               "%llu\n"
               "ccm_route_reconcile_duration_seconds_sum %.6f\n"
               "ccm_route_reconcile_duration_seconds_count %llu\n",
          (unsigned long long)count, sum, (unsigned long long)count);
}

const struct controller_ops route_controller_ops = {
    .name = "route",
    .create = route_create,
    .start = route_start,
    .stop = route_stop,
    .destroy = route_destroy,
    .metrics = route_metrics,
};
