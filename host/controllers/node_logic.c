/*
 * node_logic.c: the pure decisions of the node and node lifecycle
 * controllers (node_logic.h): address merge, labels, taints, lifecycle
 * actions. It must not log, lock, or call out; it allocates only cJSON
 * nodes and one scratch array.
 */
#include "controllers/node_logic.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "ccm_provider.h"
#include "util/mem.h"

static const struct {
  uint32_t type;
  const char *name;
} node_addr_types[] = {
  {CCM_ADDR_HOSTNAME, "Hostname"},
  {CCM_ADDR_EXTERNAL_IP, "ExternalIP"},
  {CCM_ADDR_INTERNAL_IP, "InternalIP"},
  {CCM_ADDR_EXTERNAL_DNS, "ExternalDNS"},
  {CCM_ADDR_INTERNAL_DNS, "InternalDNS"},
};

uint32_t node_addr_type_parse(const char *s)
{
  if (!s)
    return 0;
  for (size_t i = 0; i < sizeof(node_addr_types) / sizeof(node_addr_types[0]);
       i++) {
    if (strcmp(node_addr_types[i].name, s) == 0)
      return node_addr_types[i].type;
  }
  return 0;
}

const char *node_addr_type_name(uint32_t type)
{
  for (size_t i = 0; i < sizeof(node_addr_types) / sizeof(node_addr_types[0]);
       i++) {
    if (node_addr_types[i].type == type)
      return node_addr_types[i].name;
  }
  return NULL;
}

/* ---- IPs ------------------------------------------------------------- */

/* Dotted quad with optional leading zeros (decimal), as ParseIPSloppy. */
static bool node_ip4_parse(const char *s, unsigned char out[4])
{
  for (int part = 0; part < 4; part++) {
    unsigned v = 0;
    int digits = 0;

    if (part > 0) {
      if (*s != '.')
        return false;
      s++;
    }
    while (*s >= '0' && *s <= '9') {
      v = v * 10u + (unsigned)(*s - '0');
      if (++digits > 8 || v > 255u)
        return false;
      s++;
    }
    if (digits == 0)
      return false;
    out[part] = (unsigned char)v;
  }
  return *s == '\0';
}

bool node_ip_parse(const char *s, unsigned char out[16])
{
  unsigned char v4[4];

  if (!s || !*s)
    return false;
  if (strchr(s, ':') == NULL) {
    if (!node_ip4_parse(s, v4))
      return false;
    memset(out, 0, 10);
    out[10] = 0xff;
    out[11] = 0xff;
    memcpy(out + 12, v4, 4);
    return true;
  }
  return inet_pton(AF_INET6, s, out) == 1;
}

bool node_ip_is6(const unsigned char ip[16])
{
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                           0xff, 0xff};

  return memcmp(ip, mapped, sizeof(mapped)) != 0;
}

static bool node_ip_unspecified(const unsigned char ip[16])
{
  static const unsigned char zero[16];

  if (node_ip_is6(ip))
    return memcmp(ip, zero, 16) == 0;
  return memcmp(ip + 12, zero, 4) == 0;
}

static void node_ip_format(const unsigned char ip[16], char *buf,
                           size_t cap)
{
  if (node_ip_is6(ip)) {
    if (!inet_ntop(AF_INET6, ip, buf, (socklen_t)cap))
      snprintf(buf, cap, "?");
  } else {
    snprintf(buf, cap, "%u.%u.%u.%u", ip[12], ip[13], ip[14], ip[15]);
  }
}

int node_ip_annotation_parse(const char *s, unsigned char ips[2][16],
                             char *err, size_t errlen)
{
  int n = 0;
  const char *p = s ? s : "";

  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    char one[80];

    if (len >= sizeof(one)) {
      snprintf(err, errlen, "invalid IP address %.*s...", 40, p);
      return -1;
    }
    memcpy(one, p, len);
    one[len] = '\0';
    if (n < 2 && !node_ip_parse(one, ips[n])) {
      snprintf(err, errlen, "invalid IP address \"%s\"", one);
      return -1;
    }
    if (n >= 2) {
      unsigned char scratch[16];
      if (!node_ip_parse(one, scratch)) {
        snprintf(err, errlen, "invalid IP address \"%s\"", one);
        return -1;
      }
    }
    n++;
    if (!comma)
      break;
    p = comma + 1;
  }
  if (n > 2 || (n == 2 && node_ip_is6(ips[0]) == node_ip_is6(ips[1]))) {
    snprintf(err, errlen,
             "must contain either a single IP or a dual-stack pair of IPs");
    return -1;
  }
  if (n == 2 && (node_ip_unspecified(ips[0]) || node_ip_unspecified(ips[1]))) {
    snprintf(err, errlen, "dual-stack node IP cannot include '0.0.0.0' or "
             "'::'");
    return -1;
  }
  return n;
}

