/*
 * double_fix.h: what the aws module's tests against the AWS double share:
 * the double started on 127.0.0.1 for the group (its port, a scratch
 * directory), a clean credential environment, a module instance whose
 * every endpoint points at the double, and the double's control API.
 */
#ifndef CCM_TESTS_AWS_DOUBLE_FIX_H
#define CCM_TESTS_AWS_DOUBLE_FIX_H

#include <libconfig.h>

#include <cjson/cJSON.h>

#include "aws.h"
#include "modules/host_api.h"

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

#endif
