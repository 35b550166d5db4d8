/*
 * aws_routes.c: pod-CIDR routes of the aws module in the cluster's EC2
 * route table (RouteTableID, else the one table tagged for the cluster):
 * list, create (SourceDestCheck off, blackholes replaced) and delete. It
 * touches only routes of that one table.
 */
#include <stdio.h>
#include <string.h>

#include <libxml/tree.h>

#include "aws.h"

/* The route table: its response document and the table's element. */
static int table_get(struct aws *aws, struct ccm_call *call,
                     const char *cluster, xmlDoc **doc, xmlNode **table) {
  const struct ccm_host_api *api = aws->api;
  struct aws_params p;
  char want[64] = "", tag[300];
  const char *vals[1];
  unsigned f = 1;
  size_t n = 0;
  xmlNode *set;
  int rc;

  *doc = NULL;
  *table = NULL;
  pthread_mutex_lock(&aws->mu);
  if (aws->cfg.route_table_id != NULL)
    snprintf(want, sizeof(want), "%s", aws->cfg.route_table_id);
  else if (aws->route_table != NULL)
    snprintf(want, sizeof(want), "%s", aws->route_table);
  pthread_mutex_unlock(&aws->mu);

  aws_params_init(&p, api);
  if (want[0] != '\0') {
    vals[0] = want;
    aws_params_filter(&p, &f, "route-table-id", vals, 1);
  } else {
    snprintf(tag, sizeof(tag), "%s%s", AWS_CLUSTER_TAG_PREFIX, cluster);
    vals[0] = tag;
    aws_params_filter(&p, &f, "tag-key", vals, 1);
    if (aws->cfg.vpc != NULL) {
      vals[0] = aws->cfg.vpc;
      aws_params_filter(&p, &f, "vpc-id", vals, 1);
    }
  }
  rc = aws_query(aws, call, AWS_SVC_EC2, "DescribeRouteTables", &p, doc,
                 NULL);
  aws_params_clear(&p);
  if (rc != CCM_OK)
    return rc == CCM_ERR_NOT_FOUND ? CCM_ERR_INVALID : rc;
  set = aws_xml_child(xmlDocGetRootElement(*doc), "routeTableSet");
  for (xmlNode *t = aws_xml_child(set, "item"); t != NULL;
       t = aws_xml_next(t, "item")) {
    if (n++ == 0)
      *table = t;
  }
  if (n == 1) {
    char id[64];
    if (want[0] == '\0' &&
        aws_xml_path_text(*table, "routeTableId", id, sizeof(id))) {
      pthread_mutex_lock(&aws->mu);
      if (aws->route_table == NULL)
        aws->route_table = api->strdup(id);
      pthread_mutex_unlock(&aws->mu);
    }
    return CCM_OK;
  }
  if (want[0] != '\0')
    api->call_set_error(call, "route table %s: %s", want,
                        n == 0 ? "not found" : "ambiguous answer");
  else
    api->call_set_error(call, "%zu route tables carry the tag %s%s; set "
                        "route_table_id (RouteTableID)", n,
                        AWS_CLUSTER_TAG_PREFIX, cluster);
  xmlFreeDoc(*doc);
  *doc = NULL;
  *table = NULL;
  return CCM_ERR_INVALID;
}

static bool route_cidr(const xmlNode *r, char *cidr, size_t len) {
  return (aws_xml_path_text(r, "destinationCidrBlock", cidr, len) &&
          cidr[0] != '\0') ||
         (aws_xml_path_text(r, "destinationIpv6CidrBlock", cidr, len) &&
          cidr[0] != '\0');
}

static bool route_blackhole(const xmlNode *r) {
  char state[32];
  return aws_xml_path_text(r, "state", state, sizeof(state)) &&
         strcmp(state, "blackhole") == 0;
}

