/*
 * test_route_logic.c: unit tests of host/controllers/route_plan.c: CIDR
 * parsing and containment (IPv4, IPv6), --cluster-cidr validation,
 * responsibility, the create/delete plan and the condition decisions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "controllers/route_plan.h"
#include "kube/objects.h"
#include "util/mem.h"

static struct route_cidr cidr(const char *text) {
  struct route_cidr c;
  assert_int_equal(route_cidr_parse(text, &c), 0);
  return c;
}

static void assert_canonical(const char *in, const char *want) {
  char buf[CCM_ROUTE_CIDR_TEXT];
  struct route_cidr c = cidr(in);
  assert_int_equal(route_cidr_format(&c, buf, sizeof(buf)), 0);
  assert_string_equal(buf, want);
}

static void test_parse(void **state) {
  (void)state;
  struct route_cidr c;
  assert_canonical("10.244.1.0/24", "10.244.1.0/24");
  assert_canonical("10.244.1.7/24", "10.244.1.0/24"); /* host bits off */
  assert_canonical("0.0.0.0/0", "0.0.0.0/0");
  assert_canonical("10.1.2.3/32", "10.1.2.3/32");
  assert_canonical("fd00:0:0:0::/64", "fd00::/64");
  assert_canonical("fd00:10:0:1:ffff::/63", "fd00:10::/63");
  assert_canonical("::/0", "::/0");
  c = cidr("fd00::/48");
  assert_int_equal(c.family, 6);
  assert_int_equal(c.prefix, 48);

  const char *bad[] = {"", "10.0.0.0", "10.0.0.0/", "10.0.0.0/33",
                       "10.0.0/8", "10.0.0.0/8x", "10.0.0.0/-1",
                       "fd00::/129", "garbage/8", "/8", "10.0.0.0/0008",
                       "1.2.3.4.5/8", "fd00::g/64", NULL};
  for (size_t i = 0; bad[i] != NULL; i++)
    assert_int_equal(route_cidr_parse(bad[i], &c), -1);
  assert_int_equal(route_cidr_parse(NULL, &c), -1);
}

static void test_contains(void **state) {
  (void)state;
  struct route_cidr net = cidr("10.244.0.0/14"); /* 10.244 - 10.247 */
  struct route_cidr in = cidr("10.247.255.0/24");
  struct route_cidr out = cidr("10.248.0.0/24");
  struct route_cidr v6 = cidr("fd00:10:244::/56");
  struct route_cidr v6in = cidr("fd00:10:244:ff::/64");
  struct route_cidr v6out = cidr("fd00:10:245::/64");
  assert_true(route_cidr_contains(&net, 4, in.addr));
  assert_false(route_cidr_contains(&net, 4, out.addr));
  assert_false(route_cidr_contains(&net, 6, v6in.addr)); /* family */
  assert_true(route_cidr_contains(&v6, 6, v6in.addr));
  assert_false(route_cidr_contains(&v6, 6, v6out.addr));
  struct route_cidr all = cidr("0.0.0.0/0");
  assert_true(route_cidr_contains(&all, 4, out.addr));
}

