/*
 * node_logic.h: the pure decisions of the cloud node and node lifecycle
 * controllers (ccm-semantics.md sections 3, 3.1 and 4), factored out so
 * unit tests can drive them. No I/O, no locks, no provider or API calls;
 * the cJSON helpers only edit the object they are given.
 */
#ifndef CCM_NODE_LOGIC_H
#define CCM_NODE_LOGIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ccm_provider.h"
#include "kube/objects.h"

#define CCM_NODE_TAINT_UNINITIALIZED "node.cloudprovider.kubernetes.io/uninitialized"
#define CCM_NODE_TAINT_SHUTDOWN "node.cloudprovider.kubernetes.io/shutdown"
#define CCM_NODE_IP_ANNOTATION CCM_OBJ_NODE_IP_ANNOTATION

#define CCM_NODE_LABEL_TYPE "node.kubernetes.io/instance-type"
#define CCM_NODE_LABEL_TYPE_BETA "beta.kubernetes.io/instance-type"
#define CCM_NODE_LABEL_ZONE "topology.kubernetes.io/zone"
#define CCM_NODE_LABEL_ZONE_BETA "failure-domain.beta.kubernetes.io/zone"
#define CCM_NODE_LABEL_REGION "topology.kubernetes.io/region"
#define CCM_NODE_LABEL_REGION_BETA "failure-domain.beta.kubernetes.io/region"

/* One node address; strings are borrowed. type: enum ccm_address_type. */
struct node_addr {
  uint32_t type;
  const char *address;
};

/* "InternalIP" -> CCM_ADDR_INTERNAL_IP ...; 0 when unknown. */
uint32_t node_addr_type_parse(const char *s);
/* The Kubernetes spelling of a ccm_address_type; NULL when unknown. */
const char *node_addr_type_name(uint32_t type);

/* Parse an IP as Go's netutils.ParseIPSloppy does (IPv4 parts may carry
 * leading zeros, read as decimal) into 16 bytes (IPv4 as ::ffff:a.b.c.d).
 * Returns false when s is not an IP. */
bool node_ip_parse(const char *s, unsigned char out[16]);
/* True for an IPv6 address that is not IPv4-mapped. */
bool node_ip_is6(const unsigned char ip[16]);

/* The provided-node-ip annotation: one IP or a dual-stack pair "v4,v6"
 * (either order). Returns the number of IPs (1 or 2), or -1 with err. */
int node_ip_annotation_parse(const char *s, unsigned char ips[2][16],
                             char *err, size_t errlen);

/* Upstream GetNodeAddressesFromNodeIP: the cloud addresses equal to each
 * annotated IP first (types covered by a match keep only the matches),
 * then every address of an uncovered type, in cloud order. out holds
 * n_cloud entries. Returns the count, or -1 with err. */
int node_addresses_from_node_ip(const char *annotation,
                                const struct node_addr *cloud, size_t n_cloud,
                                struct node_addr *out, char *err,
                                size_t errlen);

/* Section 3.1 rules 1-3. out holds n_cloud + n_cur entries. Returns 0
 * with *n_out (rule 1: 0 cloud addresses -> 0 with *n_out = 0, "no
 * change"), or -1 with err (unparseable annotation or unmatched IP: the
 * update is skipped). annotation may be NULL. */
int node_addresses_merge(const struct node_addr *cloud, size_t n_cloud,
                         const struct node_addr *cur, size_t n_cur,
                         const char *annotation, struct node_addr *out,
                         size_t *n_out, char *err, size_t errlen);

/* Rule 4: different length, or an address whose type maps to another
 * value in the old list (old list read as a type -> address map, last
 * entry of a type wins). */
bool node_addresses_changed(const struct node_addr *old, size_t n_old,
                            const struct node_addr *cur, size_t n_cur);

/* ---- labels ---------------------------------------------------------- */

/* One label to set. if_absent: only when the node has no such label (a
 * differing existing value is kept and logged by the caller). */
struct node_label_set {
  const char *key;
  const char *value;
  bool if_absent;
};

/* The upstream filter of provider extra labels: true (drop) when the key
 * has "kubernetes.io/" or "k8s.io/" at its start or right after a dot. */
bool node_label_is_reserved(const char *key);

