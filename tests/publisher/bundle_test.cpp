#include "publisher/bundle.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "crypto/address.hpp"
#include "crypto/envelope.hpp"
#include "runtime/runc/image/oci_layout.hpp"

namespace mercato::bundle {
namespace {

namespace fs = std::filesystem;

crypto::Identity identityFromFill(uint8_t fill) {
  std::array<uint8_t, 32> seed{};
  seed.fill(fill);
  return std::move(crypto::Identity::fromSeed(seed)).value();
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A tar written entry by entry, for hand-made (hostile) bundles.
std::string makeTar(const std::vector<std::pair<std::string, std::string>>& entries,
                    int type = AE_IFREG) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* ctx, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(ctx)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const auto& [name, data] : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, name == "link" ? type : AE_IFREG);
    if (name == "link") archive_entry_set_symlink(e, "/etc/passwd");
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, name == "link" ? 0 : static_cast<la_int64_t>(data.size()));
    archive_write_header(a, e);
    if (name != "link") archive_write_data(a, data.data(), data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    crypto::initCrypto();
    dir_ = fs::temp_directory_path() /
           ("bundle-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    imageDir_ = (dir_ / "images").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  manifest::Manifest parse(const std::string& yaml) {
    auto m = manifest::parseManifest(yaml, "app.yaml");
    EXPECT_TRUE(m.isOk()) << m.status().toString();
    return *m;
  }

  BundleHeader header(const std::string& yaml) {
    BundleHeader h;
    h.manifest = parse(yaml);
    h.escrowId = "escrow-42";
    h.provider = provider_.address();
    h.createdAtMs = 1'700'000'000'000;
    return h;
  }

  // A tiny OCI layout directory built from a one-file rootfs.
  std::string buildLayout() {
    fs::create_directories(dir_ / "rootfs/bin");
    std::ofstream(dir_ / "rootfs/bin/hello") << "#!/bin/sh\necho hi\n";
    runtime::image::BuildOptions opts;
    opts.config.cmd = {"/bin/hello"};
    opts.refName = "v1";
    auto built =
        runtime::image::buildImage((dir_ / "rootfs").string(), (dir_ / "layout").string(), opts);
    EXPECT_TRUE(built.isOk()) << built.status().toString();
    return (dir_ / "layout").string();
  }

  std::string plainFromSealed(const std::string& sealed) {
    auto opened = crypto::openEnvelope(provider_, sealed);
    EXPECT_TRUE(opened.isOk());
    return opened->payload;
  }

  std::string headerJson(const BundleHeader& h) { return headerToJson(h).dump(); }

  bool imageDirEmpty() {
    if (!fs::exists(imageDir_)) return true;
    return fs::is_empty(imageDir_);
  }

  const std::string kRegistryApp =
      "kind: Application\nname: hello\ncomponents:\n  - name: web\n    image: "
      "127.0.0.1:5000/mercato/sample:v1\n    env:\n      - {name: K, value: s3cret, secret: "
      "true}\n    expose: {port: 8080}\n";
  std::string bundledApp(const std::string& path) {
    return "kind: Application\nname: hello\ncomponents:\n  - name: web\n    bundle: " + path +
           "\n    expose: {port: 8080}\n  - name: db\n    image: busybox\n";
  }

  fs::path dir_;
  std::string imageDir_;
  crypto::Identity publisher_ = identityFromFill(0x11);
  crypto::Identity provider_ = identityFromFill(0x22);
  crypto::Identity other_ = identityFromFill(0x33);
};

TEST_F(BundleTest, RoundTripRegistryImage) {
  BundleHeader h = header(kRegistryApp);
  std::vector<uint64_t> progress;
  auto sealed = buildSealedBundle(publisher_, provider_.publicKey(), h,
                                  [&](uint64_t n) { progress.push_back(n); });
  ASSERT_TRUE(sealed.isOk()) << sealed.status().toString();
  ASSERT_FALSE(progress.empty());
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
  EXPECT_EQ(sealed->find("s3cret"), std::string::npos) << "the bundle must be encrypted";

  auto opened = openSealedBundle(provider_, *sealed, imageDir_, 1 << 20);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  EXPECT_EQ(opened->sender, publisher_.publicKey());
  EXPECT_EQ(opened->header.publisher, publisher_.address());
  EXPECT_EQ(opened->header.provider, provider_.address());
  EXPECT_EQ(opened->header.escrowId, "escrow-42");
  EXPECT_EQ(opened->header.createdAtMs, 1'700'000'000'000);
  EXPECT_EQ(opened->header.nonce.size(), 32u);
  EXPECT_EQ(manifest::toJson(opened->header.manifest), manifest::toJson(h.manifest));
  EXPECT_EQ(opened->header.manifest.components[0].env[0].value, "s3cret");
  EXPECT_TRUE(opened->imagePaths.empty());

  // Each build gets a fresh nonce unless one is given; a given one is kept.
  auto again = buildSealedBundle(publisher_, provider_.publicKey(), h);
  auto opened2 = openSealedBundle(provider_, *again, imageDir_, 1 << 20);
  ASSERT_TRUE(opened2.isOk());
  EXPECT_NE(opened2->header.nonce, opened->header.nonce);
  h.nonce = std::string(32, 'a');
  auto fixed = openSealedBundle(provider_, *buildSealedBundle(publisher_, provider_.publicKey(), h),
                                imageDir_, 1 << 20);
  ASSERT_TRUE(fixed.isOk());
  EXPECT_EQ(fixed->header.nonce, h.nonce);
}

TEST_F(BundleTest, PlainTarIsDeterministic) {
  BundleHeader h = header(kRegistryApp);
  h.nonce = std::string(32, 'b');
  auto a = buildSealedBundle(publisher_, provider_.publicKey(), h);
  auto b = buildSealedBundle(publisher_, provider_.publicKey(), h);
  ASSERT_TRUE(a.isOk() && b.isOk());
  EXPECT_EQ(plainFromSealed(*a), plainFromSealed(*b));
}

TEST_F(BundleTest, RoundTripBundledLayoutDirAndTarball) {
  std::string layout = buildLayout();
  std::string tarball = (dir_ / "image.tar").string();
  ASSERT_TRUE(runtime::image::writeLayoutTarball(layout, tarball).isOk());

  for (const std::string& source : {layout, tarball}) {
    SCOPED_TRACE(source);
    fs::remove_all(imageDir_);
    BundleHeader h = header(bundledApp(source));
    uint64_t last = 0;
    auto sealed =
        buildSealedBundle(publisher_, provider_.publicKey(), h, [&](uint64_t n) { last = n; });
    ASSERT_TRUE(sealed.isOk()) << sealed.status().toString();
    EXPECT_GT(last, fs::file_size(tarball));
    auto opened = openSealedBundle(provider_, *sealed, imageDir_, 64 << 20);
    ASSERT_TRUE(opened.isOk()) << opened.status().toString();
    ASSERT_EQ(opened->imagePaths.size(), 1u);
    const std::string path = opened->imagePaths.at("web");
    EXPECT_EQ(path, (fs::path(imageDir_) / "web.tar").string());
    EXPECT_EQ(readFile(path), readFile(tarball));
    EXPECT_TRUE(opened->header.manifest.components[0].bundled());
    EXPECT_FALSE(opened->header.manifest.components[1].bundled());
    EXPECT_FALSE(fs::exists(path + ".partial"));

    // The provider maps the stored image into the runtime spec.
    auto spec = manifest::toDeploymentSpec(
        opened->header.manifest, "d1", "o",
        [&](const manifest::Component& c) { return opened->imagePaths.at(c.name); });
    EXPECT_EQ(spec.services[0].image, "bundle:web");
    EXPECT_EQ(spec.services[0].imageLayout, path);
  }
}

TEST_F(BundleTest, BuildErrors) {
  BundleHeader h = header(bundledApp((dir_ / "missing.tar").string()));
  auto r = buildSealedBundle(publisher_, provider_.publicKey(), h);
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find("missing.tar does not exist"), std::string::npos);

