// The facade's forwarding rules as pure functions: hop-by-hop stripping (RFC 9110 7.6.1), the
// upstream request rewrite (X-Forwarded-*, target, version) and the relay helpers.
#include "provider/facade/forwarding.hpp"

#include <gtest/gtest.h>

namespace mercato::provider::facade_detail {
namespace {

http::request<http::buffer_body> request(http::verb verb, const std::string& target,
                                         unsigned version = 11) {
  http::request<http::buffer_body> r;
  r.method(verb);
  r.target(target);
  r.version(version);
  return r;
}

TEST(ForwardingTest, HopByHopFieldsAndTheFieldsConnectionNamesAreStripped) {
  http::fields f;
  f.set(http::field::connection, "keep-alive, X-Secret ,  x-other");
  f.set("X-Secret", "s");
  f.set("X-Other", "o");
  f.set(http::field::keep_alive, "timeout=5");
  f.set(http::field::proxy_authorization, "Basic Zm9v");
  f.set(http::field::proxy_connection, "keep-alive");
  f.set(http::field::te, "trailers");
  f.set(http::field::trailer, "X-Sum");
  f.set(http::field::upgrade, "websocket");
  f.set(http::field::transfer_encoding, "chunked");
  f.set("X-Kept", "k");
  stripHopByHop(f, /*keepUpgrade=*/false);
  for (auto name : {"Connection", "X-Secret", "X-Other", "Keep-Alive", "Proxy-Authorization",
                    "Proxy-Connection", "TE", "Trailer", "Upgrade"})
    EXPECT_EQ(f.count(name), 0u) << name;
  EXPECT_EQ(f[http::field::transfer_encoding], "chunked") << "Beast re-frames the body from it";
  EXPECT_EQ(f["X-Kept"], "k");

  http::fields g;
  g.set(http::field::connection, "Upgrade");
  g.set(http::field::upgrade, "websocket");
  stripHopByHop(g, /*keepUpgrade=*/true);
  EXPECT_EQ(g[http::field::upgrade], "websocket");
  EXPECT_EQ(g.count(http::field::connection), 0u);
}

// Connection naming a field the framing depends on (or itself) must not strip it.
TEST(ForwardingTest, ConnectionCannotStripFramingFields) {
  http::fields f;
  f.set(http::field::connection, "content-length, host, transfer-encoding, connection");
  f.set(http::field::content_length, "3");
  f.set(http::field::host, "a.example");
  stripHopByHop(f, false);
  EXPECT_EQ(f[http::field::content_length], "3");
  EXPECT_EQ(f[http::field::host], "a.example");
}

TEST(ForwardingTest, TokensAreMatchedCaseInsensitivelyAcrossRepeatedFields) {
  http::fields f;
  f.insert(http::field::connection, "keep-alive");
  f.insert(http::field::connection, " UPGRADE ");
  EXPECT_TRUE(hasToken(f, http::field::connection, "upgrade"));
  EXPECT_FALSE(hasToken(f, http::field::connection, "close"));
  EXPECT_FALSE(hasToken(f, http::field::upgrade, "websocket"));
}

TEST(ForwardingTest, UpstreamRequestCarriesForwardedFieldsAndTheStrippedTarget) {
  auto r = request(http::verb::post, "/d/dep1/api?q=1", 10);
  r.set(http::field::host, "provider.example:8080");
  r.set("X-Forwarded-For", "203.0.113.9");
  r.set(http::field::expect, "100-continue");
  r.set(http::field::connection, "keep-alive");
  const ForwardedRequest f = prepareUpstreamRequest(r, "198.51.100.7", "/api?q=1", "/d/dep1");
  EXPECT_TRUE(f.keepAlive);
  EXPECT_EQ(f.version, 10u);
  EXPECT_TRUE(f.expectContinue);
  EXPECT_FALSE(f.idempotent);
  EXPECT_FALSE(f.isHead);
  EXPECT_FALSE(f.upgrade);
  EXPECT_EQ(r.target(), "/api?q=1");
  EXPECT_EQ(r.version(), 11u);
  EXPECT_EQ(r["X-Forwarded-For"], "203.0.113.9, 198.51.100.7");
  EXPECT_EQ(r["X-Forwarded-Host"], "provider.example:8080");
  EXPECT_EQ(r["X-Forwarded-Proto"], "http");
  EXPECT_EQ(r["X-Forwarded-Prefix"], "/d/dep1");
  EXPECT_EQ(r.count(http::field::expect), 0u) << "the facade answers 100-continue itself";
  EXPECT_EQ(r.count(http::field::connection), 0u);
}

TEST(ForwardingTest, HostRoutedUpgradeKeepsUpgradeAndHasNoPrefix) {
  auto r = request(http::verb::get, "/ws");
  r.set(http::field::host, "dep1.apps.example");
  r.set(http::field::connection, "Upgrade");
  r.set(http::field::upgrade, "websocket");
  const ForwardedRequest f = prepareUpstreamRequest(r, "10.0.0.1", "/ws", "");
  EXPECT_TRUE(f.upgrade);
  EXPECT_TRUE(f.idempotent);
  EXPECT_EQ(r[http::field::upgrade], "websocket");
  EXPECT_EQ(r[http::field::connection], "Upgrade");
  EXPECT_EQ(r["X-Forwarded-For"], "10.0.0.1");
  EXPECT_EQ(r.count("X-Forwarded-Prefix"), 0u);

  auto plain = request(http::verb::get, "/");
  plain.set(http::field::upgrade, "websocket");  // without Connection: Upgrade it is no upgrade
  EXPECT_FALSE(prepareUpstreamRequest(plain, "10.0.0.1", "/", "").upgrade);
  EXPECT_EQ(plain.count(http::field::upgrade), 0u);
}

TEST(ForwardingTest, RelayHelpers) {
  for (auto v : {http::verb::get, http::verb::head, http::verb::put, http::verb::delete_,
                 http::verb::options, http::verb::trace})
    EXPECT_TRUE(isIdempotent(v)) << http::to_string(v);
  for (auto v : {http::verb::post, http::verb::patch, http::verb::connect})
    EXPECT_FALSE(isIdempotent(v)) << http::to_string(v);
  EXPECT_EQ(relayChunkSize(uint64_t{100}), 100u);
  EXPECT_EQ(relayChunkSize(uint64_t{0}), 1u);
  EXPECT_EQ(relayChunkSize(boost::none), kRelayChunk);
  EXPECT_EQ(relayChunkSize(uint64_t{10} << 30), kRelayChunk);
  EXPECT_TRUE(isStaleConnectionError(http::error::end_of_stream));
  EXPECT_TRUE(isStaleConnectionError(asio::error::connection_reset));
  EXPECT_FALSE(isStaleConnectionError(beast::error::timeout));
}

}  // namespace
}  // namespace mercato::provider::facade_detail
