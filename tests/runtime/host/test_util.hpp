// Helpers shared by the host-primitive tests: temp dirs, unique names for containers, netns and
// bridges (tests run in parallel with other suites), a busybox rootfs, and root/runc checks.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "common/subprocess.hpp"

namespace mercato::runtime::host::testing {

inline std::string randomHex(int n) {
  static std::mt19937_64 rng{std::random_device{}()};
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < n; ++i) s += digits[rng() % 16];
  return s;
}

// "mct-<8 hex>": unique per call, 12 chars (fits a 15-char interface name).
inline std::string uniqueName(const std::string& prefix = "mct-") { return prefix + randomHex(8); }

// A fresh directory under /tmp, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() / ("mercato-host-" + randomHex(12));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path() const { return path_.string(); }
  std::string operator/(const std::string& rel) const { return (path_ / rel).string(); }

 private:
  std::filesystem::path path_;
};

inline void writeFile(const std::string& path, const std::string& data) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Why the runc tests can't run here, or "" when they can.
inline std::string runcUnavailableReason() {
  if (geteuid() != 0) return "needs root";
  if (access("/usr/sbin/runc", X_OK) != 0) return "needs /usr/sbin/runc (apt-get install runc)";
  if (access("/usr/bin/busybox", X_OK) != 0)
    return "needs /usr/bin/busybox (apt-get install busybox-static)";
  return "";
}

// A minimal rootfs: static busybox with a symlink per applet, /etc/passwd and /etc/group with
// root, nobody and an "app" user (uid 1000) in groups app and extra.
inline void buildBusyboxRootfs(const std::string& rootfs) {
  namespace fs = std::filesystem;
  for (const char* d : {"bin", "etc", "proc", "dev", "sys", "tmp", "root", "var/www"})
    fs::create_directories(fs::path(rootfs) / d);
  // runc gives a tmpfs the mode of the directory it covers, as images do: world-writable.
  fs::permissions(fs::path(rootfs) / "tmp", fs::perms::all | fs::perms::sticky_bit);
  fs::copy_file("/usr/bin/busybox", rootfs + "/bin/busybox", fs::copy_options::overwrite_existing);
  ProcessSpec spec;
  spec.argv = {"/usr/bin/busybox", "--list"};
  auto r = runProcess(spec);
  if (r) {
    std::string applets = r->out;
    size_t start = 0, nl;
    while ((nl = applets.find('\n', start)) != std::string::npos) {
      std::string name = applets.substr(start, nl - start);
      start = nl + 1;
      if (name.empty() || name == "busybox") continue;
      std::error_code ec;
      fs::create_symlink("busybox", fs::path(rootfs) / "bin" / name, ec);
    }
  }
  writeFile(rootfs + "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n"
            "app:x:1000:1000:app:/tmp:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
  writeFile(rootfs + "/etc/group",
            "root:x:0:\napp:x:1000:\nextra:x:1001:app,other\nnogroup:x:65534:\n");
  writeFile(rootfs + "/var/www/index.html", "hello from mercato\n");
}

}  // namespace mercato::runtime::host::testing
