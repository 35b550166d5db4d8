/*
 * test_aws_nlb.c: the aws module's NLB (ELBv2) code, linked from the
 * module's sources, against the AWS test double (tests/doubles/aws.py on
 * 127.0.0.1): create, idempotence, replacement of target groups, targets,
 * internal and eTP Local, ownership, throttling and delete. Outcomes are
 * read back from the double's state and call log.
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

/* ---- NLB ------------------------------------------------------------------ */

/* The fixture's Service with option type = nlb; tests add more with
 * fx_svc_opt. */
static void nlbsvc_make(struct fx_svc *s, const char *lb_name) {
  fx_svc_make(s, lb_name);
  fx_svc_opt(s, "type", CCM_OPT_STRING)->string_value = "nlb";
}

static int obj_count(cJSON *st, const char *key) {
  return cJSON_GetArraySize(cJSON_GetObjectItem(st, key));
}

static const char *str_at(cJSON *o, const char *key) {
  return cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
}

static int int_at(cJSON *o, const char *key) {
  return (int)cJSON_GetNumberValue(cJSON_GetObjectItem(o, key));
}

/* The only load balancer in the double's state (asserted). */
static cJSON *only_lb(cJSON *st) {
  cJSON *lbs = cJSON_GetObjectItem(st, "load_balancers");
  assert_int_equal(cJSON_GetArraySize(lbs), 1);
  return lbs->child;
}

/* The target group whose port (the node port) is port, or NULL. */
static cJSON *tg_port(cJSON *st, int port) {
  cJSON *t;
  cJSON_ArrayForEach(t, cJSON_GetObjectItem(st, "target_groups")) {
    if (int_at(t, "port") == port)
      return t;
  }
  return NULL;
}

/* The listener on port, or NULL. */
static cJSON *listener_port(cJSON *st, int port) {
  cJSON *l;
  cJSON_ArrayForEach(l, cJSON_GetObjectItem(st, "listeners")) {
    if (int_at(l, "port") == port)
      return l;
  }
  return NULL;
}

static const char *listener_tg(cJSON *l) {
  return str_at(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "actions"), 0),
                "TargetGroupArn");
}

static bool tg_has_target(cJSON *tg, const char *id, int port) {
  cJSON *t;
  cJSON_ArrayForEach(t, cJSON_GetObjectItem(tg, "targets")) {
    if (strcmp(str_at(t, "Id"), id) == 0 && int_at(t, "Port") == port)
      return true;
  }
  return false;
}

/* No call since the last reset may have changed something (only
 * Describe*); what names the step in the failure. */
static void assert_quiet(struct fix *f, const char *what) {
  cJSON *j = fx_control(f, "GET", "/_double/calls", NULL), *c;
  char which[2048];
  size_t len = sizeof(which);
  int n = 0;
  which[0] = '\0';
  cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "calls")) {
    const char *a = str_at(c, "action");
    if (a == NULL || strncmp(a, "Describe", 8) == 0)
      continue;
    n++;
    size_t used = strlen(which);
    snprintf(which + used, len - used, "%s ", a);
  }
  cJSON_Delete(j);
  if (n != 0)
    fail_msg("%s: %s", what, which);
}

/* The double holds lbs load balancers, tgs target groups and lis
 * listeners (-1: not checked). */
static void assert_counts(struct fix *f, int lbs, int tgs, int lis) {
  cJSON *d = fx_state(f);
  if (lbs >= 0)
    assert_int_equal(obj_count(d, "load_balancers"), lbs);
  if (tgs >= 0)
    assert_int_equal(obj_count(d, "target_groups"), tgs);
  if (lis >= 0)
    assert_int_equal(obj_count(d, "listeners"), lis);
  cJSON_Delete(d);
}

/* Ensure creates everything; a second ensure changes nothing; a node port
 * change replaces the target group; update_hosts follows the nodes;
 * delete leaves nothing. */
