/*
 * test_service_restart.c: e2e tests of the service controller's input
 * fingerprint (ccmhost.io/load-balancer-inputs): a restart with nothing
 * changed makes no mutating provider call, a changed Service (or one whose
 * record was removed by hand) is ensured again, and node sync still works
 * after a skipped ensure; a new Service costs two API writes. Counts the
 * fake's call log and the API double's request log; asserts no timing.
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
#include "controllers/service_fprint.h"
#include "controllers/service_logic.h"
#include "harness.h"
#include "kube/writes.h"

#define WAIT_MS 30000u
#define NS "default"
#define N_SVC 5

static int setup_host(void **state, const char *kind, const char *cfg,
                      const char *host_cfg)
{
  struct e2e *e = calloc(1, sizeof(*e));
  struct e2e_opts o = {.provider = kind, .provider_config = cfg,
                       .host_config = host_cfg};

  if (e == NULL)
    return -1;
  *state = e;
  if (e2e_setup(e, &o) != 0 ||
      e2e_run_controller(e, &service_controller_ops) != 0)
    return -1;
  if (e2e_create_node(e, "n1", "10.0.0.1", true) != 0 ||
      e2e_create_node(e, "n2", "10.0.0.2", true) != 0)
    return -1;
  return e2e_go(e);
}

static int setup_fake(void **state)
{
  return setup_host(state, "fake", "instances = [\"n1\", \"n2\"];", NULL);
}

/* The workers write the status and the record themselves. */
static int setup_fake_no_writer(void **state)
{
  return setup_host(state, "fake", "instances = [\"n1\", \"n2\"];",
                    "service_status_writer = false;");
}

static int setup_lab(void **state)
{
  return setup_host(state, "lab", NULL, NULL);
}

static int teardown(void **state)
{
  struct e2e *e = *state;

  if (e != NULL) {
    e2e_stop(e);
    free(e);
  }
  return 0;
}

static void svc_path(char *buf, size_t cap, const char *name)
{
  snprintf(buf, cap, "/api/v1/namespaces/" NS "/services/%s", name);
}

static const char *ann(const cJSON *obj, const char *key)
{
  const cJSON *a = e2e_json_at(obj, "metadata.annotations");
  const cJSON *n = cJSON_GetObjectItemCaseSensitive(a, key);

  return cJSON_IsString(n) ? n->valuestring : NULL;
}

/* Converged: finalizer, name, ingress and the fingerprint recorded. */
static bool pred_recorded(const cJSON *obj, void *ud)
{
  (void)ud;
  return obj != NULL && kube_has_finalizer(obj, CCM_SVC_FINALIZER) &&
         ann(obj, CCM_SVC_NAME_ANNOTATION) != NULL &&
         ann(obj, CCM_SVC_INPUTS_ANNOTATION) != NULL &&
         e2e_json_str(obj, "status.loadBalancer.ingress.0.ip") != NULL;
}

/* Create N_SVC Services and wait until each converged; their LB names
 * and fingerprints go to names[] and fps[]. */
static void converge(struct e2e *e, char names[N_SVC][64],
                     char fps[N_SVC][CCM_SVC_FPRINT_HEX])
{
  char name[32], path[256];
  int i;

  for (i = 0; i < N_SVC; i++) {
    snprintf(name, sizeof(name), "s%d", i);
    assert_int_equal(e2e_create_service_lb(e, NS, name, 80 + i, NULL), 0);
  }
  for (i = 0; i < N_SVC; i++) {
    cJSON *obj;

    snprintf(name, sizeof(name), "s%d", i);
    svc_path(path, sizeof(path), name);
    assert_true(e2e_wait_object(e, path, pred_recorded, NULL, WAIT_MS));
    obj = e2e_get(e, path);
    assert_non_null(obj);
    snprintf(names[i], 64, "%s", ann(obj, CCM_SVC_NAME_ANNOTATION));
    snprintf(fps[i], CCM_SVC_FPRINT_HEX, "%s", ann(obj, CCM_SVC_INPUTS_ANNOTATION));
    assert_int_equal(strlen(fps[i]), CCM_SVC_FPRINT_HEX - 1);
    cJSON_Delete(obj);
  }
}

