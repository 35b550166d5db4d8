/*
 * test_lease.c: unit tests of host/kube/lease.c that need no server:
 * option checks, the default identity, and that an elector that cannot
 * reach the API server never believes it leads. The election itself is
 * tested against the API double in tests/kube/kube_lease.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "kube/lease.h"

static struct kube_client *offline_client(void)
{
  struct kube_client_opts o = {.master = "http://127.0.0.1:1",
                               .max_tries = 1, .qps = -1};
  struct kube_client *c = NULL;
  char err[256];

  assert_int_equal(kube_client_new(&o, &c, err, sizeof err), 0);
  return c;
}

static void test_options(void **state)
{
  struct kube_client *c = offline_client();
  struct lease_opts o;
  struct lease *l = NULL;
  char err[256];

  (void)state;
  memset(&o, 0, sizeof o);
  o.lease_ms = 10000;
  o.renew_ms = 10000;
  assert_int_equal(lease_new(c, &o, &l, err, sizeof err), -1);
  assert_non_null(strstr(err, "lease duration"));
  o.renew_ms = 5000;
  o.retry_ms = 5000;
  assert_int_equal(lease_new(c, &o, &l, err, sizeof err), -1);
  memset(&o, 0, sizeof o);
  assert_int_equal(lease_new(c, &o, &l, err, sizeof err), 0);
  assert_non_null(strchr(lease_identity(l), '_'));
  assert_false(lease_is_leader(l));
  lease_free(l);
  o.identity = "me";
  assert_int_equal(lease_new(c, &o, &l, err, sizeof err), 0);
  assert_string_equal(lease_identity(l), "me");
  lease_free(l);
  kube_client_free(c);
}

static void test_identities_unique(void **state)
{
  struct kube_client *c = offline_client();
  struct lease_opts o;
  struct lease *a = NULL, *b = NULL;
  char err[256], host[256];

  (void)state;
  memset(&o, 0, sizeof o);
  assert_int_equal(lease_new(c, &o, &a, err, sizeof err), 0);
  assert_int_equal(lease_new(c, &o, &b, err, sizeof err), 0);
  assert_string_not_equal(lease_identity(a), lease_identity(b));
  assert_int_equal(gethostname(host, sizeof host), 0);
  assert_int_equal(strncmp(lease_identity(a), host, strlen(host)), 0);
  lease_free(a);
  lease_free(b);
  kube_client_free(c);
}

static void test_unreachable_never_leads(void **state)
{
  struct kube_client *c = offline_client();
  struct lease_opts o;
  struct lease *l = NULL;
  char err[256];
  int i;

  (void)state;
  memset(&o, 0, sizeof o);
  o.lease_ms = 3000;
  o.renew_ms = 2000;
  o.retry_ms = 100;
  assert_int_equal(lease_new(c, &o, &l, err, sizeof err), 0);
  assert_false(lease_try_acquire_or_renew(l));
  assert_int_equal(lease_start(l), 0);
  for (i = 0; i < 5; i++) {
    assert_false(lease_is_leader(l));
    usleep(50000);
  }
  lease_stop(l, true);
  assert_false(lease_is_leader(l));
  lease_free(l);
  kube_client_free(c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_identities_unique),
      cmocka_unit_test(test_unreachable_never_leads),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
