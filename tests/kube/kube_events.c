/*
 * kube_events.c: the Event recorder against the API double: ten identical
 * events become one Event with count 10 (one POST, nine PATCHes), distinct
 * messages stay distinct, a deleted aggregate is re-created, and the
 * per-object spam filter caps a storm.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "double.h"
#include "kube/events.h"
#include "kube/writes.h"

static struct kdouble d;
static struct kube_client *kc;

static int setup(void **state)
{
  (void)state;
  if (kdouble_start(&d, false, false) != 0)
    return -1;
  kc = kdouble_client(&d);
  return kc != NULL ? 0 : -1;
}

static int teardown(void **state)
{
  (void)state;
  kube_client_free(kc);
  kdouble_stop(&d);
  return 0;
}

/* An Event timestamp: RFC 3339 in UTC to the second, within a minute of
 * now (the fields are checked one by one against gmtime). */
static void assert_event_time(const cJSON *ev, const char *field)
{
  const cJSON *v = cJSON_GetObjectItem(ev, field);
  time_t now = time(NULL);
  int y, mo, dd, h, mi, se, n = 0;
  struct tm tm;
  bool near = false;
  time_t t;

  assert_true(cJSON_IsString(v));
  assert_int_equal(strlen(v->valuestring), 20);
  assert_int_equal(sscanf(v->valuestring, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y,
                          &mo, &dd, &h, &mi, &se, &n), 6);
  assert_int_equal(n, 20);
  for (t = now - 60; t <= now + 1 && !near; t++) {
    gmtime_r(&t, &tm);
    near = tm.tm_year + 1900 == y && tm.tm_mon + 1 == mo &&
           tm.tm_mday == dd && tm.tm_hour == h && tm.tm_min == mi &&
           tm.tm_sec == se;
  }
  assert_true(near);
}

/* Events in ns about object name with reason. */
static cJSON *find_events(const char *ns, const char *name,
                          const char *reason, int *n)
{
  char path[256], msg[256];
  cJSON *list = NULL, *it, *hit = NULL;

  *n = 0;
  snprintf(path, sizeof path, "/api/v1/namespaces/%s/events", ns);
  assert_int_equal(kube_get(kc, path, &list, msg, sizeof msg), KUBE_OK);
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "items")) {
    cJSON *inv = cJSON_GetObjectItem(it, "involvedObject");

    if (strcmp(cJSON_GetObjectItem(inv, "name")->valuestring, name) == 0 &&
        strcmp(cJSON_GetObjectItem(it, "reason")->valuestring, reason) == 0) {
      (*n)++;
      cJSON_Delete(hit);
      hit = cJSON_Duplicate(it, 1);
    }
  }
  cJSON_Delete(list);
  return hit;
}

static const struct kube_object_ref svc = {
    .api_version = "v1", .kind = "Service", .ns = "default", .name = "web",
    .uid = "0b8c3f2e-0000-4000-8000-000000000001"};

static void test_aggregate_ten(void **state)
{
  struct kube_events_opts o = {.component = "service-controller",
                               .host = "node-a"};
  struct kube_events *e = NULL;
  struct kube_events_stats s;
  char err[256];
  cJSON *ev;
  int i, n;

  (void)state;
  assert_int_equal(kube_events_new(kc, &o, &e, err, sizeof err), 0);
  for (i = 0; i < 10; i++)
    assert_int_equal(kube_event_emit(e, &svc, "Normal", "EnsuringLoadBalancer",
                                     "Ensuring load balancer"), 0);
  kube_events_flush(e);
  kube_events_get_stats(e, &s);
  assert_int_equal(s.created, 1);
  assert_int_equal(s.patched, 9);
  assert_int_equal(s.failed, 0);
  ev = find_events("default", "web", "EnsuringLoadBalancer", &n);
  assert_int_equal(n, 1);
  assert_int_equal((int)cJSON_GetObjectItem(ev, "count")->valuedouble, 10);
  assert_string_equal(cJSON_GetObjectItem(ev, "message")->valuestring,
                      "Ensuring load balancer");
  assert_string_equal(cJSON_GetObjectItem(ev, "type")->valuestring, "Normal");
  assert_event_time(ev, "firstTimestamp");
  assert_event_time(ev, "lastTimestamp");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "source"),
                                          "component")->valuestring,
                      "service-controller");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ev,
                      "involvedObject"), "uid")->valuestring, svc.uid);
  {
    const cJSON *inv = cJSON_GetObjectItem(ev, "involvedObject");
    const cJSON *src = cJSON_GetObjectItem(ev, "source");

    assert_string_equal(cJSON_GetObjectItem(inv, "kind")->valuestring,
                        "Service");
    assert_string_equal(cJSON_GetObjectItem(inv, "apiVersion")->valuestring,
                        "v1");
    assert_string_equal(cJSON_GetObjectItem(inv, "namespace")->valuestring,
                        "default");
    assert_string_equal(cJSON_GetObjectItem(src, "host")->valuestring,
                        "node-a");
    assert_string_equal(
        cJSON_GetObjectItem(ev, "reportingComponent")->valuestring,
        "service-controller");
    assert_string_equal(
        cJSON_GetObjectItem(ev, "reportingInstance")->valuestring, "node-a");
  }
  cJSON_Delete(ev);

  /* A different message is a different Event. */
  assert_int_equal(kube_event_emit(e, &svc, "Warning", "SyncLoadBalancerFailed",
                                   "Error syncing: %s", "quota"), 0);
  assert_int_equal(kube_event_emit(e, &svc, "Warning", "SyncLoadBalancerFailed",
                                   "Error syncing: %s", "timeout"), 0);
  kube_events_flush(e);
  ev = find_events("default", "web", "SyncLoadBalancerFailed", &n);
  assert_int_equal(n, 2);
  cJSON_Delete(ev);

  /* Cluster-scoped objects' Events go to "default". */
  {
    const struct kube_object_ref node = {.api_version = "v1", .kind = "Node",
                                         .name = "n1", .uid = "u-n1"};

    assert_int_equal(kube_event_emit(e, &node, "Normal", "Synced", "ok"), 0);
    kube_events_flush(e);
    ev = find_events("default", "n1", "Synced", &n);
    assert_int_equal(n, 1);
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "involvedObject"),
                                    "namespace"));
    cJSON_Delete(ev);
  }
  kube_events_free(e);
}

