/*
 * metrics.c: the metrics writer registry and the latency histogram
 * (metrics.h). It owns the writer list under one mutex, held while the
 * writers run; it must not know what any writer reports.
 */
#include "server/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "util/mem.h"

struct metrics_writer {
  metrics_writer_fn *fn;
  void *ud;
  struct metrics_writer *next;
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_writer *metrics_head;

const double metrics_latency_bounds[CCM_METRICS_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

int metrics_register(metrics_writer_fn *fn, void *ud)
{
  struct metrics_writer **pp, *w;
  int rc = 0;

  if (!fn)
    return -1;
  pthread_mutex_lock(&metrics_lock);
  for (pp = &metrics_head; *pp; pp = &(*pp)->next)
    if ((*pp)->fn == fn && (*pp)->ud == ud)
      goto out;
  w = mem_calloc(1, sizeof(*w));
  if (!w) {
    rc = -1;
    goto out;
  }
  w->fn = fn;
  w->ud = ud;
  *pp = w; /* the tail: registration order */
out:
  pthread_mutex_unlock(&metrics_lock);
  return rc;
}

void metrics_unregister(metrics_writer_fn *fn, void *ud)
{
  struct metrics_writer **pp, *w;

  pthread_mutex_lock(&metrics_lock);
  for (pp = &metrics_head; *pp; pp = &(*pp)->next) {
    w = *pp;
    if (w->fn == fn && w->ud == ud) {
      *pp = w->next;
      mem_free(w);
      break;
    }
  }
  pthread_mutex_unlock(&metrics_lock);
}

void metrics_write_all(FILE *out)
{
  struct metrics_writer *w;

  pthread_mutex_lock(&metrics_lock);
  for (w = metrics_head; w; w = w->next)
    w->fn(out, w->ud);
  pthread_mutex_unlock(&metrics_lock);
}

void metrics_reset(void)
{
  struct metrics_writer *w;

  pthread_mutex_lock(&metrics_lock);
  while (metrics_head) {
    w = metrics_head;
    metrics_head = w->next;
    mem_free(w);
  }
  pthread_mutex_unlock(&metrics_lock);
}

/* ---- histograms ---- */

void metrics_histogram_observe(struct metrics_histogram *h, double seconds)
{
  size_t i = 0;
  double ns;

  if (!h)
    return;
  if (!(seconds > 0)) /* negative and NaN */
    seconds = 0;
  while (i < CCM_METRICS_BUCKETS && seconds > metrics_latency_bounds[i])
    i++;
  atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
  ns = seconds * 1e9;
  if (ns > 1e18) /* clamp absurd values rather than overflow */
    ns = 1e18;
  atomic_fetch_add_explicit(&h->sum_ns, (uint_fast64_t)ns,
                            memory_order_relaxed);
}

uint64_t metrics_histogram_count(const struct metrics_histogram *h)
{
  uint64_t n = 0;
  size_t i;

  for (i = 0; i <= CCM_METRICS_BUCKETS; i++)
    n += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
  return n;
}

void metrics_histogram_write(FILE *out, const char *name, const char *labels,
                             const struct metrics_histogram *h)
{
  bool has = labels && labels[0];
  const char *sep = has ? "," : "";
  uint64_t cum = 0;
  size_t i;

  if (!has)
    labels = "";
  for (i = 0; i < CCM_METRICS_BUCKETS; i++) {
    cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    fprintf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
            metrics_latency_bounds[i], (unsigned long long)cum);
  }
  /* +Inf and _count from the same reads, so they always agree. */
  cum += atomic_load_explicit(&h->buckets[CCM_METRICS_BUCKETS],
                              memory_order_relaxed);
  fprintf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
          (unsigned long long)cum);
  fprintf(out, "%s_sum%s%s%s %.9g\n", name, has ? "{" : "", labels,
          has ? "}" : "",
          (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) /
              1e9);
  fprintf(out, "%s_count%s%s%s %llu\n", name, has ? "{" : "", labels,
          has ? "}" : "", (unsigned long long)cum);
}

void metrics_write_header(FILE *out, const char *name, const char *type,
                          const char *help)
{
  fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_write_counter(FILE *out, const char *name, const char *help,
                           uint64_t value)
{
  metrics_write_header(out, name, "counter", help);
  fprintf(out, "%s %llu\n", name, (unsigned long long)value);
}

void metrics_write_gauge(FILE *out, const char *name, const char *help,
                         uint64_t value)
{
  metrics_write_header(out, name, "gauge", help);
  fprintf(out, "%s %llu\n", name, (unsigned long long)value);
}

void metrics_write_label_value(FILE *out, const char *value)
{
  const char *p;

  for (p = value ? value : ""; *p; p++) {
    if (*p == '\\')
      fputs("\\\\", out);
    else if (*p == '"')
      fputs("\\\"", out);
    else if (*p == '\n')
      fputs("\\n", out);
    else
      fputc(*p, out);
  }
}

void metrics_escape_label_value(char *buf, size_t cap, const char *value)
{
  const char *p;
  size_t n = 0;

  if (cap == 0)
    return;
  for (p = value ? value : ""; *p; p++) {
    char esc = 0;

    if (*p == '\\')
      esc = '\\';
    else if (*p == '"')
      esc = '"';
    else if (*p == '\n')
      esc = 'n';
    if (esc) {
      if (n + 2 >= cap)
        break;
      buf[n++] = '\\';
      buf[n++] = esc;
    } else {
      if (n + 1 >= cap)
        break;
      buf[n++] = *p;
    }
  }
  buf[n] = '\0';
}
