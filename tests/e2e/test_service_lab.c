/*
 * test_service_lab.c: e2e tests of the service controller (host/
 * controllers/service*.c) with the API double and the lab provider: the
 * create, update, type-change and delete paths (finalizer, recorded name,
 * ingress, Events, lab state), class routing and re-creation with a new
 * UID. Polls with generous bounds; asserts no timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controllers/service.h"
#include "controllers/service_logic.h"
#include "harness.h"
#include "kube/writes.h"

#define WAIT_MS 30000u
#define NS "default"

static int setup(void **state)
{
  struct e2e *e = calloc(1, sizeof(*e));
  struct e2e_opts o = {.provider = "lab"};

  if (e == NULL)
    return -1;
  *state = e;
  if (e2e_setup(e, &o) != 0 ||
      e2e_run_controller(e, &service_controller_ops) != 0)
    return -1;
  if (e2e_create_node(e, "n1", "10.0.0.1", true) != 0 ||
      e2e_create_node(e, "n2", "10.0.0.2", true) != 0)
    return -1;
  return e2e_go(e);
}

static int teardown(void **state)
{
  struct e2e *e = *state;

  if (e != NULL) {
    e2e_stop(e);
    free(e);
  }
  return 0;
}

static void svc_path(char *buf, size_t cap, const char *name)
{
  snprintf(buf, cap, "/api/v1/namespaces/" NS "/services/%s", name);
}

static bool has_fin(const cJSON *obj)
{
  return obj != NULL && kube_has_finalizer(obj, CCM_SVC_FINALIZER);
}

static const char *ann_name(const cJSON *obj)
{
  const cJSON *a = e2e_json_at(obj, "metadata.annotations");
  const cJSON *n = cJSON_GetObjectItemCaseSensitive(a,
                                                    CCM_SVC_NAME_ANNOTATION);

  return cJSON_IsString(n) ? n->valuestring : NULL;
}

static bool pred_ready2(const cJSON *obj, void *ud)
{
  (void)ud;
  return has_fin(obj) && ann_name(obj) != NULL &&
         e2e_json_str(obj, "status.loadBalancer.ingress.0.ip") != NULL;
}

static bool pred_released(const cJSON *obj, void *ud)
{
  (void)ud;
  return obj != NULL && !has_fin(obj) &&
         e2e_json_at(obj, "status.loadBalancer.ingress.0") == NULL;
}

/* Events about Service name with reason; with msg non-NULL, the message
 * must match too. */
static int event_count(struct e2e *e, const char *name, const char *reason,
                       const char *msg)
{
  cJSON *list = e2e_get(e, "/api/v1/namespaces/" NS "/events");
  const cJSON *it, *items = cJSON_GetObjectItemCaseSensitive(list, "items");
  int n = 0;

  cJSON_ArrayForEach(it, items) {
    const char *on = e2e_json_str(it, "involvedObject.name");
    const char *ok = e2e_json_str(it, "involvedObject.kind");
    const char *r = e2e_json_str(it, "reason");
    const char *m = e2e_json_str(it, "message");

    if (on && ok && r && strcmp(on, name) == 0 &&
        strcmp(ok, "Service") == 0 && strcmp(r, reason) == 0 &&
        (msg == NULL || (m && strcmp(m, msg) == 0)))
      n++;
  }
  cJSON_Delete(list);
  return n;
}

struct ev {
  const char *name, *reason, *msg;
};

static bool pred_event(struct e2e *e, void *ud)
{
  const struct ev *v = ud;

  return event_count(e, v->name, v->reason, v->msg) > 0;
}

static void wait_event(struct e2e *e, const char *name, const char *reason,
                       const char *msg)
{
  struct ev v = {name, reason, msg};

  if (!e2e_wait(e, pred_event, &v, WAIT_MS))
    fail_msg("no %s event for %s", reason, name);
}

/* The lab's record for load balancer lbname, or NULL (cJSON_Delete the
 * returned root via *root). */
static const cJSON *lab_lb(struct e2e *e, const char *lbname, cJSON **root)
{
  FILE *f = fopen(e->state_file, "r");
  char *buf = NULL;
  long len;
  const cJSON *it;

  *root = NULL;
  if (f == NULL)
    return NULL;
  len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (len > 0 && fseek(f, 0, SEEK_SET) == 0) {
    buf = calloc(1, (size_t)len + 1);
    if (buf != NULL && fread(buf, 1, (size_t)len, f) != (size_t)len) {
      free(buf);
      buf = NULL;
    }
  }
  fclose(f);
  if (buf == NULL)
    return NULL;
  *root = cJSON_Parse(buf);
  free(buf);
  cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(*root,
                                                          "load_balancers")) {
    const char *n = e2e_json_str(it, "name");

    if (n != NULL && strcmp(n, lbname) == 0)
      return it;
  }
  return NULL;
}

struct lab_q {
  const char *name;
  int port;    /* > 0: the record must have this first port */
  bool present;
};

