// Test helpers for the bid engine: a temporary directory and executable scripts written into it.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

namespace mercato::provider::bidengine::testing {

inline std::string readFile(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("mercato-bid-" + std::to_string(::getpid()) + "-" + info->test_suite_name() + "-" +
             info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string path(const std::string& name = "") const {
    return name.empty() ? path_.string() : (path_ / name).string();
  }
  // Writes `text` to `name` (replacing it atomically: write + rename, as editors and config
  // management do) and returns the path.
  std::string write(const std::string& name, const std::string& text, bool executable = false) {
    std::string p = path(name), tmp = p + ".tmp";
    {
      std::ofstream f(tmp, std::ios::trunc);
      f << text;
    }
    if (executable) ::chmod(tmp.c_str(), 0755);
    std::filesystem::rename(tmp, p);
    return p;
  }
  // A /bin/sh script.
  std::string script(const std::string& name, const std::string& body) {
    return write(name, "#!/bin/sh\n" + body + "\n", true);
  }

 private:
  std::filesystem::path path_;
};

}  // namespace mercato::provider::bidengine::testing
