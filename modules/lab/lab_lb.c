/*
 * lab_lb.c: load-balancer operations of the lab provider: one IP per
 * requested family from the configured pools, keyed by the host's lb_name,
 * persisted before the call returns. It holds lab.mu around every state
 * access and never leaves memory and the state file out of step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"

#define LAB_MSG 512

static int fam_index(uint8_t family) { return family == 4 ? 0 : 1; }

static const struct ccm_option_value *find_option(
    const struct ccm_service *svc, const char *name) {
  for (size_t i = 0; i < svc->n_options; i++) {
    const struct ccm_option_value *o = svc->options[i];
    if (o != NULL && o->name != NULL && strcmp(o->name, name) == 0 &&
        o->type == CCM_OPT_STRING && o->string_value != NULL &&
        o->string_value[0] != '\0')
      return o;
  }
  return NULL;
}

/* "10.0.0.0/24, pub=10.1.0.1-10.1.0.9" for messages. */
static void pools_text(const struct lab *lab, uint8_t family, char *out,
                       size_t cap) {
  size_t used = 0;
  out[0] = '\0';
  for (size_t i = 0; i < lab->cfg.n_pools && used < cap; i++) {
    if (lab->cfg.pools[i].first.family != family)
      continue;
    int n = snprintf(out + used, cap - used, "%s%s", used ? ", " : "",
                     lab->cfg.pools[i].text);
    if (n < 0)
      break;
    used += (size_t)n;
  }
}

static bool has_pool(const struct lab *lab, uint8_t family, const char *name) {
  for (size_t i = 0; i < lab->cfg.n_pools; i++) {
    const struct lab_pool *p = &lab->cfg.pools[i];
    if (p->first.family == family &&
        (name == NULL || (p->name != NULL && strcmp(p->name, name) == 0)))
      return true;
  }
  return false;
}

static bool in_pools(const struct lab *lab, const struct lab_addr *a,
                     const char *name) {
  for (size_t i = 0; i < lab->cfg.n_pools; i++) {
    const struct lab_pool *p = &lab->cfg.pools[i];
    if ((name == NULL || (p->name != NULL && strcmp(p->name, name) == 0)) &&
        lab_pool_contains(p, a))
      return true;
  }
  return false;
}

/* What one ensure asks for, decoded from the Service before locking. */
struct lb_request {
  uint8_t families[LAB_MAX_FAMILIES];
  size_t n_families;
  bool has_fixed[2]; /* by fam_index */
  struct lab_addr fixed[2];
  const char *fixed_src[2]; /* "spec.loadBalancerIP", "option ipv4-address" */
  const char *pool;         /* NULL: any pool */
};

static bool wants(const struct lb_request *rq, uint8_t family) {
  for (size_t i = 0; i < rq->n_families; i++)
    if (rq->families[i] == family)
      return true;
  return false;
}

static int fixed_option(struct lab *lab, struct ccm_call *call,
                        const struct ccm_service *svc, const char *opt,
                        uint8_t family, struct lb_request *rq) {
  const struct ccm_option_value *o = find_option(svc, opt);
  struct lab_addr a;
  if (o == NULL)
    return CCM_OK;
  if (!lab_addr_parse(o->string_value, &a) || a.family != family) {
    lab->api->call_set_error(call, "option %s: \"%s\" is not an IPv%u address",
                             opt, o->string_value, (unsigned)family);
    return CCM_ERR_INVALID;
  }
  rq->has_fixed[fam_index(family)] = true;
  rq->fixed[fam_index(family)] = a;
  rq->fixed_src[fam_index(family)] = opt;
  return CCM_OK;
}

