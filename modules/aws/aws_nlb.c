/*
 * aws_nlb.c: Network Load Balancers (ELBv2 2015-12-01) of the aws module:
 * get, ensure (load balancer, one target group per port, targets,
 * listeners, attributes, node security-group rules), update_hosts and
 * delete. It changes only load balancers and target groups carrying
 * kubernetes.io/cluster/<id>=owned, and in node groups tagged for the
 * cluster only the rules carrying its kubernetes.io/rule/nlb descriptions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libxml/tree.h>

#include "aws.h"
#include "aws_lb.h"

#define NLB_ARN 320
#define NLB_TARGET_CHUNK 100 /* Targets.member.N per Register/Deregister */
#define NLB_TAGS_CHUNK 20    /* ResourceArns.member.N per DescribeTags */
#define NLB_INUSE_STEP_MS 1000
#define NLB_HC_INTERVAL 30
#define NLB_HC_TIMEOUT 10
#define NLB_HC_THRESHOLD 3
#define NLB_LOCAL_HC_INTERVAL 10
#define NLB_LOCAL_HC_THRESHOLD 2
#define NLB_DEFAULT_SSL_POLICY "ELBSecurityPolicy-2016-08"
#define NLB_MAX_SUBNETS 16
#define NLB_MAX_PORTS 50 /* listeners per NLB */
/* Node security-group rule descriptions, as upstream writes them. */
#define NLB_RULE_CLIENT "kubernetes.io/rule/nlb/client="
#define NLB_RULE_HEALTH "kubernetes.io/rule/nlb/health="
#define NLB_RULE_MTU "kubernetes.io/rule/nlb/mtu"

/* A target group as described or as wanted. */
struct nlb_tg {
  char arn[NLB_ARN], name[40], proto[12];
  char hc_proto[12], hc_port[16], hc_path[256];
  int port;  /* the node port */
  int hc[4]; /* interval, timeout, healthy, unhealthy */
  bool owned;
};

struct nlb_listener {
  char arn[NLB_ARN], proto[12], tg[NLB_ARN], cert[512], policy[128];
  int port;
  bool keep; /* still wanted after reconcile */
};

/* One Service port: its listener and its target group. */
struct nlb_want {
  int port;
  char proto[12], cert[512], policy[128];
  struct nlb_tg tg;
};

struct nlb_lb {
  bool found;
  char arn[NLB_ARN], dns[256], scheme[32], type[16], vpc[64];
  char subnets[NLB_MAX_SUBNETS][32]; /* AvailabilityZones/member/SubnetId */
  size_t n_subnets;
};

struct nlb_state {
  struct nlb_listener *ls;
  size_t n_ls;
  struct nlb_tg *tgs;
  size_t n_tgs;
};

/* ---- options ------------------------------------------------------------- */


static void upper(char *dst, size_t len, const char *src) {
  size_t i;
  for (i = 0; i + 1 < len && src[i]; i++)
    dst[i] = (char)(src[i] >= 'a' && src[i] <= 'z' ? src[i] - 32 : src[i]);
  dst[i] = '\0';
}

/* ---- transport ----------------------------------------------------------- */

static int v2_call(struct aws *aws, struct ccm_call *call, const char *action,
                   struct aws_params *p, xmlDoc **doc,
                   struct aws_error *err) {
  return aws_lb_call(aws, call, AWS_SVC_ELBV2, action, p, doc, err);
}

static int v2_call1(struct aws *aws, struct ccm_call *call, const char *action,
                    const char *key, const char *value, xmlDoc **doc,
                    struct aws_error *err) {
  return aws_lb_call1(aws, call, AWS_SVC_ELBV2, action, key, value, doc, err);
}

static void lb_read(const xmlNode *m, struct nlb_lb *lb) {
  lb->found = true;
  aws_xml_path_text(m, "LoadBalancerArn", lb->arn, sizeof(lb->arn));
  aws_xml_path_text(m, "DNSName", lb->dns, sizeof(lb->dns));
  aws_xml_path_text(m, "Scheme", lb->scheme, sizeof(lb->scheme));
  aws_xml_path_text(m, "Type", lb->type, sizeof(lb->type));
  aws_xml_path_text(m, "VpcId", lb->vpc, sizeof(lb->vpc));
  lb->n_subnets = 0;
  for (xmlNode *z = aws_xml_child(aws_xml_child(m, "AvailabilityZones"),
                                  "member");
       z != NULL && lb->n_subnets < NLB_MAX_SUBNETS;
       z = aws_xml_next(z, "member"))
    if (aws_xml_path_text(z, "SubnetId", lb->subnets[lb->n_subnets],
                          sizeof(lb->subnets[0])))
      lb->n_subnets++;
}

/* DescribeLoadBalancers Names.member.1; lb->found false when absent. */
static int lb_describe(struct aws *aws, struct ccm_call *call,
                       const char *name, struct nlb_lb *lb) {
  struct aws_params p;
  xmlDoc *doc = NULL;
  xmlNode *m;
  int rc;

  memset(lb, 0, sizeof(*lb));
  aws_params_init(&p, aws->api);
  aws_params_add(&p, "Names.member.1", name);
  rc = v2_call(aws, call, "DescribeLoadBalancers", &p, &doc, NULL);
  if (rc == CCM_ERR_NOT_FOUND)
    return CCM_OK; /* LoadBalancerNotFound: absent */
  if (rc != CCM_OK)
    return rc;
  m = aws_xml_path(xmlDocGetRootElement(doc),
                   "DescribeLoadBalancersResult/LoadBalancers/member");
  if (m != NULL)
    lb_read(m, lb);
  xmlFreeDoc(doc);
  if (lb->found && (lb->arn[0] == '\0' || lb->dns[0] == '\0')) {
    aws->api->call_set_error(call, "NLB %s: answer without ARN or DNSName",
                             name);
    return CCM_ERR_INTERNAL;
  }
  return CCM_OK;
}

/* DescribeTags for up to NLB_TAGS_CHUNK ARNs; owned[i] for arns[i]. With
 * keep, the first resource's tags go to *keep (the caller frees them). */
static int tags_owned(struct aws *aws, struct ccm_call *call,
                      const char *const *arns, size_t n, const char *cluster,
                      bool *owned, struct aws_kv **keep, size_t *n_keep) {
  const struct ccm_host_api *api = aws->api;
  struct aws_params p;
  xmlDoc *doc = NULL;
  xmlNode *set;
  int rc = CCM_OK;

  for (size_t i = 0; i < n; i++)
    owned[i] = false;
  if (n == 0)
    return CCM_OK;
  aws_params_init(&p, api);
  for (size_t i = 0; i < n; i++)
    aws_params_addf(&p, arns[i], "ResourceArns.member.%zu", i + 1);
  rc = v2_call(aws, call, "DescribeTags", &p, &doc, NULL);
  if (rc != CCM_OK)
    return rc;
  set = aws_xml_path(xmlDocGetRootElement(doc),
                     "DescribeTagsResult/TagDescriptions");
  for (xmlNode *m = aws_xml_child(set, "member"); rc == CCM_OK && m != NULL;
       m = aws_xml_next(m, "member")) {
    char arn[NLB_ARN];
    struct aws_kv *tags = NULL;
    size_t nt = 0;
    if (!aws_xml_path_text(m, "ResourceArn", arn, sizeof(arn)))
      continue;
    rc = aws_tags_parse(api, aws_xml_child(m, "Tags"), true, &tags, &nt);
    for (size_t i = 0; rc == CCM_OK && i < n; i++) {
      if (strcmp(arns[i], arn) != 0)
        continue;
      owned[i] = aws_tags_owned(tags, nt, cluster);
      if (i == 0 && keep != NULL && *keep == NULL) {
        *keep = tags;
        *n_keep = nt;
        tags = NULL;
        nt = 0;
      }
    }
    aws_tags_free(api, tags, nt);
  }
  xmlFreeDoc(doc);
  return rc;
}

