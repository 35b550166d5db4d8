/*
 * node_metrics.c: the small Prometheus writers the node controllers use:
 * fixed-bucket histograms (upstream ExponentialBuckets), counters, gauges.
 * It knows nothing about nodes; it must not allocate on the hot path.
 */
#include <string.h>

#include "controllers/node_internal.h"

void node_histo_init(struct node_histo *h, double start, double factor)
{
  memset(h, 0, sizeof(*h));
  pthread_mutex_init(&h->lock, NULL);
  for (size_t i = 0; i < CCM_NODE_HISTO_BUCKETS; i++) {
    h->bounds[i] = start;
    start *= factor;
  }
}

void node_histo_destroy(struct node_histo *h)
{
  pthread_mutex_destroy(&h->lock);
}

void node_histo_observe(struct node_histo *h, double v)
{
  pthread_mutex_lock(&h->lock);
  for (size_t i = 0; i < CCM_NODE_HISTO_BUCKETS; i++) {
    if (v <= h->bounds[i])
      h->counts[i]++;
  }
  h->count++;
  h->sum += v;
  pthread_mutex_unlock(&h->lock);
}

void node_histo_write(struct node_histo *h, FILE *out, const char *name,
                      const char *help)
{
  pthread_mutex_lock(&h->lock);
  fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  for (size_t i = 0; i < CCM_NODE_HISTO_BUCKETS; i++)
    fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i],
            (unsigned long long)h->counts[i]);
  fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name,
          (unsigned long long)h->count);
  fprintf(out, "%s_sum %g\n%s_count %llu\n", name, h->sum, name,
          (unsigned long long)h->count);
  pthread_mutex_unlock(&h->lock);
}

