# Build step of mercato_runc_host: embeds seccomp_default.json into a C++ source as a raw string
# literal (seccomp.cpp declares the symbol). Run with -DIN=<json> -DOUT=<cpp>. The JSON is parsed
# here, so a syntax error in the profile fails the build instead of every container start.
file(READ "${IN}" content)
string(JSON kind ERROR_VARIABLE err TYPE "${content}")
if(err)
  message(FATAL_ERROR "${IN}: not valid JSON: ${err}")
endif()
if(NOT kind STREQUAL "OBJECT")
  message(FATAL_ERROR "${IN}: expected a JSON object, got ${kind}")
endif()
string(FIND "${content}" ")mercato_json\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN}: contains the raw-string delimiter )mercato_json\"")
endif()
file(WRITE "${OUT}.tmp"
  "// Generated from ${IN} by seccomp_embed.cmake; do not edit.\n"
  "namespace mercato::runtime::host::detail {\n"
  "extern const char kSeccompDefaultJson[];\n"
  "const char kSeccompDefaultJson[] = R\"mercato_json(${content})mercato_json\";\n"
  "}  // namespace mercato::runtime::host::detail\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
