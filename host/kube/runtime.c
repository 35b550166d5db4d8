/*
 * runtime.c: wires the Kubernetes client, the elector and the Node and
 * Service informers together for run mode, in a fixed start and stop
 * order. It decides nothing about objects; controllers come on top.
 */
#include "kube/runtime.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "ccm_provider.h"
#include "kube/lease.h"
#include "util/log.h"
#include "util/mem.h"

#define CCM_RUNTIME_LOG "runtime"

struct runtime {
  struct kube_client *client;
  struct lease *lease;         /* NULL when leader election is disabled */
  struct informer *nodes;
  struct informer *services;
  struct registry *reg;

  /* Settings in use, copied: a reload must not change them. */
  char *kubeconfig;
  char *master;
  struct leader_config leader;
  char *lease_name;
  char *lease_namespace;

  atomic_bool stopping;        /* runtime_stop began: nobody leads */
  atomic_bool synced_logged;
  bool started;
  bool stopped;
};

static bool runtime_str_eq(const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

static char *runtime_dup(const char *s, bool *oom)
{
  char *d;

  if (s == NULL)
    return NULL;
  d = mem_strdup(s);
  if (d == NULL)
    *oom = true;
  return d;
}

/* Lease callbacks run on the lease thread (or in lease_stop): log only. */
static void runtime_started_leading(void *ud)
{
  struct runtime *rt = ud;

  log_msg(CCM_LOG_INFO, CCM_RUNTIME_LOG,
          "became leader as %s: mutating actions allowed",
          lease_identity(rt->lease));
}

static void runtime_stopped_leading(void *ud)
{
  struct runtime *rt = ud;

  if (atomic_load(&rt->stopping))
    log_msg(CCM_LOG_INFO, CCM_RUNTIME_LOG,
            "stopped leading as %s (shutting down)",
            lease_identity(rt->lease));
  else
    log_msg(CCM_LOG_WARN, CCM_RUNTIME_LOG,
            "lost leadership as %s: mutating actions stop; competing "
            "for the lease again", lease_identity(rt->lease));
}

static int runtime_new_informer(struct runtime *rt, const char *name,
                                enum obj_kind kind, const char *path,
                                struct informer **out)
{
  struct informer_config ic;
  struct informer_ops ops;

  memset(&ic, 0, sizeof ic);
  ic.name = name;
  ic.kind = kind;
  ic.path = path;
  informer_ops_from_client(rt->client, &ops);
  return informer_new(&ic, &ops, out);
}

static int runtime_new_lease(struct runtime *rt, char *err, size_t errlen)
{
  struct lease_opts lo;
  char why[512];

  memset(&lo, 0, sizeof lo);
  lo.name = rt->lease_name;
  lo.ns = rt->lease_namespace;
  lo.identity = NULL; /* "<hostname>_<uuid>", as upstream */
  lo.lease_ms = rt->leader.lease_duration_s * 1000u;
  lo.renew_ms = rt->leader.renew_deadline_s * 1000u;
  lo.retry_ms = rt->leader.retry_period_s * 1000u;
  lo.on_started_leading = runtime_started_leading;
  lo.on_stopped_leading = runtime_stopped_leading;
  lo.ud = rt;
  if (lease_new(rt->client, &lo, &rt->lease, why, sizeof why) != 0) {
    snprintf(err, errlen, "leader_election: %s", why);
    return -1;
  }
  return 0;
}

int runtime_new(const struct runtime_opts *o, struct runtime **out,
                char *err, size_t errlen)
{
  const struct host_config *cfg = o->cfg;
  struct kube_client_opts ko;
  struct runtime *rt;
  bool oom = false;

  *out = NULL;
  rt = mem_calloc(1, sizeof *rt);
  if (rt == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  rt->reg = o->reg;
  rt->leader = cfg->leader;
  rt->kubeconfig = runtime_dup(cfg->kubeconfig, &oom);
  rt->master = runtime_dup(cfg->master, &oom);
  rt->lease_name = runtime_dup(cfg->leader.lease_name, &oom);
  rt->lease_namespace = runtime_dup(cfg->leader.lease_namespace, &oom);
  rt->leader.lease_name = rt->lease_name;
  rt->leader.lease_namespace = rt->lease_namespace;
  if (oom) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }

  memset(&ko, 0, sizeof ko);
  ko.qps = o->cfg->kube_api_qps;
  ko.burst = o->cfg->kube_api_burst;
  ko.kubeconfig = rt->kubeconfig;
  ko.context = o->context;
  ko.master = rt->master;
  /* kube_client_new's error already names the file or setting. */
  if (kube_client_new(&ko, &rt->client, err, errlen) != 0)
    goto fail;

  if (rt->leader.enabled && runtime_new_lease(rt, err, errlen) != 0)
    goto fail;
  if (runtime_new_informer(rt, "nodes", OBJ_KIND_NODE,
                           CCM_RUNTIME_NODES_PATH, &rt->nodes) != 0 ||
      runtime_new_informer(rt, "services", OBJ_KIND_SERVICE,
                           CCM_RUNTIME_SERVICES_PATH, &rt->services) != 0) {
    snprintf(err, errlen, "cannot create the Node and Service informers");
    goto fail;
  }
  *out = rt;
  return 0;
fail:
  runtime_free(rt);
  return -1;
}

int runtime_start(struct runtime *rt, char *err, size_t errlen)
{
  if (rt->started) {
    snprintf(err, errlen, "already started");
    return -1;
  }
  if (informer_start(rt->nodes) != 0 || informer_start(rt->services) != 0) {
    snprintf(err, errlen, "cannot start the Node and Service informers");
    goto fail;
  }
  if (rt->lease == NULL) {
    log_msg(CCM_LOG_INFO, CCM_RUNTIME_LOG,
            "leader election disabled: this host acts as the leader");
  } else {
    log_msg(CCM_LOG_INFO, CCM_RUNTIME_LOG,
            "leader election on lease %s/%s as %s: not leader until the "
            "lease is acquired (lease %u s, renew deadline %u s, retry "
            "%u s)", rt->lease_namespace, rt->lease_name,
            lease_identity(rt->lease),
            (unsigned)rt->leader.lease_duration_s,
            (unsigned)rt->leader.renew_deadline_s,
            (unsigned)rt->leader.retry_period_s);
    if (lease_start(rt->lease) != 0) {
      snprintf(err, errlen, "cannot start the leader election thread");
      goto fail;
    }
  }
  rt->started = true;
  log_msg(CCM_LOG_INFO, CCM_RUNTIME_LOG,
          "informers started: nodes (%s), services (%s)",
          CCM_RUNTIME_NODES_PATH, CCM_RUNTIME_SERVICES_PATH);
  return 0;
fail:
  informer_stop(rt->nodes);
  informer_stop(rt->services);
  return -1;
}

bool runtime_poll_synced(struct runtime *rt)
{
  if (atomic_load(&rt->synced_logged))
    return true;
  if (!informer_has_synced(rt->nodes) || !informer_has_synced(rt->services))
    return false;
  if (!atomic_exchange(&rt->synced_logged, true))
    log_msg(CCM_LOG_INFO, CCM_RUNTIME_LOG,
            "informers synced: %zu node(s), %zu service(s)",
            store_len(informer_store(rt->nodes)),
            store_len(informer_store(rt->services)));
  return true;
}

bool runtime_wait_synced(struct runtime *rt, uint32_t timeout_ms)
{
  return informer_wait_synced(rt->nodes, timeout_ms) &&
         informer_wait_synced(rt->services, timeout_ms);
}

bool runtime_is_leader(const struct runtime *rt)
{
  if (rt == NULL || atomic_load(&rt->stopping))
    return false;
  if (rt->lease == NULL)
    return true;
  return lease_is_leader(rt->lease);
}

bool runtime_is_ready(struct runtime *rt, char *why, size_t cap)
{
  struct provider_ref ref;
  bool nodes, services;

  nodes = informer_has_synced(rt->nodes);
  services = informer_has_synced(rt->services);
  if (!nodes || !services) {
    if (why != NULL)
      snprintf(why, cap, "informers not synced:%s%s",
               nodes ? "" : " nodes", services ? "" : " services");
    return false;
  }
  if (rt->reg == NULL || registry_for_nodes(rt->reg, &ref) != CCM_OK) {
    if (why != NULL)
      snprintf(why, cap, "no default provider loaded");
    return false;
  }
  registry_release(&ref);
  return true;
}

bool runtime_settings_changed(const struct runtime *rt,
                              const struct host_config *cfg)
{
  const struct leader_config *a = &rt->leader, *b = &cfg->leader;

  return !runtime_str_eq(rt->kubeconfig, cfg->kubeconfig) ||
         !runtime_str_eq(rt->master, cfg->master) ||
         a->enabled != b->enabled ||
         !runtime_str_eq(a->lease_name, b->lease_name) ||
         !runtime_str_eq(a->lease_namespace, b->lease_namespace) ||
         a->lease_duration_s != b->lease_duration_s ||
         a->renew_deadline_s != b->renew_deadline_s ||
         a->retry_period_s != b->retry_period_s;
}

struct kube_client *runtime_client(struct runtime *rt)
{
  return rt->client;
}

struct informer *runtime_nodes(struct runtime *rt)
{
  return rt->nodes;
}

struct informer *runtime_services(struct runtime *rt)
{
  return rt->services;
}

const char *runtime_identity(const struct runtime *rt)
{
  return rt->lease != NULL ? lease_identity(rt->lease) : NULL;
}

void runtime_stop(struct runtime *rt)
{
  if (rt == NULL || rt->stopped)
    return;
  rt->stopped = true;
  atomic_store(&rt->stopping, true);
  /* Informers first: nothing new arrives while the lease is released. */
  informer_stop(rt->nodes);
  informer_stop(rt->services);
  if (rt->lease != NULL)
    lease_stop(rt->lease, true);
}

void runtime_free(struct runtime *rt)
{
  if (rt == NULL)
    return;
  runtime_stop(rt);
  informer_free(rt->nodes);
  informer_free(rt->services);
  lease_free(rt->lease);
  kube_client_free(rt->client);
  mem_free(rt->kubeconfig);
  mem_free(rt->master);
  mem_free(rt->lease_name);
  mem_free(rt->lease_namespace);
  mem_free(rt);
}
