/*
 * test_harness.c: smoke test of the e2e harness: the double, the lab and
 * fake providers, the runtime's informers, a probe controller fed by
 * them, object writes and waits, and a provider hot-swap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "kube/informer.h"
#include "kube/store.h"
#include "modules/registry.h"
#include "util/mem.h"

#define WAIT_MS 20000

/* ---- a probe controller: counts Service events, checks its env ---- */

struct probe {
  struct ctrl_env env; /* copied, as every controller does */
  atomic_int adds, updates, dels;
  atomic_bool started, stopped;
};

static struct probe *probe_last;

static void probe_add(void *ud, const struct obj_meta *obj)
{
  struct probe *p = ud;

  (void)obj;
  atomic_fetch_add(&p->adds, 1);
}

static void probe_update(void *ud, const struct obj_meta *old,
                         const struct obj_meta *cur)
{
  struct probe *p = ud;

  (void)old;
  (void)cur;
  atomic_fetch_add(&p->updates, 1);
}

static void probe_del(void *ud, const struct obj_meta *old)
{
  struct probe *p = ud;

  (void)old;
  atomic_fetch_add(&p->dels, 1);
}

static int probe_create(const struct ctrl_env *env, void **state, char *err,
                        size_t errlen)
{
  struct probe *p = mem_calloc(1, sizeof *p);
  struct informer_handlers h = {probe_add, probe_update, probe_del, NULL};

  if (!p) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  p->env = *env;
  h.ud = p;
  if (informer_add_handlers(runtime_services(env->rt), &h) != 0) {
    snprintf(err, errlen, "informer_add_handlers failed");
    mem_free(p);
    return -1;
  }
  probe_last = p;
  *state = p;
  return 0;
}

static int probe_start(void *state)
{
  struct probe *p = state;

  atomic_store(&p->started, true);
  return 0;
}

static void probe_stop(void *state)
{
  struct probe *p = state;

  atomic_store(&p->stopped, true);
}

static void probe_destroy(void *state)
{
  if (probe_last == state)
    probe_last = NULL;
  mem_free(state);
}

static const struct controller_ops probe_ops = {
    .name = "probe",
    .create = probe_create,
    .start = probe_start,
    .stop = probe_stop,
    .destroy = probe_destroy,
};

/* ---- predicates ---- */

static bool svc_in_store(struct e2e *e, void *ud)
{
  struct obj_meta *o =
      store_get_key(informer_store(runtime_services(e->rt)), ud);

  if (!o)
    return false;
  obj_unref(o);
  return true;
}

static bool svc_not_in_store(struct e2e *e, void *ud)
{
  return !svc_in_store(e, ud);
}

static bool has_label_team(const cJSON *obj, void *ud)
{
  const char *v = e2e_json_str(obj, "metadata.labels.team");

  return v && strcmp(v, ud) == 0;
}

static bool probe_saw_update(struct e2e *e, void *ud)
{
  (void)e;
  (void)ud;
  return probe_last && atomic_load(&probe_last->updates) > 0;
}

static bool probe_saw_delete(struct e2e *e, void *ud)
{
  (void)e;
  (void)ud;
  return probe_last && atomic_load(&probe_last->dels) > 0;
}

/* ---- lab: runtime, informers, writes ---- */

static int setup_lab(void **state)
{
  static struct e2e e;
  static const struct controller_ops *const ctrls[] = {&probe_ops, NULL};
  struct e2e_opts o = {.provider = "lab",
                       .provider_config = "zone = \"lab-z\";",
                       .controllers = ctrls};

  if (e2e_start(&e, &o) != 0) {
    e2e_stop(&e);
    return -1;
  }
  *state = &e;
  return 0;
}

static int teardown(void **state)
{
  e2e_stop(*state);
  return 0;
}