static void test_nlb_lifecycle(void **state) {
  struct fix f;
  struct fx_svc s;
  struct ccm_lb_status st1 = {0}, st2 = {0};
  const char *lb = "a6128d5b14c0f8a110000000000000nb";
  char old_tg[320];
  cJSON *st, *e, *x, *t, *l;
  (void)state;

  fx_start(&f, "");
  nlbsvc_make(&s, lb);
  if (f.p->lb_ensure(f.aws, &f.call, &s.svc, &s.list, &st1) != CCM_OK)
    fail_msg("ensure: %s", f.call.error);
  assert_int_equal(st1.n, 1);
  assert_null(st1.items[0].ip);
  assert_int_equal(fx_calls(&f, "CreateLoadBalancer"), 1);
  assert_int_equal(fx_calls(&f, "CreateTargetGroup"), 2);
  assert_int_equal(fx_calls(&f, "CreateListener"), 2);

  assert_counts(&f, 1, 2, 2);
  st = fx_state(&f);
  e = only_lb(st);
  assert_string_equal(str_at(e, "name"), lb);
  assert_string_equal(str_at(e, "type"), "network");
  assert_string_equal(str_at(e, "scheme"), "internet-facing");
  assert_string_equal(str_at(e, "dns"), st1.items[0].hostname);
  /* Public subnets, one per AZ. */
  x = cJSON_GetObjectItem(e, "mappings");
  assert_int_equal(cJSON_GetArraySize(x), 3);
  for (int i = 0; i < 3; i++)
    assert_non_null(strstr("subnet-0a1b2c3d4e5f60001 subnet-0a1b2c3d4e5f60002"
                           " subnet-0a1b2c3d4e5f60003",
                           str_at(cJSON_GetArrayItem(x, i), "SubnetId")));
  x = cJSON_GetObjectItem(e, "tags");
  assert_string_equal(str_at(x, "kubernetes.io/cluster/kubernetes"), "owned");
  assert_string_equal(str_at(x, "kubernetes.io/service-name"), "default/web");
  assert_string_equal(str_at(x, "team"), "web");
  for (int i = 0; i < 2; i++) {
    int port = i == 0 ? 80 : 443, np = i == 0 ? 30080 : 30443;
    t = tg_port(st, np);
    assert_non_null(t);
    assert_int_equal(strncmp(str_at(t, "name"), "k8s-default-web-", 16), 0);
    assert_int_equal(strlen(str_at(t, "name")), 26);
    assert_string_equal(str_at(t, "protocol"), "TCP");
    assert_string_equal(str_at(t, "target_type"), "instance");
    assert_string_equal(str_at(t, "HealthCheckProtocol"), "TCP");
    assert_string_equal(str_at(t, "HealthCheckPort"), "traffic-port");
    assert_int_equal(int_at(t, "HealthCheckIntervalSeconds"), 30);
    assert_int_equal(int_at(t, "HealthCheckTimeoutSeconds"), 10);
    assert_int_equal(int_at(t, "HealthyThresholdCount"), 3);
    assert_int_equal(int_at(t, "UnhealthyThresholdCount"), 3);
    assert_string_equal(str_at(cJSON_GetObjectItem(t, "tags"),
                               "kubernetes.io/cluster/kubernetes"), "owned");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "targets")),
                     2);
    assert_true(tg_has_target(t, FX_ID_A, np));
    assert_true(tg_has_target(t, "i-0a1b2c3d4e5f60002", np));
    l = listener_port(st, port);
    assert_non_null(l);
    assert_string_equal(str_at(l, "protocol"), "TCP");
    assert_string_equal(listener_tg(l), str_at(t, "arn"));
  }
  snprintf(old_tg, sizeof(old_tg), "%s", str_at(tg_port(st, 30080), "arn"));
  cJSON_Delete(st);

  /* Idempotent: no mutating call at all. */
  fx_calls_clear(&f);
  if (f.p->lb_ensure(f.aws, &f.call, &s.svc, &s.list, &st2) != CCM_OK)
    fail_msg("ensure 2: %s", f.call.error);
  assert_string_equal(st1.items[0].hostname, st2.items[0].hostname);
  assert_quiet(&f, "second ensure mutated");
  lb_status_clear(&st2);
  struct ccm_lb_status st3 = {0};
  assert_int_equal(f.p->lb_get(f.aws, &f.call, &s.svc, &st3), CCM_OK);
  assert_string_equal(st3.items[0].hostname, st1.items[0].hostname);
  lb_status_clear(&st3);

  /* A node port change: a new target group, the listener moves to it, the
   * old group is deleted. */
  s.port80.node_port = 30081;
  if (f.p->lb_ensure(f.aws, &f.call, &s.svc, &s.list, &st2) != CCM_OK)
    fail_msg("ensure 3: %s", f.call.error);
  lb_status_clear(&st2);
  assert_counts(&f, 1, 2, 2);
  st = fx_state(&f);
  assert_null(tg_port(st, 30080));
  assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "target_groups"),
                                  old_tg));
  t = tg_port(st, 30081);
  assert_non_null(t);
  assert_true(tg_has_target(t, FX_ID_A, 30081));
  assert_string_equal(listener_tg(listener_port(st, 80)), str_at(t, "arn"));
  cJSON_Delete(st);

  /* A service port change: the old listener and its group go. */
  s.port443.port = 8443;
  if (f.p->lb_ensure(f.aws, &f.call, &s.svc, &s.list, &st2) != CCM_OK)
    fail_msg("ensure 4: %s", f.call.error);
  lb_status_clear(&st2);
  assert_counts(&f, -1, 2, 2);
  st = fx_state(&f);
  assert_null(listener_port(st, 443));
  assert_non_null(listener_port(st, 8443));
  cJSON_Delete(st);

  /* update_hosts: one node leaves, then comes back. */
  s.list.n_nodes = 1;
  fx_calls_clear(&f);
  if (f.p->lb_update_hosts(f.aws, &f.call, &s.svc, &s.list) != CCM_OK)
    fail_msg("update_hosts: %s", f.call.error);
  assert_int_equal(fx_calls(&f, "DeregisterTargets"), 2);
  assert_int_equal(fx_calls(&f, "RegisterTargets"), 0);
  assert_int_equal(fx_calls(&f, "CreateTargetGroup"), 0);
  assert_int_equal(fx_calls(&f, "ModifyListener"), 0);
  st = fx_state(&f);
  t = tg_port(st, 30081);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "targets")), 1);
  assert_true(tg_has_target(t, FX_ID_A, 30081));
  cJSON_Delete(st);
  s.list.n_nodes = 2;
  assert_int_equal(f.p->lb_update_hosts(f.aws, &f.call, &s.svc, &s.list),
                   CCM_OK);
  st = fx_state(&f);
  t = tg_port(st, 30443);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "targets")), 2);
  assert_true(tg_has_target(t, "i-0a1b2c3d4e5f60002", 30443));
  cJSON_Delete(st);

  /* Delete: nothing of ELBv2 is left; twice is fine. */
  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  assert_counts(&f, 0, 0, 0);
  assert_int_equal(f.p->lb_get(f.aws, &f.call, &s.svc, &st3),
                   CCM_ERR_NOT_FOUND);
  lb_status_clear(&st1);
  fx_finish(&f);
}

