/*
 * test_node_lifecycle.c: e2e tests of the cloud node lifecycle controller
 * (host/controllers/nodelifecycle.c): a NotReady Node the provider says is
 * gone is deleted (with the DeletingNode Event); provider errors and
 * timeouts never delete, over several monitor periods; the shutdown taint
 * is added for a shut-down instance and removed when the Node is Ready.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controllers/nodelifecycle.h"
#include "harness.h"

#define WAIT_MS 30000u
#define SHUTDOWN "node.cloudprovider.kubernetes.io/shutdown"

static int start_with(void **state, const char *provider, const char *pcfg,
                      uint32_t call_timeout_ms)
{
  struct e2e *e = calloc(1, sizeof(*e));
  struct e2e_opts o = {.provider = provider, .provider_config = pcfg,
                       .host_config = "node_monitor_period_s = 1;\n",
                       .call_timeout_ms = call_timeout_ms};

  if (!e)
    return -1;
  *state = e;
  if (e2e_setup(e, &o) != 0)
    return -1;
  e->env.cfg = e->cfg; /* the 1 s monitor period */
  if (e2e_run_controller(e, &node_lifecycle_controller_ops) != 0)
    return -1;
  return e2e_go(e);
}

static int teardown(void **state)
{
  struct e2e *e = *state;

  if (e) {
    e2e_stop(e);
    free(e);
  }
  return 0;
}

static bool has_shutdown_taint(const cJSON *node, void *ud)
{
  const cJSON *t;

  (void)ud;
  cJSON_ArrayForEach(t, e2e_json_at(node, "spec.taints")) {
    const char *k = e2e_json_str(t, "key");
    if (k && strcmp(k, SHUTDOWN) == 0)
      return true;
  }
  return false;
}

static bool no_shutdown_taint(const cJSON *node, void *ud)
{
  return node && !has_shutdown_taint(node, ud);
}

/* ---- delete when the provider answers "does not exist" ---- */

static int setup_lab_gone(void **state)
{
  return start_with(state, "lab", "nodes = [\"alive\"];\n", 0);
}

static bool deleting_event(struct e2e *e, void *ud)
{
  cJSON *list = e2e_get(e, "/api/v1/namespaces/default/events");
  const cJSON *ev;
  bool found = false;

  (void)ud;
  cJSON_ArrayForEach(ev, e2e_json_at(list, "items")) {
    const char *reason = e2e_json_str(ev, "reason");
    const char *msg = e2e_json_str(ev, "message");
    const char *comp = e2e_json_str(ev, "source.component");
    if (reason && strcmp(reason, "DeletingNode") == 0 && msg &&
        strcmp(msg, "Deleting node gone because it does not exist in the "
                    "cloud provider") == 0 &&
        comp && strcmp(comp, "cloud-node-lifecycle-controller") == 0 &&
        strcmp(e2e_json_str(ev, "involvedObject.kind"), "Node") == 0)
      found = true;
  }
  cJSON_Delete(list);
  return found;
}

static void test_delete_gone_node(void **state)
{
  struct e2e *e = *state;
  cJSON *n;

  assert_int_equal(e2e_create_node(e, "alive", "10.0.0.1", false), 0);
  assert_int_equal(e2e_create_node(e, "gone", "10.0.0.2", false), 0);
  assert_int_equal(e2e_create_node(e, "gone-but-ready", "10.0.0.3", true),
                   0);
  assert_true(e2e_wait_gone(e, CCM_E2E_NODES "/gone", WAIT_MS));
  assert_true(e2e_wait(e, deleting_event, NULL, WAIT_MS));
  e2e_sleep_ms(2500); /* two more periods */
  n = e2e_get(e, CCM_E2E_NODES "/alive");
  assert_non_null(n); /* exists: NotReady alone never deletes */
  cJSON_Delete(n);
  n = e2e_get(e, CCM_E2E_NODES "/gone-but-ready");
  assert_non_null(n); /* Ready: not probed */
  cJSON_Delete(n);
}