static void test_lab_service_reaches_store(void **state)
{
  struct e2e *e = *state;
  struct provider_ref ref;
  cJSON *svc;
  char why[256];

  assert_non_null(probe_last);
  assert_true(atomic_load(&probe_last->started));
  assert_ptr_equal(probe_last->env.rt, e->rt);
  assert_ptr_equal(probe_last->env.reg, e->reg);
  assert_ptr_equal(probe_last->env.cfg, e->cfg);
  assert_string_equal(probe_last->env.cluster_name, "e2e");
  /* Its own Event recorder, apart from the harness's shared one. */
  assert_non_null(probe_last->env.events);
  assert_ptr_not_equal(probe_last->env.events, e->env.events);
  assert_int_equal(e->env.workers, 2);
  assert_int_equal(e->env.call_timeout_ms, 10000);
  assert_true(runtime_is_leader(e->rt)); /* election off */
  assert_true(runtime_is_ready(e->rt, why, sizeof why));
  assert_int_equal(registry_for_service(e->reg, NULL, &ref), CCM_OK);
  registry_release(&ref);

  /* The double's default/kubernetes Service is listed at start. */
  assert_true(svc_in_store(e, "default/kubernetes"));
  assert_false(svc_in_store(e, "default/web"));

  assert_int_equal(e2e_create_service_lb(e, "default", "web", 80,
                                         "{\"externalTrafficPolicy\":"
                                         "\"Cluster\"}"),
                   KUBE_OK);
  assert_true(e2e_wait(e, svc_in_store, "default/web", WAIT_MS));
  assert_true(atomic_load(&probe_last->adds) >= 2);

  svc = e2e_get(e, CCM_E2E_SERVICES_DEFAULT "/web");
  assert_non_null(svc);
  assert_string_equal(e2e_json_str(svc, "spec.type"), "LoadBalancer");
  assert_string_equal(e2e_json_str(svc, "spec.externalTrafficPolicy"),
                      "Cluster");
  assert_int_equal((int)e2e_json_at(svc, "spec.ports.0.port")->valuedouble,
                   80);
  assert_null(e2e_json_at(svc, "spec.ports.1"));
  assert_null(e2e_json_at(svc, "spec.nope.deeper"));
  cJSON_Delete(svc);

  /* Applying again replaces rather than failing. */
  assert_int_equal(e2e_create_service_lb(e, "default", "web", 81, NULL),
                   KUBE_OK);
  assert_int_equal(e2e_patch_merge(e, CCM_E2E_SERVICES_DEFAULT "/web",
                                   "{\"metadata\":{\"labels\":"
                                   "{\"team\":\"blue\"}}}"),
                   KUBE_OK);
  assert_true(e2e_wait_object(e, CCM_E2E_SERVICES_DEFAULT "/web",
                              has_label_team, "blue", WAIT_MS));
  assert_true(e2e_wait(e, probe_saw_update, NULL, WAIT_MS));
  assert_int_equal(e2e_patch_status(e, CCM_E2E_SERVICES_DEFAULT "/web",
                                    "{\"status\":{\"loadBalancer\":"
                                    "{\"ingress\":[{\"ip\":\"203.0.113.9\"}]}}}"),
                   KUBE_OK);
  svc = e2e_get(e, CCM_E2E_SERVICES_DEFAULT "/web");
  assert_string_equal(e2e_json_str(svc, "status.loadBalancer.ingress.0.ip"),
                      "203.0.113.9");
  assert_int_equal((int)e2e_json_at(svc, "spec.ports.0.port")->valuedouble,
                   81);
  cJSON_Delete(svc);

  assert_int_equal(e2e_delete(e, CCM_E2E_SERVICES_DEFAULT "/web"), KUBE_OK);
  assert_true(e2e_wait_gone(e, CCM_E2E_SERVICES_DEFAULT "/web", WAIT_MS));
  assert_true(e2e_wait(e, svc_not_in_store, "default/web", WAIT_MS));
  assert_true(e2e_wait(e, probe_saw_delete, NULL, WAIT_MS));
  assert_null(e2e_get(e, CCM_E2E_SERVICES_DEFAULT "/web"));
}

static bool node_in_store(struct e2e *e, void *ud)
{
  struct obj_meta *o = store_get_key(informer_store(runtime_nodes(e->rt)), ud);

  if (!o)
    return false;
  obj_unref(o);
  return true;
}

static void test_lab_node(void **state)
{
  struct e2e *e = *state;
  cJSON *n;

  assert_int_equal(e2e_create_node(e, "n1", "10.0.0.1", true), KUBE_OK);
  assert_true(e2e_wait(e, node_in_store, "n1", WAIT_MS));
  n = e2e_get(e, CCM_E2E_NODES "/n1");
  assert_non_null(n);
  assert_string_equal(e2e_json_str(n, "status.addresses.0.address"),
                      "10.0.0.1");
  assert_string_equal(e2e_json_str(n, "status.conditions.0.status"), "True");
  cJSON_Delete(n);
  assert_int_equal(e2e_delete(e, CCM_E2E_NODES "/n1"), KUBE_OK);
  assert_true(e2e_wait_gone(e, CCM_E2E_NODES "/n1", WAIT_MS));
}

/* ---- fake: two-phase start, call log, hot-swap ---- */

