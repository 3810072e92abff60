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
// A run that could not measure (mercatod did not start, wrk missing or failing, nothing
// applied) exits 1 with the reason and prints no figures.
#include <sodium.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "crypto/keys.hpp"
#include "ledger/ledger.hpp"
#include "net/client.hpp"
#include "process.hpp"

using namespace mercato;
using namespace mercato::ledger;
using Steady = std::chrono::steady_clock;

namespace {

double verifyRate(const std::vector<SignedTx>& txs, int threads) {
  std::vector<std::string> msgs;
  for (const auto& t : txs) msgs.push_back(signingBytes(t.tx));
  std::atomic<size_t> next{0};
  auto start = Steady::now();
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
  return txs.size() / std::chrono::duration<double>(Steady::now() - start).count();
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
  std::string sync = "full", clientKind = "native", wrkScript = "bench/ledger_submit.lua";
  int seconds = 8, wrkAccounts = 120'000;
  app.add_option("--client", clientKind,
                 "native: the project's HTTP client on N threads; wrk: wrk -t1 with pre-signed "
                 "transactions from distinct accounts")
      ->check(CLI::IsMember({"native", "wrk"}));
  app.add_option("--wrk-script", wrkScript, "Lua script for --client wrk");
  app.add_option("--seconds", seconds, "Duration of the wrk run");
  app.add_option("--wrk-accounts", wrkAccounts, "Pre-funded accounts (= transactions) for wrk");
  app.add_option("--sync", sync,
                 "full: fsync every group commit; normal: WAL without fsync on commit")
      ->check(CLI::IsMember({"full", "normal"}));
  CLI11_PARSE(app, argc, argv);
  syncFull = sync == "full";
  crypto::initCrypto();
  if (clientKind == "wrk") {
    if (std::system("command -v wrk >/dev/null 2>&1") != 0) {
      std::fprintf(stderr, "ledger_tps: wrk is not installed (scripts/setup.sh installs it)\n");
      return 1;
    }
    if (!std::filesystem::exists(wrkScript)) {
      std::fprintf(stderr, "ledger_tps: wrk script %s not found (run from the repository root)\n",
                   wrkScript.c_str());
      return 1;
    }
  }

  const auto dir =
      std::filesystem::temp_directory_path() / ("mercato-bench-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  // The node gets both cores' worth of I/O threads; the client competes for the same 2 cores.
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "node.yaml")
        << "http:\n  threads: 2\nledger:\n  syncFull: " << (syncFull ? "true" : "false") << "\n";
  }
  testing::DaemonProcess daemon(
      mercatod, dir.string(), {"--dev", "--no-provider", "--config", (dir / "node.yaml").string()});
  if (!daemon.start()) {
    std::fprintf(
        stderr, "ledger_tps: %s exited or did not answer /healthz within 15 s (its log is above)\n",
        mercatod.c_str());
    std::filesystem::remove_all(dir);
    return 1;
  }
  LedgerConfig rc;
  rc.backend = "http";
  rc.url = daemon.url();
  auto remote = createLedger(rc).value();
  const std::string chain = remote->info()->chainId;
  auto sink = crypto::Identity::generate();

