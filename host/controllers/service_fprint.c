/*
 * service_fprint.c: the input fingerprint (service_fprint.h): a canonical,
 * length-framed encoding of the provider input, hashed with XXH3-128. It
 * must not call providers or Kubernetes, and must not depend on the order
 * of sets and maps.
 */
#include "controllers/service_fprint.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Inlined: the hash of a few hundred bytes is then a short, local call. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "util/hash.h"
#include "util/mem.h"

/* Encodings start in a stack buffer: one Service with its options is a few
 * hundred bytes, so the heap is only for the node set and large Services. */
#define FP_STACK 1024
#define FP_SMALL_SET 16 /* sets sorted in a stack array up to this size */

struct fp_buf {
  unsigned char *p;
  size_t len, cap;
  bool oom, heap;
  unsigned char stack[FP_STACK];
};

static void fp_init(struct fp_buf *b)
{
  b->p = b->stack;
  b->len = 0;
  b->cap = sizeof(b->stack);
  b->oom = false;
  b->heap = false;
}

static void fp_bytes(struct fp_buf *b, const void *data, size_t n)
{
  if (b->oom)
    return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap * 2;
    unsigned char *p;

    while (cap < b->len + n)
      cap *= 2;
    p = b->heap ? mem_realloc(b->p, cap) : mem_alloc(cap);
    if (p == NULL) {
      b->oom = true;
      return;
    }
    if (!b->heap)
      memcpy(p, b->stack, b->len);
    b->p = p;
    b->cap = cap;
    b->heap = true;
  }
  if (n > 0)
    memcpy(b->p + b->len, data, n);
  b->len += n;
}

/* Big-endian, so the encoding does not depend on the host. */
static void fp_u64(struct fp_buf *b, uint64_t v)
{
  unsigned char x[8];
  int i;

  for (i = 7; i >= 0; i--) {
    x[i] = (unsigned char)(v & 0xffu);
    v >>= 8;
  }
  fp_bytes(b, x, sizeof(x));
}

/* A field tag, so that a value cannot slide into its neighbour. */
static void fp_tag(struct fp_buf *b, char tag)
{
  fp_bytes(b, &tag, 1);
}

/* NULL and "" differ: NULL is length 2^64-1. */
static void fp_str(struct fp_buf *b, const char *s)
{
  if (s == NULL) {
    fp_u64(b, UINT64_MAX);
    return;
  }
  fp_u64(b, strlen(s));
  fp_bytes(b, s, strlen(s));
}

static int fp_cmp_str(const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return (a != NULL) - (b != NULL);
  return strcmp(a, b);
}

static int fp_cmp_kv(const void *a, const void *b)
{
  const struct ccm_kv *x = *(const struct ccm_kv *const *)a;
  const struct ccm_kv *y = *(const struct ccm_kv *const *)b;
  int r = fp_cmp_str(x->key, y->key);

  return r != 0 ? r : fp_cmp_str(x->value, y->value);
}

static int fp_cmp_opt(const void *a, const void *b)
{
  const struct ccm_option_value *x = *(const struct ccm_option_value *const *)a;
  const struct ccm_option_value *y = *(const struct ccm_option_value *const *)b;

  return fp_cmp_str(x->name, y->name);
}

static int fp_cmp_node(const void *a, const void *b)
{
  const struct ccm_node *x = *(const struct ccm_node *const *)a;
  const struct ccm_node *y = *(const struct ccm_node *const *)b;
  int r = fp_cmp_str(x->name, y->name);

  return r != 0 ? r : fp_cmp_str(x->uid, y->uid);
}

/* A sorted copy of a pointer array (NULL entries dropped), in small when
 * it fits, else on the heap; NULL with *n_out 0 when empty; sets b->oom
 * on failure. Release it with fp_sorted_free. */
static const void **fp_sorted(struct fp_buf *b, const void *const *v, size_t n,
                              int (*cmp)(const void *, const void *),
                              const void *small[FP_SMALL_SET], size_t *n_out)
{
  const void **copy = small;
  size_t i, k = 0;

  *n_out = 0;
  if (v == NULL || n == 0)
    return NULL;
  if (n > FP_SMALL_SET) {
    copy = mem_calloc(n, sizeof(*copy));
    if (copy == NULL) {
      b->oom = true;
      return NULL;
    }
  }
  for (i = 0; i < n; i++)
    if (v[i] != NULL)
      copy[k++] = v[i];
  if (k > 1)
    qsort(copy, k, sizeof(*copy), cmp);
  *n_out = k;
  return copy;
}

static void fp_sorted_free(const void **sorted, const void *small[])
{
  if (sorted != small)
    mem_free(sorted);
}

static void fp_kvs(struct fp_buf *b, char tag, const struct ccm_kv *const *v,
                   size_t n)
{
  size_t i, k;
  const void *small[FP_SMALL_SET];
  const void **s =
      fp_sorted(b, (const void *const *)v, n, fp_cmp_kv, small, &k);

  fp_tag(b, tag);
  fp_u64(b, k);
  for (i = 0; i < k; i++) {
    const struct ccm_kv *kv = s[i];

    fp_str(b, kv->key);
    fp_str(b, kv->value);
  }
  fp_sorted_free(s, small);
}