static void tg_read(const xmlNode *m, struct nlb_tg *t) {
  memset(t, 0, sizeof(*t));
  aws_xml_path_text(m, "TargetGroupArn", t->arn, sizeof(t->arn));
  aws_xml_path_text(m, "TargetGroupName", t->name, sizeof(t->name));
  aws_xml_path_text(m, "Protocol", t->proto, sizeof(t->proto));
  aws_xml_path_text(m, "HealthCheckProtocol", t->hc_proto,
                    sizeof(t->hc_proto));
  aws_xml_path_text(m, "HealthCheckPort", t->hc_port, sizeof(t->hc_port));
  aws_xml_path_text(m, "HealthCheckPath", t->hc_path, sizeof(t->hc_path));
  t->port = aws_lb_int_at(m, "Port");
  t->hc[0] = aws_lb_int_at(m, "HealthCheckIntervalSeconds");
  t->hc[1] = aws_lb_int_at(m, "HealthCheckTimeoutSeconds");
  t->hc[2] = aws_lb_int_at(m, "HealthyThresholdCount");
  t->hc[3] = aws_lb_int_at(m, "UnhealthyThresholdCount");
}

static void state_free(const struct ccm_host_api *api, struct nlb_state *s) {
  api->free(s->ls);
  api->free(s->tgs);
  memset(s, 0, sizeof(*s));
}

/* Listeners and target groups of the load balancer, with the target
 * groups' ownership. */
static int state_describe(struct aws *aws, struct ccm_call *call,
                          const char *lb_arn, const char *cluster,
                          bool listeners, struct nlb_state *s) {
  const struct ccm_host_api *api = aws->api;
  xmlDoc *doc = NULL;
  xmlNode *set;
  int rc;

  memset(s, 0, sizeof(*s));
  if (listeners) {
    rc = v2_call1(aws, call, "DescribeListeners",
                  "LoadBalancerArn", lb_arn, &doc, NULL);
    if (rc != CCM_OK)
      return rc;
    set = aws_xml_path(xmlDocGetRootElement(doc),
                       "DescribeListenersResult/Listeners");
    for (xmlNode *m = aws_xml_child(set, "member"); m != NULL;
         m = aws_xml_next(m, "member")) {
      struct nlb_listener *v =
          api->realloc(s->ls, (s->n_ls + 1) * sizeof(*v));
      if (v == NULL) {
        xmlFreeDoc(doc);
        return CCM_ERR_INTERNAL;
      }
      s->ls = v;
      v = &v[s->n_ls++];
      memset(v, 0, sizeof(*v));
      aws_xml_path_text(m, "ListenerArn", v->arn, sizeof(v->arn));
      aws_xml_path_text(m, "Protocol", v->proto, sizeof(v->proto));
      aws_xml_path_text(m, "DefaultActions/member/TargetGroupArn", v->tg,
                        sizeof(v->tg));
      aws_xml_path_text(m, "Certificates/member/CertificateArn", v->cert,
                        sizeof(v->cert));
      aws_xml_path_text(m, "SslPolicy", v->policy, sizeof(v->policy));
      v->port = aws_lb_int_at(m, "Port");
    }
    xmlFreeDoc(doc);
    doc = NULL;
  }
  rc = v2_call1(aws, call, "DescribeTargetGroups",
                "LoadBalancerArn", lb_arn, &doc, NULL);
  if (rc != CCM_OK)
    return rc;
  set = aws_xml_path(xmlDocGetRootElement(doc),
                     "DescribeTargetGroupsResult/TargetGroups");
  for (xmlNode *m = aws_xml_child(set, "member"); m != NULL;
       m = aws_xml_next(m, "member")) {
    struct nlb_tg *v = api->realloc(s->tgs, (s->n_tgs + 1) * sizeof(*v));
    if (v == NULL) {
      xmlFreeDoc(doc);
      return CCM_ERR_INTERNAL;
    }
    s->tgs = v;
    tg_read(m, &v[s->n_tgs++]);
  }
  xmlFreeDoc(doc);
  for (size_t i = 0; rc == CCM_OK && i < s->n_tgs; i += NLB_TAGS_CHUNK) {
    const char *arns[NLB_TAGS_CHUNK];
    bool owned[NLB_TAGS_CHUNK];
    size_t n = 0;
    for (size_t j = i; j < s->n_tgs && n < NLB_TAGS_CHUNK; j++)
      arns[n++] = s->tgs[j].arn;
    rc = tags_owned(aws, call, arns, n, cluster, owned, NULL, NULL);
    for (size_t j = 0; rc == CCM_OK && j < n; j++)
      s->tgs[i + j].owned = owned[j];
  }
  return rc;
}

static struct nlb_tg *state_tg(struct nlb_state *s, const char *arn) {
  for (size_t i = 0; i < s->n_tgs; i++)
    if (strcmp(s->tgs[i].arn, arn) == 0)
      return &s->tgs[i];
  return NULL;
}

/* ---- desired state ------------------------------------------------------- */

/* Health check of every target group: upstream defaults, eTP Local
 * through the health-check node port, then the healthcheck-* options. */
static void want_health(const struct ccm_service *svc, struct nlb_tg *t) {
  const char *proto = aws_opt_str(svc, "healthcheck-protocol");
  const char *port = aws_opt_str(svc, "healthcheck-port");
  const char *path = aws_opt_str(svc, "healthcheck-path");
  bool local = svc->external_traffic_local && svc->health_check_node_port;

  snprintf(t->hc_proto, sizeof(t->hc_proto), "%s", local ? "HTTP" : "TCP");
  if (local)
    snprintf(t->hc_port, sizeof(t->hc_port), "%u",
             svc->health_check_node_port);
  else
    snprintf(t->hc_port, sizeof(t->hc_port), "traffic-port");
  snprintf(t->hc_path, sizeof(t->hc_path), "%s", local ? "/healthz" : "");
  t->hc[0] = local ? NLB_LOCAL_HC_INTERVAL : NLB_HC_INTERVAL;
  t->hc[1] = NLB_HC_TIMEOUT;
  t->hc[2] = t->hc[3] = local ? NLB_LOCAL_HC_THRESHOLD : NLB_HC_THRESHOLD;
  if (proto != NULL)
    upper(t->hc_proto, sizeof(t->hc_proto), proto);
  if (port != NULL && (!local || strcmp(port, "traffic-port") != 0))
    snprintf(t->hc_port, sizeof(t->hc_port), "%s", port);
  if (strcmp(t->hc_proto, "HTTP") != 0 && strcmp(t->hc_proto, "HTTPS") != 0)
    t->hc_path[0] = '\0';
  else if (path != NULL)
    snprintf(t->hc_path, sizeof(t->hc_path), "%s", path);
  else if (t->hc_path[0] == '\0')
    snprintf(t->hc_path, sizeof(t->hc_path), "/");
  t->hc[0] = aws_opt_int(svc, "healthcheck-interval", t->hc[0]);
  t->hc[1] = aws_opt_int(svc, "healthcheck-timeout", t->hc[1]);
  t->hc[2] = aws_opt_int(svc, "healthcheck-healthy-threshold", t->hc[2]);
  t->hc[3] = aws_opt_int(svc, "healthcheck-unhealthy-threshold", t->hc[3]);
}

/* k8s-<ns<=8>-<svc<=8>-<hash10>; the hash covers what cannot change in
 * place, so a change gives a new name and a new target group. */
static void tg_name(const char *cluster, const struct ccm_service *svc,
                    int port, struct nlb_tg *t) {
  char in[1024], hex[65];
  int n = snprintf(in, sizeof(in), "%s\n%s\n%s\n%d\n%d\n%s\ninstance\n%s\n%d",
                   cluster, svc->namespace_, svc->name, port, t->port,
                   t->proto, t->hc_proto, t->hc[0]);
  if (n < 0 || (size_t)n >= sizeof(in))
    n = (int)sizeof(in) - 1;
  aws_sha256_hex(in, (size_t)n, hex);
  snprintf(t->name, sizeof(t->name), "k8s-%.8s-%.8s-%.10s", svc->namespace_,
           svc->name, hex);
}

