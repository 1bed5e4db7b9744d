/* Run records of packed arrays (runs.c), added to the addon's exports by mem.c's Init. */
#ifndef HDMABUF_RUNS_H
#define HDMABUF_RUNS_H
#include <node_api.h>

/* Defines encodeRuns and expandRuns on `exports`. */
napi_status runs_init(napi_env env, napi_value exports);

#endif
