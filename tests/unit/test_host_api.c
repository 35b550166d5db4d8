/*
 * test_host_api.c: unit tests of host/modules/host_api.c: the function
 * table, result builders (bounds, copies, unchanged on failure, allocation
 * failure), config getters over libconfig, and the call context.
 * It must not touch the network.
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

#include "modules/host_api.h"
#include "modules/http.h"
#include "util/log.h"
#include "util/mem.h"

#define CAPTURE_MAX 64

static size_t n_lines;
static char lines[CAPTURE_MAX][1024];

static void capture_sink(int level, const char *line, void *ud)
{
  (void)level;
  (void)ud;
  if (n_lines < CAPTURE_MAX)
    snprintf(lines[n_lines++], sizeof lines[0], "%s", line);
}

static bool captured(const char *needle)
{
  size_t i;

  for (i = 0; i < n_lines; i++) {
    if (strstr(lines[i], needle) != NULL)
      return true;
  }
  return false;
}

static int setup(void **state)
{
  (void)state;
  n_lines = 0;
  log_set_sink(capture_sink, NULL);
  log_set_level(CCM_LOG_DEBUG);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  mem_fail_after(-1);
  log_set_sink(NULL, NULL);
  log_set_level(CCM_LOG_INFO);
  log_secrets_clear();
  return 0;
}

static char *repeat(char c, size_t n)
{
  char *s = malloc(n + 1);

  assert_non_null(s);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

/* ---- table ---- */

static void test_table_complete(void **state)
{
  const struct ccm_host_api *api = host_api();
  const void *const *fn;
  size_t i, n;

  (void)state;
  assert_int_equal(api->struct_size, sizeof *api);
  assert_int_equal(api->abi_minor, CCM_ABI_MINOR);
  /* Every entry after the two header fields is set. */
  fn = (const void *const *)(const void *)&api->log;
  n = (sizeof *api - offsetof(struct ccm_host_api, log)) / sizeof(void *);
  for (i = 0; i < n; i++)
    assert_non_null(fn[i]);
}

/* ---- builders ---- */

static void test_lb_ingress(void **state)
{
  const struct ccm_host_api *api = host_api();
  struct ccm_lb_status st = {0};
  char ip[32], *longname;

  (void)state;
  snprintf(ip, sizeof ip, "10.0.0.1");
  assert_int_equal(api->lb_add_ingress(&st, ip, NULL), CCM_OK);
  ip[0] = '9'; /* the builder copied */
  assert_string_equal(st.items[0].ip, "10.0.0.1");
  assert_null(st.items[0].hostname);
  assert_int_equal(api->lb_add_ingress(&st, "fd00::1", "lb.example.com"),
                   CCM_OK);
  assert_int_equal(api->lb_add_ingress(&st, NULL, "only.example.com"), CCM_OK);
  assert_int_equal(st.n, 3);

  /* Refusals leave the builder as it was. */
  assert_int_equal(api->lb_add_ingress(&st, NULL, NULL), CCM_ERR_INVALID);
  assert_int_equal(api->lb_add_ingress(&st, "", ""), CCM_ERR_INVALID);
  assert_int_equal(api->lb_add_ingress(&st, "not-an-ip", NULL),
                   CCM_ERR_INVALID);
  longname = repeat('a', CCM_MAX_NAME + 1);
  assert_int_equal(api->lb_add_ingress(&st, NULL, longname), CCM_ERR_INVALID);
  longname[CCM_MAX_NAME] = '\0';
  assert_int_equal(api->lb_add_ingress(&st, NULL, longname), CCM_OK);
  free(longname);
  assert_int_equal(api->lb_add_ingress(NULL, "10.0.0.1", NULL),
                   CCM_ERR_INVALID);
  assert_int_equal(st.n, 4);
  assert_string_equal(st.items[1].hostname, "lb.example.com");

  lb_status_clear(&st);
  assert_int_equal(st.n, 0);
  assert_null(st.items);
}

