/*
 * test_policy_engine.c: host/policy behaviour: built-in defaults, several
 * files combined, option and name validation against a provider's
 * declarations, rejections with file:line, IMPLEMENTED_ELSEWHERE, the ccm
 * helpers, reload failure keeping the old set, and the inotify watcher.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "policy/policy.h"
#include "test_policy_util.h"
#include "util/log.h"

static struct policy_ctx ctx = {"kubernetes", "test", NULL, NULL};
static struct policy_ctx pctx = {"kubernetes", "test", NULL, &tp_provider};

static struct policy_engine *engine(const char *const *files, size_t n)
{
  struct policy_engine *pe = NULL;
  char e[512];

  if (policy_engine_new(files, n, NULL, &pe, e, sizeof e) != 0)
    fail_msg("engine: %s", e);
  return pe;
}

/* An engine from one policy file, name holding text, in a new d. */
static struct policy_engine *engine_one(struct tp_dir *d, const char *name,
                                        const char *text)
{
  const char *files[1];

  tp_dir_make(d);
  files[0] = tp_write(d, name, text);
  return engine(files, 1);
}

/* policy_lb_name for svc must give want and, when want_name is set, that
 * name; the error goes to *err when err is not NULL. */
static void lb_name_is(struct policy_engine *pe, struct obj_meta *svc,
                       const struct policy_ctx *c, int want,
                       const char *want_name, struct policy_error *err)
{
  struct policy_error local;
  char name[64];

  assert_int_equal(policy_lb_name(pe, obj_as_service(svc), c, name,
                                  sizeof name, err != NULL ? err : &local),
                   want);
  if (want_name != NULL)
    assert_string_equal(name, want_name);
}

/* Bounded wait for the watcher (not a timing assertion): until *count
 * (a field of *st) is at least min; *st holds the last stats read. */
static void stats_wait(struct policy_engine *pe, struct policy_stats *st,
                       const uint64_t *count, uint64_t min)
{
  for (int i = 0; i < 3000; i++) {
    policy_engine_stats(pe, st);
    if (*count >= min)
      return;
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  }
}

static const char *kv_get(const struct policy_kvs *kvs, const char *key)
{
  for (size_t i = 0; i < kvs->n; i++) {
    if (strcmp(kvs->kvs[i]->key, key) == 0)
      return kvs->kvs[i]->value;
  }
  return NULL;
}

static const struct ccm_option_value *opt_get(const struct policy_options *o,
                                              const char *name)
{
  for (size_t i = 0; i < o->n; i++) {
    if (strcmp(o->options[i]->name, name) == 0)
      return o->options[i];
  }
  return NULL;
}

static void test_defaults_without_policy(void **state)
{
  struct policy_engine *pe = engine(NULL, 0);
  struct obj_meta *svc = tp_service("web", NULL);
  struct obj_meta *node = tp_node("n1", true);
  const struct obj_node *nodes[1] = {obj_as_node(node)};
  struct policy_error err;
  struct policy_options *opts = NULL;
  struct policy_kvs *kvs = NULL;
  struct policy_stats st;
  bool keep[1] = {false};

  (void)state;
  assert_false(policy_defines_lb_inputs(pe));
  assert_false(policy_defines_backend_nodes(pe));
  lb_name_is(pe, svc, &ctx, POLICY_DEFAULT,
             "a1111111122223333444455555555555", NULL);
  assert_int_equal(policy_lb_options(pe, obj_as_service(svc), &ctx, &opts,
                                     &err),
                   POLICY_DEFAULT);
  assert_non_null(opts);
  assert_int_equal(opts->n, 0);
  policy_options_free(opts);
  assert_int_equal(policy_backend_nodes(pe, obj_as_service(svc), nodes, 1,
                                        &ctx, keep, &err),
                   POLICY_DEFAULT);
  assert_true(keep[0]);
  assert_int_equal(policy_resource_tags(pe, obj_as_service(svc), &ctx, &kvs,
                                        &err),
                   POLICY_DEFAULT);
  assert_int_equal(kvs->n, 0);
  policy_kvs_free(kvs);
  assert_int_equal(policy_node_labels(pe, obj_as_node(node), NULL, &ctx,
                                      &kvs, &err),
                   POLICY_DEFAULT);
  assert_int_equal(kvs->n, 0);
  policy_kvs_free(kvs);
  policy_engine_stats(pe, &st);
  assert_int_equal(st.generation, 0);
  assert_int_equal(st.calls, 0);
  assert_int_equal(st.states, 0); /* no Lua needed */
  policy_engine_free(pe);
  obj_unref(svc);
  obj_unref(node);
}

static void test_missing_hook_defaults(void **state)
{
  struct tp_dir d;
  struct policy_engine *pe;
  struct obj_meta *svc = tp_service("web", NULL);
  struct policy_error err;
  struct policy_options *opts = NULL;

  (void)state;
  pe = engine_one(&d, "name.lua",
                  "return { load_balancer_name = function(s) return "
                  "'x-' .. s.name end }\n");
  lb_name_is(pe, svc, &ctx, POLICY_OK, "x-web", NULL);
  assert_int_equal(policy_lb_options(pe, obj_as_service(svc), &ctx, &opts,
                                     &err),
                   POLICY_DEFAULT);
  assert_int_equal(opts->n, 0);
  policy_options_free(opts);
  policy_engine_free(pe);
  obj_unref(svc);
  tp_dir_remove(&d);
}

