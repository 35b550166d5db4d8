/*
 * log.c: formats, levels, redacts and emits every log line of the host and
 * its modules, and owns the registry of secrets. It must never emit a
 * registered secret, not even a piece of one cut by truncation.
 */
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/mem.h"

#define CCM_LOG_LINE_MAX 4096 /* message bytes kept per line */
#define CCM_LOG_HEAD_MAX 384  /* time, level and prefix */
#define CCM_LOG_SECRET_MIN 4

static const char log_marker[] = "[REDACTED]";
static const char log_withheld[] =
    "[message withheld: a secret could not be registered]";

static atomic_int log_level = CCM_LOG_INFO;

static pthread_mutex_t log_sink_lock = PTHREAD_MUTEX_INITIALIZER;
static log_sink_fn *log_sink;
static void *log_sink_ud;

/* The secret set. A failed registration makes redaction fail closed: the
 * message text is withheld until log_secrets_clear. */
static pthread_rwlock_t log_secrets_lock = PTHREAD_RWLOCK_INITIALIZER;
static char **log_secrets;
static size_t *log_secret_lens;
static size_t log_n_secrets;
static size_t log_cap_secrets;
static bool log_secrets_lost;

static const char *const log_level_names[] = {"ERROR", "WARN", "INFO",
                                              "DEBUG"};

static int log_clamp(int level)
{
  if (level < CCM_LOG_ERROR)
    return CCM_LOG_ERROR;
  if (level > CCM_LOG_DEBUG)
    return CCM_LOG_DEBUG;
  return level;
}

void log_set_level(int level)
{
  atomic_store(&log_level, log_clamp(level));
}

int log_get_level(void)
{
  return atomic_load(&log_level);
}

int log_level_parse(const char *name)
{
  static const char *const lower[] = {"error", "warn", "info", "debug"};
  size_t i;

  if (name == NULL)
    return -1;
  for (i = 0; i < sizeof lower / sizeof lower[0]; i++) {
    if (strcasecmp(name, lower[i]) == 0)
      return (int)i;
  }
  if (strcasecmp(name, "warning") == 0)
    return CCM_LOG_WARN;
  return -1;
}

void log_set_sink(log_sink_fn *fn, void *ud)
{
  pthread_mutex_lock(&log_sink_lock);
  log_sink = fn;
  log_sink_ud = ud;
  pthread_mutex_unlock(&log_sink_lock);
}

/* ---- secrets ---------------------------------------------------------- */

static bool log_secret_grow(void)
{
  size_t cap = log_cap_secrets ? 2 * log_cap_secrets : 8;
  char **s;
  size_t *l;

  s = mem_realloc(log_secrets, cap * sizeof *s);
  if (s == NULL)
    return false;
  log_secrets = s;
  l = mem_realloc(log_secret_lens, cap * sizeof *l);
  if (l == NULL)
    return false;
  log_secret_lens = l;
  log_cap_secrets = cap;
  return true;
}

void log_secret_add(const char *secret)
{
  size_t len, i;
  char *copy;

  if (secret == NULL)
    return;
  len = strlen(secret);
  if (len < CCM_LOG_SECRET_MIN)
    return;
  pthread_rwlock_wrlock(&log_secrets_lock);
  for (i = 0; i < log_n_secrets; i++) {
    if (log_secret_lens[i] == len && memcmp(log_secrets[i], secret, len) == 0)
      goto out;
  }
  if (log_n_secrets == log_cap_secrets && !log_secret_grow())
    goto lost;
  copy = mem_strndup(secret, len);
  if (copy == NULL)
    goto lost;
  log_secrets[log_n_secrets] = copy;
  log_secret_lens[log_n_secrets] = len;
  log_n_secrets++;
out:
  pthread_rwlock_unlock(&log_secrets_lock);
  return;
lost:
  log_secrets_lost = true;
  pthread_rwlock_unlock(&log_secrets_lock);
}

void log_secrets_clear(void)
{
  size_t i;

  pthread_rwlock_wrlock(&log_secrets_lock);
  for (i = 0; i < log_n_secrets; i++) {
    /* Wipe before freeing so the secret does not linger in the heap. */
    memset(log_secrets[i], 0, log_secret_lens[i]);
    mem_free(log_secrets[i]);
  }
  mem_free(log_secrets);
  mem_free(log_secret_lens);
  log_secrets = NULL;
  log_secret_lens = NULL;
  log_n_secrets = 0;
  log_cap_secrets = 0;
  log_secrets_lost = false;
  pthread_rwlock_unlock(&log_secrets_lock);
}

/*
 * Redact in[0..n) into out (capacity outcap). Every byte covered by any
 * occurrence of any secret is masked, so overlapping secrets leave no
 * fragment; when the text was truncated, a tail that starts a secret is
 * masked too. Runs of masked bytes become one marker. Caller holds the
 * secrets lock (read). Returns false when nothing needed redacting.
 */