static int want_ports(struct aws *aws, struct ccm_call *call,
                      const struct ccm_service *svc, const char *cluster,
                      struct nlb_want *out) {
  const char *cert = aws_opt_str(svc, "ssl-cert");
  const char *pol = aws_opt_str(svc, "ssl-negotiation-policy");
  const char *backend = aws_opt_str(svc, "backend-protocol");
  const struct ccm_option_value *ssl_ports = aws_opt_list(svc, "ssl-ports");

  for (size_t i = 0; i < svc->n_ports; i++) {
    const struct ccm_service_port *sp = svc->ports[i];
    struct nlb_want *w = &out[i];
    memset(w, 0, sizeof(*w));
    if (sp->protocol != CCM_PROTO_TCP && sp->protocol != CCM_PROTO_UDP) {
      aws->api->call_set_error(call, "port %u: an NLB serves TCP and UDP "
                               "only", sp->port);
      return CCM_ERR_INVALID;
    }
    if (sp->node_port == 0) {
      aws->api->call_set_error(call, "port %u has no node port", sp->port);
      return CCM_ERR_INVALID;
    }
    for (size_t j = 0; j < i; j++)
      if (out[j].port == (int)sp->port) {
        aws->api->call_set_error(call, "port %u is used twice (TCP_UDP "
                                 "listeners are not supported)", sp->port);
        return CCM_ERR_INVALID;
      }
    w->port = sp->port;
    w->tg.port = sp->node_port;
    if (sp->protocol == CCM_PROTO_UDP) {
      snprintf(w->proto, sizeof(w->proto), "UDP");
      snprintf(w->tg.proto, sizeof(w->tg.proto), "UDP");
    } else if (cert != NULL && aws_lb_port_listed(ssl_ports, sp)) {
      snprintf(w->proto, sizeof(w->proto), "TLS");
      snprintf(w->cert, sizeof(w->cert), "%s", cert);
      snprintf(w->policy, sizeof(w->policy), "%s",
               pol != NULL ? pol : NLB_DEFAULT_SSL_POLICY);
      snprintf(w->tg.proto, sizeof(w->tg.proto), "%s",
               backend != NULL && strcasecmp(backend, "ssl") == 0 ? "TLS"
                                                                  : "TCP");
    } else {
      snprintf(w->proto, sizeof(w->proto), "TCP");
      snprintf(w->tg.proto, sizeof(w->tg.proto), "TCP");
    }
    want_health(svc, &w->tg);
    tg_name(cluster, svc, w->port, &w->tg);
  }
  return CCM_OK;
}

/* The load balancer exists: it must be a network LB that we own. */
static int check_owned(struct aws *aws, struct ccm_call *call,
                       const struct ccm_service *svc, const struct nlb_lb *lb,
                       const char *cluster, struct aws_kv **tags,
                       size_t *n_tags) {
  const char *arn = lb->arn;
  bool owned = false;
  int rc;

  if (strcmp(lb->type, "network") != 0) {
    aws->api->call_set_error(call, "load balancer %s exists with type %s, "
                             "not network; not touching it", svc->lb_name,
                             lb->type);
    return CCM_ERR_INVALID;
  }
  rc = tags_owned(aws, call, &arn, 1, cluster, &owned, tags, n_tags);
  if (rc == CCM_OK && !owned) {
    aws->api->call_set_error(call, "load balancer %s exists without the tag "
                             "%s%s=owned; not touching it", svc->lb_name,
                             AWS_CLUSTER_TAG_PREFIX, cluster);
    rc = CCM_ERR_INVALID;
  }
  return rc;
}

/* ---- targets ------------------------------------------------------------- */

static bool inst_usable(const struct aws_instance *in) {
  return in->state != NULL && strcmp(in->state, "running") == 0;
}

/* Register or deregister ids (Port = port) in chunks. */
static int targets_send(struct aws *aws, struct ccm_call *call,
                        const char *action, const char *tg_arn, int port,
                        char *const *ids, size_t n) {
  char num[16];
  int rc = CCM_OK;

  snprintf(num, sizeof(num), "%d", port);
  for (size_t i = 0; rc == CCM_OK && i < n; i += NLB_TARGET_CHUNK) {
    struct aws_params p;
    aws_params_init(&p, aws->api);
    aws_params_add(&p, "TargetGroupArn", tg_arn);
    for (size_t j = i; j < n && j < i + NLB_TARGET_CHUNK; j++) {
      aws_params_addf(&p, ids[j], "Targets.member.%zu.Id", j - i + 1);
      aws_params_addf(&p, num, "Targets.member.%zu.Port", j - i + 1);
    }
    rc = v2_call(aws, call, action, &p, NULL, NULL);
  }
  return rc;
}

/* The target group's targets become the running instances at port. With
 * fresh the group was just made: no need to read its targets. */
static int targets_sync(struct aws *aws, struct ccm_call *call,
                        const char *tg_arn, int port,
                        const struct aws_instances *insts, bool fresh) {
  const struct ccm_host_api *api = aws->api;
  char **have = NULL, **add = NULL;
  int *have_port = NULL;
  size_t n_have = 0, n_add = 0, cap = 0;
  xmlDoc *doc = NULL;
  xmlNode *set = NULL;
  int rc = CCM_OK;

  if (!fresh) {
    rc = v2_call1(aws, call, "DescribeTargetHealth",
                  "TargetGroupArn", tg_arn, &doc, NULL);
    if (rc != CCM_OK)
      return rc;
    set = aws_xml_path(xmlDocGetRootElement(doc),
                       "DescribeTargetHealthResult/TargetHealthDescriptions");
    for (xmlNode *m = aws_xml_child(set, "member"); m != NULL;
         m = aws_xml_next(m, "member"))
      cap++;
  }
  have = api->calloc(cap + 1, sizeof(*have));
  have_port = api->calloc(cap + 1, sizeof(*have_port));
  add = api->calloc(insts->n + 1, sizeof(*add));
  if (have == NULL || have_port == NULL || add == NULL)
    rc = CCM_ERR_INTERNAL;
  for (xmlNode *m = aws_xml_child(set, "member"); rc == CCM_OK && m != NULL;
       m = aws_xml_next(m, "member")) {
    char *id = aws_xml_path_dup(api, m, "Target/Id");
    if (id == NULL)
      continue;
    have_port[n_have] = aws_lb_int_at(m, "Target/Port");
    have[n_have++] = id;
  }
  if (doc != NULL)
    xmlFreeDoc(doc);

  /* Usable nodes not registered at port. */
  for (size_t i = 0; rc == CCM_OK && i < insts->n; i++) {
    bool known = false;
    if (!inst_usable(&insts->items[i]))
      continue;
    for (size_t j = 0; j < n_have; j++)
      if (have_port[j] == port && strcmp(have[j], insts->items[i].id) == 0)
        known = true;
    for (size_t j = 0; j < n_add; j++)
      if (strcmp(add[j], insts->items[i].id) == 0)
        known = true;
    if (!known)
      add[n_add++] = insts->items[i].id;
  }
  if (rc == CCM_OK && n_add > 0)
    rc = targets_send(aws, call, "RegisterTargets", tg_arn, port, add, n_add);

  /* Registered targets that are not usable nodes leave in one batch
   * (reusing add[]); targets at another port leave one by one. */
  n_add = 0;
  for (size_t j = 0; rc == CCM_OK && j < n_have; j++) {
    bool keep = false;
    for (size_t i = 0; i < insts->n; i++)
      if (inst_usable(&insts->items[i]) &&
          strcmp(have[j], insts->items[i].id) == 0)
        keep = true;
    if (have_port[j] != port)
      rc = targets_send(aws, call, "DeregisterTargets", tg_arn, have_port[j],
                        &have[j], 1);
    else if (!keep && n_add < insts->n + 1)
      add[n_add++] = have[j];
    else if (!keep)
      rc = targets_send(aws, call, "DeregisterTargets", tg_arn, port,
                        &have[j], 1);
  }
  if (rc == CCM_OK && n_add > 0)
    rc = targets_send(aws, call, "DeregisterTargets", tg_arn, port, add,
                      n_add);
  for (size_t j = 0; j < n_have; j++)
    api->free(have[j]);
  api->free(have);
  api->free(have_port);
  api->free(add); /* borrowed strings */
  return rc;
}

