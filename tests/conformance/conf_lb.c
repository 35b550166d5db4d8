/*
 * conf_lb.c: the "lb" group: load-balancer get/ensure/update_hosts/delete
 * as the service controller relies on them (idempotence, NOT_FOUND after
 * delete, delete of the absent). It must leave no load balancer behind.
 */
#include <stdio.h>
#include <string.h>

#include "conformance.h"

#define ERRLEN 600

/* Best-effort cleanup: delete until get answers NOT_FOUND (a module that
 * made duplicates may need more than one delete). */
static void lb_cleanup(struct conf_run *run, const struct conf_service *s) {
  for (int i = 0; i < 4; i++) {
    struct ccm_lb_status st = {0};
    char err[ERRLEN];
    int g;

    conf_lb_delete(run, &s->svc, err, sizeof err);
    g = conf_lb_get(run, &s->svc, &st, err, sizeof err);
    lb_status_clear(&st);
    if (g != CCM_OK)
      return;
  }
}

static int call_wanted(char *why, size_t cap, const char *what, int st,
                       const char *want, const char *err) {
  return conf_call_fail(why, cap, what, st, want, err);
}

static int call_failed(char *why, size_t cap, const char *what, int st,
                       const char *err) {
  return call_wanted(why, cap, what, st, NULL, err);
}

/* Ensure s on node set A; on failure fills why. */
static bool ensure_once(struct conf_run *run, const struct conf_service *s,
                        struct ccm_lb_status *out, const char *what,
                        char *why, size_t cap) {
  struct conf_node_set set;
  char err[ERRLEN];
  int st;

  conf_nodes_a(run, &set);
  st = conf_lb_ensure(run, &s->svc, &set.list, out, err, sizeof err);
  if (st != CCM_OK) {
    call_failed(why, cap, what, st, err);
    return false;
  }
  return true;
}

static int check_ensure_idempotent(struct conf_run *run, char *why,
                                   size_t cap) {
  struct conf_service s;
  struct ccm_lb_status st1 = {0}, st2 = {0}, after = {0};
  char err[ERRLEN], f1[256], f2[256];
  int res = CONF_FAIL, st;

  if (!conf_service_make(run, &s, "ensure-twice", why, cap))
    return CONF_FAIL;
  if (!ensure_once(run, &s, &st1, "first lb_ensure", why, cap))
    goto done;
  if (!ensure_once(run, &s, &st2, "second lb_ensure", why, cap))
    goto done;
  conf_lb_format(&st1, f1, sizeof f1);
  conf_lb_format(&st2, f2, sizeof f2);
  conf_note(run, "lb_ensure twice: %s, %s", f1, f2);
  if (!conf_lb_equal(&st1, &st2)) {
    conf_fail(why, cap, "second lb_ensure returned a different status: %s "
              "then %s", f1, f2);
    goto done;
  }
  st = conf_lb_delete(run, &s.svc, err, sizeof err);
  if (st != CCM_OK) {
    call_failed(why, cap, "lb_delete", st, err);
    goto done;
  }
  st = conf_lb_get(run, &s.svc, &after, err, sizeof err);
  if (st == CCM_OK) {
    conf_fail(why, cap, "after one lb_delete, lb_get still finds a load "
              "balancer: the second lb_ensure made a duplicate");
    goto done;
  }
  if (st != CCM_ERR_NOT_FOUND) {
    call_failed(why, cap, "lb_get after lb_delete", st, err);
    goto done;
  }
  res = CONF_PASS;
done:
  lb_cleanup(run, &s);
  lb_status_clear(&st1);
  lb_status_clear(&st2);
  lb_status_clear(&after);
  return res;
}

static int check_get_after_ensure(struct conf_run *run, char *why,
                                  size_t cap) {
  struct conf_service s;
  struct ccm_lb_status ens = {0}, got = {0};
  char err[ERRLEN], f1[256], f2[256];
  int res = CONF_FAIL, st;

  if (!conf_service_make(run, &s, "get-after-ensure", why, cap))
    return CONF_FAIL;
  if (!ensure_once(run, &s, &ens, "lb_ensure", why, cap))
    goto done;
  st = conf_lb_get(run, &s.svc, &got, err, sizeof err);
  if (st != CCM_OK) {
    call_failed(why, cap, "lb_get after lb_ensure", st, err);
    goto done;
  }
  if (!conf_lb_equal(&ens, &got)) {
    conf_lb_format(&ens, f1, sizeof f1);
    conf_lb_format(&got, f2, sizeof f2);
    conf_fail(why, cap, "lb_get returned %s, lb_ensure had returned %s", f2,
              f1);
    goto done;
  }
  res = CONF_PASS;
done:
  lb_cleanup(run, &s);
  lb_status_clear(&ens);
  lb_status_clear(&got);
  return res;
}

