/*
 * node_status.c: Node addresses (section 3.1): updateNodeAddress for one
 * Node, the periodic refresh of every initialised Node in batches, and the
 * controller's periodic thread (leader take-over re-enqueues every Node).
 * It must not touch labels, taints or providerIDs.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "controllers/node_internal.h"
#include "kube/store.h"
#include "kube/writes.h"
#include "modules/host_api.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/thread.h"

#define CCM_NODE_TICK_MS 1000 /* leader check while waiting for a period */

int node_status_update(struct node_ctrl *c, const char *name,
                       const struct obj_node *n, bool tainted,
                       const struct ccm_instance_meta *m, char *err,
                       size_t errlen)
{
  struct node_addr *cloud = NULL, *cur = NULL, *merged = NULL;
  size_t n_cloud = 0, n_cur = 0, n_merged = 0;
  cJSON *patch = NULL;
  char path[512], msg[256];
  int rc = -1, st;

  if (tainted)
    return 0; /* still initialising: the init path owns it */
  if (node_addrs_from_meta(m, &cloud, &n_cloud) != 0 ||
      node_addrs_from_obj(n, &cur, &n_cur) != 0)
    goto nomem;
  merged = mem_calloc(n_cloud + n_cur + 1, sizeof(*merged));
  if (!merged)
    goto nomem;
  if (node_addresses_merge(cloud, n_cloud, cur, n_cur, n->provided_node_ip,
                           merged, &n_merged, err, errlen) != 0)
    goto fail;
  if (n_merged == 0 || !node_addresses_changed(cur, n_cur, merged, n_merged)) {
    rc = 0;
    goto out;
  }
  if (!runtime_is_leader(c->env.rt)) {
    rc = 0;
    goto out;
  }
  patch = node_json_addresses_patch(merged, n_merged);
  if (!patch)
    goto nomem;
  if (kube_path(path, sizeof(path), "/api/v1", "nodes", NULL, name, NULL) !=
      0) {
    snprintf(err, errlen, "node name too long");
    goto fail;
  }
  msg[0] = '\0';
  st = kube_patch_status(c->kc, path, patch, NULL, msg, sizeof(msg));
  if (st != KUBE_OK) {
    atomic_fetch_add(&c->api_errors, 1);
    snprintf(err, errlen, "failed to patch status of node %s: %s%s%s", name,
             kube_status_name(st), msg[0] ? ": " : "", msg);
    goto fail;
  }
  atomic_fetch_add(&c->address_patches, 1);
  rc = 0;
  goto out;

nomem:
  snprintf(err, errlen, "out of memory");
fail:
  rc = -1;
  atomic_fetch_add(&c->address_errors, 1);
out:
  cJSON_Delete(patch);
  mem_free(cloud);
  mem_free(cur);
  mem_free(merged);
  return rc;
}

/* One batch of the refresh pass. */
static void node_status_batch(struct node_ctrl *c,
                              const struct obj_node *const *nodes, size_t n)
{
  struct ccm_instance_meta *metas = mem_calloc(n, sizeof(*metas));
  int *status = mem_calloc(n, sizeof(*status));
  uint32_t retry_after;
  char err[CCM_MAX_ERROR + 64];

  if (!metas || !status)
    goto out;
  if (node_fetch_metadata(c, nodes, n, metas, status, &retry_after, err,
                          sizeof(err)) != CCM_OK)
    log_msg(CCM_LOG_WARN, CCM_NODE_LOG, "address refresh: instance metadata "
            "for %zu nodes failed: %s", n, err);
  for (size_t i = 0; i < n; i++) {
    char aerr[256];

    if (status[i] != CCM_OK) {
      atomic_fetch_add(&c->meta_errors, 1);
      continue;
    }
    if (node_status_update(c, nodes[i]->meta.name, nodes[i], false,
                           &metas[i], aerr, sizeof(aerr)) != 0)
      log_msg(CCM_LOG_WARN, CCM_NODE_LOG, "failed to update node addresses "
              "for node %s: %s", nodes[i]->meta.name, aerr);
  }
out:
  if (metas) {
    for (size_t i = 0; i < n; i++)
      instance_meta_clear(&metas[i]);
  }
  mem_free(metas);
  mem_free(status);
}

void node_status_refresh_all(struct node_ctrl *c)
{
  struct obj_meta **all = NULL;
  const struct obj_node **batch = NULL;
  size_t n = 0, k = 0;

  if (!runtime_is_leader(c->env.rt))
    return;
  if (store_list(c->store, &all, &n) != 0)
    return;
  batch = mem_calloc(c->batch_max, sizeof(*batch));
  if (!batch)
    goto out;
  for (size_t i = 0; i < n; i++) {
    const struct obj_node *node = obj_as_node(all[i]);

    if (!node || obj_node_taint(node, CCM_NODE_TAINT_UNINITIALIZED))
      continue; /* skipped while tainted, as upstream */
    batch[k++] = node;
    if (k == c->batch_max) {
      node_status_batch(c, batch, k);
      k = 0;
    }
    pthread_mutex_lock(&c->lock);
    bool stop = c->stopping;
    pthread_mutex_unlock(&c->lock);
    if (stop) {
      k = 0;
      break;
    }
  }
  if (k > 0)
    node_status_batch(c, batch, k);
  atomic_fetch_add(&c->status_passes, 1);
out:
  mem_free(batch);
  store_list_free(all, n);
}

/* A new leader has not seen the add events a standby dropped. */
static void node_enqueue_all(struct node_ctrl *c)
{
  struct obj_meta **all = NULL;
  size_t n = 0;

  if (store_list(c->store, &all, &n) != 0)
    return;
  for (size_t i = 0; i < n; i++)
    wq_add(c->q, all[i]->name);
  store_list_free(all, n);
}

void *node_status_main(void *arg)
{
  struct node_ctrl *c = arg;
  int64_t next_refresh = call_now_ms(); /* wait.Until runs at once */

  thread_name("node-status");

  pthread_mutex_lock(&c->lock);
  while (!c->stopping) {
    bool leader = runtime_is_leader(c->env.rt);
    int64_t now = call_now_ms();
    struct timespec ts;
    int64_t wake;

    pthread_mutex_unlock(&c->lock);
    if (leader && !c->was_leader) {
      log_msg(CCM_LOG_INFO, CCM_NODE_LOG, "leading: syncing every node");
      node_enqueue_all(c);
    }
    c->was_leader = leader;
    if (leader && now >= next_refresh) {
      node_status_refresh_all(c);
      next_refresh = call_now_ms() + (int64_t)c->status_period_s * 1000;
    }
    pthread_mutex_lock(&c->lock);
    if (c->stopping)
      break;
    wake = call_now_ms() + CCM_NODE_TICK_MS;
    if (leader && next_refresh < wake)
      wake = next_refresh;
    ts = thread_deadline_at(wake);
    pthread_cond_timedwait(&c->wake, &c->lock, &ts);
  }
  pthread_mutex_unlock(&c->lock);
  return NULL;
}
