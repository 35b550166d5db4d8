/*
 * test_service_logic.c: the service controller's pure decisions: which
 * Services are ours, needsUpdate, the backend-node predicates with the
 * exclusion label's boolean parsing, the default load-balancer name and
 * its check, ingress comparison, branch and finalizer choices, and the
 * input fingerprint (stable across order, changed by every input).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "controllers/service_fprint.h"
#include "controllers/service_int.h"
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
  assert_string_equal(a->digest, b->digest);
  svc_nodes_unref(b);
  /* A policy that keeps every node shares the snapshot and its digest;
   * one that drops a node gets its own set and digest. */
  {
    bool keep[2] = {true, true};
    char want[CCM_SVC_FPRINT_HEX];

    assert_int_equal(svc_nodes_subset(a, keep, &b), 0);
    assert_ptr_equal(a, b);
    svc_nodes_unref(b);
    keep[0] = false;
    assert_int_equal(svc_nodes_subset(a, keep, &b), 0);
    assert_int_equal(b->n, 1);
    assert_string_equal(b->list.nodes[0]->name, "n2");
    assert_string_not_equal(a->digest, b->digest);
    assert_int_equal(svc_fprint_nodes(&b->list, want), 0);
    assert_string_equal(b->digest, want);
    svc_nodes_unref(b);
  }
  /* A providerID change is a different set. */
  put(st, node("n2", NULL, "{\"providerID\":\"p://2b\"}"));
  assert_int_equal(svc_nodes_build(st, &b), 0);
  assert_false(svc_nodes_same(a, b));
  assert_string_not_equal(a->digest, b->digest);
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


/* ---- input fingerprint ---- */

/* A provider input with every field set; the test mutates copies. */
struct fp_fix {
  struct ccm_service_port ports[2];
  const struct ccm_service_port *port_ptrs[2];
  const char *ranges[2];
  uint32_t fams[2];
  const char *list[2];
  struct ccm_option_value opts[3];
  const struct ccm_option_value *opt_ptrs[3];
  struct ccm_kv tags[2];
  const struct ccm_kv *tag_ptrs[2];
  struct ccm_node_address addrs[2][2];
  const struct ccm_node_address *addr_ptrs[2][2];
  struct ccm_kv labels[2][2];
  const struct ccm_kv *label_ptrs[2][2];
  struct ccm_node nodes[2];
  const struct ccm_node *node_ptrs[2];
  struct ccm_node_list list_nodes;
  struct ccm_service svc;
};

