/*
 * service_fprint.h: the input fingerprint of a load balancer: a 128-bit
 * XXH3 hash over everything the provider's ensure gets (struct ccm_service and the
 * backend node list), recorded on the Service after a successful ensure so
 * that a restart can skip unchanged Services. It must not call providers,
 * Kubernetes or the controller's state.
 */
#ifndef CCM_SERVICE_FPRINT_H
#define CCM_SERVICE_FPRINT_H

#include "ccm_provider.h"

/* The annotation that holds the fingerprint of the last successful ensure
 * (under CCM_SVC_ANNOTATION_PREFIX, so not a needsUpdate trigger). */
#define CCM_SVC_INPUTS_ANNOTATION "ccmhost.io/load-balancer-inputs"

/* Fingerprint of svc and nodes (NULL: no nodes) as 32 lowercase hex
 * digits. A fast non-cryptographic hash is enough: the record only spares
 * an ensure whose inputs are unchanged, and whoever could craft a
 * colliding Service can as well write the annotation. Positional inputs
 * (ports, source ranges, families, a node's addresses) hash in order; sets and maps (the nodes by name, options by
 * name, tags and labels by key) hash sorted, so their order does not
 * matter. Every field is length-framed, NULL differs from "". 0, or -1 on
 * out of memory (out is then "").
 * Changing the encoding must change CCM_SVC_FPRINT_VERSION: a restart
 * after an upgrade then re-ensures once. */
#define CCM_SVC_FPRINT_VERSION "ccmhost-lb-inputs-v3"
#define CCM_SVC_FPRINT_HEX 33 /* 32 hex digits + NUL */
int svc_fprint(const struct ccm_service *svc,
               const struct ccm_node_list *nodes, char out[CCM_SVC_FPRINT_HEX]);

/* The two halves of svc_fprint, so that a node set shared by many
 * Services is hashed once: the digest of the nodes (NULL: no nodes), and
 * the fingerprint of svc with that digest. Same result as svc_fprint. */
int svc_fprint_nodes(const struct ccm_node_list *nodes,
                     char digest[CCM_SVC_FPRINT_HEX]);
int svc_fprint_digest(const struct ccm_service *svc,
                      const char digest[CCM_SVC_FPRINT_HEX],
                      char out[CCM_SVC_FPRINT_HEX]);

#endif
