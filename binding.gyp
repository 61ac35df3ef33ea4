{
  "targets": [
    {
      "target_name": "megapipe",
      "sources": ["native/megapipe.c"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-Wno-cast-function-type"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["native/megapipe.c"], "sources": ["native/unsupported.c"] }]
      ]
    }
  ]
}