  if (clientKind == "wrk") accounts = wrkAccounts;
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
  if (clientKind == "wrk") {
    const auto bodiesPath = dir / "bodies.ndjson";
    {
      std::ofstream out(bodiesPath);
      for (int a = 0; a < accounts; ++a)
        out << toJson(signTx(Tx{chain, TxKind::kTransfer, senders[a].address(), 2,
                                TransferBody{sink.address(), 1}},
                             senders[a]))
                   .dump()
            << "\n";
    }
    const uint64_t headBefore = remote->info()->headSeq;
    const std::string cmd = "BODIES=" + bodiesPath.string() + " wrk -t1 -c" +
                            std::to_string(connections) + " -d" + std::to_string(seconds) +
                            "s --latency -s " + wrkScript + " " + daemon.url() + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    while (p && fgets(buf, sizeof buf, p)) out += buf;
    const int wrkStatus = p ? pclose(p) : -1;
    const uint64_t applied = remote->info()->headSeq - headBefore;
    if (wrkStatus != 0 || out.find("Requests/sec:") == std::string::npos || applied == 0) {
      std::fprintf(stderr,
                   "ledger_tps: the wrk run did not measure (wrk status %d, %llu transactions "
                   "applied): %s\n",
                   wrkStatus, static_cast<unsigned long long>(applied), out.c_str());
      std::filesystem::remove_all(dir);
      return 1;
    }
    auto grab = [&](const std::string& key) -> std::string {
      auto pos = out.find(key);
      if (pos == std::string::npos) return "?";
      pos += key.size();
      while (pos < out.size() && out[pos] == ' ') ++pos;
      auto end = out.find_first_of(" \n", pos);
      return out.substr(pos, end - pos);
    };
    std::string non2xx = grab("Non-2xx or 3xx responses:");
    daemon.terminate();
    std::vector<SignedTx> sample;
    for (int a = 0; a < std::min(accounts, 20000); ++a)
      sample.push_back(signTx(
          Tx{chain, TxKind::kTransfer, senders[a].address(), 2, TransferBody{sink.address(), 1}},
          senders[a]));
    const double r1 = verifyRate(sample, 1), r2 = verifyRate(sample, 2);
    const double tps = applied / static_cast<double>(seconds);
    std::printf(
        "{\"client\":\"wrk\",\"sync\":\"%s\",\"connections\":%d,\"seconds\":%d,"
        "\"applied\":%llu,\"non2xx\":\"%s\",\"tps\":%.0f,\"p50\":\"%s\",\"p99\":\"%s\","
        "\"requests_per_s\":\"%s\",\"verify_1core_per_s\":%.0f,\"verify_2core_per_s\":%.0f,"
        "\"ratio_to_2core_verify\":%.3f}\n",
        sync.c_str(), connections, seconds, static_cast<unsigned long long>(applied),
        non2xx == "?" ? "0" : non2xx.c_str(), tps, grab("50%").c_str(), grab("99%").c_str(),
        grab("Requests/sec:").c_str(), r1, r2, tps / r2);
    std::filesystem::remove_all(dir);
    return 0;
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
  auto start = Steady::now();
  std::vector<std::thread> ts;
  for (int c = 0; c < connections; ++c)
    ts.emplace_back([&, c] {
      auto cl = net::HttpClient::create(daemon.url()).value();
      for (const auto& body : bodies[c]) {
        auto t0 = Steady::now();
        auto r = cl->request("POST", mode == "single" ? "/ledger/v1/txs" : "/ledger/v1/txs/batch",
                             body, {{"Content-Type", "application/json"}});
        double ms = std::chrono::duration<double, std::milli>(Steady::now() - t0).count();
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
  const double secs = std::chrono::duration<double>(Steady::now() - start).count();
  std::vector<double> latencies;
  for (auto& v : lat) latencies.insert(latencies.end(), v.begin(), v.end());
  if (ok == 0) {
    std::fprintf(stderr, "ledger_tps: no transaction was accepted (%ld failed)\n", failed.load());
    std::filesystem::remove_all(dir);
    return 1;
  }
  const double tps = ok / secs;
  const double p50 = pct(latencies, 0.50), p99 = pct(latencies, 0.99);
  daemon.terminate();

  const double v1 = verifyRate(all, 1), v2 = verifyRate(all, 2);
  auto sinkBal = 0;
  (void)sinkBal;
  std::printf(
      "{\"mode\":\"%s\",\"sync\":\"%s\",\"accounts\":%d,\"connections\":%d,\"batch\":%d,\"tx\":%ld,"
      "\"failed\":%ld,"
      "\"seconds\":%.3f,\"tps\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
      "\"verify_1core_per_s\":%.0f,\"verify_2core_per_s\":%.0f,\"ratio_to_2core_verify\":%.3f}\n",
      mode.c_str(), sync.c_str(), accounts, connections, mode == "batch" ? batch : 1, ok.load(),
      failed.load(), secs, tps, p50, p99, v1, v2, tps / v2);
  std::filesystem::remove_all(dir);
  return failed > 0 ? 1 : 0;
}
