/*
 * policy_cases.c: runs one shipped policy (scripts/<name>.lua) through the
 * policy engine on its fixtures (tests/policy/cases/<name>.json): options,
 * rejections, IMPLEMENTED_ELSEWHERE, tags, backend nodes and names. It loads
 * no module: fake descriptors carry the declarations of decls.json.
 *
 * Usage: policy_cases SCRIPT.lua CASES.json DECLS.json
 *        policy_cases --check-decls DECLS.json MODULE.so...
 * The second form checks that real modules declare exactly the options
 * decls.json gives them, so the fixtures cannot drift from the modules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "ccm_provider.h"
#include "kube/objects.h"
#include "modules/loader.h"
#include "policy/policy.h"

#define PC_MAX_MODULES 16

/* One fake module: a descriptor with the declarations of decls.json. */
struct pc_module {
  struct ccm_provider prov;
  struct ccm_option_decl *decls;
  const struct ccm_option_decl **ptrs;
  char *name;
};

struct pc_case {
  const cJSON *json;            /* the case (owned by pc_cases) */
  const char *name;
  struct obj_meta *svc;         /* decoded once, kept until the end */
  struct obj_meta **nodes;
  size_t n_nodes;
  const struct ccm_provider *prov;
};

static struct policy_engine *pc_engine;
static struct pc_module pc_modules[PC_MAX_MODULES];
static size_t pc_n_modules;

static char *pc_read(const char *path)
{
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  long len;

  if (f == NULL)
    return NULL;
  if (fseek(f, 0, SEEK_END) != 0)
    goto fail;
  len = ftell(f);
  if (len < 0 || fseek(f, 0, SEEK_SET) != 0)
    goto fail;
  buf = calloc(1, (size_t)len + 1);
  if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len)
    goto fail;
  fclose(f);
  return buf;
fail:
  free(buf);
  fclose(f);
  return NULL;
}

static cJSON *pc_parse_file(const char *path)
{
  char *text = pc_read(path);
  cJSON *j;

  if (text == NULL) {
    fprintf(stderr, "cannot read %s\n", path);
    return NULL;
  }
  j = cJSON_Parse(text);
  free(text);
  if (j == NULL)
    fprintf(stderr, "%s: JSON syntax error near: %.40s\n", path,
            cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "?");
  return j;
}

