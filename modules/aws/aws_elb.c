/*
 * aws_elb.c: Classic ELB (API 2012-06-01) load balancers of the aws module:
 * get, ensure (security group, subnets, listeners, health check,
 * attributes, node security-group rules, instances), update_hosts and
 * delete. It changes only load balancers and security groups carrying
 * kubernetes.io/cluster/<id>=owned; names derive from svc->lb_name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/tree.h>

#include "aws.h"
#include "aws_lb.h"

#define ELB_HC_INTERVAL 10
#define ELB_HC_TIMEOUT 5
#define ELB_HC_HEALTHY 2
#define ELB_HC_UNHEALTHY 6
#define ELB_IDLE_TIMEOUT 60
#define ELB_DRAIN_TIMEOUT 300
#define ELB_PROXY_POLICY "k8s-proxyprotocol-enabled"
#define ELB_SSL_POLICY_PREFIX "k8s-SSLNegotiationPolicy-"
#define ELB_MAX_PORTS 100 /* listeners per Classic load balancer */

/* ---- small string lists -------------------------------------------------- */

struct strlist {
  char **v;
  size_t n;
  bool oom;
};

static void sl_add(const struct ccm_host_api *api, struct strlist *l,
                   const char *s) {
  char **v;
  if (l->oom || s == NULL)
    return;
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i], s) == 0)
      return; /* a set: no duplicates */
  v = api->realloc(l->v, (l->n + 1) * sizeof(*v));
  if (v == NULL) {
    l->oom = true;
    return;
  }
  l->v = v;
  v[l->n] = api->strdup(s);
  if (v[l->n] == NULL) {
    l->oom = true;
    return;
  }
  l->n++;
}

static bool sl_has(const struct strlist *l, const char *s) {
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i], s) == 0)
      return true;
  return false;
}

static void sl_free(const struct ccm_host_api *api, struct strlist *l) {
  for (size_t i = 0; i < l->n; i++)
    api->free(l->v[i]);
  api->free(l->v);
  memset(l, 0, sizeof(*l));
}

/* member.N entries of a list element (<Subnets><member>x</member>...). */
static void sl_from_members(const struct ccm_host_api *api,
                            const xmlNode *list, const char *sub,
                            struct strlist *out) {
  for (xmlNode *m = aws_xml_child(list, "member"); m != NULL;
       m = aws_xml_next(m, "member")) {
    char buf[256];
    bool ok = sub != NULL ? aws_xml_path_text(m, sub, buf, sizeof(buf))
                          : aws_xml_text(m, buf, sizeof(buf));
    if (ok && buf[0] != '\0')
      sl_add(api, out, buf);
  }
}

static bool sl_same(const struct strlist *a, const struct strlist *b) {
  if (a->n != b->n)
    return false;
  for (size_t i = 0; i < a->n; i++)
    if (!sl_has(b, a->v[i]))
      return false;
  return true;
}

/* ---- options ------------------------------------------------------------- */


/* ---- the load balancer as described -------------------------------------- */

struct elb_listener {
  char proto[8], iproto[8];
  int port, iport;
  char cert[512];
  char policy[128]; /* the first listener policy, "" = none */
};

struct elb {
  bool found;
  char *dns, *scheme;
  struct elb_listener *listeners;
  size_t n_listeners;
  struct strlist subnets, sgs, instances;
  struct strlist proxy_ports; /* instance ports with the proxy policy */
  char hc_target[300];
  int hc[4]; /* interval, timeout, healthy, unhealthy */
};

static void elb_free(const struct ccm_host_api *api, struct elb *e) {
  api->free(e->dns);
  api->free(e->scheme);
  api->free(e->listeners);
  sl_free(api, &e->subnets);
  sl_free(api, &e->sgs);
  sl_free(api, &e->instances);
  sl_free(api, &e->proxy_ports);
  memset(e, 0, sizeof(*e));
}

static int elb_call(struct aws *aws, struct ccm_call *call, const char *action,
                    struct aws_params *p, xmlDoc **doc,
                    struct aws_error *err) {
  return aws_lb_call(aws, call, AWS_SVC_ELB, action, p, doc, err);
}

static int elb_call1(struct aws *aws, struct ccm_call *call, const char *action,
                     const char *key, const char *value, xmlDoc **doc,
                     struct aws_error *err) {
  return aws_lb_call1(aws, call, AWS_SVC_ELB, action, key, value, doc, err);
}

/* DescribeLoadBalancers for name; e->found false when absent. */
static int elb_describe(struct aws *aws, struct ccm_call *call,
                        const char *name, struct elb *e) {
  const struct ccm_host_api *api = aws->api;
  struct aws_error err;
  xmlDoc *doc = NULL;
  xmlNode *d, *ls;
  int rc;

  memset(e, 0, sizeof(*e));
  rc = elb_call1(aws, call, "DescribeLoadBalancers",
                 "LoadBalancerNames.member.1", name, &doc, &err);
  if (rc == CCM_ERR_NOT_FOUND)
    return CCM_OK;
  if (rc != CCM_OK)
    return rc;
  d = aws_xml_path(xmlDocGetRootElement(doc),
                   "DescribeLoadBalancersResult/LoadBalancerDescriptions/"
                   "member");
  if (d == NULL) {
    xmlFreeDoc(doc);
    return CCM_OK;
  }
  e->found = true;
  e->dns = aws_xml_path_dup(api, d, "DNSName");
  e->scheme = aws_xml_path_dup(api, d, "Scheme");
  ls = aws_xml_child(d, "ListenerDescriptions");
  for (xmlNode *m = aws_xml_child(ls, "member"); m != NULL;
       m = aws_xml_next(m, "member")) {
    xmlNode *l = aws_xml_child(m, "Listener");
    struct elb_listener *v =
        api->realloc(e->listeners, (e->n_listeners + 1) * sizeof(*v));
    if (v == NULL) {
      rc = CCM_ERR_INTERNAL;
      break;
    }
    e->listeners = v;
    v = &v[e->n_listeners++];
    memset(v, 0, sizeof(*v));
    aws_xml_path_text(l, "Protocol", v->proto, sizeof(v->proto));
    aws_xml_path_text(l, "InstanceProtocol", v->iproto, sizeof(v->iproto));
    aws_xml_path_text(l, "SSLCertificateId", v->cert, sizeof(v->cert));
    v->port = aws_lb_int_at(l, "LoadBalancerPort");
    v->iport = aws_lb_int_at(l, "InstancePort");
    aws_xml_path_text(m, "PolicyNames/member", v->policy, sizeof(v->policy));
  }
  xmlNode *bs = aws_xml_child(d, "BackendServerDescriptions");
  for (xmlNode *m = aws_xml_child(bs, "member"); m != NULL;
       m = aws_xml_next(m, "member")) {
    char port[16];
    xmlNode *pn = aws_xml_child(m, "PolicyNames");
    for (xmlNode *n = aws_xml_child(pn, "member"); n != NULL;
         n = aws_xml_next(n, "member")) {
      char pol[128];
      if (aws_xml_text(n, pol, sizeof(pol)) &&
          strcmp(pol, ELB_PROXY_POLICY) == 0 &&
          aws_xml_path_text(m, "InstancePort", port, sizeof(port)))
        sl_add(api, &e->proxy_ports, port);
    }
  }
  sl_from_members(api, aws_xml_child(d, "Subnets"), NULL, &e->subnets);
  sl_from_members(api, aws_xml_child(d, "SecurityGroups"), NULL, &e->sgs);
  sl_from_members(api, aws_xml_child(d, "Instances"), "InstanceId",
                  &e->instances);
  aws_xml_path_text(d, "HealthCheck/Target", e->hc_target,
                    sizeof(e->hc_target));
  e->hc[0] = aws_lb_int_at(d, "HealthCheck/Interval");
  e->hc[1] = aws_lb_int_at(d, "HealthCheck/Timeout");
  e->hc[2] = aws_lb_int_at(d, "HealthCheck/HealthyThreshold");
  e->hc[3] = aws_lb_int_at(d, "HealthCheck/UnhealthyThreshold");
  xmlFreeDoc(doc);
  if (e->dns == NULL || e->subnets.oom || e->sgs.oom || e->instances.oom)
    rc = CCM_ERR_INTERNAL;
  return rc;
}

