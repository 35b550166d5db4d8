/*
 * test_registry.c: generations and hot-swap under load, state carried
 * across versions, failed swaps, drain deadlines, unload-time calls, the
 * prov_* wrappers and class lookups. Only the fake provider is loaded.
 */
/* nftw */
#define _XOPEN_SOURCE 700

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libconfig.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "modules/host_api.h"
#include "modules/loader.h"
#include "modules/registry.h"
#include "util/hash.h"
#include "util/log.h"

#define HOTSWAP_THREADS 8
#define HOTSWAP_SWAPS 100

struct fixture {
  char root[256];
  char mods[300];
  char state[300];
};

static struct fixture fx;

/* ---- helpers --------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  chmod(path, 0700);
  remove(path);
  return 0;
}

static void path_join(char *out, size_t cap, const char *dir,
                      const char *name)
{
  int n = snprintf(out, cap, "%s/%s", dir, name);
  assert_true(n > 0 && (size_t)n < cap);
}

/* Copy build/modules/<src> to <mods>/<dst> (0755) atomically. */
static void install(const char *src, const char *dst)
{
  char from[512], tmp[512], to[512], buf[65536];
  ssize_t n;
  int in, out;

  path_join(from, sizeof(from), CCM_MODULE_DIR, src);
  path_join(tmp, sizeof(tmp), fx.mods, ".installing");
  path_join(to, sizeof(to), fx.mods, dst);
  in = open(from, O_RDONLY);
  assert_true(in >= 0);
  out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(out >= 0);
  for (;;) {
    n = read(in, buf, sizeof(buf));
    if (n <= 0)
      break;
    assert_int_equal(write(out, buf, (size_t)n), n);
  }
  close(in);
  assert_int_equal(fchmod(out, 0755), 0);
  close(out);
  assert_int_equal(rename(tmp, to), 0);
}

static int setup(void **state)
{
  (void)state;
  snprintf(fx.root, sizeof(fx.root), "/tmp/ccm-test-registry-XXXXXX");
  if (!mkdtemp(fx.root))
    return -1;
  snprintf(fx.mods, sizeof(fx.mods), "%s/mods", fx.root);
  snprintf(fx.state, sizeof(fx.state), "%s/state", fx.root);
  if (mkdir(fx.mods, 0755) != 0 || chmod(fx.mods, 0755) != 0)
    return -1;
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  nftw(fx.root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

/* A provider_config filled by hand; the libconfig text is the module's
 * own group. Free with pc_free. */
struct test_pc {
  struct provider_config pc;
  config_t lc;
};

static void pc_make(struct test_pc *t, const char *name, const char *module,
                    bool is_default, const char *lb_class, const char *text)
{
  memset(t, 0, sizeof(*t));
  config_init(&t->lc);
  if (config_read_string(&t->lc, text) != CONFIG_TRUE)
    fail_msg("bad test config: %s", config_error_text(&t->lc));
  t->pc.name = name;
  t->pc.module = module;
  t->pc.is_default = is_default;
  t->pc.lb_class = lb_class;
  t->pc.config = config_root_setting(&t->lc);
  t->pc.http.burst = 1;
  t->pc.http.timeout_ms = 1000;
  t->pc.call_timeout_ms = 5000;
  hash_buf(text, strlen(text), t->pc.config_hash);
  path_join(t->pc.module_abs, sizeof(t->pc.module_abs), fx.mods, module);
}

static void pc_free(struct test_pc *t)
{
  config_destroy(&t->lc);
}

static void svc_make(struct ccm_service *svc, const char *lb_name)
{
  memset(svc, 0, sizeof(*svc));
  svc->struct_size = sizeof(*svc);
  svc->cluster_name = "test";
  svc->namespace_ = "default";
  svc->name = lb_name;
  svc->uid = "uid-1";
  svc->lb_name = lb_name;
}

static void node_make(struct ccm_node *node, const char *name)
{
  memset(node, 0, sizeof(*node));
  node->struct_size = sizeof(*node);
  node->name = name;
  node->uid = name;
}

static uint64_t current_number(struct registry *reg, const char *name)
{
  struct provider_ref ref;
  uint64_t n;

  if (registry_acquire(reg, name, &ref) != CCM_OK)
    return 0;
  n = ref.gen->number;
  registry_release(&ref);
  return n;
}

static const char *current_version(struct registry *reg, const char *name,
                                   char *buf, size_t cap)
{
  struct provider_ref ref;

  buf[0] = '\0';
  if (registry_acquire(reg, name, &ref) != CCM_OK)
    return buf;
  snprintf(buf, cap, "%s", ref.gen->mod->provider->version);
  registry_release(&ref);
  return buf;
}

static int count_lines(const char *path, const char *prefix)
{
  char line[512];
  int n = 0;
  FILE *f = fopen(path, "r");

  if (!f)
    return 0;
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, prefix, strlen(prefix)) == 0)
      n++;
  }
  fclose(f);
  return n;
}

/* Log capture: remembers whether a line containing each needle was seen. */
static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static char cap_text[65536];
static size_t cap_len;

static void cap_sink(int level, const char *line, void *ud)
{
  size_t n = strlen(line);

  (void)level;
  (void)ud;
  pthread_mutex_lock(&cap_lock);
  if (cap_len + n + 2 < sizeof(cap_text)) {
    memcpy(cap_text + cap_len, line, n);
    cap_len += n;
    cap_text[cap_len++] = '\n';
    cap_text[cap_len] = '\0';
  }
  pthread_mutex_unlock(&cap_lock);
}