static void test_meta(void **state)
{
  const struct ccm_host_api *api = host_api();
  struct ccm_instance_meta m = {0};
  char *id;

  (void)state;
  assert_int_equal(api->meta_set(&m, CCM_META_PROVIDER_ID, "lab://n1"),
                   CCM_OK);
  assert_int_equal(api->meta_set(&m, CCM_META_INSTANCE_TYPE, "small"), CCM_OK);
  assert_int_equal(api->meta_set(&m, CCM_META_ZONE, "z1"), CCM_OK);
  assert_int_equal(api->meta_set(&m, CCM_META_REGION, "r1"), CCM_OK);
  assert_int_equal(api->meta_set(&m, CCM_META_ZONE, "z2"), CCM_OK);
  assert_string_equal(m.zone, "z2");

  id = repeat('x', CCM_MAX_ID + 1);
  assert_int_equal(api->meta_set(&m, CCM_META_PROVIDER_ID, id),
                   CCM_ERR_INVALID);
  assert_string_equal(m.provider_id, "lab://n1");
  id[CCM_MAX_ID] = '\0';
  assert_int_equal(api->meta_set(&m, CCM_META_PROVIDER_ID, id), CCM_OK);
  assert_int_equal(strlen(m.provider_id), CCM_MAX_ID);
  /* providerID may be longer than a name; a zone may not. */
  assert_int_equal(api->meta_set(&m, CCM_META_ZONE, id), CCM_ERR_INVALID);
  assert_string_equal(m.zone, "z2");
  free(id);
  assert_int_equal(api->meta_set(&m, 99, "x"), CCM_ERR_INVALID);
  assert_int_equal(api->meta_set(&m, CCM_META_REGION, ""), CCM_ERR_INVALID);
  assert_int_equal(api->meta_set(&m, CCM_META_REGION, NULL), CCM_ERR_INVALID);
  assert_string_equal(m.region, "r1");

  assert_int_equal(api->meta_add_address(&m, CCM_ADDR_INTERNAL_IP, "10.1.2.3"),
                   CCM_OK);
  assert_int_equal(api->meta_add_address(&m, CCM_ADDR_HOSTNAME, "node-1"),
                   CCM_OK);
  assert_int_equal(api->meta_add_address(&m, CCM_ADDR_EXTERNAL_IP, "node-1"),
                   CCM_ERR_INVALID);
  assert_int_equal(api->meta_add_address(&m, 42, "10.1.2.3"), CCM_ERR_INVALID);
  assert_int_equal(api->meta_add_address(&m, CCM_ADDR_INTERNAL_DNS, ""),
                   CCM_ERR_INVALID);
  assert_int_equal(m.n_addresses, 2);
  assert_int_equal(m.addresses[1].type, CCM_ADDR_HOSTNAME);

  assert_int_equal(api->meta_add_label(&m, "topology.example/rack", "r7"),
                   CCM_OK);
  assert_int_equal(api->meta_add_label(&m, "empty", ""), CCM_OK);
  assert_int_equal(api->meta_add_label(&m, "topology.example/rack", "r8"),
                   CCM_OK);
  assert_int_equal(m.n_labels, 2);
  assert_string_equal(m.labels[0].value, "r8");
  id = repeat('v', CCM_MAX_LABEL_VALUE + 1);
  assert_int_equal(api->meta_add_label(&m, "k", id), CCM_ERR_INVALID);
  free(id);
  id = repeat('k', CCM_MAX_LABEL_KEY + 1);
  assert_int_equal(api->meta_add_label(&m, id, "v"), CCM_ERR_INVALID);
  free(id);
  assert_int_equal(api->meta_add_label(&m, "", "v"), CCM_ERR_INVALID);
  assert_int_equal(api->meta_add_label(&m, "k", NULL), CCM_ERR_INVALID);
  assert_int_equal(m.n_labels, 2);

  instance_meta_clear(&m);
  assert_null(m.provider_id);
  assert_int_equal(m.n_labels, 0);
}

static void test_routes(void **state)
{
  const struct ccm_host_api *api = host_api();
  struct ccm_route_list l = {0};
  struct ccm_route r = {.struct_size = sizeof r};
  char name[16];

  (void)state;
  snprintf(name, sizeof name, "route-1");
  r.name = name;
  r.target_node = "node-1";
  r.destination_cidr = "10.244.1.0/24";
  assert_int_equal(api->routes_add(&l, &r), CCM_OK);
  name[0] = 'X';
  assert_string_equal(l.items[0].name, "route-1");
  assert_string_equal(l.items[0].target_node, "node-1");
  assert_false(l.items[0].blackhole);

  /* A blackhole route may have lost its target; others may not. */
  r.target_node = NULL;
  assert_int_equal(api->routes_add(&l, &r), CCM_ERR_INVALID);
  r.blackhole = true;
  assert_int_equal(api->routes_add(&l, &r), CCM_OK);
  assert_true(l.items[1].blackhole);
  assert_null(l.items[1].target_node);

  r.destination_cidr = NULL;
  assert_int_equal(api->routes_add(&l, &r), CCM_ERR_INVALID);
  r.destination_cidr = "10.244.2.0/24";
  r.struct_size = 8; /* too small to hold the fields */
  assert_int_equal(api->routes_add(&l, &r), CCM_ERR_INVALID);
  assert_int_equal(api->routes_add(&l, NULL), CCM_ERR_INVALID);
  assert_int_equal(l.n, 2);
  route_list_clear(&l);
  assert_int_equal(l.n, 0);
}

