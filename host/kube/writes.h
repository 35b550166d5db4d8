/*
 * writes.h: the write helpers controllers use: create, update (PUT),
 * delete, merge and JSON patches, the status subresource, finalizers, and
 * read-modify-write with bounded retries on 409 Conflict. Bodies are cJSON;
 * paths are API paths ("/api/v1/namespaces/ns/services/name"). It owns no
 * state and no cache.
 */
#ifndef CCM_KUBE_WRITES_H
#define CCM_KUBE_WRITES_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "kube/client.h"

#define CCM_KUBE_CONFLICT_TRIES 5 /* read-modify-write attempts on 409 */

/* Build an object path: prefix is "/api/v1" or "/apis/<group>/<version>",
 * ns NULL for cluster-scoped, name NULL for the collection, sub NULL or a
 * subresource ("status"). Returns -1 when it does not fit. */
int kube_path(char *buf, size_t len, const char *prefix, const char *resource,
              const char *ns, const char *name, const char *sub);

/* Every function returns a kube_status. When out is non-NULL and the call
 * succeeded, *out holds the server's object (cJSON_Delete it). msg, when
 * non-NULL, receives the server's message on failure. */
int kube_get(struct kube_client *c, const char *path, cJSON **out,
             char *msg, size_t msglen);
int kube_create(struct kube_client *c, const char *collection,
                const cJSON *obj, cJSON **out, char *msg, size_t msglen);
/* POST of JSON text (see kube/jsonw.h), for hot paths that need no reply. */
int kube_create_text(struct kube_client *c, const char *collection,
                     const char *obj, size_t len, char *msg, size_t msglen);
/* PUT: obj carries metadata.resourceVersion for optimistic concurrency. */
int kube_update(struct kube_client *c, const char *path, const cJSON *obj,
                cJSON **out, char *msg, size_t msglen);
/* DELETE; uid, when non-NULL, becomes a precondition. Not found is OK. */
int kube_delete(struct kube_client *c, const char *path, const char *uid,
                char *msg, size_t msglen);
/* application/merge-patch+json (RFC 7386). */
int kube_patch_merge(struct kube_client *c, const char *path,
                     const cJSON *patch, cJSON **out, char *msg,
                     size_t msglen);
/* The same with the patch as JSON text (see kube/jsonw.h), for hot paths
 * that need no reply. */
int kube_patch_merge_text(struct kube_client *c, const char *path,
                          const char *patch, size_t len, char *msg,
                          size_t msglen);
/* application/json-patch+json (RFC 6902): ops is an array. */
int kube_patch_json(struct kube_client *c, const char *path,
                    const cJSON *ops, cJSON **out, char *msg, size_t msglen);
/* The status subresource (path is the object's path). */
int kube_update_status(struct kube_client *c, const char *path,
                       const cJSON *obj, cJSON **out, char *msg,
                       size_t msglen);
int kube_patch_status(struct kube_client *c, const char *path,
                      const cJSON *patch, cJSON **out, char *msg,
                      size_t msglen);
int kube_patch_status_text(struct kube_client *c, const char *path,
                           const char *patch, size_t len, char *msg,
                           size_t msglen);

/* Change obj in place. Return 0 to write it, 1 when nothing needs
 * writing (the helper then returns KUBE_OK without a write), or a negative
 * kube_status to give up with it. */
typedef int kube_mutate_fn(cJSON *obj, void *ud);

/* Read-modify-write: GET path, mutate, PUT (to path or its status when
 * status is true); on 409 Conflict get a fresh copy and try again, up to
 * tries times (0: CCM_KUBE_CONFLICT_TRIES). obj may be a copy the caller
 * already has (used for the first try, not freed); NULL reads first. */
int kube_update_retry(struct kube_client *c, const char *path,
                      const cJSON *obj, bool status, kube_mutate_fn *fn,
                      void *ud, int tries, cJSON **out, char *msg,
                      size_t msglen);

/* Add or remove one metadata.finalizers entry (idempotent), with
 * kube_update_retry. Not found on remove is OK. */
int kube_finalizer_add(struct kube_client *c, const char *path,
                       const char *finalizer, char *msg, size_t msglen);
int kube_finalizer_remove(struct kube_client *c, const char *path,
                          const char *finalizer, char *msg, size_t msglen);

/* True when obj's metadata.finalizers holds finalizer. */
bool kube_has_finalizer(const cJSON *obj, const char *finalizer);

#endif
