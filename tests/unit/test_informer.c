/*
 * test_informer.c: unit tests of host/kube/informer.c against a fake
 * transport injected through struct informer_ops (no network): paginated
 * list, watch events with old/new, bookmarks, 410 relists, backoff after
 * errors, bad events, resync, references held past replacement, stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/informer.h"
#include "util/log.h"
#include "util/mem.h"

/* ---- the fake API server ------------------------------------------------- */

#define FAKE_MAX 64
#define FAKE_EVENTS 256

struct fake_obj {
  char name[32];
  char json[512];
  bool live;
};

struct fake_event {
  long rv;
  char *line;
  bool delivered; /* ERROR events are sent once */
};

struct fake {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct fake_obj objs[FAKE_MAX];
  struct fake_event events[FAKE_EVENTS];
  size_t n_events;
  long rv;
  long compacted;       /* watches from below this rv get 410 */
  bool gone_as_http;    /* 410 as HTTP status instead of an ERROR event */
  int fail_lists;       /* fail the next n lists with UNAVAILABLE */
  int fail_watches;     /* fail the next n watches with UNAVAILABLE */
  bool drop;            /* end the current watches */
  int list_calls;
  int watch_calls;
  int watch_gone;
  char last_list_path[512];
  char last_watch_path[512];
};

static struct fake fk;

static void fake_reset(void)
{
  size_t i;

  for (i = 0; i < fk.n_events; i++)
    free(fk.events[i].line);
  pthread_mutex_destroy(&fk.lock);
  pthread_cond_destroy(&fk.cond);
  memset(&fk, 0, sizeof(fk));
  pthread_mutex_init(&fk.lock, NULL);
  pthread_cond_init(&fk.cond, NULL);
  fk.rv = 100;
}

static void obj_json(char *buf, size_t cap, const char *name, long rv,
                     const char *label)
{
  snprintf(buf, cap,
           "{\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\",\"uid\":\"uid-%s\","
           "\"resourceVersion\":\"%ld\",\"labels\":{\"l\":\"%s\"}},"
           "\"spec\":{\"providerID\":\"fake://%s\"}}",
           name, name, rv, label, name);
}

/* Append a raw watch line at the next rv; caller holds the lock. */
static void fake_push_locked(const char *line)
{
  assert_true(fk.n_events < FAKE_EVENTS);
  fk.events[fk.n_events].rv = fk.rv;
  fk.events[fk.n_events].line = strdup(line);
  fk.n_events++;
  pthread_cond_broadcast(&fk.cond);
}

static void fake_raw_event(const char *line)
{
  pthread_mutex_lock(&fk.lock);
  fk.rv++;
  fake_push_locked(line);
  pthread_mutex_unlock(&fk.lock);
}

/* Create, modify or delete a Node and record the watch event. */
static void fake_set(const char *name, const char *label, bool del)
{
  char line[1024];
  size_t i;
  struct fake_obj *o = NULL;

  pthread_mutex_lock(&fk.lock);
  for (i = 0; i < FAKE_MAX; i++)
    if (fk.objs[i].live && strcmp(fk.objs[i].name, name) == 0)
      o = &fk.objs[i];
  if (o == NULL && !del)
    for (i = 0; i < FAKE_MAX && o == NULL; i++)
      if (!fk.objs[i].live)
        o = &fk.objs[i];
  assert_non_null(o);
  fk.rv++;
  if (del) {
    snprintf(line, sizeof(line), "{\"type\":\"DELETED\",\"object\":%s}",
             o->json);
    o->live = false;
  } else {
    const char *type = o->live ? "MODIFIED" : "ADDED";

    snprintf(o->name, sizeof(o->name), "%s", name);
    obj_json(o->json, sizeof(o->json), name, fk.rv, label);
    o->live = true;
    snprintf(line, sizeof(line), "{\"type\":\"%s\",\"object\":%s}", type,
             o->json);
  }
  fake_push_locked(line);
  pthread_mutex_unlock(&fk.lock);
}

static void fake_bookmark(void)
{
  char line[256];

  pthread_mutex_lock(&fk.lock);
  fk.rv++;
  snprintf(line, sizeof(line),
           "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Node\",\"metadata\":"
           "{\"resourceVersion\":\"%ld\"}}}",
           fk.rv);
  fake_push_locked(line);
  pthread_mutex_unlock(&fk.lock);
}

