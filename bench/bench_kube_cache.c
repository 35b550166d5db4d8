/*
 * bench_kube_cache.c: memory of the compact caches. Builds realistic Node
 * and Service JSON (labels, annotations, managedFields, addresses,
 * conditions, images, taints, ports, ingress), decodes 5,000 Nodes and
 * 10,000 Services into stores and prints bytes per object and RSS, and the
 * time per object to parse (with malloc, as lists do, and into an arena,
 * as watch events do), decode and free.
 * Measures with glibc mallinfo2 (heap in use) and /proc/self/status.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "kube/objects.h"
#include "kube/store.h"
#include "util/json_arena.h"
#include "util/mem.h"

#define N_NODES 5000
#define N_SERVICES 10000
#define JSON_CAP (256 * 1024)

static const char *const ZONES[] = {"us-east-1a", "us-east-1b", "us-east-1c"};
static const char *const TYPES[] = {"m5.xlarge", "c6i.2xlarge", "r6g.large"};

struct buf {
  char *p;
  size_t len;
  size_t cap;
};

static void put(struct buf *b, const char *s)
{
  size_t n = strlen(s);

  if (b->len + n + 1 > b->cap)
    return; /* the generator stays far below JSON_CAP */
  memcpy(b->p + b->len, s, n + 1);
  b->len += n;
}

#define PUTF(b, ...)                                                          \
  do {                                                                        \
    char tmp_[1024];                                                          \
    snprintf(tmp_, sizeof(tmp_), __VA_ARGS__);                                \
    put((b), tmp_);                                                           \
  } while (0)

