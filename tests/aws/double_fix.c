/*
 * double_fix.c: the shared fixture of the aws module's tests against the
 * AWS double (see double_fix.h). Test code: cmocka asserts on failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "double_fix.h"
#include "modules/http.h"

#define DOUBLE CCM_SOURCE_DIR "/tests/doubles/aws.py"
#define SEED CCM_SOURCE_DIR "/tests/doubles/fixtures/aws_seed.json"

static pid_t fx_double_pid;
int fx_port;
char fx_tmpdir[64];

int fx_double_start(void **state) {
  int fds[2];
  FILE *out;
  char line[128];
  (void)state;

  if (pipe(fds) != 0)
    return -1;
  fx_double_pid = fork();
  if (fx_double_pid < 0)
    return -1;
  if (fx_double_pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execl("/usr/bin/python3", "python3", DOUBLE, "--port", "0", "--seed",
          SEED, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  out = fdopen(fds[0], "r");
  if (out == NULL || fgets(line, sizeof(line), out) == NULL ||
      sscanf(line, "PORT %d", &fx_port) != 1)
    return -1;
  fclose(out);
  snprintf(fx_tmpdir, sizeof(fx_tmpdir), "/tmp/ccm-test-aws-XXXXXX");
  if (mkdtemp(fx_tmpdir) == NULL)
    return -1;
  return 0;
}

int fx_double_stop(void **state) {
  char path[128];
  (void)state;
  if (fx_double_pid > 0) {
    kill(fx_double_pid, SIGTERM);
    waitpid(fx_double_pid, NULL, 0);
  }
  snprintf(path, sizeof(path), "%s/token", fx_tmpdir);
  unlink(path);
  rmdir(fx_tmpdir);
  return 0;
}

void fx_env_clean(void) {
  const char *vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                        "AWS_SESSION_TOKEN", "AWS_PROFILE",
                        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
                        "AWS_EC2_METADATA_DISABLED",
                        "AWS_EC2_METADATA_SERVICE_ENDPOINT"};
  for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
    unsetenv(vars[i]);
  setenv("HOME", fx_tmpdir, 1); /* no ~/.aws here */
  setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
  setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
}

void fx_env_keys(void) {
  setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
         1);
}


/* extra: more keys inside the aws group. */
int fx_up(struct fix *f, const char *extra) {
  char text[2048], err[256];
  struct http_settings http = {0};
  struct ccm_entry e = {0};
  void *inst = NULL;
  int rc;

  snprintf(text, sizeof(text),
           "aws = { %s\n endpoints = { ec2 = \"http://127.0.0.1:%d\";\n"
           "  elb = \"http://127.0.0.1:%d\"; elbv2 = \"http://127.0.0.1:%d\";"
           "  sts = \"http://127.0.0.1:%d\"; imds = \"http://127.0.0.1:%d\";"
           " }; };\n",
           extra, fx_port, fx_port, fx_port, fx_port,
           fx_port);
  config_init(&f->cfg);
  if (config_read_string(&f->cfg, text) != CONFIG_TRUE)
    fail_msg("config: %s", config_error_text(&f->cfg));
  http.burst = 1000;
  http.timeout_ms = 5000;
  f->host = host_new("aws", config_lookup(&f->cfg, "aws"), &http, err,
                     sizeof(err));
  assert_non_null(f->host);
  e.struct_size = sizeof(e);
  assert_int_equal(ccm_provider_entry(&e), CCM_OK);
  f->p = e.provider;
  call_init(&f->call, 30000);
  rc = f->p->init(host_api(), f->host, &f->call, &inst);
  f->aws = inst;
  return rc;
}

void fx_down(struct fix *f) {
  if (f->aws != NULL)
    f->p->destroy(f->aws);
  f->aws = NULL;
  host_free(f->host);
  config_destroy(&f->cfg);
}

/* A request to the double's control API; the JSON answer (cJSON_Delete). */
cJSON *fx_control(struct fix *f, const char *method, const char *path,
                      const char *body) {
  const struct ccm_host_api *api = host_api();
  const char *headers[] = {"Content-Type: application/json", NULL};
  struct ccm_http_response *resp = NULL;
  struct ccm_call call;
  char url[256];
  size_t len = 0;
  cJSON *j;

  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", fx_port, path);
  struct ccm_http_request req = {
      .struct_size = sizeof(req), .method = method, .url = url,
      .headers = headers, .body = body, .body_len = body ? strlen(body) : 0};
  call_init(&call, 10000);
  assert_int_equal(api->http_do(f->host, &call, &req, &resp), CCM_OK);
  assert_int_equal(api->http_status(resp), 200);
  const char *text = api->http_body(resp, &len);
  j = cJSON_ParseWithLength(text, len);
  api->http_release(resp);
  assert_non_null(j);
  return j;
}