  std::ofstream(dir_ / "notes.tar") << "not a tar";
  h = header(bundledApp((dir_ / "notes.tar").string()));
  r = buildSealedBundle(publisher_, provider_.publicKey(), h);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("notes.tar is not"), std::string::npos)
      << r.status().message();
  { std::ofstream(dir_ / "plain.tar", std::ios::binary) << makeTar({{"hello.txt", "hi"}}); }
  h = header(bundledApp((dir_ / "plain.tar").string()));
  r = buildSealedBundle(publisher_, provider_.publicKey(), h);
  EXPECT_NE(r.status().message().find("not an OCI image layout tarball"), std::string::npos)
      << r.status().message();

  h = header(kRegistryApp);
  h.publisher = other_.address();
  r = buildSealedBundle(publisher_, provider_.publicKey(), h);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);

  h = header(kRegistryApp);
  h.escrowId = "";
  r = buildSealedBundle(publisher_, provider_.publicKey(), h);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("escrowId"), std::string::npos);

  h = header(kRegistryApp);
  h.manifest.components[0].scaling.max = 0;
  r = buildSealedBundle(publisher_, provider_.publicKey(), h);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("components[0].scaling.max"), std::string::npos);
}

TEST_F(BundleTest, SealedToAnotherProvider) {
  auto sealed = buildSealedBundle(publisher_, other_.publicKey(), header(kRegistryApp));
  ASSERT_TRUE(sealed.isOk());
  auto r = openSealedBundle(provider_, *sealed, imageDir_, 1 << 20);
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied) << r.status().toString();
}