static int decode_request(struct lab *lab, struct ccm_call *call,
                          const struct ccm_service *svc,
                          struct lb_request *rq) {
  memset(rq, 0, sizeof(*rq));
  for (size_t i = 0; i < svc->n_ip_families; i++) {
    uint32_t f = svc->ip_families[i];
    if (f != CCM_IPV4 && f != CCM_IPV6) {
      lab->api->call_set_error(call, "ipFamilies[%zu]: unknown family %u", i,
                               (unsigned)f);
      return CCM_ERR_INVALID;
    }
    if (!wants(rq, (uint8_t)f) && rq->n_families < LAB_MAX_FAMILIES)
      rq->families[rq->n_families++] = (uint8_t)f;
  }
  if (rq->n_families == 0)
    rq->families[rq->n_families++] = 4;

  const struct ccm_option_value *pool = find_option(svc, "pool");
  rq->pool = pool != NULL ? pool->string_value : NULL;
  int rc = fixed_option(lab, call, svc, "ipv4-address", 4, rq);
  if (rc == CCM_OK)
    rc = fixed_option(lab, call, svc, "ipv6-address", 6, rq);
  if (rc != CCM_OK)
    return rc;

  const char *lbip = svc->load_balancer_ip;
  if (lbip != NULL && lbip[0] != '\0') {
    struct lab_addr a;
    if (!lab_addr_parse(lbip, &a)) {
      lab->api->call_set_error(call,
                               "spec.loadBalancerIP \"%s\" is not an IP address",
                               lbip);
      return CCM_ERR_INVALID;
    }
    /* A provider option from the policy is the newer, explicit request. */
    if (!rq->has_fixed[fam_index(a.family)]) {
      rq->has_fixed[fam_index(a.family)] = true;
      rq->fixed[fam_index(a.family)] = a;
      rq->fixed_src[fam_index(a.family)] = "spec.loadBalancerIP";
    }
  }
  for (uint8_t f = 4; f <= 6; f = (uint8_t)(f + 2)) {
    char ip[LAB_ADDR_TEXT];
    if (!rq->has_fixed[fam_index(f)] || wants(rq, f))
      continue;
    lab_addr_format(&rq->fixed[fam_index(f)], ip);
    lab->api->call_set_error(call,
                             "%s %s is IPv%u but the Service does not request "
                             "that IP family",
                             rq->fixed_src[fam_index(f)], ip, (unsigned)f);
    return CCM_ERR_INVALID;
  }
  for (size_t i = 0; i < rq->n_families; i++) {
    uint8_t f = rq->families[i];
    if (!has_pool(lab, f, NULL)) {
      lab->api->call_set_error(call,
                               "no ipv%u_pools configured: cannot serve an "
                               "IPv%u load balancer",
                               (unsigned)f, (unsigned)f);
      return CCM_ERR_INVALID;
    }
    if (rq->pool != NULL && !has_pool(lab, f, rq->pool)) {
      lab->api->call_set_error(call, "option pool: no ipv%u pool is named %s",
                               (unsigned)f, rq->pool);
      return CCM_ERR_INVALID;
    }
  }
  return CCM_OK;
}

static int addr_cmp(const void *a, const void *b) {
  return lab_addr_compare(a, b);
}

/* Addresses of family held by every load balancer except skip, sorted. */
static int used_addrs(struct lab *lab, uint8_t family, const struct lab_lb *skip,
                      struct lab_addr **out, size_t *n_out) {
  size_t n = 0;
  *out = NULL;
  *n_out = 0;
  for (size_t i = 0; i < lab->state.n_lbs; i++)
    n += lab->state.lbs[i]->n_ips;
  if (n == 0)
    return CCM_OK;
  struct lab_addr *a = lab->api->calloc(n, sizeof(*a));
  if (a == NULL)
    return CCM_ERR_INTERNAL;
  n = 0;
  for (size_t i = 0; i < lab->state.n_lbs; i++) {
    const struct lab_lb *lb = lab->state.lbs[i];
    if (lb == skip)
      continue;
    for (size_t j = 0; j < lb->n_ips; j++)
      if (lb->ips[j].family == family)
        a[n++] = lb->ips[j];
  }
  qsort(a, n, sizeof(*a), addr_cmp);
  *out = a;
  *n_out = n;
  return CCM_OK;
}

static const struct lab_addr *old_addr(const struct lab_lb *old,
                                       uint8_t family) {
  if (old == NULL)
    return NULL;
  for (size_t i = 0; i < old->n_ips; i++)
    if (old->ips[i].family == family)
      return &old->ips[i];
  return NULL;
}

