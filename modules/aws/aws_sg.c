/*
 * aws_sg.c: resource tags and EC2 security groups for the aws module's
 * load balancers: describe, ensure a managed group, authorize and revoke
 * single rules, delete with DependencyViolation waits. It changes a group
 * only when the caller has checked this cluster's ownership tag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/tree.h>

#include "aws.h"

#define AWS_SG_DELETE_STEP_MS 5000u

/* ---- tags ---------------------------------------------------------------- */

int aws_tags_parse(const struct ccm_host_api *api, const xmlNode *set,
                   bool member_style, struct aws_kv **tags, size_t *n) {
  const char *item = member_style ? "member" : "item";
  const char *k = member_style ? "Key" : "key";
  const char *v = member_style ? "Value" : "value";

  for (xmlNode *t = aws_xml_child(set, item); t != NULL;
       t = aws_xml_next(t, item)) {
    struct aws_kv *kv = api->realloc(*tags, (*n + 1) * sizeof(*kv));
    if (kv == NULL)
      return CCM_ERR_INTERNAL;
    *tags = kv;
    kv[*n].key = aws_xml_path_dup(api, t, k);
    kv[*n].value = aws_xml_path_dup(api, t, v);
    if (kv[*n].value == NULL)
      kv[*n].value = api->strdup("");
    if (kv[*n].key == NULL || kv[*n].value == NULL) {
      api->free(kv[*n].key);
      api->free(kv[*n].value);
      return CCM_ERR_INTERNAL;
    }
    (*n)++;
  }
  return CCM_OK;
}

void aws_tags_free(const struct ccm_host_api *api, struct aws_kv *tags,
                   size_t n) {
  for (size_t i = 0; i < n; i++) {
    api->free(tags[i].key);
    api->free(tags[i].value);
  }
  api->free(tags);
}

const char *aws_tags_get(const struct aws_kv *tags, size_t n,
                         const char *key) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(tags[i].key, key) == 0)
      return tags[i].value;
  return NULL;
}

bool aws_tags_owned(const struct aws_kv *tags, size_t n,
                    const char *cluster) {
  char key[300];
  const char *v;
  snprintf(key, sizeof(key), "%s%s", AWS_CLUSTER_TAG_PREFIX, cluster);
  v = aws_tags_get(tags, n, key);
  return v != NULL && strcmp(v, "owned") == 0;
}

bool aws_tags_in_cluster(const struct aws_kv *tags, size_t n,
                         const char *cluster) {
  char key[300];
  snprintf(key, sizeof(key), "%s%s", AWS_CLUSTER_TAG_PREFIX, cluster);
  return aws_tags_get(tags, n, key) != NULL;
}

/* ---- security groups ----------------------------------------------------- */

static void sg_free(const struct ccm_host_api *api, struct aws_sg *g) {
  api->free(g->id);
  api->free(g->name);
  api->free(g->vpc);
  aws_tags_free(api, g->tags, g->n_tags);
  api->free(g->rules);
  memset(g, 0, sizeof(*g));
}

void aws_sgs_clear(const struct ccm_host_api *api, struct aws_sgs *l) {
  for (size_t i = 0; i < l->n; i++)
    sg_free(api, &l->items[i]);
  api->free(l->items);
  l->items = NULL;
  l->n = 0;
}

static int port_of(const xmlNode *perm, const char *name) {
  char buf[16], *end;
  long v;
  if (!aws_xml_path_text(perm, name, buf, sizeof(buf)))
    return -1;
  v = strtol(buf, &end, 10);
  return end != buf && *end == '\0' ? (int)v : -1;
}

static bool add_rule(const struct ccm_host_api *api, struct aws_sg *g,
                     const struct aws_sg_rule *r) {
  struct aws_sg_rule *rs =
      api->realloc(g->rules, (g->n_rules + 1) * sizeof(*rs));
  if (rs == NULL)
    return false;
  g->rules = rs;
  rs[g->n_rules++] = *r;
  return true;
}

