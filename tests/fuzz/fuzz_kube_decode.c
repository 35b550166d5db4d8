/*
 * fuzz_kube_decode.c: libFuzzer target for host/kube/objects.c. Decodes
 * the input as a Node and as a Service and checks the invariants every
 * cached object keeps (valid UTF-8, sorted maps, bounded size, key).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/objects.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s)
{
  bool valid = true;

  if (s == NULL)
    return;
  obj_utf8_fixed_len(s, strlen(s), &valid);
  if (!valid || strlen(s) > CCM_OBJ_MAX_STRING * 3)
    abort();
}

static void check_kv(const struct obj_kv *v, uint32_t n)
{
  uint32_t i;

  for (i = 0; i < n; i++) {
    check_str(v[i].key);
    check_str(v[i].value);
    if (v[i].key == NULL || v[i].value == NULL)
      abort();
    if (i > 0 && strcmp(v[i - 1].key, v[i].key) > 0)
      abort();
  }
}

static void check(const struct obj_meta *m)
{
  const struct obj_node *n = obj_as_node(m);
  const struct obj_service *s = obj_as_service(m);
  char key[600];
  uint32_t i;

  if (m->size == 0 || m->size > CCM_OBJ_MAX_SIZE || m->name == NULL ||
      m->name[0] == '\0' || strchr(m->name, '/') != NULL)
    abort();
  check_str(m->name);
  check_str(m->ns);
  check_str(m->uid);
  check_str(m->resource_version);
  check_kv(m->labels, m->n_labels);
  check_kv(m->annotations, m->n_annotations);
  obj_key(m, key, sizeof(key));
  if (n != NULL) {
    check_str(n->provider_id);
    check_str(n->provided_node_ip);
    for (i = 0; i < n->n_taints; i++) {
      if (n->taints[i].key == NULL)
        abort();
      check_str(n->taints[i].value);
      check_str(n->taints[i].effect);
    }
    for (i = 0; i < n->n_addresses; i++)
      if (n->addresses[i].type == NULL || n->addresses[i].address == NULL)
        abort();
    for (i = 0; i < n->n_pod_cidrs; i++)
      check_str(n->pod_cidrs[i]);
    if (n->ready > OBJ_COND_FALSE)
      abort();
  }
  if (s != NULL) {
    if (m->ns == NULL || s->type > OBJ_SVC_OTHER)
      abort();
    for (i = 0; i < s->n_ports; i++) {
      if (s->ports[i].protocol == NULL || s->ports[i].port < 1 ||
          s->ports[i].port > 65535)
        abort();
      check_str(s->ports[i].name);
      check_str(s->ports[i].target_port);
    }
    for (i = 0; i < s->n_finalizers; i++)
      check_str(s->finalizers[i]);
    for (i = 0; i < s->n_ingress; i++) {
      check_str(s->ingress[i].ip);
      check_str(s->ingress[i].hostname);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const enum obj_kind kinds[] = {OBJ_KIND_NODE, OBJ_KIND_SERVICE};
  size_t k;

  for (k = 0; k < 2; k++) {
    struct obj_meta *m = NULL;
    char err[128];
    int rc = obj_decode_text(kinds[k], (const char *)data, size, &m, err,
                             sizeof(err));

    if (rc == OBJ_OK) {
      check(m);
      obj_ref(m);
      obj_unref(m);
      obj_unref(m);
    } else if (m != NULL || err[0] == '\0') {
      abort();
    }
  }
  return 0;
}
