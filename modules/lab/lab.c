/*
 * lab.c: the lab provider module: entry point, descriptor, init/destroy
 * (config and state file), state export/import for hot-swap. It reaches the
 * host only through struct ccm_host_api and starts no threads.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lab.h"

#define LAB_ERR 768 /* local message buffers; call_set_error cuts at 512 */

/* ---- declarations published to the host ------------------------------ */

static const struct ccm_option_decl lab_opt_pool = {
    sizeof(struct ccm_option_decl), "pool", CCM_OPT_STRING,
    "allocate only from the pools named NAME (entries written NAME=range)",
    NULL};
static const struct ccm_option_decl lab_opt_ipv4 = {
    sizeof(struct ccm_option_decl), "ipv4-address", CCM_OPT_STRING,
    "fixed IPv4 address from a pool (like spec.loadBalancerIP; wins over it)",
    NULL};
static const struct ccm_option_decl lab_opt_ipv6 = {
    sizeof(struct ccm_option_decl), "ipv6-address", CCM_OPT_STRING,
    "fixed IPv6 address from a pool (like spec.loadBalancerIP; wins over it)",
    NULL};
static const struct ccm_option_decl *const lab_options[] = {
    &lab_opt_pool, &lab_opt_ipv4, &lab_opt_ipv6, NULL};

static const struct ccm_name_rules lab_name_rules = {
    sizeof(struct ccm_name_rules), 1, 63,
    "abcdefghijklmnopqrstuvwxyz0123456789-", "abcdefghijklmnopqrstuvwxyz",
    "abcdefghijklmnopqrstuvwxyz0123456789"};

static int lab_init(const struct ccm_host_api *api, struct ccm_host *host,
                    struct ccm_call *call, void **instance);
static void lab_destroy(void *instance);
static int lab_state_export(void *instance, struct ccm_call *call,
                            struct ccm_blob *out);
static int lab_state_import(void *instance, struct ccm_call *call,
                            const void *data, size_t len);

static const struct ccm_provider lab_provider = {
    .struct_size = sizeof(struct ccm_provider),
    .name = "lab",
    .version = "0.1.0",
    .description = "lab clusters without a cloud: load-balancer IPs from "
                   "local pools, instances from config, routes in a file",
    .thread_safety = CCM_THREAD_SAFE,
    .capabilities = CCM_CAP_LOAD_BALANCER | CCM_CAP_INSTANCES |
                    CCM_CAP_INSTANCES_BATCH | CCM_CAP_ROUTES | CCM_CAP_STATE,
    .options = lab_options,
    .lb_name_rules = &lab_name_rules,
    .init = lab_init,
    .destroy = lab_destroy,
    .lb_get = lab_lb_get,
    .lb_ensure = lab_lb_ensure,
    .lb_update_hosts = lab_lb_update_hosts,
    .lb_delete = lab_lb_delete,
    .instance_exists = lab_instance_exists,
    .instance_shutdown = lab_instance_shutdown,
    .instance_metadata = lab_instance_metadata,
    .instance_metadata_batch = lab_instance_metadata_batch,
    .route_list = lab_route_list,
    .route_create = lab_route_create,
    .route_delete = lab_route_delete,
    .state_export = lab_state_export,
    .state_import = lab_state_import,
};

/*
 * ccm_provider_entry: negotiation. Writes the module's ABI version and the
 * static descriptor; the host compares versions and refuses a different
 * major before calling anything else.
 */
CCM_EXPORT int ccm_provider_entry(struct ccm_entry *entry) {
  if (entry == NULL || entry->struct_size < offsetof(struct ccm_entry,
                                                     provider) +
                                                sizeof(entry->provider))
    return CCM_ERR_INVALID;
  entry->module_abi_major = CCM_ABI_MAJOR;
  entry->module_abi_minor = CCM_ABI_MINOR;
  entry->provider = &lab_provider;
  return CCM_OK;
}

/* ---- helpers shared by the operations -------------------------------- */

