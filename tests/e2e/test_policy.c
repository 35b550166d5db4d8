/*
 * test_policy.c: e2e tests of Lua policies in the service controller with
 * the API double and the lab provider: a naming policy change renames
 * nothing (existing load balancers keep and are deleted by their recorded
 * names, only new Services get the new name); a rejection is a Warning
 * Event naming policy file and line, with no cloud call and no finalizer;
 * options reach the provider; a runaway policy fails its own Service
 * while others are served; IMPLEMENTED_ELSEWHERE leaves a Service alone;
 * node_labels adds filtered labels when a Node is initialised, and a
 * failing node_labels keeps the Node tainted until a fixed policy loads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "controllers/node.h"
#include "controllers/service.h"
#include "controllers/service_logic.h"
#include "harness.h"
#include "kube/writes.h"

#define WAIT_MS 30000u
#define NS "default"
#define SVCS "/api/v1/namespaces/" NS "/services"

/* v1 names "v1-<name>"; v2 "v2-<name>". Both read the same annotations. */
#define POLICY_BODY                                                        \
  "  load_balancer_options = function(service, ctx)\n"                     \
  "    local a = service.annotations or {}\n"                              \
  "    local mode = a[\"test.ccmhost.io/mode\"]\n"                         \
  "    if mode == \"reject\" then\n"                                       \
  "      return nil, \"mode reject asks for a rejection\"\n"               \
  "    elseif mode == \"elsewhere\" then\n"                                \
  "      return ccm.IMPLEMENTED_ELSEWHERE\n"                               \
  "    elseif mode == \"loop\" then\n"                                     \
  "      while true do end\n"                                              \
  "    end\n"                                                              \
  "    if a[\"test.ccmhost.io/ip\"] then\n"                                \
  "      return { [\"ipv4-address\"] = a[\"test.ccmhost.io/ip\"] }\n"      \
  "    end\n"                                                              \
  "    return {}\n"                                                        \
  "  end,\n"                                                               \
  "}\n"
#define REJECT_LINE 7 /* of the file: the `return nil, ...` line */

static const char policy_v1[] =
    "return {\n"
    "  load_balancer_name = function(service) return \"v1-\" .. service.name end,\n"
    POLICY_BODY;
static const char policy_v2[] =
    "return {\n"
    "  load_balancer_name = function(service) return \"v2-\" .. service.name end,\n"
    POLICY_BODY;

struct fx {
  struct e2e e;
  char dir[64];
  char policy[128];
};

static int write_file(const char *path, const char *text)
{
  char tmp[160];
  FILE *f;

  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  f = fopen(tmp, "w");
  if (f == NULL)
    return -1;
  fputs(text, f);
  if (fclose(f) != 0)
    return -1;
  return rename(tmp, path);
}

static int setup(void **state)
{
  struct fx *fx = calloc(1, sizeof(*fx));
  struct e2e_opts o = {.provider = "lab"};
  char host_cfg[256];

  if (fx == NULL)
    return -1;
  *state = fx;
  snprintf(fx->dir, sizeof fx->dir, "/tmp/ccm-e2e-policy-XXXXXX");
  if (mkdtemp(fx->dir) == NULL)
    return -1;
  snprintf(fx->policy, sizeof fx->policy, "%s/naming.lua", fx->dir);
  if (write_file(fx->policy, policy_v1) != 0)
    return -1;
  snprintf(host_cfg, sizeof host_cfg, "policies = [\"%s\"];", fx->policy);
  o.host_config = host_cfg;
  if (e2e_setup(&fx->e, &o) != 0 ||
      e2e_run_controller(&fx->e, &service_controller_ops) != 0)
    return -1;
  if (e2e_create_node(&fx->e, "n1", "10.0.0.1", true) != 0)
    return -1;
  return e2e_go(&fx->e);
}

static int teardown(void **state)
{
  struct fx *fx = *state;
  char cmd[128];

  if (fx != NULL) {
    e2e_stop(&fx->e);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (fx->dir[0] != '\0' && system(cmd) != 0)
      fprintf(stderr, "cannot remove %s\n", fx->dir);
    free(fx);
  }
  return 0;
}

static void svc_path(char *buf, size_t cap, const char *name)
{
  snprintf(buf, cap, SVCS "/%s", name);
}