static bool log_redact_into(const char *in, size_t n, bool truncated,
                            unsigned char *mask, char *out, size_t outcap)
{
  size_t i, o = 0;
  bool any = false;

  memset(mask, 0, n);
  for (i = 0; i < log_n_secrets; i++) {
    const char *s = log_secrets[i];
    size_t len = log_secret_lens[i];
    const char *p = in;
    const char *q;

    for (;;) {
      q = strstr(p, s);
      if (q == NULL || (size_t)(q - in) + len > n)
        break;
      memset(mask + (q - in), 1, len);
      any = true;
      p = q + 1;
    }
    if (truncated) {
      size_t k = len - 1 < n ? len - 1 : n;

      for (; k > 0; k--) {
        if (memcmp(in + n - k, s, k) == 0) {
          memset(mask + n - k, 1, k);
          any = true;
          break;
        }
      }
    }
  }
  if (!any)
    return false;
  for (i = 0; i < n && o + 1 < outcap;) {
    if (!mask[i]) {
      out[o++] = in[i++];
      continue;
    }
    while (i < n && mask[i])
      i++;
    if (o + sizeof log_marker > outcap)
      break;
    memcpy(out + o, log_marker, sizeof log_marker - 1);
    o += sizeof log_marker - 1;
  }
  out[o] = '\0';
  return true;
}

/* Redact buf in place; scratch space comes from the stack when it fits. */
static void log_redact_buf(char *buf, size_t cap, bool truncated)
{
  unsigned char mask_stack[CCM_LOG_LINE_MAX + CCM_LOG_HEAD_MAX];
  char out_stack[CCM_LOG_LINE_MAX + CCM_LOG_HEAD_MAX];
  unsigned char *mask = mask_stack;
  char *out = out_stack;
  size_t n;

  if (buf == NULL || cap == 0)
    return;
  n = strnlen(buf, cap - 1);
  buf[n] = '\0';
  pthread_rwlock_rdlock(&log_secrets_lock);
  if (log_secrets_lost) {
    snprintf(buf, cap, "%s", log_withheld);
    goto out;
  }
  if (log_n_secrets == 0)
    goto out;
  if (cap > sizeof out_stack) {
    mask = mem_alloc(n + 1);
    out = mem_alloc(cap);
    if (mask == NULL || out == NULL) {
      snprintf(buf, cap, "%s", log_marker);
      goto out;
    }
  }
  if (log_redact_into(buf, n, truncated, mask, out, cap))
    memcpy(buf, out, strlen(out) + 1);
out:
  pthread_rwlock_unlock(&log_secrets_lock);
  if (mask != mask_stack)
    mem_free(mask);
  if (out != out_stack)
    mem_free(out);
}

void log_redact(char *buf, size_t cap)
{
  log_redact_buf(buf, cap, false);
}

void log_vformat(char *buf, size_t cap, const char *fmt, va_list ap)
{
  int r;

  if (buf == NULL || cap == 0)
    return;
  r = vsnprintf(buf, cap, fmt, ap);
  if (r < 0) {
    buf[0] = '\0';
    return;
  }
  log_redact_buf(buf, cap, (size_t)r >= cap);
}

void log_copy_redacted(char *buf, size_t cap, const char *text)
{
  size_t n;

  if (buf == NULL || cap == 0)
    return;
  n = strlen(text);
  if (n >= cap) {
    memcpy(buf, text, cap - 1);
    buf[cap - 1] = '\0';
  } else {
    memcpy(buf, text, n + 1);
  }
  log_redact_buf(buf, cap, n >= cap);
}

/* ---- lines ------------------------------------------------------------ */

static void log_timestamp(char *out, size_t cap)
{
  struct timespec ts;
  struct tm tm;
  char base[32];

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, cap, "%s.%03ldZ", base, ts.tv_nsec / 1000000L);
}

/* One line per call: control characters would let a message forge lines. */
static void log_flatten(char *s)
{
  for (; *s; s++) {
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      *s = ' ';
  }
}

void log_vmsg(int level, const char *prefix, const char *fmt, va_list ap)
{
  char msg[CCM_LOG_LINE_MAX];
  char line[CCM_LOG_LINE_MAX + CCM_LOG_HEAD_MAX];
  char ts[40];
  bool truncated;
  int r;

  level = log_clamp(level);
  if (fmt == NULL || level > atomic_load(&log_level))
    return;
  r = vsnprintf(msg, sizeof msg, fmt, ap);
  if (r < 0)
    snprintf(msg, sizeof msg, "(unformattable log message)");
  truncated = r >= (int)sizeof msg;
  log_timestamp(ts, sizeof ts);
  r = snprintf(line, sizeof line, "%s %s [%s] %s", ts, log_level_names[level],
               prefix ? prefix : "host", msg);
  if (r >= (int)sizeof line)
    truncated = true;
  log_redact_buf(line, sizeof line, truncated);
  log_flatten(line);

  /* Held across the write so that lines from threads never interleave. */
  pthread_mutex_lock(&log_sink_lock);
  if (log_sink != NULL)
    log_sink(level, line, log_sink_ud);
  else
    fprintf(stderr, "%s\n", line);
  pthread_mutex_unlock(&log_sink_lock);
}

void log_msg(int level, const char *prefix, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  log_vmsg(level, prefix, fmt, ap);
  va_end(ap);
}
