/*
 * schema.c: the schema table of host.cfg and the walk that applies it:
 * unknown keys, types, ranges, per-key validators and defaults, and the
 * Markdown reference generated from the same table. Rules that span keys
 * (default provider, uniqueness, paths, hashes) live in config.c.
 */
#include "config/schema.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/mem.h"

enum schema_kind {
  SK_STRING = 1,
  SK_INT,
  SK_NUMBER,     /* integer or float */
  SK_BOOL,
  SK_STRINGS,    /* array or list of strings */
  SK_GROUP,      /* a group whose keys are in the table */
  SK_GROUP_LIST, /* a list of such groups (providers) */
  SK_ANY_GROUP   /* a group the host does not look into */
};

enum schema_dest {
  SD_NONE = 0, /* not stored by the walk (groups, string arrays) */
  SD_STR,      /* const char * */
  SD_U32,      /* uint32_t */
  SD_INT,      /* int */
  SD_DOUBLE,   /* double */
  SD_BOOL,     /* bool */
  SD_SETTING   /* const config_setting_t * */
};

struct schema_key {
  const char *path;   /* "providers.[].http.qps": "[]" stands for any index */
  enum schema_kind kind;
  bool required;
  const char *def;    /* textual default; NULL = none */
  long long min, max; /* SK_INT, SK_NUMBER */
  int (*check)(const config_setting_t *s, char *why, size_t cap);
  enum schema_dest dest;
  size_t offset;      /* in struct host_config, or struct provider_config
                         for keys under "providers.[]." */
  const char *help;
};

#define CCM_SCHEMA_PROVIDER_PREFIX "providers.[]."
#define CCM_SCHEMA_KEY_MAX 256

/* ---- validators: value already has the right type ------------------- */

static int check_nonempty(const config_setting_t *s, char *why, size_t cap)
{
  const char *v = config_setting_get_string(s);

  if (v == NULL || v[0] == '\0') {
    snprintf(why, cap, "must not be empty");
    return -1;
  }
  return 0;
}

static int check_abs_path(const config_setting_t *s, char *why, size_t cap)
{
  const char *v = config_setting_get_string(s);

  if (v == NULL || v[0] != '/') {
    snprintf(why, cap, "must be an absolute path, got \"%s\"",
             v == NULL ? "" : v);
    return -1;
  }
  return 0;
}

/* [a-z0-9-], 1..63: provider names double as log prefixes and metric
 * labels, so they stay DNS-label-like. */
static int check_name(const config_setting_t *s, char *why, size_t cap)
{
  const char *v = config_setting_get_string(s);
  size_t len = v == NULL ? 0 : strlen(v);

  if (len == 0 || len > 63) {
    snprintf(why, cap, "must be 1 to 63 characters from [a-z0-9-]");
    return -1;
  }
  for (size_t i = 0; i < len; i++) {
    char c = v[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      snprintf(why, cap, "\"%s\": only [a-z0-9-] is allowed", v);
      return -1;
    }
  }
  return 0;
}

/* A Kubernetes object name: DNS subdomain, [a-z0-9.-], 1..253. */
static int check_k8s_name(const config_setting_t *s, char *why, size_t cap)
{
  const char *v = config_setting_get_string(s);
  size_t len = v == NULL ? 0 : strlen(v);

  if (len == 0 || len > 253) {
    snprintf(why, cap, "must be 1 to 253 characters from [a-z0-9.-]");
    return -1;
  }
  for (size_t i = 0; i < len; i++) {
    char c = v[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '.')) {
      snprintf(why, cap, "\"%s\" is not a Kubernetes name ([a-z0-9.-])", v);
      return -1;
    }
  }
  return 0;
}

/* spec.loadBalancerClass is a label-style key: printable, no spaces. */
static int check_lb_class(const config_setting_t *s, char *why, size_t cap)
{
  const char *v = config_setting_get_string(s);
  size_t len = v == NULL ? 0 : strlen(v);

  if (len == 0 || len > 253) {
    snprintf(why, cap, "must be 1 to 253 characters");
    return -1;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c <= ' ' || c >= 0x7f) {
      snprintf(why, cap, "\"%s\": spaces and control characters are not "
               "allowed", v);
      return -1;
    }
  }
  return 0;
}

