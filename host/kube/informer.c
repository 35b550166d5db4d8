/*
 * informer.c: the list/watch loop (paginated list, watch from the list's
 * resourceVersion with bookmarks, backoff with jitter, relist on 410), the
 * event delivery to handlers and the resync thread. It owns its store and
 * threads; it never holds a lock while it waits for the network.
 */
#include "kube/informer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/json_arena.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/thread.h"

struct informer {
  char *name;
  char *path;
  char *selector; /* URL-encoded, or NULL */
  char prefix[64];
  enum obj_kind kind;
  struct informer_config cfg;
  struct informer_ops ops;
  struct informer_handlers handlers[CCM_INFORMER_MAX_HANDLERS];
  size_t n_handlers;
  struct store *store;

  pthread_t watch_thread;
  pthread_t resync_thread;
  bool started;
  bool resync_started;
  atomic_bool stop;
  atomic_bool synced;

  /* Serialises store writes with handler calls (watch vs resync thread).
   * Never held across a network call. */
  pthread_mutex_t deliver;

  /* Sleeps (backoff, resync period, wait_synced) wait on this. */
  pthread_mutex_t wait_lock;
  pthread_cond_t wait_cond;

  pthread_mutex_t stats_lock;
  struct informer_stats stats;
  unsigned int seed;

  /* Per-watch state, used by the watch thread only. */
  bool watch_gone;
  bool watch_failed;
  uint64_t watch_lines;
  struct json_arena watch_arena; /* each event's tree, dropped after it */
};

/* ---- small helpers -------------------------------------------------------- */

#define STAT_ADD(inf, field, n)                                               \
  do {                                                                        \
    pthread_mutex_lock(&(inf)->stats_lock);                                   \
    (inf)->stats.field += (n);                                                \
    pthread_mutex_unlock(&(inf)->stats_lock);                                 \
  } while (0)

static void rv_set(struct informer *inf, const char *rv)
{
  if (rv == NULL || rv[0] == '\0')
    return;
  pthread_mutex_lock(&inf->stats_lock);
  if (strlen(rv) < sizeof(inf->stats.resource_version))
    snprintf(inf->stats.resource_version,
             sizeof(inf->stats.resource_version), "%s", rv);
  pthread_mutex_unlock(&inf->stats_lock);
}

static void rv_get(struct informer *inf, char *buf, size_t cap)
{
  pthread_mutex_lock(&inf->stats_lock);
  snprintf(buf, cap, "%s", inf->stats.resource_version);
  pthread_mutex_unlock(&inf->stats_lock);
}

/* Percent-encode everything outside RFC 3986 unreserved characters. */
static char *url_encode(const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t len = strlen(s);
  char *out = mem_alloc(len * 3 + 1);
  size_t o = 0;
  size_t i;

  if (out == NULL)
    return NULL;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];

    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out[o++] = (char)c;
    } else {
      out[o++] = '%';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  out[o] = '\0';
  return out;
}

/* Sleep up to ms, returning early (true) when the informer stops. */
static bool sleep_or_stop(struct informer *inf, uint32_t ms)
{
  struct timespec until = thread_deadline_in(ms);
  bool stopped;

  pthread_mutex_lock(&inf->wait_lock);
  while (!atomic_load(&inf->stop)) {
    if (pthread_cond_timedwait(&inf->wait_cond, &inf->wait_lock, &until) ==
        ETIMEDOUT)
      break;
  }
  stopped = atomic_load(&inf->stop);
  pthread_mutex_unlock(&inf->wait_lock);
  return stopped;
}

static void wake_all(struct informer *inf)
{
  pthread_mutex_lock(&inf->wait_lock);
  pthread_cond_broadcast(&inf->wait_cond);
  pthread_mutex_unlock(&inf->wait_lock);
}

/* Exponential backoff with jitter: sleeps a random time in [d/2, d], then
 * doubles d up to the maximum. */
static bool backoff_sleep(struct informer *inf, uint32_t *delay)
{
  uint32_t d = *delay;
  uint32_t half = d / 2;
  uint32_t ms = half + (uint32_t)(rand_r(&inf->seed) % (half + 1));

  *delay = d >= inf->cfg.backoff_max_ms / 2 ? inf->cfg.backoff_max_ms : d * 2;
  return sleep_or_stop(inf, ms);
}

/* ---- delivery --------------------------------------------------------------- */

