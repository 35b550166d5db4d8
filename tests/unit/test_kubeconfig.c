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

/* kubeconfig_parse reads from memory (no NUL needed) and, with NO_FILES,
 * records a tokenFile without opening it. */
static void test_parse_buffer_no_files(void **state)
{
  struct kube_conn c;
  char tok[512], kcpath[512], err[256];
  char text[600];
  int n;

  (void)state;
  write_file("buftok", "buffer-file-token\n", tok, sizeof tok);
  snprintf(kcpath, sizeof kcpath, "%s/kcbuf", dir);
  n = snprintf(text, sizeof text,
               "current-context: a\n"
               "clusters: [{name: c, cluster: {server: https://x/}}]\n"
               "contexts: [{name: a, context: {cluster: c, user: u}}]\n"
               "users: [{name: u, user: {tokenFile: buftok}}]\n"
               "GARBAGE-AFTER-LEN: [");
  assert_true(n > 0);
  /* Only the first len bytes count: the unclosed flow after them is
   * never seen. */
  assert_int_equal(kubeconfig_parse(text, (size_t)(strstr(text, "GARBAGE") -
                                                   text),
                                    kcpath, NULL, CCM_KUBECONFIG_NO_FILES, &c,
                                    err, sizeof err), 0);
  assert_string_equal(c.server, "https://x");
  assert_string_equal(c.token_file, tok);
  assert_null(c.token);
  assert_string_equal(c.source, kcpath);
  kube_conn_clear(&c);

  /* Without the flag the file is read. */
  assert_int_equal(kubeconfig_parse(text, (size_t)(strstr(text, "GARBAGE") -
                                                   text),
                                    kcpath, NULL, 0, &c, err, sizeof err), 0);
  assert_string_equal(c.token, "buffer-file-token");
  kube_conn_clear(&c);

  /* The whole text is malformed YAML; the error names the path. */
  assert_int_equal(kubeconfig_parse(text, strlen(text), kcpath, NULL,
                                    CCM_KUBECONFIG_NO_FILES, &c, err,
                                    sizeof err), -1);
  assert_non_null(strstr(err, kcpath));
  assert_non_null(strstr(err, "YAML error"));
  assert_null(c.server);

  /* Empty input is not a kubeconfig. */
  assert_int_equal(kubeconfig_parse("", 0, kcpath, NULL,
                                    CCM_KUBECONFIG_NO_FILES, &c, err,
                                    sizeof err), -1);
  assert_non_null(strstr(err, "not a kubeconfig"));
}

/* Found by fuzz_kubeconfig: a quoted empty server (or "/") was accepted
 * and left server "" (corpus: crash_empty_server.yaml). */
static void test_empty_server(void **state)
{
  static const char *const servers[] = {"\"\"", "''", "/", "'///'"};
  struct kube_conn c;
  char text[256], err[256];
  size_t i;
  int n;

  (void)state;
  for (i = 0; i < sizeof servers / sizeof servers[0]; i++) {
    n = snprintf(text, sizeof text,
                 "current-context: a\n"
                 "clusters: [{name: c, cluster: {server: %s}}]\n"
                 "contexts: [{name: a, context: {cluster: c}}]\n",
                 servers[i]);
    assert_true(n > 0 && (size_t)n < sizeof text);
    assert_int_equal(kubeconfig_parse(text, (size_t)n, "/x/kc", NULL,
                                      CCM_KUBECONFIG_NO_FILES, &c, err,
                                      sizeof err), -1);
    assert_non_null(strstr(err, "empty server"));
    assert_null(c.server);
  }
}

/* '=' is padding only at the end; EVP_DecodeBlock alone would read it
 * anywhere as zero bits and accept "=AAA" or "AB=C". */
static void test_base64_padding(void **state)
{
  static const char *const bad[] = {"=AAA", "AB=C", "A===", "====",
                                    "AAAA====", "AA=A", "QQ==QQ=="};
  size_t n, i;
  char *s;

  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    s = kubeconfig_base64_decode(bad[i], &n);
    if (s != NULL)
      fail_msg("\"%s\" decoded to %zu bytes", bad[i], n);
  }
  s = kubeconfig_base64_decode("QQ==", &n);
  assert_non_null(s);
  assert_int_equal(n, 1);
  assert_string_equal(s, "A");
  mem_free(s);
  s = kubeconfig_base64_decode("QUI=", &n);
  assert_non_null(s);
  assert_int_equal(n, 2);
  assert_string_equal(s, "AB");
  mem_free(s);
}

/* A token becomes "Authorization: Bearer <token>": CR/LF in it would
 * inject headers. Refused, and the error does not show the token. */
