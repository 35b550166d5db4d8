/*
 * events.c: the Event recorder: a bounded queue, one sender thread, a
 * correlator cache (key -> Event name, count, firstTimestamp) and
 * per-object spam buckets. The lock guards the queue, the caches and the
 * stats; the sender drops it before every API call.
 */
#include "kube/events.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kube/jsonw.h"
#include "kube/writes.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/thread.h"

#define CCM_EVENTS_BUCKETS 1024
#define CCM_EVENTS_LOG "events"

#define EV_ITEM_STRINGS 9 /* the char * fields below, stored after the item */

struct ev_item {
  struct ev_item *next;
  char *api_version, *kind, *ns, *name, *uid, *rv;
  char *type, *reason, *message;
  char ts[32]; /* RFC 3339, seconds */
  int64_t ts_ns;
};

/* One cache entry: correlator (Event name, count) or spam bucket. */
struct ev_entry {
  struct ev_entry *next;           /* in its hash bucket */
  struct ev_entry *newer, *older;  /* in the cache's use order */
  char *key;
  /* correlator */
  char *event_name;
  char *event_ns;
  long count;
  char first_ts[32];
  /* spam filter */
  struct limiter bucket;
  bool has_bucket;
};

/* client-go's LRU caches: a full cache drops the least recently used
 * entry, found in O(1) at the old end of the use order (with 10,000
 * Services every new Event evicts). */
struct ev_cache {
  struct ev_entry *b[CCM_EVENTS_BUCKETS];
  struct ev_entry *newest, *oldest;
  size_t n;
  size_t max;
};

struct kube_events {
  struct kube_client *client;
  char *component;
  char *host;
  double spam_qps;
  int spam_burst;
  size_t queue_max;
  limiter_clock_fn *clock;
  void *clock_ud;

  pthread_mutex_t lock;
  pthread_cond_t cond;      /* queue non-empty, or stop (monotonic) */
  bool sleeping;            /* the sender waits without a timeout */
  pthread_cond_t idle;      /* pending reached 0 */
  struct ev_item *head, *tail;
  size_t queued;
  size_t pending;           /* queued + in flight */
  bool stop;
  struct ev_cache corr;
  struct ev_cache spam;
  struct kube_events_stats stats;
  pthread_t thread;
};

/* ---- cache ---------------------------------------------------------------- */

static uint32_t ev_hash(const char *s)
{
  uint32_t h = 2166136261u;

  for (; *s != '\0'; s++) {
    h ^= (unsigned char)*s;
    h *= 16777619u;
  }
  return h;
}

static void ev_entry_free(struct ev_entry *en)
{
  if (en->has_bucket)
    limiter_destroy(&en->bucket);
  mem_free(en->key);
  mem_free(en->event_name);
  mem_free(en->event_ns);
  mem_free(en);
}

static void ev_lru_unlink(struct ev_cache *c, struct ev_entry *en)
{
  if (en->newer != NULL)
    en->newer->older = en->older;
  else
    c->newest = en->older;
  if (en->older != NULL)
    en->older->newer = en->newer;
  else
    c->oldest = en->newer;
  en->newer = en->older = NULL;
}

static void ev_lru_push(struct ev_cache *c, struct ev_entry *en)
{
  en->older = c->newest;
  en->newer = NULL;
  if (c->newest != NULL)
    c->newest->newer = en;
  c->newest = en;
  if (c->oldest == NULL)
    c->oldest = en;
}

static struct ev_entry *ev_find(struct ev_cache *c, const char *key)
{
  struct ev_entry *en;

  for (en = c->b[ev_hash(key) % CCM_EVENTS_BUCKETS]; en != NULL;
       en = en->next) {
    if (strcmp(en->key, key) == 0) {
      ev_lru_unlink(c, en);
      ev_lru_push(c, en);
      return en;
    }
  }
  return NULL;
}

/* Drop the least recently used entry. */
static void ev_evict(struct ev_cache *c)
{
  struct ev_entry *victim = c->oldest, **pp;

  if (victim == NULL)
    return;
  pp = &c->b[ev_hash(victim->key) % CCM_EVENTS_BUCKETS];
  while (*pp != victim)
    pp = &(*pp)->next;
  *pp = victim->next;
  ev_lru_unlink(c, victim);
  ev_entry_free(victim);
  c->n--;
}

