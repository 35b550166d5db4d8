/*
 * load.h: load-test helpers shared by the e2e tests that create hundreds of
 * Services (scale factor, a lab config with a large pool, the service
 * controller's metrics, pacing, the lab-state check). Test code only; it
 * asserts nothing itself: callers turn results into cmocka failures.
 */
#ifndef CCM_TESTS_E2E_LOAD_H
#define CCM_TESTS_E2E_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "harness.h"

/* CCM_E2E_SCALE: a positive factor (at most 100) for a test's object
 * counts; dflt when unset, empty or not such a number. */
double e2e_load_scale(double dflt);
/* Monotonic seconds, for progress lines (never asserted on). */
double e2e_load_now_s(void);

/* The harness's lab pool is one /24 (254 addresses): write
 * <dir>/host-<tag>.cfg for the lab provider with module and a /16 pool
 * (same state file) and load it; with swap, also swap the provider to it
 * (before the controllers start, so that hundreds of Services fit). The
 * config, or NULL with the reason on stderr; config_free it after
 * e2e_stop. */
struct host_config *e2e_load_big_pool(struct e2e *e, const char *tag,
                                      const char *module, bool swap);

/* "<prefix>-<i as %04d>", e.g. "f-0007". */
void e2e_load_svc_name(char *buf, size_t cap, const char *prefix, int i);
/* Create LoadBalancer Service ns/name (port 80), retrying up to tries
 * times pause_ms apart (the test's own writes may meet injected faults or
 * throttling). KUBE_OK or the last status. */
int e2e_load_create_svc(struct e2e *e, const char *ns, const char *name,
                        int tries, uint32_t pause_ms);
/* The load-balancer name the controller recorded on obj, or NULL. */
const char *e2e_load_ann_name(const cJSON *obj);
/* The element of a list's items whose metadata.name is name, or NULL. */
const cJSON *e2e_load_find_item(const cJSON *items, const char *name);
/* svc converged: our finalizer, a recorded name and an ingress IP. */
bool e2e_load_svc_ready(const cJSON *svc);
/* The lab's state agrees with the Services in items (a Service list's
 * items): exactly kept load balancers, each named by the annotation of the
 * Service it is for, and no address held twice. false with the first
 * reason in why. */
bool e2e_load_lab_matches(struct e2e *e, const cJSON *items, int kept,
                          char *why, size_t cap);

/* Called for each line of a Prometheus text. */
typedef void e2e_load_line_fn(const char *line, void *ud);
/* The service controller's metrics (the first service controller the
 * harness runs), line by line. Nothing when it does not run. */
void e2e_load_metrics_lines(struct e2e *e, e2e_load_line_fn *fn, void *ud);
/* The registry's metrics (provider calls, swaps), line by line. */
void e2e_load_registry_lines(struct e2e *e, e2e_load_line_fn *fn, void *ud);
/* Print the reconcile and workqueue counters to stderr, "<tag>: <line>". */
void e2e_load_print_metrics(struct e2e *e, const char *tag);
/* Reconciles done so far (success + error): a progress signal for pacing
 * the load, never asserted on. */
long long e2e_load_reconciles(struct e2e *e);
/* Wait (at most max_ms) until the controller did want reconciles; pacing
 * only, the outcome is ignored. */
void e2e_load_pace(struct e2e *e, long long want, uint32_t max_ms);

#endif
