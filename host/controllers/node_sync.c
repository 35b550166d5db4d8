/*
 * node_sync.c: one Node's sync in the cloud node controller: initialise a
 * Node that carries the uninitialized taint from its metadata (section 3
 * steps 5-7), or reconcile the GA labels of an initialised one (step 2).
 * It must not call the provider (node.c fetches metadata) or hold locks.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "controllers/node_internal.h"
#include "kube/writes.h"
#include "util/log.h"
#include "util/mem.h"

#define CCM_NODE_UPDATE_TRIES 20 /* upstream UpdateNodeSpecBackoff steps */

struct node_init_plan {
  struct node_ctrl *c;
  const char *name;
  const char *provider_id;      /* to write, or NULL */
  struct node_label_set *labels;
  size_t n_labels;
  double created;               /* creationTimestamp, Unix s; 0 unknown */
  bool already;                 /* the fresh copy had no taint: no write */
};

static int node_init_mutate(cJSON *obj, void *ud)
{
  struct node_init_plan *p = ud;
  const cJSON *ts;
  int64_t t;

  if (!runtime_is_leader(p->c->env.rt))
    return KUBE_FORBIDDEN; /* no longer the leader: give up, no write */
  /* Initialised since the cached copy was read (our own earlier pass
   * whose watch event is still on its way): nothing to write. */
  if (!node_json_has_taint(obj, CCM_NODE_TAINT_UNINITIALIZED)) {
    p->already = true;
    return 1;
  }
  if (p->provider_id) {
    const char *cur = node_json_provider_id(obj);
    if ((!cur || !*cur) && node_json_provider_id_set(obj, p->provider_id) != 0)
      return KUBE_ERROR;
  }
  for (size_t i = 0; i < p->n_labels; i++) {
    bool conflict;
    const char *cur = node_json_label(obj, p->labels[i].key);

    if (!node_label_should_set(&p->labels[i], cur, &conflict)) {
      if (conflict)
        log_msg(CCM_LOG_WARN, CCM_NODE_LOG, "node %s has label %s with value "
                "%s, skipping setting it to %s", p->name, p->labels[i].key,
                cur, p->labels[i].value);
      continue;
    }
    if (node_json_label_set(obj, p->labels[i].key, p->labels[i].value) != 0)
      return KUBE_ERROR;
  }
  node_json_taint_remove(obj, CCM_NODE_TAINT_UNINITIALIZED);
  ts = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "creationTimestamp");
  if (cJSON_IsString(ts) && obj_parse_time(ts->valuestring, &t) == 0)
    p->created = (double)t;
  return 0;
}

/* The node_labels policy hook: extra labels for a Node being initialised,
 * filtered below with the provider's. A failure (or a rejection) fails
 * this initialisation, which is retried: a fixed policy takes over after
 * a reload, and no Node is initialised without the labels it asks for. */