static bool pred_lab(struct e2e *e, void *ud)
{
  const struct lab_q *q = ud;
  cJSON *root;
  const cJSON *lb = lab_lb(e, q->name, &root);
  bool ok = (lb != NULL) == q->present;

  if (ok && lb != NULL && q->port > 0) {
    const cJSON *p = e2e_json_at(lb, "ports.0.port");

    ok = cJSON_IsNumber(p) && p->valueint == q->port;
  }
  cJSON_Delete(root);
  return ok;
}

static void wait_lab(struct e2e *e, const char *name, int port, bool present)
{
  struct lab_q q = {name, port, present};

  if (!e2e_wait(e, pred_lab, &q, WAIT_MS))
    fail_msg("lab state: %s %s (port %d)", name,
             present ? "missing" : "still present", port);
}

/* Create name and wait until it converged; returns its object. */
static cJSON *create_ready(struct e2e *e, const char *name, int port)
{
  char path[256];
  cJSON *obj;

  assert_int_equal(e2e_create_service_lb(e, NS, name, port, NULL), 0);
  svc_path(path, sizeof(path), name);
  assert_true(e2e_wait_object(e, path, pred_ready2, NULL, WAIT_MS));
  obj = e2e_get(e, path);
  assert_non_null(obj);
  return obj;
}

/* create_ready, keeping only the recorded load-balancer name. */
static void create_ready_named(struct e2e *e, const char *svc, char *name,
                               size_t cap)
{
  cJSON *obj = create_ready(e, svc, 80);

  snprintf(name, cap, "%s", ann_name(obj));
  cJSON_Delete(obj);
}

/* ---- tests ---- */

static void test_create(void **state)
{
  struct e2e *e = *state;
  cJSON *obj = create_ready(e, "web", 80);
  char want[64];
  const char *uid = e2e_json_str(obj, "metadata.uid");
  const char *ip = e2e_json_str(obj, "status.loadBalancer.ingress.0.ip");

  assert_non_null(uid);
  /* The recorded name is upstream's default: "a" + UID without dashes. */
  assert_true(svc_default_lb_name(uid, want, sizeof(want)) > 0);
  assert_string_equal(ann_name(obj), want);
  assert_non_null(ip);
  assert_true(strncmp(ip, "203.0.113.", 10) == 0);
  wait_lab(e, want, 80, true);
  wait_event(e, "web", "EnsuringLoadBalancer", "Ensuring load balancer");
  wait_event(e, "web", "EnsuredLoadBalancer", "Ensured load balancer");
  assert_int_equal(event_count(e, "web", "SyncLoadBalancerFailed", NULL), 0);
  cJSON_Delete(obj);
}

static bool pred_port81(const cJSON *obj, void *ud)
{
  const cJSON *p = e2e_json_at(obj, "spec.ports.0.port");

  (void)ud;
  return cJSON_IsNumber(p) && p->valueint == 81;
}

static void test_update_ports(void **state)
{
  struct e2e *e = *state;
  cJSON *obj = create_ready(e, "upd", 80);
  char path[256], name[64];
  const char *ip0;
  char ip[64];

  snprintf(name, sizeof(name), "%s", ann_name(obj));
  ip0 = e2e_json_str(obj, "status.loadBalancer.ingress.0.ip");
  snprintf(ip, sizeof(ip), "%s", ip0);
  cJSON_Delete(obj);
  svc_path(path, sizeof(path), "upd");
  assert_int_equal(e2e_patch_merge(e, path, "{\"spec\":{\"ports\":[{\"name\":"
                                   "\"p0\",\"protocol\":\"TCP\",\"port\":81,"
                                   "\"targetPort\":81}]}}"), 0);
  assert_true(e2e_wait_object(e, path, pred_port81, NULL, WAIT_MS));
  /* ensure again: the lab records the new port, same name and IP. */
  wait_lab(e, name, 81, true);
  obj = e2e_get(e, path);
  assert_string_equal(ann_name(obj), name);
  assert_string_equal(e2e_json_str(obj, "status.loadBalancer.ingress.0.ip"),
                      ip);
  cJSON_Delete(obj);
}

static void test_type_change(void **state)
{
  struct e2e *e = *state;
  char path[256], name[64];

  create_ready_named(e, "tc", name, sizeof(name));
  wait_lab(e, name, 0, true);
  svc_path(path, sizeof(path), "tc");
  /* As kubectl would: the LB-only fields go with the type. */
  assert_int_equal(e2e_patch_merge(e, path, "{\"spec\":{\"type\":"
                                   "\"ClusterIP\",\"externalTrafficPolicy\":"
                                   "null,\"allocateLoadBalancerNodePorts\":"
                                   "null,\"ports\":[{\"name\":\"p0\","
                                   "\"protocol\":\"TCP\",\"port\":80,"
                                   "\"targetPort\":80}]}}"), 0);
  /* LB deleted, finalizer removed, status cleared; the object stays. */
  assert_true(e2e_wait_object(e, path, pred_released, NULL, WAIT_MS));
  wait_lab(e, name, 0, false);
  wait_event(e, "tc", "DeletingLoadBalancer", "Deleting load balancer");
  wait_event(e, "tc", "DeletedLoadBalancer", "Deleted load balancer");
}

