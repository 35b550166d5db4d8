/*
 * conformance.h: the internals shared by the files of ccm-conformance, the
 * provider contract suite. It owns the run context, the check tables, the
 * direct call wrappers and the test fixtures; it must not change the module.
 */
#ifndef CCM_CONFORMANCE_H
#define CCM_CONFORMANCE_H

#include <libconfig.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccm_provider.h"
#include "modules/host_api.h"
#include "modules/registry.h"

/* Every call gets a generous deadline: the kit judges behaviour, not speed. */
#define CCM_CONF_CALL_TIMEOUT_MS 30000u
#define CCM_CONF_THREADS 8
#define CCM_CONF_ITERATIONS 50u
#define CCM_CONF_WHY 1024 /* room for one check's failure reason */
#define CCM_CONF_NOTES 1024

enum conf_result { CONF_PASS = 0, CONF_FAIL = 1, CONF_SKIP = 2 };

/* A node the run may use: from conformance.known_nodes or synthetic. */
struct conf_node {
  struct ccm_node node;
  struct ccm_node_address addr;
  const struct ccm_node_address *addrs[1];
  char name[CCM_MAX_NAME + 1];
  char uid[40];
  char provider_id[CCM_MAX_ID + 1];
  char ip[CCM_MAX_ADDRESS + 1];
};

/* A node set handed to lb_ensure and lb_update_hosts. */
struct conf_node_set {
  const struct ccm_node *ptrs[4];
  struct ccm_node_list list;
};

/* A realistic Service; it points into itself, so never copy one. */
struct conf_service {
  struct ccm_service svc;
  struct ccm_service_port port;
  const struct ccm_service_port *ports[1];
  uint32_t family;
  struct ccm_kv tag;
  const struct ccm_kv *tags[1];
  char name[64];
  char uid[40];
  char lb_name[CCM_MAX_NAME + 1];
};

/* Contract evidence gathered over every call of the run. */
struct conf_evidence {
  pthread_mutex_t lock;
  unsigned long calls;
  unsigned long bad_status;
  unsigned long bad_bounds;
  unsigned long invalid;
  char status_notes[CCM_CONF_NOTES];
  char bounds_notes[CCM_CONF_NOTES];
  char invalid_notes[CCM_CONF_NOTES];
};

struct conf_run {
  /* from the command line and the config file */
  const char *module_path;
  const char *cluster;
  const char *only;
  bool verbose;
  const config_setting_t *module_cfg; /* the `config` group, may be NULL */
  struct conf_node *known;             /* conformance.known_nodes */
  size_t n_known;
  unsigned iterations;                 /* per thread in contract/concurrency */

  /* the module, loaded through the registry */
  char slot_name[64];
  struct registry *reg;
  struct provider_ref ref;
  const struct module *mod;
  const struct ccm_provider *prov;
  void *instance;
  pthread_mutex_t *serial; /* the generation's lock; NULL when thread-safe */

  /* fixtures */
  uint32_t nonce;
  atomic_uint counter;
  struct conf_node pool[3]; /* backend nodes: known first, then synthetic */

  /* results */
  unsigned passed, failed, skipped;
  struct conf_evidence ev;
};

/* One check: returns enum conf_result and, unless it passed, a reason. */
typedef int conf_check_fn(struct conf_run *run, char *why, size_t cap);

struct conf_check {
  const char *name;
  conf_check_fn *fn;
};

/* A group runs its checks in order, or skips them all when `supported`
 * says the module lacks the capability. */
struct conf_group {
  const char *name;
  bool (*supported)(const struct conf_run *run, char *why, size_t cap);
  const struct conf_check *checks; /* terminated by {NULL, NULL} */
};

extern const struct conf_group conf_group_lb;
extern const struct conf_group conf_group_instances;
extern const struct conf_group conf_group_routes;
extern const struct conf_group conf_group_contract;

/* ---- conf_calls.c: direct calls through the generation's provider -------
 * Each wrapper gives the call a fresh context with a 30 s deadline, answers
 * CCM_ERR_NOT_IMPLEMENTED for a missing operation, takes the generation's
 * serial lock for a CCM_THREAD_SERIAL module, records the raw status (also
 * values outside the enum, which the registry's prov_* would have mapped
 * away) and checks every result string against its bound. On failure the
 * outputs are cleared and the module's message is copied to err. */
/* Whether the module has an operation: MODULE_HAS(run->mod, field). */

