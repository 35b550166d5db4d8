/*
 * aws_instances.c: instances of the aws module through EC2
 * DescribeInstances: providerID forms, node-to-instance lookup, the
 * upstream address order, and exists/shutdown/metadata (single and
 * batched). It reads EC2 only; it never changes an instance.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "aws.h"

#define AWS_NAME_BATCH 100 /* private-dns-name filter values per call */

/* ---- parsing ------------------------------------------------------------- */

void aws_instance_free(const struct ccm_host_api *api,
                       struct aws_instance *in) {
  char **strs[] = {&in->id,         &in->state,     &in->type,
                   &in->az,         &in->private_dns, &in->public_dns,
                   &in->public_ip,  &in->private_ip, &in->vpc_id,
                   &in->subnet_id};
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
    api->free(*strs[i]);
  for (size_t i = 0; i < in->n_addrs; i++)
    api->free(in->addrs[i].address);
  api->free(in->addrs);
  for (size_t i = 0; i < in->n_groups; i++)
    api->free(in->groups[i]);
  api->free(in->groups);
  for (size_t i = 0; i < in->n_tags; i++) {
    api->free(in->tags[i].key);
    api->free(in->tags[i].value);
  }
  api->free(in->tags);
  memset(in, 0, sizeof(*in));
}

void aws_instances_clear(const struct ccm_host_api *api,
                         struct aws_instances *l) {
  for (size_t i = 0; i < l->n; i++)
    aws_instance_free(api, &l->items[i]);
  api->free(l->items);
  l->items = NULL;
  l->n = 0;
}

int aws_instance_move(struct aws_instance *dst, struct aws_instance *src) {
  *dst = *src;
  memset(src, 0, sizeof(*src));
  return CCM_OK;
}

static bool add_addr(const struct ccm_host_api *api, struct aws_instance *in,
                     uint32_t type, const char *addr) {
  struct aws_addr *a;
  if (addr == NULL || addr[0] == '\0')
    return true;
  a = api->realloc(in->addrs, (in->n_addrs + 1) * sizeof(*a));
  if (a == NULL)
    return false;
  in->addrs = a;
  a[in->n_addrs].type = type;
  a[in->n_addrs].address = api->strdup(addr);
  if (a[in->n_addrs].address == NULL)
    return false;
  in->n_addrs++;
  return true;
}

struct eni {
  long index;
  xmlNode *node;
};