static void deliver_add(struct informer *inf, const struct obj_meta *obj)
{
  size_t i;

  for (i = 0; i < inf->n_handlers; i++)
    if (inf->handlers[i].add != NULL)
      inf->handlers[i].add(inf->handlers[i].ud, obj);
}

static void deliver_update(struct informer *inf, const struct obj_meta *old,
                           const struct obj_meta *cur)
{
  size_t i;

  for (i = 0; i < inf->n_handlers; i++)
    if (inf->handlers[i].update != NULL)
      inf->handlers[i].update(inf->handlers[i].ud, old, cur);
}

static void deliver_del(struct informer *inf, const struct obj_meta *old)
{
  size_t i;

  for (i = 0; i < inf->n_handlers; i++)
    if (inf->handlers[i].del != NULL)
      inf->handlers[i].del(inf->handlers[i].ud, old);
}

/* Store obj (taking the caller's reference) and tell the handlers. The
 * old object stays referenced until the handlers return. */
static void apply_upsert(struct informer *inf, struct obj_meta *obj)
{
  struct obj_meta *old;
  int err = 0;

  pthread_mutex_lock(&inf->deliver);
  old = store_put(inf->store, obj, &err);
  if (err != 0) {
    pthread_mutex_unlock(&inf->deliver);
    log_msg(CCM_LOG_ERROR, inf->prefix, "out of memory caching %s",
            obj->name);
    obj_unref(obj);
    return;
  }
  if (old == NULL)
    deliver_add(inf, obj);
  else if (old != obj)
    deliver_update(inf, old, obj);
  pthread_mutex_unlock(&inf->deliver);
  obj_unref(old);
}

static void apply_delete(struct informer *inf, const char *ns,
                         const char *name)
{
  struct obj_meta *old;

  pthread_mutex_lock(&inf->deliver);
  old = store_remove(inf->store, ns, name);
  if (old != NULL)
    deliver_del(inf, old);
  pthread_mutex_unlock(&inf->deliver);
  obj_unref(old);
}

/* ---- JSON helpers ------------------------------------------------------------- */

static const char *json_str(const cJSON *obj, const char *a, const char *b)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, a);

  if (b != NULL)
    v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, b) : NULL;
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The cache key of an object we could not decode, to keep or delete the
 * cached version. */
static bool json_key(const cJSON *item, enum obj_kind kind, const char **ns,
                     const char **name)
{
  *name = json_str(item, "metadata", "name");
  *ns = kind == OBJ_KIND_SERVICE ? json_str(item, "metadata", "namespace")
                                 : NULL;
  if (*name == NULL || (kind == OBJ_KIND_SERVICE && *ns == NULL))
    return false;
  return true;
}

/* ---- list ------------------------------------------------------------------------ */

/* Decode one list item into next: the cached object when its
 * resourceVersion is unchanged (no copy), else the new decode. */
static void list_item(struct informer *inf, const cJSON *item,
                      struct store *next)
{
  struct obj_meta *obj = NULL;
  struct obj_meta *cur = NULL;
  struct obj_meta *old;
  char err[256];
  int perr = 0;
  int rc = obj_decode(inf->kind, item, &obj, err, sizeof(err));

  if (rc != OBJ_OK) {
    const char *ns;
    const char *name;

    STAT_ADD(inf, decode_errors, 1);
    if (!json_key(item, inf->kind, &ns, &name)) {
      log_msg(CCM_LOG_WARN, inf->prefix, "skipping a list item: %s", err);
      return;
    }
    log_msg(CCM_LOG_WARN, inf->prefix,
            "skipping %s%s%s: %s (keeping the cached version, if any)",
            ns != NULL ? ns : "", ns != NULL ? "/" : "", name, err);
    /* Never let bad input look like a deletion. */
    cur = store_get(inf->store, ns, name);
    if (cur == NULL)
      return;
    obj = cur;
  } else {
    cur = store_get(inf->store, obj->ns, obj->name);
    if (cur != NULL && cur->resource_version != NULL &&
        obj->resource_version != NULL &&
        strcmp(cur->resource_version, obj->resource_version) == 0) {
      obj_unref(obj);
      obj = cur;
    } else {
      obj_unref(cur);
    }
  }
  old = store_put(next, obj, &perr);
  if (perr != 0) {
    log_msg(CCM_LOG_ERROR, inf->prefix, "out of memory during list");
    obj_unref(obj);
  }
  obj_unref(old);
}