static void fp_fix_init(struct fp_fix *f)
{
  int i, j;

  memset(f, 0, sizeof(*f));
  for (i = 0; i < 2; i++) {
    f->ports[i].struct_size = sizeof(f->ports[i]);
    f->ports[i].name = i ? "https" : "http";
    f->ports[i].protocol = CCM_PROTO_TCP;
    f->ports[i].port = (uint16_t)(i ? 443 : 80);
    f->ports[i].node_port = (uint16_t)(30000 + i);
    f->port_ptrs[i] = &f->ports[i];
  }
  f->ranges[0] = "10.0.0.0/8";
  f->ranges[1] = "192.168.0.0/16";
  f->fams[0] = CCM_IPV4;
  f->fams[1] = CCM_IPV6;
  f->list[0] = "x";
  f->list[1] = "y";
  f->opts[0] = (struct ccm_option_value){sizeof(f->opts[0]), "idle",
                                         CCM_OPT_INT, NULL, 60, false, NULL,
                                         0};
  f->opts[1] = (struct ccm_option_value){sizeof(f->opts[1]), "internal",
                                         CCM_OPT_BOOL, NULL, 0, true, NULL,
                                         0};
  f->opts[2] = (struct ccm_option_value){sizeof(f->opts[2]), "subnets",
                                         CCM_OPT_STRING_LIST, NULL, 0, false,
                                         f->list, 2};
  for (i = 0; i < 3; i++)
    f->opt_ptrs[i] = &f->opts[i];
  f->tags[0] = (struct ccm_kv){sizeof(f->tags[0]), "team", "a"};
  f->tags[1] = (struct ccm_kv){sizeof(f->tags[1]), "env", "prod"};
  f->tag_ptrs[0] = &f->tags[0];
  f->tag_ptrs[1] = &f->tags[1];
  for (i = 0; i < 2; i++) {
    for (j = 0; j < 2; j++) {
      f->addrs[i][j].struct_size = sizeof(f->addrs[i][j]);
      f->addrs[i][j].type = j ? CCM_ADDR_HOSTNAME : CCM_ADDR_INTERNAL_IP;
      f->addrs[i][j].address = i ? (j ? "n2" : "10.0.0.2")
                                 : (j ? "n1" : "10.0.0.1");
      f->addr_ptrs[i][j] = &f->addrs[i][j];
      f->labels[i][j].struct_size = sizeof(f->labels[i][j]);
      f->labels[i][j].key = j ? "zone" : "arch";
      f->labels[i][j].value = j ? "z1" : "amd64";
      f->label_ptrs[i][j] = &f->labels[i][j];
    }
    f->nodes[i].struct_size = sizeof(f->nodes[i]);
    f->nodes[i].name = i ? "n2" : "n1";
    f->nodes[i].uid = i ? "u2" : "u1";
    f->nodes[i].provider_id = i ? "p://2" : "p://1";
    f->nodes[i].addresses = f->addr_ptrs[i];
    f->nodes[i].n_addresses = 2;
    f->nodes[i].labels = f->label_ptrs[i];
    f->nodes[i].n_labels = 2;
    f->node_ptrs[i] = &f->nodes[i];
  }
  f->list_nodes.struct_size = sizeof(f->list_nodes);
  f->list_nodes.nodes = f->node_ptrs;
  f->list_nodes.n_nodes = 2;
  f->svc.struct_size = sizeof(f->svc);
  f->svc.cluster_name = "c";
  f->svc.namespace_ = "ns";
  f->svc.name = "s";
  f->svc.uid = "uid-1";
  f->svc.lb_name = "a1234";
  f->svc.lb_class = NULL;
  f->svc.load_balancer_ip = NULL;
  f->svc.ports = f->port_ptrs;
  f->svc.n_ports = 2;
  f->svc.source_ranges = f->ranges;
  f->svc.n_source_ranges = 2;
  f->svc.ip_families = f->fams;
  f->svc.n_ip_families = 2;
  f->svc.external_traffic_local = false;
  f->svc.health_check_node_port = 0;
  f->svc.session_affinity_client_ip = false;
  f->svc.options = f->opt_ptrs;
  f->svc.n_options = 3;
  f->svc.tags = f->tag_ptrs;
  f->svc.n_tags = 2;
}

/* svc_fprint, checked against its two halves (nodes digest, then the
 * Service with it), which the controller uses. */
static void fp_of(const struct fp_fix *f, char out[CCM_SVC_FPRINT_HEX])
{
  char digest[CCM_SVC_FPRINT_HEX], split[CCM_SVC_FPRINT_HEX];

  assert_int_equal(svc_fprint(&f->svc, &f->list_nodes, out), 0);
  assert_int_equal(strlen(out), CCM_SVC_FPRINT_HEX - 1);
  assert_int_equal(svc_fprint_nodes(&f->list_nodes, digest), 0);
  assert_int_equal(svc_fprint_digest(&f->svc, digest, split), 0);
  assert_string_equal(out, split);
}

