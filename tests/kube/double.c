/*
 * double.c: process management for the Kubernetes API double (fork/exec
 * /usr/bin/python3, read "PORT n" from its stdout) and control calls.
 * Test code only; it never contacts anything but 127.0.0.1.
 */
#include "double.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/mem.h"

#define KDOUBLE_SCRIPT CCM_SOURCE_DIR "/tests/doubles/kube_apiserver.py"

bool kdouble_available(void)
{
  struct stat st;

  return stat(KDOUBLE_SCRIPT, &st) == 0 &&
         stat("/usr/bin/python3", &st) == 0;
}

int kdouble_start(struct kdouble *d, bool tls, bool token_file)
{
  char line[512], certdir[300];
  const char *argv[16];
  int pfd[2], n = 0;
  FILE *f;
  pid_t pid;

  memset(d, 0, sizeof *d);
  snprintf(d->dir, sizeof d->dir, "/tmp/ccm-kube-it-XXXXXX");
  if (mkdtemp(d->dir) == NULL)
    return -1;
  snprintf(d->kubeconfig, sizeof d->kubeconfig, "%s/kubeconfig", d->dir);
  snprintf(certdir, sizeof certdir, "%s/certs", d->dir);
  argv[n++] = "/usr/bin/python3";
  argv[n++] = KDOUBLE_SCRIPT;
  argv[n++] = "--port";
  argv[n++] = "0";
  argv[n++] = "--kubeconfig-out";
  argv[n++] = d->kubeconfig;
  if (tls) {
    argv[n++] = "--tls";
    argv[n++] = "--cert-dir";
    argv[n++] = certdir;
  }
  if (token_file) {
    snprintf(d->token_file, sizeof d->token_file, "%s/token", d->dir);
    argv[n++] = "--token-file";
    argv[n++] = d->token_file;
  }
  argv[n] = NULL;
  if (pipe(pfd) != 0)
    return -1;
  pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    /* A failed assertion longjmps past kdouble_stop: the double must not
     * outlive the test and hold ctest's output pipe open. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(pfd[1], 1);
    close(pfd[0]);
    close(pfd[1]);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(pfd[1]);
  d->pid = pid;
  f = fdopen(pfd[0], "r");
  if (f == NULL)
    goto fail;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "PORT ", 5) == 0) {
      d->port = (int)strtol(line + 5, NULL, 10);
      if (!tls)
        break;
    } else if (strncmp(line, "CA ", 3) == 0) {
      line[strcspn(line, "\n")] = '\0';
      snprintf(d->ca, sizeof d->ca, "%s", line + 3);
      break;
    }
  }
  fclose(f);
  if (d->port <= 0)
    goto fail;
  return 0;
fail:
  kdouble_stop(d);
  return -1;
}

void kdouble_stop(struct kdouble *d)
{
  char cmd[300];

  if (d->pid > 0) {
    kill(d->pid, SIGTERM);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
  }
  if (d->dir[0] != '\0') {
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
    if (system(cmd) != 0)
      fprintf(stderr, "cannot remove %s\n", d->dir);
    d->dir[0] = '\0';
  }
}

struct kube_client *kdouble_client(const struct kdouble *d)
{
  struct kube_client_opts o = {.kubeconfig = d->kubeconfig,
                               .qps = -1,
                               .backoff_base_ms = 20,
                               .backoff_cap_ms = 100};
  struct kube_client *c = NULL;
  char err[512];

  if (kube_client_new(&o, &c, err, sizeof err) != 0) {
    fprintf(stderr, "kube_client_new: %s\n", err);
    return NULL;
  }
  return c;
}

cJSON *kdouble_control(struct kube_client *c, const char *op,
                       const char *json)
{
  struct kube_response r;
  char path[256];
  cJSON *out = NULL;
  int st;

  snprintf(path, sizeof path, "/_control/%s", op);
  st = kube_request(c, json != NULL ? "POST" : "GET", path,
                    json != NULL ? "application/json" : NULL, json,
                    json != NULL ? strlen(json) : 0, &r);
  if (st == KUBE_OK)
    out = cJSON_ParseWithLength(r.body, r.len);
  kube_response_free(&r);
  return out;
}

int kdouble_count_requests(struct kube_client *c, const char *method,
                           const char *path_part, long status)
{
  cJSON *log = kdouble_control(c, "requests", NULL), *it;
  int n = 0;

  cJSON_ArrayForEach(it, cJSON_GetObjectItem(log, "items")) {
    cJSON *m = cJSON_GetObjectItem(it, "method");
    cJSON *p = cJSON_GetObjectItem(it, "path");
    cJSON *s = cJSON_GetObjectItem(it, "status");

    if (!cJSON_IsString(m) || !cJSON_IsString(p))
      continue;
    if (method != NULL && strcmp(m->valuestring, method) != 0)
      continue;
    if (path_part != NULL && strstr(p->valuestring, path_part) == NULL)
      continue;
    if (status != 0 && (!cJSON_IsNumber(s) || (long)s->valuedouble != status))
      continue;
    n++;
  }
  cJSON_Delete(log);
  return n;
}