/* One page; returns a kube_status and fills *cont (mem_strdup) and rv. */
static int list_page(struct informer *inf, const char *cont,
                     struct store *next, char **next_cont, char *rv,
                     size_t rvlen)
{
  struct kube_response resp;
  char *enc = NULL;
  char *path = NULL;
  size_t plen;
  cJSON *root = NULL;
  const cJSON *items;
  const cJSON *item;
  const char *s;
  int rc;

  *next_cont = NULL;
  memset(&resp, 0, sizeof(resp));
  if (cont != NULL) {
    enc = url_encode(cont);
    if (enc == NULL)
      return KUBE_ERROR;
  }
  plen = strlen(inf->path) + 64 + (enc != NULL ? strlen(enc) : 0) +
         (inf->selector != NULL ? strlen(inf->selector) : 0);
  path = mem_alloc(plen);
  if (path == NULL) {
    rc = KUBE_ERROR;
    goto fail;
  }
  snprintf(path, plen, "%s?limit=%" PRIu32 "%s%s%s%s", inf->path,
           inf->cfg.page_size, enc != NULL ? "&continue=" : "",
           enc != NULL ? enc : "", inf->selector != NULL ? "&labelSelector=" : "",
           inf->selector != NULL ? inf->selector : "");
  rc = inf->ops.list(inf->ops.ctx, path, &resp);
  if (rc != KUBE_OK) {
    if (resp.http_status == 410)
      rc = KUBE_GONE;
    log_msg(CCM_LOG_WARN, inf->prefix, "list failed: %s (HTTP %ld) %s",
            kube_status_name(rc), resp.http_status, resp.message);
    goto fail;
  }
  root = resp.body != NULL ? cJSON_ParseWithLength(resp.body, resp.len) : NULL;
  items = root != NULL ? cJSON_GetObjectItemCaseSensitive(root, "items") : NULL;
  if (root == NULL || (items != NULL && !cJSON_IsArray(items) &&
                       !cJSON_IsNull(items))) {
    log_msg(CCM_LOG_WARN, inf->prefix, "list: malformed response");
    rc = KUBE_ERROR;
    goto fail;
  }
  if (cJSON_IsArray(items)) {
    cJSON_ArrayForEach(item, items)
      list_item(inf, item, next);
  }
  s = json_str(root, "metadata", "resourceVersion");
  if (s != NULL)
    snprintf(rv, rvlen, "%s", s);
  s = json_str(root, "metadata", "continue");
  if (s != NULL && s[0] != '\0') {
    *next_cont = mem_strdup(s);
    if (*next_cont == NULL)
      rc = KUBE_ERROR;
  }
fail:
  cJSON_Delete(root);
  if (inf->ops.response_free != NULL)
    inf->ops.response_free(inf->ops.ctx, &resp);
  mem_free(path);
  mem_free(enc);
  return rc;
}

/* Replace the cache with next: add or update what is new or changed,
 * delete what is gone. */
static void list_apply(struct informer *inf, struct store *next)
{
  struct obj_meta **v = NULL;
  size_t n = 0;
  size_t i;

  if (store_list(next, &v, &n) != 0) {
    log_msg(CCM_LOG_ERROR, inf->prefix, "out of memory applying a list");
    return;
  }
  for (i = 0; i < n; i++) {
    struct obj_meta *cur = store_get(inf->store, v[i]->ns, v[i]->name);

    /* Unchanged objects are the same pointer: no event. */
    if (cur != v[i])
      apply_upsert(inf, obj_ref(v[i]));
    obj_unref(cur);
  }
  store_list_free(v, n);
  if (store_list(inf->store, &v, &n) != 0) {
    log_msg(CCM_LOG_ERROR, inf->prefix, "out of memory applying a list");
    return;
  }
  for (i = 0; i < n; i++) {
    struct obj_meta *keep = store_get(next, v[i]->ns, v[i]->name);

    if (keep == NULL)
      apply_delete(inf, v[i]->ns, v[i]->name);
    obj_unref(keep);
  }
  store_list_free(v, n);
}

static int do_list(struct informer *inf)
{
  struct store *next = store_new();
  char *cont = NULL;
  char rv[128] = "";
  int rc = KUBE_ERROR;

  if (next == NULL)
    return KUBE_ERROR;
  do {
    char *more = NULL;

    rc = list_page(inf, cont, next, &more, rv, sizeof(rv));
    mem_free(cont);
    cont = more;
  } while (rc == KUBE_OK && cont != NULL && !atomic_load(&inf->stop));
  if (rc == KUBE_OK && !atomic_load(&inf->stop)) {
    list_apply(inf, next);
    rv_set(inf, rv);
    STAT_ADD(inf, lists, 1);
    log_msg(CCM_LOG_DEBUG, inf->prefix, "listed %zu objects at %s",
            store_len(inf->store), rv);
    if (!atomic_exchange(&inf->synced, true))
      wake_all(inf);
  } else if (rc != KUBE_OK) {
    STAT_ADD(inf, list_errors, 1);
  }
  mem_free(cont);
  store_free(next);
  return rc;
}