static int eni_cmp(const void *a, const void *b) {
  const struct eni *x = a, *y = b;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* In-use ENIs sorted by attachment/deviceIndex (at most 64). */
static size_t enis_sorted(const xmlNode *item, struct eni *out, size_t cap) {
  xmlNode *set = aws_xml_child(item, "networkInterfaceSet");
  size_t n = 0;
  for (xmlNode *e = aws_xml_child(set, "item"); e != NULL && n < cap;
       e = aws_xml_next(e, "item")) {
    char status[32], idx[16], *end;
    if (!aws_xml_path_text(e, "status", status, sizeof(status)) ||
        strcmp(status, "in-use") != 0)
      continue;
    out[n].index = 0;
    if (aws_xml_path_text(e, "attachment/deviceIndex", idx, sizeof(idx))) {
      long v = strtol(idx, &end, 10);
      if (end != idx && *end == '\0')
        out[n].index = v;
    }
    out[n].node = e;
    n++;
  }
  qsort(out, n, sizeof(out[0]), eni_cmp);
  return n;
}

static bool addresses(const struct ccm_host_api *api, const xmlNode *item,
                      struct aws_instance *in, const uint32_t *families,
                      size_t n_families) {
  struct eni enis[64];
  size_t n = enis_sorted(item, enis, 64);
  char ip[CCM_MAX_ADDRESS + 1];

  for (size_t f = 0; f < n_families; f++) {
    if (families[f] == CCM_IPV4) {
      for (size_t i = 0; i < n; i++) {
        xmlNode *set = aws_xml_child(enis[i].node, "privateIpAddressesSet");
        for (xmlNode *p = aws_xml_child(set, "item"); p != NULL;
             p = aws_xml_next(p, "item"))
          if (aws_xml_path_text(p, "privateIpAddress", ip, sizeof(ip)) &&
              !add_addr(api, in, CCM_ADDR_INTERNAL_IP, ip))
            return false;
      }
      if (n == 0 && !add_addr(api, in, CCM_ADDR_INTERNAL_IP, in->private_ip))
        return false;
      if (!add_addr(api, in, CCM_ADDR_EXTERNAL_IP, in->public_ip))
        return false;
    } else if (families[f] == CCM_IPV6) {
      for (size_t i = 0; i < n; i++) {
        xmlNode *set = aws_xml_child(enis[i].node, "ipv6AddressesSet");
        xmlNode *p = aws_xml_child(set, "item");
        if (p != NULL &&
            aws_xml_path_text(p, "ipv6Address", ip, sizeof(ip)) &&
            !add_addr(api, in, CCM_ADDR_INTERNAL_IP, ip))
          return false;
      }
    }
  }
  return add_addr(api, in, CCM_ADDR_INTERNAL_DNS, in->private_dns) &&
         add_addr(api, in, CCM_ADDR_HOSTNAME, in->private_dns) &&
         add_addr(api, in, CCM_ADDR_EXTERNAL_DNS, in->public_dns);
}

static bool parse_one(const struct ccm_host_api *api, const xmlNode *item,
                      const uint32_t *families, size_t n_families,
                      struct aws_instance *in) {
  struct {
    const char *path;
    char **slot;
  } strs[] = {{"instanceId", &in->id},
              {"instanceState/name", &in->state},
              {"instanceType", &in->type},
              {"placement/availabilityZone", &in->az},
              {"privateDnsName", &in->private_dns},
              {"dnsName", &in->public_dns},
              {"ipAddress", &in->public_ip},
              {"privateIpAddress", &in->private_ip},
              {"vpcId", &in->vpc_id},
              {"subnetId", &in->subnet_id}};
  xmlNode *set;

  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
    if (aws_xml_path(item, strs[i].path) == NULL)
      continue;
    *strs[i].slot = aws_xml_path_dup(api, item, strs[i].path);
    if (*strs[i].slot == NULL)
      return false;
  }
  if (in->id == NULL || in->id[0] == '\0')
    return false;
  set = aws_xml_child(item, "groupSet");
  for (xmlNode *g = aws_xml_child(set, "item"); g != NULL;
       g = aws_xml_next(g, "item")) {
    char **gs = api->realloc(in->groups, (in->n_groups + 1) * sizeof(*gs));
    if (gs == NULL)
      return false;
    in->groups = gs;
    gs[in->n_groups] = aws_xml_path_dup(api, g, "groupId");
    if (gs[in->n_groups] == NULL)
      return false;
    in->n_groups++;
  }
  set = aws_xml_child(item, "tagSet");
  for (xmlNode *t = aws_xml_child(set, "item"); t != NULL;
       t = aws_xml_next(t, "item")) {
    struct aws_kv *kv = api->realloc(in->tags, (in->n_tags + 1) * sizeof(*kv));
    if (kv == NULL)
      return false;
    in->tags = kv;
    kv[in->n_tags].key = aws_xml_path_dup(api, t, "key");
    kv[in->n_tags].value = aws_xml_path_dup(api, t, "value");
    if (kv[in->n_tags].key == NULL) {
      api->free(kv[in->n_tags].value);
      return false;
    }
    if (kv[in->n_tags].value == NULL)
      kv[in->n_tags].value = api->strdup("");
    if (kv[in->n_tags].value == NULL) {
      api->free(kv[in->n_tags].key);
      return false;
    }
    in->n_tags++;
  }
  return addresses(api, item, in, families, n_families);
}

