#include "manifest/manifest.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace mercato::manifest {
namespace {

const char* kFull = R"(kind: Application
name: hello
components:
  - name: web
    image: 127.0.0.1:5000/mercato/sample:v1
    command: ["/bin/sample-server"]
    args: ["--port", "8080"]
    env:
      - {name: GREETING, value: hi}
      - {name: API_KEY, value: s3cret, secret: true}
    resources: {cpu: 500m, memory: 128Mi}
    expose: {port: 8080, hostname: hello}
    scaling: {min: 0, max: 4, targetConcurrency: 10, idleTimeout: 60s}
  - name: worker
    bundle: ./image.tar
    scaling:
      min: 1
      max: 2
      idleTimeout: 1500ms
)";

Manifest parseOk(const std::string& text) {
  auto m = parseManifest(text, "app.yaml");
  EXPECT_TRUE(m.isOk()) << m.status().toString();
  return m.isOk() ? *m : Manifest{};
}

// Parses and returns the error message; fails the test when parsing succeeds.
std::string parseErr(const std::string& text) {
  auto m = parseManifest(text, "app.yaml");
  EXPECT_FALSE(m.isOk()) << "accepted:\n" << text;
  if (m.isOk()) return "";
  EXPECT_EQ(m.status().code(), Code::kInvalidArgument);
  return m.status().message();
}

std::string withComponent(const std::string& body) {
  return "kind: Application\nname: app\ncomponents:\n  - name: web\n" + body;
}

