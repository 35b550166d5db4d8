/*
 * test_loader.c: every loader refusal path (with its message), negotiation
 * of older minors, and private copies. Modules are installed into a private
 * temporary tree, because the build tree's permissions are not ours to fix.
 */
/* nftw */
#define _XOPEN_SOURCE 700

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "modules/loader.h"
#include "modules/registry.h"
#include "util/hash.h"
#include "util/log.h"

struct fixture {
  char root[256];     /* mkdtemp, 0700 */
  char mods[300];     /* modules installed here, 0755 */
  char state[300];    /* state_dir */
  char priv[320];     /* <state>/modules: private copies */
};

static struct fixture fx;

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  chmod(path, 0700);
  remove(path);
  return 0;
}

static void path_join(char *out, size_t cap, const char *dir,
                      const char *name)
{
  int n = snprintf(out, cap, "%s/%s", dir, name);
  assert_true(n > 0 && (size_t)n < cap);
}

/* Copy build/modules/<src> to <dir>/<dst> with mode, atomically (rename). */
static void install_to(const char *dir, const char *src, const char *dst,
                       mode_t mode)
{
  char from[512], tmp[512], to[512], buf[65536];
  ssize_t n;
  int in, out;

  path_join(from, sizeof(from), CCM_MODULE_DIR, src);
  path_join(tmp, sizeof(tmp), dir, ".installing");
  path_join(to, sizeof(to), dir, dst);
  in = open(from, O_RDONLY);
  assert_true(in >= 0);
  out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(out >= 0);
  for (;;) {
    n = read(in, buf, sizeof(buf));
    if (n <= 0)
      break;
    assert_int_equal(write(out, buf, (size_t)n), n);
  }
  close(in);
  assert_int_equal(fchmod(out, mode), 0);
  close(out);
  assert_int_equal(rename(tmp, to), 0);
}

static void install(const char *src, const char *dst)
{
  install_to(fx.mods, src, dst, 0755);
}

