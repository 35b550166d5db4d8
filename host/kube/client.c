/*
 * client.c: the Kubernetes API transport on libcurl: a pool of easy handles
 * (connection reuse) sharing DNS and TLS sessions, bearer tokens re-read
 * from their file, the QPS limiter, retries and error mapping. No lock is
 * held across the network, and no token or key ever reaches a log line.
 */
#include "kube/client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "kube/kubeconfig.h"
#include "kube/limiter.h"
#include "modules/http.h"
#include "util/curl_pool.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/thread.h"

#define CCM_KUBE_BODY_MAX (256u << 20)
#define CCM_KUBE_LINE_MAX (64u << 20)
#define CCM_KUBE_DEFAULT_TIMEOUT_MS 30000
#define CCM_KUBE_CONNECT_TIMEOUT_MS 10000
#define CCM_KUBE_LOG "kube"

struct kube_client {
  struct kube_conn conn;
  char *user_agent;
  uint32_t timeout_ms;
  int max_tries;
  uint32_t backoff_base_ms;
  uint32_t backoff_cap_ms;
  uint32_t retry_after_max_ms;
  struct limiter limiter;

  CURLSH *share;
  pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];

  struct curl_pool pool; /* idle handles: connections are reused */
  pthread_mutex_t lock; /* token, jitter state; never across I/O */
  char *token;
  int64_t token_read_us;
  uint64_t jitter;
};

/* A response being received. */
struct kc_buf {
  char *data;
  size_t len;
  size_t cap;
  bool too_large;
  long status;       /* from the last status line (watch needs it early) */
  long retry_after;  /* seconds, -1 when absent */
  bool discard_ok;   /* drop a 2xx body: the caller does not read it */
  /* watch */
  kube_line_fn *fn;
  void *ud;
  atomic_bool *stop;
  bool fn_stopped;
  uint64_t io_mark; /* thread CPU when curl last handed control back */
};

const char *kube_status_name(int status)
{
  switch (status) {
  case KUBE_OK: return "ok";
  case KUBE_NOT_FOUND: return "not found";
  case KUBE_CONFLICT: return "conflict";
  case KUBE_EXISTS: return "already exists";
  case KUBE_GONE: return "gone";
  case KUBE_INVALID: return "invalid";
  case KUBE_THROTTLED: return "throttled";
  case KUBE_UNAVAILABLE: return "unavailable";
  case KUBE_UNAUTHORIZED: return "unauthorized";
  case KUBE_FORBIDDEN: return "forbidden";
  default: return "error";
  }
}

static int64_t kc_now_us(void)
{
  return limiter_now_us(NULL);
}