static const char combine_a[] =
    "return {\n"
    "  load_balancer_name = function(s) return 'from-a' end,\n"
    "  load_balancer_options = function(s, c)\n"
    "    return { pool = 'a', port = 80, internal = true }\n"
    "  end,\n"
    "  resource_tags = function(s) return { owner = 'a', team = 'a' } end,\n"
    "  backend_nodes = function(s, nodes)\n"
    "    local out = {}\n"
    "    for _, n in ipairs(nodes) do\n"
    "      if n.name ~= 'n2' then out[#out + 1] = n end\n"
    "    end\n"
    "    return out\n"
    "  end,\n"
    "  node_labels = function(n, m) return { a = m.zone } end,\n"
    "}\n";

static const char combine_b[] =
    "return {\n"
    "  load_balancer_name = function(s, c) return 'from-b-' .. (c.module or 'none') end,\n"
    "  load_balancer_options = function(s)\n"
    "    return { pool = 'b', ranges = s.source_ranges }\n"
    "  end,\n"
    "  resource_tags = function(s) return { team = 'b' } end,\n"
    "  backend_nodes = function(s, nodes)\n"
    "    assert(#nodes == 2, 'b sees what a kept')\n"
    "    return { 'n1' }\n"
    "  end,\n"
    "  node_labels = function(n, m) return { b = n.name } end,\n"
    "}\n";

static void test_combine_two_files(void **state)
{
  struct tp_dir d;
  const char *files[2];
  struct policy_engine *pe;
  struct obj_meta *svc = tp_service("web", NULL);
  struct obj_meta *n[3] = {tp_node("n1", true), tp_node("n2", true),
                           tp_node("n3", false)};
  const struct obj_node *nodes[3] = {obj_as_node(n[0]), obj_as_node(n[1]),
                                     obj_as_node(n[2])};
  const struct ccm_option_value *v;
  struct policy_node_meta meta = {"lab://n1", "big", "zone-1", "r", NULL, 0};
  struct policy_error err;
  struct policy_options *opts = NULL;
  struct policy_kvs *kvs = NULL;
  bool keep[3];

  (void)state;
  tp_dir_make(&d);
  files[0] = tp_write(&d, "a.lua", combine_a);
  files[1] = tp_write(&d, "b.lua", combine_b);
  pe = engine(files, 2);
  lb_name_is(pe, svc, &pctx, POLICY_OK, "from-b-testprov", NULL);

  assert_int_equal(policy_lb_options(pe, obj_as_service(svc), &pctx, &opts,
                                     &err),
                   POLICY_OK);
  assert_int_equal(opts->n, 4);
  /* sorted by name */
  assert_string_equal(opts->options[0]->name, "internal");
  assert_string_equal(opts->options[3]->name, "ranges");
  v = opt_get(opts, "pool");
  assert_int_equal(v->type, CCM_OPT_STRING);
  assert_string_equal(v->string_value, "b");
  v = opt_get(opts, "port");
  assert_int_equal(v->type, CCM_OPT_INT);
  assert_int_equal(v->int_value, 80);
  v = opt_get(opts, "internal");
  assert_int_equal(v->type, CCM_OPT_BOOL);
  assert_true(v->bool_value);
  v = opt_get(opts, "ranges");
  assert_int_equal(v->type, CCM_OPT_STRING_LIST);
  assert_int_equal(v->list_len, 2);
  assert_string_equal(v->list[0], "10.0.0.0/8");
  assert_string_equal(v->list[1], "192.168.0.0/16");
  assert_null(v->list[2]);
  policy_options_free(opts);

  assert_int_equal(policy_resource_tags(pe, obj_as_service(svc), &pctx,
                                        &kvs, &err),
                   POLICY_OK);
  assert_int_equal(kvs->n, 2);
  assert_string_equal(kv_get(kvs, "owner"), "a");
  assert_string_equal(kv_get(kvs, "team"), "b");
  policy_kvs_free(kvs);

  assert_int_equal(policy_backend_nodes(pe, obj_as_service(svc), nodes, 3,
                                        &pctx, keep, &err),
                   POLICY_OK);
  assert_true(keep[0]);
  assert_false(keep[1]);
  assert_false(keep[2]);

  assert_int_equal(policy_node_labels(pe, nodes[0], &meta, &pctx, &kvs,
                                      &err),
                   POLICY_OK);
  assert_int_equal(kvs->n, 2);
  assert_string_equal(kv_get(kvs, "a"), "zone-1");
  assert_string_equal(kv_get(kvs, "b"), "n1");
  policy_kvs_free(kvs);
  policy_engine_free(pe);
  obj_unref(svc);
  for (int i = 0; i < 3; i++)
    obj_unref(n[i]);
  tp_dir_remove(&d);
}