static void cap_start(void)
{
  pthread_mutex_lock(&cap_lock);
  cap_len = 0;
  cap_text[0] = '\0';
  pthread_mutex_unlock(&cap_lock);
  log_set_sink(cap_sink, NULL);
}

static bool cap_has(const char *needle)
{
  bool found;

  pthread_mutex_lock(&cap_lock);
  found = strstr(cap_text, needle) != NULL;
  pthread_mutex_unlock(&cap_lock);
  return found;
}

static void cap_stop(void)
{
  log_set_sink(NULL, NULL);
}

/* ---- hot-swap under load --------------------------------------------- */

struct hotswap {
  struct registry *reg;
  atomic_bool stop;
  atomic_long calls;
  atomic_long failures;
  atomic_long dead_generation; /* calls that saw refs <= 0 or closing */
  char first_failure[1024];
  pthread_mutex_t lock;
};

struct worker {
  struct hotswap *hs;
  int id;
};

static void hotswap_fail(struct hotswap *hs, const char *what, int rc,
                         const struct ccm_call *call)
{
  atomic_fetch_add(&hs->failures, 1);
  pthread_mutex_lock(&hs->lock);
  if (!hs->first_failure[0])
    snprintf(hs->first_failure, sizeof(hs->first_failure), "%.64s: %.32s (%.600s)",
             what, ccm_status_name(rc), call->error);
  pthread_mutex_unlock(&hs->lock);
}

static void *hotswap_worker(void *arg)
{
  struct worker *w = arg;
  struct hotswap *hs = w->hs;
  struct ccm_service svc;
  struct ccm_node node;
  char lb_name[32];
  uint64_t last_number = 0;

  snprintf(lb_name, sizeof(lb_name), "lb-%d", w->id);
  svc_make(&svc, lb_name);
  node_make(&node, "node-a");
  for (long i = 0; !atomic_load(&hs->stop) || i < 30; i++) {
    struct provider_ref ref;
    struct ccm_call call;
    struct ccm_lb_status st = {0};
    bool exists = false;
    int rc;

    rc = registry_acquire(hs->reg, "fake", &ref);
    if (rc != CCM_OK) {
      call_init(&call, 0);
      hotswap_fail(hs, "acquire", rc, &call);
      continue;
    }
    /* A reference pins a live generation: counted, not being destroyed,
     * never older than one this thread already used. */
    if (atomic_load(&ref.gen->refs) <= 0 ||
       atomic_load(&ref.gen->host->closing) || ref.gen->number < last_number)
      atomic_fetch_add(&hs->dead_generation, 1);
    last_number = ref.gen->number;
    call_init(&call, 10000);
    switch (i % 3) {
    case 0:
      rc = prov_lb_ensure(&ref, &call, &svc, NULL, &st);
      if (rc != CCM_OK || st.n != 1)
        hotswap_fail(hs, "lb_ensure", rc, &call);
      break;
    case 1:
      rc = prov_lb_get(&ref, &call, &svc, &st);
      if (rc != CCM_OK || st.n != 1)
        hotswap_fail(hs, "lb_get", rc, &call);
      break;
    default:
      rc = prov_instance_exists(&ref, &call, &node, &exists);
      if (rc != CCM_OK || !exists)
        hotswap_fail(hs, "instance_exists", rc, &call);
      break;
    }
    lb_status_clear(&st);
    registry_release(&ref);
    atomic_fetch_add(&hs->calls, 1);
  }
  return NULL;
}

static int env_int(const char *name, int def)
{
  const char *v = getenv(name);
  char *end = NULL;
  long n;

  if (!v || !*v)
    return def;
  n = strtol(v, &end, 10);
  if (*end || n <= 0 || n > 100000)
    return def;
  return (int)n;
}

static void test_hotswap_under_load(void **state)
{
  struct hotswap hs;
  struct worker workers[HOTSWAP_THREADS];
  pthread_t threads[HOTSWAP_THREADS];
  struct registry_stats stats;
  struct test_pc t;
  char err[1024] = "", ver[32];
  int swaps = env_int("CCM_TEST_SWAPS", HOTSWAP_SWAPS);

  (void)state;
  memset(&hs, 0, sizeof(hs));
  pthread_mutex_init(&hs.lock, NULL);
  install("ccm-fake.so", "hot.so");
  pc_make(&t, "fake", "hot.so", true, NULL, "instances = [\"node-a\"];");
  hs.reg = registry_new(fx.state, 30000);
  assert_non_null(hs.reg);
  assert_int_equal(registry_swap(hs.reg, &t.pc, err, sizeof(err)), 0);
  {
    /* Every worker's load balancer exists before the first lb_get. */
    struct provider_ref ref;
    for (int i = 0; i < HOTSWAP_THREADS; i++) {
      struct ccm_service svc;
      struct ccm_lb_status st = {0};
      struct ccm_call call;
      char lb_name[32];
      snprintf(lb_name, sizeof(lb_name), "lb-%d", i);
      svc_make(&svc, lb_name);
      call_init(&call, 1000);
      assert_int_equal(registry_acquire(hs.reg, "fake", &ref), CCM_OK);
      assert_int_equal(prov_lb_ensure(&ref, &call, &svc, NULL, &st), CCM_OK);
      lb_status_clear(&st);
      registry_release(&ref);
    }
  }
  for (int i = 0; i < HOTSWAP_THREADS; i++) {
    workers[i].hs = &hs;
    workers[i].id = i;
    assert_int_equal(pthread_create(&threads[i], NULL, hotswap_worker,
                                    &workers[i]), 0);
  }
  for (int i = 0; i < swaps; i++) {
    install(i % 2 == 0 ? "ccm-fake-v2.so" : "ccm-fake.so", "hot.so");
    if (registry_swap(hs.reg, &t.pc, err, sizeof(err)) != 0)
      fail_msg("swap %d failed: %s", i, err);
    assert_string_equal(current_version(hs.reg, "fake", ver, sizeof(ver)),
                        i % 2 == 0 ? "2.0.0" : "1.0.0");
  }
  atomic_store(&hs.stop, true);
  for (int i = 0; i < HOTSWAP_THREADS; i++)
    pthread_join(threads[i], NULL);

  print_message("hot-swap: %d swaps, %ld calls, %ld failed\n", swaps,
                atomic_load(&hs.calls), atomic_load(&hs.failures));
  if (atomic_load(&hs.failures) != 0)
    fail_msg("%ld failed calls, first: %s", atomic_load(&hs.failures),
             hs.first_failure);
  assert_int_equal(atomic_load(&hs.dead_generation), 0);
  assert_true(atomic_load(&hs.calls) >= HOTSWAP_THREADS * 30);
  registry_get_stats(hs.reg, &stats);
  assert_int_equal(stats.swaps, (uint64_t)swaps);
  assert_int_equal(stats.failed_swaps, 0);
  assert_int_equal(stats.drain_timeouts, 0);
  assert_int_equal(stats.generations_destroyed, (uint64_t)swaps);
  assert_int_equal(stats.live_generations, 1);
  assert_int_equal(current_number(hs.reg, "fake"), (uint64_t)swaps + 1);
  registry_free(hs.reg);
  pthread_mutex_destroy(&hs.lock);
  pc_free(&t);
}