/* Internal scheme, eTP Local health checks, TLS on one port, a UDP port,
 * cross-zone; then the health check returns to the defaults. */
static void test_nlb_internal_local(void **state) {
  struct fix f;
  struct fx_svc s;
  struct ccm_service_port udp;
  const struct ccm_service_port *ports[3];
  const char *ssl_ports[] = {"https"};
  const char *lb = "ainternal0000000000000000000000b";
  struct ccm_option_value *o;
  cJSON *d, *e, *t, *l, *x;
  (void)state;

  fx_start(&f, "");
  nlbsvc_make(&s, lb);
  udp = (struct ccm_service_port){sizeof(udp), "dns", CCM_PROTO_UDP, 53,
                                  30053};
  ports[0] = &s.port80;
  ports[1] = &s.port443;
  ports[2] = &udp;
  s.svc.ports = ports;
  s.svc.n_ports = 3;
  fx_svc_opt(&s, "internal", CCM_OPT_BOOL)->bool_value = true;
  o = fx_svc_opt(&s, "ssl-cert", CCM_OPT_STRING);
  o->string_value = "arn:aws:acm:us-east-1:123456789012:certificate/abc";
  o = fx_svc_opt(&s, "ssl-ports", CCM_OPT_STRING_LIST);
  o->list = ssl_ports;
  o->list_len = 1;
  fx_svc_opt(&s, "cross-zone-load-balancing-enabled", CCM_OPT_BOOL)
      ->bool_value = true;
  s.svc.external_traffic_local = true;
  s.svc.health_check_node_port = 32000;

  fx_ensure(&f, &s, CCM_OK);
  d = fx_state(&f);
  e = only_lb(d);
  assert_string_equal(str_at(e, "scheme"), "internal");
  x = cJSON_GetObjectItem(e, "mappings");
  assert_int_equal(cJSON_GetArraySize(x), 3);
  for (int i = 0; i < 3; i++)
    assert_non_null(strstr("subnet-0a1b2c3d4e5f60011 subnet-0a1b2c3d4e5f60012"
                           " subnet-0a1b2c3d4e5f60013",
                           str_at(cJSON_GetArrayItem(x, i), "SubnetId")));
  assert_string_equal(str_at(cJSON_GetObjectItem(e, "attributes"),
                             "load_balancing.cross_zone.enabled"), "true");
  assert_int_equal(obj_count(d, "target_groups"), 3);
  t = tg_port(d, 30080);
  assert_string_equal(str_at(t, "HealthCheckProtocol"), "HTTP");
  assert_string_equal(str_at(t, "HealthCheckPort"), "32000");
  assert_string_equal(str_at(t, "HealthCheckPath"), "/healthz");
  assert_int_equal(int_at(t, "HealthCheckIntervalSeconds"), 10);
  assert_int_equal(int_at(t, "HealthyThresholdCount"), 2);
  assert_int_equal(int_at(t, "UnhealthyThresholdCount"), 2);
  l = listener_port(d, 443);
  assert_string_equal(str_at(l, "protocol"), "TLS");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(
                          cJSON_GetObjectItem(l, "certificates"), 0)),
                      "arn:aws:acm:us-east-1:123456789012:certificate/abc");
  assert_string_equal(str_at(listener_port(d, 80), "protocol"), "TCP");
  assert_string_equal(str_at(listener_port(d, 53), "protocol"), "UDP");
  assert_string_equal(str_at(tg_port(d, 30053), "protocol"), "UDP");
  cJSON_Delete(d);

  fx_calls_clear(&f);
  fx_ensure(&f, &s, CCM_OK);
  assert_quiet(&f, "second ensure mutated");

  /* Back to Cluster: the HC protocol changes, so new target groups. */
  s.svc.external_traffic_local = false;
  s.svc.health_check_node_port = 0;
  fx_ensure(&f, &s, CCM_OK);
  d = fx_state(&f);
  assert_int_equal(obj_count(d, "target_groups"), 3);
  t = tg_port(d, 30080);
  assert_string_equal(str_at(t, "HealthCheckProtocol"), "TCP");
  assert_int_equal(int_at(t, "HealthCheckIntervalSeconds"), 30);
  assert_string_equal(listener_tg(listener_port(d, 80)), str_at(t, "arn"));
  cJSON_Delete(d);

  /* A healthcheck-timeout change is made in place. */
  fx_svc_opt(&s, "healthcheck-timeout", CCM_OPT_INT)->int_value = 6;
  fx_calls_clear(&f);
  fx_ensure(&f, &s, CCM_OK);
  assert_int_equal(fx_calls(&f, "ModifyTargetGroup"), 3);
  assert_int_equal(fx_calls(&f, "CreateTargetGroup"), 0);
  d = fx_state(&f);
  assert_int_equal(int_at(tg_port(d, 30443), "HealthCheckTimeoutSeconds"), 6);
  cJSON_Delete(d);

  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  assert_counts(&f, 0, 0, 0);
  fx_finish(&f);
}

