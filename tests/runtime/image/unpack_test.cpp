#include "runtime/runc/image/unpack.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "layer_builder.hpp"

namespace mercato::runtime::image {
namespace {
namespace fs = std::filesystem;
using mercato::testing::makeTar;
using mercato::testing::TarEntry;
using mercato::testing::TempDir;

std::string readAll(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rootfs_ = dir_.path() + "/rootfs";
    outside_ = dir_.path() + "/outside";
    fs::create_directories(rootfs_);
    fs::create_directories(outside_);
    std::ofstream(outside_ + "/secret") << "keep me";
  }
  Status apply(const std::string& tar, UnpackBudget* budget = nullptr) {
    UnpackBudget local;
    return applyLayerBytes(tar.data(), tar.size(), rootfs_, budget ? *budget : local, "layer X");
  }
  void expectOutsideUntouched() {
    EXPECT_EQ(readAll(outside_ + "/secret"), "keep me");
    size_t n = 0;
    for (auto& e : fs::directory_iterator(outside_)) (void)e, ++n;
    EXPECT_EQ(n, 1u);
    EXPECT_FALSE(fs::exists(dir_.path() + "/x"));
  }
  TempDir dir_{"mercato-unpack"};
  std::string rootfs_, outside_;
};

TEST_F(UnpackTest, AppliesFilesLinksAndMetadata) {
  auto tar = makeTar({{"bin", 'd', "", 0755},
                      {"bin/tool", 'f', "#!/bin/sh\n", 04755, 1234, 5678, 1500000000},
                      {"bin/alias", 'l', "tool"},
                      {"bin/hard", 'h', "bin/tool"},
                      {"etc/abs-link", 'l', "/etc/passwd"},
                      {"run/fifo", 'p', "", 0600},
                      {"./", 'd', "", 0700}},
                     /*gzip=*/true);
  UnpackBudget budget;
  Status st = apply(tar, &budget);
  ASSERT_TRUE(st.isOk()) << st.toString();
  struct stat s {};
  ASSERT_EQ(::stat((rootfs_ + "/bin/tool").c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 07777, 04755u);
  EXPECT_EQ(s.st_mtime, 1500000000);
  if (::geteuid() == 0) {
    EXPECT_EQ(s.st_uid, 1234u);
    EXPECT_EQ(s.st_gid, 5678u);
  }
  EXPECT_EQ(s.st_nlink, 2u);
  EXPECT_EQ(fs::read_symlink(rootfs_ + "/bin/alias"), "tool");
  EXPECT_EQ(fs::read_symlink(rootfs_ + "/etc/abs-link"), "/etc/passwd");
  EXPECT_TRUE(fs::is_fifo(rootfs_ + "/run/fifo"));
  EXPECT_EQ(budget.usedBytes, 10u);
  ASSERT_EQ(::stat(rootfs_.c_str(), &s), 0);
  EXPECT_NE(s.st_mode & 07777, 0700u);  // "./" does not change the rootfs itself
}

TEST_F(UnpackTest, WhiteoutsAndOpaqueDirectoriesAcrossLayers) {
  ASSERT_TRUE(apply(makeTar({{"a/keep", 'f', "1"},
                             {"a/gone", 'f', "2"},
                             {"a/gonedir/deep/x", 'f', "3"},
                             {"d/x", 'f', "4"},
                             {"d/sub/y", 'f', "5"}}))
                  .isOk());
  Status st = apply(makeTar({{"a/.wh.gone", 'f', ""},
                             {"a/.wh.gonedir", 'f', ""},
                             {"a/.wh.never-existed", 'f', ""},
                             {"missing/.wh.x", 'f', ""},
                             {"d/.wh..wh..opq", 'f', ""},
                             {"d/new", 'f', "6"}},
                            true));
  ASSERT_TRUE(st.isOk()) << st.toString();
  EXPECT_TRUE(fs::exists(rootfs_ + "/a/keep"));
  EXPECT_FALSE(fs::exists(rootfs_ + "/a/gone"));
  EXPECT_FALSE(fs::exists(rootfs_ + "/a/gonedir"));
  EXPECT_FALSE(fs::exists(rootfs_ + "/a/.wh.gone"));
  EXPECT_FALSE(fs::exists(rootfs_ + "/d/x"));
  EXPECT_FALSE(fs::exists(rootfs_ + "/d/sub"));
  EXPECT_EQ(readAll(rootfs_ + "/d/new"), "6");
  EXPECT_FALSE(fs::exists(rootfs_ + "/d/.wh..wh..opq"));
  EXPECT_FALSE(fs::exists(rootfs_ + "/missing"));
  // An opaque marker after this layer's own entries keeps them.
  ASSERT_TRUE(apply(makeTar({{"d/newer", 'f', "7"}, {"d/.wh..wh..opq", 'f', ""}})).isOk());
  EXPECT_TRUE(fs::exists(rootfs_ + "/d/newer"));
  EXPECT_FALSE(fs::exists(rootfs_ + "/d/new"));
}

TEST_F(UnpackTest, RefusesUnsafeEntries) {
  struct Case {
    const char* name;
    std::vector<TarEntry> entries;
    const char* mentions;
  };
  const std::string outsideAbs = outside_;
  const Case cases[] = {
      {"dotdot", {{"../x", 'f', "evil"}}, "\"..\""},
      {"nested dotdot", {{"a/../../x", 'f', "evil"}}, "\"..\""},
      {"absolute", {{"/x", 'f', "evil"}}, "absolute"},
      {"symlink escape", {{"a", 'l', "/etc"}, {"a/passwd", 'f', "evil"}}, "symlink"},
      {"relative symlink escape", {{"a", 'l', "../outside"}, {"a/secret", 'f', "evil"}}, "symlink"},
      {"absolute symlink to outside", {{"b", 'l', outsideAbs}, {"b/new", 'f', "evil"}}, "symlink"},
      {"char device", {{"dev/null", 'c', ""}}, "device"},
      {"block device", {{"dev/sda", 'b', ""}}, "device"},
      {"hardlink dotdot", {{"h", 'h', "../outside/secret"}}, "\"..\""},
      {"hardlink absolute", {{"h", 'h', outsideAbs + "/secret"}}, "absolute"},
      {"hardlink via symlink", {{"s", 'l', outsideAbs}, {"h", 'h', "s/secret"}}, "symlink"},
      {"whiteout via symlink", {{"s", 'l', outsideAbs}, {"s/.wh.secret", 'f', ""}}, "symlink"},
  };
  for (const auto& c : cases) {
    fs::remove_all(rootfs_);
    fs::create_directories(rootfs_);
    Status st = apply(makeTar(c.entries));
    EXPECT_FALSE(st.isOk()) << c.name;
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << c.name << ": " << st.toString();
    EXPECT_NE(st.message().find(c.mentions), std::string::npos) << c.name << ": " << st.message();
    EXPECT_NE(st.message().find("layer X"), std::string::npos) << st.message();
    expectOutsideUntouched();
  }
  EXPECT_TRUE(fs::exists("/etc/passwd"));
}

TEST_F(UnpackTest, QuotaStopsUnpacking) {
  UnpackBudget budget;
  budget.maxBytes = 1000;
  ASSERT_TRUE(apply(makeTar({{"a", 'f', std::string(600, 'a')}}), &budget).isOk());
  Status st = apply(makeTar({{"b", 'f', std::string(600, 'b')}}), &budget);
  EXPECT_EQ(st.code(), Code::kTooLarge) << st.toString();
  EXPECT_NE(st.message().find("quota of 1000 bytes"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(rootfs_ + "/b"));

  UnpackBudget entries;
  entries.maxEntries = 2;
  st = apply(makeTar({{"x", 'd', ""}, {"y", 'd', ""}, {"z", 'd', ""}}), &entries);
  EXPECT_EQ(st.code(), Code::kTooLarge);
}

TEST_F(UnpackTest, GarbageIsAnErrorNotACrash) {
  std::string junk = "\x1f\x8b garbage that is not gzip";
  EXPECT_FALSE(apply(junk).isOk());
  EXPECT_FALSE(apply(std::string(1024, 'x')).isOk());
  EXPECT_TRUE(apply("").isOk());  // an empty layer is valid
}

}  // namespace
}  // namespace mercato::runtime::image