static const char *pc_str(const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static uint32_t pc_type(const char *t)
{
  if (strcmp(t, "string") == 0)
    return CCM_OPT_STRING;
  if (strcmp(t, "int") == 0)
    return CCM_OPT_INT;
  if (strcmp(t, "bool") == 0)
    return CCM_OPT_BOOL;
  if (strcmp(t, "string_list") == 0)
    return CCM_OPT_STRING_LIST;
  return 0;
}

/* Build a fake module called name with the declarations in list (a JSON
 * array, or NULL for a module that declares nothing). */
static const struct ccm_provider *pc_add_module(const char *name,
                                                const cJSON *list)
{
  struct pc_module *m;
  size_t n = list != NULL ? (size_t)cJSON_GetArraySize(list) : 0, i = 0;
  const cJSON *d;

  if (pc_n_modules == PC_MAX_MODULES)
    return NULL;
  m = &pc_modules[pc_n_modules];
  m->name = malloc(strlen(name) + 1);
  m->decls = calloc(n + 1, sizeof *m->decls);
  m->ptrs = calloc(n + 1, sizeof *m->ptrs);
  if (m->name == NULL || m->decls == NULL || m->ptrs == NULL)
    return NULL;
  memcpy(m->name, name, strlen(name) + 1);
  cJSON_ArrayForEach(d, list)
  {
    const char *dn = pc_str(d, "name"), *dt = pc_str(d, "type");
    if (dn == NULL || dt == NULL || pc_type(dt) == 0) {
      fprintf(stderr, "decls.json: bad declaration in module %s\n", name);
      return NULL;
    }
    m->decls[i].struct_size = sizeof(struct ccm_option_decl);
    m->decls[i].name = dn;
    m->decls[i].type = pc_type(dt);
    m->decls[i].help = "test declaration";
    m->ptrs[i] = &m->decls[i];
    i++;
  }
  m->prov.struct_size = sizeof(struct ccm_provider);
  m->prov.name = m->name;
  m->prov.version = "0.0.0";
  m->prov.description = "policy_cases fake module";
  m->prov.thread_safety = CCM_THREAD_SAFE;
  m->prov.options = m->ptrs;
  pc_n_modules++;
  return &m->prov;
}

static const struct ccm_provider *pc_module(const char *name)
{
  for (size_t i = 0; i < pc_n_modules; i++)
    if (strcmp(pc_modules[i].name, name) == 0)
      return &pc_modules[i].prov;
  return pc_add_module(name, NULL); /* known to no one: declares nothing */
}

/* ---- comparisons ------------------------------------------------------ */

/* A failure message for cmocka; returns false so callers can chain. */
static bool pc_fail(const char *fmt, ...)
{
  char buf[1024];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  print_error("%s\n", buf);
  return false;
}

static bool pc_same_option(const struct ccm_option_value *o, const cJSON *want)
{
  if (cJSON_IsBool(want)) {
    if (o->type != CCM_OPT_BOOL || o->bool_value != cJSON_IsTrue(want))
      return pc_fail("option %s: want %s", o->name,
                     cJSON_IsTrue(want) ? "true" : "false");
    return true;
  }
  if (cJSON_IsNumber(want)) {
    if (o->type != CCM_OPT_INT || o->int_value != (int64_t)want->valuedouble)
      return pc_fail("option %s: want integer %.0f (type %u, got %lld)",
                     o->name, want->valuedouble, o->type,
                     (long long)o->int_value);
    return true;
  }
  if (cJSON_IsString(want)) {
    if (o->type != CCM_OPT_STRING || o->string_value == NULL ||
        strcmp(o->string_value, want->valuestring) != 0)
      return pc_fail("option %s: want \"%s\", got type %u \"%s\"", o->name,
                     want->valuestring, o->type,
                     o->type == CCM_OPT_STRING && o->string_value
                         ? o->string_value
                         : "");
    return true;
  }
  if (cJSON_IsArray(want)) {
    size_t i = 0;
    const cJSON *it;
    if (o->type != CCM_OPT_STRING_LIST ||
        o->list_len != (size_t)cJSON_GetArraySize(want))
      return pc_fail("option %s: want a list of %d strings (type %u, %zu "
                     "items)", o->name, cJSON_GetArraySize(want), o->type,
                     o->type == CCM_OPT_STRING_LIST ? o->list_len : 0);
    cJSON_ArrayForEach(it, want)
    {
      if (!cJSON_IsString(it) || strcmp(o->list[i], it->valuestring) != 0)
        return pc_fail("option %s item %zu: want \"%s\", got \"%s\"",
                       o->name, i, cJSON_IsString(it) ? it->valuestring : "?",
                       o->list[i]);
      i++;
    }
    return true;
  }
  return pc_fail("option %s: unsupported expectation in fixture", o->name);
}

static bool pc_check_options(const struct policy_options *opts,
                             const cJSON *want)
{
  bool ok = true;
  int n_want = want != NULL ? cJSON_GetArraySize(want) : 0;

  for (size_t i = 0; i < opts->n; i++) {
    const struct ccm_option_value *o = opts->options[i];
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(want, o->name);
    if (w == NULL)
      ok = pc_fail("unexpected option %s", o->name);
    else if (!pc_same_option(o, w))
      ok = false;
  }
  if (opts->n != (size_t)n_want)
    ok = pc_fail("got %zu options, want %d", opts->n, n_want);
  return ok;
}

static bool pc_check_kvs(const struct policy_kvs *kvs, const cJSON *want)
{
  bool ok = true;

  for (size_t i = 0; i < kvs->n; i++) {
    const char *v = pc_str(want, kvs->kvs[i]->key);
    if (v == NULL || strcmp(v, kvs->kvs[i]->value) != 0)
      ok = pc_fail("tag %s=\"%s\": want %s%s%s", kvs->kvs[i]->key,
                   kvs->kvs[i]->value, v ? "\"" : "", v ? v : "none",
                   v ? "\"" : "");
  }
  if (kvs->n != (size_t)cJSON_GetArraySize(want))
    ok = pc_fail("got %zu tags, want %d", kvs->n, cJSON_GetArraySize(want));
  return ok;
}

/* ---- one case --------------------------------------------------------- */

static void pc_ctx(const struct pc_case *c, struct policy_ctx *ctx)
{
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(c->json, "ctx");

  ctx->cluster_name = pc_str(j, "cluster_name");
  ctx->provider_name = pc_str(j, "provider");
  ctx->provider_class = pc_str(j, "class");
  ctx->provider = c->prov;
}

static bool pc_run_options(const struct pc_case *c,
                           const struct policy_ctx *ctx)
{
  const cJSON *expect = cJSON_GetObjectItemCaseSensitive(c->json, "expect");
  const char *reject = pc_str(expect, "reject");
  bool elsewhere = cJSON_IsTrue(
      cJSON_GetObjectItemCaseSensitive(expect, "elsewhere"));
  const struct obj_service *svc = obj_as_service(c->svc);
  struct policy_options *opts = NULL;
  struct policy_error perr;
  char line[1400];
  bool ok = true;
  int rc;

  memset(&perr, 0, sizeof perr);
  rc = policy_lb_options(pc_engine, svc, ctx, &opts, &perr);
  policy_error_format(&perr, line, sizeof line);
  if (reject != NULL) {
    if (rc != POLICY_REJECT)
      ok = pc_fail("want a rejection containing \"%s\", got rc %d (%s)",
                   reject, rc, line);
    else if (strstr(perr.message, reject) == NULL)
      ok = pc_fail("rejection \"%s\" lacks \"%s\"", perr.message, reject);
  } else if (elsewhere) {
    if (rc != POLICY_ELSEWHERE)
      ok = pc_fail("want IMPLEMENTED_ELSEWHERE, got rc %d (%s)", rc, line);
  } else if (rc != POLICY_OK && rc != POLICY_DEFAULT) {
    ok = pc_fail("want options, got rc %d: %s", rc, line);
  } else {
    ok = pc_check_options(opts, cJSON_GetObjectItemCaseSensitive(expect,
                                                                 "options"));
  }
  if (opts != NULL)
    policy_options_free(opts);
  return ok;
}

static bool pc_run_tags(const struct pc_case *c, const struct policy_ctx *ctx)
{
  const cJSON *want = cJSON_GetObjectItemCaseSensitive(c->json, "expect_tags");
  struct policy_kvs *kvs = NULL;
  struct policy_error perr;
  bool ok;
  int rc;

  if (want == NULL)
    return true;
  memset(&perr, 0, sizeof perr);
  rc = policy_resource_tags(pc_engine, obj_as_service(c->svc), ctx, &kvs,
                            &perr);
  if (rc != POLICY_OK && rc != POLICY_DEFAULT)
    return pc_fail("resource_tags: rc %d: %s", rc, perr.message);
  ok = pc_check_kvs(kvs, want);
  policy_kvs_free(kvs);
  return ok;
}

static bool pc_run_nodes(const struct pc_case *c, const struct policy_ctx *ctx)
{
  const cJSON *want = cJSON_GetObjectItemCaseSensitive(c->json,
                                                       "expect_nodes");
  const struct obj_node **nodes = NULL;
  struct policy_error perr;
  bool *keep = NULL, ok = true;
  size_t k = 0;
  const cJSON *w;
  int rc;

  if (want == NULL)
    return true;
  nodes = calloc(c->n_nodes + 1, sizeof *nodes);
  keep = calloc(c->n_nodes + 1, sizeof *keep);
  if (nodes == NULL || keep == NULL) {
    ok = pc_fail("out of memory");
    goto fail;
  }
  for (size_t i = 0; i < c->n_nodes; i++)
    nodes[i] = obj_as_node(c->nodes[i]);
  memset(&perr, 0, sizeof perr);
  rc = policy_backend_nodes(pc_engine, obj_as_service(c->svc),
                            (const struct obj_node *const *)nodes,
                            c->n_nodes, ctx, keep, &perr);
  if (rc != POLICY_OK && rc != POLICY_DEFAULT) {
    ok = pc_fail("backend_nodes: rc %d: %s", rc, perr.message);
    goto fail;
  }
  /* kept names, in order, against the expected list */
  cJSON_ArrayForEach(w, want)
  {
    while (k < c->n_nodes && !keep[k])
      k++;
    if (k == c->n_nodes || !cJSON_IsString(w) ||
        strcmp(nodes[k]->meta.name, w->valuestring) != 0) {
      ok = pc_fail("backend_nodes: want %s next, got %s",
                   cJSON_IsString(w) ? w->valuestring : "?",
                   k < c->n_nodes ? nodes[k]->meta.name : "nothing");
      goto fail;
    }
    k++;
  }
  for (; k < c->n_nodes; k++)
    if (keep[k])
      ok = pc_fail("backend_nodes: %s kept, not expected",
                   nodes[k]->meta.name);
fail:
  free(nodes);
  free(keep);
  return ok;
}

static bool pc_run_name(const struct pc_case *c, const struct policy_ctx *ctx)
{
  const char *want = pc_str(c->json, "expect_name");
  struct policy_error perr;
  char name[256];
  int rc;

  if (want == NULL)
    return true;
  memset(&perr, 0, sizeof perr);
  rc = policy_lb_name(pc_engine, obj_as_service(c->svc), ctx, name,
                      sizeof name, &perr);
  if (rc != POLICY_OK && rc != POLICY_DEFAULT)
    return pc_fail("load_balancer_name: rc %d: %s", rc, perr.message);
  if (strcmp(name, want) != 0)
    return pc_fail("load_balancer_name: \"%s\", want \"%s\"", name, want);
  return true;
}

static void pc_test_case(void **state)
{
  const struct pc_case *c = *state;
  struct policy_ctx ctx;
  bool ok;

  pc_ctx(c, &ctx);
  ok = pc_run_options(c, &ctx);
  ok = pc_run_tags(c, &ctx) && ok;
  ok = pc_run_nodes(c, &ctx) && ok;
  ok = pc_run_name(c, &ctx) && ok;
  if (!ok)
    fail_msg("case \"%s\" failed", c->name);
}

/* ---- setup ------------------------------------------------------------ */

static struct obj_meta *pc_decode(enum obj_kind kind, const cJSON *j,
                                  const char *what, const char *name)
{
  struct obj_meta *m = NULL;
  char err[256];

  if (j == NULL || obj_decode(kind, j, &m, err, sizeof err) != OBJ_OK) {
    fprintf(stderr, "case \"%s\": %s does not decode: %s\n", name, what,
            j == NULL ? "missing" : err);
    return NULL;
  }
  return m;
}

static int pc_load_case(const cJSON *j, struct pc_case *c)
{
  const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(j, "ctx");
  const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(j, "nodes");
  const char *module = pc_str(ctx, "module");
  const cJSON *n;

  c->json = j;
  c->name = pc_str(j, "name") ? pc_str(j, "name") : "(unnamed)";
  c->prov = module != NULL ? pc_module(module) : NULL;
  if (module != NULL && c->prov == NULL)
    return -1;
  c->svc = pc_decode(OBJ_KIND_SERVICE,
                     cJSON_GetObjectItemCaseSensitive(j, "service"),
                     "service", c->name);
  if (c->svc == NULL)
    return -1;
  c->n_nodes = 0;
  c->nodes = calloc((size_t)cJSON_GetArraySize(nodes) + 1, sizeof *c->nodes);
  if (c->nodes == NULL)
    return -1;
  cJSON_ArrayForEach(n, nodes)
  {
    c->nodes[c->n_nodes] = pc_decode(OBJ_KIND_NODE, n, "node", c->name);
    if (c->nodes[c->n_nodes] == NULL)
      return -1;
    c->n_nodes++;
  }
  return 0;
}

/* Compare one loaded module's declarations with decls.json's entry. */
static int pc_compare_decls(const struct ccm_provider *p, const cJSON *decls,
                            const char *path)
{
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(decls, p->name);
  const cJSON *d;
  size_t n_mod = 0;
  int bad = 0;

  if (list == NULL) {
    fprintf(stderr, "%s: module %s has no entry in decls.json\n", path,
            p->name);
    return 1;
  }
  for (size_t i = 0; p->options != NULL && p->options[i] != NULL; i++) {
    const struct ccm_option_decl *o = p->options[i];
    bool found = false;
    n_mod++;
    cJSON_ArrayForEach(d, list)
    {
      const char *dn = pc_str(d, "name"), *dt = pc_str(d, "type");
      if (dn == NULL || dt == NULL || strcmp(dn, o->name) != 0)
        continue;
      found = true;
      if (pc_type(dt) != o->type) {
        fprintf(stderr, "%s: option %s is type %u, decls.json says %s\n",
                path, o->name, o->type, dt);
        bad = 1;
      }
    }
    if (!found) {
      fprintf(stderr, "%s: option %s is missing from decls.json\n", path,
              o->name);
      bad = 1;
    }
  }
  if (n_mod != (size_t)cJSON_GetArraySize(list)) {
    fprintf(stderr, "%s: module declares %zu options, decls.json %d\n", path,
            n_mod, cJSON_GetArraySize(list));
    bad = 1;
  }
  if (!bad)
    printf("ok - %s declares the %zu options of decls.json\n", p->name,
           n_mod);
  return bad;
}

static int pc_check_decls(int argc, char **argv)
{
  char dir[] = "/tmp/policy_cases.XXXXXX";
  cJSON *decls = pc_parse_file(argv[2]);
  int bad = 0;

  if (decls == NULL || mkdtemp(dir) == NULL) {
    cJSON_Delete(decls);
    return 1;
  }
  for (int i = 3; i < argc; i++) {
    struct module *m = NULL;
    char err[512];
    if (loader_open(argv[i], dir, &m, err, sizeof err) != 0) {
      fprintf(stderr, "%s\n", err);
      bad = 1;
      continue;
    }
    bad |= pc_compare_decls(m->provider, decls, argv[i]);
    loader_close(m);
  }
  rmdir(dir);
  cJSON_Delete(decls);
  return bad;
}

int main(int argc, char **argv)
{
  cJSON *cases = NULL, *decls = NULL;
  struct CMUnitTest *tests = NULL;
  struct pc_case *pcs = NULL;
  const char *files[1];
  const char *base;
  char err[512];
  size_t n = 0, i = 0;
  const cJSON *it;
  int rc = 1;

  if (argc >= 4 && strcmp(argv[1], "--check-decls") == 0)
    return pc_check_decls(argc, argv);
  if (argc != 4) {
    fprintf(stderr, "usage: %s SCRIPT.lua CASES.json DECLS.json\n", argv[0]);
    return 2;
  }
  decls = pc_parse_file(argv[3]);
  cases = pc_parse_file(argv[2]);
  if (decls == NULL || cases == NULL || !cJSON_IsArray(cases))
    goto fail;
  cJSON_ArrayForEach(it, decls)
  {
    if (pc_add_module(it->string, it) == NULL)
      goto fail;
  }
  files[0] = argv[1];
  if (policy_engine_new(files, 1, NULL, &pc_engine, err, sizeof err) != 0) {
    fprintf(stderr, "policy_engine_new: %s\n", err);
    goto fail;
  }
  n = (size_t)cJSON_GetArraySize(cases);
  pcs = calloc(n + 1, sizeof *pcs);
  tests = calloc(n + 1, sizeof *tests);
  if (n == 0 || pcs == NULL || tests == NULL)
    goto fail;
  cJSON_ArrayForEach(it, cases)
  {
    if (pc_load_case(it, &pcs[i]) != 0)
      goto fail;
    tests[i].name = pcs[i].name;
    tests[i].test_func = pc_test_case;
    tests[i].initial_state = &pcs[i];
    i++;
  }
  base = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
  rc = _cmocka_run_group_tests(base, tests, n, NULL, NULL) == 0 ? 0 : 1;
fail:
  if (pc_engine != NULL)
    policy_engine_free(pc_engine);
  for (size_t k = 0; pcs != NULL && k < n; k++) {
    obj_unref(pcs[k].svc);
    for (size_t m = 0; m < pcs[k].n_nodes; m++)
      obj_unref(pcs[k].nodes[m]);
    free(pcs[k].nodes);
  }
  for (size_t k = 0; k < pc_n_modules; k++) {
    free(pc_modules[k].name);
    free(pc_modules[k].decls);
    free(pc_modules[k].ptrs);
  }
  free(pcs);
  free(tests);
  cJSON_Delete(cases);
  cJSON_Delete(decls);
  return rc;
}
