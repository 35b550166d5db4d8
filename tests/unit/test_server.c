/*
 * test_server.c: unit tests of host/server/server.c over real HTTP on
 * 127.0.0.1 with libcurl: the three endpoints, readiness changes, a large
 * /metrics body, 404, 405, HEAD, port 0 and listen errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "server/metrics.h"
#include "server/server.h"

struct reply {
  long status;
  char *body;
  size_t len;
  char ctype[128];
  char allow[64];
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
  struct reply *r = ud;
  char *nb = realloc(r->body, r->len + size * n + 1);

  if (!nb)
    return 0;
  memcpy(nb + r->len, p, size * n);
  r->len += size * n;
  nb[r->len] = '\0';
  r->body = nb;
  return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
  struct reply *r = ud;
  size_t len = size * n;

  if (len > 6 && strncmp(p, "Allow:", 6) == 0)
    snprintf(r->allow, sizeof r->allow, "%.*s", (int)(len - 7), p + 7);
  return len;
}

/* One request; method NULL: GET. */
static void request(unsigned port, const char *method, const char *path,
                    struct reply *r)
{
  CURL *c = curl_easy_init();
  char url[256];
  char *ct = NULL;

  assert_non_null(c);
  memset(r, 0, sizeof *r);
  snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  if (method && strcmp(method, "HEAD") == 0)
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  else if (method && strcmp(method, "POST") == 0)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
  else if (method)
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
  if (ct)
    snprintf(r->ctype, sizeof r->ctype, "%s", ct);
  r->allow[strcspn(r->allow, "\r\n")] = '\0';
  curl_easy_cleanup(c);
}

static void reply_free(struct reply *r)
{
  free(r->body);
  r->body = NULL;
}

static const char *body(const struct reply *r)
{
  return r->body ? r->body : "";
}

/* ---- readiness hook ---- */

struct readiness {
  atomic_bool ready;
  atomic_int asked;
};

static bool ready_hook(void *ud, char *why, size_t cap)
{
  struct readiness *rd = ud;

  atomic_fetch_add(&rd->asked, 1);
  if (atomic_load(&rd->ready))
    return true;
  snprintf(why, cap, "informers not synced: nodes");
  return false;
}

static void small_writer(FILE *out, void *ud)
{
  (void)ud;
  fputs("# TYPE ccm_test_up gauge\nccm_test_up 1\n", out);
}

/* About 300 KB: more than the server's first buffer. */
static void big_writer(FILE *out, void *ud)
{
  int i;

  (void)ud;
  for (i = 0; i < 10000; i++)
    fprintf(out, "ccm_test_series{i=\"%05d\"} %d\n", i, i);
}

static void test_endpoints(void **state)
{
  struct readiness rd;
  struct server_hooks h = {ready_hook, &rd};
  struct server *s = NULL;
  struct reply r;
  char err[256] = "";
  unsigned port;

  (void)state;
  atomic_store(&rd.ready, false);
  atomic_store(&rd.asked, 0);
  assert_int_equal(server_start("127.0.0.1:0", &h, &s, err, sizeof err), 0);
  port = server_port(s);
  assert_true(port > 0);

  request(port, NULL, "/healthz", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(body(&r), "ok");
  assert_non_null(strstr(r.ctype, "text/plain"));
  reply_free(&r);

  request(port, NULL, "/readyz", &r);
  assert_int_equal(r.status, 503);
  assert_string_equal(body(&r), "informers not synced: nodes\n");
  reply_free(&r);
  atomic_store(&rd.ready, true);
  request(port, NULL, "/readyz?verbose", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(body(&r), "ok");
  reply_free(&r);
  assert_int_equal(atomic_load(&rd.asked), 2);

  metrics_reset();
  assert_int_equal(metrics_register(small_writer, NULL), 0);
  request(port, NULL, "/metrics", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
  assert_string_equal(body(&r), "# TYPE ccm_test_up gauge\nccm_test_up 1\n");
  reply_free(&r);

  assert_int_equal(metrics_register(big_writer, NULL), 0);
  request(port, NULL, "/metrics", &r);
  assert_int_equal(r.status, 200);
  assert_true(r.len > 64 * 1024);
  assert_non_null(strstr(body(&r), "ccm_test_up 1\nccm_test_series{i=\"00000\"} 0\n"));
  assert_non_null(strstr(body(&r), "ccm_test_series{i=\"09999\"} 9999\n"));
  assert_int_equal(body(&r)[r.len - 1], '\n');
  reply_free(&r);
  metrics_reset();
  request(port, NULL, "/metrics", &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.len, 0);
  reply_free(&r);

  request(port, NULL, "/nope", &r);
  assert_int_equal(r.status, 404);
  reply_free(&r);
  request(port, NULL, "/healthz/x", &r);
  assert_int_equal(r.status, 404);
  reply_free(&r);

  request(port, "POST", "/healthz", &r);
  assert_int_equal(r.status, 405);
  assert_string_equal(r.allow, "GET, HEAD");
  reply_free(&r);
  request(port, "DELETE", "/metrics", &r);
  assert_int_equal(r.status, 405);
  reply_free(&r);

  request(port, "HEAD", "/healthz", &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.len, 0);
  reply_free(&r);

  server_stop(s);
  server_stop(NULL);
}

static void test_no_hooks_is_ready(void **state)
{
  struct server *s = NULL;
  struct reply r;
  char err[256];

  (void)state;
  assert_int_equal(server_start("127.0.0.1:0", NULL, &s, err, sizeof err), 0);
  request(server_port(s), NULL, "/readyz", &r);
  assert_int_equal(r.status, 200);
  reply_free(&r);
  server_stop(s);
}

static void test_listen_errors(void **state)
{
  struct server *a = NULL, *b = NULL;
  char err[256], listen[64];

  (void)state;
  err[0] = '\0';
  assert_int_equal(server_start("nonsense", NULL, &a, err, sizeof err), -1);
  assert_null(a);
  assert_non_null(strstr(err, "nonsense"));
  assert_int_equal(server_start("127.0.0.1:99999", NULL, &a, err, sizeof err),
                   -1);
  assert_int_equal(server_start("300.1.1.1:80", NULL, &a, err, sizeof err),
                   -1);

  /* A port in use is refused, not shared. */
  assert_int_equal(server_start("127.0.0.1:0", NULL, &a, err, sizeof err), 0);
  snprintf(listen, sizeof listen, "127.0.0.1:%u", server_port(a));
  assert_int_equal(server_start(listen, NULL, &b, err, sizeof err), -1);
  assert_null(b);
  assert_non_null(strstr(err, listen));
  assert_non_null(strstr(err, "in use"));
  server_stop(a);
}

static void test_ipv6_loopback(void **state)
{
  struct server *s = NULL;
  char err[256];

  (void)state;
  if (server_start("[::1]:0", NULL, &s, err, sizeof err) != 0) {
    fprintf(stderr, "no IPv6 loopback here (%s): skipped\n", err);
    skip();
  }
  assert_true(server_port(s) > 0);
  server_stop(s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_endpoints),
      cmocka_unit_test(test_no_hooks_is_ready),
      cmocka_unit_test(test_listen_errors),
      cmocka_unit_test(test_ipv6_loopback),
  };
  int rc;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
