/*
 * jsonw.h: a small JSON text writer for request bodies the host writes on
 * hot paths (patches), where building a cJSON tree only to print it
 * costs more than the request's own work. It appends to a caller's stack
 * buffer and moves to the heap only when that is full. It does not check
 * structure: the caller writes the commas and brackets.
 */
#ifndef CCM_KUBE_JSONW_H
#define CCM_KUBE_JSONW_H

#include <stdbool.h>
#include <stddef.h>

struct jsonw {
  char *p;      /* the text so far, NUL-terminated */
  size_t len, cap;
  char *stack;  /* the caller's buffer */
  bool oom;
};

void jsonw_init(struct jsonw *w, char *buf, size_t cap);
/* JSON text as is: punctuation, literals, keys known to need no escape. */
void jsonw_raw(struct jsonw *w, const char *text);
/* s as a JSON string, quoted and escaped; NULL writes null. */
void jsonw_str(struct jsonw *w, const char *s);
/* lead as is, then s as a JSON string: jsonw_pair(w, ",\"name\":", name). */
void jsonw_pair(struct jsonw *w, const char *lead, const char *s);
/* False after an allocation failed; the text is then incomplete. */
bool jsonw_ok(const struct jsonw *w);
void jsonw_free(struct jsonw *w);

#endif
