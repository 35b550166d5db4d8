/*
 * service_int.h: what the service controller's files share: the
 * controller state, the provider-input builder, the Kubernetes writes and
 * the sync passes. Private to host/controllers/service*.c; the only
 * public symbol is service_controller_ops (service.h).
 */
#ifndef CCM_SERVICE_INT_H
#define CCM_SERVICE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "controllers/controller.h"
#include "controllers/service_cache.h"
#include "controllers/service_fprint.h"
#include "controllers/service_metrics.h"
#include "controllers/service_nodes.h"
#include "controllers/workqueue.h"
#include "kube/objects.h"
#include "policy/policy.h"

#define CCM_SVC_BASE_DELAY_MS 5000u
#define CCM_SVC_MAX_DELAY_MS 300000u
/* Upstream's node-sync period; host.cfg service_node_sync_period_s. */
#define CCM_SVC_NODE_SYNC_PERIOD_MS 100000u
#define CCM_SVC_MAX_LOGGED_NODES 20u
#define CCM_SVC_ERR_MAX 768
#define CCM_SVC_SYNC_POLL_MS 200u /* re-check stop while caches list */
#define CCM_SVC_TAIL_MAX 64u      /* ensure tails waiting for the writer */
#define CCM_SVC_TAIL_LINGER_MS 5u /* writer's poll while tails flow */
#define CCM_SVC_TAIL_LINGER_ROUNDS 200u /* quiet polls before it sleeps */

struct svc_ctrl {
  struct ctrl_env env;         /* copied; pointers owned by the host */
  struct workqueue *q;
  struct store *svc_store;
  struct store *node_store;
  pthread_mutex_t lock;        /* cache, nodes, flags below */
  pthread_cond_t cond;         /* wakes the node-sync thread */
  struct svc_cache cache;
  struct svc_nodes *nodes;     /* current backend snapshot, or NULL */
  bool nodes_stale;            /* a Node event since it was built */
  bool node_dirty;             /* a node sync is due */
  bool parked;                 /* keys were set aside while not leader */
  bool stopping;
  uint32_t node_sync_period_ms;
  pthread_t *workers;
  uint32_t n_workers;
  uint32_t n_started;
  pthread_t bg;
  bool bg_started;
  /* ensure tails (service_tail.c), under tail_lock */
  pthread_mutex_t tail_lock;
  pthread_cond_t tail_wake;    /* the writer: a tail or stop */
  pthread_cond_t tail_idle;    /* a flush: the tail it waits for is done */
  struct svc_tail *tail_head, *tail_last;
  size_t n_tails;
  bool tail_stopping;
  bool tail_sleeping;          /* the writer waits without a timeout */
  bool tail_started;
  bool tail_wanted;            /* host.cfg service_status_writer */
  pthread_t tail_thread;
  struct svc_metrics m;
};

/* What a worker does with the key after a pass. */
enum svc_outcome {
  SVC_OUT_DONE = 0,       /* success (or nothing to do): forget */
  SVC_OUT_FAILED,         /* back off (5 s doubling to 300 s) */
  SVC_OUT_RETRY_AFTER,    /* the provider's fixed delay */
  SVC_OUT_REQUEUE,        /* plain add, full sync next (failed node sync) */
  SVC_OUT_PARKED,         /* not the leader: nothing done */
  SVC_OUT_PERMANENT       /* cannot be served as is: forget, no retry */
};

struct svc_result {
  enum svc_outcome out;
  uint32_t retry_after_ms;
  char err[CCM_SVC_ERR_MAX];
};

/* ---- provider input (service_input.c) ---- */
struct svc_input {
  struct ccm_service svc;
  struct ccm_service_port *ports;
  const struct ccm_service_port **port_ptrs;
  uint32_t *families;
  struct policy_options *opts; /* svc.options, from the policies */
  struct policy_kvs *tags;     /* svc.tags, from the policies */
};
int svc_input_build(const struct obj_service *s, const char *cluster,
                    const char *lb_name, const char *lb_class,
                    struct svc_input *in);
void svc_input_free(struct svc_input *in);

/* ---- policies (service_policy.c) ---- */
enum { SVC_POLICY_OK = 0, SVC_POLICY_ELSEWHERE = 1, SVC_POLICY_FAILED = -1 };
/* The load-balancer name for a Service that has none recorded. */
int svc_policy_name(struct svc_ctrl *c, const struct obj_service *s,
                    const char *lb_class, const struct provider_ref *ref,
                    char *name, size_t cap, struct svc_result *r);
