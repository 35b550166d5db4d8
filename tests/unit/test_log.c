/*
 * test_log.c: unit tests of host/util/log.c: line format, level filter,
 * sink, and redaction of registered secrets (whole, overlapping, cut by
 * truncation, from several threads). It must not write to stderr on success.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "util/mem.h"

#define CAPTURE_MAX 256
#define CANARY "CANARY-s3cr3t-0xdeadbeef-7f3a"

struct capture {
  pthread_mutex_t lock;
  size_t n;
  int levels[CAPTURE_MAX];
  char lines[CAPTURE_MAX][8192];
};

static struct capture cap = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void capture_sink(int level, const char *line, void *ud)
{
  struct capture *c = ud;

  pthread_mutex_lock(&c->lock);
  if (c->n < CAPTURE_MAX) {
    c->levels[c->n] = level;
    snprintf(c->lines[c->n], sizeof c->lines[0], "%s", line);
    c->n++;
  }
  pthread_mutex_unlock(&c->lock);
}

static int setup(void **state)
{
  (void)state;
  cap.n = 0;
  log_set_sink(capture_sink, &cap);
  log_set_level(CCM_LOG_DEBUG);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  log_set_sink(NULL, NULL);
  log_set_level(CCM_LOG_INFO);
  log_secrets_clear();
  mem_fail_after(-1);
  return 0;
}

static bool captured_contains(const char *needle)
{
  size_t i;

  for (i = 0; i < cap.n; i++) {
    if (strstr(cap.lines[i], needle) != NULL)
      return true;
  }
  return false;
}

static void test_line_format(void **state)
{
  const char *l;

  (void)state;
  log_msg(CCM_LOG_INFO, "test", "hello %d", 42);
  assert_int_equal(cap.n, 1);
  l = cap.lines[0];
  /* 2024-01-02T03:04:05.678Z INFO [test] hello 42 */
  assert_true(strlen(l) > 25);
  assert_int_equal(l[4], '-');
  assert_int_equal(l[10], 'T');
  assert_int_equal(l[19], '.');
  assert_int_equal(l[23], 'Z');
  assert_string_equal(l + 24, " INFO [test] hello 42");
  assert_int_equal(cap.levels[0], CCM_LOG_INFO);

  log_msg(CCM_LOG_ERROR, NULL, "x");
  assert_string_equal(cap.lines[1] + 24, " ERROR [host] x");
}

static void test_level_filter(void **state)
{
  (void)state;
  log_set_level(CCM_LOG_WARN);
  assert_int_equal(log_get_level(), CCM_LOG_WARN);
  log_msg(CCM_LOG_DEBUG, "t", "debug");
  log_msg(CCM_LOG_INFO, "t", "info");
  log_msg(CCM_LOG_WARN, "t", "warn");
  log_msg(CCM_LOG_ERROR, "t", "error");
  assert_int_equal(cap.n, 2);
  assert_non_null(strstr(cap.lines[0], " WARN [t] warn"));
  assert_non_null(strstr(cap.lines[1], " ERROR [t] error"));
  /* Out-of-range levels are clamped, not dropped or crashed on. */
  log_msg(-7, "t", "low");
  log_msg(99, "t", "high");
  assert_int_equal(cap.n, 3);
  assert_non_null(strstr(cap.lines[2], " ERROR [t] low"));
}

static void test_level_parse(void **state)
{
  (void)state;
  assert_int_equal(log_level_parse("error"), CCM_LOG_ERROR);
  assert_int_equal(log_level_parse("WARN"), CCM_LOG_WARN);
  assert_int_equal(log_level_parse("info"), CCM_LOG_INFO);
  assert_int_equal(log_level_parse("debug"), CCM_LOG_DEBUG);
  assert_int_equal(log_level_parse("verbose"), -1);
  assert_int_equal(log_level_parse(NULL), -1);
}

static void test_redact_every_level(void **state)
{
  int level;

  (void)state;
  log_secret_add(CANARY);
  for (level = CCM_LOG_ERROR; level <= CCM_LOG_DEBUG; level++)
    log_msg(level, "p", "token=%s and again %s.", CANARY, CANARY);
  assert_int_equal(cap.n, 4);
  assert_false(captured_contains(CANARY));
  assert_false(captured_contains("0xdeadbeef"));
  assert_non_null(strstr(cap.lines[3], "token=[REDACTED] and again [REDACTED]."));
  /* A secret in the prefix is redacted too. */
  log_msg(CCM_LOG_INFO, CANARY, "x");
  assert_false(captured_contains(CANARY));
}