/* The load balancer's tags; *owned when this cluster owns it. */
static int elb_owned(struct aws *aws, struct ccm_call *call, const char *name,
                     const char *cluster, bool *owned, struct aws_kv **keep,
                     size_t *n_keep) {
  const struct ccm_host_api *api = aws->api;
  struct aws_kv *tags = NULL;
  size_t n = 0;
  xmlDoc *doc = NULL;
  int rc;

  *owned = false;
  rc = elb_call1(aws, call, "DescribeTags",
                 "LoadBalancerNames.member.1", name, &doc, NULL);
  if (rc != CCM_OK)
    return rc;
  rc = aws_tags_parse(api,
                      aws_xml_path(xmlDocGetRootElement(doc),
                                   "DescribeTagsResult/TagDescriptions/"
                                   "member/Tags"),
                      true, &tags, &n);
  xmlFreeDoc(doc);
  if (rc == CCM_OK)
    *owned = aws_tags_owned(tags, n, cluster);
  if (rc == CCM_OK && keep != NULL) {
    *keep = tags; /* the caller compares and frees them */
    *n_keep = n;
    return rc;
  }
  aws_tags_free(api, tags, n);
  return rc;
}

/* ---- desired state ------------------------------------------------------- */

static int want_listeners(struct aws *aws, struct ccm_call *call,
                          const struct ccm_service *svc,
                          struct elb_listener *out) {
  const char *cert = aws_opt_str(svc, "ssl-cert");
  const char *backend = aws_opt_str(svc, "backend-protocol");
  const struct ccm_option_value *ssl_ports = aws_opt_list(svc, "ssl-ports");
  bool http = backend != NULL && (strcasecmp(backend, "http") == 0 ||
                                  strcasecmp(backend, "https") == 0);

  for (size_t i = 0; i < svc->n_ports; i++) {
    const struct ccm_service_port *sp = svc->ports[i];
    struct elb_listener *l = &out[i];
    memset(l, 0, sizeof(*l));
    if (sp->protocol != CCM_PROTO_TCP) {
      aws->api->call_set_error(call, "port %u: Classic ELB serves TCP only",
                               sp->port);
      return CCM_ERR_INVALID;
    }
    if (sp->node_port == 0) {
      aws->api->call_set_error(call, "port %u has no node port", sp->port);
      return CCM_ERR_INVALID;
    }
    l->port = sp->port;
    l->iport = sp->node_port;
    snprintf(l->iproto, sizeof(l->iproto), "%s",
             backend == NULL                       ? "TCP"
             : strcasecmp(backend, "http") == 0    ? "HTTP"
             : strcasecmp(backend, "https") == 0   ? "HTTPS"
             : strcasecmp(backend, "ssl") == 0     ? "SSL"
                                                   : "TCP");
    if (cert != NULL && aws_lb_port_listed(ssl_ports, sp)) {
      snprintf(l->proto, sizeof(l->proto), "%s", http ? "HTTPS" : "SSL");
      snprintf(l->cert, sizeof(l->cert), "%s", cert);
    } else {
      snprintf(l->proto, sizeof(l->proto), "%s", http ? "HTTP" : "TCP");
      if (!http)
        snprintf(l->iproto, sizeof(l->iproto), "TCP");
    }
  }
  return CCM_OK;
}

static bool listener_same(const struct elb_listener *a,
                          const struct elb_listener *b) {
  return a->port == b->port && a->iport == b->iport &&
         strcasecmp(a->proto, b->proto) == 0 &&
         strcasecmp(a->iproto, b->iproto) == 0 && strcmp(a->cert, b->cert) == 0;
}

static void listener_params(struct aws_params *p, size_t n,
                            const struct elb_listener *l) {
  char num[16];
  aws_params_addf(p, l->proto, "Listeners.member.%zu.Protocol", n);
  snprintf(num, sizeof(num), "%d", l->port);
  aws_params_addf(p, num, "Listeners.member.%zu.LoadBalancerPort", n);
  aws_params_addf(p, l->iproto, "Listeners.member.%zu.InstanceProtocol", n);
  snprintf(num, sizeof(num), "%d", l->iport);
  aws_params_addf(p, num, "Listeners.member.%zu.InstancePort", n);
  if (l->cert[0] != '\0')
    aws_params_addf(p, l->cert, "Listeners.member.%zu.SSLCertificateId", n);
}

/* Health-check target and numbers from eTP and the options. */
static void want_health(const struct ccm_service *svc, char *target,
                        size_t len, int hc[4]) {
  const char *proto = aws_opt_str(svc, "healthcheck-protocol");
  const char *port = aws_opt_str(svc, "healthcheck-port");
  const char *path = aws_opt_str(svc, "healthcheck-path");
  unsigned first = svc->n_ports > 0 ? svc->ports[0]->node_port : 0;

  if (proto == NULL && svc->external_traffic_local &&
      svc->health_check_node_port != 0) {
    snprintf(target, len, "HTTP:%u/healthz", svc->health_check_node_port);
  } else {
    char up[8];
    size_t i;
    const char *p = proto != NULL ? proto : "tcp";
    for (i = 0; i < sizeof(up) - 1 && p[i]; i++)
      up[i] = (char)(p[i] >= 'a' && p[i] <= 'z' ? p[i] - 32 : p[i]);
    up[i] = '\0';
    unsigned hp = first;
    if (port != NULL && strcmp(port, "traffic-port") != 0)
      hp = (unsigned)strtoul(port, NULL, 10);
    if (strcmp(up, "HTTP") == 0 || strcmp(up, "HTTPS") == 0)
      snprintf(target, len, "%s:%u%s", up, hp, path ? path : "/");
    else
      snprintf(target, len, "%s:%u", up, hp);
  }
  hc[0] = (int)aws_opt_int(svc, "healthcheck-interval", ELB_HC_INTERVAL);
  hc[1] = (int)aws_opt_int(svc, "healthcheck-timeout", ELB_HC_TIMEOUT);
  hc[2] = (int)aws_opt_int(svc, "healthcheck-healthy-threshold", ELB_HC_HEALTHY);
  hc[3] = (int)aws_opt_int(svc, "healthcheck-unhealthy-threshold",
                       ELB_HC_UNHEALTHY);
}

/* ---- subnets ------------------------------------------------------------- */

struct subnet_pick {
  char id[64], az[64];
  int score; /* role tag 2, cluster tag 1 */
};

