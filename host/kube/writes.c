/*
 * writes.c: write helpers on kube_request: JSON in, JSON out, and the
 * conflict loop. It holds no lock and no state; the caller's mutate
 * callback decides what changes.
 */
#include "kube/writes.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "util/mem.h"

/* Append the NUL-terminated parts to buf; -1 when they do not fit. Paths
 * are built for every request, so without a format string. */
static int wr_join(char *buf, size_t len, const char *const *parts, size_t n)
{
  size_t at = 0, i, k;

  for (i = 0; i < n; i++) {
    k = strlen(parts[i]);
    if (k >= len - at)
      return -1;
    memcpy(buf + at, parts[i], k);
    at += k;
  }
  if (at >= len)
    return -1;
  buf[at] = '\0';
  return 0;
}

int kube_path(char *buf, size_t len, const char *prefix, const char *resource,
              const char *ns, const char *name, const char *sub)
{
  const char *parts[] = {prefix,
                         ns != NULL ? "/namespaces/" : "",
                         ns != NULL ? ns : "",
                         "/",
                         resource,
                         name != NULL ? "/" : "",
                         name != NULL ? name : "",
                         sub != NULL ? "/" : "",
                         sub != NULL ? sub : ""};

  return wr_join(buf, len, parts, sizeof(parts) / sizeof(parts[0]));
}

static void wr_msg(char *msg, size_t msglen, const char *text)
{
  if (msg != NULL && msglen > 0)
    snprintf(msg, msglen, "%s", text);
}

/* One request with an optional body of JSON text; parses a 2xx body into
 * *out. */
static int wr_send(struct kube_client *c, const char *method,
                   const char *path, const char *ctype, const char *text,
                   size_t len, cJSON **out, char *msg, size_t msglen)
{
  /* A reply nobody reads is not kept (only an error's Status is). */
  struct kube_request_opts ro = {.discard_ok_body = out == NULL};
  struct kube_response resp;
  int st;

  if (out != NULL)
    *out = NULL;
  st = kube_request_ex(c, method, path, text != NULL ? ctype : NULL, text,
                       text != NULL ? len : 0, &ro, &resp);
  if (st == KUBE_OK && out != NULL) {
    *out = cJSON_ParseWithLength(resp.body, resp.len);
    if (*out == NULL) {
      wr_msg(msg, msglen, "the server's reply is not JSON");
      st = KUBE_ERROR;
    }
  } else if (st != KUBE_OK) {
    wr_msg(msg, msglen, resp.message);
  }
  kube_response_free(&resp);
  return st;
}

/* One request with an optional cJSON body. */
static int wr_do(struct kube_client *c, const char *method, const char *path,
                 const char *ctype, const cJSON *body, cJSON **out,
                 char *msg, size_t msglen)
{
  char *text = NULL;
  int st;

  if (out != NULL)
    *out = NULL;
  if (body != NULL) {
    text = cJSON_PrintUnformatted(body);
    if (text == NULL) {
      wr_msg(msg, msglen, "out of memory");
      return KUBE_ERROR;
    }
  }
  st = wr_send(c, method, path, ctype, text, text != NULL ? strlen(text) : 0,
               out, msg, msglen);
  cJSON_free(text);
  return st;
}

/* The status subresource's path; -1 (and msg says so) when too long. */
static int wr_status_path(char *buf, size_t len, const char *path,
                          char *msg, size_t msglen)
{
  const char *parts[] = {path, "/status"};

  if (wr_join(buf, len, parts, 2) == 0)
    return 0;
  wr_msg(msg, msglen, "path too long");
  return -1;
}

int kube_get(struct kube_client *c, const char *path, cJSON **out,
             char *msg, size_t msglen)
{
  return wr_do(c, "GET", path, NULL, NULL, out, msg, msglen);
}