static struct ev_entry *ev_add(struct ev_cache *c, const char *key)
{
  struct ev_entry *en;
  uint32_t h;

  if (c->n >= c->max)
    ev_evict(c);
  en = mem_calloc(1, sizeof *en);
  if (en == NULL)
    return NULL;
  en->key = mem_strdup(key);
  if (en->key == NULL) {
    mem_free(en);
    return NULL;
  }
  h = ev_hash(key) % CCM_EVENTS_BUCKETS;
  en->next = c->b[h];
  c->b[h] = en;
  ev_lru_push(c, en);
  c->n++;
  return en;
}

static void ev_cache_clear(struct ev_cache *c)
{
  struct ev_entry *en, *next;
  size_t i;

  for (i = 0; i < CCM_EVENTS_BUCKETS; i++) {
    for (en = c->b[i]; en != NULL; en = next) {
      next = en->next;
      ev_entry_free(en);
    }
    c->b[i] = NULL;
  }
  c->newest = c->oldest = NULL;
  c->n = 0;
}

/* ---- items ------------------------------------------------------------------ */

/* An item and its strings are one allocation. */
static void ev_item_free(struct ev_item *it)
{
  mem_free(it);
}

static char *ev_dup(const char *s)
{
  return mem_strdup(s != NULL ? s : "");
}

