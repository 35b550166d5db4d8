/*
 * test_aws_double.c: the aws module (linked from its sources) against the
 * AWS test double (tests/doubles/aws.py on 127.0.0.1): the credential
 * chain's network sources (IMDSv2 role, web identity, AssumeRole), region
 * and cluster discovery from IMDS, routes with blackholes and
 * SourceDestCheck, and throttling from the double within the retry budget.
 * Outcomes are read back from the double's state and call log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libconfig.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "aws.h"
#include "double_fix.h"
#include "modules/host_api.h"
#include "modules/http.h"
#include "util/log.h"

#define WEB_TOKEN "eyJhbGciOiJSUzI1NiJ9.double-web-identity-token.c2lnbmF0dXJl"

/* ---- credential sources ------------------------------------------------- */

/* Nothing configured but the endpoints: region and cluster from IMDS, the
 * instance role's credentials from IMDSv2. */
static void test_imds_everything(void **state) {
  struct fix f;
  struct ccm_node n;
  bool exists = false;
  (void)state;

  fx_env_clean();
  if (fx_up(&f, "") != CCM_OK)
    fail_msg("init: %s", f.call.error);
  fx_reset(&f);
  assert_string_equal(f.aws->cfg.region, "us-east-1");
  assert_string_equal(f.aws->cluster_id, "kubernetes");
  fx_node_make(&n, FX_NODE_B, NULL);
  /* The reset revoked the role credentials init cached: the module reads
   * them again from IMDS within the same call. */
  if (f.p->instance_exists(f.aws, &f.call, &n, &exists) != CCM_OK)
    fail_msg("instance_exists: %s", f.call.error);
  assert_true(exists);
  assert_int_equal(f.aws->base.source, AWS_SRC_IMDS);
  assert_non_null(f.aws->base.token);
  assert_true(f.aws->base.expires > aws_now());
  assert_true(fx_calls(&f, "/latest/api/token") >= 1);
  fx_down(&f);
}

static void test_web_identity(void **state) {
  struct fix f;
  struct ccm_node n;
  char path[128];
  FILE *t;
  bool exists = false;
  (void)state;

  fx_env_clean();
  snprintf(path, sizeof(path), "%s/token", fx_tmpdir);
  t = fopen(path, "w");
  assert_non_null(t);
  fputs(WEB_TOKEN "\n", t);
  fclose(t);
  setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
  setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ccm", 1);
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  if (fx_up(&f, "region = \"us-east-1\"; cluster_id = \"kubernetes\";") !=
      CCM_OK)
    fail_msg("init: %s", f.call.error);
  fx_reset(&f);
  fx_node_make(&n, "x", "aws:///us-east-1a/" FX_ID_A);
  assert_int_equal(f.p->instance_exists(f.aws, &f.call, &n, &exists), CCM_OK);
  assert_true(exists);
  assert_int_equal(f.aws->base.source, AWS_SRC_WEB_IDENTITY);
  assert_int_equal(fx_calls(&f, "AssumeRoleWithWebIdentity"), 1);
  /* Cached: a second call does not ask STS again. */
  assert_int_equal(f.p->instance_exists(f.aws, &f.call, &n, &exists), CCM_OK);
  assert_int_equal(fx_calls(&f, "AssumeRoleWithWebIdentity"), 1);
  fx_down(&f);

  /* A token the double does not know: an auth error naming the source. */
  t = fopen(path, "w");
  assert_non_null(t);
  fputs("not-a-known-token", t);
  fclose(t);
  if (fx_up(&f, "region = \"us-east-1\"; cluster_id = \"kubernetes\";") !=
      CCM_OK)
    fail_msg("init: %s", f.call.error);
  assert_int_equal(f.p->instance_exists(f.aws, &f.call, &n, &exists),
                   CCM_ERR_AUTH);
  assert_non_null(strstr(f.call.error, "web identity"));
  assert_null(strstr(f.call.error, "not-a-known-token"));
  fx_finish(&f);
}