static const char *ann(const cJSON *obj, const char *key)
{
  const cJSON *a = e2e_json_at(obj, "metadata.annotations");
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, key);

  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool pred_ready(const cJSON *obj, void *ud)
{
  (void)ud;
  return obj != NULL && kube_has_finalizer(obj, CCM_SVC_FINALIZER) &&
         ann(obj, CCM_SVC_NAME_ANNOTATION) != NULL &&
         e2e_json_str(obj, "status.loadBalancer.ingress.0.ip") != NULL;
}

/* Create a LoadBalancer Service with annotations (a JSON object text). */
static void create(struct e2e *e, const char *name, const char *annotations)
{
  char body[1024];

  snprintf(body, sizeof body,
           "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{"
           "\"name\":\"%s\",\"namespace\":\"" NS "\",\"annotations\":%s},"
           "\"spec\":{\"type\":\"LoadBalancer\",\"ports\":[{\"port\":80,"
           "\"targetPort\":8080,\"protocol\":\"TCP\"}]}}",
           name, annotations ? annotations : "{}");
  assert_int_equal(e2e_apply_json(e, SVCS, body, NULL), 0);
}

static cJSON *wait_ready(struct e2e *e, const char *name)
{
  char path[256];

  svc_path(path, sizeof path, name);
  if (!e2e_wait_object(e, path, pred_ready, NULL, WAIT_MS))
    fail_msg("Service %s did not get a load balancer", name);
  return e2e_get(e, path);
}

static bool lab_has(struct e2e *e, const char *lb)
{
  cJSON *st = e2e_lab_state(e);
  bool has = e2e_lab_lb(st, lb) != NULL;

  cJSON_Delete(st);
  return has;
}

struct lab_want {
  const char *lb;
  bool present;
};

static bool pred_lab(struct e2e *e, void *ud)
{
  const struct lab_want *w = ud;

  return lab_has(e, w->lb) == w->present;
}

static void test_naming_change(void **state)
{
  struct fx *fx = *state;
  struct e2e *e = &fx->e;
  struct lab_want gone = {"v1-pol-a", false};
  char path[256];
  cJSON *a, *b;

  create(e, "pol-a", NULL);
  a = wait_ready(e, "pol-a");
  assert_string_equal(ann(a, CCM_SVC_NAME_ANNOTATION), "v1-pol-a");
  assert_true(lab_has(e, "v1-pol-a"));
  cJSON_Delete(a);

  /* The new naming policy, live. */
  assert_int_equal(write_file(fx->policy, policy_v2), 0);
  assert_int_equal(e2e_policy_reload(e), 0);
  create(e, "pol-b", NULL);
  b = wait_ready(e, "pol-b");
  assert_string_equal(ann(b, CCM_SVC_NAME_ANNOTATION), "v2-pol-b");
  assert_true(lab_has(e, "v2-pol-b"));
  cJSON_Delete(b);

  /* A change to the old Service re-ensures it under its recorded name. */
  svc_path(path, sizeof path, "pol-a");
  assert_int_equal(e2e_patch_merge(e, path, "{\"spec\":{\"ports\":["
                   "{\"name\":\"web\",\"port\":80,\"targetPort\":8080,"
                   "\"protocol\":\"TCP\"},{\"name\":\"alt\",\"port\":81,"
                   "\"targetPort\":8081,\"protocol\":\"TCP\"}]}}"), 0);
  a = wait_ready(e, "pol-a");
  assert_string_equal(ann(a, CCM_SVC_NAME_ANNOTATION), "v1-pol-a");
  cJSON_Delete(a);
  e2e_sleep_ms(500);
  assert_false(lab_has(e, "v2-pol-a"));
  assert_true(lab_has(e, "v1-pol-a"));

  /* Deleted by the recorded name. */
  assert_int_equal(e2e_delete(e, path), 0);
  assert_true(e2e_wait_gone(e, path, WAIT_MS));
  assert_true(e2e_wait(e, pred_lab, &gone, WAIT_MS));
  assert_true(lab_has(e, "v2-pol-b"));
}

struct ev_want {
  const char *name, *reason, *part;
};

