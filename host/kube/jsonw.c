/*
 * jsonw.c: the JSON text writer of jsonw.h. Strings are escaped as RFC
 * 8259 requires (quote, backslash, control characters); other bytes pass
 * through, since every string written here came from JSON or from the
 * host's own constants.
 */
#include "kube/jsonw.h"

#include <string.h>

#include "util/mem.h"

void jsonw_init(struct jsonw *w, char *buf, size_t cap)
{
  w->p = buf;
  w->stack = buf;
  w->len = 0;
  w->cap = cap;
  w->oom = cap == 0;
  if (cap > 0)
    buf[0] = '\0';
}

/* Room for n more bytes and the NUL. */
static bool jw_reserve(struct jsonw *w, size_t n)
{
  size_t cap;
  char *p;

  if (w->oom)
    return false;
  if (w->len + n < w->cap)
    return true;
  cap = w->cap * 2;
  while (cap <= w->len + n)
    cap *= 2;
  p = w->p == w->stack ? mem_alloc(cap) : mem_realloc(w->p, cap);
  if (p == NULL) {
    w->oom = true;
    return false;
  }
  if (w->p == w->stack)
    memcpy(p, w->stack, w->len + 1);
  w->p = p;
  w->cap = cap;
  return true;
}

static void jw_append(struct jsonw *w, const char *s, size_t n)
{
  if (!jw_reserve(w, n))
    return;
  memcpy(w->p + w->len, s, n);
  w->len += n;
  w->p[w->len] = '\0';
}

void jsonw_raw(struct jsonw *w, const char *text)
{
  jw_append(w, text, strlen(text));
}

void jsonw_str(struct jsonw *w, const char *s)
{
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  size_t i, start = 0;

  if (s == NULL) {
    jsonw_raw(w, "null");
    return;
  }
  jw_append(w, "\"", 1);
  for (i = 0; u[i] != '\0'; i++) {
    char esc[6] = {'\\', 0, 0, 0, 0, 0};
    size_t n = 2;

    if (u[i] >= 0x20 && u[i] != '"' && u[i] != '\\')
      continue;
    jw_append(w, s + start, i - start);
    start = i + 1;
    switch (u[i]) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    default:
      esc[1] = 'u';
      esc[2] = '0';
      esc[3] = '0';
      esc[4] = hex[u[i] >> 4];
      esc[5] = hex[u[i] & 0x0f];
      n = 6;
      break;
    }
    jw_append(w, esc, n);
  }
  jw_append(w, s + start, i - start);
  jw_append(w, "\"", 1);
}

void jsonw_pair(struct jsonw *w, const char *lead, const char *s)
{
  jsonw_raw(w, lead);
  jsonw_str(w, s);
}

bool jsonw_ok(const struct jsonw *w)
{
  return !w->oom;
}

void jsonw_free(struct jsonw *w)
{
  if (w->p != w->stack)
    mem_free(w->p);
  w->p = w->stack;
  w->len = 0;
}