/* A Node as a 1.30 kubelet on a cloud VM reports it. */
static void gen_node(struct buf *b, int i)
{
  const char *zone = ZONES[i % 3];
  const char *type = TYPES[i % 3];
  int a = i / 250;
  int c = i % 250;
  int k;

  b->len = 0;
  PUTF(b,
       "{\"kind\":\"Node\",\"apiVersion\":\"v1\",\"metadata\":{"
       "\"name\":\"ip-10-%d-%d-%d.ec2.internal\","
       "\"uid\":\"%08x-1c2d-4e5f-8a9b-%012x\",\"resourceVersion\":\"%d\","
       "\"creationTimestamp\":\"2024-05-01T10:00:00Z\",",
       a, c, i % 7, (unsigned)i * 2654435761u, (unsigned)i, 100000 + i);
  PUTF(b,
       "\"labels\":{\"beta.kubernetes.io/arch\":\"amd64\","
       "\"beta.kubernetes.io/instance-type\":\"%s\","
       "\"beta.kubernetes.io/os\":\"linux\","
       "\"eks.amazonaws.com/capacityType\":\"ON_DEMAND\","
       "\"eks.amazonaws.com/nodegroup\":\"ng-%d\","
       "\"eks.amazonaws.com/nodegroup-image\":\"ami-0abcdef%06d\","
       "\"failure-domain.beta.kubernetes.io/region\":\"us-east-1\","
       "\"failure-domain.beta.kubernetes.io/zone\":\"%s\","
       "\"k8s.io/cloud-provider-aws\":\"a1b2c3d4e5f60718293a4b5c6d7e8f90\","
       "\"kubernetes.io/arch\":\"amd64\","
       "\"kubernetes.io/hostname\":\"ip-10-%d-%d-%d.ec2.internal\","
       "\"kubernetes.io/os\":\"linux\","
       "\"node.kubernetes.io/instance-type\":\"%s\","
       "\"topology.ebs.csi.aws.com/zone\":\"%s\","
       "\"topology.kubernetes.io/region\":\"us-east-1\","
       "\"topology.kubernetes.io/zone\":\"%s\","
       "\"example.com/cost-center\":\"cc-%d\","
       "\"example.com/pool\":\"pool-%d\"},",
       type, i % 8, i % 4, zone, a, c, i % 7, type, zone, zone, i % 13,
       i % 8);
  PUTF(b,
       "\"annotations\":{\"alpha.kubernetes.io/provided-node-ip\":\"10.%d.%d.%d\","
       "\"csi.volume.kubernetes.io/nodeid\":\"{\\\"ebs.csi.aws.com\\\":"
       "\\\"i-0%015x\\\"}\",\"node.alpha.kubernetes.io/ttl\":\"0\","
       "\"volumes.kubernetes.io/controller-managed-attach-detach\":\"true\"},",
       a, c, i % 7, (unsigned)i * 7919u);
  put(b, "\"managedFields\":[");
  for (k = 0; k < 4; k++)
    PUTF(b,
         "%s{\"manager\":\"%s\",\"operation\":\"Update\",\"apiVersion\":\"v1\","
         "\"time\":\"2024-05-01T10:0%d:00Z\",\"fieldsType\":\"FieldsV1\","
         "\"fieldsV1\":{\"f:metadata\":{\"f:annotations\":{\".\":{},"
         "\"f:node.alpha.kubernetes.io/ttl\":{}},\"f:labels\":{\".\":{},"
         "\"f:beta.kubernetes.io/arch\":{},\"f:kubernetes.io/hostname\":{}}},"
         "\"f:status\":{\"f:conditions\":{\"k:{\\\"type\\\":\\\"Ready\\\"}\":"
         "{\"f:lastHeartbeatTime\":{},\"f:message\":{},\"f:reason\":{}}}}}}",
         k ? "," : "", k == 0 ? "kubelet" : k == 1 ? "kube-controller-manager"
                                  : k == 2 ? "aws-cloud-controller-manager"
                                           : "ebs-csi-node",
         k);
  PUTF(b,
       "]},\"spec\":{\"podCIDR\":\"100.%d.%d.0/24\",\"podCIDRs\":"
       "[\"100.%d.%d.0/24\"],\"providerID\":\"aws:///%s/i-0%015x\"",
       64 + a, c, 64 + a, c, zone, (unsigned)i * 7919u);
  if (i % 10 == 0)
    put(b, ",\"taints\":[{\"key\":\"dedicated\",\"value\":\"gpu\","
           "\"effect\":\"NoSchedule\"},{\"key\":\"node.kubernetes.io/"
           "unreachable\",\"effect\":\"NoExecute\","
           "\"timeAdded\":\"2024-05-01T10:00:00Z\"}]");
  put(b, "},\"status\":{\"capacity\":{\"cpu\":\"4\",\"ephemeral-storage\":"
         "\"83873772Ki\",\"hugepages-1Gi\":\"0\",\"hugepages-2Mi\":\"0\","
         "\"memory\":\"15896988Ki\",\"pods\":\"58\"},\"allocatable\":{\"cpu\":"
         "\"3920m\",\"ephemeral-storage\":\"76224326324\",\"memory\":"
         "\"14879132Ki\",\"pods\":\"58\"},\"conditions\":[");
  {
    static const char *const conds[][3] = {
        {"MemoryPressure", "False", "KubeletHasSufficientMemory"},
        {"DiskPressure", "False", "KubeletHasNoDiskPressure"},
        {"PIDPressure", "False", "KubeletHasSufficientPID"},
        {"Ready", "True", "KubeletReady"},
    };

    for (k = 0; k < 4; k++)
      PUTF(b,
           "%s{\"type\":\"%s\",\"status\":\"%s\",\"lastHeartbeatTime\":"
           "\"2024-05-02T11:22:33Z\",\"lastTransitionTime\":"
           "\"2024-05-01T10:01:00Z\",\"reason\":\"%s\",\"message\":\"kubelet "
           "has no problem with %s\"}",
           k ? "," : "", conds[k][0], conds[k][1], conds[k][2], conds[k][0]);
  }
  PUTF(b,
       "],\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.%d.%d.%d\"},"
       "{\"type\":\"ExternalIP\",\"address\":\"54.%d.%d.%d\"},"
       "{\"type\":\"InternalDNS\",\"address\":\"ip-10-%d-%d-%d.ec2.internal\"},"
       "{\"type\":\"Hostname\",\"address\":\"ip-10-%d-%d-%d.ec2.internal\"}],",
       a, c, i % 7, a, c, i % 7, a, c, i % 7, a, c, i % 7);
  put(b, "\"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":10250}},"
         "\"nodeInfo\":{\"machineID\":\"ec2d7b1c8f8e4a5b9c0d1e2f3a4b5c6d\","
         "\"systemUUID\":\"ec2d7b1c-8f8e-4a5b-9c0d-1e2f3a4b5c6d\",\"bootID\":"
         "\"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\",\"kernelVersion\":"
         "\"5.10.217-205.860.amzn2.x86_64\",\"osImage\":\"Amazon Linux 2\","
         "\"containerRuntimeVersion\":\"containerd://1.7.11\",\"kubeletVersion\":"
         "\"v1.30.0-eks-036c24b\",\"kubeProxyVersion\":\"v1.30.0-eks-036c24b\","
         "\"operatingSystem\":\"linux\",\"architecture\":\"amd64\"},\"images\":[");
  /* Kubelets report up to 50 images; each has two names and a size. */
  for (k = 0; k < 30; k++)
    PUTF(b,
         "%s{\"names\":[\"602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/"
         "image-%d@sha256:%08x%08x%08x%08x%08x%08x%08x%08x\","
         "\"602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/image-%d:v1.%d.0\"],"
         "\"sizeBytes\":%d}",
         k ? "," : "", k, (unsigned)k, (unsigned)i, 1u, 2u, 3u, 4u, 5u, 6u, k,
         k, 10000000 + k * 12345);
  put(b, "]}}");
}

