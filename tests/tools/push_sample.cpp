// mercato-push-sample REGISTRY REPO:TAG — builds the sample image (busybox + the project's
// static sample HTTP server, see tests/runtime/image/fixtures) and pushes it to REGISTRY through
// the project's registry client. `make demo` uses it to fill its loopback docker-registry.
#include <cstdio>

#include "fixtures.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: mercato-push-sample REGISTRY_HOST:PORT REPO:TAG\n");
    return 2;
  }
  auto ref = mercato::testing::pushSampleImageTo(argv[1], argv[2]);
  if (!ref.isOk()) {
    std::fprintf(stderr, "mercato-push-sample: %s\n", ref.status().message().c_str());
    return 1;
  }
  std::printf("%s\n", ref->c_str());
  return 0;
}