static int check_update_hosts(struct conf_run *run, char *why, size_t cap) {
  struct conf_service s;
  struct conf_node_set set_b;
  struct ccm_lb_status ens = {0}, got = {0};
  char err[ERRLEN], f1[256], f2[256];
  int res = CONF_FAIL, st;

  if (!conf_service_make(run, &s, "update-hosts", why, cap))
    return CONF_FAIL;
  if (!ensure_once(run, &s, &ens, "lb_ensure", why, cap))
    goto done;
  conf_nodes_b(run, &set_b);
  st = conf_lb_update_hosts(run, &s.svc, &set_b.list, err, sizeof err);
  if (st != CCM_OK) {
    call_failed(why, cap, "lb_update_hosts with a changed node set", st, err);
    goto done;
  }
  st = conf_lb_get(run, &s.svc, &got, err, sizeof err);
  if (st != CCM_OK) {
    call_failed(why, cap, "lb_get after lb_update_hosts", st, err);
    goto done;
  }
  if (!conf_lb_equal(&ens, &got)) {
    conf_lb_format(&ens, f1, sizeof f1);
    conf_lb_format(&got, f2, sizeof f2);
    conf_fail(why, cap, "after lb_update_hosts lb_get returned %s, lb_ensure "
              "had returned %s", f2, f1);
    goto done;
  }
  res = CONF_PASS;
done:
  lb_cleanup(run, &s);
  lb_status_clear(&ens);
  lb_status_clear(&got);
  return res;
}

static int check_delete_idempotent(struct conf_run *run, char *why,
                                   size_t cap) {
  struct conf_service s;
  struct ccm_lb_status ens = {0};
  char err[ERRLEN];
  int res = CONF_FAIL, st;

  if (!conf_service_make(run, &s, "delete-twice", why, cap))
    return CONF_FAIL;
  if (!ensure_once(run, &s, &ens, "lb_ensure", why, cap))
    goto done;
  st = conf_lb_delete(run, &s.svc, err, sizeof err);
  if (st != CCM_OK) {
    call_failed(why, cap, "first lb_delete", st, err);
    goto done;
  }
  st = conf_lb_delete(run, &s.svc, err, sizeof err);
  if (st != CCM_OK) {
    call_wanted(why, cap, "second lb_delete", st, "CCM_OK", err);
    goto done;
  }
  res = CONF_PASS;
done:
  lb_cleanup(run, &s);
  lb_status_clear(&ens);
  return res;
}

static int check_delete_absent(struct conf_run *run, char *why, size_t cap) {
  struct conf_service s;
  char err[ERRLEN];
  int st;

  if (!conf_service_make(run, &s, "delete-absent", why, cap))
    return CONF_FAIL;
  st = conf_lb_delete(run, &s.svc, err, sizeof err);
  if (st != CCM_OK)
    return call_wanted(why, cap,
                       "lb_delete of a load balancer that never existed", st,
                       "CCM_OK", err);
  return CONF_PASS;
}

static int check_get_after_delete(struct conf_run *run, char *why,
                                  size_t cap) {
  struct conf_service s;
  struct ccm_lb_status ens = {0}, got = {0};
  char err[ERRLEN];
  int res = CONF_FAIL, st;

  if (!conf_service_make(run, &s, "get-after-delete", why, cap))
    return CONF_FAIL;
  if (!ensure_once(run, &s, &ens, "lb_ensure", why, cap))
    goto done;
  st = conf_lb_delete(run, &s.svc, err, sizeof err);
  if (st != CCM_OK) {
    call_failed(why, cap, "lb_delete", st, err);
    goto done;
  }
  st = conf_lb_get(run, &s.svc, &got, err, sizeof err);
  if (st != CCM_ERR_NOT_FOUND) {
    call_wanted(why, cap, "lb_get after lb_delete", st, "CCM_ERR_NOT_FOUND",
                err);
    goto done;
  }
  res = CONF_PASS;
done:
  lb_cleanup(run, &s);
  lb_status_clear(&ens);
  lb_status_clear(&got);
  return res;
}

static int check_get_absent(struct conf_run *run, char *why, size_t cap) {
  struct conf_service s;
  struct ccm_lb_status got = {0};
  char err[ERRLEN];
  int st;

  if (!conf_service_make(run, &s, "get-absent", why, cap))
    return CONF_FAIL;
  st = conf_lb_get(run, &s.svc, &got, err, sizeof err);
  lb_status_clear(&got);
  if (st != CCM_ERR_NOT_FOUND)
    return call_wanted(why, cap,
                       "lb_get of a load balancer that never existed", st,
                       "CCM_ERR_NOT_FOUND", err);
  return CONF_PASS;
}

static bool lb_supported(const struct conf_run *run, char *why, size_t cap) {
  if (MODULE_HAS(run->mod, lb_ensure) || MODULE_HAS(run->mod, lb_get) ||
      MODULE_HAS(run->mod, lb_delete) || MODULE_HAS(run->mod, lb_update_hosts))
    return true;
  snprintf(why, cap, "module has no load-balancer operations");
  return false;
}

static const struct conf_check LB_CHECKS[] = {
    {"ensure-idempotent", check_ensure_idempotent},
    {"get-after-ensure", check_get_after_ensure},
    {"update-hosts", check_update_hosts},
    {"delete-idempotent", check_delete_idempotent},
    {"delete-absent", check_delete_absent},
    {"get-after-delete", check_get_after_delete},
    {"get-absent", check_get_absent},
    {NULL, NULL}};

const struct conf_group conf_group_lb = {"lb", lb_supported, LB_CHECKS};
