// Fuzzes the parsers of registry JSON (manifest, index, image config) and platform selection.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/runc/image/manifest.hpp"

using namespace mercato::runtime::image;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)detectManifestMediaType("", bytes);
  if (auto m = parseManifest(bytes); m.isOk()) (void)serializeManifest(*m);
  if (auto idx = parseIndex(bytes); idx.isOk()) {
    (void)selectPlatform(*idx, Platform{});
    (void)selectPlatform(*idx, Platform{"linux", "arm64", "v8"});
    (void)selectPlatform(*idx, Platform{"linux", "arm", ""});
  }
  if (auto c = parseImageConfig(bytes); c.isOk()) (void)serializeImageConfig(*c);
  return 0;
}
