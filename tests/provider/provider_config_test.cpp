// provider.yaml parsing: defaults, every section optional, and errors that name file:line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "provider/provider_config.hpp"

namespace mercato::provider {
namespace {

using testing::HasSubstr;

TEST(ProviderConfigTest, SectionsAreOptional) {
  auto c = parseProviderConfig("prices: {cpuSecond: 0.0001, requests1k: 0.001}\n", "p.yaml");
  ASSERT_TRUE(c.isOk()) << c.status().message();
  EXPECT_EQ(c->prices.cpuSecond, 100);
  EXPECT_EQ(c->prices.requests1k, 1000);
  EXPECT_EQ(c->gatewayListen, "127.0.0.1:0");
  EXPECT_TRUE(parseProviderConfig("", "p.yaml").isOk());
}

TEST(ProviderConfigTest, StoragePriceIsPerGibHourAndOptional) {
  auto c = parseProviderConfig("prices: {cpuSecond: 0.0001, storageGibHour: 0.0002}\n", "p.yaml");
  ASSERT_TRUE(c.isOk()) << c.status().message();
  EXPECT_EQ(c->prices.storageGibHour, 200);
  EXPECT_EQ(c->prices.cpuSecond, 100);
  auto none = parseProviderConfig("prices: {cpuSecond: 0.0001}\n", "p.yaml");
  ASSERT_TRUE(none.isOk());
  EXPECT_EQ(none->prices.storageGibHour, 0);
  // The bid engine's scale rates default to the registered prices, storage included.
  auto bidding = parseProviderConfig("prices: {storageGibHour: 0.0003}\nbidding: {}\n", "p.yaml");
  ASSERT_TRUE(bidding.isOk()) << bidding.status().message();
  ASSERT_TRUE(bidding->bidding.has_value());
  EXPECT_EQ(bidding->bidding->pricing.rates.storageGibHour, 300);
  auto bad = parseProviderConfig("prices:\n  storageGibHour: -0.1\n", "p.yaml");
  ASSERT_FALSE(bad.isOk());
  EXPECT_THAT(bad.status().message(), HasSubstr("p.yaml:2"));
  EXPECT_THAT(bad.status().message(), HasSubstr("prices.storageGibHour"));
  auto typo = parseProviderConfig("prices: {storageGibSecond: 1}\n", "p.yaml");
  ASSERT_FALSE(typo.isOk());
  EXPECT_THAT(typo.status().message(), HasSubstr("storageGibSecond"));
}

TEST(ProviderConfigTest, DevConfigPricesStorage) {
  ProviderConfig c = devProviderConfig();
  EXPECT_GT(c.prices.storageGibHour, 0);
  ASSERT_TRUE(c.bidding.has_value());
  EXPECT_EQ(c.bidding->pricing.rates, c.prices);
}

TEST(ProviderConfigTest, FullConfig) {
  auto c = parseProviderConfig(R"(gateway: {listen: 0.0.0.0:7443, url: https://p.example:7443}
facade: {listen: 0.0.0.0:8080, domain: apps.example.com}
attributes: {region: eu-west}
capacity: {cpu: 2500m, memory: 4Gi, storage: 50Gi}
claimIntervalSeconds: 10
gracePeriodSeconds: 60
)",
                               "p.yaml");
  ASSERT_TRUE(c.isOk()) << c.status().message();
  EXPECT_EQ(c->capacity.cpu, 2500);
  EXPECT_EQ(c->capacity.memory, int64_t{4} << 30);
  EXPECT_EQ(c->attributes.at("region"), "eu-west");
  EXPECT_EQ(c->claimIntervalMs, 10'000);
  EXPECT_EQ(c->graceMs, 60'000);
  EXPECT_EQ(c->gatewayUrl, "https://p.example:7443");
}

TEST(ProviderConfigTest, ErrorsNameTheFieldAndLine) {
  auto bad = parseProviderConfig("capacity:\n  cpu: lots\n", "p.yaml");
  ASSERT_FALSE(bad.isOk());
  EXPECT_THAT(bad.status().message(), HasSubstr("p.yaml:2"));
  EXPECT_THAT(bad.status().message(), HasSubstr("capacity.cpu"));
  auto unknown = parseProviderConfig("facade: {port: 80}\n", "p.yaml");
  ASSERT_FALSE(unknown.isOk());
  EXPECT_THAT(unknown.status().message(), HasSubstr("facade.port"));
  EXPECT_FALSE(parseProviderConfig("claimIntervalSeconds: 0\n", "p.yaml").isOk());
  EXPECT_FALSE(parseProviderConfig("prices: {cpuSecond: -1}\n", "p.yaml").isOk());
  EXPECT_FALSE(parseProviderConfig("gateway: [1, 2]\n", "p.yaml").isOk());
}

}  // namespace
}  // namespace mercato::provider

namespace mercato::provider {
namespace {

TEST(ProviderConfigTest, SandboxIsTheProvidersAndChecked) {
  auto c = parseProviderConfig(
      "sandbox:\n"
      "  seccomp: {allow: [ptrace]}\n"
      "  egress: {allow: [10.0.5.0/24, 'fd00:1::/64']}\n"
      "  nameservers: [10.0.0.2]\n"
      "  diskQuotas: false\n"
      "  defaultStorage: 2Gi\n",
      "p.yaml");
  ASSERT_TRUE(c.isOk()) << c.status().message();
  EXPECT_EQ(c->sandbox.seccompAllow, std::vector<std::string>{"ptrace"});
  EXPECT_EQ(c->sandbox.egressAllow, (std::vector<std::string>{"10.0.5.0/24", "fd00:1::/64"}));
  EXPECT_EQ(c->sandbox.nameservers, std::vector<std::string>{"10.0.0.2"});
  EXPECT_TRUE(c->sandbox.userNamespaces);  // the default stays
  EXPECT_FALSE(c->sandbox.diskQuotas);
  EXPECT_EQ(c->sandbox.defaultStorageBytes, int64_t{2} << 30);

  auto none = parseProviderConfig("backend: runc\n", "p.yaml");
  ASSERT_TRUE(none.isOk());
  EXPECT_TRUE(none->sandbox.seccompAllow.empty());
  EXPECT_TRUE(none->sandbox.userNamespaces);
  EXPECT_TRUE(none->sandbox.diskQuotas);

  auto typo = parseProviderConfig("sandbox:\n  secomp: {allow: [ptrace]}\n", "p.yaml");
  ASSERT_FALSE(typo.isOk());
  EXPECT_NE(typo.status().message().find("p.yaml:2"), std::string::npos) << typo.status().message();
  EXPECT_NE(typo.status().message().find("secomp"), std::string::npos);
  auto scalar = parseProviderConfig("sandbox:\n  egress: {allow: 10.0.0.0/8}\n", "p.yaml");
  ASSERT_FALSE(scalar.isOk());
  EXPECT_NE(scalar.status().message().find("sandbox.egress.allow: expected a list of a CIDR"),
            std::string::npos)
      << scalar.status().message();
  auto small = parseProviderConfig("sandbox:\n  defaultStorage: 1Mi\n", "p.yaml");
  ASSERT_FALSE(small.isOk());
  EXPECT_NE(small.status().message().find("sandbox.defaultStorage"), std::string::npos);
}

}  // namespace
}  // namespace mercato::provider