/* A LoadBalancer Service with the annotations an AWS user sets. */
static void gen_service(struct buf *b, int i)
{
  int k;
  int ports = 1 + i % 3;

  b->len = 0;
  PUTF(b,
       "{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{"
       "\"name\":\"svc-%05d\",\"namespace\":\"team-%d\","
       "\"uid\":\"%08x-aaaa-4bbb-8ccc-%012x\",\"resourceVersion\":\"%d\","
       "\"creationTimestamp\":\"2024-05-01T10:00:00Z\","
       "\"labels\":{\"app.kubernetes.io/name\":\"svc-%05d\","
       "\"app.kubernetes.io/instance\":\"prod\","
       "\"app.kubernetes.io/managed-by\":\"Helm\"},",
       i, i % 40, (unsigned)i * 40503u, (unsigned)i, 200000 + i, i);
  PUTF(b,
       "\"annotations\":{\"meta.helm.sh/release-name\":\"svc-%05d\","
       "\"meta.helm.sh/release-namespace\":\"team-%d\","
       "\"service.beta.kubernetes.io/aws-load-balancer-type\":\"nlb\","
       "\"service.beta.kubernetes.io/aws-load-balancer-scheme\":"
       "\"internet-facing\","
       "\"service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags\":"
       "\"team=team-%d,env=prod\","
       "\"example.com/owner\":\"team-%d@example.com\","
       "\"kubectl.kubernetes.io/last-applied-configuration\":\"{\\\"apiVersion"
       "\\\":\\\"v1\\\",\\\"kind\\\":\\\"Service\\\",\\\"metadata\\\":{\\\"name"
       "\\\":\\\"svc-%05d\\\"},\\\"spec\\\":{\\\"type\\\":\\\"LoadBalancer\\\","
       "\\\"ports\\\":[{\\\"port\\\":80,\\\"targetPort\\\":8080}]}}\"},",
       i, i % 40, i % 40, i % 40, i);
  put(b, "\"finalizers\":[\"service.kubernetes.io/load-balancer-cleanup\"],"
         "\"managedFields\":[{\"manager\":\"helm\",\"operation\":\"Update\","
         "\"apiVersion\":\"v1\",\"time\":\"2024-05-01T10:00:00Z\","
         "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:spec\":{\"f:ports\":{},"
         "\"f:selector\":{},\"f:type\":{}}}}]},");
  PUTF(b,
       "\"spec\":{\"type\":\"LoadBalancer\",\"clusterIP\":\"172.20.%d.%d\","
       "\"clusterIPs\":[\"172.20.%d.%d\"],\"ipFamilies\":[\"IPv4\"],"
       "\"ipFamilyPolicy\":\"SingleStack\",\"sessionAffinity\":\"None\","
       "\"externalTrafficPolicy\":\"%s\",\"internalTrafficPolicy\":\"Cluster\","
       "\"allocateLoadBalancerNodePorts\":true,",
       i / 250, i % 250, i / 250, i % 250, i % 4 ? "Cluster" : "Local");
  if (i % 4 == 0)
    PUTF(b, "\"healthCheckNodePort\":%d,", 30000 + i % 2767);
  if (i % 5 == 0)
    put(b, "\"loadBalancerSourceRanges\":[\"10.0.0.0/8\",\"192.168.0.0/16\"],");
  PUTF(b, "\"selector\":{\"app.kubernetes.io/name\":\"svc-%05d\"},\"ports\":[",
       i);
  for (k = 0; k < ports; k++)
    PUTF(b,
         "%s{\"name\":\"port-%d\",\"protocol\":\"TCP\",\"port\":%d,"
         "\"targetPort\":%d,\"nodePort\":%d}",
         k ? "," : "", k, 80 + k, 8080 + k, 30000 + (i * 3 + k) % 2767);
  PUTF(b,
       "]},\"status\":{\"loadBalancer\":{\"ingress\":[{\"hostname\":"
       "\"a%08x%08x-%d.elb.us-east-1.amazonaws.com\"}]}}}",
       (unsigned)i * 2654435761u, (unsigned)i, i);
}

