/*
 * workqueue.h: the controllers' work queue (client-go's rate-limited
 * queue): keys are deduplicated, a key is never held by two workers at
 * once (a key added while being processed is re-queued when it is done),
 * failures back off per key exponentially, a provider's retry-after gets
 * its fixed delay, and shutdown drains. It knows keys, not objects.
 */
#ifndef CCM_WORKQUEUE_H
#define CCM_WORKQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wq_opts {
  const char *name;       /* for logs and metrics: "service", "node", ... */
  uint32_t base_delay_ms; /* first backoff; upstream services: 5000 */
  uint32_t max_delay_ms;  /* cap; upstream services: 300000 */
};

struct wq_stats {
  size_t depth;           /* keys waiting now (ready, not delayed) */
  size_t delayed;         /* keys waiting for their delay */
  size_t processing;      /* keys held by workers */
  uint64_t adds;          /* wq_add* calls that queued a key */
  uint64_t retries;       /* wq_add_rate_limited calls */
};

struct workqueue;

struct workqueue *wq_new(const struct wq_opts *opts);
/* Frees the queue; call after wq_shutdown and after every worker returned. */
void wq_free(struct workqueue *q);

/* Queue key now (no-op if already queued; if a worker holds it, it is
 * queued again when that worker calls wq_done). The key is copied. */
void wq_add(struct workqueue *q, const char *key);
/* Queue key after delay_ms (a provider's retry-after). An earlier pending
 * time for the same key wins. */
void wq_add_after(struct workqueue *q, const char *key, uint32_t delay_ms);
/* Queue key after its own exponential backoff (base * 2^failures, capped)
 * and count one more failure for it. */
void wq_add_rate_limited(struct workqueue *q, const char *key);
/* Reset key's failure count (after a success). */
void wq_forget(struct workqueue *q, const char *key);
/* Failures counted for key so far. */
uint32_t wq_failures(struct workqueue *q, const char *key);

/* Block until a key is ready; *key is the queue's copy, valid until
 * wq_done. Returns false once the queue is shut down and (when draining)
 * empty: the worker must return. */
bool wq_get(struct workqueue *q, const char **key);
/* The worker is done with key (success or not). */
void wq_done(struct workqueue *q, const char *key);

/* Stop handing out keys. drain true: workers still get every key that is
 * ready now (delayed keys are dropped); false: wq_get returns false at
 * once. Wakes every waiting worker. */
void wq_shutdown(struct workqueue *q, bool drain);

void wq_get_stats(struct workqueue *q, struct wq_stats *out);

#endif