/* Choose the address of one family for the candidate record. */
static int choose_addr(struct lab *lab, struct ccm_call *call,
                       const struct ccm_service *svc,
                       const struct lb_request *rq, const struct lab_lb *old,
                       uint8_t f, struct lab_addr *out) {
  char ip[LAB_ADDR_TEXT], pools[256];
  const struct lab_addr *held = old_addr(old, f);
  int fi = fam_index(f);

  if (rq->has_fixed[fi]) {
    const struct lab_addr *want = &rq->fixed[fi];
    lab_addr_format(want, ip);
    if (held != NULL && lab_addr_equal(held, want)) {
      *out = *held;
      return CCM_OK;
    }
    if (!in_pools(lab, want, rq->pool)) {
      pools_text(lab, f, pools, sizeof(pools));
      lab->api->call_set_error(call,
                               "%s %s is not inside any%s%s IPv%u pool (%s)",
                               rq->fixed_src[fi], ip, rq->pool ? " " : "",
                               rq->pool ? rq->pool : "", (unsigned)f, pools);
      return CCM_ERR_INVALID;
    }
    const struct lab_lb *holder = lab_state_holder(&lab->state, want);
    if (holder != NULL && holder != old) {
      lab->api->call_set_error(call,
                               "%s %s is already held by Service %s (load "
                               "balancer %s)",
                               rq->fixed_src[fi], ip, holder->service,
                               holder->name);
      return CCM_ERR_INVALID;
    }
    *out = *want;
    return CCM_OK;
  }
  if (held != NULL) {
    /* Stability first: a held address stays even if pools changed. */
    *out = *held;
    return CCM_OK;
  }
  struct lab_addr *used = NULL;
  size_t n_used = 0;
  if (used_addrs(lab, f, old, &used, &n_used) != CCM_OK) {
    lab->api->call_set_error(call, "lab: out of memory");
    return CCM_ERR_INTERNAL;
  }
  bool ok = lab_pool_allocate(lab->cfg.pools, lab->cfg.n_pools, f, rq->pool,
                              used, n_used, out);
  lab->api->free(used);
  if (!ok) {
    pools_text(lab, f, pools, sizeof(pools));
    lab->api->call_set_error(call,
                             "no free address in%s%s IPv%u pools (%s) for "
                             "Service %s/%s; addresses free up when other "
                             "load balancers are deleted",
                             rq->pool ? " " : "", rq->pool ? rq->pool : "",
                             (unsigned)f, pools, svc->namespace_, svc->name);
    lab->api->call_set_retry_after(call, LAB_RETRY_EXHAUSTED_MS);
    return CCM_ERR_RETRY;
  }
  return CCM_OK;
}

static int set_nodes(const struct ccm_host_api *api, struct lab_lb *lb,
                     const struct ccm_node_list *nodes) {
  for (size_t i = 0; i < lb->n_nodes; i++)
    api->free(lb->nodes[i]);
  api->free(lb->nodes);
  lb->nodes = NULL;
  lb->n_nodes = 0;
  if (nodes == NULL || nodes->n_nodes == 0)
    return CCM_OK;
  lb->nodes = api->calloc(nodes->n_nodes, sizeof(*lb->nodes));
  if (lb->nodes == NULL)
    return CCM_ERR_INTERNAL;
  for (size_t i = 0; i < nodes->n_nodes; i++) {
    const struct ccm_node *n = nodes->nodes[i];
    if (n == NULL || n->name == NULL || n->name[0] == '\0')
      continue;
    lb->nodes[lb->n_nodes] = api->strdup(n->name);
    if (lb->nodes[lb->n_nodes] == NULL)
      return CCM_ERR_INTERNAL;
    lb->n_nodes++;
  }
  return CCM_OK;
}

