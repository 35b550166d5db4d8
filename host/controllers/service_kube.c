/*
 * service_kube.c: the service controller's Kubernetes writes: the
 * finalizer with the name records (one merge patch), finalizer removal, the
 * input fingerprint record, the status patch, and Events. Each write is
 * guarded by the Service's UID so that a re-created Service is never
 * touched on the old one's behalf.
 * It must not call providers or decide what to write.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "controllers/service_fprint.h"
#include "controllers/service_int.h"
#include "controllers/service_logic.h"
#include "kube/jsonw.h"
#include "kube/writes.h"
#include "util/log.h"

void svc_event(struct svc_ctrl *c, const struct obj_service *s,
               const char *type, const char *reason, const char *fmt, ...)
{
  struct kube_object_ref ref;
  char buf[CCM_EVENTS_MESSAGE_MAX];
  const char *msg = fmt;
  va_list ap;

  if (strchr(fmt, '%') != NULL) { /* most messages are constant */
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    msg = buf;
  }
  log_msg(strcmp(type, "Warning") == 0 ? CCM_LOG_WARN : CCM_LOG_DEBUG,
          "service", "%s/%s: %s: %s", s->meta.ns ? s->meta.ns : "",
          s->meta.name ? s->meta.name : "", reason, msg);
  if (c->env.events == NULL)
    return;
  memset(&ref, 0, sizeof(ref));
  ref.api_version = "v1";
  ref.kind = "Service";
  ref.ns = s->meta.ns;
  ref.name = s->meta.name;
  ref.uid = s->meta.uid;
  ref.resource_version = s->meta.resource_version;
  kube_event_emit_text(c->env.events, &ref, type, reason, msg);
}

/* The Service's path in buf; KUBE_ERROR (and msg) when it does not fit. */
static int svc_path(const struct obj_service *s, char *buf, size_t cap,
                    char *msg, size_t msglen)
{
  if (kube_path(buf, cap, "/api/v1", "services", s->meta.ns, s->meta.name,
                NULL) == 0)
    return KUBE_OK;
  snprintf(msg, msglen, "path too long");
  return KUBE_ERROR;
}

struct svc_record {
  const char *uid;
  const char *lb_name;
  const char *lb_class;
  bool remove;             /* drop the finalizer (nothing else) */
  bool drop_inputs;        /* record: also drop the inputs annotation */
  const char *inputs;      /* non-NULL: only set the inputs annotation */
};

static bool svc_uid_matches(const cJSON *obj, const char *uid)
{
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
  const cJSON *u = cJSON_GetObjectItemCaseSensitive(meta, "uid");

  return uid != NULL && cJSON_IsString(u) && strcmp(u->valuestring, uid) == 0;
}

/* Set annotations[key] = value; 1 when it already was, 0 when changed. */
static int svc_set_annotation(cJSON *meta, const char *key, const char *value)
{
  cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
  cJSON *cur, *v;

  if (!cJSON_IsObject(ann)) {
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "annotations");
    ann = cJSON_AddObjectToObject(meta, "annotations");
    if (ann == NULL)
      return KUBE_ERROR;
  }
  cur = cJSON_GetObjectItemCaseSensitive(ann, key);
  if (cJSON_IsString(cur) && strcmp(cur->valuestring, value) == 0)
    return 1;
  v = cJSON_CreateString(value);
  if (v == NULL)
    return KUBE_ERROR;
  if (cur != NULL)
    cJSON_ReplaceItemInObjectCaseSensitive(ann, key, v);
  else
    cJSON_AddItemToObject(ann, key, v);
  return 0;
}

/* Remove annotations[key]; 1 when it was absent, 0 when removed. */
static int svc_del_annotation(cJSON *meta, const char *key)
{
  cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");

  if (!cJSON_IsObject(ann) ||
      cJSON_GetObjectItemCaseSensitive(ann, key) == NULL)
    return 1;
  cJSON_DeleteItemFromObjectCaseSensitive(ann, key);
  return 0;
}