/* ---- target groups and listeners ----------------------------------------- */

static void hc_params(struct aws_params *p, const struct nlb_tg *t) {
  char num[4][16];
  for (int i = 0; i < 4; i++)
    snprintf(num[i], sizeof(num[i]), "%d", t->hc[i]);
  aws_params_add(p, "HealthCheckProtocol", t->hc_proto);
  aws_params_add(p, "HealthCheckPort", t->hc_port);
  if (t->hc_path[0] != '\0')
    aws_params_add(p, "HealthCheckPath", t->hc_path);
  aws_params_add(p, "HealthCheckIntervalSeconds", num[0]);
  aws_params_add(p, "HealthCheckTimeoutSeconds", num[1]);
  aws_params_add(p, "HealthyThresholdCount", num[2]);
  aws_params_add(p, "UnhealthyThresholdCount", num[3]);
}

/* CreateTargetGroup (AWS answers the existing group when one with the same
 * name and settings exists, which makes a retried ensure converge). */
static int tg_create(struct aws *aws, struct ccm_call *call,
                     const char *vpc, const char *cluster,
                     const char *service, const struct ccm_service *svc,
                     struct nlb_tg *t) {
  struct aws_params p;
  xmlDoc *doc = NULL;
  char num[16];
  int rc;

  aws_params_init(&p, aws->api);
  aws_params_add(&p, "Name", t->name);
  aws_params_add(&p, "Protocol", t->proto);
  snprintf(num, sizeof(num), "%d", t->port);
  aws_params_add(&p, "Port", num);
  aws_params_add(&p, "VpcId", vpc);
  aws_params_add(&p, "TargetType", "instance");
  hc_params(&p, t);
  aws_lb_tag_params(&p, "Tags", cluster, service, svc);
  rc = v2_call(aws, call, "CreateTargetGroup", &p, &doc, NULL);
  if (rc != CCM_OK)
    return rc;
  if (!aws_xml_path_text(xmlDocGetRootElement(doc),
                         "CreateTargetGroupResult/TargetGroups/member/"
                         "TargetGroupArn",
                         t->arn, sizeof(t->arn))) {
    aws->api->call_set_error(call, "CreateTargetGroup %s: no ARN", t->name);
    rc = CCM_ERR_INTERNAL;
  }
  xmlFreeDoc(doc);
  return rc;
}

static bool hc_same(const struct nlb_tg *have, const struct nlb_tg *want) {
  return strcasecmp(have->hc_proto, want->hc_proto) == 0 &&
         strcmp(have->hc_port, want->hc_port) == 0 &&
         strcmp(have->hc_path, want->hc_path) == 0 &&
         memcmp(have->hc, want->hc, sizeof(have->hc)) == 0;
}

/* DeleteTargetGroup, waiting out ResourceInUse (a listener that goes away
 * asynchronously) while the call has time. Absent is CCM_OK. */
static int tg_delete(struct aws *aws, struct ccm_call *call,
                     const char *arn) {
  for (;;) {
    struct aws_params p;
    struct aws_error err;
    struct timespec ts = {NLB_INUSE_STEP_MS / 1000, 0};
    int rc;

    memset(&err, 0, sizeof(err));
    aws_params_init(&p, aws->api);
    aws_params_add(&p, "TargetGroupArn", arn);
    rc = v2_call(aws, call, "DeleteTargetGroup", &p, NULL, &err);
    if (rc == CCM_OK || rc == CCM_ERR_NOT_FOUND)
      return CCM_OK;
    if (strcmp(err.code, "ResourceInUse") != 0)
      return rc;
    if (aws->api->call_remaining_ms(call) < NLB_INUSE_STEP_MS + 2000 ||
        aws->api->call_cancelled(call)) {
      aws->api->call_set_error(call, "target group %s: still in use", arn);
      aws->api->call_set_retry_after(call, NLB_INUSE_STEP_MS * 5);
      return CCM_ERR_RETRY;
    }
    nanosleep(&ts, NULL);
  }
}

static void listener_params(struct aws_params *p, const struct nlb_want *w,
                            const char *tg_arn) {
  char num[16];
  snprintf(num, sizeof(num), "%d", w->port);
  aws_params_add(p, "Protocol", w->proto);
  aws_params_add(p, "Port", num);
  aws_params_add(p, "DefaultActions.member.1.Type", "forward");
  aws_params_add(p, "DefaultActions.member.1.TargetGroupArn", tg_arn);
  if (w->cert[0] != '\0') {
    aws_params_add(p, "Certificates.member.1.CertificateArn", w->cert);
    aws_params_add(p, "SslPolicy", w->policy);
  }
}

static bool listener_same(const struct nlb_listener *l,
                          const struct nlb_want *w, const char *tg_arn) {
  return strcasecmp(l->proto, w->proto) == 0 && strcmp(l->tg, tg_arn) == 0 &&
         strcmp(l->cert, w->cert) == 0 &&
         (w->cert[0] == '\0' || strcmp(l->policy, w->policy) == 0);
}

/* Target-group attributes from the option ("k=v" entries), on drift. */
static int tg_attributes(struct aws *aws, struct ccm_call *call,
                         const struct ccm_service *svc, const char *arn) {
  const struct ccm_option_value *o = aws_opt_list(svc, "target-group-attributes");
  struct aws_params p;
  xmlDoc *doc = NULL;
  xmlNode *set;
  size_t n = 0;
  int rc;

  if (o == NULL)
    return CCM_OK;
  aws_params_init(&p, aws->api);
  aws_params_add(&p, "TargetGroupArn", arn);
  rc = v2_call(aws, call, "DescribeTargetGroupAttributes", &p, &doc, NULL);
  if (rc != CCM_OK)
    return rc;
  set = aws_xml_path(xmlDocGetRootElement(doc),
                     "DescribeTargetGroupAttributesResult/Attributes");
  aws_params_init(&p, aws->api);
  aws_params_add(&p, "TargetGroupArn", arn);
  for (size_t i = 0; i < o->list_len; i++) {
    const char *eq = strchr(o->list[i], '=');
    char key[128];
    bool same = false;
    if (eq == NULL || (size_t)(eq - o->list[i]) >= sizeof(key))
      continue;
    memcpy(key, o->list[i], (size_t)(eq - o->list[i]));
    key[eq - o->list[i]] = '\0';
    for (xmlNode *m = aws_xml_child(set, "member"); m != NULL;
         m = aws_xml_next(m, "member")) {
      char k[128], v[256];
      if (aws_xml_path_text(m, "Key", k, sizeof(k)) &&
          strcmp(k, key) == 0 && aws_xml_path_text(m, "Value", v, sizeof(v)))
        same = strcmp(v, eq + 1) == 0;
    }
    if (same)
      continue;
    n++;
    aws_params_addf(&p, key, "Attributes.member.%zu.Key", n);
    aws_params_addf(&p, eq + 1, "Attributes.member.%zu.Value", n);
  }
  xmlFreeDoc(doc);
  if (n == 0) {
    aws_params_clear(&p);
    return CCM_OK;
  }
  return v2_call(aws, call, "ModifyTargetGroupAttributes", &p, NULL, NULL);
}

