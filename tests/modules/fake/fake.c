/*
 * fake.c: the in-memory test provider with a call log and fault injection;
 * -D switches build its variants, including the broken ones the loader must
 * refuse. It must not create threads, atexit handlers or thread-locals.
 *
 * Config keys (all optional):
 *   call_log = "/path"        one line "op arg" appended per call
 *   instances = ["node-a"]    known instances (providerID fake://<node>)
 *   latency_ms = { all = 0; lb_ensure = 10; ... }   sleep per call
 *   error = { lb_get = "throttled"; ... }          injected status per op
 *   fill_on_error = true      lb_get and instance_metadata fill their
 *                             result before returning an injected error
 *   ingress_hostname = "h"    ingress entries carry this hostname too
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ccm_provider.h"

#ifndef FAKE_VERSION
#define FAKE_VERSION "1.0.0"
#endif
#ifndef FAKE_ABI_MAJOR
#define FAKE_ABI_MAJOR CCM_ABI_MAJOR
#endif
#ifndef FAKE_ABI_MINOR
#define FAKE_ABI_MINOR CCM_ABI_MINOR
#endif
#ifdef FAKE_SLOWDRAIN
#define FAKE_DEFAULT_LATENCY_MS 300
#else
#define FAKE_DEFAULT_LATENCY_MS 0
#endif

enum fake_op {
  FAKE_LB_GET,
  FAKE_LB_ENSURE,
  FAKE_LB_UPDATE_HOSTS,
  FAKE_LB_DELETE,
  FAKE_INSTANCE_EXISTS,
  FAKE_INSTANCE_SHUTDOWN,
  FAKE_INSTANCE_METADATA,
  FAKE_INSTANCE_METADATA_BATCH,
  FAKE_ROUTE_LIST,
  FAKE_ROUTE_CREATE,
  FAKE_ROUTE_DELETE,
  FAKE_STATE_EXPORT,
  FAKE_STATE_IMPORT,
  FAKE_OP_COUNT
};

static const char *const fake_op_names[FAKE_OP_COUNT] = {
  "lb_get", "lb_ensure", "lb_update_hosts", "lb_delete", "instance_exists",
  "instance_shutdown", "instance_metadata", "instance_metadata_batch",
  "route_list", "route_create", "route_delete", "state_export",
  "state_import",
};

struct fake_lb {
  char *name;
  uint32_t ip_index;
  uint32_t n_hosts;
};

struct fake_route {
  char *name;
  char *target;
  char *cidr;
};

struct fake {
  const struct ccm_host_api *api;
  struct ccm_host *host;
  pthread_mutex_t lock;      /* lbs, routes, next_ip, the call log */
  atomic_int in_flight;      /* serial variant: detects overlapping calls */
  char *call_log;
  char *ingress_hostname;    /* NULL: ingress with an IP only */
  char **instances;
  size_t n_instances;
  int64_t latency_ms[FAKE_OP_COUNT];
  int error[FAKE_OP_COUNT];  /* CCM_OK = none */
  bool fill_on_error;        /* leave a result behind on injected errors */
  struct fake_lb *lbs;
  size_t n_lbs, cap_lbs;
  uint32_t *lb_slots;        /* name hash -> index + 1 (0: empty) */
  size_t n_lb_slots;         /* a power of 2, >= 2 * cap_lbs */
  struct fake_route *routes;
  size_t n_routes, cap_routes;
  uint32_t next_ip;
};

/* ---- helpers --------------------------------------------------------- */

static int fake_status_parse(const char *s)
{
  static const struct {
    const char *name;
    int status;
  } map[] = {
    {"not_found", CCM_ERR_NOT_FOUND}, {"not_implemented", CCM_ERR_NOT_IMPLEMENTED},
    {"retry", CCM_ERR_RETRY},         {"invalid", CCM_ERR_INVALID},
    {"auth", CCM_ERR_AUTH},           {"throttled", CCM_ERR_THROTTLED},
    {"internal", CCM_ERR_INTERNAL},
  };
  for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
    if (strcmp(map[i].name, s) == 0)
      return map[i].status;
  }
  return CCM_ERR_INTERNAL;
}