/* ---- state across versions ------------------------------------------- */

static void test_state_carried_across_versions(void **state)
{
  struct registry *reg = registry_new(fx.state, 5000);
  struct test_pc v1, v2;
  struct provider_ref ref;
  struct ccm_service svc;
  struct ccm_lb_status st = {0}, st2 = {0};
  struct ccm_call call;
  char err[1024] = "", ver[32], logf[512], text[600];

  (void)state;
  install("ccm-fake.so", "v1.so");
  install("ccm-fake-v2.so", "v2.so");
  path_join(logf, sizeof(logf), fx.root, "state.log");
  snprintf(text, sizeof(text), "call_log = \"%s\";", logf);
  pc_make(&v1, "fake", "v1.so", true, NULL, text);
  pc_make(&v2, "fake", "v2.so", true, NULL, text);
  svc_make(&svc, "lb-kept");
  assert_int_equal(registry_swap(reg, &v1.pc, err, sizeof(err)), 0);
  assert_int_equal(registry_acquire(reg, "fake", &ref), CCM_OK);
  call_init(&call, 1000);
  assert_int_equal(prov_lb_ensure(&ref, &call, &svc, NULL, &st), CCM_OK);
  assert_int_equal(st.n, 1);
  registry_release(&ref);

  assert_int_equal(registry_swap(reg, &v2.pc, err, sizeof(err)), 0);
  assert_string_equal(current_version(reg, "fake", ver, sizeof(ver)),
                      "2.0.0");
  assert_int_equal(count_lines(logf, "state_export"), 1);
  assert_int_equal(count_lines(logf, "state_import"), 1);
  assert_int_equal(registry_acquire(reg, "fake", &ref), CCM_OK);
  call_init(&call, 1000);
  assert_int_equal(prov_lb_get(&ref, &call, &svc, &st2), CCM_OK);
  assert_int_equal(st2.n, 1);
  assert_string_equal(st2.items[0].ip, st.items[0].ip);
  registry_release(&ref);
  lb_status_clear(&st);
  lb_status_clear(&st2);
  registry_free(reg);
  pc_free(&v1);
  pc_free(&v2);
}

/* A swap to another provider (fake -> lab) under the same slot: no state
 * handover (the formats differ), the new provider serves from its own
 * state, and the old one's export is never asked for. */
static void test_swap_to_another_provider(void **state)
{
  struct registry *reg = registry_new(fx.state, 5000);
  struct test_pc fake, lab;
  struct provider_ref ref;
  struct ccm_service svc;
  struct ccm_lb_status st = {0};
  struct ccm_call call;
  char err[1024] = "", logf[512], text[600];

  (void)state;
  install("ccm-fake.so", "other-fake.so");
  install("ccm-lab.so", "other-lab.so");
  path_join(logf, sizeof(logf), fx.root, "other.log");
  snprintf(text, sizeof(text), "call_log = \"%s\";", logf);
  pc_make(&fake, "slot", "other-fake.so", true, NULL, text);
  snprintf(text, sizeof(text), "state_file = \"%s/other-lab.json\";\n"
           "ipv4_pools = [\"198.51.100.0/30\"];", fx.root);
  pc_make(&lab, "slot", "other-lab.so", true, NULL, text);
  svc_make(&svc, "lb-other");
  assert_int_equal(registry_swap(reg, &fake.pc, err, sizeof(err)), 0);
  assert_int_equal(registry_acquire(reg, "slot", &ref), CCM_OK);
  call_init(&call, 1000);
  assert_int_equal(prov_lb_ensure(&ref, &call, &svc, NULL, &st), CCM_OK);
  registry_release(&ref);
  lb_status_clear(&st);

  assert_int_equal(registry_swap(reg, &lab.pc, err, sizeof(err)), 0);
  assert_int_equal(count_lines(logf, "state_export"), 0);
  assert_int_equal(registry_acquire(reg, "slot", &ref), CCM_OK);
  assert_string_equal(ref.gen->mod->provider->name, "lab");
  call_init(&call, 1000);
  /* The lab provider never saw the fake's load balancer. */
  assert_int_equal(prov_lb_get(&ref, &call, &svc, &st), CCM_ERR_NOT_FOUND);
  call_init(&call, 1000);
  assert_int_equal(prov_lb_ensure(&ref, &call, &svc, NULL, &st), CCM_OK);
  assert_string_equal(st.items[0].ip, "198.51.100.1");
  registry_release(&ref);
  lb_status_clear(&st);
  registry_free(reg);
  pc_free(&fake);
  pc_free(&lab);
}

