/*
 * test_lab.c: the lab provider module (build/modules/ccm-lab.so) loaded
 * through the real loader and driven through the real host API, with a
 * libconfig group built here and a temp dir for the state file. It checks
 * outcomes (addresses, files, messages), never timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ccm_provider.h"
#include "modules/host_api.h"
#include "config/config.h"
#include "modules/http.h"
#include "modules/loader.h"
#include "modules/registry.h"
#include "util/log.h"

#define LAB_SO CCM_MODULE_DIR "/ccm-lab.so"

/* One loaded module instance with its config and state file. */
struct lab_fix {
  char dir[128];     /* temp dir holding the state file only */
  char priv[128];    /* the loader's private copies */
  char state[192];
  config_t cfg;
  bool cfg_ready;
  struct module *mod;
  struct ccm_host *host;
  void *inst;
  const struct ccm_provider *p;
  const struct ccm_host_api *api;
  struct ccm_call call;
};

static const char *const BASE_CFG =
    "lab = {\n"
    "  state_file = \"%s\";\n"
    "  ipv4_pools = [ \"10.0.0.0/29\", \"pub=10.1.0.10-10.1.0.11\" ];\n"
    "  ipv6_pools = [ \"fd00:10::/64\" ];\n"
    "  region = \"lab-region\";\n"
    "  instance_type = \"lab-default\";\n"
    "  zones = ( { match = \"*-control-plane*\"; zone = \"zone-a\";\n"
    "              region = \"cp-region\"; instance_type = \"cp\"; },\n"
    "            { match = \"worker*\"; zone = \"zone-b\"; } );\n"
    "  nodes = [ \"kind-control-plane\", \"worker1\", \"worker2\" ];\n"
    "  shutdown_nodes = [ \"worker3\" ];\n"
    "  addresses = ( { node = \"worker1\"; internal_ip = \"172.18.0.3\";\n"
    "                  external_ip = \"203.0.113.7\"; hostname = \"w1\"; } );\n"
    "};\n";

/* ---- fixture helpers ----------------------------------------------------- */

static void fix_dirs(struct lab_fix *f) {
  memset(f, 0, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/ccm-test-lab-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->priv, sizeof(f->priv), "/tmp/ccm-test-labp-XXXXXX");
  assert_non_null(mkdtemp(f->priv));
  snprintf(f->state, sizeof(f->state), "%s/state.json", f->dir);
  f->api = host_api();
}

/* Parse the config template, load the module and run init; returns the
 * status of init (the error text is in f->call.error). */
static int fix_start(struct lab_fix *f, const char *tmpl) {
  char text[4096], err[512];
  /* Substitute the state path for the one "%s" of the template. */
  const char *mark = strstr(tmpl, "%s");
  assert_non_null(mark);
  snprintf(text, sizeof(text), "%.*s%s%s", (int)(mark - tmpl), tmpl, f->state,
           mark + 2);
  if (f->cfg_ready)
    config_destroy(&f->cfg);
  config_init(&f->cfg);
  f->cfg_ready = true;
  if (config_read_string(&f->cfg, text) != CONFIG_TRUE)
    fail_msg("config: %s at line %d", config_error_text(&f->cfg),
             config_error_line(&f->cfg));
  config_setting_t *group = config_lookup(&f->cfg, "lab");
  assert_non_null(group);

  struct http_settings http = {0};
  http.burst = 1;
  http.timeout_ms = 1000;
  f->host = host_new("lab", group, &http, err, sizeof(err));
  if (f->host == NULL)
    fail_msg("host_new: %s", err);
  if (loader_open(LAB_SO, f->priv, &f->mod, err, sizeof(err)) != 0)
    fail_msg("loader_open: %s", err);
  f->p = f->mod->provider;
  call_init(&f->call, 0);
  f->inst = NULL;
  return f->p->init(f->api, f->host, &f->call, &f->inst);
}

static void fix_stop(struct lab_fix *f) {
  if (f->inst != NULL)
    f->p->destroy(f->inst);
  f->inst = NULL;
  if (f->mod != NULL)
    loader_close(f->mod);
  f->mod = NULL;
  host_free(f->host);
  f->host = NULL;
}