/* Forget history up to now and end open watches (an API server restart
 * that compacted etcd). */
static void fake_compact_and_drop(void)
{
  pthread_mutex_lock(&fk.lock);
  fk.compacted = fk.rv + 1;
  fk.drop = true;
  pthread_cond_broadcast(&fk.cond);
  pthread_mutex_unlock(&fk.lock);
}

static long query_long(const char *path, const char *key, long dflt)
{
  const char *p = strstr(path, key);

  return p != NULL ? strtol(p + strlen(key), NULL, 10) : dflt;
}

static char *dup_body(const char *s, size_t *len)
{
  *len = strlen(s);
  return strdup(s);
}

static int fake_list(void *ctx, const char *path, struct kube_response *out)
{
  long limit = query_long(path, "limit=", 1000);
  long start = query_long(path, "continue=", 0);
  size_t cap = 64 * 1024;
  char *body = malloc(cap);
  size_t o = 0;
  long idx = 0;
  long taken = 0;
  bool more = false;
  size_t i;

  (void)ctx;
  memset(out, 0, sizeof(*out));
  if (body == NULL)
    return KUBE_ERROR;
  pthread_mutex_lock(&fk.lock);
  fk.list_calls++;
  snprintf(fk.last_list_path, sizeof(fk.last_list_path), "%s", path);
  if (fk.fail_lists > 0) {
    fk.fail_lists--;
    pthread_mutex_unlock(&fk.lock);
    free(body);
    snprintf(out->message, sizeof(out->message), "connection refused");
    return KUBE_UNAVAILABLE;
  }
  o += (size_t)snprintf(body + o, cap - o, "{\"kind\":\"NodeList\",\"items\":[");
  for (i = 0; i < FAKE_MAX; i++) {
    if (!fk.objs[i].live)
      continue;
    if (idx++ < start)
      continue;
    if (taken == limit) {
      more = true;
      break;
    }
    o += (size_t)snprintf(body + o, cap - o, "%s%s", taken ? "," : "",
                          fk.objs[i].json);
    taken++;
  }
  if (more)
    snprintf(body + o, cap - o,
             "],\"metadata\":{\"resourceVersion\":\"%ld\",\"continue\":\"%ld\"}}",
             fk.rv, start + taken);
  else
    snprintf(body + o, cap - o, "],\"metadata\":{\"resourceVersion\":\"%ld\"}}",
             fk.rv);
  pthread_mutex_unlock(&fk.lock);
  out->http_status = 200;
  out->body = body;
  out->len = strlen(body);
  return KUBE_OK;
}

static int fake_watch(void *ctx, const char *path, kube_line_fn *fn, void *ud,
                      atomic_bool *stop, struct kube_response *out)
{
  long from = query_long(path, "resourceVersion=", 0);
  size_t next = 0;
  int rc = KUBE_OK;

  (void)ctx;
  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&fk.lock);
  fk.watch_calls++;
  fk.drop = false;
  snprintf(fk.last_watch_path, sizeof(fk.last_watch_path), "%s", path);
  if (fk.fail_watches > 0) {
    fk.fail_watches--;
    pthread_mutex_unlock(&fk.lock);
    return KUBE_UNAVAILABLE;
  }
  if (from < fk.compacted) {
    fk.watch_gone++;
    if (fk.gone_as_http) {
      pthread_mutex_unlock(&fk.lock);
      out->http_status = 410;
      out->body = dup_body("{\"kind\":\"Status\",\"code\":410}", &out->len);
      return KUBE_GONE;
    }
    pthread_mutex_unlock(&fk.lock);
    out->http_status = 200;
    fn("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
       "\"reason\":\"Expired\",\"message\":\"too old resource version\"}}",
       strlen("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
              "\"reason\":\"Expired\",\"message\":\"too old resource version\"}}"),
       ud);
    return KUBE_OK;
  }
  out->http_status = 200;
  while (!atomic_load(stop) && !fk.drop) {
    if (next < fk.n_events) {
      struct fake_event *e = &fk.events[next++];
      char *line;

      if (e->rv <= from || (e->delivered && strstr(e->line, "\"ERROR\"")))
        continue;
      e->delivered = true;
      line = strdup(e->line);
      if (line == NULL)
        break;
      pthread_mutex_unlock(&fk.lock);
      rc = fn(line, strlen(line), ud);
      free(line);
      pthread_mutex_lock(&fk.lock);
      if (rc != 0) {
        rc = KUBE_OK;
        break;
      }
      continue;
    }
    {
      struct timespec ts;

      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 20 * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&fk.cond, &fk.lock, &ts);
    }
  }
  pthread_mutex_unlock(&fk.lock);
  return rc;
}

