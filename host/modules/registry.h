/*
 * registry.h: the providers the host serves, each as a chain of generations.
 * Every call takes a reference on the generation that serves it; a swap
 * loads and initialises the next generation beside the current one,
 * publishes it atomically, drains the old one within a deadline, then
 * destroys and dlcloses it. A failure before publishing changes nothing.
 * It must not parse config files or talk to Kubernetes.
 */
#ifndef CCM_REGISTRY_H
#define CCM_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ccm_provider.h"
#include "config/config.h"
#include "modules/host_api.h"
#include "modules/loader.h"

struct generation {
  uint64_t number;             /* 1, 2, ... per provider slot */
  struct module *mod;
  struct ccm_host *host;
  void *instance;              /* from init */
  atomic_long refs;            /* in-flight calls */
  pthread_mutex_t serial;      /* held per call when CCM_THREAD_SERIAL */
  char config_hash[CCM_HASH_HEX];
  struct host_config *config;  /* held while the module may read it */
  struct provider_slot *slot;
};

struct registry;

/* A reference on one generation, taken for one or more calls. */
struct provider_ref {
  struct generation *gen;
};

struct registry_stats {
  uint64_t swaps;          /* successful swaps, all providers */
  uint64_t failed_swaps;   /* swaps that failed before publishing */
  uint64_t generations_destroyed;
  uint64_t drain_timeouts; /* old generations that missed the deadline */
  uint64_t live_generations; /* current + draining */
};

struct registry *registry_new(const char *state_dir, uint32_t drain_timeout_ms);
/* Drain and destroy every generation (waits for in-flight calls). */
void registry_free(struct registry *reg);

/* Bring the registry in line with cfg: load new providers, swap those whose
 * module hash or config hash changed, remove those no longer listed. All or
 * nothing: when anything fails, nothing is published and err says why. */
int registry_apply(struct registry *reg, const struct host_config *cfg,
                   char *err, size_t errlen);

/* Swap one provider to a module file (the same path rebuilt, or another
 * provider's module). Used by registry_apply and by tests. */
int registry_swap(struct registry *reg, const struct provider_config *pc,
                  char *err, size_t errlen);

/* Lookups for the controllers. for_service: lb_class NULL -> the default
 * provider; a configured class -> that provider; any other class ->
 * CCM_ERR_NOT_FOUND (the Service is not ours). On CCM_OK the caller holds
 * a reference and must registry_release it. */
int registry_acquire(struct registry *reg, const char *provider_name,
                     struct provider_ref *ref);
int registry_for_service(struct registry *reg, const char *lb_class,
                         struct provider_ref *ref);
int registry_for_nodes(struct registry *reg, struct provider_ref *ref);
void registry_release(struct provider_ref *ref);
/* The configured name of the provider ref holds ("lab", "prod-aws"); valid
 * while the reference is held. */
const char *registry_ref_name(const struct provider_ref *ref);

void registry_get_stats(struct registry *reg, struct registry_stats *out);
/* Prometheus text: generation per provider, swaps, failed swaps. */
void registry_metrics_write(struct registry *reg, FILE *out);
/* One line per provider for /readyz detail and logs. */
void registry_describe(struct registry *reg, FILE *out);

/* ---- provider calls --------------------------------------------------
 * Each wrapper checks that the generation's module has the operation
 * (else CCM_ERR_NOT_IMPLEMENTED without calling it), serialises when the
 * module is CCM_THREAD_SERIAL, maps any status outside the enum to
 * CCM_ERR_INTERNAL (and logs it), and clears the outputs on failure.
 */
/* CPU the calling thread has spent inside provider modules, in ns, since
 * it started: callers take differences to tell the host's CPU from the
 * modules'. */
uint64_t prov_thread_call_cpu_ns(void);
int prov_lb_get(struct provider_ref *ref, struct ccm_call *call,
                const struct ccm_service *svc, struct ccm_lb_status *out);
int prov_lb_ensure(struct provider_ref *ref, struct ccm_call *call,
                   const struct ccm_service *svc,
                   const struct ccm_node_list *nodes,
                   struct ccm_lb_status *out);
int prov_lb_update_hosts(struct provider_ref *ref, struct ccm_call *call,
                         const struct ccm_service *svc,
                         const struct ccm_node_list *nodes);
int prov_lb_delete(struct provider_ref *ref, struct ccm_call *call,
                   const struct ccm_service *svc);
int prov_instance_exists(struct provider_ref *ref, struct ccm_call *call,
                         const struct ccm_node *node, bool *exists);
int prov_instance_shutdown(struct provider_ref *ref, struct ccm_call *call,
                           const struct ccm_node *node, bool *shutdown);
int prov_instance_metadata(struct provider_ref *ref, struct ccm_call *call,
                           const struct ccm_node *node,
                           struct ccm_instance_meta *out);
/* Uses the module's batch operation when present, else one call per node. */
int prov_instance_metadata_batch(struct provider_ref *ref,
                                 struct ccm_call *call,
                                 const struct ccm_node *const *nodes,
                                 size_t n, struct ccm_instance_meta *const *out,
                                 int *status);
int prov_route_list(struct provider_ref *ref, struct ccm_call *call,
                    const char *cluster, struct ccm_route_list *out);
int prov_route_create(struct provider_ref *ref, struct ccm_call *call,
                      const char *cluster, const char *name_hint,
                      const struct ccm_route *route);
int prov_route_delete(struct provider_ref *ref, struct ccm_call *call,
                      const char *cluster, const struct ccm_route *route);

/* True when status is one of enum ccm_status. */
bool ccm_status_valid(int status);
const char *ccm_status_name(int status);

#endif
