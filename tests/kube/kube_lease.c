/*
 * kube_lease.c: leader election against the API double with short
 * durations. Asserts on the Lease object (holderIdentity,
 * leaseTransitions) and on lease_is_leader, never on wall-clock time:
 * exactly one leader; a killed leader is replaced; a released lease is
 * taken over before it could have expired; failing renews end leadership.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "double.h"
#include "kube/lease.h"
#include "kube/writes.h"

static struct kdouble d;
static struct kube_client *kc;

struct counts {
  atomic_int started;
  atomic_int stopped;
};

static void on_started(void *ud)
{
  struct counts *c = ud;

  atomic_fetch_add(&c->started, 1);
}

static void on_stopped(void *ud)
{
  struct counts *c = ud;

  atomic_fetch_add(&c->stopped, 1);
}

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

static struct lease *mk(const char *name, const char *id, uint32_t lease_ms,
                        uint32_t renew_ms, uint32_t retry_ms,
                        struct counts *cnt)
{
  struct lease_opts o = {.name = name, .ns = "kube-system", .identity = id,
                         .lease_ms = lease_ms, .renew_ms = renew_ms,
                         .retry_ms = retry_ms,
                         .on_started_leading = on_started,
                         .on_stopped_leading = on_stopped, .ud = cnt};
  struct lease *l = NULL;
  char err[256];

  assert_int_equal(lease_new(kc, &o, &l, err, sizeof err), 0);
  return l;
}

/* Poll (bounded) until l leads; false if it never does. */
static bool wait_leader(struct lease *l, int max_ms)
{
  int t;

  for (t = 0; t < max_ms; t += 50) {
    if (lease_is_leader(l))
      return true;
    usleep(50000);
  }
  return false;
}

static void lease_fields(const char *name, char *holder, size_t hlen,
                         long *transitions, long *duration)
{
  char path[256], msg[256];
  cJSON *obj = NULL, *spec, *h;

  snprintf(path, sizeof path,
           "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/%s",
           name);
  assert_int_equal(kube_get(kc, path, &obj, msg, sizeof msg), KUBE_OK);
  spec = cJSON_GetObjectItem(obj, "spec");
  h = cJSON_GetObjectItem(spec, "holderIdentity");
  snprintf(holder, hlen, "%s", cJSON_IsString(h) ? h->valuestring : "");
  *transitions = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(spec,
                                            "leaseTransitions"));
  *duration = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(spec,
                                         "leaseDurationSeconds"));
  cJSON_Delete(obj);
}

static void test_options(void **state)
{
  struct lease_opts o = {.lease_ms = 1000, .renew_ms = 1000};
  struct lease *l = NULL;
  char err[256];

  (void)state;
  assert_int_equal(lease_new(kc, &o, &l, err, sizeof err), -1);
  assert_non_null(strstr(err, "renew"));
  memset(&o, 0, sizeof o);
  assert_int_equal(lease_new(kc, &o, &l, err, sizeof err), 0);
  /* Default identity: hostname "_" uuid. */
  assert_non_null(strchr(lease_identity(l), '_'));
  assert_true(strlen(strchr(lease_identity(l), '_')) == 37);
  assert_false(lease_is_leader(l));
  lease_free(l);
}