static void fake_sleep_ms(int64_t ms)
{
  struct timespec ts;

  if (ms <= 0)
    return;
  ts.tv_sec = (time_t)(ms / 1000);
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* Caller holds f->lock. */
static void fake_log_call(struct fake *f, enum fake_op op, const char *arg)
{
  char line[512];
  int fd, n;

  if (!f->call_log)
    return;
  n = snprintf(line, sizeof(line), "%s %s\n", fake_op_names[op],
               arg ? arg : "-");
  if (n < 0)
    return;
  if ((size_t)n >= sizeof(line))
    n = (int)sizeof(line) - 1;
  fd = open(f->call_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  if (write(fd, line, (size_t)n) < 0) {
    /* best effort: the log is for tests */
  }
  close(fd);
}

/* Start of every operation: log, inject latency and errors. Returns the
 * injected status or CCM_OK. */
static int fake_enter(struct fake *f, struct ccm_call *call, enum fake_op op,
                      const char *arg)
{
  int prev = atomic_fetch_add(&f->in_flight, 1);
  int rc = CCM_OK;

  pthread_mutex_lock(&f->lock);
  fake_log_call(f, op, arg);
  pthread_mutex_unlock(&f->lock);
  fake_sleep_ms(f->latency_ms[op]);
#ifdef FAKE_SERIAL
  if (prev > 0) {
    f->api->call_set_error(call, "fake: concurrent call into a serial "
                           "module");
    rc = CCM_ERR_INTERNAL;
  }
#else
  (void)prev;
#endif
  if (rc == CCM_OK && f->error[op] != CCM_OK) {
    rc = f->error[op];
    f->api->call_set_error(call, "fake: injected %s error",
                           fake_op_names[op]);
    if (rc == CCM_ERR_RETRY || rc == CCM_ERR_THROTTLED)
      f->api->call_set_retry_after(call, 100);
  }
  return rc;
}

static int fake_leave(struct fake *f, int rc)
{
  atomic_fetch_sub(&f->in_flight, 1);
  return rc;
}

static const char *fake_svc_key(const struct ccm_service *svc, char *buf,
                                size_t cap)
{
  if (svc->lb_name && *svc->lb_name)
    return svc->lb_name;
  snprintf(buf, cap, "%s/%s", svc->namespace_ ? svc->namespace_ : "",
           svc->name ? svc->name : "");
  return buf;
}

/* Index of the known instance for node, or -1. */
static long fake_instance_find(const struct fake *f,
                               const struct ccm_node *node)
{
  const char *want = node->name;

  if (node->provider_id && strncmp(node->provider_id, "fake://", 7) == 0)
    want = node->provider_id + 7;
  if (!want)
    return -1;
  for (size_t i = 0; i < f->n_instances; i++) {
    if (strcmp(f->instances[i], want) == 0)
      return (long)i;
  }
  return -1;
}

/* The load balancers are indexed by name (open addressing), so that a
 * call costs the same with 10 or 10,000 of them: a bench of the host
 * must not measure the fake's scans under its lock. */
static size_t fake_name_hash(const char *s)
{
  size_t h = 1469598103u;

  for (; *s != '\0'; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* Caller holds f->lock. */
static long fake_lb_find(const struct fake *f, const char *name)
{
  size_t mask = f->n_lb_slots - 1, i;

  if (f->n_lb_slots == 0)
    return -1;
  for (i = fake_name_hash(name) & mask; f->lb_slots[i] != 0;
       i = (i + 1) & mask) {
    uint32_t k = f->lb_slots[i] - 1;

    if (strcmp(f->lbs[k].name, name) == 0)
      return (long)k;
  }
  return -1;
}

/* Fill slots (n, a power of 2) with the current lbs. */
static void fake_lb_fill(const struct fake *f, uint32_t *slots, size_t n)
{
  size_t mask = n - 1;

  memset(slots, 0, n * sizeof(*slots));
  for (size_t k = 0; k < f->n_lbs; k++) {
    size_t i = fake_name_hash(f->lbs[k].name) & mask;

    while (slots[i] != 0)
      i = (i + 1) & mask;
    slots[i] = (uint32_t)k + 1;
  }
}

/* A larger index for the current capacity; -1 on OOM (the old index
 * stays). Caller holds f->lock. */
static int fake_lb_regrow(struct fake *f)
{
  size_t n = 16;
  uint32_t *slots;

  while (n < 2 * f->cap_lbs)
    n *= 2;
  slots = f->api->alloc(n * sizeof(*slots));
  if (!slots)
    return -1;
  fake_lb_fill(f, slots, n);
  f->api->free(f->lb_slots);
  f->lb_slots = slots;
  f->n_lb_slots = n;
  return 0;
}

/* Caller holds f->lock. */
static struct fake_lb *fake_lb_add(struct fake *f, const char *name,
                                   uint32_t ip_index, uint32_t n_hosts)
{
  struct fake_lb *lb;

  if (f->n_lbs == f->cap_lbs) {
    size_t cap = f->cap_lbs ? f->cap_lbs * 2 : 8;
    struct fake_lb *grown = f->api->realloc(f->lbs, cap * sizeof(*grown));
    if (!grown)
      return NULL;
    f->lbs = grown;
    f->cap_lbs = cap;
  }
  lb = &f->lbs[f->n_lbs];
  lb->name = f->api->strdup(name);
  if (!lb->name)
    return NULL;
  lb->ip_index = ip_index;
  lb->n_hosts = n_hosts;
  f->n_lbs++;
  if (f->n_lb_slots < 2 * f->cap_lbs) {
    if (fake_lb_regrow(f) != 0) {
      f->api->free(lb->name);
      f->n_lbs--;
      return NULL;
    }
  } else {
    size_t mask = f->n_lb_slots - 1, i = fake_name_hash(name) & mask;

    while (f->lb_slots[i] != 0)
      i = (i + 1) & mask;
    f->lb_slots[i] = (uint32_t)f->n_lbs;
  }
  return lb;
}

/* Caller holds f->lock. */
static int fake_route_add(struct fake *f, const char *name,
                          const char *target, const char *cidr)
{
  struct fake_route *r;

  if (f->n_routes == f->cap_routes) {
    size_t cap = f->cap_routes ? f->cap_routes * 2 : 8;
    struct fake_route *grown =
        f->api->realloc(f->routes, cap * sizeof(*grown));
    if (!grown)
      return CCM_ERR_INTERNAL;
    f->routes = grown;
    f->cap_routes = cap;
  }
  r = &f->routes[f->n_routes];
  r->name = f->api->strdup(name);
  r->target = f->api->strdup(target);
  r->cidr = f->api->strdup(cidr);
  if (!r->name || !r->target || !r->cidr) {
    f->api->free(r->name);
    f->api->free(r->target);
    f->api->free(r->cidr);
    return CCM_ERR_INTERNAL;
  }
  f->n_routes++;
  return CCM_OK;
}

static int fake_add_ingress(struct fake *f, uint32_t ip_index,
                            struct ccm_lb_status *out)
{
  char ip[32];

  snprintf(ip, sizeof(ip), "10.0.%u.%u", (ip_index >> 8) & 0xffu,
           ip_index & 0xffu);
  return f->api->lb_add_ingress(out, ip, f->ingress_hostname);
}

/* ---- lifecycle ------------------------------------------------------- */

#ifdef FAKE_UNRESOLVED
/* Deliberately undefined: dlopen(RTLD_NOW) must refuse this module. */
extern int ccm_fake_no_such_symbol(void);
#endif

static int fake_config_read(struct fake *f, struct ccm_call *call)
{
  const struct ccm_config *cfg = f->api->cfg_root(f->host);
  const char *s = NULL;
  int64_t all = FAKE_DEFAULT_LATENCY_MS;
  size_t n = 0;
  char path[96];

  if (!cfg)
    return CCM_OK;
  if (f->api->cfg_string(cfg, "call_log", &s) == CCM_OK && s) {
    f->call_log = f->api->strdup(s);
    if (!f->call_log)
      return CCM_ERR_INTERNAL;
  }
  if (f->api->cfg_string(cfg, "ingress_hostname", &s) == CCM_OK && s) {
    f->ingress_hostname = f->api->strdup(s);
    if (!f->ingress_hostname)
      return CCM_ERR_INTERNAL;
  }
  if (f->api->cfg_list_len(cfg, "instances", &n) == CCM_OK && n > 0) {
    f->instances = f->api->calloc(n, sizeof(*f->instances));
    if (!f->instances)
      return CCM_ERR_INTERNAL;
    for (size_t i = 0; i < n; i++) {
      if (f->api->cfg_list_string(cfg, "instances", i, &s) != CCM_OK || !s) {
        f->api->call_set_error(call, "fake: instances[%zu] is not a string",
                               i);
        return CCM_ERR_INVALID;
      }
      f->instances[i] = f->api->strdup(s);
      if (!f->instances[i])
        return CCM_ERR_INTERNAL;
      f->n_instances = i + 1;
    }
  }
  f->api->cfg_bool(cfg, "fill_on_error", &f->fill_on_error);
  f->api->cfg_int(cfg, "latency_ms.all", &all);
  for (int op = 0; op < FAKE_OP_COUNT; op++) {
    int64_t v = all;
    snprintf(path, sizeof(path), "latency_ms.%s", fake_op_names[op]);
    f->api->cfg_int(cfg, path, &v);
    f->latency_ms[op] = v;
    snprintf(path, sizeof(path), "error.%s", fake_op_names[op]);
    if (f->api->cfg_string(cfg, path, &s) == CCM_OK && s)
      f->error[op] = fake_status_parse(s);
  }
  return CCM_OK;
}

static void fake_destroy(void *instance);

static int fake_init(const struct ccm_host_api *api, struct ccm_host *host,
                     struct ccm_call *call, void **instance)
{
  struct fake *f;
  int rc;

#ifdef FAKE_INITFAIL
  (void)host;
  (void)instance;
  api->call_set_error(call, "fake: init refused on purpose");
  return CCM_ERR_INVALID;
#endif
#ifdef FAKE_UNRESOLVED
  if (ccm_fake_no_such_symbol() != 0)
    return CCM_ERR_INTERNAL;
#endif
  f = api->calloc(1, sizeof(*f));
  if (!f) {
    api->call_set_error(call, "fake: out of memory");
    return CCM_ERR_INTERNAL;
  }
  f->api = api;
  f->host = host;
  f->next_ip = 1;
  pthread_mutex_init(&f->lock, NULL);
  atomic_init(&f->in_flight, 0);
  for (int op = 0; op < FAKE_OP_COUNT; op++)
    f->latency_ms[op] = FAKE_DEFAULT_LATENCY_MS;
  rc = fake_config_read(f, call);
  if (rc != CCM_OK) {
    fake_destroy(f);
    return rc;
  }
  api->log(host, CCM_LOG_INFO, "fake %s: ready with %zu instances",
           FAKE_VERSION, f->n_instances);
  *instance = f;
  return CCM_OK;
}

static void fake_destroy(void *instance)
{
  struct fake *f = instance;
  const struct ccm_host_api *api;

  if (!f)
    return;
  api = f->api;
#ifdef FAKE_UNLOAD_CALL
  {
    /* A module that misbehaves: it talks to the cloud while the host is
     * destroying it. The host must refuse cleanly. */
    struct ccm_http_request req = {0};
    struct ccm_http_response *resp = NULL;
    int rc;
    req.struct_size = sizeof(req);
    req.method = "GET";
    req.url = "http://127.0.0.1:9/fake-unload";
    req.timeout_ms = 200;
    rc = api->http_do(f->host, NULL, &req, &resp);
    api->log(f->host, CCM_LOG_WARN, "fake: destroy http_do returned %d", rc);
    if (rc == CCM_OK && resp)
      api->http_release(resp);
  }
#endif
  for (size_t i = 0; i < f->n_lbs; i++)
    api->free(f->lbs[i].name);
  api->free(f->lbs);
  api->free(f->lb_slots);
  for (size_t i = 0; i < f->n_routes; i++) {
    api->free(f->routes[i].name);
    api->free(f->routes[i].target);
    api->free(f->routes[i].cidr);
  }
  api->free(f->routes);
  for (size_t i = 0; i < f->n_instances; i++)
    api->free(f->instances[i]);
  api->free(f->instances);
  api->free(f->call_log);
  api->free(f->ingress_hostname);
  pthread_mutex_destroy(&f->lock);
  api->free(f);
}

/* ---- load balancers -------------------------------------------------- */

static int fake_lb_get(void *instance, struct ccm_call *call,
                       const struct ccm_service *svc,
                       struct ccm_lb_status *out)
{
  struct fake *f = instance;
  char buf[512];
  const char *key = fake_svc_key(svc, buf, sizeof(buf));
  long i;
  int rc = fake_enter(f, call, FAKE_LB_GET, key);

  if (rc != CCM_OK) {
    if (f->fill_on_error)
      fake_add_ingress(f, 999, out);
    return fake_leave(f, rc);
  }
  pthread_mutex_lock(&f->lock);
  i = fake_lb_find(f, key);
  if (i < 0)
    rc = CCM_ERR_NOT_FOUND;
  else
    rc = fake_add_ingress(f, f->lbs[i].ip_index, out);
  pthread_mutex_unlock(&f->lock);
  return fake_leave(f, rc);
}

static int fake_lb_ensure(void *instance, struct ccm_call *call,
                          const struct ccm_service *svc,
                          const struct ccm_node_list *nodes,
                          struct ccm_lb_status *out)
{
  struct fake *f = instance;
  char buf[512];
  const char *key = fake_svc_key(svc, buf, sizeof(buf));
  uint32_t n_hosts = nodes ? (uint32_t)nodes->n_nodes : 0;
  struct fake_lb *lb;
  long i;
  int rc = fake_enter(f, call, FAKE_LB_ENSURE, key);

  if (rc != CCM_OK)
    return fake_leave(f, rc);
  pthread_mutex_lock(&f->lock);
  i = fake_lb_find(f, key);
#ifdef FAKE_NONCONFORMING
  /* Wrong on purpose: a duplicate per call and a new status on repeats. */
  lb = fake_lb_add(f, key, f->next_ip++, n_hosts);
  if (!lb)
    rc = CCM_ERR_INTERNAL;
  else if (i >= 0) {
    f->api->call_set_error(call, "fake-nonconforming: duplicate load "
                           "balancer");
    rc = CCM_ERR_INVALID;
  } else
    rc = fake_add_ingress(f, lb->ip_index, out);
#else
  if (i >= 0) {
    lb = &f->lbs[i];
    lb->n_hosts = n_hosts;
  } else {
    lb = fake_lb_add(f, key, f->next_ip++, n_hosts);
  }
  if (!lb)
    rc = CCM_ERR_INTERNAL;
  else
    rc = fake_add_ingress(f, lb->ip_index, out);
#endif
  pthread_mutex_unlock(&f->lock);
  return fake_leave(f, rc);
}

static int fake_lb_update_hosts(void *instance, struct ccm_call *call,
                                const struct ccm_service *svc,
                                const struct ccm_node_list *nodes)
{
  struct fake *f = instance;
  char buf[512];
  const char *key = fake_svc_key(svc, buf, sizeof(buf));
  long i;
  int rc = fake_enter(f, call, FAKE_LB_UPDATE_HOSTS, key);

  if (rc != CCM_OK)
    return fake_leave(f, rc);
#ifdef FAKE_NONCONFORMING
  (void)i;
  (void)nodes;
  return fake_leave(f, 42); /* outside enum ccm_status on purpose */
#else
  pthread_mutex_lock(&f->lock);
  i = fake_lb_find(f, key);
  if (i < 0)
    rc = CCM_ERR_NOT_FOUND;
  else
    f->lbs[i].n_hosts = nodes ? (uint32_t)nodes->n_nodes : 0;
  pthread_mutex_unlock(&f->lock);
  return fake_leave(f, rc);
#endif
}

static int fake_lb_delete(void *instance, struct ccm_call *call,
                          const struct ccm_service *svc)
{
  struct fake *f = instance;
  char buf[512];
  const char *key = fake_svc_key(svc, buf, sizeof(buf));
  long i;
  int rc = fake_enter(f, call, FAKE_LB_DELETE, key);

  if (rc != CCM_OK)
    return fake_leave(f, rc);
  pthread_mutex_lock(&f->lock);
  i = fake_lb_find(f, key);
  if (i >= 0) {
    f->api->free(f->lbs[i].name);
    f->lbs[i] = f->lbs[--f->n_lbs];
    fake_lb_fill(f, f->lb_slots, f->n_lb_slots); /* indexes moved */
  }
#ifdef FAKE_NONCONFORMING
  else
    rc = CCM_ERR_NOT_FOUND; /* wrong on purpose: absent must be OK */
#endif
  pthread_mutex_unlock(&f->lock);
  return fake_leave(f, rc);
}

/* ---- instances ------------------------------------------------------- */

static int fake_instance_exists(void *instance, struct ccm_call *call,
                                const struct ccm_node *node, bool *exists)
{
  struct fake *f = instance;
  int rc = fake_enter(f, call, FAKE_INSTANCE_EXISTS, node->name);

  if (rc != CCM_OK)
    return fake_leave(f, rc);
  *exists = fake_instance_find(f, node) >= 0;
#ifdef FAKE_NONCONFORMING
  if (!*exists) {
    f->api->call_set_error(call, "fake-nonconforming: unknown node");
    rc = CCM_ERR_INTERNAL; /* wrong on purpose: must be OK + false */
  }
#endif
  return fake_leave(f, rc);
}

static int fake_instance_shutdown(void *instance, struct ccm_call *call,
                                  const struct ccm_node *node, bool *shutdown)
{
  struct fake *f = instance;
  int rc = fake_enter(f, call, FAKE_INSTANCE_SHUTDOWN, node->name);

  if (rc != CCM_OK)
    return fake_leave(f, rc);
  if (fake_instance_find(f, node) < 0)
    rc = CCM_ERR_NOT_FOUND;
  else
    *shutdown = false;
  return fake_leave(f, rc);
}

static int fake_meta_fill(struct fake *f, const struct ccm_node *node,
                          struct ccm_instance_meta *out)
{
  const struct ccm_host_api *api = f->api;
  long i = fake_instance_find(f, node);
  char buf[CCM_MAX_ID];
  int rc;

  if (i < 0)
    return CCM_ERR_NOT_FOUND;
  snprintf(buf, sizeof(buf), "fake://%s", f->instances[i]);
  rc = api->meta_set(out, CCM_META_PROVIDER_ID, buf);
  if (rc == CCM_OK)
    rc = api->meta_set(out, CCM_META_INSTANCE_TYPE, "fake.small");
  if (rc == CCM_OK)
    rc = api->meta_set(out, CCM_META_ZONE, "fake-zone-a");
  if (rc == CCM_OK)
    rc = api->meta_set(out, CCM_META_REGION, "fake-region-1");
  snprintf(buf, sizeof(buf), "10.1.%ld.%ld", ((i + 1) >> 8) & 0xff,
           (i + 1) & 0xff);
  if (rc == CCM_OK)
    rc = api->meta_add_address(out, CCM_ADDR_INTERNAL_IP, buf);
  if (rc == CCM_OK)
    rc = api->meta_add_address(out, CCM_ADDR_HOSTNAME, f->instances[i]);
  if (rc == CCM_OK)
    rc = api->meta_add_label(out, "fake.example.com/version", FAKE_VERSION);
  return rc;
}

static int fake_instance_metadata(void *instance, struct ccm_call *call,
                                  const struct ccm_node *node,
                                  struct ccm_instance_meta *out)
{
  struct fake *f = instance;
  int rc = fake_enter(f, call, FAKE_INSTANCE_METADATA, node->name);

  if (rc != CCM_OK) {
    if (f->fill_on_error)
      f->api->meta_set(out, CCM_META_ZONE, "left-behind");
    return fake_leave(f, rc);
  }
  return fake_leave(f, fake_meta_fill(f, node, out));
}

#ifndef FAKE_NOBATCH
static int fake_instance_metadata_batch(void *instance, struct ccm_call *call,
                                        const struct ccm_node *const *nodes,
                                        size_t n_nodes,
                                        struct ccm_instance_meta *const *out,
                                        int *status)
{
  struct fake *f = instance;
  char arg[32];
  int rc;

  snprintf(arg, sizeof(arg), "%zu", n_nodes);
  rc = fake_enter(f, call, FAKE_INSTANCE_METADATA_BATCH, arg);
  if (rc != CCM_OK)
    return fake_leave(f, rc);
  for (size_t i = 0; i < n_nodes; i++)
    status[i] = fake_meta_fill(f, nodes[i], out[i]);
  return fake_leave(f, CCM_OK);
}

/* ---- routes ---------------------------------------------------------- */

static int fake_route_list(void *instance, struct ccm_call *call,
                           const char *cluster_name,
                           struct ccm_route_list *out)
{
  struct fake *f = instance;
  int rc = fake_enter(f, call, FAKE_ROUTE_LIST, cluster_name);

  if (rc != CCM_OK)
    return fake_leave(f, rc);
  pthread_mutex_lock(&f->lock);
  for (size_t i = 0; i < f->n_routes && rc == CCM_OK; i++) {
    struct ccm_route r = {0};
    r.struct_size = sizeof(r);
    r.name = f->routes[i].name;
    r.target_node = f->routes[i].target;
    r.destination_cidr = f->routes[i].cidr;
    rc = f->api->routes_add(out, &r);
  }
  pthread_mutex_unlock(&f->lock);
  return fake_leave(f, rc);
}

static int fake_route_create(void *instance, struct ccm_call *call,
                             const char *cluster_name, const char *name_hint,
                             const struct ccm_route *route)
{
  struct fake *f = instance;
  char name[300];
  bool found = false;
  int rc = fake_enter(f, call, FAKE_ROUTE_CREATE, route->destination_cidr);

  (void)cluster_name;
  if (rc != CCM_OK)
    return fake_leave(f, rc);
  if (!route->target_node || !route->destination_cidr) {
    f->api->call_set_error(call, "fake: route without target or CIDR");
    return fake_leave(f, CCM_ERR_INVALID);
  }
  snprintf(name, sizeof(name), "fake-route-%s", name_hint ? name_hint : "x");
  pthread_mutex_lock(&f->lock);
  for (size_t i = 0; i < f->n_routes && !found; i++)
    found = strcmp(f->routes[i].cidr, route->destination_cidr) == 0;
  if (!found)
    rc = fake_route_add(f, name, route->target_node,
                        route->destination_cidr);
  pthread_mutex_unlock(&f->lock);
  return fake_leave(f, rc);
}

static int fake_route_delete(void *instance, struct ccm_call *call,
                             const char *cluster_name,
                             const struct ccm_route *route)
{
  struct fake *f = instance;
  int rc = fake_enter(f, call, FAKE_ROUTE_DELETE, route->name);

  (void)cluster_name;
  if (rc != CCM_OK)
    return fake_leave(f, rc);
  pthread_mutex_lock(&f->lock);
  for (size_t i = 0; i < f->n_routes; i++) {
    bool match = route->name ? strcmp(f->routes[i].name, route->name) == 0
                             : route->destination_cidr &&
                                   strcmp(f->routes[i].cidr,
                                          route->destination_cidr) == 0;
    if (!match)
      continue;
    f->api->free(f->routes[i].name);
    f->api->free(f->routes[i].target);
    f->api->free(f->routes[i].cidr);
    f->routes[i] = f->routes[--f->n_routes];
    break;
  }
  pthread_mutex_unlock(&f->lock);
  return fake_leave(f, rc);
}
#endif /* FAKE_NOBATCH */

#ifndef FAKE_SLOWDRAIN
/* ---- state: "next N", "lb NAME IP HOSTS", "route NAME TARGET CIDR" --- */

static int fake_state_export(void *instance, struct ccm_call *call,
                             struct ccm_blob *out)
{
  struct fake *f = instance;
  char *text = NULL;
  size_t cap, len = 0;
  int rc = fake_enter(f, call, FAKE_STATE_EXPORT, NULL);

  if (rc != CCM_OK)
    return fake_leave(f, rc);
  pthread_mutex_lock(&f->lock);
  cap = 64 + (f->n_lbs + f->n_routes) * 1100;
  text = f->api->alloc(cap);
  if (!text) {
    rc = CCM_ERR_INTERNAL;
    goto done;
  }
  len += (size_t)snprintf(text + len, cap - len, "next\t%u\n", f->next_ip);
  for (size_t i = 0; i < f->n_lbs; i++)
    len += (size_t)snprintf(text + len, cap - len, "lb\t%.500s\t%u\t%u\n",
                            f->lbs[i].name, f->lbs[i].ip_index,
                            f->lbs[i].n_hosts);
  for (size_t i = 0; i < f->n_routes; i++)
    len += (size_t)snprintf(text + len, cap - len, "route\t%.300s\t%.300s\t"
                            "%.64s\n", f->routes[i].name,
                            f->routes[i].target, f->routes[i].cidr);
  rc = f->api->blob_set(out, text, len);
done:
  pthread_mutex_unlock(&f->lock);
  f->api->free(text);
  return fake_leave(f, rc);
}

/* Split line at tabs into at most max fields (in place). */
static size_t fake_fields(char *line, char **fields, size_t max)
{
  size_t n = 0;
  char *p = line;

  while (n < max) {
    char *tab = strchr(p, '\t');
    fields[n++] = p;
    if (!tab)
      break;
    *tab = '\0';
    p = tab + 1;
  }
  return n;
}

/* Parse a decimal uint32 that fills all of s. */
static bool fake_u32(const char *s, uint32_t *out)
{
  char *end = NULL;
  unsigned long v;

  errno = 0;
  v = strtoul(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v > UINT32_MAX)
    return false;
  *out = (uint32_t)v;
  return true;
}

static int fake_state_import(void *instance, struct ccm_call *call,
                             const void *data, size_t len)
{
  struct fake *f = instance;
  char *text;
  char *line;
  int rc = fake_enter(f, call, FAKE_STATE_IMPORT, NULL);

  if (rc != CCM_OK)
    return fake_leave(f, rc);
  text = f->api->alloc(len + 1);
  if (!text)
    return fake_leave(f, CCM_ERR_INTERNAL);
  if (len)
    memcpy(text, data, len);
  text[len] = '\0';
  pthread_mutex_lock(&f->lock);
  line = text;
  while (rc == CCM_OK && line && *line) {
    char *nl = strchr(line, '\n');
    char *fld[4];
    size_t n;
    if (nl)
      *nl = '\0';
    uint32_t a, b;
    n = fake_fields(line, fld, 4);
    if (n == 2 && strcmp(fld[0], "next") == 0 && fake_u32(fld[1], &a))
      f->next_ip = a;
    else if (n == 4 && strcmp(fld[0], "lb") == 0 && fake_u32(fld[2], &a) &&
            fake_u32(fld[3], &b)) {
      if (fake_lb_find(f, fld[1]) < 0 && !fake_lb_add(f, fld[1], a, b))
        rc = CCM_ERR_INTERNAL;
    } else if (n == 4 && strcmp(fld[0], "route") == 0)
      rc = fake_route_add(f, fld[1], fld[2], fld[3]);
    else {
      f->api->call_set_error(call, "fake: bad state line");
      rc = CCM_ERR_INVALID;
    }
    line = nl ? nl + 1 : NULL;
  }
  pthread_mutex_unlock(&f->lock);
  f->api->free(text);
  return fake_leave(f, rc);
}
#endif /* FAKE_SLOWDRAIN */

/* ---- descriptor and entry -------------------------------------------- */

static const struct ccm_option_decl fake_opt_hint = {
  .struct_size = sizeof(struct ccm_option_decl),
  .name = "fake-hint",
  .type = CCM_OPT_STRING,
  .help = "free text the fake ignores",
  .default_value = NULL,
};

static const struct ccm_option_decl fake_opt_ports = {
  .struct_size = sizeof(struct ccm_option_decl),
  .name = "fake-max-ports",
  .type = CCM_OPT_INT,
  .help = "largest number of ports per load balancer",
  .default_value = "8",
};

static const struct ccm_option_decl *const fake_options[] = {
  &fake_opt_hint, &fake_opt_ports, NULL,
};

static const struct ccm_name_rules fake_name_rules = {
  .struct_size = sizeof(struct ccm_name_rules),
  .min_length = 1,
  .max_length = 63,
  .allowed = "abcdefghijklmnopqrstuvwxyz0123456789-/",
  .allowed_first = "abcdefghijklmnopqrstuvwxyz",
  .allowed_last = NULL,
};

#if defined(FAKE_OLDMINOR)
/* Pretends to predate the state operations: the host must not read them. */
#define FAKE_PROVIDER_SIZE offsetof(struct ccm_provider, state_export)
#elif defined(FAKE_TINY)
#define FAKE_PROVIDER_SIZE offsetof(struct ccm_provider, init)
#else
#define FAKE_PROVIDER_SIZE sizeof(struct ccm_provider)
#endif

#ifdef FAKE_BADNAME
#define FAKE_NAME "Fake_Bad"
#else
#define FAKE_NAME "fake"
#endif

#ifdef FAKE_SERIAL
#define FAKE_THREADS CCM_THREAD_SERIAL
#else
#define FAKE_THREADS CCM_THREAD_SAFE
#endif

static const struct ccm_provider fake_provider = {
  .struct_size = (uint32_t)FAKE_PROVIDER_SIZE,
  .name = FAKE_NAME,
  .version = FAKE_VERSION,
  .description = "in-memory fake provider for tests",
  .thread_safety = FAKE_THREADS,
  .capabilities = CCM_CAP_LOAD_BALANCER | CCM_CAP_INSTANCES |
                  CCM_CAP_INSTANCES_BATCH | CCM_CAP_ROUTES | CCM_CAP_STATE,
  .options = fake_options,
  .lb_name_rules = &fake_name_rules,
  .init = fake_init,
  .destroy = fake_destroy,
  .lb_get = fake_lb_get,
  .lb_ensure = fake_lb_ensure,
  .lb_update_hosts = fake_lb_update_hosts,
  .lb_delete = fake_lb_delete,
  .instance_exists = fake_instance_exists,
  .instance_shutdown = fake_instance_shutdown,
  .instance_metadata = fake_instance_metadata,
#ifdef FAKE_NOBATCH
  /* Instances without the batch operation, and no routes: the host falls
   * back to one call per node and answers routes NOT_IMPLEMENTED. */
  .instance_metadata_batch = NULL,
  .route_list = NULL,
  .route_create = NULL,
  .route_delete = NULL,
#else
  .instance_metadata_batch = fake_instance_metadata_batch,
  .route_list = fake_route_list,
  .route_create = fake_route_create,
  .route_delete = fake_route_delete,
#endif
#ifdef FAKE_SLOWDRAIN
  /* No state path: an old generation is drained after publishing, which is
   * what the drain-deadline tests need. */
  .state_export = NULL,
  .state_import = NULL,
#else
  .state_export = fake_state_export,
  .state_import = fake_state_import,
#endif
};

#ifdef FAKE_NOENTRY
/* Exported, but under the wrong name: the loader must not find an entry. */
#define FAKE_ENTRY ccm_provider_entry_misspelt
CCM_EXPORT int FAKE_ENTRY(struct ccm_entry *entry);
#else
#define FAKE_ENTRY ccm_provider_entry
#endif

int FAKE_ENTRY(struct ccm_entry *entry)
{
  if (!entry || entry->struct_size < offsetof(struct ccm_entry, provider) +
                                        sizeof(entry->provider))
    return CCM_ERR_INVALID;
  entry->module_abi_major = FAKE_ABI_MAJOR;
  entry->module_abi_minor = FAKE_ABI_MINOR;
  entry->provider = &fake_provider;
#ifdef FAKE_ENTRYFAIL
  return CCM_ERR_INTERNAL;
#else
  return CCM_OK;
#endif
}