/* options returned for annotation test/opts = "<lua table expression>" */
static const char opts_policy[] =
    "return {\n"
    "  load_balancer_options = function(s)\n"
    "    local e = s.annotations['test/case']\n"
    "    if e == 'unknown' then return { bogus = 'x' } end\n"
    "    if e == 'type' then return { pool = true } end\n"
    "    if e == 'float' then return { port = 1.5 } end\n"
    "    if e == 'float-int' then return { port = 3.0 } end\n"
    "    if e == 'list' then return { ranges = { 'a', 2 } } end\n"
    "    if e == 'list-type' then return { pool = { 'a' } } end\n"
    "    if e == 'key' then return { [1] = 'x' } end\n"
    "    if e == 'reject' then\n"
    "      return nil, 'test/case says no'\n"
    "    end\n"
    "    if e == 'elsewhere' then return ccm.IMPLEMENTED_ELSEWHERE end\n"
    "    if e == 'badret' then return 42 end\n"
    "    return { pool = 'p', port = 8080, internal = false, ranges = {} }\n"
    "  end,\n"
    "}\n";

static int run_opts(struct policy_engine *pe, const char *cse,
                    const struct policy_ctx *c, struct policy_error *err,
                    struct policy_options **opts)
{
  char ann[128];
  struct obj_meta *svc;
  int rc;

  snprintf(ann, sizeof ann, "\"test/case\":\"%s\"", cse);
  svc = tp_service("web", ann);
  assert_non_null(svc);
  rc = policy_lb_options(pe, obj_as_service(svc), c, opts, err);
  obj_unref(svc);
  return rc;
}

static void test_option_validation(void **state)
{
  static const struct {
    const char *cse, *want;
  } bad[] = {
      {"unknown", "unknown option 'bogus' (provider module 'testprov' "
                  "declares: pool, port, internal, ranges)"},
      {"type", "option 'pool' must be a string, got a boolean"},
      {"float", "option 'port' is a float"},
      {"float-int", "option 'port' is a float"},
      {"list", "option 'ranges': item 2 is a number"},
      {"list-type", "option 'pool' must be a string, got a list of strings"},
      {"key", "option names must be strings"},
      {"badret", "must return a table"},
  };
  struct tp_dir d;
  struct policy_engine *pe;
  struct policy_error err;
  struct policy_options *opts = NULL;
  struct policy_stats st;

  (void)state;
  pe = engine_one(&d, "opts.lua", opts_policy);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = run_opts(pe, bad[i].cse, &pctx, &err, &opts);
    if (rc != POLICY_ERROR || strstr(err.message, bad[i].want) == NULL)
      fail_msg("%s: rc %d message \"%s\"", bad[i].cse, rc, err.message);
    assert_null(opts);
    assert_string_equal(err.policy, "opts.lua");
    assert_true(strncmp(err.where, "opts.lua:", 9) == 0);
  }
  assert_int_equal(run_opts(pe, "good", &pctx, &err, &opts), POLICY_OK);
  assert_int_equal(opts->n, 4);
  assert_int_equal(opt_get(opts, "ranges")->list_len, 0);
  assert_false(opt_get(opts, "internal")->bool_value);
  policy_options_free(opts);
  /* without a module: any key, but the types still hold */
  assert_int_equal(run_opts(pe, "unknown", &ctx, &err, &opts), POLICY_OK);
  assert_string_equal(opts->options[0]->name, "bogus");
  policy_options_free(opts);
  assert_int_equal(run_opts(pe, "float", &ctx, &err, &opts), POLICY_ERROR);
  policy_engine_stats(pe, &st);
  assert_int_equal(st.errors, 9);
  policy_engine_free(pe);
  tp_dir_remove(&d);
}

static void test_reject_and_elsewhere(void **state)
{
  struct tp_dir d;
  struct policy_engine *pe;
  struct policy_error err;
  struct policy_options *opts = NULL;
  struct policy_stats st;
  char line[1024];

  (void)state;
  pe = engine_one(&d, "opts.lua", opts_policy);
  assert_int_equal(run_opts(pe, "reject", &pctx, &err, &opts),
                   POLICY_REJECT);
  assert_null(opts);
  assert_string_equal(err.where, "opts.lua:12");
  assert_string_equal(err.message, "test/case says no");
  assert_string_equal(err.hook, "load_balancer_options");
  assert_string_equal(err.traceback, "");
  policy_error_format(&err, line, sizeof line);
  assert_string_equal(line, "policy opts.lua:12 load_balancer_options: "
                            "test/case says no");
  assert_int_equal(run_opts(pe, "elsewhere", &pctx, &err, &opts),
                   POLICY_ELSEWHERE);
  assert_null(opts);
  policy_engine_stats(pe, &st);
  assert_int_equal(st.rejections, 1);
  assert_int_equal(st.errors, 0);
  assert_int_equal(st.calls, 2);
  policy_engine_free(pe);
  tp_dir_remove(&d);
}

static const char name_policy[] =
    "return {\n"
    "  load_balancer_name = function(s)\n"
    "    return s.annotations['test/name']\n"
    "  end,\n"
    "}\n";