static void kc_sleep_ms(int64_t ms)
{
  struct timespec ts;

  if (ms <= 0)
    return;
  ts.tv_sec = (time_t)(ms / 1000);
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static void kc_msg(char *msg, size_t msglen, const char *fmt, ...)
    CCM_PRINTF(3, 4);

static void kc_msg(char *msg, size_t msglen, const char *fmt, ...)
{
  va_list ap;

  if (msg == NULL || msglen == 0)
    return;
  va_start(ap, fmt);
  log_vformat(msg, msglen, fmt, ap);
  va_end(ap);
}

/* ---- error mapping -------------------------------------------------------- */

int kube_status_map(long http_status, const char *body, size_t len,
                    char *msg, size_t msglen)
{
  const char *reason = NULL, *smsg = NULL;
  cJSON *root = NULL, *kind;
  int st;

  /* A success's body is the object, which its caller parses if needed. */
  if ((http_status < 200 || http_status >= 300) && body != NULL &&
      len > 0 && body[0] == '{') {
    root = cJSON_ParseWithLength(body, len);
    kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    if (cJSON_IsString(kind) && strcmp(kind->valuestring, "Status") == 0) {
      cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "reason");
      cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "message");

      if (cJSON_IsString(r))
        reason = r->valuestring;
      if (cJSON_IsString(m) && m->valuestring[0] != '\0')
        smsg = m->valuestring;
    }
  }
  if (http_status >= 200 && http_status < 300)
    st = KUBE_OK;
  else if (http_status == 0)
    st = KUBE_UNAVAILABLE;
  else if (http_status == 400 || http_status == 422)
    st = KUBE_INVALID;
  else if (http_status == 401)
    st = KUBE_UNAUTHORIZED;
  else if (http_status == 403)
    st = KUBE_FORBIDDEN;
  else if (http_status == 404)
    st = KUBE_NOT_FOUND;
  else if (http_status == 409)
    st = reason != NULL && strcmp(reason, "AlreadyExists") == 0
             ? KUBE_EXISTS : KUBE_CONFLICT;
  else if (http_status == 410)
    st = KUBE_GONE;
  else if (http_status == 429)
    st = KUBE_THROTTLED;
  else if (http_status >= 500 && http_status < 600)
    st = KUBE_UNAVAILABLE;
  else
    st = KUBE_ERROR;
  /* A Status reason is more precise than a code the proxy may have chosen. */
  if (st == KUBE_ERROR && reason != NULL) {
    if (strcmp(reason, "Expired") == 0 || strcmp(reason, "Gone") == 0)
      st = KUBE_GONE;
    else if (strcmp(reason, "Invalid") == 0 ||
             strcmp(reason, "BadRequest") == 0)
      st = KUBE_INVALID;
  }
  if (http_status == 0) {
    /* The caller put the local error in msg already. */
  } else if (smsg != NULL) {
    kc_msg(msg, msglen, "%s", smsg);
  } else if (st != KUBE_OK) {
    kc_msg(msg, msglen, "HTTP %ld%s%s", http_status,
           reason != NULL ? " " : "", reason != NULL ? reason : "");
  } else if (msg != NULL && msglen > 0) {
    msg[0] = '\0';
  }
  cJSON_Delete(root);
  return st;
}

/* ---- curl share and pool -------------------------------------------------- */

static void kc_share_lock(CURL *h, curl_lock_data data,
                          curl_lock_access access, void *ud)
{
  struct kube_client *c = ud;

  (void)h;
  (void)access;
  if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
    pthread_mutex_lock(&c->share_lock[data]);
}

static void kc_share_unlock(CURL *h, curl_lock_data data, void *ud)
{
  struct kube_client *c = ud;

  (void)h;
  if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
    pthread_mutex_unlock(&c->share_lock[data]);
}


/* ---- tokens ---------------------------------------------------------------- */

/* Re-read the token file now (force) or when it is older than the refresh
 * period. The file is read without the lock held. */
static void kc_token_refresh(struct kube_client *c, bool force)
{
  char err[256], *tok;
  int64_t now = kc_now_us();
  bool due;

  if (c->conn.token_file == NULL)
    return;
  pthread_mutex_lock(&c->lock);
  due = force || now - c->token_read_us >=
                     (int64_t)CCM_KUBE_TOKEN_REFRESH_MS * 1000;
  pthread_mutex_unlock(&c->lock);
  if (!due)
    return;
  tok = kubeconfig_read_token(c->conn.token_file, err, sizeof err);
  if (tok == NULL) {
    log_msg(CCM_LOG_WARN, CCM_KUBE_LOG, "keeping the old token: %s", err);
    pthread_mutex_lock(&c->lock);
    c->token_read_us = now;
    pthread_mutex_unlock(&c->lock);
    return;
  }
  pthread_mutex_lock(&c->lock);
  if (c->token != NULL && strcmp(c->token, tok) != 0)
    log_msg(CCM_LOG_INFO, CCM_KUBE_LOG, "bearer token reloaded from %s",
            c->conn.token_file);
  mem_free(c->token);
  c->token = tok;
  c->token_read_us = now;
  pthread_mutex_unlock(&c->lock);
}

