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
#include "layer_builder.hpp"
#include "net/server.hpp"
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

// Writes an OCI layout whose layers are the given tar bytes (config says linux/amd64).
BuiltImage writeLayout(const std::string& dir, const std::vector<std::string>& layers,
                       const std::string& refName = "") {
  fs::create_directories(dir + "/blobs/sha256");
  auto put = [&](const std::string& bytes, std::string mediaType) {
    Descriptor d;
    d.mediaType = std::move(mediaType);
    d.digest = sha256Digest(bytes);
    d.size = bytes.size();
    std::ofstream(dir + "/blobs/sha256/" + digestHex(d.digest), std::ios::binary) << bytes;
    return d;
  };
  BuiltImage img;
  img.layoutDir = dir;
  ImageConfig cfg;
  for (const auto& l : layers) {
    img.layers.push_back(put(l, std::string(kOciLayerTar)));
    cfg.diffIds.push_back(img.layers.back().digest);
  }
  img.config = put(serializeImageConfig(cfg), std::string(kOciConfig));
  Manifest m;
  m.config = img.config;
  m.layers = img.layers;
  img.manifest = put(serializeManifest(m), std::string(kOciManifest));
  std::string ann = refName.empty() ? ""
                                    : R"(,"annotations":{"org.opencontainers.image.ref.name":")" +
                                          refName + "\"}";
  std::ofstream(dir + "/index.json")
      << R"({"schemaVersion":2,"manifests":[{"mediaType":")" << kOciManifest << R"(","digest":")"
      << img.manifest.digest << R"(","size":)" << img.manifest.size << ann << "}]}";
  std::ofstream(dir + "/oci-layout") << R"({"imageLayoutVersion":"1.0.0"})";
  return img;
}

void expectEmptyCache(ImageStore& store, const std::string& root) {
  EXPECT_EQ(countEntries(root + "/blobs/sha256"), 0u);
  EXPECT_EQ(countEntries(root + "/rootfs"), 0u);
  auto all = store.list();
  ASSERT_TRUE(all.isOk());
  EXPECT_TRUE(all->empty());
  EXPECT_EQ(store.cacheBytes(), 0u);
}

TEST_F(ImageStoreTest, ImportsLayoutDirectoryAndTarball) {
  TempDir layout("mercato-layout");
  auto built = mercato::testing::buildSampleImage(layout.path(), "example.com/sample:v2");
  ASSERT_TRUE(built.isOk()) << built.status().toString();
  auto store = newStore(tmp_.path() + "/cache");
  auto img = store->importLayout(layout.path());
  ASSERT_TRUE(img.isOk()) << img.status().toString();
  EXPECT_EQ(img->digest, built->manifest.digest);
  EXPECT_EQ(img->reference, "example.com/sample:v2");
  EXPECT_TRUE(fs::exists(img->rootfsPath + "/bin/sample-server"));
  EXPECT_TRUE(store->find("example.com/sample:v2").isOk());

  std::string tarball = tmp_.path() + "/layout.tar";
  ASSERT_TRUE(writeLayoutTarball(layout.path(), tarball).isOk());
  auto fresh = newStore(tmp_.path() + "/cache2");
  auto fromTar = fresh->importLayout(tarball, "example.com/sample:v2");
  ASSERT_TRUE(fromTar.isOk()) << fromTar.status().toString();
  EXPECT_EQ(fromTar->digest, built->manifest.digest);
  EXPECT_EQ(countEntries(tmp_.path() + "/cache2/tmp"), 0u);
  auto wrongName = fresh->importLayout(tarball, "example.com/other:v1");
  EXPECT_EQ(wrongName.status().code(), Code::kNotFound) << wrongName.status().toString();
}

TEST_F(ImageStoreTest, LayoutWithWrongBlobDigestIsRejected) {
  TempDir layout("mercato-layout");
  auto built = mercato::testing::buildSampleImage(layout.path());
  ASSERT_TRUE(built.isOk());
  // Swap the layer's bytes for another valid tar: same file name, different content.
  std::ofstream(built->blobPath(built->layers[0].digest), std::ios::binary | std::ios::trunc)
      << mercato::testing::makeTar({{"evil", 'f', "x"}});
  auto store = newStore(tmp_.path() + "/cache");
  auto r = store->importLayout(layout.path());
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().toString();
  EXPECT_NE(r.status().message().find(built->layers[0].digest), std::string::npos);
  expectEmptyCache(*store, tmp_.path() + "/cache");
}