static int check_log_level(const config_setting_t *s, char *why, size_t cap)
{
  const char *v = config_setting_get_string(s);

  if (v == NULL || log_level_parse(v) < 0) {
    snprintf(why, cap, "\"%s\" is not one of error, warn, info, debug",
             v == NULL ? "" : v);
    return -1;
  }
  return 0;
}

static int check_controller(const config_setting_t *s, char *why, size_t cap)
{
  static const char *const known[] = {"service", "node", "node-lifecycle",
                                      "route", "*"};
  const char *v = config_setting_get_string(s);

  for (size_t i = 0; v != NULL && i < sizeof known / sizeof known[0]; i++) {
    if (strcmp(v, known[i]) == 0)
      return 0;
  }
  snprintf(why, cap, "\"%s\" is not one of service, node, node-lifecycle, "
           "route, *", v == NULL ? "" : v);
  return -1;
}

/* "ADDR:PORT" with ADDR an IPv4 address, "[IPv6]" or a bare IPv6 address
 * (the last colon separates the port). Port 0 asks for a free port. */
int config_listen_parse(const char *v, char *addr, size_t addr_cap,
                        unsigned *port, char *why, size_t cap)
{
  unsigned char buf[sizeof(struct in6_addr)];
  const char *colon, *host, *host_end;
  char *end = NULL;
  size_t hlen;
  long p;
  int family;

  if (v == NULL || v[0] == '\0')
    goto bad;
  if (v[0] == '[') {
    host = v + 1;
    host_end = strchr(host, ']');
    if (host_end == NULL || host_end[1] != ':')
      goto bad;
    colon = host_end + 1;
    family = AF_INET6;
  } else {
    host = v;
    colon = strrchr(v, ':');
    if (colon == NULL)
      goto bad;
    host_end = colon;
    family = memchr(v, ':', (size_t)(colon - v)) != NULL ? AF_INET6 : AF_INET;
  }
  hlen = (size_t)(host_end - host);
  if (hlen == 0 || hlen >= addr_cap)
    goto bad;
  memcpy(addr, host, hlen);
  addr[hlen] = '\0';
  if (inet_pton(family, addr, buf) != 1) {
    snprintf(why, cap, "\"%s\": \"%s\" is not an IPv%d address", v, addr,
             family == AF_INET6 ? 6 : 4);
    return -1;
  }
  errno = 0;
  p = strtol(colon + 1, &end, 10);
  if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 0 || p > 65535 ||
      !isdigit((unsigned char)colon[1])) {
    snprintf(why, cap, "\"%s\": port must be a number from 0 to 65535", v);
    return -1;
  }
  *port = (unsigned)p;
  return 0;
bad:
  snprintf(why, cap, "\"%s\" is not ADDR:PORT (IPv4, [IPv6] or IPv6)",
           v == NULL ? "" : v);
  return -1;
}

static int check_listen(const config_setting_t *s, char *why, size_t cap)
{
  char addr[INET6_ADDRSTRLEN + 1];
  unsigned port;

  return config_listen_parse(config_setting_get_string(s), addr, sizeof addr,
                             &port, why, cap);
}

/* ---- the table --------------------------------------------------------- */

#define HC(f) offsetof(struct host_config, f)
#define PC(f) offsetof(struct provider_config, f)