static void test_name_rules(void **state)
{
  static const struct {
    const char *name, *want; /* want NULL: accepted */
  } cases[] = {
      {"good-name-1", NULL},
      {"Upper", "character 'U' at 1 is not allowed"},
      {"ab", "has 2 characters, allowed 3..40"},
      {"a234567890123456789012345678901234567890x", "allowed 3..40"},
      {"1abc", "must start with one of"},
      {"abc-", "must end with one of"},
      {"a_b_c", "character '_' at 2"},
  };
  struct tp_dir d;
  struct policy_engine *pe;
  struct policy_error err;
  char name[64], ann[128];

  (void)state;
  pe = engine_one(&d, "name.lua", name_policy);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct obj_meta *svc;
    int rc;
    snprintf(ann, sizeof ann, "\"test/name\":\"%s\"", cases[i].name);
    svc = tp_service("web", ann);
    rc = policy_lb_name(pe, obj_as_service(svc), &pctx, name, sizeof name,
                        &err);
    if (cases[i].want == NULL) {
      assert_int_equal(rc, POLICY_OK);
      assert_string_equal(name, cases[i].name);
    } else if (rc != POLICY_ERROR ||
               strstr(err.message, cases[i].want) == NULL) {
      fail_msg("%s: rc %d \"%s\"", cases[i].name, rc, err.message);
    } else {
      assert_string_equal(err.where, "name.lua:2");
    }
    obj_unref(svc);
  }
  /* no annotation: nil means the default name */
  {
    struct obj_meta *svc = tp_service("web", NULL);
    lb_name_is(pe, svc, &pctx, POLICY_DEFAULT,
               "a1111111122223333444455555555555", NULL);
    /* generic rule without a module: uppercase refused too */
    obj_unref(svc);
    svc = tp_service("web", "\"test/name\":\"Bad_Name\"");
    lb_name_is(pe, svc, &ctx, POLICY_ERROR, NULL, NULL);
    obj_unref(svc);
  }
  policy_engine_free(pe);
  tp_dir_remove(&d);
}

static const char lib_policy[] =
    "local function show(t)\n"
    "  local keys = {}\n"
    "  for k in pairs(t) do keys[#keys + 1] = k end\n"
    "  table.sort(keys)\n"
    "  local out = {}\n"
    "  for _, k in ipairs(keys) do out[#out + 1] = k .. '=' .. t[k] end\n"
    "  return table.concat(out, ';')\n"
    "end\n"
    "-- one character per case: t(rue), f(alse)\n"
    "local function tf(b) return b and 't' or 'f' end\n"
    "local function flags(f, list, arg)\n"
    "  local out = {}\n"
    "  for _, v in ipairs(list) do out[#out + 1] = tf(f(v, arg)) end\n"
    "  return table.concat(out)\n"
    "end\n"
    "local function err(f, ...)\n"
    "  local ok, e = pcall(f, ...)\n"
    "  return tostring(ok) .. ':' .. tostring(e)\n"
    "end\n"
    "local V4 = { '192.0.2.10', '0.0.0.0', '255.255.255.255', '01.2.3.4',\n"
    "  '1.2.3.04', '256.1.1.1', '1.2.3', '1.2.3.4.5', ' 1.2.3.4',\n"
    "  '1.2.3.4\\0', '', '::1', '0x1.2.3.4' }\n"
    "local V6 = { '2001:db8::10', '::', '::1', '1::', '::ffff:192.0.2.1',\n"
    "  '1:2:3:4:5:6:7:8', 'ABCD::ef', '1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:8:9',\n"
    "  '12345::', '1::2::3', 'fe80::1%eth0', '::ffff:01.2.3.4', '1.2.3.4',\n"
    "  '1:2:3:4:5:6:7:8::', ':1::', '1::2:', '' }\n"
    "local CIDR = { '10.0.0.0/8', '10.0.0.1/32', '10.0.0.0/33',\n"
    "  '2001:db8::/64', '::/0', '::/128', '::/129', '10.0.0.0', '10.0.0.0/',\n"
    "  '/8', '10.0.0.0/+8',\n"
    "  '10.0.0.0/8/8', '10.0.0.0/024', '10.0.0.0/99999999999999999999',\n"
    "  '01.0.0.0/8', ' 10.0.0.0/8' }\n"
    "return {\n"
    "  load_balancer_name = function(s)\n"
    "    -- a direct call: the error names the policy line (not in the\n"
    "    -- load self-test, whose sample Service is not 'web')\n"
    "    if s.name == 'web' then return ccm.trim(42) end\n"
    "  end,\n"
    "  resource_tags = function(s)\n"
    "    local kv, why = ccm.kv_list(' k1 = v1 , keyonly,, k2=v=2 ')\n"
    "    local bad1, bad = ccm.kv_list('=v')\n"
    "    return {\n"
    "      split = table.concat(ccm.split(' a, b ,,c '), '|'),\n"
    "      split_sep = table.concat(ccm.split('x; y;', ';'), '|'),\n"
    "      split_nil = tostring(#ccm.split(nil)),\n"
    "      kv = show(kv) .. tostring(why),\n"
    "      kv_bad = tostring(bad1) .. ',' .. bad,\n"
    "      bools = tostring(ccm.bool('1')) .. tostring(ccm.bool('True'))\n"
    "        .. tostring(ccm.bool('F')) .. tostring(ccm.bool('yes'))\n"
    "        .. tostring(ccm.bool('TrUe')),\n"
    "      ints = tostring(ccm.int('42')) .. ',' .. tostring(ccm.int('-7'))\n"
    "        .. ',' .. tostring(ccm.int('4x')) .. ','\n"
    "        .. tostring(ccm.int('70000', 1, 65535)) .. ','\n"
    "        .. tostring(ccm.int('1.5')) .. ',' .. tostring(ccm.int(''))\n"
    "        .. ',' .. math.type(ccm.int('+8', 0, 10)),\n"
    "      name = ccm.default_name(s),\n"
    "      elsewhere = tostring(ccm.IMPLEMENTED_ELSEWHERE),\n"
    "      n_ports = tostring(#s.ports) .. s.ports[1].protocol\n"
    "        .. s.ports[1].node_port,\n"
    "      labels = show(s.labels),\n"
    "      globals = tostring(print ~= nil) .. tostring(os) .. tostring(io),\n"
    "      nxt = tostring(next(s.labels)) .. tostring(next(s.external_ips))\n"
    "        .. rawlen(s.ports) .. #s.ports,\n"
    "      trim = '[' .. ccm.trim(' \\t a b \\r\\n\\v\\f') .. ']['\n"
    "        .. ccm.trim('') .. '][' .. ccm.trim(' \\t ') .. ']['\n"
    "        .. ccm.trim('x') .. ']',\n"
    "      quote = ccm.quote('a\"b\\\\c\\n\\0\\127\\195\\169')\n"
    "        .. ccm.quote(''),\n"
    "      quote80 = tostring(#ccm.quote(('x'):rep(80))),\n"
    "      quote81 = ccm.quote(('y'):rep(81)),\n"
    "      v4 = flags(ccm.is_ipv4, V4),\n"
    "      v6 = flags(ccm.is_ipv6, V6),\n"
    "      cidr = flags(ccm.is_cidr, CIDR),\n"
    "      cidr4 = flags(ccm.is_cidr, CIDR, 4),\n"
    "      cidr6 = flags(ccm.is_cidr, CIDR, 6),\n"
    "      bad_trim = err(ccm.trim, 5),\n"
    "      bad_quote = err(ccm.quote, nil),\n"
    "      bad_v4 = err(ccm.is_ipv4),\n"
    "      bad_v6 = err(ccm.is_ipv6, { '::1' }),\n"
    "      bad_cidr = err(ccm.is_cidr, 10),\n"
    "      bad_family = err(ccm.is_cidr, '10.0.0.0/8', 5),\n"
    "      bad_family_f = err(ccm.is_cidr, '10.0.0.0/8', 4.0),\n"
    "      match = table.concat({\n"
    "        tf(ccm.match_labels({ a = '1', b = '2' }, { a = '1' })),\n"
    "        tf(ccm.match_labels({ a = '1' }, { a = '' })),\n"
    "        tf(ccm.match_labels({ a = '1' }, { a = '2' })),\n"
    "        tf(ccm.match_labels({ a = '1' }, { b = '' })),\n"
    "        tf(ccm.match_labels({}, {})),\n"
    "        tf(ccm.match_labels(s.labels, { app = 'web' })),\n"
    "        tf(ccm.match_labels(s.labels, { app = 'db' })),\n"
    "        tf(ccm.match_labels({ app = 'web', x = 'y' }, s.labels)),\n"
    "        tf(ccm.match_labels({ x = 'y' }, s.labels)),\n"
    "        tf(ccm.match_labels({ a = '' }, { a = 'x' })) }),\n"
    "      bad_match = err(ccm.match_labels, {}, 'a=b'),\n"
    "    }\n"
    "  end,\n"
    "}\n";