/* PATCH requests the API double logged for Service name: of its status
 * subresource, and of the object itself. */
static void patches_of(struct e2e *e, const char *name, long status,
                       int *to_status, int *to_object)
{
  char path[256], status_path[300];

  svc_path(path, sizeof(path), name);
  snprintf(status_path, sizeof(status_path), "%s/status", path);
  *to_status = kdouble_count_requests(e->client, "PATCH", status_path,
                                      status);
  *to_object = kdouble_count_requests(e->client, "PATCH", path, status) -
               *to_status;
}

/* A new Service costs two writes: the finalizer with the name record, then
 * the status with the input fingerprint, in one patch of the status
 * subresource. */
static void assert_two_writes_each(struct e2e *e)
{
  char name[32];
  int to_status, to_object, i;

  for (i = 0; i < N_SVC; i++) {
    snprintf(name, sizeof(name), "s%d", i);
    patches_of(e, name, 0, &to_status, &to_object);
    assert_int_equal(to_status, 1);
    assert_int_equal(to_object, 1);
  }
}

static int mutating_calls(struct e2e *e)
{
  return e2e_call_count(e, "lb_ensure", NULL) +
         e2e_call_count(e, "lb_update_hosts", NULL) +
         e2e_call_count(e, "lb_delete", NULL);
}

/* The service controller's counter name (its metrics text), or -1. */
static long metric(struct e2e *e, const char *name)
{
  FILE *f = tmpfile();
  char line[512];
  size_t n = strlen(name);
  long v = -1;

  if (f == NULL || e->n_ctrls == 0)
    goto out;
  e->ctrls[0].ops->metrics(e->ctrls[0].state, f);
  rewind(f);
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, name, n) == 0 && line[n] == ' ') {
      char *end;

      v = strtol(line + n + 1, &end, 10);
      break;
    }
  }
out:
  if (f != NULL)
    fclose(f);
  return v;
}

struct at_least {
  const char *metric;
  long n;
};

static bool pred_metric(struct e2e *e, void *ud)
{
  const struct at_least *a = ud;

  return metric(e, a->metric) >= a->n;
}

static void wait_metric(struct e2e *e, const char *name, long n)
{
  struct at_least a = {name, n};

  if (!e2e_wait(e, pred_metric, &a, WAIT_MS))
    fail_msg("%s stayed below %ld (%ld)", name, n, metric(e, name));
}

/* Every Service passed through the new controller once. */
static void wait_first_syncs(struct e2e *e)
{
  wait_metric(e, "ccm_service_cached", N_SVC);
  wait_metric(e, "ccm_reconcile_total{controller=\"service\","
              "result=\"success\"}", N_SVC);
}

struct calls {
  const char *op, *arg;
  int n;
};

static bool pred_calls(struct e2e *e, void *ud)
{
  const struct calls *c = ud;

  return e2e_call_count(e, c->op, c->arg) >= c->n;
}

static void wait_calls(struct e2e *e, const char *op, const char *arg, int n)
{
  struct calls c = {op, arg, n};

  if (!e2e_wait(e, pred_calls, &c, WAIT_MS))
    fail_msg("%s %s: fewer than %d calls (%d)", op, arg ? arg : "", n,
             e2e_call_count(e, op, arg));
}

static bool pred_fp_changed(const cJSON *obj, void *ud)
{
  const char *old = ud;
  const char *fp = obj ? ann(obj, CCM_SVC_INPUTS_ANNOTATION) : NULL;

  return pred_recorded(obj, NULL) && fp != NULL && strcmp(fp, old) != 0;
}

static char *read_file(const char *path)
{
  FILE *f = fopen(path, "r");
  char *buf = NULL;
  long len;

  if (f == NULL)
    return NULL;
  len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (len >= 0 && fseek(f, 0, SEEK_SET) == 0) {
    buf = calloc(1, (size_t)len + 1);
    if (buf != NULL && fread(buf, 1, (size_t)len, f) != (size_t)len) {
      free(buf);
      buf = NULL;
    }
  }
  fclose(f);
  return buf;
}

/* ---- tests ---- */

/* N Services converge; a restart with nothing changed calls nothing that
 * mutates (not even lb_get); changing one Service's port ensures exactly
 * that one, with a new fingerprint; a new node then updates every
 * Service's hosts (the skipped ones included). */
