/*
 * aws_lb.h: what the Classic ELB (aws_elb.c) and NLB (aws_nlb.c) code of
 * the aws module share: the Query call wrapper, Service checks, tag and
 * port helpers. Internal to the module; it must not hold state.
 */
#ifndef CCM_AWS_LB_H
#define CCM_AWS_LB_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "aws.h"

/* action on svc (ELB or ELBv2) with p, which is cleared; the answer goes
 * to *doc (the caller frees it) or, when doc is NULL, is dropped. */
int aws_lb_call(struct aws *aws, struct ccm_call *call, enum aws_service svc,
                const char *action, struct aws_params *p, xmlDoc **doc,
                struct aws_error *err);

/* aws_lb_call with the one parameter key=value. */
int aws_lb_call1(struct aws *aws, struct ccm_call *call, enum aws_service svc,
                 const char *action, const char *key, const char *value,
                 xmlDoc **doc, struct aws_error *err);

/* The checks every AWS load balancer makes before any call: no ClientIP
 * affinity, no loadBalancerIP, 1 to max_ports ports. kind names the load
 * balancer in the port error ("a load balancer", "an NLB"). CCM_OK or
 * CCM_ERR_INVALID with the message in call. */
int aws_lb_validate(struct aws *aws, struct ccm_call *call,
                    const struct ccm_service *svc, size_t max_ports,
                    const char *kind);

/* Whether sp is named by the ssl-ports list (by number, name or "*");
 * every port when the list is unset. */
bool aws_lb_port_listed(const struct ccm_option_value *ports,
                        const struct ccm_service_port *sp);

/* The tags every resource gets, as <prefix>.member.N.Key/Value: ownership
 * for cluster, the service name, then the Service's own tags. */
void aws_lb_tag_params(struct aws_params *p, const char *prefix,
                       const char *cluster, const char *service,
                       const struct ccm_service *svc);

/* The integer text at path under n; -1 when absent or not a number. */
int aws_lb_int_at(const xmlNode *n, const char *path);

#endif