static void test_ccm_helpers(void **state)
{
  struct tp_dir d;
  struct policy_engine *pe;
  struct obj_meta *svc = tp_service("web", NULL);
  struct policy_error err;
  struct policy_kvs *kvs = NULL;
  int rc;

  (void)state;
  pe = engine_one(&d, "lib.lua", lib_policy);
  rc = policy_resource_tags(pe, obj_as_service(svc), &ctx, &kvs, &err);
  if (rc != POLICY_OK)
    fail_msg("rc %d: %s %s", rc, err.where, err.message);
  assert_string_equal(kv_get(kvs, "split"), "a|b|c");
  assert_string_equal(kv_get(kvs, "split_sep"), "x|y");
  assert_string_equal(kv_get(kvs, "split_nil"), "0");
  assert_string_equal(kv_get(kvs, "kv"), "k1=v1;k2=v=2;keyonly=nil");
  assert_string_equal(kv_get(kvs, "kv_bad"), "nil,empty key in \"=v\"");
  assert_string_equal(kv_get(kvs, "bools"), "truetruefalsenilnil");
  assert_string_equal(kv_get(kvs, "ints"), "42,-7,nil,nil,nil,nil,integer");
  assert_string_equal(kv_get(kvs, "name"), "a1111111122223333444455555555555");
  assert_string_equal(kv_get(kvs, "elsewhere"), "ccm.IMPLEMENTED_ELSEWHERE");
  assert_string_equal(kv_get(kvs, "n_ports"), "1TCP30080");
  assert_string_equal(kv_get(kvs, "labels"), "app=web");
  assert_string_equal(kv_get(kvs, "globals"), "truenilnil");
  assert_string_equal(kv_get(kvs, "nxt"), "appnil01");
  assert_string_equal(kv_get(kvs, "trim"), "[a b][][][x]");
  assert_string_equal(kv_get(kvs, "quote"), "\"a?b?c???\xc3\xa9\"\"\"");
  assert_string_equal(kv_get(kvs, "quote80"), "82");
  /* over 80: 77 characters and "..." */
  assert_string_equal(kv_get(kvs, "quote81"),
                      "\"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
                      "yyyyyyyyyyyyyyyyyyyyyyyyy...\"");
  /* no leading zeros in an octet, nothing around the address */
  assert_string_equal(kv_get(kvs, "v4"), "tttffffffffff");
  assert_string_equal(kv_get(kvs, "v6"), "ttttttttffffffffff");
  /* the prefix may have leading zeros (as the scripts' ccm.int did) */
  assert_string_equal(kv_get(kvs, "cidr"), "ttftttfffffftfff");
  assert_string_equal(kv_get(kvs, "cidr4"), "ttfffffffffftfff");
  assert_string_equal(kv_get(kvs, "cidr6"), "fffttt" "ffffffffff");
  assert_string_equal(
      kv_get(kvs, "bad_trim"),
      "false:ccm.trim: argument 1 must be a string, not number");
  assert_string_equal(kv_get(kvs, "bad_quote"),
                      "false:ccm.quote: argument 1 must be a string, not nil");
  assert_string_equal(
      kv_get(kvs, "bad_v4"),
      "false:ccm.is_ipv4: argument 1 must be a string, not no value");
  assert_string_equal(
      kv_get(kvs, "bad_v6"),
      "false:ccm.is_ipv6: argument 1 must be a string, not table");
  assert_string_equal(
      kv_get(kvs, "bad_cidr"),
      "false:ccm.is_cidr: argument 1 must be a string, not number");
  assert_string_equal(kv_get(kvs, "bad_family"),
                      "false:ccm.is_cidr: family must be 4, 6 or nil, not 5");
  assert_string_equal(kv_get(kvs, "bad_family_f"),
                      "false:ccm.is_cidr: family must be 4, 6 or nil, not 4.0");
  /* "" in the selector: any value; a read-only input table on either side */
  assert_string_equal(kv_get(kvs, "match"), "ttffttftff");
  assert_string_equal(
      kv_get(kvs, "bad_match"),
      "false:ccm.match_labels: argument 2 must be a table, not string");
  /* not under pcall: a hook error that names the policy line */
  lb_name_is(pe, svc, &ctx, POLICY_ERROR, NULL, &err);
  assert_non_null(strstr(err.where, "lib.lua:"));
  assert_non_null(
      strstr(err.message, "ccm.trim: argument 1 must be a string, not number"));
  policy_kvs_free(kvs);
  policy_engine_free(pe);
  obj_unref(svc);
  tp_dir_remove(&d);
}

