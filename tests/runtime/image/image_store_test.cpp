// ImageStore against a real docker-registry on loopback (label `runc`: needs the registry
// binary, root for chown/overlay mounts). Covers push through our client, pull, cache hits,
// missing images, a tampered blob in the registry's storage, layout import, LRU eviction, pins,
// overlay rootfs, and Basic/Bearer auth.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "runtime/runc/image/digest.hpp"
#include "runtime/runc/image/image_store.hpp"
#include "runtime/runc/image/oci_layout.hpp"

namespace mercato::runtime::image {
namespace {
namespace fs = std::filesystem;
using mercato::testing::RegistryProcess;
using mercato::testing::TempDir;

std::string readAll(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t countEntries(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  size_t n = 0;
  for (auto it = fs::directory_iterator(dir, ec); it != fs::directory_iterator(); ++it) ++n;
  return n;
}

bool mountedUnder(const std::string& prefix) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.find(" " + prefix) != std::string::npos) return true;
  return false;
}

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/docker-registry", X_OK) != 0)
      GTEST_SKIP() << "docker-registry is not installed (scripts/setup.sh installs it)";
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (chown of layer files, overlay mounts)";
    Status st = registry_.start();
    ASSERT_TRUE(st.isOk()) << st.toString();
  }

  std::unique_ptr<ImageStore> newStore(const std::string& root, uint64_t maxCache = 20ull << 30,
                                       RootfsMode mode = RootfsMode::kAuto) {
    ImageStoreConfig c;
    c.root = root;
    c.maxCacheBytes = maxCache;
    c.rootfsMode = mode;
    c.timeout = std::chrono::milliseconds(10'000);
    auto s = ImageStore::create(c);
    EXPECT_TRUE(s.isOk()) << s.status().toString();
    return s.isOk() ? std::move(s).value() : nullptr;
  }

  RegistryProcess registry_;
  TempDir tmp_{"mercato-image-store"};
};

