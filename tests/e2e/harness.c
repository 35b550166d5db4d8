/*
 * harness.c: the e2e harness (harness.h): the API double, host.cfg, the
 * registry, runtime, Event recorder and controllers, in the host's own
 * start and stop order. Test code only; it talks only to 127.0.0.1.
 */
#include "harness.h"

#include "controllers/manager.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kube/events.h"
#include "kube/runtime.h"
#include "kube/writes.h"
#include "modules/http.h"
#include "modules/registry.h"
#include "util/mem.h"

#define E2E_POLL_MS 50
#define E2E_ERR 1024

static void e2e_log(const char *fmt, ...) CCM_PRINTF(1, 2);
static void e2e_log(const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  fputs("e2e: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void e2e_sleep_ms(uint32_t ms)
{
  struct timespec ts = {.tv_sec = ms / 1000,
                        .tv_nsec = (long)(ms % 1000) * 1000000L};

  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static int64_t e2e_now_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- host.cfg ---- */

/* One provider's config group body and its closing braces. */
static void e2e_write_provider_config(FILE *f, const char *kind,
                                      const char *state_file,
                                      const char *call_log,
                                      const char *provider_config)
{
  if (strcmp(kind, "lab") == 0)
    fprintf(f,
            "      state_file = \"%s\";\n"
            "      ipv4_pools = [\"203.0.113.0/24\"];\n"
            "      ipv6_pools = [\"2001:db8::/120\"];\n",
            state_file);
  else
    fprintf(f, "      call_log = \"%s\";\n", call_log);
  fprintf(f, "      %s\n    };\n  }", provider_config ? provider_config : "");
}

static int e2e_write_cfg(struct e2e *e, const char *kind, const char *module,
                         const char *provider_config, const char *host_config,
                         uint32_t call_timeout_ms)
{
  FILE *f = fopen(e->cfg_path, "w");

  if (!f) {
    e2e_log("cannot write %s: %s", e->cfg_path, strerror(errno));
    return -1;
  }
  fprintf(f,
          "# written by tests/e2e/harness.c\n"
          "cluster_name = \"e2e\";\n"
          "kubeconfig = \"%s\";\n"
          "state_dir = \"%s/state\";\n"
          "drain_timeout_ms = 5000;\n"
          "leader_election = { enabled = false; };\n"
          "%s\n"
          "providers = (\n"
          "  {\n"
          "    name = \"%s\";\n"
          "%s"
          "    module = \"%s\";\n"
          "    call_timeout_ms = %u;\n"
          "    config = {\n",
          e->kd.kubeconfig, e->dir, host_config ? host_config : "",
          e->provider, e->extra_name[0] ? "    default = true;\n" : "",
          module, (unsigned)call_timeout_ms);
  e2e_write_provider_config(f, kind, e->state_file, e->call_log,
                            provider_config);
  if (e->extra_name[0]) {
    fprintf(f,
            ",\n  {\n"
            "    name = \"%s\";\n"
            "    load_balancer_class = \"%s\";\n"
            "    module = \"%s\";\n"
            "    call_timeout_ms = %u;\n"
            "    config = {\n",
            e->extra_name, e->extra_class, e->extra_module,
            (unsigned)call_timeout_ms);
    e2e_write_provider_config(f, e->extra_kind, e->extra_state_file,
                              e->extra_call_log, e->extra_config);
  }
  fputs("\n);\n", f);
  if (fclose(f) != 0) {
    e2e_log("cannot write %s", e->cfg_path);
    return -1;
  }
  return 0;
}

static struct host_config *e2e_load_cfg(struct e2e *e)
{
  struct host_config *cfg = NULL;
  char err[E2E_ERR];

  if (e->n_configs >= CCM_E2E_MAX_CONFIGS) {
    e2e_log("too many configs (CCM_E2E_MAX_CONFIGS)");
    return NULL;
  }
  if (config_load(e->cfg_path, &cfg, err, sizeof err) != 0) {
    e2e_log("config_load: %s", err);
    return NULL;
  }
  e->configs[e->n_configs++] = cfg;
  return cfg;
}

static const char *e2e_default_module(const char *kind)
{
  return strcmp(kind, "lab") == 0 ? CCM_E2E_LAB_MODULE : CCM_E2E_FAKE_MODULE;
}

/* ---- start and stop ---- */

static int e2e_set_extra(struct e2e *e, const struct e2e_provider_opts *x)
{
  const char *kind = x->kind ? x->kind : "fake";

  if (!x->name || !*x->name || !x->lb_class || !*x->lb_class ||
      strlen(x->name) >= sizeof e->extra_name ||
      (strcmp(kind, "lab") != 0 && strcmp(kind, "fake") != 0)) {
    e2e_log("extra provider: needs a short name, a class and kind lab or "
            "fake");
    return -1;
  }
  snprintf(e->extra_name, sizeof e->extra_name, "%s", x->name);
  snprintf(e->extra_kind, sizeof e->extra_kind, "%s", kind);
  e->extra_module = mem_strdup(x->module ? x->module
                                         : e2e_default_module(kind));
  e->extra_class = mem_strdup(x->lb_class);
  e->extra_config = mem_strdup(x->config ? x->config : "");
  if (!e->extra_module || !e->extra_class || !e->extra_config)
    return -1;
  return 0;
}

/* A new registry with every provider of e->cfg loaded. */
static int e2e_load_registry(struct e2e *e)
{
  char err[E2E_ERR];

  e->reg = registry_new(e->cfg->state_dir, e->cfg->drain_timeout_ms);
  if (!e->reg) {
    e2e_log("registry_new failed");
    return -1;
  }
  if (registry_apply(e->reg, e->cfg, err, sizeof err) != 0) {
    e2e_log("registry_apply: %s", err);
    return -1;
  }
  return 0;
}

/* The runtime (not started), the Event recorder and e->env. */
static int e2e_build_runtime(struct e2e *e, uint32_t workers)
{
  struct runtime_opts ro;
  struct kube_events_opts eo;
  char err[E2E_ERR];

  memset(&ro, 0, sizeof ro);
  ro.cfg = e->cfg;
  ro.reg = e->reg;
  if (runtime_new(&ro, &e->rt, err, sizeof err) != 0) {
    e2e_log("runtime_new: %s", err);
    e->rt = NULL;
    return -1;
  }
  memset(&eo, 0, sizeof eo);
  eo.component = "cloud-controller-manager";
  if (kube_events_new(runtime_client(e->rt), &eo, &e->events, err,
                      sizeof err) != 0) {
    e2e_log("kube_events_new: %s", err);
    e->events = NULL;
    return -1;
  }

  if (e->policy == NULL &&
      policy_engine_new(e->cfg->policies, e->cfg->n_policies, NULL,
                        &e->policy, err, sizeof err) != 0) {
    e2e_log("policies: %s", err);
    e->policy = NULL;
    return -1;
  }
  e->env.policy = e->policy;
  e->env.cfg = e->cfg;
  e->env.cluster_name = e->cfg->cluster_name;
  e->env.rt = e->rt;
  e->env.reg = e->reg;
  e->env.events = e->events;
  e->env.workers = workers;
  e->env.call_timeout_ms = e->cfg->providers[0].call_timeout_ms;
  return 0;
}

int e2e_setup(struct e2e *e, const struct e2e_opts *o)
{
  static const struct e2e_opts none;
  char path[400];
  const char *kind;

  memset(e, 0, sizeof *e);
  if (!o)
    o = &none;
  kind = o->provider ? o->provider : "lab";
  if (strcmp(kind, "lab") != 0 && strcmp(kind, "fake") != 0) {
    e2e_log("unknown provider %s (lab or fake)", kind);
    return -1;
  }
  snprintf(e->provider, sizeof e->provider, "%s", kind);
  snprintf(e->kind, sizeof e->kind, "%s", kind);
  if (o->provider_config)
    e->provider_config = mem_strdup(o->provider_config);
  if (o->host_config)
    e->host_config = mem_strdup(o->host_config);
  if ((o->provider_config && !e->provider_config) ||
      (o->host_config && !e->host_config))
    return -1;
  if (o->extra && e2e_set_extra(e, o->extra) != 0)
    return -1;
  if (http_global_init() != 0) {
    e2e_log("http_global_init failed");
    return -1;
  }
  e->http_up = true;
  if (!kdouble_available()) {
    e2e_log("the API double or /usr/bin/python3 is missing");
    return -1;
  }
  if (kdouble_start(&e->kd, false, false) != 0) {
    e2e_log("cannot start the API double");
    return -1;
  }
  e->client = kdouble_client(&e->kd);
  if (!e->client)
    return -1;

  snprintf(e->dir, sizeof e->dir, "/tmp/ccm-e2e-XXXXXX");
  if (!mkdtemp(e->dir)) { /* mkdtemp makes it 0700 */
    e2e_log("mkdtemp: %s", strerror(errno));
    e->dir[0] = '\0';
    return -1;
  }
  snprintf(path, sizeof path, "%s/state", e->dir);
  if (mkdir(path, 0700) != 0) {
    e2e_log("mkdir %s: %s", path, strerror(errno));
    return -1;
  }
  snprintf(e->cfg_path, sizeof e->cfg_path, "%s/host.cfg", e->dir);
  snprintf(e->state_file, sizeof e->state_file, "%s/lab-state.json", e->dir);
  snprintf(e->call_log, sizeof e->call_log, "%s/fake-calls.log", e->dir);
  if (e->extra_name[0]) {
    snprintf(e->extra_state_file, sizeof e->extra_state_file,
             "%s/lab-state-%s.json", e->dir, e->extra_name);
    snprintf(e->extra_call_log, sizeof e->extra_call_log,
             "%s/fake-calls-%s.log", e->dir, e->extra_name);
  }
  if (e2e_write_cfg(e, kind, o->module ? o->module : e2e_default_module(kind),
                    e->provider_config, e->host_config,
                    o->call_timeout_ms ? o->call_timeout_ms : 10000) != 0)
    return -1;
  e->cfg = e2e_load_cfg(e);
  if (!e->cfg)
    return -1;

  if (e2e_load_registry(e) != 0)
    return -1;
  return e2e_build_runtime(e, o->workers ? o->workers : 2);
}

int e2e_run_controller(struct e2e *e, const struct controller_ops *ops)
{
  struct kube_events_opts eo;
  struct ctrl_env env;
  struct e2e_ctrl *c;
  char err[E2E_ERR] = "";

  if (e->running) {
    e2e_log("e2e_run_controller(%s) after e2e_go: informer handlers can "
            "only be added before the runtime starts", ops->name);
    return -1;
  }
  if (!e->rt || e->n_ctrls >= CCM_E2E_MAX_CONTROLLERS) {
    e2e_log("e2e_run_controller(%s): no runtime or too many controllers",
            ops->name);
    return -1;
  }
  c = &e->ctrls[e->n_ctrls];
  memset(c, 0, sizeof *c);
  /* Each controller gets its own recorder, as in ccm-host, so Events carry
   * the upstream source component. */
  memset(&eo, 0, sizeof eo);
  eo.component = ctrl_event_component(ops->name);
  if (eo.component == NULL)
    eo.component = "cloud-controller-manager";
  if (kube_events_new(runtime_client(e->rt), &eo, &c->events, err,
                      sizeof err) != 0) {
    e2e_log("controller %s: events: %s", ops->name, err);
    return -1;
  }
  env = e->env;
  env.events = c->events;
  if (ops->create(&env, &c->state, err, sizeof err) != 0) {
    e2e_log("controller %s: create: %s", ops->name, err);
    kube_events_free(c->events);
    c->events = NULL;
    return -1;
  }
  c->ops = ops;
  e->n_ctrls++;
  return 0;
}

int e2e_go(struct e2e *e)
{
  char err[E2E_ERR];
  int64_t deadline;
  size_t i;

  if (!e->rt || e->running)
    return -1;
  if (runtime_start(e->rt, err, sizeof err) != 0) {
    e2e_log("runtime_start: %s", err);
    return -1;
  }
  e->running = true;
  deadline = e2e_now_ms() + CCM_E2E_SYNC_TIMEOUT_MS;
  while (!runtime_poll_synced(e->rt)) {
    if (e2e_now_ms() > deadline) {
      e2e_log("informers did not sync within %d ms",
              CCM_E2E_SYNC_TIMEOUT_MS);
      return -1;
    }
    e2e_sleep_ms(20);
  }
  for (i = 0; i < e->n_ctrls; i++) {
    struct e2e_ctrl *c = &e->ctrls[i];

    if (c->ops->start(c->state) != 0) {
      e2e_log("controller %s: start failed", c->ops->name);
      return -1;
    }
    c->started = true;
  }
  return 0;
}

int e2e_start(struct e2e *e, const struct e2e_opts *o)
{
  size_t i;

  if (e2e_setup(e, o) != 0)
    return -1;
  for (i = 0; o && o->controllers && o->controllers[i]; i++)
    if (e2e_run_controller(e, o->controllers[i]) != 0)
      return -1;
  return e2e_go(e);
}

/* Stop and destroy the controllers (keeping their ops in ops when
 * non-NULL), the runtime and its Event recorder. */
static void e2e_teardown_runtime(struct e2e *e,
                                 const struct controller_ops **ops)
{
  size_t i;

  /* Workers first: they may still write through the runtime's client. */
  for (i = e->n_ctrls; i > 0; i--) {
    struct e2e_ctrl *c = &e->ctrls[i - 1];

    if (c->started)
      c->ops->stop(c->state);
    c->started = false;
  }
  if (e->rt)
    runtime_stop(e->rt);
  e->running = false;
  for (i = e->n_ctrls; i > 0; i--) {
    struct e2e_ctrl *c = &e->ctrls[i - 1];

    if (ops)
      ops[i - 1] = c->ops;
    c->ops->destroy(c->state);
    c->state = NULL;
    kube_events_free(c->events);
    c->events = NULL;
  }
  e->n_ctrls = 0;
  if (e->events)
    kube_events_free(e->events);
  e->events = NULL;
}

int e2e_restart(struct e2e *e, bool reload_providers)
{
  const struct controller_ops *ops[CCM_E2E_MAX_CONTROLLERS];
  uint32_t workers = e->env.workers ? e->env.workers : 2;
  size_t i, n = e->n_ctrls;

  if (!e->rt || !e->cfg)
    return -1;
  e2e_teardown_runtime(e, ops);
  runtime_free(e->rt);
  e->rt = NULL;
  memset(&e->env, 0, sizeof e->env);
  if (reload_providers) {
    registry_free(e->reg);
    e->reg = NULL;
    if (e2e_load_registry(e) != 0)
      return -1;
  }
  if (e2e_build_runtime(e, workers) != 0)
    return -1;
  for (i = 0; i < n; i++)
    if (e2e_run_controller(e, ops[i]) != 0)
      return -1;
  return e2e_go(e);
}

void e2e_stop(struct e2e *e)
{
  char cmd[300];
  size_t i;

  e2e_teardown_runtime(e, NULL);
  policy_engine_free(e->policy);
  e->policy = NULL;
  if (e->reg)
    registry_free(e->reg);
  e->reg = NULL;
  if (e->rt)
    runtime_free(e->rt);
  e->rt = NULL;
  for (i = 0; i < e->n_configs; i++)
    config_free(e->configs[i]);
  e->n_configs = 0;
  e->cfg = NULL;
  if (e->client)
    kube_client_free(e->client);
  e->client = NULL;
  if (e->kd.pid > 0 || e->kd.dir[0] != '\0')
    kdouble_stop(&e->kd);
  if (e->dir[0] != '\0') {
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
      e2e_log("cannot remove %s", e->dir);
    e->dir[0] = '\0';
  }
  mem_free(e->provider_config);
  mem_free(e->host_config);
  e->provider_config = e->host_config = NULL;
  mem_free(e->extra_module);
  mem_free(e->extra_config);
  mem_free(e->extra_class);
  e->extra_module = e->extra_config = e->extra_class = NULL;
  if (e->http_up)
    http_global_cleanup();
  e->http_up = false;
  memset(&e->env, 0, sizeof e->env);
}

/* ---- objects ---- */

static cJSON *e2e_parse(const char *json)
{
  cJSON *obj = cJSON_Parse(json);

  if (!obj)
    e2e_log("bad JSON: %.200s", json);
  return obj;
}

/* The object's path from its collection and metadata.name. */
static int e2e_object_path(const char *collection, const cJSON *obj,
                           char *buf, size_t len)
{
  const char *name = e2e_json_str(obj, "metadata.name");
  int n;

  if (!name)
    return -1;
  n = snprintf(buf, len, "%s/%s", collection, name);
  return n < 0 || (size_t)n >= len ? -1 : 0;
}

int e2e_apply_json(struct e2e *e, const char *collection, const char *json,
                   cJSON **out)
{
  cJSON *obj = e2e_parse(json), *cur = NULL;
  char msg[512] = "", path[512];
  const char *rv;
  int st = KUBE_ERROR;

  if (out)
    *out = NULL;
  if (!obj)
    return KUBE_INVALID;
  st = kube_create(e->client, collection, obj, out, msg, sizeof msg);
  if (st != KUBE_EXISTS)
    goto done;
  if (e2e_object_path(collection, obj, path, sizeof path) != 0) {
    st = KUBE_INVALID;
    goto done;
  }
  st = kube_get(e->client, path, &cur, msg, sizeof msg);
  if (st != KUBE_OK)
    goto done;
  rv = e2e_json_str(cur, "metadata.resourceVersion");
  if (rv) {
    cJSON *meta = cJSON_GetObjectItem(obj, "metadata");

    cJSON_DeleteItemFromObject(meta, "resourceVersion");
    cJSON_AddStringToObject(meta, "resourceVersion", rv);
  }
  st = kube_update(e->client, path, obj, out, msg, sizeof msg);
done:
  if (st != KUBE_OK)
    e2e_log("apply in %s: %s: %s", collection, kube_status_name(st), msg);
  cJSON_Delete(cur);
  cJSON_Delete(obj);
  return st;
}

cJSON *e2e_get(struct e2e *e, const char *path)
{
  cJSON *out = NULL;

  if (kube_get(e->client, path, &out, NULL, 0) != KUBE_OK)
    return NULL;
  return out;
}

int e2e_patch_merge(struct e2e *e, const char *path, const char *json)
{
  cJSON *p = e2e_parse(json);
  char msg[512] = "";
  int st;

  if (!p)
    return KUBE_INVALID;
  st = kube_patch_merge(e->client, path, p, NULL, msg, sizeof msg);
  if (st != KUBE_OK)
    e2e_log("patch %s: %s: %s", path, kube_status_name(st), msg);
  cJSON_Delete(p);
  return st;
}

int e2e_patch_status(struct e2e *e, const char *path, const char *json)
{
  cJSON *p = e2e_parse(json);
  char msg[512] = "";
  int st;

  if (!p)
    return KUBE_INVALID;
  st = kube_patch_status(e->client, path, p, NULL, msg, sizeof msg);
  if (st != KUBE_OK)
    e2e_log("patch status %s: %s: %s", path, kube_status_name(st), msg);
  cJSON_Delete(p);
  return st;
}

int e2e_delete(struct e2e *e, const char *path)
{
  char msg[512] = "";
  int st = kube_delete(e->client, path, NULL, msg, sizeof msg);

  if (st != KUBE_OK)
    e2e_log("delete %s: %s: %s", path, kube_status_name(st), msg);
  return st;
}

int e2e_create_service_lb(struct e2e *e, const char *ns, const char *name,
                          int port, const char *extra_spec_json)
{
  cJSON *svc = cJSON_CreateObject(), *meta, *spec, *ports, *p, *extra = NULL;
  char coll[300];
  char *text = NULL;
  int st = KUBE_ERROR;

  if (!svc)
    return KUBE_ERROR;
  cJSON_AddStringToObject(svc, "apiVersion", "v1");
  cJSON_AddStringToObject(svc, "kind", "Service");
  meta = cJSON_AddObjectToObject(svc, "metadata");
  cJSON_AddStringToObject(meta, "name", name);
  cJSON_AddStringToObject(meta, "namespace", ns);
  spec = cJSON_AddObjectToObject(svc, "spec");
  cJSON_AddStringToObject(spec, "type", "LoadBalancer");
  ports = cJSON_AddArrayToObject(spec, "ports");
  p = cJSON_CreateObject();
  cJSON_AddStringToObject(p, "name", "p0");
  cJSON_AddStringToObject(p, "protocol", "TCP");
  cJSON_AddNumberToObject(p, "port", port);
  cJSON_AddNumberToObject(p, "targetPort", port);
  cJSON_AddItemToArray(ports, p);
  if (extra_spec_json) {
    cJSON *it;

    extra = e2e_parse(extra_spec_json);
    if (!cJSON_IsObject(extra)) {
      st = KUBE_INVALID;
      goto done;
    }
    cJSON_ArrayForEach(it, extra) {
      cJSON_DeleteItemFromObject(spec, it->string);
      cJSON_AddItemToObject(spec, it->string, cJSON_Duplicate(it, true));
    }
  }
  snprintf(coll, sizeof coll, "/api/v1/namespaces/%s/services", ns);
  text = cJSON_PrintUnformatted(svc);
  if (text)
    st = e2e_apply_json(e, coll, text, NULL);
done:
  cJSON_free(text);
  cJSON_Delete(extra);
  cJSON_Delete(svc);
  return st;
}

int e2e_create_node(struct e2e *e, const char *name, const char *internal_ip,
                    bool ready)
{
  char body[1024], path[300];
  int st;

  snprintf(body, sizeof body,
           "{\"apiVersion\":\"v1\",\"kind\":\"Node\","
           "\"metadata\":{\"name\":\"%s\"},\"spec\":{}}", name);
  st = e2e_apply_json(e, CCM_E2E_NODES, body, NULL);
  if (st != KUBE_OK)
    return st;
  snprintf(path, sizeof path, "%s/%s", CCM_E2E_NODES, name);
  if (internal_ip)
    snprintf(body, sizeof body,
             "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\","
             "\"address\":\"%s\"}],\"conditions\":[{\"type\":\"Ready\","
             "\"status\":\"%s\"}]}}", internal_ip, ready ? "True" : "False");
  else
    snprintf(body, sizeof body,
             "{\"status\":{\"conditions\":[{\"type\":\"Ready\","
             "\"status\":\"%s\"}]}}", ready ? "True" : "False");
  return e2e_patch_status(e, path, body);
}

/* ---- waiting ---- */

bool e2e_wait(struct e2e *e, e2e_pred_fn *pred, void *ud,
              uint32_t timeout_ms)
{
  int64_t deadline = e2e_now_ms() + timeout_ms;

  for (;;) {
    if (pred(e, ud))
      return true;
    if (e2e_now_ms() >= deadline)
      return false;
    e2e_sleep_ms(E2E_POLL_MS);
  }
}

struct e2e_obj_wait {
  const char *path;
  e2e_obj_pred_fn *pred;
  void *ud;
};

static bool e2e_obj_check(struct e2e *e, void *ud)
{
  struct e2e_obj_wait *w = ud;
  cJSON *obj = e2e_get(e, w->path);
  bool ok = w->pred(obj, w->ud);

  cJSON_Delete(obj);
  return ok;
}

bool e2e_wait_object(struct e2e *e, const char *path, e2e_obj_pred_fn *pred,
                     void *ud, uint32_t timeout_ms)
{
  struct e2e_obj_wait w = {path, pred, ud};

  return e2e_wait(e, e2e_obj_check, &w, timeout_ms);
}

static bool e2e_is_absent(const cJSON *obj, void *ud)
{
  (void)ud;
  return obj == NULL;
}

bool e2e_wait_gone(struct e2e *e, const char *path, uint32_t timeout_ms)
{
  return e2e_wait_object(e, path, e2e_is_absent, NULL, timeout_ms);
}

/* ---- JSON ---- */

const cJSON *e2e_json_at(const cJSON *obj, const char *dotted)
{
  const cJSON *cur = obj;
  const char *p = dotted;
  char part[256];

  while (cur && *p) {
    size_t n = strcspn(p, ".");
    char *end;
    long idx;

    if (n >= sizeof part)
      return NULL;
    memcpy(part, p, n);
    part[n] = '\0';
    p += n;
    if (*p == '.')
      p++;
    if (cJSON_IsArray(cur)) {
      errno = 0;
      idx = strtol(part, &end, 10);
      if (errno != 0 || end == part || *end != '\0' || idx < 0 ||
          idx > 1000000)
        return NULL;
      cur = cJSON_GetArrayItem(cur, (int)idx);
    } else {
      cur = cJSON_GetObjectItemCaseSensitive(cur, part);
    }
  }
  return cur;
}

const char *e2e_json_str(const cJSON *obj, const char *dotted)
{
  const cJSON *v = e2e_json_at(obj, dotted);

  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- the provider ---- */

int e2e_call_count(struct e2e *e, const char *op, const char *arg_part)
{
  return e2e_call_count_in(e->call_log, op, arg_part);
}

int e2e_call_count_in(const char *call_log, const char *op,
                      const char *arg_part)
{
  char line[2048];
  size_t oplen = strlen(op);
  FILE *f = fopen(call_log, "r");
  int n = 0;

  if (!f)
    return 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, op, oplen) != 0 ||
        (line[oplen] != ' ' && line[oplen] != '\0'))
      continue;
    if (arg_part && !strstr(line + oplen, arg_part))
      continue;
    n++;
  }
  fclose(f);
  return n;
}

int e2e_swap_module(struct e2e *e, const char *module, const char *provider,
                    const char *provider_config)
{
  struct host_config *next;
  char err[E2E_ERR];
  const char *kind = provider ? provider : e->kind;
  char *text = NULL;

  if (!e->cfg || !e->reg || !module)
    return -1;
  if (strcmp(kind, "lab") != 0 && strcmp(kind, "fake") != 0) {
    e2e_log("e2e_swap_module: unknown provider kind %s", kind);
    return -1;
  }
  if (provider_config) {
    text = mem_strdup(provider_config);
    if (!text)
      return -1;
  }
  if (e2e_write_cfg(e, kind, module,
                    text ? text : e->provider_config, e->host_config,
                    e->cfg->providers[0].call_timeout_ms) != 0)
    goto fail;
  next = e2e_load_cfg(e);
  if (!next)
    goto fail;
  /* registry_swap swaps even when the file and config are unchanged. */
  if (registry_swap(e->reg, &next->providers[0], err, sizeof err) != 0) {
    e2e_log("registry_swap to %s: %s", module, err);
    goto fail;
  }
  e->cfg = next;
  if (kind != e->kind)
    snprintf(e->kind, sizeof e->kind, "%s", kind);
  if (text) {
    mem_free(e->provider_config);
    e->provider_config = text;
  }
  return 0;
fail:
  mem_free(text);
  return -1;
}

/* ---- policies, files, the lab's state, Events ---- */

int e2e_policy_reload(struct e2e *e)
{
  char err[E2E_ERR];

  if (policy_engine_reload(e->policy, e->cfg->policies, e->cfg->n_policies,
                           err, sizeof err) != 0) {
    e2e_log("policy reload: %s", err);
    return -1;
  }
  return 0;
}

char *e2e_slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t cap = 0, len = 0, n;

  if (f == NULL)
    return NULL;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      char *nb = realloc(buf, cap = (cap ? cap * 2 : 8192));

      if (nb == NULL) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = nb;
    }
    n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0)
      break;
  }
  fclose(f);
  buf[len] = '\0';
  return buf;
}

