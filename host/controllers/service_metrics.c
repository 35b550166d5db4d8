/*
 * service_metrics.c: the service controller's metrics and their
 * Prometheus text format. It must not take locks or know about Services.
 */
#include "controllers/service_metrics.h"

#include <string.h>

#include "kube/client.h"
#include "modules/registry.h"
#include "util/thread.h"

/* Upstream's buckets: 1 s doubling, 15 buckets. */
static void svc_hist_init_exp(struct svc_hist *h, double start, double f,
                              uint32_t n)
{
  double b = start;
  uint32_t i;

  memset(h->bounds, 0, sizeof(h->bounds));
  h->n_bounds = n;
  for (i = 0; i < n; i++) {
    h->bounds[i] = b;
    b *= f;
  }
  for (i = 0; i <= CCM_SVC_HIST_MAX; i++)
    atomic_init(&h->counts[i], 0);
  atomic_init(&h->sum_us, 0);
}

void svc_cpu_begin(struct svc_cpu_mark *mark)
{
  mark->api = kube_thread_request_cpu_ns();
  mark->provider = prov_thread_call_cpu_ns();
  mark->all = thread_cpu_ns();
}

void svc_cpu_end(struct svc_metrics *m, const struct svc_cpu_mark *mark)
{
  uint64_t all = thread_cpu_ns() - mark->all;
  uint64_t api = kube_thread_request_cpu_ns() - mark->api;
  uint64_t prov = prov_thread_call_cpu_ns() - mark->provider;

  atomic_fetch_add(&m->cpu_api_ns, api);
  atomic_fetch_add(&m->cpu_provider_ns, prov);
  if (all > api + prov)
    atomic_fetch_add(&m->cpu_host_ns, all - api - prov);
}

void svc_metrics_init(struct svc_metrics *m)
{
  atomic_init(&m->lb_sync_total, 0);
  atomic_init(&m->nodesync_errors, 0);
  atomic_init(&m->reconcile_ok, 0);
  atomic_init(&m->reconcile_error, 0);
  atomic_init(&m->not_leader_skips, 0);
  atomic_init(&m->ensure_skipped, 0);
  atomic_init(&m->write_fallbacks, 0);
  atomic_init(&m->tail_ok, 0);
  atomic_init(&m->tail_errors, 0);
  atomic_init(&m->tail_dropped, 0);
  atomic_init(&m->tail_inline, 0);
  atomic_init(&m->cpu_host_ns, 0);
  atomic_init(&m->cpu_api_ns, 0);
  atomic_init(&m->cpu_provider_ns, 0);
  svc_hist_init_exp(&m->nodesync_latency, 1.0, 2.0, 15);
  svc_hist_init_exp(&m->update_hosts_latency, 1.0, 2.0, 15);
  /* Reconciles are mostly network-bound: 1 ms to about 33 s. */
  svc_hist_init_exp(&m->reconcile_latency, 0.001, 2.0, 16);
}

void svc_hist_observe(struct svc_hist *h, double seconds)
{
  uint32_t i;

  if (seconds < 0)
    seconds = 0;
  for (i = 0; i < h->n_bounds; i++) {
    if (seconds <= h->bounds[i])
      break;
  }
  atomic_fetch_add(&h->counts[i], 1);
  atomic_fetch_add(&h->sum_us, (uint_fast64_t)(seconds * 1e6));
}

static void svc_hist_write(const struct svc_hist *h, FILE *out,
                           const char *name, const char *labels,
                           const char *help)
{
  uint64_t cum = 0;
  uint32_t i;
  const char *sep = labels[0] ? "," : "";

  fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  for (i = 0; i < h->n_bounds; i++) {
    cum += atomic_load(&h->counts[i]);
    fprintf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
            h->bounds[i], (unsigned long long)cum);
  }
  cum += atomic_load(&h->counts[h->n_bounds]);
  fprintf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
          (unsigned long long)cum);
  fprintf(out, "%s_sum%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels,
          labels[0] ? "}" : "",
          (double)atomic_load(&h->sum_us) / 1e6);
  fprintf(out, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
          labels[0] ? "}" : "", (unsigned long long)cum);
}