static void test_reload_failure_keeps_old(void **state)
{
  struct tp_dir d;
  const char *files[1];
  struct policy_engine *pe;
  struct obj_meta *svc = tp_service("web", NULL);
  struct policy_stats st;
  char e[512];

  (void)state;
  pe = engine_one(&d, "p.lua",
                  "return { load_balancer_name = "
                  "function() return 'version-one' end }\n");
  lb_name_is(pe, svc, &ctx, POLICY_OK, "version-one", NULL);
  /* a syntax error */
  files[0] = tp_write(&d, "p.lua", "return {\n  load_balancer_name = \n}\n");
  assert_int_equal(policy_engine_reload(pe, files, 1, e, sizeof e), -1);
  assert_non_null(strstr(e, "p.lua:3"));
  /* an error in the self-test */
  files[0] = tp_write(&d, "p.lua", "return { load_balancer_name = "
                                   "function(s) return s.nope.x end }\n");
  assert_int_equal(policy_engine_reload(pe, files, 1, e, sizeof e), -1);
  assert_non_null(strstr(e, "p.lua:1"));
  assert_non_null(strstr(e, "self-test"));
  /* a missing file */
  {
    const char *missing[1] = {"/nonexistent/ccm/p.lua"};
    assert_int_equal(policy_engine_reload(pe, missing, 1, e, sizeof e), -1);
    assert_non_null(strstr(e, "/nonexistent/ccm/p.lua"));
  }
  lb_name_is(pe, svc, &ctx, POLICY_OK, "version-one", NULL);
  policy_engine_stats(pe, &st);
  assert_int_equal(st.reload_failures, 3);
  assert_int_equal(st.reloads, 0);
  assert_int_equal(st.generation, 1);
  assert_int_equal(st.states, 1);
  assert_true(st.state_bytes > 0);
  files[0] = tp_write(&d, "p.lua", "return { load_balancer_name = "
                                   "function() return 'version-two' end }\n");
  assert_int_equal(policy_engine_reload(pe, files, 1, e, sizeof e), 0);
  lb_name_is(pe, svc, &ctx, POLICY_OK, "version-two", NULL);
  policy_engine_stats(pe, &st);
  assert_int_equal(st.reloads, 1);
  assert_int_equal(st.generation, 2);
  assert_int_equal(st.states, 1);
  policy_engine_free(pe);
  obj_unref(svc);
  tp_dir_remove(&d);
}

/* What the engine says it defines follows reloads, and asking needs no
 * Lua state. */