static const struct schema_key schema[] = {
  {.path = "cluster_name", .kind = SK_STRING, .def = "kubernetes",
   .check = check_nonempty, .dest = SD_STR, .offset = HC(cluster_name),
   .help = "Name of this cluster, passed to providers and used to tag "
           "cloud resources (upstream --cluster-name)."},
  {.path = "kubeconfig", .kind = SK_STRING, .check = check_nonempty,
   .dest = SD_STR, .offset = HC(kubeconfig),
   .help = "Path of a kubeconfig file, relative to this file's directory "
           "when not absolute (--kubeconfig is relative to the working "
           "directory, as kubectl's); absent means in-cluster configuration "
           "(service-account token)."},
  {.path = "master", .kind = SK_STRING, .check = check_nonempty,
   .dest = SD_STR, .offset = HC(master),
   .help = "URL of the Kubernetes API server; overrides the kubeconfig."},
  {.path = "kube_api_qps", .kind = SK_NUMBER, .def = "20", .min = 1,
   .max = 100000, .dest = SD_DOUBLE, .offset = HC(kube_api_qps),
   .help = "Sustained request rate to the Kubernetes API (upstream "
           "--kube-api-qps, 20). Watches do not count. Read at start only."},
  {.path = "kube_api_burst", .kind = SK_INT, .def = "30", .min = 1,
   .max = 100000, .dest = SD_INT, .offset = HC(kube_api_burst),
   .help = "Requests allowed at once above kube_api_qps (upstream "
           "--kube-api-burst, 30). Read at start only."},
  {.path = "controllers", .kind = SK_STRINGS,
   .def = "[\"service\", \"node\", \"node-lifecycle\"]",
   .check = check_controller,
   .help = "Controllers to run, from service, node, node-lifecycle, route; "
           "\"*\" means all four. The route controller is off by default, "
           "as upstream runs it only with --allocate-node-cidrs."},
  {.path = "service_workers", .kind = SK_INT, .def = "4", .min = 1,
   .max = 64, .dest = SD_U32, .offset = HC(service_workers),
   .help = "Service controller workers. Upstream defaults to 1, which "
           "serialises every cloud call of every Service; 4 keeps one "
           "slow load balancer from stalling the others while staying "
           "well inside cloud API limits (each provider also has its own "
           "http.qps). A key is never processed by two workers at once."},
  {.path = "node_workers", .kind = SK_INT, .def = "4", .min = 1, .max = 64,
   .dest = SD_U32, .offset = HC(node_workers),
   .help = "Node controller workers (upstream --concurrent-node-syncs, "
           "default 1), for the same reason as service_workers."},
  {.path = "service_node_sync_period_s", .kind = SK_INT, .def = "100",
   .min = 1, .max = 86400, .dest = SD_U32,
   .offset = HC(service_node_sync_period_s),
   .help = "How often the service controller re-checks every load "
           "balancer's backend node set even without a Node change "
           "(upstream nodeSyncPeriod, 100 s)."},
  {.path = "service_status_writer", .kind = SK_BOOL, .def = "true",
   .dest = SD_BOOL, .offset = HC(service_status_writer),
   .help = "Hand the status patch and the input-fingerprint record that "
           "end an ensure to the service controller's writer thread, so a "
           "worker takes its next Service meanwhile (the writes of one "
           "Service stay in order). false: each worker writes them itself, "
           "as upstream. Read at start only."},
  {.path = "node_status_update_period_s", .kind = SK_INT, .def = "300",
   .min = 1, .max = 86400, .dest = SD_U32,
   .offset = HC(node_status_update_period_s),
   .help = "How often the node controller refreshes initialised Nodes' "
           "addresses from the provider (upstream "
           "--node-status-update-frequency for the CCM, 5 min)."},
  {.path = "node_monitor_period_s", .kind = SK_INT, .def = "5", .min = 1,
   .max = 3600, .dest = SD_U32, .offset = HC(node_monitor_period_s),
   .help = "How often the node lifecycle controller checks NotReady Nodes "
           "against the provider (upstream --node-monitor-period, 5 s)."},
  {.path = "cluster_cidr", .kind = SK_STRING, .check = check_nonempty,
   .dest = SD_STR, .offset = HC(cluster_cidr),
   .help = "CIDR of the Pod network (upstream --cluster-cidr). The route "
           "controller deletes only stale routes inside it, and runs only "
           "when it is set."},
  {.path = "configure_cloud_routes", .kind = SK_BOOL, .def = "true",
   .dest = SD_BOOL, .offset = HC(configure_cloud_routes),
   .help = "Let the route controller create and delete cloud routes "
           "(upstream --configure-cloud-routes)."},
  {.path = "route_reconcile_period_s", .kind = SK_INT, .def = "10",
   .min = 1, .max = 3600, .dest = SD_U32,
   .offset = HC(route_reconcile_period_s),
   .help = "How often the route controller reconciles routes (upstream "
           "--route-reconciliation-period, 10 s)."},
  {.path = "listen", .kind = SK_STRING, .def = "127.0.0.1:10258",
   .check = check_listen, .dest = SD_STR, .offset = HC(listen),
   .help = "ADDR:PORT of the /healthz, /readyz and /metrics endpoints; "
           "IPv4, [IPv6] or IPv6. Loopback unless you mean otherwise."},
  {.path = "log_level", .kind = SK_STRING, .def = "info",
   .check = check_log_level, .dest = SD_STR, .offset = HC(log_level),
   .help = "One of error, warn, info, debug; --log-level overrides it."},
  {.path = "state_dir", .kind = SK_STRING, .def = "/var/lib/ccmhost",
   .check = check_abs_path, .dest = SD_STR, .offset = HC(state_dir),
   .help = "Absolute directory for host state; private copies of loaded "
           "modules live in its modules/ subdirectory. Read at start only."},
  {.path = "drain_timeout_ms", .kind = SK_INT, .def = "10000", .min = 100,
   .max = 600000, .dest = SD_U32, .offset = HC(drain_timeout_ms),
   .help = "How long a hot-swap waits for in-flight calls on the old "
           "generation of a provider before destroying it. Read at start "
           "only."},
  {.path = "leader_election", .kind = SK_GROUP,
   .help = "Lease-based leader election, for several replicas."},
  {.path = "leader_election.enabled", .kind = SK_BOOL, .def = "true",
   .dest = SD_BOOL, .offset = HC(leader.enabled),
   .help = "Run controllers only while holding the lease."},
  {.path = "leader_election.lease_name", .kind = SK_STRING,
   .def = "cloud-controller-manager", .check = check_k8s_name,
   .dest = SD_STR, .offset = HC(leader.lease_name),
   .help = "Name of the coordination.k8s.io Lease."},
  {.path = "leader_election.lease_namespace", .kind = SK_STRING,
   .def = "kube-system", .check = check_k8s_name, .dest = SD_STR,
   .offset = HC(leader.lease_namespace),
   .help = "Namespace of the Lease."},
  {.path = "leader_election.lease_duration_s", .kind = SK_INT, .def = "15",
   .min = 1, .max = 3600, .dest = SD_U32,
   .offset = HC(leader.lease_duration_s),
   .help = "How long standbys wait before taking over a lease that is "
           "not renewed."},
  {.path = "leader_election.renew_deadline_s", .kind = SK_INT, .def = "10",
   .min = 1, .max = 3600, .dest = SD_U32,
   .offset = HC(leader.renew_deadline_s),
   .help = "How long the leader keeps trying to renew before it stops "
           "its controllers; must be less than lease_duration_s."},
  {.path = "leader_election.retry_period_s", .kind = SK_INT, .def = "2",
   .min = 1, .max = 3600, .dest = SD_U32,
   .offset = HC(leader.retry_period_s),
   .help = "Interval between attempts to acquire or renew; must be less "
           "than renew_deadline_s."},
  {.path = "policies", .kind = SK_STRINGS, .check = check_nonempty,
   .help = "Lua policy files, applied in order; relative paths resolve "
           "against the directory of this file."},
  {.path = "providers", .kind = SK_GROUP_LIST, .required = true,
   .help = "The provider modules to load, a non-empty list of groups. "
           "Exactly one is the default (Services without "
           "spec.loadBalancerClass); every other one is bound to its own "
           "load_balancer_class."},
  {.path = "providers.[].name", .kind = SK_STRING, .required = true,
   .check = check_name, .dest = SD_STR, .offset = PC(name),
   .help = "Unique name of this provider, [a-z0-9-]; used in logs and "
           "metrics, and to match providers across reloads."},
  {.path = "providers.[].module", .kind = SK_STRING, .required = true,
   .check = check_nonempty, .dest = SD_STR, .offset = PC(module),
   .help = "Path of the module file (.so); a relative path resolves "
           "against the directory of this file."},
  {.path = "providers.[].default", .kind = SK_BOOL, .def = "false",
   .dest = SD_BOOL, .offset = PC(is_default),
   .help = "This provider serves Services without a class (and Nodes). "
           "A lone provider without this key is the default."},
  {.path = "providers.[].load_balancer_class", .kind = SK_STRING,
   .check = check_lb_class, .dest = SD_STR, .offset = PC(lb_class),
   .help = "The spec.loadBalancerClass this provider serves; required for "
           "every provider but the default, which must not have one."},
  {.path = "providers.[].call_timeout_ms", .kind = SK_INT, .def = "30000",
   .min = 1, .max = 3600000, .dest = SD_U32, .offset = PC(call_timeout_ms),
   .help = "Deadline of one provider call (the module sees it as "
           "call_remaining_ms)."},
  {.path = "providers.[].http", .kind = SK_GROUP,
   .help = "HTTP client settings of this provider's module."},
  {.path = "providers.[].http.ca_file", .kind = SK_STRING,
   .check = check_abs_path, .dest = SD_STR, .offset = PC(http.ca_file),
   .help = "Absolute path of a PEM CA bundle; absent means the system "
           "store."},
  {.path = "providers.[].http.insecure_skip_tls_verify", .kind = SK_BOOL,
   .def = "false", .dest = SD_BOOL, .offset = PC(http.insecure_skip_verify),
   .help = "Disable TLS verification (labs only; logged as a warning)."},
  {.path = "providers.[].http.qps", .kind = SK_NUMBER, .def = "10",
   .min = 0, .max = 100000, .dest = SD_DOUBLE, .offset = PC(http.qps),
   .help = "Sustained request rate to the cloud API; 0 means unlimited."},
  {.path = "providers.[].http.burst", .kind = SK_INT, .def = "20", .min = 1,
   .max = 100000, .dest = SD_INT, .offset = PC(http.burst),
   .help = "Requests allowed at once above qps (token bucket size)."},
  {.path = "providers.[].http.timeout_ms", .kind = SK_INT, .def = "10000",
   .min = 1, .max = 600000, .dest = SD_U32, .offset = PC(http.timeout_ms),
   .help = "Default timeout of one HTTP request."},
  {.path = "providers.[].http.proxy", .kind = SK_STRING,
   .check = check_nonempty, .dest = SD_STR, .offset = PC(http.proxy),
   .help = "Proxy URL; absent means the environment (https_proxy, "
           "no_proxy)."},
  {.path = "providers.[].config", .kind = SK_ANY_GROUP, .dest = SD_SETTING,
   .offset = PC(config),
   .help = "The module's own settings; the host checks only that this is "
           "a group. `ccm-host --check-module` lists the keys a module "
           "declares."},
};

