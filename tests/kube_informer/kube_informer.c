/*
 * kube_informer.c: Node and Service informers against the Kubernetes API
 * double (tests/doubles/kube_apiserver.py): paginated sync, add/update/
 * delete with old and new, relist after 410 (compaction during an outage)
 * and after a restart; the cache ends equal to the server's list.
 * Exits 77 (skipped) while the double is absent. Loopback only.
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

#include "double.h"
#include "kube/client.h"
#include "kube/informer.h"
#include "util/log.h"
#include "util/mem.h"

static struct kdouble d;
static struct kube_client *kc;
static struct informer *nodes;
static struct informer *services;

/* ---- recorded events (written on informer threads, no asserts there) ---- */

#define REC_MAX 4096

struct rec_event {
  char type;
  char key[96];
  char old_rv[24];
  char new_rv[24];
};

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rec_event recs[REC_MAX];
static size_t n_recs;

static void rec_push(char type, const struct obj_meta *old,
                     const struct obj_meta *cur)
{
  const struct obj_meta *o = cur != NULL ? cur : old;
  struct rec_event *e;

  if (type == 'u' && old == cur)
    return;
  pthread_mutex_lock(&rec_lock);
  if (n_recs < REC_MAX) {
    e = &recs[n_recs++];
    e->type = type;
    obj_key(o, e->key, sizeof(e->key));
    snprintf(e->old_rv, sizeof(e->old_rv), "%s",
             old != NULL && old->resource_version ? old->resource_version : "");
    snprintf(e->new_rv, sizeof(e->new_rv), "%s",
             cur != NULL && cur->resource_version ? cur->resource_version : "");
  }
  pthread_mutex_unlock(&rec_lock);
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

/* The last event of type for key, copied; false if none. */
static bool rec_last(char type, const char *key, struct rec_event *out)
{
  bool found = false;
  size_t i;

  pthread_mutex_lock(&rec_lock);
  for (i = 0; i < n_recs; i++) {
    if (recs[i].type == type && strcmp(recs[i].key, key) == 0) {
      *out = recs[i];
      found = true;
    }
  }
  pthread_mutex_unlock(&rec_lock);
  return found;
}

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

  nanosleep(&ts, NULL);
}

/* Progress bound (60 s), not a timing check. */
#define WAIT_FOR(cond)                                                        \
  do {                                                                        \
    int waited_ = 0;                                                          \
    while (!(cond) && waited_ < 60000) {                                      \
      sleep_ms(20);                                                           \
      waited_ += 20;                                                          \
    }                                                                         \
    assert_true(cond);                                                        \
  } while (0)

/* ---- helpers ---------------------------------------------------------------- */

static int api(const char *method, const char *path, const char *body,
               const char *ctype)
{
  struct kube_response r;
  int st = kube_request(kc, method, path, body != NULL ? ctype : NULL, body,
                        body != NULL ? strlen(body) : 0, &r);

  if (st != KUBE_OK)
    fprintf(stderr, "%s %s: %s %s\n", method, path, kube_status_name(st),
            r.message);
  kube_response_free(&r);
  return st;
}

static void control(const char *op, const char *json)
{
  cJSON *r = kdouble_control(kc, op, json != NULL ? json : "{}");

  assert_non_null(r);
  cJSON_Delete(r);
}

/* True when the informer's cache holds exactly the server's objects at
 * the server's resourceVersions. */
static bool cache_matches(struct informer *inf, const char *path)
{
  struct kube_response r;
  cJSON *root = NULL;
  const cJSON *item;
  size_t n = 0;
  bool ok = false;

  if (kube_request(kc, "GET", path, NULL, NULL, 0, &r) != KUBE_OK)
    goto fail;
  root = cJSON_ParseWithLength(r.body, r.len);
  if (root == NULL)
    goto fail;
  ok = true;
  cJSON_ArrayForEach(item, cJSON_GetObjectItem(root, "items"))
  {
    const cJSON *md = cJSON_GetObjectItem(item, "metadata");
    const cJSON *ns = cJSON_GetObjectItem(md, "namespace");
    const cJSON *name = cJSON_GetObjectItem(md, "name");
    const cJSON *rv = cJSON_GetObjectItem(md, "resourceVersion");
    struct obj_meta *m = store_get(informer_store(inf),
                                   cJSON_IsString(ns) ? ns->valuestring : NULL,
                                   name->valuestring);

    n++;
    if (m == NULL || strcmp(m->resource_version, rv->valuestring) != 0)
      ok = false;
    obj_unref(m);
  }
  if (n != store_len(informer_store(inf)))
    ok = false;
fail:
  cJSON_Delete(root);
  kube_response_free(&r);
  return ok;
}

