/*
 * policy_check.c: `ccm-host --check-policy FILE [--provider PATH]
 * [--service FILE]`: compile a policy, run every hook on the sample objects
 * or a given Service, print the results. It must not init a module (only
 * read its declarations) nor contact anything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <yaml.h>

#include "modules/inspect.h"
#include "policy/policy_int.h"
#include "util/log.h"
#include "util/mem.h"

#define CCM_CHECK_EXIT_OK 0
#define CCM_CHECK_EXIT_ERROR 1
#define CCM_CHECK_EXIT_USAGE 2
#define CCM_CHECK_MAX_FILE (1024u * 1024u)
#define CCM_CHECK_MAX_DEPTH 64

static int policy_check_usage(const char *msg)
{
  fprintf(stderr, "ccm-host: --check-policy: %s (usage: ccm-host "
          "--check-policy FILE [--provider PATH] [--service FILE])\n", msg);
  return CCM_CHECK_EXIT_USAGE;
}

/* ---- the Service file: JSON, or YAML through libyaml ----------------- */

static cJSON *policy_yaml_node(yaml_document_t *doc, yaml_node_t *node,
                               int depth)
{
  cJSON *out = NULL;

  if (node == NULL || depth > CCM_CHECK_MAX_DEPTH)
    return NULL;
  switch (node->type) {
  case YAML_SCALAR_NODE: {
    const char *s = (const char *)node->data.scalar.value;
    size_t len = node->data.scalar.length;
    char *end = NULL;
    double d;
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
      return cJSON_CreateString(s);
    if (len == 0 || strcmp(s, "null") == 0 || strcmp(s, "~") == 0)
      return cJSON_CreateNull();
    if (strcmp(s, "true") == 0)
      return cJSON_CreateTrue();
    if (strcmp(s, "false") == 0)
      return cJSON_CreateFalse();
    errno = 0;
    d = strtod(s, &end);
    if (errno == 0 && end == s + len && (s[0] == '-' || (s[0] >= '0' &&
                                                         s[0] <= '9')))
      return cJSON_CreateNumber(d);
    return cJSON_CreateString(s);
  }
  case YAML_SEQUENCE_NODE:
    out = cJSON_CreateArray();
    for (yaml_node_item_t *it = node->data.sequence.items.start;
         out != NULL && it < node->data.sequence.items.top; it++) {
      cJSON *v = policy_yaml_node(doc, yaml_document_get_node(doc, *it),
                                  depth + 1);
      if (v == NULL) {
        cJSON_Delete(out);
        return NULL;
      }
      cJSON_AddItemToArray(out, v);
    }
    return out;
  case YAML_MAPPING_NODE:
    out = cJSON_CreateObject();
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
         out != NULL && p < node->data.mapping.pairs.top; p++) {
      yaml_node_t *k = yaml_document_get_node(doc, p->key);
      cJSON *v;
      if (k == NULL || k->type != YAML_SCALAR_NODE) {
        cJSON_Delete(out);
        return NULL;
      }
      v = policy_yaml_node(doc, yaml_document_get_node(doc, p->value),
                           depth + 1);
      if (v == NULL) {
        cJSON_Delete(out);
        return NULL;
      }
      cJSON_AddItemToObject(out, (const char *)k->data.scalar.value, v);
    }
    return out;
  default:
    return NULL;
  }
}

static cJSON *policy_yaml_parse(const char *text, size_t len, char *err,
                                size_t errlen)
{
  yaml_parser_t parser;
  yaml_document_t doc;
  cJSON *out = NULL;

  if (!yaml_parser_initialize(&parser)) {
    snprintf(err, errlen, "cannot initialise the YAML parser");
    return NULL;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &doc)) {
    snprintf(err, errlen, "YAML error at line %zu: %s",
             parser.problem_mark.line + 1,
             parser.problem != NULL ? parser.problem : "?");
    yaml_parser_delete(&parser);
    return NULL;
  }
  out = policy_yaml_node(&doc, yaml_document_get_root_node(&doc), 0);
  if (out == NULL)
    snprintf(err, errlen, "empty or unsupported YAML document");
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  return out;
}

static struct obj_meta *policy_check_load_service(const char *path)
{
  FILE *f = fopen(path, "rb");
  char *text = NULL;
  size_t len = 0;
  cJSON *json = NULL;
  struct obj_meta *obj = NULL;
  char err[512];

