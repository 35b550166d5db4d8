/*
 * http.c: the HTTP client behind ccm_host_api.http_do, on libcurl easy
 * handles: a per-client pool (connection reuse), TLS and proxy settings, a
 * token-bucket rate limit, per-provider metrics, redacted debug logging and
 * fault injection. No lock is ever held across the network, and no secret
 * header, body or query value is ever logged.
 */
#include "modules/http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/curl_pool.h"
#include "util/log.h"
#include "util/mem.h"

#define CCM_HTTP_BODY_MAX (64u << 20)     /* response body bytes */
#define CCM_HTTP_HEADERS_MAX 256          /* response headers kept */
#define CCM_HTTP_REQ_HEADERS_MAX 128      /* request headers accepted */
#define CCM_HTTP_DEFAULT_TIMEOUT_MS 30000
#define CCM_HTTP_STEP_MS 10               /* sleep granularity when waiting */
#define CCM_HTTP_URL_LOG_MAX 1024

/* ---- metrics (global, survive clients) ----------------------------------- */

enum { HTTP_M_GET, HTTP_M_POST, HTTP_M_PUT, HTTP_M_DELETE, HTTP_M_PATCH,
       HTTP_M_HEAD, HTTP_M_OTHER, HTTP_N_METHODS };
static const char *const http_method_names[HTTP_N_METHODS] = {
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OTHER"};

enum { HTTP_C_1XX, HTTP_C_2XX, HTTP_C_3XX, HTTP_C_4XX, HTTP_C_5XX,
       HTTP_C_ERROR, HTTP_N_CLASSES };
static const char *const http_class_names[HTTP_N_CLASSES] = {
    "1xx", "2xx", "3xx", "4xx", "5xx", "error"};

static const double http_buckets[] = {.005, .01, .025, .05, .1, .25,
                                      .5,   1,   2.5,  5,   10};
#define HTTP_N_BUCKETS (sizeof http_buckets / sizeof http_buckets[0])

struct http_metrics {
  struct http_metrics *next;
  char *owner;
  long clients; /* live clients pointing here */
  uint64_t requests[HTTP_N_METHODS][HTTP_N_CLASSES];
  uint64_t buckets[HTTP_N_BUCKETS + 1]; /* per bucket, not cumulative */
  uint64_t count;
  double sum;
  uint64_t throttled;
};

static pthread_mutex_t http_metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct http_metrics *http_metrics_head;

static pthread_mutex_t http_global_lock = PTHREAD_MUTEX_INITIALIZER;
static long http_global_refs;

/* ---- client and response --------------------------------------------------- */

struct http_fault_entry {
  char *url_part;
  uint32_t latency_ms;
  long status;
  char *body;
  int count;
};

struct http_client {
  char *owner;
  char *ca_file;
  char *proxy;
  bool insecure;
  double qps;
  double burst;
  uint32_t timeout_ms;

  struct curl_pool pool; /* idle handles: connections are reused */
  pthread_mutex_t lock; /* bucket and faults; never across I/O */
  double tokens;
  int64_t refill_us;
  struct http_fault_entry *faults;
  size_t n_faults;

  struct http_metrics *metrics;
};

struct http_header_kv {
  char *name;
  char *value;
};

struct ccm_http_response {
  long status;
  char *body;
  size_t len;
  size_t cap;
  bool too_large;
  struct http_header_kv *headers;
  size_t n_headers;
};

/* ---- small helpers --------------------------------------------------------- */

static int64_t http_now_us(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void http_sleep_ms(int64_t ms)
{
  struct timespec ts;

  if (ms <= 0)
    return;
  ts.tv_sec = (time_t)(ms / 1000);
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static int64_t http_remaining_ms(const struct ccm_call *call)
{
  return host_api()->call_remaining_ms(call);
}

static bool http_cancelled(const struct ccm_call *call)
{
  return host_api()->call_cancelled(call);
}

static bool http_has_ci(const char *hay, const char *needle)
{
  size_t n = strlen(needle);

  for (; *hay; hay++) {
    if (strncasecmp(hay, needle, n) == 0)
      return true;
  }
  return false;
}

/* Header names whose values are credentials. */
static bool http_header_secret(const char *name, size_t len)
{
  static const char *const exact[] = {"Authorization", "Proxy-Authorization",
                                      "X-Auth-Token", "X-Amz-Security-Token",
                                      "Cookie", "Set-Cookie"};
  static const char *const parts[] = {"auth", "token", "secret", "password",
                                      "cookie", "api-key", "apikey"};
  char buf[128];
  size_t i;

  for (i = 0; i < sizeof exact / sizeof exact[0]; i++) {
    if (strlen(exact[i]) == len && strncasecmp(name, exact[i], len) == 0)
      return true;
  }
  if (len >= sizeof buf)
    return true;
  memcpy(buf, name, len);
  buf[len] = '\0';
  for (i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    if (http_has_ci(buf, parts[i]))
      return true;
  }
  return false;
}

/* Query keys whose values are credentials. */
static bool http_query_secret(const char *key, size_t len)
{
  static const char *const exact[] = {"Signature", "X-Amz-Signature",
                                      "X-Amz-Credential",
                                      "X-Amz-Security-Token", "access_token",
                                      "token", "password"};
  static const char *const parts[] = {"signature", "credential", "token",
                                      "password", "secret", "apikey",
                                      "api_key"};
  char buf[128];
  size_t i;

  for (i = 0; i < sizeof exact / sizeof exact[0]; i++) {
    if (strlen(exact[i]) == len && strncasecmp(key, exact[i], len) == 0)
      return true;
  }
  if (len >= sizeof buf)
    return true;
  memcpy(buf, key, len);
  buf[len] = '\0';
  for (i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    if (http_has_ci(buf, parts[i]))
      return true;
  }
  return false;
}

struct http_out {
  char *buf;
  size_t cap;
  size_t len;
};

static void http_out_put(struct http_out *o, const char *s, size_t n)
{
  if (o->len + 1 >= o->cap)
    return;
  if (n > o->cap - 1 - o->len)
    n = o->cap - 1 - o->len;
  memcpy(o->buf + o->len, s, n);
  o->len += n;
  o->buf[o->len] = '\0';
}

static void http_out_str(struct http_out *o, const char *s)
{
  http_out_put(o, s, strlen(s));
}

/*
 * The URL as it may be logged: userinfo dropped, and the value of every
 * query key that looks like a credential replaced by [REDACTED].
 */
static void http_redact_url(const char *url, char *out, size_t cap)
{
  struct http_out o = {out, cap, 0};
  const char *p = url, *scheme_end, *auth_end, *at, *q, *end;

  out[0] = '\0';
  scheme_end = strstr(p, "://");
  if (scheme_end != NULL) {
    scheme_end += 3;
    http_out_put(&o, p, (size_t)(scheme_end - p));
    p = scheme_end;
    auth_end = p + strcspn(p, "/?#");
    at = memchr(p, '@', (size_t)(auth_end - p));
    if (at != NULL) {
      http_out_str(&o, "[REDACTED]@");
      p = at + 1;
    }
  }
  q = strchr(p, '?');
  if (q == NULL) {
    http_out_str(&o, p);
    return;
  }
  http_out_put(&o, p, (size_t)(q - p) + 1);
  p = q + 1;
  end = p + strcspn(p, "#");
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *pe = amp ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(pe - p));

    if (eq != NULL && http_query_secret(p, (size_t)(eq - p))) {
      http_out_put(&o, p, (size_t)(eq - p) + 1);
      http_out_str(&o, "[REDACTED]");
    } else {
      http_out_put(&o, p, (size_t)(pe - p));
    }
    if (amp == NULL)
      break;
    http_out_str(&o, "&");
    p = amp + 1;
  }
  http_out_str(&o, end);
}

static int http_method_index(const char *m)
{
  int i;

  for (i = 0; i < HTTP_M_OTHER; i++) {
    if (strcmp(m, http_method_names[i]) == 0)
      return i;
  }
  return HTTP_M_OTHER;
}

static int http_class_index(long status)
{
  if (status >= 100 && status < 600)
    return (int)(status / 100) - 1;
  return HTTP_C_ERROR;
}

static void http_metrics_record(struct http_metrics *m, const char *method,
                                long status, int64_t elapsed_us)
{
  double secs = (double)elapsed_us / 1e6;
  size_t b = 0;

  while (b < HTTP_N_BUCKETS && secs > http_buckets[b])
    b++;
  pthread_mutex_lock(&http_metrics_lock);
  m->requests[http_method_index(method)][http_class_index(status)]++;
  m->buckets[b]++;
  m->count++;
  m->sum += secs;
  pthread_mutex_unlock(&http_metrics_lock);
}

static struct http_metrics *http_metrics_attach(const char *owner)
{
  struct http_metrics *m;

  pthread_mutex_lock(&http_metrics_lock);
  for (m = http_metrics_head; m != NULL; m = m->next) {
    if (strcmp(m->owner, owner) == 0)
      break;
  }
  if (m == NULL) {
    m = mem_calloc(1, sizeof *m);
    if (m != NULL) {
      m->owner = mem_strdup(owner);
      if (m->owner == NULL) {
        mem_free(m);
        m = NULL;
      } else {
        m->next = http_metrics_head;
        http_metrics_head = m;
      }
    }
  }
  if (m != NULL)
    m->clients++;
  pthread_mutex_unlock(&http_metrics_lock);
  return m;
}

static void http_metrics_detach(struct http_metrics *m)
{
  if (m == NULL)
    return;
  pthread_mutex_lock(&http_metrics_lock);
  m->clients--;
  pthread_mutex_unlock(&http_metrics_lock);
}

/* Prometheus label values: escape backslash, quote and newline. */
static void http_label(FILE *out, const char *s)
{
  for (; *s; s++) {
    if (*s == '\\' || *s == '"')
      fprintf(out, "\\%c", *s);
    else if (*s == '\n')
      fputs("\\n", out);
    else
      fputc(*s, out);
  }
}

void http_metrics_write(FILE *out)
{
  struct http_metrics *m;
  size_t i, j;

  pthread_mutex_lock(&http_metrics_lock);
  fputs("# HELP ccm_provider_http_requests_total HTTP requests made by "
        "provider modules, by method and status class.\n"
        "# TYPE ccm_provider_http_requests_total counter\n",
        out);
  for (m = http_metrics_head; m != NULL; m = m->next) {
    for (i = 0; i < HTTP_N_METHODS; i++) {
      for (j = 0; j < HTTP_N_CLASSES; j++) {
        if (m->requests[i][j] == 0)
          continue;
        fputs("ccm_provider_http_requests_total{provider=\"", out);
        http_label(out, m->owner);
        fprintf(out, "\",method=\"%s\",code=\"%s\"} %llu\n",
                http_method_names[i], http_class_names[j],
                (unsigned long long)m->requests[i][j]);
      }
    }
  }
  fputs("# HELP ccm_provider_http_request_duration_seconds HTTP request "
        "latency of provider modules.\n"
        "# TYPE ccm_provider_http_request_duration_seconds histogram\n",
        out);
  for (m = http_metrics_head; m != NULL; m = m->next) {
    uint64_t cum = 0;

    for (i = 0; i <= HTTP_N_BUCKETS; i++) {
      cum += m->buckets[i];
      fputs("ccm_provider_http_request_duration_seconds_bucket{provider=\"",
            out);
      http_label(out, m->owner);
      if (i < HTTP_N_BUCKETS)
        fprintf(out, "\",le=\"%g\"} %llu\n", http_buckets[i],
                (unsigned long long)cum);
      else
        fprintf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    fputs("ccm_provider_http_request_duration_seconds_sum{provider=\"", out);
    http_label(out, m->owner);
    fprintf(out, "\"} %.6f\n", m->sum);
    fputs("ccm_provider_http_request_duration_seconds_count{provider=\"", out);
    http_label(out, m->owner);
    fprintf(out, "\"} %llu\n", (unsigned long long)m->count);
  }
  fputs("# HELP ccm_provider_http_throttled_total Requests refused by the "
        "host rate limit before reaching the network.\n"
        "# TYPE ccm_provider_http_throttled_total counter\n",
        out);
  for (m = http_metrics_head; m != NULL; m = m->next) {
    fputs("ccm_provider_http_throttled_total{provider=\"", out);
    http_label(out, m->owner);
    fprintf(out, "\"} %llu\n", (unsigned long long)m->throttled);
  }
  pthread_mutex_unlock(&http_metrics_lock);
}

/* ---- global init ------------------------------------------------------------- */

int http_global_init(void)
{
  int rc = 0;

  pthread_mutex_lock(&http_global_lock);
  if (http_global_refs == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
    rc = -1;
  if (rc == 0)
    http_global_refs++;
  pthread_mutex_unlock(&http_global_lock);
  return rc;
}

void http_global_cleanup(void)
{
  struct http_metrics **pp, *m;

  pthread_mutex_lock(&http_global_lock);
  if (http_global_refs > 0 && --http_global_refs == 0) {
    curl_global_cleanup();
    /* Counters of providers with no live client go with the process. */
    pthread_mutex_lock(&http_metrics_lock);
    pp = &http_metrics_head;
    while (*pp != NULL) {
      m = *pp;
      if (m->clients > 0) {
        pp = &m->next;
        continue;
      }
      *pp = m->next;
      mem_free(m->owner);
      mem_free(m);
    }
    pthread_mutex_unlock(&http_metrics_lock);
  }
  pthread_mutex_unlock(&http_global_lock);
}

/* ---- client ----------------------------------------------------------------- */

static bool http_copy_opt(const char *s, char **out)
{
  *out = NULL;
  if (s == NULL || s[0] == '\0')
    return true;
  *out = mem_strdup(s);
  return *out != NULL;
}

struct http_client *http_client_new(const char *owner,
                                    const struct http_settings *settings,
                                    char *err, size_t errlen)
{
  struct http_client *c;
  bool lock_ready = false;

  if (owner == NULL || owner[0] == '\0') {
    snprintf(err, errlen, "http client needs an owner name");
    return NULL;
  }
  c = mem_calloc(1, sizeof *c);
  if (c == NULL)
    goto oom;
  if (pthread_mutex_init(&c->lock, NULL) != 0) {
    snprintf(err, errlen, "http client for %s: mutex init failed", owner);
    goto fail;
  }
  lock_ready = true;
  curl_pool_init(&c->pool);
  c->owner = mem_strdup(owner);
  if (c->owner == NULL)
    goto oom;
  c->timeout_ms = CCM_HTTP_DEFAULT_TIMEOUT_MS;
  c->burst = 1;
  if (settings != NULL) {
    if (!http_copy_opt(settings->ca_file, &c->ca_file) ||
        !http_copy_opt(settings->proxy, &c->proxy))
      goto oom;
    c->insecure = settings->insecure_skip_verify;
    c->qps = settings->qps > 0 ? settings->qps : 0;
    c->burst = settings->burst >= 1 ? settings->burst : 1;
    if (settings->timeout_ms > 0)
      c->timeout_ms = settings->timeout_ms;
  }
  c->tokens = c->burst;
  c->refill_us = http_now_us();
  c->metrics = http_metrics_attach(owner);
  if (c->metrics == NULL)
    goto oom;
  if (c->insecure)
    log_msg(CCM_LOG_WARN, "http",
            "provider %s: TLS verification is off (insecure_skip_verify)",
            owner);
  return c;

oom:
  snprintf(err, errlen, "out of memory creating the http client for %s",
           owner);
fail:
  if (c != NULL) {
    if (lock_ready) {
      curl_pool_destroy(&c->pool);
      pthread_mutex_destroy(&c->lock);
    }
    mem_free(c->owner);
    mem_free(c->ca_file);
    mem_free(c->proxy);
    mem_free(c);
  }
  return NULL;
}

void http_faults_clear(struct http_client *c)
{
  size_t i;

  if (c == NULL)
    return;
  pthread_mutex_lock(&c->lock);
  for (i = 0; i < c->n_faults; i++) {
    mem_free(c->faults[i].url_part);
    mem_free(c->faults[i].body);
  }
  mem_free(c->faults);
  c->faults = NULL;
  c->n_faults = 0;
  pthread_mutex_unlock(&c->lock);
}

void http_client_free(struct http_client *c)
{
  if (c == NULL)
    return;
  http_faults_clear(c);
  curl_pool_destroy(&c->pool);
  http_metrics_detach(c->metrics);
  pthread_mutex_destroy(&c->lock);
  mem_free(c->owner);
  mem_free(c->ca_file);
  mem_free(c->proxy);
  mem_free(c);
}

int http_fault_add(struct http_client *c, const struct http_fault *f)
{
  struct http_fault_entry e = {0};
  struct http_fault_entry *items;

  if (c == NULL || f == NULL || f->count == 0 ||
      (f->status != 0 && (f->status < 100 || f->status > 599)))
    return CCM_ERR_INVALID;
  e.latency_ms = f->latency_ms;
  e.status = f->status;
  e.count = f->count;
  e.url_part = mem_strdup(f->url_part ? f->url_part : "");
  e.body = mem_strdup(f->body ? f->body : "");
  if (e.url_part == NULL || e.body == NULL)
    goto fail;
  pthread_mutex_lock(&c->lock);
  items = mem_realloc(c->faults, (c->n_faults + 1) * sizeof *items);
  if (items == NULL) {
    pthread_mutex_unlock(&c->lock);
    goto fail;
  }
  c->faults = items;
  items[c->n_faults++] = e;
  pthread_mutex_unlock(&c->lock);
  return CCM_OK;

fail:
  mem_free(e.url_part);
  mem_free(e.body);
  return CCM_ERR_INTERNAL;
}

/* ---- rate limit ------------------------------------------------------------- */

static int http_rate_wait(struct http_client *c, struct ccm_call *call)
{
  if (c->qps <= 0)
    return CCM_OK;
  for (;;) {
    int64_t now = http_now_us(), need_ms, rem;

    pthread_mutex_lock(&c->lock);
    c->tokens += (double)(now - c->refill_us) / 1e6 * c->qps;
    if (c->tokens > c->burst)
      c->tokens = c->burst;
    c->refill_us = now;
    if (c->tokens >= 1.0) {
      c->tokens -= 1.0;
      pthread_mutex_unlock(&c->lock);
      return CCM_OK;
    }
    need_ms = (int64_t)((1.0 - c->tokens) / c->qps * 1000.0) + 1;
    pthread_mutex_unlock(&c->lock);

    rem = http_remaining_ms(call);
    if (http_cancelled(call) || need_ms > rem)
      return CCM_ERR_THROTTLED;
    http_sleep_ms(need_ms < CCM_HTTP_STEP_MS ? need_ms : CCM_HTTP_STEP_MS);
  }
}

/* ---- faults ------------------------------------------------------------------ */

struct http_fault_hit {
  uint32_t latency_ms;
  long status;
  char *body;
};

/* Take one use of the first matching fault; false when none matches. */
static bool http_fault_take(struct http_client *c, const char *url,
                            struct http_fault_hit *hit, bool *oom)
{
  size_t i;
  bool found = false;

  *oom = false;
  pthread_mutex_lock(&c->lock);
  for (i = 0; i < c->n_faults; i++) {
    struct http_fault_entry *e = &c->faults[i];

    if (e->count == 0 || strstr(url, e->url_part) == NULL)
      continue;
    if (e->count > 0)
      e->count--;
    hit->latency_ms = e->latency_ms;
    hit->status = e->status;
    hit->body = mem_strdup(e->body);
    *oom = hit->body == NULL;
    found = true;
    break;
  }
  pthread_mutex_unlock(&c->lock);
  return found;
}

/* ---- responses ------------------------------------------------------------- */

static void http_response_free(struct ccm_http_response *r)
{
  size_t i;

  if (r == NULL)
    return;
  for (i = 0; i < r->n_headers; i++) {
    mem_free(r->headers[i].name);
    mem_free(r->headers[i].value);
  }
  mem_free(r->headers);
  mem_free(r->body);
  mem_free(r);
}

static void http_headers_reset(struct ccm_http_response *r)
{
  size_t i;

  for (i = 0; i < r->n_headers; i++) {
    mem_free(r->headers[i].name);
    mem_free(r->headers[i].value);
  }
  r->n_headers = 0;
}

static bool http_body_append(struct ccm_http_response *r, const char *data,
                             size_t n)
{
  if (r->len + n > CCM_HTTP_BODY_MAX) {
    r->too_large = true;
    return false;
  }
  if (r->len + n + 1 > r->cap) {
    size_t cap = r->cap ? r->cap : 1024;
    char *b;

    while (cap < r->len + n + 1)
      cap *= 2;
    b = mem_realloc(r->body, cap);
    if (b == NULL)
      return false;
    r->body = b;
    r->cap = cap;
  }
  memcpy(r->body + r->len, data, n);
  r->len += n;
  r->body[r->len] = '\0';
  return true;
}

static size_t http_write_cb(char *data, size_t size, size_t n, void *ud)
{
  return http_body_append(ud, data, size * n) ? size * n : 0;
}

static size_t http_header_cb(char *data, size_t size, size_t n, void *ud)
{
  struct ccm_http_response *r = ud;
  size_t len = size * n, nlen, vlen;
  const char *colon, *v;
  struct http_header_kv *items;
  char *name, *value;

  /* A new status line (after 100-continue or a redirect) starts over. */
  if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
    http_headers_reset(r);
    return len;
  }
  colon = memchr(data, ':', len);
  if (colon == NULL || colon == data || data[0] == ' ' || data[0] == '\t' ||
      r->n_headers >= CCM_HTTP_HEADERS_MAX)
    return len;
  nlen = (size_t)(colon - data);
  v = colon + 1;
  vlen = len - nlen - 1;
  while (vlen > 0 && (*v == ' ' || *v == '\t')) {
    v++;
    vlen--;
  }
  while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
                      v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
    vlen--;
  items = mem_realloc(r->headers, (r->n_headers + 1) * sizeof *items);
  if (items == NULL)
    return 0;
  r->headers = items;
  name = mem_strndup(data, nlen);
  value = mem_strndup(v, vlen);
  if (name == NULL || value == NULL) {
    mem_free(name);
    mem_free(value);
    return 0;
  }
  items[r->n_headers].name = name;
  items[r->n_headers].value = value;
  r->n_headers++;
  return len;
}

long http_status(const struct ccm_http_response *resp)
{
  return resp ? resp->status : 0;
}

const char *http_body(const struct ccm_http_response *resp, size_t *len)
{
  if (len != NULL)
    *len = resp ? resp->len : 0;
  if (resp == NULL || resp->body == NULL)
    return "";
  return resp->body;
}

const char *http_header(const struct ccm_http_response *resp, const char *name)
{
  size_t i;

  if (resp == NULL || name == NULL)
    return NULL;
  for (i = 0; i < resp->n_headers; i++) {
    if (strcasecmp(resp->headers[i].name, name) == 0)
      return resp->headers[i].value;
  }
  return NULL;
}

void http_release(struct ccm_http_response *resp)
{
  http_response_free(resp);
}

/* ---- the request ------------------------------------------------------------- */

static bool http_method_valid(const char *m)
{
  size_t i;

  if (m == NULL || m[0] == '\0')
    return false;
  for (i = 0; m[i]; i++) {
    if (i >= 16 || m[i] < 'A' || m[i] > 'Z')
      return false;
  }
  return true;
}

/* "Name: value" with a token name and no CR/LF (header injection). */
static bool http_header_valid(const char *h)
{
  const char *colon = strchr(h, ':');
  const char *p;

  if (colon == NULL || colon == h)
    return false;
  for (p = h; p < colon; p++) {
    if (*p <= ' ' || *p == 0x7f)
      return false;
  }
  return strpbrk(h, "\r\n") == NULL;
}

static bool http_scheme_ok(const char *url)
{
  return strncasecmp(url, "http://", 7) == 0 ||
         strncasecmp(url, "https://", 8) == 0;
}

static int xfer_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                   curl_off_t un)
{
  (void)dt;
  (void)dn;
  (void)ut;
  (void)un;
  return http_cancelled(ud) ? 1 : 0;
}


static int http_curl_status(CURLcode cc)
{
  switch (cc) {
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_BAD_FUNCTION_ARGUMENT:
    return CCM_ERR_INVALID;
  case CURLE_OUT_OF_MEMORY:
  case CURLE_WRITE_ERROR:
    return CCM_ERR_INTERNAL;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
    /* A certificate that does not verify will not verify on the next try:
     * no fixed-delay retry; the caller backs off exponentially. */
    return CCM_ERR_INTERNAL;
  default:
    /* Timeouts, refused, reset, handshake and DNS trouble: worth another
     * try. */
    return CCM_ERR_RETRY;
  }
}

struct http_exchange {
  struct http_client *c;
  struct ccm_call *call;
  const struct ccm_http_request *req;
  const char *log_url;
  long timeout_ms;
};

static int http_perform(struct http_exchange *x, struct ccm_http_response *r)
{
  const struct ccm_http_request *req = x->req;
  struct http_client *c = x->c;
  struct curl_slist *hdrs = NULL, *tmp;
  char errbuf[CURL_ERROR_SIZE];
  CURLcode cc;
  CURL *h;
  size_t i;
  int rc = CCM_ERR_INTERNAL;

  h = curl_pool_take(&c->pool);
  if (h == NULL)
    return CCM_ERR_INTERNAL;
  /* reset keeps the live connections and caches of the handle. */
  curl_easy_reset(h);
  errbuf[0] = '\0';
  for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
    tmp = curl_slist_append(hdrs, req->headers[i]);
    if (tmp == NULL)
      goto out;
    hdrs = tmp;
  }
  /* No 100-continue round trip: servers and doubles need not support it. */
  tmp = curl_slist_append(hdrs, "Expect:");
  if (tmp == NULL)
    goto out;
  hdrs = tmp;

  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_URL, req->url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, x->timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, x->timeout_ms);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "ccm-host/" CCM_VERSION);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write_cb);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, http_header_cb);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xfer_cb);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, x->call);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
  if (c->ca_file != NULL)
    curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
  if (c->proxy != NULL)
    curl_easy_setopt(h, CURLOPT_PROXY, c->proxy);

  if (strcmp(req->method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req->body != NULL || strcmp(req->method, "POST") == 0) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)(req->body ? req->body_len : 0));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    if (strcmp(req->method, "POST") != 0)
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
  } else if (strcmp(req->method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
  }

  cc = curl_easy_perform(h);
  if (cc == CURLE_OK) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    rc = CCM_OK;
  } else if (r->too_large) {
    host_api()->call_set_error(x->call, "%s %s: response body over %u bytes",
                               req->method, x->log_url, CCM_HTTP_BODY_MAX);
    rc = CCM_ERR_INTERNAL;
  } else if (cc == CURLE_ABORTED_BY_CALLBACK) {
    host_api()->call_set_error(x->call, "%s %s: cancelled", req->method,
                               x->log_url);
    rc = CCM_ERR_RETRY;
  } else {
    host_api()->call_set_error(x->call, "%s %s: %s", req->method, x->log_url,
                               errbuf[0] ? errbuf : curl_easy_strerror(cc));
    rc = http_curl_status(cc);
  }