static int setup(void **state)
{
  (void)state;
  snprintf(fx.root, sizeof(fx.root), "/tmp/ccm-test-loader-XXXXXX");
  if (!mkdtemp(fx.root))
    return -1;
  snprintf(fx.mods, sizeof(fx.mods), "%s/mods", fx.root);
  snprintf(fx.state, sizeof(fx.state), "%s/state", fx.root);
  snprintf(fx.priv, sizeof(fx.priv), "%s/modules", fx.state);
  if (mkdir(fx.mods, 0755) != 0 || chmod(fx.mods, 0755) != 0)
    return -1;
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  nftw(fx.root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

/* Expect loader_open to refuse path with a message containing want. */
static void expect_refusal(const char *path, const char *want,
                           const char *want2)
{
  struct module *m = (struct module *)0x1;
  char err[1024] = "";
  int rc = loader_open(path, fx.priv, &m, err, sizeof(err));

  if (rc == 0)
    loader_close(m);
  assert_int_equal(rc, -1);
  assert_null(m);
  if (!strstr(err, want) || (want2 && !strstr(err, want2)))
    fail_msg("message '%s' lacks '%s'/'%s'", err, want, want2 ? want2 : "");
  print_message("refused: %s\n", err);
  /* One line that names the path. */
  assert_null(strchr(err, '\n'));
  assert_non_null(strstr(err, path));
}

static void test_missing_file(void **state)
{
  char p[512];

  (void)state;
  path_join(p, sizeof(p), fx.mods, "absent.so");
  expect_refusal(p, "no such file", NULL);
}

static void test_symlink(void **state)
{
  char real[512], link[512];

  (void)state;
  install("ccm-fake.so", "real.so");
  path_join(real, sizeof(real), fx.mods, "real.so");
  path_join(link, sizeof(link), fx.mods, "link.so");
  assert_int_equal(symlink(real, link), 0);
  expect_refusal(link, "symlink", NULL);
}

static void test_group_writable_file(void **state)
{
  char p[512];

  (void)state;
  install_to(fx.mods, "ccm-fake.so", "gw.so", 0775);
  path_join(p, sizeof(p), fx.mods, "gw.so");
  expect_refusal(p, "file is writable by group or others", "0775");
}

static void test_world_writable_dir(void **state)
{
  char dir[512], p[600];

  (void)state;
  path_join(dir, sizeof(dir), fx.root, "open");
  assert_int_equal(mkdir(dir, 0755), 0);
  install_to(dir, "ccm-fake.so", "ok.so", 0755);
  assert_int_equal(chmod(dir, 0777), 0);
  path_join(p, sizeof(p), dir, "ok.so");
  expect_refusal(p, "directory", "writable by group or others");
}

static void test_not_regular(void **state)
{
  char p[512];

  (void)state;
  path_join(p, sizeof(p), fx.mods, "fifo.so");
  assert_int_equal(mkfifo(p, 0644), 0);
  expect_refusal(p, "not a regular file", NULL);
  path_join(p, sizeof(p), fx.mods, "dir.so");
  assert_int_equal(mkdir(p, 0755), 0);
  expect_refusal(p, "not a regular file", NULL);
}

static void test_owner(void **state)
{
  char p[512];

  (void)state;
  if (geteuid() != 0)
    skip(); /* only root can give a file away */
  install("ccm-fake.so", "other.so");
  path_join(p, sizeof(p), fx.mods, "other.so");
  assert_int_equal(chown(p, 12345, 12345), 0);
  expect_refusal(p, "owned by uid 12345", "neither root nor the running");
}

static void test_not_loadable(void **state)
{
  char p[512];
  FILE *f;

  (void)state;
  path_join(p, sizeof(p), fx.mods, "text.so");
  f = fopen(p, "w");
  assert_non_null(f);
  fputs("this is not an ELF object\n", f);
  fclose(f);
  assert_int_equal(chmod(p, 0755), 0);
  expect_refusal(p, "not a loadable object", "dlopen:");
}

static void test_no_entry(void **state)
{
  char p[512];

  (void)state;
  install("ccm-fake-noentry.so", "noentry.so");
  path_join(p, sizeof(p), fx.mods, "noentry.so");
  expect_refusal(p, "no entry symbol ccm_provider_entry", NULL);
}

static void test_major_mismatch(void **state)
{
  char p[512];

  (void)state;
  install("ccm-fake-major2.so", "major2.so");
  path_join(p, sizeof(p), fx.mods, "major2.so");
  expect_refusal(p, "module ABI 2.0, host ABI 1.0", "ABI major 2");
}

static void test_unresolved(void **state)
{
  char p[512];

  (void)state;
  install("ccm-fake-unresolved.so", "unresolved.so");
  path_join(p, sizeof(p), fx.mods, "unresolved.so");
  expect_refusal(p, "unresolved symbol", "ccm_fake_no_such_symbol");
}

static void test_entry_fails(void **state)
{
  char p[512];

  (void)state;
  install("ccm-fake-entryfail.so", "entryfail.so");
  path_join(p, sizeof(p), fx.mods, "entryfail.so");
  expect_refusal(p, "returned status -7", NULL);
}

static void test_struct_too_small(void **state)
{
  char p[512];

  (void)state;
  install("ccm-fake-tiny.so", "tiny.so");
  path_join(p, sizeof(p), fx.mods, "tiny.so");
  expect_refusal(p, "smaller than the ABI 1.0 minimum", NULL);
}

static void test_bad_name(void **state)
{
  char p[512];

  (void)state;
  install("ccm-fake-badname.so", "badname.so");
  path_join(p, sizeof(p), fx.mods, "badname.so");
  expect_refusal(p, "name is missing or invalid", NULL);
}

/* No refusal leaves a private copy behind. */
static void test_no_leftover_copies(void **state)
{
  struct stat st;

  (void)state;
  if (stat(fx.priv, &st) != 0)
    return; /* never created: nothing left */
  assert_int_equal(st.st_mode & 0777, 0700);
  /* rmdir succeeds only on an empty directory. */
  assert_int_equal(rmdir(fx.priv), 0);
}

static void test_load_full(void **state)
{
  struct module *m = NULL;
  char p[512], err[1024] = "", hash[CCM_HASH_HEX], caps[128];
  struct stat st;

  (void)state;
  install("ccm-fake.so", "full.so");
  path_join(p, sizeof(p), fx.mods, "full.so");
  assert_int_equal(loader_open(p, fx.priv, &m, err, sizeof(err)), 0);
  assert_non_null(m);
  assert_string_equal(m->provider->name, "fake");
  assert_string_equal(m->provider->version, "1.0.0");
  assert_int_equal(m->abi_major, CCM_ABI_MAJOR);
  assert_int_equal(m->abi_minor, CCM_ABI_MINOR);
  assert_int_equal(m->provider_size, sizeof(struct ccm_provider));
  assert_int_equal(m->capabilities,
                   CCM_CAP_LOAD_BALANCER | CCM_CAP_INSTANCES |
                       CCM_CAP_INSTANCES_BATCH | CCM_CAP_ROUTES |
                       CCM_CAP_STATE);
  loader_caps_string(m->capabilities, caps, sizeof(caps));
  assert_string_equal(caps, "lb,instances,instances-batch,routes,state");
  assert_true(MODULE_HAS(m, state_export));
  /* The private copy: under the private dir, named by hash, 0500. */
  assert_non_null(strstr(m->private_path, fx.priv));
  assert_non_null(strstr(m->private_path, m->hash));
  assert_int_equal(stat(m->private_path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0500);
  assert_int_equal(stat(fx.priv, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(loader_file_hash(p, hash, err, sizeof(err)), 0);
  assert_string_equal(hash, m->hash);
  {
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", m->private_path);
    loader_close(m);
    assert_int_equal(stat(copy, &st), -1);
    assert_int_equal(errno, ENOENT);
  }
}

static void test_file_hash_checks(void **state)
{
  char p[512], link[512], hash[CCM_HASH_HEX], err[512] = "";

  (void)state;
  path_join(p, sizeof(p), fx.mods, "full.so");
  path_join(link, sizeof(link), fx.mods, "hashlink.so");
  assert_int_equal(symlink(p, link), 0);
  assert_int_equal(loader_file_hash(link, hash, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "symlink"));
}

static void test_caps_string(void **state)
{
  char buf[64];

  (void)state;
  loader_caps_string(0, buf, sizeof(buf));
  assert_string_equal(buf, "none");
  loader_caps_string(CCM_CAP_ROUTES | CCM_CAP_LOAD_BALANCER, buf, sizeof(buf));
  assert_string_equal(buf, "lb,routes");
}

/* An older minor with a shorter provider struct is served, and the host
 * never reads the state operations past its struct_size. */
static void test_older_minor(void **state)
{
  struct module *m = NULL;
  char p[512], err[1024] = "";

  (void)state;
  install("ccm-fake-oldminor.so", "oldminor.so");
  path_join(p, sizeof(p), fx.mods, "oldminor.so");
  assert_int_equal(loader_open(p, fx.priv, &m, err, sizeof(err)), 0);
  assert_int_equal(m->abi_minor, 0);
  assert_int_equal(m->provider_size,
                   offsetof(struct ccm_provider, state_export));
  assert_true(MODULE_HAS(m, lb_ensure));
  assert_true(MODULE_HAS(m, route_delete));
  assert_false(MODULE_HAS(m, state_export));
  assert_false(MODULE_HAS(m, state_import));
  assert_int_equal(m->capabilities & CCM_CAP_STATE, 0);
  assert_int_not_equal(m->capabilities & CCM_CAP_LOAD_BALANCER, 0);
  loader_close(m);
}

static void pc_fill(struct provider_config *pc, config_t *lc,
                    const char *name, const char *path, const char *text)
{
  memset(pc, 0, sizeof(*pc));
  config_init(lc);
  assert_int_equal(config_read_string(lc, text), CONFIG_TRUE);
  pc->name = name;
  pc->module = path;
  pc->is_default = true;
  pc->config = config_root_setting(lc);
  pc->http.burst = 1;
  pc->http.timeout_ms = 1000;
  pc->call_timeout_ms = 5000;
  hash_buf(text, strlen(text), pc->config_hash);
  snprintf(pc->module_abs, sizeof(pc->module_abs), "%s", path);
}

static int count_lines(const char *path, const char *prefix)
{
  char line[512];
  int n = 0;
  FILE *f = fopen(path, "r");

  if (!f)
    return 0;
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, prefix, strlen(prefix)) == 0)
      n++;
  }
  fclose(f);
  return n;
}

/* Served through the registry: calls work, swaps between two older-minor
 * generations never export or import state. */
static void test_older_minor_served(void **state)
{
  struct registry *reg = registry_new(fx.state, 5000);
  struct provider_config pc;
  struct provider_ref ref;
  struct ccm_service svc = {.struct_size = sizeof(svc), .namespace_ = "ns",
                            .name = "web", .lb_name = "lb-old"};
  struct ccm_lb_status st = {0};
  struct ccm_call call;
  struct registry_stats stats;
  config_t lc;
  char p[512], logf[512], text[1024], err[1024] = "";

  (void)state;
  path_join(p, sizeof(p), fx.mods, "oldminor.so");
  path_join(logf, sizeof(logf), fx.root, "oldminor.log");
  snprintf(text, sizeof(text), "call_log = \"%s\";\n", logf);
  pc_fill(&pc, &lc, "old", p, text);
  assert_non_null(reg);
  assert_int_equal(registry_swap(reg, &pc, err, sizeof(err)), 0);
  assert_int_equal(registry_acquire(reg, "old", &ref), CCM_OK);
  call_init(&call, 1000);
  assert_int_equal(prov_lb_ensure(&ref, &call, &svc, NULL, &st), CCM_OK);
  assert_int_equal(st.n, 1);
  lb_status_clear(&st);
  registry_release(&ref);
  assert_int_equal(registry_swap(reg, &pc, err, sizeof(err)), 0);
  registry_get_stats(reg, &stats);
  assert_int_equal(stats.swaps, 1);
  assert_int_equal(count_lines(logf, "lb_ensure"), 1);
  assert_int_equal(count_lines(logf, "state_"), 0);
  registry_free(reg);
  config_destroy(&lc);
}

static void test_init_failure(void **state)
{
  struct registry *reg = registry_new(fx.state, 5000);
  struct provider_config pc;
  struct registry_stats stats;
  config_t lc;
  char p[512], err[1024] = "";

  (void)state;
  install("ccm-fake-initfail.so", "initfail.so");
  path_join(p, sizeof(p), fx.mods, "initfail.so");
  pc_fill(&pc, &lc, "broken", p, "");
  assert_int_equal(registry_swap(reg, &pc, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "init failed"));
  assert_non_null(strstr(err, "fake: init refused on purpose"));
  assert_non_null(strstr(err, p));
  registry_get_stats(reg, &stats);
  assert_int_equal(stats.failed_swaps, 1);
  assert_int_equal(stats.live_generations, 0);
  registry_free(reg);
  config_destroy(&lc);
}

/* Rebuilding a module in place (same path, new bytes) loads the new code,
 * and the same bytes loaded twice are two distinct objects. */
static void test_private_copy(void **state)
{
  struct module *a = NULL, *b = NULL, *c = NULL;
  char p[512], err[1024] = "";

  (void)state;
  install("ccm-fake.so", "rebuilt.so");
  path_join(p, sizeof(p), fx.mods, "rebuilt.so");
  assert_int_equal(loader_open(p, fx.priv, &a, err, sizeof(err)), 0);
  assert_string_equal(a->provider->version, "1.0.0");
  install("ccm-fake-v2.so", "rebuilt.so");
  assert_int_equal(loader_open(p, fx.priv, &b, err, sizeof(err)), 0);
  assert_string_equal(b->provider->version, "2.0.0");
  assert_string_not_equal(a->hash, b->hash);
  assert_string_not_equal(a->private_path, b->private_path);
  assert_ptr_not_equal(a->dl, b->dl);
  /* Same bytes again while b is loaded: a fresh object all the same. */
  assert_int_equal(loader_open(p, fx.priv, &c, err, sizeof(err)), 0);
  assert_string_equal(b->hash, c->hash);
  assert_string_not_equal(b->private_path, c->private_path);
  assert_ptr_not_equal(b->dl, c->dl);
  assert_ptr_not_equal(b->provider, c->provider);
  loader_close(a);
  loader_close(b);
  loader_close(c);
}

/* With CCM_NO_DLCLOSE=1 a closed module stays mapped, so its private name
 * must never be handed out again: dlopen would return the old object. */
static void test_no_dlclose_fresh_names(void **state)
{
  struct module *a = NULL, *b = NULL;
  char p[512], err[1024] = "", first[1024];

  (void)state;
  install("ccm-fake.so", "nodl.so");
  path_join(p, sizeof(p), fx.mods, "nodl.so");
  assert_int_equal(setenv("CCM_NO_DLCLOSE", "1", 1), 0);
  assert_int_equal(loader_open(p, fx.priv, &a, err, sizeof(err)), 0);
  snprintf(first, sizeof(first), "%s", a->private_path);
  loader_close(a);
  assert_int_equal(loader_open(p, fx.priv, &b, err, sizeof(err)), 0);
  assert_string_not_equal(b->private_path, first);
  assert_string_equal(b->provider->version, "1.0.0");
  loader_close(b);
  assert_int_equal(unsetenv("CCM_NO_DLCLOSE"), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_missing_file),
    cmocka_unit_test(test_symlink),
    cmocka_unit_test(test_group_writable_file),
    cmocka_unit_test(test_world_writable_dir),
    cmocka_unit_test(test_not_regular),
    cmocka_unit_test(test_owner),
    cmocka_unit_test(test_not_loadable),
    cmocka_unit_test(test_no_entry),
    cmocka_unit_test(test_major_mismatch),
    cmocka_unit_test(test_unresolved),
    cmocka_unit_test(test_entry_fails),
    cmocka_unit_test(test_struct_too_small),
    cmocka_unit_test(test_bad_name),
    cmocka_unit_test(test_no_leftover_copies),
    cmocka_unit_test(test_load_full),
    cmocka_unit_test(test_file_hash_checks),
    cmocka_unit_test(test_caps_string),
    cmocka_unit_test(test_older_minor),
    cmocka_unit_test(test_older_minor_served),
    cmocka_unit_test(test_init_failure),
    cmocka_unit_test(test_private_copy),
    cmocka_unit_test(test_no_dlclose_fresh_names),
  };

  log_set_level(CCM_LOG_WARN);
  return cmocka_run_group_tests(tests, setup, teardown);
}