static int node_policy_labels(struct node_ctrl *c, const struct obj_node *n,
                              const struct ccm_instance_meta *m,
                              struct policy_kvs **out, char *err,
                              size_t errlen)
{
  struct ccm_kv *kvs = NULL;
  const struct ccm_kv **kv_ptrs = NULL;
  struct policy_node_meta pm;
  struct provider_ref ref = {0};
  struct policy_error pe;
  struct policy_ctx ctx;
  int rc;

  *out = NULL;
  if (c->env.policy == NULL)
    return 0;
  kvs = mem_calloc(m->n_labels ? m->n_labels : 1, sizeof(*kvs));
  kv_ptrs = mem_calloc(m->n_labels ? m->n_labels : 1, sizeof(*kv_ptrs));
  if (kvs == NULL || kv_ptrs == NULL) {
    snprintf(err, errlen, "out of memory");
    rc = -1;
    goto out;
  }
  for (size_t i = 0; i < m->n_labels; i++) {
    kvs[i].struct_size = sizeof(kvs[i]);
    kvs[i].key = m->labels[i].key;
    kvs[i].value = m->labels[i].value;
    kv_ptrs[i] = &kvs[i];
  }
  memset(&pm, 0, sizeof(pm));
  pm.provider_id = m->provider_id;
  pm.instance_type = m->instance_type;
  pm.zone = m->zone;
  pm.region = m->region;
  pm.labels = kv_ptrs;
  pm.n_labels = m->n_labels;
  memset(&ctx, 0, sizeof(ctx));
  ctx.cluster_name = c->env.cluster_name;
  if (registry_for_nodes(c->env.reg, &ref) == CCM_OK) {
    ctx.provider_name = registry_ref_name(&ref);
    ctx.provider = ref.gen->mod->provider;
  }
  memset(&pe, 0, sizeof(pe));
  rc = policy_node_labels(c->env.policy, n, &pm, &ctx, out, &pe);
  registry_release(&ref);
  if (rc == POLICY_OK || rc == POLICY_DEFAULT) {
    rc = 0;
  } else {
    char line[CCM_MAX_ERROR];

    policy_error_format(&pe, line, sizeof(line));
    snprintf(err, errlen, "%s", line);
    rc = -1;
  }
out:
  mem_free(kvs);
  mem_free(kv_ptrs);
  return rc;
}

static void node_observe_since(struct node_histo *h, double created)
{
  double now = (double)time(NULL);

  if (created > 0)
    node_histo_observe(h, now > created ? now - created : 0);
}

int node_sync_init(struct node_ctrl *c, const struct obj_node *n,
                   const struct ccm_instance_meta *m, char *err,
                   size_t errlen)
{
  struct node_init_plan plan = {.c = c, .name = n->meta.name};
  struct node_addr *cloud = NULL, *scratch = NULL;
  const char **keys = NULL, **values = NULL;
  struct policy_kvs *extra = NULL;
  size_t n_cloud = 0, dropped = 0, n_keys = 0;
  bool set_spec = false;
  const char *pid;
  char path[512], msg[256];
  struct kube_object_ref ref;
  int rc = -1, st;

  pid = node_provider_id_pick(n->provider_id, m->provider_id, n->meta.name,
                              &set_spec, err, errlen);
  if (!pid)
    goto fail;
  plan.provider_id = set_spec ? pid : NULL;
  if (node_addrs_from_meta(m, &cloud, &n_cloud) != 0)
    goto nomem;
  if (n->provided_node_ip) {
    char why[256];
    scratch = mem_calloc(n_cloud ? n_cloud : 1, sizeof(*scratch));
    if (!scratch)
      goto nomem;
    if (node_addresses_from_node_ip(n->provided_node_ip, cloud, n_cloud,
                                    scratch, why, sizeof(why)) < 0) {
      snprintf(err, errlen, "provided node ip for node \"%s\" is not valid: "
               "%s", n->meta.name, why);
      goto fail;
    }
  }
  if (node_policy_labels(c, n, m, &extra, err, errlen) != 0)
    goto fail;
  n_keys = m->n_labels + (extra != NULL ? extra->n : 0);
  keys = mem_calloc(n_keys + 1, sizeof(*keys));
  values = mem_calloc(n_keys + 1, sizeof(*values));
  plan.labels = mem_calloc(6 + n_keys, sizeof(*plan.labels));
  if (!keys || !values || !plan.labels)
    goto nomem;
  for (size_t i = 0; i < m->n_labels; i++) {
    keys[i] = m->labels[i].key;
    values[i] = m->labels[i].value;
  }
  /* The policy's labels after the provider's, through the same filter. */
  for (size_t i = 0; extra != NULL && i < extra->n; i++) {
    keys[m->n_labels + i] = extra->kvs[i]->key;
    values[m->n_labels + i] = extra->kvs[i]->value;
  }
  plan.n_labels = node_labels_from_meta(m->instance_type, m->zone, m->region,
                                        keys, values, n_keys,
                                        plan.labels, &dropped);
  if (dropped)
    atomic_fetch_add(&c->labels_dropped, dropped);
  if (kube_path(path, sizeof(path), "/api/v1", "nodes", NULL, n->meta.name,
                NULL) != 0) {
    snprintf(err, errlen, "node name too long");
    goto fail;
  }
  msg[0] = '\0';
  st = kube_update_retry(c->kc, path, NULL, false, node_init_mutate, &plan,
                         CCM_NODE_UPDATE_TRIES, NULL, msg, sizeof(msg));
  if (st != KUBE_OK) {
    atomic_fetch_add(&c->api_errors, 1);
    snprintf(err, errlen, "failed to update node %s: %s%s%s", n->meta.name,
             kube_status_name(st), msg[0] ? ": " : "", msg);
    goto fail;
  }
  if (plan.already) {
    atomic_fetch_add(&c->init_already, 1);
    log_msg(CCM_LOG_DEBUG, CCM_NODE_LOG, "node %s: already initialized",
            n->meta.name);
    rc = 0;
    goto out;
  }
  node_observe_since(&c->taint_removal_delay, plan.created);
  log_msg(CCM_LOG_INFO, CCM_NODE_LOG, "successfully initialized node %s "
          "with cloud provider (providerID %s)", n->meta.name, pid);
  {
    char aerr[256];
    /* the Node is untainted now: addresses follow at once (step 7) */
    if (node_status_update(c, n->meta.name, n, false, m, aerr,
                           sizeof(aerr)) != 0)
      log_msg(CCM_LOG_WARN, CCM_NODE_LOG, "failed to update node addresses "
              "for node %s: %s", n->meta.name, aerr);
  }
  if (c->events && runtime_is_leader(c->env.rt)) {
    node_event_ref(n, &ref);
    kube_event_emit(c->events, &ref, "Normal", "Synced",
                    "Node synced successfully");
  }
  node_observe_since(&c->initial_sync_delay, plan.created);
  atomic_fetch_add(&c->initialized, 1);
  rc = 0;
  goto out;

nomem:
  snprintf(err, errlen, "out of memory");
fail:
  rc = -1;
out:
  mem_free(cloud);
  mem_free(scratch);
  mem_free(keys);
  mem_free(values);
  mem_free(plan.labels);
  policy_kvs_free(extra);
  return rc;
}

