/*
 * test_service_logic.c: the service controller's pure decisions: which
 * Services are ours, needsUpdate, the backend-node predicates with the
 * exclusion label's boolean parsing, the default load-balancer name and
 * its check, ingress comparison, branch and finalizer choices.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "controllers/service_logic.h"
#include "controllers/service_nodes.h"
#include "kube/objects.h"
#include "kube/store.h"

static struct obj_meta *decode(enum obj_kind kind, const char *json)
{
  struct obj_meta *m = NULL;
  char err[256];

  if (obj_decode_text(kind, json, strlen(json), &m, err, sizeof(err)) !=
      OBJ_OK) {
    fprintf(stderr, "decode: %s\n%s\n", err, json);
    return NULL;
  }
  return m;
}

/* A Service from fragments: metadata extra, spec (whole), status. */
static struct obj_meta *svc(const char *meta_extra, const char *spec,
                            const char *status)
{
  char buf[4096];

  snprintf(buf, sizeof(buf),
           "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"s\",\"uid\":"
           "\"12345678-90ab-cdef-1234-567890abcdef\"%s%s},\"spec\":%s%s%s}",
           meta_extra ? "," : "", meta_extra ? meta_extra : "", spec,
           status ? ",\"status\":" : "", status ? status : "");
  return decode(OBJ_KIND_SERVICE, buf);
}

static struct obj_meta *node(const char *name, const char *meta_extra,
                             const char *spec)
{
  char buf[2048];

  snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"%s\",\"uid\":\"u-%s\""
           "%s%s},\"spec\":%s}", name, name, meta_extra ? "," : "",
           meta_extra ? meta_extra : "", spec ? spec : "{}");
  return decode(OBJ_KIND_NODE, buf);
}

#define LB_SPEC "{\"type\":\"LoadBalancer\",\"ports\":[{\"name\":\"http\"," \
  "\"protocol\":\"TCP\",\"port\":80,\"nodePort\":30080,\"targetPort\":8080}]}"
#define FIN "\"finalizers\":[\"service.kubernetes.io/load-balancer-cleanup\"]"

/* ---- booleans and node predicates ---- */

static void test_parse_bool(void **state)
{
  static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
  static const char *const bad[] = {"", "yes", "no", "tRUE", "2", " true",
                                    "on"};
  bool b;
  size_t i;

  (void)state;
  for (i = 0; i < 6; i++) {
    b = false;
    assert_int_equal(svc_parse_bool(t[i], &b), 0);
    assert_true(b);
    b = true;
    assert_int_equal(svc_parse_bool(f[i], &b), 0);
    assert_false(b);
  }
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(svc_parse_bool(bad[i], &b), -1);
  assert_int_equal(svc_parse_bool(NULL, &b), -1);
}

static void label_case(const char *value, bool included)
{
  char meta[256];
  struct obj_meta *n;

  snprintf(meta, sizeof(meta), "\"labels\":{\"node.kubernetes.io/exclude-"
           "from-external-load-balancers\":\"%s\"}", value);
  n = node("n1", meta, NULL);
  assert_non_null(n);
  assert_int_equal(svc_node_included(obj_as_node(n)), included);
  assert_int_equal(svc_node_is_backend(obj_as_node(n)), included);
  obj_unref(n);
}

static void test_exclusion_label(void **state)
{
  struct obj_meta *n;

  (void)state;
  n = node("n1", NULL, NULL);
  assert_true(svc_node_included(obj_as_node(n)));
  obj_unref(n);
  /* Only a value that parses as false keeps the node. */
  label_case("false", true);
  label_case("0", true);
  label_case("f", true);
  label_case("F", true);
  label_case("FALSE", true);
  label_case("False", true);
  label_case("", false);
  label_case("true", false);
  label_case("True", false);
  label_case("1", false);
  label_case("garbage", false);
  label_case("no", false);
}

