/*
 * test_kube_decode.c: unit tests of host/kube/objects.c: Node and Service
 * decoding into compact structs, and bad input (malformed JSON, wrong
 * types, huge strings, invalid UTF-8, allocation failure).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/objects.h"
#include "util/mem.h"

static const char NODE_JSON[] =
    "{\"kind\":\"Node\",\"apiVersion\":\"v1\",\"metadata\":{"
    "\"name\":\"node-1\",\"uid\":\"u-1\",\"resourceVersion\":\"42\","
    "\"creationTimestamp\":\"2024-01-01T00:00:00Z\",\"unknownField\":[1,2],"
    "\"labels\":{\"zz\":\"last\",\"node.kubernetes.io/instance-type\":\"m5\","
    "\"node.kubernetes.io/exclude-from-external-load-balancers\":\"false\"},"
    "\"annotations\":{\"alpha.kubernetes.io/provided-node-ip\":\"10.0.0.5\","
    "\"other\":\"dropped\"},\"managedFields\":[{\"manager\":\"kubelet\"}]},"
    "\"spec\":{\"providerID\":\"lab://node-1\",\"unschedulable\":true,"
    "\"podCIDR\":\"10.244.1.0/24\",\"podCIDRs\":[\"10.244.1.0/24\",\"fd00::/64\"],"
    "\"taints\":[{\"key\":\"node.cloudprovider.kubernetes.io/uninitialized\","
    "\"value\":\"true\",\"effect\":\"NoSchedule\"},{\"key\":\"k2\","
    "\"effect\":\"NoExecute\"}]},"
    "\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.5\"},"
    "{\"type\":\"Hostname\",\"address\":\"node-1\"}],"
    "\"conditions\":[{\"type\":\"MemoryPressure\",\"status\":\"False\"},"
    "{\"type\":\"Ready\",\"status\":\"True\","
    "\"lastTransitionTime\":\"2024-01-02T03:04:05Z\"},"
    "{\"type\":\"NetworkUnavailable\",\"status\":\"False\",\"reason\":\"RouteCreated\"}],"
    "\"nodeInfo\":{\"kubeletVersion\":\"v1.30.0\"}}}";

static const char SVC_JSON[] =
    "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"s-1\","
    "\"resourceVersion\":\"7\",\"generation\":3,"
    "\"deletionTimestamp\":\"2024-01-01T00:00:00Z\","
    "\"finalizers\":[\"service.kubernetes.io/load-balancer-cleanup\"],"
    "\"labels\":{\"app\":\"web\"},"
    "\"annotations\":{\"b\":\"2\",\"a\":\"1\","
    "\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"}},"
    "\"spec\":{\"type\":\"LoadBalancer\",\"loadBalancerClass\":\"x/y\","
    "\"loadBalancerIP\":\"1.2.3.4\",\"loadBalancerSourceRanges\":[\"10.0.0.0/8\"],"
    "\"externalIPs\":[\"5.6.7.8\"],\"ipFamilies\":[\"IPv4\",\"IPv6\"],"
    "\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":80,"
    "\"targetPort\":8080,\"nodePort\":30080},{\"port\":53,\"protocol\":\"UDP\","
    "\"targetPort\":\"dns\",\"appProtocol\":\"dns\"},{\"port\":443}],"
    "\"externalTrafficPolicy\":\"Local\",\"healthCheckNodePort\":32000,"
    "\"sessionAffinity\":\"ClientIP\",\"sessionAffinityConfig\":{\"clientIP\":"
    "{\"timeoutSeconds\":600}},\"selector\":{\"app\":\"web\"}},"
    "\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"9.9.9.9\","
    "\"ipMode\":\"VIP\"},{\"hostname\":\"lb.example\"}]}}}";

static struct obj_meta *decode_ok(enum obj_kind kind, const char *json)
{
  struct obj_meta *obj = NULL;
  char err[256];
  int rc = obj_decode_text(kind, json, strlen(json), &obj, err, sizeof(err));

  if (rc != OBJ_OK)
    fprintf(stderr, "decode failed: %s\n", err);
  assert_int_equal(rc, OBJ_OK);
  assert_non_null(obj);
  return obj;
}

static int decode_rc(enum obj_kind kind, const char *json, char *err,
                     size_t errlen)
{
  struct obj_meta *obj = NULL;
  int rc = obj_decode_text(kind, json, strlen(json), &obj, err, errlen);

  if (rc == OBJ_OK)
    obj_unref(obj);
  else
    assert_null(obj);
  return rc;
}

static void test_node_fields(void **state)
{
  struct obj_meta *m = decode_ok(OBJ_KIND_NODE, NODE_JSON);
  const struct obj_node *n = obj_as_node(m);

  (void)state;
  assert_non_null(n);
  assert_null(obj_as_service(m));
  assert_string_equal(m->name, "node-1");
  assert_null(m->ns);
  assert_string_equal(m->uid, "u-1");
  assert_string_equal(m->resource_version, "42");
  assert_false(m->deleting);
  assert_int_equal(m->n_labels, 3);
  /* Sorted by key for binary search. */
  assert_string_equal(m->labels[0].key,
                      "node.kubernetes.io/exclude-from-external-load-balancers");
  assert_string_equal(m->labels[2].key, "zz");
  assert_string_equal(obj_label(m, "node.kubernetes.io/instance-type"), "m5");
  assert_null(obj_label(m, "missing"));
  /* Only the node-IP annotation is kept. */
  assert_int_equal(m->n_annotations, 1);
  assert_null(obj_annotation(m, "other"));
  assert_string_equal(n->provided_node_ip, "10.0.0.5");
  assert_string_equal(n->provider_id, "lab://node-1");
  assert_true(n->unschedulable);
  assert_int_equal(n->n_taints, 2);
  assert_string_equal(n->taints[0].value, "true");
  assert_string_equal(n->taints[0].effect, "NoSchedule");
  assert_null(n->taints[1].value);
  assert_non_null(obj_node_taint(n, "k2"));
  assert_null(obj_node_taint(n, "ToBeDeletedByClusterAutoscaler"));
  assert_int_equal(n->n_pod_cidrs, 2);
  assert_string_equal(n->pod_cidrs[1], "fd00::/64");
  assert_int_equal(n->n_addresses, 2);
  assert_string_equal(n->addresses[1].type, "Hostname");
  assert_string_equal(n->addresses[1].address, "node-1");
  assert_int_equal(n->ready, OBJ_COND_TRUE);
  assert_int_equal(n->ready_transition, 1704164645);
  assert_int_equal(n->network_unavailable, OBJ_COND_FALSE);
  assert_string_equal(n->network_unavailable_reason, "RouteCreated");
  /* One allocation, bigger than the struct, far smaller than the JSON. */
  assert_true(m->size > sizeof(struct obj_node));
  assert_true(m->size < sizeof(NODE_JSON));
  obj_unref(m);
}

