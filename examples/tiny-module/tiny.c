/* tiny.c: the walkthrough module of abi/ABI.md. It knows a fixed list of
 * nodes from its config and answers instance calls for them; it has no
 * load balancers or routes. */
#include <stdio.h>
#include <string.h>

#include "ccm_provider.h"

struct tiny {
  const struct ccm_host_api *api; /* static in the host: safe to keep */
  struct ccm_host *host;
};

/* Config is read at call time: the host keeps it alive for the instance. */
static bool tiny_known(const struct tiny *t, const char *name)
{
  const struct ccm_config *cfg = t->api->cfg_root(t->host);
  const char *s;
  size_t n = 0;

  t->api->cfg_list_len(cfg, "nodes", &n);
  for (size_t i = 0; i < n; i++) {
    if (t->api->cfg_list_string(cfg, "nodes", i, &s) == CCM_OK &&
        strcmp(s, name) == 0)
      return true;
  }
  return false;
}

static int tiny_init(const struct ccm_host_api *api, struct ccm_host *host,
                     struct ccm_call *call, void **instance)
{
  struct tiny *t;
  size_t n = 0;

  if (api->cfg_list_len(api->cfg_root(host), "nodes", &n) != CCM_OK) {
    api->call_set_error(call, "tiny: config needs a list \"nodes\"");
    return CCM_ERR_INVALID;
  }
  t = api->calloc(1, sizeof(*t));
  if (t == NULL)
    return CCM_ERR_INTERNAL;
  t->api = api;
  t->host = host;
  api->log(host, CCM_LOG_INFO, "tiny provider ready with %zu nodes", n);
  *instance = t;
  return CCM_OK;
}

static void tiny_destroy(void *instance)
{
  struct tiny *t = instance;

  t->api->free(t);
}

static int tiny_exists(void *instance, struct ccm_call *call,
                       const struct ccm_node *node, bool *exists)
{
  (void)call;
  *exists = tiny_known(instance, node->name);
  return CCM_OK;
}

static int tiny_shutdown(void *instance, struct ccm_call *call,
                         const struct ccm_node *node, bool *shutdown)
{
  (void)call;
  if (!tiny_known(instance, node->name))
    return CCM_ERR_NOT_FOUND;
  *shutdown = false;
  return CCM_OK;
}

static int tiny_metadata(void *instance, struct ccm_call *call,
                         const struct ccm_node *node,
                         struct ccm_instance_meta *out)
{
  const struct tiny *t = instance;
  char id[CCM_MAX_ID + 1];
  int rc;

  if (!tiny_known(t, node->name)) {
    t->api->call_set_error(call, "tiny: no node %s", node->name);
    return CCM_ERR_NOT_FOUND;
  }
  snprintf(id, sizeof(id), "tiny://%s", node->name);
  rc = t->api->meta_set(out, CCM_META_PROVIDER_ID, id); /* host copies */
  if (rc == CCM_OK)
    rc = t->api->meta_add_address(out, CCM_ADDR_HOSTNAME, node->name);
  return rc;
}

static const struct ccm_provider tiny = {
  .struct_size = sizeof(struct ccm_provider),
  .name = "tiny",
  .version = "1.0.0",
  .description = "instances from a fixed list of nodes",
  .thread_safety = CCM_THREAD_SAFE,
  .init = tiny_init,
  .destroy = tiny_destroy,
  .instance_exists = tiny_exists,
  .instance_shutdown = tiny_shutdown,
  .instance_metadata = tiny_metadata,
};

CCM_EXPORT int ccm_provider_entry(struct ccm_entry *e)
{
  e->module_abi_major = CCM_ABI_MAJOR;
  e->module_abi_minor = CCM_ABI_MINOR;
  e->provider = &tiny;
  return CCM_OK;
}
