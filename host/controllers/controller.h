/*
 * controller.h: what every cloud controller gets from the host and what
 * the host needs from it. The environment is shared and read-only; each
 * controller owns its queue, workers and metrics. Controllers check
 * runtime_is_leader() before every mutating action (Kubernetes write or
 * provider call that changes the cloud).
 */
#ifndef CCM_CONTROLLER_H
#define CCM_CONTROLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"
#include "kube/events.h"
#include "kube/runtime.h"
#include "modules/registry.h"
#include "policy/policy.h"

struct ctrl_env {
  const struct host_config *cfg; /* periods, cluster_cidr, ...; read-only,
                                  * the start-up config (these keys are read
                                  * at start only) */
  const char *cluster_name;     /* --cluster-name */
  struct runtime *rt;           /* client, informers, leader */
  struct registry *reg;         /* providers */
  struct kube_events *events;   /* Event recorder */
  struct policy_engine *policy; /* Lua policies; NULL = built-in defaults */
  uint32_t workers;             /* this controller's worker threads */
  uint32_t call_timeout_ms;     /* per provider call */
};

/* One controller: create adds informer handlers (between runtime_new and
 * runtime_start); start launches workers and periodic loops; stop drains
 * within the deadline; metrics writes Prometheus text. */
struct controller_ops {
  const char *name; /* "service", "node", "node-lifecycle", "route" */
  int (*create)(const struct ctrl_env *env, void **state, char *err,
                size_t errlen);
  int (*start)(void *state);
  void (*stop)(void *state);
  void (*destroy)(void *state);
  void (*metrics)(void *state, FILE *out);
};

#endif