static void test_delete(void **state)
{
  struct e2e *e = *state;
  char path[256], name[64];

  create_ready_named(e, "gone", name, sizeof(name));
  wait_lab(e, name, 0, true);
  svc_path(path, sizeof(path), "gone");
  assert_int_equal(e2e_delete(e, path), 0);
  assert_true(e2e_wait_gone(e, path, WAIT_MS));
  wait_lab(e, name, 0, false);
  wait_event(e, "gone", "DeletingLoadBalancer", "Deleting load balancer");
  wait_event(e, "gone", "DeletedLoadBalancer", "Deleted load balancer");
}

#define KEEP_FIN "example.com/keep"

static bool pred_only_foreign_fin(const cJSON *obj, void *ud)
{
  (void)ud;
  return obj != NULL && !has_fin(obj) && kube_has_finalizer(obj, KEEP_FIN);
}

/* Someone else's finalizer survives ours being removed: the removal patch
 * rewrites the list, so it must carry the others. */
static void test_foreign_finalizer_kept(void **state)
{
  struct e2e *e = *state;
  char path[256], name[64];

  create_ready_named(e, "fin", name, sizeof(name));
  svc_path(path, sizeof(path), "fin");
  assert_int_equal(e2e_patch_merge(e, path, "{\"metadata\":{\"finalizers\":"
                                   "[\"" CCM_SVC_FINALIZER "\",\"" KEEP_FIN
                                   "\"]}}"), 0);
  assert_int_equal(e2e_delete(e, path), 0);
  wait_lab(e, name, 0, false);
  assert_true(e2e_wait_object(e, path, pred_only_foreign_fin, NULL, WAIT_MS));
  assert_int_equal(e2e_patch_merge(e, path, "{\"metadata\":{\"finalizers\":"
                                   "null}}"), 0);
  assert_true(e2e_wait_gone(e, path, WAIT_MS));
}

static void test_unknown_class_ignored(void **state)
{
  struct e2e *e = *state;
  char path[256];
  cJSON *obj;

  assert_int_equal(e2e_create_service_lb(e, NS, "other", 80,
                                         "{\"loadBalancerClass\":"
                                         "\"example.com/other\"}"), 0);
  /* A default-class Service created after it converges; by then the
   * other one would have been handled, had it been queued. */
  obj = create_ready(e, "after", 80);
  cJSON_Delete(obj);
  e2e_sleep_ms(500);
  svc_path(path, sizeof(path), "other");
  obj = e2e_get(e, path);
  assert_non_null(obj);
  assert_false(has_fin(obj));
  assert_null(ann_name(obj));
  assert_null(e2e_json_at(obj, "status.loadBalancer.ingress"));
  assert_int_equal(event_count(e, "other", "EnsuringLoadBalancer", NULL), 0);
  cJSON_Delete(obj);
}

static bool pred_new_uid(const cJSON *obj, void *ud)
{
  const char *old = ud;
  const char *uid = e2e_json_str(obj, "metadata.uid");

  return pred_ready2(obj, NULL) && uid != NULL && strcmp(uid, old) != 0;
}

/* The old Service vanishes without our finalizer (removed by hand) and a
 * new one takes its name: the old LB is deleted by its recorded name and
 * the new one gets a name from its own UID. */
static void test_recreate_new_uid(void **state)
{
  struct e2e *e = *state;
  cJSON *obj = create_ready(e, "re", 80);
  char path[256], old_name[64], old_uid[64], want[64];

  snprintf(old_name, sizeof(old_name), "%s", ann_name(obj));
  snprintf(old_uid, sizeof(old_uid), "%s", e2e_json_str(obj, "metadata.uid"));
  cJSON_Delete(obj);
  wait_lab(e, old_name, 0, true);
  svc_path(path, sizeof(path), "re");
  assert_int_equal(e2e_patch_merge(e, path, "{\"metadata\":{\"finalizers\":"
                                   "null}}"), 0);
  assert_int_equal(e2e_delete(e, path), 0);
  assert_true(e2e_wait_gone(e, path, WAIT_MS));
  assert_int_equal(e2e_create_service_lb(e, NS, "re", 80, NULL), 0);
  assert_true(e2e_wait_object(e, path, pred_new_uid, old_uid, WAIT_MS));
  obj = e2e_get(e, path);
  assert_true(svc_default_lb_name(e2e_json_str(obj, "metadata.uid"), want,
                                  sizeof(want)) > 0);
  assert_string_equal(ann_name(obj), want);
  assert_string_not_equal(want, old_name);
  cJSON_Delete(obj);
  wait_lab(e, want, 0, true);
  wait_lab(e, old_name, 0, false);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_create, setup, teardown),
    cmocka_unit_test_setup_teardown(test_update_ports, setup, teardown),
    cmocka_unit_test_setup_teardown(test_type_change, setup, teardown),
    cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
    cmocka_unit_test_setup_teardown(test_foreign_finalizer_kept, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_unknown_class_ignored, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_recreate_new_uid, setup, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
