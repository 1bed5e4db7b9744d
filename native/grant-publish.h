/* The guest's grant publishing loop (grant-publish.c), added to the addon's exports by mem.c's Init. */
#ifndef HDMABUF_GRANT_PUBLISH_H
#define HDMABUF_GRANT_PUBLISH_H
#include <node_api.h>

/* Defines grantPublish on `exports`. */
napi_status grant_publish_init(napi_env env, napi_value exports);

#endif