/* The subnets named by the option: IDs as they are, names by tag:Name. */
static int subnets_named(struct aws *aws, struct ccm_call *call,
                         const struct ccm_option_value *o, const char *vpc,
                         struct strlist *out) {
  const struct ccm_host_api *api = aws->api;
  struct strlist names = {0};
  struct aws_params p;
  unsigned f = 1;
  xmlDoc *doc = NULL;
  int rc = CCM_OK;

  for (size_t i = 0; i < o->list_len; i++) {
    if (strncmp(o->list[i], "subnet-", 7) == 0)
      sl_add(api, out, o->list[i]);
    else
      sl_add(api, &names, o->list[i]);
  }
  if (names.n > 0) {
    aws_params_init(&p, api);
    aws_params_filter(&p, &f, "tag:Name", (const char *const *)names.v,
                      names.n);
    aws_params_filter(&p, &f, "vpc-id", &vpc, 1);
    rc = aws_query(aws, call, AWS_SVC_EC2, "DescribeSubnets", &p, &doc, NULL);
    aws_params_clear(&p);
    if (rc == CCM_OK) {
      xmlNode *set = aws_xml_child(xmlDocGetRootElement(doc), "subnetSet");
      size_t found = 0;
      for (xmlNode *s = aws_xml_child(set, "item"); s != NULL;
           s = aws_xml_next(s, "item")) {
        char id[64];
        if (aws_xml_path_text(s, "subnetId", id, sizeof(id))) {
          sl_add(api, out, id);
          found++;
        }
      }
      if (found < names.n) {
        api->call_set_error(call, "subnets option: %zu of %zu names found",
                            found, names.n);
        rc = CCM_ERR_INVALID;
      }
      xmlFreeDoc(doc);
    }
  }
  sl_free(api, &names);
  return rc;
}

/* Route tables of the VPC: which subnets reach an internet gateway. */
static int public_subnets(struct aws *aws, struct ccm_call *call,
                          const char *vpc, struct strlist *pub,
                          bool *main_public) {
  const struct ccm_host_api *api = aws->api;
  struct aws_params p;
  unsigned f = 1;
  xmlDoc *doc = NULL;
  int rc;

  *main_public = false;
  aws_params_init(&p, api);
  aws_params_filter(&p, &f, "vpc-id", &vpc, 1);
  rc = aws_query(aws, call, AWS_SVC_EC2, "DescribeRouteTables", &p, &doc,
                 NULL);
  aws_params_clear(&p);
  if (rc != CCM_OK)
    return rc;
  xmlNode *set = aws_xml_child(xmlDocGetRootElement(doc), "routeTableSet");
  for (xmlNode *t = aws_xml_child(set, "item"); t != NULL;
       t = aws_xml_next(t, "item")) {
    bool igw = false, is_main = false;
    xmlNode *routes = aws_xml_child(t, "routeSet");
    for (xmlNode *r = aws_xml_child(routes, "item"); r != NULL;
         r = aws_xml_next(r, "item")) {
      char gw[64];
      if (aws_xml_path_text(r, "gatewayId", gw, sizeof(gw)) &&
          strncmp(gw, "igw", 3) == 0)
        igw = true;
    }
    xmlNode *assocs = aws_xml_child(t, "associationSet");
    for (xmlNode *a = aws_xml_child(assocs, "item"); a != NULL;
         a = aws_xml_next(a, "item")) {
      char v[64], mark[70];
      if (aws_xml_path_text(a, "main", v, sizeof(v)) &&
          strcmp(v, "true") == 0)
        is_main = true;
      if (!aws_xml_path_text(a, "subnetId", v, sizeof(v)) || v[0] == '\0')
        continue;
      /* Public subnets by ID; private explicit associations as "!<id>". */
      snprintf(mark, sizeof(mark), "%s%s", igw ? "" : "!", v);
      sl_add(api, pub, mark);
    }
    if (is_main && igw)
      *main_public = true;
  }
  xmlFreeDoc(doc);
  return pub->oom ? CCM_ERR_INTERNAL : CCM_OK;
}

/* findELBSubnets: one subnet per AZ among this cluster's (or untagged)
 * subnets of the VPC; public LBs only in subnets routed to an IGW. */
static int subnets_choose(struct aws *aws, struct ccm_call *call,
                          const char *vpc, const char *cluster, bool internal,
                          struct strlist *out) {
  const struct ccm_host_api *api = aws->api;
  const char *role = internal ? "kubernetes.io/role/internal-elb"
                              : "kubernetes.io/role/elb";
  struct subnet_pick picks[32];
  size_t n_picks = 0;
  struct strlist pub = {0};
  struct aws_params p;
  bool main_public = false;
  unsigned f = 1;
  xmlDoc *doc = NULL;
  int rc;

  rc = public_subnets(aws, call, vpc, &pub, &main_public);
  if (rc != CCM_OK)
    goto out;
  aws_params_init(&p, api);
  aws_params_filter(&p, &f, "vpc-id", &vpc, 1);
  rc = aws_query(aws, call, AWS_SVC_EC2, "DescribeSubnets", &p, &doc, NULL);
  aws_params_clear(&p);
  if (rc != CCM_OK)
    goto out;
  xmlNode *set = aws_xml_child(xmlDocGetRootElement(doc), "subnetSet");
  for (xmlNode *s = aws_xml_child(set, "item"); s != NULL;
       s = aws_xml_next(s, "item")) {
    struct subnet_pick c;
    struct aws_kv *tags = NULL;
    size_t n_tags = 0, j;
    bool other_cluster = false, ours, public_;
    char mark[70];

    memset(&c, 0, sizeof(c));
    if (!aws_xml_path_text(s, "subnetId", c.id, sizeof(c.id)) ||
        !aws_xml_path_text(s, "availabilityZone", c.az, sizeof(c.az)))
      continue;
    if (aws_tags_parse(api, aws_xml_child(s, "tagSet"), false, &tags,
                       &n_tags) != CCM_OK) {
      aws_tags_free(api, tags, n_tags);
      rc = CCM_ERR_INTERNAL;
      goto out;
    }
    ours = aws_tags_in_cluster(tags, n_tags, cluster);
    for (j = 0; j < n_tags; j++)
      if (strncmp(tags[j].key, AWS_CLUSTER_TAG_PREFIX,
                  strlen(AWS_CLUSTER_TAG_PREFIX)) == 0)
        other_cluster = true;
    c.score = (aws_tags_get(tags, n_tags, role) != NULL ? 2 : 0) +
              (ours ? 1 : 0);
    aws_tags_free(api, tags, n_tags);
    if (other_cluster && !ours)
      continue;
    snprintf(mark, sizeof(mark), "!%s", c.id);
    public_ = sl_has(&pub, c.id) || (main_public && !sl_has(&pub, mark));
    if (!internal && !public_)
      continue;
    for (j = 0; j < n_picks; j++)
      if (strcmp(picks[j].az, c.az) == 0)
        break;
    if (j == n_picks) {
      if (n_picks < sizeof(picks) / sizeof(picks[0]))
        picks[n_picks++] = c;
    } else if (c.score > picks[j].score ||
               (c.score == picks[j].score && strcmp(c.id, picks[j].id) < 0)) {
      picks[j] = c;
    }
  }
  for (size_t j = 0; j < n_picks; j++)
    sl_add(api, out, picks[j].id);
  if (out->n == 0 && aws->cfg.subnet_id != NULL)
    sl_add(api, out, aws->cfg.subnet_id);
  if (out->n == 0) {
    api->call_set_error(call, "no %s subnet for the load balancer in %s "
                        "(tag subnets %s or %s%s)",
                        internal ? "" : "public", vpc, role,
                        AWS_CLUSTER_TAG_PREFIX, cluster);
    rc = CCM_ERR_INVALID;
  }
out:
  if (doc != NULL)
    xmlFreeDoc(doc);
  sl_free(api, &pub);
  return rc;
}