/* Remove a flat directory (the tests create no subdirectories). */
static void rm_dir(const char *dir) {
  char path[512];
  DIR *d = opendir(dir);
  if (d == NULL)
    return;
  for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

static void fix_free(struct lab_fix *f) {
  fix_stop(f);
  if (f->cfg_ready)
    config_destroy(&f->cfg);
  f->cfg_ready = false;
  rm_dir(f->dir);
  rm_dir(f->priv);
}

static void fix_up(struct lab_fix *f, const char *tmpl) {
  fix_dirs(f);
  int rc = fix_start(f, tmpl);
  if (rc != CCM_OK)
    fail_msg("init: %d %s", rc, f->call.error);
}

static struct ccm_call *fresh_call(struct lab_fix *f) {
  call_init(&f->call, 0);
  return &f->call;
}

/* A Service with room for families, options and one port. */
struct svc {
  struct ccm_service s;
  uint32_t fams[2];
  struct ccm_option_value opt[3];
  const struct ccm_option_value *optp[3];
  struct ccm_service_port port;
  const struct ccm_service_port *portp[1];
  char lb_name[64];
};

static void svc_make(struct svc *v, const char *name, const char *uid) {
  memset(v, 0, sizeof(*v));
  snprintf(v->lb_name, sizeof(v->lb_name), "lb-%s", name);
  v->port = (struct ccm_service_port){sizeof(v->port), "http", CCM_PROTO_TCP,
                                      80, 30080};
  v->portp[0] = &v->port;
  v->s.struct_size = sizeof(v->s);
  v->s.cluster_name = "kind";
  v->s.namespace_ = "default";
  v->s.name = name;
  v->s.uid = uid;
  v->s.lb_name = v->lb_name;
  v->s.ports = v->portp;
  v->s.n_ports = 1;
  v->s.ip_families = v->fams;
  v->s.options = v->optp;
}

static void svc_family(struct svc *v, uint32_t a, uint32_t b) {
  v->fams[0] = a;
  v->fams[1] = b;
  v->s.n_ip_families = b ? 2 : 1;
}

static void svc_option(struct svc *v, const char *name, const char *value) {
  size_t i = v->s.n_options++;
  v->opt[i] = (struct ccm_option_value){sizeof(v->opt[i]), name,
                                        CCM_OPT_STRING, value, 0, false, NULL,
                                        0};
  v->optp[i] = &v->opt[i];
}

struct nodes {
  struct ccm_node n[4];
  const struct ccm_node *np[4];
  struct ccm_node_list list;
};

static void nodes_make(struct nodes *ns, const char *a, const char *b) {
  memset(ns, 0, sizeof(*ns));
  const char *names[2] = {a, b};
  for (size_t i = 0; i < 2; i++) {
    if (names[i] == NULL)
      continue;
    ns->n[ns->list.n_nodes].struct_size = sizeof(struct ccm_node);
    ns->n[ns->list.n_nodes].name = names[i];
    ns->np[ns->list.n_nodes] = &ns->n[ns->list.n_nodes];
    ns->list.n_nodes++;
  }
  ns->list.struct_size = sizeof(ns->list);
  ns->list.nodes = ns->np;
}

/* ensure and copy the ingress IPs ("a,b") into out; returns the status. */
static int ensure(struct lab_fix *f, struct svc *v, char *out, size_t cap) {
  struct nodes ns;
  struct ccm_lb_status st = {0};
  nodes_make(&ns, "worker1", "worker2");
  int rc = f->p->lb_ensure(f->inst, fresh_call(f), &v->s, &ns.list, &st);
  out[0] = '\0';
  for (size_t i = 0; i < st.n; i++)
    snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "",
             st.items[i].ip ? st.items[i].ip : "-");
  lb_status_clear(&st);
  return rc;
}

static int get(struct lab_fix *f, struct svc *v, char *out, size_t cap) {
  struct ccm_lb_status st = {0};
  int rc = f->p->lb_get(f->inst, fresh_call(f), &v->s, &st);
  out[0] = '\0';
  for (size_t i = 0; i < st.n; i++)
    snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "",
             st.items[i].ip ? st.items[i].ip : "-");
  lb_status_clear(&st);
  return rc;
}

static char *read_text(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL)
    return NULL;
  static char buf[65536];
  size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
  fclose(fp);
  buf[n] = '\0';
  return buf;
}

static void write_text(const char *path, const char *text) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
  assert_int_equal(fclose(fp), 0);
}

/* ---- tests ------------------------------------------------------------- */

static void test_declarations(void **state) {
  (void)state;
  struct lab_fix f;
  fix_up(&f, BASE_CFG);
  assert_string_equal(f.p->name, "lab");
  assert_int_equal(f.p->thread_safety, CCM_THREAD_SAFE);
  assert_non_null(f.p->lb_name_rules);
  assert_int_equal(f.p->lb_name_rules->max_length, 63);
  assert_null(strchr(f.p->lb_name_rules->allowed_first, '0'));
  assert_non_null(strchr(f.p->lb_name_rules->allowed_last, '0'));
  assert_null(strchr(f.p->lb_name_rules->allowed_last, '-'));
  size_t n = 0;
  for (; f.p->options[n] != NULL; n++)
    assert_int_equal(f.p->options[n]->type, CCM_OPT_STRING);
  assert_int_equal(n, 3);
  assert_string_equal(f.p->options[0]->name, "pool");
  assert_string_equal(f.p->options[1]->name, "ipv4-address");
  /* Missing file: init created it with an empty state. */
  cJSON *j = cJSON_Parse(read_text(f.state));
  assert_non_null(j);
  assert_int_equal(cJSON_GetObjectItem(j, "version")->valueint, 1);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "load_balancers")),
                   0);
  cJSON_Delete(j);
  fix_free(&f);
}

