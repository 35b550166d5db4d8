/*
 * objects.c: decodes Node and Service JSON (cJSON) into compact structs,
 * each packed into one allocation by a two-pass "measure then fill"
 * arena. It must not log, keep JSON, or trust any field of its input.
 */
#include "kube/objects.h"

#include <cjson/cJSON.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

/* ---- the per-object arena ------------------------------------------------ */

/* Pass 1 (base == NULL) only counts bytes; pass 2 fills one allocation of
 * exactly that size. Both passes run the same code over the same input, so
 * they reach the same size, and make the same member lookups and string
 * copies in the same order: pass 1 records their results on tapes and
 * pass 2 replays them instead of searching and validating again. */
#define AR_TAPE 192 /* lookups and copies taped; the rest are redone */

struct ar_copy_rec {
  size_t fixed_len; /* length after UTF-8 repair */
  bool valid;       /* no repair needed */
};

struct ar_tapes {
  const cJSON *got[AR_TAPE];
  struct ar_copy_rec copied[AR_TAPE];
  size_t n_got, n_copied;     /* recorded in pass 1 */
  size_t pos_got, pos_copied; /* replayed in pass 2 */
};

struct arena {
  char *base;
  size_t used;
  size_t cap;
  int status;
  char *err;
  size_t errlen;
  struct ar_tapes *tapes; /* NULL: no recording or replay */
};

static void ar_fail(struct arena *a, const char *path, const char *why)
{
  if (a->status != OBJ_OK)
    return;
  a->status = OBJ_INVALID;
  if (a->err != NULL && a->errlen > 0)
    snprintf(a->err, a->errlen, "%s: %s", path, why);
}

static void *ar_alloc(struct arena *a, size_t size, size_t align)
{
  size_t off = (a->used + align - 1) & ~(align - 1);

  if (off + size < off || off + size > CCM_OBJ_MAX_SIZE) {
    ar_fail(a, "object", "larger than the 1 MiB cap");
    a->used = CCM_OBJ_MAX_SIZE + 1;
    return NULL;
  }
  if (a->base == NULL) {
    a->used = off + size;
    return NULL;
  }
  if (off + size > a->cap) {
    ar_fail(a, "object", "size changed between passes");
    return NULL;
  }
  a->used = off + size;
  memset(a->base + off, 0, size);
  return a->base + off;
}

/* obj_utf8_fixed_len, taped in pass 1 and replayed in pass 2. */
static size_t ar_utf8_len(struct arena *a, const char *s, size_t len,
                          bool *valid)
{
  struct ar_tapes *t = a->tapes;
  size_t fixed;

  if (t != NULL && a->base != NULL && t->pos_copied < t->n_copied) {
    *valid = t->copied[t->pos_copied].valid;
    return t->copied[t->pos_copied++].fixed_len;
  }
  fixed = obj_utf8_fixed_len(s, len, valid);
  if (t != NULL && a->base == NULL && t->n_copied < AR_TAPE) {
    t->copied[t->n_copied].fixed_len = fixed;
    t->copied[t->n_copied++].valid = *valid;
  }
  return fixed;
}

/* Copy a string into the arena, repairing invalid UTF-8. */
static const char *ar_copy(struct arena *a, const char *s, size_t len,
                           const char *path)
{
  bool valid = true;
  size_t fixed;
  char *dst;

  if (len > CCM_OBJ_MAX_STRING) {
    ar_fail(a, path, "string longer than 64 KiB");
    return NULL;
  }
  fixed = ar_utf8_len(a, s, len, &valid);
  dst = ar_alloc(a, fixed + 1, 1);
  if (dst == NULL)
    return NULL;
  if (valid) {
    memcpy(dst, s, len);
    dst[len] = '\0';
  } else {
    obj_utf8_fix(dst, s, len);
  }
  return dst;
}

/* ---- well-known keys ----------------------------------------------------- */

/* Label and annotation keys most objects carry: cached as pointers to
 * these constants instead of a copy per object. Sorted by strcmp. */
