/*
 * test_metrics.c: unit tests of host/server/metrics.c (writer registry,
 * histogram text, label escaping) and of the provider-call metrics the
 * registry's prov_* wrappers record (with the fake provider modules).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <math.h>

#include <cmocka.h>

#include "modules/registry.h"
#include "server/metrics.h"
#include "util/mem.h"

/* ---- capture into a string ---- */

struct capture {
  char *buf;
  size_t len;
  FILE *f;
};

static FILE *cap_open(struct capture *c)
{
  memset(c, 0, sizeof *c);
  c->f = open_memstream(&c->buf, &c->len);
  assert_non_null(c->f);
  return c->f;
}

static const char *cap_close(struct capture *c)
{
  assert_int_equal(fclose(c->f), 0);
  c->f = NULL;
  return c->buf;
}

static void cap_free(struct capture *c)
{
  free(c->buf); /* open_memstream's buffer is libc's */
  c->buf = NULL;
}

static void assert_has_line(const char *text, const char *line)
{
  size_t n = strlen(line);
  const char *p = text;

  for (p = strstr(p, line); p != NULL; p = strstr(p + n, line))
    if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
      return;
  fail_msg("line not found: %s\n--- in ---\n%s", line, text);
}

/* ---- writer registry ---- */

struct wdata {
  const char *text;
  atomic_int calls;
};

static void writer(FILE *out, void *ud)
{
  struct wdata *w = ud;

  atomic_fetch_add(&w->calls, 1);
  fputs(w->text, out);
}

static void other_writer(FILE *out, void *ud)
{
  (void)ud;
  fputs("other 1\n", out);
}

static void test_register_order_dedup_unregister(void **state)
{
  struct wdata a = {"a 1\n", 0}, b = {"b 2\n", 0};
  struct capture c;

  (void)state;
  metrics_reset();
  assert_int_equal(metrics_register(writer, &a), 0);
  assert_int_equal(metrics_register(writer, &b), 0);
  assert_int_equal(metrics_register(writer, &a), 0); /* no-op */
  assert_int_equal(metrics_register(other_writer, &a), 0); /* other fn */
  assert_int_equal(metrics_register(NULL, &a), -1);
  metrics_write_all(cap_open(&c));
  assert_string_equal(cap_close(&c), "a 1\nb 2\nother 1\n");
  cap_free(&c);
  assert_int_equal(atomic_load(&a.calls), 1);

  metrics_unregister(writer, &a);
  metrics_unregister(writer, &a);         /* unknown now: ignored */
  metrics_unregister(other_writer, NULL); /* never registered */
  metrics_write_all(cap_open(&c));
  assert_string_equal(cap_close(&c), "b 2\nother 1\n");
  cap_free(&c);
  assert_int_equal(atomic_load(&a.calls), 1);

  metrics_reset();
  metrics_write_all(cap_open(&c));
  assert_string_equal(cap_close(&c), "");
  cap_free(&c);
}

/* After metrics_unregister returns, the writer never runs again, even
 * with another thread scraping in a loop. */
struct scraper {
  atomic_bool stop;
  atomic_long scrapes;
};

static void *scrape_loop(void *ud)
{
  struct scraper *s = ud;

  while (!atomic_load(&s->stop)) {
    FILE *f = fopen("/dev/null", "w");

    if (!f)
      break;
    metrics_write_all(f);
    fclose(f);
    atomic_fetch_add(&s->scrapes, 1);
  }
  return NULL;
}

static void test_unregister_while_scraping(void **state)
{
  struct scraper s;
  struct wdata w[8];
  pthread_t th;
  int round, i;

  (void)state;
  metrics_reset();
  memset(&s, 0, sizeof s);
  assert_int_equal(pthread_create(&th, NULL, scrape_loop, &s), 0);
  for (round = 0; round < 200; round++) {
    for (i = 0; i < 8; i++) {
      w[i].text = "x 1\n";
      atomic_store(&w[i].calls, 0);
      assert_int_equal(metrics_register(writer, &w[i]), 0);
    }
    for (i = 0; i < 8; i++) {
      int before;

      metrics_unregister(writer, &w[i]);
      before = atomic_load(&w[i].calls);
      /* w[i] may be reused now: nothing else may touch it. */
      assert_int_equal(atomic_load(&w[i].calls), before);
    }
  }
  /* On a busy machine the scraper may not have run yet: the point is that
   * it ran concurrently with (un)registering, so let it finish one. */
  while (atomic_load(&s.scrapes) == 0)
    sched_yield();
  atomic_store(&s.stop, true);
  pthread_join(th, NULL);
  metrics_reset();
}