/* An NLB with our name but without our ownership tag is refused and never
 * changed or deleted. */
static void test_nlb_unowned(void **state) {
  struct fix f;
  struct fx_svc s;
  struct aws_params p;
  const char *lb = "aforeignnlb000000000000000000000";
  cJSON *d;
  (void)state;

  fx_start(&f, "");
  nlbsvc_make(&s, lb);
  aws_params_init(&p, host_api());
  aws_params_add(&p, "Name", lb);
  aws_params_add(&p, "Type", "network");
  aws_params_add(&p, "Subnets.member.1", "subnet-0a1b2c3d4e5f60001");
  aws_params_add(&p, "Tags.member.1.Key", "owner");
  aws_params_add(&p, "Tags.member.1.Value", "someone-else");
  fx_query_ok(&f, AWS_SVC_ELBV2, "CreateLoadBalancer", &p);
  fx_calls_clear(&f);

  fx_ensure(&f, &s, CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "not touching it"));
  assert_int_equal(f.p->lb_update_hosts(f.aws, &f.call, &s.svc, &s.list),
                   CCM_ERR_INVALID);
  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  assert_quiet(&f, "touched a foreign NLB");
  assert_counts(&f, 1, 0, 0);
  d = fx_state(&f);
  assert_string_equal(str_at(only_lb(d), "name"), lb);
  cJSON_Delete(d);
  fx_finish(&f);
}

/* Throttling on ELBv2 during ensure: the retries converge, and nothing is
 * created twice. */
static void test_nlb_throttle(void **state) {
  struct fix f;
  struct fx_svc s;
  const char *lb = "athrottle0000000000000000000000c";
  cJSON *d;
  (void)state;

  fx_start(&f, "");
  nlbsvc_make(&s, lb);
  fx_faults(&f, "[{\"kind\": \"throttle\", \"service\": "
                "\"elasticloadbalancing\", \"count\": 2},"
                " {\"kind\": \"throttle\", \"action\": "
                "\"CreateTargetGroup\", \"count\": 2},"
                " {\"kind\": \"throttle\", \"action\": "
                "\"CreateListener\", \"count\": 2},"
                " {\"kind\": \"throttle\", \"action\": "
                "\"RegisterTargets\", \"count\": 2}]");
  fx_ensure(&f, &s, CCM_OK);
  cJSON *fl = fx_control(&f, "GET", "/_double/faults", NULL), *x;
  int fired = 0;
  cJSON_ArrayForEach(x, cJSON_GetObjectItem(fl, "faults")) {
    fired += int_at(x, "fired");
  }
  cJSON_Delete(fl);
  assert_int_equal(fired, 8);
  assert_counts(&f, 1, 2, 2);
  d = fx_state(&f);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(
                       tg_port(d, 30080), "targets")), 2);
  cJSON_Delete(d);
  /* The module stayed within its budget per call. */
  assert_true(fx_calls(&f, "CreateTargetGroup") <= 2 * AWS_RETRY_ATTEMPTS);

  fx_faults(&f, "{\"kind\": \"throttle\", \"action\": "
                "\"DeleteTargetGroup\", \"count\": 2}");
  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  assert_counts(&f, 0, 0, -1);
  fx_finish(&f);
}

/* An ensure that gives up half way (listeners throttled beyond the retry
 * budget) leaves owned groups; a later ensure converges without
 * duplicates, and a delete after another failed ensure leaves nothing. */