static const char *const KNOWN_KEYS[] = {
    "agentpool",
    "alpha.kubernetes.io/provided-node-ip",
    "app",
    "app.kubernetes.io/component",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/name",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/version",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "beta.kubernetes.io/os",
    "chart",
    "cloud.google.com/gke-boot-disk",
    "cloud.google.com/gke-container-runtime",
    "cloud.google.com/gke-nodepool",
    "cloud.google.com/gke-os-distribution",
    "cloud.google.com/gke-provisioning",
    "cloud.google.com/l4-rbs",
    "cloud.google.com/load-balancer-type",
    "cloud.google.com/machine-family",
    "cloud.google.com/neg",
    "component",
    "eks.amazonaws.com/capacityType",
    "eks.amazonaws.com/nodegroup",
    "eks.amazonaws.com/nodegroup-image",
    "eks.amazonaws.com/sourceLaunchTemplateId",
    "eks.amazonaws.com/sourceLaunchTemplateVersion",
    "external-dns.alpha.kubernetes.io/hostname",
    "external-dns.alpha.kubernetes.io/ttl",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "helm.sh/chart",
    "heritage",
    "k8s.io/cloud-provider-aws",
    "karpenter.k8s.aws/instance-category",
    "karpenter.sh/capacity-type",
    "karpenter.sh/nodepool",
    "kubernetes.azure.com/agentpool",
    "kubernetes.azure.com/cluster",
    "kubernetes.azure.com/mode",
    "kubernetes.azure.com/os-sku",
    "kubernetes.azure.com/role",
    "kubernetes.io/arch",
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "kubernetes.io/service-name",
    "loadbalancer.openstack.org/class",
    "loadbalancer.openstack.org/flavor-id",
    "loadbalancer.openstack.org/keep-floatingip",
    "loadbalancer.openstack.org/network-id",
    "loadbalancer.openstack.org/proxy-protocol",
    "loadbalancer.openstack.org/subnet-id",
    "loadbalancer.openstack.org/timeout-client-data",
    "meta.helm.sh/release-name",
    "meta.helm.sh/release-namespace",
    "metallb.universe.tf/address-pool",
    "metallb.universe.tf/allow-shared-ip",
    "metallb.universe.tf/loadBalancerIPs",
    "networking.gke.io/internal-load-balancer-allow-global-access",
    "networking.gke.io/load-balancer-type",
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
    "node-role.kubernetes.io/worker",
    "node.kubernetes.io/exclude-from-external-load-balancers",
    "node.kubernetes.io/instance-type",
    "node.kubernetes.io/lifecycle",
    "node.kubernetes.io/windows-build",
    "prometheus.io/path",
    "prometheus.io/port",
    "prometheus.io/scrape",
    "release",
    "service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags",
    "service.beta.kubernetes.io/aws-load-balancer-backend-protocol",
    "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled",
    "service.beta.kubernetes.io/aws-load-balancer-healthcheck-path",
    "service.beta.kubernetes.io/aws-load-balancer-internal",
    "service.beta.kubernetes.io/aws-load-balancer-ip-address-type",
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type",
    "service.beta.kubernetes.io/aws-load-balancer-proxy-protocol",
    "service.beta.kubernetes.io/aws-load-balancer-scheme",
    "service.beta.kubernetes.io/aws-load-balancer-security-groups",
    "service.beta.kubernetes.io/aws-load-balancer-ssl-cert",
    "service.beta.kubernetes.io/aws-load-balancer-ssl-ports",
    "service.beta.kubernetes.io/aws-load-balancer-subnets",
    "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes",
    "service.beta.kubernetes.io/aws-load-balancer-type",
    "service.beta.kubernetes.io/azure-dns-label-name",
    "service.beta.kubernetes.io/azure-load-balancer-internal",
    "service.beta.kubernetes.io/azure-load-balancer-resource-group",
    "service.beta.kubernetes.io/azure-pip-name",
    "service.kubernetes.io/headless",
    "service.kubernetes.io/service-proxy-name",
    "service.kubernetes.io/topology-mode",
    "topology.cinder.csi.openstack.org/zone",
    "topology.ebs.csi.aws.com/zone",
    "topology.gke.io/zone",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
};