/* ---- histogram ---- */

static void test_histogram_text(void **state)
{
  static struct metrics_histogram h; /* zeroed is ready */
  struct capture c;
  const char *t;

  (void)state;
  assert_int_equal(metrics_histogram_count(&h), 0);
  metrics_histogram_observe(&h, 0.001);  /* <= 0.005 */
  metrics_histogram_observe(&h, 0.005);  /* le is inclusive */
  metrics_histogram_observe(&h, 0.3);    /* <= 0.5 */
  metrics_histogram_observe(&h, 100.0);  /* above every bound */
  metrics_histogram_observe(&h, -1.0);   /* counts as 0 */
  metrics_histogram_observe(&h, NAN);    /* counts as 0 */
  metrics_histogram_observe(NULL, 1.0);  /* ignored */
  assert_int_equal(metrics_histogram_count(&h), 6);

  metrics_write_header(cap_open(&c), "x_seconds", "histogram", "Test.");
  metrics_histogram_write(c.f, "x_seconds", "a=\"1\",b=\"2\"", &h);
  t = cap_close(&c);
  assert_has_line(t, "# HELP x_seconds Test.");
  assert_has_line(t, "# TYPE x_seconds histogram");
  assert_has_line(t, "x_seconds_bucket{a=\"1\",b=\"2\",le=\"0.005\"} 4");
  assert_has_line(t, "x_seconds_bucket{a=\"1\",b=\"2\",le=\"0.25\"} 4");
  assert_has_line(t, "x_seconds_bucket{a=\"1\",b=\"2\",le=\"0.5\"} 5");
  assert_has_line(t, "x_seconds_bucket{a=\"1\",b=\"2\",le=\"60\"} 5");
  assert_has_line(t, "x_seconds_bucket{a=\"1\",b=\"2\",le=\"+Inf\"} 6");
  assert_has_line(t, "x_seconds_sum{a=\"1\",b=\"2\"} 100.306");
  assert_has_line(t, "x_seconds_count{a=\"1\",b=\"2\"} 6");
  cap_free(&c);

  /* Without labels: no stray commas or braces. */
  metrics_histogram_write(cap_open(&c), "y", NULL, &h);
  t = cap_close(&c);
  assert_has_line(t, "y_bucket{le=\"0.01\"} 4");
  assert_has_line(t, "y_bucket{le=\"+Inf\"} 6");
  assert_has_line(t, "y_sum 100.306");
  assert_has_line(t, "y_count 6");
  cap_free(&c);
}

static void *observe_loop(void *ud)
{
  int i;

  for (i = 0; i < 10000; i++)
    metrics_histogram_observe(ud, (i % 3) * 0.02);
  return NULL;
}

static void test_histogram_concurrent(void **state)
{
  static struct metrics_histogram h;
  pthread_t th[4];
  struct capture c;
  int i;

  (void)state;
  for (i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, observe_loop, &h), 0);
  for (i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(metrics_histogram_count(&h), 40000);
  metrics_histogram_write(cap_open(&c), "z", "", &h);
  cap_close(&c);
  /* Per thread 3334 at 0 s, 3333 at 0.02 s, 3333 at 0.04 s. */
  assert_has_line(c.buf, "z_bucket{le=\"0.005\"} 13336");
  assert_has_line(c.buf, "z_bucket{le=\"0.025\"} 26668");
  assert_has_line(c.buf, "z_bucket{le=\"0.05\"} 40000");
  assert_has_line(c.buf, "z_count 40000");
  cap_free(&c);
}

static void test_label_escape(void **state)
{
  struct capture c;
  char buf[16];

  (void)state;
  metrics_write_label_value(cap_open(&c), "a\"b\\c\nd");
  metrics_write_label_value(c.f, NULL);
  assert_string_equal(cap_close(&c), "a\\\"b\\\\c\\nd");
  cap_free(&c);
  metrics_escape_label_value(buf, sizeof buf, "a\"b\\c\nd");
  assert_string_equal(buf, "a\\\"b\\\\c\\nd");
  /* Cut without splitting an escape. */
  metrics_escape_label_value(buf, 4, "ab\"c");
  assert_string_equal(buf, "ab");
  metrics_escape_label_value(buf, 1, "abc");
  assert_string_equal(buf, "");
}

/* ---- provider-call metrics in the registry ---- */