static void test_nlb_partial(void **state) {
  struct fix f;
  struct fx_svc s;
  const char *lb = "apartial00000000000000000000000e";
  cJSON *d;
  (void)state;

  fx_start(&f, "");
  nlbsvc_make(&s, lb);
  fx_faults(&f, "{\"kind\": \"throttle\", \"action\": "
                "\"CreateListener\"}");
  fx_ensure(&f, &s, CCM_ERR_THROTTLED);
  assert_true(fx_calls(&f, "CreateListener") <= AWS_RETRY_ATTEMPTS);
  assert_counts(&f, 1, 1, 0);

  fx_faults(&f, "{\"clear\": true}");
  call_init(&f.call, 30000);
  fx_ensure(&f, &s, CCM_OK);
  assert_counts(&f, 1, 2, 2);

  /* The node port of 443 changes and the ensure fails after the new group
   * is made; delete still finds and removes it. */
  s.port443.node_port = 30444;
  fx_faults(&f, "{\"kind\": \"throttle\", \"action\": "
                "\"ModifyListener\"}");
  call_init(&f.call, 30000);
  fx_ensure(&f, &s, CCM_ERR_THROTTLED);
  fx_faults(&f, "{\"clear\": true}");
  assert_counts(&f, -1, 3, -1);
  call_init(&f.call, 30000);
  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  assert_counts(&f, 0, 0, 0);

  /* The load balancer never got made: delete sweeps the group by name. */
  fx_faults(&f, "{\"kind\": \"throttle\", \"action\": "
                "\"CreateListener\"}");
  call_init(&f.call, 30000);
  fx_ensure(&f, &s, CCM_ERR_THROTTLED);
  fx_faults(&f, "{\"clear\": true}");
  {
    /* Someone removes the load balancer by hand. */
    struct aws_params p;
    d = fx_state(&f);
    aws_params_init(&p, host_api());
    aws_params_add(&p, "LoadBalancerArn",
                   str_at(only_lb(d), "arn"));
    fx_query_ok(&f, AWS_SVC_ELBV2, "DeleteLoadBalancer", &p);
    cJSON_Delete(d);
  }
  call_init(&f.call, 30000);
  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  assert_counts(&f, 0, 0, -1);
  fx_finish(&f);
}

/* The type option changes under an existing load balancer: the new type's
 * ensure removes the old one; get and delete find either type, so neither
 * a cleanup nor a type change leaves one behind. */
static void test_nlb_type_switch(void **state) {
  struct fix f;
  struct fx_svc s;
  struct ccm_lb_status st = {0};
  cJSON *d;
  (void)state;

  fx_start(&f, "");
  nlbsvc_make(&s, "aswitch0000000000000000000000000");
  s.opt[0].string_value = "classic";
  fx_ensure(&f, &s, CCM_OK);
  d = fx_state(&f);
  assert_int_equal(obj_count(d, "classic_load_balancers"), 1);
  assert_int_equal(obj_count(d, "load_balancers"), 0);
  cJSON_Delete(d);

  s.opt[0].string_value = "nlb";
  fx_ensure(&f, &s, CCM_OK);
  d = fx_state(&f);
  assert_int_equal(obj_count(d, "classic_load_balancers"), 0);
  assert_int_equal(obj_count(d, "load_balancers"), 1);
  cJSON_Delete(d);

  /* Back to classic for the cleanup: get still finds the NLB. */
  s.opt[0].string_value = "classic";
  assert_int_equal(f.p->lb_get(f.aws, &f.call, &s.svc, &st), CCM_OK);
  lb_status_clear(&st);
  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  d = fx_state(&f);
  assert_int_equal(obj_count(d, "classic_load_balancers"), 0);
  assert_int_equal(obj_count(d, "load_balancers"), 0);
  assert_int_equal(obj_count(d, "target_groups"), 0);
  cJSON_Delete(d);
  assert_int_equal(f.p->lb_get(f.aws, &f.call, &s.svc, &st),
                   CCM_ERR_NOT_FOUND);
  lb_status_clear(&st);
  fx_finish(&f);
}

/* Bad input is refused before any call. */
static void test_nlb_invalid(void **state) {
  struct fix f;
  struct fx_svc s;
  const char *eips[] = {"eipalloc-1"};
  struct ccm_option_value *o;
  (void)state;

  fx_start(&f, "");
  nlbsvc_make(&s, "ainvalid00000000000000000000000d");
  s.port80.protocol = CCM_PROTO_SCTP;
  fx_ensure(&f, &s, CCM_ERR_INVALID);
  s.port80.protocol = CCM_PROTO_TCP;
  /* One EIP for three subnets. */
  o = fx_svc_opt(&s, "eip-allocations", CCM_OPT_STRING_LIST);
  o->list = eips;
  o->list_len = 1;
  fx_ensure(&f, &s, CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "one entry per subnet"));
  assert_counts(&f, 0, 0, -1);
  fx_finish(&f);
}

/* The checks both load-balancer types share refuse before any call, and
 * the port limit names the type: 100 for Classic, 50 for an NLB. */
