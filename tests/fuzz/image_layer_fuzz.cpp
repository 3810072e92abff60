// Fuzzes layer unpacking: arbitrary bytes applied as a layer to a fresh temp dir (with a lower
// layer's worth of files and a symlink pointing out) must never create anything outside it.
// The sentinel dir beside the rootfs must stay empty, whatever the input.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "runtime/runc/image/unpack.hpp"

namespace fs = std::filesystem;
using namespace mercato::runtime::image;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string base = [] {
    std::string t = (fs::temp_directory_path() / "mercato-layer-fuzz-XXXXXX").string();
    if (!::mkdtemp(t.data())) std::abort();
    return t;
  }();
  std::string rootfs = base + "/rootfs", outside = base + "/outside";
  std::error_code ec;
  fs::remove_all(rootfs, ec);
  fs::remove_all(outside, ec);
  fs::create_directories(rootfs + "/etc");
  fs::create_directories(outside);
  std::ofstream(rootfs + "/etc/passwd") << "root:x:0:0::/:/bin/sh\n";
  fs::create_symlink(outside, rootfs + "/escape");
  fs::create_symlink("../outside", rootfs + "/rel");
  UnpackBudget budget;
  budget.maxBytes = 16 << 20;
  budget.maxEntries = 10000;
  (void)applyLayerBytes(data, size, rootfs, budget, "fuzz layer");
  if (!fs::is_empty(outside)) std::abort();  // wrote through a symlink out of the rootfs
  if (fs::exists(base + "/x") || fs::exists(base + "/etc")) std::abort();
  return 0;
}