static bool parse_rules(const struct ccm_host_api *api, const xmlNode *item,
                        struct aws_sg *g) {
  xmlNode *perms = aws_xml_child(item, "ipPermissions");
  for (xmlNode *p = aws_xml_child(perms, "item"); p != NULL;
       p = aws_xml_next(p, "item")) {
    struct aws_sg_rule base;
    memset(&base, 0, sizeof(base));
    if (!aws_xml_path_text(p, "ipProtocol", base.proto, sizeof(base.proto)))
      continue;
    base.from = port_of(p, "fromPort");
    base.to = port_of(p, "toPort");
    for (xmlNode *r = aws_xml_child(aws_xml_child(p, "ipRanges"), "item");
         r != NULL; r = aws_xml_next(r, "item")) {
      struct aws_sg_rule one = base;
      if (!aws_xml_path_text(r, "description", one.desc, sizeof(one.desc)))
        one.desc[0] = '\0'; /* absent, or longer than EC2 allows */
      if (aws_xml_path_text(r, "cidrIp", one.source, sizeof(one.source)) &&
          !add_rule(api, g, &one))
        return false;
    }
    for (xmlNode *r = aws_xml_child(aws_xml_child(p, "groups"), "item");
         r != NULL; r = aws_xml_next(r, "item")) {
      struct aws_sg_rule one = base;
      one.source_is_group = true;
      if (!aws_xml_path_text(r, "description", one.desc, sizeof(one.desc)))
        one.desc[0] = '\0';
      if (aws_xml_path_text(r, "groupId", one.source, sizeof(one.source)) &&
          !add_rule(api, g, &one))
        return false;
    }
  }
  return true;
}

int aws_sg_describe(struct aws *aws, struct ccm_call *call,
                    const struct aws_params *params, struct aws_sgs *out) {
  const struct ccm_host_api *api = aws->api;
  xmlDoc *doc = NULL;
  xmlNode *set;
  int rc = aws_query(aws, call, AWS_SVC_EC2, "DescribeSecurityGroups", params,
                     &doc, NULL);
  if (rc != CCM_OK)
    return rc;
  set = aws_xml_child(xmlDocGetRootElement(doc), "securityGroupInfo");
  for (xmlNode *it = aws_xml_child(set, "item"); it != NULL;
       it = aws_xml_next(it, "item")) {
    struct aws_sg *g = api->realloc(out->items, (out->n + 1) * sizeof(*g));
    if (g == NULL) {
      rc = CCM_ERR_INTERNAL;
      break;
    }
    out->items = g;
    g = &g[out->n];
    memset(g, 0, sizeof(*g));
    out->n++;
    g->id = aws_xml_path_dup(api, it, "groupId");
    g->name = aws_xml_path_dup(api, it, "groupName");
    g->vpc = aws_xml_path_dup(api, it, "vpcId");
    if (g->id == NULL || !parse_rules(api, it, g) ||
        aws_tags_parse(api, aws_xml_child(it, "tagSet"), false, &g->tags,
                       &g->n_tags) != CCM_OK) {
      rc = CCM_ERR_INTERNAL;
      break;
    }
  }
  xmlFreeDoc(doc);
  if (rc != CCM_OK)
    api->call_set_error(call, "EC2 DescribeSecurityGroups: unexpected "
                        "response");
  return rc;
}

bool aws_sg_has_rule(const struct aws_sg *sg, const struct aws_sg_rule *r) {
  for (size_t i = 0; i < sg->n_rules; i++) {
    const struct aws_sg_rule *x = &sg->rules[i];
    bool any = strcmp(r->proto, "-1") == 0;
    if (strcmp(x->proto, r->proto) == 0 &&
        x->source_is_group == r->source_is_group &&
        strcmp(x->source, r->source) == 0 &&
        (any || (x->from == r->from && x->to == r->to)))
      return true;
  }
  return false;
}

bool aws_sg_for_nodes(const struct aws_sg *g,
                      const struct aws_instances *insts,
                      const char *cluster) {
  if (!aws_tags_in_cluster(g->tags, g->n_tags, cluster))
    return false; /* never touch a group without this cluster's tag */
  for (size_t i = 0; i < insts->n; i++)
    for (size_t j = 0; j < insts->items[i].n_groups; j++)
      if (strcmp(insts->items[i].groups[j], g->id) == 0)
        return true;
  return false;
}

