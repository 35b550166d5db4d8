/*
 * test_kubeconfig.c: unit tests of host/kube/kubeconfig.c: every
 * kubeconfig variant (token, tokenFile, client cert/key files and -data,
 * CA file and -data, insecure, contexts), in-cluster, --master, and the
 * errors (missing context, malformed YAML with its line). Files live in a
 * private temp dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kube/kubeconfig.h"
#include "util/log.h"
#include "util/mem.h"

static char dir[256];

static void write_file(const char *name, const char *text, char *path,
                       size_t len)
{
  FILE *f;

  snprintf(path, len, "%s/%s", dir, name);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int setup(void **state)
{
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/ccm-kubeconfig-XXXXXX");
  if (mkdtemp(dir) == NULL)
    return -1;
  return 0;
}

static int teardown(void **state)
{
  char cmd[300];

  (void)state;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    return -1;
  log_secrets_clear();
  return 0;
}

#define HEAD                                                              \
  "apiVersion: v1\nkind: Config\n"

static void test_token_and_ca_file(void **state)
{
  struct kube_conn c;
  char path[512], err[256], expect[512];

  (void)state;
  write_file("kc1", HEAD
             "current-context: one\n"
             "clusters:\n"
             "- name: c1\n"
             "  cluster:\n"
             "    server: https://127.0.0.1:6443/\n"
             "    certificate-authority: pki/ca.crt\n"
             "contexts:\n"
             "- name: one\n"
             "  context: {cluster: c1, user: u1, namespace: kube-system}\n"
             "users:\n"
             "- name: u1\n"
             "  user:\n"
             "    token: abc-static-token\n",
             path, sizeof path);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), 0);
  assert_string_equal(c.server, "https://127.0.0.1:6443");
  snprintf(expect, sizeof expect, "%s/pki/ca.crt", dir);
  assert_string_equal(c.ca_file, expect);
  assert_null(c.ca_data);
  assert_false(c.insecure);
  assert_string_equal(c.token, "abc-static-token");
  assert_null(c.token_file);
  assert_string_equal(c.ns, "kube-system");
  assert_null(c.cert_file);
  assert_null(c.key_data);
  kube_conn_clear(&c);
}

static void test_token_file_and_data(void **state)
{
  struct kube_conn c;
  char path[512], tok[512], err[256];

  (void)state;
  write_file("tok", "  file-token-123\n", tok, sizeof tok);
  /* "CA-PEM" / "CERT-PEM" / "KEY-PEM" in base64 */
  write_file("kc2", HEAD
             "current-context: two\n"
             "clusters:\n"
             "- name: c2\n"
             "  cluster:\n"
             "    server: https://10.0.0.1\n"
             "    certificate-authority-data: Q0EtUEVN\n"
             "contexts:\n"
             "- name: two\n"
             "  context:\n"
             "    cluster: c2\n"
             "    user: u2\n"
             "users:\n"
             "- name: u2\n"
             "  user:\n"
             "    tokenFile: tok\n"
             "    client-certificate-data: Q0VSVC1QRU0=\n"
             "    client-key-data: S0VZLVBFTQ==\n",
             path, sizeof path);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), 0);
  assert_string_equal(c.token, "file-token-123");
  assert_string_equal(c.token_file, tok);
  assert_int_equal(c.ca_len, 6);
  assert_memory_equal(c.ca_data, "CA-PEM", 6);
  assert_int_equal(c.cert_len, 8);
  assert_string_equal(c.cert_data, "CERT-PEM");
  assert_int_equal(c.key_len, 7);
  assert_string_equal(c.key_data, "KEY-PEM");
  assert_null(c.ns);
  kube_conn_clear(&c);
}

