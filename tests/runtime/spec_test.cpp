// Backend-neutral parts of the runtime: spec validation, the JSON form, the backend table.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/runtime.hpp"
#include "runtime/spec_json.hpp"

namespace mercato::runtime {
namespace {

using testing::HasSubstr;

DeploymentSpec sample() {
  DeploymentSpec s;
  s.id = "shop-1";
  s.owner = "mer1owner";
  ServiceSpec web;
  web.name = "web";
  web.image = "127.0.0.1:5000/shop/web:v1";
  web.command = {"/bin/server"};
  web.args = {"--port", "8080"};
  web.env = {{"MODE", "prod", false}, {"DB_PASSWORD", "hunter2", true}};
  web.resources = {500, 256 << 20, 64};
  web.ports = {{8080, "tcp", "http"}};
  web.replicas = 2;
  web.restart = RestartPolicy::kOnFailure;
  ServiceSpec job;
  job.name = "migrate";
  job.kind = WorkloadKind::kJob;
  job.image = "bundle:migrate";
  job.imageLayout = "/tmp/migrate.tar";
  s.services = {web, job};
  s.labels = {{"team", "a"}};
  return s;
}

TEST(SpecTest, JsonRoundTripKeepsEverything) {
  auto spec = sample();
  auto back = specFromJson(specToJson(spec));
  ASSERT_TRUE(back.isOk()) << back.status().message();
  EXPECT_EQ(specToJson(*back), specToJson(spec));
  EXPECT_EQ(back->services[0].env[1].value, "hunter2");
  EXPECT_EQ(back->services[1].kind, WorkloadKind::kJob);
  EXPECT_FALSE(back->services[1].restart.has_value());
}

TEST(SpecTest, RedactedFormHidesSecrets) {
  auto text = specToJson(sample(), true).dump();
  EXPECT_THAT(text, testing::Not(HasSubstr("hunter2")));
  EXPECT_THAT(text, HasSubstr("prod"));
}

TEST(SpecTest, JsonErrorsNameTheField) {
  auto j = specToJson(sample());
  j["services"][0]["ports"][0]["port"] = 70000;
  EXPECT_THAT(specFromJson(j).status().message(), HasSubstr("services[0].ports[0].port"));
  j = specToJson(sample());
  j["services"][1]["kind"] = "daemon";
  EXPECT_THAT(specFromJson(j).status().message(), HasSubstr("services[1].kind"));
  j = specToJson(sample());
  j["services"][0]["replicas"] = "two";
  EXPECT_THAT(specFromJson(j).status().message(), HasSubstr("services[0].replicas"));
  EXPECT_FALSE(specFromJson(nlohmann::json::array()).isOk());
}

TEST(SpecTest, ValidationNamesTheProblem) {
  EXPECT_TRUE(validateSpec(sample()).isOk());
  auto s = sample();
  s.id = "Shop_1";
  EXPECT_THAT(validateSpec(s).message(), HasSubstr("deployment id"));
  s = sample();
  s.services[1].name = "web";
  EXPECT_THAT(validateSpec(s).message(), HasSubstr("duplicate"));
  s = sample();
  s.services[0].replicas = -1;
  EXPECT_THAT(validateSpec(s).message(), HasSubstr("services.web.replicas"));
  s = sample();
  s.services[0].ports.push_back({8080, "tcp", ""});
  EXPECT_THAT(validateSpec(s).message(), HasSubstr("listed twice"));
  s = sample();
  s.services[0].env.push_back({"1BAD", "x", false});
  EXPECT_THAT(validateSpec(s).message(), HasSubstr("1BAD"));
  s = sample();
  s.services[0].image.clear();
  EXPECT_THAT(validateSpec(s).message(), HasSubstr("services.web.image"));
  s = sample();
  s.services.clear();
  EXPECT_FALSE(validateSpec(s).isOk());
}

TEST(SpecTest, UnknownBackendListsTheKnownOnes) {
  RuntimeConfig c;
  c.backend = "nomad";
  auto r = createRuntime(c);
  ASSERT_FALSE(r.isOk());
  EXPECT_THAT(r.status().message(), HasSubstr("runc"));
  EXPECT_THAT(r.status().message(), HasSubstr("nomad"));
}

}  // namespace
}  // namespace mercato::runtime
