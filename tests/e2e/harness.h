/*
 * harness.h: the e2e test harness: the Kubernetes API double, a host.cfg
 * with one provider (lab or fake; optionally a second one bound to a
 * load-balancer class), the provider registry, the runtime
 * (client, informers), the Event recorder and a filled struct ctrl_env,
 * plus helpers to write objects and wait for outcomes. Test code only.
 *
 * Typical test (cmocka; put e2e_stop in a teardown so that a failed
 * assertion still stops threads and the double):
 *
 *   extern const struct controller_ops svc_controller_ops;
 *
 *   static int setup(void **state) {
 *     static struct e2e e;
 *     struct e2e_opts o = { .provider = "fake",
 *                           .provider_config = "instances = [\"n1\"];" };
 *     if (e2e_setup(&e, &o) != 0)              // double, cfg, registry, runtime
 *       return -1;
 *     if (e2e_run_controller(&e, &svc_controller_ops) != 0)  // create()
 *       return -1;
 *     // optional: e2e_apply_json(&e, ...) objects that exist before start
 *     if (e2e_go(&e) != 0)          // runtime_start, wait synced, start()
 *       return -1;
 *     *state = &e;
 *     return 0;
 *   }
 *   static int teardown(void **state) { e2e_stop(*state); return 0; }
 *
 * e2e_start(&e, &o) is e2e_setup + e2e_run_controller for each of
 * o.controllers + e2e_go, for tests that need nothing in between.
 */
#ifndef CCM_TESTS_E2E_HARNESS_H
#define CCM_TESTS_E2E_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "controllers/controller.h"
#include "double.h"

#define CCM_E2E_MAX_CONTROLLERS 8
#define CCM_E2E_MAX_CONFIGS 16
#define CCM_E2E_SYNC_TIMEOUT_MS 30000

/* Module paths (build/modules). */
#define CCM_E2E_LAB_MODULE CCM_MODULE_DIR "/ccm-lab.so"
#define CCM_E2E_FAKE_MODULE CCM_MODULE_DIR "/ccm-fake.so"

/* Well-known API collections for e2e_apply_json. */
#define CCM_E2E_NODES "/api/v1/nodes"
#define CCM_E2E_SERVICES_DEFAULT "/api/v1/namespaces/default/services"

/* A second provider, bound to a spec.loadBalancerClass (e2e_opts.extra).
 * The harness writes its state_file (lab: <dir>/lab-state-<name>.json) or
 * call_log (fake: <dir>/fake-calls-<name>.log) as for the first one; the
 * first provider is then written with `default = true;`. */
struct e2e_provider_opts {
  const char *name;       /* required, e.g. "b"; not the first's name */
  const char *kind;       /* "lab" or "fake" (default "fake") */
  const char *module;     /* NULL: the kind's default module */
  const char *config;     /* extra text in its config group, as above */
  const char *lb_class;   /* required: its load_balancer_class */
};

struct e2e_opts {
  /* "lab" (default) or "fake": the provider's name and module. */
  const char *provider;
  /* Another module file for that provider (e.g. CCM_MODULE_DIR
   * "/ccm-fake-v2.so"); NULL: CCM_E2E_LAB_MODULE or CCM_E2E_FAKE_MODULE. */
  const char *module;
  /* libconfig text inside the provider's `config = { ... };` group, after
   * what the harness writes itself. lab: the harness writes state_file
   * (<dir>/lab-state.json), ipv4_pools ["203.0.113.0/24"] and ipv6_pools
   * ["2001:db8::/120"]; add e.g. "zone = \"z1\"; nodes = [\"n1\"];".
   * fake: the harness writes call_log (<dir>/fake-calls.log); add e.g.
   * "instances = [\"n1\", \"n2\"]; latency_ms = { all = 5; };".
   * Do not repeat a key the harness writes (libconfig refuses it). */
  const char *provider_config;
  /* Extra top-level host.cfg lines, e.g. "cluster_cidr = \"10.244.0.0/16\";
   * route_reconcile_period_s = 1;". cluster_name is "e2e"; leader election
   * is off. */
  const char *host_config;
  uint32_t call_timeout_ms;   /* provider call deadline; 0: 10000 */
  uint32_t workers;           /* ctrl_env.workers; 0: 2 */
  /* For e2e_start only: NULL-terminated controllers to create and start. */
  const struct controller_ops *const *controllers;
  /* A second provider bound to a class; NULL: only the one above. */
  const struct e2e_provider_opts *extra;
};