static void test_restart_unchanged(void **state)
{
  struct e2e *e = *state;
  char names[N_SVC][64], fps[N_SVC][CCM_SVC_FPRINT_HEX], path[256];
  int before, gets, i;
  cJSON *obj;

  converge(e, names, fps);
  assert_two_writes_each(e);
  before = mutating_calls(e);
  assert_true(before >= N_SVC);
  gets = e2e_call_count(e, "lb_get", NULL);

  assert_int_equal(e2e_restart(e, false), 0);
  wait_first_syncs(e);
  wait_metric(e, "ccm_service_ensure_skipped_total", N_SVC);
  e2e_sleep_ms(1000); /* a stray call would have happened by now */
  assert_int_equal(mutating_calls(e), before);
  assert_int_equal(e2e_call_count(e, "lb_get", NULL), gets);
  assert_int_equal(metric(e, "ccm_service_ensure_skipped_total"), N_SVC);

  /* One Service changes: exactly that one is ensured again. */
  svc_path(path, sizeof(path), "s2");
  assert_int_equal(e2e_patch_merge(e, path, "{\"spec\":{\"ports\":[{\"name\":"
                                   "\"p0\",\"protocol\":\"TCP\",\"port\":"
                                   "8082,\"targetPort\":8082}]}}"), 0);
  wait_calls(e, "lb_ensure", names[2], 2);
  assert_true(e2e_wait_object(e, path, pred_recorded, NULL, WAIT_MS));
  e2e_sleep_ms(1000);
  assert_int_equal(mutating_calls(e), before + 1);
  for (i = 0; i < N_SVC; i++)
    assert_int_equal(e2e_call_count(e, "lb_ensure", names[i]),
                     i == 2 ? 2 : 1);
  obj = e2e_get(e, path);
  assert_non_null(obj);
  assert_string_not_equal(ann(obj, CCM_SVC_INPUTS_ANNOTATION), fps[2]);
  cJSON_Delete(obj);

  /* The skipped Services know their last synced hosts: a new node
   * updates each of them once, and nothing is ensured. */
  assert_int_equal(e2e_create_node(e, "n3", "10.0.0.3", true), 0);
  for (i = 0; i < N_SVC; i++)
    wait_calls(e, "lb_update_hosts", names[i], 1);
  e2e_sleep_ms(500);
  assert_int_equal(e2e_call_count(e, "lb_update_hosts", NULL), N_SVC);
  assert_int_equal(e2e_call_count(e, "lb_ensure", NULL), N_SVC + 1);
}

/* The same with the status writer off: the ensures' writes are the
 * workers' (counted as inline), the records still spare the restart. */
static void test_restart_unchanged_no_writer(void **state)
{
  struct e2e *e = *state;

  test_restart_unchanged(state);
  assert_true(metric(e, "ccm_service_status_writer_total{result=\"inline\"}")
              >= 1);
  assert_int_equal(
      metric(e, "ccm_service_status_writer_total{result=\"success\"}"), 0);
}

/* What differs is ensured: a Service whose record an operator removed,
 * and every Service after the backend node set changed while the
 * controller was down. */