static void test_cert_files_insecure_contexts(void **state)
{
  struct kube_conn c;
  char path[512], err[256];
  static const char kc[] = HEAD
      "current-context: a\n"
      "clusters:\n"
      "- name: ca\n"
      "  cluster: {server: 'https://a.example:443'}\n"
      "- name: cb\n"
      "  cluster:\n"
      "    server: https://b.example:6443\n"
      "    insecure-skip-tls-verify: true\n"
      "contexts:\n"
      "- name: a\n"
      "  context: {cluster: ca, user: ua}\n"
      "- name: b\n"
      "  context: {cluster: cb, user: ub}\n"
      "users:\n"
      "- name: ua\n"
      "  user: {token: token-of-a}\n"
      "- name: ub\n"
      "  user:\n"
      "    client-certificate: /etc/pki/client.crt\n"
      "    client-key: keys/client.key\n";

  (void)state;
  write_file("kc3", kc, path, sizeof path);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), 0);
  assert_string_equal(c.server, "https://a.example:443");
  assert_string_equal(c.token, "token-of-a");
  assert_false(c.insecure);
  kube_conn_clear(&c);

  assert_int_equal(kubeconfig_load(path, "b", &c, err, sizeof err), 0);
  assert_string_equal(c.server, "https://b.example:6443");
  assert_true(c.insecure);
  assert_null(c.token);
  assert_string_equal(c.cert_file, "/etc/pki/client.crt");
  assert_non_null(strstr(c.key_file, "/keys/client.key"));
  assert_true(c.key_file[0] == '/');
  kube_conn_clear(&c);

  assert_int_equal(kubeconfig_load(path, "nope", &c, err, sizeof err), -1);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "context \"nope\" not found"));
}

static void test_errors(void **state)
{
  struct kube_conn c;
  char path[512], err[256];

  (void)state;
  write_file("nocur", HEAD
             "clusters:\n- name: c\n  cluster: {server: https://x}\n"
             "contexts:\n- name: a\n  context: {cluster: c}\n",
             path, sizeof path);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), -1);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "current-context"));
  /* ...but an explicit context works. */
  assert_int_equal(kubeconfig_load(path, "a", &c, err, sizeof err), 0);
  assert_string_equal(c.server, "https://x");
  kube_conn_clear(&c);

  write_file("bad", HEAD
             "current-context: a\n"
             "clusters:\n"
             "- name: c\n"
             "  cluster: {server: https://x\n"
             "contexts: [\n",
             path, sizeof path);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), -1);
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "YAML error"));
  /* The flow mapping opened on line 6 is broken on line 7. */
  assert_true(strstr(err, ":7:") != NULL || strstr(err, ":6:") != NULL);

  write_file("nouser", HEAD
             "current-context: a\n"
             "clusters:\n- name: c\n  cluster: {server: https://x}\n"
             "contexts:\n- name: a\n  context: {cluster: c, user: ghost}\n",
             path, sizeof path);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), -1);
  assert_non_null(strstr(err, "user \"ghost\""));

  write_file("noserver", HEAD
             "current-context: a\n"
             "clusters:\n- name: c\n  cluster: {}\n"
             "contexts:\n- name: a\n  context: {cluster: c}\n",
             path, sizeof path);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), -1);
  assert_non_null(strstr(err, "no server"));

  write_file("badb64", HEAD
             "current-context: a\n"
             "clusters:\n- name: c\n  cluster: {server: https://x, "
             "certificate-authority-data: '!!!'}\n"
             "contexts:\n- name: a\n  context: {cluster: c}\n",
             path, sizeof path);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), -1);
  assert_non_null(strstr(err, "certificate-authority-data"));

  write_file("keyonly", HEAD
             "current-context: a\n"
             "clusters:\n- name: c\n  cluster: {server: https://x}\n"
             "contexts:\n- name: a\n  context: {cluster: c, user: u}\n"
             "users:\n- name: u\n  user: {client-key: k}\n",
             path, sizeof path);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), -1);
  assert_non_null(strstr(err, "without"));

  snprintf(path, sizeof path, "%s/missing", dir);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), -1);
  assert_non_null(strstr(err, path));
}

static void test_json_kubeconfig(void **state)
{
  struct kube_conn c;
  char path[512], err[256];

  (void)state;
  /* kubectl accepts JSON; so does the test double's output. */
  write_file("kc.json",
             "{\"apiVersion\":\"v1\",\"kind\":\"Config\","
             "\"clusters\":[{\"name\":\"d\",\"cluster\":"
             "{\"server\":\"http://127.0.0.1:1234\"}}],"
             "\"users\":[{\"name\":\"d\",\"user\":{\"token\":\"jsontok\"}}],"
             "\"contexts\":[{\"name\":\"d\",\"context\":{\"cluster\":\"d\","
             "\"user\":\"d\",\"namespace\":\"default\"}}],"
             "\"current-context\":\"d\"}",
             path, sizeof path);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), 0);
  assert_string_equal(c.server, "http://127.0.0.1:1234");
  assert_string_equal(c.token, "jsontok");
  kube_conn_clear(&c);
}

