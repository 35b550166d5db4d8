/*
 * conf_instances.c: the "instances" group: exists, shutdown and metadata
 * for unknown nodes (NOT_FOUND or a clean "no", never another error) and
 * for the known nodes the config names, plus batch/single consistency.
 * It must not assume anything of a node the config does not name.
 */
#include <stdio.h>
#include <string.h>

#include "conformance.h"

#define ERRLEN 600

static int need_known(const struct conf_run *run, char *why, size_t cap) {
  (void)run;
  return conf_skip(why, cap, "no conformance.known_nodes in the config file");
}

static int check_exists_unknown(struct conf_run *run, char *why, size_t cap) {
  struct conf_node n;
  char err[ERRLEN];
  bool exists = false;
  int st;

  if (!MODULE_HAS(run->mod, instance_exists))
    return conf_skip(why, cap, "module has no instance_exists");
  conf_node_unknown(run, &n);
  st = conf_instance_exists(run, &n.node, &exists, err, sizeof err);
  if (st == CCM_ERR_NOT_FOUND)
    return CONF_PASS;
  if (st != CCM_OK)
    return conf_call_fail(why, cap, "instance_exists of an unknown node", st,
                          "CCM_OK with exists=false or CCM_ERR_NOT_FOUND",
                          err);
  if (exists)
    return conf_fail(why, cap, "instance_exists says unknown node %s exists",
                     n.name);
  return CONF_PASS;
}

static int check_shutdown_unknown(struct conf_run *run, char *why,
                                  size_t cap) {
  struct conf_node n;
  char err[ERRLEN];
  bool down = false;
  int st;

  if (!MODULE_HAS(run->mod, instance_shutdown))
    return conf_skip(why, cap, "module has no instance_shutdown");
  conf_node_unknown(run, &n);
  st = conf_instance_shutdown(run, &n.node, &down, err, sizeof err);
  if (st == CCM_ERR_NOT_FOUND)
    return CONF_PASS;
  if (st != CCM_OK)
    return conf_call_fail(why, cap, "instance_shutdown of an unknown node",
                          st, "CCM_ERR_NOT_FOUND or CCM_OK with false", err);
  if (down)
    return conf_fail(why, cap, "instance_shutdown says unknown node %s is "
                     "shut down", n.name);
  return CONF_PASS;
}

static int check_metadata_unknown(struct conf_run *run, char *why,
                                  size_t cap) {
  struct conf_node n;
  struct ccm_instance_meta m = {0};
  char err[ERRLEN];
  int st;

  if (!MODULE_HAS(run->mod, instance_metadata))
    return conf_skip(why, cap, "module has no instance_metadata");
  conf_node_unknown(run, &n);
  st = conf_instance_metadata(run, &n.node, &m, err, sizeof err);
  instance_meta_clear(&m);
  if (st != CCM_ERR_NOT_FOUND)
    return conf_call_fail(why, cap, "instance_metadata of an unknown node",
                          st, "CCM_ERR_NOT_FOUND", err);
  return CONF_PASS;
}

static int check_exists_known(struct conf_run *run, char *why, size_t cap) {
  if (!MODULE_HAS(run->mod, instance_exists))
    return conf_skip(why, cap, "module has no instance_exists");
  if (run->n_known == 0)
    return need_known(run, why, cap);
  for (size_t i = 0; i < run->n_known; i++) {
    char err[ERRLEN], what[300];
    bool exists = false;
    int st = conf_instance_exists(run, &run->known[i].node, &exists, err,
                                  sizeof err);
    snprintf(what, sizeof what, "instance_exists of known node %s",
             run->known[i].name);
    if (st != CCM_OK)
      return conf_call_fail(why, cap, what, st, "CCM_OK", err);
    if (!exists)
      return conf_fail(why, cap, "%s answered exists=false", what);
  }
  return CONF_PASS;
}

static int check_shutdown_known(struct conf_run *run, char *why, size_t cap) {
  if (!MODULE_HAS(run->mod, instance_shutdown))
    return conf_skip(why, cap, "module has no instance_shutdown");
  if (run->n_known == 0)
    return need_known(run, why, cap);
  for (size_t i = 0; i < run->n_known; i++) {
    char err[ERRLEN], what[300];
    bool down = false;
    int st = conf_instance_shutdown(run, &run->known[i].node, &down, err,
                                    sizeof err);
    snprintf(what, sizeof what, "instance_shutdown of known node %s",
             run->known[i].name);
    if (st != CCM_OK)
      return conf_call_fail(why, cap, what, st, "CCM_OK", err);
  }
  return CONF_PASS;
}

