/*
 * kubeconfig.h: where the API server is and how to authenticate to it, from
 * a kubeconfig file (libyaml), the in-cluster service account, or --master.
 * It reads files and registers every secret with the log; it does no I/O
 * on the network and never logs a token, key or certificate.
 */
#ifndef CCM_KUBE_KUBECONFIG_H
#define CCM_KUBE_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* Default service-account directory; CCM_SERVICEACCOUNT_DIR overrides it. */
#define CCM_KUBECONFIG_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* One resolved connection. Files are absolute or relative to the process;
 * *_data are decoded (PEM) and NUL-terminated, len excludes the NUL. */
struct kube_conn {
  char *server;       /* "https://host:port" (no trailing slash) */
  char *ca_file;
  char *ca_data;
  size_t ca_len;
  bool insecure;      /* insecure-skip-tls-verify */
  char *cert_file;
  char *cert_data;
  size_t cert_len;
  char *key_file;
  char *key_data;
  size_t key_len;
  char *token;        /* static token, or the token file's content */
  char *token_file;   /* re-read by the client; NULL for a static token */
  char *ns;           /* the context's namespace, NULL if unset */
  char *source;       /* the file (or "in-cluster") the settings came from */
};

/* Load path, pick context (NULL: current-context) and resolve cluster and
 * user. Returns 0, or -1 with one line in err that names the file and,
 * for YAML errors, the line. */
int kubeconfig_load(const char *path, const char *context,
                    struct kube_conn *out, char *err, size_t errlen);

/* kubeconfig_parse flags. NO_FILES: read no file the kubeconfig names
 * (tokenFile is resolved into token_file but not read, token stays NULL);
 * for fuzzing and checks of untrusted text. The other referenced files
 * (CA, client cert and key) are never read here, only by the client. */
#define CCM_KUBECONFIG_NO_FILES 0x1u

/* Parse a kubeconfig held in memory: text[0..len) (need not be
 * NUL-terminated), path names it in errors and anchors relative paths.
 * Otherwise as kubeconfig_load; out->source is a copy of path. */
int kubeconfig_parse(const char *text, size_t len, const char *path,
                     const char *context, unsigned flags,
                     struct kube_conn *out, char *err, size_t errlen);

/* In-cluster: KUBERNETES_SERVICE_HOST/_PORT, token and ca.crt from the
 * service-account directory. Returns 0 or -1 with err. */
int kubeconfig_in_cluster(struct kube_conn *out, char *err, size_t errlen);

/* Resolve like client-go's BuildConfigFromFlags: kubeconfig when given,
 * else in-cluster when master is NULL, else master alone; master, when
 * given, overrides the server URL. */
int kubeconfig_resolve(const char *kubeconfig, const char *context,
                       const char *master, struct kube_conn *out,
                       char *err, size_t errlen);

/* Read a token file: whitespace-trimmed, registered as a log secret.
 * Returns a mem_* string or NULL (err filled). */
char *kubeconfig_read_token(const char *path, char *err, size_t errlen);

/* Decode standard base64 (whitespace ignored) into a NUL-terminated mem_*
 * buffer. Returns NULL on bad input. */
char *kubeconfig_base64_decode(const char *in, size_t *outlen);

void kube_conn_clear(struct kube_conn *c);

#endif