#define SCHEMA_LEN (sizeof schema / sizeof schema[0])

/* ---- errors ------------------------------------------------------------- */

int config_fail(struct config_ctx *ctx, const config_setting_t *at,
                const char *key, const char *fmt, ...)
{
  const char *file = ctx->path;
  unsigned line = 1;
  char msg[512];
  va_list ap;

  if (at != NULL) {
    if (config_setting_source_file(at) != NULL)
      file = config_setting_source_file(at);
    if (config_setting_source_line(at) > 0)
      line = config_setting_source_line(at);
  }
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (ctx->errlen > 0)
    snprintf(ctx->err, ctx->errlen, "%s:%u: %s: %s", file, line, key, msg);
  return -1;
}

static const char *type_name(const config_setting_t *s)
{
  switch (config_setting_type(s)) {
  case CONFIG_TYPE_GROUP: return "a group";
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64: return "an integer";
  case CONFIG_TYPE_FLOAT: return "a float";
  case CONFIG_TYPE_STRING: return "a string";
  case CONFIG_TYPE_BOOL: return "a boolean";
  case CONFIG_TYPE_ARRAY: return "an array";
  case CONFIG_TYPE_LIST: return "a list";
  default: return "nothing";
  }
}

static const char *kind_expect(enum schema_kind k)
{
  switch (k) {
  case SK_STRING: return "a string";
  case SK_INT: return "an integer";
  case SK_NUMBER: return "a number";
  case SK_BOOL: return "a boolean (true or false)";
  case SK_STRINGS: return "an array of strings [\"a\", \"b\"]";
  case SK_GROUP:
  case SK_ANY_GROUP: return "a group { ... }";
  case SK_GROUP_LIST: return "a list of groups ( { ... }, ... )";
  }
  return "?";
}