int aws_sg_node_groups(struct aws *aws, struct ccm_call *call,
                       const struct aws_instances *insts,
                       const char *cluster, struct aws_sgs *out) {
  const struct ccm_host_api *api = aws->api;
  struct aws_sgs all = {0};
  struct aws_params p;
  size_t n_ids = 0;
  int rc;

  aws_params_init(&p, api);
  for (size_t i = 0; i < insts->n; i++)
    for (size_t j = 0; j < insts->items[i].n_groups; j++) {
      const char *id = insts->items[i].groups[j];
      bool seen = false;
      for (size_t k = 0; !seen && k < p.n; k++)
        seen = strcmp(p.items[k].value, id) == 0;
      if (!seen)
        aws_params_addf(&p, id, "GroupId.%zu", ++n_ids);
    }
  if (n_ids == 0) {
    aws_params_clear(&p);
    return CCM_OK;
  }
  rc = aws_sg_describe(aws, call, &p, &all);
  aws_params_clear(&p);
  for (size_t i = 0; rc == CCM_OK && i < all.n; i++) {
    struct aws_sg *g;
    if (!aws_sg_for_nodes(&all.items[i], insts, cluster))
      continue;
    g = api->realloc(out->items, (out->n + 1) * sizeof(*g));
    if (g == NULL) {
      rc = CCM_ERR_INTERNAL;
      break;
    }
    out->items = g;
    out->items[out->n++] = all.items[i]; /* moved */
    memset(&all.items[i], 0, sizeof(all.items[i]));
  }
  aws_sgs_clear(api, &all);
  return rc;
}

static void rule_params(struct aws_params *p, const char *group_id,
                        const struct aws_sg_rule *r) {
  char num[16];
  aws_params_add(p, "GroupId", group_id);
  aws_params_add(p, "IpPermissions.1.IpProtocol", r->proto);
  if (strcmp(r->proto, "-1") != 0) {
    snprintf(num, sizeof(num), "%d", r->from);
    aws_params_add(p, "IpPermissions.1.FromPort", num);
    snprintf(num, sizeof(num), "%d", r->to);
    aws_params_add(p, "IpPermissions.1.ToPort", num);
  }
  if (r->source_is_group) {
    aws_params_add(p, "IpPermissions.1.Groups.1.GroupId", r->source);
    if (r->desc[0] != '\0')
      aws_params_add(p, "IpPermissions.1.Groups.1.Description", r->desc);
  } else {
    aws_params_add(p, "IpPermissions.1.IpRanges.1.CidrIp", r->source);
    if (r->desc[0] != '\0')
      aws_params_add(p, "IpPermissions.1.IpRanges.1.Description", r->desc);
  }
}

static int rule_call(struct aws *aws, struct ccm_call *call,
                     const char *action, const char *group_id,
                     const struct aws_sg_rule *r, const char *benign) {
  struct aws_params p;
  struct aws_error err;
  xmlDoc *doc = NULL;
  int rc;

  aws_params_init(&p, aws->api);
  rule_params(&p, group_id, r);
  rc = aws_query(aws, call, AWS_SVC_EC2, action, &p, &doc, &err);
  aws_params_clear(&p);
  if (doc != NULL)
    xmlFreeDoc(doc);
  if (rc != CCM_OK && strcmp(err.code, benign) == 0)
    rc = CCM_OK;
  return rc;
}

int aws_sg_authorize(struct aws *aws, struct ccm_call *call,
                     const char *group_id, const struct aws_sg_rule *r) {
  return rule_call(aws, call, "AuthorizeSecurityGroupIngress", group_id, r,
                   "InvalidPermission.Duplicate");
}

int aws_sg_revoke(struct aws *aws, struct ccm_call *call,
                  const char *group_id, const struct aws_sg_rule *r) {
  int rc = rule_call(aws, call, "RevokeSecurityGroupIngress", group_id, r,
                     "InvalidPermission.NotFound");
  return rc == CCM_ERR_NOT_FOUND ? CCM_OK : rc;
}

static int sg_find(struct aws *aws, struct ccm_call *call, const char *name,
                   const char *vpc, struct aws_sgs *out) {
  struct aws_params p;
  unsigned f = 1;
  int rc;
  aws_params_init(&p, aws->api);
  aws_params_filter(&p, &f, "group-name", &name, 1);
  aws_params_filter(&p, &f, "vpc-id", &vpc, 1);
  rc = aws_sg_describe(aws, call, &p, out);
  aws_params_clear(&p);
  return rc;
}

