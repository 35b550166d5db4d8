/*
 * test_policy_sandbox.c: sandbox escapes through host/policy. Each escape
 * must end as POLICY_ERROR with a useful message, and the same engine must
 * serve a good hook right after. It checks outcomes, never timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"
#include "test_policy_util.h"
#include "util/log.h"
#include "util/mem.h"

/* The escape runs only for Services annotated test/escape, so the
 * self-test on the sample objects passes. Line 4 holds the escape. */
static const char esc_fmt[] =
    "local P = {}\n"
    "function P.load_balancer_options(svc, ctx)\n"
    "  if svc.annotations['test/escape'] then\n"
    "    %s\n"
    "  end\n"
    "  return { pool = 'fine' }\n"
    "end\n"
    "function P.load_balancer_name(svc, ctx) return 'good-name' end\n"
    "return P\n";

struct esc_case {
  const char *code;
  const char *want; /* substring of the message */
};

static const struct esc_case esc_cases[] = {
    {"os.execute('touch /tmp/ccm-pwned')", "global 'os'"},
    {"io.open('/etc/passwd')", "global 'io'"},
    {"require('os')", "global 'require'"},
    {"package.loadlib('libc.so.6', 'system')", "global 'package'"},
    {"load(string.dump(function() end))", "'dump'"},
    {"load('return 1')", "global 'load'"},
    {"loadfile('/etc/passwd')", "global 'loadfile'"},
    {"dofile('/etc/passwd')", "global 'dofile'"},
    {"return ('x').dump(function() end)", "'dump'"},
    {"debug.sethook()", "global 'debug'"},
    {"getmetatable('').__index = {}", "boolean"},
    {"setmetatable('', {})", "table expected"},
    {"collectgarbage('stop')", "global 'collectgarbage'"},
    {"while true do end", "instruction budget exceeded"},
    {"while true do pcall(function() while true do end end) end",
     "instruction budget exceeded"},
    {"local ok = pcall(function() while true do end end); return {}",
     "instruction budget exceeded"},
    {"local s = string.rep('x', 1 << 30)", "memory limit exceeded"},
    {"local t = {} for i = 1, 1e9 do t[i] = i end", "exceeded"},
    {"local function f(n) return 1 + f(n + 1) end; return f(1)", ""},
    {"newglobal = 1", "assignment to global 'newglobal'"},
    {"_G.x = 1", "assignment to global 'x'"},
    {"string = nil", "assignment to global 'string'"},
    {"rawset(_G, 'x', 1)", "global 'rawset'"},
    {"svc.name = 'x'", "read-only"},
    {"svc.annotations['a'] = 'x'", "read-only"},
    {"setmetatable(svc, {})", "protected metatable"},
    {"setmetatable({}, {__gc = function() while true do end end})",
     "__gc"},
    {"ccm.split = nil", "read-only"},
    {"print(coroutine.create(function() end))", "global 'coroutine'"},
    {"error('plain failure')", "plain failure"},
    {"error({})", "table value"},
};

static struct policy_ctx ctx = {"kubernetes", "test", NULL, NULL};

static void check_good_after(struct policy_engine *pe,
                             const struct obj_service *plain)
{
  struct policy_error err;
  struct policy_options *opts = NULL;
  char name[64];

  assert_int_equal(policy_lb_name(pe, plain, &ctx, name, sizeof name, &err),
                   POLICY_OK);
  assert_string_equal(name, "good-name");
  assert_int_equal(policy_lb_options(pe, plain, &ctx, &opts, &err),
                   POLICY_OK);
  assert_non_null(opts);
  assert_int_equal(opts->n, 1);
  assert_string_equal(opts->options[0]->string_value, "fine");
  policy_options_free(opts);
}

static void test_escapes(void **state)
{
  struct tp_dir d;
  struct obj_meta *bad = tp_service("esc", "\"test/escape\":\"1\"");
  struct obj_meta *plain = tp_service("plain", NULL);
  struct policy_stats stats;

  (void)state;
  assert_non_null(bad);
  assert_non_null(plain);
  tp_dir_make(&d);
  for (size_t i = 0; i < sizeof esc_cases / sizeof esc_cases[0]; i++) {
    struct policy_engine *pe = NULL;
    struct policy_error err;
    struct policy_options *opts = NULL;
    char text[2048], e[512];
    const char *path;
    const char *files[1];
    int rc;

    snprintf(text, sizeof text, esc_fmt, esc_cases[i].code);
    path = tp_write(&d, "esc.lua", text);
    assert_non_null(path);
    files[0] = path;
    if (policy_engine_new(files, 1, NULL, &pe, e, sizeof e) != 0)
      fail_msg("case %zu (%s): engine: %s", i, esc_cases[i].code, e);
    rc = policy_lb_options(pe, obj_as_service(bad), &ctx, &opts, &err);
    if (rc != POLICY_ERROR)
      fail_msg("case %zu (%s): rc %d, want POLICY_ERROR", i,
               esc_cases[i].code, rc);
    assert_null(opts);
    if (getenv("CCM_TEST_VERBOSE") != NULL)
      fprintf(stderr, "%-60.60s -> %s: %s\n", esc_cases[i].code, err.where,
              err.message);
    if (strstr(err.message, esc_cases[i].want) == NULL)
      fail_msg("case %zu (%s): message \"%s\" lacks \"%s\"", i,
               esc_cases[i].code, err.message, esc_cases[i].want);
    assert_string_equal(err.policy, "esc.lua");
    assert_string_equal(err.hook, "load_balancer_options");
    assert_true(strncmp(err.where, "esc.lua", 7) == 0);
    assert_true(err.message[0] != '\0');
    /* the engine keeps serving, twice (a killed state is rebuilt) */
    check_good_after(pe, obj_as_service(plain));
    check_good_after(pe, obj_as_service(plain));
    policy_engine_stats(pe, &stats);
    assert_int_equal(stats.errors, 1);
    policy_engine_free(pe);
  }
  assert_int_equal(access("/tmp/ccm-pwned", F_OK), -1);
  obj_unref(bad);
  obj_unref(plain);
  tp_dir_remove(&d);
}

