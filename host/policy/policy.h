/*
 * policy.h: Lua policies (load-balancer naming, provider options, backend
 * nodes, resource tags, node labels), sandboxed, one lua_State per calling
 * thread, reloaded between calls. It must not call providers or Kubernetes:
 * callers pass cached objects in and act on the results.
 */
#ifndef CCM_POLICY_H
#define CCM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccm_provider.h"
#include "kube/objects.h"

struct policy_engine;

/* Limits of the sandbox; zero fields take the defaults below. */
#define CCM_POLICY_DEFAULT_MEM (16u * 1024u * 1024u) /* bytes per state */
#define CCM_POLICY_DEFAULT_INSTRUCTIONS 1000000u     /* per hook call */
#define CCM_POLICY_DEFAULT_CALL_MS 100u              /* per hook call */
#define CCM_POLICY_DEFAULT_LOAD_MS 500u              /* compile + top level */

struct policy_limits {
  size_t mem_bytes;
  uint64_t instructions;
  uint32_t call_ms;
  uint32_t load_ms;
};

/* What a hook knows about where the Service or Node goes. provider may be
 * NULL (no module at hand): then options are not validated against
 * declarations and names only against the generic rule. */
struct policy_ctx {
  const char *cluster_name;
  const char *provider_name;  /* config name ("lab", "prod-aws") */
  const char *provider_class; /* loadBalancerClass, NULL for the default */
  const struct ccm_provider *provider; /* module descriptor: name = ctx.module */
};

enum policy_result {
  POLICY_OK = 0,         /* a policy hook ran; the result is valid */
  POLICY_DEFAULT = 1,    /* no policy defines the hook; the built-in
                          * default filled the result */
  POLICY_ELSEWHERE = 2,  /* options: the policy returned
                          * ccm.IMPLEMENTED_ELSEWHERE; skip the Service */
  POLICY_REJECT = -1,    /* the hook returned nil, "reason" */
  POLICY_ERROR = -2      /* runtime error, budget or memory kill, or a
                          * result that fails validation */
};

/* A failure or rejection, for the log and the Warning Event. */
struct policy_error {
  char policy[128];    /* policy file name (base name) */
  char hook[32];       /* "load_balancer_options", ... */
  char where[160];     /* "aws.lua:42", or "" when unknown */
  char message[512];   /* the reason or the error, one line */
  char traceback[1024];/* "" for a rejection */
};

/* Validated provider options: values points into storage owned here;
 * pass options/n to struct ccm_service as is. */
struct policy_options {
  const struct ccm_option_value *const *options;
  size_t n;
};

/* Key/value results (tags, labels), ccm_kv ready. */
struct policy_kvs {
  const struct ccm_kv *const *kvs;
  size_t n;
};

/* Counters for /metrics. */
struct policy_stats {
  uint64_t generation;      /* policy set in force, 0 = none loaded */
  uint64_t calls;           /* hook calls that ran Lua */
  uint64_t errors;          /* POLICY_ERROR results */
  uint64_t rejections;      /* POLICY_REJECT results */
  uint64_t reloads;         /* successful reloads */
  uint64_t reload_failures; /* failed reloads (old set kept) */
  uint64_t states;          /* live lua_States */
  uint64_t state_bytes;     /* bytes held by all live states */
};

/* Build an engine from policy files, applied in order (see docs/policies.md
 * for how several files combine). n == 0 gives the built-in defaults only.
 * Compiles and self-tests every file; on failure returns -1 with one line
 * in err naming the file and line. */
int policy_engine_new(const char *const *files, size_t n,
                      const struct policy_limits *limits,
                      struct policy_engine **out, char *err, size_t errlen);
/* Frees every state. No thread may be inside a hook call. */
void policy_engine_free(struct policy_engine *pe);

/* Compile and self-test a new set, then swap it in: each thread moves to
 * it at its next hook call. On failure the old set stays in force, the
 * failure is counted, and err says why. Safe while other threads call. */
int policy_engine_reload(struct policy_engine *pe, const char *const *files,
                         size_t n, char *err, size_t errlen);

/* Watch the current set's files (inotify) and reload when one changes;
 * reload failures are logged. Idempotent; stopped by policy_engine_free. */
int policy_engine_watch(struct policy_engine *pe);

void policy_engine_stats(const struct policy_engine *pe,
                         struct policy_stats *out);

/* ---- hooks: any thread, concurrently; each thread uses its own state ---- */

/* name receives the load-balancer name (validated against the provider's
 * name rules; the default is "a" + UID without dashes, cut to 32). */
int policy_lb_name(struct policy_engine *pe, const struct obj_service *svc,
                   const struct policy_ctx *ctx, char *name, size_t cap,
                   struct policy_error *err);

/* On POLICY_OK/POLICY_DEFAULT *out holds options to free with
 * policy_options_free (the default is no options). */
int policy_lb_options(struct policy_engine *pe, const struct obj_service *svc,
                      const struct policy_ctx *ctx,
                      struct policy_options **out, struct policy_error *err);
void policy_options_free(struct policy_options *opts);

/* Whether the loaded policies define the load-balancer input hooks
 * (options or tags) and the backend node hook: when not, the calls return
 * the default and the caller may skip preparing their arguments. */
bool policy_defines_lb_inputs(struct policy_engine *pe);
bool policy_defines_backend_nodes(struct policy_engine *pe);

/* keep[i] says whether nodes[i] stays a backend (default: all kept, as
 * the caller already applied upstream's predicates). */
int policy_backend_nodes(struct policy_engine *pe,
                         const struct obj_service *svc,
                         const struct obj_node *const *nodes, size_t n,
                         const struct policy_ctx *ctx, bool *keep,
                         struct policy_error *err);

/* Tags for the cloud resources (default: none). */
int policy_resource_tags(struct policy_engine *pe,
                         const struct obj_service *svc,
                         const struct policy_ctx *ctx,
                         struct policy_kvs **out, struct policy_error *err);

/* Extra Node labels from instance metadata (default: none). The caller
 * filters them as upstream filters AdditionalLabels (keys under
 * kubernetes.io/ or k8s.io/, or a subdomain of either, are dropped). */
struct policy_node_meta {
  const char *provider_id, *instance_type, *zone, *region;
  const struct ccm_kv *const *labels; /* labels the provider returned */
  size_t n_labels;
};
int policy_node_labels(struct policy_engine *pe, const struct obj_node *node,
                       const struct policy_node_meta *meta,
                       const struct policy_ctx *ctx, struct policy_kvs **out,
                       struct policy_error *err);
void policy_kvs_free(struct policy_kvs *kvs);

/* The one-line summary used in logs and Events:
 * "policy aws.lua:42 load_balancer_options: <message>". */
int policy_error_format(const struct policy_error *err, char *buf,
                        size_t cap);

/* ccm-host --check-policy FILE [--provider PATH] [--service FILE]: argv
 * starts at FILE. Prints the results; returns the exit status. */
int policy_check_main(int argc, char **argv);

#endif