static void fake_response_free(void *ctx, struct kube_response *r)
{
  (void)ctx;
  free(r->body);
  r->body = NULL;
}

static const struct informer_ops fake_ops = {
    .list = fake_list,
    .watch = fake_watch,
    .response_free = fake_response_free,
};

/* ---- recording handlers ---------------------------------------------------- */

#define REC_MAX 1024

struct rec_event {
  char type; /* 'a', 'u', 'd' */
  char name[32];
  char old_rv[16];
  char new_rv[16];
};

struct rec {
  pthread_mutex_t lock;
  struct rec_event ev[REC_MAX];
  size_t n;
  size_t resyncs;             /* updates with old == new */
  struct obj_meta *held;      /* an old object kept past its replacement */
  bool broken;                /* a handler saw something wrong */
};

static struct rec rec = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void rec_push(char type, const struct obj_meta *old,
                     const struct obj_meta *cur)
{
  struct rec_event *e;

  pthread_mutex_lock(&rec.lock);
  if (type == 'u' && old == cur) {
    rec.resyncs++;
    pthread_mutex_unlock(&rec.lock);
    return;
  }
  /* No cmocka asserts here: this runs on the informer thread. */
  if (rec.n >= REC_MAX || (type != 'a' && old->name == NULL)) {
    rec.broken = true;
    pthread_mutex_unlock(&rec.lock);
    return;
  }
  e = &rec.ev[rec.n++];
  memset(e, 0, sizeof(*e));
  e->type = type;
  snprintf(e->name, sizeof(e->name), "%s", (cur != NULL ? cur : old)->name);
  if (old != NULL)
    snprintf(e->old_rv, sizeof(e->old_rv), "%s", old->resource_version);
  if (cur != NULL)
    snprintf(e->new_rv, sizeof(e->new_rv), "%s", cur->resource_version);
  /* Keep the first replaced object to check it outlives the cache's
   * reference. */
  if (type == 'u' && rec.held == NULL)
    rec.held = obj_ref(old);
  pthread_mutex_unlock(&rec.lock);
}

static void on_add(void *ud, const struct obj_meta *obj)
{
  (void)ud;
  rec_push('a', NULL, obj);
}

static void on_update(void *ud, const struct obj_meta *old,
                      const struct obj_meta *cur)
{
  (void)ud;
  rec_push('u', old, cur);
}

static void on_del(void *ud, const struct obj_meta *old)
{
  (void)ud;
  rec_push('d', old, NULL);
}

static void rec_reset(void)
{
  pthread_mutex_lock(&rec.lock);
  obj_unref(rec.held);
  memset(rec.ev, 0, sizeof(rec.ev));
  rec.n = 0;
  rec.resyncs = 0;
  rec.held = NULL;
  rec.broken = false;
  pthread_mutex_unlock(&rec.lock);
}

static size_t rec_resyncs(void)
{
  size_t n;

  pthread_mutex_lock(&rec.lock);
  n = rec.resyncs;
  pthread_mutex_unlock(&rec.lock);
  return n;
}

/* Index of the first recorded event matching, or -1. */
static int rec_find(char type, const char *name)
{
  size_t i;
  int found = -1;

  pthread_mutex_lock(&rec.lock);
  for (i = 0; i < rec.n && found < 0; i++)
    if (rec.ev[i].type == type && strcmp(rec.ev[i].name, name) == 0)
      found = (int)i;
  pthread_mutex_unlock(&rec.lock);
  return found;
}

static size_t rec_count(char type)
{
  size_t i;
  size_t n = 0;

  pthread_mutex_lock(&rec.lock);
  for (i = 0; i < rec.n; i++)
    if (rec.ev[i].type == type)
      n++;
  pthread_mutex_unlock(&rec.lock);
  return n;
}

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

  nanosleep(&ts, NULL);
}

