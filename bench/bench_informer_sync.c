/*
 * bench_informer_sync.c: time for the Node and Service informers to sync
 * against the Kubernetes API double seeded with 5,000 Nodes and 10,000
 * Services, beside `kubectl get nodes,services -A -o json` on the same
 * server in the same run. Prints a table; skips when the double is absent.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kube/client.h"
#include "kube/informer.h"
#include "util/log.h"

#define DOUBLE CCM_SOURCE_DIR "/tests/doubles/kube_apiserver.py"
#define PY "/usr/bin/python3"

static double now_s(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

/* Start the double; returns its pid (port and kubeconfig filled) or -1. */
static pid_t double_start(const char *kubeconfig, int nodes, int services)
{
  char n[16];
  char s[16];
  char line[256];
  int pfd[2];
  pid_t pid;
  FILE *f;
  int port = 0;

  snprintf(n, sizeof(n), "%d", nodes);
  snprintf(s, sizeof(s), "%d", services);
  if (pipe(pfd) != 0)
    return -1;
  pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    const char *argv[] = {PY, DOUBLE, "--port", "0", "--kubeconfig-out",
                          kubeconfig, "--seed-nodes", n, "--seed-services", s,
                          "--history", "100000", NULL};

    dup2(pfd[1], 1);
    close(pfd[0]);
    close(pfd[1]);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(pfd[1]);
  f = fdopen(pfd[0], "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, "PORT ", 5) == 0) {
      port = (int)strtol(line + 5, NULL, 10);
      break;
    }
  fclose(f);
  if (port <= 0) {
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return -1;
  }
  return pid;
}

/* Run kubectl; seconds, or -1. *maxrss_kib gets its peak RSS. */
static double run_kubectl(const char *kubeconfig, const char *chunk,
                          long *maxrss_kib)
{
  struct rusage ru;
  double t0 = now_s();
  int status = 0;
  pid_t pid = fork();

  if (pid < 0)
    return -1;
  if (pid == 0) {
    const char *argv[] = {"kubectl", "--kubeconfig", kubeconfig, "get",
                          "nodes,services", "-A", "-o", "json", chunk, NULL};

    if (freopen("/dev/null", "w", stdout) == NULL)
      _exit(126);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    return -1;
  *maxrss_kib = ru.ru_maxrss;
  return now_s() - t0;
}

static struct informer *start(struct kube_client *kc, const char *name,
                              enum obj_kind kind, const char *path)
{
  struct informer_config cfg = {.name = name, .kind = kind, .path = path};
  struct informer_ops ops;
  struct informer *inf = NULL;

  informer_ops_from_client(kc, &ops);
  if (informer_new(&cfg, &ops, &inf) != 0 || informer_start(inf) != 0) {
    informer_free(inf);
    return NULL;
  }
  return inf;
}

int main(int argc, char **argv)
{
  /* BENCH_FULL=1 (make bench) selects the full size; else one fifth. */
  const char *full = getenv("BENCH_FULL");
  int big = full != NULL && strcmp(full, "1") == 0;
  int n_nodes = argc > 1 ? (int)strtol(argv[1], NULL, 10) : big ? 5000 : 1000;
  int n_svcs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : big ? 10000 : 2000;
  char dir[] = "/tmp/ccm-bench-sync-XXXXXX";
  char kubeconfig[64];
  struct kube_client_opts o = {.qps = -1};
  struct kube_client *kc = NULL;
  struct informer *ni;
  struct informer *si;
  struct stat st;
  char err[512];
  double t0;
  double t_sync;
  double t_seed;
  double t_kc_default;
  double t_kc_all;
  long rss0;
  long rss1;
  long kc_rss_default = 0;
  long kc_rss_all = 0;
  pid_t pid;
  int rc = 1;

  if (stat(DOUBLE, &st) != 0 || stat(PY, &st) != 0) {
    printf("bench_informer_sync: the Kubernetes API double is absent; "
           "skipped\n");
    return 0;
  }
  if (mkdtemp(dir) == NULL)
    return 1;
  snprintf(kubeconfig, sizeof(kubeconfig), "%s/kubeconfig", dir);
  log_set_level(CCM_LOG_ERROR);
  t0 = now_s();
  pid = double_start(kubeconfig, n_nodes, n_svcs);
  if (pid < 0) {
    printf("bench_informer_sync: the double did not start; skipped\n");
    rmdir(dir);
    return 0;
  }
  t_seed = now_s() - t0;
  o.kubeconfig = kubeconfig;
  if (kube_client_new(&o, &kc, err, sizeof(err)) != 0) {
    fprintf(stderr, "kube_client_new: %s\n", err);
    goto fail;
  }
  rss0 = rss_kib();
  t0 = now_s();
  ni = start(kc, "nodes", OBJ_KIND_NODE, "/api/v1/nodes");
  si = start(kc, "services", OBJ_KIND_SERVICE, "/api/v1/services");
  if (ni == NULL || si == NULL || !informer_wait_synced(ni, 600000) ||
      !informer_wait_synced(si, 600000)) {
    fprintf(stderr, "informers did not sync\n");
    informer_free(ni);
    informer_free(si);
    goto fail;
  }
  t_sync = now_s() - t0;
  rss1 = rss_kib();
  t_kc_default = run_kubectl(kubeconfig, "--chunk-size=500", &kc_rss_default);
  t_kc_all = run_kubectl(kubeconfig, "--chunk-size=0", &kc_rss_all);

  printf("bench_informer_sync: %d Nodes + %d Services on the API double "
         "(seeded in %.1f s)\n\n",
         n_nodes, n_svcs, t_seed);
  printf("| client | what | seconds | peak RSS |\n|---|---|---:|---:|\n");
  printf("| ccm-host informers (2 threads, limit=500) | list both, decode, "
         "cache: synced | %.2f | +%.1f MiB (process %.1f MiB) |\n",
         t_sync, (double)(rss1 - rss0) / 1024.0, (double)rss1 / 1024.0);
  if (t_kc_default >= 0)
    printf("| kubectl get nodes,services -A -o json (chunk 500) | list both, "
           "print | %.2f | %.1f MiB |\n",
           t_kc_default, (double)kc_rss_default / 1024.0);
  else
    printf("| kubectl (chunk 500) | not run (absent or failed) | n/a | n/a |\n");
  if (t_kc_all >= 0)
    printf("| kubectl get nodes,services -A -o json (no chunks) | list both, "
           "print | %.2f | %.1f MiB |\n",
           t_kc_all, (double)kc_rss_all / 1024.0);
  printf("\ncache: %zu Nodes, %zu Services\n",
         store_len(informer_store(ni)), store_len(informer_store(si)));
  informer_free(ni);
  informer_free(si);
  rc = 0;
fail:
  kube_client_free(kc);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  unlink(kubeconfig);
  rmdir(dir);
  return rc;
}
