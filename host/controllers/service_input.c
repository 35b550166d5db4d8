/*
 * service_input.c: builds the provider's struct ccm_service from a cached
 * Service (ports, ranges, families, traffic policy, affinity, names). It
 * must not call providers or Kubernetes; options and tags come from the
 * policies (service_policy.c) and are only freed here.
 */
#include <string.h>

#include "controllers/service_int.h"
#include "util/mem.h"

static uint32_t svc_proto(const char *p)
{
  if (p != NULL && strcmp(p, "UDP") == 0)
    return CCM_PROTO_UDP;
  if (p != NULL && strcmp(p, "SCTP") == 0)
    return CCM_PROTO_SCTP;
  return CCM_PROTO_TCP;
}

static uint16_t svc_port16(int32_t v)
{
  return v > 0 && v <= 65535 ? (uint16_t)v : 0;
}

int svc_input_build(const struct obj_service *s, const char *cluster,
                    const char *lb_name, const char *lb_class,
                    struct svc_input *in)
{
  uint16_t i;
  size_t nf = 0;

  memset(in, 0, sizeof(*in));
  in->ports = mem_calloc(s->n_ports ? s->n_ports : 1, sizeof(*in->ports));
  in->port_ptrs = mem_calloc(s->n_ports ? s->n_ports : 1,
                             sizeof(*in->port_ptrs));
  in->families = mem_calloc(s->n_ip_families ? s->n_ip_families : 1,
                            sizeof(*in->families));
  if (in->ports == NULL || in->port_ptrs == NULL || in->families == NULL)
    goto fail;
  for (i = 0; i < s->n_ports; i++) {
    in->ports[i].struct_size = sizeof(in->ports[i]);
    in->ports[i].name = s->ports[i].name ? s->ports[i].name : "";
    in->ports[i].protocol = svc_proto(s->ports[i].protocol);
    in->ports[i].port = svc_port16(s->ports[i].port);
    in->ports[i].node_port = svc_port16(s->ports[i].node_port);
    in->port_ptrs[i] = &in->ports[i];
  }
  for (i = 0; i < s->n_ip_families; i++) {
    const char *f = s->ip_families[i];

    if (f != NULL && strcmp(f, "IPv4") == 0)
      in->families[nf++] = CCM_IPV4;
    else if (f != NULL && strcmp(f, "IPv6") == 0)
      in->families[nf++] = CCM_IPV6;
  }
  in->svc.struct_size = sizeof(in->svc);
  in->svc.cluster_name = cluster;
  in->svc.namespace_ = s->meta.ns;
  in->svc.name = s->meta.name;
  in->svc.uid = s->meta.uid;
  in->svc.lb_name = lb_name;
  in->svc.lb_class = lb_class;
  in->svc.load_balancer_ip = s->lb_ip && *s->lb_ip ? s->lb_ip : NULL;
  in->svc.ports = in->port_ptrs;
  in->svc.n_ports = s->n_ports;
  in->svc.source_ranges = s->source_ranges;
  in->svc.n_source_ranges = s->n_source_ranges;
  in->svc.ip_families = in->families;
  in->svc.n_ip_families = nf;
  in->svc.external_traffic_local = s->external_traffic_policy != NULL &&
      strcmp(s->external_traffic_policy, "Local") == 0;
  in->svc.health_check_node_port = svc_port16(s->health_check_node_port);
  in->svc.session_affinity_client_ip = s->session_affinity != NULL &&
      strcmp(s->session_affinity, "ClientIP") == 0;
  return 0;
fail:
  svc_input_free(in);
  return -1;
}

void svc_input_free(struct svc_input *in)
{
  mem_free(in->ports);
  mem_free(in->port_ptrs);
  mem_free(in->families);
  policy_options_free(in->opts);
  policy_kvs_free(in->tags);
  memset(in, 0, sizeof(*in));
}
