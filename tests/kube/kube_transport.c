/*
 * kube_transport.c: the transport against the API double: requests and
 * error mapping, 429 with Retry-After, 5xx retries, token re-read after a
 * 401, no token in debug logs, HTTPS with the right and a wrong CA, watch.
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

#include "double.h"
#include "kube/client.h"
#include "kube/writes.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/thread.h"

#define CANARY "CANARY-tok-5a1e-deadbeef-0042"

static struct kdouble d;
static struct kube_client *kc;

/* ---- log capture ---- */
static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t cap_lines;
static bool cap_canary;

static void cap_sink(int level, const char *line, void *ud)
{
  (void)level;
  (void)ud;
  pthread_mutex_lock(&cap_lock);
  cap_lines++;
  if (strstr(line, "CANARY") != NULL)
    cap_canary = true;
  pthread_mutex_unlock(&cap_lock);
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

static void clear_faults(void)
{
  cJSON_Delete(kdouble_control(kc, "faults", "{\"clear\":true}"));
}

static void clear_log_of(struct kube_client *c)
{
  struct kube_response r;

  kube_request(c, "DELETE", "/_control/requests", NULL, NULL, 0, &r);
  kube_response_free(&r);
}

static void clear_log(void)
{
  clear_log_of(kc);
}

static void test_get_and_mapping(void **state)
{
  struct kube_response r;
  cJSON *obj = NULL, *cm;
  char msg[256];
  int st;

  (void)state;
  assert_int_equal(kube_request(kc, "GET", "/api/v1/namespaces/default",
                                NULL, NULL, 0, &r), KUBE_OK);
  assert_int_equal(r.http_status, 200);
  assert_non_null(strstr(r.body, "\"default\""));
  kube_response_free(&r);

  st = kube_request(kc, "GET", "/api/v1/namespaces/default/services/none",
                    NULL, NULL, 0, &r);
  assert_int_equal(st, KUBE_NOT_FOUND);
  assert_int_equal(r.http_status, 404);
  assert_non_null(strstr(r.message, "not found"));
  kube_response_free(&r);

  /* discard_ok_body drops a 2xx body, and keeps an error's Status. */
  {
    const struct kube_request_opts ro = {.discard_ok_body = true};

    assert_int_equal(kube_request_ex(kc, "GET", "/api/v1/namespaces/default",
                                     NULL, NULL, 0, &ro, &r), KUBE_OK);
    assert_int_equal(r.http_status, 200);
    assert_int_equal(r.len, 0);
    assert_string_equal(r.body, "");
    kube_response_free(&r);
    assert_int_equal(kube_request_ex(kc, "GET",
                                     "/api/v1/namespaces/default/services/"
                                     "none", NULL, NULL, 0, &ro, &r),
                     KUBE_NOT_FOUND);
    assert_non_null(strstr(r.message, "not found"));
    kube_response_free(&r);
  }

  cm = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                   "\"metadata\":{\"name\":\"m1\"},\"data\":{\"a\":\"1\"}}");
  assert_int_equal(kube_create(kc, "/api/v1/namespaces/default/configmaps",
                               cm, &obj, msg, sizeof msg), KUBE_OK);
  assert_non_null(obj);
  cJSON_Delete(obj);
  assert_int_equal(kube_create(kc, "/api/v1/namespaces/default/configmaps",
                               cm, NULL, msg, sizeof msg), KUBE_EXISTS);
  assert_non_null(strstr(msg, "already exists"));
  /* A stale resourceVersion is a conflict. */
  cJSON_AddItemToObject(cJSON_GetObjectItem(cm, "metadata"),
                        "resourceVersion", cJSON_CreateString("1"));
  assert_int_equal(kube_update(kc, "/api/v1/namespaces/default/configmaps/m1",
                               cm, NULL, msg, sizeof msg), KUBE_CONFLICT);
  cJSON_Delete(cm);

  /* Invalid: the server's Status message comes through. */
  cm = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                   "\"metadata\":{\"name\":\"Bad_Name!\"}}");
  assert_int_equal(kube_create(kc, "/api/v1/namespaces/default/configmaps",
                               cm, NULL, msg, sizeof msg), KUBE_INVALID);
  assert_true(strlen(msg) > 0);
  assert_null(strstr(msg, "HTTP 4"));
  cJSON_Delete(cm);
}