static size_t heap_in_use(void)
{
  struct mallinfo2 mi;

  malloc_trim(0);
  mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

static long rss_kib(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;

  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, "VmRSS:", 6) == 0)
      kib = strtol(line + 6, NULL, 10);
  fclose(f);
  return kib;
}

static double now_s(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct kind_result {
  size_t json_bytes;
  size_t payload;   /* sum of obj->size */
  size_t heap;      /* heap growth, objects + index */
  size_t key_bytes; /* label and annotation keys copied (not well-known) */
  double parse_s;   /* cJSON_ParseWithLength, malloc per node (lists) */
  double arena_s;   /* json_arena_parse + reset (watch events) */
  double decode_s;  /* obj_decode, tree to compact object */
  double free_s;    /* cJSON_Delete */
};

static int load(enum obj_kind kind, int n, struct store *s, struct buf *b,
                struct json_arena *arena, struct kind_result *r)
{
  size_t before = heap_in_use();
  int i;

  memset(r, 0, sizeof(*r));
  for (i = 0; i < n; i++) {
    struct obj_meta *m = NULL;
    struct obj_meta *old;
    char err[256];
    int perr = 0;
    uint32_t k;

    if (kind == OBJ_KIND_NODE)
      gen_node(b, i);
    else
      gen_service(b, i);
    double t0, t1, t2;
    cJSON *tree;
    int rc;

    r->json_bytes += b->len;
    t0 = now_s();
    if (json_arena_parse(arena, b->p, b->len) == NULL)
      return -1;
    json_arena_reset(arena);
    r->arena_s += now_s() - t0;
    t0 = now_s();
    tree = cJSON_ParseWithLength(b->p, b->len);
    t1 = now_s();
    rc = obj_decode(kind, tree, &m, err, sizeof(err));
    t2 = now_s();
    cJSON_Delete(tree);
    r->parse_s += t1 - t0;
    r->decode_s += t2 - t1;
    r->free_s += now_s() - t2;
    if (rc != OBJ_OK) {
      fprintf(stderr, "decode failed at %d: %s\n", i, err);
      return -1;
    }
    r->payload += m->size;
    for (k = 0; k < m->n_labels; k++)
      if (obj_known_key(m->labels[k].key) != m->labels[k].key)
        r->key_bytes += strlen(m->labels[k].key) + 1;
    for (k = 0; k < m->n_annotations; k++)
      if (obj_known_key(m->annotations[k].key) != m->annotations[k].key)
        r->key_bytes += strlen(m->annotations[k].key) + 1;
    old = store_put(s, m, &perr);
    if (perr != 0)
      return -1;
    obj_unref(old);
  }
  json_arena_free(arena); /* its kept chunk is no part of the cache */
  r->heap = heap_in_use() - before;
  return 0;
}

static void print_kind(const char *name, int n, const struct kind_result *r)
{
  printf("| %s | %7d | %10zu | %22zu | %31zu | %12.1f | %13.1f | %13.1f "
         "| %16.1f |\n",
         name, n, r->json_bytes / (size_t)n, r->payload / (size_t)n,
         r->heap / (size_t)n, r->parse_s * 1e6 / n, r->decode_s * 1e6 / n,
         r->free_s * 1e6 / n, r->arena_s * 1e6 / n);
}

int main(void)
{
  struct buf b = {.cap = JSON_CAP};
  struct store *nodes = store_new();
  struct store *svcs = store_new();
  struct kind_result rn;
  struct kind_result rs;
  struct json_arena arena = {0};
  long rss0;
  long rss1;
  size_t heap0;

  b.p = mem_alloc(b.cap);
  if (b.p == NULL || nodes == NULL || svcs == NULL)
    return 1;
  rss0 = rss_kib();
  heap0 = heap_in_use();
  json_arena_setup();
  if (load(OBJ_KIND_NODE, N_NODES, nodes, &b, &arena, &rn) != 0 ||
      load(OBJ_KIND_SERVICE, N_SERVICES, svcs, &b, &arena, &rs) != 0)
    return 1;
  mem_free(b.p);
  b.p = NULL;
  rss1 = rss_kib();

  printf("bench_kube_cache: compact caches of decoded API objects\n\n");
  printf("| kind    | objects | JSON B/obj | cached B/obj (payload) | heap B/obj "
         "(with malloc + index) | parse us/obj | decode us/obj | "
         "free tree us/obj | arena parse+reset us/obj |\n");
  printf("|---------|--------:|-----------:|-----------------------:|"
         "-------------------------------:|-------------:|--------------:|"
         "-----------------:|-------------------------:|\n");
  print_kind("Node   ", N_NODES, &rn);
  print_kind("Service", N_SERVICES, &rs);
  printf("\n| what | value |\n|---|---:|\n");
  printf("| heap for both caches | %.2f MiB |\n",
         (double)(heap_in_use() - heap0) / (1024.0 * 1024.0));
  printf("| RSS before / after (process) | %.1f / %.1f MiB |\n",
         (double)rss0 / 1024.0, (double)rss1 / 1024.0);
  printf("| target RSS | <= 64 MiB (%s) |\n",
         rss1 >= 0 && rss1 <= 64 * 1024 ? "met" : "NOT met");
  printf("| client-go reference | ~37 KiB per Node, %.0f MiB for %d Nodes |\n",
         37.0 * N_NODES / 1024.0, N_NODES);
  printf("| keys still copied (not well-known) | %zu B/Node, %zu "
         "B/Service |\n",
         rn.key_bytes / N_NODES, rs.key_bytes / N_SERVICES);
  store_free(nodes);
  store_free(svcs);
  return 0;
}