static void test_lb_validate(void **state) {
  static const struct {
    const char *type, *ports_msg;
    size_t max;
  } kinds[] = {
      {"classic", "a load balancer needs 1 to 100 ports", 100},
      {"nlb", "an NLB needs 1 to 50 ports", 50},
  };
  const struct ccm_service_port *many[101];
  struct fix f;
  struct fx_svc s;
  (void)state;

  fx_start(&f, "");
  for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
    nlbsvc_make(&s, "avalidate00000000000000000000000");
    s.opt[0].string_value = kinds[k].type;
    s.svc.session_affinity_client_ip = true;
    fx_ensure(&f, &s, CCM_ERR_INVALID);
    assert_non_null(strstr(f.call.error, "sessionAffinity ClientIP"));
    s.svc.session_affinity_client_ip = false;
    s.svc.load_balancer_ip = "203.0.113.7";
    fx_ensure(&f, &s, CCM_ERR_INVALID);
    assert_non_null(strstr(f.call.error, "spec.loadBalancerIP"));
    s.svc.load_balancer_ip = NULL;
    s.svc.n_ports = 0;
    fx_ensure(&f, &s, CCM_ERR_INVALID);
    assert_string_equal(f.call.error, kinds[k].ports_msg);
    for (size_t i = 0; i <= kinds[k].max; i++)
      many[i] = &s.port80;
    s.svc.ports = many;
    s.svc.n_ports = kinds[k].max + 1;
    fx_ensure(&f, &s, CCM_ERR_INVALID);
    assert_string_equal(f.call.error, kinds[k].ports_msg);
  }
  assert_int_equal(fx_calls(&f, "CreateLoadBalancer"), 0);
  assert_int_equal(fx_calls(&f, "DescribeLoadBalancers"), 0);
  fx_finish(&f);
}

/* ---- node security-group rules ------------------------------------------ */

#define NODE_SG "sg-0a1b2c3d4e5f60301"
#define CP_SG "sg-0a1b2c3d4e5f60302"
#define UNTAGGED_SG "sg-0a1b2c3d4e5f60303"
#define DESC_CLIENT "kubernetes.io/rule/nlb/client="
#define DESC_HEALTH "kubernetes.io/rule/nlb/health="
#define DESC_MTU "kubernetes.io/rule/nlb/mtu"

static cJSON *sg_ingress(cJSON *st, const char *sg) {
  cJSON *g = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "security_groups"),
                                 sg);
  assert_non_null(g);
  return cJSON_GetObjectItem(g, "ingress");
}

/* The description of the CIDR rule (proto, from, src) in sg: NULL when
 * there is no such rule, "" when it has no description. */
static const char *sg_rule_desc(cJSON *st, const char *sg, const char *proto,
                                int from, const char *src) {
  cJSON *r;
  cJSON_ArrayForEach(r, sg_ingress(st, sg)) {
    if (strcmp(str_at(r, "proto"), proto) == 0 && int_at(r, "from") == from &&
        strcmp(str_at(r, "kind"), "cidr") == 0 &&
        strcmp(str_at(r, "src"), src) == 0) {
      const char *d = str_at(r, "desc");
      return d != NULL ? d : "";
    }
  }
  return NULL;
}

/* Rules in sg whose description is prefix followed by lb ("" = exact). */
static int sg_desc_count(cJSON *st, const char *sg, const char *prefix,
                         const char *lb) {
  char want[256];
  cJSON *r;
  int n = 0;
  snprintf(want, sizeof(want), "%s%s", prefix, lb);
  cJSON_ArrayForEach(r, sg_ingress(st, sg)) {
    const char *d = str_at(r, "desc");
    if (d != NULL && strcmp(d, want) == 0)
      n++;
  }
  return n;
}

static bool desc_is(const char *have, const char *prefix, const char *lb) {
  char want[256];
  snprintf(want, sizeof(want), "%s%s", prefix, lb);
  return have != NULL && strcmp(have, want) == 0;
}

/* A CIDR rule put in place by someone else (desc may be NULL). */
static void rule_plant(struct fix *f, const char *sg, int port,
                       const char *cidr, const char *desc) {
  struct aws_sg_rule r;
  memset(&r, 0, sizeof(r));
  snprintf(r.proto, sizeof(r.proto), "tcp");
  r.from = r.to = port;
  snprintf(r.source, sizeof(r.source), "%s", cidr);
  if (desc != NULL)
    snprintf(r.desc, sizeof(r.desc), "%s", desc);
  assert_int_equal(aws_sg_authorize(f->aws, &f->call, sg, &r), CCM_OK);
}

/* Ensure opens the nodes' cluster group (client, health and MTU rules with
 * upstream's descriptions) and nothing else; a second ensure makes no
 * mutating call; a source-range change replaces the client and MTU rules;
 * update_hosts follows the nodes' groups; delete revokes ours. */