/* Poll cond for up to 20 s: a bound for progress, not a timing check. */
#define WAIT_FOR(cond)                                                        \
  do {                                                                        \
    int waited_ = 0;                                                          \
    while (!(cond) && waited_ < 20000) {                                      \
      sleep_ms(5);                                                            \
      waited_ += 5;                                                           \
    }                                                                         \
    assert_true(cond);                                                        \
  } while (0)

static struct informer *start_informer(uint32_t page, uint32_t resync_ms,
                                       const char *selector)
{
  struct informer_config cfg = {
      .name = "nodes",
      .kind = OBJ_KIND_NODE,
      .path = "/api/v1/nodes",
      .label_selector = selector,
      .page_size = page,
      .resync_ms = resync_ms,
      .backoff_min_ms = 5,
      .backoff_max_ms = 40,
      .watch_timeout_s = 60,
  };
  struct informer_handlers h = {on_add, on_update, on_del, NULL};
  struct informer *inf = NULL;

  assert_int_equal(informer_new(&cfg, &fake_ops, &inf), 0);
  assert_int_equal(informer_add_handlers(inf, &h), 0);
  assert_int_equal(informer_start(inf), 0);
  assert_int_equal(informer_add_handlers(inf, &h), -1);
  return inf;
}

/* Reads of the fake's counters and paths, under its lock. */
static int fk_int(const int *p)
{
  int v;

  pthread_mutex_lock(&fk.lock);
  v = *p;
  pthread_mutex_unlock(&fk.lock);
  return v;
}

static bool fk_path_has(const char *path, const char *what)
{
  bool has;

  pthread_mutex_lock(&fk.lock);
  has = strstr(path, what) != NULL;
  pthread_mutex_unlock(&fk.lock);
  return has;
}

static void wait_watching(int calls)
{
  WAIT_FOR(fk_int(&fk.watch_calls) >= calls);
}

static void node_label_is(struct informer *inf, const char *name,
                          const char *label)
{
  struct obj_meta *m = store_get(informer_store(inf), NULL, name);

  assert_non_null(m);
  assert_string_equal(obj_label(m, "l"), label);
  obj_unref(m);
}

/* The cache holds exactly the fake's live objects at their versions. */
static void assert_cache_equals_server(struct informer *inf)
{
  size_t i;
  size_t live = 0;

  pthread_mutex_lock(&fk.lock);
  for (i = 0; i < FAKE_MAX; i++) {
    struct obj_meta *m;
    char rv[32];
    const char *p;

    if (!fk.objs[i].live)
      continue;
    live++;
    m = store_get(informer_store(inf), NULL, fk.objs[i].name);
    assert_non_null(m);
    p = strstr(fk.objs[i].json, "\"resourceVersion\":\"");
    assert_non_null(p);
    snprintf(rv, sizeof(rv), "%s", p + strlen("\"resourceVersion\":\""));
    *strchr(rv, '"') = '\0';
    assert_string_equal(m->resource_version, rv);
    obj_unref(m);
  }
  pthread_mutex_unlock(&fk.lock);
  assert_int_equal(store_len(informer_store(inf)), live);
}

static void stop_informer(struct informer *inf)
{
  informer_free(inf);
  assert_false(rec.broken);
}

