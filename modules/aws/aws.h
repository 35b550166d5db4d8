/*
 * aws.h: internal interfaces of the aws provider module (never installed,
 * never seen by the host): config, SigV4, credentials, the Query/XML
 * transport, instances and routes. Nothing here may include host/; the
 * module reaches the host only through struct ccm_host_api.
 */
#ifndef CCM_AWS_H
#define CCM_AWS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>

#include "ccm_provider.h"

#define AWS_PROVIDER_ID_PREFIX "aws:///"
#define AWS_EC2_VERSION "2016-11-15"
#define AWS_ELB_VERSION "2012-06-01"
#define AWS_ELBV2_VERSION "2015-12-01"
#define AWS_STS_VERSION "2011-06-15"
#define AWS_IMDS_DEFAULT "http://169.254.169.254"
#define AWS_IMDS_TIMEOUT_MS 2000u
#define AWS_IMDS_TOKEN_TTL 21600
#define AWS_CREDS_REFRESH_S 300   /* refresh this long before Expiration */
#define AWS_DESCRIBE_BATCH 500    /* InstanceId.N per DescribeInstances */
#define AWS_ERR 768               /* local message buffers */
#define AWS_CLUSTER_TAG_PREFIX "kubernetes.io/cluster/"
#define AWS_SERVICE_NAME_TAG "kubernetes.io/service-name"
#define AWS_LEGACY_CLUSTER_TAG "KubernetesCluster"

/* Retry budget of one Query call (throttling, 5xx, transport errors). */
#define AWS_RETRY_ATTEMPTS 4
#define AWS_RETRY_BASE_MS 200u
#define AWS_RETRY_CAP_MS 5000u
#define AWS_RETRY_AFTER_MS 10000u /* delay suggested to the host at the end */

enum aws_service {
  AWS_SVC_EC2 = 0,
  AWS_SVC_ELB = 1,
  AWS_SVC_ELBV2 = 2,
  AWS_SVC_STS = 3,
  AWS_SVC_IMDS = 4,
  AWS_SVC_COUNT = 5
};

/* ---- small growable text buffer (api memory) ----------------------------- */
struct aws_buf {
  const struct ccm_host_api *api;
  char *data; /* NUL-terminated when len > 0 or after aws_buf_str */
  size_t len, cap;
  bool oom; /* sticky: an append failed */
};
void aws_buf_init(struct aws_buf *b, const struct ccm_host_api *api);
void aws_buf_add(struct aws_buf *b, const char *s, size_t n);
void aws_buf_adds(struct aws_buf *b, const char *s);
void aws_buf_addf(struct aws_buf *b, const char *fmt, ...) CCM_PRINTF(2, 3);
/* RFC 3986 unreserved characters stay, everything else becomes %XX. */
void aws_buf_add_uri(struct aws_buf *b, const char *s, size_t n,
                     bool keep_slash);
const char *aws_buf_str(struct aws_buf *b); /* "" when empty */
void aws_buf_free(struct aws_buf *b);

/* ---- Query parameters (Action, Version and the operation's fields) --- */
struct aws_param {
  char *name;
  char *value;
};
struct aws_params {
  const struct ccm_host_api *api;
  struct aws_param *items;
  size_t n, cap;
  bool oom;
};
void aws_params_init(struct aws_params *p, const struct ccm_host_api *api);
void aws_params_add(struct aws_params *p, const char *name, const char *value);
/* Name from a format, e.g. aws_params_addf(p, id, "InstanceId.%zu", i + 1). */
void aws_params_addf(struct aws_params *p, const char *value,
                     const char *name_fmt, ...) CCM_PRINTF(3, 4);
/* Filter.<n>.Name = name, Filter.<n>.Value.<i> = values[i]; n is the next
 * free filter number (starts at 1, advanced). */
void aws_params_filter(struct aws_params *p, unsigned *n, const char *name,
                       const char *const *values, size_t n_values);
void aws_params_clear(struct aws_params *p);
/* x-www-form-urlencoded body "k=v&k2=v2" in insertion order. */
void aws_params_encode(const struct aws_params *p, struct aws_buf *out);