cJSON *e2e_lab_state(struct e2e *e)
{
  char *text = e2e_slurp(e->state_file);
  cJSON *st = text ? cJSON_Parse(text) : NULL;

  free(text);
  return st;
}

const cJSON *e2e_lab_lb(const cJSON *state, const char *name)
{
  const cJSON *lb;

  cJSON_ArrayForEach(lb, cJSON_GetObjectItemCaseSensitive(state,
                                                          "load_balancers")) {
    const char *n = e2e_json_str(lb, "name");

    if (n != NULL && strcmp(n, name) == 0)
      return lb;
  }
  return NULL;
}

int e2e_event_count(struct e2e *e, const char *ns, const char *kind,
                    const char *name, const char *reason,
                    const char *msg_part)
{
  char path[300];
  cJSON *list;
  const cJSON *it;
  int n = 0;

  snprintf(path, sizeof path, "/api/v1/namespaces/%s/events", ns);
  list = e2e_get(e, path);
  cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "items")) {
    const char *on = e2e_json_str(it, "involvedObject.name");
    const char *ok = e2e_json_str(it, "involvedObject.kind");
    const char *r = e2e_json_str(it, "reason");
    const char *m = e2e_json_str(it, "message");

    if (on && ok && r && strcmp(on, name) == 0 && strcmp(ok, kind) == 0 &&
        strcmp(r, reason) == 0 &&
        (msg_part == NULL || (m && strstr(m, msg_part) != NULL)))
      n++;
  }
  cJSON_Delete(list);
  return n;
}