int node_sync_labels(struct node_ctrl *c, const struct obj_node *n,
                     char *err, size_t errlen)
{
  struct node_label_set plan[3];
  size_t k = node_labels_reconcile(&n->meta, plan);
  cJSON *patch = NULL, *labels;
  char path[512], msg[256];
  int st, rc = -1;

  if (k == 0)
    return 0;
  if (!runtime_is_leader(c->env.rt))
    return 0;
  patch = cJSON_CreateObject();
  labels = patch ? cJSON_AddObjectToObject(
                       cJSON_AddObjectToObject(patch, "metadata"), "labels")
                 : NULL;
  if (!labels) {
    snprintf(err, errlen, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < k; i++) {
    if (!cJSON_AddStringToObject(labels, plan[i].key, plan[i].value)) {
      snprintf(err, errlen, "out of memory");
      goto out;
    }
  }
  if (kube_path(path, sizeof(path), "/api/v1", "nodes", NULL, n->meta.name,
                NULL) != 0) {
    snprintf(err, errlen, "node name too long");
    goto out;
  }
  msg[0] = '\0';
  st = kube_patch_merge(c->kc, path, patch, NULL, msg, sizeof(msg));
  if (st != KUBE_OK) {
    atomic_fetch_add(&c->api_errors, 1);
    snprintf(err, errlen, "failed to reconcile labels of node %s: %s%s%s",
             n->meta.name, kube_status_name(st), msg[0] ? ": " : "", msg);
    goto out;
  }
  atomic_fetch_add(&c->label_patches, 1);
  rc = 0;
out:
  cJSON_Delete(patch);
  return rc;
}
