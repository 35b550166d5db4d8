/*
 * node_internal.h: what the node controller's files (node.c, node_sync.c,
 * node_status.c, node_view.c, node_metrics.c) and the lifecycle controller
 * share. Not a public interface: only these files include it.
 */
#ifndef CCM_NODE_INTERNAL_H
#define CCM_NODE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "controllers/controller.h"
#include "controllers/node_logic.h"
#include "controllers/workqueue.h"
#include "kube/objects.h"
#include "modules/host_api.h"

#define CCM_NODE_LOG "node-controller"
#define CCM_NODE_BATCH_MAX 64      /* nodes per batched metadata call */
#define CCM_NODE_QUEUE_BASE_MS 5   /* client-go default per-item limiter */
#define CCM_NODE_QUEUE_MAX_MS 1000000
#define CCM_NODE_HISTO_BUCKETS 6

/* A Prometheus histogram with fixed upper bounds. */
struct node_histo {
  pthread_mutex_t lock;
  double bounds[CCM_NODE_HISTO_BUCKETS];
  uint64_t counts[CCM_NODE_HISTO_BUCKETS];
  uint64_t count;
  double sum;
};

/* buckets: start, start*factor, ... (upstream ExponentialBuckets). */
void node_histo_init(struct node_histo *h, double start, double factor);
void node_histo_destroy(struct node_histo *h);
void node_histo_observe(struct node_histo *h, double v);
void node_histo_write(struct node_histo *h, FILE *out, const char *name,
                      const char *help);

/* A ccm_node built over a cached obj_node (strings borrowed: keep the
 * obj_node referenced while the view is used). */
struct node_view {
  struct ccm_node node;
  struct ccm_node_address *addr;
  const struct ccm_node_address **addr_ptr;
  struct ccm_kv *kv;
  const struct ccm_kv **kv_ptr;
};

int node_view_init(struct node_view *v, const struct obj_node *n);
void node_view_clear(struct node_view *v);

/* Addresses of a cached Node / of metadata as node_addr arrays (strings
 * borrowed). Unknown types are skipped. *out is mem_alloc'ed (free with
 * mem_free; NULL when n is 0). -1 on out of memory. */
int node_addrs_from_obj(const struct obj_node *n, struct node_addr **out,
                        size_t *count);
int node_addrs_from_meta(const struct ccm_instance_meta *m,
                         struct node_addr **out, size_t *count);

/* The Event reference of a Node. */
void node_event_ref(const struct obj_node *n, struct kube_object_ref *ref);

struct node_ctrl {
  struct ctrl_env env;
  struct kube_client *kc;
  struct informer *inf;
  struct store *store;
  struct kube_events *events;  /* component cloud-node-controller */
  struct workqueue *q;
  uint32_t batch_max;
  uint32_t status_period_s;

  /* keys taken from q by the collector, handed to workers in batches */
  pthread_mutex_t lock;
  pthread_cond_t have_keys;   /* held list non-empty or collector done */
  pthread_cond_t have_room;   /* held list below its cap */
  pthread_cond_t wake;        /* the status loop's sleep */
  char **held;                /* FIFO ring of keys held from q */
  size_t held_head, held_len, held_cap;
  bool collector_done;
  bool stopping;
  bool started;

  pthread_t collector;
  pthread_t *workers;
  uint32_t n_workers;
  pthread_t status_thread;
  bool was_leader;

  atomic_ulong initialized, init_errors, meta_errors, api_errors;
  atomic_ulong label_patches, address_patches, address_errors;
  atomic_ulong batch_calls, batch_nodes, single_batches, labels_dropped;
  atomic_ulong status_passes, not_leader_skips, init_already;
  struct node_histo taint_removal_delay;
  struct node_histo initial_sync_delay;
};

/* node_fetch.c: metadata for n cached Nodes in one batched call. metas
 * are zeroed by the caller and cleared by it (instance_meta_clear).
 * status[i] is each node's answer; a failed call sets every status to its
 * code and returns it, with err and, for a retry-after, *retry_after_ms. */
int node_fetch_metadata(struct node_ctrl *c,
                        const struct obj_node *const *nodes, size_t n,
                        struct ccm_instance_meta *metas, int *status,
                        uint32_t *retry_after_ms, char *err, size_t errlen);

/* node_sync.c: initialise one tainted Node from its metadata (section 3
 * steps 5-7). 0 on success; -1 with err (the key is requeued with
 * backoff, the taint stays). */
int node_sync_init(struct node_ctrl *c, const struct obj_node *n,
                   const struct ccm_instance_meta *m, char *err,
                   size_t errlen);
/* Section 3 step 2 for a Node without the taint. 0 or -1 with err. */
int node_sync_labels(struct node_ctrl *c, const struct obj_node *n,
                     char *err, size_t errlen);

/* node_status.c: updateNodeAddress (section 3.1) for one Node: skips
 * tainted nodes, patches status.addresses when they changed. 0 (written
 * or nothing to do) or -1 with err. */
int node_status_update(struct node_ctrl *c, const char *name,
                       const struct obj_node *n, bool tainted,
                       const struct ccm_instance_meta *m, char *err,
                       size_t errlen);
/* The periodic loop (leader transitions and the address refresh). */
void *node_status_main(void *arg);
/* One refresh pass over every initialised Node (tests call it too). */
void node_status_refresh_all(struct node_ctrl *c);

#endif
