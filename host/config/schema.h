/*
 * schema.h: the host config's one schema table (internal to host/config).
 * The table drives type and range checks, defaults, unknown-key errors and
 * docs/configuration.md. It must not load modules or resolve paths.
 */
#ifndef CCM_CONFIG_SCHEMA_H
#define CCM_CONFIG_SCHEMA_H

#include <libconfig.h>
#include <stdarg.h>
#include <stddef.h>

#include "config/config.h"

/* One load in progress: where errors go and what is being filled. */
struct config_ctx {
  const char *path;        /* the file as the caller named it */
  char *err;
  size_t errlen;
  struct host_config *cfg;
};

/* Write "FILE:LINE: KEY: message" into ctx->err, using the line (and the
 * file, for @include) of setting `at`; returns -1 for `return` chaining. */
int config_fail(struct config_ctx *ctx, const config_setting_t *at,
                const char *key, const char *fmt, ...) CCM_PRINTF(4, 5);

/* Check the whole tree under root against the schema and store every
 * scalar (or its default) into ctx->cfg and its providers. Allocates
 * ctx->cfg->providers; string arrays are left to the caller. */
int schema_apply(struct config_ctx *ctx, const config_setting_t *root);

#endif
