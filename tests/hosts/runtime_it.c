/*
 * runtime_it.c: host/kube/runtime against the API double: readiness waits
 * for both informers and a default provider, leadership follows the Lease
 * (or is constant when election is off), a stop releases the Lease and
 * ends leadership, and reload-only settings are told apart. Polls with
 * generous bounds; asserts no timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "double.h"
#include "kube/runtime.h"
#include "kube/writes.h"
#include "util/log.h"

#define POLL_US 50000
#define POLL_MAX 1200 /* 60 s */

static struct kdouble d;
static struct kube_client *kc; /* the test's own client, for checks */
static char dir[256];

static int setup(void **state)
{
  (void)state;
  log_set_level(CCM_LOG_WARN);
  if (kdouble_start(&d, false, false) != 0)
    return -1;
  kc = kdouble_client(&d);
  if (kc == NULL)
    return -1;
  snprintf(dir, sizeof dir, "/tmp/ccm-runtime-it-XXXXXX");
  return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
  char cmd[300];

  (void)state;
  kube_client_free(kc);
  kdouble_stop(&d);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "cannot remove %s\n", dir);
  return 0;
}

/* A host.cfg on the double with the fake module; election on or off. */
static struct host_config *load_cfg(const char *name, bool election,
                                    const char *lease)
{
  struct host_config *cfg = NULL;
  char path[400], err[1024];
  FILE *f;

  snprintf(path, sizeof path, "%s/%s.cfg", dir, name);
  f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "state_dir = \"%s/state-%s\";\n"
          "kubeconfig = \"%s\";\n"
          "leader_election = { enabled = %s; lease_name = \"%s\";\n"
          "  lease_duration_s = 4; renew_deadline_s = 3;\n"
          "  retry_period_s = 1; };\n"
          "providers = ( { name = \"fake\"; module = \"%s/ccm-fake.so\";\n"
          "  config = { instances = [\"node-a\"]; }; } );\n",
          dir, name, d.kubeconfig, election ? "true" : "false", lease,
          CCM_MODULE_DIR);
  fclose(f);
  if (config_load(path, &cfg, err, sizeof err) != 0)
    fail_msg("config_load: %s", err);
  return cfg;
}

static bool wait_ready(struct runtime *rt)
{
  for (int i = 0; i < POLL_MAX; i++) {
    if (runtime_poll_synced(rt) && runtime_is_ready(rt, NULL, 0))
      return true;
    usleep(POLL_US);
  }
  return false;
}

static bool wait_leader(struct runtime *rt)
{
  for (int i = 0; i < POLL_MAX; i++) {
    if (runtime_is_leader(rt))
      return true;
    usleep(POLL_US);
  }
  return false;
}

/* The Lease's holderIdentity into out ("" when released). */
static int lease_holder(const char *name, char *out, size_t cap)
{
  char path[256];
  cJSON *obj = NULL, *spec, *h;
  int st;

  snprintf(path, sizeof path,
           "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/%s",
           name);
  st = kube_get(kc, path, &obj, NULL, 0);
  if (st != KUBE_OK)
    return st;
  spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
  h = cJSON_GetObjectItemCaseSensitive(spec, "holderIdentity");
  snprintf(out, cap, "%s", cJSON_IsString(h) ? h->valuestring : "");
  cJSON_Delete(obj);
  return KUBE_OK;
}

static void test_ready_needs_provider_and_sync(void **state)
{
  struct host_config *cfg = load_cfg("noprov", false, "unused");
  struct registry *reg;
  struct runtime *rt = NULL;
  struct runtime_opts ro = {.cfg = cfg};
  char err[512], why[256];

  (void)state;
  reg = registry_new(cfg->state_dir, cfg->drain_timeout_ms);
  assert_non_null(reg);
  ro.reg = reg; /* nothing loaded yet */
  if (runtime_new(&ro, &rt, err, sizeof err) != 0)
    fail_msg("runtime_new: %s", err);
  /* Not started: nothing synced, and it says so. */
  assert_false(runtime_is_ready(rt, why, sizeof why));
  assert_non_null(strstr(why, "informers not synced: nodes services"));
  assert_null(runtime_identity(rt));
  assert_int_equal(runtime_start(rt, err, sizeof err), 0);
  for (int i = 0; i < POLL_MAX && !runtime_poll_synced(rt); i++)
    usleep(POLL_US);
  assert_true(runtime_poll_synced(rt));
  /* Synced, but no default provider: still not ready. */
  assert_false(runtime_is_ready(rt, why, sizeof why));
  assert_string_equal(why, "no default provider loaded");
  if (registry_apply(reg, cfg, err, sizeof err) != 0)
    fail_msg("registry_apply: %s", err);
  assert_true(runtime_is_ready(rt, why, sizeof why));
  runtime_stop(rt);
  registry_free(reg);
  runtime_free(rt);
  config_free(cfg);
}