/* ---- config (aws_config.c) ----------------------------------------------- */
struct aws_endpoint {
  char *url;            /* NULL: the default for the region */
  char *signing_region; /* NULL: the region */
  char *signing_name;   /* NULL: the service's default */
};

/* One [ServiceOverride "N"] section of cloud.conf. */
struct aws_override {
  char *key; /* the "N" */
  char *service, *region, *url, *signing_region, *signing_name,
      *signing_method;
};

/* Upstream cloud.conf ([Global] and [ServiceOverride "N"]). */
struct aws_cloudconf {
  char *region, *route_table_id, *cluster_id, *cluster_tag, *vpc,
      *subnet_id, *role_arn, *elb_security_group;
  bool disable_sg_ingress;
  uint32_t families[2]; /* enum ccm_ip_family, NodeIPFamilies order */
  size_t n_families;
  struct aws_override *overrides;
  size_t n_overrides;
};

struct aws_config {
  char *region, *cluster_id, *role_arn, *route_table_id, *vpc, *subnet_id,
      *elb_security_group, *cloud_config;
  bool disable_sg_ingress;
  size_t describe_batch; /* instances per DescribeInstances, 1..500 */
  uint32_t families[2];
  size_t n_families; /* >= 1 after load (default ipv4) */
  struct aws_endpoint ep[AWS_SVC_COUNT]; /* resolved by aws_config_resolve */
  struct aws_cloudconf cc;               /* what cloud.conf said (if any) */
};

/* Parse an upstream cloud.conf file. On bad input returns CCM_ERR_INVALID
 * with one line in err naming path:line and the key. */
int aws_cloudconf_parse(const struct ccm_host_api *api, const char *path,
                        struct aws_cloudconf *out, char *err, size_t errlen);
void aws_cloudconf_clear(const struct ccm_host_api *api,
                         struct aws_cloudconf *cc);
/* Read the module's libconfig group (and cloud_config if set), merged:
 * the libconfig group wins over cloud.conf. */
int aws_config_load(const struct ccm_host_api *api, struct ccm_host *host,
                    struct aws_config *out, char *err, size_t errlen);
/* Fill ep[] once the region is known: explicit endpoints, then cloud.conf
 * overrides for (service, region), then the public defaults. */
int aws_config_resolve(const struct ccm_host_api *api, struct aws_config *cfg,
                       char *err, size_t errlen);
void aws_config_clear(const struct ccm_host_api *api, struct aws_config *cfg);
const char *aws_service_label(enum aws_service svc); /* "EC2", ... */
const char *aws_service_signing_name(enum aws_service svc); /* "ec2", ... */

/* ---- SigV4 (aws_sigv4.c) ------------------------------------------------- */
struct aws_sign_input {
  const char *method;
  const char *path;  /* raw path, encoded here per segment; "" = "/" */
  const char *query; /* raw query string without '?', or NULL */
  const char *const *headers; /* "Name:value" lines; all of them signed */
  size_t n_headers;
  const void *payload;
  size_t payload_len;
  const char *amz_date; /* yyyymmddThhmmssZ */
  const char *region;
  const char *service;
  const char *access_key;
  const char *secret_key;
};
/* Writes the Authorization header value into authz. When creq/sts are not
 * NULL they receive the canonical request and string to sign (api memory,
 * the caller frees). Returns CCM_OK, CCM_ERR_INVALID or CCM_ERR_INTERNAL. */
int aws_sigv4_sign(const struct ccm_host_api *api,
                   const struct aws_sign_input *in, char *authz,
                   size_t authz_len, char **creq, char **sts);
/* Lowercase hex SHA-256 of data (65 bytes with the NUL). */
void aws_sha256_hex(const void *data, size_t len, char out[65]);
/* "yyyymmddThhmmssZ" for t (UTC). */
void aws_amz_date(int64_t unix_s, char out[17]);
/* host[:port] of an http(s) URL, default ports dropped; false if malformed. */
bool aws_url_host(const char *url, char *out, size_t len);