TEST_F(ImageStoreTest, PushPullUnpackAndCacheHit) {
  auto ref = mercato::testing::pushSampleImage(registry_, "mercato/sample:v1");
  ASSERT_TRUE(ref.isOk()) << ref.status().toString();
  EXPECT_EQ(*ref, registry_.host() + "/mercato/sample:v1");

  auto store = newStore(tmp_.path() + "/cache");
  ASSERT_TRUE(store);
  std::atomic<uint64_t> progressCalls{0};
  auto img = store->pull(*ref, [&](const PullProgress& p) {
    EXPECT_LE(p.done, p.total);
    ++progressCalls;
  });
  ASSERT_TRUE(img.isOk()) << img.status().toString();
  EXPECT_GT(progressCalls.load(), 0u);
  EXPECT_EQ(img->reference, *ref);
  EXPECT_EQ(img->config.entrypoint, std::vector<std::string>{"/bin/sample-server"});
  EXPECT_EQ(img->config.exposedPorts, std::vector<uint16_t>{8080});
  EXPECT_NE(std::find(img->config.env.begin(), img->config.env.end(), "PORT=8080"),
            img->config.env.end());
  EXPECT_GT(img->compressedBytes, 0u);
  EXPECT_GT(img->unpackedBytes, img->compressedBytes);

  const std::string& root = img->rootfsPath;
  struct stat st {};
  ASSERT_EQ(::stat((root + "/bin/busybox").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  EXPECT_EQ(st.st_uid, 0u);
  ASSERT_EQ(::lstat((root + "/bin/sh").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(fs::read_symlink(root + "/bin/sh"), "busybox");
  ASSERT_EQ(::stat((root + "/tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777);
  EXPECT_NE(readAll(root + "/etc/passwd").find("nobody:x:65534"), std::string::npos);
  EXPECT_EQ(readAll(root + "/bin/sample-server"), readAll(mercato::testing::sampleServerPath()));

  // Second pull: cache hit without a single HTTP request, even with the registry gone.
  uint64_t before = store->registryRequests();
  registry_.stop();
  auto again = store->pull(*ref);
  ASSERT_TRUE(again.isOk()) << again.status().toString();
  EXPECT_EQ(again->digest, img->digest);
  EXPECT_EQ(store->registryRequests(), before);
  auto byDigest = store->find(img->digest);
  ASSERT_TRUE(byDigest.isOk());
  EXPECT_EQ(byDigest->configDigest, img->configDigest);

  // A restarted store finds the same image.
  store.reset();
  auto reopened = newStore(tmp_.path() + "/cache");
  auto found = reopened->find(*ref);
  ASSERT_TRUE(found.isOk()) << found.status().toString();
  EXPECT_EQ(found->digest, img->digest);
}

TEST_F(ImageStoreTest, ConcurrentPullsOfOneImageAreDeduplicated) {
  auto ref = mercato::testing::pushSampleImage(registry_, "mercato/sample:v1");
  ASSERT_TRUE(ref.isOk()) << ref.status().toString();
  auto store = newStore(tmp_.path() + "/cache");
  std::vector<std::thread> threads;
  std::vector<Result<Image>> results(4, Result<Image>(internalError("not run")));
  for (int i = 0; i < 4; ++i) threads.emplace_back([&, i] { results[i] = store->pull(*ref); });
  for (auto& t : threads) t.join();
  for (auto& r : results) {
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    EXPECT_EQ(r->digest, results[0]->digest);
  }
  auto all = store->list();
  ASSERT_TRUE(all.isOk());
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(ImageStoreTest, MissingImageIsNotFoundAndLeavesNothing) {
  auto store = newStore(tmp_.path() + "/cache");
  auto r = store->pull(registry_.host() + "/mercato/nothing:here");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().toString();
  EXPECT_NE(r.status().message().find("mercato/nothing"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(countEntries(tmp_.path() + "/cache/blobs/sha256"), 0u);
  EXPECT_EQ(countEntries(tmp_.path() + "/cache/rootfs"), 0u);
}

TEST_F(ImageStoreTest, TamperedLayerInRegistryIsRejectedAndLeavesNothing) {
  TempDir layout("mercato-layout");
  auto built = mercato::testing::buildSampleImage(layout.path());
  ASSERT_TRUE(built.isOk()) << built.status().toString();
  auto ref = parseReference(registry_.host() + "/mercato/tampered:v1");
  ASSERT_TRUE(ref.isOk());
  auto client = RegistryClient::create({});
  ASSERT_TRUE(client.isOk());
  ASSERT_TRUE(pushLayout(*built, **client, *ref).isOk());

  // Flip a byte in the middle of the layer's data file, keeping its size.
  std::string data = registry_.blobDataPath(built->layers[0].digest);
  ASSERT_TRUE(fs::exists(data)) << data;
  {
    std::fstream f(data, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(built->layers[0].size / 2));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(static_cast<std::streamoff>(built->layers[0].size / 2));
    f.write(&c, 1);
  }
  auto store = newStore(tmp_.path() + "/cache");
  auto r = store->pull(ref->toString());
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().toString();
  EXPECT_NE(r.status().message().find("digest mismatch"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find(built->layers[0].digest), std::string::npos);
  EXPECT_EQ(countEntries(tmp_.path() + "/cache/blobs/sha256"), 0u);
  EXPECT_EQ(countEntries(tmp_.path() + "/cache/blobs/tmp"), 0u);
  EXPECT_EQ(countEntries(tmp_.path() + "/cache/rootfs"), 0u);
  auto all = store->list();
  ASSERT_TRUE(all.isOk());
  EXPECT_TRUE(all->empty());
  EXPECT_EQ(store->cacheBytes(), 0u);
}

TEST_F(ImageStoreTest, OverlayRootfsIsPrivateAndReleasedWithoutMounts) {
  auto ref = mercato::testing::pushSampleImage(registry_, "mercato/sample:v1");
  ASSERT_TRUE(ref.isOk());
  auto store = newStore(tmp_.path() + "/cache", 20ull << 30, RootfsMode::kOverlay);
  auto img = store->pull(*ref);
  ASSERT_TRUE(img.isOk()) << img.status().toString();
  std::string inst = tmp_.path() + "/instances/a";
  auto rootfs = store->prepareRootfs(*img, inst);
  ASSERT_TRUE(rootfs.isOk()) << rootfs.status().toString();
  EXPECT_EQ(*rootfs, inst + "/rootfs");
  EXPECT_TRUE(mountedUnder(inst + "/rootfs"));
  EXPECT_TRUE(fs::exists(*rootfs + "/bin/busybox"));
  std::ofstream(*rootfs + "/etc/instance-only") << "x";
  std::ofstream(*rootfs + "/etc/passwd", std::ios::app) << "extra:x:1:1::/:/bin/sh\n";
  EXPECT_FALSE(fs::exists(img->rootfsPath + "/etc/instance-only"));
  EXPECT_EQ(readAll(img->rootfsPath + "/etc/passwd").find("extra"), std::string::npos);

  // Idempotent re-adoption, and the pin blocks removal.
  auto again = store->prepareRootfs(*img, inst);
  ASSERT_TRUE(again.isOk()) << again.status().toString();
  EXPECT_EQ(store->remove(img->digest).code(), Code::kFailedPrecondition);

  // Pins survive a restart of the store.
  store.reset();
  store = newStore(tmp_.path() + "/cache", 20ull << 30, RootfsMode::kOverlay);
  EXPECT_EQ(store->remove(img->digest).code(), Code::kFailedPrecondition);

  ASSERT_TRUE(store->releaseRootfs(inst).isOk());
  EXPECT_FALSE(mountedUnder(inst));
  EXPECT_FALSE(fs::exists(inst));
  EXPECT_TRUE(store->releaseRootfs(inst).isOk());  // idempotent
  ASSERT_TRUE(store->remove(img->digest).isOk());
  EXPECT_FALSE(fs::exists(img->rootfsPath));
  EXPECT_EQ(countEntries(tmp_.path() + "/cache/blobs/sha256"), 0u);
}

TEST_F(ImageStoreTest, CopyRootfsWhenOverlayIsNotWanted) {
  auto ref = mercato::testing::pushSampleImage(registry_, "mercato/sample:v1");
  ASSERT_TRUE(ref.isOk());
  auto store = newStore(tmp_.path() + "/cache", 20ull << 30, RootfsMode::kCopy);
  auto img = store->pull(*ref);
  ASSERT_TRUE(img.isOk());
  std::string inst = tmp_.path() + "/instances/c";
  auto rootfs = store->prepareRootfs(*img, inst);
  ASSERT_TRUE(rootfs.isOk()) << rootfs.status().toString();
  EXPECT_FALSE(mountedUnder(inst));
  EXPECT_TRUE(fs::is_symlink(*rootfs + "/bin/sh"));
  std::ofstream(*rootfs + "/etc/instance-only") << "x";
  EXPECT_FALSE(fs::exists(img->rootfsPath + "/etc/instance-only"));
  ASSERT_TRUE(store->releaseRootfs(inst).isOk());
  EXPECT_FALSE(fs::exists(inst));
}

}  // namespace
}  // namespace mercato::runtime::image