/* "YYYY-MM-DDTHH:MM:SS.ffffffZ" -> seconds since midnight, or -1. */
static double day_seconds(const char *t)
{
  int y, mo, dd, h, m;
  double sec;

  if (sscanf(t, "%d-%d-%dT%d:%d:%lf", &y, &mo, &dd, &h, &m, &sec) != 6)
    return -1;
  return h * 3600.0 + m * 60.0 + sec;
}

static void test_429_retry_after(void **state)
{
  struct kube_response r;
  cJSON *log, *items;
  double t_first, t_last;

  (void)state;
  clear_faults();
  clear_log();
  cJSON_Delete(kdouble_control(kc, "faults",
                               "{\"status\":429,\"retryAfter\":1,"
                               "\"count\":2,\"path\":\"/configmaps$\"}"));
  assert_int_equal(kube_request(kc, "GET",
                                "/api/v1/namespaces/default/configmaps",
                                NULL, NULL, 0, &r), KUBE_OK);
  kube_response_free(&r);
  assert_int_equal(kdouble_count_requests(kc, "GET", "/configmaps", 429), 2);
  assert_int_equal(kdouble_count_requests(kc, "GET", "/configmaps", 200), 1);
  /* Retry-After: 1 was honoured twice: the double's own clock shows the
   * retries at least 2 s apart (a lower bound, never flaky). */
  log = kdouble_control(kc, "requests", NULL);
  items = cJSON_GetObjectItem(log, "items");
  assert_true(cJSON_GetArraySize(items) >= 3);
  {
    cJSON *a = NULL, *b = NULL, *it;

    cJSON_ArrayForEach(it, items) {
      cJSON *p = cJSON_GetObjectItem(it, "path");

      if (cJSON_IsString(p) && strstr(p->valuestring, "/configmaps")) {
        if (a == NULL)
          a = it;
        b = it;
      }
    }
    assert_non_null(a);
    t_first = day_seconds(cJSON_GetObjectItem(a, "time")->valuestring);
    t_last = day_seconds(cJSON_GetObjectItem(b, "time")->valuestring);
    assert_true(t_first >= 0 && t_last >= 0);
    if (t_last < t_first)
      t_last += 86400; /* crossed midnight */
    assert_true(t_last - t_first >= 1.9);
  }
  cJSON_Delete(log);

  /* Throttled for good: bounded tries, then KUBE_THROTTLED. */
  clear_faults();
  clear_log();
  cJSON_Delete(kdouble_control(kc, "faults",
                               "{\"status\":429,\"retryAfter\":0,"
                               "\"path\":\"/configmaps$\"}"));
  assert_int_equal(kube_request(kc, "GET",
                                "/api/v1/namespaces/default/configmaps",
                                NULL, NULL, 0, &r), KUBE_THROTTLED);
  kube_response_free(&r);
  assert_int_equal(kdouble_count_requests(kc, "GET", "/configmaps", 429),
                   CCM_KUBE_MAX_TRIES);
  clear_faults();
}

static void test_5xx_retried(void **state)
{
  struct kube_response r;

  (void)state;
  clear_faults();
  clear_log();
  cJSON_Delete(kdouble_control(kc, "faults",
                               "{\"status\":503,\"count\":2,"
                               "\"path\":\"/configmaps$\"}"));
  assert_int_equal(kube_request(kc, "GET",
                                "/api/v1/namespaces/default/configmaps",
                                NULL, NULL, 0, &r), KUBE_OK);
  kube_response_free(&r);
  assert_int_equal(kdouble_count_requests(kc, "GET", "/configmaps", 503), 2);

  clear_faults();
  clear_log();
  cJSON_Delete(kdouble_control(kc, "faults",
                               "{\"status\":500,\"path\":\"/configmaps$\"}"));
  assert_int_equal(kube_request(kc, "GET",
                                "/api/v1/namespaces/default/configmaps",
                                NULL, NULL, 0, &r), KUBE_UNAVAILABLE);
  assert_int_equal(r.http_status, 500);
  kube_response_free(&r);
  assert_int_equal(kdouble_count_requests(kc, "GET", "/configmaps", 500),
                   CCM_KUBE_MAX_TRIES);
  clear_faults();
}

