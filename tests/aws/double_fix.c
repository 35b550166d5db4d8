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