int kube_create(struct kube_client *c, const char *collection,
                const cJSON *obj, cJSON **out, char *msg, size_t msglen)
{
  return wr_do(c, "POST", collection, "application/json", obj, out, msg,
               msglen);
}

int kube_create_text(struct kube_client *c, const char *collection,
                     const char *obj, size_t len, char *msg, size_t msglen)
{
  return wr_send(c, "POST", collection, "application/json", obj, len, NULL,
                 msg, msglen);
}

int kube_update(struct kube_client *c, const char *path, const cJSON *obj,
                cJSON **out, char *msg, size_t msglen)
{
  return wr_do(c, "PUT", path, "application/json", obj, out, msg, msglen);
}

int kube_delete(struct kube_client *c, const char *path, const char *uid,
                char *msg, size_t msglen)
{
  cJSON *opts = NULL, *pre;
  int st;

  if (uid != NULL) {
    opts = cJSON_CreateObject();
    pre = cJSON_AddObjectToObject(opts, "preconditions");
    if (opts == NULL || pre == NULL ||
        cJSON_AddStringToObject(opts, "kind", "DeleteOptions") == NULL ||
        cJSON_AddStringToObject(opts, "apiVersion", "v1") == NULL ||
        cJSON_AddStringToObject(pre, "uid", uid) == NULL) {
      cJSON_Delete(opts);
      wr_msg(msg, msglen, "out of memory");
      return KUBE_ERROR;
    }
  }
  st = wr_do(c, "DELETE", path, "application/json", opts, NULL, msg, msglen);
  cJSON_Delete(opts);
  return st == KUBE_NOT_FOUND ? KUBE_OK : st;
}

int kube_patch_merge(struct kube_client *c, const char *path,
                     const cJSON *patch, cJSON **out, char *msg,
                     size_t msglen)
{
  return wr_do(c, "PATCH", path, "application/merge-patch+json", patch, out,
               msg, msglen);
}

int kube_patch_merge_text(struct kube_client *c, const char *path,
                          const char *patch, size_t len, char *msg,
                          size_t msglen)
{
  return wr_send(c, "PATCH", path, "application/merge-patch+json", patch, len,
                 NULL, msg, msglen);
}

int kube_patch_json(struct kube_client *c, const char *path,
                    const cJSON *ops, cJSON **out, char *msg, size_t msglen)
{
  if (!cJSON_IsArray(ops)) {
    wr_msg(msg, msglen, "a JSON patch is an array of operations");
    return KUBE_INVALID;
  }
  return wr_do(c, "PATCH", path, "application/json-patch+json", ops, out,
               msg, msglen);
}

int kube_update_status(struct kube_client *c, const char *path,
                       const cJSON *obj, cJSON **out, char *msg,
                       size_t msglen)
{
  char sp[1024];

  if (wr_status_path(sp, sizeof sp, path, msg, msglen) != 0)
    return KUBE_ERROR;
  return kube_update(c, sp, obj, out, msg, msglen);
}

int kube_patch_status(struct kube_client *c, const char *path,
                      const cJSON *patch, cJSON **out, char *msg,
                      size_t msglen)
{
  char sp[1024];

  if (wr_status_path(sp, sizeof sp, path, msg, msglen) != 0)
    return KUBE_ERROR;
  return kube_patch_merge(c, sp, patch, out, msg, msglen);
}

int kube_patch_status_text(struct kube_client *c, const char *path,
                           const char *patch, size_t len, char *msg,
                           size_t msglen)
{
  char sp[1024];

  if (wr_status_path(sp, sizeof sp, path, msg, msglen) != 0)
    return KUBE_ERROR;
  return kube_patch_merge_text(c, sp, patch, len, msg, msglen);
}