/* Cross-zone and access logs, on drift from the options (defaults off). */
static int lb_attributes(struct aws *aws, struct ccm_call *call,
                         const struct ccm_service *svc, const char *arn) {
  bool cross = aws_opt_bool(svc, "cross-zone-load-balancing-enabled", false);
  bool logs = aws_opt_bool(svc, "access-log-enabled", false);
  const char *bucket = aws_opt_str(svc, "access-log-s3-bucket-name");
  const char *prefix = aws_opt_str(svc, "access-log-s3-bucket-prefix");
  struct {
    const char *key, *want;
  } a[4] = {{"load_balancing.cross_zone.enabled", cross ? "true" : "false"},
            {"access_logs.s3.enabled", logs ? "true" : "false"},
            {"access_logs.s3.bucket", logs && bucket ? bucket : NULL},
            {"access_logs.s3.prefix", logs && prefix ? prefix : NULL}};
  struct aws_params p;
  xmlDoc *doc = NULL;
  xmlNode *set;
  bool drift = false;
  size_t n = 0;
  int rc;

  aws_params_init(&p, aws->api);
  aws_params_add(&p, "LoadBalancerArn", arn);
  rc = v2_call(aws, call, "DescribeLoadBalancerAttributes", &p, &doc, NULL);
  if (rc != CCM_OK)
    return rc;
  set = aws_xml_path(xmlDocGetRootElement(doc),
                     "DescribeLoadBalancerAttributesResult/Attributes");
  for (size_t i = 0; i < 4; i++) {
    bool seen = false;
    if (a[i].want == NULL)
      continue;
    for (xmlNode *m = aws_xml_child(set, "member"); m != NULL;
         m = aws_xml_next(m, "member")) {
      char k[128], v[256];
      v[0] = '\0';
      if (aws_xml_path_text(m, "Key", k, sizeof(k)) &&
          strcmp(k, a[i].key) == 0) {
        aws_xml_path_text(m, "Value", v, sizeof(v));
        seen = strcmp(v, a[i].want) == 0;
      }
    }
    drift = drift || !seen;
  }
  xmlFreeDoc(doc);
  if (!drift)
    return CCM_OK;
  aws_params_init(&p, aws->api);
  aws_params_add(&p, "LoadBalancerArn", arn);
  for (size_t i = 0; i < 4; i++) {
    if (a[i].want == NULL)
      continue;
    n++;
    aws_params_addf(&p, a[i].key, "Attributes.member.%zu.Key", n);
    aws_params_addf(&p, a[i].want, "Attributes.member.%zu.Value", n);
  }
  return v2_call(aws, call, "ModifyLoadBalancerAttributes", &p, NULL, NULL);
}

/* Create the load balancer; lb gets its ARN and DNS name. */
static int lb_create(struct aws *aws, struct ccm_call *call,
                     const struct ccm_service *svc, const char *vpc,
                     const char *cluster, const char *service, bool internal,
                     struct nlb_lb *lb) {
  const struct ccm_host_api *api = aws->api;
  const struct ccm_option_value *eip = aws_opt_list(svc, "eip-allocations");
  const struct ccm_option_value *ips = aws_opt_list(svc, "private-ipv4-addresses");
  char **subnets = NULL;
  size_t n_subnets = 0;
  struct aws_params p;
  xmlDoc *doc = NULL;
  xmlNode *m;
  int rc;

  rc = aws_lb_subnets(aws, call, svc, vpc, cluster, internal, &subnets,
                      &n_subnets);
  if (rc != CCM_OK)
    return rc;
  if ((eip != NULL && eip->list_len != n_subnets) ||
      (ips != NULL && ips->list_len != n_subnets)) {
    api->call_set_error(call, "eip-allocations and private-ipv4-addresses "
                        "need one entry per subnet (%zu subnets)",
                        n_subnets);
    rc = CCM_ERR_INVALID;
    goto out;
  }
  aws_params_init(&p, api);
  aws_params_add(&p, "Name", svc->lb_name);
  aws_params_add(&p, "Type", "network");
  if (internal)
    aws_params_add(&p, "Scheme", "internal");
  for (size_t i = 0; i < n_subnets; i++) {
    aws_params_addf(&p, subnets[i], "SubnetMappings.member.%zu.SubnetId",
                    i + 1);
    if (eip != NULL)
      aws_params_addf(&p, eip->list[i],
                      "SubnetMappings.member.%zu.AllocationId", i + 1);
    if (ips != NULL)
      aws_params_addf(&p, ips->list[i],
                      "SubnetMappings.member.%zu.PrivateIPv4Address", i + 1);
  }
  aws_lb_tag_params(&p, "Tags", cluster, service, svc);
  rc = v2_call(aws, call, "CreateLoadBalancer", &p, &doc, NULL);
  if (rc != CCM_OK)
    goto out;
  m = aws_xml_path(xmlDocGetRootElement(doc),
                   "CreateLoadBalancerResult/LoadBalancers/member");
  if (m != NULL)
    lb_read(m, lb);
  xmlFreeDoc(doc);
  if (!lb->found || lb->arn[0] == '\0' || lb->dns[0] == '\0') {
    api->call_set_error(call, "CreateLoadBalancer %s: no ARN or DNSName",
                        svc->lb_name);
    rc = CCM_ERR_INTERNAL;
    goto out;
  }
  api->log(aws->host, CCM_LOG_INFO, "created NLB %s for %s", svc->lb_name,
           service);
out:
  for (size_t i = 0; i < n_subnets; i++)
    api->free(subnets[i]);
  api->free(subnets);
  return rc;
}

/* AddTags when one of ours is missing or different. */
static int lb_tags(struct aws *aws, struct ccm_call *call, const char *arn,
                   const char *cluster, const char *service,
                   const struct ccm_service *svc, const struct aws_kv *tags,
                   size_t n_tags) {
  struct aws_params p;
  bool same = true;

  aws_params_init(&p, aws->api);
  aws_lb_tag_params(&p, "Tags", cluster, service, svc);
  for (size_t i = 0; same && i + 1 < p.n; i += 2) {
    const char *v = aws_tags_get(tags, n_tags, p.items[i].value);
    same = v != NULL && strcmp(v, p.items[i + 1].value) == 0;
  }
  aws_params_clear(&p);
  if (same)
    return CCM_OK;
  aws_params_init(&p, aws->api);
  aws_params_add(&p, "ResourceArns.member.1", arn);
  aws_lb_tag_params(&p, "Tags", cluster, service, svc);
  return v2_call(aws, call, "AddTags", &p, NULL, NULL);
}

/* Listeners and target groups toward want. */
static int reconcile(struct aws *aws, struct ccm_call *call,
                     const struct ccm_service *svc, const struct nlb_lb *lb,
                     struct nlb_state *s, struct nlb_want *want,
                     size_t n_want, const struct aws_instances *insts,
                     const char *cluster, const char *service) {
  const struct ccm_host_api *api = aws->api;
  char (*gone)[NLB_ARN] = NULL; /* target groups to delete at the end */
  size_t n_gone = 0;
  struct aws_params p;
  int rc = CCM_OK;

  gone = api->calloc(s->n_ls + n_want + 1, sizeof(*gone));
  if (gone == NULL)
    return CCM_ERR_INTERNAL;

  /* Listeners on ports no longer wanted go first (with their groups). */
  for (size_t i = 0; rc == CCM_OK && i < s->n_ls; i++) {
    struct nlb_listener *l = &s->ls[i];
    struct nlb_tg *t;
    for (size_t j = 0; j < n_want; j++)
      if (want[j].port == l->port)
        l->keep = true;
    if (l->keep)
      continue;
    rc = v2_call1(aws, call, "DeleteListener",
                  "ListenerArn", l->arn, NULL, NULL);
    if (rc == CCM_ERR_NOT_FOUND)
      rc = CCM_OK;
    t = state_tg(s, l->tg);
    if (rc == CCM_OK && t != NULL && t->owned)
      snprintf(gone[n_gone++], NLB_ARN, "%s", t->arn);
  }

  for (size_t j = 0; rc == CCM_OK && j < n_want; j++) {
    struct nlb_want *w = &want[j];
    struct nlb_listener *l = NULL;
    struct nlb_tg *cur = NULL;
    bool fresh = false;

    for (size_t i = 0; i < s->n_ls; i++)
      if (s->ls[i].port == w->port)
        l = &s->ls[i];
    if (l != NULL)
      cur = state_tg(s, l->tg);
    if (cur != NULL && cur->owned && strcmp(cur->name, w->tg.name) == 0 &&
        strcasecmp(cur->proto, w->tg.proto) == 0 && cur->port == w->tg.port) {
      snprintf(w->tg.arn, sizeof(w->tg.arn), "%s", cur->arn);
      if (!hc_same(cur, &w->tg)) {
        aws_params_init(&p, api);
        aws_params_add(&p, "TargetGroupArn", cur->arn);
        hc_params(&p, &w->tg);
        rc = v2_call(aws, call, "ModifyTargetGroup", &p, NULL, NULL);
      }
    } else {
      rc = tg_create(aws, call, lb->vpc, cluster, service, svc, &w->tg);
      fresh = true;
      if (rc == CCM_OK && cur != NULL && cur->owned &&
          strcmp(cur->arn, w->tg.arn) != 0)
        snprintf(gone[n_gone++], NLB_ARN, "%s", cur->arn);
    }
    if (rc == CCM_OK)
      rc = targets_sync(aws, call, w->tg.arn, w->tg.port, insts, fresh);
    if (rc == CCM_OK)
      rc = tg_attributes(aws, call, svc, w->tg.arn);
    if (rc != CCM_OK)
      break;
    if (l == NULL) {
      aws_params_init(&p, api);
      aws_params_add(&p, "LoadBalancerArn", lb->arn);
      listener_params(&p, w, w->tg.arn);
      rc = v2_call(aws, call, "CreateListener", &p, NULL, NULL);
    } else if (!listener_same(l, w, w->tg.arn)) {
      aws_params_init(&p, api);
      aws_params_add(&p, "ListenerArn", l->arn);
      listener_params(&p, w, w->tg.arn);
      rc = v2_call(aws, call, "ModifyListener", &p, NULL, NULL);
      if (rc == CCM_OK)
        snprintf(l->tg, sizeof(l->tg), "%s", w->tg.arn);
    }
  }

  /* Old groups, unless a wanted listener still forwards to one. */
  for (size_t i = 0; rc == CCM_OK && i < n_gone; i++) {
    bool used = false;
    for (size_t j = 0; j < n_want; j++)
      if (strcmp(want[j].tg.arn, gone[i]) == 0)
        used = true;
    for (size_t k = 0; k < i; k++)
      if (strcmp(gone[k], gone[i]) == 0)
        used = true; /* already deleted */
    if (!used)
      rc = tg_delete(aws, call, gone[i]);
  }
  api->free(gone);
  return rc;
}