void svc_metrics_write(const struct svc_metrics *m, FILE *out,
                       size_t depth, size_t delayed, size_t processing,
                       uint64_t adds, uint64_t retries, size_t cached)
{
  fprintf(out,
          "# HELP service_controller_loadbalancer_sync_total A metric "
          "counting the amount of times any load balancer has been "
          "configured, as an effect of service/node changes on the "
          "cluster\n"
          "# TYPE service_controller_loadbalancer_sync_total counter\n"
          "service_controller_loadbalancer_sync_total %llu\n",
          (unsigned long long)atomic_load(&m->lb_sync_total));
  fprintf(out,
          "# HELP service_controller_nodesync_error_total A metric counting "
          "the amount of times any load balancer has been configured and "
          "errored, as an effect of node changes on the cluster\n"
          "# TYPE service_controller_nodesync_error_total counter\n"
          "service_controller_nodesync_error_total %llu\n",
          (unsigned long long)atomic_load(&m->nodesync_errors));
  svc_hist_write(&m->nodesync_latency, out,
                 "service_controller_nodesync_latency_seconds", "",
                 "A metric measuring the latency for nodesync which updates "
                 "loadbalancer hosts on cluster node updates.");
  svc_hist_write(&m->update_hosts_latency, out,
                 "service_controller_update_loadbalancer_host_latency_seconds",
                 "", "A metric measuring the latency for updating each load "
                 "balancer hosts.");
  fprintf(out,
          "# HELP ccm_workqueue_depth Keys waiting in the queue (ready).\n"
          "# TYPE ccm_workqueue_depth gauge\n"
          "ccm_workqueue_depth{queue=\"service\"} %zu\n"
          "# HELP ccm_workqueue_delayed Keys waiting for a backoff delay.\n"
          "# TYPE ccm_workqueue_delayed gauge\n"
          "ccm_workqueue_delayed{queue=\"service\"} %zu\n"
          "# HELP ccm_workqueue_processing Keys held by workers.\n"
          "# TYPE ccm_workqueue_processing gauge\n"
          "ccm_workqueue_processing{queue=\"service\"} %zu\n"
          "# HELP ccm_workqueue_adds_total Keys queued.\n"
          "# TYPE ccm_workqueue_adds_total counter\n"
          "ccm_workqueue_adds_total{queue=\"service\"} %llu\n"
          "# HELP ccm_workqueue_retries_total Keys re-queued after a "
          "failure.\n"
          "# TYPE ccm_workqueue_retries_total counter\n"
          "ccm_workqueue_retries_total{queue=\"service\"} %llu\n",
          depth, delayed, processing, (unsigned long long)adds,
          (unsigned long long)retries);
  fprintf(out,
          "# HELP ccm_reconcile_total Reconciles by controller and result.\n"
          "# TYPE ccm_reconcile_total counter\n"
          "ccm_reconcile_total{controller=\"service\",result=\"success\"} "
          "%llu\n"
          "ccm_reconcile_total{controller=\"service\",result=\"error\"} "
          "%llu\n"
          "# HELP ccm_service_not_leader_skips_total Keys set aside because "
          "this replica is not the leader.\n"
          "# TYPE ccm_service_not_leader_skips_total counter\n"
          "ccm_service_not_leader_skips_total %llu\n"
          "# HELP ccm_service_ensure_skipped_total Ensures skipped on a "
          "Service's first sync because its recorded input fingerprint "
          "matched.\n"
          "# TYPE ccm_service_ensure_skipped_total counter\n"
          "ccm_service_ensure_skipped_total %llu\n"
          "# HELP ccm_service_write_fallbacks_total Metadata writes whose "
          "merge patch met a changed Service and were redone as read, "
          "modify, write.\n"
          "# TYPE ccm_service_write_fallbacks_total counter\n"
          "ccm_service_write_fallbacks_total %llu\n"
          "# HELP ccm_service_status_writer_total Ensure tails (the status "
          "write, then the input fingerprint) by outcome: written by the "
          "writer thread, failed there (retried with backoff), dropped on "
          "leadership loss, or left to the worker because the writer was "
          "behind or is off (service_status_writer = false).\n"
          "# TYPE ccm_service_status_writer_total counter\n"
          "ccm_service_status_writer_total{result=\"success\"} %llu\n"
          "ccm_service_status_writer_total{result=\"error\"} %llu\n"
          "ccm_service_status_writer_total{result=\"dropped\"} %llu\n"
          "ccm_service_status_writer_total{result=\"inline\"} %llu\n"
          "# HELP ccm_service_cached Services the controller tracks.\n"
          "# TYPE ccm_service_cached gauge\n"
          "ccm_service_cached %zu\n",
          (unsigned long long)atomic_load(&m->reconcile_ok),
          (unsigned long long)atomic_load(&m->reconcile_error),
          (unsigned long long)atomic_load(&m->not_leader_skips),
          (unsigned long long)atomic_load(&m->ensure_skipped),
          (unsigned long long)atomic_load(&m->write_fallbacks),
          (unsigned long long)atomic_load(&m->tail_ok),
          (unsigned long long)atomic_load(&m->tail_errors),
          (unsigned long long)atomic_load(&m->tail_dropped),
          (unsigned long long)atomic_load(&m->tail_inline), cached);
  fprintf(out,
          "# HELP ccm_reconcile_cpu_seconds_total Thread CPU of the "
          "controller's passes and status writes: in ccm-host's own code "
          "(host), inside Kubernetes API requests (api_requests: building, "
          "sending, receiving) and inside provider modules (provider).\n"
          "# TYPE ccm_reconcile_cpu_seconds_total counter\n"
          "ccm_reconcile_cpu_seconds_total{controller=\"service\","
          "part=\"host\"} %.6f\n"
          "ccm_reconcile_cpu_seconds_total{controller=\"service\","
          "part=\"api_requests\"} %.6f\n"
          "ccm_reconcile_cpu_seconds_total{controller=\"service\","
          "part=\"provider\"} %.6f\n",
          (double)atomic_load(&m->cpu_host_ns) / 1e9,
          (double)atomic_load(&m->cpu_api_ns) / 1e9,
          (double)atomic_load(&m->cpu_provider_ns) / 1e9);
  svc_hist_write(&m->reconcile_latency, out,
                 "ccm_reconcile_duration_seconds", "controller=\"service\"",
                 "Time of one reconcile, by controller.");
}
