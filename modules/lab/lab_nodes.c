/*
 * lab_nodes.c: instances and routes of the lab provider. Instances come
 * from the immutable config (no lock); routes live in the state file and
 * are touched only under lab.mu, persisted before the call returns.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "lab.h"

#define LAB_MSG 512
#define LAB_DEFAULT_INSTANCE_TYPE "lab-node"

/* The lab name of a node: from a lab:// providerID first, else its name. */
static const char *node_key(const struct ccm_node *node) {
  size_t plen = strlen(LAB_PROVIDER_ID_PREFIX);
  if (node == NULL)
    return NULL;
  if (node->provider_id != NULL &&
      strncmp(node->provider_id, LAB_PROVIDER_ID_PREFIX, plen) == 0 &&
      node->provider_id[plen] != '\0')
    return node->provider_id + plen;
  if (node->name != NULL && node->name[0] != '\0')
    return node->name;
  return NULL;
}

/* A listed node or a shut-down node exists; with no list, every node does
 * (as kind: the node's container is there). */
static bool node_known(const struct lab *lab, const char *key) {
  return !lab->cfg.has_nodes ||
         lab_name_in(lab->cfg.nodes, lab->cfg.n_nodes, key) ||
         lab_name_in(lab->cfg.shutdown_nodes, lab->cfg.n_shutdown, key);
}

static int resolve(struct lab *lab, struct ccm_call *call,
                   const struct ccm_node *node, const char **key) {
  *key = node_key(node);
  if (*key == NULL) {
    lab->api->call_set_error(call, "lab: node has neither a lab:// "
                                   "providerID nor a name");
    return CCM_ERR_INVALID;
  }
  return CCM_OK;
}

int lab_instance_exists(void *instance, struct ccm_call *call,
                        const struct ccm_node *node, bool *exists) {
  struct lab *lab = instance;
  const char *key;
  int rc = resolve(lab, call, node, &key);
  if (rc != CCM_OK)
    return rc;
  *exists = node_known(lab, key);
  return CCM_OK;
}

int lab_instance_shutdown(void *instance, struct ccm_call *call,
                          const struct ccm_node *node, bool *shutdown) {
  struct lab *lab = instance;
  const char *key;
  int rc = resolve(lab, call, node, &key);
  if (rc != CCM_OK)
    return rc;
  if (!node_known(lab, key)) {
    lab->api->call_set_error(call, "instance not found: %s is not in nodes",
                             key);
    return CCM_ERR_NOT_FOUND;
  }
  *shutdown = lab_name_in(lab->cfg.shutdown_nodes, lab->cfg.n_shutdown, key);
  return CCM_OK;
}

static const struct lab_zone_rule *zone_rule(const struct lab *lab,
                                             const char *key) {
  for (size_t i = 0; i < lab->cfg.n_zones; i++)
    if (fnmatch(lab->cfg.zones[i].match, key, 0) == 0)
      return &lab->cfg.zones[i];
  return NULL;
}

static const struct lab_node_addr *configured_addrs(const struct lab *lab,
                                                    const char *key) {
  for (size_t i = 0; i < lab->cfg.n_addrs; i++)
    if (strcmp(lab->cfg.addrs[i].node, key) == 0)
      return &lab->cfg.addrs[i];
  return NULL;
}

static int set_field(struct lab *lab, struct ccm_instance_meta *out,
                     int field, const char *rule_value,
                     const char *default_value) {
  const char *v = rule_value != NULL ? rule_value : default_value;
  if (v == NULL)
    return CCM_OK;
  return lab->api->meta_set(out, field, v);
}

static int add_addresses(struct lab *lab, const struct ccm_node *node,
                         const char *key, struct ccm_instance_meta *out) {
  const struct lab_node_addr *conf = configured_addrs(lab, key);
  const char *hostname = key;
  int rc = CCM_OK;
  if (conf != NULL) {
    if (conf->internal_ip != NULL)
      rc = lab->api->meta_add_address(out, CCM_ADDR_INTERNAL_IP,
                                      conf->internal_ip);
    if (rc == CCM_OK && conf->external_ip != NULL)
      rc = lab->api->meta_add_address(out, CCM_ADDR_EXTERNAL_IP,
                                      conf->external_ip);
    if (conf->hostname != NULL)
      hostname = conf->hostname;
  } else {
    /* Echo what the kubelet reported; the Hostname is ours to set. */
    for (size_t i = 0; rc == CCM_OK && i < node->n_addresses; i++) {
      const struct ccm_node_address *a = node->addresses[i];
      if (a == NULL || a->address == NULL || a->type == CCM_ADDR_HOSTNAME)
        continue;
      rc = lab->api->meta_add_address(out, a->type, a->address);
    }
  }
  if (rc == CCM_OK)
    rc = lab->api->meta_add_address(out, CCM_ADDR_HOSTNAME, hostname);
  return rc;
}