int conf_lb_get(struct conf_run *run, const struct ccm_service *svc,
                struct ccm_lb_status *out, char *err, size_t cap);
int conf_lb_ensure(struct conf_run *run, const struct ccm_service *svc,
                   const struct ccm_node_list *nodes,
                   struct ccm_lb_status *out, char *err, size_t cap);
int conf_lb_update_hosts(struct conf_run *run, const struct ccm_service *svc,
                         const struct ccm_node_list *nodes, char *err,
                         size_t cap);
int conf_lb_delete(struct conf_run *run, const struct ccm_service *svc,
                   char *err, size_t cap);
int conf_instance_exists(struct conf_run *run, const struct ccm_node *node,
                         bool *exists, char *err, size_t cap);
int conf_instance_shutdown(struct conf_run *run, const struct ccm_node *node,
                           bool *shutdown, char *err, size_t cap);
int conf_instance_metadata(struct conf_run *run, const struct ccm_node *node,
                           struct ccm_instance_meta *out, char *err,
                           size_t cap);
int conf_instance_metadata_batch(struct conf_run *run,
                                 const struct ccm_node *const *nodes,
                                 size_t n, struct ccm_instance_meta *const *out,
                                 int *status, char *err, size_t cap);
int conf_route_list(struct conf_run *run, struct ccm_route_list *out,
                    char *err, size_t cap);
int conf_route_create(struct conf_run *run, const char *name_hint,
                      const struct ccm_route *route, char *err, size_t cap);
int conf_route_delete(struct conf_run *run, const struct ccm_route *route,
                      char *err, size_t cap);
int conf_state_export(struct conf_run *run, struct ccm_blob *out, char *err,
                      size_t cap);

/* Record a status seen from `op` (used for calls made outside the wrappers,
 * e.g. on a second instance). */
void conf_track(struct conf_run *run, const char *op, int status,
                const struct ccm_call *call);
/* Check result strings against their bounds; false and a note if not. */
bool conf_bounds_lb(struct conf_run *run, const char *op,
                    const struct ccm_lb_status *st);
bool conf_bounds_meta(struct conf_run *run, const char *op,
                      const struct ccm_instance_meta *m);

/* "CCM_OK", ..., or "42 (outside enum ccm_status)"; buf holds the latter. */
const char *conf_status_str(int status, char *buf, size_t cap);

/* ---- conf_fixtures.c: services, nodes, names ------------------------- */
void conf_fixtures_init(struct conf_run *run);
/* A Service named "<label>-<n>" with a unique uid and an lb_name that
 * follows the module's name rules; false (and why) when no valid name can
 * be built. */
bool conf_service_make(struct conf_run *run, struct conf_service *s,
                       const char *label, char *why, size_t cap);
/* Synthetic node `name` with InternalIP ip (provider_id may be NULL). */
void conf_node_make(struct conf_node *n, const char *name, const char *uid,
                    const char *provider_id, const char *ip);
/* Backend sets: A = pool[0..1], B = pool[1..2] (differs from A). */
void conf_nodes_a(struct conf_run *run, struct conf_node_set *set);
void conf_nodes_b(struct conf_run *run, struct conf_node_set *set);
/* A node the module cannot know. */
void conf_node_unknown(struct conf_run *run, struct conf_node *n);

/* Name rules: true when name follows them (NULL rules: any name). */
bool conf_name_valid(const struct ccm_name_rules *rules, const char *name,
                     char *why, size_t cap);

/* Load-balancer status equality, order-insensitive. */
bool conf_lb_equal(const struct ccm_lb_status *a,
                   const struct ccm_lb_status *b);
/* "[ip 10.0.0.1, host x]" for messages. */
void conf_lb_format(const struct ccm_lb_status *st, char *buf, size_t cap);

/* Append a formatted note to buf (cut when full). */
void conf_appendf(char *buf, size_t cap, const char *fmt, ...) CCM_PRINTF(3, 4);
/* Write a reason (snprintf into why). */
int conf_fail(char *why, size_t cap, const char *fmt, ...) CCM_PRINTF(3, 4);
int conf_skip(char *why, size_t cap, const char *fmt, ...) CCM_PRINTF(3, 4);

/* "<what> returned <status>[, want <want>][: <module message>]". */
int conf_call_fail(char *why, size_t cap, const char *what, int status,
                   const char *want, const char *err);

/* Verbose detail line ("     # ...") on stdout when --verbose. */
void conf_note(const struct conf_run *run, const char *fmt, ...)
    CCM_PRINTF(2, 3);

#endif