static void test_assume_role(void **state) {
  struct fix f;
  struct ccm_node n;
  bool exists = false;
  (void)state;

  fx_start(&f, "role_arn = \"arn:aws:iam::123456789012:role/ccm\";");
  fx_node_make(&n, FX_ID_A, NULL);
  assert_int_equal(f.p->instance_exists(f.aws, &f.call, &n, &exists), CCM_OK);
  assert_true(exists);
  assert_int_equal(f.aws->base.source, AWS_SRC_ENV);
  assert_int_equal(f.aws->role.source, AWS_SRC_ASSUME_ROLE);
  assert_string_not_equal(f.aws->role.access_key, "AKIDEXAMPLE");
  assert_int_equal(fx_calls(&f, "AssumeRole"), 1);
  fx_finish(&f);
}

/* ---- routes ------------------------------------------------------------------ */

static size_t list_find(const struct ccm_route_list *l, const char *cidr,
                        const struct route_entry **hit) {
  size_t n = 0;
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->items[i].destination_cidr, cidr) == 0) {
      *hit = &l->items[i];
      n++;
    }
  return n;
}

static void test_routes_blackhole(void **state) {
  struct fix f;
  struct ccm_route r = {0};
  struct ccm_route_list l = {0};
  const struct route_entry *hit = NULL;
  char spec[160];
  (void)state;

  fx_start(&f, "");
  r.struct_size = sizeof(r);
  r.target_node = FX_NODE_A;
  r.destination_cidr = "100.96.1.0/24";
  assert_int_equal(f.p->route_create(f.aws, &f.call, "kubernetes", "uid", &r),
                   CCM_OK);
  assert_int_equal(fx_calls(&f, "ModifyInstanceAttribute"), 1);
  assert_int_equal(fx_calls(&f, "CreateRoute"), 1);
  assert_int_equal(f.p->route_list(f.aws, &f.call, "kubernetes", &l), CCM_OK);
  assert_int_equal(list_find(&l, "100.96.1.0/24", &hit), 1);
  assert_string_equal(hit->target_node, FX_NODE_A);
  assert_string_equal(hit->name, "kubernetes-100.96.1.0/24");
  assert_false(hit->blackhole);
  route_list_clear(&l);

  /* The instance goes away: the route is a blackhole. */
  snprintf(spec, sizeof(spec), "{\"instance_id\": \"%s\", \"action\": "
           "\"terminate\"}", FX_ID_A);
  cJSON_Delete(fx_control(&f, "POST", "/_double/state", spec));
  assert_int_equal(f.p->route_list(f.aws, &f.call, "kubernetes", &l), CCM_OK);
  assert_int_equal(list_find(&l, "100.96.1.0/24", &hit), 1);
  assert_true(hit->blackhole);
  route_list_clear(&l);

  /* The CIDR moves to another node: the blackhole is deleted first. */
  r.target_node = FX_NODE_B;
  assert_int_equal(f.p->route_create(f.aws, &f.call, "kubernetes", "uid", &r),
                   CCM_OK);
  assert_int_equal(fx_calls(&f, "DeleteRoute"), 1);
  assert_int_equal(f.p->route_list(f.aws, &f.call, "kubernetes", &l), CCM_OK);
  assert_int_equal(list_find(&l, "100.96.1.0/24", &hit), 1);
  assert_string_equal(hit->target_node, FX_NODE_B);
  assert_false(hit->blackhole);
  route_list_clear(&l);

  /* The source/dest check is off on the target, in the double's state. */
  cJSON *st = fx_control(&f, "GET", "/_double/calls?action="
                      "ModifyInstanceAttribute", NULL);
  cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "calls"), 1);
  cJSON *params = cJSON_GetObjectItem(c0, "params");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                          params, "SourceDestCheck.Value")), "false");
  cJSON_Delete(st);

  /* Delete as listed, twice: both OK, and the route is gone. */
  r.name = "kubernetes-100.96.1.0/24";
  assert_int_equal(f.p->route_delete(f.aws, &f.call, "kubernetes", &r),
                   CCM_OK);
  assert_int_equal(f.p->route_delete(f.aws, &f.call, "kubernetes", &r),
                   CCM_OK);
  assert_int_equal(f.p->route_list(f.aws, &f.call, "kubernetes", &l), CCM_OK);
  assert_int_equal(list_find(&l, "100.96.1.0/24", &hit), 0);
  route_list_clear(&l);
  fx_finish(&f);
}

/* ---- instances ------------------------------------------------------------- */