static void test_node_minimal(void **state)
{
  struct obj_meta *m = decode_ok(
      OBJ_KIND_NODE,
      "{\"metadata\":{\"name\":\"n\"},\"spec\":{\"podCIDR\":\"10.0.0.0/24\"}}");
  const struct obj_node *n = obj_as_node(m);

  (void)state;
  assert_int_equal(n->ready, OBJ_COND_UNKNOWN);
  assert_int_equal(n->n_pod_cidrs, 1);
  assert_string_equal(n->pod_cidrs[0], "10.0.0.0/24");
  assert_null(n->provider_id);
  assert_null(m->uid);
  assert_int_equal(m->n_labels, 0);
  assert_null(obj_label(m, "x"));
  obj_unref(m);
}

static void test_service_fields(void **state)
{
  struct obj_meta *m = decode_ok(OBJ_KIND_SERVICE, SVC_JSON);
  const struct obj_service *s = obj_as_service(m);
  char key[64];

  (void)state;
  assert_non_null(s);
  assert_string_equal(m->ns, "default");
  assert_string_equal(m->name, "web");
  assert_int_equal(obj_key(m, key, sizeof(key)), 11);
  assert_string_equal(key, "default/web");
  assert_int_equal(obj_key(m, key, 5), -1);
  assert_int_equal(m->generation, 3);
  assert_true(m->deleting);
  assert_int_equal(s->type, OBJ_SVC_LOAD_BALANCER);
  assert_string_equal(s->type_name, "LoadBalancer");
  assert_string_equal(s->lb_class, "x/y");
  assert_string_equal(s->lb_ip, "1.2.3.4");
  assert_int_equal(s->n_source_ranges, 1);
  assert_string_equal(s->external_ips[0], "5.6.7.8");
  assert_int_equal(s->n_ip_families, 2);
  assert_true(obj_service_has_finalizer(
      s, "service.kubernetes.io/load-balancer-cleanup"));
  assert_false(obj_service_has_finalizer(s, "other"));
  assert_int_equal(s->n_ports, 3);
  assert_string_equal(s->ports[0].name, "http");
  assert_int_equal(s->ports[0].port, 80);
  assert_int_equal(s->ports[0].node_port, 30080);
  assert_string_equal(s->ports[0].target_port, "8080");
  assert_string_equal(s->ports[1].protocol, "UDP");
  assert_string_equal(s->ports[1].target_port, "dns");
  assert_string_equal(s->ports[1].app_protocol, "dns");
  assert_null(s->ports[2].name);
  assert_string_equal(s->ports[2].protocol, "TCP");
  assert_string_equal(s->external_traffic_policy, "Local");
  assert_int_equal(s->health_check_node_port, 32000);
  assert_string_equal(s->session_affinity, "ClientIP");
  assert_int_equal(s->session_affinity_timeout, 600);
  assert_int_equal(s->n_ingress, 2);
  assert_string_equal(s->ingress[0].ip, "9.9.9.9");
  assert_string_equal(s->ingress[0].ip_mode, "VIP");
  assert_null(s->ingress[1].ip);
  assert_string_equal(s->ingress[1].hostname, "lb.example");
  /* All annotations but last-applied-configuration, sorted. */
  assert_int_equal(m->n_annotations, 2);
  assert_string_equal(m->annotations[0].key, "a");
  assert_string_equal(obj_annotation(m, "b"), "2");
  assert_null(obj_annotation(m, CCM_OBJ_LAST_APPLIED));
  assert_string_equal(obj_label(m, "app"), "web");
  obj_unref(m);
}

