/*
 * aws.c: the aws provider module: entry point, descriptor, init (config,
 * region, endpoints, cluster ID) and destroy. Its state lives in AWS; it
 * keeps only credential and lookup caches. It reaches the host only
 * through struct ccm_host_api and starts no threads.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "aws.h"

static int aws_init(const struct ccm_host_api *api, struct ccm_host *host,
                    struct ccm_call *call, void **instance);
static void aws_destroy(void *instance);

static const struct ccm_provider aws_provider = {
    .struct_size = sizeof(struct ccm_provider),
    .name = "aws",
    .version = "0.1.0",
    .description = "Amazon Web Services: Classic ELB, EC2 instances and "
                   "routes over the Query APIs (SigV4)",
    .thread_safety = CCM_THREAD_SAFE,
    .capabilities = CCM_CAP_LOAD_BALANCER | CCM_CAP_INSTANCES |
                    CCM_CAP_INSTANCES_BATCH | CCM_CAP_ROUTES,
    .options = aws_options,
    .lb_name_rules = &aws_name_rules,
    .init = aws_init,
    .destroy = aws_destroy,
    .lb_get = aws_lb_get,
    .lb_ensure = aws_lb_ensure,
    .lb_update_hosts = aws_lb_update_hosts,
    .lb_delete = aws_lb_delete,
    .instance_exists = aws_instance_exists,
    .instance_shutdown = aws_instance_shutdown,
    .instance_metadata = aws_instance_metadata,
    .instance_metadata_batch = aws_instance_metadata_batch,
    .route_list = aws_route_list,
    .route_create = aws_route_create,
    .route_delete = aws_route_delete,
};

/*
 * ccm_provider_entry: negotiation only (version and the static descriptor).
 */
CCM_EXPORT int ccm_provider_entry(struct ccm_entry *entry) {
  if (entry == NULL || entry->struct_size < offsetof(struct ccm_entry,
                                                     provider) +
                                                sizeof(entry->provider))
    return CCM_ERR_INVALID;
  entry->module_abi_major = CCM_ABI_MAJOR;
  entry->module_abi_minor = CCM_ABI_MINOR;
  entry->provider = &aws_provider;
  return CCM_OK;
}

const char *aws_cluster(const struct aws *aws, const char *fallback) {
  return aws->cluster_id != NULL ? aws->cluster_id : fallback;
}

/* Region from the IMDS instance identity document. */
static int region_from_imds(struct aws *aws, struct ccm_call *call) {
  char *doc = NULL;
  cJSON *j;
  const char *r;
  int rc = aws_imds_get(aws, call,
                        "/latest/dynamic/instance-identity/document", &doc);
  if (rc != CCM_OK)
    return rc;
  j = cJSON_Parse(doc);
  aws->api->free(doc);
  r = cJSON_GetStringValue(cJSON_GetObjectItem(j, "region"));
  if (r != NULL && r[0] != '\0')
    aws->cfg.region = aws->api->strdup(r);
  cJSON_Delete(j);
  return aws->cfg.region != NULL ? CCM_OK : CCM_ERR_INVALID;
}

/* Cluster ID from this instance's own tags (upstream self-discovery). */
static int cluster_from_self(struct aws *aws, struct ccm_call *call) {
  struct aws_instances l = {0};
  const char *ids[1];
  char *id = NULL;
  int rc, found = 0;

  rc = aws_imds_get(aws, call, "/latest/meta-data/instance-id", &id);
  if (rc != CCM_OK)
    return rc;
  ids[0] = id;
  rc = aws_describe_instances(aws, call, ids, 1, &l);
  aws->api->free(id);
  for (size_t i = 0; rc == CCM_OK && l.n == 1 && i < l.items[0].n_tags; i++) {
    const struct aws_kv *t = &l.items[0].tags[i];
    const char *cid = NULL;
    size_t plen = strlen(AWS_CLUSTER_TAG_PREFIX);
    if (strncmp(t->key, AWS_CLUSTER_TAG_PREFIX, plen) == 0 &&
        t->key[plen] != '\0' &&
        (strcmp(t->value, "owned") == 0 || strcmp(t->value, "shared") == 0))
      cid = t->key + plen;
    else if (strcmp(t->key, AWS_LEGACY_CLUSTER_TAG) == 0 && t->value[0])
      cid = t->value;
    if (cid == NULL)
      continue;
    if (found++ > 0 && strcmp(cid, aws->cluster_id) != 0) {
      aws->api->call_set_error(call, "this instance carries tags of more "
                               "than one cluster; set cluster_id");
      rc = CCM_ERR_INVALID;
      break;
    }
    if (aws->cluster_id == NULL)
      aws->cluster_id = aws->api->strdup(cid);
  }
  aws_instances_clear(aws->api, &l);
  return rc;
}

