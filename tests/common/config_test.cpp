#include "common/config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace mercato {
namespace {

TEST(Config, SyntaxErrorNamesFileLineAndColumn) {
  auto r = parseYaml("a: 1\nb: [1, 2\n", "node.yaml");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(r.status().message().rfind("node.yaml:", 0) == 0) << r.status().message();
}

TEST(Config, TypedFieldsWithPaths) {
  auto n = parseYaml("ledger:\n  chainId: test\n  grace: soon\n  dev: true\n", "cfg.yaml");
  ASSERT_TRUE(n.isOk());
  YAML::Node ledger = (*n)["ledger"];
  EXPECT_EQ(yamlString(ledger, "chainId", "ledger", "cfg.yaml", "").value(), "test");
  EXPECT_EQ(yamlString(ledger, "missing", "ledger", "cfg.yaml", "dflt").value(), "dflt");
  EXPECT_TRUE(yamlBool(ledger, "dev", "ledger", "cfg.yaml", false).value());
  auto bad = yamlInt(ledger, "grace", "ledger", "cfg.yaml", 0);
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(), "cfg.yaml:3: ledger.grace: expected an integer, got 'soon'");
}

TEST(Config, MissingFileIsNotFound) {
  auto r = loadYamlFile("/nonexistent/mercato.yaml");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
}

TEST(Config, LoadsFile) {
  auto path = std::filesystem::temp_directory_path() / "mercato_config_test.yaml";
  std::ofstream(path) << "listen: 127.0.0.1:7400\n";
  auto r = loadYamlFile(path.string());
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ((*r)["listen"].as<std::string>(), "127.0.0.1:7400");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace mercato