static void test_refcount(void **state)
{
  struct obj_meta *m = decode_ok(OBJ_KIND_SERVICE, SVC_JSON);

  (void)state;
  assert_ptr_equal(obj_ref(m), m);
  obj_unref(m);
  /* Still valid: one reference left (ASan would catch a free). */
  assert_string_equal(m->name, "web");
  obj_unref(m);
  obj_unref(NULL);
  assert_null(obj_ref(NULL));
}

static void test_malformed(void **state)
{
  static const char *bad[] = {
      "", "{", "[]", "null", "42", "\"str\"", "{\"metadata\":",
      "{\"metadata\":{\"name\":\"n\"}", "{\"metadata\":{\"name\":\"n\"}}}x",
  };
  char err[128];
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(decode_rc(OBJ_KIND_NODE, bad[i], err, sizeof(err)),
                     OBJ_INVALID);
}

static void test_wrong_types(void **state)
{
  static const char *node_bad[] = {
      "{\"metadata\":{\"name\":5}}",
      "{\"metadata\":{\"name\":\"\"}}",
      "{\"metadata\":{\"name\":\"a/b\"}}",
      "{\"metadata\":[]}",
      "{\"spec\":{}}",
      "{\"kind\":\"Service\",\"metadata\":{\"name\":\"n\"}}",
      "{\"metadata\":{\"name\":\"n\",\"labels\":[\"a\"]}}",
      "{\"metadata\":{\"name\":\"n\",\"labels\":{\"a\":1}}}",
      "{\"metadata\":{\"name\":\"n\",\"generation\":1.5}}",
      "{\"metadata\":{\"name\":\"n\"},\"spec\":{\"taints\":{}}}",
      "{\"metadata\":{\"name\":\"n\"},\"spec\":{\"taints\":[\"x\"]}}",
      "{\"metadata\":{\"name\":\"n\"},\"spec\":{\"taints\":[{\"value\":\"v\"}]}}",
      "{\"metadata\":{\"name\":\"n\"},\"spec\":{\"unschedulable\":\"yes\"}}",
      "{\"metadata\":{\"name\":\"n\"},\"spec\":{\"podCIDRs\":[1]}}",
      "{\"metadata\":{\"name\":\"n\"},\"status\":{\"addresses\":[{\"type\":\"X\"}]}}",
      "{\"metadata\":{\"name\":\"n\"},\"status\":{\"conditions\":[{\"type\":"
      "\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"yesterday\"}]}}",
  };
  static const char *svc_bad[] = {
      "{\"metadata\":{\"name\":\"s\"}}",
      "{\"metadata\":{\"name\":\"s\",\"namespace\":\"\"}}",
      "{\"metadata\":{\"name\":\"s\",\"namespace\":\"d\"},\"spec\":{\"ports\":"
      "[{\"port\":\"80\"}]}}",
      "{\"metadata\":{\"name\":\"s\",\"namespace\":\"d\"},\"spec\":{\"ports\":"
      "[{\"port\":70000}]}}",
      "{\"metadata\":{\"name\":\"s\",\"namespace\":\"d\"},\"spec\":{\"ports\":"
      "[{\"nodePort\":30000}]}}",
      "{\"metadata\":{\"name\":\"s\",\"namespace\":\"d\"},\"spec\":{\"ports\":"
      "[{\"port\":80,\"targetPort\":true}]}}",
      "{\"metadata\":{\"name\":\"s\",\"namespace\":\"d\"},\"spec\":{\"type\":1}}",
      "{\"metadata\":{\"name\":\"s\",\"namespace\":\"d\",\"finalizers\":\"f\"}}",
      "{\"metadata\":{\"name\":\"s\",\"namespace\":\"d\"},\"status\":{"
      "\"loadBalancer\":{\"ingress\":{}}}}",
      "{\"metadata\":{\"name\":\"s\",\"namespace\":\"d\"},\"spec\":{"
      "\"healthCheckNodePort\":1e300}}",
  };
  char err[128];
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(node_bad) / sizeof(node_bad[0]); i++) {
    err[0] = '\0';
    assert_int_equal(decode_rc(OBJ_KIND_NODE, node_bad[i], err, sizeof(err)),
                     OBJ_INVALID);
    assert_true(strlen(err) > 0);
  }
  for (i = 0; i < sizeof(svc_bad) / sizeof(svc_bad[0]); i++)
    assert_int_equal(decode_rc(OBJ_KIND_SERVICE, svc_bad[i], err, sizeof(err)),
                     OBJ_INVALID);
  /* JSON null reads as absent, as the API server sends it. */
  assert_int_equal(decode_rc(OBJ_KIND_NODE,
                             "{\"metadata\":{\"name\":\"n\",\"labels\":null},"
                             "\"spec\":{\"taints\":null}}",
                             err, sizeof(err)),
                   OBJ_OK);
}

