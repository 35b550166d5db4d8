/*
 * loader.c: open one module file safely (path checks on the open fd), copy it
 * to a private content-addressed path, dlopen that copy and negotiate the ABI.
 * It must not call init or any provider operation: the registry does that.
 */
#include "modules/loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "util/hash.h"
#include "util/log.h"
#include "util/mem.h"

#define LOG_PREFIX "loader"

/* Every 1.0 module has at least the descriptor up to destroy: the fields the
 * host reads unconditionally. Operations past it are optional (NULL or beyond
 * struct_size both mean "not supported"), which is how an older minor with a
 * shorter table is served. */
#define CCM_LOADER_MIN_PROVIDER_SIZE                                         \
  (offsetof(struct ccm_provider, destroy) +                                  \
   sizeof(((struct ccm_provider *)0)->destroy))

#define CCM_LOADER_NAME_MAX 63
#define CCM_LOADER_COPY_TRIES 1000

/* Private copies currently dlopened by this process: a name in this set is
 * never reused, so dlopen always maps a fresh object. */
static pthread_mutex_t loaded_lock = PTHREAD_MUTEX_INITIALIZER;
static char **loaded_paths;
static size_t loaded_n, loaded_cap;

static void loader_err(char *err, size_t errlen, const char *fmt, ...)
    CCM_PRINTF(3, 4);

static void loader_err(char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;

  if (!err || errlen == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* Caller holds loaded_lock. */
static bool loaded_has(const char *path)
{
  for (size_t i = 0; i < loaded_n; i++) {
    if (strcmp(loaded_paths[i], path) == 0)
      return true;
  }
  return false;
}

/* Caller holds loaded_lock. */
static int loaded_add(const char *path)
{
  char *copy;

  if (loaded_n == loaded_cap) {
    size_t cap = loaded_cap ? loaded_cap * 2 : 8;
    char **grown = mem_realloc(loaded_paths, cap * sizeof(*grown));
    if (!grown)
      return -1;
    loaded_paths = grown;
    loaded_cap = cap;
  }
  copy = mem_strdup(path);
  if (!copy)
    return -1;
  loaded_paths[loaded_n++] = copy;
  return 0;
}

static void loaded_remove(const char *path)
{
  pthread_mutex_lock(&loaded_lock);
  for (size_t i = 0; i < loaded_n; i++) {
    if (strcmp(loaded_paths[i], path) == 0) {
      mem_free(loaded_paths[i]);
      loaded_paths[i] = loaded_paths[--loaded_n];
      break;
    }
  }
  if (loaded_n == 0) {
    /* Nothing loaded: give the array back so leak checkers stay quiet. */
    mem_free(loaded_paths);
    loaded_paths = NULL;
    loaded_cap = 0;
  }
  pthread_mutex_unlock(&loaded_lock);
}

static const char *path_basename(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* The directory that holds path ("." for a bare name). */
static int path_dirname(const char *path, char *out, size_t cap)
{
  const char *slash = strrchr(path, '/');
  size_t len;

  if (!slash)
    return snprintf(out, cap, ".") < (int)cap ? 0 : -1;
  len = (size_t)(slash - path);
  if (len == 0)
    len = 1; /* "/x.so" lives in "/" */
  if (len >= cap)
    return -1;
  memcpy(out, path, len);
  out[len] = '\0';
  return 0;
}

/* Open path for reading after the checks of DESIGN section 5, made on the
 * open fd so that the file checked is the file read. */
static int loader_open_checked(const char *path, struct stat *st, char *err,
                               size_t errlen)
{
  struct stat lst, dst;
  char dir[4096];
  uid_t euid = geteuid();
  int fd = -1;

  if (!path || !*path) {
    loader_err(err, errlen, "module: empty path");
    return -1;
  }
  if (lstat(path, &lst) != 0) {
    if (errno == ENOENT)
      loader_err(err, errlen, "module %s: no such file", path);
    else
      loader_err(err, errlen, "module %s: cannot stat: %s", path,
                 strerror(errno));
    return -1;
  }
  if (S_ISLNK(lst.st_mode)) {
    loader_err(err, errlen, "module %s: is a symlink (refused; name the "
               "file itself)", path);
    return -1;
  }
  fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ELOOP)
      loader_err(err, errlen, "module %s: is a symlink (refused; name the "
                 "file itself)", path);
    else if (errno == ENOENT)
      loader_err(err, errlen, "module %s: no such file", path);
    else
      loader_err(err, errlen, "module %s: cannot open: %s", path,
                 strerror(errno));
    return -1;
  }
  if (fstat(fd, st) != 0) {
    loader_err(err, errlen, "module %s: cannot stat: %s", path,
               strerror(errno));
    goto fail;
  }
  if (!S_ISREG(st->st_mode)) {
    loader_err(err, errlen, "module %s: not a regular file", path);
    goto fail;
  }
  if (st->st_mode & (S_IWGRP | S_IWOTH)) {
    loader_err(err, errlen, "module %s: file is writable by group or others "
               "(mode %04o)", path, (unsigned)(st->st_mode & 07777));
    goto fail;
  }
  if (st->st_uid != 0 && st->st_uid != euid) {
    loader_err(err, errlen, "module %s: owned by uid %u, neither root nor "
               "the running user (uid %u)", path, (unsigned)st->st_uid,
               (unsigned)euid);
    goto fail;
  }
  if (path_dirname(path, dir, sizeof(dir)) != 0 || stat(dir, &dst) != 0) {
    loader_err(err, errlen, "module %s: cannot stat its directory", path);
    goto fail;
  }
  if (dst.st_mode & (S_IWGRP | S_IWOTH)) {
    loader_err(err, errlen, "module %s: directory %s is writable by group or "
               "others (mode %04o)", path, dir,
               (unsigned)(dst.st_mode & 07777));
    goto fail;
  }
  return fd;

fail:
  close(fd);
  return -1;
}

int loader_file_hash(const char *path, char out[CCM_HASH_HEX], char *err,
                     size_t errlen)
{
  struct stat st;
  int fd = loader_open_checked(path, &st, err, errlen);
  int rc;

  if (fd < 0)
    return -1;
  rc = hash_fd(fd, out);
  close(fd);
  if (rc != 0) {
    loader_err(err, errlen, "module %s: cannot read: %s", path,
               strerror(errno));
    return -1;
  }
  return 0;
}

/* mkdir -p with 0700 for what it creates; an existing dir is checked. */
static int private_dir_make(const char *dir, char *err, size_t errlen)
{
  char buf[4096];
  size_t len = strlen(dir);
  struct stat st;

  if (len == 0 || len >= sizeof(buf)) {
    loader_err(err, errlen, "module private dir '%s': bad path", dir);
    return -1;
  }
  memcpy(buf, dir, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    buf[i] = '\0';
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
      loader_err(err, errlen, "module private dir %s: %s", buf,
                 strerror(errno));
      return -1;
    }
    if (i < len)
      buf[i] = '/';
  }
  if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    loader_err(err, errlen, "module private dir %s: not a directory", dir);
    return -1;
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    loader_err(err, errlen, "module private dir %s: writable by group or "
               "others (mode %04o)", dir, (unsigned)(st.st_mode & 07777));
    return -1;
  }
  return 0;
}