static void test_blob(void **state)
{
  const struct ccm_host_api *api = host_api();
  struct ccm_blob b = {0};
  char data[8] = "abcdefg";

  (void)state;
  assert_int_equal(api->blob_set(&b, data, 7), CCM_OK);
  data[0] = 'Z';
  assert_int_equal(b.len, 7);
  assert_memory_equal(b.data, "abcdefg", 7);
  assert_int_equal(api->blob_set(&b, NULL, 3), CCM_ERR_INVALID);
  assert_int_equal(b.len, 7);
  assert_int_equal(api->blob_set(&b, NULL, 0), CCM_OK);
  assert_int_equal(b.len, 0);
  assert_int_equal(api->blob_set(&b, data, 2), CCM_OK);
  blob_clear(&b);
  assert_null(b.data);
}

/* Fail the n-th allocation for n = 0, 1, ... until the builder succeeds;
 * every failure must be CCM_ERR_INTERNAL and leave the builder unchanged. */
static void test_builders_alloc_failure(void **state)
{
  const struct ccm_host_api *api = host_api();
  struct ccm_lb_status st = {0};
  struct ccm_instance_meta m = {0};
  struct ccm_route_list l = {0};
  struct ccm_blob b = {0};
  struct ccm_route r = {.struct_size = sizeof r, .name = "n",
                        .target_node = "t", .destination_cidr = "10.0.0.0/8"};
  long n;
  int rc;

  (void)state;
  assert_int_equal(api->lb_add_ingress(&st, "10.0.0.1", "a"), CCM_OK);
  for (n = 0;; n++) {
    mem_fail_after(n);
    rc = api->lb_add_ingress(&st, "10.0.0.2", "b.example");
    mem_fail_after(-1);
    if (rc == CCM_OK)
      break;
    assert_int_equal(rc, CCM_ERR_INTERNAL);
    assert_int_equal(st.n, 1);
    assert_string_equal(st.items[0].ip, "10.0.0.1");
  }
  assert_true(n >= 2);
  assert_int_equal(st.n, 2);

  for (n = 0;; n++) {
    mem_fail_after(n);
    rc = api->meta_add_label(&m, "k", "v");
    mem_fail_after(-1);
    if (rc == CCM_OK)
      break;
    assert_int_equal(rc, CCM_ERR_INTERNAL);
    assert_int_equal(m.n_labels, 0);
  }
  for (n = 0;; n++) {
    mem_fail_after(n);
    rc = api->meta_add_address(&m, CCM_ADDR_INTERNAL_IP, "10.0.0.9");
    mem_fail_after(-1);
    if (rc == CCM_OK)
      break;
    assert_int_equal(rc, CCM_ERR_INTERNAL);
    assert_int_equal(m.n_addresses, 0);
  }
  assert_int_equal(api->meta_set(&m, CCM_META_ZONE, "z1"), CCM_OK);
  mem_fail_after(0);
  assert_int_equal(api->meta_set(&m, CCM_META_ZONE, "z2"), CCM_ERR_INTERNAL);
  mem_fail_after(-1);
  assert_string_equal(m.zone, "z1");

  for (n = 0;; n++) {
    mem_fail_after(n);
    rc = api->routes_add(&l, &r);
    mem_fail_after(-1);
    if (rc == CCM_OK)
      break;
    assert_int_equal(rc, CCM_ERR_INTERNAL);
    assert_int_equal(l.n, 0);
  }
  assert_true(n >= 3);

  assert_int_equal(api->blob_set(&b, "old", 3), CCM_OK);
  mem_fail_after(0);
  assert_int_equal(api->blob_set(&b, "new!", 4), CCM_ERR_INTERNAL);
  mem_fail_after(-1);
  assert_int_equal(b.len, 3);
  assert_memory_equal(b.data, "old", 3);

  lb_status_clear(&st);
  instance_meta_clear(&m);
  route_list_clear(&l);
  blob_clear(&b);
}