static bool pred_event(struct e2e *e, void *ud)
{
  const struct ev_want *w = ud;

  return e2e_event_count(e, NS, "Service", w->name, w->reason, w->part) > 0;
}

static void test_reject_and_runaway(void **state)
{
  struct fx *fx = *state;
  struct e2e *e = &fx->e;
  char where[64], path[256];
  struct ev_want rej = {"pol-rej", "SyncLoadBalancerFailed", where};
  struct ev_want loop = {"pol-loop", "SyncLoadBalancerFailed", "naming.lua"};
  cJSON *o;

  snprintf(where, sizeof where, "naming.lua:%d", REJECT_LINE);
  create(e, "pol-rej", "{\"test.ccmhost.io/mode\":\"reject\"}");
  create(e, "pol-loop", "{\"test.ccmhost.io/mode\":\"loop\"}");
  create(e, "pol-ok", "{\"test.ccmhost.io/ip\":\"203.0.113.77\"}");

  /* The others are served, with the policy's option honoured. */
  o = wait_ready(e, "pol-ok");
  assert_string_equal(e2e_json_str(o, "status.loadBalancer.ingress.0.ip"),
                      "203.0.113.77");
  cJSON_Delete(o);

  if (!e2e_wait(e, pred_event, &rej, WAIT_MS))
    fail_msg("no Warning Event naming %s for pol-rej", where);
  assert_true(e2e_event_count(e, NS, "Service", "pol-rej",
                              "SyncLoadBalancerFailed",
                              "mode reject asks for a rejection") > 0);
  if (!e2e_wait(e, pred_event, &loop, WAIT_MS))
    fail_msg("no Warning Event naming the policy for pol-loop");

  /* No cloud call and no finalizer for either. */
  svc_path(path, sizeof path, "pol-rej");
  o = e2e_get(e, path);
  assert_non_null(o);
  assert_false(kube_has_finalizer(o, CCM_SVC_FINALIZER));
  assert_null(e2e_json_at(o, "status.loadBalancer.ingress.0"));
  cJSON_Delete(o);
  svc_path(path, sizeof path, "pol-loop");
  o = e2e_get(e, path);
  assert_non_null(o);
  assert_false(kube_has_finalizer(o, CCM_SVC_FINALIZER));
  cJSON_Delete(o);
  assert_false(lab_has(e, "v1-pol-rej") || lab_has(e, "v2-pol-rej"));
  assert_false(lab_has(e, "v1-pol-loop") || lab_has(e, "v2-pol-loop"));
}

static void test_elsewhere(void **state)
{
  struct fx *fx = *state;
  struct e2e *e = &fx->e;
  char path[256];
  cJSON *o;

  create(e, "pol-else", "{\"test.ccmhost.io/mode\":\"elsewhere\"}");
  /* A Service created after it converging means the worker saw it. */
  create(e, "pol-after", NULL);
  cJSON_Delete(wait_ready(e, "pol-after"));
  e2e_sleep_ms(500);
  svc_path(path, sizeof path, "pol-else");
  o = e2e_get(e, path);
  assert_non_null(o);
  assert_false(kube_has_finalizer(o, CCM_SVC_FINALIZER));
  assert_null(ann(o, CCM_SVC_NAME_ANNOTATION));
  assert_null(e2e_json_at(o, "status.loadBalancer.ingress.0"));
  cJSON_Delete(o);
  assert_int_equal(e2e_event_count(e, NS, "Service", "pol-else",
                                   "SyncLoadBalancerFailed", NULL), 0);
}

/* ---- node_labels with the node controller ---- */

#define UNINIT "node.cloudprovider.kubernetes.io/uninitialized"

static const char labels_good[] =
    "return {\n"
    "  node_labels = function(node, meta, ctx)\n"
    "    return { [\"example.com/zone-copy\"] = meta.zone,\n"
    "             [\"example.com/provider\"] = ctx.provider,\n"
    "             [\"kubernetes.io/forbidden\"] = \"dropped\" }\n"
    "  end,\n"
    "}\n";
/* Fails at run time for one Node only, so it passes the self-test. */
static const char labels_failing[] =
    "return {\n"
    "  node_labels = function(node, meta)\n"
    "    if node.name == \"pn-bad\" then error(\"no labels for pn-bad\") end\n"
    "    return { [\"example.com/zone-copy\"] = meta.zone }\n"
    "  end,\n"
    "}\n";