static struct lab_lb *new_record(const struct ccm_host_api *api,
                                 const struct ccm_service *svc,
                                 const struct ccm_node_list *nodes) {
  char service[2 * CCM_MAX_NAME + 2];
  struct lab_lb *lb = api->calloc(1, sizeof(*lb));
  if (lb == NULL)
    return NULL;
  snprintf(service, sizeof(service), "%s/%s",
           svc->namespace_ ? svc->namespace_ : "", svc->name ? svc->name : "");
  lb->name = api->strdup(svc->lb_name);
  lb->service = api->strdup(service);
  lb->uid = api->strdup(svc->uid ? svc->uid : "");
  if (lb->name == NULL || lb->service == NULL || lb->uid == NULL)
    goto fail;
  if (set_nodes(api, lb, nodes) != CCM_OK)
    goto fail;
  if (svc->n_ports > 0) {
    lb->ports = api->calloc(svc->n_ports, sizeof(*lb->ports));
    if (lb->ports == NULL)
      goto fail;
  }
  for (size_t i = 0; i < svc->n_ports; i++) {
    const struct ccm_service_port *p = svc->ports[i];
    if (p == NULL)
      continue;
    struct lab_port *q = &lb->ports[lb->n_ports];
    q->name = api->strdup(p->name ? p->name : "");
    if (q->name == NULL)
      goto fail;
    q->protocol = p->protocol;
    q->port = p->port;
    q->node_port = p->node_port;
    lb->n_ports++;
  }
  return lb;
fail:
  lab_lb_free(api, lb);
  return NULL;
}

static int fill_status(struct lab *lab, const struct lab_lb *lb,
                       struct ccm_lb_status *out) {
  char ip[LAB_ADDR_TEXT];
  for (size_t i = 0; i < lb->n_ips; i++) {
    lab_addr_format(&lb->ips[i], ip);
    int rc = lab->api->lb_add_ingress(out, ip, NULL);
    if (rc != CCM_OK)
      return rc;
  }
  return CCM_OK;
}

/* Publish cand at index (or append) and persist; on a write failure put
 * the previous record back so memory matches the file. Takes cand. */
static int commit_lb(struct lab *lab, struct ccm_call *call, long index,
                     struct lab_lb *cand) {
  char err[LAB_MSG];
  struct lab_lb *old = NULL;
  if (lab_state_put_lb(lab->api, &lab->state, index, cand, &old) != CCM_OK) {
    lab_lb_free(lab->api, cand);
    lab->api->call_set_error(call, "lab: out of memory");
    return CCM_ERR_INTERNAL;
  }
  if (lab_save(lab, err, sizeof(err)) != CCM_OK) {
    if (index >= 0)
      lab->state.lbs[index] = old;
    else
      lab_state_take_lb(&lab->state, lab->state.n_lbs - 1);
    lab_lb_free(lab->api, cand);
    lab->api->call_set_error(call, "%s", err);
    return CCM_ERR_INTERNAL;
  }
  lab_lb_free(lab->api, old);
  return CCM_OK;
}

static int check_service(struct lab *lab, struct ccm_call *call,
                         const struct ccm_service *svc) {
  if (svc == NULL || svc->lb_name == NULL || svc->lb_name[0] == '\0') {
    lab->api->call_set_error(call, "lab: the Service has no lb_name");
    return CCM_ERR_INVALID;
  }
  return CCM_OK;
}

int lab_lb_ensure(void *instance, struct ccm_call *call,
                  const struct ccm_service *svc,
                  const struct ccm_node_list *nodes,
                  struct ccm_lb_status *out) {
  struct lab *lab = instance;
  struct lb_request rq;
  struct lab_lb *cand = NULL;
  int rc = check_service(lab, call, svc);
  if (rc == CCM_OK)
    rc = decode_request(lab, call, svc, &rq);
  if (rc != CCM_OK)
    return rc;

  pthread_mutex_lock(&lab->mu);
  long index = lab_state_find_lb(&lab->state, svc->lb_name);
  const struct lab_lb *old = index >= 0 ? lab->state.lbs[index] : NULL;
  cand = new_record(lab->api, svc, nodes);
  if (cand == NULL) {
    lab->api->call_set_error(call, "lab: out of memory");
    rc = CCM_ERR_INTERNAL;
    goto done;
  }
  for (size_t i = 0; i < rq.n_families; i++) {
    rc = choose_addr(lab, call, svc, &rq, old, rq.families[i],
                     &cand->ips[cand->n_ips]);
    if (rc != CCM_OK)
      goto done;
    cand->n_ips++;
  }
  if (old != NULL && lab_lb_equal(old, cand)) {
    rc = fill_status(lab, old, out);
    goto done;
  }
  if (old != NULL && strcmp(old->uid, cand->uid) != 0)
    lab->api->log(lab->host, CCM_LOG_INFO,
                  "lab: load balancer %s now serves %s uid %s (was uid %s); "
                  "addresses kept",
                  cand->name, cand->service, cand->uid, old->uid);
  struct lab_lb *published = cand;
  cand = NULL;
  rc = commit_lb(lab, call, index, published);
  if (rc == CCM_OK)
    rc = fill_status(lab, published, out);
done:
  pthread_mutex_unlock(&lab->mu);
  lab_lb_free(lab->api, cand);
  return rc;
}