/* NLB (aws_nlb.c) reuses the subnet choice. */
int aws_lb_subnets(struct aws *aws, struct ccm_call *call,
                   const struct ccm_service *svc, const char *vpc,
                   const char *cluster, bool internal, char ***ids,
                   size_t *n) {
  struct strlist l = {0};
  int rc = aws_opt_list(svc, "subnets") != NULL
               ? subnets_named(aws, call, aws_opt_list(svc, "subnets"), vpc, &l)
               : subnets_choose(aws, call, vpc, cluster, internal, &l);
  if (rc == CCM_OK && l.oom)
    rc = CCM_ERR_INTERNAL;
  if (rc != CCM_OK) {
    sl_free(aws->api, &l);
    return rc;
  }
  *ids = l.v;
  *n = l.n;
  return CCM_OK;
}

/* ---- security groups ----------------------------------------------------- */

/* The managed group's rules: each port from each source range, plus ICMP
 * fragmentation-needed for path MTU discovery. */
static int managed_rules(struct aws *aws, struct ccm_call *call,
                         const char *sg_id, const struct ccm_service *svc) {
  const struct ccm_host_api *api = aws->api;
  const char *all = "0.0.0.0/0";
  const char *const *ranges = svc->n_source_ranges ? svc->source_ranges
                                                   : &all;
  size_t n_ranges = svc->n_source_ranges ? svc->n_source_ranges : 1;
  struct aws_sgs l = {0};
  struct aws_params p;
  struct aws_sg_rule *want = NULL;
  size_t n_want = 0;
  int rc;

  want = api->calloc((svc->n_ports + 1) * n_ranges, sizeof(*want));
  if (want == NULL)
    return CCM_ERR_INTERNAL;
  for (size_t r = 0; r < n_ranges; r++) {
    if (strchr(ranges[r], ':') != NULL)
      continue; /* Classic ELB is IPv4 only */
    for (size_t i = 0; i < svc->n_ports; i++) {
      struct aws_sg_rule *w = &want[n_want++];
      snprintf(w->proto, sizeof(w->proto), "tcp");
      w->from = w->to = svc->ports[i]->port;
      snprintf(w->source, sizeof(w->source), "%s", ranges[r]);
    }
    struct aws_sg_rule *w = &want[n_want++];
    snprintf(w->proto, sizeof(w->proto), "icmp");
    w->from = 3;
    w->to = 4;
    snprintf(w->source, sizeof(w->source), "%s", ranges[r]);
  }
  aws_params_init(&p, api);
  aws_params_add(&p, "GroupId.1", sg_id);
  rc = aws_sg_describe(aws, call, &p, &l);
  aws_params_clear(&p);
  if (rc == CCM_OK && l.n != 1)
    rc = CCM_ERR_RETRY;
  for (size_t i = 0; rc == CCM_OK && i < n_want; i++)
    if (!aws_sg_has_rule(&l.items[0], &want[i]))
      rc = aws_sg_authorize(aws, call, sg_id, &want[i]);
  /* Rules no longer wanted (a source range or port removed). */
  for (size_t i = 0; rc == CCM_OK && i < l.items[0].n_rules; i++) {
    const struct aws_sg_rule *have = &l.items[0].rules[i];
    struct aws_sg tmp = {0};
    tmp.rules = want;
    tmp.n_rules = n_want;
    if (!aws_sg_has_rule(&tmp, have))
      rc = aws_sg_revoke(aws, call, sg_id, have);
  }
  aws_sgs_clear(api, &l);
  api->free(want);
  return rc;
}

/* Open each node's cluster security group to the load balancer's group
 * (all protocols from that group). Only groups tagged for this cluster
 * (aws_sg_node_groups, the choice the NLB node rules share). */
static int node_rules(struct aws *aws, struct ccm_call *call,
                      const struct aws_instances *insts, const char *lb_sg,
                      const char *cluster) {
  const struct ccm_host_api *api = aws->api;
  struct aws_sgs l = {0};
  struct aws_sg_rule rule;
  int rc;

  if (aws->cfg.disable_sg_ingress || lb_sg == NULL)
    return CCM_OK;
  rc = aws_sg_node_groups(aws, call, insts, cluster, &l);
  memset(&rule, 0, sizeof(rule));
  snprintf(rule.proto, sizeof(rule.proto), "-1");
  rule.source_is_group = true;
  snprintf(rule.source, sizeof(rule.source), "%s", lb_sg);
  for (size_t i = 0; rc == CCM_OK && i < l.n; i++)
    if (!aws_sg_has_rule(&l.items[i], &rule))
      rc = aws_sg_authorize(aws, call, l.items[i].id, &rule);
  aws_sgs_clear(api, &l);
  return rc;
}

/* Revoke every cluster group's rule that admits lb_sg. */
static int node_rules_revoke(struct aws *aws, struct ccm_call *call,
                             const char *lb_sg, const char *cluster) {
  const struct ccm_host_api *api = aws->api;
  struct aws_sgs l = {0};
  struct aws_params p;
  unsigned f = 1;
  int rc;

  aws_params_init(&p, api);
  aws_params_filter(&p, &f, "ip-permission.group-id", &lb_sg, 1);
  rc = aws_sg_describe(aws, call, &p, &l);
  aws_params_clear(&p);
  for (size_t i = 0; rc == CCM_OK && i < l.n; i++) {
    if (!aws_tags_in_cluster(l.items[i].tags, l.items[i].n_tags, cluster) ||
        strcmp(l.items[i].id, lb_sg) == 0)
      continue;
    for (size_t j = 0; rc == CCM_OK && j < l.items[i].n_rules; j++) {
      const struct aws_sg_rule *r = &l.items[i].rules[j];
      if (r->source_is_group && strcmp(r->source, lb_sg) == 0)
        rc = aws_sg_revoke(aws, call, l.items[i].id, r);
    }
  }
  aws_sgs_clear(api, &l);
  return rc;
}

/* ---- instances ----------------------------------------------------------- */

static int sync_instances(struct aws *aws, struct ccm_call *call,
                          const char *name, const struct elb *e,
                          const struct aws_instances *insts) {
  const struct ccm_host_api *api = aws->api;
  struct aws_params p;
  size_t n;
  int rc = CCM_OK;

  aws_params_init(&p, api);
  aws_params_add(&p, "LoadBalancerName", name);
  n = 0;
  for (size_t i = 0; i < insts->n; i++)
    if (!sl_has(&e->instances, insts->items[i].id) &&
        strcmp(insts->items[i].state ? insts->items[i].state : "",
               "terminated") != 0)
      aws_params_addf(&p, insts->items[i].id,
                      "Instances.member.%zu.InstanceId", ++n);
  if (n > 0)
    rc = elb_call(aws, call, "RegisterInstancesWithLoadBalancer", &p, NULL,
                  NULL);
  else
    aws_params_clear(&p);
  if (rc != CCM_OK)
    return rc;
  aws_params_init(&p, api);
  aws_params_add(&p, "LoadBalancerName", name);
  n = 0;
  for (size_t i = 0; i < e->instances.n; i++) {
    bool keep = false;
    for (size_t j = 0; j < insts->n; j++)
      if (strcmp(insts->items[j].id, e->instances.v[i]) == 0)
        keep = true;
    if (!keep)
      aws_params_addf(&p, e->instances.v[i],
                      "Instances.member.%zu.InstanceId", ++n);
  }
  if (n > 0)
    rc = elb_call(aws, call, "DeregisterInstancesFromLoadBalancer", &p, NULL,
                  NULL);
  else
    aws_params_clear(&p);
  return rc;
}