int aws_route_list(void *instance, struct ccm_call *call,
                   const char *cluster_name, struct ccm_route_list *out) {
  struct aws *aws = instance;
  const struct ccm_host_api *api = aws->api;
  const char *cluster = aws_cluster(aws, cluster_name);
  struct aws_instances insts = {0};
  const char **ids = NULL;
  size_t n_ids = 0, n_routes = 0;
  xmlDoc *doc = NULL;
  xmlNode *table, *set;
  int rc;

  rc = table_get(aws, call, cluster, &doc, &table);
  if (rc != CCM_OK)
    return rc;
  set = aws_xml_child(table, "routeSet");
  for (xmlNode *r = aws_xml_child(set, "item"); r != NULL;
       r = aws_xml_next(r, "item"))
    n_routes++;
  ids = api->calloc(n_routes + 1, sizeof(*ids));
  if (ids == NULL) {
    rc = CCM_ERR_INTERNAL;
    goto out;
  }
  /* The node of each route is its instance's private DNS name. */
  for (xmlNode *r = aws_xml_child(set, "item"); r != NULL;
       r = aws_xml_next(r, "item")) {
    xmlNode *idn = aws_xml_child(r, "instanceId");
    if (idn != NULL && idn->children != NULL &&
        idn->children->type == XML_TEXT_NODE && !route_blackhole(r))
      ids[n_ids++] = (const char *)idn->children->content;
  }
  rc = aws_describe_instances(aws, call, ids, n_ids, &insts);
  if (rc != CCM_OK)
    goto out;
  for (xmlNode *r = aws_xml_child(set, "item"); r != NULL;
       r = aws_xml_next(r, "item")) {
    char cidr[CCM_MAX_ADDRESS + 1], id[64], name[CCM_MAX_NAME + 1];
    const char *node = NULL;
    struct ccm_route route;

    if (!route_cidr(r, cidr, sizeof(cidr)))
      continue;
    memset(&route, 0, sizeof(route));
    route.struct_size = sizeof(route);
    snprintf(name, sizeof(name), "%s-%s", cluster, cidr);
    route.name = name;
    route.destination_cidr = cidr;
    if (route_blackhole(r)) {
      route.blackhole = true;
      route.target_node = "";
    } else {
      if (!aws_xml_path_text(r, "instanceId", id, sizeof(id)) ||
          id[0] == '\0')
        continue; /* gateway, NAT or local routes are not ours */
      for (size_t i = 0; i < insts.n; i++)
        if (strcmp(insts.items[i].id, id) == 0)
          node = insts.items[i].private_dns;
      if (node == NULL || node[0] == '\0') {
        api->log(aws->host, CCM_LOG_WARN, "route %s: instance %s not found",
                 cidr, id);
        continue;
      }
      route.target_node = node;
    }
    rc = api->routes_add(out, &route);
    if (rc != CCM_OK) {
      api->call_set_error(call, "route %s: the host refused it", cidr);
      goto out;
    }
  }
out:
  aws_instances_clear(api, &insts);
  api->free(ids);
  xmlFreeDoc(doc);
  return rc;
}

/* A simple EC2 mutation answering <return>true</return>. */
static int ec2_do(struct aws *aws, struct ccm_call *call, const char *action,
                  struct aws_params *p, struct aws_error *err) {
  xmlDoc *doc = NULL;
  int rc = aws_query(aws, call, AWS_SVC_EC2, action, p, &doc, err);
  aws_params_clear(p);
  if (doc != NULL)
    xmlFreeDoc(doc);
  return rc;
}

static int delete_route(struct aws *aws, struct ccm_call *call,
                        const char *table, const char *cidr) {
  struct aws_params p;
  struct aws_error err;
  int rc;

  aws_params_init(&p, aws->api);
  aws_params_add(&p, "RouteTableId", table);
  aws_params_add(&p, strchr(cidr, ':') ? "DestinationIpv6CidrBlock"
                                       : "DestinationCidrBlock",
                 cidr);
  rc = ec2_do(aws, call, "DeleteRoute", &p, &err);
  return rc == CCM_ERR_NOT_FOUND ? CCM_OK : rc;
}

