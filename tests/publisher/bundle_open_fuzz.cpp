// Fuzz target: the provider's parser of a plain (already opened) bundle, over arbitrary bytes
// as the tar. It must never crash, never write outside its image dir, and leave no image behind
// when it fails.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "publisher/bundle.hpp"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path root =
      fs::temp_directory_path() / ("bundle-open-fuzz-" + std::to_string(getpid()));
  static const std::string imageDir = (root / "images").string();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto r = mercato::bundle::parsePlainBundle(input, imageDir, 1 << 20);
  std::error_code ec;
  if (r.isOk()) {
    for (const auto& [component, path] : r->imagePaths)
      if (fs::path(path).parent_path() != fs::path(imageDir)) {
        std::fprintf(stderr, "bundle_open_fuzz: image written outside the image dir: %s\n",
                     path.c_str());
        std::abort();
      }
  } else if (fs::exists(imageDir) && !fs::is_empty(imageDir, ec)) {
    std::fprintf(stderr, "bundle_open_fuzz: a failed parse left files behind\n");
    std::abort();
  }
  for (const auto& entry : fs::directory_iterator(root, ec))
    if (entry.path() != fs::path(imageDir)) {
      std::fprintf(stderr, "bundle_open_fuzz: unexpected file %s\n", entry.path().c_str());
      std::abort();
    }
  fs::remove_all(imageDir, ec);
  return 0;
}