static void test_alloc_idempotent(void **state) {
  (void)state;
  struct lab_fix f;
  struct svc a, b, c;
  char ip[128], ip2[128];
  fix_up(&f, BASE_CFG);
  svc_make(&a, "web", "uid-a");
  svc_make(&b, "db", "uid-b");
  svc_make(&c, "none", "uid-c");

  assert_int_equal(get(&f, &a, ip, sizeof(ip)), CCM_ERR_NOT_FOUND);
  assert_int_equal(ensure(&f, &a, ip, sizeof(ip)), CCM_OK);
  /* /29: the network address .0 is skipped. */
  assert_string_equal(ip, "10.0.0.1");

  char before[8192];
  snprintf(before, sizeof(before), "%s", read_text(f.state));
  struct stat st1, st2;
  assert_int_equal(stat(f.state, &st1), 0);
  assert_int_equal(ensure(&f, &a, ip2, sizeof(ip2)), CCM_OK);
  assert_string_equal(ip2, "10.0.0.1");
  assert_int_equal(stat(f.state, &st2), 0);
  assert_int_equal(st1.st_ino, st2.st_ino); /* no rewrite: nothing changed */
  assert_string_equal(before, read_text(f.state));

  assert_int_equal(ensure(&f, &b, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.2");
  assert_int_equal(get(&f, &a, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.1");
  assert_int_equal(get(&f, &c, ip, sizeof(ip)), CCM_ERR_NOT_FOUND);

  /* The file records service, uid, IPs, nodes and ports. */
  cJSON *j = cJSON_Parse(read_text(f.state));
  assert_non_null(j);
  cJSON *lb0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "load_balancers"), 0);
  assert_string_equal(cJSON_GetObjectItem(lb0, "name")->valuestring, "lb-web");
  assert_string_equal(cJSON_GetObjectItem(lb0, "service")->valuestring,
                      "default/web");
  assert_string_equal(cJSON_GetObjectItem(lb0, "uid")->valuestring, "uid-a");
  assert_string_equal(
      cJSON_GetArrayItem(cJSON_GetObjectItem(lb0, "nodes"), 1)->valuestring,
      "worker2");
  cJSON *port = cJSON_GetArrayItem(cJSON_GetObjectItem(lb0, "ports"), 0);
  assert_int_equal(cJSON_GetObjectItem(port, "node_port")->valueint, 30080);
  cJSON_Delete(j);

  /* update_hosts changes the node set only. */
  struct nodes ns;
  nodes_make(&ns, "worker2", NULL);
  assert_int_equal(f.p->lb_update_hosts(f.inst, fresh_call(&f), &a.s, &ns.list),
                   CCM_OK);
  j = cJSON_Parse(read_text(f.state));
  lb0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "load_balancers"), 0);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(lb0, "nodes")), 1);
  cJSON_Delete(j);
  assert_int_equal(get(&f, &a, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.1");
  assert_int_equal(f.p->lb_update_hosts(f.inst, fresh_call(&f), &c.s, &ns.list),
                   CCM_ERR_NOT_FOUND);

  /* A re-created Service (new UID, same recorded lb_name) keeps its IP. */
  a.s.uid = "uid-a2";
  assert_int_equal(ensure(&f, &a, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.1");
  fix_free(&f);
}

static void test_load_balancer_ip(void **state) {
  (void)state;
  struct lab_fix f;
  struct svc a, b, c, d, e, g;
  char ip[128];
  fix_up(&f, BASE_CFG);

  svc_make(&a, "fixed", "u1");
  a.s.load_balancer_ip = "10.0.0.5";
  assert_int_equal(ensure(&f, &a, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.5");

  svc_make(&b, "thief", "u2");
  b.s.load_balancer_ip = "10.0.0.5";
  assert_int_equal(ensure(&f, &b, ip, sizeof(ip)), CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "10.0.0.5"));
  assert_non_null(strstr(f.call.error, "default/fixed"));
  assert_int_equal(get(&f, &b, ip, sizeof(ip)), CCM_ERR_NOT_FOUND);

  svc_make(&c, "outside", "u3");
  c.s.load_balancer_ip = "192.168.7.7";
  assert_int_equal(ensure(&f, &c, ip, sizeof(ip)), CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "192.168.7.7"));
  assert_non_null(strstr(f.call.error, "not inside"));

  /* The network address of a CIDR pool is not inside the usable range. */
  c.s.load_balancer_ip = "10.0.0.0";
  assert_int_equal(ensure(&f, &c, ip, sizeof(ip)), CCM_ERR_INVALID);
  c.s.load_balancer_ip = "not-an-ip";
  assert_int_equal(ensure(&f, &c, ip, sizeof(ip)), CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "not-an-ip"));

  /* The policy option wins, and the named pool is honoured. */
  svc_make(&d, "opt", "u4");
  svc_option(&d, "ipv4-address", "10.1.0.11");
  assert_int_equal(ensure(&f, &d, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.1.0.11");
  svc_make(&e, "pooled", "u5");
  svc_option(&e, "pool", "pub");
  assert_int_equal(ensure(&f, &e, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.1.0.10");
  svc_make(&g, "pooled2", "u6");
  svc_option(&g, "pool", "pub");
  assert_int_equal(ensure(&f, &g, ip, sizeof(ip)), CCM_ERR_RETRY);
  svc_make(&g, "nopool", "u7");
  svc_option(&g, "pool", "missing");
  assert_int_equal(ensure(&f, &g, ip, sizeof(ip)), CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "missing"));

  /* Moving a Service to a new free fixed IP releases the old one. */
  a.s.load_balancer_ip = "10.0.0.6";
  assert_int_equal(ensure(&f, &a, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.6");
  b.s.load_balancer_ip = "10.0.0.5";
  assert_int_equal(ensure(&f, &b, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.5");
  fix_free(&f);
}

static void test_ipv6(void **state) {
  (void)state;
  struct lab_fix f;
  struct svc a, b, c;
  char ip[128];
  fix_up(&f, BASE_CFG);
  svc_make(&a, "v6", "u1");
  svc_family(&a, CCM_IPV6, 0);
  assert_int_equal(ensure(&f, &a, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "fd00:10::1");

  svc_make(&b, "dual", "u2");
  svc_family(&b, CCM_IPV6, CCM_IPV4);
  assert_int_equal(ensure(&f, &b, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "fd00:10::2,10.0.0.1"); /* primary family first */

  svc_make(&c, "v6fixed", "u3");
  svc_family(&c, CCM_IPV6, 0);
  c.s.load_balancer_ip = "fd00:10::ffff"; /* last of the 65536 window */
  assert_int_equal(ensure(&f, &c, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "fd00:10::ffff");
  c.s.load_balancer_ip = "fd00:10::1:0"; /* just past the window */
  assert_int_equal(ensure(&f, &c, ip, sizeof(ip)), CCM_ERR_INVALID);
  /* An IPv6 loadBalancerIP on an IPv4-only Service is refused. */
  c.s.load_balancer_ip = "fd00:10::9";
  svc_family(&c, CCM_IPV4, 0);
  assert_int_equal(ensure(&f, &c, ip, sizeof(ip)), CCM_ERR_INVALID);

  /* Going single-stack releases the other family's address. */
  svc_family(&b, CCM_IPV4, 0);
  assert_int_equal(ensure(&f, &b, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.1");
  fix_stop(&f);

  /* No IPv6 pool configured: a clear permanent error. */
  static const char *const v4only =
      "lab = { state_file = \"%s\"; ipv4_pools = [\"10.9.0.0/30\"]; };";
  assert_int_equal(fix_start(&f, v4only), CCM_OK);
  svc_make(&a, "v6", "u1");
  svc_family(&a, CCM_IPV6, 0);
  assert_int_equal(ensure(&f, &a, ip, sizeof(ip)), CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "ipv6_pools"));
  fix_free(&f);
}

static const char *const SMALL_CFG =
    "lab = { state_file = \"%s\"; ipv4_pools = [\"192.168.50.0/30\"]; };";

static void test_exhaustion_and_reuse(void **state) {
  (void)state;
  struct lab_fix f;
  struct svc a, b, c;
  char ip[128];
  fix_up(&f, SMALL_CFG);
  svc_make(&a, "a", "u1");
  svc_make(&b, "b", "u2");
  svc_make(&c, "c", "u3");
  assert_int_equal(ensure(&f, &a, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "192.168.50.1");
  assert_int_equal(ensure(&f, &b, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "192.168.50.2");
  assert_int_equal(ensure(&f, &c, ip, sizeof(ip)), CCM_ERR_RETRY);
  assert_true(f.call.has_retry_after);
  assert_int_equal(f.call.retry_after_ms, 60000);
  assert_non_null(strstr(f.call.error, "no free address"));
  assert_non_null(strstr(f.call.error, "192.168.50.0/30"));
  assert_int_equal(get(&f, &c, ip, sizeof(ip)), CCM_ERR_NOT_FOUND);

  /* Delete frees; deleting again (absent) is fine. */
  assert_int_equal(f.p->lb_delete(f.inst, fresh_call(&f), &a.s), CCM_OK);
  assert_int_equal(get(&f, &a, ip, sizeof(ip)), CCM_ERR_NOT_FOUND);
  assert_int_equal(f.p->lb_delete(f.inst, fresh_call(&f), &a.s), CCM_OK);
  assert_null(strstr(read_text(f.state), "192.168.50.1"));
  assert_int_equal(ensure(&f, &c, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "192.168.50.1");
  fix_free(&f);
}

static void test_restart_keeps_ips(void **state) {
  (void)state;
  struct lab_fix f;
  struct svc a, b, c;
  char ip[128];
  fix_up(&f, BASE_CFG);
  svc_make(&a, "a", "u1");
  svc_make(&b, "b", "u2");
  svc_family(&b, CCM_IPV4, CCM_IPV6);
  svc_make(&c, "c", "u3");
  assert_int_equal(ensure(&f, &a, ip, sizeof(ip)), CCM_OK);
  assert_int_equal(ensure(&f, &b, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.2,fd00:10::1");
  assert_int_equal(f.p->lb_delete(f.inst, fresh_call(&f), &a.s), CCM_OK);
  svc_make(&a, "a2", "u4");
  b.s.load_balancer_ip = NULL;
  fix_stop(&f);

  assert_int_equal(fix_start(&f, BASE_CFG), CCM_OK);
  assert_int_equal(get(&f, &b, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.2,fd00:10::1");
  assert_int_equal(ensure(&f, &b, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.2,fd00:10::1");
  assert_int_equal(ensure(&f, &c, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.1"); /* freed before the restart */
  assert_int_equal(ensure(&f, &a, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.3");
  fix_free(&f);
}

static void test_corrupt_state(void **state) {
  (void)state;
  struct lab_fix f;
  fix_dirs(&f);
  const char *bad = "{ \"version\": 1,\n  \"load_balancers\": [ {";
  write_text(f.state, bad);
  assert_int_equal(fix_start(&f, BASE_CFG), CCM_ERR_INVALID);
  assert_null(f.inst);
  assert_non_null(strstr(f.call.error, f.state));
  assert_non_null(strstr(f.call.error, "parse error at line 2"));
  assert_string_equal(read_text(f.state), bad); /* never overwritten */
  fix_stop(&f);

  /* Valid JSON, but two load balancers hold one address. */
  write_text(f.state,
             "{\"version\":1,\"routes\":[],\"load_balancers\":["
             "{\"name\":\"x\",\"service\":\"d/x\",\"uid\":\"1\",\"ips\":"
             "[\"10.0.0.1\"],\"nodes\":[],\"ports\":[]},"
             "{\"name\":\"y\",\"service\":\"d/y\",\"uid\":\"2\",\"ips\":"
             "[\"10.0.0.1\"],\"nodes\":[],\"ports\":[]}]}");
  assert_int_equal(fix_start(&f, BASE_CFG), CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, f.state));
  assert_non_null(strstr(f.call.error, "load_balancers[1].ips[0]"));
  fix_stop(&f);

  write_text(f.state, "{\"version\":7,\"load_balancers\":[],\"routes\":[]}");
  assert_int_equal(fix_start(&f, BASE_CFG), CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "version"));
  fix_stop(&f);

  write_text(f.state, "");
  assert_int_equal(fix_start(&f, BASE_CFG), CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "empty"));
  fix_free(&f);
}

static void test_bad_config(void **state) {
  (void)state;
  struct lab_fix f;
  fix_dirs(&f);
  assert_int_equal(fix_start(&f, "lab = { ipv4_pools = [\"10.0.0.0/30\"]; };"
                                 "\n/* %s */\n"),
                   CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "state_file"));
  fix_stop(&f);
  assert_int_equal(
      fix_start(&f, "lab = { state_file = \"%s\"; ipv4_pools = [\"10.0.0.1/24\"]; };"),
      CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "ipv4_pools[0]"));
  fix_stop(&f);
  assert_int_equal(
      fix_start(&f, "lab = { state_file = \"%s\"; ipv6_pools = [\"10.0.0.0/24\"]; };"),
      CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "ipv6_pools[0]"));
  fix_stop(&f);
  assert_int_equal(
      fix_start(&f, "lab = { state_file = \"%s\"; ipv4_pools = [\"10.0.0.9-10.0.0.1\"]; };"),
      CCM_ERR_INVALID);
  fix_stop(&f);
  assert_int_equal(
      fix_start(&f, "lab = { state_file = \"%s/nodir/state.json\"; };"),
      CCM_ERR_INTERNAL);
  assert_non_null(strstr(f.call.error, "nodir"));
  fix_free(&f);
}

static void test_atomic_write(void **state) {
  (void)state;
  struct lab_fix f;
  struct svc v;
  char ip[128], name[32];
  fix_up(&f, BASE_CFG);
  for (int i = 0; i < 5; i++) {
    snprintf(name, sizeof(name), "s%d", i);
    svc_make(&v, name, name);
    assert_int_equal(ensure(&f, &v, ip, sizeof(ip)), CCM_OK);
  }
  struct ccm_route r = {sizeof(r), NULL, "worker1", "10.244.1.0/24", false,
                        NULL, 0};
  assert_int_equal(
      f.p->route_create(f.inst, fresh_call(&f), "kind", "uid-w1", &r), CCM_OK);
  svc_make(&v, "s0", "s0");
  assert_int_equal(f.p->lb_delete(f.inst, fresh_call(&f), &v.s), CCM_OK);

  DIR *d = opendir(f.dir);
  assert_non_null(d);
  int files = 0;
  for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    files++;
    assert_string_equal(e->d_name, "state.json");
  }
  closedir(d);
  assert_int_equal(files, 1);
  struct stat st;
  assert_int_equal(stat(f.state, &st), 0);
  assert_int_equal(st.st_mode & 077, 0); /* private to the owner */
  cJSON *j = cJSON_Parse(read_text(f.state));
  assert_non_null(j);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "load_balancers")),
                   4);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "routes")), 1);
  cJSON_Delete(j);
  fix_free(&f);
}

static void test_export_import(void **state) {
  (void)state;
  struct lab_fix a, b;
  struct svc s1, s2;
  char ip[128];
  fix_up(&a, BASE_CFG);
  svc_make(&s1, "one", "u1");
  svc_make(&s2, "two", "u2");
  svc_family(&s2, CCM_IPV6, CCM_IPV4);
  s1.s.load_balancer_ip = "10.0.0.4";
  assert_int_equal(ensure(&a, &s1, ip, sizeof(ip)), CCM_OK);
  assert_int_equal(ensure(&a, &s2, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "fd00:10::1,10.0.0.1");
  struct ccm_route r = {sizeof(r), NULL, "worker1", "10.244.1.0/24", false,
                        NULL, 0};
  assert_int_equal(
      a.p->route_create(a.inst, fresh_call(&a), "kind", "uid-w1", &r), CCM_OK);

  struct ccm_blob blob = {0};
  assert_int_equal(a.p->state_export(a.inst, fresh_call(&a), &blob), CCM_OK);
  assert_non_null(blob.data);

  /* The next generation: another file, empty until the import. */
  fix_up(&b, BASE_CFG);
  assert_int_equal(get(&b, &s1, ip, sizeof(ip)), CCM_ERR_NOT_FOUND);
  assert_int_equal(b.p->state_import(b.inst, fresh_call(&b), "{nope", 5),
                   CCM_ERR_INVALID);
  assert_non_null(strstr(b.call.error, "imported"));
  assert_int_equal(
      b.p->state_import(b.inst, fresh_call(&b), blob.data, blob.len), CCM_OK);
  blob_clear(&blob);
  assert_int_equal(get(&b, &s1, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.4");
  s2.s.load_balancer_ip = NULL;
  assert_int_equal(ensure(&b, &s2, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "fd00:10::1,10.0.0.1");
  struct ccm_route_list rl = {0};
  assert_int_equal(b.p->route_list(b.inst, fresh_call(&b), "kind", &rl),
                   CCM_OK);
  assert_int_equal(rl.n, 1);
  assert_string_equal(rl.items[0].name, "kind-uid-w1");
  route_list_clear(&rl);
  /* The import was persisted: a restart of b still has it. */
  fix_stop(&b);
  assert_int_equal(fix_start(&b, BASE_CFG), CCM_OK);
  assert_int_equal(get(&b, &s1, ip, sizeof(ip)), CCM_OK);
  assert_string_equal(ip, "10.0.0.4");
  fix_free(&b);
  fix_free(&a);
}

static void node_make(struct ccm_node *n, const char *name, const char *pid,
                      const struct ccm_node_address *const *addrs,
                      size_t n_addrs) {
  memset(n, 0, sizeof(*n));
  n->struct_size = sizeof(*n);
  n->name = name;
  n->provider_id = pid;
  n->addresses = addrs;
  n->n_addresses = n_addrs;
}

static const char *meta_addr(const struct ccm_instance_meta *m, uint32_t type) {
  for (size_t i = 0; i < m->n_addresses; i++)
    if (m->addresses[i].type == type)
      return m->addresses[i].address;
  return NULL;
}

static void test_instance_metadata(void **state) {
  (void)state;
  struct lab_fix f;
  struct ccm_node n;
  struct ccm_instance_meta m = {0};
  fix_up(&f, BASE_CFG);

  node_make(&n, "kind-control-plane", NULL, NULL, 0);
  assert_int_equal(f.p->instance_metadata(f.inst, fresh_call(&f), &n, &m),
                   CCM_OK);
  assert_string_equal(m.provider_id, "lab://kind-control-plane");
  assert_string_equal(m.instance_type, "cp");
  assert_string_equal(m.zone, "zone-a");
  assert_string_equal(m.region, "cp-region");
  assert_string_equal(meta_addr(&m, CCM_ADDR_HOSTNAME), "kind-control-plane");
  assert_int_equal(m.n_labels, 0);
  instance_meta_clear(&m);

  /* Matched by providerID first; rule fields fall back to the defaults;
   * configured addresses replace the node's own. */
  struct ccm_node_address own = {sizeof(own), CCM_ADDR_INTERNAL_IP,
                                 "172.18.0.99"};
  const struct ccm_node_address *ownp[1] = {&own};
  node_make(&n, "renamed", "lab://worker1", ownp, 1);
  assert_int_equal(f.p->instance_metadata(f.inst, fresh_call(&f), &n, &m),
                   CCM_OK);
  assert_string_equal(m.provider_id, "lab://worker1");
  assert_string_equal(m.instance_type, "lab-default");
  assert_string_equal(m.zone, "zone-b");
  assert_string_equal(m.region, "lab-region");
  assert_string_equal(meta_addr(&m, CCM_ADDR_INTERNAL_IP), "172.18.0.3");
  assert_string_equal(meta_addr(&m, CCM_ADDR_EXTERNAL_IP), "203.0.113.7");
  assert_string_equal(meta_addr(&m, CCM_ADDR_HOSTNAME), "w1");
  instance_meta_clear(&m);

  /* No configured addresses: the node's own are echoed. */
  struct ccm_node_address hn = {sizeof(hn), CCM_ADDR_HOSTNAME, "other"};
  const struct ccm_node_address *twop[2] = {&own, &hn};
  node_make(&n, "worker2", NULL, twop, 2);
  assert_int_equal(f.p->instance_metadata(f.inst, fresh_call(&f), &n, &m),
                   CCM_OK);
  assert_string_equal(meta_addr(&m, CCM_ADDR_INTERNAL_IP), "172.18.0.99");
  assert_string_equal(meta_addr(&m, CCM_ADDR_HOSTNAME), "worker2");
  assert_int_equal(m.n_addresses, 2);
  instance_meta_clear(&m);

  /* Unlisted node: not found. */
  node_make(&n, "stranger", NULL, NULL, 0);
  assert_int_equal(f.p->instance_metadata(f.inst, fresh_call(&f), &n, &m),
                   CCM_ERR_NOT_FOUND);
  instance_meta_clear(&m);

  /* Batch: one status per node. */
  struct ccm_node n1, n2;
  node_make(&n1, "worker2", NULL, NULL, 0);
  node_make(&n2, "stranger", NULL, NULL, 0);
  const struct ccm_node *np[2] = {&n1, &n2};
  struct ccm_instance_meta m1 = {0}, m2 = {0};
  struct ccm_instance_meta *mp[2] = {&m1, &m2};
  int st[2] = {99, 99};
  assert_int_equal(
      f.p->instance_metadata_batch(f.inst, fresh_call(&f), np, 2, mp, st),
      CCM_OK);
  assert_int_equal(st[0], CCM_OK);
  assert_int_equal(st[1], CCM_ERR_NOT_FOUND);
  assert_string_equal(m1.provider_id, "lab://worker2");
  instance_meta_clear(&m1);
  instance_meta_clear(&m2);
  fix_free(&f);
}

static void test_exists_shutdown(void **state) {
  (void)state;
  struct lab_fix f;
  struct ccm_node n;
  bool yes = true;
  fix_up(&f, BASE_CFG);
  node_make(&n, "worker1", NULL, NULL, 0);
  assert_int_equal(f.p->instance_exists(f.inst, fresh_call(&f), &n, &yes),
                   CCM_OK);
  assert_true(yes);
  assert_int_equal(f.p->instance_shutdown(f.inst, fresh_call(&f), &n, &yes),
                   CCM_OK);
  assert_false(yes);
  node_make(&n, "worker3", NULL, NULL, 0); /* shut down, so it exists */
  assert_int_equal(f.p->instance_exists(f.inst, fresh_call(&f), &n, &yes),
                   CCM_OK);
  assert_true(yes);
  assert_int_equal(f.p->instance_shutdown(f.inst, fresh_call(&f), &n, &yes),
                   CCM_OK);
  assert_true(yes);
  node_make(&n, "ghost", "lab://ghost", NULL, 0);
  assert_int_equal(f.p->instance_exists(f.inst, fresh_call(&f), &n, &yes),
                   CCM_OK);
  assert_false(yes);
  assert_int_equal(f.p->instance_shutdown(f.inst, fresh_call(&f), &n, &yes),
                   CCM_ERR_NOT_FOUND);
  /* The providerID wins over the name. */
  node_make(&n, "worker1", "lab://ghost", NULL, 0);
  assert_int_equal(f.p->instance_exists(f.inst, fresh_call(&f), &n, &yes),
                   CCM_OK);
  assert_false(yes);
  fix_stop(&f);

  /* Without a nodes list every node exists (kind's semantics). */
  assert_int_equal(fix_start(&f, SMALL_CFG), CCM_OK);
  node_make(&n, "anything", NULL, NULL, 0);
  assert_int_equal(f.p->instance_exists(f.inst, fresh_call(&f), &n, &yes),
                   CCM_OK);
  assert_true(yes);
  assert_int_equal(f.p->instance_shutdown(f.inst, fresh_call(&f), &n, &yes),
                   CCM_OK);
  assert_false(yes);
  struct ccm_instance_meta m = {0};
  assert_int_equal(f.p->instance_metadata(f.inst, fresh_call(&f), &n, &m),
                   CCM_OK);
  assert_string_equal(m.instance_type, "lab-node");
  assert_null(m.zone);
  instance_meta_clear(&m);
  fix_free(&f);
}

static void test_routes(void **state) {
  (void)state;
  struct lab_fix f;
  struct ccm_route_list rl = {0};
  fix_up(&f, BASE_CFG);
  struct ccm_route r1 = {sizeof(r1), NULL, "worker1", "10.244.1.0/24", false,
                         NULL, 0};
  struct ccm_route r2 = {sizeof(r2), "ignored", "stranger", "10.244.9.0/24",
                         false, NULL, 0};
  assert_int_equal(
      f.p->route_create(f.inst, fresh_call(&f), "kind", "uid-1", &r1), CCM_OK);
  assert_int_equal(
      f.p->route_create(f.inst, fresh_call(&f), "kind", "uid-1", &r1), CCM_OK);
  assert_int_equal(
      f.p->route_create(f.inst, fresh_call(&f), "kind", "uid-9", &r2), CCM_OK);
  assert_int_equal(
      f.p->route_create(f.inst, fresh_call(&f), "other", "uid-1", &r1), CCM_OK);
  /* Another node cannot take a routed CIDR. */
  struct ccm_route r3 = {sizeof(r3), NULL, "worker2", "10.244.1.0/24", false,
                         NULL, 0};
  assert_int_equal(
      f.p->route_create(f.inst, fresh_call(&f), "kind", "uid-2", &r3),
      CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "worker1"));
  struct ccm_route bad = {sizeof(bad), NULL, "worker2", "10.244.1.0", false,
                          NULL, 0};
  assert_int_equal(
      f.p->route_create(f.inst, fresh_call(&f), "kind", "uid-2", &bad),
      CCM_ERR_INVALID);

  assert_int_equal(f.p->route_list(f.inst, fresh_call(&f), "kind", &rl),
                   CCM_OK);
  assert_int_equal(rl.n, 2);
  assert_string_equal(rl.items[0].name, "kind-uid-1");
  assert_string_equal(rl.items[0].target_node, "worker1");
  assert_string_equal(rl.items[0].destination_cidr, "10.244.1.0/24");
  assert_false(rl.items[0].blackhole);
  assert_string_equal(rl.items[1].name, "kind-uid-9");
  assert_true(rl.items[1].blackhole); /* its node is not in nodes */
  route_list_clear(&rl);

  /* Routes survive a restart. */
  fix_stop(&f);
  assert_int_equal(fix_start(&f, BASE_CFG), CCM_OK);
  struct ccm_route del = {sizeof(del), "kind-uid-9", "stranger",
                          "10.244.9.0/24", true, NULL, 0};
  assert_int_equal(f.p->route_delete(f.inst, fresh_call(&f), "kind", &del),
                   CCM_OK);
  assert_int_equal(f.p->route_delete(f.inst, fresh_call(&f), "kind", &del),
                   CCM_OK);
  assert_int_equal(f.p->route_list(f.inst, fresh_call(&f), "kind", &rl),
                   CCM_OK);
  assert_int_equal(rl.n, 1);
  assert_string_equal(rl.items[0].name, "kind-uid-1");
  route_list_clear(&rl);
  assert_int_equal(f.p->route_list(f.inst, fresh_call(&f), "other", &rl),
                   CCM_OK);
  assert_int_equal(rl.n, 1);
  route_list_clear(&rl);
  assert_int_equal(f.p->route_list(f.inst, fresh_call(&f), "none", &rl),
                   CCM_OK);
  assert_int_equal(rl.n, 0);
  route_list_clear(&rl);
  fix_free(&f);
}

/* A dual-stack node: one route per family under the same name hint, both
 * kept; deleting a listed route whose name now points at another CIDR
 * deletes nothing. */
static void test_routes_dual_stack(void **state) {
  (void)state;
  struct lab_fix f;
  struct ccm_route_list rl = {0};
  fix_up(&f, BASE_CFG);
  struct ccm_route v4 = {sizeof(v4), NULL, "worker1", "10.244.1.0/24", false,
                         NULL, 0};
  struct ccm_route v6 = {sizeof(v6), NULL, "worker1", "fd00:10:244:1::/64",
                         false, NULL, 0};
  for (int round = 0; round < 2; round++) {
    assert_int_equal(
        f.p->route_create(f.inst, fresh_call(&f), "kind", "uid-1", &v4),
        CCM_OK);
    assert_int_equal(
        f.p->route_create(f.inst, fresh_call(&f), "kind", "uid-1", &v6),
        CCM_OK);
  }
  assert_int_equal(f.p->route_list(f.inst, fresh_call(&f), "kind", &rl),
                   CCM_OK);
  assert_int_equal(rl.n, 2);
  assert_string_equal(rl.items[0].name, "kind-uid-1");
  assert_string_equal(rl.items[1].name, "kind-uid-1-v6");
  assert_string_equal(rl.items[1].destination_cidr, "fd00:10:244:1::/64");
  route_list_clear(&rl);

  struct ccm_route stale = {sizeof(stale), "kind-uid-1", "worker1",
                            "10.244.7.0/24", false, NULL, 0};
  assert_int_equal(f.p->route_delete(f.inst, fresh_call(&f), "kind", &stale),
                   CCM_OK);
  assert_int_equal(f.p->route_list(f.inst, fresh_call(&f), "kind", &rl),
                   CCM_OK);
  assert_int_equal(rl.n, 2);
  route_list_clear(&rl);
  fix_free(&f);
}

/* CCM_THREAD_SAFE: concurrent ensures never hand out one address twice. */
#define CONC_THREADS 4
#define CONC_PER 10

struct conc_arg {
  struct lab_fix *f;
  int t;
  char ips[CONC_PER][64];
  int failures;
};

static void *conc_run(void *p) {
  struct conc_arg *a = p;
  for (int i = 0; i < CONC_PER; i++) {
    char name[32];
    struct svc v;
    struct nodes ns;
    struct ccm_call call;
    struct ccm_lb_status st = {0};
    snprintf(name, sizeof(name), "t%d-%d", a->t, i);
    svc_make(&v, name, name);
    nodes_make(&ns, "worker1", NULL);
    call_init(&call, 0);
    if (a->f->p->lb_ensure(a->f->inst, &call, &v.s, &ns.list, &st) != CCM_OK ||
        st.n != 1)
      a->failures++;
    else
      snprintf(a->ips[i], sizeof(a->ips[i]), "%s", st.items[0].ip);
    lb_status_clear(&st);
  }
  return NULL;
}

static void test_concurrent_ensure(void **state) {
  (void)state;
  struct lab_fix f;
  struct conc_arg args[CONC_THREADS];
  pthread_t th[CONC_THREADS];
  fix_up(&f, "lab = { state_file = \"%s\"; ipv4_pools = [\"10.5.0.0/26\"]; };");
  for (int t = 0; t < CONC_THREADS; t++) {
    memset(&args[t], 0, sizeof(args[t]));
    args[t].f = &f;
    args[t].t = t;
    assert_int_equal(pthread_create(&th[t], NULL, conc_run, &args[t]), 0);
  }
  for (int t = 0; t < CONC_THREADS; t++)
    assert_int_equal(pthread_join(th[t], NULL), 0);
  for (int t = 0; t < CONC_THREADS; t++) {
    assert_int_equal(args[t].failures, 0);
    for (int i = 0; i < CONC_PER; i++)
      for (int u = 0; u < CONC_THREADS; u++)
        for (int j = 0; j < CONC_PER; j++)
          if (u != t || j != i)
            assert_string_not_equal(args[t].ips[i], args[u].ips[j]);
  }
  cJSON *j = cJSON_Parse(read_text(f.state));
  assert_non_null(j);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "load_balancers")),
                   CONC_THREADS * CONC_PER);
  cJSON_Delete(j);
  fix_free(&f);
}

/* Hot-swap through the real registry: the new generation starts on another
 * (empty) state file and still serves the old generation's addresses,
 * because the registry moves them with state_export/state_import. */
static void write_host_cfg(const char *path, const char *dir,
                           const char *state) {
  char text[2048];
  snprintf(text, sizeof(text),
           "cluster_name = \"kind\";\n"
           "state_dir = \"%s/host\";\n"
           "providers = ( { name = \"lab\"; module = \"%s\"; default = true;\n"
           "  config = { state_file = \"%s\";\n"
           "             ipv4_pools = [ \"10.7.0.0/29\" ]; }; } );\n",
           dir, LAB_SO, state);
  write_text(path, text);
}

static void test_registry_swap(void **state) {
  (void)state;
  struct lab_fix f; /* only for its temp dirs */
  char cfg_path[256], state2[256], err[512], ip[64];
  struct host_config *cfg1 = NULL, *cfg2 = NULL;
  struct provider_ref ref;
  struct ccm_call call;
  struct ccm_lb_status st = {0};
  struct nodes ns;
  struct svc a, b;

  fix_dirs(&f);
  assert_int_equal(http_global_init(), 0);
  snprintf(cfg_path, sizeof(cfg_path), "%s/host.cfg", f.priv);
  snprintf(state2, sizeof(state2), "%s/state2.json", f.dir);
  write_host_cfg(cfg_path, f.priv, f.state);
  if (config_load(cfg_path, &cfg1, err, sizeof(err)) != 0)
    fail_msg("config_load: %s", err);
  char host_dir[200];
  snprintf(host_dir, sizeof(host_dir), "%s/host", f.priv);
  struct registry *reg = registry_new(host_dir, 5000);
  assert_non_null(reg);
  if (registry_apply(reg, cfg1, err, sizeof(err)) != 0)
    fail_msg("registry_apply: %s", err);

  svc_make(&a, "a", "u1");
  svc_make(&b, "b", "u2");
  nodes_make(&ns, "worker1", NULL);
  assert_int_equal(registry_for_service(reg, NULL, &ref), CCM_OK);
  call_init(&call, 0);
  assert_int_equal(prov_lb_ensure(&ref, &call, &a.s, &ns.list, &st), CCM_OK);
  assert_int_equal(st.n, 1);
  assert_string_equal(st.items[0].ip, "10.7.0.1");
  lb_status_clear(&st);
  registry_release(&ref);

  /* Same module, new config (another state file): a swap. */
  write_host_cfg(cfg_path, f.priv, state2);
  if (config_load(cfg_path, &cfg2, err, sizeof(err)) != 0)
    fail_msg("config_load: %s", err);
  if (registry_apply(reg, cfg2, err, sizeof(err)) != 0)
    fail_msg("registry_apply (swap): %s", err);
  struct registry_stats rs;
  registry_get_stats(reg, &rs);
  assert_int_equal(rs.swaps, 1);

  assert_int_equal(registry_for_service(reg, NULL, &ref), CCM_OK);
  call_init(&call, 0);
  assert_int_equal(prov_lb_get(&ref, &call, &a.s, &st), CCM_OK);
  assert_int_equal(st.n, 1);
  assert_string_equal(st.items[0].ip, "10.7.0.1");
  lb_status_clear(&st);
  call_init(&call, 0);
  assert_int_equal(prov_lb_ensure(&ref, &call, &b.s, &ns.list, &st), CCM_OK);
  snprintf(ip, sizeof(ip), "%s", st.items[0].ip);
  assert_string_equal(ip, "10.7.0.2");
  lb_status_clear(&st);
  registry_release(&ref);
  assert_non_null(strstr(read_text(state2), "10.7.0.1"));
  assert_non_null(strstr(read_text(state2), "10.7.0.2"));

  registry_free(reg);
  config_free(cfg1);
  config_free(cfg2);
  http_global_cleanup();
  /* The registry's private copies live under host/modules. */
  char sub[256];
  snprintf(sub, sizeof(sub), "%s/host/modules", f.priv);
  rm_dir(sub);
  rm_dir(host_dir);
  fix_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_declarations),
      cmocka_unit_test(test_alloc_idempotent),
      cmocka_unit_test(test_load_balancer_ip),
      cmocka_unit_test(test_ipv6),
      cmocka_unit_test(test_exhaustion_and_reuse),
      cmocka_unit_test(test_restart_keeps_ips),
      cmocka_unit_test(test_corrupt_state),
      cmocka_unit_test(test_bad_config),
      cmocka_unit_test(test_atomic_write),
      cmocka_unit_test(test_export_import),
      cmocka_unit_test(test_instance_metadata),
      cmocka_unit_test(test_exists_shutdown),
      cmocka_unit_test(test_routes),
    cmocka_unit_test(test_routes_dual_stack),
      cmocka_unit_test(test_concurrent_ensure),
      cmocka_unit_test(test_registry_swap),
  };
  log_set_level(CCM_LOG_WARN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