  if (f == NULL) {
    fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
    return NULL;
  }
  text = mem_alloc(CCM_CHECK_MAX_FILE + 1);
  if (text == NULL)
    goto done;
  len = fread(text, 1, CCM_CHECK_MAX_FILE + 1, f);
  if (len > CCM_CHECK_MAX_FILE) {
    fprintf(stderr, "%s: larger than %u bytes\n", path, CCM_CHECK_MAX_FILE);
    goto done;
  }
  text[len] = '\0';
  json = cJSON_ParseWithLength(text, len);
  if (json == NULL) {
    json = policy_yaml_parse(text, len, err, sizeof err);
    if (json == NULL) {
      fprintf(stderr, "%s: %s\n", path, err);
      goto done;
    }
  }
  if (obj_decode(OBJ_KIND_SERVICE, json, &obj, err, sizeof err) != OBJ_OK) {
    fprintf(stderr, "%s: not a Service: %s\n", path, err);
    obj = NULL;
  }
done:
  cJSON_Delete(json);
  mem_free(text);
  fclose(f);
  return obj;
}

/* ---- the provider module --------------------------------------------- */

/* ---- printing results -------------------------------------------------- */

static const char *policy_check_src(int rc)
{
  return rc == POLICY_DEFAULT ? " (built-in default)" : "";
}

static int policy_check_fail(const char *hook, int rc,
                             const struct policy_error *err)
{
  char line[1024];

  policy_error_format(err, line, sizeof line);
  if (rc == POLICY_REJECT) {
    printf("%s: rejected at %s: %s\n", hook,
           err->where[0] ? err->where : err->policy, err->message);
    return 0;
  }
  printf("%s: ERROR\n", hook);
  if (err->traceback[0] != '\0')
    printf("  %s\n", err->traceback);
  fprintf(stderr, "%s\n", line);
  return 1;
}

static void policy_check_print_kvs(const char *hook, int rc,
                                   const struct policy_kvs *kvs)
{
  printf("%s:%s %zu\n", hook, policy_check_src(rc), kvs->n);
  for (size_t i = 0; i < kvs->n; i++)
    printf("  %s = \"%s\"\n", kvs->kvs[i]->key, kvs->kvs[i]->value);
}

static void policy_check_print_options(int rc,
                                       const struct policy_options *o)
{
  printf("load_balancer_options:%s %zu\n", policy_check_src(rc), o->n);
  for (size_t i = 0; i < o->n; i++) {
    const struct ccm_option_value *v = o->options[i];
    switch (v->type) {
    case CCM_OPT_STRING:
      printf("  %s = \"%s\"\n", v->name, v->string_value);
      break;
    case CCM_OPT_INT:
      printf("  %s = %lld\n", v->name, (long long)v->int_value);
      break;
    case CCM_OPT_BOOL:
      printf("  %s = %s\n", v->name, v->bool_value ? "true" : "false");
      break;
    default:
      printf("  %s = [", v->name);
      for (size_t k = 0; k < v->list_len; k++)
        printf("%s\"%s\"", k ? ", " : "", v->list[k]);
      printf("]\n");
      break;
    }
  }
}

static const struct ccm_kv policy_check_label = {
    sizeof(struct ccm_kv), "example.com/rack", "r1"};
static const struct ccm_kv *const policy_check_labels[] = {
    &policy_check_label};