/* RFC 3339 in UTC to the second, as Events carry it. */
static void ev_now(struct ev_item *it)
{
  struct timespec ts;
  struct tm tm;
  char *p = it->ts;
  int f[6], i;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  f[0] = tm.tm_year + 1900;
  f[1] = tm.tm_mon + 1;
  f[2] = tm.tm_mday;
  f[3] = tm.tm_hour;
  f[4] = tm.tm_min;
  f[5] = tm.tm_sec;
  for (i = 3; i >= 0; i--, f[0] /= 10)
    p[i] = (char)('0' + f[0] % 10);
  p += 4;
  for (i = 1; i < 6; i++) {
    *p++ = "--T::"[i - 1];
    *p++ = (char)('0' + f[i] / 10 % 10);
    *p++ = (char)('0' + f[i] % 10);
  }
  *p++ = 'Z';
  *p = '\0';
  it->ts_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Keys; fields are joined with a byte that cannot appear in them. The
 * sender builds two per Event, so without a format string. */
static char *ev_key(const struct kube_events *e, const struct ev_item *it,
                    bool with_event)
{
  const char *f[] = {e->component, e->host, it->api_version, it->kind,
                     it->ns, it->name, it->uid, it->type, it->reason,
                     it->message};

  return mem_join(f, with_event ? 10 : 7, '\x01');
}

/* ---- API calls (no lock held) ---------------------------------------------- */

static const char *ev_ns(const struct ev_item *it)
{
  return it->ns[0] != '\0' ? it->ns : "default";
}

/* The Event as JSON text: written directly, since the sender builds one or
 * two per reconcile. Optional fields are left out when empty. */
static bool ev_body(const struct kube_events *e, const struct ev_item *it,
                    const char *name, long count, const char *first_ts,
                    struct jsonw *w)
{
  char num[24];

  jsonw_pair(w, "{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{"
                "\"name\":", name);
  jsonw_pair(w, ",\"namespace\":", ev_ns(it));
  jsonw_pair(w, "},\"involvedObject\":{\"kind\":", it->kind);
  jsonw_pair(w, ",\"name\":", it->name);
  jsonw_pair(w, ",\"apiVersion\":", it->api_version);
  if (it->ns[0] != '\0')
    jsonw_pair(w, ",\"namespace\":", it->ns);
  if (it->uid[0] != '\0')
    jsonw_pair(w, ",\"uid\":", it->uid);
  if (it->rv[0] != '\0')
    jsonw_pair(w, ",\"resourceVersion\":", it->rv);
  jsonw_pair(w, "},\"reason\":", it->reason);
  jsonw_pair(w, ",\"message\":", it->message);
  jsonw_pair(w, ",\"type\":", it->type);
  jsonw_pair(w, ",\"source\":{\"component\":", e->component);
  if (e->host[0] != '\0')
    jsonw_pair(w, ",\"host\":", e->host);
  jsonw_pair(w, "},\"firstTimestamp\":", first_ts);
  jsonw_pair(w, ",\"lastTimestamp\":", it->ts);
  snprintf(num, sizeof num, ",\"count\":%ld", count);
  jsonw_raw(w, num);
  jsonw_pair(w, ",\"reportingComponent\":", e->component);
  jsonw_pair(w, ",\"reportingInstance\":", e->host);
  jsonw_raw(w, "}");
  return jsonw_ok(w);
}

static int ev_create(struct kube_events *e, const struct ev_item *it,
                     const char *name, long count, const char *first_ts)
{
  char path[512], msg[256], buf[2048];
  struct jsonw w;
  int st = KUBE_ERROR;

  if (kube_path(path, sizeof path, "/api/v1", "events", ev_ns(it), NULL,
                NULL) != 0)
    return KUBE_ERROR;
  jsonw_init(&w, buf, sizeof buf);
  if (ev_body(e, it, name, count, first_ts, &w))
    st = kube_create_text(e->client, path, w.p, w.len, msg, sizeof msg);
  else
    snprintf(msg, sizeof msg, "out of memory");
  jsonw_free(&w);
  if (st != KUBE_OK)
    log_msg(CCM_LOG_DEBUG, CCM_EVENTS_LOG, "create event %s/%s: %s",
            ev_ns(it), name, msg);
  return st;
}

static int ev_patch(struct kube_events *e, const struct ev_item *it,
                    const char *ns, const char *name, long count)
{
  char path[512], msg[256], buf[1024], num[32];
  struct jsonw w;
  int st = KUBE_ERROR;

  if (kube_path(path, sizeof path, "/api/v1", "events", ns, name, NULL) != 0)
    return KUBE_ERROR;
  jsonw_init(&w, buf, sizeof buf);
  snprintf(num, sizeof num, "{\"count\":%ld,\"lastTimestamp\":", count);
  jsonw_raw(&w, num);
  jsonw_str(&w, it->ts);
  jsonw_pair(&w, ",\"message\":", it->message);
  jsonw_raw(&w, "}");
  if (jsonw_ok(&w))
    st = kube_patch_merge_text(e->client, path, w.p, w.len, msg, sizeof msg);
  else
    snprintf(msg, sizeof msg, "out of memory");
  jsonw_free(&w);
  if (st != KUBE_OK && st != KUBE_NOT_FOUND)
    log_msg(CCM_LOG_DEBUG, CCM_EVENTS_LOG, "patch event %s/%s: %s", ns,
            name, msg);
  return st;
}

/* ---- the sender --------------------------------------------------------------- */

static void ev_send(struct kube_events *e, struct ev_item *it)
{
  struct ev_entry *en;
  char *skey = NULL, *ckey = NULL, *name = NULL, *ns = NULL;
  char first_ts[32], gen[300];
  long count = 1;
  bool patch = false;
  int st;

  skey = ev_key(e, it, false);
  ckey = ev_key(e, it, true);
  if (skey == NULL || ckey == NULL)
    goto fail;

  pthread_mutex_lock(&e->lock);
  if (e->spam_qps > 0) {
    en = ev_find(&e->spam, skey);
    if (en == NULL) {
      en = ev_add(&e->spam, skey);
      if (en != NULL) {
        limiter_init(&en->bucket, e->spam_qps, e->spam_burst, e->clock,
                     e->clock_ud);
        en->has_bucket = true;
      }
    }
    if (en != NULL && limiter_try(&en->bucket) != 0) {
      e->stats.dropped_spam++;
      pthread_mutex_unlock(&e->lock);
      goto done;
    }
  }
  en = ev_find(&e->corr, ckey);
  if (en != NULL && en->event_name != NULL) {
    patch = true;
    count = en->count + 1;
    en->count = count; /* claim the count before the call */
    name = mem_strdup(en->event_name);
    ns = mem_strdup(en->event_ns);
    snprintf(first_ts, sizeof first_ts, "%s", en->first_ts);
  } else {
    snprintf(first_ts, sizeof first_ts, "%s", it->ts);
  }
  pthread_mutex_unlock(&e->lock);

  st = KUBE_NOT_FOUND;
  if (patch && name != NULL && ns != NULL) {
    st = ev_patch(e, it, ns, name, count);
    if (st == KUBE_OK) {
      pthread_mutex_lock(&e->lock);
      e->stats.patched++;
      pthread_mutex_unlock(&e->lock);
      goto done;
    }
  }
  if (st != KUBE_NOT_FOUND)
    goto fail;
  /* New, or the aggregated Event was deleted: create it (with the count,
   * as client-go does). */
  snprintf(gen, sizeof gen, "%s.%llx", it->name,
           (unsigned long long)it->ts_ns);
  st = ev_create(e, it, gen, count, first_ts);
  if (st != KUBE_OK)
    goto fail;
  pthread_mutex_lock(&e->lock);
  e->stats.created++;
  en = ev_find(&e->corr, ckey);
  if (en == NULL)
    en = ev_add(&e->corr, ckey);
  if (en != NULL) {
    mem_free(en->event_name);
    mem_free(en->event_ns);
    en->event_name = mem_strdup(gen);
    en->event_ns = mem_strdup(ev_ns(it));
    en->count = count;
    snprintf(en->first_ts, sizeof en->first_ts, "%s", first_ts);
    if (en->event_name == NULL || en->event_ns == NULL) {
      mem_free(en->event_name);
      en->event_name = NULL;
    }
  }
  pthread_mutex_unlock(&e->lock);
  goto done;
fail:
  pthread_mutex_lock(&e->lock);
  e->stats.failed++;
  pthread_mutex_unlock(&e->lock);
done:
  mem_free(skey);
  mem_free(ckey);
  mem_free(name);
  mem_free(ns);
}

static void *ev_main(void *arg)
{
  struct kube_events *e = arg;
  struct ev_item *it;
  uint32_t quiet = CCM_EVENTS_LINGER_ROUNDS;

  thread_name("kube-events");

  pthread_mutex_lock(&e->lock);
  for (;;) {
    /* While Events flow, look for more every CCM_EVENTS_LINGER_MS rather
     * than being woken for each: a wake-up costs the emitting worker more
     * than the Event. After a quiet second, sleep until woken. */
    while (e->head == NULL && !e->stop) {
      if (quiet >= CCM_EVENTS_LINGER_ROUNDS) {
        e->sleeping = true;
        pthread_cond_wait(&e->cond, &e->lock);
        e->sleeping = false;
      } else {
        thread_cond_wait_ms(&e->cond, &e->lock, CCM_EVENTS_LINGER_MS);
        quiet++;
      }
    }
    if (e->head == NULL)
      break;
    quiet = 0;
    it = e->head;
    e->head = it->next;
    if (e->head == NULL)
      e->tail = NULL;
    e->queued--;
    pthread_mutex_unlock(&e->lock);
    ev_send(e, it);
    ev_item_free(it);
    pthread_mutex_lock(&e->lock);
    e->pending--;
    if (e->pending == 0)
      pthread_cond_broadcast(&e->idle);
  }
  pthread_mutex_unlock(&e->lock);
  return NULL;
}

/* ---- public ------------------------------------------------------------------ */

int kube_events_new(struct kube_client *c, const struct kube_events_opts *o,
                    struct kube_events **out, char *err, size_t errlen)
{
  struct kube_events *e;

  *out = NULL;
  e = mem_calloc(1, sizeof *e);
  if (e == NULL)
    goto oom;
  e->client = c;
  e->component = ev_dup(o->component != NULL ? o->component : "ccm-host");
  e->host = ev_dup(o->host);
  if (e->component == NULL || e->host == NULL)
    goto oom;
  e->spam_qps = o->spam_qps != 0 ? o->spam_qps : CCM_EVENTS_SPAM_QPS;
  e->spam_burst = o->spam_burst > 0 ? o->spam_burst : CCM_EVENTS_SPAM_BURST;
  e->queue_max = o->queue_max > 0 ? o->queue_max : CCM_EVENTS_QUEUE_MAX;
  e->corr.max = o->cache_max > 0 ? o->cache_max : CCM_EVENTS_CACHE_MAX;
  e->spam.max = e->corr.max;
  e->clock = o->clock;
  e->clock_ud = o->clock_ud;
  pthread_mutex_init(&e->lock, NULL);
  thread_cond_init_mono(&e->cond);
  pthread_cond_init(&e->idle, NULL);
  if (pthread_create(&e->thread, NULL, ev_main, e) != 0) {
    snprintf(err, errlen, "events: cannot start the sender thread");
    pthread_cond_destroy(&e->idle);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    goto fail;
  }
  *out = e;
  return 0;
oom:
  snprintf(err, errlen, "events: out of memory");
fail:
  if (e != NULL) {
    mem_free(e->component);
    mem_free(e->host);
    mem_free(e);
  }
  return -1;
}

void kube_events_free(struct kube_events *e)
{
  if (e == NULL)
    return;
  pthread_mutex_lock(&e->lock);
  e->stop = true;
  pthread_cond_broadcast(&e->cond);
  pthread_mutex_unlock(&e->lock);
  pthread_join(e->thread, NULL);
  ev_cache_clear(&e->corr);
  ev_cache_clear(&e->spam);
  pthread_cond_destroy(&e->idle);
  pthread_cond_destroy(&e->cond);
  pthread_mutex_destroy(&e->lock);
  mem_free(e->component);
  mem_free(e->host);
  mem_free(e);
}

/* One allocation for the item and its strings, in the order of the
 * struct's fields (NULL becomes ""). */
static struct ev_item *ev_item_new(const char *f[EV_ITEM_STRINGS])
{
  size_t len[EV_ITEM_STRINGS], need = sizeof(struct ev_item), i;
  struct ev_item *it;
  char **dst[EV_ITEM_STRINGS];
  char *cur;

  for (i = 0; i < EV_ITEM_STRINGS; i++) {
    if (f[i] == NULL)
      f[i] = "";
    len[i] = strlen(f[i]) + 1;
    need += len[i];
  }
  it = mem_alloc(need);
  if (it == NULL)
    return NULL;
  memset(it, 0, sizeof *it);
  dst[0] = &it->api_version;
  dst[1] = &it->kind;
  dst[2] = &it->ns;
  dst[3] = &it->name;
  dst[4] = &it->uid;
  dst[5] = &it->rv;
  dst[6] = &it->type;
  dst[7] = &it->reason;
  dst[8] = &it->message;
  cur = (char *)(it + 1);
  for (i = 0; i < EV_ITEM_STRINGS; i++) {
    *dst[i] = memcpy(cur, f[i], len[i]);
    cur += len[i];
  }
  return it;
}

/* Queue an Event whose message is ready (redacted and cut). */
static int ev_emit(struct kube_events *e, const struct kube_object_ref *obj,
                   const char *type, const char *reason, const char *msg)
{
  const char *f[EV_ITEM_STRINGS] = {
      obj->api_version, obj->kind, obj->ns, obj->name, obj->uid,
      obj->resource_version, type != NULL ? type : "Normal", reason, msg};
  struct ev_item *it = ev_item_new(f);

  if (it == NULL)
    return -1;
  ev_now(it);
  pthread_mutex_lock(&e->lock);
  if (e->queued >= e->queue_max || e->stop) {
    e->stats.dropped_queue++;
    pthread_mutex_unlock(&e->lock);
    ev_item_free(it);
    return -1;
  }
  if (e->tail != NULL)
    e->tail->next = it;
  else
    e->head = it;
  e->tail = it;
  e->queued++;
  e->pending++;
  e->stats.emitted++;
  if (e->sleeping)
    pthread_cond_signal(&e->cond);
  pthread_mutex_unlock(&e->lock);
  return 0;
}

int kube_event_emit(struct kube_events *e, const struct kube_object_ref *obj,
                    const char *type, const char *reason, const char *fmt,
                    ...)
{
  char msg[CCM_EVENTS_MESSAGE_MAX + 1];
  va_list ap;

  va_start(ap, fmt);
  log_vformat(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ev_emit(e, obj, type, reason, msg);
}

int kube_event_emit_text(struct kube_events *e,
                         const struct kube_object_ref *obj, const char *type,
                         const char *reason, const char *text)
{
  char msg[CCM_EVENTS_MESSAGE_MAX + 1];

  log_copy_redacted(msg, sizeof msg, text);
  return ev_emit(e, obj, type, reason, msg);
}

void kube_events_flush(struct kube_events *e)
{
  pthread_mutex_lock(&e->lock);
  while (e->pending > 0)
    pthread_cond_wait(&e->idle, &e->lock);
  pthread_mutex_unlock(&e->lock);
}

void kube_events_get_stats(struct kube_events *e,
                           struct kube_events_stats *out)
{
  pthread_mutex_lock(&e->lock);
  *out = e->stats;
  pthread_mutex_unlock(&e->lock);
}