int lab_lb_get(void *instance, struct ccm_call *call,
               const struct ccm_service *svc, struct ccm_lb_status *out) {
  struct lab *lab = instance;
  int rc = check_service(lab, call, svc);
  if (rc != CCM_OK)
    return rc;
  pthread_mutex_lock(&lab->mu);
  long index = lab_state_find_lb(&lab->state, svc->lb_name);
  if (index < 0)
    rc = CCM_ERR_NOT_FOUND;
  else
    rc = fill_status(lab, lab->state.lbs[index], out);
  pthread_mutex_unlock(&lab->mu);
  return rc;
}

int lab_lb_update_hosts(void *instance, struct ccm_call *call,
                        const struct ccm_service *svc,
                        const struct ccm_node_list *nodes) {
  struct lab *lab = instance;
  struct lab_lb *cand = NULL;
  int rc = check_service(lab, call, svc);
  if (rc != CCM_OK)
    return rc;
  pthread_mutex_lock(&lab->mu);
  long index = lab_state_find_lb(&lab->state, svc->lb_name);
  if (index < 0) {
    lab->api->call_set_error(call, "load balancer %s does not exist",
                             svc->lb_name);
    rc = CCM_ERR_NOT_FOUND;
    goto done;
  }
  cand = lab_lb_clone(lab->api, lab->state.lbs[index]);
  if (cand == NULL || set_nodes(lab->api, cand, nodes) != CCM_OK) {
    lab->api->call_set_error(call, "lab: out of memory");
    rc = CCM_ERR_INTERNAL;
    goto done;
  }
  if (lab_lb_equal(lab->state.lbs[index], cand))
    goto done;
  rc = commit_lb(lab, call, index, cand);
  cand = NULL;
done:
  pthread_mutex_unlock(&lab->mu);
  lab_lb_free(lab->api, cand);
  return rc;
}

int lab_lb_delete(void *instance, struct ccm_call *call,
                  const struct ccm_service *svc) {
  struct lab *lab = instance;
  char err[LAB_MSG];
  int rc = check_service(lab, call, svc);
  if (rc != CCM_OK)
    return rc;
  pthread_mutex_lock(&lab->mu);
  long index = lab_state_find_lb(&lab->state, svc->lb_name);
  if (index < 0)
    goto done;
  struct lab_lb *gone = lab_state_take_lb(&lab->state, (size_t)index);
  if (lab_save(lab, err, sizeof(err)) != CCM_OK) {
    /* The slot just vacated is still allocated, so this cannot fail in
     * practice; if it ever did, the file still holds the record. */
    if (lab_state_insert_lb(lab->api, &lab->state, (size_t)index, gone) !=
        CCM_OK) {
      lab->api->log(lab->host, CCM_LOG_ERROR,
                    "lab: lost load balancer %s from memory after a failed "
                    "write; restart the host to reload %s",
                    gone->name, lab->cfg.state_file);
      lab_lb_free(lab->api, gone);
    }
    lab->api->call_set_error(call, "%s", err);
    rc = CCM_ERR_INTERNAL;
    goto done;
  }
  lab_lb_free(lab->api, gone);
done:
  pthread_mutex_unlock(&lab->mu);
  return rc;
}
