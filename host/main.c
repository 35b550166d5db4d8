/*
 * main.c: ccm-host's command line, start and stop order, and signals
 * (SIGHUP reloads, SIGTERM/SIGINT stop). It owns no policy of its own: the
 * config module validates, the registry loads and swaps providers.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ccm_provider.h"
#include "config/config.h"
#include "controllers/manager.h"
#include "kube/client.h"
#include "kube/runtime.h"
#include "modules/http.h"
#include "modules/inspect.h"
#include "modules/loader.h"
#include "modules/registry.h"
#include "policy/policy.h"
#include "server/metrics.h"
#include "server/server.h"
#include "util/json_arena.h"
#include "util/log.h"
#include "util/mem.h"

#define CCM_MAIN_EXIT_ERROR 1
#define CCM_MAIN_EXIT_USAGE 2
#define CCM_MAIN_ERR 1024
#define CCM_MAIN_PATH 4096
#define CCM_MAIN_POLL_MS 200L /* until the informers sync */
#define LOG_PREFIX "host"

enum main_mode {
  MODE_NONE = 0,
  MODE_RUN,
  MODE_CHECK_CONFIG,
  MODE_CHECK_MODULE,
  MODE_DOCS
};

enum main_opt {
  OPT_CHECK_CONFIG = 256,
  OPT_CHECK_MODULE,
  OPT_DOCS,
  OPT_KUBECONFIG,
  OPT_MASTER,
  OPT_CONTEXT,
  OPT_CLUSTER_NAME
};

/* Command-line values that override the config file, on every reload. */
struct main_overrides {
  const char *kubeconfig;
  const char *master;
  const char *context; /* kubeconfig context; no config key */
  const char *cluster_name;
  int log_level; /* -1: from the config */
};

static const struct option main_options[] = {
  {"help", no_argument, NULL, 'h'},
  {"version", no_argument, NULL, 'V'},
  {"config", required_argument, NULL, 'c'},
  {"check-config", required_argument, NULL, OPT_CHECK_CONFIG},
  {"check-module", required_argument, NULL, OPT_CHECK_MODULE},
  {"print-config-docs", no_argument, NULL, OPT_DOCS},
  {"log-level", required_argument, NULL, 'l'},
  {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
  {"master", required_argument, NULL, OPT_MASTER},
  {"context", required_argument, NULL, OPT_CONTEXT},
  {"cluster-name", required_argument, NULL, OPT_CLUSTER_NAME},
  {NULL, 0, NULL, 0},
};

static void main_usage(FILE *out)
{
  fputs(
      "Usage: ccm-host MODE [OPTION]...\n"
      "Kubernetes cloud-controller-manager host: serves the provider "
      "modules (.so)\n"
      "listed in its configuration file.\n"
      "\n"
      "Modes (exactly one):\n"
      "  -c, --config FILE         run with the host configuration FILE\n"
      "      --check-config FILE   validate FILE and summarise its "
      "providers;\n"
      "                            loads nothing\n"
      "      --check-module PATH   load the module PATH in a scratch "
      "directory and\n"
      "                            print what it declares (init is not "
      "called)\n"
      "      --print-config-docs   print the configuration reference "
      "(Markdown)\n"
      "      --check-policy FILE [--provider PATH] [--service FILE]\n"
      "                            compile a Lua policy, run its hooks on "
      "sample\n"
      "                            objects (or FILE, YAML or JSON) and print "
      "the results\n"
      "  -h, --help                print this help and exit\n"
      "  -V, --version             print the version and the ABI version\n"
      "\n"
      "Options (override the config file, also across reloads):\n"
      "  -l, --log-level LEVEL     error, warn, info or debug\n"
      "      --kubeconfig FILE     the kubeconfig key\n"
      "      --master URL          the master key (API server URL)\n"
      "      --context NAME        the kubeconfig context (default: its "
      "current-context)\n"
      "      --cluster-name NAME   the cluster_name key\n"
      "\n"
      "Run mode: connects to Kubernetes (kubeconfig, master, else "
      "in-cluster), runs\n"
      "leader election when enabled and the Node and Service informers. "
      "SIGHUP\n"
      "re-reads FILE and hot-swaps the providers whose module or settings "
      "changed\n"
      "(a bad file changes nothing; Kubernetes settings are read at start "
      "only);\n"
      "SIGTERM or SIGINT stop the informers, release the lease and stop "
      "after\n"
      "in-flight provider calls finish.\n"
      "\n"
      "Exit status: 0 success, 1 error, 2 usage error.\n"
      "Reference: docs/configuration.md (ccm-host --print-config-docs).\n",
      out);
}

static void main_overrides_apply(const struct main_overrides *ov,
                                 struct host_config *cfg)
{
  if (ov->kubeconfig != NULL)
    cfg->kubeconfig = ov->kubeconfig;
  if (ov->master != NULL)
    cfg->master = ov->master;
  if (ov->cluster_name != NULL)
    cfg->cluster_name = ov->cluster_name;
}

static void main_controllers_string(uint32_t mask, char *out, size_t cap)
{
  static const struct {
    uint32_t bit;
    const char *name;
  } names[] = {
    {CCM_CTRL_SERVICE, "service"},
    {CCM_CTRL_NODE, "node"},
    {CCM_CTRL_NODE_LIFECYCLE, "node-lifecycle"},
    {CCM_CTRL_ROUTE, "route"},
  };
  size_t used = 0;

  out[0] = '\0';
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    int n;
    if (!(mask & names[i].bit))
      continue;
    n = snprintf(out + used, cap - used, "%s%s", used > 0 ? ", " : "",
                 names[i].name);
    if (n < 0 || (size_t)n >= cap - used)
      return;
    used += (size_t)n;
  }
  if (used == 0)
    snprintf(out, cap, "none");
}

