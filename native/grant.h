/* The backend's per-entry grant loops (grant.c), added to the addon's exports by mem.c's Init. */
#ifndef HDMABUF_GRANT_H
#define HDMABUF_GRANT_H
#include <node_api.h>

/* Defines grantMap and grantUnmap on `exports`. */
napi_status grant_init(napi_env env, napi_value exports);

#endif
