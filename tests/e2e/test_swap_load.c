/*
 * test_swap_load.c: hot-swap the lab provider module 20 times (two private
 * copies of ccm-lab.so that differ by one appended byte, so each swap loads
 * a new file) while LoadBalancer Services are created: the 1,000
 * with CCM_E2E_SCALE=1; by default 400 (scale 0.4), because the host's
 * Kubernetes client is limited to 20 requests/s and 1,000 Services take
 * about 5 minutes on 2 cores. Asserts outcomes only: every swap
 * succeeded, no reconcile failed, no provider call failed, every Service
 * converged and the lab holds one load balancer per Service.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "controllers/service.h"
#include "controllers/service_logic.h"
#include "harness.h"
#include "kube/writes.h"

#define NS "default"
#define BASE_CREATES 1000
#define DEFAULT_SCALE 0.4
#define SWAPS 20
#define CONVERGE_MS 300000u

struct swap_state {
  struct e2e e;
  char mod[2][400];        /* the two private copies */
  struct host_config *cfg[2]; /* one per copy; freed after e2e_stop */
};

/* CCM_E2E_SCALE: a positive factor on the count (default 0.4). */
static double chaos_scale(void)
{
  const char *s = getenv("CCM_E2E_SCALE");
  char *end;
  double v;

  if (s == NULL || *s == '\0')
    return DEFAULT_SCALE;
  v = strtod(s, &end);
  if (end == s || *end != '\0' || v <= 0 || v > 100)
    return DEFAULT_SCALE;
  return v;
}

static double chaos_now_s(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path)
{
  FILE *f = fopen(path, "r");
  char *buf = NULL;
  long len;

  if (f == NULL)
    return NULL;
  len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (len > 0 && fseek(f, 0, SEEK_SET) == 0) {
    buf = calloc(1, (size_t)len + 1);
    if (buf != NULL && fread(buf, 1, (size_t)len, f) != (size_t)len) {
      free(buf);
      buf = NULL;
    }
  }
  fclose(f);
  return buf;
}

/* Copy src to dst, appending extra bytes (a different file, same code). */
static int copy_module(const char *src, const char *dst, const char *extra)
{
  char *buf = NULL;
  FILE *in = fopen(src, "rb"), *out = NULL;
  long len;
  int rc = -1;

  if (in == NULL)
    return -1;
  len = fseek(in, 0, SEEK_END) == 0 ? ftell(in) : -1;
  if (len <= 0 || fseek(in, 0, SEEK_SET) != 0)
    goto done;
  buf = malloc((size_t)len);
  if (buf == NULL || fread(buf, 1, (size_t)len, in) != (size_t)len)
    goto done;
  out = fopen(dst, "wb");
  if (out == NULL || fwrite(buf, 1, (size_t)len, out) != (size_t)len ||
      fwrite(extra, 1, strlen(extra), out) != strlen(extra))
    goto done;
  rc = 0;
done:
  if (out != NULL && fclose(out) != 0)
    rc = -1;
  fclose(in);
  free(buf);
  return rc;
}

/* The harness's lab pool is one /24 (254 addresses): a config for module
 * with a /16 so that a thousand Services fit; with swap, swap to it. */
static struct host_config *chaos_big_pool(struct e2e *e, const char *tag,
                                          const char *module, bool swap)
{
  struct host_config *cfg = NULL;
  char path[400], err[1024];
  FILE *f;

  snprintf(path, sizeof(path), "%s/host-%s.cfg", e->dir, tag);
  f = fopen(path, "w");
  if (f == NULL)
    return NULL;
  fprintf(f,
          "cluster_name = \"e2e\";\n"
          "kubeconfig = \"%s\";\n"
          "state_dir = \"%s/state\";\n"
          "drain_timeout_ms = 5000;\n"
          "leader_election = { enabled = false; };\n"
          "providers = ( { name = \"%s\"; module = \"%s\";\n"
          "  call_timeout_ms = 10000;\n"
          "  config = { state_file = \"%s\";\n"
          "    ipv4_pools = [\"10.200.0.0/16\"]; }; } );\n",
          e->kd.kubeconfig, e->dir, e->provider, module, e->state_file);
  if (fclose(f) != 0)
    return NULL;
  if (config_load(path, &cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "config_load %s: %s\n", path, err);
    return NULL;
  }
  if (swap && registry_swap(e->reg, &cfg->providers[0], err, sizeof(err)) != 0) {
    fprintf(stderr, "registry_swap: %s\n", err);
    config_free(cfg);
    return NULL;
  }
  return cfg;
}

