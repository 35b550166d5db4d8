/*
 * service_metrics.h: the service controller's counters and histograms
 * (upstream names from controllers/service/metrics.go, plus ccm-host's
 * queue and reconcile figures) and their Prometheus text. Lock-free
 * updates; it must not know how a reconcile works.
 */
#ifndef CCM_SERVICE_METRICS_H
#define CCM_SERVICE_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define CCM_SVC_HIST_MAX 16

struct svc_hist {
  double bounds[CCM_SVC_HIST_MAX]; /* upper bounds in seconds */
  uint32_t n_bounds;
  atomic_uint_fast64_t counts[CCM_SVC_HIST_MAX + 1]; /* last: +Inf */
  atomic_uint_fast64_t sum_us;
};

struct svc_metrics {
  atomic_uint_fast64_t lb_sync_total;      /* UpdateLoadBalancer attempts */
  atomic_uint_fast64_t nodesync_errors;    /* failed node syncs */
  atomic_uint_fast64_t reconcile_ok;
  atomic_uint_fast64_t reconcile_error;
  atomic_uint_fast64_t not_leader_skips;
  atomic_uint_fast64_t ensure_skipped;     /* unchanged inputs at start */
  atomic_uint_fast64_t write_fallbacks;    /* merge patch refused: GET+PUT */
  atomic_uint_fast64_t tail_ok;            /* ensure tails written */
  atomic_uint_fast64_t tail_errors;        /* ... whose status write failed */
  atomic_uint_fast64_t tail_dropped;       /* ... dropped: not the leader */
  atomic_uint_fast64_t tail_inline;        /* written by the worker itself */
  atomic_uint_fast64_t cpu_host_ns;        /* pass CPU outside the two: */
  atomic_uint_fast64_t cpu_api_ns;         /* ... in Kubernetes requests */
  atomic_uint_fast64_t cpu_provider_ns;    /* ... in provider modules */
  struct svc_hist nodesync_latency;        /* one node-sync round */
  struct svc_hist update_hosts_latency;    /* one UpdateLoadBalancer */
  struct svc_hist reconcile_latency;       /* one syncService */
};

/* The calling thread's CPU clocks at the start of a pass; the end adds
 * the pass's CPU to the three cpu_* sums. */
struct svc_cpu_mark {
  uint64_t all, api, provider;
};
void svc_cpu_begin(struct svc_cpu_mark *mark);
void svc_cpu_end(struct svc_metrics *m, const struct svc_cpu_mark *mark);

void svc_metrics_init(struct svc_metrics *m);
void svc_hist_observe(struct svc_hist *h, double seconds);
/* depth etc. come from the queue; written beside the counters. */
void svc_metrics_write(const struct svc_metrics *m, FILE *out,
                       size_t depth, size_t delayed, size_t processing,
                       uint64_t adds, uint64_t retries, size_t cached);

#endif