static int fail_type(struct config_ctx *ctx, const config_setting_t *s,
                     const char *key, enum schema_kind k)
{
  return config_fail(ctx, s, key, "expected %s, got %s", kind_expect(k),
                     type_name(s));
}

/* ---- the walk ----------------------------------------------------------- */

static const struct schema_key *schema_find(const char *path)
{
  for (size_t i = 0; i < SCHEMA_LEN; i++) {
    if (strcmp(schema[i].path, path) == 0)
      return &schema[i];
  }
  return NULL;
}

/* The key's last component when it is a direct child of prefix. */
static const char *schema_child(const struct schema_key *k,
                                const char *prefix)
{
  size_t n = strlen(prefix);

  if (strncmp(k->path, prefix, n) != 0 || strchr(k->path + n, '.') != NULL)
    return NULL;
  return k->path + n;
}

static void store_str(const struct schema_key *k, void *base, const char *v)
{
  memcpy((char *)base + k->offset, &v, sizeof v);
}

static void store_int(const struct schema_key *k, void *base, long long v)
{
  if (k->dest == SD_U32) {
    uint32_t u = (uint32_t)v;
    memcpy((char *)base + k->offset, &u, sizeof u);
  } else if (k->dest == SD_INT) {
    int i = (int)v;
    memcpy((char *)base + k->offset, &i, sizeof i);
  }
}