/* ---- node security-group rules ------------------------------------------ */

/* The rules this load balancer wants in each node group. */
struct nlb_rules {
  struct aws_sg_rule *v;
  size_t n, cap;
};

static bool rule_same(const struct aws_sg_rule *a,
                      const struct aws_sg_rule *b) {
  return strcmp(a->proto, b->proto) == 0 && a->from == b->from &&
         a->to == b->to && a->source_is_group == b->source_is_group &&
         strcmp(a->source, b->source) == 0;
}

static bool rules_has(const struct nlb_rules *l, const struct aws_sg_rule *r) {
  for (size_t i = 0; i < l->n; i++)
    if (rule_same(&l->v[i], r))
      return true;
  return false;
}

/* Add a CIDR rule unless one with the same protocol, ports and source is
 * wanted already (EC2 keeps one rule, and one description, per key). */
static int rules_add(const struct ccm_host_api *api, struct nlb_rules *l,
                     const char *proto, int from, int to, const char *cidr,
                     const char *desc) {
  struct aws_sg_rule r;
  memset(&r, 0, sizeof(r));
  snprintf(r.proto, sizeof(r.proto), "%s", proto);
  r.from = from;
  r.to = to;
  snprintf(r.source, sizeof(r.source), "%s", cidr);
  snprintf(r.desc, sizeof(r.desc), "%s", desc);
  if (rules_has(l, &r))
    return CCM_OK;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    struct aws_sg_rule *v = api->realloc(l->v, cap * sizeof(*v));
    if (v == NULL)
      return CCM_ERR_INTERNAL;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = r;
  return CCM_OK;
}

/* DescribeSubnets for the load balancer's subnets: their IPv4 CIDRs. */
static int subnet_cidrs(struct aws *aws, struct ccm_call *call,
                        const struct nlb_lb *lb,
                        char (*cidrs)[64], size_t *n) {
  struct aws_params p;
  xmlDoc *doc = NULL;
  xmlNode *set;
  int rc;

  *n = 0;
  if (lb->n_subnets == 0)
    return CCM_OK;
  aws_params_init(&p, aws->api);
  for (size_t i = 0; i < lb->n_subnets; i++)
    aws_params_addf(&p, lb->subnets[i], "SubnetId.%zu", i + 1);
  rc = aws_query(aws, call, AWS_SVC_EC2, "DescribeSubnets", &p, &doc, NULL);
  aws_params_clear(&p);
  if (rc != CCM_OK)
    return rc;
  set = aws_xml_child(xmlDocGetRootElement(doc), "subnetSet");
  for (xmlNode *it = aws_xml_child(set, "item");
       it != NULL && *n < NLB_MAX_SUBNETS; it = aws_xml_next(it, "item"))
    if (aws_xml_path_text(it, "cidrBlock", cidrs[*n], 64))
      (*n)++;
  xmlFreeDoc(doc);
  return CCM_OK;
}

/* DescribeVpcs for the load balancer's VPC: its IPv4 CIDRs (the primary
 * and the associated ones), where an internal load balancer's clients
 * are, as upstream assumes. */
static int vpc_cidrs(struct aws *aws, struct ccm_call *call,
                     const struct nlb_lb *lb, char (*cidrs)[64], size_t *n) {
  struct aws_params p;
  xmlDoc *doc = NULL;
  xmlNode *vpc, *assoc;
  int rc;

  *n = 0;
  if (lb->vpc[0] == '\0')
    return CCM_OK;
  aws_params_init(&p, aws->api);
  aws_params_add(&p, "VpcId.1", lb->vpc);
  rc = aws_query(aws, call, AWS_SVC_EC2, "DescribeVpcs", &p, &doc, NULL);
  aws_params_clear(&p);
  if (rc != CCM_OK)
    return rc;
  vpc = aws_xml_child(aws_xml_child(xmlDocGetRootElement(doc), "vpcSet"),
                      "item");
  assoc = aws_xml_child(vpc, "cidrBlockAssociationSet");
  for (xmlNode *it = aws_xml_child(assoc, "item");
       it != NULL && *n < NLB_MAX_SUBNETS; it = aws_xml_next(it, "item")) {
    char state[32] = "";
    aws_xml_path_text(it, "cidrBlockState/state", state, sizeof(state));
    if ((state[0] == '\0' || strcmp(state, "associated") == 0) &&
        aws_xml_path_text(it, "cidrBlock", cidrs[*n], 64))
      (*n)++;
  }
  if (*n == 0 && vpc != NULL &&
      aws_xml_path_text(vpc, "cidrBlock", cidrs[0], 64))
    *n = 1;
  xmlFreeDoc(doc);
  return CCM_OK;
}

/* Client rules (each port's NodePort from each source range), health
 * rules (each health-check port from the subnets' CIDRs) and the shared
 * ICMP fragmentation-needed rule from each source range. Without source
 * ranges clients are 0.0.0.0/0, or the VPC's CIDRs when internal (the
 * subnets' when the VPC is not known). */