/*
 * libxml2 keeps per-thread state behind a pthread key. If a hot-swap
 * unloads this module and libxml2 with it, libxml2's own destructor deletes
 * the key, and every host worker that parsed a response leaks its state
 * (test_aws_unload under valgrind shows it). Keeping libxml2 resident
 * (RTLD_NODELETE on the copy already loaded) lets the key's destructor free
 * that state when the thread exits; later generations reuse the same copy.
 */
static void pin_libxml2(void) {
  void *h = dlopen("libxml2.so.2", RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  if (h != NULL)
    dlclose(h);
}

static int aws_init(const struct ccm_host_api *api, struct ccm_host *host,
                    struct ccm_call *call, void **instance) {
  struct aws *aws;
  char err[AWS_ERR];
  int rc;

  *instance = NULL;
  xmlCheckVersion(LIBXML_VERSION);
  xmlInitParser(); /* once per process in libxml2; required before threads */
  pin_libxml2();
  aws = api->calloc(1, sizeof(*aws));
  if (aws == NULL) {
    api->call_set_error(call, "out of memory");
    return CCM_ERR_INTERNAL;
  }
  aws->api = api;
  aws->host = host;
  pthread_mutex_init(&aws->mu, NULL);
  err[0] = '\0';
  rc = aws_config_load(api, host, &aws->cfg, err, sizeof(err));
  if (rc != CCM_OK) {
    api->call_set_error(call, "%s", err);
    goto fail;
  }
  if (aws->cfg.region == NULL) {
    rc = aws_imds_disabled(aws) ? CCM_ERR_INVALID
                                : region_from_imds(aws, call);
    if (rc != CCM_OK) {
      api->call_set_error(call, "no region: set region in the config or "
                          "Region in cloud.conf (IMDS did not tell it)");
      rc = CCM_ERR_INVALID;
      goto fail;
    }
  }
  rc = aws_config_resolve(api, &aws->cfg, err, sizeof(err));
  if (rc != CCM_OK) {
    api->call_set_error(call, "%s", err);
    goto fail;
  }
  if (aws->cfg.cluster_id != NULL) {
    aws->cluster_id = api->strdup(aws->cfg.cluster_id);
    if (aws->cluster_id == NULL) {
      rc = CCM_ERR_INTERNAL;
      goto fail;
    }
  } else if (!aws_imds_disabled(aws)) {
    rc = cluster_from_self(aws, call);
    if (rc == CCM_ERR_INVALID)
      goto fail;
  }
  if (aws->cluster_id == NULL)
    api->log(host, CCM_LOG_WARN, "no cluster ID (cluster_id, "
             "KubernetesClusterID or an instance tag): using the host's "
             "--cluster-name for tags");
  api->log(host, CCM_LOG_INFO, "region %s, EC2 %s, cluster %s%s%s",
           aws->cfg.region, aws->cfg.ep[AWS_SVC_EC2].url,
           aws->cluster_id ? aws->cluster_id : "(from --cluster-name)",
           aws->cfg.role_arn ? ", role " : "",
           aws->cfg.role_arn ? aws->cfg.role_arn : "");
  *instance = aws;
  return CCM_OK;
fail:
  aws_destroy(aws);
  return rc;
}

static void aws_destroy(void *instance) {
  struct aws *aws = instance;
  const struct ccm_host_api *api;

  if (aws == NULL)
    return;
  api = aws->api;
  aws_config_clear(api, &aws->cfg);
  aws_creds_clear(api, &aws->base);
  aws_creds_clear(api, &aws->role);
  api->free(aws->imds_token);
  api->free(aws->cluster_id);
  api->free(aws->route_table);
  pthread_mutex_destroy(&aws->mu);
  api->free(aws);
}