/* Labels from metadata (section 3 step 5): both instance-type labels,
 * both zone labels and both region labels for each non-empty value, then
 * the extra labels that pass the filter with if_absent. extra is n_extra
 * pairs (keys[i], values[i]). out holds 6 + n_extra. Returns the count
 * and, in *n_dropped, how many extra labels the filter dropped. */
size_t node_labels_from_meta(const char *instance_type, const char *zone,
                             const char *region, const char *const *keys,
                             const char *const *values, size_t n_extra,
                             struct node_label_set *out, size_t *n_dropped);

/* Whether plan entry l is written given the node's current value for
 * l->key (NULL when absent). *conflict: an if_absent label whose
 * existing value differs (kept; upstream logs a warning). */
bool node_label_should_set(const struct node_label_set *l,
                           const char *existing, bool *conflict);

/* Section 3 step 2 for initialised nodes: for each (beta -> GA) pair whose
 * beta label exists and whose GA label is missing or differs, set the GA
 * label to the beta value. out holds 3. Returns the count. */
size_t node_labels_reconcile(const struct obj_meta *node,
                             struct node_label_set *out);

/* Section 3 step 3 (InstancesV2): the providerID to use and, in *set_spec,
 * whether spec.providerID must be written (only when it is empty and the
 * metadata has one). NULL with err when neither has one. */
const char *node_provider_id_pick(const char *spec, const char *meta,
                                  const char *node_name, bool *set_spec,
                                  char *err, size_t errlen);

/* ---- the Node object (cJSON) ----------------------------------------- */

/* Remove every taint with key from spec.taints, keeping the others in
 * order (an emptied list is removed). Returns how many were removed. */
int node_json_taint_remove(cJSON *node, const char *key);
/* Add {key, effect} (no value) unless a taint with key and effect is
 * there. Returns 1 when added, 0 when present, -1 on out of memory. */
int node_json_taint_add(cJSON *node, const char *key, const char *effect);
/* Set metadata.labels[key] = value. 0 or -1 (out of memory). */
int node_json_label_set(cJSON *node, const char *key, const char *value);
/* metadata.labels[key] or NULL. */
const char *node_json_label(const cJSON *node, const char *key);
/* spec.providerID or NULL. */
const char *node_json_provider_id(const cJSON *node);
/* Set spec.providerID. 0 or -1. */
int node_json_provider_id_set(cJSON *node, const char *id);
/* True when spec.taints holds a taint with key. */
bool node_json_has_taint(const cJSON *node, const char *key);

/* {"status":{"addresses":[...]}} for a status merge patch (the list is
 * replaced as a whole). NULL on out of memory or an unknown type. */
cJSON *node_json_addresses_patch(const struct node_addr *a, size_t n);

/* ---- lifecycle (section 4) ------------------------------------------ */

enum node_lc_action {
  NODE_LC_NOTHING = 0,
  NODE_LC_SKIP,            /* provider error or timeout: change nothing */
  NODE_LC_PROBE_SHUTDOWN,  /* exists: ask instance_shutdown next */
  NODE_LC_DELETE,          /* the provider answered OK, exists == false */
  NODE_LC_TAINT_SHUTDOWN,  /* add the shutdown taint */
  NODE_LC_UNTAINT_SHUTDOWN /* remove the shutdown taint */
};

/* Only the Ready condition is examined (absent = Unknown): anything but
 * True needs the existence probe. When Ready is True, node_lc_when_ready
 * says whether to remove the shutdown taint. */
bool node_lc_needs_probe(uint8_t ready);
enum node_lc_action node_lc_when_ready(bool has_shutdown_taint);
/* After instance_exists: DELETE only for rc == CCM_OK, exists false and
 * the answer in time; errors and late answers SKIP; otherwise
 * PROBE_SHUTDOWN. */
enum node_lc_action node_lc_after_exists(int rc, bool exists, bool late);
/* After instance_shutdown: TAINT when shut down (and not tainted yet),
 * UNTAINT when not shut down and tainted, NOTHING otherwise; errors and
 * late answers change nothing. */
enum node_lc_action node_lc_after_shutdown(int rc, bool shutdown, bool late,
                                           bool has_shutdown_taint);

#endif
