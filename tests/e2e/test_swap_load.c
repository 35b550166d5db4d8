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

#include <cmocka.h>

#include "controllers/service.h"
#include "harness.h"
#include "load.h"

#define NS "default"
#define BASE_CREATES 1000
#define DEFAULT_SCALE 0.4
#define SWAPS 20
#define CONVERGE_MS 300000u
#define CREATE_TRIES 20
#define PREFIX "s"

struct swap_state {
  struct e2e e;
  char mod[2][400];        /* the two private copies */
  struct host_config *cfg[2]; /* one per copy; freed after e2e_stop */
};

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
    s->cfg[k] = e2e_load_big_pool(&s->e, k == 0 ? "a" : "b", s->mod[k],
                                 false);
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

static void sum_errors(const char *line, void *ud)
{
  long long *n = ud;
  const char *key = "ccm_reconcile_total{controller=\"service\","
                    "result=\"error\"} ";

  if (strncmp(line, key, strlen(key)) == 0)
    *n += strtoll(line + strlen(key), NULL, 10);
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
  char name[32];
  int i;
  bool ok = false;

  w->why[0] = '\0';
  for (i = 0; i < w->n; i++) {
    e2e_load_svc_name(name, sizeof(name), PREFIX, i);
    if (!e2e_load_svc_ready(e2e_load_find_item(items, name))) {
      snprintf(w->why, sizeof(w->why), "Service %s has not converged", name);
      goto done;
    }
  }
  ok = e2e_load_lab_matches(e, items, w->n, w->why, sizeof(w->why));
done:
  cJSON_Delete(list);
  return ok;
}

static void test_swap_load(void **state)
{
  struct swap_state *s = *state;
  struct e2e *e = &s->e;
  double scale = e2e_load_scale(DEFAULT_SCALE), t0, t1;
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
  t0 = e2e_load_now_s();
  for (i = 0; i < n; i++) {
    char name[32];

    e2e_load_svc_name(name, sizeof(name), PREFIX, i);
    if (e2e_load_create_svc(e, NS, name, CREATE_TRIES, 50) != KUBE_OK)
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
      e2e_load_pace(e, i - 60, 10000);
  }
  t1 = e2e_load_now_s();
  fprintf(stderr, "swap: created %d Services with %d swaps in %.1f s\n", n,
          swaps, t1 - t0);
  assert_int_equal(swaps, SWAPS);
  w.n = n;
  if (!e2e_wait(e, settled, &w, CONVERGE_MS))
    fail_msg("not settled: %s", w.why);
  fprintf(stderr, "swap: settled %.1f s after the last creation\n",
          e2e_load_now_s() - t1);
  e2e_load_print_metrics(e, "swap");
  registry_get_stats(e->reg, &st);
  fprintf(stderr, "swap: swaps %llu, failed %llu, drain timeouts %llu\n",
          (unsigned long long)(st.swaps - st0.swaps),
          (unsigned long long)(st.failed_swaps - st0.failed_swaps),
          (unsigned long long)(st.drain_timeouts - st0.drain_timeouts));
  assert_int_equal(st.swaps - st0.swaps, SWAPS);
  assert_int_equal(st.failed_swaps - st0.failed_swaps, 0);
  e2e_load_metrics_lines(e, sum_errors, &errors);
  assert_int_equal(errors, 0);
  memset(&calls, 0, sizeof(calls));
  e2e_load_registry_lines(e, count_calls, &calls);
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