bool lab_name_in(char *const *list, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i], name) == 0)
      return true;
  return false;
}

int lab_save(struct lab *lab, char *err, size_t errlen) {
  return lab_state_write_file(&lab->state, lab->cfg.state_file, err, errlen);
}

/* ---- config ------------------------------------------------------------ */

/* Copy an optional string at path into *out (NULL when absent). */
static int cfg_dup(struct lab *lab, const struct ccm_config *cfg,
                   const char *where, const char *path, bool required,
                   char **out, char *err, size_t errlen) {
  const char *s = NULL;
  int rc = lab->api->cfg_string(cfg, path, &s);
  *out = NULL;
  if (rc == CCM_ERR_NOT_FOUND && !required)
    return CCM_OK;
  if (rc == CCM_ERR_NOT_FOUND) {
    snprintf(err, errlen, "config %s%s: required", where, path);
    return CCM_ERR_INVALID;
  }
  if (rc != CCM_OK || s == NULL) {
    snprintf(err, errlen, "config %s%s: must be a string", where, path);
    return CCM_ERR_INVALID;
  }
  if (required && s[0] == '\0') {
    snprintf(err, errlen, "config %s%s: must not be empty", where, path);
    return CCM_ERR_INVALID;
  }
  *out = lab->api->strdup(s);
  if (*out == NULL) {
    snprintf(err, errlen, "config %s%s: out of memory", where, path);
    return CCM_ERR_INTERNAL;
  }
  return CCM_OK;
}

/* Length of an optional list; *present false when the key is absent. */
static int cfg_len(struct lab *lab, const struct ccm_config *cfg,
                   const char *path, size_t *n, bool *present, char *err,
                   size_t errlen) {
  int rc = lab->api->cfg_list_len(cfg, path, n);
  *present = rc == CCM_OK;
  if (rc == CCM_ERR_NOT_FOUND) {
    *n = 0;
    return CCM_OK;
  }
  if (rc != CCM_OK) {
    snprintf(err, errlen, "config %s: must be a list", path);
    return CCM_ERR_INVALID;
  }
  return CCM_OK;
}

static int cfg_string_list(struct lab *lab, const struct ccm_config *cfg,
                           const char *path, char ***out, size_t *n_out,
                           bool *present, char *err, size_t errlen) {
  size_t n;
  int rc = cfg_len(lab, cfg, path, &n, present, err, errlen);
  if (rc != CCM_OK || n == 0)
    return rc;
  *out = lab->api->calloc(n, sizeof(**out));
  if (*out == NULL)
    goto nomem;
  for (size_t i = 0; i < n; i++) {
    const char *s = NULL;
    if (lab->api->cfg_list_string(cfg, path, i, &s) != CCM_OK || s == NULL) {
      snprintf(err, errlen, "config %s[%zu]: must be a string", path, i);
      return CCM_ERR_INVALID;
    }
    (*out)[i] = lab->api->strdup(s);
    if ((*out)[i] == NULL)
      goto nomem;
    (*n_out)++;
  }
  return CCM_OK;
nomem:
  snprintf(err, errlen, "config %s: out of memory", path);
  return CCM_ERR_INTERNAL;
}

static int cfg_pools(struct lab *lab, const struct ccm_config *cfg,
                     const char *path, uint8_t family, char *err,
                     size_t errlen) {
  size_t n;
  bool present;
  int rc = cfg_len(lab, cfg, path, &n, &present, err, errlen);
  if (rc != CCM_OK || n == 0)
    return rc;
  struct lab_pool *p = lab->api->realloc(
      lab->cfg.pools, (lab->cfg.n_pools + n) * sizeof(*p));
  if (p == NULL) {
    snprintf(err, errlen, "config %s: out of memory", path);
    return CCM_ERR_INTERNAL;
  }
  lab->cfg.pools = p;
  for (size_t i = 0; i < n; i++) {
    const char *s = NULL;
    char why[160];
    if (lab->api->cfg_list_string(cfg, path, i, &s) != CCM_OK || s == NULL) {
      snprintf(err, errlen, "config %s[%zu]: must be a string", path, i);
      return CCM_ERR_INVALID;
    }
    if (!lab_pool_parse(lab->api, s, family, &lab->cfg.pools[lab->cfg.n_pools],
                        why, sizeof(why))) {
      snprintf(err, errlen, "config %s[%zu]: \"%s\": %s", path, i, s, why);
      return CCM_ERR_INVALID;
    }
    lab->cfg.n_pools++;
  }
  return CCM_OK;
}