static bool is_ip_type(uint32_t t) {
  return t == CCM_ADDR_EXTERNAL_IP || t == CCM_ADDR_INTERNAL_IP;
}

static bool too_long(const char *s, size_t max) {
  return s != NULL && strlen(s) > max;
}

/* What the node controller needs from metadata; false and why if not. */
static bool meta_sane(const struct conf_run *run, const char *node,
                      const struct ccm_instance_meta *m, char *why,
                      size_t cap) {
  char prefix[CCM_MAX_NAME + 8];

  snprintf(prefix, sizeof prefix, "%s://", run->prov->name);
  if (m->provider_id == NULL || strncmp(m->provider_id, prefix,
                                        strlen(prefix)) != 0) {
    snprintf(why, cap, "node %s: providerID \"%s\" does not start with "
             "\"%s\"", node, m->provider_id ? m->provider_id : "(none)",
             prefix);
    return false;
  }
  if (too_long(m->provider_id, CCM_MAX_ID) ||
      too_long(m->instance_type, CCM_MAX_NAME) ||
      too_long(m->zone, CCM_MAX_NAME) || too_long(m->region, CCM_MAX_NAME)) {
    snprintf(why, cap, "node %s: a metadata string exceeds its CCM_MAX_* "
             "bound", node);
    return false;
  }
  for (size_t i = 0; i < m->n_addresses; i++) {
    const struct meta_address *a = &m->addresses[i];
    if (a->type < CCM_ADDR_HOSTNAME || a->type > CCM_ADDR_INTERNAL_DNS) {
      snprintf(why, cap, "node %s: address %zu has type %u, outside enum "
               "ccm_address_type", node, i, a->type);
      return false;
    }
    if (a->address == NULL || a->address[0] == '\0' ||
        too_long(a->address, is_ip_type(a->type) ? CCM_MAX_ADDRESS
                                                 : CCM_MAX_NAME)) {
      snprintf(why, cap, "node %s: address %zu is empty or too long", node,
               i);
      return false;
    }
  }
  for (size_t i = 0; i < m->n_labels; i++) {
    if (m->labels[i].key == NULL || m->labels[i].key[0] == '\0' ||
        too_long(m->labels[i].key, CCM_MAX_LABEL_KEY) ||
        too_long(m->labels[i].value, CCM_MAX_LABEL_VALUE)) {
      snprintf(why, cap, "node %s: label %zu is empty or too long", node, i);
      return false;
    }
  }
  return true;
}

static int check_metadata_known(struct conf_run *run, char *why, size_t cap) {
  if (!MODULE_HAS(run->mod, instance_metadata))
    return conf_skip(why, cap, "module has no instance_metadata");
  if (run->n_known == 0)
    return need_known(run, why, cap);
  for (size_t i = 0; i < run->n_known; i++) {
    struct ccm_instance_meta m = {0};
    char err[ERRLEN], what[300];
    bool ok;
    int st = conf_instance_metadata(run, &run->known[i].node, &m, err,
                                    sizeof err);
    snprintf(what, sizeof what, "instance_metadata of known node %s",
             run->known[i].name);
    if (st != CCM_OK)
      return conf_call_fail(why, cap, what, st, "CCM_OK", err);
    conf_note(run, "%s: providerID %s, type %s, zone %s, region %s, "
              "%zu addresses", run->known[i].name,
              m.provider_id ? m.provider_id : "-",
              m.instance_type ? m.instance_type : "-", m.zone ? m.zone : "-",
              m.region ? m.region : "-", m.n_addresses);
    ok = meta_sane(run, run->known[i].name, &m, why, cap);
    instance_meta_clear(&m);
    if (!ok)
      return CONF_FAIL;
  }
  return CONF_PASS;
}