static int setup(void **state)
{
  struct swap_state *s = calloc(1, sizeof(*s));
  struct e2e_opts o = {.provider = "lab", .workers = 4};
  char err[1024];
  int k;

  if (s == NULL)
    return -1;
  *state = s;
  if (e2e_setup(&s->e, &o) != 0)
    return -1;
  for (k = 0; k < 2; k++) {
    char dir[400];

    snprintf(dir, sizeof(dir), "%s/copy%d", s->e.dir, k);
    snprintf(s->mod[k], sizeof(s->mod[k]), "%s/ccm-lab.so", dir);
    if (mkdir(dir, 0700) != 0 ||
        copy_module(CCM_E2E_LAB_MODULE, s->mod[k], k == 0 ? "" : "\n") != 0)
      return -1;
    s->cfg[k] = chaos_big_pool(&s->e, k == 0 ? "a" : "b", s->mod[k], false);
    if (s->cfg[k] == NULL)
      return -1;
  }
  if (registry_swap(s->e.reg, &s->cfg[0]->providers[0], err,
                    sizeof(err)) != 0) {
    fprintf(stderr, "registry_swap: %s\n", err);
    return -1;
  }
  if (e2e_run_controller(&s->e, &service_controller_ops) != 0)
    return -1;
  if (e2e_create_node(&s->e, "n1", "10.0.0.1", true) != 0 ||
      e2e_create_node(&s->e, "n2", "10.0.0.2", true) != 0)
    return -1;
  return e2e_go(&s->e);
}

static int teardown(void **state)
{
  struct swap_state *s = *state;

  if (s != NULL) {
    e2e_stop(&s->e);
    if (s->cfg[0] != NULL)
      config_free(s->cfg[0]);
    if (s->cfg[1] != NULL)
      config_free(s->cfg[1]);
    free(s);
  }
  return 0;
}

static void svc_name(char *buf, size_t cap, int i)
{
  snprintf(buf, cap, "s-%04d", i);
}

static const char *ann_name(const cJSON *obj)
{
  const cJSON *a = e2e_json_at(obj, "metadata.annotations");
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(a,
                                                    CCM_SVC_NAME_ANNOTATION);

  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *find_item(const cJSON *items, const char *name)
{
  const cJSON *it;

  cJSON_ArrayForEach(it, items) {
    const char *n = e2e_json_str(it, "metadata.name");

    if (n != NULL && strcmp(n, name) == 0)
      return it;
  }
  return NULL;
}

/* The service controller's Prometheus text (cJSON-free, line by line):
 * calls fn for each line. */
static void metrics_lines(struct swap_state *s,
                          void (*fn)(const char *line, void *ud), void *ud)
{
  char *buf = NULL, *line, *nl;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);

  if (m == NULL)
    return;
  service_controller_ops.metrics(s->e.ctrls[0].state, m);
  fclose(m);
  for (line = buf; line != NULL && *line != '\0'; line = nl) {
    nl = strchr(line, '\n');
    if (nl != NULL)
      *nl++ = '\0';
    fn(line, ud);
  }
  free(buf);
}

static void print_line(const char *line, void *ud)
{
  (void)ud;
  if (strncmp(line, "ccm_reconcile_total", 19) == 0 ||
      strncmp(line, "ccm_workqueue_retries_total", 27) == 0 ||
      strncmp(line, "ccm_workqueue_adds_total", 24) == 0)
    fprintf(stderr, "swap: %s\n", line);
}

static void print_metrics(struct swap_state *s)
{
  metrics_lines(s, print_line, NULL);
}

static void sum_reconciles(const char *line, void *ud)
{
  long long *n = ud;
  const char *sp;

  if (strncmp(line, "ccm_reconcile_total{", 20) != 0)
    return;
  sp = strrchr(line, ' ');
  if (sp != NULL)
    *n += strtoll(sp + 1, NULL, 10);
}

