/*
 * test_workqueue.c: unit tests of host/controllers/workqueue.c: dedup,
 * one worker per key under contention, dirty re-queue, per-key backoff,
 * forget, delayed ordering and shutdown. Only lower-bound timing checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <cmocka.h>

#include "controllers/workqueue.h"

static int64_t now_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

  nanosleep(&ts, NULL);
}

static struct workqueue *new_queue(uint32_t base, uint32_t max)
{
  struct wq_opts o = { "test", base, max };
  struct workqueue *q = wq_new(&o);

  assert_non_null(q);
  return q;
}

static void expect_get(struct workqueue *q, const char *want)
{
  const char *key = NULL;

  assert_true(wq_get(q, &key));
  assert_non_null(key);
  assert_string_equal(key, want);
  wq_done(q, key);
}

static void test_dedup(void **state)
{
  struct workqueue *q = new_queue(5, 100);
  struct wq_stats st;
  const char *k1, *k2;

  (void)state;
  wq_add(q, "ns/a");
  wq_add(q, "ns/a");
  wq_add(q, "ns/b");
  wq_add(q, "ns/a");
  wq_get_stats(q, &st);
  assert_int_equal(st.depth, 2);
  assert_int_equal(st.adds, 2);
  assert_true(wq_get(q, &k1));
  assert_true(wq_get(q, &k2));
  assert_string_equal(k1, "ns/a"); /* FIFO */
  assert_string_equal(k2, "ns/b");
  wq_get_stats(q, &st);
  assert_int_equal(st.depth, 0);
  assert_int_equal(st.processing, 2);
  wq_done(q, k1);
  wq_done(q, k2);
  wq_get_stats(q, &st);
  assert_int_equal(st.processing, 0);
  wq_shutdown(q, true);
  wq_free(q);
}

static void test_dirty_readd(void **state)
{
  struct workqueue *q = new_queue(5, 100);
  struct wq_stats st;
  const char *k;

  (void)state;
  wq_add(q, "a");
  assert_true(wq_get(q, &k));
  assert_string_equal(k, "a");
  wq_add(q, "a");
  wq_add(q, "a");
  wq_get_stats(q, &st);
  assert_int_equal(st.depth, 0); /* held: not handed to another worker */
  assert_int_equal(st.processing, 1);
  wq_done(q, k);
  wq_get_stats(q, &st);
  assert_int_equal(st.depth, 1);
  expect_get(q, "a");
  wq_get_stats(q, &st);
  assert_int_equal(st.depth, 0);
  wq_shutdown(q, true);
  wq_free(q);
}

/* ---- contention: never two workers on one key ---- */

#define NKEYS 4
#define NWORKERS 8

struct hammer {
  struct workqueue *q;
  atomic_int held[NKEYS];
  atomic_int violations;
  atomic_long processed[NKEYS];
};

static int key_index(const char *key)
{
  return key[1] - '0';
}

static void *hammer_worker(void *ud)
{
  struct hammer *h = ud;
  const char *key;
  unsigned n = 0;

  while (wq_get(h->q, &key)) {
    int i = key_index(key);

    if (atomic_fetch_add(&h->held[i], 1) != 0)
      atomic_fetch_add(&h->violations, 1);
    if (++n % 3 == 0)
      wq_add(h->q, key); /* re-add while held: must become dirty */
    if (n % 5 == 0)
      sleep_ms(1);
    atomic_fetch_sub(&h->held[i], 1);
    atomic_fetch_add(&h->processed[i], 1);
    wq_done(h->q, key);
  }
  return NULL;
}

static void test_no_two_workers_on_one_key(void **state)
{
  static struct hammer h;
  pthread_t th[NWORKERS];
  char key[4];
  int i, r;

  (void)state;
  memset(&h, 0, sizeof(h));
  h.q = new_queue(1, 10);
  for (i = 0; i < NWORKERS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, hammer_worker, &h), 0);
  for (r = 0; r < 5000; r++) {
    snprintf(key, sizeof(key), "k%d", r % NKEYS);
    wq_add(h.q, key);
    if (r % 7 == 0)
      wq_add_after(h.q, key, 1);
  }
  sleep_ms(50);
  for (i = 0; i < NKEYS; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    wq_add(h.q, key);
  }
  wq_shutdown(h.q, true);
  for (i = 0; i < NWORKERS; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(atomic_load(&h.violations), 0);
  for (i = 0; i < NKEYS; i++)
    assert_true(atomic_load(&h.processed[i]) >= 1);
  wq_free(h.q);
}

/* ---- backoff ---- */

