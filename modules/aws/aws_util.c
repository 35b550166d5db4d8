/*
 * aws_util.c: small helpers of the aws module: a growable text buffer and
 * the Query parameter list with its form encoding. All memory comes from
 * the host allocator; nothing here does I/O.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aws.h"

static bool buf_reserve(struct aws_buf *b, size_t extra) {
  size_t need = b->len + extra + 1, cap;
  char *p;

  if (b->oom)
    return false;
  if (need <= b->cap)
    return true;
  cap = b->cap ? b->cap : 128;
  while (cap < need)
    cap *= 2;
  p = b->api->realloc(b->data, cap);
  if (p == NULL) {
    b->oom = true;
    return false;
  }
  b->data = p;
  b->cap = cap;
  return true;
}

void aws_buf_init(struct aws_buf *b, const struct ccm_host_api *api) {
  memset(b, 0, sizeof(*b));
  b->api = api;
}

void aws_buf_add(struct aws_buf *b, const char *s, size_t n) {
  if (!buf_reserve(b, n))
    return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void aws_buf_adds(struct aws_buf *b, const char *s) {
  aws_buf_add(b, s, strlen(s));
}

void aws_buf_addf(struct aws_buf *b, const char *fmt, ...) {
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !buf_reserve(b, (size_t)n)) {
    b->oom = true;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

static bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
         c == '~';
}

void aws_buf_add_uri(struct aws_buf *b, const char *s, size_t n,
                     bool keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c) || (keep_slash && c == '/')) {
      aws_buf_add(b, (const char *)&s[i], 1);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      aws_buf_add(b, e, 3);
    }
  }
}

const char *aws_buf_str(struct aws_buf *b) {
  return b->data != NULL ? b->data : "";
}

void aws_buf_free(struct aws_buf *b) {
  if (b->data != NULL)
    b->api->free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->oom = false;
}

/* ---- parameters ---------------------------------------------------------- */

void aws_params_init(struct aws_params *p, const struct ccm_host_api *api) {
  memset(p, 0, sizeof(*p));
  p->api = api;
}

void aws_params_add(struct aws_params *p, const char *name,
                    const char *value) {
  struct aws_param *items;
  char *n, *v;

  if (p->oom)
    return;
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    items = p->api->realloc(p->items, cap * sizeof(*items));
    if (items == NULL) {
      p->oom = true;
      return;
    }
    p->items = items;
    p->cap = cap;
  }
  n = p->api->strdup(name);
  v = p->api->strdup(value != NULL ? value : "");
  if (n == NULL || v == NULL) {
    p->api->free(n);
    p->api->free(v);
    p->oom = true;
    return;
  }
  p->items[p->n].name = n;
  p->items[p->n].value = v;
  p->n++;
}

void aws_params_addf(struct aws_params *p, const char *value,
                     const char *name_fmt, ...) {
  char name[256];
  va_list ap;
  int n;

  va_start(ap, name_fmt);
  n = vsnprintf(name, sizeof(name), name_fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof(name)) {
    p->oom = true; /* never happens with our fixed names */
    return;
  }
  aws_params_add(p, name, value);
}

void aws_params_filter(struct aws_params *p, unsigned *n, const char *name,
                       const char *const *values, size_t n_values) {
  aws_params_addf(p, name, "Filter.%u.Name", *n);
  for (size_t i = 0; i < n_values; i++)
    aws_params_addf(p, values[i], "Filter.%u.Value.%zu", *n, i + 1);
  (*n)++;
}

void aws_params_clear(struct aws_params *p) {
  for (size_t i = 0; i < p->n; i++) {
    p->api->free(p->items[i].name);
    p->api->free(p->items[i].value);
  }
  p->api->free(p->items);
  p->items = NULL;
  p->n = p->cap = 0;
  p->oom = false;
}

void aws_params_encode(const struct aws_params *p, struct aws_buf *out) {
  for (size_t i = 0; i < p->n; i++) {
    if (i > 0)
      aws_buf_add(out, "&", 1);
    aws_buf_add_uri(out, p->items[i].name, strlen(p->items[i].name), false);
    aws_buf_add(out, "=", 1);
    aws_buf_add_uri(out, p->items[i].value, strlen(p->items[i].value),
                    false);
  }
  if (p->oom)
    out->oom = true;
}

int64_t aws_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec;
}