static void test_redact_short_and_overlap(void **state)
{
  char buf[128];

  (void)state;
  log_secret_add("abc"); /* too short: ignored */
  log_msg(CCM_LOG_INFO, "p", "abcdef");
  assert_non_null(strstr(cap.lines[0], "abcdef"));

  /* Two overlapping secrets leave no fragment of either. */
  log_secret_add("KEY1-abcd");
  log_secret_add("abcd-TAIL");
  log_msg(CCM_LOG_INFO, "p", "<KEY1-abcd-TAIL>");
  assert_non_null(strstr(cap.lines[1], "<[REDACTED]>"));

  snprintf(buf, sizeof buf, "pre KEY1-abcd post");
  log_redact(buf, sizeof buf);
  assert_string_equal(buf, "pre [REDACTED] post");
}

static void test_redact_truncated_tail(void **state)
{
  static char filler[8000];

  (void)state;
  log_secret_add(CANARY);
  memset(filler, 'a', sizeof filler - 1);
  /* The line is cut inside the secret: even its head must not appear. */
  log_msg(CCM_LOG_INFO, "p", "%.*s%s", 4096 - 10, filler, CANARY);
  assert_int_equal(cap.n, 1);
  assert_null(strstr(cap.lines[0], "CANARY"));
  assert_null(strstr(cap.lines[0], "CANA"));
  assert_non_null(strstr(cap.lines[0], "[REDACTED]"));
}

static void test_redact_in_place(void **state)
{
  char out[64];

  (void)state;
  log_secret_add(CANARY);
  snprintf(out, sizeof out, "e: %s", CANARY);
  log_redact(out, sizeof out);
  assert_string_equal(out, "e: [REDACTED]");
  /* Growth past the capacity cuts our marker, never exposes the secret. */
  {
    char tiny[12];

    log_secret_add("ABCD");
    snprintf(tiny, sizeof tiny, "ABCDABCD x");
    log_redact(tiny, sizeof tiny);
    assert_null(strstr(tiny, "ABCD"));
  }
}

static void vformat(char *buf, size_t cap_, const char *fmt, ...)
    CCM_PRINTF(3, 4);
static void vformat(char *buf, size_t cap_, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  log_vformat(buf, cap_, fmt, ap);
  va_end(ap);
}

static void test_vformat_truncated(void **state)
{
  char buf[24];

  (void)state;
  log_secret_add(CANARY);
  vformat(buf, sizeof buf, "error: %s!", CANARY);
  assert_null(strstr(buf, "CANA"));
  assert_non_null(strstr(buf, "error: "));
  vformat(buf, sizeof buf, "ok %d", 7);
  assert_string_equal(buf, "ok 7");

  /* The same for text copied without a format. */
  log_copy_redacted(buf, sizeof buf, "error: " CANARY "!");
  assert_null(strstr(buf, "CANA"));
  assert_non_null(strstr(buf, "error: "));
  log_copy_redacted(buf, sizeof buf, "100% done");
  assert_string_equal(buf, "100% done");
  log_copy_redacted(buf, 5, "abcdefgh");
  assert_string_equal(buf, "abcd");
}

static void test_control_chars_flattened(void **state)
{
  (void)state;
  log_msg(CCM_LOG_INFO, "p", "one\ntwo\rthree");
  assert_int_equal(cap.n, 1);
  assert_null(strchr(cap.lines[0], '\n'));
  assert_non_null(strstr(cap.lines[0], "one two three"));
}

static void test_secret_alloc_failure_fails_closed(void **state)
{
  (void)state;
  mem_fail_after(0);
  log_secret_add("SECRET-NOT-STORED-1234");
  mem_fail_after(-1);
  log_msg(CCM_LOG_INFO, "p", "value SECRET-NOT-STORED-1234");
  assert_int_equal(cap.n, 1);
  assert_false(captured_contains("SECRET-NOT-STORED"));
  log_secrets_clear();
  log_msg(CCM_LOG_INFO, "p", "after clear");
  assert_true(captured_contains("after clear"));
}

static void *thread_main(void *arg)
{
  char secret[64];
  int i, id = *(int *)arg;

  for (i = 0; i < 20; i++) {
    snprintf(secret, sizeof secret, "THREADSECRET-%d-%d", id, i);
    log_secret_add(secret);
    log_msg(CCM_LOG_INFO, "t", "%s %s", secret, CANARY);
  }
  return NULL;
}

static void test_threads(void **state)
{
  pthread_t th[4];
  int ids[4];
  int i;

  (void)state;
  log_secret_add(CANARY);
  for (i = 0; i < 4; i++) {
    ids[i] = i;
    assert_int_equal(pthread_create(&th[i], NULL, thread_main, &ids[i]), 0);
  }
  for (i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(cap.n, 80);
  assert_false(captured_contains("THREADSECRET"));
  assert_false(captured_contains(CANARY));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_line_format, setup, teardown),
      cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
      cmocka_unit_test_setup_teardown(test_level_parse, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redact_every_level, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redact_short_and_overlap, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_redact_truncated_tail, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_redact_in_place, setup, teardown),
      cmocka_unit_test_setup_teardown(test_vformat_truncated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_control_chars_flattened, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_secret_alloc_failure_fails_closed,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
