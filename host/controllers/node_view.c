/*
 * node_view.c: adapters from the compact Node cache (obj_node) and from
 * provider metadata to what the node controllers pass on: a ccm_node for
 * provider calls, node_addr arrays, the Event reference. No decisions here.
 */
#include <string.h>

#include "controllers/node_internal.h"
#include "util/mem.h"

int node_view_init(struct node_view *v, const struct obj_node *n)
{
  size_t na = n->n_addresses, nl = n->meta.n_labels;

  memset(v, 0, sizeof(*v));
  v->node.struct_size = sizeof(v->node);
  v->node.name = n->meta.name;
  v->node.uid = n->meta.uid;
  v->node.provider_id = (n->provider_id && *n->provider_id) ? n->provider_id
                                                            : NULL;
  if (na > 0) {
    v->addr = mem_calloc(na, sizeof(*v->addr));
    v->addr_ptr = mem_calloc(na, sizeof(*v->addr_ptr));
    if (!v->addr || !v->addr_ptr)
      goto fail;
    for (size_t i = 0; i < na; i++) {
      uint32_t type = node_addr_type_parse(n->addresses[i].type);
      v->addr[i].struct_size = sizeof(v->addr[i]);
      v->addr[i].type = type ? type : CCM_ADDR_INTERNAL_DNS;
      v->addr[i].address = n->addresses[i].address ? n->addresses[i].address
                                                   : "";
      v->addr_ptr[i] = &v->addr[i];
    }
    v->node.addresses = v->addr_ptr;
    v->node.n_addresses = na;
  }
  if (nl > 0) {
    v->kv = mem_calloc(nl, sizeof(*v->kv));
    v->kv_ptr = mem_calloc(nl, sizeof(*v->kv_ptr));
    if (!v->kv || !v->kv_ptr)
      goto fail;
    for (size_t i = 0; i < nl; i++) {
      v->kv[i].struct_size = sizeof(v->kv[i]);
      v->kv[i].key = n->meta.labels[i].key;
      v->kv[i].value = n->meta.labels[i].value ? n->meta.labels[i].value : "";
      v->kv_ptr[i] = &v->kv[i];
    }
    v->node.labels = v->kv_ptr;
    v->node.n_labels = nl;
  }
  return 0;

fail:
  node_view_clear(v);
  return -1;
}

void node_view_clear(struct node_view *v)
{
  mem_free(v->addr);
  mem_free(v->addr_ptr);
  mem_free(v->kv);
  mem_free(v->kv_ptr);
  memset(v, 0, sizeof(*v));
}

int node_addrs_from_obj(const struct obj_node *n, struct node_addr **out,
                        size_t *count)
{
  size_t k = 0;

  *out = NULL;
  *count = 0;
  if (n->n_addresses == 0)
    return 0;
  *out = mem_calloc(n->n_addresses, sizeof(**out));
  if (!*out)
    return -1;
  for (size_t i = 0; i < n->n_addresses; i++) {
    uint32_t type = node_addr_type_parse(n->addresses[i].type);
    if (!type || !n->addresses[i].address)
      continue;
    (*out)[k].type = type;
    (*out)[k].address = n->addresses[i].address;
    k++;
  }
  *count = k;
  return 0;
}

int node_addrs_from_meta(const struct ccm_instance_meta *m,
                         struct node_addr **out, size_t *count)
{
  size_t k = 0;

  *out = NULL;
  *count = 0;
  if (m->n_addresses == 0)
    return 0;
  *out = mem_calloc(m->n_addresses, sizeof(**out));
  if (!*out)
    return -1;
  for (size_t i = 0; i < m->n_addresses; i++) {
    if (!node_addr_type_name(m->addresses[i].type) ||
        !m->addresses[i].address)
      continue;
    (*out)[k].type = m->addresses[i].type;
    (*out)[k].address = m->addresses[i].address;
    k++;
  }
  *count = k;
  return 0;
}

void node_event_ref(const struct obj_node *n, struct kube_object_ref *ref)
{
  memset(ref, 0, sizeof(*ref));
  ref->api_version = "v1";
  ref->kind = "Node";
  ref->name = n->meta.name;
  ref->uid = n->meta.uid;
}
