/*
 * double_fix.h: what the aws module's tests against the AWS double share:
 * the double started on 127.0.0.1 for the group (its port, a scratch
 * directory), a clean credential environment, a module instance whose
 * every endpoint points at the double, the double's control API, and the
 * load-balancer Service the LB tests start from.
 */
#ifndef CCM_TESTS_AWS_DOUBLE_FIX_H
#define CCM_TESTS_AWS_DOUBLE_FIX_H

#include <libconfig.h>

#include <cjson/cJSON.h>

#include "aws.h"
#include "modules/host_api.h"

#define FX_NODE_A "ip-10-0-128-10.ec2.internal"
#define FX_NODE_B "ip-10-0-144-20.ec2.internal"
#define FX_ID_A "i-0a1b2c3d4e5f60001" /* FX_NODE_A's instance */
#define FX_OPTS_MAX 8

extern int fx_port;        /* the double's port */
extern char fx_tmpdir[64]; /* removed by fx_double_stop */

struct fix {
  config_t cfg;
  struct ccm_host *host;
  const struct ccm_provider *p;
  struct aws *aws;
  struct ccm_call call;
};

/* cmocka group setup/teardown: start and stop the double (seeded). */
int fx_double_start(void **state);
int fx_double_stop(void **state);
/* No AWS variables, HOME in the scratch dir, no shared files. */
void fx_env_clean(void);
/* The double's default access key in the environment. */
void fx_env_keys(void);
/* A module instance; extra: more keys inside the aws group. Returns init's
 * status (the error is in f->call). */
int fx_up(struct fix *f, const char *extra);
void fx_down(struct fix *f);
/* A request to the double's control API; the JSON answer (cJSON_Delete). */
cJSON *fx_control(struct fix *f, const char *method, const char *path,
                  const char *body);
/* Calls of action in the double's log since the last reset. */
int fx_calls(struct fix *f, const char *action);
/* The seed's state, an empty call log, no faults. */
void fx_reset(struct fix *f);
void fx_node_make(struct ccm_node *n, const char *name, const char *pid);

/* The usual start: clean environment, the double's keys, IMDS off, an
 * instance for region us-east-1 and cluster kubernetes (extra: more keys
 * inside the aws group), then fx_reset. Fails the test when init fails. */
void fx_start(struct fix *f, const char *extra);
/* fx_down, then a clean environment. */
void fx_finish(struct fix *f);
/* The double's state as JSON (cJSON_Delete). */
cJSON *fx_state(struct fix *f);
/* An empty call log. */
void fx_calls_clear(struct fix *f);
/* Faults for the double (JSON: one fault, a list, or {"clear": true}). */
void fx_faults(struct fix *f, const char *json);
/* action sent straight to svc (parameters p, cleared), asserted CCM_OK. */
void fx_query_ok(struct fix *f, enum aws_service svc, const char *action,
                 struct aws_params *p);

/* A Service of two TCP ports (http 80->30080, https 443->30443), tag
 * team=web, two nodes (FX_NODE_A by providerID, FX_NODE_B by private DNS
 * name) and no options; fx_svc_opt adds them. */
struct fx_svc {
  struct ccm_service svc;
  struct ccm_service_port port80, port443;
  const struct ccm_service_port *ports[2];
  struct ccm_kv tag;
  const struct ccm_kv *tags[1];
  struct ccm_option_value opt[FX_OPTS_MAX];
  const struct ccm_option_value *opts[FX_OPTS_MAX];
  struct ccm_node n1, n2;
  const struct ccm_node *nodes[2];
  struct ccm_node_list list;
};

void fx_svc_make(struct fx_svc *s, const char *lb_name);
/* One more option on s, zeroed but for name and type. */
struct ccm_option_value *fx_svc_opt(struct fx_svc *s, const char *name,
                                    uint32_t type);
/* lb_ensure of s must return want (the error is shown when it does not);
 * the status it fills is cleared. */
void fx_ensure(struct fix *f, struct fx_svc *s, int want);

#endif
