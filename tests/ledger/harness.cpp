#include "harness.hpp"

#include <gtest/gtest.h>

#include <array>

namespace mercato::ledger::testing {

crypto::Identity key(uint8_t n) {
  std::array<uint8_t, 32> seed{};
  seed.fill(n);
  return crypto::Identity::fromSeed(seed).value();
}

std::vector<TxRecord> readLog(SQLite::Database& db) {
  std::vector<TxRecord> out;
  SQLite::Statement q(
      db, "SELECT seq, hash, entry_hash, time, kind, sender, body FROM txlog ORDER BY seq");
  while (q.executeStep()) {
    TxRecord r;
    r.seq = q.getColumn(0).getInt64();
    r.hash = q.getColumn(1).getString();
    r.entryHash = q.getColumn(2).getString();
    r.time = q.getColumn(3).getInt64();
    r.kind = q.getColumn(4).getString();
    r.sender = q.getColumn(5).getString();
    r.body = nlohmann::json::parse(q.getColumn(6).getString());
    out.push_back(std::move(r));
  }
  return out;
}

Harness::Harness(bool dev, int64_t graceMs, Micros mintCap)
    : db(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE), sm(db) {
  embedded::GenesisParams g;
  g.chainId = chain;
  g.devMode = dev;
  g.closeGraceMs = graceMs;
  g.mintCap = mintCap;
  SQLite::Transaction t(db);
  auto r = sm.applyGenesis(g, now);
  if (!r.isOk()) throw std::runtime_error(r.status().toString());
  t.commit();
}

SignedTx Harness::sign(const crypto::Identity& id, TxKind kind, TxBody body) {
  uint64_t& n = nonces[id.address()];
  return signTx(Tx{chain, kind, id.address(), n + 1, std::move(body)}, id);
}

Result<embedded::Applied> Harness::apply(const SignedTx& tx) {
  SQLite::Transaction t(db);
  auto r = sm.apply(tx, now);
  t.commit();
  if (r.isOk()) nonces[tx.tx.from] = tx.tx.nonce;
  return r;
}

Result<embedded::Applied> Harness::run(const crypto::Identity& id, TxKind kind, TxBody body) {
  return apply(sign(id, kind, std::move(body)));
}

Micros Harness::balance(const std::string& address) {
  SQLite::Statement q(db, "SELECT balance FROM accounts WHERE address = ?");
  q.bind(1, address);
  return q.executeStep() ? q.getColumn(0).getInt64() : 0;
}

ProviderBody Harness::providerBody(Prices p) {
  ProviderBody b;
  b.nodeKey = std::string(64, 'a');
  b.gatewayUrl = "https://provider.example:8443";
  b.attributes = {{"region", "eu-west"}, {"tier", "community"}};
  b.capacity = {8000, 32ll << 30, 500ll << 30};
  b.prices = p;
  return b;
}

void Harness::expectRejected(const std::function<Result<embedded::Applied>()>& f, Code code,
                             const std::string& text) {
  const std::string root = sm.stateRoot();
  const uint64_t head = sm.headSeq();
  auto r = f();
  ASSERT_FALSE(r.isOk()) << "expected a rejection containing '" << text << "'";
  EXPECT_EQ(r.status().code(), code) << r.status().toString();
  EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status().message();
  EXPECT_EQ(sm.stateRoot(), root);
  EXPECT_EQ(sm.headSeq(), head);
}

}  // namespace mercato::ledger::testing