static void test_restart_changed(void **state)
{
  struct e2e *e = *state;
  char names[N_SVC][64], fps[N_SVC][CCM_SVC_FPRINT_HEX], path[256];
  int i;

  converge(e, names, fps);
  /* The operator's way to force a re-ensure on the next start. */
  svc_path(path, sizeof(path), "s1");
  assert_int_equal(e2e_patch_merge(e, path, "{\"metadata\":{\"annotations\":"
                                   "{\"" CCM_SVC_INPUTS_ANNOTATION
                                   "\":null}}}"), 0);
  e2e_sleep_ms(500); /* not a needsUpdate trigger: no ensure now */
  assert_int_equal(e2e_call_count(e, "lb_ensure", names[1]), 1);
  assert_int_equal(e2e_restart(e, false), 0);
  wait_calls(e, "lb_ensure", names[1], 2);
  wait_first_syncs(e);
  assert_true(e2e_wait_object(e, path, pred_recorded, NULL, WAIT_MS));
  e2e_sleep_ms(500);
  for (i = 0; i < N_SVC; i++)
    assert_int_equal(e2e_call_count(e, "lb_ensure", names[i]),
                     i == 1 ? 2 : 1);

  /* Node sync updates the hosts but not the records (one API write per
   * Service per node change would be the price): after a node change the
   * next start ensures every Service once more. */
  assert_int_equal(e2e_create_node(e, "n3", "10.0.0.3", true), 0);
  for (i = 0; i < N_SVC; i++)
    wait_calls(e, "lb_update_hosts", names[i], 1);
  assert_int_equal(e2e_restart(e, false), 0);
  for (i = 0; i < N_SVC; i++)
    wait_calls(e, "lb_ensure", names[i], i == 1 ? 3 : 2);
  wait_first_syncs(e);
  e2e_sleep_ms(500);
  assert_int_equal(e2e_call_count(e, "lb_update_hosts", NULL), N_SVC);
  assert_int_equal(e2e_call_count(e, "lb_ensure", NULL), 2 * N_SVC + 1);
  /* ... and then records them, so the start after that calls nothing. */
  for (i = 0; i < N_SVC; i++) {
    char name[32];

    snprintf(name, sizeof(name), "s%d", i);
    svc_path(path, sizeof(path), name);
    assert_true(e2e_wait_object(e, path, pred_fp_changed, fps[i], WAIT_MS));
  }
  /* Those records came from the status writer (on by default). */
  assert_true(metric(e, "ccm_service_status_writer_total{result=\"success\"}")
              >= 1);
  i = mutating_calls(e);
  assert_int_equal(e2e_restart(e, false), 0);
  wait_metric(e, "ccm_service_ensure_skipped_total", N_SVC);
  e2e_sleep_ms(500);
  assert_int_equal(mutating_calls(e), i);
}

/* The same with the providers loaded anew (the lab keeps its state in its
 * file): every Service is skipped and the lab still has every LB. */
static void test_restart_reload_lab(void **state)
{
  struct e2e *e = *state;
  char names[N_SVC][64], fps[N_SVC][CCM_SVC_FPRINT_HEX];
  char *before, *after;

  converge(e, names, fps);
  before = read_file(e->state_file);
  assert_non_null(before);
  assert_int_equal(e2e_restart(e, true), 0);
  wait_first_syncs(e);
  wait_metric(e, "ccm_service_ensure_skipped_total", N_SVC);
  after = read_file(e->state_file);
  assert_non_null(after);
  assert_string_equal(before, after);
  free(before);
  free(after);
}

/* A server that refuses the combined write (409 here, as for a
 * re-created Service) gets the status and the fingerprint as two writes,
 * and the restart still skips. */
static void test_combined_write_refused(void **state)
{
  struct e2e *e = *state;
  char names[N_SVC][64], fps[N_SVC][CCM_SVC_FPRINT_HEX];
  int to_status, to_object, before;
  cJSON *r;

  r = kdouble_control(e->client, "faults",
                      "{\"status\":409,\"method\":\"PATCH\",\"count\":1,"
                      "\"path\":\"/services/s0/status$\"}");
  assert_non_null(r);
  cJSON_Delete(r);
  converge(e, names, fps);
  patches_of(e, "s0", 409, &to_status, &to_object);
  assert_int_equal(to_status, 1);
  patches_of(e, "s0", 0, &to_status, &to_object);
  assert_int_equal(to_status, 2); /* refused, then the status alone */
  assert_int_equal(to_object, 2); /* the record, then the fingerprint */
  assert_true(metric(e, "ccm_service_write_fallbacks_total") >= 1);

  before = mutating_calls(e);
  assert_int_equal(e2e_restart(e, false), 0);
  wait_first_syncs(e);
  wait_metric(e, "ccm_service_ensure_skipped_total", N_SVC);
  assert_int_equal(mutating_calls(e), before);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_restart_unchanged, setup_fake,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_restart_unchanged_no_writer,
                                    setup_fake_no_writer, teardown),
    cmocka_unit_test_setup_teardown(test_restart_changed, setup_fake,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_combined_write_refused, setup_fake,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_restart_reload_lab, setup_lab,
                                    teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
