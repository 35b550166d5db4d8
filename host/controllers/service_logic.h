/*
 * service_logic.h: the service controller's pure decisions (which
 * Services are ours, needsUpdate, backend-node predicates, the default
 * load-balancer name and its check, ingress comparison, the branch and
 * finalizer choices). No I/O, no locks, no allocation: unit-testable.
 */
#ifndef CCM_SERVICE_LOGIC_H
#define CCM_SERVICE_LOGIC_H

#include <stdbool.h>
#include <stddef.h>

#include "ccm_provider.h"
#include "kube/objects.h"
#include "modules/host_api.h"

#define CCM_SVC_FINALIZER "service.kubernetes.io/load-balancer-cleanup"
#define CCM_SVC_EXCLUDE_LABEL                                                \
  "node.kubernetes.io/exclude-from-external-load-balancers"
#define CCM_SVC_CA_TAINT "ToBeDeletedByClusterAutoscaler"
/* ccm-host's own records on the Service, written with the finalizer. */
#define CCM_SVC_ANNOTATION_PREFIX "ccmhost.io/load-balancer-"
#define CCM_SVC_NAME_ANNOTATION "ccmhost.io/load-balancer-name"
#define CCM_SVC_CLASS_ANNOTATION "ccmhost.io/load-balancer-class"
#define CCM_SVC_DEFAULT_NAME_LEN 32

/* What one sync of a Service does. */
enum svc_branch {
  SVC_BRANCH_NONE = 0,   /* not ours and nothing to clean: leave it alone */
  SVC_BRANCH_ENSURE = 1, /* create or update the load balancer */
  SVC_BRANCH_DELETE = 2  /* delete it, then drop the finalizer */
};

/* Go's strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False.
 * Returns 0 and *out, or -1 for anything else (including ""). */
int svc_parse_bool(const char *s, bool *out);

/* The exclusion label is absent or parses as false. */
bool svc_node_included(const struct obj_node *n);
/* The stable backend predicates: not being deleted, included, no
 * cluster-autoscaler deletion taint. Readiness is not considered. */
bool svc_node_is_backend(const struct obj_node *n);
/* A Node update that must trigger a node sync: the exclusion predicate
 * flips or spec.providerID changes. */
bool svc_node_update_triggers(const struct obj_node *old,
                              const struct obj_node *cur);

/* type LoadBalancer and its class served by a configured provider
 * (served: registry_for_service answered for s->lb_class). */
bool svc_wants_lb(const struct obj_service *s, bool served);
/* Has our finalizer and is being deleted or no longer a LoadBalancer. */
bool svc_needs_cleanup(const struct obj_service *s);
/* The informer's update rule (ccm-semantics 2.5); ccm-host's own
 * annotations (CCM_SVC_ANNOTATION_PREFIX) are not compared. */
bool svc_needs_update(const struct obj_service *old, bool old_served,
                      const struct obj_service *cur, bool cur_served);
/* Add handler / resync rule: wants an LB or needs cleanup. */
bool svc_should_enqueue(const struct obj_service *s, bool served);
enum svc_branch svc_branch_for(const struct obj_service *s, bool served);

/* "a" + UID without dashes, cut to 32 characters. Returns the length, or
 * -1 when uid is NULL/empty or buf is too small. */
int svc_default_lb_name(const char *uid, char *buf, size_t cap);
/* 0 when name obeys rules (NULL rules: any non-empty name); else -1 with
 * the reason in why. */
int svc_lb_name_check(const char *name, const struct ccm_name_rules *rules,
                      char *why, size_t cap);

/* Ingress equality as the status patch decides it: same length, and per
 * position the same ip and hostname (ipMode is the API server's default
 * and is not compared). */
bool svc_ingress_equal(const struct obj_ingress *cur, size_t n_cur,
                       const struct ccm_lb_status *next);

/* Finalizer choices. Add before the first provider call of an ensure
 * (also when the name record is missing); remove only after the provider
 * confirmed the load balancer gone. */
bool svc_finalizer_add_needed(const struct obj_service *s);
bool svc_finalizer_remove_allowed(int provider_delete_status);

#endif
