// ledger_tps: sustained signed-transaction throughput of a real `mercatod --dev` through its
// HTTP API, with durability on (WAL + synchronous=FULL, one fsync per group commit), compared
// with the raw libsodium Ed25519 verify rate measured in the same run (the physical limit: the
// node must verify every signature).
//
// Transactions are signed before the clock starts (signing is the client's cost, not the
// ledger's). Two modes:
//   single: one transaction per POST /ledger/v1/txs, many keep-alive connections
//   batch:  POST /ledger/v1/txs/batch with --batch transactions per request
// Latency is measured per transaction from send to durable acknowledgement.
#include <sodium.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "crypto/keys.hpp"
#include "ledger/ledger.hpp"
#include "net/client.hpp"
#include "process.hpp"

using namespace mercato;
using namespace mercato::ledger;
using Clock = std::chrono::steady_clock;

namespace {

double verifyRate(const std::vector<SignedTx>& txs, int threads) {
  std::vector<std::string> msgs;
  for (const auto& t : txs) msgs.push_back(signingBytes(t.tx));
  std::atomic<size_t> next{0};
  auto start = Clock::now();
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i)
    ts.emplace_back([&] {
      size_t k;
      while ((k = next++) < txs.size())
        if (crypto_sign_verify_detached(txs[k].signature.bytes.data(),
                                        reinterpret_cast<const uint8_t*>(msgs[k].data()),
                                        msgs[k].size(), txs[k].signer.bytes.data()) != 0)
          std::abort();
    });
  for (auto& t : ts) t.join();
  return txs.size() / std::chrono::duration<double>(Clock::now() - start).count();
}

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ledger_tps"};
  std::string mercatod = "build/bin/mercatod", mode = "single";
  int accounts = 2000, txPerAccount = 10, connections = 32, batch = 200;
  bool syncFull = true;
  app.add_option("--mercatod", mercatod, "Path to mercatod");
  app.add_option("--mode", mode, "single or batch")->check(CLI::IsMember({"single", "batch"}));
  app.add_option("--accounts", accounts, "Sending accounts");
  app.add_option("--tx-per-account", txPerAccount, "Transactions per account");
  app.add_option("--connections", connections, "Concurrent HTTP connections");
  app.add_option("--batch", batch, "Transactions per batch request (batch mode)");
  CLI11_PARSE(app, argc, argv);
  crypto::initCrypto();

  const auto dir =
      std::filesystem::temp_directory_path() / ("mercato-bench-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  // The node gets both cores' worth of I/O threads; the client competes for the same 2 cores.
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "node.yaml")
        << "http:\n  threads: 2\nledger:\n  syncFull: " << (syncFull ? "true" : "false") << "\n";
  }
  testing::DaemonProcess daemon(mercatod, dir.string(),
                                {"--dev", "--config", (dir / "node.yaml").string()});
  if (!daemon.start()) {
    std::fprintf(stderr, "could not start %s\n", mercatod.c_str());
    return 1;
  }
  LedgerConfig rc;
  rc.backend = "http";
  rc.url = daemon.url();
  auto remote = createLedger(rc).value();
  const std::string chain = remote->info()->chainId;
  auto sink = crypto::Identity::generate();

  // Fund the senders (minting is itself submitted in batches).
  std::vector<crypto::Identity> senders;
  for (int i = 0; i < accounts; ++i) senders.push_back(crypto::Identity::generate());
  auto client = net::HttpClient::create(daemon.url()).value();
  for (int i = 0; i < accounts; i += 500) {
    nlohmann::json txs = nlohmann::json::array();
    for (int k = i; k < std::min(accounts, i + 500); ++k)
      txs.push_back(toJson(signTx(Tx{chain, TxKind::kMint, senders[k].address(), 1,
                                     MintBody{senders[k].address(), 1'000'000'000}},
                                  senders[k])));
    auto r = client->postJson("/ledger/v1/txs/batch", {{"txs", txs}});
    if (!r.isOk()) {
      std::fprintf(stderr, "funding failed: %s\n", r.status().toString().c_str());
      return 1;
    }
  }
  // Pre-sign every transfer. Connection c owns accounts c, c+C, ... so nonces stay ordered.
  std::vector<std::vector<SignedTx>> perConn(connections);
  std::vector<SignedTx> all;
  for (int round = 0; round < txPerAccount; ++round)
    for (int a = 0; a < accounts; ++a) {
      SignedTx t = signTx(Tx{chain, TxKind::kTransfer, senders[a].address(),
                             static_cast<uint64_t>(round + 2), TransferBody{sink.address(), 1}},
                          senders[a]);
      perConn[a % connections].push_back(t);
      all.push_back(t);
    }
  std::vector<std::vector<std::string>> bodies(connections);
  for (int c = 0; c < connections; ++c) {
    auto& v = perConn[c];
    if (mode == "single") {
      for (const auto& t : v) bodies[c].push_back(toJson(t).dump());
    } else {
      for (size_t i = 0; i < v.size(); i += batch) {
        nlohmann::json txs = nlohmann::json::array();
        for (size_t k = i; k < std::min(v.size(), i + batch); ++k) txs.push_back(toJson(v[k]));
        bodies[c].push_back(nlohmann::json{{"txs", txs}}.dump());
      }
    }
  }
  // Ordering within a connection: with single mode a connection only sends its next
  // transaction after the previous one is acknowledged, so its nonces arrive in order.
  std::atomic<long> ok{0}, failed{0};
  std::vector<std::vector<double>> lat(connections);
  auto start = Clock::now();
  std::vector<std::thread> ts;
  for (int c = 0; c < connections; ++c)
    ts.emplace_back([&, c] {
      auto cl = net::HttpClient::create(daemon.url()).value();
      for (const auto& body : bodies[c]) {
        auto t0 = Clock::now();
        auto r = cl->request("POST", mode == "single" ? "/ledger/v1/txs" : "/ledger/v1/txs/batch",
                             body, {{"Content-Type", "application/json"}});
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (!r.isOk() || r->status != 200) {
          ++failed;
          continue;
        }
        if (mode == "single") {
          ++ok;
          lat[c].push_back(ms);
        } else {
          auto j = nlohmann::json::parse(r->body);
          for (const auto& res : j["results"]) {
            if (res.contains("receipt")) {
              ++ok;
              lat[c].push_back(ms);
            } else {
              ++failed;
            }
          }
        }
      }
    });
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> latencies;
  for (auto& v : lat) latencies.insert(latencies.end(), v.begin(), v.end());
  const double tps = ok / secs;
  const double p50 = pct(latencies, 0.50), p99 = pct(latencies, 0.99);
  daemon.terminate();

  const double v1 = verifyRate(all, 1), v2 = verifyRate(all, 2);
  auto sinkBal = 0;
  (void)sinkBal;
  std::printf(
      "{\"mode\":\"%s\",\"accounts\":%d,\"connections\":%d,\"batch\":%d,\"tx\":%ld,\"failed\":%ld,"
      "\"seconds\":%.3f,\"tps\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
      "\"verify_1core_per_s\":%.0f,\"verify_2core_per_s\":%.0f,\"ratio_to_2core_verify\":%.3f}\n",
      mode.c_str(), accounts, connections, mode == "batch" ? batch : 1, ok.load(), failed.load(),
      secs, tps, p50, p99, v1, v2, tps / v2);
  std::filesystem::remove_all(dir);
  return failed > 0 ? 1 : 0;
}
