/*
 * test_http.c: unit tests of host/modules/http.c against a tiny HTTP/1.1
 * server run in this process on 127.0.0.1 (plain sockets, one thread per
 * connection): echo, headers, status codes, timeouts, connection reuse,
 * rate limit, fault injection, metrics and log redaction. Loopback only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "modules/host_api.h"
#include "modules/http.h"
#include "util/log.h"
#include "util/mem.h"

/* ---- the test server ---------------------------------------------------- */

#define SRV_MAX_CONNS 256
#define SRV_MAX_REQ (1024 * 1024)

struct server {
  int lfd;
  uint16_t port;
  pthread_t thread;
  atomic_bool stop;
  /* Connections that carried at least one request. Counting accepts alone
   * races with a previous test's late, request-less connection (a TLS
   * probe the accept thread picks up after the next test began). */
  atomic_int answering;
  pthread_mutex_t lock;
  int fds[SRV_MAX_CONNS];
  pthread_t threads[SRV_MAX_CONNS];
  size_t n;
};

static struct server srv = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void srv_sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

  nanosleep(&ts, NULL);
}

static bool srv_send_all(int fd, const char *buf, size_t len)
{
  while (len > 0) {
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

    if (n <= 0)
      return false;
    buf += n;
    len -= (size_t)n;
  }
  return true;
}

static bool srv_respond(int fd, int status, const char *extra_headers,
                        const char *body, size_t body_len)
{
  char head[1024];
  int n;

  n = snprintf(head, sizeof head,
               "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n"
               "Content-Type: text/plain\r\nX-Custom-Header: abc\r\n%s\r\n",
               status, status == 200 ? "OK" : "Status", body_len,
               extra_headers ? extra_headers : "");
  return srv_send_all(fd, head, (size_t)n) &&
         srv_send_all(fd, body, body_len);
}

/* Value of a request header (case-insensitive), copied into out. */
static bool srv_header(const char *head, const char *name, char *out,
                       size_t cap)
{
  const char *p = head;
  size_t nlen = strlen(name);

  for (;;) {
    p = strstr(p, "\r\n");
    if (p == NULL)
      break;
    p += 2;
    if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
      const char *v = p + nlen + 1, *e;

      while (*v == ' ')
        v++;
      e = strstr(v, "\r\n");
      snprintf(out, cap, "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
      return true;
    }
  }
  return false;
}

static void srv_handle(int fd, const char *head, const char *body,
                       size_t body_len)
{
  char method[16] = "", path[512] = "", value[256], extra[320];
  char *resp;
  size_t rlen;
  int i;

  sscanf(head, "%15s %511s", method, path);
  if (strncmp(path, "/status/503", 11) == 0) {
    srv_respond(fd, 503, NULL, "unavailable", 11);
    return;
  }
  if (strncmp(path, "/slow", 5) == 0) {
    for (i = 0; i < 60 && !atomic_load(&srv.stop); i++)
      srv_sleep_ms(50);
    srv_respond(fd, 200, NULL, "slow", 4);
    return;
  }
  /* /echo and anything else: "METHOD PATH\n" + body. */
  extra[0] = '\0';
  if (srv_header(head, "X-Test", value, sizeof value))
    snprintf(extra, sizeof extra, "X-Echo: %s\r\n", value);
  rlen = strlen(method) + strlen(path) + 2 + body_len;
  resp = malloc(rlen + 1);
  if (resp == NULL)
    return;
  snprintf(resp, rlen + 1, "%s %s\n", method, path);
  memcpy(resp + strlen(method) + strlen(path) + 2, body, body_len);
  srv_respond(fd, 200, extra, resp, rlen);
  free(resp);
}

/* Read into buf until want bytes are there; false on EOF or stop. */
static bool srv_fill(int fd, char *buf, size_t *have, size_t want)
{
  while (*have < want) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t n;

    if (atomic_load(&srv.stop))
      return false;
    if (poll(&p, 1, 100) <= 0)
      continue;
    n = recv(fd, buf + *have, want - *have, 0);
    if (n <= 0)
      return false;
    *have += (size_t)n;
    buf[*have] = '\0';
    if (strstr(buf, "\r\n\r\n") != NULL && want == SRV_MAX_REQ)
      return true;
  }
  return true;
}

