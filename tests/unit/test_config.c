/*
 * test_config.c: unit tests of host/config: defaults, every kind of bad
 * input (one line naming file, line and key), path resolution, config
 * hashes and allocation failure. It writes configs to a private temp dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "util/mem.h"

static char tmpdir[256];

static int group_setup(void **state)
{
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "%s/ccm-test-config-XXXXXX",
           getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
  return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int group_teardown(void **state)
{
  char cmd[512];

  (void)state;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Write text to tmpdir/name (creating one level of subdirectory) and put
 * the path in out. */
static void write_cfg(const char *name, const char *text, char *out,
                      size_t cap)
{
  FILE *f;
  char dir[512];
  const char *slash = strchr(name, '/');

  if (slash != NULL) {
    snprintf(dir, sizeof dir, "%s/%.*s", tmpdir, (int)(slash - name), name);
    mkdir(dir, 0700);
  }
  snprintf(out, cap, "%s/%s", tmpdir, name);
  f = fopen(out, "w");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

static struct host_config *load_ok(const char *name, const char *text)
{
  char path[512], err[1024];
  struct host_config *cfg = NULL;

  write_cfg(name, text, path, sizeof path);
  err[0] = '\0';
  if (config_load(path, &cfg, err, sizeof err) != 0)
    fail_msg("config_load(%s) failed: %s", name, err);
  assert_non_null(cfg);
  return cfg;
}

static const char *MINIMAL =
    "providers = ( { name = \"lab\"; module = \"ccm-lab.so\"; } );\n";

static void test_minimal_defaults(void **state)
{
  struct host_config *cfg;
  const struct provider_config *pc;
  char want[512];

  (void)state;
  cfg = load_ok("minimal.cfg", MINIMAL);
  assert_string_equal(cfg->cluster_name, "kubernetes");
  assert_null(cfg->kubeconfig);
  assert_null(cfg->master);
  assert_int_equal(cfg->controllers,
                   CCM_CTRL_SERVICE | CCM_CTRL_NODE | CCM_CTRL_NODE_LIFECYCLE);
  assert_int_equal(cfg->service_workers, 4);
  assert_int_equal(cfg->node_workers, 4);
  assert_string_equal(cfg->listen, "127.0.0.1:10258");
  assert_string_equal(cfg->log_level, "info");
  assert_string_equal(cfg->state_dir, "/var/lib/ccmhost");
  assert_int_equal(cfg->drain_timeout_ms, 10000);
  assert_true(cfg->leader.enabled);
  assert_string_equal(cfg->leader.lease_name, "cloud-controller-manager");
  assert_string_equal(cfg->leader.lease_namespace, "kube-system");
  assert_int_equal(cfg->leader.lease_duration_s, 15);
  assert_int_equal(cfg->leader.renew_deadline_s, 10);
  assert_int_equal(cfg->leader.retry_period_s, 2);
  assert_int_equal(cfg->n_policies, 0);
  assert_int_equal(cfg->n_providers, 1);
  pc = &cfg->providers[0];
  assert_string_equal(pc->name, "lab");
  assert_true(pc->is_default); /* a lone provider is the default */
  assert_null(pc->lb_class);
  assert_null(pc->config);
  assert_int_equal(pc->call_timeout_ms, 30000);
  assert_null(pc->http.ca_file);
  assert_false(pc->http.insecure_skip_verify);
  assert_true(pc->http.qps == 10.0);
  assert_int_equal(pc->http.burst, 20);
  assert_int_equal(pc->http.timeout_ms, 10000);
  assert_null(pc->http.proxy);
  assert_int_equal(strlen(pc->config_hash), 64);
  snprintf(want, sizeof want, "%s/ccm-lab.so", tmpdir);
  assert_string_equal(pc->module_abs, want);
  assert_ptr_equal(config_provider_default(cfg), pc);
  assert_ptr_equal(config_provider_for_class(cfg, NULL), pc);
  assert_null(config_provider_for_class(cfg, "example.com/other"));
  config_free(cfg);
}

static const char *FULL =
    "cluster_name = \"lab-1\";\n"
    "kubeconfig = \"/etc/kubeconfig\";\n"
    "master = \"https://127.0.0.1:6443\";\n"
    "controllers = [\"service\", \"route\"];\n"
    "service_workers = 8;\n"
    "node_workers = 2;\n"
    "listen = \"[::1]:9000\";\n"
    "log_level = \"debug\";\n"
    "state_dir = \"/tmp/ccm-state\";\n"
    "drain_timeout_ms = 5000;\n"
    "leader_election = {\n"
    "  enabled = false;\n"
    "  lease_name = \"ccm\";\n"
    "  lease_namespace = \"infra\";\n"
    "  lease_duration_s = 30;\n"
    "  renew_deadline_s = 20;\n"
    "  retry_period_s = 5;\n"
    "};\n"
    "policies = [\"policies/default.lua\", \"/abs/p.lua\"];\n"
    "providers = (\n"
    "  { name = \"lab\"; module = \"/opt/ccm/ccm-lab.so\"; default = true;\n"
    "    call_timeout_ms = 1000;\n"
    "    http = { ca_file = \"/etc/ca.pem\"; insecure_skip_tls_verify = true;\n"
    "             qps = 2.5; burst = 7; timeout_ms = 800;\n"
    "             proxy = \"http://127.0.0.1:3128\"; };\n"
    "    config = { pools = [\"10.0.0.0/24\"]; seed = 42; nested = { a = "
    "true; }; };\n"
    "  },\n"
    "  { name = \"fake-2\"; module = \"mods/ccm-fake.so\";\n"
    "    load_balancer_class = \"example.com/fake\"; http = { qps = 0; }; }\n"
    ");\n";

static void test_full(void **state)
{
  struct host_config *cfg;
  const struct provider_config *lab, *fake;
  char want[512];

  (void)state;
  cfg = load_ok("full.cfg", FULL);
  assert_string_equal(cfg->cluster_name, "lab-1");
  assert_string_equal(cfg->kubeconfig, "/etc/kubeconfig");
  assert_string_equal(cfg->master, "https://127.0.0.1:6443");
  assert_int_equal(cfg->controllers, CCM_CTRL_SERVICE | CCM_CTRL_ROUTE);
  assert_int_equal(cfg->service_workers, 8);
  assert_int_equal(cfg->node_workers, 2);
  assert_string_equal(cfg->listen, "[::1]:9000");
  assert_string_equal(cfg->log_level, "debug");
  assert_string_equal(cfg->state_dir, "/tmp/ccm-state");
  assert_int_equal(cfg->drain_timeout_ms, 5000);
  assert_false(cfg->leader.enabled);
  assert_string_equal(cfg->leader.lease_name, "ccm");
  assert_string_equal(cfg->leader.lease_namespace, "infra");
  assert_int_equal(cfg->leader.lease_duration_s, 30);
  assert_int_equal(cfg->leader.renew_deadline_s, 20);
  assert_int_equal(cfg->leader.retry_period_s, 5);
  assert_int_equal(cfg->n_policies, 2);
  snprintf(want, sizeof want, "%s/policies/default.lua", tmpdir);
  assert_string_equal(cfg->policies[0], want);
  assert_string_equal(cfg->policies[1], "/abs/p.lua");

  assert_int_equal(cfg->n_providers, 2);
  lab = &cfg->providers[0];
  fake = &cfg->providers[1];
  assert_true(lab->is_default);
  assert_string_equal(lab->module_abs, "/opt/ccm/ccm-lab.so");
  assert_int_equal(lab->call_timeout_ms, 1000);
  assert_string_equal(lab->http.ca_file, "/etc/ca.pem");
  assert_true(lab->http.insecure_skip_verify);
  assert_true(lab->http.qps == 2.5);
  assert_int_equal(lab->http.burst, 7);
  assert_int_equal(lab->http.timeout_ms, 800);
  assert_string_equal(lab->http.proxy, "http://127.0.0.1:3128");
  assert_non_null(lab->config);
  assert_true(config_setting_is_group(lab->config));
  assert_non_null(config_setting_get_member(lab->config, "seed"));

  assert_false(fake->is_default);
  assert_string_equal(fake->lb_class, "example.com/fake");
  assert_true(fake->http.qps == 0.0);
  snprintf(want, sizeof want, "%s/mods/ccm-fake.so", tmpdir);
  assert_string_equal(fake->module_abs, want);
  assert_string_not_equal(lab->config_hash, fake->config_hash);

  assert_ptr_equal(config_provider_default(cfg), lab);
  assert_ptr_equal(config_provider_for_class(cfg, "example.com/fake"), fake);
  assert_null(config_provider_for_class(cfg, "example.com/none"));
  config_free(cfg);
}

static void test_controllers_star(void **state)
{
  struct host_config *cfg;

  (void)state;
  cfg = load_ok("star.cfg", "controllers = [\"*\"];\n"
                            "providers = ( { name = \"a\"; module = \"a.so\"; "
                            "} );\n");
  assert_int_equal(cfg->controllers, CCM_CTRL_SERVICE | CCM_CTRL_NODE |
                                         CCM_CTRL_NODE_LIFECYCLE |
                                         CCM_CTRL_ROUTE);
  config_free(cfg);
}

/* ---- bad inputs ---------------------------------------------------------- */

struct bad_case {
  const char *what;
  const char *text;
  int line;          /* expected line; 0 = only check the key/message */
  const char *key;   /* "" for syntax errors */
  const char *words; /* must appear in the message */
};

#define PROV_A "{ name = \"a\"; module = \"a.so\"; }"
#define PROV_D "{ name = \"a\"; module = \"a.so\"; default = true; }"

static const struct bad_case bad_cases[] = {
  {"unknown top-level key",
   "cluster_name = \"x\";\nbogus = 1;\nproviders = ( " PROV_A " );\n", 2,
   "bogus", "unknown key"},
  {"unknown key in a provider",
   "providers = (\n"
   "  { name = \"a\";\n"
   "    module = \"a.so\";\n"
   "    colour = \"red\"; }\n"
   ");\n",
   4, "providers.[0].colour", "unknown key"},
  {"unknown key in http",
   "providers = (\n"
   "  { name = \"a\"; module = \"a.so\";\n"
   "    http = { qps = 5;\n"
   "             foo = 1; }; }\n"
   ");\n",
   4, "providers.[0].http.foo", "unknown key"},
  {"unknown key in leader_election",
   "leader_election = {\n  enabled = true;\n  lease = \"x\";\n};\n"
   "providers = ( " PROV_A " );\n",
   3, "leader_election.lease", "unknown key"},
  {"wrong type",
   "service_workers = \"4\";\nproviders = ( " PROV_A " );\n", 1,
   "service_workers", "expected an integer, got a string"},
  {"wrong type bool",
   "leader_election = { enabled = 1; };\nproviders = ( " PROV_A " );\n", 1,
   "leader_election.enabled", "expected a boolean"},
  {"wrong type qps",
   "providers = (\n  { name = \"a\"; module = \"a.so\";\n"
   "    http = { qps = \"fast\"; }; }\n);\n",
   3, "providers.[0].http.qps", "expected a number, got a string"},
  {"providers not a list", "providers = { name = \"a\"; };\n", 1, "providers",
   "expected a list of groups"},
  {"empty providers", "providers = ();\n", 1, "providers",
   "at least one provider"},
  {"provider not a group", "providers = ( \"a\" );\n", 1, "providers.[0]",
   "expected a group"},
  {"missing providers", "cluster_name = \"x\";\n", 1, "providers",
   "required key is missing"},
  {"missing name",
   "providers = (\n  { module = \"a.so\"; }\n);\n", 2, "providers.[0].name",
   "required key is missing"},
  {"missing module",
   "providers = (\n  " PROV_A ",\n"
   "  { name = \"b\";\n    load_balancer_class = \"x/b\"; }\n);\n",
   3, "providers.[1].module", "required key is missing"},
  {"bad provider name",
   "providers = (\n  { name = \"Lab_1\"; module = \"a.so\"; }\n);\n", 2,
   "providers.[0].name", "[a-z0-9-]"},
  {"two defaults",
   "providers = (\n"
   "  { name = \"a\"; module = \"a.so\"; default = true; },\n"
   "  { name = \"b\"; module = \"b.so\";\n"
   "    default = true; }\n"
   ");\n",
   4, "providers.[1].default", "two default providers"},
  {"no default among two",
   "cluster_name = \"x\";\n"
   "providers = (\n"
   "  { name = \"a\"; module = \"a.so\"; load_balancer_class = \"x/a\"; },\n"
   "  { name = \"b\"; module = \"b.so\"; load_balancer_class = \"x/b\"; }\n"
   ");\n",
   2, "providers", "no provider is the default"},
  {"lone provider not default",
   "providers = ( { name = \"a\"; module = \"a.so\"; default = false;\n"
   "  load_balancer_class = \"x/a\"; } );\n",
   0, "providers", "no provider is the default"},
  {"default with a class",
   "providers = (\n  { name = \"a\"; module = \"a.so\";\n"
   "    load_balancer_class = \"x/a\"; }\n);\n",
   3, "providers.[0].load_balancer_class", "must not have one"},
  {"second provider without a class",
   "providers = (\n  " PROV_D ",\n  { name = \"b\"; module = \"b.so\"; }\n);\n",
   3, "providers.[1].load_balancer_class", "required for a provider"},
  {"duplicate class",
   "providers = (\n"
   "  " PROV_D ",\n"
   "  { name = \"b\"; module = \"b.so\"; load_balancer_class = \"x/c\"; },\n"
   "  { name = \"c\"; module = \"c.so\";\n"
   "    load_balancer_class = \"x/c\"; }\n"
   ");\n",
   5, "providers.[2].load_balancer_class", "duplicate class"},
  {"duplicate name",
   "providers = (\n"
   "  " PROV_A ",\n"
   "  { name = \"a\";\n"
   "    module = \"b.so\"; load_balancer_class = \"x/b\"; }\n"
   ");\n",
   3, "providers.[1].name", "duplicate provider name"},
  {"bad listen address", "listen = \"1.2.3:80\";\nproviders = ( " PROV_A " );\n",
   1, "listen", "not an IPv4 address"},
  {"bad listen port",
   "\nlisten = \"127.0.0.1:70000\";\nproviders = ( " PROV_A " );\n", 2,
   "listen", "port"},
  {"listen without port", "listen = \"[::1]\";\nproviders = ( " PROV_A " );\n",
   1, "listen", "ADDR:PORT"},
  {"range too big", "service_workers = 65;\nproviders = ( " PROV_A " );\n", 1,
   "service_workers", "from 1 to 64, got 65"},
  {"range too small", "drain_timeout_ms = 5;\nproviders = ( " PROV_A " );\n",
   1, "drain_timeout_ms", "from 100 to 600000"},
  {"negative qps",
   "providers = ( { name = \"a\"; module = \"a.so\"; http = { qps = -1.5; "
   "}; } );\n",
   1, "providers.[0].http.qps", "from 0 to"},
  {"bad log level", "log_level = \"loud\";\nproviders = ( " PROV_A " );\n", 1,
   "log_level", "not one of"},
  {"bad controller",
   "controllers = [\"service\",\n  \"ingress\"];\nproviders = ( " PROV_A
   " );\n",
   2, "controllers.[1]", "not one of"},
  {"controllers not strings", "controllers = [1];\nproviders = ( " PROV_A
   " );\n", 1, "controllers.[0]", "expected a string"},
  {"relative state_dir", "state_dir = \"var\";\nproviders = ( " PROV_A " );\n",
   1, "state_dir", "absolute path"},
  {"renew not below duration",
   "leader_election = {\n  lease_duration_s = 10;\n  renew_deadline_s = 10;\n"
   "};\nproviders = ( " PROV_A " );\n",
   3, "leader_election.renew_deadline_s", "less than lease_duration_s"},
  {"retry not below renew",
   "leader_election = {\n  retry_period_s = 12;\n};\nproviders = ( " PROV_A
   " );\n",
   2, "leader_election.retry_period_s", "less than renew_deadline_s"},
  {"config not a group",
   "providers = (\n  { name = \"a\"; module = \"a.so\";\n    config = 5; }\n);\n",
   3, "providers.[0].config", "expected a group"},
  {"empty module",
   "providers = ( { name = \"a\"; module = \"\"; } );\n", 1,
   "providers.[0].module", "must not be empty"},
  {"syntax error", "cluster_name = \"x\";\nservice_workers = ;\n", 2, "",
   "syntax error"},
  {"duplicate setting", "cluster_name = \"x\";\ncluster_name = \"y\";\n", 2,
   "", "syntax error"},
};

static void test_bad_inputs(void **state)
{
  char path[512], err[1024], want[1024];

  (void)state;
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    const struct bad_case *c = &bad_cases[i];
    static struct host_config poison;
    struct host_config *cfg = &poison; /* config_load must reset it */
    int rc;

    write_cfg("bad.cfg", c->text, path, sizeof path);
    err[0] = '\0';
    rc = config_load(path, &cfg, err, sizeof err);
    if (rc == 0) {
      config_free(cfg);
      fail_msg("%s: accepted", c->what);
    }
    assert_null(cfg);
    if (c->line > 0 && c->key[0] != '\0')
      snprintf(want, sizeof want, "%s:%d: %s: ", path, c->line, c->key);
    else if (c->line > 0)
      snprintf(want, sizeof want, "%s:%d: ", path, c->line);
    else
      snprintf(want, sizeof want, "%s:", path);
    if (strncmp(err, want, strlen(want)) != 0)
      fail_msg("%s: got \"%s\", want prefix \"%s\"", c->what, err, want);
    if (c->line == 0 && strstr(err, c->key) == NULL)
      fail_msg("%s: got \"%s\", want key %s", c->what, err, c->key);
    if (strstr(err, c->words) == NULL)
      fail_msg("%s: got \"%s\", want \"%s\"", c->what, err, c->words);
    if (getenv("CCM_TEST_VERBOSE") != NULL)
      print_message("%s -> %s\n", c->what, err);
    if (strchr(err, '\n') != NULL)
      fail_msg("%s: more than one line: \"%s\"", c->what, err);
  }
}