const char *obj_known_key(const char *key)
{
  size_t lo = 0;
  size_t hi = sizeof(KNOWN_KEYS) / sizeof(KNOWN_KEYS[0]);

  while (key != NULL && lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(key, KNOWN_KEYS[mid]);

    if (c == 0)
      return KNOWN_KEYS[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

size_t obj_known_keys(const char *const **out)
{
  *out = KNOWN_KEYS;
  return sizeof(KNOWN_KEYS) / sizeof(KNOWN_KEYS[0]);
}

/* ---- typed field access ---------------------------------------------------- */

enum jt { JT_STR, JT_NUM, JT_OBJ, JT_ARR, JT_BOOL, JT_STR_OR_NUM };

static bool jt_ok(const cJSON *v, enum jt t)
{
  switch (t) {
  case JT_STR:
    return cJSON_IsString(v) && v->valuestring != NULL;
  case JT_NUM:
    return cJSON_IsNumber(v);
  case JT_OBJ:
    return cJSON_IsObject(v);
  case JT_ARR:
    return cJSON_IsArray(v);
  case JT_BOOL:
    return cJSON_IsBool(v);
  case JT_STR_OR_NUM:
    return (cJSON_IsString(v) && v->valuestring != NULL) || cJSON_IsNumber(v);
  }
  return false;
}

/* The member name of obj, or NULL when absent or JSON null; a member of
 * the wrong type fails the object. */
static const cJSON *get_live(struct arena *a, const cJSON *obj,
                             const char *name, enum jt t, const char *path)
{
  const cJSON *v;

  if (obj == NULL)
    return NULL;
  v = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (v == NULL || cJSON_IsNull(v))
    return NULL;
  if (!jt_ok(v, t)) {
    ar_fail(a, path, "wrong type");
    return NULL;
  }
  return v;
}

/* get_live, taped in pass 1 and replayed in pass 2 (a wrong type fails
 * pass 1, so a replayed member always has the right type). */
static const cJSON *get(struct arena *a, const cJSON *obj, const char *name,
                        enum jt t, const char *path)
{
  struct ar_tapes *tp = a->tapes;
  const cJSON *v;

  if (tp != NULL && a->base != NULL && tp->pos_got < tp->n_got)
    return tp->got[tp->pos_got++];
  v = get_live(a, obj, name, t, path);
  if (tp != NULL && a->base == NULL && tp->n_got < AR_TAPE)
    tp->got[tp->n_got++] = v;
  return v;
}

static const char *get_str(struct arena *a, const cJSON *obj,
                           const char *name, const char *path)
{
  const cJSON *v = get(a, obj, name, JT_STR, path);

  if (v == NULL)
    return NULL;
  return ar_copy(a, v->valuestring, strlen(v->valuestring), path);
}

static bool num_int(const cJSON *v, double lo, double hi, int64_t *out)
{
  double d = v->valuedouble;

  int64_t x;

  /* NaN fails both comparisons; the range keeps the cast defined. */
  if (!(d >= lo && d <= hi))
    return false;
  x = (int64_t)d;
  if ((double)x != d)
    return false;
  *out = x;
  return true;
}

static int32_t get_i32(struct arena *a, const cJSON *obj, const char *name,
                       double lo, double hi, const char *path)
{
  const cJSON *v = get(a, obj, name, JT_NUM, path);
  int64_t x = 0;

  if (v == NULL)
    return 0;
  if (!num_int(v, lo, hi, &x)) {
    ar_fail(a, path, "number out of range");
    return 0;
  }
  return (int32_t)x;
}

static bool get_bool(struct arena *a, const cJSON *obj, const char *name,
                     const char *path)
{
  const cJSON *v = get(a, obj, name, JT_BOOL, path);

  return v != NULL && cJSON_IsTrue(v);
}

static int array_len(struct arena *a, const cJSON *arr, const char *path)
{
  int n;

  if (arr == NULL)
    return 0;
  n = cJSON_GetArraySize(arr);
  if (n < 0 || (unsigned)n > CCM_OBJ_MAX_ITEMS) {
    ar_fail(a, path, "too many entries");
    return 0;
  }
  return n;
}

/* An array of strings. */
static const char *const *get_strv(struct arena *a, const cJSON *obj,
                                   const char *name, const char *path,
                                   uint16_t *count)
{
  const cJSON *arr = get(a, obj, name, JT_ARR, path);
  const cJSON *it;
  const char **v;
  int n = array_len(a, arr, path);
  int i = 0;

  *count = 0;
  if (n == 0)
    return NULL;
  v = ar_alloc(a, (size_t)n * sizeof(*v), alignof(const char *));
  cJSON_ArrayForEach(it, arr)
  {
    const char *s;

    if (!jt_ok(it, JT_STR)) {
      ar_fail(a, path, "entry is not a string");
      return NULL;
    }
    s = ar_copy(a, it->valuestring, strlen(it->valuestring), path);
    if (v != NULL)
      v[i] = s;
    i++;
  }
  *count = (uint16_t)n;
  return v;
}

static int kv_cmp(const void *x, const void *y)
{
  const struct obj_kv *a = x;
  const struct obj_kv *b = y;

  return strcmp(a->key, b->key);
}

typedef bool kv_keep_fn(const char *key);

/* A map of strings, sorted by key; keep filters the keys (NULL = all). */
static const struct obj_kv *get_kv(struct arena *a, const cJSON *obj,
                                   const char *name, const char *path,
                                   kv_keep_fn *keep, uint32_t *count)
{
  const cJSON *map = get(a, obj, name, JT_OBJ, path);
  const cJSON *it;
  struct obj_kv *v;
  int n = 0;
  int i = 0;

  *count = 0;
  if (map == NULL)
    return NULL;
  cJSON_ArrayForEach(it, map)
  {
    if (it->string == NULL || (keep != NULL && !keep(it->string)))
      continue;
    if (!jt_ok(it, JT_STR)) {
      ar_fail(a, path, "value is not a string");
      return NULL;
    }
    n++;
  }
  if (n == 0)
    return NULL;
  if ((unsigned)n > CCM_OBJ_MAX_ITEMS) {
    ar_fail(a, path, "too many entries");
    return NULL;
  }
  v = ar_alloc(a, (size_t)n * sizeof(*v), alignof(struct obj_kv));
  cJSON_ArrayForEach(it, map)
  {
    const char *k;
    const char *s;

    if (it->string == NULL || (keep != NULL && !keep(it->string)))
      continue;
    k = obj_known_key(it->string);
    if (k == NULL)
      k = ar_copy(a, it->string, strlen(it->string), path);
    s = ar_copy(a, it->valuestring, strlen(it->valuestring), path);
    if (v != NULL) {
      v[i].key = k;
      v[i].value = s;
    }
    i++;
  }
  if (v != NULL && a->status == OBJ_OK)
    qsort(v, (size_t)n, sizeof(*v), kv_cmp);
  *count = (uint32_t)n;
  return v;
}

static bool keep_node_annotation(const char *key)
{
  return strcmp(key, CCM_OBJ_NODE_IP_ANNOTATION) == 0;
}

static bool keep_annotation(const char *key)
{
  return strcmp(key, CCM_OBJ_LAST_APPLIED) != 0;
}

/* ---- metadata -------------------------------------------------------------- */

static void decode_meta(struct arena *a, const cJSON *item, struct obj_meta *m,
                        enum obj_kind kind)
{
  const char *want = kind == OBJ_KIND_NODE ? "Node" : "Service";
  const cJSON *kindv = get(a, item, "kind", JT_STR, "kind");
  const cJSON *md = get(a, item, "metadata", JT_OBJ, "metadata");
  const cJSON *gen;
  int64_t g = 0;

  if (kindv != NULL && strcmp(kindv->valuestring, want) != 0) {
    ar_fail(a, "kind", "not the expected kind");
    return;
  }
  if (md == NULL) {
    ar_fail(a, "metadata", "missing");
    return;
  }
  m->kind = (uint8_t)kind;
  m->name = get_str(a, md, "name", "metadata.name");
  if (kind == OBJ_KIND_SERVICE)
    m->ns = get_str(a, md, "namespace", "metadata.namespace");
  m->uid = get_str(a, md, "uid", "metadata.uid");
  m->resource_version =
      get_str(a, md, "resourceVersion", "metadata.resourceVersion");
  gen = get(a, md, "generation", JT_NUM, "metadata.generation");
  if (gen != NULL && !num_int(gen, 0, 9007199254740992.0, &g))
    ar_fail(a, "metadata.generation", "number out of range");
  m->generation = g;
  m->deleting = get(a, md, "deletionTimestamp", JT_STR,
                    "metadata.deletionTimestamp") != NULL;
  m->labels = get_kv(a, md, "labels", "metadata.labels", NULL, &m->n_labels);
  m->annotations = get_kv(a, md, "annotations", "metadata.annotations",
                          kind == OBJ_KIND_NODE ? keep_node_annotation
                                                : keep_annotation,
                          &m->n_annotations);
}

/* Names must be present, non-empty and free of '/' (they form keys). */
static void check_meta(struct arena *a, const struct obj_meta *m)
{
  if (a->base == NULL || a->status != OBJ_OK)
    return;
  if (m->name == NULL || m->name[0] == '\0' || strchr(m->name, '/') != NULL)
    ar_fail(a, "metadata.name", "missing or invalid");
  else if (m->kind == OBJ_KIND_SERVICE &&
           (m->ns == NULL || m->ns[0] == '\0' || strchr(m->ns, '/') != NULL))
    ar_fail(a, "metadata.namespace", "missing or invalid");
}

/* ---- Node ------------------------------------------------------------------ */

static uint8_t cond_status(const char *s)
{
  if (s == NULL)
    return OBJ_COND_UNKNOWN;
  if (strcmp(s, "True") == 0)
    return OBJ_COND_TRUE;
  if (strcmp(s, "False") == 0)
    return OBJ_COND_FALSE;
  return OBJ_COND_UNKNOWN;
}

static void node_conditions(struct arena *a, const cJSON *status,
                            struct obj_node *n)
{
  const cJSON *arr = get(a, status, "conditions", JT_ARR, "status.conditions");
  const cJSON *c;
  int len = array_len(a, arr, "status.conditions");

  if (len == 0)
    return;
  cJSON_ArrayForEach(c, arr)
  {
    const cJSON *type;
    const cJSON *st;
    const cJSON *ltt;

    if (!cJSON_IsObject(c)) {
      ar_fail(a, "status.conditions", "entry is not an object");
      return;
    }
    type = get(a, c, "type", JT_STR, "status.conditions.type");
    st = get(a, c, "status", JT_STR, "status.conditions.status");
    if (type == NULL)
      continue;
    if (strcmp(type->valuestring, "Ready") == 0) {
      int64_t t = 0;

      n->ready = cond_status(st != NULL ? st->valuestring : NULL);
      ltt = get(a, c, "lastTransitionTime", JT_STR,
                "status.conditions.lastTransitionTime");
      if (ltt != NULL && obj_parse_time(ltt->valuestring, &t) != 0)
        ar_fail(a, "status.conditions.lastTransitionTime", "not RFC 3339");
      n->ready_transition = t;
    } else if (strcmp(type->valuestring, "NetworkUnavailable") == 0) {
      n->network_unavailable =
          cond_status(st != NULL ? st->valuestring : NULL);
      n->network_unavailable_reason =
          get_str(a, c, "reason", "status.conditions.reason");
    }
  }
}

static void node_taints(struct arena *a, const cJSON *spec, struct obj_node *n)
{
  const cJSON *arr = get(a, spec, "taints", JT_ARR, "spec.taints");
  const cJSON *t;
  struct obj_taint *v;
  int len = array_len(a, arr, "spec.taints");
  int i = 0;

  if (len == 0)
    return;
  v = ar_alloc(a, (size_t)len * sizeof(*v), alignof(struct obj_taint));
  cJSON_ArrayForEach(t, arr)
  {
    struct obj_taint tmp;

    if (!cJSON_IsObject(t)) {
      ar_fail(a, "spec.taints", "entry is not an object");
      return;
    }
    tmp.key = get_str(a, t, "key", "spec.taints.key");
    tmp.value = get_str(a, t, "value", "spec.taints.value");
    tmp.effect = get_str(a, t, "effect", "spec.taints.effect");
    if (v != NULL) {
      if (tmp.key == NULL)
        ar_fail(a, "spec.taints.key", "missing");
      v[i] = tmp;
    }
    i++;
  }
  n->taints = v;
  n->n_taints = (uint16_t)len;
}

static void node_addresses(struct arena *a, const cJSON *status,
                           struct obj_node *n)
{
  const cJSON *arr = get(a, status, "addresses", JT_ARR, "status.addresses");
  const cJSON *e;
  struct obj_address *v;
  int len = array_len(a, arr, "status.addresses");
  int i = 0;

  if (len == 0)
    return;
  v = ar_alloc(a, (size_t)len * sizeof(*v), alignof(struct obj_address));
  cJSON_ArrayForEach(e, arr)
  {
    struct obj_address tmp;

    if (!cJSON_IsObject(e)) {
      ar_fail(a, "status.addresses", "entry is not an object");
      return;
    }
    tmp.type = get_str(a, e, "type", "status.addresses.type");
    tmp.address = get_str(a, e, "address", "status.addresses.address");
    if (v != NULL) {
      if (tmp.type == NULL || tmp.address == NULL)
        ar_fail(a, "status.addresses", "type or address missing");
      v[i] = tmp;
    }
    i++;
  }
  n->addresses = v;
  n->n_addresses = (uint16_t)len;
}

static void decode_node(struct arena *a, const cJSON *item, struct obj_node *n)
{
  const cJSON *spec = get(a, item, "spec", JT_OBJ, "spec");
  const cJSON *status = get(a, item, "status", JT_OBJ, "status");

  decode_meta(a, item, &n->meta, OBJ_KIND_NODE);
  if (n->meta.n_annotations > 0 && n->meta.annotations != NULL)
    n->provided_node_ip = n->meta.annotations[0].value;
  n->provider_id = get_str(a, spec, "providerID", "spec.providerID");
  n->unschedulable = get_bool(a, spec, "unschedulable", "spec.unschedulable");
  node_taints(a, spec, n);
  n->pod_cidrs = get_strv(a, spec, "podCIDRs", "spec.podCIDRs", &n->n_pod_cidrs);
  if (n->n_pod_cidrs == 0) {
    const cJSON *one = get(a, spec, "podCIDR", JT_STR, "spec.podCIDR");

    if (one != NULL) {
      const char **v = ar_alloc(a, sizeof(*v), alignof(const char *));
      const char *s = ar_copy(a, one->valuestring, strlen(one->valuestring),
                              "spec.podCIDR");

      if (v != NULL)
        v[0] = s;
      n->pod_cidrs = v;
      n->n_pod_cidrs = 1;
    }
  }
  node_addresses(a, status, n);
  node_conditions(a, status, n);
}

/* ---- Service --------------------------------------------------------------- */

static uint8_t svc_type(const char *s)
{
  if (s == NULL || strcmp(s, "ClusterIP") == 0)
    return OBJ_SVC_CLUSTER_IP;
  if (strcmp(s, "NodePort") == 0)
    return OBJ_SVC_NODE_PORT;
  if (strcmp(s, "LoadBalancer") == 0)
    return OBJ_SVC_LOAD_BALANCER;
  if (strcmp(s, "ExternalName") == 0)
    return OBJ_SVC_EXTERNAL_NAME;
  return OBJ_SVC_OTHER;
}

static const char *port_target(struct arena *a, const cJSON *p)
{
  const cJSON *v = get(a, p, "targetPort", JT_STR_OR_NUM, "spec.ports.targetPort");
  char num[24];
  int64_t x = 0;

  if (v == NULL)
    return NULL;
  if (cJSON_IsString(v))
    return ar_copy(a, v->valuestring, strlen(v->valuestring),
                   "spec.ports.targetPort");
  if (!num_int(v, 0, 65535, &x)) {
    ar_fail(a, "spec.ports.targetPort", "number out of range");
    return NULL;
  }
  snprintf(num, sizeof(num), "%lld", (long long)x);
  return ar_copy(a, num, strlen(num), "spec.ports.targetPort");
}

static void svc_ports(struct arena *a, const cJSON *spec, struct obj_service *s)
{
  const cJSON *arr = get(a, spec, "ports", JT_ARR, "spec.ports");
  const cJSON *p;
  struct obj_port *v;
  int len = array_len(a, arr, "spec.ports");
  int i = 0;

  if (len == 0)
    return;
  v = ar_alloc(a, (size_t)len * sizeof(*v), alignof(struct obj_port));
  cJSON_ArrayForEach(p, arr)
  {
    struct obj_port tmp;

    if (!cJSON_IsObject(p)) {
      ar_fail(a, "spec.ports", "entry is not an object");
      return;
    }
    tmp.name = get_str(a, p, "name", "spec.ports.name");
    tmp.protocol = get_str(a, p, "protocol", "spec.ports.protocol");
    if (tmp.protocol == NULL)
      tmp.protocol = "TCP"; /* the API default; static, not in the arena */
    tmp.target_port = port_target(a, p);
    tmp.app_protocol = get_str(a, p, "appProtocol", "spec.ports.appProtocol");
    tmp.port = get_i32(a, p, "port", 1, 65535, "spec.ports.port");
    tmp.node_port = get_i32(a, p, "nodePort", 0, 65535, "spec.ports.nodePort");
    if (tmp.port == 0) /* required by the API; 0 when absent */
      ar_fail(a, "spec.ports.port", "missing");
    if (v != NULL)
      v[i] = tmp;
    i++;
  }
  s->ports = v;
  s->n_ports = (uint16_t)len;
}

static void svc_ingress(struct arena *a, const cJSON *status,
                        struct obj_service *s)
{
  const cJSON *lb = get(a, status, "loadBalancer", JT_OBJ,
                        "status.loadBalancer");
  const cJSON *arr = get(a, lb, "ingress", JT_ARR, "status.loadBalancer.ingress");
  const cJSON *e;
  struct obj_ingress *v;
  int len = array_len(a, arr, "status.loadBalancer.ingress");
  int i = 0;

  if (len == 0)
    return;
  v = ar_alloc(a, (size_t)len * sizeof(*v), alignof(struct obj_ingress));
  cJSON_ArrayForEach(e, arr)
  {
    struct obj_ingress tmp;

    if (!cJSON_IsObject(e)) {
      ar_fail(a, "status.loadBalancer.ingress", "entry is not an object");
      return;
    }
    tmp.ip = get_str(a, e, "ip", "status.loadBalancer.ingress.ip");
    tmp.hostname = get_str(a, e, "hostname",
                           "status.loadBalancer.ingress.hostname");
    tmp.ip_mode = get_str(a, e, "ipMode", "status.loadBalancer.ingress.ipMode");
    if (v != NULL)
      v[i] = tmp;
    i++;
  }
  s->ingress = v;
  s->n_ingress = (uint16_t)len;
}

static void decode_service(struct arena *a, const cJSON *item,
                           struct obj_service *s)
{
  const cJSON *md = get(a, item, "metadata", JT_OBJ, "metadata");
  const cJSON *spec = get(a, item, "spec", JT_OBJ, "spec");
  const cJSON *status = get(a, item, "status", JT_OBJ, "status");
  const cJSON *sac = get(a, spec, "sessionAffinityConfig", JT_OBJ,
                         "spec.sessionAffinityConfig");
  const cJSON *cip = get(a, sac, "clientIP", JT_OBJ,
                         "spec.sessionAffinityConfig.clientIP");

  decode_meta(a, item, &s->meta, OBJ_KIND_SERVICE);
  s->finalizers = get_strv(a, md, "finalizers", "metadata.finalizers",
                           &s->n_finalizers);
  s->type_name = get_str(a, spec, "type", "spec.type");
  s->type = svc_type(s->type_name);
  s->lb_class = get_str(a, spec, "loadBalancerClass", "spec.loadBalancerClass");
  s->lb_ip = get_str(a, spec, "loadBalancerIP", "spec.loadBalancerIP");
  s->source_ranges = get_strv(a, spec, "loadBalancerSourceRanges",
                              "spec.loadBalancerSourceRanges",
                              &s->n_source_ranges);
  s->external_ips = get_strv(a, spec, "externalIPs", "spec.externalIPs",
                             &s->n_external_ips);
  s->ip_families = get_strv(a, spec, "ipFamilies", "spec.ipFamilies",
                            &s->n_ip_families);
  svc_ports(a, spec, s);
  s->external_traffic_policy = get_str(a, spec, "externalTrafficPolicy",
                                       "spec.externalTrafficPolicy");
  s->health_check_node_port = get_i32(a, spec, "healthCheckNodePort", 0,
                                      65535, "spec.healthCheckNodePort");
  s->session_affinity = get_str(a, spec, "sessionAffinity",
                                "spec.sessionAffinity");
  s->session_affinity_timeout =
      get_i32(a, cip, "timeoutSeconds", 0, 2147483647.0,
              "spec.sessionAffinityConfig.clientIP.timeoutSeconds");
  svc_ingress(a, status, s);
}

/* ---- decode entry points ----------------------------------------------------- */

static void decode_pass(struct arena *a, enum obj_kind kind, const cJSON *item,
                        struct obj_meta **obj)
{
  union {
    struct obj_node n;
    struct obj_service s;
  } scratch;
  size_t size = kind == OBJ_KIND_NODE ? sizeof(struct obj_node)
                                      : sizeof(struct obj_service);
  void *mem = ar_alloc(a, size, alignof(max_align_t));

  /* While measuring, the fields land in a scratch copy nobody reads. */
  if (mem == NULL) {
    memset(&scratch, 0, sizeof(scratch));
    mem = &scratch;
  }
  if (kind == OBJ_KIND_NODE)
    decode_node(a, item, mem);
  else
    decode_service(a, item, mem);
  check_meta(a, mem);
  *obj = a->base != NULL ? mem : NULL;
}

int obj_decode(enum obj_kind kind, const cJSON *item, struct obj_meta **out,
               char *err, size_t errlen)
{
  struct ar_tapes tapes;
  struct arena a = {.status = OBJ_OK, .err = err, .errlen = errlen,
                    .tapes = &tapes};
  struct obj_meta *obj = NULL;
  size_t size;

  *out = NULL;
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (kind != OBJ_KIND_NODE && kind != OBJ_KIND_SERVICE) {
    ar_fail(&a, "kind", "unknown kind");
    return a.status;
  }
  if (!cJSON_IsObject(item)) {
    ar_fail(&a, "object", "not a JSON object");
    return a.status;
  }
  tapes.n_got = tapes.n_copied = 0;
  tapes.pos_got = tapes.pos_copied = 0;
  decode_pass(&a, kind, item, &obj);
  if (a.status != OBJ_OK)
    return a.status;
  size = a.used;
  a.base = mem_alloc(size);
  if (a.base == NULL) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "out of memory");
    return OBJ_NOMEM;
  }
  a.cap = size;
  a.used = 0;
  decode_pass(&a, kind, item, &obj);
  if (a.status != OBJ_OK || a.used != size) {
    ar_fail(&a, "object", "size changed between passes");
    mem_free(a.base);
    return a.status;
  }
  obj->size = (uint32_t)size;
  atomic_init(&obj->refs, 1);
  *out = obj;
  return OBJ_OK;
}

int obj_decode_text(enum obj_kind kind, const char *text, size_t len,
                    struct obj_meta **out, char *err, size_t errlen)
{
  const char *end = NULL;
  cJSON *root;
  int rc;

  *out = NULL;
  root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  /* Trailing bytes other than white space make the text malformed. */
  while (root != NULL && end != NULL && end < text + len &&
         (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
    end++;
  if (root != NULL && end != NULL && end < text + len && *end != '\0') {
    cJSON_Delete(root);
    root = NULL;
  }
  if (root == NULL) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "malformed JSON");
    return OBJ_INVALID;
  }
  rc = obj_decode(kind, root, out, err, errlen);
  cJSON_Delete(root);
  return rc;
}

/* ---- references and lookups ------------------------------------------------ */

struct obj_meta *obj_ref(const struct obj_meta *obj)
{
  struct obj_meta *m = (struct obj_meta *)obj;

  if (m != NULL)
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
  return m;
}

void obj_unref(const struct obj_meta *obj)
{
  struct obj_meta *m = (struct obj_meta *)obj;

  if (m == NULL)
    return;
  if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
    mem_free(m);
}

const struct obj_node *obj_as_node(const struct obj_meta *obj)
{
  if (obj == NULL || obj->kind != OBJ_KIND_NODE)
    return NULL;
  return (const struct obj_node *)obj;
}

const struct obj_service *obj_as_service(const struct obj_meta *obj)
{
  if (obj == NULL || obj->kind != OBJ_KIND_SERVICE)
    return NULL;
  return (const struct obj_service *)obj;
}

static const char *kv_find(const struct obj_kv *v, uint32_t n, const char *key)
{
  uint32_t lo = 0;
  uint32_t hi = n;

  if (v == NULL || key == NULL)
    return NULL;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int c = strcmp(key, v[mid].key);

    if (c == 0)
      return v[mid].value;
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

const char *obj_label(const struct obj_meta *obj, const char *key)
{
  return obj == NULL ? NULL : kv_find(obj->labels, obj->n_labels, key);
}

const char *obj_annotation(const struct obj_meta *obj, const char *key)
{
  return obj == NULL ? NULL
                     : kv_find(obj->annotations, obj->n_annotations, key);
}

const struct obj_taint *obj_node_taint(const struct obj_node *n,
                                       const char *key)
{
  uint16_t i;

  if (n == NULL || key == NULL)
    return NULL;
  for (i = 0; i < n->n_taints; i++)
    if (strcmp(n->taints[i].key, key) == 0)
      return &n->taints[i];
  return NULL;
}

bool obj_service_has_finalizer(const struct obj_service *s, const char *f)
{
  uint16_t i;

  if (s == NULL || f == NULL)
    return false;
  for (i = 0; i < s->n_finalizers; i++)
    if (strcmp(s->finalizers[i], f) == 0)
      return true;
  return false;
}

int obj_key(const struct obj_meta *obj, char *buf, size_t cap)
{
  int n;

  if (obj == NULL || obj->name == NULL)
    return -1;
  if (obj->ns != NULL)
    n = snprintf(buf, cap, "%s/%s", obj->ns, obj->name);
  else
    n = snprintf(buf, cap, "%s", obj->name);
  if (n < 0 || (size_t)n >= cap)
    return -1;
  return n;
}

/* ---- UTF-8 and time -------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
  unsigned char c = s[0];

  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    return left >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    unsigned char hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */

    if (left < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80)
      return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;

    if (left < 4 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 ||
        (s[3] & 0xC0) != 0x80)
      return 0;
    return 4;
  }
  return 0;
}