/* ---- attributes ---------------------------------------------------------- */

static int sync_attributes(struct aws *aws, struct ccm_call *call,
                           const char *name, const struct ccm_service *svc) {
  const struct ccm_host_api *api = aws->api;
  int idle = (int)aws_opt_int(svc, "connection-idle-timeout", ELB_IDLE_TIMEOUT);
  bool cross = aws_opt_bool(svc, "cross-zone-load-balancing-enabled", false);
  bool drain = aws_opt_bool(svc, "connection-draining-enabled", false);
  int drain_t = (int)aws_opt_int(svc, "connection-draining-timeout",
                             ELB_DRAIN_TIMEOUT);
  bool logs = aws_opt_bool(svc, "access-log-enabled", false);
  int log_int = (int)aws_opt_int(svc, "access-log-emit-interval", 60);
  const char *bucket = aws_opt_str(svc, "access-log-s3-bucket-name");
  const char *prefix = aws_opt_str(svc, "access-log-s3-bucket-prefix");
  struct aws_params p;
  xmlDoc *doc = NULL;
  xmlNode *a;
  char v[16], num[16];
  bool drift = false;
  int rc;

  rc = elb_call1(aws, call, "DescribeLoadBalancerAttributes",
                 "LoadBalancerName", name, &doc, NULL);
  if (rc != CCM_OK)
    return rc;
  a = aws_xml_path(xmlDocGetRootElement(doc),
                   "DescribeLoadBalancerAttributesResult/"
                   "LoadBalancerAttributes");
  drift = aws_lb_int_at(a, "ConnectionSettings/IdleTimeout") != idle ||
          !aws_xml_path_text(a, "CrossZoneLoadBalancing/Enabled", v,
                             sizeof(v)) ||
          (strcmp(v, "true") == 0) != cross ||
          !aws_xml_path_text(a, "ConnectionDraining/Enabled", v, sizeof(v)) ||
          (strcmp(v, "true") == 0) != drain ||
          (drain &&
           aws_lb_int_at(a, "ConnectionDraining/Timeout") != drain_t) ||
          !aws_xml_path_text(a, "AccessLog/Enabled", v, sizeof(v)) ||
          (strcmp(v, "true") == 0) != logs;
  xmlFreeDoc(doc);
  if (!drift)
    return CCM_OK;
  aws_params_init(&p, api);
  aws_params_add(&p, "LoadBalancerName", name);
  snprintf(num, sizeof(num), "%d", idle);
  aws_params_add(&p, "LoadBalancerAttributes.ConnectionSettings.IdleTimeout",
                 num);
  aws_params_add(&p, "LoadBalancerAttributes.CrossZoneLoadBalancing.Enabled",
                 cross ? "true" : "false");
  aws_params_add(&p, "LoadBalancerAttributes.ConnectionDraining.Enabled",
                 drain ? "true" : "false");
  snprintf(num, sizeof(num), "%d", drain_t);
  aws_params_add(&p, "LoadBalancerAttributes.ConnectionDraining.Timeout",
                 num);
  aws_params_add(&p, "LoadBalancerAttributes.AccessLog.Enabled",
                 logs ? "true" : "false");
  if (logs) {
    snprintf(num, sizeof(num), "%d", log_int);
    aws_params_add(&p, "LoadBalancerAttributes.AccessLog.EmitInterval", num);
    if (bucket != NULL)
      aws_params_add(&p, "LoadBalancerAttributes.AccessLog.S3BucketName",
                     bucket);
    if (prefix != NULL)
      aws_params_add(&p, "LoadBalancerAttributes.AccessLog.S3BucketPrefix",
                     prefix);
  }
  return elb_call(aws, call, "ModifyLoadBalancerAttributes", &p, NULL, NULL);
}

/* ---- policies ------------------------------------------------------------ */

/* Create the named policy unless the load balancer has it already. */
static int policy_ensure(struct aws *aws, struct ccm_call *call,
                         const char *lb, const char *policy, const char *type,
                         const char *attr, const char *value) {
  struct aws_params p;
  struct aws_error err;
  int rc;

  aws_params_init(&p, aws->api);
  aws_params_add(&p, "LoadBalancerName", lb);
  aws_params_add(&p, "PolicyNames.member.1", policy);
  rc = elb_call(aws, call, "DescribeLoadBalancerPolicies", &p, NULL, &err);
  if (rc != CCM_ERR_NOT_FOUND)
    return rc;
  aws_params_init(&p, aws->api);
  aws_params_add(&p, "LoadBalancerName", lb);
  aws_params_add(&p, "PolicyName", policy);
  aws_params_add(&p, "PolicyTypeName", type);
  aws_params_add(&p, "PolicyAttributes.member.1.AttributeName", attr);
  aws_params_add(&p, "PolicyAttributes.member.1.AttributeValue", value);
  rc = elb_call(aws, call, "CreateLoadBalancerPolicy", &p, NULL, &err);
  if (rc != CCM_OK && strcmp(err.code, "DuplicatePolicyName") == 0)
    rc = CCM_OK;
  return rc;
}

/* PROXY protocol on every instance port (option proxy-protocol), or off. */
static int sync_proxy(struct aws *aws, struct ccm_call *call,
                      const struct ccm_service *svc, const struct elb *e) {
  bool want = aws_opt_bool(svc, "proxy-protocol", false);
  struct strlist ports = {0};
  struct aws_params p;
  int rc = CCM_OK;

  for (size_t i = 0; i < svc->n_ports; i++) {
    char num[16];
    snprintf(num, sizeof(num), "%u", svc->ports[i]->node_port);
    sl_add(aws->api, &ports, num);
  }
  if (want)
    rc = policy_ensure(aws, call, svc->lb_name, ELB_PROXY_POLICY,
                       "ProxyProtocolPolicyType", "ProxyProtocol", "true");
  for (size_t i = 0; rc == CCM_OK && i < ports.n; i++) {
    if (want == sl_has(&e->proxy_ports, ports.v[i]))
      continue;
    aws_params_init(&p, aws->api);
    aws_params_add(&p, "LoadBalancerName", svc->lb_name);
    aws_params_add(&p, "InstancePort", ports.v[i]);
    /* An empty list (PolicyNames=) removes the policy from the port. */
    if (want)
      aws_params_add(&p, "PolicyNames.member.1", ELB_PROXY_POLICY);
    else
      aws_params_add(&p, "PolicyNames", "");
    rc = elb_call(aws, call, "SetLoadBalancerPoliciesForBackendServer", &p,
                  NULL, NULL);
  }
  sl_free(aws->api, &ports);
  return rc;
}