static int copy_fd(int in, int out, off_t size)
{
  char buf[65536];
  off_t off = 0;

  while (off < size) {
    ssize_t n = pread(in, buf, sizeof(buf), off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(out, buf + done, (size_t)(n - done));
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return -1;
      done += w;
    }
    off += n;
  }
  return 0;
}

/* Create the private copy <dir>/<hash>-<base> (or <hash>-<n>-<base> when
 * that name is loaded already) and record it as loaded. */
static char *private_copy(int fd, const struct stat *st, const char *path,
                          const char *dir, const char *hash, char *err,
                          size_t errlen)
{
  char name[4096];
  char *result = NULL;
  int out = -1;

  pthread_mutex_lock(&loaded_lock);
  for (int i = 0; i < CCM_LOADER_COPY_TRIES && out < 0; i++) {
    int n;
    if (i == 0)
      n = snprintf(name, sizeof(name), "%s/%s-%s", dir, hash,
                   path_basename(path));
    else
      n = snprintf(name, sizeof(name), "%s/%s-%d-%s", dir, hash, i,
                   path_basename(path));
    if (n < 0 || (size_t)n >= sizeof(name)) {
      loader_err(err, errlen, "module %s: private path too long", path);
      goto fail;
    }
    if (loaded_has(name))
      continue;
    out = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
               0700);
    if (out < 0 && errno == EEXIST) {
      /* A stale copy from an earlier process: not mapped by us, replace. */
      if (unlink(name) == 0)
        out = open(name,
                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   0700);
    }
    if (out < 0 && errno != EEXIST) {
      loader_err(err, errlen, "module %s: cannot create private copy %s: %s",
                 path, name, strerror(errno));
      goto fail;
    }
  }
  if (out < 0) {
    loader_err(err, errlen, "module %s: no free private copy name", path);
    goto fail;
  }
  if (copy_fd(fd, out, st->st_size) != 0 || fchmod(out, 0500) != 0) {
    loader_err(err, errlen, "module %s: cannot copy to %s: %s", path, name,
               strerror(errno));
    goto fail_unlink;
  }
  if (close(out) != 0) {
    out = -1;
    loader_err(err, errlen, "module %s: cannot copy to %s: %s", path, name,
               strerror(errno));
    goto fail_unlink;
  }
  out = -1;
  result = mem_strdup(name);
  if (!result || loaded_add(name) != 0) {
    loader_err(err, errlen, "module %s: out of memory", path);
    mem_free(result);
    result = NULL;
    goto fail_unlink;
  }
  pthread_mutex_unlock(&loaded_lock);
  return result;

