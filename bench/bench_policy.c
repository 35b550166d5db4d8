/*
 * bench_policy.c: what a Lua policy costs (issue 5 targets: a hook <= 5 us
 * median, a reload <= 50 ms): median and p99 ns per hook for a built-in
 * trivial policy and every scripts/ *.lua file present, reload time and memory
 * per state. Prints tables; asserts nothing, so it never fails on a slow box.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"
#include "policy/policy_int.h"
#include "util/log.h"
#include "util/mem.h"

#define BENCH_CALLS 20000
#define BENCH_RELOADS 20
#define BENCH_MAX_FILES 32
#define BENCH_NODES 50

static const char bench_trivial[] =
    "-- trivial: one field read per hook\n"
    "return {\n"
    "  load_balancer_name = function(s) return ccm.default_name(s) end,\n"
    "  load_balancer_options = function(s)\n"
    "    local v = s.annotations['example.com/pool']\n"
    "    if v then return { pool = v } end\n"
    "    return {}\n"
    "  end,\n"
    "  backend_nodes = function(s, nodes) return nodes end,\n"
    "  resource_tags = function(s) return { service = s.name } end,\n"
    "  node_labels = function(n, m) return { zone = m.zone } end,\n"
    "}\n";

static int64_t bench_now_ns(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

  return (x > y) - (x < y);
}

static int64_t pct(int64_t *v, size_t n, double p)
{
  qsort(v, n, sizeof(*v), cmp_i64);
  return n ? v[(size_t)(p * (double)(n - 1))] : 0;
}

struct bench_objs {
  struct policy_samples s;
  struct obj_meta *svc2;                /* same Service, another version */
  struct obj_meta *nodes[BENCH_NODES];
  const struct obj_node *node_ptrs[BENCH_NODES];
};

static int bench_objs_new(struct bench_objs *o)
{
  char err[256], json[1024];

  memset(o, 0, sizeof(*o));
  if (policy_samples_new(&o->s, err, sizeof err) != 0)
    return -1;
  for (int i = 0; i < BENCH_NODES; i++) {
    snprintf(json, sizeof json,
             "{\"metadata\":{\"name\":\"node-%d\",\"uid\":\"u-%d\","
             "\"resourceVersion\":\"1\",\"labels\":{\"kubernetes.io/"
             "hostname\":\"node-%d\",\"topology.kubernetes.io/zone\":"
             "\"zone-%d\"}},\"spec\":{\"providerID\":\"lab://node-%d\"},"
             "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":"
             "\"True\"}],\"addresses\":[{\"type\":\"InternalIP\","
             "\"address\":\"10.0.%d.%d\"}]}}",
             i, i, i, i % 3, i, i / 250, i % 250);
    if (obj_decode_text(OBJ_KIND_NODE, json, strlen(json), &o->nodes[i], err,
                        sizeof err) != OBJ_OK)
      return -1;
    o->node_ptrs[i] = obj_as_node(o->nodes[i]);
  }
  return 0;
}

static void bench_objs_free(struct bench_objs *o)
{
  policy_samples_free(&o->s);
  for (int i = 0; i < BENCH_NODES; i++)
    obj_unref(o->nodes[i]);
}

enum { B_NAME, B_OPTIONS, B_BACKENDS, B_TAGS, B_LABELS, B_HOOKS };
static const char *const bench_hooks[B_HOOKS] = {
    "load_balancer_name", "load_balancer_options", "backend_nodes (50)",
    "resource_tags", "node_labels"};