int aws_route_create(void *instance, struct ccm_call *call,
                     const char *cluster_name, const char *name_hint,
                     const struct ccm_route *route) {
  struct aws *aws = instance;
  const struct ccm_host_api *api = aws->api;
  const char *cluster = aws_cluster(aws, cluster_name);
  struct ccm_node node;
  struct aws_instance in;
  struct aws_params p;
  struct aws_error err;
  char table_id[64];
  xmlDoc *doc = NULL;
  xmlNode *table, *set;
  bool present = false;
  int rc;

  (void)name_hint;
  if (route->target_node == NULL || route->target_node[0] == '\0' ||
      route->destination_cidr == NULL || route->destination_cidr[0] == '\0') {
    api->call_set_error(call, "route: target node and CIDR are required");
    return CCM_ERR_INVALID;
  }
  memset(&node, 0, sizeof(node));
  node.struct_size = sizeof(node);
  node.name = route->target_node;
  rc = aws_node_instance(aws, call, &node, &in);
  if (rc != CCM_OK)
    return rc == CCM_ERR_NOT_FOUND ? CCM_ERR_INVALID : rc;

  /* Pod traffic to other addresses must pass the instance. */
  aws_params_init(&p, api);
  aws_params_add(&p, "InstanceId", in.id);
  aws_params_add(&p, "SourceDestCheck.Value", "false");
  rc = ec2_do(aws, call, "ModifyInstanceAttribute", &p, NULL);
  if (rc != CCM_OK)
    goto out;

  rc = table_get(aws, call, cluster, &doc, &table);
  if (rc != CCM_OK)
    goto out;
  if (!aws_xml_path_text(table, "routeTableId", table_id, sizeof(table_id))) {
    api->call_set_error(call, "DescribeRouteTables: no routeTableId");
    rc = CCM_ERR_INTERNAL;
    goto out;
  }
  set = aws_xml_child(table, "routeSet");
  for (xmlNode *r = aws_xml_child(set, "item"); r != NULL;
       r = aws_xml_next(r, "item")) {
    char cidr[CCM_MAX_ADDRESS + 1], id[64];
    if (!route_cidr(r, cidr, sizeof(cidr)) ||
        strcmp(cidr, route->destination_cidr) != 0)
      continue;
    if (!route_blackhole(r) &&
        aws_xml_path_text(r, "instanceId", id, sizeof(id)) &&
        strcmp(id, in.id) == 0) {
      present = true; /* already there: creating twice makes one route */
      break;
    }
    /* A blackhole (or a stale target) with the same CIDR blocks
     * CreateRoute. */
    rc = delete_route(aws, call, table_id, cidr);
    if (rc != CCM_OK)
      goto out;
  }
  if (!present) {
    aws_params_init(&p, api);
    aws_params_add(&p, "RouteTableId", table_id);
    aws_params_add(&p, strchr(route->destination_cidr, ':')
                           ? "DestinationIpv6CidrBlock"
                           : "DestinationCidrBlock",
                   route->destination_cidr);
    aws_params_add(&p, "InstanceId", in.id);
    rc = ec2_do(aws, call, "CreateRoute", &p, &err);
    if (rc != CCM_OK && strcmp(err.code, "RouteAlreadyExists") == 0)
      rc = CCM_OK;
  }
out:
  if (doc != NULL)
    xmlFreeDoc(doc);
  aws_instance_free(api, &in);
  return rc;
}

int aws_route_delete(void *instance, struct ccm_call *call,
                     const char *cluster_name, const struct ccm_route *route) {
  struct aws *aws = instance;
  const char *cluster = aws_cluster(aws, cluster_name);
  char table_id[64];
  xmlDoc *doc = NULL;
  xmlNode *table;
  int rc;

  if (route->destination_cidr == NULL || route->destination_cidr[0] == '\0') {
    aws->api->call_set_error(call, "route: CIDR is required");
    return CCM_ERR_INVALID;
  }
  rc = table_get(aws, call, cluster, &doc, &table);
  if (rc != CCM_OK)
    return rc;
  if (aws_xml_path_text(table, "routeTableId", table_id, sizeof(table_id)))
    rc = delete_route(aws, call, table_id, route->destination_cidr);
  else
    rc = CCM_ERR_INTERNAL;
  xmlFreeDoc(doc);
  return rc;
}
