/*
 * runtime.h: ccm-host's Kubernetes side in run mode: the client, leader
 * election and the Node and Service informers, their start and stop order,
 * and the leader and readiness answers the controllers and /readyz ask.
 * It must not reconcile anything or parse host.cfg; main.c owns signals.
 */
#ifndef CCM_KUBE_RUNTIME_H
#define CCM_KUBE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "kube/client.h"
#include "kube/informer.h"
#include "modules/registry.h"

#define CCM_RUNTIME_NODES_PATH "/api/v1/nodes"
#define CCM_RUNTIME_SERVICES_PATH "/api/v1/services"

struct runtime_opts {
  /* kubeconfig, master and leader_election are copied: they are read at
   * start only (runtime_settings_changed tells a reload about changes). */
  const struct host_config *cfg;
  const char *context;   /* --context; NULL: the current-context */
  struct registry *reg;  /* for readiness; not owned, must outlive rt */
};

struct runtime;

/* Resolve the connection, create the client (it logs the server URL,
 * never a credential), the elector (when enabled) and both informers.
 * Nothing runs yet: controllers add informer handlers between this and
 * runtime_start. On failure returns -1 with one line in err naming the
 * file or setting at fault. */
int runtime_new(const struct runtime_opts *o, struct runtime **out,
                char *err, size_t errlen);

/* Start the informers (on every replica: the caches are read-only) and
 * the elector. Returns 0, or -1 with err (nothing left running). */
int runtime_start(struct runtime *rt, char *err, size_t errlen);

/* True once both informers have listed; the first call that sees it logs
 * the object counts. Cheap; main calls it until it turns true. */
bool runtime_poll_synced(struct runtime *rt);
/* Wait up to timeout_ms for both informers to have listed (upstream's
 * WaitForCacheSync before workers start); true once they have. */
bool runtime_wait_synced(struct runtime *rt, uint32_t timeout_ms);

/* Mutating actions are allowed: leader election disabled, or this host
 * holds the Lease within its renew deadline. False once runtime_stop
 * began. Lock-free; call it before every mutating action. */
bool runtime_is_leader(const struct runtime *rt);

/* For /readyz: both informers synced and the default provider loaded.
 * When not ready and why is non-NULL, one line there says what is
 * missing. */
bool runtime_is_ready(struct runtime *rt, char *why, size_t cap);

/* True when cfg's kubeconfig, master or leader_election differ from the
 * values in use (a reload cannot apply them). */
bool runtime_settings_changed(const struct runtime *rt,
                              const struct host_config *cfg);

struct kube_client *runtime_client(struct runtime *rt);
struct informer *runtime_nodes(struct runtime *rt);
struct informer *runtime_services(struct runtime *rt);
/* The elector's identity, or NULL when leader election is disabled. */
const char *runtime_identity(const struct runtime *rt);

/* Graceful stop: informers first, then the elector releases the Lease
 * (holderIdentity "") so a standby takes over at once. Idempotent. */
void runtime_stop(struct runtime *rt);
/* Stops if needed, then frees the informers, elector and client. */
void runtime_free(struct runtime *rt);

#endif