struct e2e_ctrl {
  const struct controller_ops *ops;
  void *state;
  struct kube_events *events; /* its own, named as upstream names it */
  bool started;
};

struct e2e {
  struct kdouble kd;          /* the API double (kd.port, kd.kubeconfig) */
  struct kube_client *client; /* the test's own client (not the host's) */
  char dir[256];              /* private temp dir (0700), removed on stop */
  char cfg_path[320];         /* <dir>/host.cfg */
  char state_file[320];       /* lab: <dir>/lab-state.json */
  char call_log[320];         /* fake: <dir>/fake-calls.log */
  char provider[16];          /* the provider's name: "lab" or "fake" */
  char kind[16];              /* its module's kind now (after swaps) */
  char *provider_config;      /* the test's config text (e2e_opts) */
  char *host_config;          /* the test's host.cfg lines (e2e_opts) */
  /* The second provider (e2e_opts.extra); extra_name[0] == '\0': none. */
  char extra_name[32];
  char extra_kind[16];
  char *extra_module;
  char *extra_config;
  char *extra_class;
  char extra_state_file[320]; /* lab: <dir>/lab-state-<name>.json */
  char extra_call_log[320];   /* fake: <dir>/fake-calls-<name>.log */
  struct host_config *cfg;    /* the current config (after swaps: newest) */
  struct host_config *configs[CCM_E2E_MAX_CONFIGS]; /* all loaded, freed on stop */
  size_t n_configs;
  struct registry *reg;
  struct runtime *rt;
  struct kube_events *events;
  struct policy_engine *policy; /* from host.cfg policies; kept across
                                 * restarts, as ccm-host keeps it */
  struct ctrl_env env;        /* handed to every controller's create */
  struct e2e_ctrl ctrls[CCM_E2E_MAX_CONTROLLERS];
  size_t n_ctrls;
  bool http_up, running;
};

/* Start the double, write and load host.cfg, create the registry (and
 * load the provider), the runtime (not started) and the Event recorder,
 * and fill e->env. e is zeroed first. 0, or -1 (logged to stderr; call
 * e2e_stop anyway, it is safe on a partial e2e). */
int e2e_setup(struct e2e *e, const struct e2e_opts *o);
/* Create a controller (its informer handlers are added now); started by
 * e2e_go, or at once when e2e_go already ran is refused (-1). */
int e2e_run_controller(struct e2e *e, const struct controller_ops *ops);
/* runtime_start, wait until the informers synced, start every created
 * controller in creation order. 0 or -1. */
int e2e_go(struct e2e *e);
/* e2e_setup, e2e_run_controller for each o->controllers, e2e_go. */
int e2e_start(struct e2e *e, const struct e2e_opts *o);
/* Stop controllers (reverse order), the runtime, destroy controllers,
 * flush and free the Event recorder, free the registry, runtime and
 * configs, stop the double and remove the temp dir. Idempotent. */
void e2e_stop(struct e2e *e);

/* A restart of the host on the same API double: stop and destroy every
 * controller and the runtime (and its Event recorders), then build a new
 * runtime and create and start new instances of the same controllers, in
 * the same order (informers list everything anew, caches start empty).
 * reload_providers false keeps the registry, so the providers keep their
 * in-memory state (the fake's load balancers and call log); true also
 * frees the registry and loads the providers from host.cfg again (the
 * lab's state survives in its state file, the fake's does not). 0, or -1
 * (call e2e_stop anyway). */
int e2e_restart(struct e2e *e, bool reload_providers);

/* ---- objects (through e->client; paths are API paths) ----
 * Each returns a kube_status (KUBE_OK == 0); on failure the server's
 * message is printed to stderr. */