out:
  /* The handle must not keep pointers into this call's memory. */
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
  curl_slist_free_all(hdrs);
  curl_pool_give(&c->pool, h);
  return rc;
}

/* Injected latency then a synthetic status, or a dropped connection. */
static int http_fault_run(struct http_exchange *x, struct http_fault_hit *hit,
                          struct ccm_http_response *r)
{
  int64_t now = http_now_us();
  int64_t end = now + (int64_t)hit->latency_ms * 1000;
  int64_t give_up = now + (int64_t)x->timeout_ms * 1000;
  const char *method = x->req->method;

  /* Injected latency is bounded by the request timeout, itself bounded by
   * the call deadline, as a slow server would be. */
  for (;;) {
    int64_t step;

    now = http_now_us();
    if (now >= end)
      break;
    step = (end - now) / 1000 + 1;

    if (http_cancelled(x->call)) {
      host_api()->call_set_error(x->call, "%s %s: cancelled", method,
                                 x->log_url);
      return CCM_ERR_RETRY;
    }
    if (now >= give_up) {
      host_api()->call_set_error(x->call,
                                 "%s %s: timed out (injected latency)",
                                 method, x->log_url);
      return CCM_ERR_RETRY;
    }
    http_sleep_ms(step < CCM_HTTP_STEP_MS ? step : CCM_HTTP_STEP_MS);
  }
  if (hit->status == 0) {
    host_api()->call_set_error(x->call,
                               "%s %s: connection dropped (injected fault)",
                               method, x->log_url);
    return CCM_ERR_RETRY;
  }
  r->status = hit->status;
  r->body = hit->body;
  r->len = strlen(hit->body);
  r->cap = r->len + 1;
  hit->body = NULL;
  return CCM_OK;
}

