{
  "targets": [
    {
      "target_name": "vigil_native",
      "sources": ["native/addon.cc", "native/sg_device.cc", "native/peer_cred.cc", "native/heartbeat.cc", "native/distress.cc", "native/distress_set.cc", "native/distress_send.cc", "native/distress_test_hooks.cc", "native/fatal_signals.cc", "native/alt_stack.cc", "native/sd_notify.cc", "native/modem_lines.cc", "native/service_addresses.cc", "native/ipmi_device.cc", "native/watchdog_keeper.cc", "native/reexec.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror"]
    },
    {
      "target_name": "vigil_test_native",
      "sources": ["native/test_receiver.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