/* Runtime errors name file:line and carry a traceback. */
static void test_error_line_and_traceback(void **state)
{
  struct tp_dir d;
  struct obj_meta *bad = tp_service("esc", "\"test/escape\":\"1\"");
  struct policy_engine *pe = NULL;
  struct policy_error err;
  struct policy_options *opts = NULL;
  char text[2048], e[512], line[1024];
  const char *files[1];

  (void)state;
  tp_dir_make(&d);
  snprintf(text, sizeof text, esc_fmt, "local x = nil; return x.field");
  files[0] = tp_write(&d, "esc.lua", text);
  assert_int_equal(policy_engine_new(files, 1, NULL, &pe, e, sizeof e), 0);
  assert_int_equal(policy_lb_options(pe, obj_as_service(bad), &ctx, &opts,
                                     &err),
                   POLICY_ERROR);
  assert_string_equal(err.where, "esc.lua:4");
  assert_non_null(strstr(err.message, "attempt to index a nil value"));
  assert_non_null(strstr(err.traceback, "stack traceback:"));
  assert_non_null(strstr(err.traceback, "esc.lua:4"));
  policy_error_format(&err, line, sizeof line);
  assert_true(strncmp(line, "policy esc.lua:4 load_balancer_options: ",
                      40) == 0);
  policy_engine_free(pe);
  obj_unref(bad);
  tp_dir_remove(&d);
}

/* The budget stops a loop at load time too, and a short budget is used. */
static void test_load_refusals(void **state)
{
  struct tp_dir d;
  struct policy_engine *pe = NULL;
  char e[512];
  const char *files[1];
  static const char bytecode[] = "\x1bLuaT\x00\x19\x93\r\n\x1a\n";

  (void)state;
  tp_dir_make(&d);
  files[0] = tp_write(&d, "loop.lua", "while true do end\nreturn {}\n");
  assert_int_equal(policy_engine_new(files, 1, NULL, &pe, e, sizeof e), -1);
  assert_null(pe);
  assert_non_null(strstr(e, "loop.lua:1"));
  assert_non_null(strstr(e, "exceeded"));

  files[0] = tp_write(&d, "bc.lua", bytecode);
  assert_int_equal(policy_engine_new(files, 1, NULL, &pe, e, sizeof e), -1);
  assert_non_null(strstr(e, "bytecode is refused"));
  assert_non_null(strstr(e, "bc.lua"));

  files[0] = tp_write(&d, "num.lua", "return 42\n");
  assert_int_equal(policy_engine_new(files, 1, NULL, &pe, e, sizeof e), -1);
  assert_non_null(strstr(e, "must return a table"));

  files[0] = tp_write(&d, "hook.lua", "return { load_balancer_name = 3 }\n");
  assert_int_equal(policy_engine_new(files, 1, NULL, &pe, e, sizeof e), -1);
  assert_non_null(strstr(e, "not a function"));

  files[0] = tp_write(&d, "glob.lua", "x = 1\nreturn {}\n");
  assert_int_equal(policy_engine_new(files, 1, NULL, &pe, e, sizeof e), -1);
  assert_non_null(strstr(e, "glob.lua:1"));
  assert_non_null(strstr(e, "assignment to global 'x'"));
  tp_dir_remove(&d);
}

/* A kill inside a nested pcall/xpcall chain is not swallowed, even with a
 * message handler that tries to recover. */
static void test_kill_not_swallowed(void **state)
{
  struct tp_dir d;
  struct policy_engine *pe = NULL;
  struct policy_error err;
  struct obj_meta *bad = tp_service("esc", "\"test/escape\":\"1\"");
  struct policy_options *opts = NULL;
  char text[2048], e[512];
  const char *files[1];

  (void)state;
  tp_dir_make(&d);
  snprintf(text, sizeof text, esc_fmt,
           "for i = 1, 100 do xpcall(function() while true do end end, "
           "function() return 'recovered' end) end; return {pool='x'}");
  files[0] = tp_write(&d, "esc.lua", text);
  assert_int_equal(policy_engine_new(files, 1, NULL, &pe, e, sizeof e), 0);
  assert_int_equal(policy_lb_options(pe, obj_as_service(bad), &ctx, &opts,
                                     &err),
                   POLICY_ERROR);
  assert_non_null(strstr(err.message, "exceeded"));
  assert_null(opts);
  policy_engine_free(pe);
  obj_unref(bad);
  tp_dir_remove(&d);
}