/* ---- watch ------------------------------------------------------------------------- */

static void watch_object(struct informer *inf, const char *type,
                         const cJSON *object)
{
  struct obj_meta *obj = NULL;
  char err[256];
  const char *rv = json_str(object, "metadata", "resourceVersion");
  int rc = obj_decode(inf->kind, object, &obj, err, sizeof(err));

  if (strcmp(type, "DELETED") == 0) {
    const char *ns;
    const char *name;

    if (rc == OBJ_OK)
      apply_delete(inf, obj->ns, obj->name);
    else if (json_key(object, inf->kind, &ns, &name))
      apply_delete(inf, ns, name); /* gone is gone, even if malformed */
    else
      STAT_ADD(inf, decode_errors, 1);
    obj_unref(obj);
  } else if (rc == OBJ_OK) {
    apply_upsert(inf, obj);
  } else {
    STAT_ADD(inf, decode_errors, 1);
    log_msg(CCM_LOG_WARN, inf->prefix,
            "skipping a %s event: %s (keeping the cached version)", type, err);
  }
  STAT_ADD(inf, events, 1);
  rv_set(inf, rv);
}

static int watch_line(const char *line, size_t len, void *ud)
{
  struct informer *inf = ud;
  cJSON *root;
  const cJSON *object;
  const char *type;

  inf->watch_lines++;
  if (len > CCM_INFORMER_MAX_LINE) {
    STAT_ADD(inf, decode_errors, 1);
    log_msg(CCM_LOG_WARN, inf->prefix, "skipping a %zu-byte watch event", len);
    return 0;
  }
  root = json_arena_parse(&inf->watch_arena, line, len);
  type = json_str(root, "type", NULL);
  object = cJSON_GetObjectItemCaseSensitive(root, "object");
  if (root == NULL || type == NULL || !cJSON_IsObject(object)) {
    STAT_ADD(inf, decode_errors, 1);
    log_msg(CCM_LOG_WARN, inf->prefix, "skipping a malformed watch event");
    json_arena_reset(&inf->watch_arena);
    return 0;
  }
  if (strcmp(type, "ERROR") == 0) {
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(object, "code");
    const char *msg = json_str(object, "message", NULL);

    if (cJSON_IsNumber(code) && code->valuedouble == 410.0) {
      inf->watch_gone = true;
      log_msg(CCM_LOG_INFO, inf->prefix, "watch expired (410): relisting");
    } else {
      inf->watch_failed = true;
      log_msg(CCM_LOG_WARN, inf->prefix, "watch error: %s",
              msg != NULL ? msg : "(no message)");
    }
    json_arena_reset(&inf->watch_arena);
    return 1;
  }
  if (strcmp(type, "BOOKMARK") == 0) {
    /* Bookmarks move the resourceVersion and nothing else. */
    rv_set(inf, json_str(object, "metadata", "resourceVersion"));
    STAT_ADD(inf, bookmarks, 1);
  } else if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0 ||
             strcmp(type, "DELETED") == 0) {
    watch_object(inf, type, object);
  } else {
    STAT_ADD(inf, decode_errors, 1);
    log_msg(CCM_LOG_WARN, inf->prefix, "ignoring a watch event of type %.32s",
            type);
  }
  json_arena_reset(&inf->watch_arena);
  return 0;
}

enum watch_end { WATCH_CLOSED, WATCH_GONE, WATCH_FAILED };

static enum watch_end do_watch(struct informer *inf)
{
  struct kube_response resp;
  char rv[128];
  char *path;
  size_t plen;
  uint32_t timeout = inf->cfg.watch_timeout_s;
  int rc;