int aws_instances_parse(const struct ccm_host_api *api, const xmlDoc *doc,
                        const uint32_t *families, size_t n_families,
                        struct aws_instances *out, char **next) {
  xmlNode *root = xmlDocGetRootElement((xmlDoc *)doc);
  xmlNode *rs = aws_xml_child(root, "reservationSet");

  if (next != NULL)
    *next = NULL;
  if (root == NULL || strcmp((const char *)root->name,
                             "DescribeInstancesResponse") != 0)
    return CCM_ERR_INTERNAL;
  for (xmlNode *r = aws_xml_child(rs, "item"); r != NULL;
       r = aws_xml_next(r, "item")) {
    xmlNode *is = aws_xml_child(r, "instancesSet");
    for (xmlNode *i = aws_xml_child(is, "item"); i != NULL;
         i = aws_xml_next(i, "item")) {
      struct aws_instance *items =
          api->realloc(out->items, (out->n + 1) * sizeof(*items));
      if (items == NULL)
        return CCM_ERR_INTERNAL;
      out->items = items;
      memset(&items[out->n], 0, sizeof(items[0]));
      if (!parse_one(api, i, families, n_families, &items[out->n])) {
        aws_instance_free(api, &items[out->n]);
        return CCM_ERR_INTERNAL;
      }
      out->n++;
    }
  }
  if (next != NULL) {
    char *tok = aws_xml_path_dup(api, root, "nextToken");
    if (tok != NULL && tok[0] == '\0') {
      api->free(tok);
      tok = NULL;
    }
    *next = tok;
  }
  return CCM_OK;
}

const char *aws_instance_tag(const struct aws_instance *in, const char *key) {
  for (size_t i = 0; i < in->n_tags; i++)
    if (strcmp(in->tags[i].key, key) == 0)
      return in->tags[i].value;
  return NULL;
}

bool aws_instance_in_cluster(const struct aws_instance *in,
                             const char *cluster_id) {
  char key[300];
  const char *legacy;
  if (cluster_id == NULL)
    return true;
  snprintf(key, sizeof(key), "%s%s", AWS_CLUSTER_TAG_PREFIX, cluster_id);
  if (aws_instance_tag(in, key) != NULL)
    return true;
  legacy = aws_instance_tag(in, AWS_LEGACY_CLUSTER_TAG);
  return legacy != NULL && strcmp(legacy, cluster_id) == 0;
}

/* ---- providerID ---------------------------------------------------------- */

static bool valid_id(const char *s, size_t n) {
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '/' || s[i] == ' ' || (unsigned char)s[i] < 0x21)
      return false;
  return true;
}

int aws_provider_id_parse(const char *pid, int *kind, char *az, size_t azlen,
                          char *id, size_t idlen) {
  const char *p, *slash, *last;
  size_t n;

  az[0] = id[0] = '\0';
  if (pid == NULL)
    return CCM_ERR_INVALID;
  if (strncmp(pid, "aws://", 6) != 0) {
    /* A bare instance ID. */
    n = strlen(pid);
    if (strncmp(pid, "i-", 2) != 0 || !valid_id(pid, n) || n >= idlen)
      return CCM_ERR_INVALID;
    memcpy(id, pid, n + 1);
    *kind = AWS_PID_INSTANCE;
    return CCM_OK;
  }
  p = pid + 6; /* "aws://" then an (empty) host, then /<az>/<id> */
  if (*p != '/')
    p += strcspn(p, "/"); /* aws://host/az/id: the host is ignored */
  if (*p != '/')
    return CCM_ERR_INVALID;
  p++;
  slash = strchr(p, '/');
  if (slash == NULL)
    return CCM_ERR_INVALID;
  last = slash + 1;
  if (strchr(last, '/') != NULL)
    return CCM_ERR_INVALID;
  n = (size_t)(slash - p);
  if (n >= azlen)
    return CCM_ERR_INVALID;
  memcpy(az, p, n);
  az[n] = '\0';
  n = strlen(last);
  if (!valid_id(last, n) || n >= idlen)
    return CCM_ERR_INVALID;
  if (strncmp(last, "i-", 2) == 0) {
    *kind = AWS_PID_INSTANCE;
  } else if (strncmp(last, "fargate-", 8) == 0) {
    *kind = AWS_PID_FARGATE;
  } else {
    return CCM_ERR_INVALID;
  }
  memcpy(id, last, n + 1);
  return CCM_OK;
}