static void test_fprint_stable(void **state)
{
  struct fp_fix f;
  char base[CCM_SVC_FPRINT_HEX], fp[CCM_SVC_FPRINT_HEX];
  const struct ccm_option_value *o;
  const struct ccm_kv *kv;
  const struct ccm_node *nd;

  (void)state;
  fp_fix_init(&f);
  fp_of(&f, base);
  fp_of(&f, fp);
  assert_string_equal(base, fp);
  /* Sets and maps: the order does not matter. */
  o = f.opt_ptrs[0];
  f.opt_ptrs[0] = f.opt_ptrs[2];
  f.opt_ptrs[2] = o;
  kv = f.tag_ptrs[0];
  f.tag_ptrs[0] = f.tag_ptrs[1];
  f.tag_ptrs[1] = kv;
  nd = f.node_ptrs[0];
  f.node_ptrs[0] = f.node_ptrs[1];
  f.node_ptrs[1] = nd;
  kv = f.label_ptrs[1][0];
  f.label_ptrs[1][0] = f.label_ptrs[1][1];
  f.label_ptrs[1][1] = kv;
  fp_of(&f, fp);
  assert_string_equal(base, fp);
  /* Fresh copies of the strings: content, not addresses, is hashed. */
  {
    char name[] = "a1234", ip[] = "10.0.0.1";

    fp_fix_init(&f);
    f.svc.lb_name = name;
    f.addrs[0][0].address = ip;
    fp_of(&f, fp);
    assert_string_equal(base, fp);
  }
}

/* Apply mutation i to a fresh fixture; false past the last one. */
static bool fp_mutate(struct fp_fix *f, int i)
{
  fp_fix_init(f);
  switch (i) {
  case 0: f->svc.cluster_name = "c2"; break;
  case 1: f->svc.namespace_ = "ns2"; break;
  case 2: f->svc.name = "s2"; break;
  case 3: f->svc.uid = "uid-2"; break;
  case 4: f->svc.lb_name = "a12345"; break;
  case 5: f->svc.lb_class = "example.com/b"; break;
  case 6: f->svc.lb_class = ""; break;              /* NULL != "" */
  case 7: f->svc.load_balancer_ip = "1.2.3.4"; break;
  case 8: f->ports[0].name = "web"; break;
  case 9: f->ports[0].protocol = CCM_PROTO_UDP; break;
  case 10: f->ports[0].port = 81; break;
  case 11: f->ports[0].node_port = 30005; break;
  case 12: f->svc.n_ports = 1; break;
  case 13: /* ports are positional */
    f->port_ptrs[0] = &f->ports[1];
    f->port_ptrs[1] = &f->ports[0];
    break;
  case 14: f->ranges[1] = "192.168.0.0/24"; break;
  case 15: f->svc.n_source_ranges = 1; break;
  case 16: f->fams[0] = CCM_IPV6; f->fams[1] = CCM_IPV4; break;
  case 17: f->svc.n_ip_families = 1; break;
  case 18: f->svc.external_traffic_local = true; break;
  case 19: f->svc.health_check_node_port = 32000; break;
  case 20: f->svc.session_affinity_client_ip = true; break;
  case 21: f->opts[0].int_value = 61; break;
  case 22: f->opts[1].bool_value = false; break;
  case 23: f->list[1] = "z"; break;
  case 24: f->opts[2].list_len = 1; break;
  case 25: f->svc.n_options = 2; break;
  case 26: f->opts[0].name = "idle2"; break;
  case 27: f->tags[0].value = "b"; break;
  case 28: f->tags[1].key = "stage"; break;
  case 29: f->svc.n_tags = 1; break;
  case 30: f->list_nodes.n_nodes = 1; break;
  case 31: f->nodes[1].provider_id = "p://2b"; break;
  case 32: f->nodes[1].uid = "u2b"; break;
  case 33: f->addrs[1][0].address = "10.0.0.9"; break;
  case 34: f->addrs[1][0].type = CCM_ADDR_EXTERNAL_IP; break;
  case 35: f->labels[1][1].value = "z2"; break;
  case 36: f->nodes[1].n_labels = 1; break;
  case 37: f->nodes[0].name = "n0"; break;
  case 38: /* a value cannot slide into its neighbour */
    f->svc.lb_name = "a123";
    f->svc.lb_class = "4";
    break;
  case 39: f->opts[2].type = CCM_OPT_STRING; f->opts[2].string_value = "x";
    break;
  default: return false;
  }
  return true;
}