TEST_F(BundleTest, FlippedByte) {
  std::string layout = buildLayout();
  auto sealed = buildSealedBundle(publisher_, provider_.publicKey(), header(bundledApp(layout)));
  ASSERT_TRUE(sealed.isOk());
  for (size_t pos : {size_t{200}, sealed->size() / 2, sealed->size() - 10}) {
    std::string bad = *sealed;
    bad[pos] ^= 0x01;
    auto r = openSealedBundle(provider_, bad, imageDir_, 64 << 20);
    EXPECT_EQ(r.status().code(), Code::kUnauthenticated) << pos << ": " << r.status().toString();
  }
  EXPECT_TRUE(imageDirEmpty());
}

TEST_F(BundleTest, Truncated) {
  auto sealed = buildSealedBundle(publisher_, provider_.publicKey(), header(kRegistryApp));
  ASSERT_TRUE(sealed.isOk());
  for (size_t len : {size_t{0}, size_t{10}, sealed->size() / 2, sealed->size() - 1}) {
    auto r = openSealedBundle(provider_, sealed->substr(0, len), imageDir_, 1 << 20);
    ASSERT_FALSE(r.isOk()) << len;
    EXPECT_TRUE(r.status().code() == Code::kInvalidArgument ||
                r.status().code() == Code::kUnauthenticated)
        << len << ": " << r.status().toString();
  }
}

TEST_F(BundleTest, SignerIsNotHeaderPublisher) {
  auto sealed = buildSealedBundle(publisher_, provider_.publicKey(), header(kRegistryApp));
  ASSERT_TRUE(sealed.isOk());
  // Someone re-seals the publisher's plain bundle under their own key.
  auto resealed = crypto::sealEnvelope(other_, provider_.publicKey(), plainFromSealed(*sealed));
  ASSERT_TRUE(resealed.isOk());
  auto r = openSealedBundle(provider_, *resealed, imageDir_, 1 << 20);
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_NE(r.status().message().find("bundle.json.publisher"), std::string::npos)
      << r.status().message();
}

TEST_F(BundleTest, HostileEntries) {
  BundleHeader h = header(bundledApp("/x.tar"));
  h.publisher = publisher_.address();
  h.nonce = std::string(32, 'c');
  const std::string hj = headerJson(h);
  BundleHeader reg = header(kRegistryApp);
  reg.publisher = publisher_.address();
  reg.nonce = std::string(32, 'd');
  const std::string rj = headerJson(reg);

  struct Case {
    std::string what;
    std::string tar;
    Code code;
    std::string message;
  };
  std::vector<Case> cases = {
      {"traversal", makeTar({{"bundle.json", hj}, {"images/../../evil.tar", "x"}}),
       Code::kInvalidArgument, "path traversal"},
      {"absolute", makeTar({{"bundle.json", hj}, {"/etc/evil", "x"}}), Code::kInvalidArgument,
       "path traversal"},
      {"unknown", makeTar({{"bundle.json", hj}, {"notes.txt", "x"}}), Code::kInvalidArgument,
       "unknown entry 'notes.txt'"},
      {"duplicate",
       makeTar({{"bundle.json", hj}, {"images/web.tar", "a"}, {"images/web.tar", "b"}}),
       Code::kInvalidArgument, "duplicate entry 'images/web.tar'"},
      {"duplicate header", makeTar({{"bundle.json", rj}, {"bundle.json", rj}}),
       Code::kInvalidArgument, "duplicate entry 'bundle.json'"},
      {"image first", makeTar({{"images/web.tar", "a"}, {"bundle.json", hj}}),
       Code::kInvalidArgument, "before bundle.json"},
      {"no header", makeTar({}), Code::kInvalidArgument, "bundle.json is missing"},
      {"not bundled",
       makeTar({{"bundle.json", hj}, {"images/web.tar", "a"}, {"images/db.tar", "b"}}),
       Code::kInvalidArgument, "component 'db' uses image busybox"},
      {"no such component", makeTar({{"bundle.json", hj}, {"images/cache.tar", "b"}}),
       Code::kInvalidArgument, "no component 'cache'"},
      {"missing image", makeTar({{"bundle.json", hj}}), Code::kInvalidArgument,
       "images/web.tar is missing"},
      {"too large", makeTar({{"bundle.json", hj}, {"images/web.tar", std::string(2000, 'x')}}),
       Code::kTooLarge, "at most 1000"},
      {"symlink", makeTar({{"bundle.json", hj}, {"link", ""}}, AE_IFLNK), Code::kInvalidArgument,
       "not a regular file"},
      {"bad json", makeTar({{"bundle.json", "{nope"}}), Code::kInvalidArgument,
       "bundle.json is not valid JSON"},
      {"not a tar", std::string(1000, 'q'), Code::kInvalidArgument, "bundle:"},
  };
  for (const auto& c : cases) {
    auto r = parsePlainBundle(c.tar, imageDir_, 1000);
    ASSERT_FALSE(r.isOk()) << c.what;
    EXPECT_EQ(r.status().code(), c.code) << c.what << ": " << r.status().toString();
    EXPECT_NE(r.status().message().find(c.message), std::string::npos)
        << c.what << ": " << r.status().message();
    EXPECT_TRUE(imageDirEmpty()) << c.what;
    EXPECT_FALSE(fs::exists(dir_ / "evil.tar"));
  }
  // The good one for contrast.
  auto ok = parsePlainBundle(makeTar({{"bundle.json", hj}, {"images/web.tar", "layout"}}),
                             imageDir_, 1000);
  ASSERT_TRUE(ok.isOk()) << ok.status().toString();
  EXPECT_EQ(readFile(ok->imagePaths.at("web")), "layout");
}