/* Reconciles done so far (success + error): a progress signal for pacing
 * the load, never asserted on. */
static long long reconciles(struct swap_state *s)
{
  long long n = 0;

  metrics_lines(s, sum_reconciles, &n);
  return n;
}

static void sum_errors(const char *line, void *ud)
{
  long long *n = ud;
  const char *key = "ccm_reconcile_total{controller=\"service\","
                    "result=\"error\"} ";

  if (strncmp(line, key, strlen(key)) == 0)
    *n += strtoll(line + strlen(key), NULL, 10);
}

struct progress {
  struct swap_state *s;
  long long want;
};

static bool pred_progress(struct e2e *e, void *ud)
{
  struct progress *p = ud;

  (void)e;
  return reconciles(p->s) >= p->want;
}

/* Wait (bounded) until the controller did want reconciles; pacing only. */
static void pace(struct swap_state *s, long long want, uint32_t max_ms)
{
  struct progress p = {s, want};

  (void)e2e_wait(&s->e, pred_progress, &p, max_ms);
}

struct calls {
  long long ok, bad;
  char first_bad[256];
};

/* Provider calls by status: every call must have succeeded (the lab
 * answers NOT_FOUND only for load balancers that do not exist, which
 * never happens here: nothing is deleted). */
static void count_calls(const char *line, void *ud)
{
  struct calls *c = ud;
  const char *sp;
  long long n;

  if (strncmp(line, "ccm_provider_calls_total{", 25) != 0)
    return;
  sp = strrchr(line, ' ');
  if (sp == NULL)
    return;
  n = strtoll(sp + 1, NULL, 10);
  if (strstr(line, "status=\"ok\"") != NULL) {
    c->ok += n;
    return;
  }
  c->bad += n;
  if (c->first_bad[0] == '\0')
    snprintf(c->first_bad, sizeof(c->first_bad), "%s", line);
}

static void registry_lines(struct swap_state *s,
                           void (*fn)(const char *line, void *ud), void *ud)
{
  char *buf = NULL, *line, *nl;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);

  if (m == NULL)
    return;
  registry_metrics_write(s->e.reg, m);
  fclose(m);
  for (line = buf; line != NULL && *line != '\0'; line = nl) {
    nl = strchr(line, '\n');
    if (nl != NULL)
      *nl++ = '\0';
    fn(line, ud);
  }
  free(buf);
}

struct world {
  int n;
  char why[512];
};

/* Every Service converged (finalizer, recorded name, ingress) and the lab
 * holds exactly one load balancer per Service, under its recorded name,
 * with distinct addresses. */
static bool settled(struct e2e *e, void *ud)
{
  struct world *w = ud;
  cJSON *list = e2e_get(e, "/api/v1/namespaces/" NS "/services");
  const cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
  cJSON *lab = NULL, *ips = NULL;
  const cJSON *lbs, *lb;
  char *text = NULL, name[32];
  int i, n_lbs = 0;
  bool ok = false;

  w->why[0] = '\0';
  for (i = 0; i < w->n; i++) {
    const cJSON *sv;

    svc_name(name, sizeof(name), i);
    sv = find_item(items, name);
    if (sv == NULL || !kube_has_finalizer(sv, CCM_SVC_FINALIZER) ||
        ann_name(sv) == NULL ||
        e2e_json_str(sv, "status.loadBalancer.ingress.0.ip") == NULL) {
      snprintf(w->why, sizeof(w->why), "Service %s has not converged", name);
      goto done;
    }
  }
  text = slurp(e->state_file);
  lab = text ? cJSON_Parse(text) : NULL;
  lbs = cJSON_GetObjectItemCaseSensitive(lab, "load_balancers");
  if (!cJSON_IsArray(lbs)) {
    snprintf(w->why, sizeof(w->why), "no lab state");
    goto done;
  }
  ips = cJSON_CreateObject();
  cJSON_ArrayForEach(lb, lbs) {
    const char *lname = e2e_json_str(lb, "name");
    const char *owner = e2e_json_str(lb, "service");
    const char *slash = owner ? strchr(owner, '/') : NULL;
    const cJSON *sv = slash ? find_item(items, slash + 1) : NULL, *ip;

    n_lbs++;
    if (lname == NULL || sv == NULL || ann_name(sv) == NULL ||
        strcmp(ann_name(sv), lname) != 0) {
      snprintf(w->why, sizeof(w->why), "lab holds %s for %s, unrecorded",
               lname ? lname : "?", owner ? owner : "?");
      goto done;
    }
    cJSON_ArrayForEach(ip, cJSON_GetObjectItemCaseSensitive(lb, "ips")) {
      if (!cJSON_IsString(ip))
        continue;
      if (cJSON_GetObjectItemCaseSensitive(ips, ip->valuestring) != NULL) {
        snprintf(w->why, sizeof(w->why), "address %s is held twice",
                 ip->valuestring);
        goto done;
      }
      cJSON_AddTrueToObject(ips, ip->valuestring);
    }
  }
  if (n_lbs != w->n) {
    snprintf(w->why, sizeof(w->why), "lab holds %d load balancers for %d "
             "Services", n_lbs, w->n);
    goto done;
  }
  ok = true;
done:
  cJSON_Delete(ips);
  cJSON_Delete(lab);
  free(text);
  cJSON_Delete(list);
  return ok;
}

