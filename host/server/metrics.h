/*
 * metrics.h: the process's Prometheus text registry: writers registered
 * by whoever owns some numbers (main registers the registry's, the HTTP
 * client's and each controller's), and a lock-free latency histogram.
 * It owns no numbers of its own and never calls a writer after
 * metrics_unregister returned.
 */
#ifndef CCM_METRICS_H
#define CCM_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

/* Writes complete metric families (# HELP, # TYPE, samples) to out. Runs
 * under the registry's lock: it must be quick and must not call
 * metrics_register, metrics_unregister or metrics_write_all. */
typedef void metrics_writer_fn(FILE *out, void *ud);

/* Add a writer; writers run in registration order. Registering the same
 * (fn, ud) twice is a no-op. 0, or -1 when out of memory. */
int metrics_register(metrics_writer_fn *fn, void *ud);
/* Remove (fn, ud); when this returns, fn is not running and will not run
 * again for ud. Unknown pairs are ignored. */
void metrics_unregister(metrics_writer_fn *fn, void *ud);
/* Run every writer into out (the /metrics body). */
void metrics_write_all(FILE *out);
/* Drop every writer (tests and shutdown). */
void metrics_reset(void);

/* ---- histograms ---- */

/* Upper bounds, seconds: Prometheus' defaults stretched to provider call
 * timeouts (30 s by default). */
#define CCM_METRICS_BUCKETS 13
extern const double metrics_latency_bounds[CCM_METRICS_BUCKETS];

/* Zero-initialised (static or mem_calloc) is ready to use. Observations
 * are relaxed atomic increments; readers may see one observation in the
 * buckets before the sum, never more in +Inf than in _count. */
struct metrics_histogram {
  atomic_uint_fast64_t buckets[CCM_METRICS_BUCKETS + 1]; /* last: > max */
  atomic_uint_fast64_t sum_ns;
};

/* Count one observation (negative and NaN count as 0). */
void metrics_histogram_observe(struct metrics_histogram *h, double seconds);
/* Total observations so far. */
uint64_t metrics_histogram_count(const struct metrics_histogram *h);
/* Samples of one histogram: name_bucket{labels,le="..."} (cumulative,
 * ending in le="+Inf"), name_sum{labels} and name_count{labels}. labels
 * is a ready label list without braces ("provider=\"lab\"") or NULL. No
 * # HELP / # TYPE: write those once per family with metrics_write_header. */
void metrics_histogram_write(FILE *out, const char *name, const char *labels,
                             const struct metrics_histogram *h);

/* "# HELP name help\n# TYPE name type\n". */
void metrics_write_header(FILE *out, const char *name, const char *type,
                          const char *help);
/* One unlabelled sample with its HELP and TYPE lines. */
void metrics_write_counter(FILE *out, const char *name, const char *help,
                           uint64_t value);
void metrics_write_gauge(FILE *out, const char *name, const char *help,
                         uint64_t value);
/* A label value escaped for the text format (\\, \" and \n). */
void metrics_write_label_value(FILE *out, const char *value);
/* Same into buf (capacity cap, always terminated; cut when short). */
void metrics_escape_label_value(char *buf, size_t cap, const char *value);

#endif
