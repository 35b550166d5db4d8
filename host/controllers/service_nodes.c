/*
 * service_nodes.c: the backend-node snapshot the service controller
 * hands to providers (filtering by the stable predicates, ccm_node
 * layout, set comparison). It must not call providers or Kubernetes.
 */
#include "controllers/service_nodes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controllers/service_fprint.h"
#include "controllers/service_logic.h"
#include "util/mem.h"

static uint32_t svc_addr_type(const char *t)
{
  if (t == NULL)
    return 0;
  if (strcmp(t, "Hostname") == 0)
    return CCM_ADDR_HOSTNAME;
  if (strcmp(t, "ExternalIP") == 0)
    return CCM_ADDR_EXTERNAL_IP;
  if (strcmp(t, "InternalIP") == 0)
    return CCM_ADDR_INTERNAL_IP;
  if (strcmp(t, "ExternalDNS") == 0)
    return CCM_ADDR_EXTERNAL_DNS;
  if (strcmp(t, "InternalDNS") == 0)
    return CCM_ADDR_INTERNAL_DNS;
  return 0;
}

static int svc_node_cmp(const void *a, const void *b)
{
  const struct obj_meta *x = *(const struct obj_meta *const *)a;
  const struct obj_meta *y = *(const struct obj_meta *const *)b;

  return strcmp(x->name, y->name);
}

static void svc_nodes_free(struct svc_nodes *s)
{
  size_t i;

  if (s == NULL)
    return;
  for (i = 0; i < s->n; i++)
    obj_unref(s->objs[i]);
  mem_free(s->objs);
  mem_free(s->nodes);
  mem_free(s->ptrs);
  mem_free(s->addrs);
  mem_free(s->addr_ptrs);
  mem_free(s->labels);
  mem_free(s->label_ptrs);
  mem_free(s);
}

/* Allocate the arrays for n nodes with na addresses and nl labels. */
static int svc_nodes_alloc(struct svc_nodes *s, size_t n, size_t na,
                           size_t nl)
{
  s->nodes = mem_calloc(n ? n : 1, sizeof(*s->nodes));
  s->ptrs = mem_calloc(n ? n : 1, sizeof(*s->ptrs));
  s->addrs = mem_calloc(na ? na : 1, sizeof(*s->addrs));
  s->addr_ptrs = mem_calloc(na ? na : 1, sizeof(*s->addr_ptrs));
  s->labels = mem_calloc(nl ? nl : 1, sizeof(*s->labels));
  s->label_ptrs = mem_calloc(nl ? nl : 1, sizeof(*s->label_ptrs));
  if (!s->nodes || !s->ptrs || !s->addrs || !s->addr_ptrs || !s->labels ||
      !s->label_ptrs)
    return -1;
  return 0;
}

/* The provider's view of s->objs and its digest; -1 on out of memory. */
static int svc_nodes_fill(struct svc_nodes *s)
{
  size_t i, ai = 0, li = 0;

  for (i = 0; i < s->n; i++) {
    const struct obj_node *on = obj_as_node(s->objs[i]);
    struct ccm_node *cn = &s->nodes[i];
    uint32_t k;

    cn->struct_size = sizeof(*cn);
    cn->name = on->meta.name;
    cn->uid = on->meta.uid;
    cn->provider_id = on->provider_id;
    cn->addresses = &s->addr_ptrs[ai];
    for (k = 0; k < on->n_addresses; k++) {
      uint32_t t = svc_addr_type(on->addresses[k].type);

      if (t == 0 || on->addresses[k].address == NULL)
        continue;
      s->addrs[ai].struct_size = sizeof(s->addrs[ai]);
      s->addrs[ai].type = t;
      s->addrs[ai].address = on->addresses[k].address;
      s->addr_ptrs[ai] = &s->addrs[ai];
      ai++;
      cn->n_addresses++;
    }
    cn->labels = &s->label_ptrs[li];
    for (k = 0; k < on->meta.n_labels; k++) {
      s->labels[li].struct_size = sizeof(s->labels[li]);
      s->labels[li].key = on->meta.labels[k].key;
      s->labels[li].value = on->meta.labels[k].value;
      s->label_ptrs[li] = &s->labels[li];
      li++;
      cn->n_labels++;
    }
    s->ptrs[i] = cn;
  }
  s->list.struct_size = sizeof(s->list);
  s->list.nodes = s->ptrs;
  s->list.n_nodes = s->n;
  return svc_fprint_nodes(&s->list, s->digest);
}