static void test_backend_predicates(void **state)
{
  struct obj_meta *n;

  (void)state;
  /* Autoscaler taint excludes, whatever its effect. */
  n = node("n1", NULL, "{\"taints\":[{\"key\":\"ToBeDeletedByClusterAutoscaler"
           "\",\"value\":\"1\",\"effect\":\"PreferNoSchedule\"}]}");
  assert_false(svc_node_is_backend(obj_as_node(n)));
  obj_unref(n);
  /* Being deleted excludes. */
  n = node("n1", "\"deletionTimestamp\":\"2024-01-02T03:04:05Z\"", NULL);
  assert_false(svc_node_is_backend(obj_as_node(n)));
  obj_unref(n);
  /* Readiness, schedulability, other taints and a missing providerID
   * do not matter. */
  n = decode(OBJ_KIND_NODE,
             "{\"metadata\":{\"name\":\"n1\"},\"spec\":{\"unschedulable\":"
             "true,\"taints\":[{\"key\":\"node.cloudprovider.kubernetes.io/"
             "uninitialized\",\"effect\":\"NoSchedule\"}]},\"status\":{"
             "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}]}}");
  assert_non_null(n);
  assert_true(svc_node_is_backend(obj_as_node(n)));
  obj_unref(n);
  assert_false(svc_node_is_backend(NULL));
}

static void test_node_update_triggers(void **state)
{
  struct obj_meta *a = node("n1", NULL, "{\"providerID\":\"lab://n1\"}");
  struct obj_meta *b = node("n1", "\"labels\":{\"x\":\"y\"}",
                            "{\"providerID\":\"lab://n1\"}");
  struct obj_meta *c = node("n1", NULL, "{\"providerID\":\"lab://n2\"}");
  struct obj_meta *d = node("n1", "\"labels\":{\"node.kubernetes.io/exclude-"
                            "from-external-load-balancers\":\"true\"}",
                            "{\"providerID\":\"lab://n1\"}");
  struct obj_meta *e = node("n1", "\"deletionTimestamp\":\"2024-01-02T03:04:"
                            "05Z\"", "{\"providerID\":\"lab://n1\"}");
  struct obj_meta *f = node("n1", NULL, "{\"providerID\":\"lab://n1\","
                            "\"taints\":[{\"key\":\"ToBeDeletedByCluster"
                            "Autoscaler\",\"effect\":\"NoSchedule\"}]}");

  (void)state;
  assert_false(svc_node_update_triggers(obj_as_node(a), obj_as_node(a)));
  assert_false(svc_node_update_triggers(obj_as_node(a), obj_as_node(b)));
  assert_true(svc_node_update_triggers(obj_as_node(a), obj_as_node(c)));
  assert_true(svc_node_update_triggers(obj_as_node(a), obj_as_node(d)));
  assert_true(svc_node_update_triggers(obj_as_node(d), obj_as_node(a)));
  /* Upstream: deletion and the autoscaler taint alone do not trigger. */
  assert_false(svc_node_update_triggers(obj_as_node(a), obj_as_node(e)));
  assert_false(svc_node_update_triggers(obj_as_node(a), obj_as_node(f)));
  obj_unref(a);
  obj_unref(b);
  obj_unref(c);
  obj_unref(d);
  obj_unref(e);
  obj_unref(f);
}

/* ---- which Services, branch, finalizer ---- */

static void test_wants_and_cleanup(void **state)
{
  struct obj_meta *lb = svc(NULL, LB_SPEC, NULL);
  struct obj_meta *cip = svc(NULL, "{\"type\":\"ClusterIP\"}", NULL);
  struct obj_meta *cip_fin = svc(FIN, "{\"type\":\"ClusterIP\"}", NULL);
  struct obj_meta *del_fin = svc(FIN ",\"deletionTimestamp\":\"2024-01-02T0"
                                 "3:04:05Z\"", LB_SPEC, NULL);
  struct obj_meta *other = svc(NULL, "{\"type\":\"LoadBalancer\","
                               "\"loadBalancerClass\":\"example.com/x\"}",
                               NULL);

  (void)state;
  assert_true(svc_wants_lb(obj_as_service(lb), true));
  assert_false(svc_wants_lb(obj_as_service(lb), false));
  assert_false(svc_wants_lb(obj_as_service(cip), true));
  assert_false(svc_needs_cleanup(obj_as_service(lb)));
  assert_false(svc_needs_cleanup(obj_as_service(cip)));
  assert_true(svc_needs_cleanup(obj_as_service(cip_fin)));
  assert_true(svc_needs_cleanup(obj_as_service(del_fin)));

  assert_true(svc_should_enqueue(obj_as_service(lb), true));
  assert_false(svc_should_enqueue(obj_as_service(cip), true));
  assert_true(svc_should_enqueue(obj_as_service(cip_fin), true));
  /* Another class (not served): nothing at all. */
  assert_false(svc_should_enqueue(obj_as_service(other), false));
  assert_int_equal(svc_branch_for(obj_as_service(other), false),
                   SVC_BRANCH_NONE);

  assert_int_equal(svc_branch_for(obj_as_service(lb), true),
                   SVC_BRANCH_ENSURE);
  assert_int_equal(svc_branch_for(obj_as_service(cip_fin), true),
                   SVC_BRANCH_DELETE);
  assert_int_equal(svc_branch_for(obj_as_service(del_fin), true),
                   SVC_BRANCH_DELETE);
  /* Upstream: a key that no longer wants an LB runs the delete branch. */
  assert_int_equal(svc_branch_for(obj_as_service(cip), true),
                   SVC_BRANCH_DELETE);
  assert_int_equal(svc_branch_for(NULL, true), SVC_BRANCH_NONE);
  obj_unref(lb);
  obj_unref(cip);
  obj_unref(cip_fin);
  obj_unref(del_fin);
  obj_unref(other);
}