/* ---- --check-config ----------------------------------------------------- */

static int main_check_config(const char *path, const struct main_overrides *ov)
{
  struct host_config *cfg = NULL;
  char err[CCM_MAIN_ERR];
  char ctrls[128];

  if (config_load(path, &cfg, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return CCM_MAIN_EXIT_ERROR;
  }
  main_overrides_apply(ov, cfg);
  main_controllers_string(cfg->controllers, ctrls, sizeof ctrls);
  printf("%s: ok\n", path);
  printf("cluster_name: %s\n", cfg->cluster_name);
  printf("controllers: %s (service_workers %u, node_workers %u)\n", ctrls,
         (unsigned)cfg->service_workers, (unsigned)cfg->node_workers);
  printf("leader_election: %s (%s/%s)\n", cfg->leader.enabled ? "on" : "off",
         cfg->leader.lease_namespace, cfg->leader.lease_name);
  printf("listen: %s\n", cfg->listen);
  printf("policies: %zu\n", cfg->n_policies);
  printf("providers: %zu\n", cfg->n_providers);
  for (size_t i = 0; i < cfg->n_providers; i++) {
    const struct provider_config *pc = &cfg->providers[i];
    if (pc->is_default)
      printf("  %s: default, module %s, config %.12s\n", pc->name,
             pc->module_abs, pc->config_hash);
    else
      printf("  %s: class %s, module %s, config %.12s\n", pc->name,
             pc->lb_class, pc->module_abs, pc->config_hash);
  }
  config_free(cfg);
  return 0;
}

/* ---- --check-module ----------------------------------------------------- */

static const char *main_str(const char *s)
{
  return s == NULL ? "(none)" : s;
}

static int main_check_module(const char *path)
{
  struct module_inspect mi;
  const struct ccm_provider *p;
  const struct module *m;
  char err[CCM_MAIN_ERR];
  char caps[128], declared[128];

  if (module_inspect_open(path, &mi, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return CCM_MAIN_EXIT_ERROR;
  }
  m = mi.m;
  p = m->provider;
  loader_caps_string(m->capabilities, caps, sizeof caps);
  loader_caps_string(p->capabilities, declared, sizeof declared);
  printf("module: %s\n", path);
  printf("name: %s\n", main_str(p->name));
  printf("version: %s\n", main_str(p->version));
  printf("description: %s\n", main_str(p->description));
  printf("ABI %u.%u (host %d.%d)\n", (unsigned)m->abi_major,
         (unsigned)m->abi_minor, CCM_ABI_MAJOR, CCM_ABI_MINOR);
  printf("thread safety: %s\n",
         p->thread_safety == CCM_THREAD_SAFE ? "thread-safe" : "serial");
  printf("capabilities: %s (declared: %s)\n", caps, declared);
  printf("sha256: %s\n", m->hash);
  module_print_decls(stdout, p);
  module_inspect_close(&mi);
  return 0;
}

/* ---- run mode ----------------------------------------------------------- */

struct main_run {
  const char *path;
  const struct main_overrides *ov;
  struct host_config *cur;   /* generations hold the configs they read */
  struct registry *reg;
  struct runtime *rt;        /* Kubernetes: client, lease, informers */
  struct policy_engine *policy; /* Lua policies (defaults when none) */
  struct ctrl_manager *ctrls; /* the cloud controllers */
  struct server *srv;        /* /healthz, /readyz, /metrics */
};

static void main_metrics_registry(FILE *out, void *reg)
{
  registry_metrics_write(reg, out);
}

/* Policy counters, the "policy errors" of /metrics among them. */
static void main_metrics_policy(FILE *out, void *pe)
{
  struct policy_stats ps;

  policy_engine_stats(pe, &ps);
  metrics_write_gauge(out, "ccm_policy_generation",
                      "Policy set in force (1 = the first loaded).",
                      ps.generation);
  metrics_write_counter(out, "ccm_policy_calls_total",
                        "Policy hook calls that ran Lua.",
                        ps.calls);
  metrics_write_counter(out, "ccm_policy_errors_total",
                        "Policy hook calls that failed: runtime error, "
                        "budget or memory kill, or a result that failed "
                        "validation.",
                        ps.errors);
  metrics_write_counter(out, "ccm_policy_rejections_total",
                        "Services a policy rejected (nil, \"reason\").",
                        ps.rejections);
  metrics_write_header(out, "ccm_policy_reloads_total", "counter",
                       "Policy reloads by result.");
  fprintf(out, "ccm_policy_reloads_total{result=\"success\"} %llu\n"
          "ccm_policy_reloads_total{result=\"failure\"} %llu\n",
          (unsigned long long)ps.reloads,
          (unsigned long long)ps.reload_failures);
  metrics_write_gauge(out, "ccm_policy_states",
                      "Live Lua states (one per thread that ran a hook).",
                      ps.states);
  metrics_write_gauge(out, "ccm_policy_state_bytes",
                      "Bytes held by all live Lua states.",
                      ps.state_bytes);
}

static void main_metrics_http(FILE *out, void *ud)
{
  (void)ud;
  http_metrics_write(out);
  kube_client_metrics_write(out);
}

static void main_apply_log_level(const struct main_overrides *ov,
                                 const struct host_config *cfg)
{
  int level = ov->log_level;

  if (level < 0)
    level = log_level_parse(cfg->log_level);
  if (level >= 0)
    log_set_level(level);
}

/* registry_describe writes lines to a FILE; log each of them. */
static void main_log_registry(struct registry *reg)
{
  char buf[16384];
  char *line, *next;
  FILE *f;

  memset(buf, 0, sizeof buf);
  f = fmemopen(buf, sizeof buf - 1, "w");
  if (f == NULL)
    return;
  registry_describe(reg, f);
  fclose(f);
  for (line = buf; line[0] != '\0'; line = next) {
    next = strchr(line, '\n');
    if (next == NULL) {
      next = line + strlen(line);
    } else {
      *next = '\0';
      next++;
    }
    if (line[0] != '\0')
      log_msg(CCM_LOG_INFO, LOG_PREFIX, "%s", line);
  }
}

static void main_log_controllers(const struct host_config *cfg)
{
  char ctrls[128];

  main_controllers_string(cfg->controllers, ctrls, sizeof ctrls);
  log_msg(CCM_LOG_INFO, LOG_PREFIX,
          "controllers enabled: %s (service_workers %u, node_workers %u)",
          ctrls, (unsigned)cfg->service_workers,
          (unsigned)cfg->node_workers);
}

static void main_reload(struct main_run *st)
{
  struct host_config *next = NULL;
  struct registry_stats before, after;
  char err[CCM_MAIN_ERR];

  log_msg(CCM_LOG_INFO, LOG_PREFIX, "SIGHUP: reloading %s", st->path);
  if (config_load(st->path, &next, err, sizeof err) != 0) {
    log_msg(CCM_LOG_ERROR, LOG_PREFIX,
            "reload failed, the running configuration stays: %s", err);
    return;
  }
  main_overrides_apply(st->ov, next);
  if (strcmp(next->state_dir, st->cur->state_dir) != 0 ||
      next->drain_timeout_ms != st->cur->drain_timeout_ms)
    log_msg(CCM_LOG_WARN, LOG_PREFIX,
            "state_dir and drain_timeout_ms are read at start only; the "
            "change takes effect at the next start");
  if (st->rt != NULL && runtime_settings_changed(st->rt, next))
    log_msg(CCM_LOG_WARN, LOG_PREFIX,
            "kubeconfig, master and leader_election are read at start "
            "only; the change takes effect at the next start");
  registry_get_stats(st->reg, &before);
  if (registry_apply(st->reg, next, err, sizeof err) != 0) {
    log_msg(CCM_LOG_ERROR, LOG_PREFIX,
            "reload failed, the running configuration and providers stay: "
            "%s", err);
    config_free(next);
    return;
  }
  registry_get_stats(st->reg, &after);
  /* Policies after the providers: a failing policy set keeps the old
   * one (the engine says why) and does not undo the provider swaps. */
  if (policy_engine_reload(st->policy, next->policies, next->n_policies,
                           err, sizeof err) != 0)
    log_msg(CCM_LOG_ERROR, LOG_PREFIX, "policy reload failed, the running "
            "policies stay: %s", err);
  config_free(st->cur);
  st->cur = next;
  main_apply_log_level(st->ov, st->cur);
  log_msg(CCM_LOG_INFO, LOG_PREFIX,
          "reloaded %s: %llu provider swap(s), %zu provider(s)", st->path,
          (unsigned long long)(after.swaps - before.swaps),
          st->cur->n_providers);
  main_log_registry(st->reg);
}

/* Stop order: the endpoints, then the controllers (in-flight reconciles
 * finish, each within its own deadline), then the informers and the lease
 * is released (a standby takes over at once), then the providers drain,
 * then the client goes. */
static void main_run_free(struct main_run *st)
{
  metrics_unregister(main_metrics_registry, st->reg);
  metrics_unregister(main_metrics_http, NULL);
  metrics_unregister(main_metrics_policy, st->policy);
  if (st->ctrls != NULL)
    metrics_unregister(ctrl_manager_metrics, st->ctrls);
  server_stop(st->srv);
  st->srv = NULL;
  ctrl_manager_stop(st->ctrls);
  runtime_stop(st->rt);
  ctrl_manager_free(st->ctrls);
  st->ctrls = NULL;
  policy_engine_free(st->policy);
  st->policy = NULL;
  if (st->reg != NULL)
    registry_free(st->reg);
  st->reg = NULL;
  runtime_free(st->rt);
  st->rt = NULL;
  config_free(st->cur);
  st->cur = NULL;
}

static bool main_ready(void *ud, char *why, size_t cap)
{
  return runtime_is_ready(ud, why, cap);
}

/* Controllers add their informer handlers before the informers start,
 * and start their workers once the informers run. */
static int main_start_kube(struct main_run *st)
{
  struct runtime_opts ro;
  struct server_hooks hooks = {.ready = main_ready};
  char err[CCM_MAIN_ERR];

  memset(&ro, 0, sizeof ro);
  ro.cfg = st->cur;
  ro.context = st->ov->context;
  ro.reg = st->reg;
  if (runtime_new(&ro, &st->rt, err, sizeof err) != 0 ||
      ctrl_manager_new(st->cur, st->rt, st->reg, st->policy, &st->ctrls,
                       err, sizeof err) != 0 ||
      runtime_start(st->rt, err, sizeof err) != 0 ||
      ctrl_manager_start(st->ctrls, err, sizeof err) != 0)
    goto fail;
  hooks.ud = st->rt;
  if (metrics_register(main_metrics_registry, st->reg) != 0 ||
      metrics_register(main_metrics_http, NULL) != 0 ||
      metrics_register(ctrl_manager_metrics, st->ctrls) != 0 ||
      metrics_register(main_metrics_policy, st->policy) != 0) {
    snprintf(err, sizeof err, "metrics: out of memory");
    goto fail;
  }
  if (server_start(st->cur->listen, &hooks, &st->srv, err, sizeof err) != 0)
    goto fail;
  log_msg(CCM_LOG_INFO, LOG_PREFIX, "serving /healthz, /readyz and /metrics "
          "on %s", st->cur->listen);
  return 0;
fail:
  log_msg(CCM_LOG_ERROR, LOG_PREFIX, "%s", err);
  return -1;
}

/* Wait for a signal; until the informers have synced, wake every
 * CCM_MAIN_POLL_MS to log it. Returns the signal or -1. */
static int main_wait_signal(struct main_run *st, const sigset_t *set)
{
  struct timespec ts = {.tv_sec = 0, .tv_nsec = CCM_MAIN_POLL_MS * 1000000L};
  int sig, e;

  while (!runtime_poll_synced(st->rt)) {
    sig = sigtimedwait(set, NULL, &ts);
    if (sig > 0)
      return sig;
    if (errno != EAGAIN && errno != EINTR) {
      log_msg(CCM_LOG_ERROR, LOG_PREFIX, "sigtimedwait: %s",
              strerror(errno));
      return -1;
    }
  }
  e = sigwait(set, &sig);
  if (e != 0) {
    log_msg(CCM_LOG_ERROR, LOG_PREFIX, "sigwait: %s", strerror(e));
    return -1;
  }
  return sig;
}

static int main_run(const char *path, const struct main_overrides *ov)
{
  struct main_run st;
  char err[CCM_MAIN_ERR];
  sigset_t set;
  int sig, rc = CCM_MAIN_EXIT_ERROR;
  bool http_up = false;

  memset(&st, 0, sizeof st);
  st.path = path;
  st.ov = ov;
  /* Block before any thread exists so that every thread inherits the mask
   * and only sigwait below sees these signals. */
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
    log_msg(CCM_LOG_ERROR, LOG_PREFIX, "cannot block signals");
    return CCM_MAIN_EXIT_ERROR;
  }
  signal(SIGPIPE, SIG_IGN);
  if (ov->log_level >= 0)
    log_set_level(ov->log_level);

  if (config_load(path, &st.cur, err, sizeof err) != 0) {
    log_msg(CCM_LOG_ERROR, LOG_PREFIX, "%s", err);
    goto fail;
  }
  main_overrides_apply(ov, st.cur);
  main_apply_log_level(ov, st.cur);
  log_msg(CCM_LOG_INFO, LOG_PREFIX,
          "ccm-host %s (ABI %d.%d) starting: config %s, cluster %s, "
          "%zu provider(s)", CCM_VERSION, CCM_ABI_MAJOR, CCM_ABI_MINOR, path,
          st.cur->cluster_name, st.cur->n_providers);
  if (http_global_init() != 0) {
    log_msg(CCM_LOG_ERROR, LOG_PREFIX, "libcurl global init failed");
    goto fail;
  }
  http_up = true;
  /* Private module copies go to state_dir/modules (made 0700 on load). */
  st.reg = registry_new(st.cur->state_dir, st.cur->drain_timeout_ms);
  if (st.reg == NULL) {
    log_msg(CCM_LOG_ERROR, LOG_PREFIX, "cannot create the provider "
            "registry for state_dir %s", st.cur->state_dir);
    goto fail;
  }
  if (registry_apply(st.reg, st.cur, err, sizeof err) != 0) {
    log_msg(CCM_LOG_ERROR, LOG_PREFIX, "cannot load the providers: %s", err);
    goto fail;
  }
  main_log_registry(st.reg);
  if (policy_engine_new(st.cur->policies, st.cur->n_policies, NULL,
                        &st.policy, err, sizeof err) != 0) {
    log_msg(CCM_LOG_ERROR, LOG_PREFIX, "policies: %s", err);
    goto fail;
  }
  if (st.cur->n_policies > 0 && policy_engine_watch(st.policy) != 0)
    log_msg(CCM_LOG_WARN, LOG_PREFIX, "cannot watch the policy files; "
            "SIGHUP still reloads them");
  log_msg(CCM_LOG_INFO, LOG_PREFIX, "policies: %zu file(s)%s",
          st.cur->n_policies,
          st.cur->n_policies ? "" : " (built-in defaults)");
  if (main_start_kube(&st) != 0)
    goto fail;
  main_log_controllers(st.cur);
  log_msg(CCM_LOG_INFO, LOG_PREFIX,
          "ready: SIGHUP reloads %s, SIGTERM or SIGINT stop", path);

  for (;;) {
    sig = main_wait_signal(&st, &set);
    if (sig < 0)
      goto fail;
    if (sig == SIGHUP) {
      main_reload(&st);
      continue;
    }
    log_msg(CCM_LOG_INFO, LOG_PREFIX, "%s: stopping (informers, lease "
            "release, then draining in-flight provider calls)",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    break;
  }
  rc = 0;
fail:
  main_run_free(&st);
  if (http_up)
    http_global_cleanup();
  if (rc == 0)
    log_msg(CCM_LOG_INFO, LOG_PREFIX, "stopped");
  return rc;
}

/* ---- command line ------------------------------------------------------- */

static int main_usage_error(const char *fmt, ...) CCM_PRINTF(1, 2);
static int main_usage_error(const char *fmt, ...)
{
  char msg[512];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "ccm-host: %s (see ccm-host --help)\n", msg);
  return CCM_MAIN_EXIT_USAGE;
}

static int main_set_mode(enum main_mode *mode, const char **arg,
                         enum main_mode want, const char *value)
{
  if (*mode != MODE_NONE && (*mode != want || *arg != value))
    return -1;
  *mode = want;
  *arg = value;
  return 0;
}

int main(int argc, char **argv)
{
  struct main_overrides ov = {.log_level = -1};
  enum main_mode mode = MODE_NONE;
  const char *arg = NULL;
  bool help = false, version = false;
  int c;

  /* cJSON's allocation hooks, before any thread can be inside cJSON. */
  json_arena_setup();
  /* --check-policy has options of its own (--provider, --service). */
  if (argc >= 2 && strcmp(argv[1], "--check-policy") == 0) {
    log_set_level(CCM_LOG_WARN);
    return policy_check_main(argc - 2, argv + 2);
  }
  opterr = 0; /* our own one-line messages */
  for (;;) {
    int want = MODE_NONE;
    c = getopt_long(argc, argv, ":hVc:l:", main_options, NULL);
    if (c == -1)
      break;
    switch (c) {
    case 'h': help = true; break;
    case 'V': version = true; break;
    case 'c': want = MODE_RUN; break;
    case OPT_CHECK_CONFIG: want = MODE_CHECK_CONFIG; break;
    case OPT_CHECK_MODULE: want = MODE_CHECK_MODULE; break;
    case OPT_DOCS: want = MODE_DOCS; break;
    case 'l':
      ov.log_level = log_level_parse(optarg);
      if (ov.log_level < 0)
        return main_usage_error("--log-level: \"%s\" is not one of error, "
                                "warn, info, debug", optarg);
      break;
    case OPT_KUBECONFIG: ov.kubeconfig = optarg; break;
    case OPT_MASTER: ov.master = optarg; break;
    case OPT_CONTEXT:
      if (optarg[0] == '\0')
        return main_usage_error("--context: must not be empty");
      ov.context = optarg;
      break;
    case OPT_CLUSTER_NAME:
      if (optarg[0] == '\0')
        return main_usage_error("--cluster-name: must not be empty");
      ov.cluster_name = optarg;
      break;
    case ':':
      return main_usage_error("option %s needs a value", argv[optind - 1]);
    default:
      if (optopt != 0)
        return main_usage_error("unknown option -%c", optopt);
      return main_usage_error("unknown option %s", argv[optind - 1]);
    }
    if (want != MODE_NONE &&
        main_set_mode(&mode, &arg, (enum main_mode)want,
                      want == MODE_DOCS ? NULL : optarg) != 0)
      return main_usage_error("%s: only one of --config, --check-config, "
                              "--check-module, --print-config-docs",
                              argv[optind - 1]);
  }
  if (help) {
    main_usage(stdout);
    return 0;
  }
  if (version) {
    printf("ccm-host %s (ABI %d.%d)\n", CCM_VERSION, CCM_ABI_MAJOR,
           CCM_ABI_MINOR);
    return 0;
  }
  if (optind < argc)
    return main_usage_error("unexpected argument \"%s\"", argv[optind]);

  switch (mode) {
  case MODE_RUN:
    return main_run(arg, &ov);
  case MODE_CHECK_CONFIG:
    /* Quiet unless asked: the answer goes to stdout. */
    log_set_level(ov.log_level >= 0 ? ov.log_level : CCM_LOG_WARN);
    return main_check_config(arg, &ov);
  case MODE_CHECK_MODULE:
    log_set_level(ov.log_level >= 0 ? ov.log_level : CCM_LOG_WARN);
    return main_check_module(arg);
  case MODE_DOCS:
    config_write_docs(stdout);
    return fflush(stdout) == 0 ? 0 : CCM_MAIN_EXIT_ERROR;
  case MODE_NONE:
    break;
  }
  return main_usage_error("nothing to do: give --config FILE, "
                          "--check-config FILE or --check-module PATH");
}