static void test_instances_states_and_batch(void **state) {
  struct fix f;
  struct ccm_node a, stopped, gone, byname;
  struct ccm_instance_meta m[4];
  struct ccm_instance_meta *out[4] = {&m[0], &m[1], &m[2], &m[3]};
  const struct ccm_node *nodes[4] = {&a, &stopped, &gone, &byname};
  int status[4];
  bool b;
  (void)state;

  fx_start(&f, "");
  fx_node_make(&a, FX_NODE_A, "aws:///us-east-1a/" FX_ID_A);
  fx_node_make(&stopped, "s", "aws:////i-0a1b2c3d4e5f60004");
  fx_node_make(&gone, "g", "aws:///us-east-1a/i-0ffffffffffffffff");
  fx_node_make(&byname, FX_NODE_B, NULL);
  memset(m, 0, sizeof(m));

  assert_int_equal(f.p->instance_shutdown(f.aws, &f.call, &stopped, &b),
                   CCM_OK);
  assert_true(b);
  assert_int_equal(f.p->instance_exists(f.aws, &f.call, &stopped, &b),
                   CCM_OK);
  assert_true(b);
  assert_int_equal(f.p->instance_exists(f.aws, &f.call, &gone, &b), CCM_OK);
  assert_false(b);

  /* One DescribeInstances for the IDs (falling back to a filter when an
   * ID is unknown) and one for the name. */
  fx_calls_clear(&f);
  assert_int_equal(f.p->instance_metadata_batch(f.aws, &f.call, nodes, 4, out,
                                                status),
                   CCM_OK);
  assert_int_equal(status[0], CCM_OK);
  assert_int_equal(status[1], CCM_OK);
  assert_int_equal(status[2], CCM_ERR_NOT_FOUND);
  assert_int_equal(status[3], CCM_OK);
  assert_string_equal(m[0].provider_id, "aws:///us-east-1a/" FX_ID_A);
  assert_string_equal(m[3].zone, "us-east-1b");
  assert_string_equal(m[0].instance_type, "m5.large");
  assert_string_equal(m[0].addresses[0].address, "10.0.128.10");
  assert_true(fx_calls(&f, "DescribeInstances") <= 3);
  for (int i = 0; i < 4; i++)
    instance_meta_clear(&m[i]);

  /* Terminated: exists says no, metadata says not found. */
  cJSON_Delete(fx_control(&f, "POST", "/_double/state",
                       "{\"instance_id\": \"" FX_ID_A "\", \"action\": "
                       "\"terminate\"}"));
  assert_int_equal(f.p->instance_exists(f.aws, &f.call, &a, &b), CCM_OK);
  assert_false(b);
  assert_int_equal(f.p->instance_metadata(f.aws, &f.call, &a, &m[0]),
                   CCM_ERR_NOT_FOUND);
  instance_meta_clear(&m[0]);
  fx_finish(&f);
}

/* One instance named twice in a batch, by providerID and by private DNS
 * name (a node re-registered under another name): both nodes get it, and
 * a providerID listed twice is asked for once. */
static void test_instances_batch_same_instance(void **state) {
  struct fix f;
  struct ccm_node by_id, by_name, again;
  struct ccm_instance_meta m[3];
  struct ccm_instance_meta *out[3] = {&m[0], &m[1], &m[2]};
  const struct ccm_node *nodes[3] = {&by_id, &by_name, &again};
  int status[3];
  (void)state;

  fx_start(&f, "");
  fx_node_make(&by_id, "old-name", "aws:///us-east-1a/" FX_ID_A);
  fx_node_make(&by_name, FX_NODE_A, NULL);
  fx_node_make(&again, "older-name", "aws:///us-east-1a/" FX_ID_A);
  memset(m, 0, sizeof(m));
  fx_calls_clear(&f);
  assert_int_equal(f.p->instance_metadata_batch(f.aws, &f.call, nodes, 3, out,
                                                status),
                   CCM_OK);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(status[i], CCM_OK);
    assert_string_equal(m[i].provider_id, "aws:///us-east-1a/" FX_ID_A);
  }
  assert_true(fx_calls(&f, "DescribeInstances") <= 2);
  for (int i = 0; i < 3; i++)
    instance_meta_clear(&m[i]);
  fx_finish(&f);
}