static const char *http_rc_name(int rc)
{
  switch (rc) {
  case CCM_ERR_RETRY: return "error (retry)";
  case CCM_ERR_INVALID: return "error (invalid)";
  case CCM_ERR_THROTTLED: return "error (throttled)";
  default: return "error (internal)";
  }
}

/* "Name: value, Other: [REDACTED]" for the debug line. */
static void http_headers_for_log(const char *const *headers, char *out,
                                 size_t cap)
{
  struct http_out o = {out, cap, 0};
  size_t i;

  out[0] = '\0';
  for (i = 0; headers != NULL && headers[i] != NULL; i++) {
    const char *colon = strchr(headers[i], ':');
    size_t nlen = colon ? (size_t)(colon - headers[i]) : strlen(headers[i]);

    if (i > 0)
      http_out_str(&o, ", ");
    http_out_put(&o, headers[i], nlen);
    if (colon == NULL)
      continue;
    if (http_header_secret(headers[i], nlen))
      http_out_str(&o, ": [REDACTED]");
    else
      http_out_str(&o, colon);
  }
}

int http_do(struct ccm_host *host, struct ccm_call *call,
            const struct ccm_http_request *req,
            struct ccm_http_response **out)
{
  char log_url[CCM_HTTP_URL_LOG_MAX];
  struct http_exchange x = {0};
  struct http_fault_hit hit = {0};
  struct ccm_http_response *r = NULL;
  struct http_client *c;
  const char *prefix;
  int64_t start, elapsed, rem;
  bool faulted, oom;
  size_t i;
  int rc;

