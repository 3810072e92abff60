# Bid engine benchmark (order -> first bid latency, evaluation throughput) on the embedded
# ledger in process. Included from bench/CMakeLists.txt; shares the test harness.
add_executable(bidengine_bench ${CMAKE_CURRENT_LIST_DIR}/bidengine_bench.cpp)
target_include_directories(bidengine_bench PRIVATE ${CMAKE_SOURCE_DIR}/tests/provider/bidengine)
target_link_libraries(bidengine_bench PRIVATE mercato_bidengine CLI11::CLI11)