/* describe_batch_size = 1: one DescribeInstances per node, by ID and by
 * private DNS name alike (3 + 1 here; batched, 2), same answers. */
static void test_instances_unbatched(void **state) {
  struct fix f;
  struct ccm_node a, c, s, nb;
  struct ccm_instance_meta m[4];
  struct ccm_instance_meta *out[4] = {&m[0], &m[1], &m[2], &m[3]};
  const struct ccm_node *nodes[4] = {&a, &c, &s, &nb};
  int status[4];
  (void)state;

  fx_start(&f, "describe_batch_size = 1;");
  fx_node_make(&a, "a", "aws:///us-east-1a/" FX_ID_A);
  fx_node_make(&c, "c", "aws:///us-east-1c/i-0a1b2c3d4e5f60003");
  fx_node_make(&s, "s", "aws:////i-0a1b2c3d4e5f60004");
  fx_node_make(&nb, FX_NODE_B, NULL);
  memset(m, 0, sizeof(m));
  assert_int_equal(f.p->instance_metadata_batch(f.aws, &f.call, nodes, 4, out,
                                                status),
                   CCM_OK);
  for (int i = 0; i < 4; i++)
    assert_int_equal(status[i], CCM_OK);
  assert_string_equal(m[1].provider_id,
                      "aws:///us-east-1c/i-0a1b2c3d4e5f60003");
  assert_string_equal(m[2].provider_id,
                      "aws:///us-east-1a/i-0a1b2c3d4e5f60004");
  assert_string_equal(m[3].zone, "us-east-1b");
  assert_int_equal(fx_calls(&f, "DescribeInstances"), 4);
  for (int i = 0; i < 4; i++)
    instance_meta_clear(&m[i]);
  fx_finish(&f);
}

/* Throttling from the double: retried within the budget, then throttled. */
static void test_throttle_budget(void **state) {
  struct fix f;
  struct ccm_node a;
  bool b = false;
  (void)state;

  fx_start(&f, "");
  fx_node_make(&a, FX_NODE_A, "aws:///us-east-1a/" FX_ID_A);
  fx_faults(&f, "{\"kind\": \"throttle\", \"action\": "
                "\"DescribeInstances\", \"count\": 2}");
  assert_int_equal(f.p->instance_exists(f.aws, &f.call, &a, &b), CCM_OK);
  assert_true(b);
  assert_int_equal(fx_calls(&f, "DescribeInstances"), 3);

  fx_calls_clear(&f);
  fx_faults(&f, "{\"kind\": \"throttle\", \"action\": "
                "\"DescribeInstances\"}");
  call_init(&f.call, 30000);
  assert_int_equal(f.p->instance_exists(f.aws, &f.call, &a, &b),
                   CCM_ERR_THROTTLED);
  assert_non_null(strstr(f.call.error, "RequestLimitExceeded"));
  assert_true(fx_calls(&f, "DescribeInstances") <= AWS_RETRY_ATTEMPTS);
  fx_finish(&f);
}

/* ---- Classic ELB ------------------------------------------------------------ */

/* The security group named name in the double's state, or NULL. */
static cJSON *sg_named(cJSON *st, const char *name) {
  cJSON *g;
  cJSON_ArrayForEach(g, cJSON_GetObjectItem(st, "security_groups")) {
    if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(g, "name")), name) ==
        0)
      return g;
  }
  return NULL;
}

static bool sg_admits(cJSON *g, const char *src) {
  cJSON *r;
  cJSON_ArrayForEach(r, cJSON_GetObjectItem(g, "ingress")) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(r, "src"));
    if (s != NULL && strcmp(s, src) == 0)
      return true;
  }
  return false;
}