TEST_F(ImageStoreTest, UnsafeLayersAndQuotaLeaveNothingBehind) {
  auto store = newStore(tmp_.path() + "/cache");
  const std::vector<std::vector<mercato::testing::TarEntry>> evil = {
      {{"../x", 'f', "evil"}},
      {{"a", 'l', "/etc"}, {"a/passwd", 'f', "evil"}},
      {{"dev/null", 'c', ""}},
  };
  int i = 0;
  for (const auto& entries : evil) {
    std::string dir = tmp_.path() + "/evil" + std::to_string(i++);
    writeLayout(dir, {mercato::testing::makeTar({{"ok", 'f', "fine"}}),
                      mercato::testing::makeTar(entries)});
    auto r = store->importLayout(dir);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().toString();
    expectEmptyCache(*store, tmp_.path() + "/cache");
  }
  EXPECT_NE(std::string(
                std::istreambuf_iterator<char>(*std::make_unique<std::ifstream>("/etc/passwd")), {})
                .find("root"),
            std::string::npos);

  ImageStoreConfig c;
  c.root = tmp_.path() + "/small";
  c.maxImageBytes = 1 << 20;  // the sample image unpacks to ~3.4 MB
  auto small = ImageStore::create(c);
  ASSERT_TRUE(small.isOk());
  TempDir layout("mercato-layout");
  ASSERT_TRUE(mercato::testing::buildSampleImage(layout.path()).isOk());
  auto r = (*small)->importLayout(layout.path());
  EXPECT_EQ(r.status().code(), Code::kTooLarge) << r.status().toString();
  EXPECT_NE(r.status().message().find("quota"), std::string::npos);
  expectEmptyCache(**small, c.root);
}

TEST_F(ImageStoreTest, LruEvictionSparesPinnedImages) {
  // Three ~1 MB single-layer images (incompressible content), cache limit ~2.5 images.
  std::string noise;
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < (1 << 20); ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    noise += static_cast<char>(x);
  }
  std::vector<std::string> digests;
  auto store = newStore(tmp_.path() + "/cache", 5'500'000);
  for (int i = 0; i < 3; ++i) {
    std::string dir = tmp_.path() + "/img" + std::to_string(i);
    auto built =
        writeLayout(dir, {mercato::testing::makeTar({{"data", 'f', noise + char('a' + i)}})},
                    "example.com/lru:" + std::to_string(i));
    auto img = store->importLayout(dir);
    ASSERT_TRUE(img.isOk()) << img.status().toString();
    digests.push_back(img->digest);
    if (i == 0) {
      auto rootfs = store->prepareRootfs(*img, tmp_.path() + "/inst0");  // pins image 0
      ASSERT_TRUE(rootfs.isOk()) << rootfs.status().toString();
    }
  }
  // Image 0 is the least recently used but pinned; image 1 is evicted instead.
  EXPECT_TRUE(store->find(digests[0]).isOk());
  EXPECT_EQ(store->find(digests[1]).status().code(), Code::kNotFound);
  EXPECT_TRUE(store->find(digests[2]).isOk());
  EXPECT_LE(store->cacheBytes(), 5'500'000u);
  EXPECT_EQ(store->find("example.com/lru:1").status().code(), Code::kNotFound);
  ASSERT_TRUE(store->releaseRootfs(tmp_.path() + "/inst0").isOk());
}

TEST_F(ImageStoreTest, BasicAuthWithHtpasswd) {
  // bcrypt("s3cret") for user "alice", fixed so the test needs no htpasswd tool.
  std::string htpasswd = tmp_.path() + "/htpasswd";
  std::ofstream(htpasswd) << "alice:$2b$05$kEj1/l3Kwu/JkOx1pjtlHePoQMCIMqpgShNxtsPaPRS5NY.lAVrla\n";
  RegistryProcess authed;
  Status started = authed.start({htpasswd});
  ASSERT_TRUE(started.isOk()) << started.toString();
  auto ref = parseReference(authed.host() + "/mercato/private:v1");
  ASSERT_TRUE(ref.isOk());

  auto anonymous = RegistryClient::create({});
  auto denied = (*anonymous)->getManifest(*ref);
  EXPECT_EQ(denied.status().code(), Code::kUnauthenticated) << denied.status().toString();
  EXPECT_NE(denied.status().message().find("no"), std::string::npos);

  RegistryClientConfig wrong;
  wrong.credentials[authed.host()] = {"alice", "nope"};
  auto wrongClient = RegistryClient::create(wrong);
  EXPECT_EQ((*wrongClient)->getManifest(*ref).status().code(), Code::kUnauthenticated);

  RegistryClientConfig good;
  good.credentials[authed.host()] = {"alice", "s3cret"};
  auto client = RegistryClient::create(good);
  TempDir layout("mercato-layout");
  auto built = mercato::testing::buildSampleImage(layout.path());
  ASSERT_TRUE(built.isOk());
  auto pushed = pushLayout(*built, **client, *ref);
  ASSERT_TRUE(pushed.isOk()) << pushed.status().toString();

  ImageStoreConfig c;
  c.root = tmp_.path() + "/cache";
  c.credentials[authed.host()] = {"alice", "s3cret"};
  auto store = ImageStore::create(c);
  ASSERT_TRUE(store.isOk());
  auto img = (*store)->pull(ref->toString());
  ASSERT_TRUE(img.isOk()) << img.status().toString();
  EXPECT_EQ(img->digest, *pushed);
}

