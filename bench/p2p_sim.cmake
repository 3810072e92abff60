# p2p_sim: the discovery simulation at 1k and 10k nodes (tests/p2p/discovery/sim.hpp). Included
# from bench/CMakeLists.txt; needs the simulator library from the tests.
if(TARGET p2p_discovery_sim)
  add_executable(p2p_sim ${CMAKE_CURRENT_LIST_DIR}/p2p_sim.cpp)
  target_link_libraries(p2p_sim PRIVATE p2p_discovery_sim CLI11::CLI11)
endif()