int lab_instance_metadata(void *instance, struct ccm_call *call,
                          const struct ccm_node *node,
                          struct ccm_instance_meta *out) {
  struct lab *lab = instance;
  char pid[CCM_MAX_ID + 1];
  const char *key;
  int rc = resolve(lab, call, node, &key);
  if (rc != CCM_OK)
    return rc;
  if (!node_known(lab, key)) {
    lab->api->call_set_error(call, "instance not found: %s is not in nodes",
                             key);
    return CCM_ERR_NOT_FOUND;
  }
  if (snprintf(pid, sizeof(pid), "%s%s", LAB_PROVIDER_ID_PREFIX, key) >=
      (int)sizeof(pid)) {
    lab->api->call_set_error(call, "lab: node name too long for a providerID");
    return CCM_ERR_INVALID;
  }
  const struct lab_zone_rule *z = zone_rule(lab, key);
  rc = lab->api->meta_set(out, CCM_META_PROVIDER_ID, pid);
  if (rc == CCM_OK)
    rc = set_field(lab, out, CCM_META_INSTANCE_TYPE,
                   z ? z->instance_type : NULL,
                   lab->cfg.instance_type ? lab->cfg.instance_type
                                          : LAB_DEFAULT_INSTANCE_TYPE);
  if (rc == CCM_OK)
    rc = set_field(lab, out, CCM_META_ZONE, z ? z->zone : NULL, lab->cfg.zone);
  if (rc == CCM_OK)
    rc = set_field(lab, out, CCM_META_REGION, z ? z->region : NULL,
                   lab->cfg.region);
  if (rc == CCM_OK)
    rc = add_addresses(lab, node, key, out);
  if (rc != CCM_OK)
    lab->api->call_set_error(call, "lab: metadata of %s refused by the host "
                                   "(status %d)", key, rc);
  return rc;
}

int lab_instance_metadata_batch(void *instance, struct ccm_call *call,
                                const struct ccm_node *const *nodes,
                                size_t n_nodes,
                                struct ccm_instance_meta *const *out,
                                int *status) {
  for (size_t i = 0; i < n_nodes; i++)
    status[i] = lab_instance_metadata(instance, call, nodes[i], out[i]);
  return CCM_OK;
}

/* ---- routes -------------------------------------------------------------- */

int lab_route_list(void *instance, struct ccm_call *call,
                   const char *cluster_name, struct ccm_route_list *out) {
  struct lab *lab = instance;
  const char *cluster = cluster_name != NULL ? cluster_name : "";
  int rc = CCM_OK;
  pthread_mutex_lock(&lab->mu);
  for (size_t i = 0; rc == CCM_OK && i < lab->state.n_routes; i++) {
    const struct lab_route *r = lab->state.routes[i];
    if (strcmp(r->cluster, cluster) != 0)
      continue;
    struct ccm_route cr = {
        .struct_size = sizeof(cr),
        .name = r->name,
        .target_node = r->target_node,
        .destination_cidr = r->cidr,
        .blackhole = !node_known(lab, r->target_node),
    };
    rc = lab->api->routes_add(out, &cr);
  }
  pthread_mutex_unlock(&lab->mu);
  if (rc != CCM_OK)
    lab->api->call_set_error(call, "lab: route list refused by the host "
                                   "(status %d)", rc);
  return rc;
}

static struct lab_route *route_new(const struct ccm_host_api *api,
                                   const char *cluster, const char *name,
                                   const struct ccm_route *route) {
  struct lab_route *r = api->calloc(1, sizeof(*r));
  if (r == NULL)
    return NULL;
  r->cluster = api->strdup(cluster);
  r->name = api->strdup(name);
  r->target_node = api->strdup(route->target_node);
  r->cidr = api->strdup(route->destination_cidr);
  if (r->cluster == NULL || r->name == NULL || r->target_node == NULL ||
      r->cidr == NULL) {
    lab_route_free(api, r);
    return NULL;
  }
  return r;
}