/* "Authorization: Bearer <token>" as a curl_slist entry, or NULL. */
static struct curl_slist *kc_auth_header(struct kube_client *c,
                                         struct curl_slist *list, bool *ok)
{
  struct curl_slist *nl;
  char *hdr = NULL;
  size_t n;

  *ok = true;
  pthread_mutex_lock(&c->lock);
  if (c->token != NULL) {
    n = strlen(c->token) + sizeof "Authorization: Bearer ";
    hdr = mem_alloc(n);
    if (hdr != NULL)
      snprintf(hdr, n, "Authorization: Bearer %s", c->token);
  }
  pthread_mutex_unlock(&c->lock);
  if (hdr == NULL)
    return list;
  nl = curl_slist_append(list, hdr);
  memset(hdr, 0, strlen(hdr));
  mem_free(hdr);
  if (nl == NULL) {
    *ok = false;
    return list;
  }
  return nl;
}

/* ---- callbacks ------------------------------------------------------------- */

static int kc_buf_add(struct kc_buf *b, const char *p, size_t n)
{
  size_t need = b->len + n + 1, cap;
  char *nd;

  if (need > b->cap) {
    if (need > CCM_KUBE_BODY_MAX) {
      b->too_large = true;
      return -1;
    }
    cap = b->cap == 0 ? 4096 : b->cap;
    while (cap < need)
      cap *= 2;
    nd = mem_realloc(b->data, cap);
    if (nd == NULL)
      return -1;
    b->data = nd;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

static size_t kc_on_body(char *p, size_t size, size_t nmemb, void *ud)
{
  struct kc_buf *b = ud;
  size_t n = size * nmemb;

  if (b->discard_ok && b->status >= 200 && b->status < 300)
    return n;
  if (kc_buf_add(b, p, n) != 0)
    return 0;
  return n;
}

/* CPU of all threads inside requests and watch reads: see kube_io_cpu. */
static atomic_uint_fast64_t kc_request_cpu_all_ns;
static atomic_uint_fast64_t kc_watch_read_cpu_ns;

static void kc_watch_read_done(struct kc_buf *b)
{
  uint64_t now = thread_cpu_ns();

  atomic_fetch_add_explicit(&kc_watch_read_cpu_ns, now - b->io_mark,
                            memory_order_relaxed);
  b->io_mark = now;
}

/* Deliver the complete lines buffered so far. */
static size_t kc_watch_lines(struct kc_buf *b, char *p, size_t n)
{
  size_t start = 0, i;

  if (b->len + n > CCM_KUBE_LINE_MAX) {
    b->too_large = true;
    return 0;
  }
  if (kc_buf_add(b, p, n) != 0)
    return 0;
  for (i = 0; i < b->len; i++) {
    if (b->data[i] != '\n')
      continue;
    b->data[i] = '\0';
    if (i > start && b->fn(b->data + start, i - start, b->ud) != 0) {
      b->fn_stopped = true;
      return 0;
    }
    start = i + 1;
  }
  if (start > 0) {
    memmove(b->data, b->data + start, b->len - start);
    b->len -= start;
    b->data[b->len] = '\0';
  }
  return n;
}

/* Watch bodies: deliver complete lines while the status is 2xx. Time
 * between two calls is curl and the kernel reading the stream; time inside
 * is the caller's handling of the lines. */
static size_t kc_on_watch(char *p, size_t size, size_t nmemb, void *ud)
{
  struct kc_buf *b = ud;
  size_t n = size * nmemb, done;

  if (b->status < 200 || b->status >= 300)
    return kc_on_body(p, size, nmemb, ud);
  kc_watch_read_done(b);
  done = kc_watch_lines(b, p, n);
  b->io_mark = thread_cpu_ns();
  return done;
}

static size_t kc_on_header(char *p, size_t size, size_t nmemb, void *ud)
{
  struct kc_buf *b = ud;
  size_t n = size * nmemb;
  char line[128], *end;
  long v;

  if (n >= sizeof line)
    return n;
  memcpy(line, p, n);
  line[n] = '\0';
  if (strncmp(line, "HTTP/", 5) == 0) {
    const char *sp = strchr(line, ' ');

    if (sp != NULL) {
      v = strtol(sp + 1, &end, 10);
      if (end != sp + 1)
        b->status = v;
    }
    b->retry_after = -1;
  } else if (strncasecmp(line, "Retry-After:", 12) == 0) {
    v = strtol(line + 12, &end, 10);
    if (end != line + 12 && v >= 0)
      b->retry_after = v;
  }
  return n;
}

static int kc_on_progress(void *ud, curl_off_t dt, curl_off_t dn,
                          curl_off_t ut, curl_off_t un)
{
  struct kc_buf *b = ud;

  (void)dt;
  (void)dn;
  (void)ut;
  (void)un;
  return b->stop != NULL && atomic_load(b->stop) ? 1 : 0;
}

/* ---- one attempt ------------------------------------------------------------ */

static bool kc_tls_error(CURLcode cc)
{
  return cc == CURLE_PEER_FAILED_VERIFICATION ||
         cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_SSL_CERTPROBLEM ||
         cc == CURLE_SSL_ISSUER_ERROR;
}

/* Set up h for one request. Returns the header list to free, or NULL with
 * *ok false on a local failure. */
static struct curl_slist *kc_setup(struct kube_client *c, CURL *h,
                                   const char *method, const char *url,
                                   const char *content_type,
                                   const char *body, size_t body_len,
                                   uint32_t timeout_ms, bool *ok)
{
  struct curl_slist *hl = NULL, *nl;
  struct curl_blob blob;
  char ct[160];

  *ok = false;
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_SHARE, c->share);
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)(timeout_ms != 0 && timeout_ms <
                          CCM_KUBE_CONNECT_TIMEOUT_MS
                              ? timeout_ms : CCM_KUBE_CONNECT_TIMEOUT_MS));
  if (timeout_ms != 0)
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  if (c->conn.insecure) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (c->conn.ca_data != NULL) {
    blob.data = c->conn.ca_data;
    blob.len = c->conn.ca_len;
    blob.flags = CURL_BLOB_COPY;
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
  } else if (c->conn.ca_file != NULL) {
    curl_easy_setopt(h, CURLOPT_CAINFO, c->conn.ca_file);
  }
  if (c->conn.cert_data != NULL) {
    blob.data = c->conn.cert_data;
    blob.len = c->conn.cert_len;
    blob.flags = CURL_BLOB_COPY;
    curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &blob);
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
  } else if (c->conn.cert_file != NULL) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, c->conn.cert_file);
  }
  if (c->conn.key_data != NULL) {
    blob.data = c->conn.key_data;
    blob.len = c->conn.key_len;
    blob.flags = CURL_BLOB_COPY;
    curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &blob);
    curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
  } else if (c->conn.key_file != NULL) {
    curl_easy_setopt(h, CURLOPT_SSLKEY, c->conn.key_file);
  }

  if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
  }

  nl = curl_slist_append(hl, "Accept: application/json");
  if (nl == NULL)
    goto fail;
  hl = nl;
  if (content_type != NULL) {
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
    nl = curl_slist_append(hl, ct);
    if (nl == NULL)
      goto fail;
    hl = nl;
  }
  /* Stop curl adding "Expect: 100-continue" round trips. */
  nl = curl_slist_append(hl, "Expect:");
  if (nl == NULL)
    goto fail;
  hl = nl;
  hl = kc_auth_header(c, hl, ok);
  if (!*ok)
    goto fail;
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
  *ok = true;
  return hl;
