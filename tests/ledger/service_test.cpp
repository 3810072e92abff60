// The /ledger/v1 HTTP API end to end: a real HttpServer over an EmbeddedLedger, driven through
// the "http" Ledger backend and raw requests. Every bad input gets a clear 4xx, the state root
// is unchanged after it, and the server keeps serving.
#include "ledger/service.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "harness.hpp"
#include "ledger/submitter.hpp"
#include "net/client.hpp"

namespace mercato::ledger::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
constexpr Micros kTok = kMicrosPerToken;

class LedgerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mercato-svc-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    LedgerConfig c;
    c.dataDir = dir_.string();
    c.chainId = "svc-chain";
    c.devMode = true;
    c.clock = &systemClock();
    ledger_ = std::move(createLedger(c).value());
    net::Router router;
    registerLedgerRoutes(router, *ledger_);
    net::ServerOptions so;
    so.maxBodyBytes = 64 * 1024;
    server_ = std::move(net::HttpServer::create(so, std::move(router)).value());
    server_->start();
    LedgerConfig rc;
    rc.backend = "http";
    rc.url = server_->url();
    remote_ = std::move(createLedger(rc).value());
    client_ = std::move(net::HttpClient::create(server_->url()).value());
  }
  void TearDown() override {
    remote_.reset();
    server_->stop();
    ledger_.reset();
    fs::remove_all(dir_);
  }

  SignedTx make(const crypto::Identity& id, TxKind kind, TxBody body, uint64_t nonce = 0) {
    if (nonce == 0) nonce = remote_->nextNonce(id.address()).value();
    return signTx(Tx{"svc-chain", kind, id.address(), nonce, std::move(body)}, id);
  }
  Result<TxReceipt> run(const crypto::Identity& id, TxKind kind, TxBody body) {
    return remote_->submitAndWait(make(id, kind, std::move(body)));
  }
  // Posts raw JSON and expects the HTTP status and a message fragment; the state must not move.
  void expectRejected(const std::string& body, int status, const std::string& fragment) {
    const std::string root = remote_->info()->stateRoot;
    auto r =
        client_->request("POST", "/ledger/v1/txs", body, {{"Content-Type", "application/json"}});
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    EXPECT_EQ(r->status, status) << r->body;
    auto j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.contains("error")) << r->body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(fragment), std::string::npos)
        << r->body;
    EXPECT_EQ(remote_->info()->stateRoot, root);
    auto health = client_->request("GET", "/ledger/v1/info");
    ASSERT_TRUE(health.isOk());
    EXPECT_EQ(health->status, 200);
  }

  fs::path dir_;
  std::unique_ptr<Ledger> ledger_, remote_;
  std::unique_ptr<net::HttpServer> server_;
  std::unique_ptr<net::HttpClient> client_;
  crypto::Identity alice = key(1), bob = key(2), prov = key(3), other = key(4);
};