static void test_election_off_acts_as_leader(void **state)
{
  struct host_config *cfg = load_cfg("off", false, "off");
  struct registry *reg;
  struct runtime *rt = NULL;
  struct runtime_opts ro = {.cfg = cfg};
  char err[512], holder[256];

  (void)state;
  reg = registry_new(cfg->state_dir, cfg->drain_timeout_ms);
  assert_non_null(reg);
  assert_int_equal(registry_apply(reg, cfg, err, sizeof err), 0);
  ro.reg = reg;
  assert_int_equal(runtime_new(&ro, &rt, err, sizeof err), 0);
  assert_int_equal(runtime_start(rt, err, sizeof err), 0);
  assert_true(runtime_is_leader(rt));
  assert_true(wait_ready(rt));
  /* The store holds what the double serves. */
  assert_int_equal(store_len(informer_store(runtime_services(rt))), 1);
  runtime_stop(rt);
  assert_false(runtime_is_leader(rt));
  /* No Lease was ever written. */
  assert_int_equal(lease_holder("off", holder, sizeof holder),
                   KUBE_NOT_FOUND);
  registry_free(reg);
  runtime_free(rt);
  config_free(cfg);
}

static void test_election_on_and_release(void **state)
{
  struct host_config *cfg = load_cfg("on", true, "rt-on");
  struct runtime *rt = NULL;
  struct runtime_opts ro = {.cfg = cfg};
  char err[512], holder[256];
  const char *id;

  (void)state;
  assert_int_equal(runtime_new(&ro, &rt, err, sizeof err), 0);
  id = runtime_identity(rt);
  assert_non_null(id);
  assert_false(runtime_is_leader(rt)); /* not started */
  assert_int_equal(runtime_start(rt, err, sizeof err), 0);
  assert_true(wait_leader(rt));
  assert_int_equal(lease_holder("rt-on", holder, sizeof holder), KUBE_OK);
  assert_string_equal(holder, id);
  runtime_stop(rt);
  assert_false(runtime_is_leader(rt));
  assert_int_equal(lease_holder("rt-on", holder, sizeof holder), KUBE_OK);
  assert_string_equal(holder, "");
  runtime_stop(rt); /* idempotent */
  runtime_free(rt);
  config_free(cfg);
}

static void test_settings_changed(void **state)
{
  struct host_config *cfg = load_cfg("same", true, "rt-same");
  struct host_config *same = load_cfg("same2", true, "rt-same");
  struct host_config *other = load_cfg("other", true, "rt-other");
  struct runtime *rt = NULL;
  struct runtime_opts ro = {.cfg = cfg};
  char err[512];

  (void)state;
  assert_int_equal(runtime_new(&ro, &rt, err, sizeof err), 0);
  assert_false(runtime_settings_changed(rt, same));
  assert_true(runtime_settings_changed(rt, other));
  same->master = "http://127.0.0.1:1";
  assert_true(runtime_settings_changed(rt, same));
  same->master = NULL;
  same->leader.retry_period_s = 2;
  assert_true(runtime_settings_changed(rt, same));
  runtime_free(rt); /* never started */
  config_free(cfg);
  config_free(same);
  config_free(other);
}

static void test_bad_connection(void **state)
{
  struct host_config *cfg = load_cfg("bad", true, "rt-bad");
  struct runtime *rt = NULL;
  struct runtime_opts ro = {.cfg = cfg, .context = "nope"};
  char err[512];

  (void)state;
  assert_int_equal(runtime_new(&ro, &rt, err, sizeof err), -1);
  assert_null(rt);
  assert_non_null(strstr(err, d.kubeconfig));
  assert_non_null(strstr(err, "context \"nope\" not found"));
  assert_null(strchr(err, '\n'));
  config_free(cfg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_ready_needs_provider_and_sync),
    cmocka_unit_test(test_election_off_acts_as_leader),
    cmocka_unit_test(test_election_on_and_release),
    cmocka_unit_test(test_settings_changed),
    cmocka_unit_test(test_bad_connection),
  };

  if (!kdouble_available()) {
    fprintf(stderr, "SKIP: the API double is not available\n");
    return 77;
  }
  return cmocka_run_group_tests(tests, setup, teardown);
}