/* Provider options and resource tags into in->svc; SVC_POLICY_ELSEWHERE
 * when a policy hands the Service to another controller. */
int svc_policy_inputs(struct svc_ctrl *c, const struct obj_service *s,
                      const char *lb_class, const struct provider_ref *ref,
                      struct svc_input *in, struct svc_result *r);
/* The backends of this Service: all, or the policies' subset of it. */
int svc_policy_backends(struct svc_ctrl *c, const struct obj_service *s,
                        const char *lb_class, const struct provider_ref *ref,
                        struct svc_nodes *all, struct svc_nodes **out,
                        struct svc_result *r);

/* ---- Kubernetes side (service_kube.c) ---- */
void svc_event(struct svc_ctrl *c, const struct obj_service *s,
               const char *type, const char *reason, const char *fmt, ...)
    CCM_PRINTF(5, 6);
/* One PUT: the finalizer plus the name (and class) records; drop_inputs
 * also removes a stale input fingerprint. Fails with KUBE_NOT_FOUND when
 * the object now has another UID. */
int svc_kube_record(struct svc_ctrl *c, const struct obj_service *s,
                    const char *lb_name, const char *lb_class,
                    bool drop_inputs, char *msg, size_t msglen);
/* Set the input fingerprint annotation (UID-guarded PUT; no write when it
 * already holds inputs; gone = OK). */
int svc_kube_record_inputs(struct svc_ctrl *c, const struct obj_service *s,
                           const char *inputs, char *msg, size_t msglen);
/* Remove the finalizer from the object with s's UID (gone = OK). */
int svc_kube_finalizer_remove(struct svc_ctrl *c, const struct obj_service *s,
                              char *msg, size_t msglen);
/* Merge-patch status.loadBalancer.ingress (st NULL: clear). Not found is
 * OK. */
int svc_kube_patch_status(struct svc_ctrl *c, const struct obj_service *s,
                          const struct ccm_lb_status *st, char *msg,
                          size_t msglen);
/* The writes that end a successful ensure: the status (patch_status) and
 * the input fingerprint (inputs non-NULL), in one patch of the status
 * subresource when both are due. A failure is the status write's (msg);
 * a fingerprint that does not land is logged and only loses a restart's
 * skip. *recorded: the fingerprint landed. Gone is OK. */
int svc_kube_ensured(struct svc_ctrl *c, const struct obj_service *s,
                     const struct ccm_lb_status *st, bool patch_status,
                     const char *inputs, bool *recorded, char *msg,
                     size_t msglen);

/* ---- ensure tails (service_tail.c) ---- */
/* The writer thread; stop drains what is queued. */
int svc_tail_start(struct svc_ctrl *c);
void svc_tail_stop(struct svc_ctrl *c);
/* Hand the writes that end an ensure to the writer: the status patch
 * (when patch_status; *st is moved) and then the fingerprint fp (NULL:
 * none). False when the worker must write them itself (queue full,
 * stopping, out of memory); *st is then untouched. */
bool svc_tail_queue(struct svc_ctrl *c, const char *key,
                    const struct obj_service *s, struct ccm_lb_status *st,
                    bool patch_status, const char *fp);
/* Before a sync of key: finish its tail, if any. True when that tail
 * recorded a fingerprint (copied to fp), which the cache may not show
 * yet. */
bool svc_tail_flush(struct svc_ctrl *c, const char *key,
                    char fp[CCM_SVC_FPRINT_HEX]);

/* ---- passes (service_sync.c) ---- */
/* The current backend snapshot (one reference), rebuilt after Node
 * events; NULL on out of memory. */
struct svc_nodes *svc_ctrl_nodes(struct svc_ctrl *c);
bool svc_class_served(struct svc_ctrl *c, const char *lb_class);
/* A tail write failed: a full sync of key after the backoff delay. */
void svc_requeue_failed(struct svc_ctrl *c, const char *key);
/* syncService(key) and nodeSyncService(key). */
void svc_sync(struct svc_ctrl *c, const char *key, struct svc_result *r);
void svc_sync_hosts(struct svc_ctrl *c, const char *key,
                    struct svc_result *r);

#endif