static void test_token_control_chars(void **state)
{
  struct kube_conn c;
  char path[512], tok[512], err[256];
  char *t;

  (void)state;
  write_file("kcctl", HEAD
             "current-context: a\n"
             "clusters:\n- name: c\n  cluster: {server: https://x}\n"
             "contexts:\n- name: a\n  context: {cluster: c, user: u}\n"
             "users:\n- name: u\n"
             "  user: {token: \"CANARY-ctl-tok\\r\\nX-Evil: 1\"}\n",
             path, sizeof path);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), -1);
  assert_non_null(strstr(err, "control character"));
  assert_null(strstr(err, "CANARY"));
  assert_null(c.token);

  write_file("ctltok", "CANARY-file-tok\nX-Evil: 1\n", tok, sizeof tok);
  t = kubeconfig_read_token(tok, err, sizeof err);
  assert_null(t);
  assert_non_null(strstr(err, "control character"));
  assert_null(strstr(err, "CANARY"));

  /* Surrounding whitespace is still trimmed, not refused. */
  write_file("oktok", "\t ok-token-1 \r\n", tok, sizeof tok);
  t = kubeconfig_read_token(tok, err, sizeof err);
  assert_non_null(t);
  assert_string_equal(t, "ok-token-1");
  mem_free(t);
}

/* A user that only has an exec plugin, an auth-provider or basic auth
 * would reach the server anonymously: refused at start, naming it; with a
 * token as well, the token is used and the rest ignored. */
static void test_unsupported_auth_named(void **state)
{
  static const char *const users[] = {
    "  user: {exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}}\n",
    "  user: {auth-provider: {name: oidc}}\n",
    "  user: {username: admin, password: CANARY-basic-pw}\n",
  };
  static const char *const names[] = {"\"exec\"", "\"auth-provider\"",
                                      "\"username\""};
  struct kube_conn c;
  char path[512], text[1024], err[256];

  (void)state;
  for (size_t i = 0; i < 3; i++) {
    snprintf(text, sizeof text, HEAD
             "current-context: a\n"
             "clusters:\n- name: c\n  cluster: {server: https://x}\n"
             "contexts:\n- name: a\n  context: {cluster: c, user: u}\n"
             "users:\n- name: u\n%s", users[i]);
    write_file("kcunsup", text, path, sizeof path);
    assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, names[i]));
    assert_non_null(strstr(err, "does not support"));
    assert_null(strstr(err, "CANARY"));
  }
  write_file("kcunsup", HEAD
             "current-context: a\n"
             "clusters:\n- name: c\n  cluster: {server: https://x}\n"
             "contexts:\n- name: a\n  context: {cluster: c, user: u}\n"
             "users:\n- name: u\n"
             "  user: {token: tok-1234, exec: {command: aws}}\n",
             path, sizeof path);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), 0);
  assert_string_equal(c.token, "tok-1234");
  kube_conn_clear(&c);
}

/* The client logs the server URL: credentials in it are registered. */
static void test_server_userinfo_registered(void **state)
{
  struct kube_conn c;
  char path[512], err[256], line[300];

  (void)state;
  write_file("kcui", HEAD
             "current-context: a\n"
             "clusters:\n- name: c\n"
             "  cluster: {server: 'https://admin:CANARY-pw-1@10.0.0.1:6443/'}\n"
             "contexts:\n- name: a\n  context: {cluster: c}\n",
             path, sizeof path);
  assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), 0);
  snprintf(line, sizeof line, "API server %s, password CANARY-pw-1",
           c.server);
  log_redact(line, sizeof line);
  assert_null(strstr(line, "CANARY"));
  assert_non_null(strstr(line, "10.0.0.1:6443"));
  kube_conn_clear(&c);

  assert_int_equal(kubeconfig_resolve(NULL, NULL,
                                      "http://CANARY-tok-2@127.0.0.1:1/",
                                      &c, err, sizeof err), 0);
  snprintf(line, sizeof line, "API server %s", c.server);
  log_redact(line, sizeof line);
  assert_null(strstr(line, "CANARY"));
  kube_conn_clear(&c);
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
      cmocka_unit_test(test_parse_buffer_no_files),
      cmocka_unit_test(test_empty_server),
      cmocka_unit_test(test_base64_padding),
      cmocka_unit_test(test_token_control_chars),
    cmocka_unit_test(test_unsupported_auth_named),
      cmocka_unit_test(test_server_userinfo_registered),
  };

  return cmocka_run_group_tests(tests, setup, teardown);
}