/* The deadline stops a loop the instruction budget would let run, and a
 * small memory cap stops a growing table; the engine serves afterwards. */
static void test_custom_limits(void **state)
{
  struct tp_dir d;
  struct policy_engine *pe = NULL;
  struct policy_error err;
  struct obj_meta *bad = tp_service("esc", "\"test/escape\":\"1\"");
  struct obj_meta *plain = tp_service("plain", NULL);
  struct policy_options *opts = NULL;
  struct policy_limits lim = {.instructions = UINT64_C(1) << 50,
                              .call_ms = 20};
  char text[2048], e[512];
  const char *files[1];

  (void)state;
  tp_dir_make(&d);
  snprintf(text, sizeof text, esc_fmt, "while true do end");
  files[0] = tp_write(&d, "esc.lua", text);
  assert_int_equal(policy_engine_new(files, 1, &lim, &pe, e, sizeof e), 0);
  assert_int_equal(policy_lb_options(pe, obj_as_service(bad), &ctx, &opts,
                                     &err),
                   POLICY_ERROR);
  assert_non_null(strstr(err.message, "deadline exceeded (20 ms)"));
  check_good_after(pe, obj_as_service(plain));
  policy_engine_free(pe);

  lim = (struct policy_limits){.mem_bytes = 512 * 1024};
  snprintf(text, sizeof text, esc_fmt,
           "local t = {} for i = 1, 1e6 do t[i] = {i} end");
  files[0] = tp_write(&d, "esc.lua", text);
  assert_int_equal(policy_engine_new(files, 1, &lim, &pe, e, sizeof e), 0);
  assert_int_equal(policy_lb_options(pe, obj_as_service(bad), &ctx, &opts,
                                     &err),
                   POLICY_ERROR);
  assert_non_null(strstr(err.message, "memory limit exceeded (524288 bytes)"));
  assert_string_equal(err.where, "esc.lua");
  check_good_after(pe, obj_as_service(plain));
  policy_engine_free(pe);

  /* a cap too small for the libraries fails cleanly at load */
  lim = (struct policy_limits){.mem_bytes = 4096};
  assert_int_equal(policy_engine_new(files, 1, &lim, &pe, e, sizeof e), -1);
  assert_non_null(strstr(e, "memory limit exceeded"));
  obj_unref(bad);
  obj_unref(plain);
  tp_dir_remove(&d);
}

/* Host allocation failures (mem_fail_after) at every step of building an
 * engine and calling a hook: a clean error each time, never a crash, a
 * Lua panic or (under ASan) a leak. */
static void test_alloc_failures(void **state)
{
  struct tp_dir d;
  struct obj_meta *plain = tp_service("plain", NULL);
  const char *files[1];
  char text[2048];
  int ok = 0;

  (void)state;
  tp_dir_make(&d);
  snprintf(text, sizeof text, esc_fmt, "error('x')");
  files[0] = tp_write(&d, "esc.lua", text);
  for (long n = 0; n < 4000 && ok < 3; n++) {
    struct policy_engine *pe = NULL;
    struct policy_error err;
    struct policy_options *opts = NULL;
    char e[512], name[64];
    int rc1, rc2;
    mem_fail_after(n);
    if (policy_engine_new(files, 1, NULL, &pe, e, sizeof e) != 0) {
      mem_fail_after(-1);
      assert_null(pe);
      assert_true(e[0] != '\0');
      continue;
    }
    rc1 = policy_lb_name(pe, obj_as_service(plain), &ctx, name, sizeof name,
                         &err);
    rc2 = policy_lb_options(pe, obj_as_service(plain), &ctx, &opts, &err);
    mem_fail_after(-1);
    assert_true(rc1 == POLICY_OK || rc1 == POLICY_ERROR);
    assert_true(rc2 == POLICY_OK || rc2 == POLICY_ERROR);
    if (rc2 == POLICY_OK)
      policy_options_free(opts);
    if (rc1 == POLICY_OK && rc2 == POLICY_OK)
      ok++;
    policy_engine_free(pe);
  }
  mem_fail_after(-1);
  assert_true(ok > 0);
  obj_unref(plain);
  tp_dir_remove(&d);
}

static int setup(void **state)
{
  (void)state;
  log_set_level(CCM_LOG_ERROR); /* policy errors log at warn */
  return 0;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_escapes),
      cmocka_unit_test(test_error_line_and_traceback),
      cmocka_unit_test(test_load_refusals),
      cmocka_unit_test(test_kill_not_swallowed),
      cmocka_unit_test(test_custom_limits),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