static int rules_want(struct aws *aws, struct ccm_call *call,
                      const struct ccm_service *svc,
                      const struct nlb_want *want, size_t n_want,
                      const struct nlb_lb *lb, struct nlb_rules *out) {
  const struct ccm_host_api *api = aws->api;
  char subnets[NLB_MAX_SUBNETS][64], vpcs[NLB_MAX_SUBNETS][64];
  char client[AWS_SG_DESC_MAX], health[AWS_SG_DESC_MAX];
  const char *all = "0.0.0.0/0";
  const char *ranges[NLB_MAX_SUBNETS];
  const char *const *src;
  size_t n_subnets = 0, n_src;
  int rc = subnet_cidrs(aws, call, lb, subnets, &n_subnets);

  if (rc != CCM_OK)
    return rc;
  snprintf(client, sizeof(client), "%s%s", NLB_RULE_CLIENT, svc->lb_name);
  snprintf(health, sizeof(health), "%s%s", NLB_RULE_HEALTH, svc->lb_name);
  if (svc->n_source_ranges > 0) {
    src = svc->source_ranges;
    n_src = svc->n_source_ranges;
  } else if (strcmp(lb->scheme, "internal") == 0) {
    size_t n_vpc = 0;
    rc = vpc_cidrs(aws, call, lb, vpcs, &n_vpc);
    if (rc != CCM_OK)
      return rc;
    for (size_t i = 0; i < (n_vpc > 0 ? n_vpc : n_subnets); i++)
      ranges[i] = n_vpc > 0 ? vpcs[i] : subnets[i];
    src = ranges;
    n_src = n_vpc > 0 ? n_vpc : n_subnets;
  } else {
    src = &all;
    n_src = 1;
  }
  for (size_t i = 0; rc == CCM_OK && i < n_want; i++) {
    const struct nlb_tg *t = &want[i].tg;
    const char *proto = strcasecmp(t->proto, "UDP") == 0 ? "udp" : "tcp";
    int hc = t->port;
    char *end;
    if (strcmp(t->hc_port, "traffic-port") != 0) {
      long v = strtol(t->hc_port, &end, 10);
      hc = end != t->hc_port && *end == '\0' && v > 0 && v < 65536 ? (int)v
                                                                   : -1;
    }
    for (size_t r = 0; rc == CCM_OK && r < n_src; r++)
      if (strchr(src[r], ':') == NULL) /* IPv4 rules only */
        rc = rules_add(api, out, proto, t->port, t->port, src[r], client);
    for (size_t r = 0; rc == CCM_OK && hc > 0 && r < n_subnets; r++)
      rc = rules_add(api, out, "tcp", hc, hc, subnets[r], health);
  }
  for (size_t r = 0; rc == CCM_OK && r < n_src; r++)
    if (strchr(src[r], ':') == NULL)
      rc = rules_add(api, out, "icmp", 3, 4, src[r], NLB_RULE_MTU);
  return rc;
}

/* One group toward want (NULL: this load balancer wants nothing there).
 * Rules without our descriptions are never revoked; the shared MTU rule
 * goes only when no client rule of any NLB admits its source. */
static int group_sync(struct aws *aws, struct ccm_call *call,
                      const struct aws_sg *g, const struct nlb_rules *want,
                      const char *lb_name) {
  char client[AWS_SG_DESC_MAX], health[AWS_SG_DESC_MAX];
  size_t prefix = strlen(NLB_RULE_CLIENT);
  int rc = CCM_OK;

  snprintf(client, sizeof(client), "%s%s", NLB_RULE_CLIENT, lb_name);
  snprintf(health, sizeof(health), "%s%s", NLB_RULE_HEALTH, lb_name);
  for (size_t i = 0; rc == CCM_OK && want != NULL && i < want->n; i++)
    if (!aws_sg_has_rule(g, &want->v[i]))
      rc = aws_sg_authorize(aws, call, g->id, &want->v[i]);
  for (size_t i = 0; rc == CCM_OK && i < g->n_rules; i++) {
    const struct aws_sg_rule *r = &g->rules[i];
    bool wanted = want != NULL && rules_has(want, r);
    bool stale = false;
    if (r->source_is_group || wanted)
      continue;
    if (strcmp(r->desc, client) == 0 || strcmp(r->desc, health) == 0) {
      stale = true;
    } else if (strcmp(r->desc, NLB_RULE_MTU) == 0) {
      stale = true;
      for (size_t j = 0; stale && j < g->n_rules; j++) {
        const struct aws_sg_rule *o = &g->rules[j];
        if (strncmp(o->desc, NLB_RULE_CLIENT, prefix) == 0 &&
            strcmp(o->desc, client) != 0 && !o->source_is_group &&
            strcmp(o->source, r->source) == 0)
          stale = false; /* another NLB's clients still use it */
      }
    }
    if (stale)
      rc = aws_sg_revoke(aws, call, g->id, r);
  }
  return rc;
}

/* Every security group tagged for the cluster toward this load balancer's
 * rules: the node groups (aws_sg_for_nodes) get want, the others lose our
 * rules. want NULL (delete): every group loses them. */
static int node_rules_sync(struct aws *aws, struct ccm_call *call,
                           const struct ccm_service *svc, const char *cluster,
                           const struct aws_instances *insts,
                           const struct nlb_rules *want) {
  const struct ccm_host_api *api = aws->api;
  struct aws_sgs l = {0};
  struct aws_params p;
  char key[300];
  const char *k = key;
  unsigned f = 1;
  int rc;

  if (aws->cfg.disable_sg_ingress)
    return CCM_OK;
  snprintf(key, sizeof(key), "%s%s", AWS_CLUSTER_TAG_PREFIX, cluster);
  aws_params_init(&p, api);
  aws_params_filter(&p, &f, "tag-key", &k, 1);
  rc = aws_sg_describe(aws, call, &p, &l);
  aws_params_clear(&p);
  for (size_t i = 0; rc == CCM_OK && i < l.n; i++) {
    const struct aws_sg *g = &l.items[i];
    bool node = want != NULL && insts != NULL &&
                aws_sg_for_nodes(g, insts, cluster);
    if (!aws_tags_in_cluster(g->tags, g->n_tags, cluster))
      continue; /* the filter said so; never trust it to touch others */
    rc = group_sync(aws, call, g, node ? want : NULL, svc->lb_name);
  }
  aws_sgs_clear(api, &l);
  return rc;
}

/* Ensure and update_hosts: the wanted rules in the nodes' groups. */
static int node_rules(struct aws *aws, struct ccm_call *call,
                      const struct ccm_service *svc, const char *cluster,
                      const struct nlb_want *want, size_t n_want,
                      const struct nlb_lb *lb,
                      const struct aws_instances *insts) {
  struct nlb_rules rules = {0};
  int rc;

  if (aws->cfg.disable_sg_ingress)
    return CCM_OK;
  rc = rules_want(aws, call, svc, want, n_want, lb, &rules);
  if (rc == CCM_OK)
    rc = node_rules_sync(aws, call, svc, cluster, insts, &rules);
  aws->api->free(rules.v);
  return rc;
}

/* ---- operations ---------------------------------------------------------- */

int aws_nlb_get(struct aws *aws, struct ccm_call *call,
                const struct ccm_service *svc, struct ccm_lb_status *out) {
  struct nlb_lb lb;
  int rc = lb_describe(aws, call, svc->lb_name, &lb);

  if (rc == CCM_OK && (!lb.found || strcmp(lb.type, "network") != 0))
    rc = CCM_ERR_NOT_FOUND;
  if (rc == CCM_OK)
    rc = aws->api->lb_add_ingress(out, NULL, lb.dns);
  return rc;
}

