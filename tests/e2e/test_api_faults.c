/*
 * test_api_faults.c: the service controller (host/controllers/service*.c)
 * with the lab provider while the API double injects faults: 5xx on a
 * share of requests, 429 on patches, dropped watches, restarts (410
 * relists) and compactions, during 500 Service creations and 200
 * deletions (CCM_E2E_SCALE multiplies both). Asserts outcomes only: every
 * remaining Service converges, deleted ones are gone, and the lab's state
 * holds exactly one load balancer per remaining Service. No timing asserts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "controllers/service.h"
#include "controllers/service_logic.h"
#include "harness.h"
#include "kube/writes.h"

#define NS "default"
#define BASE_CREATES 500
#define BASE_DELETES 200
#define CONVERGE_MS 300000u
#define OP_TRIES 100

struct faults_state {
  struct e2e e;
  struct host_config *big; /* lab with a /16 pool; freed after e2e_stop */
};

/* CCM_E2E_SCALE: a positive factor for the object counts (default 1). */
static double chaos_scale(void)
{
  const char *s = getenv("CCM_E2E_SCALE");
  char *end;
  double v;

  if (s == NULL || *s == '\0')
    return 1.0;
  v = strtod(s, &end);
  if (end == s || *end != '\0' || v <= 0 || v > 100)
    return 1.0;
  return v;
}

static double chaos_now_s(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The harness's lab pool is one /24 (254 addresses); swap, before the
 * controllers start, to the same module with a /16 so that hundreds of
 * Services fit. */
static struct host_config *chaos_big_pool(struct e2e *e, const char *tag,
                                          const char *module)
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
  if (registry_swap(e->reg, &cfg->providers[0], err, sizeof(err)) != 0) {
    fprintf(stderr, "registry_swap: %s\n", err);
    config_free(cfg);
    return NULL;
  }
  return cfg;
}

static int setup(void **state)
{
  struct faults_state *s = calloc(1, sizeof(*s));
  struct e2e_opts o = {.provider = "lab", .workers = 4};

  if (s == NULL)
    return -1;
  *state = s;
  if (e2e_setup(&s->e, &o) != 0)
    return -1;
  s->big = chaos_big_pool(&s->e, "big", CCM_E2E_LAB_MODULE);
  if (s->big == NULL ||
      e2e_run_controller(&s->e, &service_controller_ops) != 0)
    return -1;
  if (e2e_create_node(&s->e, "n1", "10.0.0.1", true) != 0 ||
      e2e_create_node(&s->e, "n2", "10.0.0.2", true) != 0)
    return -1;
  return e2e_go(&s->e);
}

static int teardown(void **state)
{
  struct faults_state *s = *state;

  if (s != NULL) {
    e2e_stop(&s->e);
    if (s->big != NULL)
      config_free(s->big);
    free(s);
  }
  return 0;
}

static void control(struct e2e *e, const char *op, const char *json)
{
  cJSON *r = kdouble_control(e->client, op, json);

  if (r == NULL)
    fail_msg("control %s %s failed", op, json ? json : "");
  cJSON_Delete(r);
}

static void svc_name(char *buf, size_t cap, int i)
{
  snprintf(buf, cap, "f-%04d", i);
}

/* The test's own writes meet the injected faults too: retry (bounded). */
static void create_svc(struct e2e *e, int i)
{
  char name[32];
  int t;

  svc_name(name, sizeof(name), i);
  for (t = 0; t < OP_TRIES; t++) {
    if (e2e_create_service_lb(e, NS, name, 80, NULL) == KUBE_OK)
      return;
    e2e_sleep_ms(20);
  }
  fail_msg("cannot create %s", name);
}

static void delete_svc(struct e2e *e, int i)
{
  char name[32], path[128];
  int t;

  svc_name(name, sizeof(name), i);
  snprintf(path, sizeof(path), "/api/v1/namespaces/" NS "/services/%s", name);
  for (t = 0; t < OP_TRIES; t++) {
    if (e2e_delete(e, path) == KUBE_OK)
      return;
    e2e_sleep_ms(20);
  }
  fail_msg("cannot delete %s", name);
}