/* ---- DescribeInstances --------------------------------------------------- */

static int describe_paged(struct aws *aws, struct ccm_call *call,
                          const struct aws_params *base,
                          struct aws_instances *out, struct aws_error *err) {
  char *next = NULL;
  int rc;

  do {
    struct aws_params p;
    xmlDoc *doc = NULL;
    aws_params_init(&p, aws->api);
    for (size_t i = 0; i < base->n; i++)
      aws_params_add(&p, base->items[i].name, base->items[i].value);
    if (next != NULL) {
      aws_params_add(&p, "NextToken", next);
      aws->api->free(next);
      next = NULL;
    }
    rc = aws_query(aws, call, AWS_SVC_EC2, "DescribeInstances", &p, &doc,
                   err);
    aws_params_clear(&p);
    if (rc != CCM_OK)
      return rc;
    rc = aws_instances_parse(aws->api, doc, aws->cfg.families,
                             aws->cfg.n_families, out, &next);
    xmlFreeDoc(doc);
    if (rc != CCM_OK) {
      aws->api->call_set_error(call, "EC2 DescribeInstances: unexpected "
                               "response shape");
      return rc;
    }
  } while (next != NULL);
  return CCM_OK;
}

int aws_describe_instances_filtered(struct aws *aws, struct ccm_call *call,
                                    const struct aws_params *filters,
                                    struct aws_instances *out) {
  return describe_paged(aws, call, filters, out, NULL);
}

int aws_describe_instances(struct aws *aws, struct ccm_call *call,
                           const char *const *ids, size_t n_ids,
                           struct aws_instances *out) {
  size_t batch = aws->cfg.describe_batch > 0 ? aws->cfg.describe_batch
                                              : AWS_DESCRIBE_BATCH;

  for (size_t start = 0; start < n_ids; start += batch) {
    size_t n = n_ids - start < batch ? n_ids - start : batch;
    struct aws_params p;
    struct aws_error err;
    unsigned f = 1;
    int rc;

    aws_params_init(&p, aws->api);
    for (size_t i = 0; i < n; i++)
      aws_params_addf(&p, ids[start + i], "InstanceId.%zu", i + 1);
    rc = describe_paged(aws, call, &p, out, &err);
    aws_params_clear(&p);
    if (rc == CCM_ERR_NOT_FOUND && n == 1)
      continue; /* the one ID does not exist */
    if (rc == CCM_ERR_NOT_FOUND) {
      /* Some IDs are gone and EC2 refuses the whole list: a filter lists
       * only those that exist. */
      aws_params_init(&p, aws->api);
      aws_params_filter(&p, &f, "instance-id", ids + start, n);
      rc = describe_paged(aws, call, &p, out, NULL);
      aws_params_clear(&p);
    }
    if (rc != CCM_OK)
      return rc;
  }
  return CCM_OK;
}

static const char *const live_states[] = {"pending", "running",
                                          "shutting-down", "stopping",
                                          "stopped"};