int aws_nlb_ensure(struct aws *aws, struct ccm_call *call,
                   const struct ccm_service *svc,
                   const struct ccm_node_list *nodes,
                   struct ccm_lb_status *out) {
  const struct ccm_host_api *api = aws->api;
  const char *cluster = aws_cluster(aws, svc->cluster_name);
  bool internal = aws_opt_bool(svc, "internal", false);
  struct aws_instances insts = {0};
  struct nlb_want *want = NULL;
  struct nlb_state s = {0};
  struct nlb_lb lb;
  struct aws_kv *have_tags = NULL;
  size_t n_have_tags = 0;
  char service[CCM_MAX_NAME * 2 + 2];
  const char *vpc = aws->cfg.vpc;
  int rc;

  memset(&lb, 0, sizeof(lb));
  rc = aws_lb_validate(aws, call, svc, NLB_MAX_PORTS, "an NLB");
  if (rc != CCM_OK)
    return rc;
  snprintf(service, sizeof(service), "%s/%s", svc->namespace_, svc->name);
  want = api->calloc(svc->n_ports, sizeof(*want));
  if (want == NULL)
    return CCM_ERR_INTERNAL;
  rc = want_ports(aws, call, svc, cluster, want);
  if (rc == CCM_OK)
    rc = aws_nodes_instances(aws, call, nodes->nodes, nodes->n_nodes, &insts);
  if (rc == CCM_OK)
    rc = lb_describe(aws, call, svc->lb_name, &lb);
  if (rc != CCM_OK)
    goto out;
  if (lb.found) {
    rc = check_owned(aws, call, svc, &lb, cluster, &have_tags, &n_have_tags);
    if (rc == CCM_OK && (strcmp(lb.scheme, "internal") == 0) != internal) {
      api->call_set_error(call, "load balancer %s is %s; the scheme cannot "
                          "change (recreate the Service)", svc->lb_name,
                          lb.scheme);
      rc = CCM_ERR_INVALID;
    }
    if (rc == CCM_OK)
      rc = lb_tags(aws, call, lb.arn, cluster, service, svc, have_tags,
                   n_have_tags);
    if (rc == CCM_OK)
      rc = state_describe(aws, call, lb.arn, cluster, true, &s);
  } else {
    for (size_t i = 0; vpc == NULL && i < insts.n; i++)
      vpc = insts.items[i].vpc_id;
    if (vpc == NULL) {
      api->call_set_error(call, "cannot tell the VPC: set vpc in the config "
                          "or give the Service nodes with EC2 instances");
      api->call_set_retry_after(call, AWS_RETRY_AFTER_MS);
      rc = CCM_ERR_RETRY;
      goto out;
    }
    rc = lb_create(aws, call, svc, vpc, cluster, service, internal, &lb);
    if (rc == CCM_OK && lb.vpc[0] == '\0')
      snprintf(lb.vpc, sizeof(lb.vpc), "%s", vpc);
  }
  if (rc == CCM_OK)
    rc = reconcile(aws, call, svc, &lb, &s, want, svc->n_ports, &insts,
                   cluster, service);
  if (rc == CCM_OK)
    rc = lb_attributes(aws, call, svc, lb.arn);
  if (rc == CCM_OK)
    rc = node_rules(aws, call, svc, cluster, want, svc->n_ports, &lb,
                    &insts);
  if (rc == CCM_OK)
    rc = api->lb_add_ingress(out, NULL, lb.dns);
out:
  state_free(api, &s);
  aws_instances_clear(api, &insts);
  aws_tags_free(api, have_tags, n_have_tags);
  api->free(want);
  return rc;
}

int aws_nlb_update_hosts(struct aws *aws, struct ccm_call *call,
                         const struct ccm_service *svc,
                         const struct ccm_node_list *nodes) {
  const struct ccm_host_api *api = aws->api;
  const char *cluster = aws_cluster(aws, svc->cluster_name);
  struct aws_instances insts = {0};
  struct nlb_want *want = NULL;
  struct nlb_state s = {0};
  struct nlb_lb lb;
  int rc = lb_describe(aws, call, svc->lb_name, &lb);

  if (rc == CCM_OK && !lb.found)
    rc = CCM_ERR_NOT_FOUND;
  if (rc == CCM_OK)
    rc = check_owned(aws, call, svc, &lb, cluster, NULL, NULL);
  if (rc == CCM_OK)
    rc = state_describe(aws, call, lb.arn, cluster, false, &s);
  if (rc == CCM_OK)
    rc = aws_nodes_instances(aws, call, nodes->nodes, nodes->n_nodes, &insts);
  for (size_t i = 0; rc == CCM_OK && i < s.n_tgs; i++)
    if (s.tgs[i].owned)
      rc = targets_sync(aws, call, s.tgs[i].arn, s.tgs[i].port, &insts,
                        false);
  /* New nodes may bring new groups; the rules follow them. */
  if (rc == CCM_OK && !aws->cfg.disable_sg_ingress && svc->n_ports > 0 &&
      svc->n_ports <= 50) {
    want = api->calloc(svc->n_ports, sizeof(*want));
    rc = want == NULL ? CCM_ERR_INTERNAL
                      : want_ports(aws, call, svc, cluster, want);
    if (rc == CCM_OK)
      rc = node_rules(aws, call, svc, cluster, want, svc->n_ports, &lb,
                      &insts);
  }
  api->free(want);
  aws_instances_clear(api, &insts);
  state_free(api, &s);
  return rc;
}

/* Owned target groups named for the Service's ports that no listener
 * uses: left by an ensure that failed before its listener was made. */
static int sweep_orphans(struct aws *aws, struct ccm_call *call,
                         const struct ccm_service *svc, const char *cluster,
                         const struct nlb_state *done) {
  const struct ccm_host_api *api = aws->api;
  struct nlb_want *want;
  int rc = CCM_OK;

  if (svc->n_ports == 0 || svc->n_ports > 50)
    return CCM_OK;
  want = api->calloc(svc->n_ports, sizeof(*want));
  if (want == NULL)
    return CCM_ERR_INTERNAL;
  if (want_ports(aws, call, svc, cluster, want) != CCM_OK) {
    api->free(want); /* nothing was ever made from such ports */
    return CCM_OK;
  }
  for (size_t i = 0; rc == CCM_OK && i < svc->n_ports; i++) {
    xmlDoc *doc = NULL;
    xmlNode *m;
    const char *arn;
    bool seen = false, owned = false, used;

    for (size_t j = 0; j < done->n_tgs; j++)
      if (strcmp(done->tgs[j].name, want[i].tg.name) == 0)
        seen = true;
    if (seen)
      continue;
    rc = v2_call1(aws, call, "DescribeTargetGroups",
                  "Names.member.1", want[i].tg.name, &doc, NULL);
    if (rc == CCM_ERR_NOT_FOUND) {
      rc = CCM_OK;
      continue;
    }
    if (rc != CCM_OK)
      break;
    m = aws_xml_path(xmlDocGetRootElement(doc),
                     "DescribeTargetGroupsResult/TargetGroups/member");
    tg_read(m, &want[i].tg);
    used = m == NULL || aws_xml_path(m, "LoadBalancerArns/member") != NULL;
    xmlFreeDoc(doc);
    arn = want[i].tg.arn;
    if (used || arn[0] == '\0')
      continue;
    rc = tags_owned(aws, call, &arn, 1, cluster, &owned, NULL, NULL);
    if (rc == CCM_OK && owned)
      rc = tg_delete(aws, call, arn);
  }
  api->free(want);
  return rc;
}

int aws_nlb_delete(struct aws *aws, struct ccm_call *call,
                   const struct ccm_service *svc) {
  const struct ccm_host_api *api = aws->api;
  const char *cluster = aws_cluster(aws, svc->cluster_name);
  struct nlb_state s = {0};
  struct nlb_lb lb;
  const char *arn;
  bool owned = false;
  int rc = lb_describe(aws, call, svc->lb_name, &lb);

  if (rc != CCM_OK)
    return rc;
  if (!lb.found) { /* absent; what a failed ensure or delete left goes */
    rc = sweep_orphans(aws, call, svc, cluster, &s);
    if (rc == CCM_OK)
      rc = node_rules_sync(aws, call, svc, cluster, NULL, NULL);
    return rc;
  }
  arn = lb.arn;
  if (strcmp(lb.type, "network") == 0)
    rc = tags_owned(aws, call, &arn, 1, cluster, &owned, NULL, NULL);
  if (rc != CCM_OK)
    return rc;
  if (!owned) {
    api->log(aws->host, CCM_LOG_WARN, "load balancer %s is not an NLB "
             "owned by cluster %s: left in place", svc->lb_name, cluster);
    return CCM_OK;
  }
  rc = state_describe(aws, call, lb.arn, cluster, false, &s);
  if (rc == CCM_OK) {
    rc = v2_call1(aws, call, "DeleteLoadBalancer",
                  "LoadBalancerArn", lb.arn, NULL, NULL);
    if (rc == CCM_ERR_NOT_FOUND)
      rc = CCM_OK;
  }
  for (size_t i = 0; rc == CCM_OK && i < s.n_tgs; i++)
    if (s.tgs[i].owned)
      rc = tg_delete(aws, call, s.tgs[i].arn);
  if (rc == CCM_OK)
    rc = node_rules_sync(aws, call, svc, cluster, NULL, NULL);
  if (rc == CCM_OK)
    rc = sweep_orphans(aws, call, svc, cluster, &s);
  if (rc == CCM_OK)
    api->log(aws->host, CCM_LOG_INFO, "deleted NLB %s", svc->lb_name);
  state_free(api, &s);
  return rc;
}