static int setup_fake(void **state)
{
  static struct e2e e;
  struct e2e_opts o = {.provider = "fake",
                       .provider_config = "instances = [\"node-a\"];",
                       .call_timeout_ms = 5000,
                       .workers = 3};

  if (e2e_setup(&e, &o) != 0)
    goto fail;
  /* An object that exists before the informers list. */
  if (e2e_create_service_lb(&e, "default", "early", 443, NULL) != KUBE_OK)
    goto fail;
  if (e2e_run_controller(&e, &probe_ops) != 0 || e2e_go(&e) != 0)
    goto fail;
  *state = &e;
  return 0;
fail:
  e2e_stop(&e);
  return -1;
}

static int instance_exists(struct e2e *e, const char *name, bool *exists)
{
  struct ccm_node node;
  struct provider_ref ref;
  struct ccm_call call;
  int rc;

  memset(&node, 0, sizeof node);
  node.struct_size = sizeof node;
  node.name = name;
  node.uid = "uid-1";
  rc = registry_for_nodes(e->reg, &ref);
  if (rc != CCM_OK)
    return rc;
  call_init(&call, e->env.call_timeout_ms);
  rc = prov_instance_exists(&ref, &call, &node, exists);
  registry_release(&ref);
  return rc;
}

static void test_fake_calls_and_swap(void **state)
{
  struct e2e *e = *state;
  struct registry_stats st;
  bool exists = false;

  assert_true(svc_in_store(e, "default/early")); /* listed at sync */
  assert_true(atomic_load(&probe_last->started));
  assert_int_equal(e->env.workers, 3);
  assert_int_equal(e->env.call_timeout_ms, 5000);
  assert_int_equal(e2e_run_controller(e, &probe_ops), -1); /* too late */

  assert_int_equal(e2e_call_count(e, "instance_exists", NULL), 0);
  assert_int_equal(instance_exists(e, "node-a", &exists), CCM_OK);
  assert_true(exists);
  assert_int_equal(instance_exists(e, "node-z", &exists), CCM_OK);
  assert_false(exists);
  assert_int_equal(e2e_call_count(e, "instance_exists", NULL), 2);
  assert_int_equal(e2e_call_count(e, "instance_exists", "node-z"), 1);
  assert_int_equal(e2e_call_count(e, "instance", NULL), 0); /* whole op */

  /* Swap to v2 with another instance list. */
  assert_int_equal(e2e_swap_module(e, CCM_MODULE_DIR "/ccm-fake-v2.so", NULL,
                                   "instances = [\"node-z\"];"),
                   0);
  registry_get_stats(e->reg, &st);
  assert_int_equal(st.swaps, 1);
  assert_int_equal(instance_exists(e, "node-z", &exists), CCM_OK);
  assert_true(exists);
  /* The same file again still swaps; the config text is kept. */
  assert_int_equal(e2e_swap_module(e, CCM_MODULE_DIR "/ccm-fake-v2.so", NULL,
                                   NULL),
                   0);
  registry_get_stats(e->reg, &st);
  assert_int_equal(st.swaps, 2);
  assert_int_equal(instance_exists(e, "node-z", &exists), CCM_OK);
  assert_true(exists);
  /* A failed swap changes nothing. */
  assert_int_equal(e2e_swap_module(e, CCM_MODULE_DIR "/ccm-fake-major2.so",
                                   NULL, NULL),
                   -1);
  registry_get_stats(e->reg, &st);
  assert_int_equal(st.swaps, 2);
  assert_int_equal(st.failed_swaps, 1);
  /* Back to v1 with the harness's own keys rewritten (call_log). */
  assert_int_equal(e2e_swap_module(e, CCM_E2E_FAKE_MODULE, "fake",
                                   "instances = [\"node-b\"];"),
                   0);
  assert_string_equal(e->kind, "fake");
  assert_int_equal(instance_exists(e, "node-b", &exists), CCM_OK);
  assert_true(exists);
  assert_int_equal(instance_exists(e, "node-a", &exists), CCM_OK);
  assert_false(exists);
  assert_true(e2e_call_count(e, "instance_exists", "node-b") >= 1);
}

int main(void)
{
  const struct CMUnitTest lab[] = {
      cmocka_unit_test(test_lab_service_reaches_store),
      cmocka_unit_test(test_lab_node),
  };
  const struct CMUnitTest fake[] = {
      cmocka_unit_test(test_fake_calls_and_swap),
  };
  int rc;

  rc = cmocka_run_group_tests_name("lab", lab, setup_lab, teardown);
  rc += cmocka_run_group_tests_name("fake", fake, setup_fake, teardown);
  return rc;
}
