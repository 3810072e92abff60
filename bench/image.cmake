# image_pull: pull + unpack throughput of the image store against a local docker-registry,
# with `tar -xzf` of the same layer as the reference. Needs the test fixtures (registry process,
# layout writer), so it is only built with the tests.
if(TARGET runtime_test_fixtures)
  add_executable(image_pull ${CMAKE_CURRENT_LIST_DIR}/image_pull.cpp)
  target_link_libraries(image_pull PRIVATE mercato_image runtime_test_fixtures)
endif()