/* Instances named by private DNS names (cluster members only). */
static int describe_by_names(struct aws *aws, struct ccm_call *call,
                             const char *const *names, size_t n,
                             struct aws_instances *out) {
  size_t batch = aws->cfg.describe_batch > 0 &&
                         aws->cfg.describe_batch < AWS_NAME_BATCH
                     ? aws->cfg.describe_batch
                     : AWS_NAME_BATCH;

  for (size_t start = 0; start < n; start += batch) {
    size_t k = n - start < batch ? n - start : batch;
    struct aws_instances found = {0};
    struct aws_params p;
    unsigned f = 1;
    int rc;

    aws_params_init(&p, aws->api);
    aws_params_filter(&p, &f, "private-dns-name", names + start, k);
    aws_params_filter(&p, &f, "instance-state-name", live_states, 5);
    rc = describe_paged(aws, call, &p, &found, NULL);
    aws_params_clear(&p);
    for (size_t i = 0; rc == CCM_OK && i < found.n; i++) {
      struct aws_instance *items;
      if (!aws_instance_in_cluster(&found.items[i], aws->cluster_id))
        continue;
      items = aws->api->realloc(out->items, (out->n + 1) * sizeof(*items));
      if (items == NULL) {
        rc = CCM_ERR_INTERNAL;
        break;
      }
      out->items = items;
      aws_instance_move(&items[out->n++], &found.items[i]);
    }
    aws_instances_clear(aws->api, &found);
    if (rc != CCM_OK)
      return rc;
  }
  return CCM_OK;
}

/* How a node names its instance without asking EC2: *id set, or *by_name. */
static int node_key(struct aws *aws, struct ccm_call *call,
                    const struct ccm_node *node, char *id, size_t idlen,
                    bool *by_name) {
  char az[CCM_MAX_NAME + 1];
  int kind = 0, rc;

  *by_name = false;
  if (node->provider_id != NULL && node->provider_id[0] != '\0') {
    rc = aws_provider_id_parse(node->provider_id, &kind, az, sizeof(az), id,
                               idlen);
    if (rc != CCM_OK) {
      aws->api->call_set_error(call, "node %s: providerID \"%s\" is not an "
                               "AWS providerID", node->name,
                               node->provider_id);
      return CCM_ERR_INVALID;
    }
    if (kind == AWS_PID_FARGATE) {
      aws->api->call_set_error(call, "node %s: Fargate nodes are not EC2 "
                               "instances", node->name);
      return CCM_ERR_NOT_IMPLEMENTED;
    }
    return CCM_OK;
  }
  if (strncmp(node->name, "i-", 2) == 0) {
    size_t n = strcspn(node->name, ".");
    if (n >= idlen)
      return CCM_ERR_INVALID;
    memcpy(id, node->name, n);
    id[n] = '\0';
    return CCM_OK;
  }
  *by_name = true;
  return CCM_OK;
}

int aws_node_instance(struct aws *aws, struct ccm_call *call,
                      const struct ccm_node *node, struct aws_instance *out) {
  struct aws_instances l = {0};
  char id[CCM_MAX_ID + 1];
  bool by_name;
  int rc;

  memset(out, 0, sizeof(*out));
  rc = node_key(aws, call, node, id, sizeof(id), &by_name);
  if (rc != CCM_OK)
    return rc;
  if (by_name) {
    const char *names[1] = {node->name};
    rc = describe_by_names(aws, call, names, 1, &l);
  } else {
    const char *ids[1] = {id};
    rc = aws_describe_instances(aws, call, ids, 1, &l);
  }
  if (rc == CCM_OK && l.n == 0) {
    aws->api->call_set_error(call, "node %s: no such EC2 instance%s",
                             node->name, by_name ? " in this cluster" : "");
    rc = CCM_ERR_NOT_FOUND;
  } else if (rc == CCM_OK && l.n > 1) {
    aws->api->call_set_error(call, "node %s: %zu EC2 instances match",
                             node->name, l.n);
    rc = CCM_ERR_INTERNAL;
  } else if (rc == CCM_OK) {
    aws_instance_move(out, &l.items[0]);
  }
  aws_instances_clear(aws->api, &l);
  return rc;
}

/* ---- operations ---------------------------------------------------------- */

