/*
 * test_kube_client.c: unit tests of host/kube/client.c that need no
 * server: error mapping from status codes and Status bodies, client
 * construction errors, and no token in logs at debug level when requests
 * fail (connection refused on 127.0.0.1:1).
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
#include <unistd.h>

#include "kube/client.h"
#include "util/log.h"

#define CANARY "CANARY-unit-token-77aa-f00d"

static size_t cap_lines;
static bool cap_canary;
static char cap_last[1024];

static void cap_sink(int level, const char *line, void *ud)
{
  (void)level;
  (void)ud;
  cap_lines++;
  if (strstr(line, "CANARY") != NULL)
    cap_canary = true;
  snprintf(cap_last, sizeof cap_last, "%s", line);
}

static void test_map_codes(void **state)
{
  char msg[256];

  (void)state;
  assert_int_equal(kube_status_map(200, "{}", 2, msg, sizeof msg), KUBE_OK);
  assert_int_equal(kube_status_map(201, NULL, 0, msg, sizeof msg), KUBE_OK);
  assert_int_equal(kube_status_map(404, NULL, 0, msg, sizeof msg),
                   KUBE_NOT_FOUND);
  assert_string_equal(msg, "HTTP 404");
  assert_int_equal(kube_status_map(410, NULL, 0, msg, sizeof msg), KUBE_GONE);
  assert_int_equal(kube_status_map(400, NULL, 0, msg, sizeof msg),
                   KUBE_INVALID);
  assert_int_equal(kube_status_map(422, NULL, 0, msg, sizeof msg),
                   KUBE_INVALID);
  assert_int_equal(kube_status_map(401, NULL, 0, msg, sizeof msg),
                   KUBE_UNAUTHORIZED);
  assert_int_equal(kube_status_map(403, NULL, 0, msg, sizeof msg),
                   KUBE_FORBIDDEN);
  assert_int_equal(kube_status_map(429, NULL, 0, msg, sizeof msg),
                   KUBE_THROTTLED);
  assert_int_equal(kube_status_map(500, NULL, 0, msg, sizeof msg),
                   KUBE_UNAVAILABLE);
  assert_int_equal(kube_status_map(503, "oops", 4, msg, sizeof msg),
                   KUBE_UNAVAILABLE);
  assert_int_equal(kube_status_map(0, NULL, 0, msg, sizeof msg),
                   KUBE_UNAVAILABLE);
  assert_int_equal(kube_status_map(418, NULL, 0, msg, sizeof msg),
                   KUBE_ERROR);
  assert_int_equal(kube_status_map(302, NULL, 0, msg, sizeof msg),
                   KUBE_ERROR);
}

static void test_map_status_bodies(void **state)
{
  static const char conflict[] =
      "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
      "\"message\":\"Operation cannot be fulfilled on services \\\"a\\\": "
      "the object has been modified\",\"reason\":\"Conflict\",\"code\":409}";
  static const char exists[] =
      "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":"
      "\"services \\\"a\\\" already exists\",\"reason\":\"AlreadyExists\","
      "\"code\":409}";
  static const char invalid[] =
      "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":"
      "\"Service \\\"a\\\" is invalid: spec.ports: Required value\","
      "\"reason\":\"Invalid\",\"code\":422}";
  static const char expired[] =
      "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":"
      "\"too old resource version\",\"reason\":\"Expired\",\"code\":410}";
  static const char odd[] =
      "{\"kind\":\"Status\",\"reason\":\"Expired\",\"message\":\"x\"}";
  char msg[256];

  (void)state;
  assert_int_equal(kube_status_map(409, conflict, strlen(conflict), msg,
                                   sizeof msg), KUBE_CONFLICT);
  assert_non_null(strstr(msg, "has been modified"));
  assert_int_equal(kube_status_map(409, exists, strlen(exists), msg,
                                   sizeof msg), KUBE_EXISTS);
  assert_string_equal(msg, "services \"a\" already exists");
  assert_int_equal(kube_status_map(422, invalid, strlen(invalid), msg,
                                   sizeof msg), KUBE_INVALID);
  assert_non_null(strstr(msg, "spec.ports: Required value"));
  assert_int_equal(kube_status_map(410, expired, strlen(expired), msg,
                                   sizeof msg), KUBE_GONE);
  /* A code a proxy chose, with a Status reason: the reason wins. */
  assert_int_equal(kube_status_map(499, odd, strlen(odd), msg, sizeof msg),
                   KUBE_GONE);
  /* Truncated JSON is not a Status. */
  assert_int_equal(kube_status_map(409, conflict, 20, msg, sizeof msg),
                   KUBE_CONFLICT);
  assert_string_equal(msg, "HTTP 409");
  /* A registered secret in a server message is redacted. */
  log_secret_add(CANARY);
  {
    static const char leak[] =
        "{\"kind\":\"Status\",\"message\":\"bad token " CANARY "\","
        "\"reason\":\"Unauthorized\",\"code\":401}";

    assert_int_equal(kube_status_map(401, leak, strlen(leak), msg,
                                     sizeof msg), KUBE_UNAUTHORIZED);
    assert_null(strstr(msg, "CANARY"));
  }
  log_secrets_clear();
}