/* ---- config ---- */

static const char cfg_text[] =
    "providers:\n"
    "{\n"
    "  lab:\n"
    "  {\n"
    "    region = \"eu-1\";\n"
    "    port = 8080;\n"
    "    big = 5000000000L;\n"
    "    debug = true;\n"
    "    ratio = 1.5;\n"
    "    zones = [\"a\", \"b\"];\n"
    "    mixed = (\"x\", 3);\n"
    "    subnets = ( { id = \"s1\"; }, { id = \"s2\"; } );\n"
    "    nested = { deep = { x = \"y\"; }; };\n"
    "  };\n"
    "};\n";

struct cfg_fixture {
  config_t cfg;
  char path[64];
  struct ccm_host *host;
};

static int cfg_setup(void **state)
{
  struct cfg_fixture *f = calloc(1, sizeof *f);
  config_setting_t *grp;
  char err[256];
  FILE *fp;
  int fd;

  setup(state);
  assert_non_null(f);
  snprintf(f->path, sizeof f->path, "/tmp/ccm-test-host-api-XXXXXX");
  fd = mkstemp(f->path);
  assert_true(fd >= 0);
  fp = fdopen(fd, "w");
  assert_non_null(fp);
  fputs(cfg_text, fp);
  fclose(fp);
  config_init(&f->cfg);
  assert_int_equal(config_read_file(&f->cfg, f->path), CONFIG_TRUE);
  grp = config_lookup(&f->cfg, "providers.lab");
  assert_non_null(grp);
  f->host = host_new("lab", grp, NULL, err, sizeof err);
  assert_non_null(f->host);
  *state = f;
  return 0;
}

static int cfg_teardown(void **state)
{
  struct cfg_fixture *f = *state;

  host_free(f->host);
  config_destroy(&f->cfg);
  unlink(f->path);
  free(f);
  return teardown(state);
}

static void test_cfg_getters(void **state)
{
  struct cfg_fixture *f = *state;
  const struct ccm_host_api *api = host_api();
  const struct ccm_config *root = api->cfg_root(f->host), *g, *sub;
  const char *s = NULL;
  int64_t i = 0;
  bool b = false;
  size_t n = 0;

  assert_non_null(root);
  assert_int_equal(api->cfg_string(root, "region", &s), CCM_OK);
  assert_string_equal(s, "eu-1");
  assert_int_equal(api->cfg_int(root, "port", &i), CCM_OK);
  assert_int_equal(i, 8080);
  assert_int_equal(api->cfg_int(root, "big", &i), CCM_OK);
  assert_true(i == 5000000000LL);
  assert_int_equal(api->cfg_bool(root, "debug", &b), CCM_OK);
  assert_true(b);
  assert_int_equal(api->cfg_string(root, "nested.deep.x", &s), CCM_OK);
  assert_string_equal(s, "y");

  assert_int_equal(api->cfg_group(root, "nested", &g), CCM_OK);
  assert_int_equal(api->cfg_group(g, "deep", &sub), CCM_OK);
  assert_int_equal(api->cfg_string(sub, "x", &s), CCM_OK);

  assert_int_equal(api->cfg_list_len(root, "zones", &n), CCM_OK);
  assert_int_equal(n, 2);
  assert_int_equal(api->cfg_list_string(root, "zones", 1, &s), CCM_OK);
  assert_string_equal(s, "b");
  assert_int_equal(api->cfg_list_string(root, "zones", 2, &s),
                   CCM_ERR_NOT_FOUND);

  assert_int_equal(api->cfg_list_len(root, "subnets", &n), CCM_OK);
  assert_int_equal(n, 2);
  assert_int_equal(api->cfg_group(root, "subnets.[1]", &g), CCM_OK);
  assert_int_equal(api->cfg_string(g, "id", &s), CCM_OK);
  assert_string_equal(s, "s2");
  assert_int_equal(api->cfg_string(root, "subnets.[0].id", &s), CCM_OK);
  assert_string_equal(s, "s1");
  assert_int_equal(api->cfg_group(root, "subnets.[2]", &g), CCM_ERR_NOT_FOUND);

  /* Absent keys and malformed paths. */
  assert_int_equal(api->cfg_string(root, "nope", &s), CCM_ERR_NOT_FOUND);
  assert_int_equal(api->cfg_string(root, "nested.nope.x", &s),
                   CCM_ERR_NOT_FOUND);
  assert_int_equal(api->cfg_string(root, "a..b", &s), CCM_ERR_INVALID);
  assert_int_equal(api->cfg_group(root, "subnets.[x]", &g), CCM_ERR_INVALID);
  assert_int_equal(api->cfg_string(root, NULL, &s), CCM_ERR_INVALID);
  assert_int_equal(api->cfg_string(NULL, "region", &s), CCM_ERR_NOT_FOUND);
  assert_int_equal(n_lines, 0);
}

