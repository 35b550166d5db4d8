/*
 * store.h: the keyed cache of one informer: "namespace/name" (or "name")
 * -> reference-counted compact object. Reads are cheap and thread-safe
 * (a read-write lock held only for the lookup); writers are the informer.
 * It must not decode, call handlers or touch the network.
 */
#ifndef CCM_KUBE_STORE_H
#define CCM_KUBE_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "kube/objects.h"

struct store;

struct store *store_new(void);
/* Drops the store's reference on every object. */
void store_free(struct store *s);

/* A new reference to the object, or NULL. ns is NULL for cluster-scoped
 * kinds. Release with obj_unref. */
struct obj_meta *store_get(struct store *s, const char *ns, const char *name);
/* Same, by key "ns/name" or "name" (a workqueue key). */
struct obj_meta *store_get_key(struct store *s, const char *key);

/* Insert or replace; the store takes over the caller's reference on obj.
 * Returns the replaced object (its reference passes to the caller) or
 * NULL. -1 in *err on out of memory (obj not stored, still the caller's). */
struct obj_meta *store_put(struct store *s, struct obj_meta *obj, int *err);
/* Remove by key; returns the removed object (reference to the caller). */
struct obj_meta *store_remove(struct store *s, const char *ns,
                              const char *name);

size_t store_len(struct store *s);

/* A snapshot: *out receives an array of n new references (release with
 * store_list_free). 0 on success, -1 on out of memory. */
int store_list(struct store *s, struct obj_meta ***out, size_t *n);
void store_list_free(struct obj_meta **v, size_t n);

/* Calls fn for each object under the read lock: fn must be quick and must
 * not call back into this store's writers. A non-zero return stops. */
typedef int store_each_fn(const struct obj_meta *obj, void *ud);
void store_foreach(struct store *s, store_each_fn *fn, void *ud);

/* Bytes of the index itself (not the objects), for benchmarks. */
size_t store_index_bytes(struct store *s);

#endif