static void test_one_leader_then_takeover(void **state)
{
  struct counts ca = {0}, cb = {0};
  struct lease *a, *b;
  char holder[256];
  long trans, dur;
  int i;

  (void)state;
  a = mk("ccm-kill", "cand-a", 2000, 1500, 300, &ca);
  b = mk("ccm-kill", "cand-b", 2000, 1500, 300, &cb);
  assert_int_equal(lease_start(a), 0);
  assert_true(wait_leader(a, 20000));
  assert_int_equal(lease_start(b), 0);
  /* For a while (a few lease durations) there is exactly one leader. */
  for (i = 0; i < 100; i++) {
    assert_false(lease_is_leader(a) && lease_is_leader(b));
    usleep(50000);
  }
  lease_fields("ccm-kill", holder, sizeof holder, &trans, &dur);
  assert_string_equal(holder, "cand-a");
  assert_int_equal(trans, 0);
  assert_int_equal(dur, 2);
  assert_int_equal(atomic_load(&cb.started), 0);

  /* Kill a: it stops renewing, writes nothing. */
  lease_stop(a, false);
  assert_false(lease_is_leader(a));
  assert_true(wait_leader(b, 30000));
  lease_fields("ccm-kill", holder, sizeof holder, &trans, &dur);
  assert_string_equal(holder, "cand-b");
  assert_int_equal(trans, 1);
  assert_int_equal(atomic_load(&ca.started), 1);
  assert_int_equal(atomic_load(&ca.stopped), 1);
  assert_int_equal(atomic_load(&cb.started), 1);
  lease_free(a);
  lease_free(b);
}

static void test_release_hands_over(void **state)
{
  struct counts ca = {0}, cb = {0};
  struct lease *a, *b;
  char holder[256];
  long trans, dur;

  (void)state;
  /* A long lease (60 s): b can only lead before expiry via a release. */
  a = mk("ccm-release", "rel-a", 60000, 40000, 300, &ca);
  b = mk("ccm-release", "rel-b", 60000, 40000, 300, &cb);
  assert_int_equal(lease_start(a), 0);
  assert_true(wait_leader(a, 20000));
  assert_int_equal(lease_start(b), 0);
  usleep(1000000); /* b has observed the record */
  assert_false(lease_is_leader(b));
  lease_stop(a, true);
  assert_false(lease_is_leader(a));
  assert_int_equal(atomic_load(&ca.stopped), 1);
  /* Well inside the 60 s a record stays valid for b. */
  assert_true(wait_leader(b, 30000));
  lease_fields("ccm-release", holder, sizeof holder, &trans, &dur);
  assert_string_equal(holder, "rel-b");
  assert_int_equal(trans, 1);
  assert_int_equal(dur, 60);

  /* Stopping b gracefully leaves the release marks in the Lease. */
  lease_stop(b, true);
  lease_fields("ccm-release", holder, sizeof holder, &trans, &dur);
  assert_string_equal(holder, "");
  assert_int_equal(dur, 1);
  assert_int_equal(trans, 1);
  lease_free(a);
  lease_free(b);
}

static void test_renew_failure_ends_leadership(void **state)
{
  struct counts ca = {0};
  struct lease *a;
  int t;

  (void)state;
  a = mk("ccm-fail", "fail-a", 2000, 1500, 300, &ca);
  assert_int_equal(lease_start(a), 0);
  assert_true(wait_leader(a, 20000));
  cJSON_Delete(kdouble_control(kc, "faults",
                               "{\"status\":500,\"method\":\"PUT\","
                               "\"path\":\"leases/ccm-fail\"}"));
  for (t = 0; t < 30000 && lease_is_leader(a); t += 50)
    usleep(50000);
  assert_false(lease_is_leader(a));
  for (t = 0; t < 30000 && atomic_load(&ca.stopped) == 0; t += 50)
    usleep(50000);
  assert_int_equal(atomic_load(&ca.stopped), 1);
  cJSON_Delete(kdouble_control(kc, "faults", "{\"clear\":true}"));
  /* It competes again and, alone, wins again. */
  assert_true(wait_leader(a, 30000));
  assert_int_equal(atomic_load(&ca.started), 2);
  lease_free(a);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_one_leader_then_takeover),
      cmocka_unit_test(test_release_hands_over),
      cmocka_unit_test(test_renew_failure_ends_leadership),
  };

  if (!kdouble_available()) {
    fprintf(stderr, "FAIL: tests/doubles/kube_apiserver.py not found (it ships with the tree)\n");
    return 1;
  }
  return cmocka_run_group_tests(tests, setup, teardown);
}