static void test_swap_load(void **state)
{
  struct swap_state *s = *state;
  struct e2e *e = &s->e;
  double scale = chaos_scale(), t0, t1;
  int n = (int)(BASE_CREATES * scale + 0.5), i, swaps = 0, every;
  struct registry_stats st0, st;
  struct calls calls;
  struct world w;
  long long errors = 0;
  char err[1024];

  if (n < SWAPS * 2)
    n = SWAPS * 2;
  every = n / SWAPS;
  registry_get_stats(e->reg, &st0);
  fprintf(stderr, "swap: %d creations, %d swaps (CCM_E2E_SCALE %.2f)\n", n,
          SWAPS, scale);
  t0 = chaos_now_s();
  for (i = 0; i < n; i++) {
    char name[32];
    int t;

    svc_name(name, sizeof(name), i);
    for (t = 0; t < 20; t++) {
      if (e2e_create_service_lb(e, NS, name, 80, NULL) == KUBE_OK)
        break;
      e2e_sleep_ms(50);
    }
    if (t == 20)
      fail_msg("cannot create %s", name);
    /* Swap in the middle of each slice, while reconciles are in flight. */
    if (i % every == every / 2 && swaps < SWAPS) {
      int k = (swaps + 1) % 2; /* copy b first: copy a serves now */

      if (registry_swap(e->reg, &s->cfg[k]->providers[0], err,
                        sizeof(err)) != 0)
        fail_msg("swap %d to %s: %s", swaps + 1, s->mod[k], err);
      swaps++;
    }
    /* Keep the controller busy: at most ~60 keys ahead of it. */
    if (i % 10 == 9)
      pace(s, i - 60, 10000);
  }
  t1 = chaos_now_s();
  fprintf(stderr, "swap: created %d Services with %d swaps in %.1f s\n", n,
          swaps, t1 - t0);
  assert_int_equal(swaps, SWAPS);
  w.n = n;
  if (!e2e_wait(e, settled, &w, CONVERGE_MS))
    fail_msg("not settled: %s", w.why);
  fprintf(stderr, "swap: settled %.1f s after the last creation\n",
          chaos_now_s() - t1);
  print_metrics(s);
  registry_get_stats(e->reg, &st);
  fprintf(stderr, "swap: swaps %llu, failed %llu, drain timeouts %llu\n",
          (unsigned long long)(st.swaps - st0.swaps),
          (unsigned long long)(st.failed_swaps - st0.failed_swaps),
          (unsigned long long)(st.drain_timeouts - st0.drain_timeouts));
  assert_int_equal(st.swaps - st0.swaps, SWAPS);
  assert_int_equal(st.failed_swaps - st0.failed_swaps, 0);
  metrics_lines(s, sum_errors, &errors);
  assert_int_equal(errors, 0);
  memset(&calls, 0, sizeof(calls));
  registry_lines(s, count_calls, &calls);
  fprintf(stderr, "swap: provider calls ok %lld, failed %lld%s%s\n",
          calls.ok, calls.bad, calls.bad ? ": " : "", calls.first_bad);
  assert_true(calls.ok >= n);
  assert_int_equal(calls.bad, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_swap_load, setup, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
