// Micro-benchmarks of the ledger's per-transaction costs, to see where the HTTP throughput goes:
// raw Ed25519 verify (libsodium, the reference), JSON parse + strict decode, and the state
// machine applying transfers in group commits of 64 on a WAL database with synchronous=FULL.
#include <benchmark/benchmark.h>
#include <sodium.h>

#include <filesystem>

#include "ledger/embedded/state_machine.hpp"
#include "ledger/tx.hpp"

using namespace mercato;
using namespace mercato::ledger;

namespace {

crypto::Identity seeded(uint8_t n) {
  std::array<uint8_t, 32> s{};
  s.fill(n);
  return crypto::Identity::fromSeed(s).value();
}

std::vector<SignedTx> makeTransfers(int accounts, int perAccount, const std::string& chain) {
  std::vector<crypto::Identity> keys;
  for (int i = 0; i < accounts; ++i) keys.push_back(crypto::Identity::generate());
  auto sink = seeded(200);
  std::vector<SignedTx> out;
  for (int r = 0; r < perAccount; ++r)
    for (int a = 0; a < accounts; ++a)
      out.push_back(signTx(Tx{chain, TxKind::kTransfer, keys[a].address(),
                              static_cast<uint64_t>(r + 1), TransferBody{sink.address(), 1}},
                           keys[a]));
  return out;
}

void BM_Ed25519Verify(benchmark::State& st) {
  auto txs = makeTransfers(64, 1, "c");
  size_t i = 0;
  for (auto _ : st) {
    const auto& t = txs[i++ % txs.size()];
    benchmark::DoNotOptimize(crypto_sign_verify_detached(
        t.signature.bytes.data(), reinterpret_cast<const uint8_t*>(t.signing.data()),
        t.signing.size(), t.signer.bytes.data()));
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_Ed25519Verify);

void BM_ParseAndDecode(benchmark::State& st) {
  auto txs = makeTransfers(64, 1, "c");
  std::vector<std::string> wire;
  for (const auto& t : txs) wire.push_back(toJson(t).dump());
  size_t i = 0;
  for (auto _ : st) {
    auto j = nlohmann::json::parse(wire[i++ % wire.size()]);
    benchmark::DoNotOptimize(decodeSignedTx(j));
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_ParseAndDecode);

void BM_ApplyTransfersGroupCommit(benchmark::State& st) {
  const auto dir = std::filesystem::temp_directory_path() / "mercato-micro-bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  SQLite::Database db((dir / "l.db").string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("PRAGMA synchronous=FULL");
  db.exec("PRAGMA cache_size=-65536");
  embedded::StateMachine sm(db);
  embedded::GenesisParams g;
  g.chainId = "c";
  g.devMode = true;
  auto txs = makeTransfers(2000, 5, "c");
  for (size_t a = 0; a < 2000; ++a) g.allocations.emplace_back(txs[a].tx.from, 1'000'000);
  {
    SQLite::Transaction t(db);
    (void)sm.applyGenesis(g, 1);
    t.commit();
  }
  size_t i = 0;
  constexpr size_t kBatch = 64;
  for (auto _ : st) {
    SQLite::Transaction t(db);
    for (size_t k = 0; k < kBatch && i < txs.size(); ++k, ++i)
      if (!sm.apply(txs[i], 2).isOk()) st.SkipWithError("apply failed");
    t.commit();
    if (i >= txs.size()) break;
  }
  st.SetItemsProcessed(static_cast<int64_t>(i));
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_ApplyTransfersGroupCommit)->Iterations(150);

}  // namespace

BENCHMARK_MAIN();