/* ---- addresses ------------------------------------------------------- */

int node_addresses_from_node_ip(const char *annotation,
                                const struct node_addr *cloud, size_t n_cloud,
                                struct node_addr *out, char *err,
                                size_t errlen)
{
  unsigned char ips[2][16];
  char why[160];
  bool covered[8] = {false};
  size_t n_out = 0;
  int n_ips = node_ip_annotation_parse(annotation, ips, why, sizeof(why));

  if (n_ips < 0) {
    snprintf(err, errlen, "failed to parse node IP \"%s\": %s",
             annotation ? annotation : "", why);
    return -1;
  }
  for (int k = 0; k < n_ips; k++) {
    bool matched = false;

    for (size_t i = 0; i < n_cloud; i++) {
      unsigned char ip[16];

      if (!node_ip_parse(cloud[i].address, ip) || memcmp(ip, ips[k], 16) != 0)
        continue;
      out[n_out++] = cloud[i];
      if (cloud[i].type < sizeof(covered))
        covered[cloud[i].type] = true;
      matched = true;
    }
    if (!matched) {
      char text[64];
      node_ip_format(ips[k], text, sizeof(text));
      snprintf(err, errlen, "failed to get node address from cloud provider "
               "that matches ip: %s", text);
      return -1;
    }
  }
  for (size_t i = 0; i < n_cloud; i++) {
    if (cloud[i].type < sizeof(covered) && covered[cloud[i].type])
      continue;
    out[n_out++] = cloud[i];
  }
  return (int)n_out;
}

int node_addresses_merge(const struct node_addr *cloud, size_t n_cloud,
                         const struct node_addr *cur, size_t n_cur,
                         const char *annotation, struct node_addr *out,
                         size_t *n_out, char *err, size_t errlen)
{
  struct node_addr *tmp;
  size_t n = 0;
  bool has_hostname = false;
  int k;

  *n_out = 0;
  if (n_cloud == 0)
    return 0;
  for (size_t i = 0; i < n_cloud; i++) {
    out[n++] = cloud[i];
    if (cloud[i].type == CCM_ADDR_HOSTNAME)
      has_hostname = true;
  }
  if (!has_hostname) {
    for (size_t i = 0; i < n_cur; i++) {
      if (cur[i].type == CCM_ADDR_HOSTNAME)
        out[n++] = cur[i];
    }
  }
  if (!annotation) {
    *n_out = n;
    return 0;
  }
  /* filter a copy: out is both input and output of the IP rules */
  tmp = mem_alloc(n * sizeof(*tmp));
  if (!tmp) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  memcpy(tmp, out, n * sizeof(*tmp));
  k = node_addresses_from_node_ip(annotation, tmp, n, out, err, errlen);
  mem_free(tmp);
  if (k < 0)
    return -1;
  *n_out = (size_t)k;
  return 0;
}

bool node_addresses_changed(const struct node_addr *old, size_t n_old,
                            const struct node_addr *cur, size_t n_cur)
{
  if (n_old != n_cur)
    return true;
  for (size_t i = 0; i < n_cur; i++) {
    const char *was = NULL;

    for (size_t j = 0; j < n_old; j++) {
      if (old[j].type == cur[i].type)
        was = old[j].address; /* last of a type wins, as a Go map */
    }
    if (!was || !cur[i].address || strcmp(was, cur[i].address) != 0)
      return true;
  }
  return false;
}

/* ---- labels ---------------------------------------------------------- */

static bool node_has_reserved_at(const char *key, const char *domain)
{
  for (const char *p = strstr(key, domain); p; p = strstr(p + 1, domain)) {
    if (p == key || p[-1] == '.')
      return true;
  }
  return false;
}

bool node_label_is_reserved(const char *key)
{
  if (!key)
    return true;
  return node_has_reserved_at(key, "kubernetes.io/") ||
         node_has_reserved_at(key, "k8s.io/");
}

static size_t node_label_pair(struct node_label_set *out, size_t n,
                              const char *ga, const char *beta,
                              const char *value)
{
  if (!value || !*value)
    return n;
  out[n++] = (struct node_label_set){ga, value, false};
  out[n++] = (struct node_label_set){beta, value, false};
  return n;
}