static void store_double(const struct schema_key *k, void *base, double v)
{
  memcpy((char *)base + k->offset, &v, sizeof v);
}

static void store_bool(const struct schema_key *k, void *base, bool v)
{
  memcpy((char *)base + k->offset, &v, sizeof v);
}

static int walk_group(struct config_ctx *ctx, const config_setting_t *grp,
                      const config_setting_t *at, const char *sprefix,
                      const char *dprefix, void *base);

static int walk_providers(struct config_ctx *ctx, const config_setting_t *s,
                          const char *key)
{
  struct host_config *cfg = ctx->cfg;
  int n = config_setting_length(s);
  char dprefix[CCM_SCHEMA_KEY_MAX];

  if (config_setting_type(s) != CONFIG_TYPE_LIST &&
      !(config_setting_type(s) == CONFIG_TYPE_ARRAY && n == 0))
    return fail_type(ctx, s, key, SK_GROUP_LIST);
  if (n <= 0)
    return config_fail(ctx, s, key, "must list at least one provider");
  cfg->providers = mem_calloc((size_t)n, sizeof cfg->providers[0]);
  if (cfg->providers == NULL)
    return config_fail(ctx, s, key, "out of memory");
  cfg->n_providers = (size_t)n;
  for (int i = 0; i < n; i++) {
    const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
    snprintf(dprefix, sizeof dprefix, "%s.[%d]", key, i);
    if (config_setting_type(e) != CONFIG_TYPE_GROUP)
      return config_fail(ctx, e, dprefix, "expected a group { ... }, got %s",
                         type_name(e));
    snprintf(dprefix, sizeof dprefix, "%s.[%d].", key, i);
    if (walk_group(ctx, e, e, CCM_SCHEMA_PROVIDER_PREFIX, dprefix,
                   &cfg->providers[i]) != 0)
      return -1;
  }
  return 0;
}

static int check_value(struct config_ctx *ctx, const struct schema_key *k,
                       const config_setting_t *s, const char *key,
                       void *base)
{
  int type = config_setting_type(s);
  char why[384];
  char sub[CCM_SCHEMA_KEY_MAX];

  why[0] = '\0';
  switch (k->kind) {
  case SK_STRING:
    if (type != CONFIG_TYPE_STRING)
      return fail_type(ctx, s, key, k->kind);
    if (k->check != NULL && k->check(s, why, sizeof why) != 0)
      return config_fail(ctx, s, key, "%s", why);
    store_str(k, base, config_setting_get_string(s));
    return 0;
  case SK_INT: {
    long long v;
    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
      return fail_type(ctx, s, key, k->kind);
    v = config_setting_get_int64(s);
    if (v < k->min || v > k->max)
      return config_fail(ctx, s, key, "must be from %lld to %lld, got %lld",
                         k->min, k->max, v);
    store_int(k, base, v);
    return 0;
  }
  case SK_NUMBER: {
    double v;
    if (type == CONFIG_TYPE_FLOAT)
      v = config_setting_get_float(s);
    else if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
      v = (double)config_setting_get_int64(s);
    else
      return fail_type(ctx, s, key, k->kind);
    if (!(v >= (double)k->min && v <= (double)k->max))
      return config_fail(ctx, s, key, "must be from %lld to %lld, got %g",
                         k->min, k->max, v);
    store_double(k, base, v);
    return 0;
  }
  case SK_BOOL:
    if (type != CONFIG_TYPE_BOOL)
      return fail_type(ctx, s, key, k->kind);
    store_bool(k, base, config_setting_get_bool(s) != 0);
    return 0;
  case SK_STRINGS: {
    int n = config_setting_length(s);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
      return fail_type(ctx, s, key, k->kind);
    for (int i = 0; i < n; i++) {
      const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
      snprintf(sub, sizeof sub, "%s.[%d]", key, i);
      if (config_setting_type(e) != CONFIG_TYPE_STRING)
        return config_fail(ctx, e, sub, "expected a string, got %s",
                           type_name(e));
      if (k->check != NULL && k->check(e, why, sizeof why) != 0)
        return config_fail(ctx, e, sub, "%s", why);
    }
    return 0;
  }
  case SK_GROUP: {
    char sprefix[CCM_SCHEMA_KEY_MAX];
    if (type != CONFIG_TYPE_GROUP)
      return fail_type(ctx, s, key, k->kind);
    snprintf(sprefix, sizeof sprefix, "%s.", k->path);
    snprintf(sub, sizeof sub, "%s.", key);
    return walk_group(ctx, s, s, sprefix, sub, base);
  }
  case SK_GROUP_LIST:
    return walk_providers(ctx, s, key);
  case SK_ANY_GROUP:
    if (type != CONFIG_TYPE_GROUP)
      return fail_type(ctx, s, key, k->kind);
    memcpy((char *)base + k->offset, &s, sizeof s);
    return 0;
  }
  return config_fail(ctx, s, key, "unsupported schema kind");
}