fail_unlink:
  if (out >= 0)
    close(out);
  out = -1;
  unlink(name);
fail:
  if (out >= 0)
    close(out);
  pthread_mutex_unlock(&loaded_lock);
  return NULL;
}

static bool provider_name_valid(const char *name)
{
  size_t len;

  if (!name)
    return false;
  len = strlen(name);
  if (len < 1 || len > CCM_LOADER_NAME_MAX)
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return false;
  }
  return true;
}

static uint32_t module_caps(const struct module *m)
{
  uint32_t caps = 0;

  if (MODULE_HAS(m, lb_get) && MODULE_HAS(m, lb_ensure) &&
     MODULE_HAS(m, lb_update_hosts) && MODULE_HAS(m, lb_delete))
    caps |= CCM_CAP_LOAD_BALANCER;
  if (MODULE_HAS(m, instance_exists) && MODULE_HAS(m, instance_shutdown) &&
     MODULE_HAS(m, instance_metadata))
    caps |= CCM_CAP_INSTANCES;
  if (MODULE_HAS(m, instance_metadata_batch))
    caps |= CCM_CAP_INSTANCES_BATCH;
  if (MODULE_HAS(m, route_list) && MODULE_HAS(m, route_create) &&
     MODULE_HAS(m, route_delete))
    caps |= CCM_CAP_ROUTES;
  if (MODULE_HAS(m, state_export) || MODULE_HAS(m, state_import))
    caps |= CCM_CAP_STATE;
  return caps;
}

void loader_caps_string(uint32_t caps, char *out, size_t cap)
{
  static const struct {
    uint32_t bit;
    const char *name;
  } names[] = {
    {CCM_CAP_LOAD_BALANCER, "lb"},
    {CCM_CAP_INSTANCES, "instances"},
    {CCM_CAP_INSTANCES_BATCH, "instances-batch"},
    {CCM_CAP_ROUTES, "routes"},
    {CCM_CAP_STATE, "state"},
  };
  size_t used = 0;

  if (!out || cap == 0)
    return;
  out[0] = '\0';
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    int n;
    if (!(caps & names[i].bit))
      continue;
    n = snprintf(out + used, cap - used, "%s%s", used ? "," : "",
                 names[i].name);
    if (n < 0 || (size_t)n >= cap - used)
      return; /* truncated, still terminated */
    used += (size_t)n;
  }
  if (used == 0)
    snprintf(out, cap, "none");
}

/* Call the entry symbol and check what it declared, major first. */
static int module_negotiate(struct module *m, char *err, size_t errlen)
{
  struct ccm_entry entry;
  ccm_entry_fn *fn;
  void *sym;
  const struct ccm_provider *p;
  int rc;

  dlerror();
  sym = dlsym(m->dl, CCM_ENTRY_SYMBOL);
  if (!sym) {
    loader_err(err, errlen, "module %s: no entry symbol %s", m->path,
               CCM_ENTRY_SYMBOL);
    return -1;
  }
  /* POSIX guarantees data and function pointers convert for dlsym. */
  memcpy(&fn, &sym, sizeof(fn));

  memset(&entry, 0, sizeof(entry));
  entry.struct_size = sizeof(entry);
  entry.host_abi_major = CCM_ABI_MAJOR;
  entry.host_abi_minor = CCM_ABI_MINOR;
  rc = fn(&entry);
  if (entry.module_abi_major != CCM_ABI_MAJOR) {
    loader_err(err, errlen, "module %s: ABI major %u differs: module ABI "
               "%u.%u, host ABI %d.%d", m->path, entry.module_abi_major,
               entry.module_abi_major, entry.module_abi_minor, CCM_ABI_MAJOR,
               CCM_ABI_MINOR);
    return -1;
  }
  if (rc != CCM_OK) {
    loader_err(err, errlen, "module %s: entry %s returned status %d, not OK",
               m->path, CCM_ENTRY_SYMBOL, rc);
    return -1;
  }
  m->abi_major = entry.module_abi_major;
  m->abi_minor = entry.module_abi_minor;
  p = entry.provider;
  if (!p) {
    loader_err(err, errlen, "module %s: entry returned no provider", m->path);
    return -1;
  }
  if (p->struct_size < CCM_LOADER_MIN_PROVIDER_SIZE) {
    loader_err(err, errlen, "module %s: provider struct_size %u is smaller "
               "than the ABI 1.0 minimum %zu", m->path, p->struct_size,
               (size_t)CCM_LOADER_MIN_PROVIDER_SIZE);
    return -1;
  }
  m->provider = p;
  m->provider_size = p->struct_size < sizeof(struct ccm_provider)
                         ? p->struct_size
                         : sizeof(struct ccm_provider);
  if (!provider_name_valid(p->name)) {
    loader_err(err, errlen, "module %s: provider name is missing or invalid "
               "(want [a-z0-9-], 1 to %d characters)", m->path,
               CCM_LOADER_NAME_MAX);
    return -1;
  }
  if (!MODULE_HAS(m, init) || !MODULE_HAS(m, destroy)) {
    loader_err(err, errlen, "module %s: provider %s has no init or destroy",
               m->path, p->name);
    return -1;
  }
  if (p->thread_safety != CCM_THREAD_SERIAL &&
     p->thread_safety != CCM_THREAD_SAFE) {
    loader_err(err, errlen, "module %s: provider %s declares unknown thread "
               "safety %u", m->path, p->name, p->thread_safety);
    return -1;
  }
  m->capabilities = module_caps(m);
  return 0;
}

