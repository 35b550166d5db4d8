/*
 * test_http_tls.c: proves the TLS settings of host/modules/http.c (ca_file,
 * insecure_skip_verify, peer and host name verification) against a tiny
 * HTTPS/1.1 server run in this process on 127.0.0.1, with CAs and server
 * certificates made at run time. Loopback only; it writes no file but its
 * own temporary CA files and never trusts anything from the system store.
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
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "modules/host_api.h"
#include "modules/http.h"
#include "util/log.h"

/* ---- certificates ------------------------------------------------------- */

struct tls_id {
  EVP_PKEY *key;
  X509 *cert;
};

static bool tls_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509_EXTENSION *ext;
  bool ok;

  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (ext == NULL)
    return false;
  ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

/*
 * A P-256 key and a certificate for it: a self-signed CA when ca is NULL,
 * else a server certificate with subjectAltName san signed by ca.
 */
static bool tls_id_make(struct tls_id *id, const char *cn, long serial,
                        const struct tls_id *ca, const char *san)
{
  X509 *issuer;
  EVP_PKEY *sign_key;
  X509_NAME *name;

  id->cert = NULL;
  id->key = EVP_EC_gen("P-256");
  if (id->key == NULL)
    goto fail;
  id->cert = X509_new();
  if (id->cert == NULL)
    goto fail;
  issuer = ca ? ca->cert : id->cert;
  sign_key = ca ? ca->key : id->key;
  name = X509_get_subject_name(id->cert);
  if (X509_set_version(id->cert, X509_VERSION_3) != 1 ||
      ASN1_INTEGER_set(X509_get_serialNumber(id->cert), serial) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(id->cert), -3600) == NULL ||
      X509_gmtime_adj(X509_getm_notAfter(id->cert), 86400) == NULL ||
      X509_set_pubkey(id->cert, id->key) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 (const unsigned char *)cn, -1, -1, 0) != 1 ||
      X509_set_issuer_name(id->cert, X509_get_subject_name(issuer)) != 1 ||
      !tls_add_ext(id->cert, issuer, NID_subject_key_identifier, "hash") ||
      !tls_add_ext(id->cert, issuer, NID_authority_key_identifier,
                   "keyid:always"))
    goto fail;
  if (ca == NULL) {
    if (!tls_add_ext(id->cert, issuer, NID_basic_constraints,
                     "critical,CA:TRUE") ||
        !tls_add_ext(id->cert, issuer, NID_key_usage,
                     "critical,keyCertSign,cRLSign"))
      goto fail;
  } else {
    if (!tls_add_ext(id->cert, issuer, NID_basic_constraints, "CA:FALSE") ||
        !tls_add_ext(id->cert, issuer, NID_key_usage,
                     "critical,digitalSignature") ||
        !tls_add_ext(id->cert, issuer, NID_ext_key_usage, "serverAuth") ||
        !tls_add_ext(id->cert, issuer, NID_subject_alt_name, san))
      goto fail;
  }
  if (X509_sign(id->cert, sign_key, EVP_sha256()) <= 0)
    goto fail;
  return true;

fail:
  ERR_print_errors_fp(stderr);
  X509_free(id->cert);
  EVP_PKEY_free(id->key);
  id->cert = NULL;
  id->key = NULL;
  return false;
}

static void tls_id_free(struct tls_id *id)
{
  X509_free(id->cert);
  EVP_PKEY_free(id->key);
  id->cert = NULL;
  id->key = NULL;
}

/* The CA certificate as PEM in a new temporary file; path gets its name. */
static bool tls_write_pem(X509 *cert, char *path, size_t cap)
{
  const char *dir = getenv("TMPDIR");
  FILE *f;
  int fd;
  bool ok;

  snprintf(path, cap, "%s/ccm-tls-ca-XXXXXX.pem",
           dir != NULL && dir[0] != '\0' ? dir : "/tmp");
  fd = mkstemps(path, 4);
  if (fd < 0) {
    path[0] = '\0';
    return false;
  }
  f = fdopen(fd, "w");
  if (f == NULL) {
    close(fd);
    return false;
  }
  ok = PEM_write_X509(f, cert) == 1;
  return fclose(f) == 0 && ok;
}

/* ---- the HTTPS server ---------------------------------------------------- */

#define SRV_MAX_CONNS 64
#define SRV_MAX_REQ 16384

struct tls_server;

struct tls_conn {
  struct tls_server *srv;
  int fd;
  pthread_t thread;
};

