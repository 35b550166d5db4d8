/*
 * aws_options.c: the provider options the aws module declares (the
 * contract with scripts/aws.lua, listed in docs/policies-shipped.md: names are
 * the annotation suffixes after service.beta.kubernetes.io/aws-load-
 * balancer-) and the ELB name rules. Declarations only; no behaviour.
 */
#include <string.h>

#include "aws.h"

#define OPT(id, nm, ty, hl, df)                                             \
  static const struct ccm_option_decl id = {sizeof(struct ccm_option_decl), \
                                            nm, ty, hl, df}

OPT(o_type, "type", CCM_OPT_STRING,
    "load-balancer kind: classic (Classic ELB) or nlb (ELBv2 network LB)",
    "classic");
OPT(o_internal, "internal", CCM_OPT_BOOL,
    "internal scheme (private subnets) instead of internet-facing", "false");
OPT(o_subnets, "subnets", CCM_OPT_STRING_LIST,
    "subnet IDs or Name tags to place the load balancer in", NULL);
OPT(o_eip, "eip-allocations", CCM_OPT_STRING_LIST,
    "Elastic IP allocation IDs, one per subnet (nlb only)", NULL);
OPT(o_privip, "private-ipv4-addresses", CCM_OPT_STRING_LIST,
    "private IPv4 addresses, one per subnet (internal nlb only)", NULL);
OPT(o_sslcert, "ssl-cert", CCM_OPT_STRING,
    "ACM or IAM certificate ARN for the TLS listeners", NULL);
OPT(o_sslports, "ssl-ports", CCM_OPT_STRING_LIST,
    "ports or port names that use the certificate; * means all", NULL);
OPT(o_sslpol, "ssl-negotiation-policy", CCM_OPT_STRING,
    "predefined SSL negotiation policy for the TLS listeners", NULL);
OPT(o_backend, "backend-protocol", CCM_OPT_STRING,
    "protocol to the instances: http, https, ssl or tcp", NULL);
OPT(o_proxy, "proxy-protocol", CCM_OPT_BOOL,
    "enable PROXY protocol on every backend port", "false");
OPT(o_hcproto, "healthcheck-protocol", CCM_OPT_STRING,
    "health-check protocol: tcp, http or https", NULL);
OPT(o_hcport, "healthcheck-port", CCM_OPT_STRING,
    "health-check port: traffic-port or a port number", "traffic-port");
OPT(o_hcpath, "healthcheck-path", CCM_OPT_STRING,
    "health-check path for http and https checks", NULL);
OPT(o_hcint, "healthcheck-interval", CCM_OPT_INT,
    "seconds between health checks (5-300)", NULL);
OPT(o_hcto, "healthcheck-timeout", CCM_OPT_INT,
    "seconds before a health check fails (2-120)", NULL);
OPT(o_hchealthy, "healthcheck-healthy-threshold", CCM_OPT_INT,
    "successes before a target is healthy (2-10)", NULL);
OPT(o_hcunhealthy, "healthcheck-unhealthy-threshold", CCM_OPT_INT,
    "failures before a target is unhealthy (2-10)", NULL);
OPT(o_sgs, "security-groups", CCM_OPT_STRING_LIST,
    "security-group IDs that replace the managed group", NULL);
OPT(o_extrasgs, "extra-security-groups", CCM_OPT_STRING_LIST,
    "security-group IDs added to the load balancer", NULL);
OPT(o_tgattrs, "target-group-attributes", CCM_OPT_STRING_LIST,
    "target-group attributes as key=value entries (nlb)", NULL);
OPT(o_idle, "connection-idle-timeout", CCM_OPT_INT,
    "idle connection timeout in seconds (1-4000)", "60");
OPT(o_drain, "connection-draining-enabled", CCM_OPT_BOOL,
    "let in-flight requests finish on deregistered instances", "false");
OPT(o_draintime, "connection-draining-timeout", CCM_OPT_INT,
    "seconds to drain connections (>= 1)", "300");
OPT(o_crosszone, "cross-zone-load-balancing-enabled", CCM_OPT_BOOL,
    "balance across all zones' instances", "false");
OPT(o_logs, "access-log-enabled", CCM_OPT_BOOL,
    "write access logs to S3", "false");
OPT(o_logint, "access-log-emit-interval", CCM_OPT_INT,
    "minutes between access-log files (5 or 60)", "60");
OPT(o_logbucket, "access-log-s3-bucket-name", CCM_OPT_STRING,
    "S3 bucket for access logs", NULL);
OPT(o_logprefix, "access-log-s3-bucket-prefix", CCM_OPT_STRING,
    "key prefix in the access-log bucket", NULL);

const struct ccm_option_decl *const aws_options[] = {
    &o_type,     &o_internal, &o_subnets,   &o_eip,        &o_privip,
    &o_sslcert,  &o_sslports, &o_sslpol,    &o_backend,    &o_proxy,
    &o_hcproto,  &o_hcport,   &o_hcpath,    &o_hcint,      &o_hcto,
    &o_hchealthy, &o_hcunhealthy, &o_sgs,   &o_extrasgs,   &o_tgattrs,
    &o_idle,     &o_drain,    &o_draintime, &o_crosszone,  &o_logs,
    &o_logint,   &o_logbucket, &o_logprefix, NULL};

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/* ELB and ELBv2 names: 1-32 characters, alphanumerics and '-', not
 * starting or ending with '-'. Upstream's default name always fits. */
const struct ccm_name_rules aws_name_rules = {
    sizeof(struct ccm_name_rules), 1, 32, ALNUM "-", ALNUM, ALNUM};

const struct ccm_option_value *aws_option(const struct ccm_service *svc,
                                          const char *name) {
  for (size_t i = 0; i < svc->n_options; i++)
    if (svc->options[i] != NULL && strcmp(svc->options[i]->name, name) == 0)
      return svc->options[i];
  return NULL;
}

const char *aws_opt_str(const struct ccm_service *svc, const char *name) {
  const struct ccm_option_value *o = aws_option(svc, name);
  return o != NULL && o->type == CCM_OPT_STRING ? o->string_value : NULL;
}

bool aws_opt_bool(const struct ccm_service *svc, const char *name,
                  bool dflt) {
  const struct ccm_option_value *o = aws_option(svc, name);
  return o != NULL && o->type == CCM_OPT_BOOL ? o->bool_value : dflt;
}

int64_t aws_opt_int(const struct ccm_service *svc, const char *name,
                    int64_t dflt) {
  const struct ccm_option_value *o = aws_option(svc, name);
  return o != NULL && o->type == CCM_OPT_INT ? o->int_value : dflt;
}

const struct ccm_option_value *aws_opt_list(const struct ccm_service *svc,
                                            const char *name) {
  const struct ccm_option_value *o = aws_option(svc, name);
  return o != NULL && o->type == CCM_OPT_STRING_LIST && o->list_len > 0 ? o
                                                                       : NULL;
}