/* ---- credentials (aws_creds.c) ------------------------------------------- */
enum aws_cred_source {
  AWS_SRC_NONE = 0,
  AWS_SRC_ENV = 1,
  AWS_SRC_PROFILE = 2,
  AWS_SRC_WEB_IDENTITY = 3,
  AWS_SRC_IMDS = 4,
  AWS_SRC_ASSUME_ROLE = 5
};
struct aws_creds {
  char *access_key;
  char *secret_key;
  char *token;     /* NULL for long-term keys */
  int64_t expires; /* unix seconds, 0 = never */
  int source;      /* enum aws_cred_source */
};
const char *aws_cred_source_name(int source); /* for messages */
void aws_creds_clear(const struct ccm_host_api *api, struct aws_creds *c);
int aws_creds_copy(const struct ccm_host_api *api, const struct aws_creds *src,
                   struct aws_creds *dst);
/* Environment, then the shared files (profile), without network. Returns
 * CCM_OK with out filled, CCM_ERR_NOT_FOUND when neither has credentials,
 * CCM_ERR_INVALID (message in err) for a broken file or half-set env. */
int aws_creds_from_env(const struct ccm_host_api *api, struct aws_creds *out,
                       char *err, size_t errlen);
int aws_creds_from_profile(const struct ccm_host_api *api,
                           struct aws_creds *out, char *err, size_t errlen);

struct aws;
/* Current credentials (the whole chain, then role_arn), refreshed when
 * they expire; a copy the caller clears. Auth problems -> CCM_ERR_AUTH with
 * a message naming the source in call. */
int aws_creds_get(struct aws *aws, struct ccm_call *call,
                  struct aws_creds *out);
/* Forget cached credentials after the cloud refused them. */
void aws_creds_invalidate(struct aws *aws);

/* ---- IMDSv2 (aws_creds.c) ------------------------------------------------ */
/* GET path (e.g. "/latest/meta-data/instance-id") with a session token;
 * body (api memory) in *out. CCM_ERR_NOT_FOUND on 404. */
int aws_imds_get(struct aws *aws, struct ccm_call *call, const char *path,
                 char **out);
bool aws_imds_disabled(const struct aws *aws);

/* ---- Query transport and XML (aws_query.c) ------------------------------- */
struct aws_error {
  long http_status; /* 0: transport failure */
  char code[128];
  char message[384];
  char request_id[96];
};

/* What the module does with an answer. */
enum aws_err_class {
  AWS_ERRC_OK = 0,
  AWS_ERRC_THROTTLE = 1,  /* retry with backoff, then CCM_ERR_THROTTLED */
  AWS_ERRC_TRANSIENT = 2, /* retry with backoff, then CCM_ERR_RETRY */
  AWS_ERRC_NOT_FOUND = 3, /* CCM_ERR_NOT_FOUND */
  AWS_ERRC_AUTH = 4,      /* CCM_ERR_AUTH */
  AWS_ERRC_INVALID = 5,   /* CCM_ERR_INVALID */
  AWS_ERRC_OTHER = 6      /* CCM_ERR_INTERNAL */
};
int aws_error_classify(long http_status, const char *code);
int aws_error_class_status(int err_class); /* enum ccm_status */
/* Parse an EC2 (<Response><Errors><Error>) or Query (<ErrorResponse>
 * <Error>) error document; false when the body is neither. */
bool aws_error_parse(const char *body, size_t len, struct aws_error *out);
/* Full-jitter backoff for attempt (0-based): uniform in [0, min(cap,
 * base * 2^attempt)]. */
uint32_t aws_backoff_ms(unsigned attempt, uint32_t rnd);

/* Parse an XML body (no network, no entities); NULL when malformed. */
xmlDoc *aws_xml_parse(const char *body, size_t len);
/* First element child of node with that local name (NULL = any). */
xmlNode *aws_xml_child(const xmlNode *node, const char *name);
/* Next element sibling with that local name (NULL = any). */
xmlNode *aws_xml_next(const xmlNode *node, const char *name);
/* Follow "a/b/c" of local names from node; NULL when absent. */
xmlNode *aws_xml_path(const xmlNode *node, const char *path);
/* Text of node (its text children) into buf; false when absent/too long. */
bool aws_xml_text(const xmlNode *node, char *buf, size_t len);
bool aws_xml_path_text(const xmlNode *node, const char *path, char *buf,
                       size_t len);