TEST_F(BundleTest, HeaderFieldErrors) {
  BundleHeader h = header(kRegistryApp);
  h.publisher = publisher_.address();
  h.nonce = std::string(32, 'e');
  nlohmann::json good = headerToJson(h);
  auto expectErr = [&](nlohmann::json j, const std::string& want) {
    auto r = parsePlainBundle(makeTar({{"bundle.json", j.dump()}}), imageDir_, 1000);
    ASSERT_FALSE(r.isOk()) << want;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status().message();
  };
  auto j = good;
  j["version"] = 2;
  expectErr(j, "bundle.json: version: 2 is not supported");
  j = good;
  j["extra"] = true;
  expectErr(j, "bundle.json: extra: unknown key");
  j = good;
  j.erase("escrowId");
  expectErr(j, "bundle.json: escrowId: missing");
  j = good;
  j["publisher"] = "mer1nope";
  expectErr(j, "bundle.json: publisher:");
  j = good;
  j["nonce"] = "ABCD";
  expectErr(j, "bundle.json: nonce: expected 32 lowercase hex");
  j = good;
  j["createdAtMs"] = -5;
  expectErr(j, "bundle.json: createdAtMs:");
  j = good;
  j["manifest"]["components"][0]["name"] = "Bad_Name";
  expectErr(j, "bundle.json: manifest: components[0].name: 'Bad_Name' is not a valid name");
}

// Writes the fuzz seed corpus when MERCATO_WRITE_CORPUS names a directory.
TEST_F(BundleTest, WriteFuzzCorpus) {
  const char* out = std::getenv("MERCATO_WRITE_CORPUS");
  if (!out) GTEST_SKIP() << "set MERCATO_WRITE_CORPUS=dir to regenerate the bundle_open_fuzz seeds";
  BundleHeader h = header(bundledApp("/x.tar"));
  h.publisher = publisher_.address();
  h.nonce = std::string(32, 'f');
  const std::string hj = headerJson(h);
  BundleHeader reg = header(kRegistryApp);
  reg.publisher = publisher_.address();
  reg.nonce = std::string(32, '0');
  std::map<std::string, std::string> seeds = {
      {"registry.tar", makeTar({{"bundle.json", headerJson(reg)}})},
      {"bundled.tar", makeTar({{"bundle.json", hj}, {"images/web.tar", "layout bytes"}})},
      {"traversal.tar", makeTar({{"bundle.json", hj}, {"images/../x.tar", "x"}})},
      {"duplicate.tar",
       makeTar({{"bundle.json", hj}, {"images/web.tar", "a"}, {"images/web.tar", "b"}})},
      {"bad-json.tar", makeTar({{"bundle.json", "{\"version\":1,\"manifest\":[]}"}})},
  };
  for (const auto& [name, bytes] : seeds)
    std::ofstream(fs::path(out) / name, std::ios::binary) << bytes;
}

}  // namespace
}  // namespace mercato::bundle