// Test double: docker-registry here cannot run token auth (it needs an external token service),
// so this is a minimal registry + token server on our own HttpServer that speaks the Bearer flow:
// 401 with `WWW-Authenticate: Bearer realm=..,service=..,scope=..`, a /token endpoint that checks
// Basic credentials, and blobs that redirect to another path (as CDNs do).
TEST_F(ImageStoreTest, BearerTokenFlowAgainstTestDouble) {
  TempDir layout("mercato-layout");
  auto built = mercato::testing::buildSampleImage(layout.path());
  ASSERT_TRUE(built.isOk());
  std::string manifest;
  {
    std::ifstream in(built->blobPath(built->manifest.digest), std::ios::binary);
    manifest.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::atomic<int> tokensIssued{0};
  std::string realm;  // filled once the port is known
  uint16_t port = 0;
  const std::string token = "tok-123";
  auto authorized = [&](const net::HttpRequest& req) {
    return req.header("Authorization") == "Bearer " + token;
  };
  auto challenge = [&]() {
    net::HttpResponse r = net::HttpResponse::text(
        401, R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})");
    r.headers["WWW-Authenticate"] =
        "Bearer realm=\"" + realm +
        "\",service=\"test-registry\",scope=\"repository:mercato/tok:pull\"";
    return r;
  };
  net::Router router;
  router.add("GET", "/token", [&](const net::HttpRequest& req) {
    // "alice:s3cret" in base64.
    if (req.header("Authorization") != "Basic YWxpY2U6czNjcmV0")
      return net::HttpResponse::text(401, "bad credentials");
    if (req.queryParam("scope").value_or("") != "repository:mercato/tok:pull" ||
        req.queryParam("service").value_or("") != "test-registry")
      return net::HttpResponse::text(400, "bad scope or service");
    ++tokensIssued;
    return net::HttpResponse::json(200, {{"token", token}});
  });
  router.add("GET", "/v2/mercato/tok/manifests/{tag}", [&](const net::HttpRequest& req) {
    if (!authorized(req)) return challenge();
    if (req.params.at("tag") != "v1")
      return net::HttpResponse::text(
          404, R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})");
    auto r = net::HttpResponse::text(200, manifest, std::string(kOciManifest));
    r.headers["Docker-Content-Digest"] = built->manifest.digest;
    return r;
  });
  router.add("GET", "/v2/mercato/tok/blobs/{digest}", [&](const net::HttpRequest& req) {
    if (!authorized(req)) return challenge();
    net::HttpResponse r;
    r.status = 307;
    // Another host name for the same server, like a CDN: the token must not follow.
    r.headers["Location"] =
        "http://localhost:" + std::to_string(port) + "/cdn/" + req.params.at("digest");
    return r;
  });
  router.add("GET", "/cdn/{digest}", [&](const net::HttpRequest& req) {
    if (!req.header("Authorization").empty())
      return net::HttpResponse::text(400, "unexpected Authorization on CDN");
    std::ifstream in(built->blobPath(req.params.at("digest")), std::ios::binary);
    std::string body((std::istreambuf_iterator<char>(in)), {});
    return net::HttpResponse::text(200, body, "application/octet-stream");
  });
  net::ServerOptions options;
  options.maxBodyBytes = 1 << 20;
  auto server = net::HttpServer::create(options, std::move(router));
  ASSERT_TRUE(server.isOk()) << server.status().toString();
  (*server)->start();
  port = (*server)->port();
  std::string host = "127.0.0.1:" + std::to_string(port);
  realm = "http://" + host + "/token";

  ImageStoreConfig c;
  c.root = tmp_.path() + "/cache";
  auto anonymous = ImageStore::create(c);
  auto denied = (*anonymous)->pull(host + "/mercato/tok:v1");
  EXPECT_EQ(denied.status().code(), Code::kUnauthenticated) << denied.status().toString();
  EXPECT_EQ(countEntries(c.root + "/blobs/sha256"), 0u);

  c.root = tmp_.path() + "/cache2";
  c.credentials[host] = {"alice", "s3cret"};
  auto store = ImageStore::create(c);
  auto img = (*store)->pull(host + "/mercato/tok:v1");
  ASSERT_TRUE(img.isOk()) << img.status().toString();
  EXPECT_EQ(img->digest, built->manifest.digest);
  EXPECT_TRUE(fs::exists(img->rootfsPath + "/bin/busybox"));
  EXPECT_EQ(tokensIssued.load(), 1);  // cached for the manifest and both blobs
  auto missing = (*store)->pull(host + "/mercato/tok:v2");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("MANIFEST_UNKNOWN"), std::string::npos)
      << missing.status().message();
  (*server)->stop();
}

}  // namespace
}  // namespace mercato::runtime::image