static int cfg_zones(struct lab *lab, const struct ccm_config *cfg,
                     char *err, size_t errlen) {
  size_t n;
  bool present;
  int rc = cfg_len(lab, cfg, "zones", &n, &present, err, errlen);
  if (rc != CCM_OK || n == 0)
    return rc;
  lab->cfg.zones = lab->api->calloc(n, sizeof(*lab->cfg.zones));
  if (lab->cfg.zones == NULL) {
    snprintf(err, errlen, "config zones: out of memory");
    return CCM_ERR_INTERNAL;
  }
  for (size_t i = 0; i < n; i++) {
    char path[48], where[48];
    const struct ccm_config *g = NULL;
    struct lab_zone_rule *z = &lab->cfg.zones[i];
    snprintf(path, sizeof(path), "zones.[%zu]", i);
    snprintf(where, sizeof(where), "zones[%zu].", i);
    if (lab->api->cfg_group(cfg, path, &g) != CCM_OK || g == NULL) {
      snprintf(err, errlen, "config zones[%zu]: must be a group", i);
      return CCM_ERR_INVALID;
    }
    lab->cfg.n_zones++;
    rc = cfg_dup(lab, g, where, "match", true, &z->match, err, errlen);
    if (rc == CCM_OK)
      rc = cfg_dup(lab, g, where, "zone", false, &z->zone, err, errlen);
    if (rc == CCM_OK)
      rc = cfg_dup(lab, g, where, "region", false, &z->region, err, errlen);
    if (rc == CCM_OK)
      rc = cfg_dup(lab, g, where, "instance_type", false, &z->instance_type,
                   err, errlen);
    if (rc != CCM_OK)
      return rc;
  }
  return CCM_OK;
}

static int check_ip(const char *ip, const char *where, const char *key,
                    char *err, size_t errlen) {
  struct lab_addr a;
  if (ip == NULL || lab_addr_parse(ip, &a))
    return CCM_OK;
  snprintf(err, errlen, "config %s%s: \"%s\" is not an IP address", where, key,
           ip);
  return CCM_ERR_INVALID;
}

static int cfg_addresses(struct lab *lab, const struct ccm_config *cfg,
                         char *err, size_t errlen) {
  size_t n;
  bool present;
  int rc = cfg_len(lab, cfg, "addresses", &n, &present, err, errlen);
  if (rc != CCM_OK || n == 0)
    return rc;
  lab->cfg.addrs = lab->api->calloc(n, sizeof(*lab->cfg.addrs));
  if (lab->cfg.addrs == NULL) {
    snprintf(err, errlen, "config addresses: out of memory");
    return CCM_ERR_INTERNAL;
  }
  for (size_t i = 0; i < n; i++) {
    char path[48], where[48];
    const struct ccm_config *g = NULL;
    struct lab_node_addr *a = &lab->cfg.addrs[i];
    snprintf(path, sizeof(path), "addresses.[%zu]", i);
    snprintf(where, sizeof(where), "addresses[%zu].", i);
    if (lab->api->cfg_group(cfg, path, &g) != CCM_OK || g == NULL) {
      snprintf(err, errlen, "config addresses[%zu]: must be a group", i);
      return CCM_ERR_INVALID;
    }
    lab->cfg.n_addrs++;
    rc = cfg_dup(lab, g, where, "node", true, &a->node, err, errlen);
    if (rc == CCM_OK)
      rc = cfg_dup(lab, g, where, "internal_ip", false, &a->internal_ip, err,
                   errlen);
    if (rc == CCM_OK)
      rc = cfg_dup(lab, g, where, "external_ip", false, &a->external_ip, err,
                   errlen);
    if (rc == CCM_OK)
      rc = cfg_dup(lab, g, where, "hostname", false, &a->hostname, err,
                   errlen);
    if (rc == CCM_OK)
      rc = check_ip(a->internal_ip, where, "internal_ip", err, errlen);
    if (rc == CCM_OK)
      rc = check_ip(a->external_ip, where, "external_ip", err, errlen);
    if (rc != CCM_OK)
      return rc;
  }
  return CCM_OK;
}