/* Index i is deleted when i % 5 is 1 or 3: 2 in 5 (200 of 500). */
static bool doomed(int i)
{
  return i % 5 == 1 || i % 5 == 3;
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

struct world {
  int n;                /* Services created: f-0000 .. f-(n-1) */
  char why[512];        /* first reason the world is not settled */
};

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

/* The settled world: every kept Service has our finalizer, a recorded
 * name and an ingress IP; every doomed one is gone; the lab holds exactly
 * one load balancer per kept Service, named by its annotation, for that
 * Service, and no two load balancers share an address. */
static bool settled(struct e2e *e, void *ud)
{
  struct world *w = ud;
  cJSON *list = e2e_get(e, "/api/v1/namespaces/" NS "/services");
  const cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
  cJSON *lab = NULL, *ips = NULL;
  const cJSON *lbs, *lb;
  char *text = NULL, name[32];
  int i, kept = 0, n_lbs = 0;
  bool ok = false;

  w->why[0] = '\0';
  if (list == NULL) {
    snprintf(w->why, sizeof(w->why), "cannot list Services");
    goto done;
  }
  for (i = 0; i < w->n; i++) {
    const cJSON *s;

    svc_name(name, sizeof(name), i);
    s = find_item(items, name);
    if (doomed(i)) {
      if (s != NULL) {
        snprintf(w->why, sizeof(w->why), "deleted Service %s still exists "
                 "(finalizer %s)", name,
                 kube_has_finalizer(s, CCM_SVC_FINALIZER) ? "present" :
                 "absent");
        goto done;
      }
      continue;
    }
    kept++;
    if (s == NULL || !kube_has_finalizer(s, CCM_SVC_FINALIZER) ||
        ann_name(s) == NULL ||
        e2e_json_str(s, "status.loadBalancer.ingress.0.ip") == NULL) {
      snprintf(w->why, sizeof(w->why), "Service %s has not converged "
               "(exists %d, finalizer %d, name %s)", name, s != NULL,
               s != NULL && kube_has_finalizer(s, CCM_SVC_FINALIZER),
               s ? (ann_name(s) ? ann_name(s) : "none") : "-");
      goto done;
    }
  }
  text = slurp(e->state_file);
  lab = text ? cJSON_Parse(text) : NULL;
  lbs = cJSON_GetObjectItemCaseSensitive(lab, "load_balancers");
  if (!cJSON_IsArray(lbs)) {
    snprintf(w->why, sizeof(w->why), "no lab state in %s", e->state_file);
    goto done;
  }
  ips = cJSON_CreateObject();
  cJSON_ArrayForEach(lb, lbs) {
    const char *lname = e2e_json_str(lb, "name");
    const char *owner = e2e_json_str(lb, "service");
    const cJSON *s = NULL, *ip;
    const char *slash = owner ? strchr(owner, '/') : NULL;

    n_lbs++;
    if (lname == NULL || slash == NULL) {
      snprintf(w->why, sizeof(w->why), "lab record without name/service");
      goto done;
    }
    s = find_item(items, slash + 1);
    if (s == NULL || ann_name(s) == NULL || strcmp(ann_name(s), lname) != 0) {
      snprintf(w->why, sizeof(w->why), "lab holds %s for %s, which %s",
               lname, owner, s == NULL ? "does not exist" :
               "records another load-balancer name");
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
  if (n_lbs != kept) {
    snprintf(w->why, sizeof(w->why), "lab holds %d load balancers for %d "
             "Services", n_lbs, kept);
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

/* The service controller's Prometheus text (cJSON-free, line by line):
 * calls fn for each line. */
static void metrics_lines(struct faults_state *s,
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
    fprintf(stderr, "faults: %s\n", line);
}

static void print_metrics(struct faults_state *s)
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
static long long reconciles(struct faults_state *s)
{
  long long n = 0;

  metrics_lines(s, sum_reconciles, &n);
  return n;
}

struct progress {
  struct faults_state *s;
  long long want;
};

static bool pred_progress(struct e2e *e, void *ud)
{
  struct progress *p = ud;

  (void)e;
  return reconciles(p->s) >= p->want;
}

/* Wait (bounded) until the controller did want reconciles; pacing only. */
static void pace(struct faults_state *s, long long want, uint32_t max_ms)
{
  struct progress p = {s, want};

  (void)e2e_wait(&s->e, pred_progress, &p, max_ms);
}

static void test_api_faults(void **state)
{
  struct faults_state *s = *state;
  struct e2e *e = &s->e;
  double scale = chaos_scale(), t0, t1;
  int n = (int)(BASE_CREATES * scale + 0.5), i, lag = 25, deleted = 0;
  struct world w;

  if (n < 10)
    n = 10;
  fprintf(stderr, "faults: %d creations, %d deletions (CCM_E2E_SCALE "
          "%.2f)\n", n, (n / 5) * 2 + (n % 5 > 1) + (n % 5 > 3), scale);
  t0 = chaos_now_s();
  /* 5xx on 10% of all requests (ours too; we retry); 429 with a
   * Retry-After on some of the controller's patches. */
  control(e, "faults", "{\"status\":503,\"probability\":0.1}");
  control(e, "faults", "{\"status\":500,\"probability\":0.02,"
                       "\"method\":\"PUT\"}");
  control(e, "faults", "{\"status\":429,\"every\":25,\"method\":\"PATCH\","
                       "\"retryAfter\":1}");
  for (i = 0; i < n; i++) {
    create_svc(e, i);
    /* Some deletions race the first ensure, most follow it later. */
    if (doomed(i) && i % 50 == 1) {
      delete_svc(e, i);
      deleted++;
    }
    if (i >= lag && doomed(i - lag) && (i - lag) % 50 != 1) {
      delete_svc(e, i - lag);
      deleted++;
    }
    if (i % 100 == 99) {
      control(e, "drop-watches", NULL);
      /* A burst that outlasts the client's retries: reconciles fail and
       * back off. */
      control(e, "faults", "{\"status\":503,\"count\":12,"
                           "\"method\":\"PATCH\"}");
    }
    if (i == n / 2 || i == (n * 4) / 5)
      control(e, "restart", NULL);
    if (i == n / 3)
      control(e, "compact", NULL);
    /* Keep the controller busy while we create: at most ~60 keys ahead. */
    if (i % 10 == 9)
      pace(s, i - 60, 10000);
  }
  for (i = n - lag; i < n; i++) {
    if (i >= 0 && doomed(i) && i % 50 != 1) {
      delete_svc(e, i);
      deleted++;
    }
  }
  /* The faults stay on while the controller works through most of it. */
  for (i = 0; i < 40 && reconciles(s) < (long long)n * 6 / 10; i++) {
    e2e_sleep_ms(1000);
    if (i % 3 == 2)
      control(e, "drop-watches", NULL);
    if (i == 10)
      control(e, "restart", NULL);
  }
  control(e, "drop-watches", NULL);
  t1 = chaos_now_s();
  control(e, "faults", "{\"clear\":true}");
  fprintf(stderr, "faults: %d created, %d deleted in %.1f s under faults\n",
          n, deleted, t1 - t0);
  w.n = n;
  if (!e2e_wait(e, settled, &w, CONVERGE_MS)) {
    print_metrics(s);
    fail_msg("not settled: %s", w.why);
  }
  fprintf(stderr, "faults: settled %.1f s after the faults stopped\n",
          chaos_now_s() - t1);
  print_metrics(s);
  /* Settled stays settled: nothing is re-created or released late. */
  e2e_sleep_ms(2000);
  assert_true(settled(e, &w));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_api_faults, setup, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