static void test_unreadable(void **state)
{
  char path[512], err[1024];
  struct host_config *cfg = NULL;

  (void)state;
  snprintf(path, sizeof path, "%s/does-not-exist.cfg", tmpdir);
  assert_int_equal(config_load(path, &cfg, err, sizeof err), -1);
  assert_null(cfg);
  assert_non_null(strstr(err, "does-not-exist.cfg: cannot read"));
  assert_int_equal(config_load(tmpdir, &cfg, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a regular file"));
}

/* ---- paths --------------------------------------------------------------- */

static void test_relative_module(void **state)
{
  struct host_config *cfg;
  char path[512], err[1024], want[512], cwd[512];

  (void)state;
  cfg = load_ok("sub/host.cfg",
                "providers = (\n"
                "  { name = \"a\"; module = \"./ccm-a.so\"; default = true; },\n"
                "  { name = \"b\"; module = \"../mods/ccm-b.so\";\n"
                "    load_balancer_class = \"x/b\"; },\n"
                "  { name = \"c\"; module = \"/abs/ccm-c.so\";\n"
                "    load_balancer_class = \"x/c\"; }\n"
                ");\n");
  snprintf(want, sizeof want, "%s/sub/ccm-a.so", tmpdir);
  assert_string_equal(cfg->providers[0].module_abs, want);
  assert_string_equal(cfg->providers[0].module, "./ccm-a.so");
  snprintf(want, sizeof want, "%s/sub/../mods/ccm-b.so", tmpdir);
  assert_string_equal(cfg->providers[1].module_abs, want);
  assert_string_equal(cfg->providers[2].module_abs, "/abs/ccm-c.so");
  config_free(cfg);

  /* A relative config path resolves against the working directory once,
   * and modules against the file's directory, not the working one. */
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(tmpdir), 0);
  snprintf(path, sizeof path, "sub/host.cfg");
  cfg = NULL;
  if (config_load(path, &cfg, err, sizeof err) != 0) {
    assert_int_equal(chdir(cwd), 0);
    fail_msg("relative load failed: %s", err);
  }
  assert_int_equal(chdir(cwd), 0);
  snprintf(want, sizeof want, "%s/sub/ccm-a.so", tmpdir);
  assert_string_equal(cfg->providers[0].module_abs, want);
  config_free(cfg);
}

/* A kubeconfig path in host.cfg means the same from any working directory;
 * an absolute one is kept as it is. */
static void test_relative_kubeconfig(void **state)
{
  struct host_config *cfg;
  char want[512];

  (void)state;
  cfg = load_ok("sub/host.cfg", "kubeconfig = \"kube/config\";\n"
                "providers = ( " PROV_A " );\n");
  snprintf(want, sizeof want, "%s/sub/kube/config", tmpdir);
  assert_string_equal(cfg->kubeconfig, want);
  config_free(cfg);
  cfg = load_ok("sub/host.cfg", "kubeconfig = \"/etc/kube.yaml\";\n"
                "providers = ( " PROV_A " );\n");
  assert_string_equal(cfg->kubeconfig, "/etc/kube.yaml");
  config_free(cfg);
  cfg = load_ok("sub/host.cfg", "providers = ( " PROV_A " );\n");
  assert_null(cfg->kubeconfig);
  config_free(cfg);
}

/* ---- hashes ---------------------------------------------------------------- */

static void hash_of(const char *text, size_t idx, char out[CCM_HASH_HEX])
{
  struct host_config *cfg = load_ok("hash.cfg", text);

  assert_true(idx < cfg->n_providers);
  memcpy(out, cfg->providers[idx].config_hash, CCM_HASH_HEX);
  config_free(cfg);
}

#define HASH_B "  { name = \"b\"; module = \"b.so\"; load_balancer_class = " \
               "\"x/b\"; config = { k = 1; }; }\n"

static void test_config_hash(void **state)
{
  char base[CCM_HASH_HEX], h[CCM_HASH_HEX], base_b[CCM_HASH_HEX];

  (void)state;
  hash_of("providers = (\n"
          "  { name = \"a\"; module = \"a.so\"; default = true;\n"
          "    config = { pools = [\"10.0.0.0/24\"]; seed = 1; g = { x = "
          "true; }; }; },\n" HASH_B ");\n",
          0, base);
  hash_of("providers = (\n"
          "  { name = \"a\"; module = \"a.so\"; default = true;\n"
          "    config = { pools = [\"10.0.0.0/24\"]; seed = 1; g = { x = "
          "true; }; }; },\n" HASH_B ");\n",
          1, base_b);

  /* Unchanged: key order in groups, spelled-out defaults, other keys,
   * the provider's own name, another provider's config. */
  hash_of("cluster_name = \"other\";\nservice_workers = 9;\n"
          "providers = (\n"
          "  { name = \"renamed\"; default = true; module = \"a.so\";\n"
          "    call_timeout_ms = 30000; http = { qps = 10.0; burst = 20; };\n"
          "    config = { g = { x = true; }; seed = 1; pools = "
          "[\"10.0.0.0/24\"]; }; },\n"
          "  { name = \"b\"; module = \"b.so\"; load_balancer_class = "
          "\"x/b\"; config = { k = 2; }; }\n"
          ");\n",
          0, h);
  assert_string_equal(h, base);

  /* Changed: a value in the config group. */
  hash_of("providers = (\n"
          "  { name = \"a\"; module = \"a.so\"; default = true;\n"
          "    config = { pools = [\"10.0.0.0/24\"]; seed = 2; g = { x = "
          "true; }; }; },\n" HASH_B ");\n",
          0, h);
  assert_string_not_equal(h, base);
  /* ... a nested value, a list element, a type (1 vs "1") ... */
  hash_of("providers = (\n"
          "  { name = \"a\"; module = \"a.so\"; default = true;\n"
          "    config = { pools = [\"10.0.0.0/24\"]; seed = 1; g = { x = "
          "false; }; }; },\n" HASH_B ");\n",
          0, h);
  assert_string_not_equal(h, base);
  hash_of("providers = (\n"
          "  { name = \"a\"; module = \"a.so\"; default = true;\n"
          "    config = { pools = [\"10.0.0.0/25\"]; seed = 1; g = { x = "
          "true; }; }; },\n" HASH_B ");\n",
          0, h);
  assert_string_not_equal(h, base);
  hash_of("providers = (\n"
          "  { name = \"a\"; module = \"a.so\"; default = true;\n"
          "    config = { pools = [\"10.0.0.0/24\"]; seed = \"1\"; g = { x = "
          "true; }; }; },\n" HASH_B ");\n",
          0, h);
  assert_string_not_equal(h, base);
  /* ... a key added, the http settings, the timeout, the module path. */
  hash_of("providers = (\n"
          "  { name = \"a\"; module = \"a.so\"; default = true;\n"
          "    config = { pools = [\"10.0.0.0/24\"]; seed = 1; g = { x = "
          "true; }; extra = 0; }; },\n" HASH_B ");\n",
          0, h);
  assert_string_not_equal(h, base);
  hash_of("providers = (\n"
          "  { name = \"a\"; module = \"a.so\"; default = true; http = { qps = "
          "11; };\n"
          "    config = { pools = [\"10.0.0.0/24\"]; seed = 1; g = { x = "
          "true; }; }; },\n" HASH_B ");\n",
          0, h);
  assert_string_not_equal(h, base);
  hash_of("providers = (\n"
          "  { name = \"a\"; module = \"a.so\"; default = true; "
          "call_timeout_ms = 5;\n"
          "    config = { pools = [\"10.0.0.0/24\"]; seed = 1; g = { x = "
          "true; }; }; },\n" HASH_B ");\n",
          0, h);
  assert_string_not_equal(h, base);
  hash_of("providers = (\n"
          "  { name = \"a\"; module = \"a2.so\"; default = true;\n"
          "    config = { pools = [\"10.0.0.0/24\"]; seed = 1; g = { x = "
          "true; }; }; },\n" HASH_B ");\n",
          0, h);
  assert_string_not_equal(h, base);
  /* The other provider's hash moves only with its own config. */
  hash_of("providers = (\n"
          "  { name = \"a\"; module = \"a.so\"; default = true;\n"
          "    config = { pools = [\"10.0.0.0/24\"]; seed = 2; g = { x = "
          "true; }; }; },\n" HASH_B ");\n",
          1, h);
  assert_string_equal(h, base_b);
}

/* ---- allocation failure: every failure path frees what it took ----------- */

static void test_alloc_failure(void **state)
{
  char path[512], err[1024];
  bool succeeded = false;

  (void)state;
  write_cfg("oom.cfg", FULL, path, sizeof path);
  for (long n = 0; n < 200 && !succeeded; n++) {
    struct host_config *cfg = NULL;
    int rc;
    err[0] = '\0';
    mem_fail_after(n);
    rc = config_load(path, &cfg, err, sizeof err);
    mem_fail_after(-1);
    if (rc == 0) {
      assert_non_null(cfg);
      config_free(cfg);
      succeeded = true;
    } else {
      assert_null(cfg);
      assert_non_null(strstr(err, "out of memory"));
    }
  }
  assert_true(succeeded);
}

/* ---- listen parsing and docs ----------------------------------------------- */

static void test_listen_parse(void **state)
{
  static const struct {
    const char *in;
    int rc;
    const char *addr;
    unsigned port;
  } cases[] = {
    {"127.0.0.1:10258", 0, "127.0.0.1", 10258},
    {"0.0.0.0:0", 0, "0.0.0.0", 0},
    {"[::1]:80", 0, "::1", 80},
    {"::1:80", 0, "::1", 80},
    {"[fe80::1]:65535", 0, "fe80::1", 65535},
    {"1.2.3:80", -1, NULL, 0},
    {"127.0.0.1:65536", -1, NULL, 0},
    {"127.0.0.1", -1, NULL, 0},
    {"127.0.0.1:", -1, NULL, 0},
    {"127.0.0.1:+5", -1, NULL, 0},
    {"[::1]80", -1, NULL, 0},
    {"localhost:80", -1, NULL, 0},
    {":80", -1, NULL, 0},
    {"", -1, NULL, 0},
  };
  char addr[64], why[256];
  unsigned port;

  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = config_listen_parse(cases[i].in, addr, sizeof addr, &port, why,
                                 sizeof why);
    if (rc != cases[i].rc)
      fail_msg("listen \"%s\": rc %d, want %d", cases[i].in, rc,
               cases[i].rc);
    if (rc == 0) {
      assert_string_equal(addr, cases[i].addr);
      assert_int_equal(port, cases[i].port);
    }
  }
}

static void test_docs(void **state)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);

  (void)state;
  assert_non_null(f);
  config_write_docs(f);
  assert_int_equal(fclose(f), 0);
  assert_non_null(strstr(buf, "# Host configuration reference"));
  assert_non_null(strstr(buf, "| `service_workers` | integer 1..64 | `4` |"));
  assert_non_null(strstr(buf, "| `providers.[].http.qps` | number"));
  assert_non_null(strstr(buf, "| `providers.[].name` | string | required |"));
  assert_non_null(strstr(buf, "`providers.[].config`"));
  free(buf);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_minimal_defaults),
    cmocka_unit_test(test_full),
    cmocka_unit_test(test_controllers_star),
    cmocka_unit_test(test_bad_inputs),
    cmocka_unit_test(test_unreadable),
    cmocka_unit_test(test_relative_module),
    cmocka_unit_test(test_relative_kubeconfig),
    cmocka_unit_test(test_config_hash),
    cmocka_unit_test(test_alloc_failure),
    cmocka_unit_test(test_listen_parse),
    cmocka_unit_test(test_docs),
  };

  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
