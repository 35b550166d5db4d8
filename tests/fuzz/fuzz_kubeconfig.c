/*
 * fuzz_kubeconfig.c: libFuzzer target for host/kube/kubeconfig.c. Parses
 * the input as a kubeconfig from memory with CCM_KUBECONFIG_NO_FILES, so no
 * file (tokenFile, CA, keys) and nothing on the network is ever touched.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kubeconfig.h"
#include "util/log.h"
#include "util/mem.h"

#define FUZZ_KC_PATH "/nonexistent/fuzz/kubeconfig"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_data(const char *d, size_t len)
{
  if (d != NULL && d[len] != '\0')
    abort();
  if (d == NULL && len != 0)
    abort();
}

/* A file field is absolute and, when relative in the input, anchored at
 * the kubeconfig's directory. */
static void check_file(const char *f)
{
  if (f != NULL && f[0] != '/')
    abort();
}

static void check(const struct kube_conn *c)
{
  size_t n;

  if (c->server == NULL || c->server[0] == '\0')
    abort();
  n = strlen(c->server);
  if (c->server[n - 1] == '/')
    abort();
  if (c->source == NULL || strcmp(c->source, FUZZ_KC_PATH) != 0)
    abort();
  check_data(c->ca_data, c->ca_len);
  check_data(c->cert_data, c->cert_len);
  check_data(c->key_data, c->key_len);
  if (c->ca_data != NULL && c->ca_file != NULL)
    abort();
  if ((c->cert_data != NULL || c->cert_file != NULL) !=
      (c->key_data != NULL || c->key_file != NULL))
    abort();
  check_file(c->ca_file);
  check_file(c->cert_file);
  check_file(c->key_file);
  check_file(c->token_file);
  /* NO_FILES: a tokenFile is resolved but never read. */
  if (c->token_file != NULL && c->token != NULL)
    abort();
}

static void run(const char *text, size_t size, const char *context)
{
  static const struct kube_conn zero;
  struct kube_conn c;
  char err[256];
  int rc;

  err[0] = '\0';
  rc = kubeconfig_parse(text, size, FUZZ_KC_PATH, context,
                        CCM_KUBECONFIG_NO_FILES, &c, err, sizeof err);
  if (rc == 0) {
    check(&c);
    /* A static token is registered before anything could print it. */
    if (c.token != NULL && strlen(c.token) >= 4) {
      char line[512];

      memcpy(line, c.token, strlen(c.token) < 500 ? strlen(c.token) : 500);
      line[strlen(c.token) < 500 ? strlen(c.token) : 500] = '\0';
      log_redact(line, sizeof line);
      if (strlen(c.token) < 500 && strstr(line, c.token) != NULL)
        abort();
    }
  } else if (rc != -1 || err[0] == '\0' ||
             memcmp(&c, &zero, sizeof c) != 0) {
    abort();
  }
  kube_conn_clear(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  run((const char *)data, size, NULL);
  /* An explicit --context, as the seeds name their contexts. */
  run((const char *)data, size, "a");
  /* Secrets would otherwise pile up in the log's set across runs. */
  log_secrets_clear();
  return 0;
}