static int policy_check_run(struct policy_engine *pe,
                            const struct obj_service *svc,
                            const struct obj_node *const *nodes,
                            const struct policy_ctx *ctx)
{
  struct policy_error err;
  struct policy_options *opts = NULL;
  struct policy_kvs *kvs = NULL;
  char name[CCM_MAX_NAME + 1];
  bool keep[2];
  int rc, bad = 0;
  const struct policy_node_meta meta = {
      nodes[0]->provider_id, "m5.large", "zone-a", "region-1",
      policy_check_labels, 1};

  printf("service: %s/%s (%s)\n", svc->meta.ns ? svc->meta.ns : "",
         svc->meta.name ? svc->meta.name : "",
         svc->type_name ? svc->type_name : "ClusterIP");

  rc = policy_lb_name(pe, svc, ctx, name, sizeof name, &err);
  if (rc >= 0)
    printf("load_balancer_name:%s \"%s\"\n", policy_check_src(rc), name);
  else
    bad |= policy_check_fail("load_balancer_name", rc, &err);

  rc = policy_lb_options(pe, svc, ctx, &opts, &err);
  if (rc == POLICY_ELSEWHERE)
    printf("load_balancer_options: ccm.IMPLEMENTED_ELSEWHERE (the host "
           "skips this Service)\n");
  else if (rc >= 0)
    policy_check_print_options(rc, opts);
  else
    bad |= policy_check_fail("load_balancer_options", rc, &err);
  policy_options_free(opts);

  rc = policy_backend_nodes(pe, svc, nodes, 2, ctx, keep, &err);
  if (rc >= 0) {
    printf("backend_nodes:%s", policy_check_src(rc));
    for (size_t i = 0; i < 2; i++)
      printf(" %s=%s", nodes[i]->meta.name, keep[i] ? "kept" : "dropped");
    printf("\n");
  } else {
    bad |= policy_check_fail("backend_nodes", rc, &err);
  }

  rc = policy_resource_tags(pe, svc, ctx, &kvs, &err);
  if (rc >= 0)
    policy_check_print_kvs("resource_tags", rc, kvs);
  else
    bad |= policy_check_fail("resource_tags", rc, &err);
  policy_kvs_free(kvs);
  kvs = NULL;

  rc = policy_node_labels(pe, nodes[0], &meta, ctx, &kvs, &err);
  if (rc >= 0)
    policy_check_print_kvs("node_labels", rc, kvs);
  else
    bad |= policy_check_fail("node_labels", rc, &err);
  policy_kvs_free(kvs);
  return bad;
}

int policy_check_main(int argc, char **argv)
{
  const char *file = NULL, *provider = NULL, *service = NULL;
  struct policy_engine *pe = NULL;
  struct policy_samples samples;
  struct obj_meta *svc_obj = NULL;
  struct module_inspect mi = {0};
  struct policy_ctx ctx = {"kubernetes", NULL, NULL, NULL};
  const struct obj_node *nodes[2];
  char err[1024];
  int rc = CCM_CHECK_EXIT_ERROR;

  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--provider") == 0 ||
        strcmp(argv[i], "--service") == 0) {
      if (i + 1 >= argc)
        return policy_check_usage("an option needs a value");
      if (argv[i][2] == 'p')
        provider = argv[++i];
      else
        service = argv[++i];
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      return policy_check_usage("unknown option");
    } else if (file != NULL) {
      return policy_check_usage("one policy FILE only");
    } else {
      file = argv[i];
    }
  }
  if (file == NULL)
    return policy_check_usage("a policy FILE is needed");
  log_set_level(CCM_LOG_ERROR); /* each error is printed once, below */
  if (policy_samples_new(&samples, err, sizeof err) != 0) {
    fprintf(stderr, "ccm-host: sample objects: %s\n", err);
    return CCM_CHECK_EXIT_ERROR;
  }
  if (provider != NULL) {
    if (module_inspect_open(provider, &mi, err, sizeof err) != 0) {
      fprintf(stderr, "%s\n", err);
      goto done;
    }
    ctx.provider = mi.m->provider;
    ctx.provider_name = mi.m->provider->name;
  }
  if (service != NULL) {
    svc_obj = policy_check_load_service(service);
    if (svc_obj == NULL)
      goto done;
  }
  if (policy_engine_new((const char *const *)&file, 1, NULL, &pe, err,
                        sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    goto done;
  }
  printf("policy: %s (compiled, self-test passed)\n", file);
  if (mi.m != NULL) {
    printf("provider module: %s\n",
           mi.m->provider->name != NULL ? mi.m->provider->name : "?");
    module_print_decls(stdout, mi.m->provider);
  }
  nodes[0] = obj_as_node(samples.nodes[0]);
  nodes[1] = obj_as_node(samples.nodes[1]);
  {
    const struct obj_service *svc =
        obj_as_service(svc_obj != NULL ? svc_obj : samples.svc);
    ctx.provider_class = svc->lb_class;
    rc = policy_check_run(pe, svc, nodes, &ctx) ? CCM_CHECK_EXIT_ERROR
                                                : CCM_CHECK_EXIT_OK;
  }
done:
  policy_engine_free(pe);
  obj_unref(svc_obj);
  policy_samples_free(&samples);
  module_inspect_close(&mi);
  return rc;
}