size_t node_labels_from_meta(const char *instance_type, const char *zone,
                             const char *region, const char *const *keys,
                             const char *const *values, size_t n_extra,
                             struct node_label_set *out, size_t *n_dropped)
{
  size_t n = 0;

  *n_dropped = 0;
  n = node_label_pair(out, n, CCM_NODE_LABEL_TYPE, CCM_NODE_LABEL_TYPE_BETA,
                      instance_type);
  n = node_label_pair(out, n, CCM_NODE_LABEL_ZONE, CCM_NODE_LABEL_ZONE_BETA,
                      zone);
  n = node_label_pair(out, n, CCM_NODE_LABEL_REGION,
                      CCM_NODE_LABEL_REGION_BETA, region);
  for (size_t i = 0; i < n_extra; i++) {
    if (node_label_is_reserved(keys[i])) {
      (*n_dropped)++;
      continue;
    }
    out[n++] = (struct node_label_set){keys[i], values[i] ? values[i] : "",
                                       true};
  }
  return n;
}

bool node_label_should_set(const struct node_label_set *l,
                           const char *existing, bool *conflict)
{
  *conflict = false;
  if (!existing)
    return true;
  if (strcmp(existing, l->value) == 0)
    return false;
  if (l->if_absent) {
    *conflict = true;
    return false;
  }
  return true;
}

size_t node_labels_reconcile(const struct obj_meta *node,
                             struct node_label_set *out)
{
  static const char *const pairs[3][2] = {
    {CCM_NODE_LABEL_ZONE_BETA, CCM_NODE_LABEL_ZONE},
    {CCM_NODE_LABEL_REGION_BETA, CCM_NODE_LABEL_REGION},
    {CCM_NODE_LABEL_TYPE_BETA, CCM_NODE_LABEL_TYPE},
  };
  size_t n = 0;

  for (size_t i = 0; i < 3; i++) {
    const char *primary = obj_label(node, pairs[i][0]);
    const char *secondary = obj_label(node, pairs[i][1]);

    if (!primary)
      continue;
    if (secondary && strcmp(secondary, primary) == 0)
      continue;
    out[n++] = (struct node_label_set){pairs[i][1], primary, false};
  }
  return n;
}

const char *node_provider_id_pick(const char *spec, const char *meta,
                                  const char *node_name, bool *set_spec,
                                  char *err, size_t errlen)
{
  bool spec_empty = !spec || !*spec;

  *set_spec = false;
  if (meta && *meta) {
    *set_spec = spec_empty;
    return spec_empty ? meta : spec;
  }
  if (!spec_empty)
    return spec;
  snprintf(err, errlen, "cloud provider does not set node provider ID for "
           "node %s", node_name ? node_name : "");
  return NULL;
}

/* ---- the Node object ------------------------------------------------- */

static cJSON *node_json_obj(cJSON *parent, const char *name)
{
  cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, name);

  if (cJSON_IsObject(o))
    return o;
  if (o)
    cJSON_DeleteItemFromObjectCaseSensitive(parent, name);
  return cJSON_AddObjectToObject(parent, name);
}

int node_json_taint_remove(cJSON *node, const char *key)
{
  cJSON *spec = cJSON_GetObjectItemCaseSensitive(node, "spec");
  cJSON *taints = cJSON_GetObjectItemCaseSensitive(spec, "taints");
  int removed = 0;
  int i = 0;

  if (!cJSON_IsArray(taints))
    return 0;
  while (i < cJSON_GetArraySize(taints)) {
    cJSON *t = cJSON_GetArrayItem(taints, i);
    cJSON *k = cJSON_GetObjectItemCaseSensitive(t, "key");

    if (cJSON_IsString(k) && strcmp(k->valuestring, key) == 0) {
      cJSON_DeleteItemFromArray(taints, i);
      removed++;
    } else {
      i++;
    }
  }
  if (removed && cJSON_GetArraySize(taints) == 0)
    cJSON_DeleteItemFromObjectCaseSensitive(spec, "taints");
  return removed;
}

bool node_json_has_taint(const cJSON *node, const char *key)
{
  const cJSON *spec = cJSON_GetObjectItemCaseSensitive(node, "spec");
  const cJSON *taints = cJSON_GetObjectItemCaseSensitive(spec, "taints");
  const cJSON *t;

  cJSON_ArrayForEach(t, taints) {
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(t, "key");
    if (cJSON_IsString(k) && strcmp(k->valuestring, key) == 0)
      return true;
  }
  return false;
}