static int apply_default(struct config_ctx *ctx, const struct schema_key *k,
                         const config_setting_t *at, const char *key,
                         void *base)
{
  if (k->required)
    return config_fail(ctx, at, key, "required key is missing");
  switch (k->dest) {
  case SD_STR:
    store_str(k, base, k->def);
    break;
  case SD_U32:
  case SD_INT:
    store_int(k, base, k->def == NULL ? 0 : strtoll(k->def, NULL, 10));
    break;
  case SD_DOUBLE:
    store_double(k, base, k->def == NULL ? 0.0 : strtod(k->def, NULL));
    break;
  case SD_BOOL:
    store_bool(k, base, k->def != NULL && strcmp(k->def, "true") == 0);
    break;
  case SD_SETTING:
  case SD_NONE:
    break;
  }
  if (k->kind == SK_GROUP) {
    /* An absent group still gets the defaults of its keys. */
    char sprefix[CCM_SCHEMA_KEY_MAX], dprefix[CCM_SCHEMA_KEY_MAX];
    snprintf(sprefix, sizeof sprefix, "%s.", k->path);
    snprintf(dprefix, sizeof dprefix, "%s.", key);
    return walk_group(ctx, NULL, at, sprefix, dprefix, base);
  }
  return 0;
}

/* grp may be NULL (an absent group): then only defaults apply, and a
 * missing required key is reported at `at`. */
static int walk_group(struct config_ctx *ctx, const config_setting_t *grp,
                      const config_setting_t *at, const char *sprefix,
                      const char *dprefix, void *base)
{
  char spath[CCM_SCHEMA_KEY_MAX], dkey[CCM_SCHEMA_KEY_MAX];
  int n = grp == NULL ? 0 : config_setting_length(grp);

  for (int i = 0; i < n; i++) {
    const config_setting_t *m = config_setting_get_elem(grp, (unsigned)i);
    const char *name = config_setting_name(m);
    const struct schema_key *k;

    snprintf(dkey, sizeof dkey, "%s%s", dprefix, name == NULL ? "?" : name);
    snprintf(spath, sizeof spath, "%s%s", sprefix, name == NULL ? "?" : name);
    k = schema_find(spath);
    if (k == NULL)
      return config_fail(ctx, m, dkey, "unknown key");
    if (check_value(ctx, k, m, dkey, base) != 0)
      return -1;
  }
  for (size_t i = 0; i < SCHEMA_LEN; i++) {
    const char *leaf = schema_child(&schema[i], sprefix);
    if (leaf == NULL)
      continue;
    if (grp != NULL && config_setting_get_member(grp, leaf) != NULL)
      continue;
    snprintf(dkey, sizeof dkey, "%s%s", dprefix, leaf);
    if (apply_default(ctx, &schema[i], at, dkey, base) != 0)
      return -1;
  }
  return 0;
}