static void test_classic_elb(void **state) {
  struct fix f;
  struct fx_svc s;
  struct ccm_lb_status st1 = {0}, st2 = {0};
  const char *lb = "a6128d5b14c0f8a110000000000000aa";
  char sgname[64];
  cJSON *st, *e, *g, *node_sg, *x;
  (void)state;

  fx_start(&f, "");
  fx_svc_make(&s, lb);
  snprintf(sgname, sizeof(sgname), "k8s-elb-%s", lb);

  if (f.p->lb_ensure(f.aws, &f.call, &s.svc, &s.list, &st1) != CCM_OK)
    fail_msg("ensure: %s", f.call.error);
  assert_int_equal(st1.n, 1);
  assert_null(st1.items[0].ip);
  assert_non_null(strstr(st1.items[0].hostname, ".elb.amazonaws.com"));

  st = fx_state(&f);
  e = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "classic_load_balancers"),
                          lb);
  assert_non_null(e);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(e, "scheme")),
                      "internet-facing");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(e, "listeners")), 2);
  x = cJSON_GetArrayItem(cJSON_GetObjectItem(e, "listeners"), 1);
  assert_int_equal((int)cJSON_GetNumberValue(
                       cJSON_GetObjectItem(x, "InstancePort")), 30443);
  /* Public subnets only, one per AZ. */
  x = cJSON_GetObjectItem(e, "subnets");
  assert_int_equal(cJSON_GetArraySize(x), 3);
  for (int i = 0; i < 3; i++)
    assert_non_null(strstr("subnet-0a1b2c3d4e5f60001 subnet-0a1b2c3d4e5f60002"
                           " subnet-0a1b2c3d4e5f60003",
                           cJSON_GetStringValue(cJSON_GetArrayItem(x, i))));
  x = cJSON_GetObjectItem(e, "tags");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                          x, "kubernetes.io/cluster/kubernetes")), "owned");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                          x, "kubernetes.io/service-name")), "default/web");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(x, "team")),
                      "web");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                          cJSON_GetObjectItem(e, "health_check"), "Target")),
                      "TCP:30080");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(e, "instances")), 2);
  g = sg_named(st, sgname);
  assert_non_null(g);
  assert_true(sg_admits(g, "0.0.0.0/0"));
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                          cJSON_GetObjectItem(g, "tags"),
                          "kubernetes.io/cluster/kubernetes")), "owned");
  node_sg = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "security_groups"),
                                "sg-0a1b2c3d4e5f60301");
  assert_true(sg_admits(node_sg, cJSON_GetStringValue(
                                     cJSON_GetObjectItem(g, "id"))));
  char sg_id[64];
  snprintf(sg_id, sizeof(sg_id), "%s",
           cJSON_GetStringValue(cJSON_GetObjectItem(g, "id")));
  /* The group without the ownership tag is untouched. */
  g = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "security_groups"),
                          "sg-0a1b2c3d4e5f60303");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(g, "ingress")), 1);
  cJSON_Delete(st);

  /* Idempotent: the second ensure creates nothing and changes nothing. */
  fx_calls_clear(&f);
  assert_int_equal(f.p->lb_ensure(f.aws, &f.call, &s.svc, &s.list, &st2),
                   CCM_OK);
  assert_string_equal(st1.items[0].hostname, st2.items[0].hostname);
  assert_int_equal(fx_calls(&f, "CreateLoadBalancer"), 0);
  assert_int_equal(fx_calls(&f, "CreateSecurityGroup"), 0);
  assert_int_equal(fx_calls(&f, "AuthorizeSecurityGroupIngress"), 0);
  assert_int_equal(fx_calls(&f, "ConfigureHealthCheck"), 0);
  assert_int_equal(fx_calls(&f, "RegisterInstancesWithLoadBalancer"), 0);
  assert_int_equal(fx_calls(&f, "AddTags"), 0);
  assert_int_equal(fx_calls(&f, "ModifyLoadBalancerAttributes"), 0);
  lb_status_clear(&st2);

  /* eTP Local: the health check moves to the health-check node port; one
   * node leaves. */
  s.svc.external_traffic_local = true;
  s.svc.health_check_node_port = 32000;
  s.list.n_nodes = 1;
  fx_ensure(&f, &s, CCM_OK);
  st = fx_state(&f);
  e = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "classic_load_balancers"),
                          lb);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                          cJSON_GetObjectItem(e, "health_check"), "Target")),
                      "HTTP:32000/healthz");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(e, "instances")), 1);
  cJSON_Delete(st);

  /* update_hosts brings the second node back. */
  s.list.n_nodes = 2;
  assert_int_equal(f.p->lb_update_hosts(f.aws, &f.call, &s.svc, &s.list),
                   CCM_OK);
  st = fx_state(&f);
  e = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "classic_load_balancers"),
                          lb);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(e, "instances")), 2);
  cJSON_Delete(st);

  /* Delete: no load balancer, no managed group, no node rule left. */
  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  st = fx_state(&f);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(
                       st, "classic_load_balancers")), 0);
  assert_null(sg_named(st, sgname));
  node_sg = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "security_groups"),
                                "sg-0a1b2c3d4e5f60301");
  assert_false(sg_admits(node_sg, sg_id));
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(node_sg, "ingress")),
                   2);
  cJSON_Delete(st);
  struct ccm_lb_status st3 = {0};
  assert_int_equal(f.p->lb_get(f.aws, &f.call, &s.svc, &st3),
                   CCM_ERR_NOT_FOUND);
  lb_status_clear(&st1);
  fx_finish(&f);
}