static void *srv_conn_main(void *arg)
{
  int fd = (int)(intptr_t)arg;
  char *buf = malloc(SRV_MAX_REQ + 1);
  size_t have = 0;
  bool answered = false;

  if (buf == NULL)
    return NULL;
  buf[0] = '\0';
  for (;;) {
    char *end, cl[32];
    size_t head_len, body_len = 0;

    if (strstr(buf, "\r\n\r\n") == NULL &&
        !srv_fill(fd, buf, &have, SRV_MAX_REQ))
      break;
    end = strstr(buf, "\r\n\r\n");
    if (end == NULL)
      break;
    head_len = (size_t)(end - buf) + 4;
    if (srv_header(buf, "Content-Length", cl, sizeof cl))
      body_len = strtoul(cl, NULL, 10);
    if (head_len + body_len > SRV_MAX_REQ)
      break;
    if (!srv_fill(fd, buf, &have, head_len + body_len))
      break;
    if (strncmp(buf + strcspn(buf, " ") + 1, "/close", 6) == 0)
      break; /* drop the connection without an answer */
    end[2] = '\0'; /* head ends after the last header line */
    if (!answered) {
      answered = true;
      atomic_fetch_add(&srv.answering, 1);
    }
    srv_handle(fd, buf, buf + head_len, body_len);
    memmove(buf, buf + head_len + body_len, have - head_len - body_len);
    have -= head_len + body_len;
    buf[have] = '\0';
  }
  free(buf);
  shutdown(fd, SHUT_RDWR);
  return NULL;
}

static void *srv_accept_main(void *arg)
{
  (void)arg;
  while (!atomic_load(&srv.stop)) {
    struct pollfd p = {.fd = srv.lfd, .events = POLLIN};
    int fd;

    if (poll(&p, 1, 100) <= 0)
      continue;
    fd = accept(srv.lfd, NULL, NULL);
    if (fd < 0)
      continue;
    pthread_mutex_lock(&srv.lock);
    if (srv.n < SRV_MAX_CONNS &&
        pthread_create(&srv.threads[srv.n], NULL, srv_conn_main,
                       (void *)(intptr_t)fd) == 0) {
      srv.fds[srv.n++] = fd;
    } else {
      close(fd);
    }
    pthread_mutex_unlock(&srv.lock);
  }
  return NULL;
}

static int srv_start(void)
{
  struct sockaddr_in a = {0};
  socklen_t alen = sizeof a;
  int one = 1;

  srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (srv.lfd < 0)
    return -1;
  setsockopt(srv.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(srv.lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(srv.lfd, 64) != 0 ||
      getsockname(srv.lfd, (struct sockaddr *)&a, &alen) != 0)
    return -1;
  srv.port = ntohs(a.sin_port);
  return pthread_create(&srv.thread, NULL, srv_accept_main, NULL);
}

static void srv_stop(void)
{
  size_t i;

  atomic_store(&srv.stop, true);
  pthread_join(srv.thread, NULL);
  close(srv.lfd);
  for (i = 0; i < srv.n; i++) {
    shutdown(srv.fds[i], SHUT_RDWR);
    pthread_join(srv.threads[i], NULL);
    close(srv.fds[i]);
  }
}

/* A port with nothing listening: bind, read the port, close. */
static uint16_t closed_port(void)
{
  struct sockaddr_in a = {0};
  socklen_t alen = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
    return 1;
  close(fd);
  return ntohs(a.sin_port);
}

/* ---- log capture ---------------------------------------------------------- */

#define CAPTURE_MAX 512

static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t n_lines;
static char lines[CAPTURE_MAX][2048];

static void capture_sink(int level, const char *line, void *ud)
{
  (void)level;
  (void)ud;
  pthread_mutex_lock(&cap_lock);
  if (n_lines < CAPTURE_MAX)
    snprintf(lines[n_lines++], sizeof lines[0], "%s", line);
  pthread_mutex_unlock(&cap_lock);
}

static bool captured(const char *needle)
{
  size_t i;

  for (i = 0; i < n_lines; i++) {
    if (strstr(lines[i], needle) != NULL)
      return true;
  }
  return false;
}

/* ---- helpers ---------------------------------------------------------------- */

static const struct ccm_host_api *api;

static struct ccm_host *new_host(const char *name,
                                 const struct http_settings *s)
{
  char err[256];
  struct ccm_host *h = host_new(name, NULL, s, err, sizeof err);

  assert_non_null(h);
  return h;
}

static void url(char *out, size_t cap, const char *path)
{
  snprintf(out, cap, "http://127.0.0.1:%u%s", (unsigned)srv.port, path);
}

static int do_req(struct ccm_host *h, struct ccm_call *call, const char *method,
                  const char *path, const char *const *headers,
                  const char *body, size_t body_len,
                  struct ccm_http_response **out)
{
  char u[1024];
  struct ccm_http_request req = {.struct_size = sizeof req,
                                 .method = method,
                                 .url = u,
                                 .headers = headers,
                                 .body = body,
                                 .body_len = body_len};

  url(u, sizeof u, path);
  return api->http_do(h, call, &req, out);
}

static int get(struct ccm_host *h, const char *path, long *status)
{
  struct ccm_http_response *r = NULL;
  struct ccm_call call;
  int rc;

  call_init(&call, 10000);
  rc = do_req(h, &call, "GET", path, NULL, NULL, 0, &r);
  if (status != NULL)
    *status = rc == CCM_OK ? api->http_status(r) : 0;
  api->http_release(r);
  return rc;
}

static char *metrics_text(void)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);

  assert_non_null(f);
  http_metrics_write(f);
  fclose(f);
  return buf;
}