fail:
  curl_slist_free_all(hl);
  *ok = false;
  return NULL;
}

/* Fill out from b and the curl result; returns the mapped status. */
static int kc_finish(CURLcode cc, const char *errbuf, struct kc_buf *b,
                     struct kube_response *out)
{
  int st;

  mem_free(out->body);
  out->body = b->data != NULL ? b->data : mem_strdup("");
  out->len = b->data != NULL ? b->len : 0;
  b->data = NULL;
  b->len = b->cap = 0;
  out->message[0] = '\0';
  if (b->too_large) {
    out->http_status = b->status;
    kc_msg(out->message, sizeof out->message, "response body too large");
    return KUBE_ERROR;
  }
  if (cc != CURLE_OK && !(b->stop != NULL && cc == CURLE_ABORTED_BY_CALLBACK)
      && !b->fn_stopped) {
    out->http_status = 0;
    kc_msg(out->message, sizeof out->message, "%s",
           errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
    return kc_tls_error(cc) ? KUBE_ERROR : KUBE_UNAVAILABLE;
  }
  out->http_status = b->status;
  st = kube_status_map(b->status, out->body, out->len, out->message,
                       sizeof out->message);
  return st;
}

static uint64_t kc_rand(struct kube_client *c)
{
  uint64_t x;

  pthread_mutex_lock(&c->lock);
  x = c->jitter;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  c->jitter = x;
  pthread_mutex_unlock(&c->lock);
  return x;
}

/* Exponential backoff with jitter: half fixed, half random. */
static int64_t kc_backoff_ms(struct kube_client *c, int attempt)
{
  int64_t d = c->backoff_base_ms;
  int i;

  for (i = 1; i < attempt && d < c->backoff_cap_ms; i++)
    d *= 2;
  if (d > c->backoff_cap_ms)
    d = c->backoff_cap_ms;
  return d / 2 + (int64_t)(kc_rand(c) % (uint64_t)(d / 2 + 1));
}

static bool kc_retryable(int st, long http_status, long retry_after)
{
  if (st == KUBE_THROTTLED)
    return true;
  if (st != KUBE_UNAVAILABLE)
    return false;
  /* 501 Not Implemented will not change; a Retry-After always invites. */
  return http_status != 501 || retry_after >= 0;
}

static _Thread_local uint64_t kc_request_cpu_ns;

uint64_t kube_thread_request_cpu_ns(void)
{
  return kc_request_cpu_ns;
}

static int kc_request(struct kube_client *c, const char *method,
                      const char *path, const char *content_type,
                      const char *body, size_t body_len,
                      const struct kube_request_opts *ro,
                      struct kube_response *out);

int kube_request_ex(struct kube_client *c, const char *method,
                    const char *path, const char *content_type,
                    const char *body, size_t body_len,
                    const struct kube_request_opts *ro,
                    struct kube_response *out)
{
  uint64_t cpu0 = thread_cpu_ns();
  int st = kc_request(c, method, path, content_type, body, body_len, ro,
                      out);