/* ---- failed swaps ------------------------------------------------------ */

static void test_failed_swap_keeps_old(void **state)
{
  struct registry *reg = registry_new(fx.state, 5000);
  struct test_pc good, bad, missing;
  struct provider_ref ref;
  struct registry_stats stats;
  struct ccm_node node;
  struct ccm_call call;
  bool exists = false;
  char err[1024] = "", desc[2048] = "";
  FILE *mf;

  (void)state;
  install("ccm-fake.so", "good.so");
  install("ccm-fake-initfail.so", "bad.so");
  pc_make(&good, "fake", "good.so", true, NULL, "instances = [\"node-a\"];");
  pc_make(&bad, "fake", "bad.so", true, NULL, "");
  pc_make(&missing, "fake", "missing.so", true, NULL, "");
  assert_int_equal(registry_swap(reg, &good.pc, err, sizeof(err)), 0);

  assert_int_equal(registry_swap(reg, &bad.pc, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "fake: init refused on purpose"));
  assert_int_equal(registry_swap(reg, &missing.pc, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "no such file"));

  registry_get_stats(reg, &stats);
  assert_int_equal(stats.failed_swaps, 2);
  assert_int_equal(stats.swaps, 0);
  assert_int_equal(stats.live_generations, 1);
  assert_int_equal(current_number(reg, "fake"), 1);
  node_make(&node, "node-a");
  assert_int_equal(registry_acquire(reg, "fake", &ref), CCM_OK);
  call_init(&call, 1000);
  assert_int_equal(prov_instance_exists(&ref, &call, &node, &exists), CCM_OK);
  assert_true(exists);
  registry_release(&ref);

  /* The failure shows in describe (for /readyz) and in /metrics. */
  mf = fmemopen(desc, sizeof(desc) - 1, "w");
  registry_describe(reg, mf);
  fclose(mf);
  assert_non_null(strstr(desc, "generation 1"));
  assert_non_null(strstr(desc, "last swap failed"));
  assert_non_null(strstr(desc, "no such file"));
  mf = fmemopen(desc, sizeof(desc) - 1, "w");
  registry_metrics_write(reg, mf);
  fclose(mf);
  assert_non_null(strstr(desc, "ccm_module_failed_swaps_total 2\n"));
  assert_non_null(strstr(desc, "ccm_module_generation{provider=\"fake\"} 1\n"));
  assert_non_null(strstr(desc, "ccm_module_swaps_total 0\n"));
  assert_non_null(strstr(desc, "ccm_module_drain_timeouts_total 0\n"));
  assert_non_null(strstr(desc, "ccm_module_generations_destroyed_total 0\n"));
  registry_free(reg);
  pc_free(&good);
  pc_free(&bad);
  pc_free(&missing);
}

/* ---- drain deadlines --------------------------------------------------- */

struct slow_call {
  struct provider_ref *ref;
  int rc;
};

static void *slow_caller(void *arg)
{
  struct slow_call *sc = arg;
  struct ccm_service svc;
  struct ccm_lb_status st = {0};
  struct ccm_call call;

  svc_make(&svc, "lb-slow");
  call_init(&call, 10000);
  sc->rc = prov_lb_ensure(sc->ref, &call, &svc, NULL, &st);
  lb_status_clear(&st);
  return NULL;
}

/* A generation that misses the deadline is parked, not unloaded, while a
 * call still runs in its code; it is reaped by the next swap. */
static void test_slow_drain_parks(void **state)
{
  struct registry *reg = registry_new(fx.state, 50);
  struct test_pc t;
  struct provider_ref ref, again;
  struct registry_stats stats;
  struct slow_call sc;
  pthread_t th;
  char err[1024] = "";

  (void)state;
  install("ccm-fake-slowdrain.so", "slow.so");
  pc_make(&t, "fake", "slow.so", true, NULL, "latency_ms = { all = 300; };");
  assert_int_equal(registry_swap(reg, &t.pc, err, sizeof(err)), 0);
  assert_int_equal(registry_acquire(reg, "fake", &ref), CCM_OK);
  sc.ref = &ref;
  sc.rc = -100;
  assert_int_equal(pthread_create(&th, NULL, slow_caller, &sc), 0);

  assert_int_equal(registry_swap(reg, &t.pc, err, sizeof(err)), 0);
  registry_get_stats(reg, &stats);
  assert_int_equal(stats.drain_timeouts, 1);
  assert_int_equal(stats.generations_destroyed, 0);
  assert_int_equal(stats.live_generations, 2);
  assert_int_equal(current_number(reg, "fake"), 2);

  /* The parked generation still runs its call to the end. */
  pthread_join(th, NULL);
  assert_int_equal(sc.rc, CCM_OK);
  assert_int_equal(ref.gen->number, 1);
  registry_release(&ref);

  /* Another swap reaps it (and drains generation 2 in time: no calls). */
  assert_int_equal(registry_acquire(reg, "fake", &again), CCM_OK);
  assert_int_equal(again.gen->number, 2);
  registry_release(&again);
  assert_int_equal(registry_swap(reg, &t.pc, err, sizeof(err)), 0);
  registry_get_stats(reg, &stats);
  assert_int_equal(stats.generations_destroyed, 2);
  assert_int_equal(stats.live_generations, 1);
  assert_int_equal(stats.drain_timeouts, 1);
  registry_free(reg);
  pc_free(&t);
}