static void config_clear(const struct ccm_host_api *api,
                         struct lab_config *c) {
  api->free(c->state_file);
  for (size_t i = 0; i < c->n_pools; i++)
    lab_pool_clear(api, &c->pools[i]);
  api->free(c->pools);
  for (size_t i = 0; i < c->n_zones; i++) {
    api->free(c->zones[i].match);
    api->free(c->zones[i].zone);
    api->free(c->zones[i].region);
    api->free(c->zones[i].instance_type);
  }
  api->free(c->zones);
  api->free(c->zone);
  api->free(c->region);
  api->free(c->instance_type);
  for (size_t i = 0; i < c->n_nodes; i++)
    api->free(c->nodes[i]);
  api->free(c->nodes);
  for (size_t i = 0; i < c->n_shutdown; i++)
    api->free(c->shutdown_nodes[i]);
  api->free(c->shutdown_nodes);
  for (size_t i = 0; i < c->n_addrs; i++) {
    api->free(c->addrs[i].node);
    api->free(c->addrs[i].internal_ip);
    api->free(c->addrs[i].external_ip);
    api->free(c->addrs[i].hostname);
  }
  api->free(c->addrs);
  memset(c, 0, sizeof(*c));
}

static int config_read(struct lab *lab, char *err, size_t errlen) {
  const struct ccm_config *cfg = lab->api->cfg_root(lab->host);
  bool present;
  int rc;
  if (cfg == NULL) {
    snprintf(err, errlen, "config: the lab provider needs a config group "
                          "with at least state_file");
    return CCM_ERR_INVALID;
  }
  rc = cfg_dup(lab, cfg, "", "state_file", true, &lab->cfg.state_file, err,
               errlen);
  if (rc == CCM_OK)
    rc = cfg_pools(lab, cfg, "ipv4_pools", 4, err, errlen);
  if (rc == CCM_OK)
    rc = cfg_pools(lab, cfg, "ipv6_pools", 6, err, errlen);
  if (rc == CCM_OK)
    rc = cfg_dup(lab, cfg, "", "zone", false, &lab->cfg.zone, err, errlen);
  if (rc == CCM_OK)
    rc = cfg_dup(lab, cfg, "", "region", false, &lab->cfg.region, err,
                 errlen);
  if (rc == CCM_OK)
    rc = cfg_dup(lab, cfg, "", "instance_type", false,
                 &lab->cfg.instance_type, err, errlen);
  if (rc == CCM_OK)
    rc = cfg_zones(lab, cfg, err, errlen);
  if (rc == CCM_OK)
    rc = cfg_string_list(lab, cfg, "nodes", &lab->cfg.nodes, &lab->cfg.n_nodes,
                         &lab->cfg.has_nodes, err, errlen);
  if (rc == CCM_OK)
    rc = cfg_string_list(lab, cfg, "shutdown_nodes", &lab->cfg.shutdown_nodes,
                         &lab->cfg.n_shutdown, &present, err, errlen);
  if (rc == CCM_OK)
    rc = cfg_addresses(lab, cfg, err, errlen);
  return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

static int lab_init(const struct ccm_host_api *api, struct ccm_host *host,
                    struct ccm_call *call, void **instance) {
  char err[LAB_ERR];
  bool missing = false, mu_ready = false;
  int rc;
  struct lab *lab = api->calloc(1, sizeof(*lab));

  *instance = NULL;
  if (lab == NULL) {
    api->call_set_error(call, "lab: out of memory");
    return CCM_ERR_INTERNAL;
  }
  lab->api = api;
  lab->host = host;
  if (pthread_mutex_init(&lab->mu, NULL) != 0) {
    snprintf(err, sizeof(err), "lab: cannot create a mutex");
    rc = CCM_ERR_INTERNAL;
    goto fail;
  }
  mu_ready = true;
  rc = config_read(lab, err, sizeof(err));
  if (rc != CCM_OK)
    goto fail;
  rc = lab_state_read_file(api, lab->cfg.state_file, &lab->state, &missing,
                           err, sizeof(err));
  if (rc != CCM_OK)
    goto fail;
  if (missing) {
    /* Create the file now so an unwritable path fails here, not at the
     * first Service. */
    rc = lab_save(lab, err, sizeof(err));
    if (rc != CCM_OK)
      goto fail;
  }
  api->log(host, CCM_LOG_INFO,
           "lab: %s state file %s: %zu load balancers, %zu routes; %zu pools",
           missing ? "created" : "loaded", lab->cfg.state_file,
           lab->state.n_lbs, lab->state.n_routes, lab->cfg.n_pools);
  *instance = lab;
  return CCM_OK;
fail:
  api->call_set_error(call, "%s", err);
  api->log(host, CCM_LOG_ERROR, "lab: init failed: %s", err);
  lab_state_clear(api, &lab->state);
  config_clear(api, &lab->cfg);
  if (mu_ready)
    pthread_mutex_destroy(&lab->mu);
  api->free(lab);
  return rc;
}

static void lab_destroy(void *instance) {
  struct lab *lab = instance;
  if (lab == NULL)
    return;
  const struct ccm_host_api *api = lab->api;
  lab_state_clear(api, &lab->state);
  config_clear(api, &lab->cfg);
  pthread_mutex_destroy(&lab->mu);
  api->free(lab);
}

/* ---- hot-swap ----------------------------------------------------------- */

static int lab_state_export(void *instance, struct ccm_call *call,
                            struct ccm_blob *out) {
  struct lab *lab = instance;
  pthread_mutex_lock(&lab->mu);
  char *text = lab_state_to_json(&lab->state);
  pthread_mutex_unlock(&lab->mu);
  if (text == NULL) {
    lab->api->call_set_error(call, "lab: out of memory exporting state");
    return CCM_ERR_INTERNAL;
  }
  int rc = lab->api->blob_set(out, text, strlen(text));
  cJSON_free(text);
  return rc;
}

/* Replace the whole state with the exported JSON of another generation
 * (which may be another version of this module) and persist it. On any
 * failure the current state stays in force. */
static int lab_state_import(void *instance, struct ccm_call *call,
                            const void *data, size_t len) {
  struct lab *lab = instance;
  char err[LAB_ERR];
  struct lab_state incoming, previous;
  int rc = lab_state_from_json(lab->api, data, len, "imported", &incoming,
                               err, sizeof(err));
  if (rc != CCM_OK) {
    lab->api->call_set_error(call, "%s", err);
    return rc;
  }
  pthread_mutex_lock(&lab->mu);
  previous = lab->state;
  lab->state = incoming;
  rc = lab_save(lab, err, sizeof(err));
  if (rc != CCM_OK) {
    lab->state = previous;
    previous = incoming;
  }
  pthread_mutex_unlock(&lab->mu);
  lab_state_clear(lab->api, &previous);
  if (rc != CCM_OK) {
    lab->api->call_set_error(call, "%s", err);
    return rc;
  }
  lab->api->log(lab->host, CCM_LOG_INFO,
                "lab: imported state: %zu load balancers, %zu routes",
                incoming.n_lbs, incoming.n_routes);
  return CCM_OK;
}