  cpu0 = thread_cpu_ns() - cpu0;
  kc_request_cpu_ns += cpu0;
  atomic_fetch_add_explicit(&kc_request_cpu_all_ns, cpu0,
                            memory_order_relaxed);
  return st;
}

struct kube_io_cpu kube_io_cpu(void)
{
  struct kube_io_cpu io = {
    .requests_ns = atomic_load_explicit(&kc_request_cpu_all_ns,
                                        memory_order_relaxed),
    .watch_reads_ns = atomic_load_explicit(&kc_watch_read_cpu_ns,
                                           memory_order_relaxed),
  };

  return io;
}

void kube_client_metrics_write(FILE *out)
{
  struct kube_io_cpu io = kube_io_cpu();

  fprintf(out,
          "# HELP ccm_kube_client_cpu_seconds_total Thread CPU of all "
          "threads exchanging bytes with the Kubernetes API server: inside "
          "requests (building, sending, receiving, retries) and reading "
          "watch streams (outside the handling of each event).\n"
          "# TYPE ccm_kube_client_cpu_seconds_total counter\n"
          "ccm_kube_client_cpu_seconds_total{part=\"requests\"} %.6f\n"
          "ccm_kube_client_cpu_seconds_total{part=\"watch_reads\"} %.6f\n",
          (double)io.requests_ns / 1e9, (double)io.watch_reads_ns / 1e9);
}

/* The server's base URL and path, joined in a new string (mem_free it). */
static char *kc_url(const struct kube_client *c, const char *path)
{
  const char *parts[] = {c->conn.server, path};

  return mem_join(parts, 2, '\0');
}

static int kc_request(struct kube_client *c, const char *method,
                      const char *path, const char *content_type,
                      const char *body, size_t body_len,
                      const struct kube_request_opts *ro,
                      struct kube_response *out)
{
  struct kc_buf b;
  struct curl_slist *hl = NULL;
  char errbuf[CURL_ERROR_SIZE];
  char *url = NULL;
  CURL *h = NULL;
  CURLcode cc;
  int st = KUBE_ERROR, attempt, tries;
  uint32_t timeout_ms;
  bool reauthed = false, ok;
  int64_t t0, wait_ms;