static struct informer *make_informer(const char *name, enum obj_kind kind,
                                      const char *path)
{
  struct informer_config cfg = {
      .name = name,
      .kind = kind,
      .path = path,
      .page_size = 37, /* several pages, an odd last one */
      .backoff_min_ms = 50,
      .backoff_max_ms = 1000,
  };
  struct informer_handlers h = {on_add, on_update, on_del, NULL};
  struct informer_ops ops;
  struct informer *inf = NULL;

  informer_ops_from_client(kc, &ops);
  assert_int_equal(informer_new(&cfg, &ops, &inf), 0);
  assert_int_equal(informer_add_handlers(inf, &h), 0);
  assert_int_equal(informer_start(inf), 0);
  return inf;
}

static uint64_t relists(struct informer *inf)
{
  struct informer_stats st;

  informer_get_stats(inf, &st);
  return st.relists_gone;
}

/* ---- fixtures ----------------------------------------------------------------- */

static int setup(void **state)
{
  (void)state;
  if (kdouble_start(&d, false, false) != 0)
    return -1;
  kc = kdouble_client(&d);
  if (kc == NULL)
    return -1;
  control("seed", "{\"nodes\":120,\"services\":200}");
  nodes = make_informer("nodes", OBJ_KIND_NODE, "/api/v1/nodes");
  services = make_informer("services", OBJ_KIND_SERVICE, "/api/v1/services");
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  informer_free(nodes);
  informer_free(services);
  kube_client_free(kc);
  kdouble_stop(&d);
  return 0;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_sync(void **state)
{
  (void)state;
  assert_true(informer_wait_synced(nodes, 60000));
  assert_true(informer_wait_synced(services, 60000));
  assert_true(store_len(informer_store(nodes)) >= 120);
  assert_true(store_len(informer_store(services)) >= 200);
  WAIT_FOR(cache_matches(nodes, "/api/v1/nodes"));
  WAIT_FOR(cache_matches(services, "/api/v1/services"));
  {
    struct obj_meta *m = store_get(informer_store(nodes), NULL, "node-00007");
    const struct obj_node *n = obj_as_node(m);

    assert_non_null(n);
    assert_string_equal(n->provider_id, "lab://node-00007");
    assert_int_equal(n->ready, OBJ_COND_TRUE);
    assert_true(n->ready_transition > 0);
    assert_true(n->n_addresses == 2);
    obj_unref(m);
  }
}

static void test_events_old_new(void **state)
{
  struct rec_event e;
  struct rec_event del;
  struct obj_meta *m;

  (void)state;
  assert_true(informer_wait_synced(services, 60000));
  assert_int_equal(
      api("POST", "/api/v1/namespaces/default/services",
          "{\"metadata\":{\"name\":\"it-web\",\"annotations\":{\"a\":\"1\"}},"
          "\"spec\":{\"type\":\"LoadBalancer\",\"ports\":[{\"port\":80}]}}",
          "application/json"),
      KUBE_OK);
  WAIT_FOR(rec_last('a', "default/it-web", &e));
  assert_int_equal(
      api("PATCH", "/api/v1/namespaces/default/services/it-web",
          "{\"metadata\":{\"annotations\":{\"a\":\"2\"}}}",
          "application/merge-patch+json"),
      KUBE_OK);
  WAIT_FOR(rec_last('u', "default/it-web", &e));
  /* update carried the old and the new versions. */
  assert_string_not_equal(e.old_rv, e.new_rv);
  m = store_get(informer_store(services), "default", "it-web");
  assert_non_null(m);
  assert_string_equal(obj_annotation(m, "a"), "2");
  assert_string_equal(m->resource_version, e.new_rv);
  assert_int_equal(obj_as_service(m)->type, OBJ_SVC_LOAD_BALANCER);
  obj_unref(m);
  assert_int_equal(
      api("DELETE", "/api/v1/namespaces/default/services/it-web", NULL, NULL),
      KUBE_OK);
  WAIT_FOR(rec_last('d', "default/it-web", &del));
  /* delete hands over the last cached version. */
  assert_true(rec_last('u', "default/it-web", &e));
  assert_string_equal(del.old_rv, e.new_rv);
  assert_null(store_get(informer_store(services), "default", "it-web"));
}

/* An outage (every request fails with 503) during which the server
 * changes and compacts: the informer must relist on 410 afterwards. */
static void test_relist_after_compaction(void **state)
{
  struct rec_event e;
  uint64_t before = relists(nodes);

  (void)state;
  assert_true(informer_wait_synced(nodes, 60000));
  /* The informer's GETs (list and watch) fail; our writes pass. */
  control("faults", "{\"status\":503,\"method\":\"GET\","
                    "\"path\":\"^/api/v1/nodes\"}");
  control("drop-watches", NULL);
  /* Changes the informer cannot see, then history is lost. */
  assert_int_equal(api("DELETE", "/api/v1/nodes/node-00003", NULL, NULL),
                   KUBE_OK);
  assert_int_equal(api("PATCH", "/api/v1/nodes/node-00004",
                       "{\"metadata\":{\"labels\":{\"x\":\"y\"}}}",
                       "application/merge-patch+json"),
                   KUBE_OK);
  assert_int_equal(api("POST", "/api/v1/nodes",
                       "{\"metadata\":{\"name\":\"it-node\"}}",
                       "application/json"),
                   KUBE_OK);
  control("restart", NULL);
  WAIT_FOR(kdouble_count_requests(kc, "GET", "/api/v1/nodes", 503) >= 2);
  control("faults", "{\"clear\":true}");
  WAIT_FOR(relists(nodes) > before);
  WAIT_FOR(cache_matches(nodes, "/api/v1/nodes"));
  WAIT_FOR(rec_last('d', "node-00003", &e));
  WAIT_FOR(rec_last('a', "it-node", &e));
  assert_true(informer_has_synced(nodes));
}

/* A restart: watches dropped and history compacted. */
static void test_relist_after_restart(void **state)
{
  uint64_t nb;
  uint64_t sb;

  (void)state;
  assert_true(informer_wait_synced(nodes, 60000));
  assert_true(informer_wait_synced(services, 60000));
  /* Let both informers be watching at the latest version. */
  WAIT_FOR(cache_matches(nodes, "/api/v1/nodes"));
  WAIT_FOR(cache_matches(services, "/api/v1/services"));
  nb = relists(nodes);
  sb = relists(services);
  assert_int_equal(api("POST", "/api/v1/namespaces/default/services",
                       "{\"metadata\":{\"name\":\"it-a\"},\"spec\":{\"ports\":"
                       "[{\"port\":81}]}}",
                       "application/json"),
                   KUBE_OK);
  control("restart", NULL);
  /* Then more changes after the restart. */
  assert_int_equal(
      api("DELETE", "/api/v1/namespaces/default/services/svc-00010", NULL,
          NULL),
      KUBE_OK);
  WAIT_FOR(relists(services) > sb || relists(nodes) > nb);
  WAIT_FOR(cache_matches(services, "/api/v1/services"));
  WAIT_FOR(cache_matches(nodes, "/api/v1/nodes"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sync),
      cmocka_unit_test(test_events_old_new),
      cmocka_unit_test(test_relist_after_compaction),
      cmocka_unit_test(test_relist_after_restart),
  };

  if (!kdouble_available()) {
    fprintf(stderr, "FAIL: the Kubernetes API double or /usr/bin/python3 is "
            "absent (it ships with the tree)\n");
    return 1;
  }
  if (getenv("CCM_TEST_VERBOSE") == NULL)
    log_set_level(CCM_LOG_ERROR);
  return cmocka_run_group_tests(tests, setup, teardown);
}
