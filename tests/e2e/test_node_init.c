/*
 * test_node_init.c: e2e tests of the cloud node controller (host/
 * controllers/node*.c) with the API double and the lab or fake provider:
 * initialisation (providerID, GA + beta labels, addresses, taint removed),
 * the provided-node-ip annotation, metadata errors (taint kept, retried),
 * the periodic address refresh and 200 Nodes joining at once (batched).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controllers/node.h"
#include "harness.h"

#define WAIT_MS 60000u
#define UNINIT "node.cloudprovider.kubernetes.io/uninitialized"

static int start_with(void **state, const char *provider, const char *pcfg,
                      const char *hcfg, void (*seed)(struct e2e *e))
{
  struct e2e *e = calloc(1, sizeof(*e));
  struct e2e_opts o = {.provider = provider, .provider_config = pcfg,
                       .host_config = hcfg, .workers = 4};

  if (!e)
    return -1;
  *state = e;
  if (e2e_setup(e, &o) != 0)
    return -1;
  e->env.cfg = e->cfg; /* periods come from the test's host.cfg */
  if (e2e_run_controller(e, &node_controller_ops) != 0)
    return -1;
  if (seed)
    seed(e);
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

/* A Node as the kubelet with --cloud-provider=external registers it. */
static void create_tainted(struct e2e *e, const char *name,
                           const char *node_ip, const char *internal_ip)
{
  char body[1024], ann[160] = "", path[256];

  if (node_ip)
    snprintf(ann, sizeof(ann), ",\"annotations\":{\"alpha.kubernetes.io/"
             "provided-node-ip\":\"%s\"}", node_ip);
  snprintf(body, sizeof(body),
           "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":"
           "\"%s\"%s},\"spec\":{\"taints\":[{\"key\":\"keep-me\",\"effect\":"
           "\"NoSchedule\"},{\"key\":\"" UNINIT "\",\"value\":\"true\","
           "\"effect\":\"NoSchedule\"}]}}", name, ann);
  assert_int_equal(e2e_apply_json(e, CCM_E2E_NODES, body, NULL), 0);
  snprintf(path, sizeof(path), CCM_E2E_NODES "/%s", name);
  snprintf(body, sizeof(body),
           "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":"
           "\"%s\"},{\"type\":\"Hostname\",\"address\":\"kubelet-%s\"}],"
           "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
           internal_ip, name);
  assert_int_equal(e2e_patch_status(e, path, body), 0);
}

static bool has_taint(const cJSON *node, const char *key)
{
  const cJSON *t;

  cJSON_ArrayForEach(t, e2e_json_at(node, "spec.taints")) {
    const char *k = e2e_json_str(t, "key");
    if (k && strcmp(k, key) == 0)
      return true;
  }
  return false;
}

static bool untainted(const cJSON *node, void *ud)
{
  (void)ud;
  return node && !has_taint(node, UNINIT);
}

