#include "runtime/runc/image/manifest.hpp"

#include <gtest/gtest.h>

namespace mercato::runtime::image {
namespace {

const std::string kA = "sha256:" + std::string(64, 'a');
const std::string kB = "sha256:" + std::string(64, 'b');
const std::string kC = "sha256:" + std::string(64, 'c');
const std::string kE = "sha256:" + std::string(64, 'e');

std::string entry(const std::string& digest, const std::string& platform) {
  return R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","size":100,"digest":")" +
         digest + R"(","platform":)" + platform + "}";
}

std::string index() {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)" +
         entry(kA, R"({"os":"linux","architecture":"amd64"})") + "," +
         entry(kB, R"({"os":"linux","architecture":"arm64","variant":"v8"})") + "," +
         entry(kC, R"({"os":"linux","architecture":"arm","variant":"v7"})") + "," +
         entry(kE, R"({"os":"windows","architecture":"amd64"})") + "]}";
}

TEST(ManifestTest, SelectsPlatformFromIndex) {
  auto idx = parseIndex(index());
  ASSERT_TRUE(idx.isOk()) << idx.status().toString();
  EXPECT_EQ(selectPlatform(*idx, Platform{})->digest, kA);
  EXPECT_EQ(selectPlatform(*idx, Platform{"linux", "arm64", ""})->digest, kB);
  EXPECT_EQ(selectPlatform(*idx, Platform{"linux", "arm64", "v8"})->digest, kB);
  EXPECT_EQ(selectPlatform(*idx, Platform{"linux", "arm", "v7"})->digest, kC);
  EXPECT_EQ(selectPlatform(*idx, Platform{"windows", "amd64", ""})->digest, kE);
  auto none = selectPlatform(*idx, Platform{"linux", "s390x", ""});
  ASSERT_FALSE(none.isOk());
  EXPECT_EQ(none.status().code(), Code::kNotFound);
  EXPECT_NE(none.status().message().find("linux/s390x"), std::string::npos);
  EXPECT_NE(none.status().message().find("linux/amd64, linux/arm64/v8, linux/arm/v7"),
            std::string::npos)
      << none.status().message();
  auto v6 = selectPlatform(*idx, Platform{"linux", "arm", "v6"});
  EXPECT_FALSE(v6.isOk());
}

TEST(ManifestTest, DockerManifestListAndDetection) {
  std::string list =
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[)" +
      entry(kA, R"({"os":"linux","architecture":"amd64"})") + "]}";
  EXPECT_EQ(detectManifestMediaType("", list), kDockerManifestList);
  EXPECT_EQ(detectManifestMediaType(std::string(kOciIndex) + "; charset=utf-8", list), kOciIndex);
  EXPECT_EQ(detectManifestMediaType("application/json", R"({"schemaVersion":2,"layers":[]})"),
            kOciManifest);
  auto idx = parseIndex(list);
  ASSERT_TRUE(idx.isOk());
  EXPECT_EQ(selectPlatform(*idx, Platform{})->digest, kA);
}

TEST(ManifestTest, ParsesManifestAndConfig) {
  std::string m =
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
    "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7,"digest":")" +
      kA +
      R"("},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":9,"digest":")" +
      kB + R"("}]})";
  auto parsed = parseManifest(m);
  ASSERT_TRUE(parsed.isOk()) << parsed.status().toString();
  EXPECT_EQ(parsed->config.digest, kA);
  ASSERT_EQ(parsed->layers.size(), 1u);
  EXPECT_EQ(parsed->layers[0].size, 9u);

  auto cfg = parseImageConfig(R"({"os":"linux","architecture":"amd64","config":{
    "Entrypoint":["/bin/app"],"Cmd":["-v"],"Env":["A=1"],"WorkingDir":"/w","User":"65534",
    "ExposedPorts":{"8080/tcp":{},"53/udp":{},"9000":{}}},"rootfs":{"type":"layers","diff_ids":[")" +
                              kC + R"("]}})");
  ASSERT_TRUE(cfg.isOk()) << cfg.status().toString();
  EXPECT_EQ(cfg->entrypoint, std::vector<std::string>{"/bin/app"});
  EXPECT_EQ(cfg->cmd, std::vector<std::string>{"-v"});
  EXPECT_EQ(cfg->user, "65534");
  EXPECT_EQ(cfg->workingDir, "/w");
  EXPECT_EQ(cfg->exposedPorts, (std::vector<uint16_t>{8080, 9000}));
  auto round = parseImageConfig(serializeImageConfig(*cfg));
  ASSERT_TRUE(round.isOk());
  EXPECT_EQ(round->entrypoint, cfg->entrypoint);
  EXPECT_EQ(round->diffIds, cfg->diffIds);
}

TEST(ManifestTest, RejectsBadDocuments) {
  struct Bad {
    std::string json;
    const char* mentions;
  };
  const Bad cases[] = {
      {"not json", "not valid JSON"},
      {"[]", "not a JSON object"},
      {R"({"schemaVersion":1})", "schemaVersion"},
      {R"({"schemaVersion":2,"layers":[]})", "manifest.config: missing"},
      {R"({"schemaVersion":2,"config":{"digest":"sha256:abc","size":1},"layers":[]})",
       "manifest.config.digest"},
      {R"({"schemaVersion":2,"config":{"digest":")" + kA + R"(","size":-1},"layers":[]})",
       "manifest.config.size"},
      {R"({"schemaVersion":2,"config":{"digest":")" + kA +
           R"(","size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":")" +
           kB + R"(","size":1}]})",
       "manifest.layers[0].mediaType"},
      {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","config":{"digest":")" +
           kA + R"(","size":1},"layers":[]})",
       "not an image manifest"},
  };
  for (const auto& c : cases) {
    auto r = parseManifest(c.json);
    ASSERT_FALSE(r.isOk()) << c.json;
    EXPECT_NE(r.status().message().find(c.mentions), std::string::npos)
        << c.json << " -> " << r.status().message();
  }
  EXPECT_FALSE(parseIndex(R"({"schemaVersion":2,"manifests":{}})").isOk());
  EXPECT_FALSE(parseImageConfig(R"({"config":{"Entrypoint":"sh"}})").isOk());
  EXPECT_FALSE(parseImageConfig(R"({"config":{"ExposedPorts":{"99999/tcp":{}}}})").isOk());
}

}  // namespace
}  // namespace mercato::runtime::image