int aws_sg_ensure(struct aws *aws, struct ccm_call *call, const char *name,
                  const char *description, const char *vpc,
                  const char *cluster, const char *service, char **id) {
  const struct ccm_host_api *api = aws->api;
  struct aws_sgs l = {0};
  struct aws_params p;
  struct aws_error err;
  char key[300];
  xmlDoc *doc = NULL;
  int rc;

  *id = NULL;
  rc = sg_find(aws, call, name, vpc, &l);
  if (rc == CCM_OK && l.n == 0) {
    snprintf(key, sizeof(key), "%s%s", AWS_CLUSTER_TAG_PREFIX, cluster);
    aws_params_init(&p, api);
    aws_params_add(&p, "GroupName", name);
    aws_params_add(&p, "GroupDescription", description);
    aws_params_add(&p, "VpcId", vpc);
    aws_params_add(&p, "TagSpecification.1.ResourceType", "security-group");
    aws_params_add(&p, "TagSpecification.1.Tag.1.Key", key);
    aws_params_add(&p, "TagSpecification.1.Tag.1.Value", "owned");
    aws_params_add(&p, "TagSpecification.1.Tag.2.Key", AWS_SERVICE_NAME_TAG);
    aws_params_add(&p, "TagSpecification.1.Tag.2.Value", service);
    rc = aws_query(aws, call, AWS_SVC_EC2, "CreateSecurityGroup", &p, &doc,
                   &err);
    aws_params_clear(&p);
    if (rc == CCM_OK) {
      *id = aws_xml_path_dup(api, xmlDocGetRootElement(doc), "groupId");
      xmlFreeDoc(doc);
      return *id != NULL ? CCM_OK : CCM_ERR_INTERNAL;
    }
    if (strcmp(err.code, "InvalidGroup.Duplicate") != 0)
      return rc;
    rc = sg_find(aws, call, name, vpc, &l); /* created concurrently */
  }
  if (rc == CCM_OK && l.n == 0) {
    api->call_set_error(call, "security group %s: not found after create",
                        name);
    rc = CCM_ERR_RETRY;
  } else if (rc == CCM_OK &&
             !aws_tags_owned(l.items[0].tags, l.items[0].n_tags, cluster)) {
    api->call_set_error(call, "security group %s (%s) exists without the "
                        "tag %s%s=owned; not touching it", name,
                        l.items[0].id, AWS_CLUSTER_TAG_PREFIX, cluster);
    rc = CCM_ERR_INVALID;
  } else if (rc == CCM_OK) {
    *id = api->strdup(l.items[0].id);
    rc = *id != NULL ? CCM_OK : CCM_ERR_INTERNAL;
  }
  aws_sgs_clear(api, &l);
  return rc;
}

int aws_sg_delete(struct aws *aws, struct ccm_call *call, const char *id) {
  for (;;) {
    struct aws_params p;
    struct aws_error err;
    xmlDoc *doc = NULL;
    struct timespec ts = {AWS_SG_DELETE_STEP_MS / 1000, 0};
    int rc;

    aws_params_init(&p, aws->api);
    aws_params_add(&p, "GroupId", id);
    rc = aws_query(aws, call, AWS_SVC_EC2, "DeleteSecurityGroup", &p, &doc,
                   &err);
    aws_params_clear(&p);
    if (doc != NULL)
      xmlFreeDoc(doc);
    if (rc == CCM_OK || rc == CCM_ERR_NOT_FOUND)
      return CCM_OK;
    if (strcmp(err.code, "DependencyViolation") != 0)
      return rc;
    /* The load balancer's network interfaces go away asynchronously. */
    if (aws->api->call_remaining_ms(call) < AWS_SG_DELETE_STEP_MS + 2000 ||
        aws->api->call_cancelled(call)) {
      aws->api->call_set_error(call, "security group %s: still in use "
                               "(DependencyViolation)", id);
      aws->api->call_set_retry_after(call, AWS_SG_DELETE_STEP_MS);
      return CCM_ERR_RETRY;
    }
    nanosleep(&ts, NULL);
  }
}