/* Text as api memory ("" when the element is empty, NULL when absent). */
char *aws_xml_path_dup(const struct ccm_host_api *api, const xmlNode *node,
                       const char *path);

/* POST Action/Version+params to the service, signed, with retries. On
 * CCM_OK *doc holds the response (xmlFreeDoc it). On failure the status
 * maps the error, call has a message naming the action and code, and err
 * (may be NULL) holds the AWS error code for the caller's own decisions. */
int aws_query(struct aws *aws, struct ccm_call *call, enum aws_service svc,
              const char *action, const struct aws_params *params,
              xmlDoc **doc, struct aws_error *err);
/* Same, with explicit credentials (NULL: unsigned, for web identity). */
int aws_query_with(struct aws *aws, struct ccm_call *call,
                   enum aws_service svc, const char *action,
                   const struct aws_params *params,
                   const struct aws_creds *creds, xmlDoc **doc,
                   struct aws_error *err);

/* ---- instances (aws_instances.c) ----------------------------------------- */
struct aws_kv {
  char *key;
  char *value;
};
struct aws_addr {
  uint32_t type; /* enum ccm_address_type */
  char *address;
};
struct aws_instance {
  char *id, *state, *type, *az, *private_dns, *public_dns, *public_ip,
      *private_ip, *vpc_id, *subnet_id;
  struct aws_addr *addrs; /* per NodeIPFamilies, upstream order */
  size_t n_addrs;
  char **groups; /* security-group IDs */
  size_t n_groups;
  struct aws_kv *tags;
  size_t n_tags;
};
struct aws_instances {
  struct aws_instance *items;
  size_t n;
};
/* Append the instances of a DescribeInstances response to out; *next (api
 * memory or NULL) gets nextToken. */
int aws_instances_parse(const struct ccm_host_api *api, const xmlDoc *doc,
                        const uint32_t *families, size_t n_families,
                        struct aws_instances *out, char **next);
void aws_instances_clear(const struct ccm_host_api *api,
                         struct aws_instances *l);
void aws_instance_free(const struct ccm_host_api *api, struct aws_instance *in);
const char *aws_instance_tag(const struct aws_instance *in, const char *key);
/* Carries kubernetes.io/cluster/<id> (any value) or KubernetesCluster=id. */
bool aws_instance_in_cluster(const struct aws_instance *in,
                             const char *cluster_id);

enum aws_pid_kind {
  AWS_PID_INSTANCE = 1, /* id holds i-... */
  AWS_PID_FARGATE = 2   /* id holds fargate-<ip> */
};
/* Parse aws:///<az>/<id>, aws:////<id>, bare i-..., aws:///<az>/fargate-..
 * into id (and az, may be ""). CCM_ERR_INVALID for anything else. */
int aws_provider_id_parse(const char *pid, int *kind, char *az, size_t azlen,
                          char *id, size_t idlen);
/* The instance ID of a node: from providerID, from an "i-" name, else by
 * private-dns-name among cluster instances. CCM_ERR_NOT_FOUND when none. */
int aws_node_instance(struct aws *aws, struct ccm_call *call,
                      const struct ccm_node *node, struct aws_instance *out);
/* DescribeInstances for ids (chunks of AWS_DESCRIBE_BATCH); unknown IDs
 * are simply missing from out. */
int aws_describe_instances(struct aws *aws, struct ccm_call *call,
                           const char *const *ids, size_t n_ids,
                           struct aws_instances *out);
/* DescribeInstances with filters already in params (paged). */
int aws_describe_instances_filtered(struct aws *aws, struct ccm_call *call,
                                    const struct aws_params *filters,
                                    struct aws_instances *out);
int aws_instance_move(struct aws_instance *dst, struct aws_instance *src);

int aws_instance_exists(void *instance, struct ccm_call *call,
                        const struct ccm_node *node, bool *exists);
int aws_instance_shutdown(void *instance, struct ccm_call *call,
                          const struct ccm_node *node, bool *shutdown);
int aws_instance_metadata(void *instance, struct ccm_call *call,
                          const struct ccm_node *node,
                          struct ccm_instance_meta *out);