int schema_apply(struct config_ctx *ctx, const config_setting_t *root)
{
  return walk_group(ctx, root, root, "", "", ctx->cfg);
}

/* ---- docs --------------------------------------------------------------- */

static void docs_type(const struct schema_key *k, char *out, size_t cap)
{
  switch (k->kind) {
  case SK_STRING: snprintf(out, cap, "string"); break;
  case SK_INT: snprintf(out, cap, "integer %lld..%lld", k->min, k->max); break;
  case SK_NUMBER: snprintf(out, cap, "number %lld..%lld", k->min, k->max);
    break;
  case SK_BOOL: snprintf(out, cap, "bool"); break;
  case SK_STRINGS: snprintf(out, cap, "array of strings"); break;
  case SK_GROUP: snprintf(out, cap, "group"); break;
  case SK_GROUP_LIST: snprintf(out, cap, "list of groups"); break;
  case SK_ANY_GROUP: snprintf(out, cap, "group (module-defined)"); break;
  }
}

static void docs_default(const struct schema_key *k, char *out, size_t cap)
{
  if (k->required)
    snprintf(out, cap, "required");
  else if (k->def == NULL)
    snprintf(out, cap, "-");
  else if (k->kind == SK_STRING)
    snprintf(out, cap, "`\"%s\"`", k->def);
  else
    snprintf(out, cap, "`%s`", k->def);
}

void config_write_docs(FILE *out)
{
  char type[64], def[128];

  fputs("# Host configuration reference\n\n"
        "<!-- Generated by `ccm-host --print-config-docs` from the schema "
        "table in\n"
        "     host/config/schema.c. Do not edit by hand: run "
        "`make config-docs`. -->\n\n"
        "`ccm-host --config FILE` reads one [libconfig](https://hyperrealm.github.io/libconfig/)\n"
        "file. `ccm-host --check-config FILE` validates it without loading "
        "anything.\n"
        "`examples/host.cfg` is a commented example.\n\n"
        "Every key below is checked. An unknown key (anywhere except inside\n"
        "`providers.[i].config`), a wrong type, a value out of range or a "
        "missing\n"
        "required key is an error, reported on one line as "
        "`FILE:LINE: KEY: what is wrong`,\n"
        "for example:\n\n"
        "```\n"
        "host.cfg:12: providers.[0].http.qps: expected a number, got a "
        "string\n"
        "```\n\n"
        "`[]` in a key stands for any index of a list: "
        "`providers.[0].name`, `providers.[1].name`, ...\n\n"
        "## Keys\n\n"
        "| Key | Type | Default | Description |\n"
        "|---|---|---|---|\n",
        out);
  for (size_t i = 0; i < SCHEMA_LEN; i++) {
    docs_type(&schema[i], type, sizeof type);
    docs_default(&schema[i], def, sizeof def);
    fprintf(out, "| `%s` | %s | %s | %s |\n", schema[i].path, type, def,
            schema[i].help);
  }
  fputs("\n## Rules across keys\n\n"
        "- Exactly one provider is the default. A lone provider without a\n"
        "  `default` key is the default.\n"
        "- The default provider has no `load_balancer_class`; every other\n"
        "  provider has one, and no two providers share a class or a name.\n"
        "- `leader_election`: `retry_period_s` < `renew_deadline_s` <\n"
        "  `lease_duration_s`.\n"
        "- Relative `module` and `policies` paths resolve against the "
        "directory of the\n"
        "  config file, not the working directory.\n\n"
        "## Reload\n\n"
        "`SIGHUP` re-reads the file. When it is valid, each provider whose "
        "module file\n"
        "or settings changed (by content hash over `module`, `default`,\n"
        "`load_balancer_class`, `call_timeout_ms`, `http` and `config`) is "
        "hot-swapped;\n"
        "the others keep running untouched. When it is not valid, or a "
        "module fails to\n"
        "load, one line says why and the running configuration stays in "
        "force.\n"
        "`state_dir` and `drain_timeout_ms` are read at start only.\n\n"
        "## Command line\n\n"
        "`--kubeconfig`, `--master`, `--cluster-name` and `--log-level` "
        "override the\n"
        "keys of the same name, also across reloads. `ccm-host --help` "
        "lists every flag.\n",
        out);
}
