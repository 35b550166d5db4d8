/*
 * test_policy_util.h: helpers shared by the test_policy_*.c unit tests:
 * a temp dir for policy files, Services built from JSON, and a fake
 * provider descriptor with option declarations and name rules. Test-only.
 */
#ifndef CCM_TEST_POLICY_UTIL_H
#define CCM_TEST_POLICY_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kube/objects.h"
#include "policy/policy.h"

struct tp_dir {
  char path[128];
};

static inline void tp_dir_make(struct tp_dir *d)
{
  snprintf(d->path, sizeof d->path, "/tmp/ccm-policy-test-XXXXXX");
  if (mkdtemp(d->path) == NULL)
    d->path[0] = '\0';
}

static inline void tp_dir_remove(struct tp_dir *d)
{
  char p[512];
  struct dirent *e;
  DIR *dir = opendir(d->path);

  if (dir != NULL) {
    for (e = readdir(dir); e != NULL; e = readdir(dir)) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(p, sizeof p, "%s/%s", d->path, e->d_name);
      unlink(p);
    }
    closedir(dir);
  }
  rmdir(d->path);
}

/* Write name in the dir (atomically, by rename) and return its path in a
 * static ring of buffers. */
static inline const char *tp_write(struct tp_dir *d, const char *name,
                                   const char *text)
{
  static char paths[16][256];
  static int next;
  char tmp[300];
  char *out = paths[next++ % 16];
  FILE *f;

  snprintf(out, 256, "%s/%s", d->path, name);
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp", d->path, name);
  f = fopen(tmp, "wb");
  if (f == NULL)
    return NULL;
  fwrite(text, 1, strlen(text), f);
  fclose(f);
  if (rename(tmp, out) != 0)
    return NULL;
  return out;
}

/* A LoadBalancer Service with the given extra annotations (a JSON object
 * body, e.g. "\"a\":\"b\""), or NULL on a decode error. */
static inline struct obj_meta *tp_service(const char *name,
                                          const char *annotations)
{
  static unsigned rv = 100; /* a new version each time, as the API does */
  char json[4096];
  char err[256];
  struct obj_meta *obj = NULL;

  snprintf(json, sizeof json,
           "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns1\","
           "\"uid\":\"11111111-2222-3333-4444-555555555555\","
           "\"resourceVersion\":\"%u\",\"labels\":{\"app\":\"web\"},"
           "\"annotations\":{%s}},"
           "\"spec\":{\"type\":\"LoadBalancer\",\"ports\":[{\"name\":"
           "\"http\",\"port\":80,\"nodePort\":30080,\"protocol\":\"TCP\"}],"
           "\"loadBalancerSourceRanges\":[\"10.0.0.0/8\",\"192.168.0.0/16\"]"
           "}}",
           name, rv++, annotations != NULL ? annotations : "");
  if (obj_decode_text(OBJ_KIND_SERVICE, json, strlen(json), &obj, err,
                      sizeof err) != OBJ_OK)
    return NULL;
  return obj;
}

static inline struct obj_meta *tp_node(const char *name, bool ready)
{
  char json[1024];
  char err[256];
  struct obj_meta *obj = NULL;

  snprintf(json, sizeof json,
           "{\"metadata\":{\"name\":\"%s\",\"uid\":\"uid-%s\","
           "\"resourceVersion\":\"1\",\"labels\":{\"kubernetes.io/hostname\":"
           "\"%s\"}},\"spec\":{\"providerID\":\"lab://%s\"},"
           "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":"
           "\"%s\"}]}}",
           name, name, name, name, ready ? "True" : "False");
  if (obj_decode_text(OBJ_KIND_NODE, json, strlen(json), &obj, err,
                      sizeof err) != OBJ_OK)
    return NULL;
  return obj;
}

/* A provider descriptor for validation: no operations, only declarations. */
static const struct ccm_option_decl tp_opt_pool = {
    sizeof(struct ccm_option_decl), "pool", CCM_OPT_STRING, "pool", NULL};
static const struct ccm_option_decl tp_opt_port = {
    sizeof(struct ccm_option_decl), "port", CCM_OPT_INT, "port", NULL};
static const struct ccm_option_decl tp_opt_internal = {
    sizeof(struct ccm_option_decl), "internal", CCM_OPT_BOOL, "internal",
    NULL};
static const struct ccm_option_decl tp_opt_ranges = {
    sizeof(struct ccm_option_decl), "ranges", CCM_OPT_STRING_LIST, "ranges",
    NULL};
static const struct ccm_option_decl *const tp_options[] = {
    &tp_opt_pool, &tp_opt_port, &tp_opt_internal, &tp_opt_ranges, NULL};
static const struct ccm_name_rules tp_rules = {
    sizeof(struct ccm_name_rules), 3, 40,
    "abcdefghijklmnopqrstuvwxyz0123456789-", "abcdefghijklmnopqrstuvwxyz",
    "abcdefghijklmnopqrstuvwxyz0123456789"};
static const struct ccm_provider tp_provider = {
    .struct_size = sizeof(struct ccm_provider),
    .name = "testprov",
    .version = "1",
    .options = tp_options,
    .lb_name_rules = &tp_rules};

#endif