static void test_fprint_changes(void **state)
{
  static char seen[64][CCM_SVC_FPRINT_HEX];
  struct fp_fix f;
  int i, j, n = 0;

  (void)state;
  fp_fix_init(&f);
  fp_of(&f, seen[n++]);
  for (i = 0; fp_mutate(&f, i); i++) {
    assert_true(n < 64);
    fp_of(&f, seen[n]);
    for (j = 0; j < n; j++)
      if (strcmp(seen[j], seen[n]) == 0)
        fail_msg("mutation %d hashes like %s %d", i,
                 j == 0 ? "the base" : "mutation", j - 1);
    n++;
  }
  assert_int_equal(n, 41);
  /* No nodes: NULL and an empty list agree, and differ from two nodes. */
  fp_fix_init(&f);
  {
    char a[CCM_SVC_FPRINT_HEX], b[CCM_SVC_FPRINT_HEX];

    assert_int_equal(svc_fprint(&f.svc, NULL, a), 0);
    f.list_nodes.n_nodes = 0;
    assert_int_equal(svc_fprint(&f.svc, &f.list_nodes, b), 0);
    assert_string_equal(a, b);
    assert_string_not_equal(a, seen[0]);
  }
}

/* From the Service object: the order of JSON fields and anything the
 * provider does not get (labels, other annotations, selector, status)
 * leave the fingerprint alone; a port change does not. */
static void test_fprint_from_service(void **state)
{
  struct obj_meta *a = svc(NULL, "{\"type\":\"LoadBalancer\",\"ports\":[{"
                           "\"name\":\"http\",\"protocol\":\"TCP\",\"port\":"
                           "80,\"nodePort\":30080,\"targetPort\":8080}],"
                           "\"externalTrafficPolicy\":\"Local\","
                           "\"healthCheckNodePort\":32000,"
                           "\"loadBalancerSourceRanges\":[\"10.0.0.0/8\"]}",
                           NULL);
  struct obj_meta *b = svc("\"labels\":{\"x\":\"y\"},\"annotations\":{\"a\":"
                           "\"b\"}", "{\"loadBalancerSourceRanges\":["
                           "\"10.0.0.0/8\"],\"healthCheckNodePort\":32000,"
                           "\"selector\":{\"app\":\"w\"},"
                           "\"externalTrafficPolicy\":\"Local\",\"ports\":[{"
                           "\"targetPort\":8080,\"nodePort\":30080,\"port\":"
                           "80,\"protocol\":\"TCP\",\"name\":\"http\"}],"
                           "\"type\":\"LoadBalancer\"}",
                           "{\"loadBalancer\":{\"ingress\":[{\"ip\":"
                           "\"1.2.3.4\"}]}}");
  struct obj_meta *c = svc(NULL, "{\"type\":\"LoadBalancer\",\"ports\":[{"
                           "\"name\":\"http\",\"protocol\":\"TCP\",\"port\":"
                           "81,\"nodePort\":30080,\"targetPort\":8080}],"
                           "\"externalTrafficPolicy\":\"Local\","
                           "\"healthCheckNodePort\":32000,"
                           "\"loadBalancerSourceRanges\":[\"10.0.0.0/8\"]}",
                           NULL);
  struct obj_meta *objs[3] = {a, b, c};
  char fp[3][CCM_SVC_FPRINT_HEX];
  struct svc_input in;
  int i;

  (void)state;
  for (i = 0; i < 3; i++) {
    assert_non_null(objs[i]);
    assert_int_equal(svc_input_build(obj_as_service(objs[i]), "c", "a1",
                                     NULL, &in), 0);
    assert_int_equal(svc_fprint(&in.svc, NULL, fp[i]), 0);
    svc_input_free(&in);
    obj_unref(objs[i]);
  }
  assert_string_equal(fp[0], fp[1]);
  assert_string_not_equal(fp[0], fp[2]);
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
    cmocka_unit_test(test_fprint_stable),
    cmocka_unit_test(test_fprint_changes),
    cmocka_unit_test(test_fprint_from_service),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
