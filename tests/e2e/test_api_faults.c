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

#include <cmocka.h>

#include "controllers/service.h"
#include "controllers/service_logic.h"
#include "harness.h"
#include "kube/writes.h"
#include "load.h"

#define NS "default"
#define BASE_CREATES 500
#define BASE_DELETES 200
#define CONVERGE_MS 300000u
#define OP_TRIES 100
#define PREFIX "f"

struct faults_state {
  struct e2e e;
  struct host_config *big; /* lab with a /16 pool; freed after e2e_stop */
};

static int setup(void **state)
{
  struct faults_state *s = calloc(1, sizeof(*s));
  struct e2e_opts o = {.provider = "lab", .workers = 4};

  if (s == NULL)
    return -1;
  *state = s;
  if (e2e_setup(&s->e, &o) != 0)
    return -1;
  s->big = e2e_load_big_pool(&s->e, "big", CCM_E2E_LAB_MODULE, true);
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

/* The test's own writes meet the injected faults too: retry (bounded). */
static void create_svc(struct e2e *e, int i)
{
  char name[32];

  e2e_load_svc_name(name, sizeof(name), PREFIX, i);
  if (e2e_load_create_svc(e, NS, name, OP_TRIES, 20) != KUBE_OK)
    fail_msg("cannot create %s", name);
}

static void delete_svc(struct e2e *e, int i)
{
  char name[32], path[128];
  int t;

  e2e_load_svc_name(name, sizeof(name), PREFIX, i);
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

struct world {
  int n;                /* Services created: f-0000 .. f-(n-1) */
  char why[512];        /* first reason the world is not settled */
};

/* The settled world: every kept Service has our finalizer, a recorded
 * name and an ingress IP; every doomed one is gone; the lab holds exactly
 * one load balancer per kept Service, named by its annotation, for that
 * Service, and no two load balancers share an address. */
static bool settled(struct e2e *e, void *ud)
{
  struct world *w = ud;
  cJSON *list = e2e_get(e, "/api/v1/namespaces/" NS "/services");
  const cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
  char name[32];
  int i, kept = 0;
  bool ok = false;

  w->why[0] = '\0';
  if (list == NULL) {
    snprintf(w->why, sizeof(w->why), "cannot list Services");
    goto done;
  }
  for (i = 0; i < w->n; i++) {
    const cJSON *s;
    const char *ann;

    e2e_load_svc_name(name, sizeof(name), PREFIX, i);
    s = e2e_load_find_item(items, name);
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
    if (!e2e_load_svc_ready(s)) {
      ann = s ? e2e_load_ann_name(s) : NULL;
      snprintf(w->why, sizeof(w->why), "Service %s has not converged "
               "(exists %d, finalizer %d, name %s)", name, s != NULL,
               s != NULL && kube_has_finalizer(s, CCM_SVC_FINALIZER),
               s ? (ann ? ann : "none") : "-");
      goto done;
    }
  }
  ok = e2e_load_lab_matches(e, items, kept, w->why, sizeof(w->why));
done:
  cJSON_Delete(list);
  return ok;
}

static void test_api_faults(void **state)
{
  struct faults_state *s = *state;
  struct e2e *e = &s->e;
  double scale = e2e_load_scale(1.0), t0, t1;
  int n = (int)(BASE_CREATES * scale + 0.5), i, lag = 25, deleted = 0;
  struct world w;

  if (n < 10)
    n = 10;
  fprintf(stderr, "faults: %d creations, %d deletions (CCM_E2E_SCALE "
          "%.2f)\n", n, (n / 5) * 2 + (n % 5 > 1) + (n % 5 > 3), scale);
  t0 = e2e_load_now_s();
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
      e2e_load_pace(e, i - 60, 10000);
  }
  for (i = n - lag; i < n; i++) {
    if (i >= 0 && doomed(i) && i % 50 != 1) {
      delete_svc(e, i);
      deleted++;
    }
  }
  /* The faults stay on while the controller works through most of it. */
  for (i = 0; i < 40 && e2e_load_reconciles(e) < (long long)n * 6 / 10; i++) {
    e2e_sleep_ms(1000);
    if (i % 3 == 2)
      control(e, "drop-watches", NULL);
    if (i == 10)
      control(e, "restart", NULL);
  }
  control(e, "drop-watches", NULL);
  t1 = e2e_load_now_s();
  control(e, "faults", "{\"clear\":true}");
  fprintf(stderr, "faults: %d created, %d deleted in %.1f s under faults\n",
          n, deleted, t1 - t0);
  w.n = n;
  if (!e2e_wait(e, settled, &w, CONVERGE_MS)) {
    e2e_load_print_metrics(e, "faults");
    fail_msg("not settled: %s", w.why);
  }
  fprintf(stderr, "faults: settled %.1f s after the faults stopped\n",
          e2e_load_now_s() - t1);
  e2e_load_print_metrics(e, "faults");
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