  rv_get(inf, rv, sizeof(rv));
  if (timeout == 0)
    timeout = 300 + (uint32_t)(rand_r(&inf->seed) % 300);
  plen = strlen(inf->path) + strlen(rv) + 160 +
         (inf->selector != NULL ? strlen(inf->selector) : 0);
  path = mem_alloc(plen);
  if (path == NULL)
    return WATCH_FAILED;
  snprintf(path, plen,
           "%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s"
           "&timeoutSeconds=%" PRIu32 "%s%s",
           inf->path, rv, timeout, inf->selector != NULL ? "&labelSelector=" : "",
           inf->selector != NULL ? inf->selector : "");
  memset(&resp, 0, sizeof(resp));
  inf->watch_gone = false;
  inf->watch_failed = false;
  inf->watch_lines = 0;
  STAT_ADD(inf, watches, 1);
  rc = inf->ops.watch(inf->ops.ctx, path, watch_line, inf, &inf->stop, &resp);
  mem_free(path);
  if (rc == KUBE_GONE || resp.http_status == 410)
    inf->watch_gone = true;
  else if (rc != KUBE_OK && !inf->watch_gone && !atomic_load(&inf->stop)) {
    inf->watch_failed = true;
    log_msg(CCM_LOG_WARN, inf->prefix, "watch failed: %s (HTTP %ld) %s",
            kube_status_name(rc), resp.http_status, resp.message);
  }
  if (inf->ops.response_free != NULL)
    inf->ops.response_free(inf->ops.ctx, &resp);
  if (inf->watch_gone)
    return WATCH_GONE;
  if (inf->watch_failed) {
    STAT_ADD(inf, watch_errors, 1);
    return WATCH_FAILED;
  }
  return WATCH_CLOSED;
}

/* ---- threads ---------------------------------------------------------------------- */

static void *watch_main(void *arg)
{
  struct informer *inf = arg;
  uint32_t delay = inf->cfg.backoff_min_ms;
  bool need_list = true;
  char tname[16];

  snprintf(tname, sizeof(tname), "watch-%s", inf->name);
  thread_name(tname);

  while (!atomic_load(&inf->stop)) {
    enum watch_end end;

    if (need_list) {
      if (do_list(inf) != KUBE_OK) {
        if (backoff_sleep(inf, &delay))
          break;
        continue;
      }
      need_list = false;
      delay = inf->cfg.backoff_min_ms;
    }
    end = do_watch(inf);
    if (atomic_load(&inf->stop))
      break;
    if (end == WATCH_GONE) {
      STAT_ADD(inf, relists_gone, 1);
      need_list = true;
      /* A watch that expires before any event: the server may be
       * restarting; do not spin. */
      if (inf->watch_lines == 0 && backoff_sleep(inf, &delay))
        break;
    } else if (end == WATCH_FAILED || inf->watch_lines == 0) {
      /* Failures and empty closes back off; the next watch resumes from
       * the last resourceVersion and a 410 there triggers a relist. */
      if (backoff_sleep(inf, &delay))
        break;
    } else {
      delay = inf->cfg.backoff_min_ms;
    }
  }
  return NULL;
}

static void resync_round(struct informer *inf)
{
  struct obj_meta **v = NULL;
  size_t n = 0;
  size_t i;

  if (store_list(inf->store, &v, &n) != 0)
    return;
  for (i = 0; i < n && !atomic_load(&inf->stop); i++) {
    struct obj_meta *cur;

    pthread_mutex_lock(&inf->deliver);
    /* Only what is still cached, and as cached now. */
    cur = store_get(inf->store, v[i]->ns, v[i]->name);
    if (cur != NULL)
      deliver_update(inf, cur, cur);
    pthread_mutex_unlock(&inf->deliver);
    obj_unref(cur);
  }
  store_list_free(v, n);
  STAT_ADD(inf, resyncs, 1);
}

static void *resync_main(void *arg)
{
  struct informer *inf = arg;

  thread_name("resync");

  while (!sleep_or_stop(inf, inf->cfg.resync_ms))
    if (atomic_load(&inf->synced))
      resync_round(inf);
  return NULL;
}

/* ---- public API -------------------------------------------------------------------- */

