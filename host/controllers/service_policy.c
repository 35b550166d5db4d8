/*
 * service_policy.c: what the Lua policies decide for one Service: the
 * load-balancer name (only while none is recorded), the provider options,
 * the resource tags and the backend nodes. A rejection is permanent until
 * the Service changes; a policy error is retried, so a fixed policy takes
 * over after a reload. It must not call providers or write to Kubernetes.
 */
#include <stdio.h>
#include <string.h>

#include "controllers/service_int.h"
#include "controllers/service_logic.h"
#include "util/log.h"
#include "util/mem.h"

static void svc_policy_ctx(const struct svc_ctrl *c, const char *lb_class,
                           const struct provider_ref *ref,
                           struct policy_ctx *ctx)
{
  memset(ctx, 0, sizeof(*ctx));
  ctx->cluster_name = c->env.cluster_name;
  ctx->provider_name = registry_ref_name(ref);
  ctx->provider_class = lb_class;
  ctx->provider = ref->gen != NULL ? ref->gen->mod->provider : NULL;
}

/* POLICY_* to a result: rejections are permanent, errors retried. */
static int svc_policy_fail(int rc, const struct policy_error *pe,
                           struct svc_result *r)
{
  char line[CCM_SVC_ERR_MAX] = "the Service has no UID";

  if (pe != NULL)
    policy_error_format(pe, line, sizeof(line));
  r->out = rc == POLICY_REJECT ? SVC_OUT_PERMANENT : SVC_OUT_FAILED;
  snprintf(r->err, sizeof(r->err), "%s", line);
  if (rc == POLICY_ERROR && pe != NULL && pe->traceback[0] != '\0')
    log_msg(CCM_LOG_DEBUG, "service", "%s", pe->traceback);
  return SVC_POLICY_FAILED;
}

int svc_policy_name(struct svc_ctrl *c, const struct obj_service *s,
                    const char *lb_class, const struct provider_ref *ref,
                    char *name, size_t cap, struct svc_result *r)
{
  struct policy_error pe;
  struct policy_ctx ctx;
  int rc;

  if (c->env.policy == NULL) {
    if (svc_default_lb_name(s->meta.uid, name, cap) < 0)
      return svc_policy_fail(POLICY_ERROR, NULL, r);
    return SVC_POLICY_OK;
  }
  memset(&pe, 0, sizeof(pe));
  svc_policy_ctx(c, lb_class, ref, &ctx);
  rc = policy_lb_name(c->env.policy, s, &ctx, name, cap, &pe);
  if (rc == POLICY_OK || rc == POLICY_DEFAULT)
    return SVC_POLICY_OK;
  return svc_policy_fail(rc, &pe, r);
}

int svc_policy_inputs(struct svc_ctrl *c, const struct obj_service *s,
                      const char *lb_class, const struct provider_ref *ref,
                      struct svc_input *in, struct svc_result *r)
{
  struct policy_error pe;
  struct policy_ctx ctx;
  int rc;

  if (c->env.policy == NULL || !policy_defines_lb_inputs(c->env.policy))
    return SVC_POLICY_OK; /* no options, no tags */
  svc_policy_ctx(c, lb_class, ref, &ctx);
  rc = policy_lb_options(c->env.policy, s, &ctx, &in->opts, &pe);
  if (rc == POLICY_ELSEWHERE)
    return SVC_POLICY_ELSEWHERE;
  if (rc != POLICY_OK && rc != POLICY_DEFAULT)
    return svc_policy_fail(rc, &pe, r);
  rc = policy_resource_tags(c->env.policy, s, &ctx, &in->tags, &pe);
  if (rc != POLICY_OK && rc != POLICY_DEFAULT)
    return svc_policy_fail(rc, &pe, r);
  if (in->opts != NULL) {
    in->svc.options = in->opts->options;
    in->svc.n_options = in->opts->n;
  }
  if (in->tags != NULL) {
    in->svc.tags = in->tags->kvs;
    in->svc.n_tags = in->tags->n;
  }
  return SVC_POLICY_OK;
}

int svc_policy_backends(struct svc_ctrl *c, const struct obj_service *s,
                        const char *lb_class, const struct provider_ref *ref,
                        struct svc_nodes *all, struct svc_nodes **out,
                        struct svc_result *r)
{
  const struct obj_node **nodes = NULL;
  struct policy_error pe;
  struct policy_ctx ctx;
  bool *keep = NULL;
  size_t i, n = all->n;
  int rc = SVC_POLICY_FAILED;

  *out = NULL;
  if (c->env.policy == NULL || !policy_defines_backend_nodes(c->env.policy)) {
    *out = svc_nodes_ref(all); /* all kept: share the snapshot */
    return SVC_POLICY_OK;
  }
  nodes = mem_calloc(n ? n : 1, sizeof(*nodes));
  keep = mem_calloc(n ? n : 1, sizeof(*keep));
  if (nodes == NULL || keep == NULL) {
    r->out = SVC_OUT_FAILED;
    snprintf(r->err, sizeof(r->err), "out of memory");
    goto out;
  }
  for (i = 0; i < n; i++) {
    nodes[i] = obj_as_node(all->objs[i]);
    keep[i] = true;
  }
  svc_policy_ctx(c, lb_class, ref, &ctx);
  rc = policy_backend_nodes(c->env.policy, s, nodes, n, &ctx, keep, &pe);
  if (rc == POLICY_DEFAULT) {
    *out = svc_nodes_ref(all); /* no hook: share the snapshot */
    rc = SVC_POLICY_OK;
    goto out;
  }
  if (rc != POLICY_OK) {
    rc = svc_policy_fail(rc, &pe, r);
    goto out;
  }
  if (svc_nodes_subset(all, keep, out) != 0) {
    r->out = SVC_OUT_FAILED;
    snprintf(r->err, sizeof(r->err), "out of memory");
    rc = SVC_POLICY_FAILED;
    goto out;
  }
  rc = SVC_POLICY_OK;
out:
  mem_free(nodes);
  mem_free(keep);
  return rc;
}