static void test_finalizer_decisions(void **state)
{
  struct obj_meta *bare = svc(NULL, LB_SPEC, NULL);
  struct obj_meta *fin_only = svc(FIN, LB_SPEC, NULL);
  struct obj_meta *both = svc(FIN ",\"annotations\":{\"ccmhost.io/load-"
                              "balancer-name\":\"x\"}", LB_SPEC, NULL);
  struct obj_meta *cls = svc(FIN ",\"annotations\":{\"ccmhost.io/load-"
                             "balancer-name\":\"x\"}",
                             "{\"type\":\"LoadBalancer\",\"loadBalancer"
                             "Class\":\"c\"}", NULL);

  (void)state;
  assert_true(svc_finalizer_add_needed(obj_as_service(bare)));
  /* Our finalizer from before the name record: record it now. */
  assert_true(svc_finalizer_add_needed(obj_as_service(fin_only)));
  assert_false(svc_finalizer_add_needed(obj_as_service(both)));
  /* A class Service also records its class. */
  assert_true(svc_finalizer_add_needed(obj_as_service(cls)));
  /* Only a confirmed delete lets the finalizer go. */
  assert_true(svc_finalizer_remove_allowed(CCM_OK));
  assert_false(svc_finalizer_remove_allowed(CCM_ERR_INTERNAL));
  assert_false(svc_finalizer_remove_allowed(CCM_ERR_RETRY));
  assert_false(svc_finalizer_remove_allowed(CCM_ERR_THROTTLED));
  assert_false(svc_finalizer_remove_allowed(CCM_ERR_AUTH));
  obj_unref(bare);
  obj_unref(fin_only);
  obj_unref(both);
  obj_unref(cls);
}

/* ---- needsUpdate ---- */

static bool nu(const char *meta_a, const char *spec_a, const char *meta_b,
               const char *spec_b)
{
  struct obj_meta *a = svc(meta_a, spec_a, NULL);
  struct obj_meta *b = svc(meta_b, spec_b, NULL);
  bool r;

  assert_non_null(a);
  assert_non_null(b);
  r = svc_needs_update(obj_as_service(a), true, obj_as_service(b), true);
  obj_unref(a);
  obj_unref(b);
  return r;
}

#define LBX(extra) "{\"type\":\"LoadBalancer\"," extra "}"
#define PORT(x) "\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\"," x "}]"