/* A held reference parks its generation; registry_free waits for it. */
struct late_release {
  struct provider_ref *ref;
};

static void *release_later(void *arg)
{
  struct late_release *lr = arg;
  struct timespec ts = {0, 200 * 1000000L};

  nanosleep(&ts, NULL);
  registry_release(lr->ref);
  return NULL;
}

static void test_free_waits_for_parked(void **state)
{
  struct registry *reg = registry_new(fx.state, 20);
  struct test_pc t;
  struct provider_ref ref;
  struct late_release lr;
  pthread_t th;
  char err[1024] = "";

  (void)state;
  install("ccm-fake-slowdrain.so", "slow2.so");
  pc_make(&t, "fake", "slow2.so", true, NULL, "latency_ms = { all = 0; };");
  assert_int_equal(registry_swap(reg, &t.pc, err, sizeof(err)), 0);
  assert_int_equal(registry_acquire(reg, "fake", &ref), CCM_OK);
  assert_int_equal(registry_swap(reg, &t.pc, err, sizeof(err)), 0);
  lr.ref = &ref;
  assert_int_equal(pthread_create(&th, NULL, release_later, &lr), 0);
  registry_free(reg); /* must wait for the release, not unload under it */
  pthread_join(th, NULL);
  pc_free(&t);
}

/* With a state path the old generation must drain before publishing; when
 * it cannot, the swap is abandoned and the old generation keeps serving. */
static void test_transfer_drain_timeout_aborts(void **state)
{
  struct registry *reg = registry_new(fx.state, 50);
  struct test_pc t;
  struct provider_ref held, ref;
  struct registry_stats stats;
  struct ccm_service svc;
  struct ccm_lb_status st = {0};
  struct ccm_call call;
  char err[1024] = "";

  (void)state;
  install("ccm-fake.so", "xfer.so");
  pc_make(&t, "fake", "xfer.so", true, NULL, "");
  assert_int_equal(registry_swap(reg, &t.pc, err, sizeof(err)), 0);
  assert_int_equal(registry_acquire(reg, "fake", &held), CCM_OK);
  assert_int_equal(registry_swap(reg, &t.pc, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "did not drain"));
  registry_get_stats(reg, &stats);
  assert_int_equal(stats.failed_swaps, 1);
  assert_int_equal(stats.live_generations, 1);
  /* Admission resumed: new calls reach generation 1 again. */
  svc_make(&svc, "lb-x");
  assert_int_equal(registry_acquire(reg, "fake", &ref), CCM_OK);
  assert_int_equal(ref.gen->number, 1);
  call_init(&call, 1000);
  assert_int_equal(prov_lb_ensure(&ref, &call, &svc, NULL, &st), CCM_OK);
  lb_status_clear(&st);
  registry_release(&ref);
  registry_release(&held);
  assert_int_equal(registry_swap(reg, &t.pc, err, sizeof(err)), 0);
  assert_int_equal(current_number(reg, "fake"), 2);
  registry_free(reg);
  pc_free(&t);
}

/* ---- unload-time calls ------------------------------------------------- */

static void test_unload_call_refused(void **state)
{
  struct registry *reg = registry_new(fx.state, 5000);
  struct test_pc t;
  char err[1024] = "";

  (void)state;
  install("ccm-fake-unload-call.so", "unload.so");
  pc_make(&t, "fake", "unload.so", true, NULL, "");
  assert_int_equal(registry_swap(reg, &t.pc, err, sizeof(err)), 0);
  cap_start();
  /* The swap destroys generation 1, whose destroy calls http_do. */
  assert_int_equal(registry_swap(reg, &t.pc, err, sizeof(err)), 0);
  assert_true(cap_has("http_do called during unload; refused"));
  assert_true(cap_has("fake: destroy http_do returned -7"));
  registry_free(reg);
  cap_stop();
  pc_free(&t);
}

/* ---- wrappers ---------------------------------------------------------- */

static void test_invalid_status_mapped(void **state)
{
  struct registry *reg = registry_new(fx.state, 5000);
  struct test_pc t;
  struct provider_ref ref;
  struct ccm_service svc;
  struct ccm_lb_status st = {0};
  struct ccm_node node;
  struct ccm_call call;
  bool exists = true;
  char err[1024] = "";

  (void)state;
  install("ccm-fake-nonconforming.so", "nonconf.so");
  pc_make(&t, "odd", "nonconf.so", true, NULL, "");
  assert_int_equal(registry_swap(reg, &t.pc, err, sizeof(err)), 0);
  assert_int_equal(registry_acquire(reg, "odd", &ref), CCM_OK);
  svc_make(&svc, "lb-odd");
  cap_start();
  call_init(&call, 1000);
  assert_int_equal(prov_lb_update_hosts(&ref, &call, &svc, NULL),
                   CCM_ERR_INTERNAL);
  assert_true(cap_has("lb_update_hosts returned status 42"));
  assert_true(cap_has("provider odd: module fake"));
  assert_non_null(strstr(call.error, "invalid status 42"));
  cap_stop();
  /* A failing call leaves its outputs cleared. */
  node_make(&node, "nobody");
  call_init(&call, 1000);
  assert_int_equal(prov_instance_exists(&ref, &call, &node, &exists),
                   CCM_ERR_INTERNAL);
  assert_false(exists);
  call_init(&call, 1000);
  assert_int_equal(prov_lb_ensure(&ref, &call, &svc, NULL, &st), CCM_OK);
  lb_status_clear(&st);
  call_init(&call, 1000);
  assert_int_equal(prov_lb_ensure(&ref, &call, &svc, NULL, &st),
                   CCM_ERR_INVALID);
  assert_int_equal(st.n, 0);
  registry_release(&ref);
  registry_free(reg);
  pc_free(&t);
}

