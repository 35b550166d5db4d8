/*
 * events.h: core/v1 Events, recorded like client-go's EventRecorder with
 * its EventCorrelator: identical events (object, type, reason, message)
 * are aggregated into one Event whose count rises (PATCH, not a new
 * object), and a per-object token bucket drops storms. Emitting never
 * waits for the network: a sender thread owns the API calls.
 */
#ifndef CCM_KUBE_EVENTS_H
#define CCM_KUBE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "ccm_provider.h" /* CCM_PRINTF */
#include "kube/client.h"
#include "kube/limiter.h"

/* client-go's defaults (EventSourceObjectSpamFilter, LRU size). */
#define CCM_EVENTS_SPAM_BURST 25
#define CCM_EVENTS_SPAM_QPS (1.0 / 300.0)
#define CCM_EVENTS_CACHE_MAX 4096
#define CCM_EVENTS_QUEUE_MAX 1000
#define CCM_EVENTS_MESSAGE_MAX 1024
#define CCM_EVENTS_LINGER_MS 10      /* sender's poll while Events flow */
#define CCM_EVENTS_LINGER_ROUNDS 100 /* quiet polls before it sleeps */

struct kube_events_opts {
  const char *component; /* source.component, e.g. "service-controller" */
  const char *host;      /* source.host; NULL: none */
  double spam_qps;       /* 0: CCM_EVENTS_SPAM_QPS; < 0: no spam filter */
  int spam_burst;        /* 0: CCM_EVENTS_SPAM_BURST */
  size_t cache_max;      /* 0: CCM_EVENTS_CACHE_MAX */
  size_t queue_max;      /* 0: CCM_EVENTS_QUEUE_MAX */
  limiter_clock_fn *clock; /* spam-filter clock; NULL: monotonic */
  void *clock_ud;
};

/* The object an Event is about (involvedObject). ns NULL: cluster-scoped
 * (the Event goes to "default", as client-go does). */
struct kube_object_ref {
  const char *api_version;
  const char *kind;
  const char *ns;
  const char *name;
  const char *uid;
  const char *resource_version; /* may be NULL */
};

struct kube_events_stats {
  uint64_t emitted;       /* accepted by kube_event_emit */
  uint64_t created;       /* POSTs that succeeded */
  uint64_t patched;       /* aggregations written as PATCH */
  uint64_t dropped_queue; /* queue full */
  uint64_t dropped_spam;  /* over the per-object rate */
  uint64_t failed;        /* API errors */
};

struct kube_events;

int kube_events_new(struct kube_client *c, const struct kube_events_opts *o,
                    struct kube_events **out, char *err, size_t errlen);
/* Sends what is queued (each request bounded by the client's retries),
 * then stops the sender thread and frees. */
void kube_events_free(struct kube_events *e);

/* Queue one Event; type is "Normal" or "Warning". The message is
 * formatted, redacted of registered secrets, and cut to
 * CCM_EVENTS_MESSAGE_MAX bytes. Returns 0, or -1 when dropped because the
 * queue is full. Never blocks on the network. */
int kube_event_emit(struct kube_events *e, const struct kube_object_ref *obj,
                    const char *type, const char *reason, const char *fmt,
                    ...) CCM_PRINTF(5, 6);

/* The same with a message that needs no formatting (still redacted and
 * cut). */
int kube_event_emit_text(struct kube_events *e,
                         const struct kube_object_ref *obj, const char *type,
                         const char *reason, const char *text);

/* Wait until every queued Event has been sent (or dropped). */
void kube_events_flush(struct kube_events *e);

void kube_events_get_stats(struct kube_events *e,
                           struct kube_events_stats *out);

#endif