struct tls_server {
  SSL_CTX *ctx;
  int lfd;
  uint16_t port;
  bool running;
  pthread_t thread;
  atomic_bool stop;
  atomic_int accepted;   /* TCP connections */
  atomic_int handshakes; /* TLS handshakes completed */
  atomic_int served;     /* requests answered */
  pthread_mutex_t lock;
  struct tls_conn conns[SRV_MAX_CONNS];
  size_t n;
};

static bool srv_write_all(SSL *ssl, const char *buf, size_t len)
{
  while (len > 0) {
    int n = SSL_write(ssl, buf, len > 65536 ? 65536 : (int)len);

    if (n <= 0)
      return false;
    buf += n;
    len -= (size_t)n;
  }
  return true;
}

/* Whether the request head has "Connection: close" (case-insensitive). */
static bool srv_wants_close(const char *head)
{
  const char *p = head;

  for (;;) {
    p = strstr(p, "\r\n");
    if (p == NULL)
      return false;
    p += 2;
    if (strncasecmp(p, "Connection:", 11) == 0) {
      p += 11;
      while (*p == ' ' || *p == '\t')
        p++;
      return strncasecmp(p, "close", 5) == 0;
    }
  }
}

static size_t srv_content_length(const char *head)
{
  const char *p = head;

  for (;;) {
    p = strstr(p, "\r\n");
    if (p == NULL)
      return 0;
    p += 2;
    if (strncasecmp(p, "Content-Length:", 15) == 0)
      return (size_t)strtoul(p + 15, NULL, 10);
  }
}

/* One request: "tls ok: <path>\n", keep-alive unless the client said close. */
static bool srv_answer(struct tls_server *srv, SSL *ssl, const char *head,
                       bool *close_after)
{
  char method[16] = "", path[256] = "", body[300], resp[600];
  int blen, n;

  sscanf(head, "%15s %255s", method, path);
  *close_after = srv_wants_close(head);
  blen = snprintf(body, sizeof body, "tls ok: %s\n", path);
  n = snprintf(resp, sizeof resp,
               "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
               "Content-Length: %d\r\n%s\r\n%s",
               blen, *close_after ? "Connection: close\r\n" : "", body);
  /* Count before answering: the client may check the count as soon as it
   * has the response. */
  atomic_fetch_add(&srv->served, 1);
  return srv_write_all(ssl, resp, (size_t)n);
}

static void *srv_conn_main(void *arg)
{
  struct tls_conn *conn = arg;
  struct tls_server *srv = conn->srv;
  char *buf = malloc(SRV_MAX_REQ + 1);
  size_t have = 0;
  SSL *ssl = SSL_new(srv->ctx);

  if (buf == NULL || ssl == NULL || SSL_set_fd(ssl, conn->fd) != 1)
    goto out;
  /* A client that rejects our certificate aborts here. */
  if (SSL_accept(ssl) != 1)
    goto out;
  atomic_fetch_add(&srv->handshakes, 1);
  buf[0] = '\0';
  for (;;) {
    char *end = strstr(buf, "\r\n\r\n");
    size_t head_len, total;
    bool close_after;
    int n;

    if (end == NULL) {
      if (have >= SRV_MAX_REQ)
        break;
      n = SSL_read(ssl, buf + have, (int)(SRV_MAX_REQ - have));
      if (n <= 0)
        break;
      have += (size_t)n;
      buf[have] = '\0';
      continue;
    }
    head_len = (size_t)(end - buf) + 4;
    end[2] = '\0';
    total = head_len + srv_content_length(buf);
    if (total > SRV_MAX_REQ)
      break;
    while (have < total) {
      n = SSL_read(ssl, buf + have, (int)(SRV_MAX_REQ - have));
      if (n <= 0)
        goto out;
      have += (size_t)n;
    }
    if (!srv_answer(srv, ssl, buf, &close_after))
      break;
    if (close_after) {
      SSL_shutdown(ssl);
      break;
    }
    memmove(buf, buf + total, have - total);
    have -= total;
    buf[have] = '\0';
  }
out:
  SSL_free(ssl);
  free(buf);
  ERR_clear_error();
  shutdown(conn->fd, SHUT_RDWR);
  return NULL;
}

static void *srv_accept_main(void *arg)
{
  struct tls_server *srv = arg;

  while (!atomic_load(&srv->stop)) {
    struct pollfd p = {.fd = srv->lfd, .events = POLLIN};
    struct tls_conn *conn;
    int fd;

    if (poll(&p, 1, 100) <= 0)
      continue;
    fd = accept(srv->lfd, NULL, NULL);
    if (fd < 0)
      continue;
    atomic_fetch_add(&srv->accepted, 1);
    pthread_mutex_lock(&srv->lock);
    if (srv->n >= SRV_MAX_CONNS) {
      close(fd);
    } else {
      conn = &srv->conns[srv->n];
      conn->srv = srv;
      conn->fd = fd;
      if (pthread_create(&conn->thread, NULL, srv_conn_main, conn) == 0)
        srv->n++;
      else
        close(fd);
    }
    pthread_mutex_unlock(&srv->lock);
  }
  return NULL;
}