/* Calls of action in the log since the last reset. */
int fx_calls(struct fix *f, const char *action) {
  char path[160];
  snprintf(path, sizeof(path), "/_double/calls?action=%s", action);
  cJSON *j = fx_control(f, "GET", path, NULL);
  int n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "count"));
  cJSON_Delete(j);
  return n;
}

void fx_reset(struct fix *f) {
  cJSON_Delete(fx_control(f, "POST", "/_double/state", "{\"reset\": true}"));
  cJSON_Delete(fx_control(f, "DELETE", "/_double/calls", NULL));
  cJSON_Delete(fx_control(f, "POST", "/_double/faults", "{\"clear\": true}"));
}

void fx_node_make(struct ccm_node *n, const char *name, const char *pid) {
  memset(n, 0, sizeof(*n));
  n->struct_size = sizeof(*n);
  n->name = name;
  n->uid = "uid";
  n->provider_id = pid;
}


void fx_start(struct fix *f, const char *extra) {
  char keys[512];
  fx_env_clean();
  fx_env_keys();
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  snprintf(keys, sizeof(keys),
           "region = \"us-east-1\"; cluster_id = \"kubernetes\"; %s", extra);
  if (fx_up(f, keys) != CCM_OK)
    fail_msg("init: %s", f->call.error);
  fx_reset(f);
}

void fx_finish(struct fix *f) {
  fx_down(f);
  fx_env_clean();
}

cJSON *fx_state(struct fix *f) {
  return fx_control(f, "GET", "/_double/state", NULL);
}

void fx_calls_clear(struct fix *f) {
  cJSON_Delete(fx_control(f, "DELETE", "/_double/calls", NULL));
}

void fx_faults(struct fix *f, const char *json) {
  cJSON_Delete(fx_control(f, "POST", "/_double/faults", json));
}

void fx_query_ok(struct fix *f, enum aws_service svc, const char *action,
                 struct aws_params *p) {
  xmlDoc *doc = NULL;
  assert_int_equal(aws_query(f->aws, &f->call, svc, action, p, &doc, NULL),
                   CCM_OK);
  aws_params_clear(p);
  xmlFreeDoc(doc);
}

void fx_svc_make(struct fx_svc *s, const char *lb_name) {
  memset(s, 0, sizeof(*s));
  s->port80 = (struct ccm_service_port){sizeof(s->port80), "http",
                                        CCM_PROTO_TCP, 80, 30080};
  s->port443 = (struct ccm_service_port){sizeof(s->port443), "https",
                                         CCM_PROTO_TCP, 443, 30443};
  s->ports[0] = &s->port80;
  s->ports[1] = &s->port443;
  s->tag = (struct ccm_kv){sizeof(s->tag), "team", "web"};
  s->tags[0] = &s->tag;
  s->svc.struct_size = sizeof(s->svc);
  s->svc.cluster_name = "kubernetes";
  s->svc.namespace_ = "default";
  s->svc.name = "web";
  s->svc.uid = "6128d5b1-4c0f-8a11-0000-000000000000";
  s->svc.lb_name = lb_name;
  s->svc.ports = s->ports;
  s->svc.n_ports = 2;
  s->svc.tags = s->tags;
  s->svc.n_tags = 1;
  s->svc.options = s->opts;
  fx_node_make(&s->n1, FX_NODE_A, "aws:///us-east-1a/" FX_ID_A);
  fx_node_make(&s->n2, FX_NODE_B, NULL);
  s->nodes[0] = &s->n1;
  s->nodes[1] = &s->n2;
  s->list.struct_size = sizeof(s->list);
  s->list.nodes = s->nodes;
  s->list.n_nodes = 2;
}

struct ccm_option_value *fx_svc_opt(struct fx_svc *s, const char *name,
                                    uint32_t type) {
  struct ccm_option_value *o;
  assert_true(s->svc.n_options < FX_OPTS_MAX);
  o = &s->opt[s->svc.n_options];
  memset(o, 0, sizeof(*o));
  o->struct_size = sizeof(*o);
  o->name = name;
  o->type = type;
  s->opts[s->svc.n_options++] = o;
  return o;
}

void fx_ensure(struct fix *f, struct fx_svc *s, int want) {
  struct ccm_lb_status st = {0};
  int rc = f->p->lb_ensure(f->aws, &f->call, &s->svc, &s->list, &st);
  lb_status_clear(&st);
  if (rc != want)
    fail_msg("ensure %s: %d, want %d: %s", s->svc.lb_name, rc, want,
             f->call.error);
}