int kube_update_retry(struct kube_client *c, const char *path,
                      const cJSON *obj, bool status, kube_mutate_fn *fn,
                      void *ud, int tries, cJSON **out, char *msg,
                      size_t msglen)
{
  cJSON *cur = NULL;
  char sp[1024];
  const char *target = path;
  int st = KUBE_ERROR, i, m;

  if (out != NULL)
    *out = NULL;
  if (tries <= 0)
    tries = CCM_KUBE_CONFLICT_TRIES;
  if (status) {
    if (wr_status_path(sp, sizeof sp, path, msg, msglen) != 0)
      return KUBE_ERROR;
    target = sp;
  }
  for (i = 0; i < tries; i++) {
    if (i == 0 && obj != NULL) {
      cur = cJSON_Duplicate(obj, 1);
      if (cur == NULL) {
        wr_msg(msg, msglen, "out of memory");
        return KUBE_ERROR;
      }
    } else {
      st = kube_get(c, path, &cur, msg, msglen);
      if (st != KUBE_OK)
        return st;
    }
    m = fn(cur, ud);
    if (m < 0) {
      cJSON_Delete(cur);
      return m;
    }
    if (m > 0) {
      if (out != NULL)
        *out = cur;
      else
        cJSON_Delete(cur);
      return KUBE_OK;
    }
    st = kube_update(c, target, cur, out, msg, msglen);
    cJSON_Delete(cur);
    cur = NULL;
    if (st != KUBE_CONFLICT)
      return st;
    log_msg(CCM_LOG_DEBUG, "kube", "PUT %s: conflict, re-reading (try %d)",
            target, i + 1);
  }
  return st;
}

bool kube_has_finalizer(const cJSON *obj, const char *finalizer)
{
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
  const cJSON *fins = cJSON_GetObjectItemCaseSensitive(meta, "finalizers");
  const cJSON *f;

  cJSON_ArrayForEach(f, fins) {
    if (cJSON_IsString(f) && strcmp(f->valuestring, finalizer) == 0)
      return true;
  }
  return false;
}

static int wr_fin_add(cJSON *obj, void *ud)
{
  const char *fin = ud;
  cJSON *meta, *fins, *s;

  if (kube_has_finalizer(obj, fin))
    return 1;
  meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
  if (!cJSON_IsObject(meta))
    return KUBE_ERROR;
  fins = cJSON_GetObjectItemCaseSensitive(meta, "finalizers");
  if (!cJSON_IsArray(fins)) {
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "finalizers");
    fins = cJSON_AddArrayToObject(meta, "finalizers");
    if (fins == NULL)
      return KUBE_ERROR;
  }
  s = cJSON_CreateString(fin);
  if (s == NULL || !cJSON_AddItemToArray(fins, s)) {
    cJSON_Delete(s);
    return KUBE_ERROR;
  }
  return 0;
}

static int wr_fin_remove(cJSON *obj, void *ud)
{
  const char *fin = ud;
  cJSON *meta, *fins;
  int i, n;

  if (!kube_has_finalizer(obj, fin))
    return 1;
  meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
  fins = cJSON_GetObjectItemCaseSensitive(meta, "finalizers");
  n = cJSON_GetArraySize(fins);
  for (i = n - 1; i >= 0; i--) {
    cJSON *f = cJSON_GetArrayItem(fins, i);

    if (cJSON_IsString(f) && strcmp(f->valuestring, fin) == 0)
      cJSON_DeleteItemFromArray(fins, i);
  }
  return 0;
}

int kube_finalizer_add(struct kube_client *c, const char *path,
                       const char *finalizer, char *msg, size_t msglen)
{
  return kube_update_retry(c, path, NULL, false, wr_fin_add,
                           (void *)finalizer, 0, NULL, msg, msglen);
}

int kube_finalizer_remove(struct kube_client *c, const char *path,
                          const char *finalizer, char *msg, size_t msglen)
{
  int st = kube_update_retry(c, path, NULL, false, wr_fin_remove,
                             (void *)finalizer, 0, NULL, msg, msglen);

  return st == KUBE_NOT_FOUND ? KUBE_OK : st;
}