  memset(out, 0, sizeof *out);
  memset(&b, 0, sizeof b);
  tries = ro != NULL && ro->max_tries > 0 ? ro->max_tries : c->max_tries;
  timeout_ms = ro != NULL && ro->timeout_ms > 0 ? ro->timeout_ms
                                                : c->timeout_ms;
  url = kc_url(c, path);
  h = curl_pool_take(&c->pool);
  if (url == NULL || h == NULL) {
    kc_msg(out->message, sizeof out->message, "out of memory");
    goto fail;
  }

  for (attempt = 1;; attempt++) {
    limiter_wait(&c->limiter);
    kc_token_refresh(c, false);
    memset(&b, 0, sizeof b);
    b.retry_after = -1;
    b.discard_ok = ro != NULL && ro->discard_ok_body;
    errbuf[0] = '\0';
    hl = kc_setup(c, h, method, url, content_type, body, body_len,
                  timeout_ms, &ok);
    if (!ok) {
      kc_msg(out->message, sizeof out->message, "out of memory");
      st = KUBE_ERROR;
      goto fail;
    }
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, kc_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, kc_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &b);
    t0 = kc_now_us();
    cc = curl_easy_perform(h);
    curl_slist_free_all(hl);
    hl = NULL;
    st = kc_finish(cc, errbuf, &b, out);
    log_msg(CCM_LOG_DEBUG, CCM_KUBE_LOG, "%s %s -> %ld %s (%lld ms, try %d)",
            method, path, out->http_status, kube_status_name(st),
            (long long)((kc_now_us() - t0) / 1000), attempt);

    if (st == KUBE_UNAUTHORIZED && !reauthed && c->conn.token_file != NULL) {
      reauthed = true;
      kc_token_refresh(c, true);
      attempt--; /* the re-read is not a failed try */
      kube_response_free(out);
      continue;
    }
    if (!kc_retryable(st, out->http_status, b.retry_after) ||
        attempt >= tries)
      break;
    if (b.retry_after >= 0) {
      /* Compare in seconds first: a huge header value would overflow. */
      if (b.retry_after > (long)(c->retry_after_max_ms / 1000))
        wait_ms = c->retry_after_max_ms;
      else
        wait_ms = (int64_t)b.retry_after * 1000;
      if (wait_ms > c->retry_after_max_ms)
        wait_ms = c->retry_after_max_ms;
    } else {
      wait_ms = kc_backoff_ms(c, attempt);
    }
    log_msg(CCM_LOG_DEBUG, CCM_KUBE_LOG, "%s %s: %s, retrying in %lld ms",
            method, path, out->message, (long long)wait_ms);
    kube_response_free(out);
    kc_sleep_ms(wait_ms);
  }
fail:
  mem_free(b.data);
  curl_pool_give(&c->pool, h);
  mem_free(url);
  if (out->body == NULL) {
    out->body = mem_strdup("");
    out->len = 0;
  }
  return st;
}