static void test_needs_update(void **state)
{
  (void)state;
  assert_false(nu(NULL, LB_SPEC, NULL, LB_SPEC));
  /* Neither wants an LB. */
  assert_false(nu(NULL, "{\"type\":\"ClusterIP\"}", NULL,
                  "{\"type\":\"NodePort\"}"));
  /* wants-LB flips. */
  assert_true(nu(NULL, LB_SPEC, NULL, "{\"type\":\"ClusterIP\"}"));
  assert_true(nu(NULL, "{\"type\":\"ClusterIP\"}", NULL, LB_SPEC));
  /* Source ranges (ordered). */
  assert_true(nu(NULL, LBX("\"loadBalancerSourceRanges\":[\"10.0.0.0/8\"]"),
                 NULL, LBX("\"loadBalancerSourceRanges\":[\"10.0.0.0/16\"]")));
  assert_true(nu(NULL, LBX("\"loadBalancerSourceRanges\":[\"a\",\"b\"]"),
                 NULL, LBX("\"loadBalancerSourceRanges\":[\"b\",\"a\"]")));
  /* Ports: each field, and the count. */
  assert_true(nu(NULL, LBX(PORT("\"port\":80")), NULL,
                 LBX(PORT("\"port\":81"))));
  assert_true(nu(NULL, LBX(PORT("\"port\":80,\"nodePort\":1")), NULL,
                 LBX(PORT("\"port\":80,\"nodePort\":2"))));
  assert_true(nu(NULL, LBX(PORT("\"port\":80,\"targetPort\":1")), NULL,
                 LBX(PORT("\"port\":80,\"targetPort\":\"web\""))));
  assert_true(nu(NULL, LBX(PORT("\"port\":80")), NULL,
                 LBX(PORT("\"port\":80,\"appProtocol\":\"http\""))));
  assert_true(nu(NULL, LBX("\"ports\":[{\"port\":80,\"protocol\":\"TCP\"}]"),
                 NULL,
                 LBX("\"ports\":[{\"port\":80,\"protocol\":\"UDP\"}]")));
  assert_true(nu(NULL, LBX("\"ports\":[{\"port\":80}]"), NULL,
                 LBX("\"ports\":[{\"port\":80},{\"port\":81}]")));
  /* Affinity, LB IP, external IPs, eTP, health check port, families. */
  assert_true(nu(NULL, LBX("\"sessionAffinity\":\"None\""), NULL,
                 LBX("\"sessionAffinity\":\"ClientIP\"")));
  assert_true(nu(NULL, LBX("\"sessionAffinity\":\"ClientIP\","
                           "\"sessionAffinityConfig\":{\"clientIP\":{"
                           "\"timeoutSeconds\":10}}"),
                 NULL, LBX("\"sessionAffinity\":\"ClientIP\","
                           "\"sessionAffinityConfig\":{\"clientIP\":{"
                           "\"timeoutSeconds\":20}}")));
  assert_true(nu(NULL, LBX("\"loadBalancerIP\":\"1.2.3.4\""), NULL,
                 LBX("\"loadBalancerIP\":\"1.2.3.5\"")));
  assert_true(nu(NULL, LBX("\"externalIPs\":[\"1.1.1.1\",\"2.2.2.2\"]"), NULL,
                 LBX("\"externalIPs\":[\"2.2.2.2\",\"1.1.1.1\"]")));
  assert_true(nu(NULL, LBX("\"externalTrafficPolicy\":\"Cluster\""), NULL,
                 LBX("\"externalTrafficPolicy\":\"Local\"")));
  assert_true(nu(NULL, LBX("\"healthCheckNodePort\":30001"), NULL,
                 LBX("\"healthCheckNodePort\":30002")));
  assert_true(nu(NULL, LBX("\"ipFamilies\":[\"IPv4\"]"), NULL,
                 LBX("\"ipFamilies\":[\"IPv4\",\"IPv6\"]")));
  /* Annotations: any difference... */
  assert_true(nu("\"annotations\":{\"a\":\"1\"}", LB_SPEC,
                 "\"annotations\":{\"a\":\"2\"}", LB_SPEC));
  assert_true(nu(NULL, LB_SPEC, "\"annotations\":{\"a\":\"1\"}", LB_SPEC));
  /* ...except ccm-host's own records (deliberate difference). */
  assert_false(nu(NULL, LB_SPEC, "\"annotations\":{\"ccmhost.io/load-"
                  "balancer-name\":\"x\"}", LB_SPEC));
  assert_false(nu("\"annotations\":{\"a\":\"1\"}", LB_SPEC,
                  "\"annotations\":{\"a\":\"1\",\"ccmhost.io/load-balancer-"
                  "class\":\"c\",\"ccmhost.io/load-balancer-name\":\"x\"}",
                  LB_SPEC));
  /* Not triggers: labels, selector, finalizers, ipFamilyPolicy,
   * internalTrafficPolicy, allocateLoadBalancerNodePorts, family order. */
  assert_false(nu("\"labels\":{\"a\":\"1\"}", LB_SPEC,
                  "\"labels\":{\"a\":\"2\"}", LB_SPEC));
  assert_false(nu(NULL, LB_SPEC, FIN, LB_SPEC));
  assert_false(nu(NULL, LBX("\"selector\":{\"a\":\"1\"}"), NULL,
                  LBX("\"selector\":{\"a\":\"2\"}")));
  assert_false(nu(NULL, LBX("\"ipFamilyPolicy\":\"SingleStack\""), NULL,
                  LBX("\"ipFamilyPolicy\":\"PreferDualStack\"")));
  assert_false(nu(NULL, LBX("\"internalTrafficPolicy\":\"Cluster\""), NULL,
                  LBX("\"internalTrafficPolicy\":\"Local\"")));
  assert_false(nu(NULL, LBX("\"allocateLoadBalancerNodePorts\":true"), NULL,
                  LBX("\"allocateLoadBalancerNodePorts\":false")));
  assert_false(nu(NULL, LBX("\"ipFamilies\":[\"IPv4\",\"IPv6\"]"), NULL,
                  LBX("\"ipFamilies\":[\"IPv6\",\"IPv4\"]")));
}