TEST(ManifestTest, ParsesEveryField) {
  Manifest m = parseOk(kFull);
  EXPECT_EQ(m.name, "hello");
  ASSERT_EQ(m.components.size(), 2u);
  const Component& web = m.components[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.image, "127.0.0.1:5000/mercato/sample:v1");
  EXPECT_FALSE(web.bundled());
  EXPECT_EQ(web.command, std::vector<std::string>{"/bin/sample-server"});
  EXPECT_EQ(web.args, (std::vector<std::string>{"--port", "8080"}));
  ASSERT_EQ(web.env.size(), 2u);
  EXPECT_EQ(web.env[1].name, "API_KEY");
  EXPECT_EQ(web.env[1].value, "s3cret");
  EXPECT_TRUE(web.env[1].secret);
  EXPECT_FALSE(web.env[0].secret);
  EXPECT_EQ(web.cpuMillis, 500);
  EXPECT_EQ(web.memoryBytes, 128ll << 20);
  ASSERT_TRUE(web.expose);
  EXPECT_EQ(web.expose->port, 8080);
  EXPECT_EQ(web.expose->hostname, "hello");
  EXPECT_EQ(web.scaling.max, 4);
  EXPECT_EQ(web.scaling.idleTimeoutMs, 60'000);
  EXPECT_EQ(web.line, 4);
  const Component& worker = m.components[1];
  EXPECT_TRUE(worker.bundled());
  EXPECT_EQ(worker.bundlePath, "./image.tar");
  EXPECT_EQ(worker.cpuMillis, kDefaultCpuMillis);
  EXPECT_EQ(worker.memoryBytes, kDefaultMemoryBytes);
  EXPECT_EQ(worker.scaling.min, 1);
  EXPECT_EQ(worker.scaling.targetConcurrency, 10);
  EXPECT_EQ(worker.scaling.idleTimeoutMs, 1500);
  EXPECT_EQ(worker.line, 14);
  EXPECT_EQ(m.exposed(), &m.components[0]);
  EXPECT_EQ(m.peakCpuMillis(), 500 * 4 + 100 * 2);
  EXPECT_EQ(m.peakMemoryBytes(), (128ll << 20) * 4 + (128ll << 20) * 2);
}

TEST(ManifestTest, Defaults) {
  Manifest m = parseOk(withComponent("    image: busybox\n"));
  const Component& c = m.components[0];
  EXPECT_EQ(c.scaling.min, 0);
  EXPECT_EQ(c.scaling.max, 1);
  EXPECT_EQ(c.scaling.targetConcurrency, 10);
  EXPECT_EQ(c.scaling.idleTimeoutMs, 60'000);
  EXPECT_FALSE(c.expose);
  EXPECT_EQ(m.exposed(), nullptr);
}

struct ErrorCase {
  const char* what;
  std::string yaml;
  std::string expected;  // a substring of the message, starting at "app.yaml:LINE: "
};

class ManifestErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ManifestErrorTest, NamesLineAndPath) {
  std::string msg = parseErr(GetParam().yaml);
  EXPECT_NE(msg.find(GetParam().expected), std::string::npos)
      << "message: " << msg << "\nexpected: " << GetParam().expected;
}

INSTANTIATE_TEST_SUITE_P(
    Errors, ManifestErrorTest,
    ::testing::Values(
        ErrorCase{"syntax", "kind: [\n", "app.yaml:2:1: "},
        ErrorCase{"empty", "", "app.yaml:1: the manifest is empty"},
        ErrorCase{"not a map", "- a\n- b\n", "app.yaml:1: expected a mapping with keys kind, "},
        ErrorCase{"missing kind", "name: a\ncomponents: []\n", "app.yaml:1: kind: missing"},
        ErrorCase{"wrong kind", "kind: Deployment\nname: a\ncomponents: []\n",
                  "app.yaml:1: kind: 'Deployment' is not supported (expected Application)"},
        ErrorCase{"unknown top key", "kind: Application\nname: a\nspec: {}\ncomponents: []\n",
                  "app.yaml:3: spec: unknown key (allowed here: kind, name, components)"},
        ErrorCase{"duplicate key", "kind: Application\nname: a\nname: b\ncomponents: []\n",
                  "app.yaml:3: name: duplicate key"},
        ErrorCase{"bad app name",
                  "kind: Application\nname: Hello\ncomponents:\n  - {name: w, "
                  "image: busybox}\n",
                  "app.yaml:2: name: 'Hello' is not a valid name"},
        ErrorCase{"no components", "kind: Application\nname: a\ncomponents: []\n",
                  "app.yaml:3: components: at least one component is required"},
        ErrorCase{"components not a list", "kind: Application\nname: a\ncomponents: {}\n",
                  "app.yaml:3: components: expected a list of components, got a mapping"},
        ErrorCase{"unknown component key", withComponent("    image: busybox\n    ports: [1]\n"),
                  "app.yaml:6: components[0].ports: unknown key (allowed here: name, image, "
                  "bundle, command, args, env, resources, expose, scaling)"},
        ErrorCase{"missing name", "kind: Application\nname: a\ncomponents:\n  - image: x\n",
                  "app.yaml:4: components[0].name: missing"},
        ErrorCase{"long name",
                  withComponent("    image: busybox\n  - name: "
                                "abcdefghijklmnopqrstuvwxyz0123456\n    image: busybox\n"),
                  "app.yaml:6: components[1].name: 'abcdefghijklmnopqrstuvwxyz0123456' is not a "
                  "valid name"},
        ErrorCase{"underscore name",
                  "kind: Application\nname: a\ncomponents:\n  - name: my_web\n    image: x\n",
                  "app.yaml:4: components[0].name: 'my_web' is not a valid name"},
        ErrorCase{"duplicate name",
                  withComponent("    image: busybox\n  - name: web\n    "
                                "image: busybox\n"),
                  "app.yaml:6: components[1].name: 'web' is already the name of components[0]"},
        ErrorCase{"image and bundle", withComponent("    image: busybox\n    bundle: ./x.tar\n"),
                  "app.yaml:4: components[0]: has both image and bundle"},
        ErrorCase{"neither image nor bundle", withComponent("    args: []\n"),
                  "app.yaml:4: components[0]: needs an image"},
        ErrorCase{"bad image", withComponent("    image: \"Foo Bar\"\n"),
                  "app.yaml:5: components[0].image: 'Foo Bar' is not an image reference"},
        ErrorCase{"command not a list",
                  withComponent("    image: busybox\n    command: /bin/sh -c x\n"),
                  "app.yaml:6: components[0].command: expected a list of strings, got a scalar"},
        ErrorCase{"args element a map",
                  withComponent("    image: busybox\n    args:\n      - a\n      - {b: c}\n"),
                  "app.yaml:8: components[0].args[1]: expected a string, got a mapping"},
        ErrorCase{"bad env name",
                  withComponent("    image: busybox\n    env:\n      - name: 1ABC\n"),
                  "app.yaml:7: components[0].env[0].name: '1ABC' is not a valid variable name"},
        ErrorCase{"duplicate env",
                  withComponent("    image: busybox\n    env:\n      - {name: A, value: x}\n"
                                "      - {name: A, value: y}\n"),
                  "app.yaml:8: components[0].env[1].name: 'A' is already set by env[0]"},
        ErrorCase{"unknown env key",
                  withComponent("    image: busybox\n    env:\n      - {name: A, valu: x}\n"),
                  "app.yaml:7: components[0].env[0].valu: unknown key (allowed here: name, "
                  "value, secret)"},
        ErrorCase{"env not a list", withComponent("    image: busybox\n    env: {A: b}\n"),
                  "app.yaml:6: components[0].env: expected a list of {name, value, secret}"},
        ErrorCase{"bad secret flag",
                  withComponent("    image: busybox\n    env:\n      - {name: A, value: x, "
                                "secret: maybe}\n"),
                  "app.yaml:7: components[0].env[0].secret: expected true or false, got 'maybe'"},
        ErrorCase{"bad cpu", withComponent("    image: busybox\n    resources: {cpu: 5 cores}\n"),
                  "app.yaml:6: components[0].resources.cpu: '5 cores' is not a CPU quantity "
                  "(expected 500m, 0.5 or 2)"},
        ErrorCase{"tiny cpu", withComponent("    image: busybox\n    resources:\n      cpu: 1m\n"),
                  "app.yaml:7: components[0].resources.cpu: 1m is out of range"},
        ErrorCase{"bad memory",
                  withComponent("    image: busybox\n    resources:\n      memory: lots\n"),
                  "app.yaml:7: components[0].resources.memory: 'lots' is not a memory quantity"},
        ErrorCase{"huge memory",
                  withComponent("    image: busybox\n    resources:\n      memory: 2Ti\n"),
                  "app.yaml:7: components[0].resources.memory: 2Ti is out of range"},
        ErrorCase{"unknown resource",
                  withComponent("    image: busybox\n    resources: {gpu: 1}\n"),
                  "app.yaml:6: components[0].resources.gpu: unknown key (allowed here: cpu, "
                  "memory, storage)"},
        ErrorCase{"storage too small",
                  withComponent("    image: busybox\n    resources:\n      storage: 1Mi\n"),
                  "app.yaml:7: components[0].resources.storage: 1Mi is out of range"},
        ErrorCase{"storage not a size",
                  withComponent("    image: busybox\n    resources:\n      storage: lots\n"),
                  "app.yaml:7: components[0].resources.storage: 'lots' is not a storage quantity"},
        ErrorCase{"port range",
                  withComponent("    image: busybox\n    expose:\n      port: 70000\n"),
                  "app.yaml:7: components[0].expose.port: 70000 is out of range (expected 1 to "
                  "65535)"},
        ErrorCase{"port missing", withComponent("    image: busybox\n    expose: {hostname: a}\n"),
                  "app.yaml:6: components[0].expose.port: missing"},
        ErrorCase{"port not a number",
                  withComponent("    image: busybox\n    expose: {port: http}\n"),
                  "app.yaml:6: components[0].expose.port: expected an integer, got 'http'"},
        ErrorCase{"bad hostname",
                  withComponent("    image: busybox\n    expose:\n      port: 80\n      "
                                "hostname: -bad\n"),
                  "app.yaml:8: components[0].expose.hostname: '-bad' is not a DNS label"},
        ErrorCase{"two exposed",
                  withComponent("    image: busybox\n    expose: {port: 80}\n  - name: api\n"
                                "    image: busybox\n    expose: {port: 81}\n"),
                  "app.yaml:9: components[1].expose: only one component per application may be "
                  "exposed, and components[0] (web) already is"},
        ErrorCase{"min > max",
                  withComponent("    image: busybox\n    scaling:\n      min: 3\n      max: 2\n"),
                  "app.yaml:7: components[0].scaling.min: 3 is out of range (expected 0 to max, "
                  "2)"},
        ErrorCase{"max 0", withComponent("    image: busybox\n    scaling:\n      max: 0\n"),
                  "app.yaml:7: components[0].scaling.max: 0 is out of range (expected 1 to 100)"},
        ErrorCase{"max 101", withComponent("    image: busybox\n    scaling:\n      max: 101\n"),
                  "app.yaml:7: components[0].scaling.max: 101 is out of range (expected 1 to "
                  "100)"},
        ErrorCase{"negative min", withComponent("    image: busybox\n    scaling: {min: -1}\n"),
                  "app.yaml:6: components[0].scaling.min: -1 is out of range"},
        ErrorCase{"targetConcurrency 0",
                  withComponent("    image: busybox\n    scaling: {targetConcurrency: 0}\n"),
                  "app.yaml:6: components[0].scaling.targetConcurrency: 0 is out of range"},
        ErrorCase{"idleTimeout unit",
                  withComponent("    image: busybox\n    scaling: {idleTimeout: 60}\n"),
                  "app.yaml:6: components[0].scaling.idleTimeout: '60' is not a duration"},
        ErrorCase{"idleTimeout short",
                  withComponent("    image: busybox\n    scaling:\n      idleTimeout: 500ms\n"),
                  "app.yaml:7: components[0].scaling.idleTimeout: 500ms is out of range "
                  "(expected 1s to 168h)"},
        ErrorCase{"unknown scaling key",
                  withComponent("    image: busybox\n    scaling: {maximum: 3}\n"),
                  "app.yaml:6: components[0].scaling.maximum: unknown key (allowed here: min, "
                  "max, targetConcurrency, idleTimeout)"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) {
      std::string n;
      for (char c : std::string(info.param.what)) n += std::isalnum(c) ? c : '_';
      return n;
    });

TEST(ManifestTest, SecretValuesNeverInErrors) {
  // A secret value of the wrong shape, and a secret that is too long: neither message shows it.
  std::string msg = parseErr(withComponent(
      "    image: busybox\n    env:\n      - name: K\n        secret: true\n        value: "
      "[hunter2]\n"));
  EXPECT_EQ(msg.find("hunter2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("app.yaml:9: components[0].env[0].value: expected a string"),
            std::string::npos)
      << msg;
  std::string big(kMaxEnvValueBytes + 1, 'z');
  msg =
      parseErr(withComponent("    image: busybox\n    env:\n      - {name: K, secret: true, "
                             "value: " +
                             big + "}\n"));
  EXPECT_EQ(msg.find("zzz"), std::string::npos);
  EXPECT_NE(msg.find("components[0].env[0].value: longer than"), std::string::npos) << msg;
}

TEST(ManifestTest, TooLarge) {
  std::string msg = parseErr(std::string(kMaxManifestBytes + 1, '#'));
  EXPECT_NE(msg.find("at most"), std::string::npos);
}

TEST(ManifestTest, DeepNestingIsAnErrorNotACrash) {
  // parseErr fails the test when the input is accepted or the error is not kInvalidArgument.
  std::string deep(100'000, '[');
  EXPECT_NE(parseErr(deep).find("app.yaml"), std::string::npos);
  EXPECT_NE(parseErr("kind: " + std::string(50'000, '{')).find("app.yaml"), std::string::npos);
}

TEST(ManifestTest, Durations) {
  EXPECT_EQ(*parseDurationMs("30s"), 30'000);
  EXPECT_EQ(*parseDurationMs("5m"), 300'000);
  EXPECT_EQ(*parseDurationMs("1500ms"), 1500);
  EXPECT_EQ(*parseDurationMs("1h"), 3'600'000);
  EXPECT_EQ(*parseDurationMs("1h30m"), 5'400'000);
  for (const char* bad : {"", "s", "10", "1.5s", "-1s", "1d", "10 s", "99999999999999999999h"})
    EXPECT_FALSE(parseDurationMs(bad).isOk()) << bad;
  EXPECT_EQ(formatDurationMs(60'000), "1m");
  EXPECT_EQ(formatDurationMs(1500), "1500ms");
  EXPECT_EQ(formatDurationMs(7'200'000), "2h");
  EXPECT_EQ(formatDurationMs(45'000), "45s");
}

TEST(ManifestTest, JsonRoundTrip) {
  Manifest m = parseOk(kFull);
  nlohmann::json j = toJson(m);
  EXPECT_EQ(j["components"][1]["image"], "bundle:worker");
  EXPECT_EQ(j["components"][0]["resources"]["cpuMillis"], 500);
  EXPECT_EQ(j["components"][0]["scaling"]["idleTimeoutMs"], 60'000);
  EXPECT_EQ(j["components"][0]["env"][1]["value"], "s3cret");
  auto back = manifestFromJson(j);
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(toJson(*back), j);
  EXPECT_TRUE(back->components[1].bundled());
  EXPECT_EQ(back->components[1].bundlePath, "");
  EXPECT_EQ(back->components[0].env[1].value, "s3cret");
  // Through text too.
  auto again = manifestFromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(toJson(*again), j);
}

TEST(ManifestTest, RedactSecrets) {
  Manifest m = parseOk(kFull);
  nlohmann::json j = toJson(m, /*redactSecrets=*/true);
  EXPECT_EQ(j["components"][0]["env"][1]["value"], "***");
  EXPECT_EQ(j["components"][0]["env"][0]["value"], "hi");
  EXPECT_EQ(j.dump().find("s3cret"), std::string::npos);
}

TEST(ManifestTest, JsonErrorsNamePaths) {
  nlohmann::json good = toJson(parseOk(kFull));
  auto expectErr = [](nlohmann::json j, const std::string& want) {
    auto m = manifestFromJson(j);
    ASSERT_FALSE(m.isOk());
    EXPECT_EQ(m.status().code(), Code::kInvalidArgument);
    EXPECT_NE(m.status().message().find(want), std::string::npos) << m.status().message();
  };
  auto j = good;
  j["extra"] = 1;
  expectErr(j, "extra: unknown key");
  j = good;
  j["components"][0]["scaling"]["max"] = "4";
  expectErr(j, "components[0].scaling.max: expected an integer");
  j = good;
  j["components"][0]["scaling"]["max"] = 1000;
  expectErr(j, "components[0].scaling.max: 1000 is out of range");
  j = good;
  j["components"][1]["image"] = "bundle:web";
  expectErr(j, "components[1].image: a bundled image must be written \"bundle:worker\"");
  j = good;
  j["components"][0].erase("resources");
  expectErr(j, "components[0].resources: missing");
  j = good;
  j["components"][0]["env"][0]["secret"] = "yes";
  expectErr(j, "components[0].env[0].secret: expected true or false");
  j = good;
  j["components"][0]["resources"]["memoryBytes"] = 18446744073709551615ull;
  expectErr(j, "components[0].resources.memoryBytes: out of range");
  j = good;
  j["components"][1]["expose"] = {{"port", 80}};
  expectErr(j, "components[1].expose: only one component");
  j = good;
  j["kind"] = "Job";
  expectErr(j, "kind: 'Job' is not supported");
  expectErr(nlohmann::json::array(), "manifest: expected an object");
}

TEST(ManifestTest, ValidateManifestDirectly) {
  Manifest m = parseOk(kFull);
  EXPECT_TRUE(validateManifest(m).isOk());
  m.components[0].scaling.min = 5;
  Status st = validateManifest(m);
  EXPECT_EQ(st.message(), "components[0].scaling.min: 5 is out of range (expected 0 to max, 4)");
  m = parseOk(kFull);
  m.components[1].bundlePath.clear();
  EXPECT_FALSE(validateManifest(m).isOk());
  EXPECT_TRUE(validateManifest(m, /*allowBundledWithoutPath=*/true).isOk());
}

TEST(ManifestTest, ToDeploymentSpec) {
  Manifest m = parseOk(kFull);
  auto spec = toDeploymentSpec(m, "dep-1", "mer1owner");
  EXPECT_EQ(spec.id, "dep-1");
  EXPECT_EQ(spec.owner, "mer1owner");
  EXPECT_EQ(spec.labels["mercato.app"], "hello");
  ASSERT_EQ(spec.services.size(), 2u);
  const auto& web = spec.services[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.image, "127.0.0.1:5000/mercato/sample:v1");
  EXPECT_EQ(web.kind, runtime::WorkloadKind::kService);
  EXPECT_EQ(web.replicas, 0);
  EXPECT_EQ(web.command, std::vector<std::string>{"/bin/sample-server"});
  EXPECT_EQ(web.args.size(), 2u);
  ASSERT_EQ(web.ports.size(), 1u);
  EXPECT_EQ(web.ports[0].port, 8080);
  EXPECT_EQ(web.ports[0].protocol, "tcp");
  ASSERT_EQ(web.env.size(), 2u);
  EXPECT_TRUE(web.env[1].secret);
  EXPECT_EQ(web.env[1].value, "s3cret");
  EXPECT_EQ(web.resources.cpuMillis, 500);
  EXPECT_EQ(web.resources.memoryBytes, 128ll << 20);
  EXPECT_EQ(spec.services[1].replicas, 1);
  EXPECT_TRUE(spec.services[1].ports.empty());

  auto rewritten = toDeploymentSpec(
      m, "dep-1", "o", [](const Component& c) { return "/data/images/" + c.name + ".tar"; });
  EXPECT_EQ(rewritten.services[1].image, "bundle:worker");
  EXPECT_EQ(rewritten.services[1].imageLayout, "/data/images/worker.tar");
  EXPECT_EQ(rewritten.services[0].image, "127.0.0.1:5000/mercato/sample:v1");
  EXPECT_EQ(rewritten.services[0].imageLayout, "") << "a registry image never gets a layout path";
}

// Issue 12, finding 9: "image: oci-layout:build" made the provider import a host path relative
// to its working directory. A manifest's image string is only ever a registry reference now; the
// host path of a bundled image travels out of band (ServiceSpec::imageLayout).
TEST(ManifestTest, NoImageStringReachesTheHostLayoutPath) {
  int parsed = 0;
  for (const std::string image : {"oci-layout:build", "oci-layout:/etc", "bundle:web"}) {
    auto m = parseManifest(
        "kind: Application\nname: app\ncomponents:\n  - name: web\n    image: \"" + image + "\"\n",
        "app.yaml");
    if (!m.isOk()) {  // refused outright is fine too
      std::cerr << image << ": " << m.status().message() << "\n";
      continue;
    }
    ++parsed;
    bool askedForLayout = false;
    auto spec = toDeploymentSpec(*m, "d1", "o", [&](const Component&) {
      askedForLayout = true;
      return std::string("/provider/stored.tar");
    });
    EXPECT_FALSE(askedForLayout) << image;
    EXPECT_EQ(spec.services[0].image, image);
    EXPECT_EQ(spec.services[0].imageLayout, "") << image;
  }
  EXPECT_GE(parsed, 1) << "no case reached toDeploymentSpec: the test checked nothing";
}

TEST(ManifestTest, LoadFileResolvesBundleRelativeToManifest) {
  auto dir = std::filesystem::temp_directory_path() / ("manifest-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "app.yaml") << kFull; }
  auto m = loadManifestFile((dir / "app.yaml").string());
  ASSERT_TRUE(m.isOk()) << m.status().toString();
  EXPECT_EQ(m->components[1].bundlePath, (dir / "image.tar").string());
  auto missing = loadManifestFile((dir / "nope.yaml").string());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  { std::ofstream(dir / "bad.yaml") << "kind: Application\nname: x\ncomponents: 3\n"; }
  auto bad = loadManifestFile((dir / "bad.yaml").string());
  EXPECT_NE(bad.status().message().find((dir / "bad.yaml").string() + ":3: components:"),
            std::string::npos)
      << bad.status().message();
  std::filesystem::remove_all(dir);
}

TEST(ManifestTest, Examples) {
  for (const char* ex : {"hello", "two-tier", "bundled"}) {
    std::string path = std::string(MERCATO_SOURCE_DIR) + "/examples/" + ex + "/app.yaml";
    auto m = loadManifestFile(path);
    EXPECT_TRUE(m.isOk()) << path << ": " << m.status().toString();
  }
}

}  // namespace
}  // namespace mercato::manifest