static void test_connection_refused(void **state)
{
  struct kube_client_opts o = {.master = "http://127.0.0.1:1",
                               .backoff_base_ms = 10,
                               .backoff_cap_ms = 20};
  struct kube_client *c = NULL;
  struct kube_response r;
  char err[256];

  (void)state;
  assert_int_equal(kube_client_new(&o, &c, err, sizeof err), 0);
  assert_int_equal(kube_request(c, "GET", "/api/v1/nodes", NULL, NULL, 0,
                                &r), KUBE_UNAVAILABLE);
  assert_int_equal(r.http_status, 0);
  assert_true(strlen(r.message) > 0);
  kube_response_free(&r);
  kube_client_free(c);
}

/* Token file rotation: a 401 makes the client re-read the file. */
static void test_401_rereads_token(void **state)
{
  struct kdouble td;
  struct kube_client *c = NULL, *ctl;
  struct kube_client_opts o = {.backoff_base_ms = 10, .backoff_cap_ms = 20};
  struct kube_response r;
  char kcpath[400], err[256];
  FILE *f;

  (void)state;
  assert_int_equal(kdouble_start(&td, false, true), 0);
  ctl = kdouble_client(&td); /* control calls need no token */
  assert_non_null(ctl);
  snprintf(kcpath, sizeof kcpath, "%s/kc-tokenfile", td.dir);
  f = fopen(kcpath, "w");
  assert_non_null(f);
  fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: d\n"
          "clusters:\n- name: d\n  cluster: {server: 'http://127.0.0.1:%d'}\n"
          "contexts:\n- name: d\n  context: {cluster: d, user: u}\n"
          "users:\n- name: u\n  user: {tokenFile: '%s'}\n", td.port,
          td.token_file);
  fclose(f);
  o.kubeconfig = kcpath;
  assert_int_equal(kube_client_new(&o, &c, err, sizeof err), 0);

  log_set_sink(cap_sink, NULL);
  log_set_level(CCM_LOG_DEBUG);
  cap_lines = 0;
  cap_canary = false;

  assert_int_equal(kube_request(c, "GET", "/api/v1/nodes", NULL, NULL, 0, &r),
                   KUBE_OK);
  kube_response_free(&r);
  /* Rotate to a canary token; the file changes, the client's copy is old. */
  cJSON_Delete(kdouble_control(ctl, "rotate-token",
                               "{\"token\":\"" CANARY "\"}"));
  clear_log_of(ctl);
  assert_int_equal(kube_request(c, "GET", "/api/v1/nodes", NULL, NULL, 0, &r),
                   KUBE_OK);
  kube_response_free(&r);
  assert_int_equal(kdouble_count_requests(ctl, "GET", "/api/v1/nodes", 401),
                   1);
  assert_int_equal(kdouble_count_requests(ctl, "GET", "/api/v1/nodes", 200),
                   1);
  /* A wrong token that the file does not fix: one re-read, then 401. */
  cJSON_Delete(kdouble_control(ctl, "rotate-token", "{}"));
  f = fopen(td.token_file, "w");
  assert_non_null(f);
  fputs("CANARY-wrong-token-0000\n", f);
  fclose(f);
  assert_int_equal(kube_request(c, "GET", "/api/v1/nodes", NULL, NULL, 0, &r),
                   KUBE_UNAUTHORIZED);
  kube_response_free(&r);

  log_set_sink(NULL, NULL);
  log_set_level(CCM_LOG_INFO);
  assert_true(cap_lines > 0);
  assert_false(cap_canary);
  kube_client_free(c);
  kube_client_free(ctl);
  kdouble_stop(&td);
}

