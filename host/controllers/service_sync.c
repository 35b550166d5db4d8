/*
 * service_sync.c: one pass over one Service key: syncService (the ensure
 * and delete branches in upstream's exact order, re-creation, deletion of
 * a vanished Service by its cached object, the skip of an unchanged
 * Service after a start) and nodeSyncService (the backend host set). It
 * checks leadership before every mutating action. It must not touch the
 * queue: the worker acts on the result.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "controllers/service_fprint.h"
#include "controllers/service_int.h"
#include "controllers/service_logic.h"
#include "kube/writes.h"
#include "util/log.h"
#include "util/mem.h"

/* What the pass knows about the Service's load balancer. */
struct svc_lb {
  char name[256];          /* the recorded (or default) name */
  bool recorded;           /* name is a record, not the default */
  char class_buf[256];
  const char *lb_class;    /* the class that picks the provider */
};

static double svc_now_s(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool svc_class_served(struct svc_ctrl *c, const char *lb_class)
{
  struct provider_ref ref = {0};

  if (registry_for_service(c->env.reg, lb_class, &ref) != CCM_OK)
    return false;
  registry_release(&ref);
  return true;
}

struct svc_nodes *svc_ctrl_nodes(struct svc_ctrl *c)
{
  struct svc_nodes *n = NULL, *old = NULL;

  pthread_mutex_lock(&c->lock);
  if (c->nodes == NULL || c->nodes_stale) {
    /* CPU only (no network): rebuilding under the lock is short. */
    if (svc_nodes_build(c->node_store, &n) == 0) {
      old = c->nodes;
      c->nodes = n;
      c->nodes_stale = false;
    }
  }
  n = svc_nodes_ref(c->nodes);
  pthread_mutex_unlock(&c->lock);
  svc_nodes_unref(old);
  return n;
}

static bool svc_leader(struct svc_ctrl *c, struct svc_result *r)
{
  if (runtime_is_leader(c->env.rt))
    return true;
  r->out = SVC_OUT_PARKED;
  snprintf(r->err, sizeof(r->err), "not the leader");
  return false;
}

/* prefix NULL: what alone; else "prefix: what". */
static void svc_fail(struct svc_result *r, const char *prefix,
                     const char *what)
{
  r->out = SVC_OUT_FAILED;
  if (prefix == NULL)
    snprintf(r->err, sizeof(r->err), "%s", what);
  else
    snprintf(r->err, sizeof(r->err), "%s: %s", prefix, what);
}

/* A provider failure: its message (or status name); retry-after kept. */
static void svc_fail_call(struct svc_result *r, const char *prefix, int rc,
                          const struct ccm_call *call)
{
  const char *why = call->error[0] ? call->error : ccm_status_name(rc);

  r->out = SVC_OUT_FAILED;
  if ((rc == CCM_ERR_RETRY || rc == CCM_ERR_THROTTLED) &&
      call->has_retry_after) {
    r->out = SVC_OUT_RETRY_AFTER;
    r->retry_after_ms = call->retry_after_ms;
  }
  snprintf(r->err, sizeof(r->err), "%s: %s", prefix, why);
}

/* Name and class: the records on the object, else the cache entry of the
 * same UID, else the default name and the object's class. */
static void svc_lb_resolve(const struct obj_service *s,
                           const struct svc_entry *e, struct svc_lb *lb)
{
  const char *name = obj_annotation(&s->meta, CCM_SVC_NAME_ANNOTATION);
  const char *cls = obj_annotation(&s->meta, CCM_SVC_CLASS_ANNOTATION);
  bool same = e != NULL && e->obj != NULL && e->obj->uid != NULL &&
              s->meta.uid != NULL && strcmp(e->obj->uid, s->meta.uid) == 0;

  lb->name[0] = '\0';
  lb->recorded = true;
  if (name != NULL && *name != '\0')
    snprintf(lb->name, sizeof(lb->name), "%s", name);
  else if (same && e->lb_name != NULL)
    snprintf(lb->name, sizeof(lb->name), "%s", e->lb_name);
  else {
    /* Never named by us: the upstream default (the naming policy
     * applies only when an ensure records a first name). */
    lb->recorded = false;
    if (svc_default_lb_name(s->meta.uid, lb->name, sizeof(lb->name)) < 0)
      lb->name[0] = '\0';
  }
  lb->lb_class = NULL;
  if (cls == NULL && same && e->lb_class != NULL)
    cls = e->lb_class;
  if (cls == NULL)
    cls = s->lb_class;
  if (cls != NULL) {
    snprintf(lb->class_buf, sizeof(lb->class_buf), "%s", cls);
    lb->lb_class = lb->class_buf;
  }
}

/* Provider for lb; on failure r says why. With name_it, a Service that
 * has no recorded name gets its name from the naming policy. */
static bool svc_provider(struct svc_ctrl *c, const struct obj_service *s,
                         struct svc_lb *lb, bool name_it,
                         struct provider_ref *ref, struct svc_result *r)
{
  int rc = registry_for_service(c->env.reg, lb->lb_class, ref);
  const struct ccm_name_rules *rules;
  char why[300];

  if (rc != CCM_OK) {
    r->out = SVC_OUT_FAILED;
    snprintf(r->err, sizeof(r->err), "no provider serves load balancer "
             "class \"%s\" (%s)", lb->lb_class ? lb->lb_class : "(default)",
             ccm_status_name(rc));
    return false;
  }
  rules = ref->gen->mod->provider_size >=
                  offsetof(struct ccm_provider, lb_name_rules) +
                      sizeof(ref->gen->mod->provider->lb_name_rules)
              ? ref->gen->mod->provider->lb_name_rules
              : NULL;
  if (name_it && !lb->recorded &&
      svc_policy_name(c, s, lb->lb_class, ref, lb->name, sizeof(lb->name),
                      r) != SVC_POLICY_OK) {
    registry_release(ref);
    return false;
  }
  if (svc_lb_name_check(lb->name, rules, why, sizeof(why)) != 0) {
    registry_release(ref);
    r->out = SVC_OUT_PERMANENT;
    snprintf(r->err, sizeof(r->err), "%s", why);
    return false;
  }
  return true;
}

/* ---- delete ------------------------------------------------------- */

/* EnsureLoadBalancerDeleted for a cached object whose Service is gone or
 * was replaced (upstream processLoadBalancerDelete). */
static void svc_delete_cached(struct svc_ctrl *c, const struct obj_service *s,
                              const struct svc_entry *e, struct svc_result *r)
{
  struct provider_ref ref = {0};
  struct svc_input in;
  struct ccm_call call;
  struct svc_lb lb;
  int rc;

  svc_lb_resolve(s, e, &lb);
  if (!svc_leader(c, r))
    return;
  svc_event(c, s, "Normal", "DeletingLoadBalancer", "Deleting load balancer");
  if (!svc_provider(c, s, &lb, false, &ref, r))
    goto report;
  if (svc_input_build(s, c->env.cluster_name, lb.name, lb.lb_class, &in)) {
    registry_release(&ref);
    svc_fail(r, NULL, "out of memory");
    goto report;
  }
  rc = svc_policy_inputs(c, s, lb.lb_class, &ref, &in, r);
  if (rc != SVC_POLICY_OK) {
    svc_input_free(&in);
    registry_release(&ref);
    if (rc == SVC_POLICY_FAILED)
      goto report;
    r->out = SVC_OUT_DONE; /* handled elsewhere: nothing of ours */
    return;
  }
  call_init(&call, c->env.call_timeout_ms);
  rc = prov_lb_delete(&ref, &call, &in.svc);
  svc_input_free(&in);
  registry_release(&ref);
  if (rc != CCM_OK && rc != CCM_ERR_NOT_IMPLEMENTED) {
    svc_fail_call(r, "failed to delete load balancer", rc, &call);
    goto report;
  }
  svc_event(c, s, "Normal", "DeletedLoadBalancer", "Deleted load balancer");
  r->out = SVC_OUT_DONE;
  return;
report:
  if (r->out == SVC_OUT_PERMANENT)
    r->out = SVC_OUT_FAILED; /* a cleanup is never given up */
  svc_event(c, s, "Warning", "DeleteLoadBalancerFailed",
            "Error deleting load balancer: %s", r->err);
}

/* The delete branch of syncLoadBalancerIfNeeded. */
static void svc_cleanup(struct svc_ctrl *c, const struct obj_service *s,
                        struct svc_lb *lb, struct svc_result *r)
{
  struct provider_ref ref = {0};
  struct ccm_lb_status st = {0};
  struct svc_input in;
  struct ccm_call call;
  bool exists = true;
  char msg[512] = "";
  int rc;

  if (!svc_leader(c, r))
    return;
  if (!svc_provider(c, s, lb, false, &ref, r)) {
    if (r->out == SVC_OUT_PERMANENT)
      r->out = SVC_OUT_FAILED; /* keep the finalizer, keep trying */
    return;
  }
  if (svc_input_build(s, c->env.cluster_name, lb->name, lb->lb_class, &in)) {
    registry_release(&ref);
    svc_fail(r, NULL, "out of memory");
    return;
  }
  rc = svc_policy_inputs(c, s, lb->lb_class, &ref, &in, r);
  if (rc == SVC_POLICY_FAILED) {
    r->out = SVC_OUT_FAILED; /* keep the finalizer, keep trying */
    goto out;
  }
  if (rc == SVC_POLICY_ELSEWHERE) {
    exists = false; /* another controller's: nothing of ours to delete */
    rc = CCM_OK;
  } else {
    call_init(&call, c->env.call_timeout_ms);
    rc = prov_lb_get(&ref, &call, &in.svc, &st);
    lb_status_clear(&st);
  }
  if (rc == CCM_ERR_NOT_FOUND)
    exists = false;
  else if (rc != CCM_OK && rc != CCM_ERR_NOT_IMPLEMENTED) {
    svc_fail_call(r, "failed to check if load balancer exists before "
                  "cleanup", rc, &call);
    goto out;
  }
  rc = CCM_OK;
  if (exists) {
    svc_event(c, s, "Normal", "DeletingLoadBalancer",
              "Deleting load balancer");
    if (!svc_leader(c, r))
      goto out;
    call_init(&call, c->env.call_timeout_ms);
    rc = prov_lb_delete(&ref, &call, &in.svc);
    if (rc == CCM_ERR_NOT_IMPLEMENTED)
      rc = CCM_OK; /* upstream ignores ImplementedElsewhere here */
    if (rc != CCM_OK) {
      svc_fail_call(r, "failed to delete load balancer", rc, &call);
      goto out;
    }
  }
  if (svc_finalizer_remove_allowed(rc) &&
      obj_service_has_finalizer(s, CCM_SVC_FINALIZER)) {
    if (!svc_leader(c, r))
      goto out;
    rc = svc_kube_finalizer_remove(c, s, msg, sizeof(msg));
    if (rc != KUBE_OK) {
      svc_fail(r, "failed to remove load balancer cleanup finalizer",
               msg[0] ? msg : kube_status_name(rc));
      goto out;
    }
  }
  svc_event(c, s, "Normal", "DeletedLoadBalancer", "Deleted load balancer");
  if (s->n_ingress > 0) {
    if (!svc_leader(c, r))
      goto out;
    msg[0] = '\0';
    rc = svc_kube_patch_status(c, s, NULL, msg, sizeof(msg));
    if (rc != KUBE_OK) {
      svc_fail(r, "failed to update load balancer status",
               msg[0] ? msg : kube_status_name(rc));
      goto out;
    }
  }
  r->out = SVC_OUT_DONE;
out:
  svc_input_free(&in);
  registry_release(&ref);
}

/* ---- ensure ------------------------------------------------------- */

static void svc_remember(struct svc_ctrl *c, const char *key,
                         const struct svc_lb *lb, struct svc_nodes *nodes)
{
  struct svc_entry *e;
  struct svc_nodes *old = NULL;

  pthread_mutex_lock(&c->lock);
  e = svc_cache_get(&c->cache, key);
  if (e != NULL) {
    if (svc_entry_set_str(&e->lb_name, lb->name) != 0 ||
        svc_entry_set_str(&e->lb_class, lb->lb_class) != 0)
      log_msg(CCM_LOG_ERROR, "service", "%s: out of memory", key);
    old = e->synced;
    e->synced = svc_nodes_ref(nodes);
  }
  pthread_mutex_unlock(&c->lock);
  svc_nodes_unref(old);
}

/* The fingerprint recorded on s, or NULL. */
static const char *svc_recorded_inputs(const struct obj_service *s)
{
  const char *v = obj_annotation(&s->meta, CCM_SVC_INPUTS_ANNOTATION);

  return v != NULL && *v != '\0' ? v : NULL;
}

/* The ensure branch of syncLoadBalancerIfNeeded. After a success the
 * input fingerprint is recorded (after the status, so a matching record
 * implies the ensure and the status both landed); a record that does not
 * match the inputs about to be sent is dropped before the provider call,
 * so that a crash mid-ensure can never leave a matching record behind. */
static void svc_ensure(struct svc_ctrl *c, const char *key,
                       const struct obj_service *s, struct svc_lb *lb,
                       const char *fresh_record, struct svc_result *r)
{
  struct provider_ref ref = {0};
  struct ccm_lb_status st = {0};
  struct svc_nodes *all = NULL, *nodes = NULL;
  const char *recorded =
      fresh_record != NULL ? fresh_record : svc_recorded_inputs(s);
  bool patch_status, record;
  char fp[CCM_SVC_FPRINT_HEX];
  struct svc_input in;
  struct ccm_call call;
  char msg[512] = "";
  bool add, drop;
  int rc;

  memset(&in, 0, sizeof(in));
  if (!svc_leader(c, r))
    return;
  svc_event(c, s, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer");
  if (!svc_provider(c, s, lb, true, &ref, r))
    return;
  all = svc_ctrl_nodes(c);
  if (all == NULL ||
      svc_input_build(s, c->env.cluster_name, lb->name, lb->lb_class, &in)) {
    svc_fail(r, NULL, "out of memory");
    goto out;
  }
  rc = svc_policy_inputs(c, s, lb->lb_class, &ref, &in, r);
  if (rc == SVC_POLICY_ELSEWHERE) {
    /* Another controller serves it now; a load balancer we made before
     * goes, by its recorded name, as when the type changes. */
    log_msg(CCM_LOG_DEBUG, "service", "%s: implemented elsewhere (policy)",
            key);
    registry_release(&ref);
    if (obj_service_has_finalizer(s, CCM_SVC_FINALIZER))
      svc_cleanup(c, s, lb, r);
    else
      r->out = SVC_OUT_DONE;
    goto out;
  }
  if (rc != SVC_POLICY_OK ||
      svc_policy_backends(c, s, lb->lb_class, &ref, all, &nodes, r) !=
          SVC_POLICY_OK)
    goto out;
  if (svc_fprint_digest(&in.svc, nodes->digest, fp) != 0) {
    svc_fail(r, NULL, "out of memory");
    goto out;
  }
  /* The finalizer and the name record go first: no cloud call may
   * happen before the host can find and delete what it creates. */
  add = svc_finalizer_add_needed(s);
  drop = recorded != NULL && (add || strcmp(recorded, fp) != 0);
  if (add || drop) {
    if (!svc_leader(c, r))
      goto out;
    rc = svc_kube_record(c, s, lb->name, lb->lb_class, drop, msg,
                         sizeof(msg));
    if (rc != KUBE_OK) {
      svc_fail(r, "failed to add load balancer cleanup finalizer",
               msg[0] ? msg : kube_status_name(rc));
      goto out;
    }
  }
  if (nodes->n == 0)
    svc_event(c, s, "Warning", "UnAvailableLoadBalancer",
              "There are no available nodes for LoadBalancer");
  svc_remember(c, key, lb, nodes);
  if (!svc_leader(c, r))
    goto out;
  call_init(&call, c->env.call_timeout_ms);
  rc = prov_lb_ensure(&ref, &call, &in.svc, &nodes->list, &st);
  if (rc != CCM_OK) {
    svc_fail_call(r, "failed to ensure load balancer", rc, &call);
    goto out;
  }
  svc_event(c, s, "Normal", "EnsuredLoadBalancer", "Ensured load balancer");
  patch_status = !svc_ingress_equal(s->ingress, s->n_ingress, &st);
  record = recorded == NULL || drop;
  /* The writer thread ends it, unless it is behind. */
  if ((patch_status || record) &&
      svc_tail_queue(c, key, s, &st, patch_status, record ? fp : NULL)) {
    r->out = SVC_OUT_DONE;
    goto out;
  }
  if (patch_status || record) {
    bool landed;

    if (!svc_leader(c, r))
      goto out;
    rc = svc_kube_ensured(c, s, &st, patch_status, record ? fp : NULL,
                          &landed, msg, sizeof(msg));
    if (rc != KUBE_OK) {
      svc_fail(r, "failed to update load balancer status",
               msg[0] ? msg : kube_status_name(rc));
      goto out;
    }
  }
  r->out = SVC_OUT_DONE;
out:
  lb_status_clear(&st);
  svc_input_free(&in);
  svc_nodes_unref(nodes);
  svc_nodes_unref(all);
  registry_release(&ref);
}

/* The first sync of a Service since this controller started: when the
 * Service carries our finalizer, a recorded name, an ingress and an input
 * fingerprint equal to the current inputs, the last ensure already gave
 * the provider exactly these inputs: skip it (no provider call) and take
 * the nodes it was given as last synced, so a later node change still
 * updates the hosts. True when skipped (r says DONE). */
static bool svc_skip_unchanged(struct svc_ctrl *c, const char *key,
                               const struct obj_service *s,
                               struct svc_lb *lb, struct svc_result *r)
{
  const char *recorded = svc_recorded_inputs(s);
  const char *name = obj_annotation(&s->meta, CCM_SVC_NAME_ANNOTATION);
  struct provider_ref ref = {0};
  struct svc_nodes *all = NULL, *nodes = NULL;
  struct svc_result pr = {0};
  char fp[CCM_SVC_FPRINT_HEX] = "";
  struct svc_input in;
  bool skip = false;

  memset(&in, 0, sizeof(in));
  if (recorded == NULL || name == NULL || *name == '\0' ||
      s->n_ingress == 0 || s->meta.deleting ||
      !obj_service_has_finalizer(s, CCM_SVC_FINALIZER))
    return false;
  if (!svc_provider(c, s, lb, false, &ref, &pr))
    return false; /* the ensure path reports it */
  all = svc_ctrl_nodes(c);
  /* Any policy failure: no skip, the ensure path reports it. */
  if (all != NULL &&
      svc_input_build(s, c->env.cluster_name, lb->name, lb->lb_class,
                      &in) == 0 &&
      svc_policy_inputs(c, s, lb->lb_class, &ref, &in, &pr) ==
          SVC_POLICY_OK &&
      svc_policy_backends(c, s, lb->lb_class, &ref, all, &nodes, &pr) ==
          SVC_POLICY_OK &&
      svc_fprint_digest(&in.svc, nodes->digest, fp) == 0)
    skip = strcmp(fp, recorded) == 0;
  if (skip) {
    svc_remember(c, key, lb, nodes);
    atomic_fetch_add(&c->m.ensure_skipped, 1);
    log_msg(CCM_LOG_DEBUG, "service", "%s: inputs unchanged since the "
            "last ensure: not ensured again", key);
    r->out = SVC_OUT_DONE;
  }
  svc_input_free(&in);
  svc_nodes_unref(nodes);
  svc_nodes_unref(all);
  registry_release(&ref);
  return skip;
}

/* ---- syncService -------------------------------------------------- */

/* A private copy of what the worker needs from the cache entry. */
struct svc_snap {
  struct svc_entry e;
  bool present;
};

static void svc_snap_take(struct svc_ctrl *c, const char *key,
                          struct svc_snap *sn)
{
  struct svc_entry *e;

  memset(sn, 0, sizeof(*sn));
  pthread_mutex_lock(&c->lock);
  e = svc_cache_get(&c->cache, key);
  if (e != NULL) {
    sn->present = true;
    sn->e.obj = obj_ref(e->obj);
    sn->e.lb_name = e->lb_name ? mem_strdup(e->lb_name) : NULL;
    sn->e.lb_class = e->lb_class ? mem_strdup(e->lb_class) : NULL;
    sn->e.synced = svc_nodes_ref(e->synced);
  }
  pthread_mutex_unlock(&c->lock);
}

static void svc_snap_free(struct svc_snap *sn)
{
  obj_unref(sn->e.obj);
  mem_free(sn->e.lb_name);
  mem_free(sn->e.lb_class);
  svc_nodes_unref(sn->e.synced);
}

/* Cache obj under key (replacing the previous object); -1 on OOM. */
static int svc_cache_obj(struct svc_ctrl *c, const char *key,
                         struct obj_meta *obj, bool reset)
{
  struct svc_entry *e;
  struct obj_meta *old = NULL;
  struct svc_nodes *old_nodes = NULL;

  pthread_mutex_lock(&c->lock);
  e = svc_cache_put(&c->cache, key);
  if (e != NULL) {
    old = e->obj;
    e->obj = obj_ref(obj);
    if (reset) {
      svc_entry_set_str(&e->lb_name, NULL);
      svc_entry_set_str(&e->lb_class, NULL);
      old_nodes = e->synced;
      e->synced = NULL;
    }
  }
  pthread_mutex_unlock(&c->lock);
  obj_unref(old);
  svc_nodes_unref(old_nodes);
  return e != NULL ? 0 : -1;
}

static void svc_uncache(struct svc_ctrl *c, const char *key)
{
  pthread_mutex_lock(&c->lock);
  svc_cache_del(&c->cache, key);
  pthread_mutex_unlock(&c->lock);
}

/* The cached object had a load balancer (we recorded a name for it). */
static bool svc_snap_had_lb(const struct svc_snap *sn)
{
  const struct obj_service *old = obj_as_service(sn->e.obj);

  return old != NULL && sn->e.lb_name != NULL &&
         old->type == OBJ_SVC_LOAD_BALANCER;
}

void svc_sync(struct svc_ctrl *c, const char *key, struct svc_result *r)
{
  struct obj_meta *obj = NULL;
  const struct obj_service *s;
  struct svc_snap sn;
  struct svc_lb lb;
  enum svc_branch br;
  char flushed[CCM_SVC_FPRINT_HEX];
  const char *fresh_record = NULL;
  double t0 = svc_now_s();
  struct svc_cpu_mark cpu;

  svc_cpu_begin(&cpu);
  memset(r, 0, sizeof(*r));
  r->out = SVC_OUT_DONE;
  /* The last ensure's writes land before this sync reads or writes. */
  if (svc_tail_flush(c, key, flushed))
    fresh_record = flushed;
  svc_snap_take(c, key, &sn);
  if (strchr(key, '/') == NULL || key[0] == '/') {
    log_msg(CCM_LOG_ERROR, "service", "unexpected key format: \"%s\"", key);
    goto out;
  }
  obj = store_get_key(c->svc_store, key);
  s = obj_as_service(obj);
  if (s == NULL) {
    /* Gone from the informer: delete by the cached object, if it had a
     * load balancer, with the name recorded for it. */
    if (sn.present && svc_snap_had_lb(&sn)) {
      svc_delete_cached(c, obj_as_service(sn.e.obj), &sn.e, r);
      if (r->out != SVC_OUT_DONE)
        goto out;
    }
    svc_uncache(c, key);
    goto out;
  }
  if (sn.present && sn.e.obj != NULL && sn.e.obj->uid != NULL &&
      s->meta.uid != NULL && strcmp(sn.e.obj->uid, s->meta.uid) != 0) {
    /* Re-created under the same name: the old one's load balancer goes
     * first, by its own recorded name. */
    if (svc_snap_had_lb(&sn)) {
      svc_delete_cached(c, obj_as_service(sn.e.obj), &sn.e, r);
      if (r->out != SVC_OUT_DONE)
        goto out;
    }
    if (svc_cache_obj(c, key, obj, true) != 0) {
      svc_fail(r, NULL, "out of memory");
      goto out;
    }
    svc_snap_free(&sn);
    memset(&sn, 0, sizeof(sn));
  } else if (svc_cache_obj(c, key, obj, false) != 0) {
    svc_fail(r, NULL, "out of memory");
    goto out;
  }
  br = svc_branch_for(s, svc_class_served(c, s->lb_class));
  svc_lb_resolve(s, sn.present ? &sn.e : NULL, &lb);
  if (br == SVC_BRANCH_ENSURE && !sn.present &&
      svc_skip_unchanged(c, key, s, &lb, r))
    goto out;
  if (br == SVC_BRANCH_ENSURE)
    svc_ensure(c, key, s, &lb, fresh_record, r);
  else if (br == SVC_BRANCH_DELETE)
    svc_cleanup(c, s, &lb, r);
  if (r->out == SVC_OUT_PARKED)
    goto out;
  if (r->out != SVC_OUT_DONE) {
    svc_event(c, s, "Warning", "SyncLoadBalancerFailed",
              "Error syncing load balancer: %s", r->err);
    goto out;
  }
  if (br != SVC_BRANCH_ENSURE)
    svc_uncache(c, key);
out:
  if (r->out == SVC_OUT_DONE)
    atomic_fetch_add(&c->m.reconcile_ok, 1);
  else if (r->out != SVC_OUT_PARKED)
    atomic_fetch_add(&c->m.reconcile_error, 1);
  svc_hist_observe(&c->m.reconcile_latency, svc_now_s() - t0);
  obj_unref(obj);
  svc_snap_free(&sn);
  svc_cpu_end(&c->m, &cpu);
}

/* ---- nodeSyncService ---------------------------------------------- */

/* Store new as the entry's last synced set; returns the previous one. */
static struct svc_nodes *svc_swap_synced(struct svc_ctrl *c, const char *key,
                                         struct svc_nodes *nodes)
{
  struct svc_entry *e;
  struct svc_nodes *old = NULL;

  pthread_mutex_lock(&c->lock);
  e = svc_cache_get(&c->cache, key);
  if (e != NULL) {
    old = e->synced;
    e->synced = svc_nodes_ref(nodes);
  }
  pthread_mutex_unlock(&c->lock);
  return old;
}

void svc_sync_hosts(struct svc_ctrl *c, const char *key, struct svc_result *r)
{
  struct provider_ref ref = {0};
  struct svc_nodes *all = NULL, *nodes = NULL, *old = NULL;
  const struct obj_service *s;
  struct svc_input in;
  struct ccm_call call;
  struct svc_snap sn;
  struct svc_lb lb;
  double t0;
  int rc;
  struct svc_cpu_mark cpu;

  svc_cpu_begin(&cpu);
  memset(r, 0, sizeof(*r));
  memset(&in, 0, sizeof(in));
  r->out = SVC_OUT_DONE;
  svc_snap_take(c, key, &sn);
  s = obj_as_service(sn.e.obj);
  if (!sn.present || s == NULL || sn.e.lb_name == NULL) {
    r->out = SVC_OUT_REQUEUE; /* not synced yet: a full sync does it */
    goto out;
  }
  if (s->type != OBJ_SVC_LOAD_BALANCER || s->meta.deleting)
    goto out;
  if (!svc_leader(c, r))
    goto out;
  all = svc_ctrl_nodes(c);
  if (all == NULL) {
    svc_fail(r, NULL, "out of memory");
    goto out;
  }
  svc_lb_resolve(s, &sn.e, &lb);
  if (!svc_provider(c, s, &lb, false, &ref, r)) {
    r->out = SVC_OUT_REQUEUE;
    goto out;
  }
  if (svc_input_build(s, c->env.cluster_name, lb.name, lb.lb_class, &in)) {
    svc_fail(r, NULL, "out of memory");
    goto out;
  }
  rc = svc_policy_inputs(c, s, lb.lb_class, &ref, &in, r);
  if (rc == SVC_POLICY_ELSEWHERE) {
    r->out = SVC_OUT_DONE;
    goto out;
  }
  if (rc != SVC_POLICY_OK ||
      svc_policy_backends(c, s, lb.lb_class, &ref, all, &nodes, r) !=
          SVC_POLICY_OK) {
    r->out = SVC_OUT_REQUEUE; /* a full sync reports it */
    goto out;
  }
  old = svc_swap_synced(c, key, nodes);
  if (svc_nodes_same(old, nodes))
    goto out;
  atomic_fetch_add(&c->m.lb_sync_total, 1);
  t0 = svc_now_s();
  call_init(&call, c->env.call_timeout_ms);
  rc = prov_lb_update_hosts(&ref, &call, &in.svc, &nodes->list);
  svc_hist_observe(&c->m.update_hosts_latency, svc_now_s() - t0);
  if (rc != CCM_OK && rc != CCM_ERR_NOT_IMPLEMENTED) {
    struct ccm_lb_status st = {0};
    struct ccm_call gc;
    char names[1024];
    int grc;

    call_init(&gc, c->env.call_timeout_ms);
    grc = prov_lb_get(&ref, &gc, &in.svc, &st);
    lb_status_clear(&st);
    if (grc == CCM_ERR_NOT_FOUND)
      goto out; /* nothing to update: not an error (upstream) */
    svc_nodes_names(nodes, CCM_SVC_MAX_LOGGED_NODES, names, sizeof(names));
    atomic_fetch_add(&c->m.nodesync_errors, 1);
    svc_event(c, s, "Warning", "UpdateLoadBalancerFailed",
              "Error updating load balancer with new hosts %s [node names "
              "limited, total number of nodes: %zu], error: %s", names,
              nodes->n, call.error[0] ? call.error : ccm_status_name(rc));
    r->out = SVC_OUT_REQUEUE;
    snprintf(r->err, sizeof(r->err), "update hosts: %s",
             call.error[0] ? call.error : ccm_status_name(rc));
    goto out;
  }
  if (nodes->n == 0)
    svc_event(c, s, "Warning", "UnAvailableLoadBalancer",
              "There are no available nodes for LoadBalancer");
  else
    svc_event(c, s, "Normal", "UpdatedLoadBalancer",
              "Updated load balancer with new hosts");
out:
  svc_input_free(&in);
  registry_release(&ref);
  svc_nodes_unref(old);
  svc_nodes_unref(nodes);
  svc_nodes_unref(all);
  svc_snap_free(&sn);
  svc_cpu_end(&c->m, &cpu);
}
