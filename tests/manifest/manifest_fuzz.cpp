// Fuzz target: parseManifest over arbitrary bytes. It must never crash, and a manifest it
// accepts must survive the JSON round trip unchanged and map to a runtime spec.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "manifest/manifest.hpp"

using namespace mercato::manifest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto m = parseManifest(text, "fuzz.yaml");
  if (!m.isOk()) return 0;
  auto j = toJson(*m);
  // Bundled components lose their local path in JSON; everything else must round-trip.
  auto back = manifestFromJson(j);
  if (!back.isOk() || toJson(*back) != j) {
    std::fprintf(stderr, "manifest_fuzz: JSON round trip failed: %s\n",
                 back.isOk() ? "changed" : back.status().message().c_str());
    std::abort();
  }
  auto spec = toDeploymentSpec(*m, "d1", "owner");
  if (spec.services.size() != m->components.size()) std::abort();
  return 0;
}
