/*
 * test_policy_reload.c: hot reload under load. 8 threads call hooks in a
 * loop while the main thread reloads between two policy versions (and a
 * few broken ones that must be refused). Every result must come from
 * exactly one version; no call may fail. Progress-based, no timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"
#include "test_policy_util.h"
#include "util/log.h"

#define WORKERS 8
#define RELOADS 50

/* Two files per version: a torn set would mix their values. */
static const char file_a[] =
    "local V = '%d'\n"
    "return {\n"
    "  load_balancer_name = function(s) return 'v' .. V .. '-' .. s.name end,\n"
    "  load_balancer_options = function(s) return { a = V } end,\n"
    "  resource_tags = function(s) return { a = V, version = V } end,\n"
    "}\n";
static const char file_b[] =
    "local V = '%d'\n"
    "return {\n"
    "  load_balancer_options = function(s) return { b = V } end,\n"
    "  resource_tags = function(s) return { b = V } end,\n"
    "  backend_nodes = function(s, nodes)\n"
    "    if V == '1' then return { nodes[1] } end\n"
    "    return nodes\n"
    "  end,\n"
    "}\n";

struct shared {
  struct policy_engine *pe;
  const struct obj_service *svc;
  const struct obj_node *nodes[2];
  atomic_bool stop;
  atomic_ulong calls;
  atomic_ulong failures;
  atomic_ulong torn;
  atomic_ulong seen[3];
  char first_problem[512];
  pthread_mutex_t mu;
};

static void problem(struct shared *sh, atomic_ulong *counter,
                    const char *what)
{
  atomic_fetch_add(counter, 1);
  pthread_mutex_lock(&sh->mu);
  if (sh->first_problem[0] == '\0')
    snprintf(sh->first_problem, sizeof sh->first_problem, "%s", what);
  pthread_mutex_unlock(&sh->mu);
}

static int version_of(const char *s)
{
  return (s != NULL && (s[0] == '1' || s[0] == '2') && s[1] == '\0')
             ? s[0] - '0'
             : 0;
}

static void *worker(void *arg)
{
  struct shared *sh = arg;
  struct policy_ctx ctx = {"kubernetes", "test", NULL, NULL};

  while (!atomic_load(&sh->stop)) {
    struct policy_error err;
    struct policy_options *opts = NULL;
    struct policy_kvs *kvs = NULL;
    char name[64], msg[700];
    bool keep[2];
    int va = 0, vb = 0, vn;

    if (policy_lb_name(sh->pe, sh->svc, &ctx, name, sizeof name, &err) !=
        POLICY_OK) {
      snprintf(msg, sizeof msg, "name: %s", err.message);
      problem(sh, &sh->failures, msg);
      continue;
    }
    vn = name[1] - '0';
    if (policy_lb_options(sh->pe, sh->svc, &ctx, &opts, &err) != POLICY_OK) {
      snprintf(msg, sizeof msg, "options: %s", err.message);
      problem(sh, &sh->failures, msg);
      continue;
    }
    if (opts->n == 2) {
      va = version_of(opts->options[0]->string_value);
      vb = version_of(opts->options[1]->string_value);
    }
    policy_options_free(opts);
    if (va == 0 || va != vb)
      problem(sh, &sh->torn, "options mixed two versions");
    if (policy_resource_tags(sh->pe, sh->svc, &ctx, &kvs, &err) !=
        POLICY_OK) {
      snprintf(msg, sizeof msg, "tags: %s", err.message);
      problem(sh, &sh->failures, msg);
      continue;
    }
    if (kvs->n != 3 || version_of(kvs->kvs[0]->value) == 0 ||
        strcmp(kvs->kvs[0]->value, kvs->kvs[1]->value) != 0 ||
        strcmp(kvs->kvs[1]->value, kvs->kvs[2]->value) != 0)
      problem(sh, &sh->torn, "tags mixed two versions");
    policy_kvs_free(kvs);
    if (policy_backend_nodes(sh->pe, sh->svc, sh->nodes, 2, &ctx, keep,
                             &err) != POLICY_OK) {
      snprintf(msg, sizeof msg, "backend_nodes: %s", err.message);
      problem(sh, &sh->failures, msg);
      continue;
    }
    if (!keep[0] || (keep[1] != true && keep[1] != false))
      problem(sh, &sh->torn, "backend_nodes dropped node 1");
    if (vn == 1 || vn == 2)
      atomic_fetch_add(&sh->seen[vn], 1);
    else
      problem(sh, &sh->torn, "name from no version");
    atomic_fetch_add(&sh->calls, 1);
  }
  return NULL;
}

/* Wait until the workers made n more rounds (progress, not time). */
static void wait_rounds(struct shared *sh, unsigned long n)
{
  unsigned long start = atomic_load(&sh->calls);

  while (atomic_load(&sh->calls) < start + n &&
         atomic_load(&sh->failures) == 0)
    sched_yield();
}

static void write_version(struct tp_dir *d, int v, const char **files)
{
  char a[1024], b[1024];

  snprintf(a, sizeof a, file_a, v);
  snprintf(b, sizeof b, file_b, v);
  files[0] = tp_write(d, "a.lua", a);
  files[1] = tp_write(d, "b.lua", b);
}