/* The SSL negotiation policy (option) on the SSL and HTTPS listeners. */
static int sync_ssl_policy(struct aws *aws, struct ccm_call *call,
                           const struct ccm_service *svc,
                           const struct elb *e) {
  const char *pol = aws_opt_str(svc, "ssl-negotiation-policy");
  char name[128];
  struct aws_params p;
  int rc = CCM_OK;
  bool created = false;

  if (pol == NULL)
    return CCM_OK;
  snprintf(name, sizeof(name), "%s%s", ELB_SSL_POLICY_PREFIX, pol);
  for (size_t i = 0; rc == CCM_OK && i < e->n_listeners; i++) {
    const struct elb_listener *l = &e->listeners[i];
    char num[16];
    if ((strcasecmp(l->proto, "SSL") != 0 &&
         strcasecmp(l->proto, "HTTPS") != 0) ||
        strcmp(l->policy, name) == 0)
      continue;
    if (!created) {
      rc = policy_ensure(aws, call, svc->lb_name, name,
                         "SSLNegotiationPolicyType",
                         "Reference-Security-Policy", pol);
      created = true;
      if (rc != CCM_OK)
        break;
    }
    aws_params_init(&p, aws->api);
    aws_params_add(&p, "LoadBalancerName", svc->lb_name);
    snprintf(num, sizeof(num), "%d", l->port);
    aws_params_add(&p, "LoadBalancerPort", num);
    aws_params_add(&p, "PolicyNames.member.1", name);
    rc = elb_call(aws, call, "SetLoadBalancerPoliciesOfListener", &p, NULL,
                  NULL);
  }
  return rc;
}

/* ---- operations ---------------------------------------------------------- */

static int check_type(struct aws *aws, struct ccm_call *call,
                      const struct ccm_service *svc) {
  const char *type = aws_opt_str(svc, "type");
  if (type != NULL && strcmp(type, "classic") != 0) {
    aws->api->call_set_error(call, "load-balancer type \"%s\" is not "
                             "supported by this module version (classic "
                             "only)", type);
    return CCM_ERR_INVALID;
  }
  return CCM_OK;
}

bool aws_lb_is_nlb(const struct ccm_service *svc) {
  const char *type = aws_opt_str(svc, "type");
  return type != NULL && strcmp(type, "nlb") == 0;
}

static int elb_get(struct aws *aws, struct ccm_call *call,
                   const struct ccm_service *svc, struct ccm_lb_status *out) {
  struct elb e;
  int rc;

  rc = elb_describe(aws, call, svc->lb_name, &e);

  if (rc == CCM_OK && !e.found)
    rc = CCM_ERR_NOT_FOUND;
  if (rc == CCM_OK)
    rc = aws->api->lb_add_ingress(out, NULL, e.dns);
  elb_free(aws->api, &e);
  return rc;
}

/* The security groups of the load balancer; *managed gets the group this
 * module owns (NULL when the Service names its own groups). */
static int want_sgs(struct aws *aws, struct ccm_call *call,
                    const struct ccm_service *svc, const char *vpc,
                    const char *cluster, const char *service,
                    struct strlist *out, char **managed) {
  const struct ccm_host_api *api = aws->api;
  const struct ccm_option_value *given = aws_opt_list(svc, "security-groups");
  const struct ccm_option_value *extra = aws_opt_list(svc, "extra-security-groups");
  char name[300], desc[600];
  int rc = CCM_OK;

  *managed = NULL;
  if (given != NULL) {
    for (size_t i = 0; i < given->list_len; i++)
      sl_add(api, out, given->list[i]);
  } else if (aws->cfg.elb_security_group != NULL) {
    sl_add(api, out, aws->cfg.elb_security_group);
  } else {
    snprintf(name, sizeof(name), "k8s-elb-%s", svc->lb_name);
    snprintf(desc, sizeof(desc), "Security group for Kubernetes ELB %s (%s)",
             svc->lb_name, service);
    rc = aws_sg_ensure(aws, call, name, desc, vpc, cluster, service, managed);
    if (rc == CCM_OK)
      rc = managed_rules(aws, call, *managed, svc);
    if (rc == CCM_OK)
      sl_add(api, out, *managed);
  }
  for (size_t i = 0; extra != NULL && i < extra->list_len; i++)
    sl_add(api, out, extra->list[i]);
  return rc != CCM_OK ? rc : out->oom ? CCM_ERR_INTERNAL : CCM_OK;
}

static int reconcile(struct aws *aws, struct ccm_call *call,
                     const struct ccm_service *svc, const struct elb *e,
                     const struct strlist *subnets,
                     const struct strlist *sgs,
                     const struct elb_listener *want, size_t n_want,
                     const char *cluster, const char *service,
                     const struct aws_kv *tags, size_t n_tags,
                     bool *relisted) {
  const struct ccm_host_api *api = aws->api;
  const char *name = svc->lb_name;
  struct aws_params p;
  size_t n;
  int rc = CCM_OK;

  /* Subnets. */
  aws_params_init(&p, api);
  aws_params_add(&p, "LoadBalancerName", name);
  n = 0;
  for (size_t i = 0; i < subnets->n; i++)
    if (!sl_has(&e->subnets, subnets->v[i]))
      aws_params_addf(&p, subnets->v[i], "Subnets.member.%zu", ++n);
  rc = n > 0 ? elb_call(aws, call, "AttachLoadBalancerToSubnets", &p, NULL,
                        NULL)
             : (aws_params_clear(&p), CCM_OK);
  if (rc != CCM_OK)
    return rc;
  aws_params_init(&p, api);
  aws_params_add(&p, "LoadBalancerName", name);
  n = 0;
  for (size_t i = 0; i < e->subnets.n; i++)
    if (!sl_has(subnets, e->subnets.v[i]))
      aws_params_addf(&p, e->subnets.v[i], "Subnets.member.%zu", ++n);
  rc = n > 0 ? elb_call(aws, call, "DetachLoadBalancerFromSubnets", &p, NULL,
                        NULL)
             : (aws_params_clear(&p), CCM_OK);
  if (rc != CCM_OK)
    return rc;

  /* Security groups. */
  if (!sl_same(sgs, &e->sgs)) {
    aws_params_init(&p, api);
    aws_params_add(&p, "LoadBalancerName", name);
    for (size_t i = 0; i < sgs->n; i++)
      aws_params_addf(&p, sgs->v[i], "SecurityGroups.member.%zu", i + 1);
    rc = elb_call(aws, call, "ApplySecurityGroupsToLoadBalancer", &p, NULL,
                  NULL);
    if (rc != CCM_OK)
      return rc;
  }

  /* Listeners: delete what differs, then create what is missing. */
  aws_params_init(&p, api);
  aws_params_add(&p, "LoadBalancerName", name);
  n = 0;
  for (size_t i = 0; i < e->n_listeners; i++) {
    bool keep = false;
    for (size_t j = 0; j < n_want; j++)
      if (listener_same(&e->listeners[i], &want[j]))
        keep = true;
    if (!keep) {
      char num[16];
      snprintf(num, sizeof(num), "%d", e->listeners[i].port);
      aws_params_addf(&p, num, "LoadBalancerPorts.member.%zu", ++n);
    }
  }
  *relisted = n > 0;
  rc = n > 0 ? elb_call(aws, call, "DeleteLoadBalancerListeners", &p, NULL,
                        NULL)
             : (aws_params_clear(&p), CCM_OK);
  if (rc != CCM_OK)
    return rc;
  aws_params_init(&p, api);
  aws_params_add(&p, "LoadBalancerName", name);
  n = 0;
  for (size_t j = 0; j < n_want; j++) {
    bool have = false;
    for (size_t i = 0; i < e->n_listeners; i++)
      if (listener_same(&e->listeners[i], &want[j]))
        have = true;
    if (!have)
      listener_params(&p, ++n, &want[j]);
  }
  *relisted = *relisted || n > 0;
  rc = n > 0 ? elb_call(aws, call, "CreateLoadBalancerListeners", &p, NULL,
                        NULL)
             : (aws_params_clear(&p), CCM_OK);
  if (rc != CCM_OK)
    return rc;

  /* Tags (AddTags overwrites the values it names and keeps the others),
   * only when one is missing or different. */
  aws_params_init(&p, api);
  aws_params_add(&p, "LoadBalancerNames.member.1", name);
  aws_lb_tag_params(&p, "Tags", cluster, service, svc);
  bool same = true;
  for (size_t i = 1; same && i + 1 < p.n; i += 2) {
    const char *v = aws_tags_get(tags, n_tags, p.items[i].value);
    same = v != NULL && strcmp(v, p.items[i + 1].value) == 0;
  }
  if (same) {
    aws_params_clear(&p);
    return CCM_OK;
  }
  return elb_call(aws, call, "AddTags", &p, NULL, NULL);
}