int informer_new(const struct informer_config *cfg,
                 const struct informer_ops *ops, struct informer **out)
{
  struct informer *inf;

  *out = NULL;
  if (cfg == NULL || ops == NULL || cfg->path == NULL || ops->list == NULL ||
      ops->watch == NULL ||
      (cfg->kind != OBJ_KIND_NODE && cfg->kind != OBJ_KIND_SERVICE))
    return -1;
  inf = mem_calloc(1, sizeof(*inf));
  if (inf == NULL)
    return -1;
  inf->cfg = *cfg;
  inf->ops = *ops;
  inf->kind = cfg->kind;
  inf->name = mem_strdup(cfg->name != NULL ? cfg->name : cfg->path);
  inf->path = mem_strdup(cfg->path);
  inf->store = store_new();
  if (inf->name == NULL || inf->path == NULL || inf->store == NULL)
    goto fail;
  if (cfg->label_selector != NULL) {
    inf->selector = url_encode(cfg->label_selector);
    if (inf->selector == NULL)
      goto fail;
  }
  inf->cfg.name = inf->name;
  inf->cfg.path = inf->path;
  inf->cfg.label_selector = NULL;
  if (inf->cfg.page_size == 0)
    inf->cfg.page_size = CCM_INFORMER_PAGE_SIZE;
  if (inf->cfg.backoff_min_ms == 0)
    inf->cfg.backoff_min_ms = 800;
  if (inf->cfg.backoff_max_ms == 0)
    inf->cfg.backoff_max_ms = 30000;
  if (inf->cfg.backoff_max_ms < inf->cfg.backoff_min_ms)
    inf->cfg.backoff_max_ms = inf->cfg.backoff_min_ms;
  snprintf(inf->prefix, sizeof(inf->prefix), "informer/%s", inf->name);
  inf->seed = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)inf;
  pthread_mutex_init(&inf->deliver, NULL);
  pthread_mutex_init(&inf->wait_lock, NULL);
  pthread_mutex_init(&inf->stats_lock, NULL);
  thread_cond_init_mono(&inf->wait_cond);
  *out = inf;
  return 0;
fail:
  store_free(inf->store);
  mem_free(inf->selector);
  mem_free(inf->name);
  mem_free(inf->path);
  mem_free(inf);
  return -1;
}

int informer_add_handlers(struct informer *inf,
                          const struct informer_handlers *h)
{
  if (inf == NULL || h == NULL || inf->started ||
      inf->n_handlers >= CCM_INFORMER_MAX_HANDLERS)
    return -1;
  inf->handlers[inf->n_handlers++] = *h;
  return 0;
}

int informer_start(struct informer *inf)
{
  if (inf == NULL || inf->started)
    return -1;
  atomic_store(&inf->stop, false);
  json_arena_setup();
  if (pthread_create(&inf->watch_thread, NULL, watch_main, inf) != 0)
    return -1;
  inf->started = true;
  if (inf->cfg.resync_ms > 0) {
    if (pthread_create(&inf->resync_thread, NULL, resync_main, inf) != 0) {
      informer_stop(inf);
      return -1;
    }
    inf->resync_started = true;
  }
  log_msg(CCM_LOG_DEBUG, inf->prefix, "started (%s)", inf->path);
  return 0;
}

void informer_stop(struct informer *inf)
{
  if (inf == NULL || !inf->started)
    return;
  atomic_store(&inf->stop, true);
  wake_all(inf);
  pthread_join(inf->watch_thread, NULL);
  if (inf->resync_started)
    pthread_join(inf->resync_thread, NULL);
  inf->started = false;
  inf->resync_started = false;
}

void informer_free(struct informer *inf)
{
  if (inf == NULL)
    return;
  informer_stop(inf);
  store_free(inf->store);
  json_arena_free(&inf->watch_arena);
  pthread_mutex_destroy(&inf->deliver);
  pthread_mutex_destroy(&inf->wait_lock);
  pthread_mutex_destroy(&inf->stats_lock);
  pthread_cond_destroy(&inf->wait_cond);
  mem_free(inf->selector);
  mem_free(inf->name);
  mem_free(inf->path);
  mem_free(inf);
}

bool informer_has_synced(struct informer *inf)
{
  return inf != NULL && atomic_load(&inf->synced);
}

bool informer_wait_synced(struct informer *inf, uint32_t timeout_ms)
{
  struct timespec until = thread_deadline_in(timeout_ms);
  bool synced;

  if (inf == NULL)
    return false;
  pthread_mutex_lock(&inf->wait_lock);
  while (!atomic_load(&inf->synced) && !atomic_load(&inf->stop)) {
    if (pthread_cond_timedwait(&inf->wait_cond, &inf->wait_lock, &until) ==
        ETIMEDOUT)
      break;
  }
  synced = atomic_load(&inf->synced);
  pthread_mutex_unlock(&inf->wait_lock);
  return synced;
}

struct store *informer_store(struct informer *inf)
{
  return inf != NULL ? inf->store : NULL;
}

void informer_get_stats(struct informer *inf, struct informer_stats *out)
{
  pthread_mutex_lock(&inf->stats_lock);
  *out = inf->stats;
  pthread_mutex_unlock(&inf->stats_lock);
}