static void module_log_loaded(const struct module *m)
{
  char caps[128];
  const char *rel = "same minor";

  if (m->abi_minor != CCM_ABI_MINOR)
    rel = m->abi_minor > CCM_ABI_MINOR
              ? "newer minor: the host reads only what it knows"
              : "older minor: served with its own table";
  loader_caps_string(m->capabilities, caps, sizeof(caps));
  log_msg(CCM_LOG_INFO, LOG_PREFIX,
          "module %s: provider %s %s, module ABI %u.%u, host ABI %d.%d (%s), "
          "provider size %zu, %s, caps %s, sha256 %.12s", m->path,
          m->provider->name, m->provider->version ? m->provider->version : "?",
          m->abi_major, m->abi_minor, CCM_ABI_MAJOR, CCM_ABI_MINOR, rel,
          m->provider_size,
          m->provider->thread_safety == CCM_THREAD_SAFE ? "thread-safe"
                                                         : "serial",
          caps, m->hash);
}

int loader_open(const char *path, const char *private_dir,
                struct module **out, char *err, size_t errlen)
{
  struct module *m = NULL;
  struct stat st;
  int fd = -1;

  if (err && errlen)
    err[0] = '\0';
  *out = NULL;
  fd = loader_open_checked(path, &st, err, errlen);
  if (fd < 0)
    return -1;
  m = mem_calloc(1, sizeof(*m));
  if (!m) {
    loader_err(err, errlen, "module %s: out of memory", path);
    goto fail;
  }
  m->path = mem_strdup(path);
  if (!m->path) {
    loader_err(err, errlen, "module %s: out of memory", path);
    goto fail;
  }
  if (hash_fd(fd, m->hash) != 0) {
    loader_err(err, errlen, "module %s: cannot read: %s", path,
               strerror(errno));
    goto fail;
  }
  if (private_dir_make(private_dir, err, errlen) != 0)
    goto fail;
  m->private_path = private_copy(fd, &st, path, private_dir, m->hash, err,
                                 errlen);
  if (!m->private_path)
    goto fail;
  close(fd);
  fd = -1;

  m->dl = dlopen(m->private_path, RTLD_NOW | RTLD_LOCAL);
  if (!m->dl) {
    const char *why = dlerror();
    /* RTLD_NOW turns a missing dependency symbol into a load failure;
     * name it as such rather than as a bad file. */
    bool unresolved = why && strstr(why, "undefined symbol") != NULL;
    loader_err(err, errlen, "module %s: %s (dlopen: %s)", path,
               unresolved ? "unresolved symbol" : "not a loadable object",
               why ? why : "unknown error");
    goto fail;
  }
  if (module_negotiate(m, err, errlen) != 0)
    goto fail;
  module_log_loaded(m);
  *out = m;
  return 0;

fail:
  if (fd >= 0)
    close(fd);
  if (m)
    loader_close(m);
  return -1;
}

void loader_close(struct module *m)
{
  const char *keep = getenv("CCM_NO_DLCLOSE");
  bool still_mapped = false;

  if (!m)
    return;
  if (m->dl) {
    if (!keep || strcmp(keep, "1") != 0)
      dlclose(m->dl);
    else
      still_mapped = true;
    m->dl = NULL;
  }
  if (m->private_path) {
    unlink(m->private_path);
    /* glibc matches dlopen names against mapped objects before opening the
     * file, so a name still mapped must never be handed out again. */
    if (!still_mapped)
      loaded_remove(m->private_path);
    mem_free(m->private_path);
  }
  mem_free(m->path);
  mem_free(m);
}