static int svc_mutate(cJSON *obj, void *ud)
{
  const struct svc_record *r = ud;
  cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
  cJSON *fins, *s;
  int changed = 0, rc, i;

  if (!cJSON_IsObject(meta) || !svc_uid_matches(obj, r->uid))
    return KUBE_NOT_FOUND; /* the Service we meant is gone */
  if (r->inputs != NULL)
    return svc_set_annotation(meta, CCM_SVC_INPUTS_ANNOTATION, r->inputs);
  fins = cJSON_GetObjectItemCaseSensitive(meta, "finalizers");
  if (r->remove) {
    if (!kube_has_finalizer(obj, CCM_SVC_FINALIZER))
      return 1;
    for (i = cJSON_GetArraySize(fins) - 1; i >= 0; i--) {
      s = cJSON_GetArrayItem(fins, i);
      if (cJSON_IsString(s) && strcmp(s->valuestring, CCM_SVC_FINALIZER) == 0)
        cJSON_DeleteItemFromArray(fins, i);
    }
    return 0;
  }
  if (!kube_has_finalizer(obj, CCM_SVC_FINALIZER)) {
    if (!cJSON_IsArray(fins)) {
      cJSON_DeleteItemFromObjectCaseSensitive(meta, "finalizers");
      fins = cJSON_AddArrayToObject(meta, "finalizers");
    }
    s = cJSON_CreateString(CCM_SVC_FINALIZER);
    if (fins == NULL || s == NULL || !cJSON_AddItemToArray(fins, s)) {
      cJSON_Delete(s);
      return KUBE_ERROR;
    }
    changed = 1;
  }
  rc = svc_set_annotation(meta, CCM_SVC_NAME_ANNOTATION, r->lb_name);
  if (rc < 0)
    return rc;
  changed |= rc == 0;
  if (r->lb_class != NULL) {
    rc = svc_set_annotation(meta, CCM_SVC_CLASS_ANNOTATION, r->lb_class);
    if (rc < 0)
      return rc;
    changed |= rc == 0;
  }
  if (r->drop_inputs)
    changed |= svc_del_annotation(meta, CCM_SVC_INPUTS_ANNOTATION) == 0;
  return changed ? 0 : 1;
}

/* The fast path of every metadata write: one merge patch built from the
 * cached copy. metadata.uid makes the server refuse it for a re-created
 * Service, and metadata.resourceVersion (when the patch replaces the
 * finalizer list, which must not lose someone else's entry) makes a stale
 * cache fail with a conflict; the caller then falls back to
 * read-modify-write. Annotations merge, so none of ours needs the cache.
 * False when there is no fast path (no UID or resourceVersion, out of
 * memory). */
static bool svc_record_patch(const struct obj_service *s,
                             const struct svc_record *r, struct jsonw *w)
{
  const char *sep = "";
  uint16_t i;

  if (r->uid == NULL)
    return false;
  jsonw_pair(w, "{\"metadata\":{\"uid\":", r->uid);
  if (r->inputs != NULL) {
    jsonw_pair(w, ",\"annotations\":{\"" CCM_SVC_INPUTS_ANNOTATION "\":",
               r->inputs);
    jsonw_raw(w, "}}}");
    return jsonw_ok(w);
  }
  if (s->meta.resource_version == NULL)
    return false;
  jsonw_pair(w, ",\"resourceVersion\":", s->meta.resource_version);
  jsonw_raw(w, ",\"finalizers\":[");
  for (i = 0; i < s->n_finalizers; i++) {
    if (strcmp(s->finalizers[i], CCM_SVC_FINALIZER) == 0)
      continue;
    jsonw_pair(w, sep, s->finalizers[i]);
    sep = ",";
  }
  if (!r->remove)
    jsonw_pair(w, sep, CCM_SVC_FINALIZER);
  jsonw_raw(w, "]");
  if (!r->remove) {
    /* Our annotation keys are constants that need no escaping. */
    jsonw_pair(w, ",\"annotations\":{\"" CCM_SVC_NAME_ANNOTATION "\":",
               r->lb_name);
    if (r->lb_class != NULL)
      jsonw_pair(w, ",\"" CCM_SVC_CLASS_ANNOTATION "\":", r->lb_class);
    if (r->drop_inputs)
      jsonw_raw(w, ",\"" CCM_SVC_INPUTS_ANNOTATION "\":null");
    jsonw_raw(w, "}");
  }
  jsonw_raw(w, "}}");
  return jsonw_ok(w);
}

/* One metadata write: the merge patch, else GET + mutate + PUT. */
static int svc_kube_write(struct svc_ctrl *c, const struct obj_service *s,
                          const struct svc_record *r, char *msg,
                          size_t msglen)
{
  struct kube_client *kc = runtime_client(c->env.rt);
  char path[1024], buf[1024];
  struct jsonw w;
  int st;

  if (svc_path(s, path, sizeof(path), msg, msglen) != KUBE_OK)
    return KUBE_ERROR;
  jsonw_init(&w, buf, sizeof(buf));
  if (svc_record_patch(s, r, &w)) {
    st = kube_patch_merge_text(kc, path, w.p, w.len, msg, msglen);
    jsonw_free(&w);
    if (st != KUBE_CONFLICT && st != KUBE_INVALID)
      return st;
    atomic_fetch_add(&c->m.write_fallbacks, 1);
    if (msglen > 0)
      msg[0] = '\0';
  }
  jsonw_free(&w);
  return kube_update_retry(kc, path, NULL, false, svc_mutate, (void *)r, 0,
                           NULL, msg, msglen);
}

int svc_kube_record(struct svc_ctrl *c, const struct obj_service *s,
                    const char *lb_name, const char *lb_class,
                    bool drop_inputs, char *msg, size_t msglen)
{
  struct svc_record r = {s->meta.uid, lb_name, lb_class, false, drop_inputs,
                         NULL};

  return svc_kube_write(c, s, &r, msg, msglen);
}

int svc_kube_finalizer_remove(struct svc_ctrl *c, const struct obj_service *s,
                              char *msg, size_t msglen)
{
  struct svc_record r = {s->meta.uid, NULL, NULL, true, false, NULL};
  int st = svc_kube_write(c, s, &r, msg, msglen);

  return st == KUBE_NOT_FOUND ? KUBE_OK : st;
}