int aws_instance_exists(void *instance, struct ccm_call *call,
                        const struct ccm_node *node, bool *exists) {
  struct aws *aws = instance;
  struct aws_instance in;
  int rc = aws_node_instance(aws, call, node, &in);

  *exists = false;
  if (rc == CCM_ERR_NOT_FOUND)
    return CCM_OK;
  if (rc != CCM_OK)
    return rc;
  *exists = in.state == NULL || strcmp(in.state, "terminated") != 0;
  aws_instance_free(aws->api, &in);
  return CCM_OK;
}

int aws_instance_shutdown(void *instance, struct ccm_call *call,
                          const struct ccm_node *node, bool *shutdown) {
  struct aws *aws = instance;
  struct aws_instance in;
  int rc = aws_node_instance(aws, call, node, &in);

  *shutdown = false;
  if (rc != CCM_OK)
    return rc;
  if (in.state != NULL && strcmp(in.state, "terminated") == 0)
    rc = CCM_ERR_NOT_FOUND;
  else
    *shutdown = in.state != NULL && strcmp(in.state, "stopped") == 0;
  aws_instance_free(aws->api, &in);
  return rc;
}

static int fill_meta(struct aws *aws, struct ccm_call *call,
                     const struct aws_instance *in,
                     struct ccm_instance_meta *out) {
  const struct ccm_host_api *api = aws->api;
  char pid[CCM_MAX_ID + 1];
  int rc;

  if (in->state != NULL && strcmp(in->state, "terminated") == 0) {
    api->call_set_error(call, "instance %s is terminated", in->id);
    return CCM_ERR_NOT_FOUND;
  }
  snprintf(pid, sizeof(pid), "%s%s/%s", AWS_PROVIDER_ID_PREFIX,
           in->az ? in->az : "", in->id);
  rc = api->meta_set(out, CCM_META_PROVIDER_ID, pid);
  if (rc == CCM_OK && in->type != NULL && in->type[0])
    rc = api->meta_set(out, CCM_META_INSTANCE_TYPE, in->type);
  if (rc == CCM_OK && in->az != NULL && in->az[0])
    rc = api->meta_set(out, CCM_META_ZONE, in->az);
  if (rc == CCM_OK && aws->cfg.region != NULL)
    rc = api->meta_set(out, CCM_META_REGION, aws->cfg.region);
  for (size_t i = 0; rc == CCM_OK && i < in->n_addrs; i++)
    rc = api->meta_add_address(out, in->addrs[i].type, in->addrs[i].address);
  if (rc != CCM_OK)
    api->call_set_error(call, "instance %s: the host refused a metadata "
                        "value", in->id);
  return rc;
}

int aws_instance_metadata(void *instance, struct ccm_call *call,
                          const struct ccm_node *node,
                          struct ccm_instance_meta *out) {
  struct aws *aws = instance;
  struct aws_instance in;
  int rc = aws_node_instance(aws, call, node, &in);

  if (rc != CCM_OK)
    return rc;
  rc = fill_meta(aws, call, &in, out);
  aws_instance_free(aws->api, &in);
  return rc;
}

/* Whether id is among the first n of list (a batch asks once per ID). */
static bool id_listed(const char *const *list, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i], id) == 0)
      return true;
  return false;
}

/* The instances of nodes into out: each node's key into ids[i] and
 * by_name[i] (status[i]: how that went; a node without an EC2 key is left
 * out), then one describe by ID (each ID once) and one by private DNS name
 * (cluster members only). */