static void test_cfg_mismatch_names_file_line(void **state)
{
  struct cfg_fixture *f = *state;
  const struct ccm_host_api *api = host_api();
  const struct ccm_config *root = api->cfg_root(f->host);
  char want[128];
  const char *s;
  int64_t i;
  bool b;
  size_t n;

  assert_int_equal(api->cfg_int(root, "region", &i), CCM_ERR_INVALID);
  assert_int_equal(n_lines, 1);
  /* region is on line 5 of the file. */
  snprintf(want, sizeof want, "%s:5:providers.lab.region", f->path);
  assert_true(captured(want));
  assert_true(captured("expected int, found string"));

  assert_int_equal(api->cfg_string(root, "port", &s), CCM_ERR_INVALID);
  assert_int_equal(api->cfg_int(root, "ratio", &i), CCM_ERR_INVALID);
  assert_int_equal(api->cfg_bool(root, "port", &b), CCM_ERR_INVALID);
  assert_int_equal(api->cfg_list_len(root, "region", &n), CCM_ERR_INVALID);
  assert_int_equal(api->cfg_group(root, "zones", NULL), CCM_ERR_INVALID);
  /* The element, not the list, is named for a bad element. */
  assert_int_equal(api->cfg_list_string(root, "mixed", 1, &s),
                   CCM_ERR_INVALID);
  snprintf(want, sizeof want, "%s:11:providers.lab.mixed.[1]", f->path);
  assert_true(captured(want));
  /* A scalar in the middle of a path. */
  assert_int_equal(api->cfg_string(root, "region.x", &s), CCM_ERR_INVALID);
}

static void test_cfg_no_group(void **state)
{
  const struct ccm_host_api *api = host_api();
  const struct ccm_config *root, *g;
  struct ccm_host *host;
  char err[128];
  const char *s;
  size_t n;

  (void)state;
  host = host_new("bare", NULL, NULL, err, sizeof err);
  assert_non_null(host);
  root = api->cfg_root(host);
  assert_non_null(root);
  assert_int_equal(api->cfg_string(root, "region", &s), CCM_ERR_NOT_FOUND);
  assert_int_equal(api->cfg_list_len(root, "zones", &n), CCM_ERR_NOT_FOUND);
  assert_int_equal(api->cfg_group(root, "x", &g), CCM_ERR_NOT_FOUND);
  host_free(host);
}

/* ---- host handle, log, call context ---- */

static void test_host_log(void **state)
{
  const struct ccm_host_api *api = host_api();
  struct ccm_host *host;
  char err[128];

  (void)state;
  host = host_new("lab", NULL, NULL, err, sizeof err);
  assert_non_null(host);
  assert_string_equal(host->log_prefix, "provider:lab");
  api->log(host, CCM_LOG_INFO, "hello %s", "world");
  api->log(host, 42, "clamped high");
  api->log(host, -3, "clamped low");
  assert_int_equal(n_lines, 3);
  assert_non_null(strstr(lines[0], " INFO [provider:lab] hello world"));
  assert_non_null(strstr(lines[1], " DEBUG [provider:lab] clamped high"));
  assert_non_null(strstr(lines[2], " ERROR [provider:lab] clamped low"));

  api->secret_add(host, "module-password-123");
  api->log(host, CCM_LOG_ERROR, "pw=%s", "module-password-123");
  assert_false(captured("module-password-123"));

  assert_null(host_new("", NULL, NULL, err, sizeof err));
  assert_true(strlen(err) > 0);
  host_free(host);
}

static void test_host_new_alloc_failure(void **state)
{
  struct ccm_host *host;
  char err[128];
  long n;

  (void)state;
  for (n = 0;; n++) {
    mem_fail_after(n);
    host = host_new("lab", NULL, NULL, err, sizeof err);
    mem_fail_after(-1);
    if (host != NULL)
      break;
    assert_non_null(strstr(err, "out of memory"));
  }
  assert_true(n >= 3);
  host_free(host);
}