static void fp_options(struct fp_buf *b,
                       const struct ccm_option_value *const *v, size_t n)
{
  size_t i, j, k;
  const void *small[FP_SMALL_SET];
  const void **s =
      fp_sorted(b, (const void *const *)v, n, fp_cmp_opt, small, &k);

  fp_tag(b, 'O');
  fp_u64(b, k);
  for (i = 0; i < k; i++) {
    const struct ccm_option_value *o = s[i];

    fp_str(b, o->name);
    fp_u64(b, o->type);
    switch (o->type) {
    case CCM_OPT_STRING:
      fp_str(b, o->string_value);
      break;
    case CCM_OPT_INT:
      fp_u64(b, (uint64_t)o->int_value);
      break;
    case CCM_OPT_BOOL:
      fp_u64(b, o->bool_value ? 1u : 0u);
      break;
    case CCM_OPT_STRING_LIST:
      fp_u64(b, o->list != NULL ? o->list_len : 0);
      for (j = 0; o->list != NULL && j < o->list_len; j++)
        fp_str(b, o->list[j]);
      break;
    default:
      break;
    }
  }
  fp_sorted_free(s, small);
}

static void fp_node(struct fp_buf *b, const struct ccm_node *nd)
{
  size_t i;

  fp_tag(b, 'N');
  fp_str(b, nd->name);
  fp_str(b, nd->uid);
  fp_str(b, nd->provider_id);
  fp_u64(b, nd->addresses != NULL ? nd->n_addresses : 0);
  for (i = 0; nd->addresses != NULL && i < nd->n_addresses; i++) {
    const struct ccm_node_address *a = nd->addresses[i];

    fp_u64(b, a != NULL ? a->type : 0);
    fp_str(b, a != NULL ? a->address : NULL);
  }
  fp_kvs(b, 'L', nd->labels, nd->n_labels);
}

static void fp_nodes(struct fp_buf *b, const struct ccm_node_list *nodes)
{
  size_t i, k = 0;
  const void *small[FP_SMALL_SET];
  const void **s = NULL;

  if (nodes != NULL)
    s = fp_sorted(b, (const void *const *)nodes->nodes, nodes->n_nodes,
                  fp_cmp_node, small, &k);
  fp_tag(b, 'n');
  fp_u64(b, k);
  for (i = 0; i < k; i++)
    fp_node(b, s[i]);
  fp_sorted_free(s, small);
}

static void fp_service(struct fp_buf *b, const struct ccm_service *svc)
{
  size_t i;

  fp_tag(b, 'S');
  fp_str(b, svc->cluster_name);
  fp_str(b, svc->namespace_);
  fp_str(b, svc->name);
  fp_str(b, svc->uid);
  fp_str(b, svc->lb_name);
  fp_str(b, svc->lb_class);
  fp_str(b, svc->load_balancer_ip);
  fp_tag(b, 'P');
  fp_u64(b, svc->ports != NULL ? svc->n_ports : 0);
  for (i = 0; svc->ports != NULL && i < svc->n_ports; i++) {
    const struct ccm_service_port *p = svc->ports[i];

    if (p == NULL) {
      fp_str(b, NULL);
      continue;
    }
    fp_str(b, p->name);
    fp_u64(b, p->protocol);
    fp_u64(b, p->port);
    fp_u64(b, p->node_port);
  }
  fp_tag(b, 'R');
  fp_u64(b, svc->source_ranges != NULL ? svc->n_source_ranges : 0);
  for (i = 0; svc->source_ranges != NULL && i < svc->n_source_ranges; i++)
    fp_str(b, svc->source_ranges[i]);
  fp_tag(b, 'F');
  fp_u64(b, svc->ip_families != NULL ? svc->n_ip_families : 0);
  for (i = 0; svc->ip_families != NULL && i < svc->n_ip_families; i++)
    fp_u64(b, svc->ip_families[i]);
  fp_tag(b, 'T');
  fp_u64(b, svc->external_traffic_local ? 1u : 0u);
  fp_u64(b, svc->health_check_node_port);
  fp_u64(b, svc->session_affinity_client_ip ? 1u : 0u);
  fp_options(b, svc->options, svc->n_options);
  fp_kvs(b, 'G', svc->tags, svc->n_tags);
}

/* Hash what b holds into out (out "" and -1 on out of memory). */
static int fp_finish(struct fp_buf *b, char out[CCM_SVC_FPRINT_HEX])
{
  XXH128_canonical_t sum;

  out[0] = '\0';
  if (!b->oom) {
    XXH128_canonicalFromHash(&sum, XXH3_128bits(b->p, b->len));
    hash_hex(sum.digest, sizeof(sum.digest), out);
  }
  if (b->heap)
    mem_free(b->p);
  return b->oom ? -1 : 0;
}

int svc_fprint_nodes(const struct ccm_node_list *nodes,
                     char digest[CCM_SVC_FPRINT_HEX])
{
  struct fp_buf b;

  fp_init(&b);
  fp_nodes(&b, nodes);
  return fp_finish(&b, digest);
}

int svc_fprint_digest(const struct ccm_service *svc,
                      const char digest[CCM_SVC_FPRINT_HEX],
                      char out[CCM_SVC_FPRINT_HEX])
{
  struct fp_buf b;

  fp_init(&b);
  fp_str(&b, CCM_SVC_FPRINT_VERSION);
  fp_service(&b, svc);
  fp_tag(&b, 'n');
  fp_str(&b, digest);
  return fp_finish(&b, out);
}

int svc_fprint(const struct ccm_service *svc,
               const struct ccm_node_list *nodes, char out[CCM_SVC_FPRINT_HEX])
{
  char digest[CCM_SVC_FPRINT_HEX];

  out[0] = '\0';
  if (svc_fprint_nodes(nodes, digest) != 0)
    return -1;
  return svc_fprint_digest(svc, digest, out);
}