static void test_needs_update_uid_and_status(void **state)
{
  struct obj_meta *a = svc(NULL, LB_SPEC, NULL);
  struct obj_meta *b = decode(OBJ_KIND_SERVICE,
                              "{\"metadata\":{\"namespace\":\"ns\",\"name\":"
                              "\"s\",\"uid\":\"other\"},\"spec\":" LB_SPEC
                              "}");
  struct obj_meta *c = svc(NULL, LB_SPEC, "{\"loadBalancer\":{\"ingress\":"
                           "[{\"ip\":\"1.2.3.4\"}]}}");

  (void)state;
  assert_true(svc_needs_update(obj_as_service(a), true, obj_as_service(b),
                               true));
  assert_false(svc_needs_update(obj_as_service(a), true, obj_as_service(c),
                                true));
  /* The class became served (a provider was configured for it). */
  assert_true(svc_needs_update(obj_as_service(a), false, obj_as_service(a),
                               true));
  obj_unref(a);
  obj_unref(b);
  obj_unref(c);
}

/* ---- names ---- */

static void test_default_name(void **state)
{
  char buf[64];

  (void)state;
  assert_int_equal(svc_default_lb_name("12345678-90ab-cdef-1234-567890abcdef",
                                       buf, sizeof(buf)), 32);
  assert_string_equal(buf, "a1234567890abcdef1234567890abcde");
  assert_int_equal(svc_default_lb_name("abc", buf, sizeof(buf)), 4);
  assert_string_equal(buf, "aabc");
  assert_int_equal(svc_default_lb_name("", buf, sizeof(buf)), -1);
  assert_int_equal(svc_default_lb_name(NULL, buf, sizeof(buf)), -1);
  assert_int_equal(svc_default_lb_name("abc", buf, 10), -1);
}

static void test_name_rules(void **state)
{
  const struct ccm_name_rules r = {sizeof(r), 3, 10,
                                   "abcdefghijklmnopqrstuvwxyz0123456789-",
                                   "abcdefghijklmnopqrstuvwxyz",
                                   "abcdefghijklmnopqrstuvwxyz0123456789"};
  char why[200];

  (void)state;
  assert_int_equal(svc_lb_name_check("abc-1", &r, why, sizeof(why)), 0);
  assert_int_equal(svc_lb_name_check("ab", &r, why, sizeof(why)), -1);
  assert_int_equal(svc_lb_name_check("abcdefghijk", &r, why, sizeof(why)),
                   -1);
  assert_int_equal(svc_lb_name_check("1abc", &r, why, sizeof(why)), -1);
  assert_int_equal(svc_lb_name_check("abc-", &r, why, sizeof(why)), -1);
  assert_int_equal(svc_lb_name_check("aBc", &r, why, sizeof(why)), -1);
  assert_non_null(strstr(why, "'B'"));
  assert_int_equal(svc_lb_name_check("", &r, why, sizeof(why)), -1);
  assert_int_equal(svc_lb_name_check("Any/Thing", NULL, why, sizeof(why)),
                   0);
  assert_int_equal(svc_lb_name_check(NULL, NULL, why, sizeof(why)), -1);
}

/* ---- ingress ---- */