static void test_https(void **state)
{
  struct kdouble td;
  struct kube_client *c = NULL;
  struct kube_client_opts o = {.backoff_base_ms = 10, .backoff_cap_ms = 20,
                               .max_tries = 2};
  struct kube_response r;
  char kcpath[400], err[256];
  FILE *f;
  int st;

  (void)state;
  assert_int_equal(kdouble_start(&td, true, false), 0);
  assert_true(td.ca[0] != '\0');
  /* The double's kubeconfig: certificate-authority-data (a blob). */
  c = kdouble_client(&td);
  assert_non_null(c);
  assert_int_equal(strncmp(kube_client_server(c), "https://", 8), 0);
  assert_int_equal(kube_request(c, "GET", "/api/v1/nodes", NULL, NULL, 0, &r),
                   KUBE_OK);
  kube_response_free(&r);
  kube_client_free(c);

  /* The CA as a file. */
  snprintf(kcpath, sizeof kcpath, "%s/kc-cafile", td.dir);
  f = fopen(kcpath, "w");
  assert_non_null(f);
  fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: d\n"
          "clusters:\n- name: d\n  cluster: {server: 'https://127.0.0.1:%d',"
          " certificate-authority: '%s'}\n"
          "contexts:\n- name: d\n  context: {cluster: d}\n", td.port, td.ca);
  fclose(f);
  o.kubeconfig = kcpath;
  assert_int_equal(kube_client_new(&o, &c, err, sizeof err), 0);
  assert_int_equal(kube_request(c, "GET", "/api/v1/nodes", NULL, NULL, 0, &r),
                   KUBE_OK);
  kube_response_free(&r);
  kube_client_free(c);

  /* A wrong CA (the system bundle does not hold the double's CA). */
  f = fopen(kcpath, "w");
  assert_non_null(f);
  fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: d\n"
          "clusters:\n- name: d\n  cluster: {server: 'https://127.0.0.1:%d',"
          " certificate-authority: /etc/ssl/certs/ca-certificates.crt}\n"
          "contexts:\n- name: d\n  context: {cluster: d}\n", td.port);
  fclose(f);
  assert_int_equal(kube_client_new(&o, &c, err, sizeof err), 0);
  st = kube_request(c, "GET", "/api/v1/nodes", NULL, NULL, 0, &r);
  assert_int_not_equal(st, KUBE_OK);
  assert_int_equal(r.http_status, 0);
  assert_true(strlen(r.message) > 0);
  kube_response_free(&r);
  kube_client_free(c);

  /* insecure-skip-tls-verify accepts it. */
  f = fopen(kcpath, "w");
  assert_non_null(f);
  fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: d\n"
          "clusters:\n- name: d\n  cluster: {server: 'https://127.0.0.1:%d',"
          " insecure-skip-tls-verify: true}\n"
          "contexts:\n- name: d\n  context: {cluster: d}\n", td.port);
  fclose(f);
  assert_int_equal(kube_client_new(&o, &c, err, sizeof err), 0);
  assert_int_equal(kube_request(c, "GET", "/api/v1/nodes", NULL, NULL, 0, &r),
                   KUBE_OK);
  kube_response_free(&r);
  kube_client_free(c);
  kdouble_stop(&td);
}

/* ---- watch ---- */
struct watch_state {
  atomic_bool stop;
  const char *want; /* the ConfigMap whose ADDED ends the watch */
  int lines;
  bool saw_added;
  int st;
  struct kube_response r;
};

static int on_line(const char *line, size_t len, void *ud)
{
  struct watch_state *w = ud;
  char quoted[64];

  (void)len;
  w->lines++;
  snprintf(quoted, sizeof quoted, "\"%s\"", w->want);
  if (strstr(line, "\"ADDED\"") != NULL && strstr(line, quoted) != NULL)
    w->saw_added = true;
  return w->saw_added ? 1 : 0;
}

static void *watch_thread(void *arg)
{
  struct watch_state *w = arg;

  w->st = kube_watch(kc,
                     "/api/v1/namespaces/default/configmaps?watch=1"
                     "&timeoutSeconds=60", on_line, w, &w->stop, &w->r);
  return NULL;
}

/* Watch ConfigMaps on a new thread running fn, create name, and return
 * once the watch has seen it added and ended. */
static void watch_until_added(struct watch_state *w, void *(*fn)(void *),
                              const char *name)
{
  char body[160], msg[256];
  pthread_t th;
  cJSON *cm;
  int i;

  memset(w, 0, sizeof *w);
  atomic_init(&w->stop, false);
  w->want = name;
  assert_int_equal(pthread_create(&th, NULL, fn, w), 0);
  usleep(300000);
  snprintf(body, sizeof body,
           "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
           "\"metadata\":{\"name\":\"%s\"}}", name);
  cm = cJSON_Parse(body);
  assert_int_equal(kube_create(kc, "/api/v1/namespaces/default/configmaps",
                               cm, NULL, msg, sizeof msg), KUBE_OK);
  cJSON_Delete(cm);
  /* The callback ends the watch when it sees name; the stop flag is the
   * backstop so the test cannot hang. */
  for (i = 0; i < 200 && !w->saw_added; i++)
    usleep(50000);
  atomic_store(&w->stop, true);
  pthread_join(th, NULL);
  assert_true(w->saw_added);
}