static bool srv_start(struct tls_server *srv, const struct tls_id *id)
{
  struct sockaddr_in a = {0};
  socklen_t alen = sizeof a;
  int one = 1;

  srv->lfd = -1;
  pthread_mutex_init(&srv->lock, NULL);
  srv->ctx = SSL_CTX_new(TLS_server_method());
  if (srv->ctx == NULL ||
      SSL_CTX_set_min_proto_version(srv->ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_use_certificate(srv->ctx, id->cert) != 1 ||
      SSL_CTX_use_PrivateKey(srv->ctx, id->key) != 1 ||
      SSL_CTX_check_private_key(srv->ctx) != 1)
    return false;
  srv->lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (srv->lfd < 0)
    return false;
  setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(srv->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(srv->lfd, 64) != 0 ||
      getsockname(srv->lfd, (struct sockaddr *)&a, &alen) != 0)
    return false;
  srv->port = ntohs(a.sin_port);
  srv->running = pthread_create(&srv->thread, NULL, srv_accept_main, srv) == 0;
  return srv->running;
}

static void srv_stop(struct tls_server *srv)
{
  size_t i;

  if (srv->running) {
    atomic_store(&srv->stop, true);
    pthread_join(srv->thread, NULL);
    srv->running = false;
  }
  /* Unblock readers still waiting on a kept-alive connection. */
  for (i = 0; i < srv->n; i++) {
    shutdown(srv->conns[i].fd, SHUT_RDWR);
    pthread_join(srv->conns[i].thread, NULL);
    close(srv->conns[i].fd);
  }
  srv->n = 0;
  if (srv->lfd >= 0)
    close(srv->lfd);
  srv->lfd = -1;
  SSL_CTX_free(srv->ctx);
  srv->ctx = NULL;
  pthread_mutex_destroy(&srv->lock);
}

/* ---- fixture ------------------------------------------------------------------ */

struct tls_fixture {
  struct tls_id ca;         /* trusted through ca_file */
  struct tls_id other_ca;   /* unrelated to every server */
  struct tls_id good;       /* IP:127.0.0.1, DNS:localhost, by ca */
  struct tls_id wrong_name; /* DNS:example.invalid only, by ca */
  char ca_path[512];
  char other_ca_path[512];
  struct tls_server good_srv;
  struct tls_server wrong_srv;
};

static struct tls_fixture fx;
static const struct ccm_host_api *api;

/* Warnings the client logs (insecure_skip_verify must say so). */
static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;
static int insecure_warnings;

static void warn_sink(int level, const char *line, void *ud)
{
  (void)ud;
  pthread_mutex_lock(&warn_lock);
  if (level == CCM_LOG_WARN && strstr(line, "insecure_skip_verify") != NULL)
    insecure_warnings++;
  pthread_mutex_unlock(&warn_lock);
}

static int group_setup(void **state)
{
  (void)state;
  if (!tls_id_make(&fx.ca, "ccm test CA", 1, NULL, NULL) ||
      !tls_id_make(&fx.other_ca, "ccm unrelated CA", 2, NULL, NULL) ||
      !tls_id_make(&fx.good, "ccm test server", 3, &fx.ca,
                   "IP:127.0.0.1,DNS:localhost") ||
      !tls_id_make(&fx.wrong_name, "example.invalid", 4, &fx.ca,
                   "DNS:example.invalid") ||
      !tls_write_pem(fx.ca.cert, fx.ca_path, sizeof fx.ca_path) ||
      !tls_write_pem(fx.other_ca.cert, fx.other_ca_path,
                     sizeof fx.other_ca_path) ||
      !srv_start(&fx.good_srv, &fx.good) ||
      !srv_start(&fx.wrong_srv, &fx.wrong_name)) {
    fprintf(stderr, "test_http_tls: cannot set up certificates or servers\n");
    ERR_print_errors_fp(stderr);
    return -1;
  }
  return 0;
}

static int group_teardown(void **state)
{
  (void)state;
  srv_stop(&fx.good_srv);
  srv_stop(&fx.wrong_srv);
  if (fx.ca_path[0] != '\0')
    unlink(fx.ca_path);
  if (fx.other_ca_path[0] != '\0')
    unlink(fx.other_ca_path);
  tls_id_free(&fx.ca);
  tls_id_free(&fx.other_ca);
  tls_id_free(&fx.good);
  tls_id_free(&fx.wrong_name);
  return 0;
}

/* ---- helpers ------------------------------------------------------------------ */

struct fetch_result {
  int rc;
  long status;
  char body[256];
  char url[256];
  char error[CCM_MAX_ERROR + 1];
};

static struct ccm_host *new_host(const char *name,
                                 const struct http_settings *s)
{
  char err[256];
  struct ccm_host *h = host_new(name, NULL, s, err, sizeof err);

  assert_non_null(h);
  return h;
}

/* One GET https://<hostname>:<port>/path on h; headers may be NULL. */
static void fetch_on(struct ccm_host *h, const char *hostname, uint16_t port,
                     const char *path, const char *const *headers,
                     struct fetch_result *out)
{
  struct ccm_http_request req = {.struct_size = sizeof req, .method = "GET"};
  struct ccm_http_response *r = NULL;
  struct ccm_call call;

  memset(out, 0, sizeof *out);
  snprintf(out->url, sizeof out->url, "https://%s:%u%s", hostname,
           (unsigned)port, path);
  req.url = out->url;
  req.headers = headers;
  call_init(&call, 20000);
  out->rc = api->http_do(h, &call, &req, &r);
  if (out->rc == CCM_OK) {
    out->status = api->http_status(r);
    snprintf(out->body, sizeof out->body, "%s", api->http_body(r, NULL));
  } else {
    assert_null(r);
  }
  snprintf(out->error, sizeof out->error, "%s", call.error);
  api->http_release(r);
}

/* A fresh client (so no TLS session or connection is shared) for one GET. */
static void fetch(const char *owner, const struct http_settings *s,
                  const char *hostname, uint16_t port,
                  struct fetch_result *out)
{
  struct ccm_host *h = new_host(owner, s);

  fetch_on(h, hostname, port, "/hello", NULL, out);
  host_free(h);
}

static void assert_ok(const struct fetch_result *res, const char *path)
{
  char want[300];

  if (res->rc != CCM_OK)
    fprintf(stderr, "unexpected failure: %s\n", res->error);
  assert_int_equal(res->rc, CCM_OK);
  assert_int_equal(res->status, 200);
  snprintf(want, sizeof want, "tls ok: %s\n", path);
  assert_string_equal(res->body, want);
}

/*
 * A refused peer: http_do maps every TLS failure (CURLE_PEER_FAILED_
 * VERIFICATION and friends) to CCM_ERR_RETRY, and the call error names the
 * URL and curl's reason, which must carry need (a certificate problem).
 */
static void assert_tls_refused(const struct fetch_result *res,
                               const char *need)
{
  assert_int_equal(res->rc, CCM_ERR_INTERNAL);
  assert_non_null(strstr(res->error, res->url));
  if (strstr(res->error, need) == NULL)
    fprintf(stderr, "error without \"%s\": %s\n", need, res->error);
  assert_non_null(strstr(res->error, need));
}

/* ---- tests ------------------------------------------------------------------ */

static void test_our_ca_trusted(void **state)
{
  struct http_settings s = {.ca_file = fx.ca_path};
  struct fetch_result res;
  int served = atomic_load(&fx.good_srv.served);

  (void)state;
  fetch("t-tls-ca", &s, "127.0.0.1", fx.good_srv.port, &res);
  assert_ok(&res, "/hello");
  assert_string_equal(res.error, "");
  assert_int_equal(atomic_load(&fx.good_srv.served) - served, 1);
}

static void test_unrelated_ca_refused(void **state)
{
  struct http_settings s = {.ca_file = fx.other_ca_path};
  struct fetch_result res;
  int served = atomic_load(&fx.good_srv.served);

  (void)state;
  fetch("t-tls-other-ca", &s, "127.0.0.1", fx.good_srv.port, &res);
  assert_tls_refused(&res, "certificate");
  /* "SSL certificate problem: unable to get local issuer certificate" */
  assert_non_null(strstr(res.error, "issuer"));
  /* The request itself never left the client. */
  assert_int_equal(atomic_load(&fx.good_srv.served), served);
}

static void test_system_store_refused(void **state)
{
  struct http_settings s = {0};
  struct fetch_result res;
  int served = atomic_load(&fx.good_srv.served);

  (void)state;
  /* Explicit settings with no ca_file, and no settings at all. */
  fetch("t-tls-system", &s, "127.0.0.1", fx.good_srv.port, &res);
  assert_tls_refused(&res, "certificate");
  fetch("t-tls-default", NULL, "127.0.0.1", fx.good_srv.port, &res);
  assert_tls_refused(&res, "certificate");
  assert_int_equal(atomic_load(&fx.good_srv.served), served);
}

static void test_insecure_skip_verify(void **state)
{
  struct http_settings s = {.insecure_skip_verify = true};
  struct fetch_result res;

  (void)state;
  insecure_warnings = 0;
  log_set_sink(warn_sink, NULL);
  fetch("t-tls-insecure", &s, "127.0.0.1", fx.good_srv.port, &res);
  log_set_sink(NULL, NULL);
  assert_ok(&res, "/hello");
  assert_int_equal(insecure_warnings, 1);
  /* It skips the name check too, and wins over a CA that cannot verify. */
  fetch("t-tls-insecure", &s, "127.0.0.1", fx.wrong_srv.port, &res);
  assert_ok(&res, "/hello");
  s.ca_file = fx.other_ca_path;
  fetch("t-tls-insecure", &s, "127.0.0.1", fx.good_srv.port, &res);
  assert_ok(&res, "/hello");
}

static void test_localhost_dns_san(void **state)
{
  struct http_settings s = {.ca_file = fx.ca_path};
  struct fetch_result res;

  (void)state;
  fetch("t-tls-localhost", &s, "localhost", fx.good_srv.port, &res);
  assert_ok(&res, "/hello");
}

static void test_name_mismatch_refused(void **state)
{
  struct http_settings s = {.ca_file = fx.ca_path};
  struct fetch_result res;
  int served = atomic_load(&fx.wrong_srv.served);

  (void)state;
  /* The chain is fine (insecure gets 200 above); only the name is not. */
  fetch("t-tls-mismatch", &s, "127.0.0.1", fx.wrong_srv.port, &res);
  assert_tls_refused(&res, "certificate");
  assert_non_null(strstr(res.error, "host name"));
  fetch("t-tls-mismatch", &s, "localhost", fx.wrong_srv.port, &res);
  assert_tls_refused(&res, "certificate");
  assert_non_null(strstr(res.error, "host name"));
  assert_int_equal(atomic_load(&fx.wrong_srv.served), served);
}

static void test_keep_alive_and_close(void **state)
{
  static const char *const close_hdr[] = {"Connection: close", NULL};
  struct http_settings s = {.ca_file = fx.ca_path};
  struct ccm_host *h = new_host("t-tls-reuse", &s);
  struct fetch_result res;
  int before = atomic_load(&fx.good_srv.accepted);
  int i;

  (void)state;
  /* Pooled handles keep the verified TLS connection alive. */
  for (i = 0; i < 3; i++) {
    fetch_on(h, "127.0.0.1", fx.good_srv.port, "/again", NULL, &res);
    assert_ok(&res, "/again");
  }
  assert_int_equal(atomic_load(&fx.good_srv.accepted) - before, 1);
  /* After the server closes, the next request verifies a new connection. */
  fetch_on(h, "127.0.0.1", fx.good_srv.port, "/bye", close_hdr, &res);
  assert_ok(&res, "/bye");
  fetch_on(h, "127.0.0.1", fx.good_srv.port, "/after", NULL, &res);
  assert_ok(&res, "/after");
  assert_int_equal(atomic_load(&fx.good_srv.accepted) - before, 2);
  host_free(h);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_our_ca_trusted),
      cmocka_unit_test(test_unrelated_ca_refused),
      cmocka_unit_test(test_system_store_refused),
      cmocka_unit_test(test_insecure_skip_verify),
      cmocka_unit_test(test_localhost_dns_san),
      cmocka_unit_test(test_name_mismatch_refused),
      cmocka_unit_test(test_keep_alive_and_close),
  };
  struct sigaction sa;
  int rc;

  /* Loopback only: a proxy from the environment must not be used, and
   * nothing may point the client at another trust store. */
  unsetenv("http_proxy");
  unsetenv("HTTP_PROXY");
  unsetenv("https_proxy");
  unsetenv("HTTPS_PROXY");
  unsetenv("all_proxy");
  unsetenv("ALL_PROXY");
  unsetenv("SSL_CERT_FILE");
  unsetenv("SSL_CERT_DIR");
  unsetenv("CURL_CA_BUNDLE");
  /* The server writes with SSL_write: a peer that hung up must not kill us. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, NULL);
  api = host_api();
  if (http_global_init() != 0) {
    fprintf(stderr, "test_http_tls: http_global_init failed\n");
    return 1;
  }
  rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
  http_global_cleanup();
  return rc;
}