/* One hook call; returns its result code. */
static int bench_call(struct policy_engine *pe, int h,
                      const struct obj_service *svc, struct bench_objs *o,
                      const struct policy_ctx *ctx)
{
  static const struct policy_node_meta meta = {
      "lab://node-0", "m5.large", "zone-a", "region-1", NULL, 0};
  struct policy_error err;
  struct policy_options *opts = NULL;
  struct policy_kvs *kvs = NULL;
  bool keep[BENCH_NODES];
  char name[CCM_MAX_NAME + 1];
  int rc = POLICY_ERROR;

  switch (h) {
  case B_NAME:
    rc = policy_lb_name(pe, svc, ctx, name, sizeof name, &err);
    break;
  case B_OPTIONS:
    rc = policy_lb_options(pe, svc, ctx, &opts, &err);
    policy_options_free(opts);
    break;
  case B_BACKENDS:
    rc = policy_backend_nodes(pe, svc, o->node_ptrs, BENCH_NODES, ctx, keep,
                              &err);
    break;
  case B_TAGS:
    rc = policy_resource_tags(pe, svc, ctx, &kvs, &err);
    policy_kvs_free(kvs);
    break;
  default:
    rc = policy_node_labels(pe, o->node_ptrs[0], &meta, ctx, &kvs, &err);
    policy_kvs_free(kvs);
    break;
  }
  return rc;
}

static const char *bench_rc(int rc)
{
  switch (rc) {
  case POLICY_OK: return "policy";
  case POLICY_DEFAULT: return "default";
  case POLICY_ELSEWHERE: return "elsewhere";
  case POLICY_REJECT: return "reject";
  default: return "ERROR";
  }
}

static void bench_policy(const char *label, const char *path,
                         struct bench_objs *o, int64_t *lat)
{
  const struct policy_ctx ctx = {"kubernetes", label, NULL, NULL};
  const struct obj_service *svc = obj_as_service(o->s.svc);
  struct policy_engine *pe = NULL;
  struct policy_stats st;
  const char *files[1] = {path};
  int64_t reload[BENCH_RELOADS], med;
  char err[1024];

  if (policy_engine_new(files, 1, NULL, &pe, err, sizeof err) != 0) {
    printf("| %-14s | %-25s | %s\n", label, "(does not load)", err);
    return;
  }
  for (int h = 0; h < B_HOOKS; h++) {
    int rc = bench_call(pe, h, svc, o, &ctx);
    int64_t p99;
    for (int i = 0; i < BENCH_CALLS; i++) {
      int64_t t0 = bench_now_ns();
      bench_call(pe, h, svc, o, &ctx);
      lat[i] = bench_now_ns() - t0;
    }
    med = pct(lat, BENCH_CALLS, 0.5);
    p99 = pct(lat, BENCH_CALLS, 0.99);
    printf("| %-14s | %-25s | %-9s | %9lld | %9lld |\n", label,
           bench_hooks[h], bench_rc(rc), (long long)med, (long long)p99);
  }
  policy_engine_stats(pe, &st);
  for (int i = 0; i < BENCH_RELOADS; i++) {
    int64_t t0 = bench_now_ns();
    if (policy_engine_reload(pe, files, 1, err, sizeof err) != 0)
      fprintf(stderr, "bench: reload: %s\n", err);
    reload[i] = bench_now_ns() - t0;
  }
  med = pct(reload, BENCH_RELOADS, 0.5);
  printf("| %-14s | %-25s | %-9s | %6.2f ms | %6.2f ms |  (reload median, "
         "max)\n", label, "reload", "", (double)med / 1e6,
         (double)reload[BENCH_RELOADS - 1] / 1e6);
  printf("| %-14s | %-25s | %-9s | %7llu B | %9s |  (one state)\n", label,
         "memory per state", "",
         (unsigned long long)(st.states ? st.state_bytes / st.states : 0),
         "");
  policy_engine_free(pe);
}

/* The cost of a cache miss: a new version of the Service on every call. */
static void bench_miss(const char *label, const char *path,
                       struct bench_objs *o, int64_t *lat)
{
  const struct policy_ctx ctx = {"kubernetes", label, NULL, NULL};
  struct policy_engine *pe = NULL;
  const char *files[1] = {path};
  char err[1024];
  struct obj_meta *v[2] = {o->s.svc, NULL};
  char json[4096];