static int describe_nodes(struct aws *aws, struct ccm_call *call,
                          const struct ccm_node *const *nodes, size_t n,
                          char (*ids)[64], bool *by_name, int *status,
                          struct aws_instances *out) {
  const struct ccm_host_api *api = aws->api;
  const char **id_list = api->calloc(n, sizeof(*id_list));
  const char **names = api->calloc(n, sizeof(*names));
  size_t n_ids = 0, n_names = 0;
  int rc = CCM_ERR_INTERNAL;

  if (id_list == NULL || names == NULL)
    goto out;
  for (size_t i = 0; i < n; i++) {
    status[i] = node_key(aws, call, nodes[i], ids[i], sizeof(ids[i]),
                         &by_name[i]);
    if (status[i] != CCM_OK)
      continue;
    if (by_name[i])
      names[n_names++] = nodes[i]->name;
    else if (!id_listed(id_list, n_ids, ids[i]))
      id_list[n_ids++] = ids[i];
  }
  rc = aws_describe_instances(aws, call, id_list, n_ids, out);
  if (rc == CCM_OK && n_names > 0)
    rc = describe_by_names(aws, call, names, n_names, out);
out:
  api->free(id_list);
  api->free(names);
  return rc;
}

int aws_instance_metadata_batch(void *instance, struct ccm_call *call,
                                const struct ccm_node *const *nodes,
                                size_t n_nodes,
                                struct ccm_instance_meta *const *out,
                                int *status) {
  struct aws *aws = instance;
  const struct ccm_host_api *api = aws->api;
  struct aws_instances l = {0};
  char (*ids)[64] = NULL;
  bool *by_name = NULL;
  int rc = CCM_OK;

  if (n_nodes == 0)
    return CCM_OK;
  ids = api->calloc(n_nodes, sizeof(*ids));
  by_name = api->calloc(n_nodes, sizeof(*by_name));
  if (ids == NULL || by_name == NULL) {
    rc = CCM_ERR_INTERNAL;
    goto fail;
  }
  rc = describe_nodes(aws, call, nodes, n_nodes, ids, by_name, status, &l);
  if (rc != CCM_OK)
    goto fail;
  for (size_t i = 0; i < n_nodes; i++) {
    const struct aws_instance *hit = NULL;
    bool another = false; /* a second, different instance matches */
    if (status[i] != CCM_OK)
      continue;
    for (size_t j = 0; j < l.n; j++) {
      bool same = by_name[i] ? l.items[j].private_dns != NULL &&
                                   strcmp(l.items[j].private_dns,
                                          nodes[i]->name) == 0
                             : strcmp(l.items[j].id, ids[i]) == 0;
      if (!same)
        continue;
      /* The same instance may be listed twice (asked for by ID for one
       * node and by name for another): count distinct instances. */
      if (hit == NULL)
        hit = &l.items[j];
      else if (strcmp(hit->id, l.items[j].id) != 0)
        another = true;
    }
    if (hit == NULL) {
      status[i] = CCM_ERR_NOT_FOUND;
    } else if (another && by_name[i]) {
      aws->api->call_set_error(call, "node %s: more than one cluster "
                               "instance has this private DNS name",
                               nodes[i]->name);
      status[i] = CCM_ERR_INTERNAL;
    } else {
      status[i] = fill_meta(aws, call, hit, out[i]);
    }
  }
  goto out;
fail:
  for (size_t i = 0; i < n_nodes; i++)
    status[i] = rc;
out:
  aws_instances_clear(api, &l);
  api->free(ids);
  api->free(by_name);
  return rc;
}

int aws_nodes_instances(struct aws *aws, struct ccm_call *call,
                        const struct ccm_node *const *nodes, size_t n_nodes,
                        struct aws_instances *out) {
  const struct ccm_host_api *api = aws->api;
  char (*ids)[64];
  bool *by_name;
  int *status, rc = CCM_ERR_INTERNAL;

  if (n_nodes == 0)
    return CCM_OK;
  ids = api->calloc(n_nodes, sizeof(*ids));
  by_name = api->calloc(n_nodes, sizeof(*by_name));
  status = api->calloc(n_nodes, sizeof(*status));
  /* A node that is not an EC2 instance (Fargate, a foreign providerID)
   * is left out. */
  if (ids != NULL && by_name != NULL && status != NULL)
    rc = describe_nodes(aws, call, nodes, n_nodes, ids, by_name, status,
                        out);
  api->free(ids);
  api->free(by_name);
  api->free(status);
  return rc;
}