static void test_recreate_after_delete(void **state)
{
  struct kube_events_opts o = {.component = "cc"};
  struct kube_events *e = NULL;
  char err[256], path[256], msg[256];
  cJSON *ev;
  int n;

  (void)state;
  assert_int_equal(kube_events_new(kc, &o, &e, err, sizeof err), 0);
  assert_int_equal(kube_event_emit(e, &svc, "Normal", "Deleted", "gone"), 0);
  kube_events_flush(e);
  ev = find_events("default", "web", "Deleted", &n);
  assert_int_equal(n, 1);
  snprintf(path, sizeof path, "/api/v1/namespaces/default/events/%s",
           cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "metadata"),
                               "name")->valuestring);
  cJSON_Delete(ev);
  assert_int_equal(kube_delete(kc, path, NULL, msg, sizeof msg), KUBE_OK);
  assert_int_equal(kube_event_emit(e, &svc, "Normal", "Deleted", "gone"), 0);
  kube_events_flush(e);
  ev = find_events("default", "web", "Deleted", &n);
  assert_int_equal(n, 1);
  assert_int_equal((int)cJSON_GetObjectItem(ev, "count")->valuedouble, 2);
  cJSON_Delete(ev);
  kube_events_free(e);
}

static int64_t fake_now;

static int64_t fake_clock(void *ud)
{
  (void)ud;
  return fake_now;
}

static void test_spam_filter(void **state)
{
  struct kube_events_opts o = {.component = "spam", .clock = fake_clock};
  const struct kube_object_ref obj = {.api_version = "v1", .kind = "Service",
                                      .ns = "default", .name = "storm",
                                      .uid = "u-storm"};
  struct kube_events *e = NULL;
  struct kube_events_stats s;
  char err[256];
  cJSON *ev;
  int i, n;

  (void)state;
  fake_now = 0;
  assert_int_equal(kube_events_new(kc, &o, &e, err, sizeof err), 0);
  for (i = 0; i < 40; i++)
    assert_int_equal(kube_event_emit(e, &obj, "Warning", "Storm", "again"),
                     0);
  kube_events_flush(e);
  kube_events_get_stats(e, &s);
  assert_int_equal(s.emitted, 40);
  assert_int_equal(s.dropped_spam, 40 - CCM_EVENTS_SPAM_BURST);
  ev = find_events("default", "storm", "Storm", &n);
  assert_int_equal(n, 1);
  assert_int_equal((int)cJSON_GetObjectItem(ev, "count")->valuedouble,
                   CCM_EVENTS_SPAM_BURST);
  cJSON_Delete(ev);
  /* Five minutes later one more token. */
  fake_now += 300 * 1000000LL;
  assert_int_equal(kube_event_emit(e, &obj, "Warning", "Storm", "again"), 0);
  assert_int_equal(kube_event_emit(e, &obj, "Warning", "Storm", "again"), 0);
  kube_events_flush(e);
  kube_events_get_stats(e, &s);
  assert_int_equal(s.dropped_spam, 40 - CCM_EVENTS_SPAM_BURST + 1);
  kube_events_free(e);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_aggregate_ten),
      cmocka_unit_test(test_recreate_after_delete),
      cmocka_unit_test(test_spam_filter),
  };

  if (!kdouble_available()) {
    fprintf(stderr, "FAIL: tests/doubles/kube_apiserver.py not found (it ships with the tree)\n");
    return 1;
  }
  return cmocka_run_group_tests(tests, setup, teardown);
}
