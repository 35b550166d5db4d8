/*
 * aws_lb.c: helpers shared by the Classic ELB and NLB code of the aws
 * module (see aws_lb.h): the Query call wrapper, Service checks, tags and
 * ports. No state here; which resources change stays with the callers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_lb.h"

int aws_lb_call(struct aws *aws, struct ccm_call *call, enum aws_service svc,
                const char *action, struct aws_params *p, xmlDoc **doc,
                struct aws_error *err) {
  xmlDoc *local = NULL;
  int rc = aws_query(aws, call, svc, action, p, doc ? doc : &local, err);
  aws_params_clear(p);
  if (local != NULL)
    xmlFreeDoc(local);
  return rc;
}

int aws_lb_call1(struct aws *aws, struct ccm_call *call, enum aws_service svc,
                 const char *action, const char *key, const char *value,
                 xmlDoc **doc, struct aws_error *err) {
  struct aws_params p;

  aws_params_init(&p, aws->api);
  aws_params_add(&p, key, value);
  return aws_lb_call(aws, call, svc, action, &p, doc, err);
}

int aws_lb_validate(struct aws *aws, struct ccm_call *call,
                    const struct ccm_service *svc, size_t max_ports,
                    const char *kind) {
  if (svc->session_affinity_client_ip) {
    aws->api->call_set_error(call, "sessionAffinity ClientIP is not "
                             "supported by AWS load balancers");
    return CCM_ERR_INVALID;
  }
  if (svc->load_balancer_ip != NULL && svc->load_balancer_ip[0] != '\0') {
    aws->api->call_set_error(call, "spec.loadBalancerIP is not supported on "
                             "AWS");
    return CCM_ERR_INVALID;
  }
  if (svc->n_ports == 0 || svc->n_ports > max_ports) {
    aws->api->call_set_error(call, "%s needs 1 to %zu ports", kind,
                             max_ports);
    return CCM_ERR_INVALID;
  }
  return CCM_OK;
}

bool aws_lb_port_listed(const struct ccm_option_value *ports,
                        const struct ccm_service_port *sp) {
  char num[8];
  if (ports == NULL)
    return true; /* ssl-ports unset: every port (upstream default "*") */
  snprintf(num, sizeof(num), "%u", sp->port);
  for (size_t i = 0; i < ports->list_len; i++)
    if (strcmp(ports->list[i], "*") == 0 || strcmp(ports->list[i], num) == 0 ||
        (sp->name != NULL && sp->name[0] &&
         strcmp(ports->list[i], sp->name) == 0))
      return true;
  return false;
}

void aws_lb_tag_params(struct aws_params *p, const char *prefix,
                       const char *cluster, const char *service,
                       const struct ccm_service *svc) {
  char key[300];
  size_t n = 0;
  snprintf(key, sizeof(key), "%s%s", AWS_CLUSTER_TAG_PREFIX, cluster);
  aws_params_addf(p, key, "%s.member.%zu.Key", prefix, ++n);
  aws_params_addf(p, "owned", "%s.member.%zu.Value", prefix, n);
  aws_params_addf(p, AWS_SERVICE_NAME_TAG, "%s.member.%zu.Key", prefix, ++n);
  aws_params_addf(p, service, "%s.member.%zu.Value", prefix, n);
  for (size_t i = 0; i < svc->n_tags; i++) {
    if (strcmp(svc->tags[i]->key, key) == 0 ||
        strcmp(svc->tags[i]->key, AWS_SERVICE_NAME_TAG) == 0)
      continue;
    aws_params_addf(p, svc->tags[i]->key, "%s.member.%zu.Key", prefix, ++n);
    aws_params_addf(p, svc->tags[i]->value ? svc->tags[i]->value : "",
                    "%s.member.%zu.Value", prefix, n);
  }
}

int aws_lb_int_at(const xmlNode *n, const char *path) {
  char buf[16], *end;
  long v;
  if (!aws_xml_path_text(n, path, buf, sizeof(buf)))
    return -1;
  v = strtol(buf, &end, 10);
  return end != buf && *end == '\0' ? (int)v : -1;
}