int svc_nodes_build(struct store *nodes, struct svc_nodes **out)
{
  struct obj_meta **all = NULL;
  struct svc_nodes *s = NULL;
  size_t n_all = 0, i, na = 0, nl = 0;

  *out = NULL;
  s = mem_calloc(1, sizeof(*s));
  if (s == NULL)
    goto fail;
  atomic_init(&s->refs, 1);
  if (store_list(nodes, &all, &n_all) != 0)
    goto fail;
  s->objs = mem_calloc(n_all ? n_all : 1, sizeof(*s->objs));
  if (s->objs == NULL)
    goto fail;
  for (i = 0; i < n_all; i++) {
    const struct obj_node *on = obj_as_node(all[i]);

    if (on == NULL || on->meta.name == NULL || !svc_node_is_backend(on))
      continue;
    s->objs[s->n++] = obj_ref(all[i]);
    na += on->n_addresses;
    nl += on->meta.n_labels;
  }
  store_list_free(all, n_all);
  all = NULL;
  qsort(s->objs, s->n, sizeof(*s->objs), svc_node_cmp);
  if (svc_nodes_alloc(s, s->n, na, nl) != 0 || svc_nodes_fill(s) != 0)
    goto fail;
  *out = s;
  return 0;
fail:
  if (all != NULL)
    store_list_free(all, n_all);
  svc_nodes_free(s);
  return -1;
}

int svc_nodes_subset(struct svc_nodes *all, const bool *keep,
                     struct svc_nodes **out)
{
  struct svc_nodes *s;
  size_t i, na = 0, nl = 0;

  *out = NULL;
  for (i = 0; i < all->n && keep[i]; i++)
    ;
  if (i == all->n) {
    /* Every node kept: share the snapshot (and its digest). */
    *out = svc_nodes_ref(all);
    return 0;
  }
  s = mem_calloc(1, sizeof(*s));
  if (s == NULL)
    return -1;
  atomic_init(&s->refs, 1);
  s->objs = mem_calloc(all->n ? all->n : 1, sizeof(*s->objs));
  if (s->objs == NULL)
    goto fail;
  /* all is sorted by name, so the subset is too. */
  for (i = 0; i < all->n; i++) {
    const struct obj_node *on = obj_as_node(all->objs[i]);

    if (!keep[i])
      continue;
    s->objs[s->n++] = obj_ref(all->objs[i]);
    na += on->n_addresses;
    nl += on->meta.n_labels;
  }
  if (svc_nodes_alloc(s, s->n, na, nl) != 0 || svc_nodes_fill(s) != 0)
    goto fail;
  *out = s;
  return 0;
fail:
  svc_nodes_free(s);
  return -1;
}

struct svc_nodes *svc_nodes_ref(struct svc_nodes *s)
{
  if (s != NULL)
    atomic_fetch_add(&s->refs, 1);
  return s;
}

void svc_nodes_unref(struct svc_nodes *s)
{
  if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
    svc_nodes_free(s);
}

static bool svc_pid_eq(const char *a, const char *b)
{
  a = a ? a : "";
  b = b ? b : "";
  return strcmp(a, b) == 0;
}

bool svc_nodes_same(const struct svc_nodes *a, const struct svc_nodes *b)
{
  size_t na = a ? a->n : 0, nb = b ? b->n : 0, i;

  if (a == b)
    return true;
  if (na != nb)
    return false;
  for (i = 0; i < na; i++) {
    if (strcmp(a->nodes[i].name, b->nodes[i].name) != 0 ||
        !svc_pid_eq(a->nodes[i].provider_id, b->nodes[i].provider_id))
      return false;
  }
  return true;
}

void svc_nodes_names(const struct svc_nodes *s, size_t max, char *buf,
                     size_t cap)
{
  size_t i, n = s ? s->n : 0, off = 1;
  int w;

  if (cap < 3)
    return;
  /* Go's %v of upstream's loggableNodeNames: "[a b <K more>]". */
  buf[0] = '[';
  buf[1] = '\0';
  for (i = 0; i < n && i < max && off < cap; i++) {
    w = snprintf(buf + off, cap - off, "%s%s", i ? " " : "",
                 s->nodes[i].name);
    if (w < 0)
      return;
    off += (size_t)w;
  }
  if (n > max && off < cap) {
    w = snprintf(buf + off, cap - off, " <%zu more>", n - max);
    if (w > 0)
      off += (size_t)w;
  }
  if (off < cap)
    snprintf(buf + off, cap - off, "]");
}