static void test_ingress_equal(void **state)
{
  struct obj_meta *m = svc(NULL, LB_SPEC, "{\"loadBalancer\":{\"ingress\":["
                           "{\"ip\":\"1.2.3.4\",\"ipMode\":\"VIP\"},"
                           "{\"hostname\":\"lb.example\"}]}}");
  const struct obj_service *s = obj_as_service(m);
  struct lb_ingress items[2] = {{"1.2.3.4", NULL}, {NULL, "lb.example"}};
  struct lb_ingress swapped[2] = {{NULL, "lb.example"}, {"1.2.3.4", NULL}};
  struct ccm_lb_status st = {2, items};
  struct ccm_lb_status sw = {2, swapped};
  struct ccm_lb_status one = {1, items};
  struct ccm_lb_status empty = {0, NULL};

  (void)state;
  assert_non_null(s);
  assert_int_equal(s->n_ingress, 2);
  /* ipMode is not compared; order is. */
  assert_true(svc_ingress_equal(s->ingress, s->n_ingress, &st));
  assert_false(svc_ingress_equal(s->ingress, s->n_ingress, &sw));
  assert_false(svc_ingress_equal(s->ingress, s->n_ingress, &one));
  assert_false(svc_ingress_equal(s->ingress, s->n_ingress, &empty));
  assert_true(svc_ingress_equal(NULL, 0, &empty));
  assert_true(svc_ingress_equal(NULL, 0, NULL));
  items[0].ip = (char *)"1.2.3.5";
  assert_false(svc_ingress_equal(s->ingress, s->n_ingress, &st));
  obj_unref(m);
}

/* ---- node snapshot ---- */

static void put(struct store *st, struct obj_meta *m)
{
  int err = 0;
  struct obj_meta *old;

  assert_non_null(m);
  old = store_put(st, m, &err);
  assert_int_equal(err, 0);
  obj_unref(old);
}

static void test_node_snapshot(void **state)
{
  struct store *st = store_new();
  struct svc_nodes *a = NULL, *b = NULL;
  char names[256];

  (void)state;
  put(st, node("n2", NULL, "{\"providerID\":\"p://2\"}"));
  put(st, node("n1", "\"labels\":{\"zone\":\"z\"}",
               "{\"providerID\":\"p://1\"}"));
  put(st, node("n3", "\"labels\":{\"node.kubernetes.io/exclude-from-"
               "external-load-balancers\":\"true\"}", NULL));
  assert_int_equal(svc_nodes_build(st, &a), 0);
  assert_int_equal(a->n, 2);
  assert_string_equal(a->list.nodes[0]->name, "n1");
  assert_string_equal(a->list.nodes[1]->name, "n2");
  assert_int_equal(a->list.nodes[0]->n_labels, 1);
  assert_string_equal(a->list.nodes[0]->labels[0]->key, "zone");
  assert_string_equal(a->list.nodes[1]->provider_id, "p://2");
  svc_nodes_names(a, 1, names, sizeof(names));
  assert_string_equal(names, "[n1 <1 more>]");
  svc_nodes_names(a, 20, names, sizeof(names));
  assert_string_equal(names, "[n1 n2]");

  assert_int_equal(svc_nodes_build(st, &b), 0);
  assert_true(svc_nodes_same(a, b));
  svc_nodes_unref(b);
  /* A providerID change is a different set. */
  put(st, node("n2", NULL, "{\"providerID\":\"p://2b\"}"));
  assert_int_equal(svc_nodes_build(st, &b), 0);
  assert_false(svc_nodes_same(a, b));
  svc_nodes_unref(b);
  /* Exclusion label removed: n3 joins. */
  put(st, node("n2", NULL, "{\"providerID\":\"p://2\"}"));
  put(st, node("n3", NULL, NULL));
  assert_int_equal(svc_nodes_build(st, &b), 0);
  assert_int_equal(b->n, 3);
  assert_false(svc_nodes_same(a, b));
  assert_false(svc_nodes_same(NULL, b));
  svc_nodes_unref(b);
  assert_true(svc_nodes_same(NULL, NULL));
  svc_nodes_unref(a);
  store_free(st);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parse_bool),
    cmocka_unit_test(test_exclusion_label),
    cmocka_unit_test(test_backend_predicates),
    cmocka_unit_test(test_node_update_triggers),
    cmocka_unit_test(test_wants_and_cleanup),
    cmocka_unit_test(test_finalizer_decisions),
    cmocka_unit_test(test_needs_update),
    cmocka_unit_test(test_needs_update_uid_and_status),
    cmocka_unit_test(test_default_name),
    cmocka_unit_test(test_name_rules),
    cmocka_unit_test(test_ingress_equal),
    cmocka_unit_test(test_node_snapshot),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