  snprintf(json, sizeof json,
           "{\"metadata\":{\"name\":\"sample\",\"namespace\":\"default\","
           "\"uid\":\"5f0c7a4e-2b1d-4c3e-9a8f-0123456789ab\","
           "\"resourceVersion\":\"2\",\"labels\":{\"app\":\"sample\"},"
           "\"annotations\":{\"example.com/pool\":\"blue\","
           "\"service.beta.kubernetes.io/aws-load-balancer-internal\":"
           "\"true\"}},\"spec\":{\"type\":\"LoadBalancer\",\"ports\":[{"
           "\"port\":80,\"nodePort\":30080}]}}");
  if (obj_decode_text(OBJ_KIND_SERVICE, json, strlen(json), &v[1], err,
                      sizeof err) != OBJ_OK ||
      policy_engine_new(files, 1, NULL, &pe, err, sizeof err) != 0) {
    obj_unref(v[1]);
    return;
  }
  for (int i = 0; i < BENCH_CALLS; i++) {
    int64_t t0 = bench_now_ns();
    bench_call(pe, B_OPTIONS, obj_as_service(v[i & 1]), o, &ctx);
    lat[i] = bench_now_ns() - t0;
  }
  printf("| %-14s | %-25s | %-9s | %9lld | %9lld |\n", label,
         "options, uncached svc", "",
         (long long)pct(lat, BENCH_CALLS, 0.5),
         (long long)pct(lat, BENCH_CALLS, 0.99));
  policy_engine_free(pe);
  obj_unref(v[1]);
}

static int bench_cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
  char tmp[] = "/tmp/ccm-bench-policy-XXXXXX", trivial[128];
  char *paths[BENCH_MAX_FILES];
  size_t n = 0;
  struct bench_objs o;
  int64_t *lat;
  FILE *f;
  DIR *d;

  log_set_level(CCM_LOG_ERROR);
  lat = mem_calloc(BENCH_CALLS, sizeof(*lat));
  if (lat == NULL || mkdtemp(tmp) == NULL || bench_objs_new(&o) != 0)
    return 1;
  snprintf(trivial, sizeof trivial, "%s/trivial.lua", tmp);
  f = fopen(trivial, "w");
  if (f == NULL)
    return 1;
  fputs(bench_trivial, f);
  fclose(f);
  paths[n++] = mem_strdup(trivial);
  d = getenv("CCM_BENCH_TRIVIAL_ONLY") ? NULL
                                      : opendir(CCM_SOURCE_DIR "/scripts");
  for (struct dirent *e = d ? readdir(d) : NULL; e != NULL; e = readdir(d)) {
    size_t len = strlen(e->d_name);
    char p[1024];
    if (len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0 ||
        n == BENCH_MAX_FILES)
      continue;
    snprintf(p, sizeof p, "%s/scripts/%s", CCM_SOURCE_DIR, e->d_name);
    paths[n++] = mem_strdup(p);
  }
  if (d != NULL)
    closedir(d);
  qsort(paths + 1, n - 1, sizeof(*paths), bench_cmp_str);

  printf("\nLua policy hooks (1 thread, %d calls each, ns per call; "
         "target: median <= 5000 ns, reload <= 50 ms)\n\n", BENCH_CALLS);
  printf("| %-14s | %-25s | %-9s | %9s | %9s |\n", "policy", "hook",
         "result", "median ns", "p99 ns");
  printf("|----------------|---------------------------|-----------|"
         "-----------|-----------|\n");
  for (size_t i = 0; i < n; i++) {
    const char *slash = strrchr(paths[i], '/');
    const char *label = slash != NULL ? slash + 1 : paths[i];
    bench_policy(label, paths[i], &o, lat);
    bench_miss(label, paths[i], &o, lat);
    mem_free(paths[i]);
  }
  printf("\n");
  unlink(trivial);
  rmdir(tmp);
  bench_objs_free(&o);
  mem_free(lat);
  return 0;
}