static void test_nlb_node_rules(void **state) {
  struct fix f;
  struct fx_svc s;
  const char *lb = "anoderules000000000000000000000a";
  const char *ranges[] = {"203.0.113.0/24", "198.51.100.0/24"};
  const char *pub[] = {"10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20"};
  cJSON *d;
  (void)state;

  fx_start(&f, "");
  nlbsvc_make(&s, lb);
  fx_ensure(&f, &s, CCM_OK);
  d = fx_state(&f);
  assert_true(desc_is(sg_rule_desc(d, NODE_SG, "tcp", 30080, "0.0.0.0/0"),
                      DESC_CLIENT, lb));
  assert_true(desc_is(sg_rule_desc(d, NODE_SG, "tcp", 30443, "0.0.0.0/0"),
                      DESC_CLIENT, lb));
  for (int i = 0; i < 3; i++) {
    assert_true(desc_is(sg_rule_desc(d, NODE_SG, "tcp", 30080, pub[i]),
                        DESC_HEALTH, lb));
    assert_true(desc_is(sg_rule_desc(d, NODE_SG, "tcp", 30443, pub[i]),
                        DESC_HEALTH, lb));
  }
  assert_true(desc_is(sg_rule_desc(d, NODE_SG, "icmp", 3, "0.0.0.0/0"),
                      DESC_MTU, ""));
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_CLIENT, lb), 2);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_HEALTH, lb), 6);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_MTU, ""), 1);
  /* The seed's own rules stay; groups without nodes are left alone. */
  assert_int_equal(cJSON_GetArraySize(sg_ingress(d, NODE_SG)), 2 + 9);
  assert_int_equal(cJSON_GetArraySize(sg_ingress(d, CP_SG)), 1);
  assert_int_equal(cJSON_GetArraySize(sg_ingress(d, UNTAGGED_SG)), 1);
  cJSON_Delete(d);

  /* Idempotent. */
  fx_calls_clear(&f);
  fx_ensure(&f, &s, CCM_OK);
  assert_quiet(&f, "second ensure changed something");

  /* Source ranges: the client and MTU rules follow, health stays. */
  s.svc.source_ranges = ranges;
  s.svc.n_source_ranges = 2;
  fx_calls_clear(&f);
  fx_ensure(&f, &s, CCM_OK);
  assert_int_equal(fx_calls(&f, "AuthorizeSecurityGroupIngress"), 6);
  assert_int_equal(fx_calls(&f, "RevokeSecurityGroupIngress"), 3);
  d = fx_state(&f);
  assert_null(sg_rule_desc(d, NODE_SG, "tcp", 30080, "0.0.0.0/0"));
  assert_null(sg_rule_desc(d, NODE_SG, "icmp", 3, "0.0.0.0/0"));
  for (int i = 0; i < 2; i++) {
    assert_true(desc_is(sg_rule_desc(d, NODE_SG, "tcp", 30080, ranges[i]),
                        DESC_CLIENT, lb));
    assert_true(desc_is(sg_rule_desc(d, NODE_SG, "tcp", 30443, ranges[i]),
                        DESC_CLIENT, lb));
    assert_true(desc_is(sg_rule_desc(d, NODE_SG, "icmp", 3, ranges[i]),
                        DESC_MTU, ""));
  }
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_CLIENT, lb), 4);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_HEALTH, lb), 6);
  cJSON_Delete(d);

  /* No nodes: the group hosts none of ours, so our rules leave it; the
   * nodes come back and so do the rules. */
  s.list.n_nodes = 0;
  assert_int_equal(f.p->lb_update_hosts(f.aws, &f.call, &s.svc, &s.list),
                   CCM_OK);
  d = fx_state(&f);
  assert_int_equal(cJSON_GetArraySize(sg_ingress(d, NODE_SG)), 2);
  cJSON_Delete(d);
  s.list.n_nodes = 2;
  assert_int_equal(f.p->lb_update_hosts(f.aws, &f.call, &s.svc, &s.list),
                   CCM_OK);
  d = fx_state(&f);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_CLIENT, lb), 4);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_HEALTH, lb), 6);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_MTU, ""), 2);
  cJSON_Delete(d);

  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  d = fx_state(&f);
  assert_int_equal(cJSON_GetArraySize(sg_ingress(d, NODE_SG)), 2);
  cJSON_Delete(d);
  fx_finish(&f);
}

/* Two NLBs share the node group and its MTU rule: deleting the first
 * keeps the MTU rule, the second takes it. A rule without our description
 * (even on one of our ports) and our description in a group without the
 * cluster tag are never touched. */