static int setup(void **state)
{
  (void)state;
  fake_reset();
  rec_reset();
  return 0;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_list_paginated(void **state)
{
  struct informer *inf;
  struct informer_stats st;
  char name[16];
  int i;

  (void)state;
  for (i = 0; i < 5; i++) {
    snprintf(name, sizeof(name), "n%d", i);
    fake_set(name, "a", false);
  }
  inf = start_informer(2, 0, NULL);
  assert_true(informer_wait_synced(inf, 20000));
  assert_true(informer_has_synced(inf));
  assert_int_equal(store_len(informer_store(inf)), 5);
  assert_int_equal(rec_count('a'), 5);
  assert_int_equal(fk_int(&fk.list_calls), 3); /* pages of 2, 2, 1 */
  assert_true(fk_path_has(fk.last_list_path, "limit=2"));
  assert_true(fk_path_has(fk.last_list_path, "continue=4"));
  wait_watching(1);
  assert_true(fk_path_has(fk.last_watch_path, "allowWatchBookmarks=true"));
  assert_true(fk_path_has(fk.last_watch_path, "resourceVersion=105"));
  informer_get_stats(inf, &st);
  assert_int_equal(st.lists, 1);
  assert_string_equal(st.resource_version, "105");
  assert_cache_equals_server(inf);
  stop_informer(inf);
}

static void test_watch_events(void **state)
{
  struct informer *inf;
  struct informer_stats st;
  int u;

  (void)state;
  fake_set("a", "1", false);
  fake_set("b", "1", false);
  inf = start_informer(0, 0, NULL);
  assert_true(informer_wait_synced(inf, 20000));
  wait_watching(1);
  fake_set("c", "1", false);  /* add */
  fake_set("a", "2", false);  /* update */
  fake_set("b", "1", true);   /* delete */
  WAIT_FOR(rec_find('d', "b") >= 0);
  assert_true(rec_find('a', "c") >= 0);
  u = rec_find('u', "a");
  assert_true(u >= 0);
  /* update carries the old and the new versions. */
  assert_string_equal(rec.ev[u].old_rv, "101");
  assert_string_equal(rec.ev[u].new_rv, "104");
  node_label_is(inf, "a", "2");
  assert_null(store_get(informer_store(inf), NULL, "b"));
  /* The replaced version is still readable through our reference. */
  assert_non_null(rec.held);
  assert_string_equal(rec.held->resource_version, "101");
  assert_string_equal(obj_label(rec.held, "l"), "1");
  /* A bookmark moves the resourceVersion only. */
  fake_bookmark();
  WAIT_FOR((informer_get_stats(inf, &st), st.bookmarks == 1));
  assert_string_equal(st.resource_version, "106");
  assert_int_equal(rec.n, 5);
  assert_cache_equals_server(inf);
  stop_informer(inf);
}

static void gone_relist(bool as_http)
{
  struct informer *inf;
  struct informer_stats st;
  long lists_before;

  fake_set("keep", "1", false);
  fake_set("change", "1", false);
  fake_set("vanish", "1", false);
  inf = start_informer(2, 0, NULL);
  assert_true(informer_wait_synced(inf, 20000));
  wait_watching(1);
  /* While the informer is cut off, the server changes and forgets. */
  pthread_mutex_lock(&fk.lock);
  fk.fail_watches = 2;
  fk.gone_as_http = as_http;
  pthread_mutex_unlock(&fk.lock);
  fake_compact_and_drop();
  fake_set("change", "2", false);
  fake_set("vanish", "1", true);
  fake_set("new", "1", false);
  fake_compact_and_drop();
  lists_before = fk_int(&fk.list_calls);
  WAIT_FOR((informer_get_stats(inf, &st), st.lists >= 2));
  assert_true(fk_int(&fk.list_calls) > lists_before);
  assert_true(st.relists_gone >= 1);
  assert_true(st.watch_errors >= 2);
  assert_true(fk_int(&fk.watch_gone) >= 1);
  assert_cache_equals_server(inf);
  node_label_is(inf, "change", "2");
  assert_true(rec_find('d', "vanish") >= 0);
  assert_true(rec_find('a', "new") >= 0);
  assert_true(rec_find('u', "change") >= 0);
  /* Unchanged objects produce no event on relist. */
  assert_int_equal(rec_find('u', "keep"), -1);
  /* And the informer watches again from the new list. */
  fake_set("after", "1", false);
  WAIT_FOR(rec_find('a', "after") >= 0);
  assert_cache_equals_server(inf);
  stop_informer(inf);
}

static void test_relist_on_gone_event(void **state)
{
  (void)state;
  gone_relist(false);
}

static void test_relist_on_gone_http(void **state)
{
  (void)state;
  gone_relist(true);
}

static void test_list_errors_backoff(void **state)
{
  struct informer *inf;
  struct informer_stats st;

  (void)state;
  fake_set("a", "1", false);
  fk.fail_lists = 3;
  inf = start_informer(0, 0, NULL);
  assert_true(informer_wait_synced(inf, 20000));
  informer_get_stats(inf, &st);
  assert_int_equal(st.list_errors, 3);
  assert_int_equal(fk_int(&fk.list_calls), 4);
  assert_int_equal(store_len(informer_store(inf)), 1);
  stop_informer(inf);
}

static void test_bad_events(void **state)
{
  struct informer *inf;
  struct informer_stats st;
  char big[64];
  char line[256];

  (void)state;
  fake_set("a", "1", false);
  fake_set("b", "1", false);
  inf = start_informer(0, 0, NULL);
  assert_true(informer_wait_synced(inf, 20000));
  wait_watching(1);
  fake_raw_event("this is not json");
  fake_raw_event("{\"type\":\"MODIFIED\"}");
  fake_raw_event("{\"type\":\"WHATEVER\",\"object\":{}}");
  /* A MODIFIED we cannot decode keeps the cached version. */
  snprintf(line, sizeof(line),
           "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":"
           "\"a\",\"resourceVersion\":\"%ld\",\"labels\":[1]}}}",
           fk.rv + 1);
  fake_raw_event(line);
  /* A DELETED we cannot decode still deletes by name. */
  fake_raw_event("{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":"
                 "\"b\",\"labels\":\"bad\"}}}");
  /* A non-410 ERROR ends the watch; the informer re-watches. */
  fake_raw_event("{\"type\":\"ERROR\",\"object\":{\"code\":500,"
                 "\"message\":\"internal\"}}");
  snprintf(big, sizeof(big), "%s", "ok");
  fake_set("c", big, false);
  WAIT_FOR(rec_find('a', "c") >= 0);
  informer_get_stats(inf, &st);
  assert_true(st.decode_errors >= 4);
  assert_true(st.watch_errors >= 1);
  node_label_is(inf, "a", "1");
  assert_true(rec_find('d', "b") >= 0);
  assert_int_equal(rec_find('u', "a"), -1);
  stop_informer(inf);
}

static void test_resync(void **state)
{
  struct informer *inf;

  (void)state;
  fake_set("a", "1", false);
  fake_set("b", "1", false);
  inf = start_informer(0, 10, NULL);
  assert_true(informer_wait_synced(inf, 20000));
  WAIT_FOR(rec_resyncs() >= 4);
  stop_informer(inf);
  /* No resync when disabled. */
  rec_reset();
  inf = start_informer(0, 0, NULL);
  assert_true(informer_wait_synced(inf, 20000));
  sleep_ms(50);
  assert_int_equal(rec_resyncs(), 0);
  stop_informer(inf);
}

static void test_selector_and_stop(void **state)
{
  struct informer *inf;

  (void)state;
  inf = start_informer(0, 0, "app in (a,b)");
  assert_true(informer_wait_synced(inf, 20000));
  assert_int_equal(store_len(informer_store(inf)), 0);
  assert_true(fk_path_has(fk.last_list_path, "labelSelector=app%20in%20%28a%2Cb%29"));
  wait_watching(1);
  /* Stop joins a thread blocked in watch. */
  informer_stop(inf);
  informer_stop(inf);
  stop_informer(inf);
}

static void test_config_errors(void **state)
{
  struct informer_config cfg = {.kind = OBJ_KIND_NODE};
  struct informer *inf = NULL;

  (void)state;
  assert_int_equal(informer_new(&cfg, &fake_ops, &inf), -1);
  cfg.path = "/api/v1/nodes";
  cfg.kind = (enum obj_kind)99;
  assert_int_equal(informer_new(&cfg, &fake_ops, &inf), -1);
  assert_null(inf);
  assert_false(informer_has_synced(NULL));
  informer_free(NULL);
}

static void quiet_sink(int level, const char *line, void *ud)
{
  (void)level;
  (void)line;
  (void)ud;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_list_paginated, setup),
      cmocka_unit_test_setup(test_watch_events, setup),
      cmocka_unit_test_setup(test_relist_on_gone_event, setup),
      cmocka_unit_test_setup(test_relist_on_gone_http, setup),
      cmocka_unit_test_setup(test_list_errors_backoff, setup),
      cmocka_unit_test_setup(test_bad_events, setup),
      cmocka_unit_test_setup(test_resync, setup),
      cmocka_unit_test_setup(test_selector_and_stop, setup),
      cmocka_unit_test_setup(test_config_errors, setup),
  };
  int rc;

  pthread_mutex_init(&fk.lock, NULL);
  pthread_cond_init(&fk.cond, NULL);
  log_set_sink(quiet_sink, NULL);
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  rec_reset();
  fake_reset();
  return rc;
}