int aws_instance_metadata_batch(void *instance, struct ccm_call *call,
                                const struct ccm_node *const *nodes,
                                size_t n_nodes,
                                struct ccm_instance_meta *const *out,
                                int *status);

/* Instances of nodes (providerID, "i-" name, else private DNS name among
 * cluster members); nodes without an instance are simply missing. */
int aws_nodes_instances(struct aws *aws, struct ccm_call *call,
                        const struct ccm_node *const *nodes, size_t n_nodes,
                        struct aws_instances *out);

/* ---- tags and security groups (aws_sg.c) --------------------------------- */
/* EC2 <tagSet><item><key/><value/> (member_style false) or ELB
 * <Tags><member><Key/><Value/> (true) under node; appended to *tags. */
int aws_tags_parse(const struct ccm_host_api *api, const xmlNode *set,
                   bool member_style, struct aws_kv **tags, size_t *n);
void aws_tags_free(const struct ccm_host_api *api, struct aws_kv *tags,
                   size_t n);
const char *aws_tags_get(const struct aws_kv *tags, size_t n, const char *key);
/* kubernetes.io/cluster/<cluster> = owned (what we created). */
bool aws_tags_owned(const struct aws_kv *tags, size_t n, const char *cluster);
/* kubernetes.io/cluster/<cluster> with any value (owned or shared). */
bool aws_tags_in_cluster(const struct aws_kv *tags, size_t n,
                         const char *cluster);

/* One ingress permission: protocol ("tcp", "icmp", "-1"), ports, and one
 * source: a CIDR or a security group. desc is the rule's description (""
 * = none); as in EC2 it is not part of the rule's identity. */
#define AWS_SG_DESC_MAX 256 /* EC2 allows 255 characters */
struct aws_sg_rule {
  char proto[8];
  int from, to;
  char source[64];
  bool source_is_group;
  char desc[AWS_SG_DESC_MAX];
};
struct aws_sg {
  char *id, *name, *vpc;
  struct aws_kv *tags;
  size_t n_tags;
  struct aws_sg_rule *rules; /* flattened: one source per rule */
  size_t n_rules;
};
struct aws_sgs {
  struct aws_sg *items;
  size_t n;
};
/* DescribeSecurityGroups with params (GroupId.N or Filter.N). */
int aws_sg_describe(struct aws *aws, struct ccm_call *call,
                    const struct aws_params *params, struct aws_sgs *out);
void aws_sgs_clear(const struct ccm_host_api *api, struct aws_sgs *l);
/* Same protocol, ports and source (the description does not count). */
bool aws_sg_has_rule(const struct aws_sg *sg, const struct aws_sg_rule *r);
/* The node groups load balancers open: of each instance, its groups that
 * carry kubernetes.io/cluster/<cluster> (owned or shared). Groups without
 * the tag are never chosen. */
bool aws_sg_for_nodes(const struct aws_sg *g,
                      const struct aws_instances *insts, const char *cluster);
/* DescribeSecurityGroups GroupId.N of the instances' groups; out gets the
 * ones aws_sg_for_nodes chooses (nothing and no call when none). */
int aws_sg_node_groups(struct aws *aws, struct ccm_call *call,
                       const struct aws_instances *insts,
                       const char *cluster, struct aws_sgs *out);
/* Authorize/Revoke one rule; an existing (absent) rule is CCM_OK. */
int aws_sg_authorize(struct aws *aws, struct ccm_call *call,
                     const char *group_id, const struct aws_sg_rule *r);
int aws_sg_revoke(struct aws *aws, struct ccm_call *call,
                  const char *group_id, const struct aws_sg_rule *r);
/* The security group named name in vpc, created with the cluster and
 * service tags when absent. CCM_ERR_INVALID when it exists without this
 * cluster's ownership tag. *id in api memory. */
int aws_sg_ensure(struct aws *aws, struct ccm_call *call, const char *name,
                  const char *description, const char *vpc,
                  const char *cluster, const char *service, char **id);
/* DeleteSecurityGroup, waiting out DependencyViolation (5 s steps) while
 * the call has time; then CCM_ERR_RETRY. Absent is CCM_OK. */
int aws_sg_delete(struct aws *aws, struct ccm_call *call, const char *id);