static void test_outputs_cleared_on_error(void **state)
{
  struct registry *reg = registry_new(fx.state, 5000);
  struct test_pc t;
  struct provider_ref ref;
  struct ccm_service svc;
  struct ccm_lb_status st = {0};
  struct ccm_instance_meta meta = {0};
  struct ccm_node node;
  struct ccm_call call;
  char err[1024] = "";

  (void)state;
  install("ccm-fake.so", "errs.so");
  pc_make(&t, "fake", "errs.so", true, NULL,
          "instances = [\"node-a\"]; fill_on_error = true;"
          "error = { lb_get = \"throttled\"; instance_metadata = \"auth\"; };");
  assert_int_equal(registry_swap(reg, &t.pc, err, sizeof(err)), 0);
  assert_int_equal(registry_acquire(reg, "fake", &ref), CCM_OK);
  svc_make(&svc, "lb-e");
  call_init(&call, 1000);
  assert_int_equal(prov_lb_get(&ref, &call, &svc, &st), CCM_ERR_THROTTLED);
  assert_int_equal(st.n, 0);
  assert_null(st.items);
  assert_true(call.has_retry_after);
  assert_non_null(strstr(call.error, "injected lb_get"));
  node_make(&node, "node-a");
  call_init(&call, 1000);
  assert_int_equal(prov_instance_metadata(&ref, &call, &node, &meta),
                   CCM_ERR_AUTH);
  assert_null(meta.zone);
  registry_release(&ref);
  registry_free(reg);
  pc_free(&t);
}

static void test_batch_and_not_implemented(void **state)
{
  struct registry *reg = registry_new(fx.state, 5000);
  struct test_pc full, nobatch;
  struct provider_ref ref;
  struct ccm_node a, b;
  const struct ccm_node *nodes[2] = {&a, &b};
  struct ccm_instance_meta m0 = {0}, m1 = {0};
  struct ccm_instance_meta *const out[2] = {&m0, &m1};
  struct ccm_route_list routes = {0};
  struct ccm_call call;
  int status[2];
  char err[1024] = "", logf[512], text[700];

  (void)state;
  install("ccm-fake.so", "batch.so");
  install("ccm-fake-nobatch.so", "nobatch.so");
  path_join(logf, sizeof(logf), fx.root, "batch.log");
  snprintf(text, sizeof(text), "call_log = \"%s\"; instances = [\"node-a\"];",
           logf);
  pc_make(&full, "full", "batch.so", true, NULL, text);
  pc_make(&nobatch, "nobatch", "nobatch.so", false, "example.com/nb", text);
  assert_int_equal(registry_swap(reg, &full.pc, err, sizeof(err)), 0);
  assert_int_equal(registry_swap(reg, &nobatch.pc, err, sizeof(err)), 0);
  node_make(&a, "node-a");
  node_make(&b, "node-zz");

  /* Module batch: one call. */
  assert_int_equal(registry_acquire(reg, "full", &ref), CCM_OK);
  call_init(&call, 1000);
  assert_int_equal(prov_instance_metadata_batch(&ref, &call, nodes, 2, out,
                                                status), CCM_OK);
  assert_int_equal(status[0], CCM_OK);
  assert_int_equal(status[1], CCM_ERR_NOT_FOUND);
  assert_string_equal(m0.provider_id, "fake://node-a");
  assert_null(m1.provider_id);
  instance_meta_clear(&m0);
  registry_release(&ref);
  assert_int_equal(count_lines(logf, "instance_metadata_batch"), 1);

  /* Fallback: one call per node; routes are not implemented. */
  assert_int_equal(registry_acquire(reg, "nobatch", &ref), CCM_OK);
  assert_int_equal(ref.gen->mod->capabilities,
                   CCM_CAP_LOAD_BALANCER | CCM_CAP_INSTANCES | CCM_CAP_STATE);
  call_init(&call, 1000);
  assert_int_equal(prov_instance_metadata_batch(&ref, &call, nodes, 2, out,
                                                status), CCM_OK);
  assert_int_equal(status[0], CCM_OK);
  assert_int_equal(status[1], CCM_ERR_NOT_FOUND);
  assert_string_equal(m0.zone, "fake-zone-a");
  instance_meta_clear(&m0);
  instance_meta_clear(&m1);
  assert_int_equal(count_lines(logf, "instance_metadata_batch"), 1);
  assert_int_equal(count_lines(logf, "instance_metadata "), 2);
  call_init(&call, 1000);
  assert_int_equal(prov_route_list(&ref, &call, "test", &routes),
                   CCM_ERR_NOT_IMPLEMENTED);
  assert_non_null(strstr(call.error, "does not implement route_list"));
  assert_int_equal(count_lines(logf, "route_list"), 0);
  registry_release(&ref);
  registry_free(reg);
  pc_free(&full);
  pc_free(&nobatch);
}

/* ---- serial modules ---------------------------------------------------- */

struct serial_run {
  struct registry *reg;
  atomic_long failures;
};

