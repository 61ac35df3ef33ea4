{
  "targets": [
    {
      "target_name": "megapipe",
      "sources": ["native/addon.c", "native/ring.c", "native/loop.c", "native/sockets.c"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-Wno-cast-function-type"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["native/addon.c", "native/ring.c", "native/loop.c", "native/sockets.c"], "sources": ["native/unsupported.c"] }]
      ]
    }
  ]
}