size_t obj_utf8_fixed_len(const char *s, size_t len, bool *was_valid)
{
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  size_t out = 0;
  bool valid = true;

  while (i < len) {
    size_t k = utf8_seq(u + i, len - i);

    if (k == 0) {
      valid = false;
      out += 3; /* U+FFFD, as Go's encoder does for each bad byte */
      i++;
    } else {
      out += k;
      i += k;
    }
  }
  if (was_valid != NULL)
    *was_valid = valid;
  return out;
}

void obj_utf8_fix(char *dst, const char *s, size_t len)
{
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  size_t o = 0;

  while (i < len) {
    size_t k = utf8_seq(u + i, len - i);

    if (k == 0) {
      dst[o++] = (char)0xEF;
      dst[o++] = (char)0xBF;
      dst[o++] = (char)0xBD;
      i++;
    } else {
      memcpy(dst + o, s + i, k);
      o += k;
      i += k;
    }
  }
  dst[o] = '\0';
}

static bool digits(const char *s, int n, int *out)
{
  int v = 0;
  int i;

  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
  int64_t era;
  int64_t yoe;
  int64_t doy;
  int64_t doe;

  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int obj_parse_time(const char *s, int64_t *out)
{
  int y, mo, d, h, mi, se;
  int oh = 0;
  int om = 0;
  int sign = 0;
  const char *p;

  if (s == NULL || strlen(s) < 20)
    return -1;
  if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
      s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
      !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) ||
      s[16] != ':' || !digits(s + 17, 2, &se))
    return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
    return -1;
  p = s + 19;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9')
      return -1;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    sign = *p == '+' ? 1 : -1;
    if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) ||
        oh > 23 || om > 59)
      return -1;
    p += 6;
  } else {
    return -1;
  }
  if (*p != '\0')
    return -1;
  *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
         sign * (oh * 3600 + om * 60);
  return 0;
}