static void *serial_worker(void *arg)
{
  struct serial_run *sr = arg;

  for (int i = 0; i < 20; i++) {
    struct provider_ref ref;
    struct ccm_service svc;
    struct ccm_lb_status st = {0};
    struct ccm_call call;
    svc_make(&svc, "lb-serial");
    if (registry_acquire(sr->reg, "serial", &ref) != CCM_OK) {
      atomic_fetch_add(&sr->failures, 1);
      continue;
    }
    call_init(&call, 10000);
    if (prov_lb_ensure(&ref, &call, &svc, NULL, &st) != CCM_OK)
      atomic_fetch_add(&sr->failures, 1);
    lb_status_clear(&st);
    registry_release(&ref);
  }
  return NULL;
}

/* The serial fake fails any call that overlaps another one. */
static void test_serial_module_serialised(void **state)
{
  struct serial_run sr;
  struct test_pc t;
  pthread_t th[4];
  char err[1024] = "";

  (void)state;
  install("ccm-fake-serial.so", "serial.so");
  pc_make(&t, "serial", "serial.so", true, NULL,
          "latency_ms = { lb_ensure = 2; };");
  sr.reg = registry_new(fx.state, 5000);
  atomic_init(&sr.failures, 0);
  assert_int_equal(registry_swap(sr.reg, &t.pc, err, sizeof(err)), 0);
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, serial_worker, &sr), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(atomic_load(&sr.failures), 0);
  registry_free(sr.reg);
  pc_free(&t);
}

/* ---- lookups and apply ------------------------------------------------- */

static void test_for_service_classes(void **state)
{
  struct registry *reg = registry_new(fx.state, 5000);
  struct test_pc a, b;
  struct provider_ref ref;
  char err[1024] = "";

  (void)state;
  install("ccm-fake.so", "a.so");
  install("ccm-fake-v2.so", "b.so");
  pc_make(&a, "fake-a", "a.so", true, NULL, "");
  pc_make(&b, "fake-b", "b.so", false, "example.com/b", "");
  assert_int_equal(registry_for_service(reg, NULL, &ref), CCM_ERR_NOT_FOUND);
  assert_int_equal(registry_swap(reg, &a.pc, err, sizeof(err)), 0);
  assert_int_equal(registry_swap(reg, &b.pc, err, sizeof(err)), 0);

  assert_int_equal(registry_for_service(reg, NULL, &ref), CCM_OK);
  assert_string_equal(ref.gen->host->name, "fake-a");
  registry_release(&ref);
  assert_null(ref.gen);
  assert_int_equal(registry_for_service(reg, "", &ref), CCM_OK);
  assert_string_equal(ref.gen->host->name, "fake-a");
  registry_release(&ref);
  assert_int_equal(registry_for_service(reg, "example.com/b", &ref), CCM_OK);
  assert_string_equal(ref.gen->host->name, "fake-b");
  assert_string_equal(ref.gen->mod->provider->version, "2.0.0");
  registry_release(&ref);
  assert_int_equal(registry_for_service(reg, "example.com/other", &ref),
                   CCM_ERR_NOT_FOUND);
  assert_null(ref.gen);
  assert_int_equal(registry_for_nodes(reg, &ref), CCM_OK);
  assert_string_equal(ref.gen->host->name, "fake-a");
  registry_release(&ref);
  assert_int_equal(registry_acquire(reg, "nope", &ref), CCM_ERR_NOT_FOUND);
  registry_free(reg);
  pc_free(&a);
  pc_free(&b);
}

/* Write a host.cfg with providers "keep" (unchanged across reloads) and
 * "swap" (whose config changes), both on ccm-fake.so. */
static void write_host_cfg(const char *path, int swap_value)
{
  FILE *f = fopen(path, "w");

  assert_non_null(f);
  fprintf(f,
          "state_dir = \"%s\";\n"
          "providers = (\n"
          "  { name = \"keep\"; module = \"%s/keep.so\"; default = true;\n"
          "    config = { call_log = \"%s/keep.log\"; }; },\n"
          "  { name = \"swap\"; module = \"%s/swap.so\";\n"
          "    load_balancer_class = \"example.com/swap\";\n"
          "    config = { latency_ms = { all = %d; }; }; }\n"
          ");\n",
          fx.state, fx.mods, fx.root, fx.mods, swap_value);
  assert_int_equal(fclose(f), 0);
}

/* A generation keeps the config it was built from: after a reload that
 * leaves provider "keep" untouched, the caller drops the old config, and
 * the module still reads its group (ASan proves no use-after-free); the
 * last reference goes with the generation (LSan proves no leak). */
static void test_generation_holds_config(void **state)
{
  struct host_config *cfg1 = NULL, *cfg2 = NULL;
  struct registry *reg = registry_new(fx.state, 5000);
  struct provider_ref ref;
  const char *log_path = NULL;
  char path[512], want[512], err[1024] = "";

  (void)state;
  install("ccm-fake.so", "keep.so");
  install("ccm-fake.so", "swap.so");
  path_join(path, sizeof(path), fx.root, "host.cfg");
  write_host_cfg(path, 0);
  assert_int_equal(config_load(path, &cfg1, err, sizeof(err)), 0);
  assert_int_equal(registry_apply(reg, cfg1, err, sizeof(err)), 0);

  write_host_cfg(path, 1);
  assert_int_equal(config_load(path, &cfg2, err, sizeof(err)), 0);
  assert_int_equal(registry_apply(reg, cfg2, err, sizeof(err)), 0);
  assert_int_equal(current_number(reg, "keep"), 1);
  assert_int_equal(current_number(reg, "swap"), 2);
  assert_int_equal(atomic_load(&cfg1->refs), 2); /* caller + "keep" gen */
  config_free(cfg1);

  assert_int_equal(registry_acquire(reg, "keep", &ref), CCM_OK);
  assert_ptr_equal(ref.gen->config, cfg1);
  assert_int_equal(host_api()->cfg_string(host_api()->cfg_root(ref.gen->host),
                                          "call_log", &log_path), CCM_OK);
  path_join(want, sizeof(want), fx.root, "keep.log");
  assert_string_equal(log_path, want);
  registry_release(&ref);

  registry_free(reg);
  assert_int_equal(atomic_load(&cfg2->refs), 1);
  config_free(cfg2);
}