/* pre + n bytes of 'x' + post, malloc'd. */
static char *with_big(const char *pre, size_t n, const char *post)
{
  size_t a = strlen(pre);
  size_t b = strlen(post);
  char *out = malloc(a + n + b + 1);

  assert_non_null(out);
  memcpy(out, pre, a);
  memset(out + a, 'x', n);
  memcpy(out + a + n, post, b + 1);
  return out;
}

static void test_huge_strings(void **state)
{
  char err[128];
  char *j;
  struct obj_meta *m;

  (void)state;
  j = with_big("{\"metadata\":{\"name\":\"n\",\"labels\":{\"a\":\"",
               CCM_OBJ_MAX_STRING + 1, "\"}}}");
  assert_int_equal(decode_rc(OBJ_KIND_NODE, j, err, sizeof(err)), OBJ_INVALID);
  assert_non_null(strstr(err, "64 KiB"));
  free(j);
  j = with_big("{\"metadata\":{\"name\":\"n\",\"labels\":{\"a\":\"",
               CCM_OBJ_MAX_STRING, "\"}}}");
  assert_int_equal(decode_rc(OBJ_KIND_NODE, j, err, sizeof(err)), OBJ_OK);
  free(j);
  /* The node keeps one annotation: other huge annotations cost nothing. */
  j = with_big("{\"metadata\":{\"name\":\"n\",\"annotations\":{\"a\":\"",
               200000, "\"}}}");
  m = decode_ok(OBJ_KIND_NODE, j);
  assert_true(m->size < 1024);
  obj_unref(m);
  free(j);
  /* last-applied-configuration is never cached, whatever its size. */
  j = with_big("{\"metadata\":{\"name\":\"s\",\"namespace\":\"d\","
               "\"annotations\":{\"kubectl.kubernetes.io/"
               "last-applied-configuration\":\"",
               200000, "\"}}}");
  m = decode_ok(OBJ_KIND_SERVICE, j);
  assert_int_equal(m->n_annotations, 0);
  obj_unref(m);
  free(j);
}