static void test_names(void **state)
{
  (void)state;
  assert_string_equal(kube_status_name(KUBE_OK), "ok");
  assert_string_equal(kube_status_name(KUBE_CONFLICT), "conflict");
  assert_string_equal(kube_status_name(KUBE_GONE), "gone");
  assert_string_equal(kube_status_name(12345), "error");
}

static void test_new_errors(void **state)
{
  struct kube_client_opts o = {.master = "ftp://127.0.0.1:1"};
  struct kube_client *c = NULL;
  char err[256];

  (void)state;
  assert_int_equal(kube_client_new(&o, &c, err, sizeof err), -1);
  assert_null(c);
  assert_non_null(strstr(err, "https://"));
  memset(&o, 0, sizeof o);
  o.kubeconfig = "/nonexistent/kubeconfig";
  assert_int_equal(kube_client_new(&o, &c, err, sizeof err), -1);
  assert_non_null(strstr(err, "/nonexistent/kubeconfig"));
}

static void test_no_token_in_logs(void **state)
{
  char dir[] = "/tmp/ccm-kube-client-XXXXXX", kcp[256], cmd[300];
  struct kube_client_opts o = {.backoff_base_ms = 5, .backoff_cap_ms = 10};
  struct kube_client *c = NULL;
  struct kube_response r;
  char err[256];
  FILE *f;
  int st;

  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(kcp, sizeof kcp, "%s/kc", dir);
  f = fopen(kcp, "w");
  assert_non_null(f);
  fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: d\n"
          "clusters:\n- name: d\n  cluster: {server: 'http://127.0.0.1:1'}\n"
          "contexts:\n- name: d\n  context: {cluster: d, user: u}\n"
          "users:\n- name: u\n  user: {token: %s}\n", CANARY);
  fclose(f);
  log_set_sink(cap_sink, NULL);
  log_set_level(CCM_LOG_DEBUG);
  o.kubeconfig = kcp;
  assert_int_equal(kube_client_new(&o, &c, err, sizeof err), 0);
  st = kube_request(c, "POST", "/api/v1/namespaces/default/secrets",
                    "application/json", "{\"data\":\"" CANARY "\"}",
                    strlen("{\"data\":\"" CANARY "\"}"), &r);
  assert_int_equal(st, KUBE_UNAVAILABLE);
  kube_response_free(&r);
  kube_client_free(c);
  log_set_sink(NULL, NULL);
  log_set_level(CCM_LOG_INFO);
  /* Debug lines were written (one per try), none with the token. */
  assert_true(cap_lines >= CCM_KUBE_MAX_TRIES);
  assert_false(cap_canary);
  log_secrets_clear();
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_map_codes),
      cmocka_unit_test(test_map_status_bodies),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_new_errors),
      cmocka_unit_test(test_no_token_in_logs),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