static void test_cluster_cidrs(void **state) {
  (void)state;
  struct route_cidr c[CCM_ROUTE_MAX_CLUSTER_CIDRS];
  size_t n = 9;
  char err[256];

  assert_int_equal(route_cluster_cidrs_parse("10.244.0.0/16", c, &n, err,
                                             sizeof(err)), 0);
  assert_int_equal(n, 1);
  assert_int_equal(route_cluster_cidrs_parse("10.244.0.0/16, fd00:10::/56",
                                             c, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 2);
  assert_int_equal(c[1].family, 6);

  assert_int_equal(route_cluster_cidrs_parse("", c, &n, err, sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "empty"));
  assert_int_equal(route_cluster_cidrs_parse("10.0.0.0/8,10.1.0.0/16", c, &n,
                                             err, sizeof(err)), -1);
  assert_non_null(strstr(err, "one IPv4 and one IPv6"));
  assert_int_equal(route_cluster_cidrs_parse("10.0.0.0/8,fd00::/8,1.0.0.0/8",
                                             c, &n, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "at most 2"));
  assert_int_equal(route_cluster_cidrs_parse("10.0.0.0/8,", c, &n, err,
                                             sizeof(err)), -1);
  assert_int_equal(route_cluster_cidrs_parse("10.0.0.0", c, &n, err,
                                             sizeof(err)), -1);
  assert_non_null(strstr(err, "\"10.0.0.0\" is not a CIDR"));
}

static void test_responsible(void **state) {
  (void)state;
  struct route_cidr c[2];
  c[0] = cidr("10.244.0.0/16");
  c[1] = cidr("fd00:10:244::/56");
  assert_true(route_is_responsible(c, 2, "10.244.3.0/24"));
  assert_true(route_is_responsible(c, 2, "10.244.0.0/16"));
  /* A supernet whose last address is inside counts, as upstream. */
  assert_true(route_is_responsible(c, 2, "10.244.255.255/32"));
  /* First address outside, last inside: 10.240.0.0/12 ends at
   * 10.255.255.255, outside too; 10.244.0.0/15 starts inside. */
  assert_false(route_is_responsible(c, 2, "10.240.0.0/12"));
  assert_true(route_is_responsible(c, 2, "10.244.0.0/15"));
  assert_false(route_is_responsible(c, 2, "10.245.0.0/24"));
  assert_false(route_is_responsible(c, 2, "192.168.0.0/24"));
  assert_true(route_is_responsible(c, 2, "fd00:10:244:7::/64"));
  assert_false(route_is_responsible(c, 2, "fd00:10:245::/64"));
  assert_false(route_is_responsible(c, 1, "fd00:10:244:7::/64"));
  /* Unparseable: never ours, never deleted. */
  assert_false(route_is_responsible(c, 2, "not-a-cidr"));
  assert_false(route_is_responsible(c, 2, NULL));
}

static bool plan_creates(const struct route_plan *p, size_t node,
                         size_t idx) {
  for (size_t i = 0; i < p->n_creates; i++)
    if (p->creates[i].node == node && p->creates[i].cidr == idx)
      return true;
  return false;
}

static bool plan_deletes(const struct route_plan *p, size_t route) {
  for (size_t i = 0; i < p->n_deletes; i++)
    if (p->deletes[i] == route)
      return true;
  return false;
}

static void test_plan(void **state) {
  (void)state;
  struct route_cidr cl[2];
  cl[0] = cidr("10.244.0.0/16");
  cl[1] = cidr("fd00:10:244::/56");
  const char *a_cidrs[] = {"10.244.1.0/24", "fd00:10:244:1::/64"};
  const char *b_cidrs[] = {"10.244.2.0/24"};
  const char *d_cidrs[] = {"10.244.4.0/24", "10.244.4.0/24"}; /* dup */
  const char *e_cidrs[] = {"192.168.9.0/24"}; /* outside the cluster */
  struct route_plan_node nodes[] = {
      {"a", a_cidrs, 2},
      {"b", b_cidrs, 1},
      {"c", NULL, 0},      /* no podCIDR, but has a stale route */
      {"d", d_cidrs, 2},
      {"e", e_cidrs, 1},
      {"f", NULL, 0},      /* nothing at all */
  };
  struct route_plan_route routes[] = {
      /* 0: a's IPv4 route exists */
      {"r0", "a", "10.244.1.0/24", false},
      /* 1: a's IPv6 route exists, in a different spelling */
      {"r1", "a", "fd00:10:244:1:0::/64", false},
      /* 2: b's route points at the wrong CIDR: delete, and create */
      {"r2", "b", "10.244.99.0/24", false},
      /* 3: route of a deleted node */
      {"r3", "gone", "10.244.3.0/24", false},
      /* 4: outside the cluster CIDR: never deleted */
      {"r4", "gone", "192.168.1.0/24", false},
      /* 5: c's stale route */
      {"r5", "c", "10.244.5.0/24", false},
      /* 6: blackhole on a live mapping: delete */
      {"r6", "d", "10.244.4.0/24", true},
      /* 7: no target node, inside: delete */
      {"r7", NULL, "10.244.7.0/24", false},
      /* 8: no target node, outside: keep */
      {"r8", "", "172.16.0.0/24", false},
      /* 9: unparseable: keep */
      {"r9", "gone", "bogus", false},
      /* 10: a blackhole outside the cluster: keep */
      {"r10", "gone", "192.168.2.0/24", true},
  };
  struct route_plan p;

  assert_int_equal(route_plan_build(cl, 2, nodes, 6, routes, 11, &p), 0);

  assert_int_equal(p.n_creates, 2);
  assert_true(plan_creates(&p, 1, 0)); /* b */
  assert_true(plan_creates(&p, 4, 0)); /* e, even outside the cluster */
  /* d: its (blackhole) route counts as present this round, as upstream's
   * routeMap; the blackhole is deleted and the next round re-creates. */
  assert_false(plan_creates(&p, 3, 0));
  assert_false(plan_creates(&p, 3, 1));
  assert_false(plan_creates(&p, 0, 0));
  assert_false(plan_creates(&p, 0, 1));

  assert_int_equal(p.n_deletes, 5);
  assert_true(plan_deletes(&p, 2));
  assert_true(plan_deletes(&p, 3));
  assert_true(plan_deletes(&p, 5));
  assert_true(plan_deletes(&p, 6));
  assert_true(plan_deletes(&p, 7));

  assert_int_equal(p.wanted[0], 2);
  assert_int_equal(p.kept[0], 2);
  assert_int_equal(p.wanted[3], 1);
  assert_int_equal(p.kept[3], 1); /* one despite the duplicate entry */
  assert_true(p.has_routes[2]);
  assert_false(p.has_routes[5]);
  assert_false(p.has_routes[4]);
  route_plan_free(&p);
}

static void test_plan_empty(void **state) {
  (void)state;
  struct route_cidr cl = cidr("10.244.0.0/16");
  struct route_plan p;
  assert_int_equal(route_plan_build(&cl, 1, NULL, 0, NULL, 0, &p), 0);
  assert_int_equal(p.n_creates, 0);
  assert_int_equal(p.n_deletes, 0);
  route_plan_free(&p);

  /* No nodes at all: every owned route goes, outside ones stay. */
  struct route_plan_route routes[] = {
      {"x", "n1", "10.244.1.0/24", false},
      {"y", "n2", "10.0.0.0/24", false},
  };
  assert_int_equal(route_plan_build(&cl, 1, NULL, 0, routes, 2, &p), 0);
  assert_int_equal(p.n_deletes, 1);
  assert_int_equal(p.deletes[0], 0);
  route_plan_free(&p);
}

static void test_plan_dup(void **state) {
  (void)state;
  struct route_cidr cl = cidr("fd00:10:244::/56");
  /* The same CIDR twice, spelled two ways: one route, one create. */
  const char *g_cidrs[] = {"fd00:10:244:2::/64", "fd00:10:244:2:0::/64"};
  struct route_plan_node nodes[] = {{"g", g_cidrs, 2}};
  struct route_plan p;
  assert_int_equal(route_plan_build(&cl, 1, nodes, 1, NULL, 0, &p), 0);
  assert_int_equal(p.n_creates, 1);
  assert_int_equal(p.wanted[0], 1);
  assert_int_equal(p.kept[0], 0);
  route_plan_free(&p);
}

static void test_plan_nomem(void **state) {
  (void)state;
  struct route_cidr cl = cidr("10.244.0.0/16");
  const char *a_cidrs[] = {"10.244.1.0/24"};
  struct route_plan_node nodes[] = {{"a", a_cidrs, 1}};
  struct route_plan_route routes[] = {{"x", "n1", "10.244.1.0/24", false}};
  struct route_plan p;
  for (long n = 0; n < 7; n++) {
    mem_fail_after(n);
    int rc = route_plan_build(&cl, 1, nodes, 1, routes, 1, &p);
    mem_fail_after(-1);
    assert_int_equal(rc, -1);
    assert_null(p.creates);
    assert_null(p.deletes);
  }
  assert_int_equal(route_plan_build(&cl, 1, nodes, 1, routes, 1, &p), 0);
  route_plan_free(&p);
}

static void test_condition(void **state) {
  (void)state;
  assert_int_equal(route_cond_decide(0, 0, false), ROUTE_COND_LEAVE);
  assert_int_equal(route_cond_decide(0, 0, true), ROUTE_COND_FAILED);
  assert_int_equal(route_cond_decide(2, 2, false), ROUTE_COND_CREATED);
  assert_int_equal(route_cond_decide(2, 1, true), ROUTE_COND_FAILED);

  assert_true(route_cond_matches(ROUTE_COND_CREATED, OBJ_COND_FALSE,
                                 "RouteCreated"));
  /* A False condition with a foreign reason is overwritten. */
  assert_false(route_cond_matches(ROUTE_COND_CREATED, OBJ_COND_FALSE,
                                  "CalicoIsUp"));
  assert_false(route_cond_matches(ROUTE_COND_CREATED, OBJ_COND_TRUE,
                                  "RouteCreated"));
  assert_false(route_cond_matches(ROUTE_COND_CREATED, OBJ_COND_UNKNOWN,
                                  NULL));
  assert_true(route_cond_matches(ROUTE_COND_FAILED, OBJ_COND_TRUE,
                                 "NoRouteCreated"));
  assert_false(route_cond_matches(ROUTE_COND_FAILED, OBJ_COND_TRUE,
                                  "RouteCreated"));
  assert_true(route_cond_matches(ROUTE_COND_LEAVE, OBJ_COND_UNKNOWN, NULL));
  assert_string_equal(CCM_ROUTE_MSG_CREATED, "RouteController created a route");
  assert_string_equal(CCM_ROUTE_MSG_FAILED,
                      "RouteController failed to create a route");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),        cmocka_unit_test(test_contains),
      cmocka_unit_test(test_cluster_cidrs), cmocka_unit_test(test_responsible),
      cmocka_unit_test(test_plan),         cmocka_unit_test(test_plan_empty),
      cmocka_unit_test(test_plan_dup),
      cmocka_unit_test(test_plan_nomem),   cmocka_unit_test(test_condition),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
