/*
 * service_nodes.h: an immutable, reference-counted snapshot of the
 * backend nodes of every load balancer (the Node store filtered by the
 * stable predicates), as the provider input. It must not call providers
 * or write to Kubernetes.
 */
#ifndef CCM_SERVICE_NODES_H
#define CCM_SERVICE_NODES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "ccm_provider.h"
#include "controllers/service_fprint.h"
#include "kube/store.h"

struct svc_nodes {
  atomic_uint refs;
  size_t n;                     /* backend nodes, sorted by name */
  struct obj_meta **objs;       /* one reference each */
  struct ccm_node *nodes;
  const struct ccm_node **ptrs;
  struct ccm_node_address *addrs;
  const struct ccm_node_address **addr_ptrs;
  struct ccm_kv *labels;
  const struct ccm_kv **label_ptrs;
  struct ccm_node_list list;    /* what the provider gets */
  char digest[CCM_SVC_FPRINT_HEX];    /* svc_fprint_nodes(list) */
};

/* Build from the Node store; 0 or -1 on out of memory. */
int svc_nodes_build(struct store *nodes, struct svc_nodes **out);
/* The nodes of all with keep[i] set (a policy's backend_nodes answer);
 * all itself (one more reference) when every node is kept. */
int svc_nodes_subset(struct svc_nodes *all, const bool *keep,
                     struct svc_nodes **out);
struct svc_nodes *svc_nodes_ref(struct svc_nodes *s);
void svc_nodes_unref(struct svc_nodes *s);
/* Upstream's host-set comparison: same size and the same
 * name -> providerID map. NULL is the empty set. */
bool svc_nodes_same(const struct svc_nodes *a, const struct svc_nodes *b);
/* "[n1 n2 ... <K more>]" with at most max names, for Events. */
void svc_nodes_names(const struct svc_nodes *s, size_t max, char *buf,
                     size_t cap);

#endif