static void test_apply(void **state)
{
  struct registry *reg = registry_new(fx.state, 5000);
  struct test_pc p[3];
  struct provider_config list[3];
  struct host_config cfg;
  struct provider_ref ref;
  struct registry_stats stats;
  char err[1024] = "";

  (void)state;
  install("ccm-fake.so", "apply-a.so");
  install("ccm-fake.so", "apply-b.so");
  install("ccm-fake-initfail.so", "apply-bad.so");
  pc_make(&p[0], "one", "apply-a.so", true, NULL, "instances = [\"n1\"];");
  pc_make(&p[1], "two", "apply-b.so", false, "example.com/two", "");
  pc_make(&p[2], "three", "apply-bad.so", false, "example.com/three", "");
  memset(&cfg, 0, sizeof(cfg));
  list[0] = p[0].pc;
  list[1] = p[1].pc;
  cfg.providers = list;
  cfg.n_providers = 2;

  assert_int_equal(registry_apply(reg, &cfg, err, sizeof(err)), 0);
  assert_int_equal(current_number(reg, "one"), 1);
  assert_int_equal(current_number(reg, "two"), 1);
  assert_int_equal(registry_for_service(reg, "example.com/two", &ref), CCM_OK);
  assert_string_equal(ref.gen->host->name, "two");
  registry_release(&ref);

  /* Unchanged: nothing reloads. */
  assert_int_equal(registry_apply(reg, &cfg, err, sizeof(err)), 0);
  assert_int_equal(current_number(reg, "one"), 1);
  assert_int_equal(current_number(reg, "two"), 1);

  /* Config of "two" changed, and its module file rebuilt: only it swaps. */
  list[1].config_hash[0] = list[1].config_hash[0] == 'a' ? 'b' : 'a';
  assert_int_equal(registry_apply(reg, &cfg, err, sizeof(err)), 0);
  assert_int_equal(current_number(reg, "one"), 1);
  assert_int_equal(current_number(reg, "two"), 2);
  install("ccm-fake-v2.so", "apply-a.so");
  assert_int_equal(registry_apply(reg, &cfg, err, sizeof(err)), 0);
  assert_int_equal(current_number(reg, "one"), 2);
  assert_int_equal(current_number(reg, "two"), 2);

  /* All or nothing: "two" changes and "three" fails: neither publishes. */
  list[1].config_hash[0] = list[1].config_hash[0] == 'a' ? 'b' : 'a';
  list[2] = p[2].pc;
  cfg.n_providers = 3;
  assert_int_equal(registry_apply(reg, &cfg, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "init refused on purpose"));
  assert_int_equal(current_number(reg, "two"), 2);
  assert_int_equal(registry_acquire(reg, "three", &ref), CCM_ERR_NOT_FOUND);
  registry_get_stats(reg, &stats);
  assert_int_equal(stats.failed_swaps, 1);

  /* Removal: "two" no longer listed, and the default moves to... "one". */
  cfg.n_providers = 1;
  assert_int_equal(registry_apply(reg, &cfg, err, sizeof(err)), 0);
  assert_int_equal(registry_acquire(reg, "two", &ref), CCM_ERR_NOT_FOUND);
  assert_int_equal(registry_for_service(reg, "example.com/two", &ref),
                   CCM_ERR_NOT_FOUND);
  assert_int_equal(registry_for_service(reg, NULL, &ref), CCM_OK);
  assert_string_equal(ref.gen->host->name, "one");
  registry_release(&ref);
  registry_get_stats(reg, &stats);
  assert_int_equal(stats.live_generations, 1);
  assert_int_equal(stats.generations_destroyed, 3);
  registry_free(reg);
  for (int i = 0; i < 3; i++)
    pc_free(&p[i]);
}

static void test_status_names(void **state)
{
  (void)state;
  assert_true(ccm_status_valid(CCM_OK));
  assert_true(ccm_status_valid(CCM_ERR_INTERNAL));
  assert_false(ccm_status_valid(42));
  assert_false(ccm_status_valid(-8));
  assert_string_equal(ccm_status_name(CCM_ERR_THROTTLED), "throttled");
  assert_string_equal(ccm_status_name(42), "invalid_status");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_status_names),
    cmocka_unit_test(test_hotswap_under_load),
    cmocka_unit_test(test_state_carried_across_versions),
    cmocka_unit_test(test_swap_to_another_provider),
    cmocka_unit_test(test_failed_swap_keeps_old),
    cmocka_unit_test(test_slow_drain_parks),
    cmocka_unit_test(test_free_waits_for_parked),
    cmocka_unit_test(test_transfer_drain_timeout_aborts),
    cmocka_unit_test(test_unload_call_refused),
    cmocka_unit_test(test_invalid_status_mapped),
    cmocka_unit_test(test_outputs_cleared_on_error),
    cmocka_unit_test(test_batch_and_not_implemented),
    cmocka_unit_test(test_serial_module_serialised),
    cmocka_unit_test(test_for_service_classes),
    cmocka_unit_test(test_apply),
    cmocka_unit_test(test_generation_holds_config),
  };

  log_set_level(CCM_LOG_WARN);
  return cmocka_run_group_tests(tests, setup, teardown);
}
