// A manifest whose image travels inside the sealed bundle (`bundle:` an OCI layout), deployed
// through the real provider path with no registry anywhere: the sample image is built into an
// OCI layout on disk, the publisher seals it into the bundle, the gateway takes it in over HTTPS,
// the runc runtime imports and runs it, and a request through the facade is answered by the
// app. Needs root, runc and CNI: ctest label `runc`.
#include "fixtures.hpp"
#include "provider_fixture.hpp"

namespace mercato::provider {
namespace {

using ::testing::HasSubstr;
using testing_support::ProviderTest;

class BundledImageTest : public ProviderTest {
 protected:
  bool needsRegistry() const override { return false; }  // nothing may come from a registry
};

TEST_F(BundledImageTest, DeploysAndServesAnImageShippedInTheBundle) {
  mercato::testing::TempDir layout("mct-bundled-layout");
  auto built = mercato::testing::buildSampleImage(layout.path());
  ASSERT_TRUE(built.isOk()) << built.status().message();

  const std::string text =
      "kind: Application\n"
      "name: bundled\n"
      "components:\n"
      "  - name: web\n"
      "    bundle: " +
      layout.path() +
      "\n"
      "    resources: {cpu: 250m, memory: 64Mi}\n"
      "    expose: {port: 8080}\n"
      "    scaling: {min: 0, max: 1, idleTimeout: 1m}\n";
  manifest::Manifest m = app(text);
  ASSERT_EQ(m.components.size(), 1u);
  ASSERT_TRUE(m.components[0].bundled());

  std::string esc = openEscrow(*publisher_, kMicrosPerToken);
  auto gateway =
      publisher::GatewayClient::create(provider_->gatewayUrl(), node_->publicKey(), *publisher_);
  ASSERT_TRUE(gateway.isOk()) << gateway.status().message();
  auto receipt =
      (*gateway)->deploy(seal(esc, *publisher_, node_->publicKey(), m), {esc, node_->address()});
  ASSERT_TRUE(receipt.isOk()) << receipt.status().message();
  const std::string dep = receipt->deploymentId;

  // The runtime runs an image imported from the bundle, not a registry reference.
  auto first = get("/d/" + dep + "/");
  ASSERT_TRUE(first.isOk()) << first.status().message();
  EXPECT_EQ(first->status, 200) << first->body;
  EXPECT_THAT(first->body, HasSubstr("hello from"));
  auto st = runtime_->status(dep);
  ASSERT_TRUE(st.isOk()) << st.status().message();
  ASSERT_EQ(st->services.size(), 1u);
  EXPECT_EQ(st->services[0].imageDigest, built->manifest.digest);
  auto status = (*gateway)->status(dep);
  ASSERT_TRUE(status.isOk()) << status.status().message();
  EXPECT_EQ((*status)["state"], "active");
}

}  // namespace
}  // namespace mercato::provider
