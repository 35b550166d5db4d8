/*
 * informer.h: list-and-watch of one resource into a store, with event
 * handlers (add, update with old and new, delete), periodic resync and a
 * synced flag. One thread per informer watches (plus one for resync when
 * enabled). It must not know what the controllers do with the events.
 */
#ifndef CCM_KUBE_INFORMER_H
#define CCM_KUBE_INFORMER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kube/client.h"
#include "kube/objects.h"
#include "kube/store.h"

#define CCM_INFORMER_MAX_HANDLERS 8
#define CCM_INFORMER_PAGE_SIZE 500
#define CCM_INFORMER_MAX_LINE (4u * 1024u * 1024u) /* one watch event */

/* Handlers run on the informer thread, one event at a time (never two
 * concurrently for one informer). Objects are valid for the call; take
 * obj_ref to keep one. Handlers must be quick (enqueue a key) and must not
 * call informer_stop. Any of the three may be NULL. */
struct informer_handlers {
  void (*add)(void *ud, const struct obj_meta *obj);
  void (*update)(void *ud, const struct obj_meta *old,
                 const struct obj_meta *cur);
  void (*del)(void *ud, const struct obj_meta *old);
  void *ud;
};

/* The transport, injectable for tests. list: one GET of path (fills out,
 * returns a kube_status). watch: as kube_watch. response_free releases
 * what list or watch put in a response. */
struct informer_ops {
  int (*list)(void *ctx, const char *path, struct kube_response *out);
  int (*watch)(void *ctx, const char *path, kube_line_fn *fn, void *ud,
               atomic_bool *stop, struct kube_response *out);
  void (*response_free)(void *ctx, struct kube_response *r);
  void *ctx;
};

/* The real transport over a kube_client (informer_client.c). */
void informer_ops_from_client(struct kube_client *c, struct informer_ops *ops);

struct informer_config {
  const char *name;           /* for logs: "nodes" (copied) */
  enum obj_kind kind;
  const char *path;           /* collection: "/api/v1/nodes" (copied) */
  const char *label_selector; /* NULL = all (copied, URL-encoded here) */
  uint32_t page_size;         /* 0 = CCM_INFORMER_PAGE_SIZE */
  uint32_t resync_ms;         /* 0 = no resync */
  uint32_t backoff_min_ms;    /* 0 = 800 */
  uint32_t backoff_max_ms;    /* 0 = 30000 */
  uint32_t watch_timeout_s;   /* 0 = random in [300, 600), as client-go */
};

struct informer_stats {
  uint64_t lists;         /* complete lists applied */
  uint64_t relists_gone;  /* lists caused by 410 Gone */
  uint64_t list_errors;
  uint64_t watches;       /* watch requests made */
  uint64_t watch_errors;  /* watches ended by an error */
  uint64_t events;        /* ADDED, MODIFIED, DELETED applied */
  uint64_t bookmarks;
  uint64_t decode_errors; /* objects or lines skipped */
  uint64_t resyncs;       /* resync rounds */
  char resource_version[128];
};

struct informer;

/* Copies cfg and ops. 0, or -1 on bad config / out of memory. */
int informer_new(const struct informer_config *cfg,
                 const struct informer_ops *ops, struct informer **out);
/* Before informer_start only; -1 when full or already started. */
int informer_add_handlers(struct informer *inf,
                          const struct informer_handlers *h);
/* Starts the watch thread (and the resync thread). 0 or -1. */
int informer_start(struct informer *inf);
/* Sets the stop flag, wakes and joins the threads. Idempotent. */
void informer_stop(struct informer *inf);
/* Stops if needed, then frees the informer and its store. */
void informer_free(struct informer *inf);

/* True once a first complete list has been applied; stays true. */
bool informer_has_synced(struct informer *inf);
/* Waits up to timeout_ms for has_synced; returns it. */
bool informer_wait_synced(struct informer *inf, uint32_t timeout_ms);

/* The cache; valid until informer_free. Reads are thread-safe. */
struct store *informer_store(struct informer *inf);
void informer_get_stats(struct informer *inf, struct informer_stats *out);

#endif
