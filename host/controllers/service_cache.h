/*
 * service_cache.h: the service controller's memory of the Services it
 * processed (upstream's serviceCache): the last object, the recorded
 * load-balancer name and class, the last synced backend nodes, and what
 * the next worker pass must do. Not thread-safe: the controller locks.
 */
#ifndef CCM_SERVICE_CACHE_H
#define CCM_SERVICE_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "controllers/service_nodes.h"
#include "kube/objects.h"

struct svc_entry {
  char *key;                 /* "ns/name" */
  struct obj_meta *obj;      /* last Service processed; one reference */
  char *lb_name;             /* the name every provider call used */
  char *lb_class;            /* the class that chose the provider */
  struct svc_nodes *synced;  /* lastSyncedNodes; may be NULL */
  bool want_full;            /* a Service change is queued */
  bool want_hosts;           /* a node sync is queued */
  struct svc_entry *next;
};

struct svc_cache {
  struct svc_entry **buckets;
  size_t n_buckets;
  size_t n;
};

int svc_cache_init(struct svc_cache *c);
void svc_cache_free(struct svc_cache *c);
struct svc_entry *svc_cache_get(struct svc_cache *c, const char *key);
/* The entry for key, created empty when absent; NULL on out of memory. */
struct svc_entry *svc_cache_put(struct svc_cache *c, const char *key);
void svc_cache_del(struct svc_cache *c, const char *key);
/* Replace a string field (NULL clears); -1 on out of memory. */
int svc_entry_set_str(char **field, const char *value);
/* Calls fn for each entry; stops on a non-zero return. */
typedef int svc_cache_each_fn(struct svc_entry *e, void *ud);
void svc_cache_foreach(struct svc_cache *c, svc_cache_each_fn *fn, void *ud);

#endif
