/*
 * test_events.c: unit tests of host/kube/events.c that need no server
 * (the API server is an unreachable 127.0.0.1 port): the per-object spam
 * filter with an injected clock, least-recently-used eviction from a full
 * cache, message redaction and truncation accepted, and a clean free
 * with events still queued.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "kube/events.h"
#include "util/log.h"

static int64_t fake_now;

static int64_t fake_clock(void *ud)
{
  (void)ud;
  return fake_now;
}

static struct kube_client *offline_client(void)
{
  struct kube_client_opts o = {.master = "http://127.0.0.1:1",
                               .max_tries = 1, .qps = -1};
  struct kube_client *c = NULL;
  char err[256];

  assert_int_equal(kube_client_new(&o, &c, err, sizeof err), 0);
  return c;
}

static void test_spam_filter_offline(void **state)
{
  struct kube_events_opts o = {.component = "t", .clock = fake_clock,
                               .spam_burst = 3, .spam_qps = 0.5};
  const struct kube_object_ref a = {.api_version = "v1", .kind = "Service",
                                    .ns = "ns", .name = "a", .uid = "ua"};
  const struct kube_object_ref b = {.api_version = "v1", .kind = "Service",
                                    .ns = "ns", .name = "b", .uid = "ub"};
  struct kube_client *c = offline_client();
  struct kube_events *e = NULL;
  struct kube_events_stats s;
  char err[256];
  int i;

  (void)state;
  fake_now = 0;
  assert_int_equal(kube_events_new(c, &o, &e, err, sizeof err), 0);
  for (i = 0; i < 5; i++)
    assert_int_equal(kube_event_emit(e, &a, "Warning", "R", "m%d", i), 0);
  kube_events_flush(e);
  kube_events_get_stats(e, &s);
  assert_int_equal(s.emitted, 5);
  assert_int_equal(s.dropped_spam, 2); /* burst 3 per object */
  assert_int_equal(s.failed, 3);       /* the server is not there */
  /* Another object has its own bucket. */
  assert_int_equal(kube_event_emit(e, &b, "Normal", "R", "m"), 0);
  kube_events_flush(e);
  kube_events_get_stats(e, &s);
  assert_int_equal(s.dropped_spam, 2);
  /* 2 s at 0.5 qps: one more token for a. */
  fake_now += 2000000;
  assert_int_equal(kube_event_emit(e, &a, "Warning", "R", "again"), 0);
  assert_int_equal(kube_event_emit(e, &a, "Warning", "R", "again"), 0);
  kube_events_flush(e);
  kube_events_get_stats(e, &s);
  assert_int_equal(s.dropped_spam, 3);
  kube_events_free(e);
  kube_client_free(c);
}

/* A full cache drops the least recently used object's entry: a bucket
 * refreshed by use stays, the other goes (and starts full again). */
static void test_cache_evicts_least_recent(void **state)
{
  struct kube_events_opts o = {.component = "t", .clock = fake_clock,
                               .spam_burst = 1, .spam_qps = 0.001,
                               .cache_max = 2};
  struct kube_object_ref r[3] = {
      {.api_version = "v1", .kind = "Service", .ns = "ns", .name = "a"},
      {.api_version = "v1", .kind = "Service", .ns = "ns", .name = "b"},
      {.api_version = "v1", .kind = "Service", .ns = "ns", .name = "c"}};
  struct kube_client *c = offline_client();
  struct kube_events *e = NULL;
  struct kube_events_stats s;
  char err[256];

  (void)state;
  fake_now = 0;
  assert_int_equal(kube_events_new(c, &o, &e, err, sizeof err), 0);
  assert_int_equal(kube_event_emit(e, &r[0], "Normal", "R", "a1"), 0);
  assert_int_equal(kube_event_emit(e, &r[1], "Normal", "R", "b1"), 0);
  assert_int_equal(kube_event_emit(e, &r[0], "Normal", "R", "a2"), 0);
  kube_events_flush(e);
  kube_events_get_stats(e, &s);
  assert_int_equal(s.dropped_spam, 1); /* a's second: its bucket is empty */
  /* c evicts b (a was used after b); b comes back with a full bucket,
   * evicting a; a's next Event then passes too. */
  assert_int_equal(kube_event_emit(e, &r[2], "Normal", "R", "c1"), 0);
  assert_int_equal(kube_event_emit(e, &r[1], "Normal", "R", "b2"), 0);
  kube_events_flush(e);
  kube_events_get_stats(e, &s);
  assert_int_equal(s.dropped_spam, 1);
  assert_int_equal(kube_event_emit(e, &r[1], "Normal", "R", "b3"), 0);
  kube_events_flush(e);
  kube_events_get_stats(e, &s);
  assert_int_equal(s.dropped_spam, 2); /* b is cached: its bucket is empty */
  assert_int_equal(kube_event_emit(e, &r[0], "Normal", "R", "a3"), 0);
  kube_events_flush(e);
  kube_events_get_stats(e, &s);
  assert_int_equal(s.dropped_spam, 2);
  kube_events_free(e);
  kube_client_free(c);
}

static void test_free_with_queue(void **state)
{
  struct kube_events_opts o = {.component = "t", .spam_qps = -1};
  const struct kube_object_ref a = {.api_version = "v1", .kind = "Node",
                                    .name = "n"};
  struct kube_client *c = offline_client();
  struct kube_events *e = NULL;
  char err[256], big[3000];
  int i;

  (void)state;
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  log_secret_add("CANARY-event-secret-1");
  assert_int_equal(kube_events_new(c, &o, &e, err, sizeof err), 0);
  for (i = 0; i < 20; i++)
    assert_int_equal(kube_event_emit(e, &a, "Normal", "R",
                                     "%s CANARY-event-secret-1 %d", big, i),
                     0);
  assert_int_equal(kube_event_emit_text(e, &a, "Normal", "R", big), 0);
  kube_events_free(e); /* drains, joins, frees */
  kube_client_free(c);
  log_secrets_clear();
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spam_filter_offline),
      cmocka_unit_test(test_cache_evicts_least_recent),
      cmocka_unit_test(test_free_with_queue),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