int kube_request(struct kube_client *c, const char *method, const char *path,
                 const char *content_type, const char *body, size_t body_len,
                 struct kube_response *out)
{
  return kube_request_ex(c, method, path, content_type, body, body_len, NULL,
                         out);
}

int kube_watch(struct kube_client *c, const char *path, kube_line_fn *fn,
               void *ud, atomic_bool *stop, struct kube_response *out)
{
  struct kc_buf b;
  struct curl_slist *hl = NULL;
  char errbuf[CURL_ERROR_SIZE];
  char *url = NULL;
  CURL *h = NULL;
  CURLcode cc;
  int st = KUBE_ERROR, pass;
  bool ok;

  memset(out, 0, sizeof *out);
  memset(&b, 0, sizeof b);
  url = kc_url(c, path);
  h = curl_pool_take(&c->pool);
  if (url == NULL || h == NULL) {
    kc_msg(out->message, sizeof out->message, "out of memory");
    goto fail;
  }
  for (pass = 0; pass < 2; pass++) {
    kc_token_refresh(c, pass > 0);
    memset(&b, 0, sizeof b);
    b.retry_after = -1;
    b.fn = fn;
    b.ud = ud;
    b.stop = stop;
    errbuf[0] = '\0';
    hl = kc_setup(c, h, "GET", url, NULL, NULL, 0, 0, &ok);
    if (!ok) {
      kc_msg(out->message, sizeof out->message, "out of memory");
      goto fail;
    }
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, kc_on_watch);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, kc_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &b);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, kc_on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &b);
    b.io_mark = thread_cpu_ns();
    cc = curl_easy_perform(h);
    kc_watch_read_done(&b);
    curl_slist_free_all(hl);
    hl = NULL;
    st = kc_finish(cc, errbuf, &b, out);
    log_msg(CCM_LOG_DEBUG, CCM_KUBE_LOG, "WATCH %s -> %ld %s (%s)", path,
            out->http_status, kube_status_name(st),
            b.fn_stopped ? "callback stopped" :
            (stop != NULL && atomic_load(stop)) ? "stopped" : "closed");
    if (st != KUBE_UNAUTHORIZED || c->conn.token_file == NULL)
      break;
    kube_response_free(out);
  }
fail:
  mem_free(b.data);
  curl_pool_give(&c->pool, h);
  mem_free(url);
  if (out->body == NULL) {
    out->body = mem_strdup("");
    out->len = 0;
  }
  return st;
}

void kube_response_free(struct kube_response *r)
{
  if (r == NULL)
    return;
  mem_free(r->body);
  r->body = NULL;
  r->len = 0;
}

/* ---- construction ----------------------------------------------------------- */

int kube_client_new(const struct kube_client_opts *opts,
                    struct kube_client **out, char *err, size_t errlen)
{
  struct kube_client *c = NULL;
  bool global = false;
  char ua[64];
  int i;