struct getter {
  struct workqueue *q;
  atomic_int got;     /* 1 returned a key, 2 returned false */
  int64_t at_ms;
  char key[32];
};

static void *getter_run(void *ud)
{
  struct getter *g = ud;
  const char *key;

  if (wq_get(g->q, &key)) {
    snprintf(g->key, sizeof(g->key), "%s", key);
    g->at_ms = now_ms();
    wq_done(g->q, key);
    atomic_store(&g->got, 1);
  } else {
    atomic_store(&g->got, 2);
  }
  return NULL;
}

static void test_backoff_counts_and_holds(void **state)
{
  struct workqueue *q = new_queue(60000, 300000);
  struct getter g;
  struct wq_stats st;
  pthread_t th;
  int i;

  (void)state;
  for (i = 1; i <= 5; i++) {
    wq_add_rate_limited(q, "svc");
    assert_int_equal(wq_failures(q, "svc"), i);
  }
  assert_int_equal(wq_failures(q, "other"), 0);
  wq_get_stats(q, &st);
  assert_int_equal(st.retries, 5);
  assert_int_equal(st.delayed, 1);
  assert_int_equal(st.depth, 0);

  memset(&g, 0, sizeof(g));
  g.q = q;
  assert_int_equal(pthread_create(&th, NULL, getter_run, &g), 0);
  sleep_ms(200);
  assert_int_equal(atomic_load(&g.got), 0); /* a minute away: not handed out */
  wq_shutdown(q, true);
  pthread_join(th, NULL);
  assert_int_equal(atomic_load(&g.got), 2); /* delayed keys are dropped */
  wq_get_stats(q, &st);
  assert_int_equal(st.delayed, 0);
  wq_free(q);
}

static void test_backoff_lower_bounds_and_cap(void **state)
{
  struct workqueue *q = new_queue(40, 160);
  int64_t t0, expect_min[] = { 40, 80, 160, 160, 160 };
  int i;

  (void)state;
  for (i = 0; i < 5; i++) {
    const char *k;

    t0 = now_ms();
    wq_add_rate_limited(q, "x");
    assert_true(wq_get(q, &k)); /* capped: returns even after 5 failures */
    assert_true(now_ms() - t0 >= expect_min[i] - 1);
    assert_int_equal(wq_failures(q, k), i + 1);
    wq_done(q, k);
  }
  wq_shutdown(q, true);
  wq_free(q);
}

static void test_forget(void **state)
{
  struct workqueue *q = new_queue(60000, 300000);
  struct wq_stats st;

  (void)state;
  wq_add_rate_limited(q, "a");
  wq_add_rate_limited(q, "a");
  wq_add_rate_limited(q, "a");
  assert_int_equal(wq_failures(q, "a"), 3);
  wq_forget(q, "a");
  assert_int_equal(wq_failures(q, "a"), 0);
  wq_get_stats(q, &st);
  assert_int_equal(st.delayed, 1); /* forget resets counts, not the delay */
  wq_add_rate_limited(q, "a");
  assert_int_equal(wq_failures(q, "a"), 1);
  /* An immediate add beats the pending delay. */
  wq_add(q, "a");
  wq_get_stats(q, &st);
  assert_int_equal(st.delayed, 0);
  assert_int_equal(st.depth, 1);
  expect_get(q, "a");
  wq_forget(q, "a");
  wq_forget(q, "never-seen");
  assert_int_equal(wq_failures(q, "a"), 0);
  wq_shutdown(q, true);
  wq_free(q);
}

static void test_add_after_ordering(void **state)
{
  struct workqueue *q = new_queue(5, 100);
  struct wq_stats st;
  int64_t t0 = now_ms();

  (void)state;
  wq_add_after(q, "late", 300);
  wq_add_after(q, "first", 100);
  wq_add_after(q, "mid", 200);
  /* Earliest pending time wins, both ways. */
  wq_add_after(q, "shrink", 100000);
  wq_add_after(q, "shrink", 250);
  wq_add_after(q, "keep", 150);
  wq_add_after(q, "keep", 100000);
  wq_get_stats(q, &st);
  assert_int_equal(st.delayed, 5);
  assert_int_equal(st.depth, 0);
  expect_get(q, "first");
  assert_true(now_ms() - t0 >= 99);
  expect_get(q, "keep");
  expect_get(q, "mid");
  expect_get(q, "shrink");
  expect_get(q, "late");
  assert_true(now_ms() - t0 >= 299);
  /* A queued key ignores a later delayed add. */
  wq_add(q, "now");
  wq_add_after(q, "now", 50);
  wq_get_stats(q, &st);
  assert_int_equal(st.delayed, 0);
  assert_int_equal(st.depth, 1);
  expect_get(q, "now");
  /* Zero delay is an immediate add. */
  wq_add_after(q, "zero", 0);
  wq_get_stats(q, &st);
  assert_int_equal(st.depth, 1);
  expect_get(q, "zero");
  wq_shutdown(q, true);
  wq_free(q);
}