int svc_kube_record_inputs(struct svc_ctrl *c, const struct obj_service *s,
                           const char *inputs, char *msg, size_t msglen)
{
  struct svc_record r = {s->meta.uid, NULL, NULL, false, false, inputs};
  int st = svc_kube_write(c, s, &r, msg, msglen);

  return st == KUBE_NOT_FOUND ? KUBE_OK : st;
}

/* status.loadBalancer.ingress as JSON: null when st is NULL or empty. */
static void svc_ingress_json(struct jsonw *w, const struct ccm_lb_status *st)
{
  size_t i;

  if (st == NULL || st->n == 0)
    jsonw_raw(w, "null");
  for (i = 0; st != NULL && i < st->n; i++) {
    const char *sep = "";

    jsonw_raw(w, i == 0 ? "[{" : ",{");
    if (st->items[i].ip != NULL) {
      jsonw_pair(w, "\"ip\":", st->items[i].ip);
      sep = ",";
    }
    if (st->items[i].hostname != NULL) {
      jsonw_raw(w, sep);
      jsonw_pair(w, "\"hostname\":", st->items[i].hostname);
    }
    jsonw_raw(w, i + 1 == st->n ? "}]" : "}");
  }
}

/* One merge patch of the status subresource. inputs non-NULL: it also
 * sets the input fingerprint, guarded by metadata.uid (the status
 * subresource of a Service takes metadata too; upstream adds and removes
 * its finalizer there). */
static int svc_kube_status_write(struct svc_ctrl *c,
                                 const struct obj_service *s,
                                 const struct ccm_lb_status *st,
                                 const char *inputs, char *msg, size_t msglen)
{
  char path[1024], buf[512];
  struct jsonw w;
  int rc;

  if (svc_path(s, path, sizeof(path), msg, msglen) != KUBE_OK)
    return KUBE_ERROR;
  jsonw_init(&w, buf, sizeof(buf));
  jsonw_raw(&w, "{");
  if (inputs != NULL) {
    jsonw_pair(&w, "\"metadata\":{\"uid\":", s->meta.uid);
    jsonw_pair(&w, ",\"annotations\":{\"" CCM_SVC_INPUTS_ANNOTATION "\":",
               inputs);
    jsonw_raw(&w, "}},");
  }
  jsonw_raw(&w, "\"status\":{\"loadBalancer\":{\"ingress\":");
  svc_ingress_json(&w, st);
  jsonw_raw(&w, "}}}");
  if (!jsonw_ok(&w)) {
    jsonw_free(&w);
    snprintf(msg, msglen, "out of memory");
    return KUBE_ERROR;
  }
  rc = kube_patch_status_text(runtime_client(c->env.rt), path, w.p, w.len,
                              msg, msglen);
  jsonw_free(&w);
  return rc;
}

int svc_kube_patch_status(struct svc_ctrl *c, const struct obj_service *s,
                          const struct ccm_lb_status *st, char *msg,
                          size_t msglen)
{
  int rc = svc_kube_status_write(c, s, st, NULL, msg, msglen);

  /* The Service vanished after its finalizer went. */
  return rc == KUBE_NOT_FOUND ? KUBE_OK : rc;
}

int svc_kube_ensured(struct svc_ctrl *c, const struct obj_service *s,
                     const struct ccm_lb_status *st, bool patch_status,
                     const char *inputs, bool *recorded, char *msg,
                     size_t msglen)
{
  int rc;

  *recorded = false;
  msg[0] = '\0';
  if (patch_status && inputs != NULL && s->meta.uid != NULL) {
    rc = svc_kube_status_write(c, s, st, inputs, msg, msglen);
    if (rc == KUBE_OK)
      *recorded = true;
    if (rc == KUBE_OK || rc == KUBE_NOT_FOUND)
      return KUBE_OK;
    if (rc != KUBE_CONFLICT && rc != KUBE_INVALID)
      return rc;
    /* Another UID, or a server that refuses metadata there: the two
     * writes below tell which, as before. */
    atomic_fetch_add(&c->m.write_fallbacks, 1);
    msg[0] = '\0';
  }
  if (patch_status) {
    rc = svc_kube_patch_status(c, s, st, msg, msglen);
    if (rc != KUBE_OK)
      return rc;
  }
  if (inputs != NULL) {
    rc = svc_kube_record_inputs(c, s, inputs, msg, msglen);
    if (rc != KUBE_OK) {
      /* The load balancer and its status are fine; only a restart's
       * skip is lost. */
      log_msg(CCM_LOG_WARN, "service", "%s/%s: cannot record the input "
              "fingerprint: %s", s->meta.ns ? s->meta.ns : "",
              s->meta.name ? s->meta.name : "",
              msg[0] ? msg : kube_status_name(rc));
      msg[0] = '\0';
      return KUBE_OK;
    }
    *recorded = true;
  }
  return KUBE_OK;
}
