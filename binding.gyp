{
  "targets": [
    {
      "target_name": "hdmabuf_mem",
      "sources": ["native/mem.c"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lm"]
    }
  ]
}
