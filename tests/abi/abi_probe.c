/*
 * abi_probe.c: a shared object whose exported functions mention every type
 * of abi/ccm_provider.h, so that abidw can dump the whole ABI for abidiff.
 * It contains no logic and is never loaded by the host.
 */
#include "ccm_provider.h"

CCM_EXPORT void ccm_abi_probe_entry(struct ccm_entry *e);
CCM_EXPORT void ccm_abi_probe_provider(const struct ccm_provider *p);
CCM_EXPORT void ccm_abi_probe_host_api(const struct ccm_host_api *a);
CCM_EXPORT void ccm_abi_probe_inputs(const struct ccm_service *s,
                                     const struct ccm_node_list *n,
                                     const struct ccm_route *r,
                                     const struct ccm_http_request *h);
CCM_EXPORT void ccm_abi_probe_enums(enum ccm_status s, enum ccm_option_type o,
                                    enum ccm_protocol p, enum ccm_ip_family f,
                                    enum ccm_address_type a,
                                    enum ccm_log_level l, enum ccm_meta_field m,
                                    enum ccm_thread_safety t);

void ccm_abi_probe_entry(struct ccm_entry *e) { (void)e; }
void ccm_abi_probe_provider(const struct ccm_provider *p) { (void)p; }
void ccm_abi_probe_host_api(const struct ccm_host_api *a) { (void)a; }
void ccm_abi_probe_inputs(const struct ccm_service *s,
                          const struct ccm_node_list *n,
                          const struct ccm_route *r,
                          const struct ccm_http_request *h)
{
  (void)s;
  (void)n;
  (void)r;
  (void)h;
}
void ccm_abi_probe_enums(enum ccm_status s, enum ccm_option_type o,
                         enum ccm_protocol p, enum ccm_ip_family f,
                         enum ccm_address_type a, enum ccm_log_level l,
                         enum ccm_meta_field m, enum ccm_thread_safety t)
{
  (void)s;
  (void)o;
  (void)p;
  (void)f;
  (void)a;
  (void)l;
  (void)m;
  (void)t;
}
