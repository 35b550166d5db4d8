/*
 * test_node_logic.c: the pure decisions of the node and node lifecycle
 * controllers (host/controllers/node_logic.c) against the reference's
 * sections 3, 3.1 and 4: address merge and the provided-node-ip rules,
 * labels (GA + beta, extra-label filter), taints, lifecycle actions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "controllers/node_logic.h"

#define A(t, s) {CCM_ADDR_##t, s}
#define N(x) (sizeof(x) / sizeof((x)[0]))

static void assert_addrs(const struct node_addr *got, size_t n_got,
                         const struct node_addr *want, size_t n_want)
{
  assert_int_equal(n_got, n_want);
  for (size_t i = 0; i < n_want; i++) {
    assert_int_equal(got[i].type, want[i].type);
    assert_string_equal(got[i].address, want[i].address);
  }
}

static void test_addr_types(void **state)
{
  (void)state;
  assert_int_equal(node_addr_type_parse("InternalIP"), CCM_ADDR_INTERNAL_IP);
  assert_int_equal(node_addr_type_parse("Hostname"), CCM_ADDR_HOSTNAME);
  assert_int_equal(node_addr_type_parse("ExternalDNS"), CCM_ADDR_EXTERNAL_DNS);
  assert_int_equal(node_addr_type_parse("internalip"), 0);
  assert_int_equal(node_addr_type_parse(NULL), 0);
  assert_string_equal(node_addr_type_name(CCM_ADDR_EXTERNAL_IP), "ExternalIP");
  assert_null(node_addr_type_name(99));
}

static void test_ip_parse_sloppy(void **state)
{
  unsigned char a[16], b[16];

  (void)state;
  assert_true(node_ip_parse("10.0.0.1", a));
  assert_true(node_ip_parse("010.000.000.001", b)); /* leading zeros: decimal */
  assert_memory_equal(a, b, 16);
  assert_false(node_ip_is6(a));
  assert_true(node_ip_parse("::ffff:10.0.0.1", b)); /* mapped == IPv4 */
  assert_memory_equal(a, b, 16);
  assert_true(node_ip_parse("fd00::1", a));
  assert_true(node_ip_is6(a));
  assert_false(node_ip_parse("256.0.0.1", a));
  assert_false(node_ip_parse("10.0.0", a));
  assert_false(node_ip_parse("10.0.0.1 ", a));
  assert_false(node_ip_parse("node-1", a));
  assert_false(node_ip_parse("", a));
}