static const char *label(const cJSON *node, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(
      e2e_json_at(node, "metadata.labels"), key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "Type=addr,Type=addr" of status.addresses. */
static void addr_text(const cJSON *node, char *buf, size_t cap)
{
  const cJSON *a;
  size_t off = 0;

  buf[0] = '\0';
  cJSON_ArrayForEach(a, e2e_json_at(node, "status.addresses")) {
    int n = snprintf(buf + off, cap - off, "%s%s=%s", off ? "," : "",
                     e2e_json_str(a, "type"), e2e_json_str(a, "address"));
    if (n < 0 || (size_t)n >= cap - off)
      break;
    off += (size_t)n;
  }
}

struct want_addrs {
  const char *text;
};

static bool addrs_are(const cJSON *node, void *ud)
{
  const struct want_addrs *w = ud;
  char buf[512];

  if (!node)
    return false;
  addr_text(node, buf, sizeof(buf));
  return strcmp(buf, w->text) == 0;
}

/* ---- initialisation with the lab provider ---- */

static const char *const lab_cfg =
    "zones = ( { match = \"w*\"; zone = \"z1\"; region = \"r1\"; "
    "instance_type = \"big\"; } );\n"
    "addresses = ( { node = \"w1\"; internal_ip = \"10.0.0.5\"; "
    "external_ip = \"203.0.113.7\"; },\n"
    "  { node = \"w2\"; internal_ip = \"10.0.0.6\"; "
    "external_ip = \"203.0.113.8\"; },\n"
    "  { node = \"w3\"; internal_ip = \"10.0.0.7\"; } );\n";

static int setup_lab(void **state)
{
  return start_with(state, "lab", lab_cfg, NULL, NULL);
}

static void test_init_lab(void **state)
{
  struct e2e *e = *state;
  cJSON *n;
  char buf[512];
  const cJSON *t;
  int kept = 0;

  create_tainted(e, "w1", NULL, "192.168.1.1");
  assert_true(e2e_wait_object(e, CCM_E2E_NODES "/w1", untainted, NULL,
                              WAIT_MS));
  n = e2e_get(e, CCM_E2E_NODES "/w1");
  assert_non_null(n);
  assert_string_equal(e2e_json_str(n, "spec.providerID"), "lab://w1");
  assert_string_equal(label(n, "node.kubernetes.io/instance-type"), "big");
  assert_string_equal(label(n, "beta.kubernetes.io/instance-type"), "big");
  assert_string_equal(label(n, "topology.kubernetes.io/zone"), "z1");
  assert_string_equal(label(n, "failure-domain.beta.kubernetes.io/zone"),
                      "z1");
  assert_string_equal(label(n, "topology.kubernetes.io/region"), "r1");
  assert_string_equal(label(n, "failure-domain.beta.kubernetes.io/region"),
                      "r1");
  /* other taints are kept */
  cJSON_ArrayForEach(t, e2e_json_at(n, "spec.taints")) kept++;
  assert_int_equal(kept, 1);
  assert_true(has_taint(n, "keep-me"));
  cJSON_Delete(n);
  /* addresses follow the taint removal (status subresource) */
  {
    struct want_addrs w = {"InternalIP=10.0.0.5,ExternalIP=203.0.113.7,"
                           "Hostname=w1"};
    if (!e2e_wait_object(e, CCM_E2E_NODES "/w1", addrs_are, &w, WAIT_MS)) {
      n = e2e_get(e, CCM_E2E_NODES "/w1");
      addr_text(n, buf, sizeof(buf));
      cJSON_Delete(n);
      fail_msg("addresses: %s", buf);
    }
  }
}

static void test_provided_node_ip(void **state)
{
  struct e2e *e = *state;
  struct want_addrs w = {"ExternalIP=203.0.113.8,InternalIP=10.0.0.6,"
                         "Hostname=w2"};
  cJSON *n;

  /* the annotated IP comes first and is the only address of its type */
  create_tainted(e, "w2", "203.0.113.8", "192.168.1.2");
  assert_true(e2e_wait_object(e, CCM_E2E_NODES "/w2", untainted, NULL,
                              WAIT_MS));
  assert_true(e2e_wait_object(e, CCM_E2E_NODES "/w2", addrs_are, &w,
                              WAIT_MS));
  /* an IP the provider does not report: not valid, the taint stays */
  create_tainted(e, "w3", "10.9.9.9", "192.168.1.3");
  e2e_sleep_ms(3000);
  n = e2e_get(e, CCM_E2E_NODES "/w3");
  assert_non_null(n);
  assert_true(has_taint(n, UNINIT));
  assert_null(e2e_json_str(n, "spec.providerID"));
  assert_null(label(n, "topology.kubernetes.io/zone"));
  cJSON_Delete(n);
}

/* ---- metadata errors: taint kept, retried ---- */

static int setup_meta_error(void **state)
{
  return start_with(state, "fake",
                    "instances = [\"f1\"];\n"
                    "error = { instance_metadata = \"internal\"; "
                    "instance_metadata_batch = \"internal\"; };\n",
                    NULL, NULL);
}

static bool retried(struct e2e *e, void *ud)
{
  (void)ud;
  return e2e_call_count(e, "instance_metadata_batch", NULL) >= 4;
}

static void test_metadata_error_keeps_taint(void **state)
{
  struct e2e *e = *state;
  cJSON *n;

  create_tainted(e, "f1", NULL, "192.168.2.1");
  assert_true(e2e_wait(e, retried, NULL, WAIT_MS));
  n = e2e_get(e, CCM_E2E_NODES "/f1");
  assert_non_null(n);
  assert_true(has_taint(n, UNINIT));
  assert_null(e2e_json_str(n, "spec.providerID"));
  assert_null(label(n, "node.kubernetes.io/instance-type"));
  cJSON_Delete(n);
  /* the provider recovers: the next retry initialises the Node */
  assert_int_equal(e2e_swap_module(e, CCM_E2E_FAKE_MODULE, NULL,
                                   "instances = [\"f1\"];\n"), 0);
  assert_true(e2e_wait_object(e, CCM_E2E_NODES "/f1", untainted, NULL,
                              WAIT_MS));
  n = e2e_get(e, CCM_E2E_NODES "/f1");
  assert_string_equal(e2e_json_str(n, "spec.providerID"), "fake://f1");
  assert_string_equal(label(n, "node.kubernetes.io/instance-type"),
                      "fake.small");
  /* the fake's extra label passes the filter */
  assert_non_null(label(n, "fake.example.com/version"));
  cJSON_Delete(n);
}

/* ---- address refresh ---- */

static int setup_refresh(void **state)
{
  return start_with(state, "fake", "instances = [\"a1\", \"a2\"];\n",
                    "node_status_update_period_s = 1;\n", NULL);
}

static void test_address_refresh(void **state)
{
  struct e2e *e = *state;
  struct want_addrs before = {"InternalIP=10.1.0.1,Hostname=a1"};
  struct want_addrs after = {"InternalIP=10.1.0.2,Hostname=a1"};

  create_tainted(e, "a1", NULL, "192.168.3.1");
  assert_true(e2e_wait_object(e, CCM_E2E_NODES "/a1", addrs_are, &before,
                              WAIT_MS));
  /* the fake numbers addresses by list position: swapping the order
   * changes a1's answer; the periodic refresh must pick it up */
  assert_int_equal(e2e_swap_module(e, CCM_E2E_FAKE_MODULE, NULL,
                                   "instances = [\"a2\", \"a1\"];\n"), 0);
  assert_true(e2e_wait_object(e, CCM_E2E_NODES "/a1", addrs_are, &after,
                              WAIT_MS));
}

/* ---- 200 Nodes at once ---- */

#define MANY 200

static void seed_many(struct e2e *e)
{
  char name[32];

  for (int i = 0; i < MANY; i++) {
    snprintf(name, sizeof(name), "m%03d", i);
    create_tainted(e, name, NULL, "192.168.4.1");
  }
}

static int setup_many(void **state)
{
  char *cfg = malloc(MANY * 8 + 64);
  size_t off = 0;
  int rc;

  if (!cfg)
    return -1;
  off += (size_t)snprintf(cfg + off, 32, "instances = [");
  for (int i = 0; i < MANY; i++)
    off += (size_t)snprintf(cfg + off, 16, "%s\"m%03d\"", i ? "," : "", i);
  snprintf(cfg + off, 8, "];\n");
  rc = start_with(state, "fake", cfg, NULL, seed_many);
  free(cfg);
  return rc;
}

static bool all_initialised(struct e2e *e, void *ud)
{
  cJSON *list = e2e_get(e, CCM_E2E_NODES);
  const cJSON *n;
  int done = 0;

  (void)ud;
  cJSON_ArrayForEach(n, e2e_json_at(list, "items")) {
    if (!has_taint(n, UNINIT) && e2e_json_str(n, "spec.providerID"))
      done++;
  }
  cJSON_Delete(list);
  return done == MANY;
}

static void test_many_nodes_batched(void **state)
{
  struct e2e *e = *state;
  int batches, singles;

  assert_true(e2e_wait(e, all_initialised, NULL, 120000));
  batches = e2e_call_count(e, "instance_metadata_batch", NULL);
  singles = e2e_call_count(e, "instance_metadata", NULL);
  fprintf(stderr, "200 nodes: %d batched calls, %d single calls\n", batches,
          singles);
  assert_true(batches > 0);
  assert_true(batches < MANY / 2); /* batches really held many nodes */
  assert_int_equal(singles, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_init_lab, setup_lab, teardown),
    cmocka_unit_test_setup_teardown(test_provided_node_ip, setup_lab,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_metadata_error_keeps_taint,
                                    setup_meta_error, teardown),
    cmocka_unit_test_setup_teardown(test_address_refresh, setup_refresh,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_many_nodes_batched, setup_many,
                                    teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