static int setup_nodes(void **state)
{
  struct fx *fx = calloc(1, sizeof(*fx));
  struct e2e_opts o = {.provider = "lab", .workers = 2,
                       .provider_config = "zone = \"z9\"; region = \"r9\";"};
  char host_cfg[256];

  if (fx == NULL)
    return -1;
  *state = fx;
  snprintf(fx->dir, sizeof fx->dir, "/tmp/ccm-e2e-policy-XXXXXX");
  if (mkdtemp(fx->dir) == NULL)
    return -1;
  snprintf(fx->policy, sizeof fx->policy, "%s/labels.lua", fx->dir);
  snprintf(host_cfg, sizeof host_cfg, "policies = [\"%s\"];", fx->policy);
  o.host_config = host_cfg;
  if (write_file(fx->policy, labels_good) != 0 ||
      e2e_setup(&fx->e, &o) != 0 ||
      e2e_run_controller(&fx->e, &node_controller_ops) != 0)
    return -1;
  return e2e_go(&fx->e);
}

static void create_tainted(struct e2e *e, const char *name)
{
  char body[512];

  snprintf(body, sizeof body,
           "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{"
           "\"name\":\"%s\"},\"spec\":{\"taints\":[{\"key\":\"" UNINIT
           "\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]}}", name);
  assert_int_equal(e2e_apply_json(e, CCM_E2E_NODES, body, NULL), 0);
}

static bool node_untainted(const cJSON *node, void *ud)
{
  const cJSON *t;

  (void)ud;
  if (node == NULL)
    return false;
  cJSON_ArrayForEach(t, e2e_json_at(node, "spec.taints")) {
    const char *k = e2e_json_str(t, "key");

    if (k != NULL && strcmp(k, UNINIT) == 0)
      return false;
  }
  return true;
}

static const char *node_label(const cJSON *node, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(
      e2e_json_at(node, "metadata.labels"), key);

  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_node_labels(void **state)
{
  struct fx *fx = *state;
  struct e2e *e = &fx->e;
  cJSON *n;

  create_tainted(e, "pn-1");
  if (!e2e_wait_object(e, CCM_E2E_NODES "/pn-1", node_untainted, NULL,
                       WAIT_MS))
    fail_msg("node pn-1 was not initialised");
  n = e2e_get(e, CCM_E2E_NODES "/pn-1");
  assert_string_equal(node_label(n, "example.com/zone-copy"), "z9");
  assert_string_equal(node_label(n, "example.com/provider"), "lab");
  assert_null(node_label(n, "kubernetes.io/forbidden"));
  assert_string_equal(node_label(n, "topology.kubernetes.io/zone"), "z9");
  cJSON_Delete(n);

  /* A failing hook keeps its Node tainted; the fixed policy frees it. */
  assert_int_equal(write_file(fx->policy, labels_failing), 0);
  assert_int_equal(e2e_policy_reload(e), 0);
  create_tainted(e, "pn-bad");
  create_tainted(e, "pn-2");
  if (!e2e_wait_object(e, CCM_E2E_NODES "/pn-2", node_untainted, NULL,
                       WAIT_MS))
    fail_msg("node pn-2 was not initialised");
  e2e_sleep_ms(1000);
  n = e2e_get(e, CCM_E2E_NODES "/pn-bad");
  assert_false(node_untainted(n, NULL));
  cJSON_Delete(n);
  assert_int_equal(write_file(fx->policy, labels_good), 0);
  assert_int_equal(e2e_policy_reload(e), 0);
  if (!e2e_wait_object(e, CCM_E2E_NODES "/pn-bad", node_untainted, NULL,
                       WAIT_MS))
    fail_msg("node pn-bad stayed tainted after the fixed policy loaded");
  n = e2e_get(e, CCM_E2E_NODES "/pn-bad");
  assert_string_equal(node_label(n, "example.com/provider"), "lab");
  cJSON_Delete(n);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_naming_change, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reject_and_runaway, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_elsewhere, setup, teardown),
    cmocka_unit_test_setup_teardown(test_node_labels, setup_nodes, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