static void test_annotation_parse(void **state)
{
  unsigned char ips[2][16];
  char err[160];

  (void)state;
  assert_int_equal(node_ip_annotation_parse("10.0.0.1", ips, err,
                                            sizeof(err)), 1);
  assert_int_equal(node_ip_annotation_parse("10.0.0.1,fd00::1", ips, err,
                                            sizeof(err)), 2);
  assert_int_equal(node_ip_annotation_parse("fd00::1,10.0.0.1", ips, err,
                                            sizeof(err)), 2);
  assert_int_equal(node_ip_annotation_parse("10.0.0.1,10.0.0.2", ips, err,
                                            sizeof(err)), -1);
  assert_string_equal(err, "must contain either a single IP or a dual-stack "
                      "pair of IPs");
  assert_int_equal(node_ip_annotation_parse("10.0.0.1,fd00::1,10.0.0.3", ips,
                                            err, sizeof(err)), -1);
  assert_int_equal(node_ip_annotation_parse("0.0.0.0,fd00::1", ips, err,
                                            sizeof(err)), -1);
  assert_non_null(strstr(err, "cannot include"));
  assert_int_equal(node_ip_annotation_parse("bogus", ips, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "invalid IP address \"bogus\"");
  /* no trimming (not sloppy): a space makes it invalid */
  assert_int_equal(node_ip_annotation_parse("10.0.0.1, fd00::1", ips, err,
                                            sizeof(err)), -1);
  assert_int_equal(node_ip_annotation_parse("", ips, err, sizeof(err)), -1);
}

static void test_from_node_ip(void **state)
{
  const struct node_addr cloud[] = {
    A(INTERNAL_IP, "10.0.0.1"), A(INTERNAL_IP, "10.0.0.2"),
    A(EXTERNAL_IP, "203.0.113.5"), A(HOSTNAME, "n1"),
    A(INTERNAL_IP, "fd00::2"),
  };
  struct node_addr out[N(cloud)];
  char err[200];
  int n;

  (void)state;
  /* the match first; its type keeps only the match; the rest in order */
  n = node_addresses_from_node_ip("10.0.0.2", cloud, N(cloud), out, err,
                                  sizeof(err));
  {
    const struct node_addr want[] = {A(INTERNAL_IP, "10.0.0.2"),
                                     A(EXTERNAL_IP, "203.0.113.5"),
                                     A(HOSTNAME, "n1")};
    assert_addrs(out, (size_t)n, want, N(want));
  }
  /* an external IP: InternalIPs stay, ExternalIP only the match */
  n = node_addresses_from_node_ip("203.0.113.5", cloud, N(cloud), out, err,
                                  sizeof(err));
  {
    const struct node_addr want[] = {
      A(EXTERNAL_IP, "203.0.113.5"), A(INTERNAL_IP, "10.0.0.1"),
      A(INTERNAL_IP, "10.0.0.2"), A(HOSTNAME, "n1"),
      A(INTERNAL_IP, "fd00::2")};
    assert_addrs(out, (size_t)n, want, N(want));
  }
  /* dual-stack: both matches first, in annotation order */
  n = node_addresses_from_node_ip("fd00::2,10.0.0.1", cloud, N(cloud), out,
                                  err, sizeof(err));
  {
    const struct node_addr want[] = {
      A(INTERNAL_IP, "fd00::2"), A(INTERNAL_IP, "10.0.0.1"),
      A(EXTERNAL_IP, "203.0.113.5"), A(HOSTNAME, "n1")};
    assert_addrs(out, (size_t)n, want, N(want));
  }
  /* leading zeros in the annotation still match */
  n = node_addresses_from_node_ip("010.0.0.1", cloud, N(cloud), out, err,
                                  sizeof(err));
  assert_int_equal(n, 3);
  assert_string_equal(out[0].address, "10.0.0.1");
  /* no match */
  n = node_addresses_from_node_ip("10.9.9.9", cloud, N(cloud), out, err,
                                  sizeof(err));
  assert_int_equal(n, -1);
  assert_string_equal(err, "failed to get node address from cloud provider "
                      "that matches ip: 10.9.9.9");
  n = node_addresses_from_node_ip("10.0.0.1,fd00::9", cloud, N(cloud), out,
                                  err, sizeof(err));
  assert_int_equal(n, -1);
  assert_non_null(strstr(err, "matches ip: fd00::9"));
  n = node_addresses_from_node_ip("x", cloud, N(cloud), out, err,
                                  sizeof(err));
  assert_int_equal(n, -1);
  assert_non_null(strstr(err, "failed to parse node IP \"x\""));
}

static void test_merge(void **state)
{
  const struct node_addr cur[] = {A(INTERNAL_IP, "192.168.0.9"),
                                  A(HOSTNAME, "kubelet-name")};
  const struct node_addr cloud_nohost[] = {A(INTERNAL_IP, "10.0.0.1"),
                                           A(EXTERNAL_IP, "203.0.113.5")};
  const struct node_addr cloud_host[] = {A(HOSTNAME, "cloud-name"),
                                         A(INTERNAL_IP, "10.0.0.1")};
  struct node_addr out[8];
  size_t n = 99;
  char err[200];

  (void)state;
  /* rule 1: no cloud addresses -> no change */
  assert_int_equal(node_addresses_merge(NULL, 0, cur, N(cur), NULL, out, &n,
                                        err, sizeof(err)), 0);
  assert_int_equal(n, 0);
  /* rule 2: the kubelet's Hostname appended at the end */
  assert_int_equal(node_addresses_merge(cloud_nohost, N(cloud_nohost), cur,
                                        N(cur), NULL, out, &n, err,
                                        sizeof(err)), 0);
  {
    const struct node_addr want[] = {A(INTERNAL_IP, "10.0.0.1"),
                                     A(EXTERNAL_IP, "203.0.113.5"),
                                     A(HOSTNAME, "kubelet-name")};
    assert_addrs(out, n, want, N(want));
  }
  /* the cloud's Hostname wins: the kubelet's is not added */
  assert_int_equal(node_addresses_merge(cloud_host, N(cloud_host), cur,
                                        N(cur), NULL, out, &n, err,
                                        sizeof(err)), 0);
  assert_addrs(out, n, cloud_host, N(cloud_host));
  /* rule 3 on the merged list */
  assert_int_equal(node_addresses_merge(cloud_nohost, N(cloud_nohost), cur,
                                        N(cur), "203.0.113.5", out, &n, err,
                                        sizeof(err)), 0);
  {
    const struct node_addr want[] = {A(EXTERNAL_IP, "203.0.113.5"),
                                     A(INTERNAL_IP, "10.0.0.1"),
                                     A(HOSTNAME, "kubelet-name")};
    assert_addrs(out, n, want, N(want));
  }
  /* an annotation the cloud does not know: error, update skipped */
  assert_int_equal(node_addresses_merge(cloud_nohost, N(cloud_nohost), cur,
                                        N(cur), "192.168.0.9", out, &n, err,
                                        sizeof(err)), -1);
  assert_non_null(strstr(err, "matches ip: 192.168.0.9"));
}

static void test_changed(void **state)
{
  const struct node_addr a[] = {A(INTERNAL_IP, "10.0.0.1"),
                                A(HOSTNAME, "n1")};
  const struct node_addr b[] = {A(HOSTNAME, "n1"),
                                A(INTERNAL_IP, "10.0.0.1")};
  const struct node_addr c[] = {A(INTERNAL_IP, "10.0.0.2"),
                                A(HOSTNAME, "n1")};
  const struct node_addr dup_old[] = {A(INTERNAL_IP, "10.0.0.1"),
                                      A(INTERNAL_IP, "10.0.0.2")};
  const struct node_addr dup_new[] = {A(INTERNAL_IP, "10.0.0.2"),
                                      A(INTERNAL_IP, "10.0.0.2")};

  (void)state;
  assert_false(node_addresses_changed(a, N(a), a, N(a)));
  assert_false(node_addresses_changed(a, N(a), b, N(b))); /* order ignored */
  assert_true(node_addresses_changed(a, N(a), c, N(c)));
  assert_true(node_addresses_changed(a, N(a), a, 1));
  /* old read as a map: the last InternalIP (10.0.0.2) is what counts */
  assert_false(node_addresses_changed(dup_old, N(dup_old), dup_new,
                                      N(dup_new)));
}

static void test_label_filter(void **state)
{
  (void)state;
  assert_true(node_label_is_reserved("topology.kubernetes.io/x"));
  assert_true(node_label_is_reserved("k8s.io/x"));
  assert_true(node_label_is_reserved("kubernetes.io/x"));
  assert_true(node_label_is_reserved("node-role.kubernetes.io/worker"));
  assert_true(node_label_is_reserved("a.b.k8s.io/x"));
  assert_false(node_label_is_reserved("k8snio/x"));
  assert_false(node_label_is_reserved("app.k8snio/x"));
  assert_false(node_label_is_reserved("mykubernetes.io/x"));
  assert_false(node_label_is_reserved("example.com/kubernetes.io"));
  assert_false(node_label_is_reserved("fake.example.com/version"));
  assert_false(node_label_is_reserved("plain"));
}

static void test_labels_from_meta(void **state)
{
  const char *keys[] = {"topology.kubernetes.io/x", "team.example.com/owner",
                        "k8s.io/y", "k8snio/z"};
  const char *values[] = {"1", "blue", "2", "3"};
  struct node_label_set out[10];
  size_t dropped = 0;
  size_t n;

  (void)state;
  n = node_labels_from_meta("m5.large", "z1", "r1", keys, values, N(keys),
                            out, &dropped);
  assert_int_equal(n, 8);
  assert_int_equal(dropped, 2);
  assert_string_equal(out[0].key, "node.kubernetes.io/instance-type");
  assert_string_equal(out[1].key, "beta.kubernetes.io/instance-type");
  assert_string_equal(out[1].value, "m5.large");
  assert_string_equal(out[2].key, "topology.kubernetes.io/zone");
  assert_string_equal(out[3].key, "failure-domain.beta.kubernetes.io/zone");
  assert_string_equal(out[3].value, "z1");
  assert_string_equal(out[4].key, "topology.kubernetes.io/region");
  assert_string_equal(out[5].key, "failure-domain.beta.kubernetes.io/region");
  assert_string_equal(out[5].value, "r1");
  assert_false(out[5].if_absent);
  assert_string_equal(out[6].key, "team.example.com/owner");
  assert_true(out[6].if_absent);
  assert_string_equal(out[7].key, "k8snio/z");
  /* empty values give no labels */
  n = node_labels_from_meta("", NULL, "r1", NULL, NULL, 0, out, &dropped);
  assert_int_equal(n, 2);
  assert_string_equal(out[0].key, "topology.kubernetes.io/region");
}

static void test_label_should_set(void **state)
{
  struct node_label_set std = {"topology.kubernetes.io/zone", "z1", false};
  struct node_label_set extra = {"team.example.com/owner", "blue", true};
  bool conflict;

  (void)state;
  assert_true(node_label_should_set(&std, NULL, &conflict));
  assert_false(node_label_should_set(&std, "z1", &conflict));
  assert_true(node_label_should_set(&std, "z0", &conflict)); /* overwrite */
  assert_false(conflict);
  assert_true(node_label_should_set(&extra, NULL, &conflict));
  assert_false(node_label_should_set(&extra, "blue", &conflict));
  assert_false(conflict);
  assert_false(node_label_should_set(&extra, "red", &conflict)); /* kept */
  assert_true(conflict);
}

static struct obj_meta *decode_node(const char *json)
{
  struct obj_meta *m = NULL;
  char err[200];

  assert_int_equal(obj_decode_text(OBJ_KIND_NODE, json, strlen(json), &m,
                                   err, sizeof(err)), OBJ_OK);
  return m;
}

static void test_labels_reconcile(void **state)
{
  struct obj_meta *m;
  struct node_label_set out[3];
  size_t n;

  (void)state;
  m = decode_node("{\"metadata\":{\"name\":\"n1\",\"labels\":{"
                  "\"failure-domain.beta.kubernetes.io/zone\":\"z1\","
                  "\"topology.kubernetes.io/zone\":\"z0\","
                  "\"failure-domain.beta.kubernetes.io/region\":\"r1\","
                  "\"topology.kubernetes.io/region\":\"r1\","
                  "\"beta.kubernetes.io/instance-type\":\"big\"}}}");
  n = node_labels_reconcile(m, out);
  assert_int_equal(n, 2);
  assert_string_equal(out[0].key, "topology.kubernetes.io/zone");
  assert_string_equal(out[0].value, "z1");
  assert_string_equal(out[1].key, "node.kubernetes.io/instance-type");
  assert_string_equal(out[1].value, "big");
  obj_unref(m);
  /* only GA labels (no beta): nothing to do */
  m = decode_node("{\"metadata\":{\"name\":\"n2\",\"labels\":{"
                  "\"topology.kubernetes.io/zone\":\"z0\"}}}");
  assert_int_equal(node_labels_reconcile(m, out), 0);
  obj_unref(m);
}

static void test_provider_id_pick(void **state)
{
  bool set;
  char err[160];
  const char *p;

  (void)state;
  p = node_provider_id_pick(NULL, "lab://n1", "n1", &set, err, sizeof(err));
  assert_string_equal(p, "lab://n1");
  assert_true(set);
  p = node_provider_id_pick("", "lab://n1", "n1", &set, err, sizeof(err));
  assert_true(set);
  /* only set if empty */
  p = node_provider_id_pick("aws:///i-1", "lab://n1", "n1", &set, err,
                            sizeof(err));
  assert_string_equal(p, "aws:///i-1");
  assert_false(set);
  p = node_provider_id_pick("aws:///i-1", NULL, "n1", &set, err, sizeof(err));
  assert_string_equal(p, "aws:///i-1");
  assert_false(set);
  p = node_provider_id_pick(NULL, "", "n1", &set, err, sizeof(err));
  assert_null(p);
  assert_string_equal(err, "cloud provider does not set node provider ID for "
                      "node n1");
}

static void test_taint_json(void **state)
{
  cJSON *node = cJSON_Parse(
      "{\"spec\":{\"taints\":["
      "{\"key\":\"a\",\"effect\":\"NoSchedule\"},"
      "{\"key\":\"node.cloudprovider.kubernetes.io/uninitialized\","
      "\"value\":\"true\",\"effect\":\"NoSchedule\"},"
      "{\"key\":\"b\",\"effect\":\"NoExecute\"},"
      "{\"key\":\"node.cloudprovider.kubernetes.io/uninitialized\","
      "\"effect\":\"NoExecute\"}]}}");
  const cJSON *taints;
  char *text;

  (void)state;
  assert_non_null(node);
  assert_true(node_json_has_taint(node, CCM_NODE_TAINT_UNINITIALIZED));
  assert_int_equal(node_json_taint_remove(node, CCM_NODE_TAINT_UNINITIALIZED),
                   2);
  assert_false(node_json_has_taint(node, CCM_NODE_TAINT_UNINITIALIZED));
  taints = cJSON_GetObjectItem(cJSON_GetObjectItem(node, "spec"), "taints");
  assert_int_equal(cJSON_GetArraySize(taints), 2);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(taints, 0),
                                          "key")->valuestring, "a");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(taints, 1),
                                          "key")->valuestring, "b");
  assert_int_equal(node_json_taint_remove(node, CCM_NODE_TAINT_UNINITIALIZED),
                   0);
  /* shutdown taint: added once, no value */
  assert_int_equal(node_json_taint_add(node, CCM_NODE_TAINT_SHUTDOWN,
                                       "NoSchedule"), 1);
  assert_int_equal(node_json_taint_add(node, CCM_NODE_TAINT_SHUTDOWN,
                                       "NoSchedule"), 0);
  taints = cJSON_GetObjectItem(cJSON_GetObjectItem(node, "spec"), "taints");
  assert_int_equal(cJSON_GetArraySize(taints), 3);
  assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(taints, 2), "value"));
  assert_int_equal(node_json_taint_remove(node, "a"), 1);
  assert_int_equal(node_json_taint_remove(node, "b"), 1);
  assert_int_equal(node_json_taint_remove(node, CCM_NODE_TAINT_SHUTDOWN), 1);
  text = cJSON_PrintUnformatted(node);
  assert_string_equal(text, "{\"spec\":{}}"); /* empty list dropped */
  cJSON_free(text);
  /* add on a node with no spec */
  cJSON_Delete(node);
  node = cJSON_Parse("{}");
  assert_int_equal(node_json_taint_add(node, CCM_NODE_TAINT_SHUTDOWN,
                                       "NoSchedule"), 1);
  text = cJSON_PrintUnformatted(node);
  assert_string_equal(text, "{\"spec\":{\"taints\":[{\"key\":\"node."
                      "cloudprovider.kubernetes.io/shutdown\",\"effect\":"
                      "\"NoSchedule\"}]}}");
  cJSON_free(text);
  cJSON_Delete(node);
}