  if (out != NULL)
    *out = NULL;
  if (host == NULL || host->http == NULL || req == NULL || out == NULL)
    return CCM_ERR_INVALID;
  c = host->http;
  prefix = host->log_prefix ? host->log_prefix : "provider";
  if (atomic_load(&host->closing)) {
    log_msg(CCM_LOG_ERROR, prefix, "http_do called during unload; refused");
    return CCM_ERR_INTERNAL;
  }
  if (req->struct_size <
          offsetof(struct ccm_http_request, body_is_secret) + sizeof(bool) ||
      !http_method_valid(req->method) || req->url == NULL ||
      req->url[0] == '\0' || (req->body == NULL && req->body_len > 0)) {
    host_api()->call_set_error(call, "http request: invalid method, url or "
                                     "body");
    return CCM_ERR_INVALID;
  }
  http_redact_url(req->url, log_url, sizeof log_url);
  if (!http_scheme_ok(req->url)) {
    host_api()->call_set_error(call, "%s %s: only http and https are allowed",
                               req->method, log_url);
    return CCM_ERR_INVALID;
  }
  for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
    if (i >= CCM_HTTP_REQ_HEADERS_MAX || !http_header_valid(req->headers[i])) {
      host_api()->call_set_error(call, "%s %s: malformed request header %zu",
                                 req->method, log_url, i);
      return CCM_ERR_INVALID;
    }
  }
  if (http_cancelled(call)) {
    host_api()->call_set_error(call, "%s %s: cancelled", req->method, log_url);
    return CCM_ERR_RETRY;
  }
  rem = http_remaining_ms(call);
  if (rem <= 0) {
    host_api()->call_set_error(call, "%s %s: deadline passed before the "
                                     "request", req->method, log_url);
    return CCM_ERR_RETRY;
  }
  rc = http_rate_wait(c, call);
  if (rc != CCM_OK) {
    pthread_mutex_lock(&http_metrics_lock);
    c->metrics->throttled++;
    pthread_mutex_unlock(&http_metrics_lock);
    host_api()->call_set_error(call, "%s %s: rate limit (%g/s) would pass "
                               "the call deadline", req->method, log_url,
                               c->qps);
    log_msg(CCM_LOG_DEBUG, prefix, "%s %s -> throttled by the host rate limit",
            req->method, log_url);
    return CCM_ERR_THROTTLED;
  }

  x.c = c;
  x.call = call;
  x.req = req;
  x.log_url = log_url;
  x.timeout_ms = req->timeout_ms ? req->timeout_ms : c->timeout_ms;
  rem = http_remaining_ms(call);
  if (rem < x.timeout_ms)
    x.timeout_ms = rem > 0 ? (long)rem : 1;

  r = mem_calloc(1, sizeof *r);
  if (r == NULL)
    return CCM_ERR_INTERNAL;
  start = http_now_us();
  faulted = http_fault_take(c, req->url, &hit, &oom);
  if (oom)
    rc = CCM_ERR_INTERNAL;
  else if (faulted)
    rc = http_fault_run(&x, &hit, r);
  else
    rc = http_perform(&x, r);
  elapsed = http_now_us() - start;
  mem_free(hit.body);
  http_metrics_record(c->metrics, req->method, rc == CCM_OK ? r->status : 0,
                      elapsed);

  if (log_get_level() >= CCM_LOG_DEBUG) {
    char hdrs[1024];

    http_headers_for_log(req->headers, hdrs, sizeof hdrs);
    if (rc == CCM_OK)
      log_msg(CCM_LOG_DEBUG, prefix, "%s %s -> %ld (%lld ms)%s headers=[%s] "
              "body=%zu bytes%s", req->method, log_url, r->status,
              (long long)(elapsed / 1000), faulted ? " injected" : "", hdrs,
              req->body_len, req->body_is_secret ? " (secret)" : "");
    else
      log_msg(CCM_LOG_DEBUG, prefix, "%s %s -> %s (%lld ms)%s "
              "headers=[%s]", req->method, log_url, http_rc_name(rc),
              (long long)(elapsed / 1000), faulted ? " injected" : "", hdrs);
  }
  if (rc != CCM_OK) {
    http_response_free(r);
    return rc;
  }
  *out = r;
  return CCM_OK;
}
