# Facade benchmark (wrk direct vs facade vs nginx; memory per route). Included from
# bench/CMakeLists.txt.
add_executable(facade_bench ${CMAKE_CURRENT_LIST_DIR}/facade_bench.cpp)
target_link_libraries(facade_bench PRIVATE mercato_facade mercato_net CLI11::CLI11)
