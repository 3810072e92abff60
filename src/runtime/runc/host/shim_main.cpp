// mercato-shim: the per-container supervisor started by startContainer() (see shim.hpp).
// Usage: mercato-shim [--sync-fd N] --options '<ShimOptions JSON>'
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/runc/host/shim.hpp"

int main(int argc, char** argv) {
  int syncFd = -1;
  std::string options;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--sync-fd") && i + 1 < argc)
      syncFd = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--options") && i + 1 < argc)
      options = argv[++i];
    else {
      std::fprintf(stderr, "usage: mercato-shim [--sync-fd N] --options JSON\n");
      return 2;
    }
  }
  auto o = mercato::runtime::host::shimOptionsFromJson(options);
  if (!o) {
    std::fprintf(stderr, "mercato-shim: %s\n", o.status().toString().c_str());
    return 2;
  }
  return mercato::runtime::host::runShim(*o, syncFd);
}