static void test_defines_follow_reload(void **state)
{
  struct tp_dir d;
  const char *files[1];
  struct policy_engine *pe;
  struct policy_stats st;
  char e[512];

  (void)state;
  pe = engine_one(&d, "p.lua", "return { load_balancer_name = "
                               "function() return 'n' end }\n");
  assert_false(policy_defines_lb_inputs(pe));
  assert_false(policy_defines_backend_nodes(pe));
  files[0] = tp_write(&d, "p.lua", "return { backend_nodes = "
                                   "function(s, nodes) return nodes end }\n");
  assert_int_equal(policy_engine_reload(pe, files, 1, e, sizeof e), 0);
  assert_false(policy_defines_lb_inputs(pe));
  assert_true(policy_defines_backend_nodes(pe));
  files[0] = tp_write(&d, "p.lua", "return { resource_tags = "
                                   "function() return { a = 'b' } end }\n");
  assert_int_equal(policy_engine_reload(pe, files, 1, e, sizeof e), 0);
  assert_true(policy_defines_lb_inputs(pe));
  assert_false(policy_defines_backend_nodes(pe));
  policy_engine_stats(pe, &st);
  assert_int_equal(st.states, 0);
  policy_engine_free(pe);
  tp_dir_remove(&d);
}

static void test_watch_reloads(void **state)
{
  struct tp_dir d;
  struct policy_engine *pe;
  struct obj_meta *svc = tp_service("web", NULL);
  struct policy_stats st;

  (void)state;
  pe = engine_one(&d, "w.lua",
                  "return { load_balancer_name = "
                  "function() return 'watch-one' end }\n");
  assert_int_equal(policy_engine_watch(pe), 0);
  assert_int_equal(policy_engine_watch(pe), 0); /* idempotent */
  tp_write(&d, "other.lua", "garbage that is not watched");
  tp_write(&d, "w.lua", "return { load_balancer_name = "
                        "function() return 'watch-two' end }\n");
  stats_wait(pe, &st, &st.reloads, 1);
  assert_int_equal(st.reload_failures, 0);
  assert_true(st.reloads >= 1);
  lb_name_is(pe, svc, &ctx, POLICY_OK, "watch-two", NULL);
  /* a broken save is refused and the old set stays */
  tp_write(&d, "w.lua", "return {");
  stats_wait(pe, &st, &st.reload_failures, 1);
  assert_int_equal(st.reload_failures, 1);
  lb_name_is(pe, svc, &ctx, POLICY_OK, "watch-two", NULL);
  policy_engine_free(pe);
  obj_unref(svc);
  tp_dir_remove(&d);
}

/* The per-thread caches of the service and ctx tables never serve stale
 * content: a new resourceVersion or another ctx gives new tables. */
static void test_caches_follow_inputs(void **state)
{
  struct tp_dir d;
  struct policy_engine *pe;
  struct obj_meta *v1 = tp_service("one", NULL), *v2 = tp_service("two", NULL);
  char cluster[32];
  struct policy_ctx c = {cluster, "prov-a", NULL, NULL};

  (void)state;
  pe = engine_one(&d, "c.lua",
                  "return { load_balancer_name = function(s, c)\n"
                  "  return s.name .. '-' .. c.cluster_name .. '-' .. "
                  "c.provider .. '-' .. (c.class or 'none') end }\n");
  snprintf(cluster, sizeof cluster, "east");
  for (int round = 0; round < 2; round++) {
    lb_name_is(pe, v1, &c, POLICY_OK, "one-east-prov-a-none", NULL);
    lb_name_is(pe, v2, &c, POLICY_OK, "two-east-prov-a-none", NULL);
  }
  snprintf(cluster, sizeof cluster, "west"); /* same pointer, new text */
  c.provider_class = "internal";
  lb_name_is(pe, v2, &c, POLICY_OK, "two-west-prov-a-internal", NULL);
  policy_engine_free(pe);
  obj_unref(v1);
  obj_unref(v2);
  tp_dir_remove(&d);
}

/* Service collections are built on first read; pairs sees all of them,
 * and a service kept from an earlier call cannot read a freed object. */
static const char lazy_policy[] =
    "local kept\n"
    "return {\n"
    "  resource_tags = function(s)\n"
    "    local a = s.annotations\n"
    "    if a['test/stash'] then kept = s; return {} end\n"
    "    if a['test/use'] then return { v = tostring(kept.labels) } end\n"
    "    local keys = {}\n"
    "    for k in pairs(s) do keys[#keys + 1] = k end\n"
    "    table.sort(keys)\n"
    "    return { keys = table.concat(keys, ',') }\n"
    "  end,\n"
    "}\n";