  *out = NULL;
  if (http_global_init() != 0) {
    kc_msg(err, errlen, "libcurl global init failed");
    return -1;
  }
  global = true;
  c = mem_calloc(1, sizeof *c);
  if (c == NULL) {
    kc_msg(err, errlen, "out of memory");
    goto fail;
  }
  pthread_mutex_init(&c->lock, NULL);
  curl_pool_init(&c->pool);
  for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&c->share_lock[i], NULL);
  if (kubeconfig_resolve(opts->kubeconfig, opts->context, opts->master,
                         &c->conn, err, errlen) != 0)
    goto fail_locks;
  if (c->conn.server == NULL ||
      (strncmp(c->conn.server, "https://", 8) != 0 &&
       strncmp(c->conn.server, "http://", 7) != 0)) {
    kc_msg(err, errlen, "%s: server URL must start with https:// or http://",
           c->conn.source != NULL ? c->conn.source : "config");
    goto fail_conn;
  }
  c->token = c->conn.token != NULL ? mem_strdup(c->conn.token) : NULL;
  c->token_read_us = kc_now_us();
  snprintf(ua, sizeof ua, "ccm-host/%s", CCM_VERSION);
  c->user_agent = mem_strdup(opts->user_agent != NULL ? opts->user_agent
                                                      : ua);
  c->timeout_ms = opts->timeout_ms != 0 ? opts->timeout_ms
                                        : CCM_KUBE_DEFAULT_TIMEOUT_MS;
  c->max_tries = opts->max_tries > 0 ? opts->max_tries : CCM_KUBE_MAX_TRIES;
  c->backoff_base_ms = opts->backoff_base_ms != 0 ? opts->backoff_base_ms
                                                  : CCM_KUBE_BACKOFF_BASE_MS;
  c->backoff_cap_ms = opts->backoff_cap_ms != 0 ? opts->backoff_cap_ms
                                                : CCM_KUBE_BACKOFF_CAP_MS;
  c->retry_after_max_ms = opts->retry_after_max_ms != 0
                              ? opts->retry_after_max_ms
                              : CCM_KUBE_RETRY_AFTER_MAX_MS;
  c->jitter = (uint64_t)kc_now_us() ^ ((uint64_t)getpid() << 32) ^
              (uint64_t)(uintptr_t)c;
  if (c->jitter == 0)
    c->jitter = 88172645463325252ULL;
  limiter_init(&c->limiter,
               opts->qps > 0 ? opts->qps
                             : opts->qps < 0 ? 0 : CCM_LIMITER_DEFAULT_QPS,
               opts->burst > 0 ? opts->burst : CCM_LIMITER_DEFAULT_BURST,
               NULL, NULL);
  c->share = curl_share_init();
  if (c->user_agent == NULL || c->share == NULL ||
      (c->conn.token != NULL && c->token == NULL)) {
    kc_msg(err, errlen, "out of memory");
    goto fail_all;
  }
  curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, kc_share_lock);
  curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, kc_share_unlock);
  curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
  curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  log_msg(CCM_LOG_INFO, CCM_KUBE_LOG, "API server %s (from %s)%s",
          c->conn.server, c->conn.source,
          c->conn.insecure ? ", TLS verification OFF" : "");
  *out = c;
  return 0;
fail_all:
  if (c->share != NULL)
    curl_share_cleanup(c->share);
  limiter_destroy(&c->limiter);
  mem_free(c->user_agent);
  mem_free(c->token);
fail_conn:
  kube_conn_clear(&c->conn);
fail_locks:
  for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_destroy(&c->share_lock[i]);
  curl_pool_destroy(&c->pool);
  pthread_mutex_destroy(&c->lock);
fail:
  mem_free(c);
  if (global)
    http_global_cleanup();
  return -1;
}

void kube_client_free(struct kube_client *c)
{
  int j;

  if (c == NULL)
    return;
  curl_pool_destroy(&c->pool);
  curl_share_cleanup(c->share);
  limiter_destroy(&c->limiter);
  mem_free(c->user_agent);
  mem_free(c->token);
  kube_conn_clear(&c->conn);
  for (j = 0; j < CURL_LOCK_DATA_LAST; j++)
    pthread_mutex_destroy(&c->share_lock[j]);
  pthread_mutex_destroy(&c->lock);
  mem_free(c);
  http_global_cleanup();
}

const char *kube_client_server(const struct kube_client *c)
{
  return c->conn.server;
}

const char *kube_client_namespace(const struct kube_client *c)
{
  return c->conn.ns;
}