static void test_object_cap(void **state)
{
  /* 20 annotations of 60 KiB each: every string is under the cap, the
   * object is over 1 MiB. */
  size_t per = 60 * 1024;
  size_t cap = 20 * (per + 32) + 256;
  char *j = malloc(cap);
  size_t o = 0;
  char err[128];
  int i;

  (void)state;
  assert_non_null(j);
  o += (size_t)snprintf(j + o, cap - o,
                        "{\"metadata\":{\"name\":\"s\",\"namespace\":\"d\","
                        "\"annotations\":{");
  for (i = 0; i < 20; i++) {
    o += (size_t)snprintf(j + o, cap - o, "%s\"k%d\":\"", i ? "," : "", i);
    memset(j + o, 'y', per);
    o += per;
    j[o++] = '"';
  }
  snprintf(j + o, cap - o, "}}}");
  assert_int_equal(decode_rc(OBJ_KIND_SERVICE, j, err, sizeof(err)),
                   OBJ_INVALID);
  assert_non_null(strstr(err, "1 MiB"));
  free(j);
}

static void test_invalid_utf8(void **state)
{
  /* \xff is never valid; \xc3\x28 is a broken 2-byte sequence; \xed\xa0\x80
   * is a surrogate; \xc0\xaf an overlong '/'. */
  const char *j = "{\"metadata\":{\"name\":\"n\xff\",\"labels\":{\"k\xc3\x28\":"
                  "\"\xed\xa0\x80\",\"ok\":\"caf\xc3\xa9\"}},"
                  "\"spec\":{\"providerID\":\"\xc0\xaf\"}}";
  struct obj_meta *m = decode_ok(OBJ_KIND_NODE, j);
  const struct obj_node *n = obj_as_node(m);
  bool valid = true;

  (void)state;
  assert_string_equal(m->name, "n\xef\xbf\xbd");
  assert_string_equal(obj_label(m, "k\xef\xbf\xbd("),
                      "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  assert_string_equal(obj_label(m, "ok"), "caf\xc3\xa9");
  assert_string_equal(n->provider_id, "\xef\xbf\xbd\xef\xbf\xbd");
  obj_unref(m);
  assert_int_equal(obj_utf8_fixed_len("abc", 3, &valid), 3);
  assert_true(valid);
  assert_int_equal(obj_utf8_fixed_len("\xf4\x90\x80\x80", 4, &valid), 12);
  assert_false(valid);
  assert_int_equal(obj_utf8_fixed_len("\xf0\x9f\x98\x80", 4, &valid), 4);
  assert_true(valid);
}

/* More member lookups and string copies than the decoder tapes (its
 * second pass replays the first's up to a limit, then looks up again):
 * every port, and the repaired strings among them, must come out right. */
static void test_past_the_tape(void **state)
{
  enum { N = 300 };
  size_t cap = 64 * N + 256, len = 0;
  char *j = malloc(cap);
  struct obj_meta *m;
  const struct obj_service *s;
  char want[32];
  int i;

  (void)state;
  assert_non_null(j);
  len += (size_t)snprintf(j + len, cap - len,
                          "{\"metadata\":{\"name\":\"many\",\"namespace\":"
                          "\"d\"},\"spec\":{\"type\":\"LoadBalancer\","
                          "\"ports\":[");
  for (i = 0; i < N; i++)
    len += (size_t)snprintf(j + len, cap - len,
                            "%s{\"name\":\"p%d%s\",\"port\":%d,"
                            "\"nodePort\":%d,\"targetPort\":%d}",
                            i ? "," : "", i, i % 7 == 0 ? "\xff" : "",
                            1 + i, 30000 + i, 8000 + i);
  snprintf(j + len, cap - len, "]},\"status\":{\"loadBalancer\":{"
           "\"ingress\":[{\"ip\":\"1.2.3.4\"}]}}}");
  m = decode_ok(OBJ_KIND_SERVICE, j);
  s = obj_as_service(m);
  assert_int_equal(s->n_ports, N);
  for (i = 0; i < N; i++) {
    snprintf(want, sizeof want, "p%d%s", i, i % 7 == 0 ? "\xef\xbf\xbd" : "");
    assert_string_equal(s->ports[i].name, want);
    assert_int_equal(s->ports[i].port, 1 + i);
    assert_int_equal(s->ports[i].node_port, 30000 + i);
    snprintf(want, sizeof want, "%d", 8000 + i);
    assert_string_equal(s->ports[i].target_port, want);
  }
  assert_int_equal(s->n_ingress, 1);
  assert_string_equal(s->ingress[0].ip, "1.2.3.4");
  obj_unref(m);
  free(j);
}

static void test_time(void **state)
{
  int64_t t = 0;

  (void)state;
  assert_int_equal(obj_parse_time("1970-01-01T00:00:00Z", &t), 0);
  assert_int_equal(t, 0);
  assert_int_equal(obj_parse_time("2024-02-29T12:00:00.123456Z", &t), 0);
  assert_int_equal(t, 1709208000);
  assert_int_equal(obj_parse_time("2024-02-29T14:00:00+02:00", &t), 0);
  assert_int_equal(t, 1709208000);
  assert_int_equal(obj_parse_time("2024-02-29T12:00:00", &t), -1);
  assert_int_equal(obj_parse_time("2024-13-01T00:00:00Z", &t), -1);
  assert_int_equal(obj_parse_time("2024-01-01T00:00:00Zjunk", &t), -1);
  assert_int_equal(obj_parse_time(NULL, &t), -1);
}

static void test_known_keys(void **state)
{
  const char *const *keys = NULL;
  size_t n = obj_known_keys(&keys);
  size_t i;
  struct obj_meta *m = decode_ok(OBJ_KIND_NODE, NODE_JSON);

  (void)state;
  assert_true(n > 10);
  for (i = 0; i < n; i++) {
    /* Sorted, so every entry is found by the binary search. */
    if (i > 0)
      assert_true(strcmp(keys[i - 1], keys[i]) < 0);
    assert_ptr_equal(obj_known_key(keys[i]), keys[i]);
  }
  assert_null(obj_known_key("zz"));
  assert_null(obj_known_key(NULL));
  /* A known key points at the constant; an unknown one is copied. */
  assert_ptr_equal(m->labels[1].key,
                   obj_known_key("node.kubernetes.io/instance-type"));
  assert_string_equal(m->labels[2].key, "zz");
  obj_unref(m);
}

static void test_alloc_failure(void **state)
{
  struct obj_meta *m = NULL;
  char err[64];

  (void)state;
  /* cJSON parses with its own allocator; this fails our one allocation. */
  mem_fail_after(0);
  assert_int_equal(obj_decode_text(OBJ_KIND_SERVICE, SVC_JSON,
                                   strlen(SVC_JSON), &m, err, sizeof(err)),
                   OBJ_NOMEM);
  mem_fail_after(-1);
  assert_null(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_node_fields),
      cmocka_unit_test(test_node_minimal),
      cmocka_unit_test(test_service_fields),
      cmocka_unit_test(test_refcount),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_wrong_types),
      cmocka_unit_test(test_huge_strings),
      cmocka_unit_test(test_object_cap),
      cmocka_unit_test(test_invalid_utf8),
      cmocka_unit_test(test_past_the_tape),
      cmocka_unit_test(test_time),
      cmocka_unit_test(test_known_keys),
      cmocka_unit_test(test_alloc_failure),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
