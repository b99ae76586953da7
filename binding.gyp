{
  "targets": [
    {
      "target_name": "flannel_native",
      "sources": ["src/native/flannel_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