static int elb_ensure(struct aws *aws, struct ccm_call *call,
                      const struct ccm_service *svc,
                      const struct ccm_node_list *nodes,
                      struct ccm_lb_status *out) {
  const struct ccm_host_api *api = aws->api;
  const char *cluster = aws_cluster(aws, svc->cluster_name);
  const char *name = svc->lb_name;
  bool internal = aws_opt_bool(svc, "internal", false);
  struct aws_instances insts = {0};
  struct strlist subnets = {0}, sgs = {0};
  struct elb_listener *want = NULL;
  struct elb e;
  struct aws_params p;
  char service[CCM_MAX_NAME * 2 + 2], target[300], *managed = NULL;
  const char *vpc = aws->cfg.vpc;
  struct aws_kv *have_tags = NULL;
  size_t n_have_tags = 0;
  bool relisted = false;
  int hc[4], rc;

  memset(&e, 0, sizeof(e));
  rc = aws_lb_validate(aws, call, svc, ELB_MAX_PORTS, "a load balancer");
  if (rc == CCM_OK)
    rc = check_type(aws, call, svc);
  if (rc != CCM_OK)
    return rc;
  snprintf(service, sizeof(service), "%s/%s", svc->namespace_, svc->name);
  want = api->calloc(svc->n_ports, sizeof(*want));
  if (want == NULL)
    return CCM_ERR_INTERNAL;
  rc = want_listeners(aws, call, svc, want);
  if (rc != CCM_OK)
    goto out;
  rc = aws_nodes_instances(aws, call, nodes->nodes, nodes->n_nodes, &insts);
  if (rc != CCM_OK)
    goto out;
  for (size_t i = 0; vpc == NULL && i < insts.n; i++)
    vpc = insts.items[i].vpc_id;
  if (vpc == NULL) {
    api->call_set_error(call, "cannot tell the VPC: set vpc in the config "
                        "or give the Service nodes with EC2 instances");
    rc = CCM_ERR_RETRY;
    api->call_set_retry_after(call, AWS_RETRY_AFTER_MS);
    goto out;
  }
  rc = elb_describe(aws, call, name, &e);
  if (rc != CCM_OK)
    goto out;
  if (e.found) {
    bool owned = false;
    rc = elb_owned(aws, call, name, cluster, &owned, &have_tags,
                   &n_have_tags);
    if (rc == CCM_OK && !owned) {
      api->call_set_error(call, "load balancer %s exists without the tag "
                          "%s%s=owned; not touching it", name,
                          AWS_CLUSTER_TAG_PREFIX, cluster);
      rc = CCM_ERR_INVALID;
    }
    if (rc == CCM_OK &&
        (e.scheme != NULL && (strcmp(e.scheme, "internal") == 0) != internal)) {
      api->call_set_error(call, "load balancer %s is %s; the scheme cannot "
                          "change (recreate the Service)", name, e.scheme);
      rc = CCM_ERR_INVALID;
    }
    if (rc != CCM_OK)
      goto out;
  }
  if (aws_opt_list(svc, "subnets") != NULL)
    rc = subnets_named(aws, call, aws_opt_list(svc, "subnets"), vpc, &subnets);
  else
    rc = subnets_choose(aws, call, vpc, cluster, internal, &subnets);
  if (rc != CCM_OK)
    goto out;
  rc = want_sgs(aws, call, svc, vpc, cluster, service, &sgs, &managed);
  if (rc != CCM_OK)
    goto out;

  if (!e.found) {
    aws_params_init(&p, api);
    aws_params_add(&p, "LoadBalancerName", name);
    for (size_t i = 0; i < svc->n_ports; i++)
      listener_params(&p, i + 1, &want[i]);
    for (size_t i = 0; i < subnets.n; i++)
      aws_params_addf(&p, subnets.v[i], "Subnets.member.%zu", i + 1);
    for (size_t i = 0; i < sgs.n; i++)
      aws_params_addf(&p, sgs.v[i], "SecurityGroups.member.%zu", i + 1);
    if (internal)
      aws_params_add(&p, "Scheme", "internal");
    aws_lb_tag_params(&p, "Tags", cluster, service, svc);
    rc = elb_call(aws, call, "CreateLoadBalancer", &p, NULL, NULL);
    if (rc != CCM_OK)
      goto out;
    api->log(aws->host, CCM_LOG_INFO, "created ELB %s for %s", name,
             service);
    elb_free(api, &e);
    rc = elb_describe(aws, call, name, &e);
    if (rc == CCM_OK && !e.found) {
      api->call_set_error(call, "ELB %s: not found after create", name);
      rc = CCM_ERR_RETRY;
    }
  } else {
    rc = reconcile(aws, call, svc, &e, &subnets, &sgs, want, svc->n_ports,
                   cluster, service, have_tags, n_have_tags, &relisted);
  }
  if (rc != CCM_OK)
    goto out;

  if (relisted) {
    /* Listeners changed or were just made: read them back for policies. */
    elb_free(api, &e);
    rc = elb_describe(aws, call, name, &e);
    if (rc == CCM_OK && !e.found)
      rc = CCM_ERR_RETRY;
    if (rc != CCM_OK)
      goto out;
  }
  rc = sync_proxy(aws, call, svc, &e);
  if (rc == CCM_OK)
    rc = sync_ssl_policy(aws, call, svc, &e);
  if (rc != CCM_OK)
    goto out;
  want_health(svc, target, sizeof(target), hc);
  if (strcmp(e.hc_target, target) != 0 || memcmp(e.hc, hc, sizeof(hc)) != 0) {
    char num[4][16];
    aws_params_init(&p, api);
    aws_params_add(&p, "LoadBalancerName", name);
    aws_params_add(&p, "HealthCheck.Target", target);
    for (int i = 0; i < 4; i++)
      snprintf(num[i], sizeof(num[i]), "%d", hc[i]);
    aws_params_add(&p, "HealthCheck.Interval", num[0]);
    aws_params_add(&p, "HealthCheck.Timeout", num[1]);
    aws_params_add(&p, "HealthCheck.HealthyThreshold", num[2]);
    aws_params_add(&p, "HealthCheck.UnhealthyThreshold", num[3]);
    rc = elb_call(aws, call, "ConfigureHealthCheck", &p, NULL, NULL);
  }
  if (rc == CCM_OK)
    rc = sync_attributes(aws, call, name, svc);
  if (rc == CCM_OK)
    rc = node_rules(aws, call, &insts, managed ? managed : sgs.v[0], cluster);
  if (rc == CCM_OK)
    rc = sync_instances(aws, call, name, &e, &insts);
  if (rc == CCM_OK)
    rc = api->lb_add_ingress(out, NULL, e.dns);
out:
  elb_free(api, &e);
  aws_instances_clear(api, &insts);
  sl_free(api, &subnets);
  sl_free(api, &sgs);
  api->free(managed);
  api->free(want);
  aws_tags_free(api, have_tags, n_have_tags);
  return rc;
}