static void test_nlb_node_rules_shared(void **state) {
  struct fix f;
  struct fx_svc a, b;
  const char *lba = "anoderulesshared0000000000000001";
  const char *lbb = "anoderulesshared0000000000000002";
  char desc[256];
  cJSON *d;
  (void)state;

  fx_start(&f, "");
  nlbsvc_make(&a, lba);
  nlbsvc_make(&b, lbb);
  b.svc.name = "api";
  b.port80.node_port = 31080;
  b.port443.node_port = 31443;
  snprintf(desc, sizeof(desc), "%s%s", DESC_CLIENT, lba);
  rule_plant(&f, NODE_SG, 30080, "0.0.0.0/0", NULL);
  rule_plant(&f, UNTAGGED_SG, 30443, "0.0.0.0/0", desc);

  fx_ensure(&f, &a, CCM_OK);
  fx_ensure(&f, &b, CCM_OK);
  d = fx_state(&f);
  /* The undescribed rule already admits 30080: left as it is. */
  assert_string_equal(sg_rule_desc(d, NODE_SG, "tcp", 30080, "0.0.0.0/0"),
                      "");
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_CLIENT, lba), 1);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_CLIENT, lbb), 2);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_HEALTH, lbb), 6);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_MTU, ""), 1);
  assert_int_equal(cJSON_GetArraySize(sg_ingress(d, UNTAGGED_SG)), 2);
  cJSON_Delete(d);

  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &a.svc), CCM_OK);
  d = fx_state(&f);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_CLIENT, lba), 0);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_HEALTH, lba), 0);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_CLIENT, lbb), 2);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_HEALTH, lbb), 6);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_MTU, ""), 1);
  assert_string_equal(sg_rule_desc(d, NODE_SG, "tcp", 30080, "0.0.0.0/0"),
                      "");
  assert_true(desc_is(sg_rule_desc(d, UNTAGGED_SG, "tcp", 30443,
                                   "0.0.0.0/0"), DESC_CLIENT, lba));
  cJSON_Delete(d);

  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &b.svc), CCM_OK);
  d = fx_state(&f);
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_MTU, ""), 0);
  /* The seed's two rules and the undescribed one. */
  assert_int_equal(cJSON_GetArraySize(sg_ingress(d, NODE_SG)), 3);
  assert_int_equal(cJSON_GetArraySize(sg_ingress(d, UNTAGGED_SG)), 2);
  cJSON_Delete(d);
  fx_finish(&f);
}

/* Internal with eTP Local: clients default to the subnets' CIDRs, the
 * health rule is for the health-check node port, and a UDP port gets a
 * UDP client rule. */
#define VPC_CIDR "10.0.0.0/16" /* the seed's VPC */

static void test_nlb_node_rules_internal(void **state) {
  struct fix f;
  struct fx_svc s;
  struct ccm_service_port udp;
  const struct ccm_service_port *ports[2];
  const char *lb = "anoderulesinternal00000000000001";
  const char *priv[] = {"10.0.128.0/20", "10.0.144.0/20", "10.0.160.0/20"};
  cJSON *d;
  (void)state;

  fx_start(&f, "");
  nlbsvc_make(&s, lb);
  udp = (struct ccm_service_port){sizeof(udp), "dns", CCM_PROTO_UDP, 53,
                                  30053};
  ports[0] = &s.port80;
  ports[1] = &udp;
  s.svc.ports = ports;
  s.svc.n_ports = 2;
  fx_svc_opt(&s, "internal", CCM_OPT_BOOL)->bool_value = true;
  s.svc.external_traffic_local = true;
  s.svc.health_check_node_port = 32000;
  fx_ensure(&f, &s, CCM_OK);
  d = fx_state(&f);
  /* clients: the VPC (upstream's default for internal); health checks:
   * the load balancer's subnets */
  assert_true(desc_is(sg_rule_desc(d, NODE_SG, "tcp", 30080, VPC_CIDR),
                      DESC_CLIENT, lb));
  assert_true(desc_is(sg_rule_desc(d, NODE_SG, "udp", 30053, VPC_CIDR),
                      DESC_CLIENT, lb));
  assert_true(desc_is(sg_rule_desc(d, NODE_SG, "icmp", 3, VPC_CIDR),
                      DESC_MTU, ""));
  for (int i = 0; i < 3; i++) {
    assert_null(sg_rule_desc(d, NODE_SG, "tcp", 30080, priv[i]));
    assert_true(desc_is(sg_rule_desc(d, NODE_SG, "tcp", 32000, priv[i]),
                        DESC_HEALTH, lb));
  }
  assert_null(sg_rule_desc(d, NODE_SG, "tcp", 30080, "0.0.0.0/0"));
  assert_int_equal(sg_desc_count(d, NODE_SG, DESC_HEALTH, lb), 3);
  cJSON_Delete(d);
  fx_calls_clear(&f);
  fx_ensure(&f, &s, CCM_OK);
  assert_quiet(&f, "second ensure changed something");
  assert_int_equal(f.p->lb_delete(f.aws, &f.call, &s.svc), CCM_OK);
  d = fx_state(&f);
  assert_int_equal(cJSON_GetArraySize(sg_ingress(d, NODE_SG)), 2);
  cJSON_Delete(d);
  fx_finish(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nlb_lifecycle),
      cmocka_unit_test(test_nlb_internal_local),
      cmocka_unit_test(test_nlb_unowned),
      cmocka_unit_test(test_nlb_throttle),
      cmocka_unit_test(test_nlb_partial),
      cmocka_unit_test(test_nlb_invalid),
      cmocka_unit_test(test_lb_validate),
      cmocka_unit_test(test_nlb_type_switch),
      cmocka_unit_test(test_nlb_node_rules),
      cmocka_unit_test(test_nlb_node_rules_shared),
      cmocka_unit_test(test_nlb_node_rules_internal),
  };
  int rc;
  if (http_global_init() != 0)
    return 1;
  log_set_level(CCM_LOG_ERROR);
  rc = cmocka_run_group_tests(tests, fx_double_start, fx_double_stop);
  http_global_cleanup();
  return rc;
}
