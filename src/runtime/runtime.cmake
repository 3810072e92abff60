# mercato_runtime: the Runtime interface, the backend table and the runc backend's
# orchestration (the image store and host primitives are their own libraries).
add_library(mercato_runtime
  ${CMAKE_CURRENT_LIST_DIR}/runtime.cpp
  ${CMAKE_CURRENT_LIST_DIR}/spec_json.cpp
  ${CMAKE_CURRENT_LIST_DIR}/service.cpp
  ${CMAKE_CURRENT_LIST_DIR}/runc/state_store.cpp
  ${CMAKE_CURRENT_LIST_DIR}/runc/runc_runtime.cpp
  ${CMAKE_CURRENT_LIST_DIR}/runc/exec.cpp
  ${CMAKE_CURRENT_LIST_DIR}/runc/lifecycle.cpp)
target_link_libraries(mercato_runtime PUBLIC mercato_common mercato_crypto mercato_image
  mercato_runc_host mercato_net SQLiteCpp nlohmann_json::nlohmann_json)