/* ---- Classic ELB (aws_elb.c) --------------------------------------------- */
int aws_lb_get(void *instance, struct ccm_call *call,
               const struct ccm_service *svc, struct ccm_lb_status *out);
int aws_lb_ensure(void *instance, struct ccm_call *call,
                  const struct ccm_service *svc,
                  const struct ccm_node_list *nodes,
                  struct ccm_lb_status *out);
int aws_lb_update_hosts(void *instance, struct ccm_call *call,
                        const struct ccm_service *svc,
                        const struct ccm_node_list *nodes);
int aws_lb_delete(void *instance, struct ccm_call *call,
                  const struct ccm_service *svc);

/* ---- NLB (ELBv2 2015-12-01, aws_nlb.c) ---------------------------------- */
/* aws_lb_* in aws_elb.c hand a Service whose option type is "nlb" to these.
 * They change only load balancers and target groups that carry
 * kubernetes.io/cluster/<id>=owned. */
bool aws_lb_is_nlb(const struct ccm_service *svc);
int aws_nlb_get(struct aws *aws, struct ccm_call *call,
                const struct ccm_service *svc, struct ccm_lb_status *out);
int aws_nlb_ensure(struct aws *aws, struct ccm_call *call,
                   const struct ccm_service *svc,
                   const struct ccm_node_list *nodes,
                   struct ccm_lb_status *out);
int aws_nlb_update_hosts(struct aws *aws, struct ccm_call *call,
                         const struct ccm_service *svc,
                         const struct ccm_node_list *nodes);
int aws_nlb_delete(struct aws *aws, struct ccm_call *call,
                   const struct ccm_service *svc);
/* The Classic ELB subnet choice (aws_elb.c): the subnets option, else one
 * subnet per AZ as findELBSubnets. *ids (api memory, each string and the
 * array) in the order chosen. */
int aws_lb_subnets(struct aws *aws, struct ccm_call *call,
                   const struct ccm_service *svc, const char *vpc,
                   const char *cluster, bool internal, char ***ids,
                   size_t *n);

/* ---- routes (aws_routes.c) ----------------------------------------------- */
int aws_route_list(void *instance, struct ccm_call *call,
                   const char *cluster_name, struct ccm_route_list *out);
int aws_route_create(void *instance, struct ccm_call *call,
                     const char *cluster_name, const char *name_hint,
                     const struct ccm_route *route);
int aws_route_delete(void *instance, struct ccm_call *call,
                     const char *cluster_name, const struct ccm_route *route);

/* ---- options (aws_options.c) --------------------------------------------- */
extern const struct ccm_option_decl *const aws_options[];
extern const struct ccm_name_rules aws_name_rules;
/* The option named name in svc->options, or NULL. */
const struct ccm_option_value *aws_option(const struct ccm_service *svc,
                                          const char *name);
/* Typed option values: the default (NULL for strings and lists) when the
 * option is absent or of another type; an empty list reads as absent. */
const char *aws_opt_str(const struct ccm_service *svc, const char *name);
bool aws_opt_bool(const struct ccm_service *svc, const char *name, bool dflt);
int64_t aws_opt_int(const struct ccm_service *svc, const char *name,
                    int64_t dflt);
const struct ccm_option_value *aws_opt_list(const struct ccm_service *svc,
                                            const char *name);

/* ---- the instance -------------------------------------------------------- */
struct aws {
  const struct ccm_host_api *api;
  struct ccm_host *host;
  struct aws_config cfg; /* immutable after init */
  char *cluster_id;      /* cfg's or discovered; NULL = none */
  pthread_mutex_t mu;    /* guards everything below */
  struct aws_creds base;  /* from the chain; access_key NULL = none yet */
  struct aws_creds role;  /* from AssumeRole when cfg.role_arn is set */
  char *imds_token;
  int64_t imds_token_expires; /* monotonic-ish unix seconds */
  char *route_table; /* discovered route table ID */
};

/* Unix time in seconds (CLOCK_REALTIME). */
int64_t aws_now(void);
/* The cluster ID to use for tags: configured/discovered, else fallback. */
const char *aws_cluster(const struct aws *aws, const char *fallback);

#endif