static void test_registry_call_metrics(void **state)
{
  char dir[] = "/tmp/ccm-metrics-XXXXXX", path[512], err[1024] = "";
  struct host_config *cfg = NULL;
  struct registry *reg;
  struct provider_ref ref;
  struct ccm_call call;
  struct ccm_node node;
  struct ccm_service svc;
  struct ccm_lb_status lb;
  struct ccm_route_list routes;
  struct capture c;
  const char *t;
  bool exists;
  FILE *f;

  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/host.cfg", dir);
  f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "state_dir = \"%s\";\n"
          "providers = (\n"
          "  { name = \"fake\"; module = \"%s/ccm-fake.so\"; default = true;\n"
          "    config = { instances = [\"n1\"];\n"
          "               latency_ms = { instance_exists = 20; };\n"
          "               error = { lb_get = \"throttled\"; }; }; },\n"
          "  { name = \"nb\"; module = \"%s/ccm-fake-nobatch.so\";\n"
          "    load_balancer_class = \"example.com/nb\"; }\n"
          ");\n",
          dir, CCM_MODULE_DIR, CCM_MODULE_DIR);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
  reg = registry_new(dir, 5000);
  assert_non_null(reg);
  assert_int_equal(registry_apply(reg, cfg, err, sizeof err), 0);

  memset(&node, 0, sizeof node);
  node.struct_size = sizeof node;
  node.name = "n1";
  node.uid = "u1";
  memset(&svc, 0, sizeof svc);
  svc.struct_size = sizeof svc;
  svc.cluster_name = "c";
  svc.namespace_ = "ns";
  svc.name = "web";
  svc.uid = "u2";
  svc.lb_name = "aweb";
  memset(&lb, 0, sizeof lb);
  memset(&routes, 0, sizeof routes);

  assert_int_equal(registry_acquire(reg, "fake", &ref), CCM_OK);
  call_init(&call, 5000);
  assert_int_equal(prov_instance_exists(&ref, &call, &node, &exists), CCM_OK);
  assert_true(exists);
  node.name = "n2";
  call_init(&call, 5000);
  assert_int_equal(prov_instance_exists(&ref, &call, &node, &exists), CCM_OK);
  assert_false(exists);
  call_init(&call, 5000);
  assert_int_equal(prov_lb_get(&ref, &call, &svc, &lb), CCM_ERR_THROTTLED);
  registry_release(&ref);

  assert_int_equal(registry_acquire(reg, "nb", &ref), CCM_OK);
  call_init(&call, 5000);
  assert_int_equal(prov_route_list(&ref, &call, "c", &routes),
                   CCM_ERR_NOT_IMPLEMENTED);
  registry_release(&ref);

  registry_metrics_write(reg, cap_open(&c));
  t = cap_close(&c);
  assert_has_line(t, "# TYPE ccm_provider_calls_total counter");
  assert_has_line(t, "# TYPE ccm_provider_call_duration_seconds histogram");
  assert_has_line(t, "ccm_provider_calls_total{provider=\"fake\","
                     "operation=\"instance_exists\",status=\"ok\"} 2");
  assert_has_line(t, "ccm_provider_calls_total{provider=\"fake\","
                     "operation=\"lb_get\",status=\"throttled\"} 1");
  assert_has_line(t, "ccm_provider_calls_total{provider=\"nb\","
                     "operation=\"route_list\",status=\"not_implemented\"} 1");
  assert_has_line(t, "ccm_provider_call_duration_seconds_count{provider="
                     "\"fake\",operation=\"instance_exists\"} 2");
  /* 20 ms of injected latency: nothing in the 5 ms bucket. */
  assert_has_line(t, "ccm_provider_call_duration_seconds_bucket{provider="
                     "\"fake\",operation=\"instance_exists\",le=\"0.005\"} 0");
  assert_has_line(t, "ccm_provider_call_duration_seconds_count{provider="
                     "\"fake\",operation=\"lb_get\"} 1");
  /* Not called: counted, but no duration. */
  assert_null(strstr(t, "operation=\"route_list\",le="));
  assert_null(strstr(t, "operation=\"lb_ensure\""));
  assert_has_line(t, "ccm_module_generation{provider=\"fake\"} 1");
  cap_free(&c);

  registry_free(reg);
  config_free(cfg);
  snprintf(path, sizeof path, "rm -rf '%s'", dir);
  assert_int_equal(system(path), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_register_order_dedup_unregister),
      cmocka_unit_test(test_unregister_while_scraping),
      cmocka_unit_test(test_histogram_text),
      cmocka_unit_test(test_histogram_concurrent),
      cmocka_unit_test(test_label_escape),
      cmocka_unit_test(test_registry_call_metrics),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