static void test_lazy_service_fields(void **state)
{
  struct tp_dir d;
  struct policy_engine *pe;
  struct obj_meta *plain = tp_service("web", NULL);
  struct obj_meta *stash = tp_service("a", "\"test/stash\":\"1\"");
  struct obj_meta *use = tp_service("b", "\"test/use\":\"1\"");
  struct policy_error err;
  struct policy_kvs *kvs = NULL;

  (void)state;
  pe = engine_one(&d, "lazy.lua", lazy_policy);
  assert_int_equal(policy_resource_tags(pe, obj_as_service(plain), &ctx,
                                        &kvs, &err), POLICY_OK);
  assert_string_equal(kv_get(kvs, "keys"),
                      "annotations,external_ips,ip_families,labels,name,"
                      "namespace,ports,resource_version,source_ranges,type,"
                      "uid");
  policy_kvs_free(kvs);
  assert_int_equal(policy_resource_tags(pe, obj_as_service(stash), &ctx,
                                        &kvs, &err), POLICY_OK);
  policy_kvs_free(kvs);
  obj_unref(stash); /* freed: the policy still holds its table */
  assert_int_equal(policy_resource_tags(pe, obj_as_service(use), &ctx, &kvs,
                                        &err), POLICY_ERROR);
  assert_non_null(strstr(err.message, "service.labels read outside the "
                                      "hook call"));
  assert_string_equal(err.where, "lazy.lua:6");
  policy_engine_free(pe);
  obj_unref(plain);
  obj_unref(use);
  tp_dir_remove(&d);
}

static int setup(void **state)
{
  (void)state;
  log_set_level(CCM_LOG_ERROR);
  return 0;
}

/* backend_nodes keeps the tables of the last node set: a different set
 * (another Node, or a new version of one) is marshalled again, a policy
 * that passes its input through keeps everything, and the shared input
 * list is read-only, so no policy can change what the next call sees. */
static const char backends_pass[] =
    "return {\n"
    "  backend_nodes = function(s, nodes)\n"
    "    if s.annotations['test/drop'] then\n"
    "      local out = {}\n"
    "      for _, n in ipairs(nodes) do\n"
    "        if n.name ~= s.annotations['test/drop'] then out[#out + 1] = n end\n"
    "      end\n"
    "      return out\n"
    "    end\n"
    "    if s.annotations['test/mutate'] then table.remove(nodes) end\n"
    "    return nodes\n"
    "  end,\n"
    "}\n";

static void test_backend_set_cache(void **state)
{
  struct tp_dir d;
  struct policy_engine *pe;
  struct obj_meta *pass = tp_service("web", NULL);
  struct obj_meta *drop = tp_service("web", "\"test/drop\":\"n2\"");
  struct obj_meta *mutate = tp_service("web", "\"test/mutate\":\"yes\"");
  struct obj_meta *n[4] = {tp_node("n1", true), tp_node("n2", true),
                           tp_node("n3", true), tp_node("n2", false)};
  const struct obj_node *set1[3] = {obj_as_node(n[0]), obj_as_node(n[1]),
                                    obj_as_node(n[2])};
  /* the same names, n2 replaced by another object (a new version) */
  const struct obj_node *set2[3] = {obj_as_node(n[0]), obj_as_node(n[3]),
                                    obj_as_node(n[2])};
  struct policy_error err;
  bool keep[3];

  (void)state;
  assert_non_null(drop);
  assert_non_null(mutate);
  pe = engine_one(&d, "be.lua", backends_pass);
  for (int round = 0; round < 2; round++) {
    assert_int_equal(policy_backend_nodes(pe, obj_as_service(pass), set1, 3,
                                          &pctx, keep, &err),
                     POLICY_OK);
    assert_true(keep[0] && keep[1] && keep[2]);
    assert_int_equal(policy_backend_nodes(pe, obj_as_service(drop), set1, 3,
                                          &pctx, keep, &err),
                     POLICY_OK);
    assert_true(keep[0] && !keep[1] && keep[2]);
  }
  /* a changed set: n2 is another object; dropping by name still works */
  assert_int_equal(policy_backend_nodes(pe, obj_as_service(drop), set2, 3,
                                        &pctx, keep, &err),
                   POLICY_OK);
  assert_true(keep[0] && !keep[1] && keep[2]);
  assert_int_equal(policy_backend_nodes(pe, obj_as_service(pass), set2, 2,
                                        &pctx, keep, &err),
                   POLICY_OK);
  assert_true(keep[0] && keep[1]);
  /* the input cannot be changed; the next call still sees all three */
  assert_int_equal(policy_backend_nodes(pe, obj_as_service(mutate), set1, 3,
                                        &pctx, keep, &err),
                   POLICY_ERROR);
  assert_non_null(strstr(err.message, "read-only"));
  assert_int_equal(policy_backend_nodes(pe, obj_as_service(pass), set1, 3,
                                        &pctx, keep, &err),
                   POLICY_OK);
  assert_true(keep[0] && keep[1] && keep[2]);
  policy_engine_free(pe);
  obj_unref(pass);
  obj_unref(drop);
  obj_unref(mutate);
  for (int i = 0; i < 4; i++)
    obj_unref(n[i]);
  tp_dir_remove(&d);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_without_policy),
      cmocka_unit_test(test_missing_hook_defaults),
      cmocka_unit_test(test_combine_two_files),
      cmocka_unit_test(test_option_validation),
      cmocka_unit_test(test_reject_and_elsewhere),
      cmocka_unit_test(test_name_rules),
      cmocka_unit_test(test_ccm_helpers),
      cmocka_unit_test(test_reload_failure_keeps_old),
      cmocka_unit_test(test_defines_follow_reload),
      cmocka_unit_test(test_watch_reloads),
      cmocka_unit_test(test_caches_follow_inputs),
      cmocka_unit_test(test_lazy_service_fields),
      cmocka_unit_test(test_backend_set_cache),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