int lab_route_create(void *instance, struct ccm_call *call,
                     const char *cluster_name, const char *name_hint,
                     const struct ccm_route *route) {
  struct lab *lab = instance;
  const char *cluster = cluster_name != NULL ? cluster_name : "";
  char name[2 * CCM_MAX_ID + 2], err[LAB_MSG];
  struct lab_route *old = NULL, *r = NULL;
  int rc = CCM_OK;

  if (route == NULL || route->target_node == NULL ||
      route->target_node[0] == '\0' || name_hint == NULL ||
      name_hint[0] == '\0') {
    lab->api->call_set_error(call, "lab: a route needs a target node and a "
                                   "name hint");
    return CCM_ERR_INVALID;
  }
  if (!lab_cidr_valid(route->destination_cidr)) {
    lab->api->call_set_error(call, "lab: route destination \"%s\" is not a "
                                   "CIDR",
                             route->destination_cidr
                                 ? route->destination_cidr
                                 : "");
    return CCM_ERR_INVALID;
  }
  /* A dual-stack node has one route per family under the same hint (its
   * UID): the family keeps their names apart. */
  snprintf(name, sizeof(name), "%s-%s%s", cluster, name_hint,
           strchr(route->destination_cidr, ':') != NULL ? "-v6" : "");

  pthread_mutex_lock(&lab->mu);
  long index = lab_state_find_route(&lab->state, cluster, name);
  if (index >= 0) {
    const struct lab_route *cur = lab->state.routes[index];
    if (strcmp(cur->target_node, route->target_node) == 0 &&
        strcmp(cur->cidr, route->destination_cidr) == 0)
      goto done; /* already there */
  }
  for (size_t i = 0; i < lab->state.n_routes; i++) {
    const struct lab_route *o = lab->state.routes[i];
    if ((long)i != index && strcmp(o->cluster, cluster) == 0 &&
        strcmp(o->cidr, route->destination_cidr) == 0) {
      lab->api->call_set_error(call,
                               "route %s: %s is already routed to node %s "
                               "by route %s",
                               name, o->cidr, o->target_node, o->name);
      rc = CCM_ERR_INVALID;
      goto done;
    }
  }
  r = route_new(lab->api, cluster, name, route);
  if (r == NULL ||
      lab_state_put_route(lab->api, &lab->state, index, r, &old) != CCM_OK) {
    lab_route_free(lab->api, r);
    lab->api->call_set_error(call, "lab: out of memory");
    rc = CCM_ERR_INTERNAL;
    goto done;
  }
  if (lab_save(lab, err, sizeof(err)) != CCM_OK) {
    if (index >= 0)
      lab->state.routes[index] = old;
    else
      lab_state_take_route(&lab->state, lab->state.n_routes - 1);
    old = r;
    lab->api->call_set_error(call, "%s", err);
    rc = CCM_ERR_INTERNAL;
  }
  lab_route_free(lab->api, old);
done:
  pthread_mutex_unlock(&lab->mu);
  return rc;
}

int lab_route_delete(void *instance, struct ccm_call *call,
                     const char *cluster_name, const struct ccm_route *route) {
  struct lab *lab = instance;
  const char *cluster = cluster_name != NULL ? cluster_name : "";
  char err[LAB_MSG];
  long index = -1;
  int rc = CCM_OK;

  if (route == NULL)
    return CCM_OK;
  pthread_mutex_lock(&lab->mu);
  if (route->name != NULL && route->name[0] != '\0') {
    index = lab_state_find_route(&lab->state, cluster, route->name);
    /* A route as listed carries its destination: a name now pointing at
     * another CIDR (re-created since it was listed) is not this route. */
    if (index >= 0 && route->destination_cidr != NULL &&
        strcmp(lab->state.routes[index]->cidr, route->destination_cidr) != 0)
      index = -1;
  } else {
    /* A route without a name: match it by node and destination. */
    for (size_t i = 0; i < lab->state.n_routes && index < 0; i++) {
      const struct lab_route *r = lab->state.routes[i];
      if (strcmp(r->cluster, cluster) == 0 && route->target_node != NULL &&
          route->destination_cidr != NULL &&
          strcmp(r->target_node, route->target_node) == 0 &&
          strcmp(r->cidr, route->destination_cidr) == 0)
        index = (long)i;
    }
  }
  if (index < 0)
    goto done;
  struct lab_route *gone = lab_state_take_route(&lab->state, (size_t)index);
  if (lab_save(lab, err, sizeof(err)) != CCM_OK) {
    if (lab_state_insert_route(lab->api, &lab->state, (size_t)index, gone) !=
        CCM_OK) {
      lab->api->log(lab->host, CCM_LOG_ERROR,
                    "lab: lost route %s from memory after a failed write; "
                    "restart the host to reload %s",
                    gone->name, lab->cfg.state_file);
      lab_route_free(lab->api, gone);
    }
    lab->api->call_set_error(call, "%s", err);
    rc = CCM_ERR_INTERNAL;
    goto done;
  }
  lab_route_free(lab->api, gone);
done:
  pthread_mutex_unlock(&lab->mu);
  return rc;
}
