/*
 * manager.c: creates, starts and stops the enabled cloud controllers, each
 * with its own Event recorder named as upstream names its source. It owns
 * the recorders; the controllers own their queues and workers.
 */
#include "controllers/manager.h"

#include <string.h>
#include <unistd.h>

#include "controllers/controller.h"
#include "controllers/node.h"
#include "controllers/nodelifecycle.h"
#include "controllers/route.h"
#include "controllers/service.h"
#include "kube/events.h"
#include "util/log.h"
#include "util/mem.h"

#define LOG_PREFIX "controllers"

/* Upstream's Event source components (ccm-semantics.md section 0). */
struct ctrl_kind {
  uint32_t flag;                   /* CCM_CTRL_* */
  const struct controller_ops *ops;
  const char *component;
};

static const struct ctrl_kind ctrl_kinds[] = {
  {CCM_CTRL_SERVICE, &service_controller_ops, "service-controller"},
  {CCM_CTRL_NODE, &node_controller_ops, "cloud-node-controller"},
  {CCM_CTRL_NODE_LIFECYCLE, &node_lifecycle_controller_ops,
   "cloud-node-lifecycle-controller"},
  {CCM_CTRL_ROUTE, &route_controller_ops, "route_controller"},
};
#define CTRL_N (sizeof ctrl_kinds / sizeof ctrl_kinds[0])

struct ctrl_slot {
  const struct ctrl_kind *kind;
  struct ctrl_env env;
  struct kube_events *events;
  void *state;
  bool started;
};

struct ctrl_manager {
  struct ctrl_slot slots[CTRL_N];
  size_t n;
  bool stopped;
  struct host_config *cfg; /* held: the controllers read it until freed */
};

const char *ctrl_event_component(const char *controller_name)
{
  for (size_t i = 0; i < CTRL_N; i++) {
    if (strcmp(ctrl_kinds[i].ops->name, controller_name) == 0)
      return ctrl_kinds[i].component;
  }
  return NULL;
}

static uint32_t ctrl_workers(const struct host_config *cfg, uint32_t flag)
{
  if (flag == CCM_CTRL_SERVICE)
    return cfg->service_workers;
  if (flag == CCM_CTRL_NODE)
    return cfg->node_workers;
  return 1;
}

/* The default provider's call timeout bounds every provider call. */
static uint32_t ctrl_call_timeout(const struct host_config *cfg)
{
  const struct provider_config *pc = config_provider_default(cfg);

  return pc != NULL ? pc->call_timeout_ms : 30000;
}

int ctrl_manager_new(const struct host_config *cfg, struct runtime *rt,
                     struct registry *reg, struct policy_engine *policy,
                     struct ctrl_manager **out, char *err, size_t errlen)
{
  struct ctrl_manager *m = mem_calloc(1, sizeof *m);
  char hostname[256] = "";

  *out = NULL;
  if (m == NULL) {
    snprintf(err, errlen, "controllers: out of memory");
    return -1;
  }
  /* A reload replaces and frees the running config; the controllers keep
   * pointers into this one (cluster_name, periods) for their lifetime. */
  m->cfg = (struct host_config *)cfg;
  config_hold(m->cfg);
  gethostname(hostname, sizeof hostname - 1);
  for (size_t i = 0; i < CTRL_N; i++) {
    const struct ctrl_kind *k = &ctrl_kinds[i];
    struct ctrl_slot *s;
    struct kube_events_opts eo;
    char why[512] = "";

    if ((cfg->controllers & k->flag) == 0)
      continue;
    s = &m->slots[m->n];
    s->kind = k;
    memset(&eo, 0, sizeof eo);
    eo.component = k->component;
    eo.host = hostname[0] != '\0' ? hostname : NULL;
    if (kube_events_new(runtime_client(rt), &eo, &s->events, why,
                        sizeof why) != 0) {
      snprintf(err, errlen, "controller %s: Event recorder: %s",
               k->ops->name, why);
      goto fail;
    }
    s->env.cluster_name = cfg->cluster_name;
    s->env.rt = rt;
    s->env.reg = reg;
    s->env.policy = policy;
    s->env.events = s->events;
    s->env.workers = ctrl_workers(cfg, k->flag);
    s->env.call_timeout_ms = ctrl_call_timeout(cfg);
    s->env.cfg = cfg;
    if (k->ops->create(&s->env, &s->state, why, sizeof why) != 0) {
      snprintf(err, errlen, "controller %s: %s", k->ops->name, why);
      kube_events_free(s->events);
      s->events = NULL;
      goto fail;
    }
    m->n++;
  }
  *out = m;
  return 0;
fail:
  ctrl_manager_free(m);
  return -1;
}

int ctrl_manager_start(struct ctrl_manager *m, char *err, size_t errlen)
{
  for (size_t i = 0; i < m->n; i++) {
    struct ctrl_slot *s = &m->slots[i];

    if (s->kind->ops->start(s->state) != 0) {
      snprintf(err, errlen, "controller %s: cannot start",
               s->kind->ops->name);
      return -1;
    }
    s->started = true;
    log_msg(CCM_LOG_INFO, LOG_PREFIX, "%s controller started (%u "
            "worker(s))", s->kind->ops->name, (unsigned)s->env.workers);
  }
  return 0;
}

void ctrl_manager_stop(struct ctrl_manager *m)
{
  if (m == NULL || m->stopped)
    return;
  m->stopped = true;
  /* Reverse order: nothing a later controller depends on goes first. */
  for (size_t i = m->n; i-- > 0;) {
    struct ctrl_slot *s = &m->slots[i];

    if (s->started)
      s->kind->ops->stop(s->state);
  }
  for (size_t i = 0; i < m->n; i++)
    kube_events_flush(m->slots[i].events);
}

void ctrl_manager_free(struct ctrl_manager *m)
{
  if (m == NULL)
    return;
  ctrl_manager_stop(m);
  for (size_t i = 0; i < m->n; i++) {
    struct ctrl_slot *s = &m->slots[i];

    s->kind->ops->destroy(s->state);
    kube_events_free(s->events);
  }
  if (m->cfg != NULL)
    config_free(m->cfg);
  mem_free(m);
}

void ctrl_manager_metrics(FILE *out, void *ud)
{
  struct ctrl_manager *m = ud;

  for (size_t i = 0; i < m->n; i++) {
    struct ctrl_slot *s = &m->slots[i];
    struct kube_events_stats st;

    if (s->kind->ops->metrics != NULL)
      s->kind->ops->metrics(s->state, out);
    kube_events_get_stats(s->events, &st);
    fprintf(out, "ccm_events_emitted_total{component=\"%s\"} %llu\n",
            s->kind->component, (unsigned long long)st.emitted);
    fprintf(out, "ccm_events_dropped_total{component=\"%s\"} %llu\n",
            s->kind->component,
            (unsigned long long)(st.dropped_queue + st.dropped_spam));
  }
}

void ctrl_manager_describe(const struct ctrl_manager *m, char *out,
                           size_t cap)
{
  size_t used = 0;

  out[0] = '\0';
  for (size_t i = 0; i < m->n && used < cap; i++) {
    int n = snprintf(out + used, cap - used, "%s%s", i ? ", " : "",
                     m->slots[i].kind->ops->name);
    if (n < 0)
      break;
    used += (size_t)n;
  }
}