static void test_reload_under_load(void **state)
{
  struct shared sh;
  struct tp_dir d;
  struct obj_meta *svc = tp_service("web", NULL);
  struct obj_meta *n1 = tp_node("n1", true), *n2 = tp_node("n2", true);
  pthread_t th[WORKERS];
  const char *files[2];
  struct policy_stats st;
  char e[512];
  int refused = 0;

  (void)state;
  memset(&sh, 0, sizeof sh);
  pthread_mutex_init(&sh.mu, NULL);
  tp_dir_make(&d);
  write_version(&d, 1, files);
  assert_int_equal(policy_engine_new(files, 2, NULL, &sh.pe, e, sizeof e), 0);
  sh.svc = obj_as_service(svc);
  sh.nodes[0] = obj_as_node(n1);
  sh.nodes[1] = obj_as_node(n2);
  for (int i = 0; i < WORKERS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, worker, &sh), 0);
  for (int i = 0; i < RELOADS; i++) {
    wait_rounds(&sh, WORKERS);
    if (i % 10 == 5) {
      /* broken: a runtime error in the self-test, then a syntax error */
      files[0] = tp_write(&d, "a.lua", "return { load_balancer_name = "
                                       "function(s) return s.x.y end }\n");
      if (policy_engine_reload(sh.pe, files, 2, e, sizeof e) != 0)
        refused++;
      files[1] = tp_write(&d, "b.lua", "return {{\n");
      if (policy_engine_reload(sh.pe, files, 2, e, sizeof e) != 0)
        refused++;
    }
    write_version(&d, i % 2 == 0 ? 2 : 1, files);
    if (policy_engine_reload(sh.pe, files, 2, e, sizeof e) != 0)
      fail_msg("reload %d: %s", i, e);
  }
  wait_rounds(&sh, WORKERS);
  policy_engine_stats(sh.pe, &st);
  assert_true(st.states >= 1);
  assert_true(st.states <= WORKERS);
  atomic_store(&sh.stop, true);
  for (int i = 0; i < WORKERS; i++)
    pthread_join(th[i], NULL);
  if (atomic_load(&sh.failures) != 0 || atomic_load(&sh.torn) != 0)
    fail_msg("%lu failures, %lu torn; first: %s", atomic_load(&sh.failures),
             atomic_load(&sh.torn), sh.first_problem);
  assert_int_equal(refused, 10);
  assert_true(atomic_load(&sh.seen[1]) > 0);
  assert_true(atomic_load(&sh.seen[2]) > 0);
  policy_engine_stats(sh.pe, &st);
  assert_int_equal(st.reloads, RELOADS);
  assert_int_equal(st.reload_failures, 10);
  assert_int_equal(st.errors, 0);
  assert_int_equal(st.generation, RELOADS + 1);
  assert_int_equal(st.states, 0); /* the workers' states left with them */
  policy_engine_free(sh.pe);
  obj_unref(svc);
  obj_unref(n1);
  obj_unref(n2);
  tp_dir_remove(&d);
  pthread_mutex_destroy(&sh.mu);
}

/* Free with live worker slots still registered (threads parked, not in a
 * call): everything is released (ASan checks the leak side). */
struct parked {
  struct policy_engine *pe;
  const struct obj_service *svc;
  pthread_barrier_t *called, *release;
  int rc;
};

static void *parked_worker(void *arg)
{
  struct parked *p = arg;
  struct policy_ctx ctx = {"kubernetes", "test", NULL, NULL};
  struct policy_error err;
  char name[64];

  p->rc = policy_lb_name(p->pe, p->svc, &ctx, name, sizeof name, &err);
  pthread_barrier_wait(p->called);
  pthread_barrier_wait(p->release);
  return NULL;
}

static void test_free_with_live_threads(void **state)
{
  struct tp_dir d;
  struct obj_meta *svc = tp_service("web", NULL);
  pthread_barrier_t called, release;
  struct parked p[4];
  pthread_t th[4];
  const char *files[2];
  struct policy_engine *pe = NULL;
  struct policy_stats st;
  char e[512];

  (void)state;
  tp_dir_make(&d);
  write_version(&d, 1, files);
  assert_int_equal(policy_engine_new(files, 2, NULL, &pe, e, sizeof e), 0);
  pthread_barrier_init(&called, NULL, 5);
  pthread_barrier_init(&release, NULL, 5);
  for (int i = 0; i < 4; i++) {
    p[i] = (struct parked){pe, obj_as_service(svc), &called, &release, -9};
    pthread_create(&th[i], NULL, parked_worker, &p[i]);
  }
  pthread_barrier_wait(&called);
  policy_engine_stats(pe, &st);
  assert_int_equal(st.states, 4);
  policy_engine_free(pe);
  pthread_barrier_wait(&release);
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(p[i].rc, POLICY_OK);
  }
  pthread_barrier_destroy(&called);
  pthread_barrier_destroy(&release);
  obj_unref(svc);
  tp_dir_remove(&d);
}

static int setup(void **state)
{
  (void)state;
  log_set_level(CCM_LOG_ERROR); /* refused reloads log at warn */
  return 0;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reload_under_load),
      cmocka_unit_test(test_free_with_live_threads),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
