/*
 * manager.h: the set of cloud controllers ccm-host runs: which are enabled
 * (host.cfg controllers), their environments (one Event recorder each, with
 * the upstream source component), start and stop order, and their metrics.
 * It must not reconcile anything itself.
 */
#ifndef CCM_CONTROLLER_MANAGER_H
#define CCM_CONTROLLER_MANAGER_H

#include <stddef.h>
#include <stdio.h>

#include "config/config.h"
#include "kube/runtime.h"
#include "modules/registry.h"

struct ctrl_manager;
struct policy_engine;

/* Create every enabled controller (they add their informer handlers, so
 * call this between runtime_new and runtime_start). Returns 0, or -1 with
 * one line in err naming the controller that failed; nothing is left. */
int ctrl_manager_new(const struct host_config *cfg, struct runtime *rt,
                     struct registry *reg, struct policy_engine *policy,
                     struct ctrl_manager **out, char *err, size_t errlen);

/* Start the workers and loops (after runtime_start). */
int ctrl_manager_start(struct ctrl_manager *m, char *err, size_t errlen);

/* Stop every controller: in-flight reconciles finish (each controller
 * bounds its own drain), queued Events are sent. Idempotent. */
void ctrl_manager_stop(struct ctrl_manager *m);
void ctrl_manager_free(struct ctrl_manager *m);

/* Prometheus text of every controller and its Event recorder. */
void ctrl_manager_metrics(FILE *out, void *m);

/* The Event source component upstream uses for a controller ("service" ->
 * "service-controller"), or NULL for an unknown name. */
const char *ctrl_event_component(const char *controller_name);

/* "service, node, node-lifecycle" */
void ctrl_manager_describe(const struct ctrl_manager *m, char *out,
                           size_t cap);

#endif