int node_json_taint_add(cJSON *node, const char *key, const char *effect)
{
  cJSON *spec, *taints, *t;

  spec = node_json_obj(node, "spec");
  if (!spec)
    return -1;
  taints = cJSON_GetObjectItemCaseSensitive(spec, "taints");
  if (!cJSON_IsArray(taints)) {
    if (taints)
      cJSON_DeleteItemFromObjectCaseSensitive(spec, "taints");
    taints = cJSON_AddArrayToObject(spec, "taints");
    if (!taints)
      return -1;
  }
  cJSON_ArrayForEach(t, taints) {
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(t, "key");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(t, "effect");
    if (cJSON_IsString(k) && strcmp(k->valuestring, key) == 0 &&
        cJSON_IsString(e) && strcmp(e->valuestring, effect) == 0)
      return 0;
  }
  t = cJSON_CreateObject();
  if (!t || !cJSON_AddStringToObject(t, "key", key) ||
      !cJSON_AddStringToObject(t, "effect", effect)) {
    cJSON_Delete(t);
    return -1;
  }
  cJSON_AddItemToArray(taints, t);
  return 1;
}

int node_json_label_set(cJSON *node, const char *key, const char *value)
{
  cJSON *meta = node_json_obj(node, "metadata");
  cJSON *labels = meta ? node_json_obj(meta, "labels") : NULL;
  cJSON *v;

  if (!labels)
    return -1;
  v = cJSON_CreateString(value);
  if (!v)
    return -1;
  if (cJSON_GetObjectItemCaseSensitive(labels, key))
    return cJSON_ReplaceItemInObjectCaseSensitive(labels, key, v) ? 0 : -1;
  return cJSON_AddItemToObject(labels, key, v) ? 0 : -1;
}

const char *node_json_label(const cJSON *node, const char *key)
{
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(node, "metadata");
  const cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, key);

  return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *node_json_provider_id(const cJSON *node)
{
  const cJSON *spec = cJSON_GetObjectItemCaseSensitive(node, "spec");
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, "providerID");

  return cJSON_IsString(v) ? v->valuestring : NULL;
}

int node_json_provider_id_set(cJSON *node, const char *id)
{
  cJSON *spec = node_json_obj(node, "spec");
  cJSON *v;

  if (!spec)
    return -1;
  v = cJSON_CreateString(id);
  if (!v)
    return -1;
  if (cJSON_GetObjectItemCaseSensitive(spec, "providerID"))
    return cJSON_ReplaceItemInObjectCaseSensitive(spec, "providerID", v) ? 0
                                                                         : -1;
  return cJSON_AddItemToObject(spec, "providerID", v) ? 0 : -1;
}

cJSON *node_json_addresses_patch(const struct node_addr *a, size_t n)
{
  cJSON *patch = cJSON_CreateObject();
  cJSON *status = patch ? cJSON_AddObjectToObject(patch, "status") : NULL;
  cJSON *list = status ? cJSON_AddArrayToObject(status, "addresses") : NULL;

  if (!list)
    goto fail;
  for (size_t i = 0; i < n; i++) {
    const char *type = node_addr_type_name(a[i].type);
    cJSON *e;

    if (!type || !a[i].address)
      goto fail;
    e = cJSON_CreateObject();
    if (!e)
      goto fail;
    cJSON_AddItemToArray(list, e);
    if (!cJSON_AddStringToObject(e, "type", type) ||
        !cJSON_AddStringToObject(e, "address", a[i].address))
      goto fail;
  }
  return patch;

fail:
  cJSON_Delete(patch);
  return NULL;
}

/* ---- lifecycle ------------------------------------------------------- */

bool node_lc_needs_probe(uint8_t ready)
{
  return ready != OBJ_COND_TRUE;
}

enum node_lc_action node_lc_when_ready(bool has_shutdown_taint)
{
  return has_shutdown_taint ? NODE_LC_UNTAINT_SHUTDOWN : NODE_LC_NOTHING;
}

enum node_lc_action node_lc_after_exists(int rc, bool exists, bool late)
{
  if (rc != CCM_OK || late)
    return NODE_LC_SKIP;
  return exists ? NODE_LC_PROBE_SHUTDOWN : NODE_LC_DELETE;
}

enum node_lc_action node_lc_after_shutdown(int rc, bool shutdown, bool late,
                                           bool has_shutdown_taint)
{
  if (rc != CCM_OK || late)
    return NODE_LC_SKIP;
  if (shutdown)
    return has_shutdown_taint ? NODE_LC_NOTHING : NODE_LC_TAINT_SHUTDOWN;
  return has_shutdown_taint ? NODE_LC_UNTAINT_SHUTDOWN : NODE_LC_NOTHING;
}