static int setup(void **state)
{
  (void)state;
  n_lines = 0;
  log_set_sink(capture_sink, NULL);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  log_set_sink(NULL, NULL);
  log_set_level(CCM_LOG_INFO);
  log_secrets_clear();
  return 0;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_echo_and_headers(void **state)
{
  static const char *const hdrs[] = {"X-Test: hi there",
                                     "Content-Type: text/plain", NULL};
  struct ccm_host *h = new_host("t-echo", NULL);
  struct ccm_http_response *r = NULL;
  struct ccm_call call;
  const char *body;
  char *big;
  size_t len;

  (void)state;
  call_init(&call, 10000);
  assert_int_equal(do_req(h, &call, "GET", "/echo", hdrs, NULL, 0, &r), CCM_OK);
  assert_int_equal(api->http_status(r), 200);
  body = api->http_body(r, &len);
  assert_string_equal(body, "GET /echo\n");
  assert_int_equal(len, 10);
  assert_string_equal(api->http_header(r, "x-echo"), "hi there");
  assert_string_equal(api->http_header(r, "X-CUSTOM-HEADER"), "abc");
  assert_string_equal(api->http_header(r, "content-length"), "10");
  assert_null(api->http_header(r, "X-Missing"));
  api->http_release(r);

  assert_int_equal(do_req(h, &call, "POST", "/echo", hdrs, "hello", 5, &r),
                   CCM_OK);
  assert_string_equal(api->http_body(r, NULL), "POST /echo\nhello");
  api->http_release(r);

  assert_int_equal(do_req(h, &call, "DELETE", "/echo/x", NULL, NULL, 0, &r),
                   CCM_OK);
  assert_string_equal(api->http_body(r, NULL), "DELETE /echo/x\n");
  api->http_release(r);

  /* A large binary body both ways. */
  big = malloc(200000);
  assert_non_null(big);
  memset(big, 'b', 200000);
  big[100] = '\0';
  assert_int_equal(do_req(h, &call, "PUT", "/echo", hdrs, big, 200000, &r),
                   CCM_OK);
  body = api->http_body(r, &len);
  assert_int_equal(len, strlen("PUT /echo\n") + 200000);
  assert_memory_equal(body + strlen("PUT /echo\n"), big, 200000);
  api->http_release(r);
  free(big);
  host_free(h);
}

static void test_status_503(void **state)
{
  struct ccm_host *h = new_host("t-503", NULL);
  struct ccm_http_response *r = NULL;
  struct ccm_call call;

  (void)state;
  call_init(&call, 10000);
  assert_int_equal(do_req(h, &call, "GET", "/status/503", NULL, NULL, 0, &r),
                   CCM_OK);
  assert_int_equal(api->http_status(r), 503);
  assert_string_equal(api->http_body(r, NULL), "unavailable");
  api->http_release(r);
  host_free(h);
}

static void test_timeouts(void **state)
{
  struct ccm_host *h = new_host("t-timeout", NULL);
  struct ccm_http_response *r = NULL;
  struct ccm_http_request req = {.struct_size = sizeof req, .method = "GET"};
  struct ccm_call call;
  char u[256];

  (void)state;
  url(u, sizeof u, "/slow");
  req.url = u;
  req.timeout_ms = 200;
  call_init(&call, 10000);
  assert_int_equal(api->http_do(h, &call, &req, &r), CCM_ERR_RETRY);
  assert_null(r);
  assert_non_null(strstr(call.error, u));

  /* The call deadline bounds a request with no timeout of its own. */
  req.timeout_ms = 0;
  call_init(&call, 200);
  assert_int_equal(api->http_do(h, &call, &req, &r), CCM_ERR_RETRY);
  assert_non_null(strstr(call.error, "/slow"));

  /* A deadline already past: no request at all. */
  call_init(&call, 1);
  call.deadline_ms = call_now_ms() - 1;
  assert_int_equal(api->http_do(h, &call, &req, &r), CCM_ERR_RETRY);
  host_free(h);
}

static void test_transport_errors(void **state)
{
  struct ccm_host *h = new_host("t-errors", NULL);
  struct ccm_http_response *r = NULL;
  struct ccm_http_request req = {.struct_size = sizeof req, .method = "GET"};
  struct ccm_call call;
  char u[256];

  (void)state;
  snprintf(u, sizeof u, "http://127.0.0.1:%u/x", (unsigned)closed_port());
  req.url = u;
  call_init(&call, 10000);
  assert_int_equal(api->http_do(h, &call, &req, &r), CCM_ERR_RETRY);
  assert_non_null(strstr(call.error, u));

  url(u, sizeof u, "/close");
  call_init(&call, 10000);
  assert_int_equal(api->http_do(h, &call, &req, &r), CCM_ERR_RETRY);

  req.url = "ftp://127.0.0.1/file";
  assert_int_equal(api->http_do(h, &call, &req, &r), CCM_ERR_INVALID);
  req.url = "http://[::1";
  assert_int_equal(api->http_do(h, &call, &req, &r), CCM_ERR_INVALID);
  req.url = "";
  assert_int_equal(api->http_do(h, &call, &req, &r), CCM_ERR_INVALID);
  url(u, sizeof u, "/echo");
  req.url = u;
  req.method = "get";
  assert_int_equal(api->http_do(h, &call, &req, &r), CCM_ERR_INVALID);
  req.method = "GET";
  {
    static const char *const bad[] = {"X-A: 1\r\nX-Injected: 2", NULL};

    req.headers = bad;
    assert_int_equal(api->http_do(h, &call, &req, &r), CCM_ERR_INVALID);
    req.headers = NULL;
  }
  call_cancel(&call);
  assert_int_equal(api->http_do(h, &call, &req, &r), CCM_ERR_RETRY);
  assert_null(r);
  host_free(h);
}

static void test_tls_settings(void **state)
{
  struct http_settings s = {.ca_file = "/nonexistent/ccm-test-ca.pem"};
  struct ccm_host *h = new_host("t-tls", &s);
  struct ccm_http_response *r = NULL;
  struct ccm_http_request req = {.struct_size = sizeof req, .method = "GET"};
  struct ccm_call call;
  char u[256];

  (void)state;
  /* TLS with a CA file that does not exist cannot succeed: a configuration
   * problem, reported as internal (exponential back-off, no fixed-delay
   * retry), never a crash or a 200. */
  snprintf(u, sizeof u, "https://127.0.0.1:%u/echo", (unsigned)srv.port);
  req.url = u;
  call_init(&call, 5000);
  assert_int_equal(api->http_do(h, &call, &req, &r), CCM_ERR_INTERNAL);
  assert_null(r);
  assert_non_null(strstr(call.error, "https://127.0.0.1"));
  host_free(h);
}

static void test_connection_reuse(void **state)
{
  struct ccm_host *h = new_host("t-reuse", NULL);
  long status;
  int before, i;

  (void)state;
  before = atomic_load(&srv.answering);
  for (i = 0; i < 6; i++) {
    assert_int_equal(get(h, "/echo", &status), CCM_OK);
    assert_int_equal(status, 200);
  }
  assert_int_equal(atomic_load(&srv.answering) - before, 1);
  host_free(h);
}

struct conc_arg {
  struct ccm_host *h;
  int ok;
};

static void *conc_main(void *p)
{
  struct conc_arg *a = p;
  long status;
  int i;

  for (i = 0; i < 10; i++) {
    if (get(a->h, "/echo", &status) == CCM_OK && status == 200)
      a->ok++;
  }
  return NULL;
}

static void test_concurrent_requests(void **state)
{
  struct ccm_host *h = new_host("t-conc", NULL);
  struct conc_arg args[4];
  pthread_t th[4];
  int i, before = atomic_load(&srv.answering);

  (void)state;
  for (i = 0; i < 4; i++) {
    args[i].h = h;
    args[i].ok = 0;
    assert_int_equal(pthread_create(&th[i], NULL, conc_main, &args[i]), 0);
  }
  for (i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(args[i].ok, 10);
  }
  /* Handles are pooled: never more connections than concurrent users. */
  assert_true(atomic_load(&srv.answering) - before <= 4);
  host_free(h);
}

static void test_rate_limit(void **state)
{
  struct http_settings s = {.qps = 0.1, .burst = 1};
  struct ccm_host *h = new_host("t-rate", &s);
  struct ccm_http_response *r = NULL;
  struct ccm_call call;
  char *m;

  (void)state;
  call_init(&call, 1000);
  assert_int_equal(do_req(h, &call, "GET", "/echo", NULL, NULL, 0, &r), CCM_OK);
  api->http_release(r);
  /* The next token is ~10 s away; the call has 1 s. */
  call_init(&call, 1000);
  assert_int_equal(do_req(h, &call, "GET", "/echo", NULL, NULL, 0, &r),
                   CCM_ERR_THROTTLED);
  assert_null(r);
  assert_non_null(strstr(call.error, "rate limit"));
  m = metrics_text();
  assert_non_null(strstr(m, "ccm_provider_http_throttled_total"
                            "{provider=\"t-rate\"} 1"));
  free(m);
  host_free(h);
}

static void test_faults(void **state)
{
  struct ccm_host *h = new_host("t-faults", NULL);
  struct http_fault f = {.url_part = "/echo", .status = 500, .body = "boom",
                         .count = 2};
  struct ccm_http_response *r = NULL;
  struct ccm_call call;
  int before, i;
  char *m;

  (void)state;
  assert_int_equal(http_fault_add(h->http, &f), CCM_OK);
  before = atomic_load(&srv.answering);
  for (i = 0; i < 2; i++) {
    call_init(&call, 10000);
    assert_int_equal(do_req(h, &call, "GET", "/echo", NULL, NULL, 0, &r),
                     CCM_OK);
    assert_int_equal(api->http_status(r), 500);
    assert_string_equal(api->http_body(r, NULL), "boom");
    api->http_release(r);
  }
  assert_int_equal(atomic_load(&srv.answering), before); /* never sent */
  call_init(&call, 10000);
  assert_int_equal(do_req(h, &call, "GET", "/echo", NULL, NULL, 0, &r), CCM_OK);
  assert_int_equal(api->http_status(r), 200);
  api->http_release(r);

  /* A dropped connection, forever, for matching URLs only. */
  f.status = 0;
  f.count = -1;
  f.url_part = "/drop";
  assert_int_equal(http_fault_add(h->http, &f), CCM_OK);
  for (i = 0; i < 3; i++) {
    call_init(&call, 10000);
    assert_int_equal(do_req(h, &call, "GET", "/drop", NULL, NULL, 0, &r),
                     CCM_ERR_RETRY);
    assert_non_null(strstr(call.error, "dropped"));
  }
  call_init(&call, 10000);
  assert_int_equal(do_req(h, &call, "GET", "/echo", NULL, NULL, 0, &r), CCM_OK);
  api->http_release(r);

  /* Latency longer than the call deadline ends as a timeout. */
  http_faults_clear(h->http);
  f.url_part = "/lat";
  f.status = 200;
  f.latency_ms = 60000;
  f.count = 1;
  assert_int_equal(http_fault_add(h->http, &f), CCM_OK);
  call_init(&call, 100);
  assert_int_equal(do_req(h, &call, "GET", "/lat", NULL, NULL, 0, &r),
                   CCM_ERR_RETRY);
  assert_non_null(strstr(call.error, "timed out"));
  /* Short latency, then the synthetic answer. */
  f.latency_ms = 5;
  assert_int_equal(http_fault_add(h->http, &f), CCM_OK);
  call_init(&call, 10000);
  assert_int_equal(do_req(h, &call, "GET", "/lat", NULL, NULL, 0, &r), CCM_OK);
  assert_int_equal(api->http_status(r), 200);
  assert_string_equal(api->http_body(r, NULL), "boom");
  api->http_release(r);

  http_faults_clear(h->http);
  call_init(&call, 10000);
  assert_int_equal(do_req(h, &call, "GET", "/drop", NULL, NULL, 0, &r), CCM_OK);
  api->http_release(r);

  f.count = 0;
  assert_int_equal(http_fault_add(h->http, &f), CCM_ERR_INVALID);
  f.count = 1;
  f.status = 42;
  assert_int_equal(http_fault_add(h->http, &f), CCM_ERR_INVALID);

  /* Injected answers are counted like real ones. */
  m = metrics_text();
  assert_non_null(strstr(m, "{provider=\"t-faults\",method=\"GET\","
                            "code=\"5xx\"} 2\n"));
  assert_non_null(strstr(m, "{provider=\"t-faults\",method=\"GET\","
                            "code=\"error\"} 4\n"));
  free(m);
  host_free(h);
}

static void test_metrics_survive_swap(void **state)
{
  struct ccm_host *h = new_host("t-metrics", NULL);
  struct ccm_http_response *r = NULL;
  struct ccm_call call;
  long status;
  char *m;
  int i;

  (void)state;
  for (i = 0; i < 3; i++)
    assert_int_equal(get(h, "/echo", &status), CCM_OK);
  assert_int_equal(get(h, "/status/503", &status), CCM_OK);
  call_init(&call, 10000);
  assert_int_equal(do_req(h, &call, "POST", "/echo", NULL, "x", 1, &r), CCM_OK);
  api->http_release(r);
  host_free(h);

  m = metrics_text();
  assert_non_null(strstr(m, "# TYPE ccm_provider_http_requests_total counter"));
  assert_non_null(strstr(m, "ccm_provider_http_requests_total{provider=\""
                            "t-metrics\",method=\"GET\",code=\"2xx\"} 3\n"));
  assert_non_null(strstr(m, "ccm_provider_http_requests_total{provider=\""
                            "t-metrics\",method=\"GET\",code=\"5xx\"} 1\n"));
  assert_non_null(strstr(m, "ccm_provider_http_requests_total{provider=\""
                            "t-metrics\",method=\"POST\",code=\"2xx\"} 1\n"));
  assert_non_null(strstr(m, "# TYPE ccm_provider_http_request_duration_seconds"
                            " histogram"));
  assert_non_null(strstr(m, "ccm_provider_http_request_duration_seconds_bucket"
                            "{provider=\"t-metrics\",le=\"0.005\"} "));
  assert_non_null(strstr(m, "ccm_provider_http_request_duration_seconds_bucket"
                            "{provider=\"t-metrics\",le=\"+Inf\"} 5\n"));
  assert_non_null(strstr(m, "ccm_provider_http_request_duration_seconds_count"
                            "{provider=\"t-metrics\"} 5\n"));
  free(m);

  /* A new client for the same provider (a swap) keeps counting. */
  h = new_host("t-metrics", NULL);
  assert_int_equal(get(h, "/echo", &status), CCM_OK);
  host_free(h);
  m = metrics_text();
  assert_non_null(strstr(m, "ccm_provider_http_requests_total{provider=\""
                            "t-metrics\",method=\"GET\",code=\"2xx\"} 4\n"));
  free(m);
}

static void test_no_secret_in_logs(void **state)
{
  static const char *const hdrs[] = {
      "Authorization: Bearer CANARY-AUTH-1",
      "Proxy-Authorization: Basic CANARY-PROXY-2",
      "X-Auth-Token: CANARY-XAT-3",
      "X-Amz-Security-Token: CANARY-STS-4",
      "Cookie: session=CANARY-COOKIE-5",
      "X-Plain: visible-header",
      NULL};
  const char *q = "/echo?Signature=CANARY-SIG-6&X-Amz-Signature=CANARY-SIG-7"
                  "&X-Amz-Credential=CANARY-CRED-8&access_token=CANARY-AT-9"
                  "&token=CANARY-T-10&password=CANARY-PW-11&name=visible";
  struct ccm_host *h = new_host("t-redact", NULL);
  struct ccm_http_response *r = NULL;
  struct ccm_http_request req = {.struct_size = sizeof req, .method = "POST"};
  struct http_fault f = {.url_part = "/faulted", .status = 0, .count = 1};
  struct ccm_call call;
  char u[1024];
  char *m;
  size_t i;

  (void)state;
  log_set_level(CCM_LOG_DEBUG);
  url(u, sizeof u, q);
  req.url = u;
  req.headers = hdrs;
  req.body = "{\"password\":\"CANARY-BODY-12\"}";
  req.body_len = strlen(req.body);
  req.body_is_secret = true;
  call_init(&call, 10000);
  assert_int_equal(api->http_do(h, &call, &req, &r), CCM_OK);
  assert_int_equal(api->http_status(r), 200);
  api->http_release(r);

  /* A transport error: its message names the URL, redacted. */
  snprintf(u, sizeof u, "http://127.0.0.1:%u%s", (unsigned)closed_port(), q);
  call_init(&call, 10000);
  assert_int_equal(api->http_do(h, &call, &req, &r), CCM_ERR_RETRY);
  assert_null(strstr(call.error, "CANARY"));
  assert_non_null(strstr(call.error, "Signature=[REDACTED]"));

  /* An injected fault, and userinfo in the URL. */
  assert_int_equal(http_fault_add(h->http, &f), CCM_OK);
  snprintf(u, sizeof u, "http://user:CANARY-UI-13@127.0.0.1:%u/faulted%s",
           (unsigned)srv.port, q + 5);
  call_init(&call, 10000);
  assert_int_equal(api->http_do(h, &call, &req, &r), CCM_ERR_RETRY);
  assert_null(strstr(call.error, "CANARY"));

  assert_true(n_lines >= 3);
  assert_true(captured("POST "));
  assert_true(captured("name=visible"));
  assert_true(captured("X-Plain: visible-header"));
  assert_true(captured("Authorization: [REDACTED]"));
  for (i = 0; i < n_lines; i++)
    assert_null(strstr(lines[i], "CANARY"));
  m = metrics_text();
  assert_null(strstr(m, "CANARY"));
  free(m);
  host_free(h);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_echo_and_headers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_status_503, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_transport_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tls_settings, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_reuse, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_requests, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
      cmocka_unit_test_setup_teardown(test_metrics_survive_swap, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_no_secret_in_logs, setup, teardown),
  };
  int rc;

  /* Loopback only: a proxy from the environment must not be used. */
  unsetenv("http_proxy");
  unsetenv("HTTP_PROXY");
  unsetenv("https_proxy");
  unsetenv("HTTPS_PROXY");
  unsetenv("all_proxy");
  unsetenv("ALL_PROXY");
  api = host_api();
  if (http_global_init() != 0 || srv_start() != 0) {
    fprintf(stderr, "test_http: cannot start the loopback server\n");
    return 1;
  }
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  srv_stop();
  http_global_cleanup();
  return rc;
}