static void test_http_refused_while_closing(void **state)
{
  const struct ccm_host_api *api = host_api();
  struct ccm_http_request req = {.struct_size = sizeof req, .method = "GET",
                                 .url = "http://127.0.0.1:1/"};
  struct ccm_http_response *resp = (void *)&req;
  struct ccm_host *host;
  struct ccm_call call;
  char err[128];

  (void)state;
  host = host_new("lab", NULL, NULL, err, sizeof err);
  assert_non_null(host);
  call_init(&call, 1000);
  atomic_store(&host->closing, true);
  assert_int_equal(api->http_do(host, &call, &req, &resp), CCM_ERR_INTERNAL);
  assert_null(resp);
  assert_true(captured("called during unload"));
  host_free(host);
}

static void test_call_context(void **state)
{
  const struct ccm_host_api *api = host_api();
  struct ccm_call a, b;
  int64_t rem;
  char *msg;
  int i;

  (void)state;
  call_init(&a, 0);
  assert_true(api->call_remaining_ms(&a) == INT64_MAX);
  assert_true(api->call_remaining_ms(NULL) == INT64_MAX);
  call_init(&b, 10000);
  rem = api->call_remaining_ms(&b);
  assert_true(rem > 0 && rem <= 10000);
  b.deadline_ms = call_now_ms() - 5;
  assert_true(api->call_remaining_ms(&b) < 0);

  assert_int_equal(strlen(api->call_request_id(&a)), 36);
  for (i = 0; i < 36; i++) {
    char ch = api->call_request_id(&a)[i];

    if (i == 8 || i == 13 || i == 18 || i == 23)
      assert_int_equal(ch, '-');
    else
      assert_non_null(strchr("0123456789abcdef", ch));
  }
  assert_string_not_equal(api->call_request_id(&a), api->call_request_id(&b));

  assert_false(api->call_cancelled(&a));
  call_cancel(&a);
  assert_true(api->call_cancelled(&a));

  api->call_set_error(&a, "failed: %d", 7);
  assert_string_equal(a.error, "failed: 7");
  msg = repeat('e', 2000);
  api->call_set_error(&a, "%s", msg);
  assert_int_equal(strlen(a.error), CCM_MAX_ERROR);
  free(msg);
  /* Errors become Events: registered secrets never reach them. */
  log_secret_add("event-secret-9876");
  api->call_set_error(&a, "auth with event-secret-9876 failed");
  assert_string_equal(a.error, "auth with [REDACTED] failed");

  /* A module may prefix the error already there. */
  api->call_set_error(&a, "inner");
  api->call_set_error(&a, "outer: %s", a.error);
  assert_string_equal(a.error, "outer: inner");

  assert_false(a.has_retry_after);
  api->call_set_retry_after(&a, 1500);
  assert_true(a.has_retry_after);
  assert_int_equal(a.retry_after_ms, 1500);
}

static void test_allocators(void **state)
{
  const struct ccm_host_api *api = host_api();
  char *s, *p;

  (void)state;
  s = api->strdup("abc");
  assert_string_equal(s, "abc");
  p = api->realloc(s, 64);
  assert_non_null(p);
  api->free(p);
  p = api->calloc(4, 4);
  assert_int_equal(p[15], 0);
  api->free(p);
  mem_fail_after(0);
  assert_null(api->alloc(8));
  assert_null(api->strdup("x"));
  mem_fail_after(1);
  p = api->alloc(8);
  assert_non_null(p);
  assert_null(api->alloc(8));
  mem_fail_after(-1);
  api->free(p);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table_complete),
      cmocka_unit_test_setup_teardown(test_lb_ingress, setup, teardown),
      cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
      cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blob, setup, teardown),
      cmocka_unit_test_setup_teardown(test_builders_alloc_failure, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_cfg_getters, cfg_setup,
                                      cfg_teardown),
      cmocka_unit_test_setup_teardown(test_cfg_mismatch_names_file_line,
                                      cfg_setup, cfg_teardown),
      cmocka_unit_test_setup_teardown(test_cfg_no_group, setup, teardown),
      cmocka_unit_test_setup_teardown(test_host_log, setup, teardown),
      cmocka_unit_test_setup_teardown(test_host_new_alloc_failure, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_http_refused_while_closing, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_call_context, setup, teardown),
      cmocka_unit_test_setup_teardown(test_allocators, setup, teardown),
  };
  int rc;

  http_global_init();
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  http_global_cleanup();
  return rc;
}