/* Create the object (JSON text) in collection, e.g. CCM_E2E_SERVICES_DEFAULT.
 * When it exists, replace it (GET for resourceVersion, PUT). *out, when
 * out is non-NULL, receives the server's object (cJSON_Delete it). */
int e2e_apply_json(struct e2e *e, const char *collection, const char *json,
                   cJSON **out);
/* GET; NULL when absent or on error. cJSON_Delete the result. */
cJSON *e2e_get(struct e2e *e, const char *path);
/* Merge patch (JSON text), on the object or on its status. */
int e2e_patch_merge(struct e2e *e, const char *path, const char *json);
int e2e_patch_status(struct e2e *e, const char *path, const char *json);
/* DELETE (not found is OK). With finalizers the object only gets a
 * deletionTimestamp until they are removed. */
int e2e_delete(struct e2e *e, const char *path);

/* Convenience bodies. */
int e2e_create_service_lb(struct e2e *e, const char *ns, const char *name,
                          int port, const char *extra_spec_json);
int e2e_create_node(struct e2e *e, const char *name, const char *internal_ip,
                    bool ready);

/* ---- waiting ---- */

typedef bool e2e_pred_fn(struct e2e *e, void *ud);
/* Poll pred every 50 ms until it returns true (true) or timeout_ms passed
 * (false). */
bool e2e_wait(struct e2e *e, e2e_pred_fn *pred, void *ud,
              uint32_t timeout_ms);

/* Called with the object at path, or NULL when it does not exist. */
typedef bool e2e_obj_pred_fn(const cJSON *obj, void *ud);
/* Poll GET path until pred(obj) holds; false on timeout. */
bool e2e_wait_object(struct e2e *e, const char *path, e2e_obj_pred_fn *pred,
                     void *ud, uint32_t timeout_ms);
/* Wait until the object at path is gone. */
bool e2e_wait_gone(struct e2e *e, const char *path, uint32_t timeout_ms);

/* ---- reading JSON ---- */

/* Follow a dotted path; numeric parts index arrays:
 * e2e_json_at(svc, "status.loadBalancer.ingress.0.ip"). NULL if absent. */
const cJSON *e2e_json_at(const cJSON *obj, const char *dotted);
/* The string at dotted, or NULL. */
const char *e2e_json_str(const cJSON *obj, const char *dotted);

/* ---- the provider ---- */

/* fake: lines in the call log whose op equals op (e.g. "lb_ensure") and,
 * when arg_part is non-NULL, whose argument contains it. 0 when none or
 * no log. */
int e2e_call_count(struct e2e *e, const char *op, const char *arg_part);
/* The same over any call log file, e.g. e->extra_call_log. */
int e2e_call_count_in(const char *call_log, const char *op,
                      const char *arg_part);
/* Hot-swap the provider to module (an absolute path) with a new config
 * text (same meaning as e2e_opts.provider_config; NULL keeps the current
 * one) and provider kind ("lab"/"fake"; NULL keeps it). Writes a new
 * host.cfg, loads it and calls registry_swap (a swap even when the file
 * did not change). 0, or -1 with the reason on stderr. */
int e2e_swap_module(struct e2e *e, const char *module, const char *provider,
                    const char *provider_config);

/* Sleep helper for tests (ms). */
void e2e_sleep_ms(uint32_t ms);

/* ---- policies, files, the lab's state, Events ---- */

/* Reload the policies of host.cfg (after the test rewrote a file), as
 * SIGHUP does. 0, or -1 with the engine's reason on stderr. */
int e2e_policy_reload(struct e2e *e);
/* A whole file, NUL-terminated (free()); NULL when unreadable. */
char *e2e_slurp(const char *path);
/* The lab provider's state file, parsed; NULL when absent. */
cJSON *e2e_lab_state(struct e2e *e);
/* The lab load balancer named name in state, or NULL. */
const cJSON *e2e_lab_lb(const cJSON *state, const char *name);
/* Events in namespace ns about the object kind/name with reason whose
 * message contains msg_part (NULL: any). */
int e2e_event_count(struct e2e *e, const char *ns, const char *kind,
                    const char *name, const char *reason,
                    const char *msg_part);

#endif