/* ---- errors and timeouts never delete ---- */

static int setup_fake_error(void **state)
{
  return start_with(state, "fake",
                    "instances = [\"other\"];\n"
                    "error = { instance_exists = \"internal\"; };\n", 0);
}

static int setup_fake_timeout(void **state)
{
  /* the fake answers "does not exist", but only after the deadline */
  return start_with(state, "fake",
                    "instances = [\"other\"];\n"
                    "latency_ms = { instance_exists = 400; };\n", 100);
}

static int setup_fake_retry(void **state)
{
  return start_with(state, "fake",
                    "instances = [\"other\"];\n"
                    "error = { instance_exists = \"retry\"; };\n", 0);
}

static bool probed_often(struct e2e *e, void *ud)
{
  (void)ud;
  return e2e_call_count(e, "instance_exists", "n-err") >= 4;
}

static void never_deleted(void **state)
{
  struct e2e *e = *state;
  cJSON *n;

  assert_int_equal(e2e_create_node(e, "n-err", "10.0.0.9", false), 0);
  /* at least four monitor periods */
  assert_true(e2e_wait(e, probed_often, NULL, WAIT_MS));
  n = e2e_get(e, CCM_E2E_NODES "/n-err");
  assert_non_null(n);
  assert_false(has_shutdown_taint(n, NULL));
  cJSON_Delete(n);
  assert_int_equal(e2e_call_count(e, "instance_shutdown", NULL), 0);
}

static void test_error_never_deletes(void **state)
{
  never_deleted(state);
}

static void test_timeout_never_deletes(void **state)
{
  never_deleted(state);
}

static void test_retry_never_deletes(void **state)
{
  never_deleted(state);
}

/* ---- the shutdown taint ---- */

static int setup_lab_shutdown(void **state)
{
  return start_with(state, "lab", "shutdown_nodes = [\"s1\"];\n", 0);
}

static void test_shutdown_taint(void **state)
{
  struct e2e *e = *state;
  cJSON *n;
  const cJSON *t;
  int count = 0;

  assert_int_equal(e2e_create_node(e, "s1", "10.0.0.4", false), 0);
  assert_true(e2e_wait_object(e, CCM_E2E_NODES "/s1", has_shutdown_taint,
                              NULL, WAIT_MS));
  n = e2e_get(e, CCM_E2E_NODES "/s1");
  cJSON_ArrayForEach(t, e2e_json_at(n, "spec.taints")) {
    count++;
    assert_string_equal(e2e_json_str(t, "effect"), "NoSchedule");
    assert_null(e2e_json_str(t, "value"));
  }
  assert_int_equal(count, 1); /* added once, not per period */
  cJSON_Delete(n);
  e2e_sleep_ms(2500);
  n = e2e_get(e, CCM_E2E_NODES "/s1");
  count = 0;
  cJSON_ArrayForEach(t, e2e_json_at(n, "spec.taints")) count++;
  assert_int_equal(count, 1);
  cJSON_Delete(n);
  /* Ready again: the taint goes */
  assert_int_equal(e2e_patch_status(e, CCM_E2E_NODES "/s1",
                                    "{\"status\":{\"conditions\":[{\"type\":"
                                    "\"Ready\",\"status\":\"True\"}]}}"), 0);
  assert_true(e2e_wait_object(e, CCM_E2E_NODES "/s1", no_shutdown_taint,
                              NULL, WAIT_MS));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_delete_gone_node, setup_lab_gone,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_error_never_deletes,
                                    setup_fake_error, teardown),
    cmocka_unit_test_setup_teardown(test_retry_never_deletes,
                                    setup_fake_retry, teardown),
    cmocka_unit_test_setup_teardown(test_timeout_never_deletes,
                                    setup_fake_timeout, teardown),
    cmocka_unit_test_setup_teardown(test_shutdown_taint, setup_lab_shutdown,
                                    teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