TEST_F(LedgerServiceTest, FullEscrowFlowOverHttp) {
  ASSERT_TRUE(run(alice, TxKind::kMint, MintBody{alice.address(), 100 * kTok}).isOk());
  Harness h;
  ASSERT_TRUE(run(prov, TxKind::kProviderRegister, h.providerBody()).isOk());
  auto providers = remote_->providers(false);
  ASSERT_TRUE(providers.isOk());
  ASSERT_EQ(providers->size(), 1u);
  EXPECT_EQ((*providers)[0].attributes.at("region"), "eu-west");
  auto open = run(alice, TxKind::kEscrowOpen, EscrowOpenBody{prov.address(), 10 * kTok, {}});
  ASSERT_TRUE(open.isOk()) << open.status().toString();
  const std::string id = open->result["escrow"];
  auto claim = run(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, Usage{5'000, 0, 0, 0}});
  ASSERT_TRUE(claim.isOk()) << claim.status().toString();
  EXPECT_EQ(claim->result["paid"], 5'000);
  auto e = remote_->escrow(id);
  ASSERT_TRUE(e.isOk());
  EXPECT_EQ(e->claimed, 5'000);
  auto list = remote_->escrows({alice.address(), "", std::nullopt});
  ASSERT_TRUE(list.isOk());
  EXPECT_EQ(list->size(), 1u);
  auto tx = remote_->transaction(claim->hash);
  ASSERT_TRUE(tx.isOk());
  EXPECT_EQ(tx->kind, "escrow.claim");
}

TEST_F(LedgerServiceTest, BadInputGetsClear4xxAndChangesNothing) {
  ASSERT_TRUE(run(alice, TxKind::kMint, MintBody{alice.address(), 10 * kTok}).isOk());
  Harness h;
  ASSERT_TRUE(run(prov, TxKind::kProviderRegister, h.providerBody()).isOk());
  const std::string id =
      run(alice, TxKind::kEscrowOpen, EscrowOpenBody{prov.address(), kTok, {}})->result["escrow"];
  ASSERT_TRUE(run(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, Usage{5'000, 0, 0, 0}}).isOk());

  expectRejected("{not json", 400, "at byte");
  expectRejected("[]", 400, "expected a JSON object");
  json forged = toJson(make(alice, TxKind::kTransfer, TransferBody{bob.address(), kTok}));
  forged["tx"]["body"]["amount"] = 9 * kTok;
  expectRejected(forged.dump(), 401, "bad signature");
  expectRejected(
      toJson(make(alice, TxKind::kTransfer, TransferBody{bob.address(), kTok}, 99)).dump(), 409,
      "tx.nonce 99");
  expectRejected(
      toJson(make(alice, TxKind::kTransfer, TransferBody{bob.address(), 50 * kTok})).dump(), 409,
      "overdraft");
  expectRejected(toJson(make(other, TxKind::kTransfer, TransferBody{bob.address(), 1})).dump(), 404,
                 "unknown");
  expectRejected(
      toJson(make(prov, TxKind::kEscrowClaim, EscrowClaimBody{id, Usage{4'000, 0, 0, 0}})).dump(),
      409, "went down");
  ASSERT_TRUE(run(alice, TxKind::kTransfer, TransferBody{other.address(), 1}).isOk());
  expectRejected(
      toJson(make(other, TxKind::kEscrowClaim, EscrowClaimBody{id, Usage{9'000, 0, 0, 0}})).dump(),
      403, "belongs to provider");
  expectRejected(std::string(100 * 1024, ' '), 413, "");
  // A replay of an accepted transaction.
  SignedTx t = make(alice, TxKind::kTransfer, TransferBody{bob.address(), 1});
  ASSERT_TRUE(remote_->submitAndWait(t).isOk());
  expectRejected(toJson(t).dump(), 409, "replay rejected");

  auto unknown = client_->request("GET", "/ledger/v1/accounts/" + key(9).address());
  ASSERT_TRUE(unknown.isOk());
  EXPECT_EQ(unknown->status, 404);
  auto badQuery = client_->request("GET", "/ledger/v1/txs?after=abc");
  ASSERT_TRUE(badQuery.isOk());
  EXPECT_EQ(badQuery->status, 400);
}

TEST_F(LedgerServiceTest, BatchSubmissionAnswersEachTransaction) {
  ASSERT_TRUE(run(alice, TxKind::kMint, MintBody{alice.address(), 10 * kTok}).isOk());
  json txs = json::array();
  uint64_t n = remote_->nextNonce(alice.address()).value();
  for (int i = 0; i < 5; ++i)
    txs.push_back(toJson(make(alice, TxKind::kTransfer, TransferBody{bob.address(), 1}, n + i)));
  txs.push_back(
      toJson(make(alice, TxKind::kTransfer, TransferBody{bob.address(), 1}, n)));  // replay
  auto r = client_->postJson("/ledger/v1/txs/batch", {{"txs", txs}});
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  ASSERT_EQ((*r)["results"].size(), 6u);
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE((*r)["results"][i].contains("receipt")) << (*r)["results"][i];
  EXPECT_EQ((*r)["results"][5]["error"]["code"], "failed_precondition");
  EXPECT_EQ(remote_->account(bob.address())->balance, 5);
}

TEST_F(LedgerServiceTest, EventsLongPollAndStream) {
  const uint64_t cursor = remote_->info()->eventSeq;
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (void)run(alice, TxKind::kMint, MintBody{alice.address(), kTok});
  });
  auto evs = remote_->events(cursor, 10, 10'000);  // blocks until the mint lands
  later.join();
  ASSERT_TRUE(evs.isOk()) << evs.status().toString();
  ASSERT_FALSE(evs->empty());
  EXPECT_EQ((*evs)[0].type, "account.mint");

  std::vector<json> streamed;
  auto streamClient = net::HttpClient::create(server_->url()).value();
  std::thread producer([&] {
    for (int i = 0; i < 3; ++i) (void)run(bob, TxKind::kMint, MintBody{bob.address(), kTok});
  });
  std::string buffer;
  Status s = streamClient->stream("/ledger/v1/events?stream=1&after=" + std::to_string(cursor),
                                  [&](std::string_view piece) {
                                    buffer.append(piece);
                                    size_t nl;
                                    while ((nl = buffer.find('\n')) != std::string::npos) {
                                      std::string line = buffer.substr(0, nl);
                                      buffer.erase(0, nl + 1);
                                      if (!line.empty()) streamed.push_back(json::parse(line));
                                    }
                                    return streamed.size() < 4;
                                  });
  producer.join();
  EXPECT_TRUE(s.isOk()) << s.toString();
  ASSERT_GE(streamed.size(), 4u);
  for (size_t i = 1; i < streamed.size(); ++i)
    EXPECT_GT(streamed[i]["seq"].get<uint64_t>(), streamed[i - 1]["seq"].get<uint64_t>());
}

// notifyEvents over HTTP returns at once, as ledger.hpp promises, and calls back from the
// client's own thread: when a new event commits, and on timeout when none does.
TEST_F(LedgerServiceTest, RemoteNotifyEventsDoesNotBlockAndFiresOnEventOrTimeout) {
  const uint64_t cursor = remote_->info()->eventSeq;
  std::mutex mu;
  std::condition_variable cv;
  int onEvent = 0, onTimeout = 0;
  const auto t0 = std::chrono::steady_clock::now();
  remote_->notifyEvents(cursor, 30'000, [&] {
    std::lock_guard lk(mu);
    ++onEvent;
    cv.notify_all();
  });
  remote_->notifyEvents(cursor + 1'000, 300, [&] {  // no such event: only the timeout fires it
    std::lock_guard lk(mu);
    ++onTimeout;
    cv.notify_all();
  });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(200))
      << "notifyEvents blocked its caller";
  {
    std::unique_lock lk(mu);
    EXPECT_TRUE(cv.wait_for(lk, std::chrono::seconds(10), [&] { return onTimeout == 1; }));
    EXPECT_EQ(onEvent, 0) << "fired before any event existed";
  }
  ASSERT_TRUE(run(alice, TxKind::kMint, MintBody{alice.address(), kTok}).isOk());
  std::unique_lock lk(mu);
  EXPECT_TRUE(cv.wait_for(lk, std::chrono::seconds(10), [&] { return onEvent == 1; }));
  EXPECT_EQ(onTimeout, 1);
}

// Over HTTP too, one account's transactions from many threads all land (AccountSubmitter hands
// out nonces; RemoteLedger sends them in order, batched), and a refused one fails alone.
TEST_F(LedgerServiceTest, PipelinedSubmissionsOverHttpKeepNonceOrder) {
  ASSERT_TRUE(run(alice, TxKind::kMint, MintBody{alice.address(), 100 * kTok}).isOk());
  AccountSubmitter submitter(*remote_, alice, "svc-chain");
  constexpr int kThreads = 6, kEach = 20;
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const bool tooMuch = t == 2 && i == 5;  // more than alice has: refused
        auto r = submitter.submit(TxKind::kTransfer,
                                  TransferBody{bob.address(), tooMuch ? 1'000 * kTok : Micros{1}});
        if (r.isOk()) {
          ++ok;
        } else {
          EXPECT_TRUE(tooMuch) << r.status().toString();
          ++refused;
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(refused.load(), 1);
  EXPECT_EQ(ok.load(), kThreads * kEach - 1);
  EXPECT_EQ(remote_->account(bob.address())->balance, ok.load());
  EXPECT_EQ(remote_->account(alice.address())->nonce, 1u + static_cast<uint64_t>(ok.load()));
}

// A node that is gone answers every queued submission with an error; nothing hangs.
TEST_F(LedgerServiceTest, SubmissionsToAStoppedNodeFailCleanly) {
  ASSERT_TRUE(run(alice, TxKind::kMint, MintBody{alice.address(), kTok}).isOk());
  const uint64_t nonce = remote_->nextNonce(alice.address()).value();
  server_->stop();
  auto r =
      remote_->submitAndWait(make(alice, TxKind::kTransfer, TransferBody{bob.address(), 1}, nonce));
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().toString();
}

}  // namespace
}  // namespace mercato::ledger::testing