static void test_watch(void **state)
{
  struct watch_state w;
  pthread_t th;

  (void)state;
  watch_until_added(&w, watch_thread, "w1");
  assert_int_equal(w.st, KUBE_OK);
  kube_response_free(&w.r);

  /* Stop flag on an idle watch. */
  memset(&w, 0, sizeof w);
  atomic_init(&w.stop, false);
  w.want = "never-created";
  assert_int_equal(pthread_create(&th, NULL, watch_thread, &w), 0);
  usleep(500000);
  atomic_store(&w.stop, true);
  pthread_join(th, NULL);
  assert_int_equal(w.st, KUBE_OK);
  kube_response_free(&w.r);
}

/* ---- CPU accounting ---- */
#define BURN_NS 30000000 /* 30 ms of the watch thread's CPU per line */

static int on_line_burning(const char *line, size_t len, void *ud)
{
  uint64_t until = thread_cpu_ns() + BURN_NS;

  while (thread_cpu_ns() < until)
    ;
  return on_line(line, len, ud);
}

static void *burning_watch_thread(void *arg)
{
  struct watch_state *w = arg;

  w->st = kube_watch(kc,
                     "/api/v1/namespaces/default/configmaps?watch=1"
                     "&timeoutSeconds=60", on_line_burning, w, &w->stop,
                     &w->r);
  return NULL;
}

/* Requests and watch reads count into kube_io_cpu; a watch callback's own
 * work does not. */
static void test_io_cpu_accounted(void **state)
{
  struct kube_io_cpu io0 = kube_io_cpu(), io1;
  uint64_t mine0 = kube_thread_request_cpu_ns();
  struct kube_response r;
  struct watch_state w;
  char *text = NULL;
  size_t text_len = 0;
  FILE *f;
  int i;

  (void)state;
  for (i = 0; i < 20; i++) {
    assert_int_equal(kube_request(kc, "GET", "/api/v1/namespaces/default",
                                  NULL, NULL, 0, &r), KUBE_OK);
    kube_response_free(&r);
  }
  io1 = kube_io_cpu();
  assert_true(kube_thread_request_cpu_ns() > mine0);
  assert_true(io1.requests_ns - io0.requests_ns >=
              kube_thread_request_cpu_ns() - mine0);

  watch_until_added(&w, burning_watch_thread, "w2");
  kube_response_free(&w.r);
  io0 = io1;
  io1 = kube_io_cpu();
  assert_true(io1.watch_reads_ns > io0.watch_reads_ns);
  /* At least one line burned BURN_NS inside the callback. */
  assert_true(io1.watch_reads_ns - io0.watch_reads_ns <
              (uint64_t)BURN_NS * (uint64_t)w.lines);

  f = open_memstream(&text, &text_len);
  assert_non_null(f);
  kube_client_metrics_write(f);
  fclose(f);
  assert_non_null(strstr(text, "ccm_kube_client_cpu_seconds_total{part="
                               "\"requests\"} "));
  assert_non_null(strstr(text, "ccm_kube_client_cpu_seconds_total{part="
                               "\"watch_reads\"} "));
  free(text);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_and_mapping),
      cmocka_unit_test(test_429_retry_after),
      cmocka_unit_test(test_5xx_retried),
      cmocka_unit_test(test_connection_refused),
      cmocka_unit_test(test_401_rereads_token),
      cmocka_unit_test(test_https),
      cmocka_unit_test(test_watch),
      cmocka_unit_test(test_io_cpu_accounted),
  };

  if (!kdouble_available()) {
    fprintf(stderr, "FAIL: tests/doubles/kube_apiserver.py not found (it ships with the tree)\n");
    return 1;
  }
  return cmocka_run_group_tests(tests, setup, teardown);
}
