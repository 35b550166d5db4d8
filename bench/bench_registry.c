/*
 * bench_registry.c: what the registry costs a provider call, and how long a
 * hot-swap pauses callers (DESIGN.md section 8: pause <= 100 ms, 0 failed
 * calls). Prints a table; asserts nothing, so it never fails on a slow box.
 */
/* nftw */
#define _XOPEN_SOURCE 700

#include <ftw.h>
#include <libconfig.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "modules/host_api.h"
#include "modules/http.h"
#include "modules/registry.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/mem.h"

#define BENCH_CALLS 200000
#define BENCH_SWAPS 50
#define BENCH_CALLERS 2
#define BENCH_MAX_SAMPLES 4000000

static int bench_rm_entry(const char *path, const struct stat *st, int flag,
                          struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

/* The registry keeps private module copies under its state directory. */
static void bench_rm_tree(const char *dir)
{
  nftw(dir, bench_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

struct bench_provider {
  struct provider_config pc;
  config_t lc;
};

static int64_t bench_now_ns(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int bench_provider_init(struct bench_provider *b, const char *module,
                               const char *config_text)
{
  memset(b, 0, sizeof(*b));
  config_init(&b->lc);
  if (config_read_string(&b->lc, config_text) != CONFIG_TRUE) {
    fprintf(stderr, "bench: bad config: %s\n", config_error_text(&b->lc));
    return -1;
  }
  b->pc.name = "bench";
  b->pc.module = module;
  b->pc.is_default = true;
  b->pc.config = config_root_setting(&b->lc);
  b->pc.http.burst = 1;
  b->pc.http.timeout_ms = 1000;
  b->pc.call_timeout_ms = 5000;
  hash_buf(config_text, strlen(config_text), b->pc.config_hash);
  snprintf(b->pc.module_abs, sizeof(b->pc.module_abs), "%s/%s",
           CCM_MODULE_DIR, module);
  return 0;
}

static void bench_node(struct ccm_node *node)
{
  memset(node, 0, sizeof(*node));
  node->struct_size = sizeof(*node);
  node->name = "node-1";
  node->uid = "uid-node-1";
}

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

  return (x > y) - (x < y);
}

static int64_t pct(const int64_t *sorted, size_t n, double p)
{
  size_t i = (size_t)(p * (double)(n - 1));

  return n ? sorted[i] : 0;
}

/* Nanoseconds per prov_instance_exists through acquire/call/release. */
static double bench_call_overhead(struct registry *reg)
{
  struct ccm_node node;
  struct ccm_call call;
  int64_t t0, t1;
  bool exists;

  bench_node(&node);
  call_init(&call, 0);
  t0 = bench_now_ns();
  for (int i = 0; i < BENCH_CALLS; i++) {
    struct provider_ref ref;
    if (registry_for_nodes(reg, &ref) != CCM_OK)
      return -1;
    prov_instance_exists(&ref, &call, &node, &exists);
    registry_release(&ref);
  }
  t1 = bench_now_ns();
  return (double)(t1 - t0) / BENCH_CALLS;
}

struct caller {
  struct registry *reg;
  atomic_bool *stop;
  int64_t *lat;          /* per-call latency, ns */
  size_t n, cap;
  uint64_t failed;
};

static void *caller_run(void *arg)
{
  struct caller *c = arg;
  struct ccm_node node;
  struct ccm_call call;
  bool exists;

  bench_node(&node);
  while (!atomic_load(c->stop)) {
    struct provider_ref ref;
    int64_t t0 = bench_now_ns();
    int rc = registry_for_nodes(c->reg, &ref);
    if (rc == CCM_OK) {
      call_init(&call, 0);
      rc = prov_instance_exists(&ref, &call, &node, &exists);
      registry_release(&ref);
    }
    if (rc != CCM_OK)
      c->failed++;
    if (c->n < c->cap)
      c->lat[c->n++] = bench_now_ns() - t0;
  }
  return NULL;
}

/* Swap between two modules BENCH_SWAPS times under BENCH_CALLERS busy
 * callers; report swap duration and the worst call latency (the pause). */
static int bench_swap(const char *label, struct bench_provider *a,
                      struct bench_provider *b)
{
  struct registry *reg;
  struct caller callers[BENCH_CALLERS];
  pthread_t th[BENCH_CALLERS];
  int64_t swap_ns[BENCH_SWAPS];
  atomic_bool stop = false;
  char dir[] = "/tmp/ccm-bench-XXXXXX";
  char err[1024];
  size_t total = 0;
  uint64_t failed = 0;
  int64_t *all;

  if (!mkdtemp(dir))
    return -1;
  reg = registry_new(dir, 10000);
  if (!reg || registry_swap(reg, &a->pc, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench: %s\n", err);
    return -1;
  }
  for (int i = 0; i < BENCH_CALLERS; i++) {
    callers[i] = (struct caller){.reg = reg, .stop = &stop,
                                 .cap = BENCH_MAX_SAMPLES / BENCH_CALLERS};
    callers[i].lat = mem_calloc(callers[i].cap, sizeof(int64_t));
    if (!callers[i].lat)
      return -1;
    pthread_create(&th[i], NULL, caller_run, &callers[i]);
  }
  for (int i = 0; i < BENCH_SWAPS; i++) {
    struct bench_provider *next = (i % 2 == 0) ? b : a;
    int64_t t0 = bench_now_ns();
    if (registry_swap(reg, &next->pc, err, sizeof(err)) != 0)
      fprintf(stderr, "bench: swap %d failed: %s\n", i, err);
    swap_ns[i] = bench_now_ns() - t0;
    usleep(2000);
  }
  atomic_store(&stop, true);
  for (int i = 0; i < BENCH_CALLERS; i++) {
    pthread_join(th[i], NULL);
    total += callers[i].n;
    failed += callers[i].failed;
  }
  all = mem_calloc(total ? total : 1, sizeof(int64_t));
  if (!all)
    return -1;
  total = 0;
  for (int i = 0; i < BENCH_CALLERS; i++) {
    memcpy(all + total, callers[i].lat, callers[i].n * sizeof(int64_t));
    total += callers[i].n;
    mem_free(callers[i].lat);
  }
  qsort(all, total, sizeof(int64_t), cmp_i64);
  qsort(swap_ns, BENCH_SWAPS, sizeof(int64_t), cmp_i64);
  printf("| %-26s | %5d | %9.2f | %9.2f | %10.3f | %9zu | %6llu |\n", label,
         BENCH_SWAPS, (double)pct(swap_ns, BENCH_SWAPS, 0.5) / 1e6,
         (double)swap_ns[BENCH_SWAPS - 1] / 1e6,
         (double)(total ? all[total - 1] : 0) / 1e6, total,
         (unsigned long long)failed);
  mem_free(all);
  registry_free(reg);
  bench_rm_tree(dir);
  return 0;
}

int main(void)
{
  struct bench_provider fake1, fake2, lab1, lab2;
  char lab_cfg[512], dir[] = "/tmp/ccm-bench-lab-XXXXXX";
  struct registry *reg;
  char err[1024], sdir[] = "/tmp/ccm-bench-reg-XXXXXX";
  double ns;

  log_set_level(CCM_LOG_WARN);
  http_global_init();
  if (!mkdtemp(dir) || !mkdtemp(sdir))
    return 1;
  snprintf(lab_cfg, sizeof(lab_cfg),
           "state_file = \"%s/state.json\"; ipv4_pools = [\"192.0.2.0/24\"];",
           dir);
  if (bench_provider_init(&fake1, "ccm-fake.so", "instances = [\"node-1\"];")
     || bench_provider_init(&fake2, "ccm-fake-v2.so",
                            "instances = [\"node-1\"];")
     || bench_provider_init(&lab1, "ccm-lab.so", lab_cfg)
     || bench_provider_init(&lab2, "ccm-lab.so", lab_cfg))
    return 1;
  /* Same file, changed config hash: a new generation of the same module. */
  lab2.pc.config_hash[0] = lab2.pc.config_hash[0] == 'a' ? 'b' : 'a';

  printf("\nProvider call through the registry "
         "(acquire + prov_instance_exists + release, 1 thread)\n\n");
  printf("| %-10s | %12s | %10s |\n", "module", "calls", "ns/call");
  printf("|------------|--------------|------------|\n");
  reg = registry_new(sdir, 10000);
  if (!reg || registry_swap(reg, &lab1.pc, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench: %s\n", err);
    return 1;
  }
  ns = bench_call_overhead(reg);
  printf("| %-10s | %12d | %10.1f |\n", "lab", BENCH_CALLS, ns);
  registry_free(reg);

  printf("\nHot-swap under load (%d caller threads; pause = worst call "
         "latency; target <= 100 ms, 0 failed)\n\n", BENCH_CALLERS);
  printf("| %-26s | %5s | %9s | %9s | %10s | %9s | %6s |\n", "swap", "swaps",
         "median ms", "max ms", "pause ms", "calls", "failed");
  printf("|----------------------------|-------|-----------|-----------|"
         "------------|-----------|--------|\n");
  bench_swap("fake v1 <-> v2 (state)", &fake1, &fake2);
  bench_swap("lab, config change (state)", &lab1, &lab2);
  printf("\n");

  config_destroy(&fake1.lc);
  config_destroy(&fake2.lc);
  config_destroy(&lab1.lc);
  config_destroy(&lab2.lc);
  bench_rm_tree(dir);
  bench_rm_tree(sdir);
  http_global_cleanup();
  return 0;
}