/* A group with the managed name but without our ownership tag is never
 * modified: ensure refuses, and nothing is created. */
static void test_elb_unowned_group(void **state) {
  struct fix f;
  struct fx_svc s;
  struct aws_params p;
  cJSON *d;
  (void)state;

  fx_start(&f, "");
  /* Someone else's group already has the managed name. */
  fx_svc_make(&s, "aforeign000000000000000000000000");
  aws_params_init(&p, host_api());
  aws_params_add(&p, "GroupName", "k8s-elb-aforeign000000000000000000000000");
  aws_params_add(&p, "GroupDescription", "not ours");
  aws_params_add(&p, "VpcId", "vpc-0a1b2c3d4e5f60718");
  fx_query_ok(&f, AWS_SVC_EC2, "CreateSecurityGroup", &p);
  fx_calls_clear(&f);
  fx_ensure(&f, &s, CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "not touching it"));
  assert_int_equal(fx_calls(&f, "AuthorizeSecurityGroupIngress"), 0);
  assert_int_equal(fx_calls(&f, "CreateLoadBalancer"), 0);
  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  assert_int_equal(fx_calls(&f, "DeleteSecurityGroup"), 0);
  fx_down(&f);

  /* elb_security_group in the config is used as given, never created. */
  if (fx_up(&f, "region = \"us-east-1\"; cluster_id = \"kubernetes\"; "
                 "elb_security_group = \"sg-0a1b2c3d4e5f60303\";") != CCM_OK)
    fail_msg("init: %s", f.call.error);
  fx_calls_clear(&f);
  fx_svc_make(&s, "aunownedsg0000000000000000000000");
  fx_ensure(&f, &s, CCM_OK);
  assert_int_equal(fx_calls(&f, "CreateSecurityGroup"), 0);
  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  assert_int_equal(fx_calls(&f, "DeleteSecurityGroup"), 0);
  d = fx_state(&f);
  assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(d,
                  "security_groups"), "sg-0a1b2c3d4e5f60303"));
  cJSON_Delete(d);
  fx_finish(&f);
}

/* Options: internal scheme in private subnets, TLS on 443 with a
 * negotiation policy, PROXY protocol, idle timeout, source ranges. */