static void test_in_cluster_and_master(void **state)
{
  struct kube_conn c;
  char path[512], err[256];

  (void)state;
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  assert_int_equal(kubeconfig_resolve(NULL, NULL, NULL, &c, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));

  write_file("token", "sa-token-xyz\n", path, sizeof path);
  write_file("ca.crt", "PEM\n", path, sizeof path);
  setenv("CCM_SERVICEACCOUNT_DIR", dir, 1);
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  assert_int_equal(kubeconfig_resolve(NULL, NULL, NULL, &c, err, sizeof err),
                   0);
  assert_string_equal(c.server, "https://[fd00::1]:443");
  assert_string_equal(c.token, "sa-token-xyz");
  assert_non_null(strstr(c.token_file, "/token"));
  assert_non_null(strstr(c.ca_file, "/ca.crt"));
  kube_conn_clear(&c);

  /* --master alone: just the URL. */
  assert_int_equal(kubeconfig_resolve(NULL, NULL, "http://127.0.0.1:8080/",
                                      &c, err, sizeof err), 0);
  assert_string_equal(c.server, "http://127.0.0.1:8080");
  assert_null(c.token);
  kube_conn_clear(&c);
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  unsetenv("CCM_SERVICEACCOUNT_DIR");
}

static void test_master_overrides_kubeconfig(void **state)
{
  struct kube_conn c;
  char path[512], err[256];

  (void)state;
  write_file("kcm", HEAD
             "current-context: a\n"
             "clusters:\n- name: c\n  cluster: {server: https://x}\n"
             "contexts:\n- name: a\n  context: {cluster: c, user: u}\n"
             "users:\n- name: u\n  user: {token: tok-m}\n",
             path, sizeof path);
  assert_int_equal(kubeconfig_resolve(path, NULL, "https://override:1",
                                      &c, err, sizeof err), 0);
  assert_string_equal(c.server, "https://override:1");
  assert_string_equal(c.token, "tok-m");
  kube_conn_clear(&c);
}

static void test_secrets_registered(void **state)
{
  struct kube_conn c;
  char path[512], err[256], line[256];

  (void)state;
  write_file("kcs", HEAD
             "current-context: a\n"
             "clusters:\n- name: c\n  cluster: {server: https://x}\n"
             "contexts:\n- name: a\n  context: {cluster: c, user: u}\n"
             "users:\n- name: u\n  user: {token: CANARY-kubeconfig-tok-91,\n"
             "  client-certificate-data: Q0VSVC1QRU0=,\n"
             "  client-key-data: Q0FOQVJZLWtleS1kYXRhLTc3}\n",
             path, sizeof path);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), 0);
  assert_string_equal(c.key_data, "CANARY-key-data-77");
  snprintf(line, sizeof line, "t=%s k=%s b=%s", c.token, c.key_data,
           "Q0FOQVJZLWtleS1kYXRhLTc3");
  log_redact(line, sizeof line);
  assert_null(strstr(line, "CANARY"));
  assert_null(strstr(line, "Q0FOQVJZ"));
  kube_conn_clear(&c);
}

static void test_base64(void **state)
{
  size_t n;
  char *s;

  (void)state;
  s = kubeconfig_base64_decode("aGVs\nbG8=", &n);
  assert_non_null(s);
  assert_int_equal(n, 5);
  assert_string_equal(s, "hello");
  mem_free(s);
  s = kubeconfig_base64_decode("", &n);
  assert_non_null(s);
  assert_int_equal(n, 0);
  mem_free(s);
  assert_null(kubeconfig_base64_decode("abc", &n));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_token_and_ca_file),
      cmocka_unit_test(test_token_file_and_data),
      cmocka_unit_test(test_cert_files_insecure_contexts),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_json_kubeconfig),
      cmocka_unit_test(test_in_cluster_and_master),
      cmocka_unit_test(test_master_overrides_kubeconfig),
      cmocka_unit_test(test_secrets_registered),
      cmocka_unit_test(test_base64),
  };

  return cmocka_run_group_tests(tests, setup, teardown);
}
