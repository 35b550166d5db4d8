/*
 * log.h: the host's one logging path. Every line, the host's and each
 * module's, goes through log_msg, which prefixes, levels and redacts it.
 * It owns the secret set; it must never print a registered secret.
 */
#ifndef CCM_LOG_H
#define CCM_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include "ccm_provider.h" /* enum ccm_log_level */

/* Lines above this level are dropped. Default CCM_LOG_INFO. */
void log_set_level(int level);
int log_get_level(void);

/* Parse "error|warn|info|debug"; returns -1 when unknown. */
int log_level_parse(const char *name);

/* One line: "<UTC time> <LEVEL> [<prefix>] <message>\n" to the sink
 * (stderr by default). Registered secrets are replaced by "[REDACTED]". */
void log_msg(int level, const char *prefix, const char *fmt, ...)
    CCM_PRINTF(3, 4);
void log_vmsg(int level, const char *prefix, const char *fmt, va_list ap)
    CCM_PRINTF(3, 0);

/* Register a secret (copied; values shorter than 4 bytes are ignored, as
 * redacting them would mangle ordinary text). Thread-safe. */
void log_secret_add(const char *secret);
/* Redact every registered secret in buf (NUL-terminated, capacity cap). */
void log_redact(char *buf, size_t cap);
/* Format into buf (capacity cap) and redact every registered secret; a
 * secret cut by truncation is redacted too. For text that leaves the host
 * by another path than the log (call errors, Events). */
void log_vformat(char *buf, size_t cap, const char *fmt, va_list ap)
    CCM_PRINTF(3, 0);
/* log_vformat for text that needs no formatting: copy, cut, redact. */
void log_copy_redacted(char *buf, size_t cap, const char *text);
/* Drop all secrets (tests and shutdown). */
void log_secrets_clear(void);

/* Tests capture lines: the sink receives the final, redacted line (without
 * the trailing newline). NULL restores stderr. */
typedef void log_sink_fn(int level, const char *line, void *ud);
void log_set_sink(log_sink_fn *fn, void *ud);

#endif