static bool opt_eq(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

static bool address_in(const struct ccm_instance_meta *m,
                       const struct meta_address *a) {
  for (size_t i = 0; i < m->n_addresses; i++)
    if (m->addresses[i].type == a->type &&
        opt_eq(m->addresses[i].address, a->address))
      return true;
  return false;
}

static bool label_in(const struct ccm_instance_meta *m,
                     const struct meta_label *l) {
  for (size_t i = 0; i < m->n_labels; i++)
    if (opt_eq(m->labels[i].key, l->key) &&
        opt_eq(m->labels[i].value, l->value))
      return true;
  return false;
}

/* Same metadata, addresses and labels compared as sets. */
static const char *meta_diff(const struct ccm_instance_meta *a,
                             const struct ccm_instance_meta *b) {
  if (!opt_eq(a->provider_id, b->provider_id))
    return "providerID";
  if (!opt_eq(a->instance_type, b->instance_type))
    return "instance type";
  if (!opt_eq(a->zone, b->zone))
    return "zone";
  if (!opt_eq(a->region, b->region))
    return "region";
  if (a->n_addresses != b->n_addresses)
    return "address count";
  for (size_t i = 0; i < a->n_addresses; i++)
    if (!address_in(b, &a->addresses[i]))
      return "addresses";
  if (a->n_labels != b->n_labels)
    return "label count";
  for (size_t i = 0; i < a->n_labels; i++)
    if (!label_in(b, &a->labels[i]))
      return "labels";
  return NULL;
}

#define BATCH_MAX 9 /* up to 8 known nodes and one unknown */

static int check_batch_consistent(struct conf_run *run, char *why,
                                  size_t cap) {
  struct conf_node unknown;
  const struct ccm_node *nodes[BATCH_MAX];
  struct ccm_instance_meta metas[BATCH_MAX];
  struct ccm_instance_meta *outs[BATCH_MAX];
  int status[BATCH_MAX];
  char err[ERRLEN], sb1[64], sb2[64];
  size_t n = 0;
  int res = CONF_FAIL, st;

  if (!MODULE_HAS(run->mod, instance_metadata_batch))
    return conf_skip(why, cap, "module has no instance_metadata_batch");
  if (!MODULE_HAS(run->mod, instance_metadata))
    return conf_fail(why, cap, "module has instance_metadata_batch but no "
                     "instance_metadata");
  memset(metas, 0, sizeof metas);
  for (size_t i = 0; i < run->n_known && n < BATCH_MAX - 1; i++)
    nodes[n++] = &run->known[i].node;
  conf_node_unknown(run, &unknown);
  nodes[n++] = &unknown.node;
  for (size_t i = 0; i < n; i++)
    outs[i] = &metas[i];

  st = conf_instance_metadata_batch(run, nodes, n, outs, status, err,
                                    sizeof err);
  if (st != CCM_OK) {
    conf_call_fail(why, cap, "instance_metadata_batch", st, "CCM_OK", err);
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    struct ccm_instance_meta single = {0};
    const char *diff;
    int s1 = conf_instance_metadata(run, nodes[i], &single, err, sizeof err);
    if (s1 != status[i]) {
      conf_fail(why, cap, "node %s: batch status %s, single call %s",
                nodes[i]->name, conf_status_str(status[i], sb1, sizeof sb1),
                conf_status_str(s1, sb2, sizeof sb2));
      instance_meta_clear(&single);
      goto done;
    }
    diff = s1 == CCM_OK ? meta_diff(&metas[i], &single) : NULL;
    instance_meta_clear(&single);
    if (diff) {
      conf_fail(why, cap, "node %s: batch and single metadata differ in %s",
                nodes[i]->name, diff);
      goto done;
    }
  }
  res = CONF_PASS;
done:
  for (size_t i = 0; i < n; i++)
    instance_meta_clear(&metas[i]);
  return res;
}

static bool instances_supported(const struct conf_run *run, char *why,
                                size_t cap) {
  if (MODULE_HAS(run->mod, instance_exists) ||
      MODULE_HAS(run->mod, instance_shutdown) ||
      MODULE_HAS(run->mod, instance_metadata) ||
      MODULE_HAS(run->mod, instance_metadata_batch))
    return true;
  snprintf(why, cap, "module has no instance operations");
  return false;
}

static const struct conf_check INSTANCE_CHECKS[] = {
    {"exists-unknown", check_exists_unknown},
    {"shutdown-unknown", check_shutdown_unknown},
    {"metadata-unknown", check_metadata_unknown},
    {"exists-known", check_exists_known},
    {"shutdown-known", check_shutdown_known},
    {"metadata-known", check_metadata_known},
    {"batch-consistent", check_batch_consistent},
    {NULL, NULL}};

const struct conf_group conf_group_instances = {"instances",
                                                instances_supported,
                                                INSTANCE_CHECKS};
