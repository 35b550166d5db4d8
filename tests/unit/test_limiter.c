/*
 * test_limiter.c: unit tests of host/kube/limiter.c with an injected
 * clock: burst, refill at qps, reservations in the future, the cap at
 * burst, and "unlimited". No sleeping and no timing assertions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kube/limiter.h"

static int64_t fake_now;

static int64_t fake_clock(void *ud)
{
  (void)ud;
  return fake_now;
}

static void test_burst_then_wait(void **state)
{
  struct limiter l;
  int i;

  (void)state;
  fake_now = 1000000;
  limiter_init(&l, 20.0, 30, fake_clock, NULL);
  for (i = 0; i < 30; i++)
    assert_int_equal(limiter_reserve(&l), 0);
  /* The 31st token exists 1/20 s from now, the 32nd 2/20 s. */
  assert_int_equal(limiter_reserve(&l), 50000);
  assert_int_equal(limiter_reserve(&l), 100000);
  limiter_destroy(&l);
}

static void test_refill(void **state)
{
  struct limiter l;
  int i;

  (void)state;
  fake_now = 0;
  limiter_init(&l, 10.0, 5, fake_clock, NULL);
  for (i = 0; i < 5; i++)
    assert_int_equal(limiter_try(&l), 0);
  assert_int_equal(limiter_try(&l), -1);
  fake_now += 100000; /* one token at 10 qps */
  assert_int_equal(limiter_try(&l), 0);
  assert_int_equal(limiter_try(&l), -1);
  /* A long idle time refills only up to burst. */
  fake_now += 60 * 1000000LL;
  for (i = 0; i < 5; i++)
    assert_int_equal(limiter_try(&l), 0);
  assert_int_equal(limiter_try(&l), -1);
  limiter_destroy(&l);
}

static void test_reservations_are_paid(void **state)
{
  struct limiter l;

  (void)state;
  fake_now = 0;
  limiter_init(&l, 1.0, 1, fake_clock, NULL);
  assert_int_equal(limiter_reserve(&l), 0);
  assert_int_equal(limiter_reserve(&l), 1000000);
  assert_int_equal(limiter_reserve(&l), 2000000);
  /* After 1 s one reservation is paid; try still finds nothing free. */
  fake_now = 1000000;
  assert_int_equal(limiter_try(&l), -1);
  fake_now = 3000000;
  assert_int_equal(limiter_try(&l), 0);
  limiter_destroy(&l);
}

static void test_unlimited_and_min_burst(void **state)
{
  struct limiter l;
  int i;

  (void)state;
  fake_now = 0;
  limiter_init(&l, 0, 0, fake_clock, NULL);
  for (i = 0; i < 1000; i++)
    assert_int_equal(limiter_reserve(&l), 0);
  limiter_destroy(&l);
  limiter_init(&l, 2.0, 0, fake_clock, NULL); /* burst 0 -> 1 */
  assert_int_equal(limiter_try(&l), 0);
  assert_int_equal(limiter_try(&l), -1);
  limiter_destroy(&l);
}

static void test_clock_going_backwards(void **state)
{
  struct limiter l;

  (void)state;
  fake_now = 5000000;
  limiter_init(&l, 1.0, 1, fake_clock, NULL);
  assert_int_equal(limiter_try(&l), 0);
  fake_now = 1000000; /* must not add or remove tokens */
  assert_int_equal(limiter_try(&l), -1);
  fake_now = 6000000;
  assert_int_equal(limiter_try(&l), 0);
  limiter_destroy(&l);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_burst_then_wait),
      cmocka_unit_test(test_refill),
      cmocka_unit_test(test_reservations_are_paid),
      cmocka_unit_test(test_unlimited_and_min_burst),
      cmocka_unit_test(test_clock_going_backwards),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