static void test_elb_options(void **state) {
  struct fix f;
  struct fx_svc s;
  struct ccm_lb_status st = {0};
  const char *ssl_ports[] = {"https"};
  const char *ranges[] = {"10.0.0.0/8"};
  const char *lb = "aoptions00000000000000000000000a";
  struct ccm_option_value *o;
  cJSON *d, *e, *x, *g;
  (void)state;

  fx_start(&f, "");
  fx_svc_make(&s, lb);
  fx_svc_opt(&s, "internal", CCM_OPT_BOOL)->bool_value = true;
  fx_svc_opt(&s, "ssl-cert", CCM_OPT_STRING)->string_value =
      "arn:aws:acm:us-east-1:123456789012:certificate/abc";
  o = fx_svc_opt(&s, "ssl-ports", CCM_OPT_STRING_LIST);
  o->list = ssl_ports;
  o->list_len = 1;
  fx_svc_opt(&s, "proxy-protocol", CCM_OPT_BOOL)->bool_value = true;
  fx_svc_opt(&s, "ssl-negotiation-policy", CCM_OPT_STRING)->string_value =
      "ELBSecurityPolicy-2016-08";
  fx_svc_opt(&s, "connection-idle-timeout", CCM_OPT_INT)->int_value = 120;
  fx_svc_opt(&s, "healthcheck-path", CCM_OPT_STRING)->string_value = "/ready";
  s.svc.source_ranges = ranges;
  s.svc.n_source_ranges = 1;

  if (f.p->lb_ensure(f.aws, &f.call, &s.svc, &s.list, &st) != CCM_OK)
    fail_msg("ensure: %s", f.call.error);
  assert_non_null(strstr(st.items[0].hostname, "internal-"));
  lb_status_clear(&st);
  d = fx_state(&f);
  e = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "classic_load_balancers"),
                          lb);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(e, "scheme")),
                      "internal");
  x = cJSON_GetObjectItem(e, "subnets");
  assert_int_equal(cJSON_GetArraySize(x), 3);
  assert_non_null(strstr("subnet-0a1b2c3d4e5f60011 subnet-0a1b2c3d4e5f60012 "
                         "subnet-0a1b2c3d4e5f60013",
                         cJSON_GetStringValue(cJSON_GetArrayItem(x, 0))));
  x = cJSON_GetArrayItem(cJSON_GetObjectItem(e, "listeners"), 1);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(x,
                      "Protocol")), "SSL");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(x,
                      "SSLCertificateId")), s.opt[1].string_value);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(
                          cJSON_GetObjectItem(x, "PolicyNames"), 0)),
                      "k8s-SSLNegotiationPolicy-ELBSecurityPolicy-2016-08");
  x = cJSON_GetArrayItem(cJSON_GetObjectItem(e, "listeners"), 0);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(x,
                      "Protocol")), "TCP");
  x = cJSON_GetObjectItem(e, "backend_policies");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(
                          cJSON_GetObjectItem(x, "30080"), 0)),
                      "k8s-proxyprotocol-enabled");
  assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(
                       cJSON_GetObjectItem(cJSON_GetObjectItem(e,
                       "attributes"), "ConnectionSettings"), "IdleTimeout")),
                   120);
  g = sg_named(d, "k8s-elb-aoptions00000000000000000000000a");
  assert_true(sg_admits(g, "10.0.0.0/8"));
  assert_false(sg_admits(g, "0.0.0.0/0"));
  cJSON_Delete(d);

  /* A second ensure is quiet; then PROXY protocol off removes it. */
  fx_calls_clear(&f);
  fx_ensure(&f, &s, CCM_OK);
  assert_int_equal(fx_calls(&f, "SetLoadBalancerPoliciesForBackendServer"), 0);
  assert_int_equal(fx_calls(&f, "SetLoadBalancerPoliciesOfListener"), 0);
  assert_int_equal(fx_calls(&f, "ModifyLoadBalancerAttributes"), 0);
  s.opt[3].bool_value = false;
  fx_ensure(&f, &s, CCM_OK);
  d = fx_state(&f);
  e = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "classic_load_balancers"),
                          lb);
  x = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "backend_policies"),
                          "30080");
  assert_true(x == NULL || cJSON_GetArraySize(x) == 0);
  cJSON_Delete(d);

  /* The scheme cannot change in place. */
  s.opt[0].bool_value = false;
  fx_ensure(&f, &s, CCM_ERR_INVALID);
  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  d = fx_state(&f);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(
                       d, "classic_load_balancers")), 0);
  assert_null(sg_named(d, "k8s-elb-aoptions00000000000000000000000a"));
  cJSON_Delete(d);
  fx_finish(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_imds_everything),
      cmocka_unit_test(test_web_identity),
      cmocka_unit_test(test_assume_role),
      cmocka_unit_test(test_routes_blackhole),
      cmocka_unit_test(test_instances_states_and_batch),
      cmocka_unit_test(test_instances_batch_same_instance),
      cmocka_unit_test(test_instances_unbatched),
      cmocka_unit_test(test_throttle_budget),
      cmocka_unit_test(test_classic_elb),
      cmocka_unit_test(test_elb_unowned_group),
      cmocka_unit_test(test_elb_options),
  };
  int rc;
  if (http_global_init() != 0)
    return 1;
  log_set_level(CCM_LOG_ERROR);
  rc = cmocka_run_group_tests(tests, fx_double_start, fx_double_stop);
  http_global_cleanup();
  return rc;
}