static int elb_update_hosts(struct aws *aws, struct ccm_call *call,
                            const struct ccm_service *svc,
                            const struct ccm_node_list *nodes) {
  const struct ccm_host_api *api = aws->api;
  const char *cluster = aws_cluster(aws, svc->cluster_name);
  struct aws_instances insts = {0};
  struct elb e;
  bool owned = false;
  int rc;

  rc = elb_describe(aws, call, svc->lb_name, &e);
  if (rc == CCM_OK && !e.found)
    rc = CCM_ERR_NOT_FOUND;
  if (rc == CCM_OK)
    rc = elb_owned(aws, call, svc->lb_name, cluster, &owned, NULL, NULL);
  if (rc == CCM_OK && !owned) {
    api->call_set_error(call, "load balancer %s is not owned by cluster %s",
                        svc->lb_name, cluster);
    rc = CCM_ERR_INVALID;
  }
  if (rc == CCM_OK)
    rc = aws_nodes_instances(aws, call, nodes->nodes, nodes->n_nodes, &insts);
  if (rc == CCM_OK && e.sgs.n > 0)
    rc = node_rules(aws, call, &insts, e.sgs.v[0], cluster);
  if (rc == CCM_OK)
    rc = sync_instances(aws, call, svc->lb_name, &e, &insts);
  aws_instances_clear(api, &insts);
  elb_free(api, &e);
  return rc;
}

static int elb_delete(struct aws *aws, struct ccm_call *call,
                      const struct ccm_service *svc) {
  const struct ccm_host_api *api = aws->api;
  const char *cluster = aws_cluster(aws, svc->cluster_name);
  struct aws_sgs owned_sgs = {0};
  struct aws_params p;
  struct elb e;
  bool owned = false;
  int rc;

  rc = elb_describe(aws, call, svc->lb_name, &e);
  if (rc != CCM_OK)
    goto out;
  if (!e.found) {
    /* Absent; a managed group left by a failed ensure still goes. */
    char sg_name[300];
    const char *nm = sg_name;
    unsigned f = 1;
    snprintf(sg_name, sizeof(sg_name), "k8s-elb-%s", svc->lb_name);
    aws_params_init(&p, api);
    aws_params_filter(&p, &f, "group-name", &nm, 1);
    rc = aws_sg_describe(aws, call, &p, &owned_sgs);
    aws_params_clear(&p);
    for (size_t i = 0; rc == CCM_OK && i < owned_sgs.n; i++)
      if (aws_tags_owned(owned_sgs.items[i].tags, owned_sgs.items[i].n_tags,
                         cluster))
        rc = aws_sg_delete(aws, call, owned_sgs.items[i].id);
    goto out;
  }
  rc = elb_owned(aws, call, svc->lb_name, cluster, &owned, NULL, NULL);
  if (rc != CCM_OK)
    goto out;
  if (!owned) {
    api->log(aws->host, CCM_LOG_WARN, "ELB %s is not owned by cluster %s: "
             "left in place", svc->lb_name, cluster);
    goto out;
  }
  if (e.sgs.n > 0) {
    aws_params_init(&p, api);
    for (size_t i = 0; i < e.sgs.n; i++)
      aws_params_addf(&p, e.sgs.v[i], "GroupId.%zu", i + 1);
    rc = aws_sg_describe(aws, call, &p, &owned_sgs);
    aws_params_clear(&p);
    if (rc != CCM_OK)
      goto out;
  }
  for (size_t i = 0; i < owned_sgs.n; i++) {
    if (!aws_tags_owned(owned_sgs.items[i].tags, owned_sgs.items[i].n_tags,
                        cluster))
      continue;
    rc = node_rules_revoke(aws, call, owned_sgs.items[i].id, cluster);
    if (rc != CCM_OK)
      goto out;
  }
  rc = elb_call1(aws, call, "DeleteLoadBalancer",
                 "LoadBalancerName", svc->lb_name, NULL, NULL);
  if (rc == CCM_ERR_NOT_FOUND)
    rc = CCM_OK;
  for (size_t i = 0; rc == CCM_OK && i < owned_sgs.n; i++)
    if (aws_tags_owned(owned_sgs.items[i].tags, owned_sgs.items[i].n_tags,
                       cluster))
      rc = aws_sg_delete(aws, call, owned_sgs.items[i].id);
  if (rc == CCM_OK)
    api->log(aws->host, CCM_LOG_INFO, "deleted ELB %s", svc->lb_name);
out:
  aws_sgs_clear(api, &owned_sgs);
  elb_free(api, &e);
  return rc;
}

/* ---- the provider operations: Classic ELB or NLB by the type option ---- */

/* A Service's type option may change (classic <-> nlb) while a load
 * balancer of the old type exists. get falls back to the other type, so a
 * cleanup still finds it; ensure removes an owned one of the other type
 * once the new one stands; delete removes both. Each is a no-op (one
 * describe) when the other type is absent. */

int aws_lb_get(void *instance, struct ccm_call *call,
               const struct ccm_service *svc, struct ccm_lb_status *out) {
  struct aws *aws = instance;
  bool nlb = aws_lb_is_nlb(svc);
  int rc = nlb ? aws_nlb_get(aws, call, svc, out)
               : elb_get(aws, call, svc, out);

  if (rc == CCM_ERR_NOT_FOUND)
    rc = nlb ? elb_get(aws, call, svc, out)
             : aws_nlb_get(aws, call, svc, out);
  return rc;
}

int aws_lb_ensure(void *instance, struct ccm_call *call,
                  const struct ccm_service *svc,
                  const struct ccm_node_list *nodes,
                  struct ccm_lb_status *out) {
  struct aws *aws = instance;
  bool nlb = aws_lb_is_nlb(svc);
  int rc = nlb ? aws_nlb_ensure(aws, call, svc, nodes, out)
               : elb_ensure(aws, call, svc, nodes, out);

  if (rc == CCM_OK)
    rc = nlb ? elb_delete(aws, call, svc) : aws_nlb_delete(aws, call, svc);
  return rc;
}

int aws_lb_update_hosts(void *instance, struct ccm_call *call,
                        const struct ccm_service *svc,
                        const struct ccm_node_list *nodes) {
  struct aws *aws = instance;

  return aws_lb_is_nlb(svc) ? aws_nlb_update_hosts(aws, call, svc, nodes)
                            : elb_update_hosts(aws, call, svc, nodes);
}

int aws_lb_delete(void *instance, struct ccm_call *call,
                  const struct ccm_service *svc) {
  struct aws *aws = instance;
  int rc = aws_nlb_delete(aws, call, svc);

  if (rc == CCM_OK)
    rc = elb_delete(aws, call, svc);
  return rc;
}