static void test_node_json_fields(void **state)
{
  cJSON *node = cJSON_Parse("{\"metadata\":{\"name\":\"n\"},\"spec\":{}}");
  const struct node_addr a[] = {A(INTERNAL_IP, "10.0.0.1"),
                                A(HOSTNAME, "n")};
  cJSON *patch;
  char *text;

  (void)state;
  assert_null(node_json_provider_id(node));
  assert_int_equal(node_json_provider_id_set(node, "lab://n"), 0);
  assert_string_equal(node_json_provider_id(node), "lab://n");
  assert_int_equal(node_json_label_set(node, "k", "v1"), 0);
  assert_int_equal(node_json_label_set(node, "k", "v2"), 0);
  assert_string_equal(node_json_label(node, "k"), "v2");
  assert_null(node_json_label(node, "other"));
  cJSON_Delete(node);
  patch = node_json_addresses_patch(a, N(a));
  text = cJSON_PrintUnformatted(patch);
  assert_string_equal(text, "{\"status\":{\"addresses\":[{\"type\":"
                      "\"InternalIP\",\"address\":\"10.0.0.1\"},{\"type\":"
                      "\"Hostname\",\"address\":\"n\"}]}}");
  cJSON_free(text);
  cJSON_Delete(patch);
}

static void test_lifecycle(void **state)
{
  (void)state;
  /* only Ready True skips the probe; False and Unknown (absent) probe */
  assert_false(node_lc_needs_probe(OBJ_COND_TRUE));
  assert_true(node_lc_needs_probe(OBJ_COND_FALSE));
  assert_true(node_lc_needs_probe(OBJ_COND_UNKNOWN));
  assert_int_equal(node_lc_when_ready(true), NODE_LC_UNTAINT_SHUTDOWN);
  assert_int_equal(node_lc_when_ready(false), NODE_LC_NOTHING);
  /* deletion only on CCM_OK + exists false, in time */
  assert_int_equal(node_lc_after_exists(CCM_OK, false, false),
                   NODE_LC_DELETE);
  assert_int_equal(node_lc_after_exists(CCM_OK, false, true), NODE_LC_SKIP);
  assert_int_equal(node_lc_after_exists(CCM_OK, true, false),
                   NODE_LC_PROBE_SHUTDOWN);
  {
    const int errs[] = {CCM_ERR_NOT_FOUND, CCM_ERR_NOT_IMPLEMENTED,
                        CCM_ERR_RETRY, CCM_ERR_INVALID, CCM_ERR_AUTH,
                        CCM_ERR_THROTTLED, CCM_ERR_INTERNAL};
    for (size_t i = 0; i < N(errs); i++) {
      assert_int_equal(node_lc_after_exists(errs[i], false, false),
                       NODE_LC_SKIP);
      assert_int_equal(node_lc_after_shutdown(errs[i], true, false, false),
                       NODE_LC_SKIP);
      assert_int_equal(node_lc_after_shutdown(errs[i], false, false, true),
                       NODE_LC_SKIP);
    }
  }
  assert_int_equal(node_lc_after_shutdown(CCM_OK, true, false, false),
                   NODE_LC_TAINT_SHUTDOWN);
  assert_int_equal(node_lc_after_shutdown(CCM_OK, true, false, true),
                   NODE_LC_NOTHING);
  assert_int_equal(node_lc_after_shutdown(CCM_OK, false, false, true),
                   NODE_LC_UNTAINT_SHUTDOWN);
  assert_int_equal(node_lc_after_shutdown(CCM_OK, false, false, false),
                   NODE_LC_NOTHING);
  assert_int_equal(node_lc_after_shutdown(CCM_OK, true, true, false),
                   NODE_LC_SKIP);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_addr_types),
    cmocka_unit_test(test_ip_parse_sloppy),
    cmocka_unit_test(test_annotation_parse),
    cmocka_unit_test(test_from_node_ip),
    cmocka_unit_test(test_merge),
    cmocka_unit_test(test_changed),
    cmocka_unit_test(test_label_filter),
    cmocka_unit_test(test_labels_from_meta),
    cmocka_unit_test(test_label_should_set),
    cmocka_unit_test(test_labels_reconcile),
    cmocka_unit_test(test_provider_id_pick),
    cmocka_unit_test(test_taint_json),
    cmocka_unit_test(test_node_json_fields),
    cmocka_unit_test(test_lifecycle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
