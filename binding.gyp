{
  "targets": [
    {
      "target_name": "hdmabuf_mem",
      "sources": ["native/mem.c", "native/grant.c", "native/runs.c", "native/grant-publish.c", "native/view.cc"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_c": ["-std=c11"],
      "cflags_cc": ["-std=c++17"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lm"]
    }
  ]
}
