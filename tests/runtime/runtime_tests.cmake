# The runc backend end to end (root, runc, CNI, docker-registry): label runc.
add_library(runtime_fixture STATIC ${CMAKE_CURRENT_LIST_DIR}/runtime_fixture.cpp)
target_include_directories(runtime_fixture PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(runtime_fixture PUBLIC mercato_runtime runtime_test_fixtures)

mercato_test(runtime_tests SOURCES ${CMAKE_CURRENT_LIST_DIR}/spec_test.cpp LIBS mercato_runtime)
mercato_test(runc_runtime_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/runc_runtime_test.cpp
  LIBS runtime_fixture mercato_net
  LABELS runc)
add_dependencies(runc_runtime_tests mercato-shim)

mercato_test(runtime_recovery_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/recovery_test.cpp
          ${CMAKE_SOURCE_DIR}/tests/integration/process.cpp
  LIBS runtime_fixture mercato_net
  LABELS runc)
target_include_directories(runtime_recovery_tests PRIVATE ${CMAKE_SOURCE_DIR}/tests/integration)
target_compile_definitions(runtime_recovery_tests PRIVATE
  MERCATOD_PATH="${CMAKE_BINARY_DIR}/bin/mercatod")
add_dependencies(runtime_recovery_tests mercatod mercato-shim)

mercato_test(runc_sandbox_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/sandbox_runtime_test.cpp
  LIBS runtime_fixture mercato_net
  LABELS runc)
add_dependencies(runc_sandbox_tests mercato-shim)
