/*
 * loader.h: open one module file safely and negotiate its ABI. It refuses
 * unsafe files, copies the file to a private content-addressed path, dlopens
 * it RTLD_NOW|RTLD_LOCAL and reads the provider descriptor. It must not call
 * init or any operation: that is the registry's job.
 */
#ifndef CCM_LOADER_H
#define CCM_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccm_provider.h"
#include "util/hash.h"

struct module {
  void *dl;                   /* dlopen handle */
  char *path;                 /* as configured */
  char *private_path;         /* the copy that was dlopened */
  char hash[CCM_HASH_HEX];    /* content hash of the file */
  uint32_t abi_major, abi_minor;   /* what the module declared */
  const struct ccm_provider *provider; /* static in the module */
  size_t provider_size;       /* min(provider->struct_size, host sizeof) */
  uint32_t capabilities;      /* derived from the non-NULL operations */
};

/* True when the module has operation `field` of struct ccm_provider: the
 * field lies inside the size it declared and is non-NULL. */
#define MODULE_HAS(m, field)                                                 \
  ((m)->provider_size >= offsetof(struct ccm_provider, field) +             \
                             sizeof((m)->provider->field) &&                \
   (m)->provider->field != NULL)

/* Load the file at path. private_dir holds private copies (created 0700 if
 * missing). On refusal returns -1 and one line in err, e.g.
 *   "module /x/ccm-foo.so: ABI major 2 (module 2.0) differs from host 1.0"
 */
int loader_open(const char *path, const char *private_dir,
                struct module **out, char *err, size_t errlen);

/* Hash the file the same way loader_open does, after the same checks. */
int loader_file_hash(const char *path, char out[CCM_HASH_HEX], char *err,
                     size_t errlen);

/* dlclose (skipped when CCM_NO_DLCLOSE=1) and remove the private copy. */
void loader_close(struct module *m);

/* "lb,instances,instances-batch,routes,state" */
void loader_caps_string(uint32_t caps, char *out, size_t cap);

#endif
