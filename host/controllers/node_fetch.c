/*
 * node_fetch.c: the node controller's one provider call: instance
 * metadata for a batch of cached Nodes through prov_instance_metadata_batch
 * (the registry falls back to one call per node for modules without it).
 * It must not write to Kubernetes or decide anything about the results.
 */
#include <string.h>

#include "controllers/node_internal.h"
#include "util/mem.h"

int node_fetch_metadata(struct node_ctrl *c, const struct obj_node *const *nodes,
                        size_t n, struct ccm_instance_meta *metas, int *status,
                        uint32_t *retry_after_ms, char *err, size_t errlen)
{
  struct node_view *views = NULL;
  const struct ccm_node **ptrs = NULL;
  struct ccm_instance_meta **outs = NULL;
  struct provider_ref ref = {0};
  struct ccm_call call;
  size_t built = 0;
  int rc;

  *retry_after_ms = 0;
  err[0] = '\0';
  for (size_t i = 0; i < n; i++)
    status[i] = CCM_ERR_INTERNAL;
  views = mem_calloc(n, sizeof(*views));
  ptrs = mem_calloc(n, sizeof(*ptrs));
  outs = mem_calloc(n, sizeof(*outs));
  if (!views || !ptrs || !outs) {
    snprintf(err, errlen, "out of memory");
    rc = CCM_ERR_INTERNAL;
    goto out;
  }
  for (; built < n; built++) {
    if (node_view_init(&views[built], nodes[built]) != 0) {
      snprintf(err, errlen, "out of memory");
      rc = CCM_ERR_INTERNAL;
      goto out;
    }
    ptrs[built] = &views[built].node;
    outs[built] = &metas[built];
  }
  rc = registry_for_nodes(c->env.reg, &ref);
  if (rc != CCM_OK) {
    snprintf(err, errlen, "no provider for nodes: %s", ccm_status_name(rc));
    goto out;
  }
  call_init(&call, c->env.call_timeout_ms);
  rc = prov_instance_metadata_batch(&ref, &call,
                                    (const struct ccm_node *const *)ptrs, n,
                                    (struct ccm_instance_meta *const *)outs,
                                    status);
  registry_release(&ref);
  atomic_fetch_add(&c->batch_calls, 1);
  atomic_fetch_add(&c->batch_nodes, n);
  if (n == 1)
    atomic_fetch_add(&c->single_batches, 1);
  if (call.has_retry_after)
    *retry_after_ms = call.retry_after_ms;
  if (rc != CCM_OK || call.error[0])
    snprintf(err, errlen, "%s%s%s", ccm_status_name(rc),
             call.error[0] ? ": " : "", call.error);
out:
  if (rc != CCM_OK) {
    for (size_t i = 0; i < n; i++)
      status[i] = rc;
  }
  for (size_t i = 0; i < built; i++)
    node_view_clear(&views[i]);
  mem_free(views);
  mem_free(ptrs);
  mem_free(outs);
  return rc;
}