static void test_delayed_while_held(void **state)
{
  struct workqueue *q = new_queue(5, 100);
  struct wq_stats st;
  const char *k;

  (void)state;
  wq_add(q, "a");
  assert_true(wq_get(q, &k));
  wq_add_after(q, "a", 20);
  sleep_ms(40);
  wq_add(q, "b");
  expect_get(q, "b"); /* promotes "a", which is held: it turns dirty */
  wq_get_stats(q, &st);
  assert_int_equal(st.delayed, 0);
  assert_int_equal(st.depth, 0);
  wq_done(q, k);
  expect_get(q, "a");
  wq_shutdown(q, true);
  wq_free(q);
}

static void test_drain(void **state)
{
  struct workqueue *q = new_queue(5, 100);
  struct wq_stats st;
  const char *k, *held;

  (void)state;
  wq_add(q, "a");
  wq_add(q, "b");
  wq_add(q, "c");
  wq_add_after(q, "d", 100000);
  assert_true(wq_get(q, &held));
  assert_string_equal(held, "a");
  wq_add(q, "a"); /* dirty before shutdown: still handed out */
  wq_shutdown(q, true);
  wq_add(q, "e"); /* ignored after shutdown */
  wq_add_rate_limited(q, "f");
  wq_get_stats(q, &st);
  assert_int_equal(st.delayed, 0);
  assert_int_equal(st.depth, 2);
  expect_get(q, "b");
  expect_get(q, "c");
  wq_done(q, held);
  expect_get(q, "a");
  assert_false(wq_get(q, &k));
  assert_null(k);
  assert_false(wq_get(q, &k));
  assert_int_equal(wq_failures(q, "f"), 0);
  wq_free(q);
}

static void test_shutdown_no_drain(void **state)
{
  struct workqueue *q = new_queue(5, 100);
  struct getter g;
  struct wq_stats st;
  pthread_t th;
  const char *k;

  (void)state;
  memset(&g, 0, sizeof(g));
  g.q = q;
  assert_int_equal(pthread_create(&th, NULL, getter_run, &g), 0);
  sleep_ms(50);
  assert_int_equal(atomic_load(&g.got), 0); /* blocked on an empty queue */
  wq_add(q, "a");
  pthread_join(th, NULL);
  assert_int_equal(atomic_load(&g.got), 1);
  assert_string_equal(g.key, "a");

  wq_add(q, "x");
  wq_add(q, "y");
  assert_true(wq_get(q, &k));
  wq_add(q, "x");
  wq_shutdown(q, false);
  assert_false(wq_get(q, &k));
  wq_done(q, "x"); /* the holder still finishes; nothing is re-queued */
  wq_get_stats(q, &st);
  assert_int_equal(st.depth, 0);
  assert_int_equal(st.processing, 0);
  assert_false(wq_get(q, &k));
  wq_free(q);
}

static void test_shutdown_wakes_waiters(void **state)
{
  struct workqueue *q = new_queue(5, 100);
  struct getter g[3];
  pthread_t th[3];
  int i;

  (void)state;
  memset(g, 0, sizeof(g));
  for (i = 0; i < 3; i++) {
    g[i].q = q;
    assert_int_equal(pthread_create(&th[i], NULL, getter_run, &g[i]), 0);
  }
  wq_add_after(q, "far", 100000); /* one waits on a timeout */
  sleep_ms(50);
  wq_shutdown(q, true);
  for (i = 0; i < 3; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&g[i].got), 2);
  }
  wq_free(q);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_dedup),
    cmocka_unit_test(test_dirty_readd),
    cmocka_unit_test(test_no_two_workers_on_one_key),
    cmocka_unit_test(test_backoff_counts_and_holds),
    cmocka_unit_test(test_backoff_lower_bounds_and_cap),
    cmocka_unit_test(test_forget),
    cmocka_unit_test(test_add_after_ordering),
    cmocka_unit_test(test_delayed_while_held),
    cmocka_unit_test(test_drain),
    cmocka_unit_test(test_shutdown_no_drain),
    cmocka_unit_test(test_shutdown_wakes_waiters),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
