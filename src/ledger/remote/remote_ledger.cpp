#include "ledger/remote/remote_ledger.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "net/client.hpp"

namespace mercato::ledger::remote {

using nlohmann::json;

namespace {

class RemoteLedger final : public Ledger {
 public:
  explicit RemoteLedger(std::string url) : url_(std::move(url)) {}

  // Queued and sent in order by one sender thread (see Sender): submit() returns at once, and
  // an account's transactions reach the node in the order they were submitted, so a caller may
  // pipeline nonces (ledger::AccountSubmitter) over HTTP too.
  void submit(SignedTx tx, SubmitCallback done) override {
    sender_.add(std::move(tx), std::move(done));
  }

  Result<LedgerInfo> info() override { return get("/ledger/v1/info", infoFromJson); }

  Result<Account> account(const std::string& address) override {
    return get("/ledger/v1/accounts/" + net::urlEncode(address), accountFromJson);
  }

  Result<ProviderRecord> provider(const std::string& owner) override {
    return get("/ledger/v1/providers/" + net::urlEncode(owner), providerFromJson);
  }

  Result<std::vector<ProviderRecord>> providers(bool includeInactive) override {
    return list("/ledger/v1/providers" + std::string(includeInactive ? "?all=1" : ""), "providers",
                providerFromJson);
  }

  Result<Escrow> escrow(const std::string& id) override {
    return get("/ledger/v1/escrows/" + net::urlEncode(id), escrowFromJson);
  }

  Result<std::vector<Escrow>> escrows(const EscrowFilter& f) override {
    std::string q = "/ledger/v1/escrows?publisher=" + net::urlEncode(f.publisher) +
                    "&provider=" + net::urlEncode(f.provider);
    if (f.state) q += "&state=" + escrowStateName(*f.state);
    return list(q, "escrows", escrowFromJson);
  }

  Result<Order> order(const std::string& id) override {
    return get("/ledger/v1/orders/" + net::urlEncode(id), orderFromJson);
  }
  Result<std::vector<Order>> orders(const OrderFilter& f) override {
    std::string q = "/ledger/v1/orders?publisher=" + net::urlEncode(f.publisher) +
                    "&limit=" + std::to_string(f.limit);
    if (f.state) q += "&state=" + orderStateName(*f.state);
    return list(q, "orders", orderFromJson);
  }
  Result<Bid> bid(const std::string& id) override {
    return get("/ledger/v1/bids/" + net::urlEncode(id), bidFromJson);
  }
  Result<std::vector<Bid>> bids(const BidFilter& f) override {
    std::string q = "/ledger/v1/bids?order=" + net::urlEncode(f.order) +
                    "&provider=" + net::urlEncode(f.provider) + "&limit=" + std::to_string(f.limit);
    if (f.state) q += "&state=" + bidStateName(*f.state);
    return list(q, "bids", bidFromJson);
  }
  Result<Lease> lease(const std::string& id) override {
    return get("/ledger/v1/leases/" + net::urlEncode(id), leaseFromJson);
  }
  Result<std::vector<Lease>> leases(const LeaseFilter& f) override {
    return list("/ledger/v1/leases?publisher=" + net::urlEncode(f.publisher) +
                    "&provider=" + net::urlEncode(f.provider) + "&limit=" + std::to_string(f.limit),
                "leases", leaseFromJson);
  }
  Result<std::vector<Attestation>> attestations(const std::string& provider) override {
    return list("/ledger/v1/providers/" + net::urlEncode(provider) + "/attestations",
                "attestations", attestationFromJson);
  }

  Result<std::vector<TxRecord>> transactions(uint64_t after, size_t limit,
                                             const std::string& address) override {
    std::string q =
        "/ledger/v1/txs?after=" + std::to_string(after) + "&limit=" + std::to_string(limit);
    if (!address.empty()) q += "&address=" + net::urlEncode(address);
    return list(q, "txs", txRecordFromJson);
  }

  Result<TxRecord> transaction(const std::string& hash) override {
    return get("/ledger/v1/txs/" + net::urlEncode(hash), txRecordFromJson);
  }

  Result<std::vector<Event>> events(uint64_t after, size_t limit, int64_t waitMs) override {
    return list("/ledger/v1/events?after=" + std::to_string(after) +
                    "&limit=" + std::to_string(limit) + "&wait=" + std::to_string(waitMs),
                "events", eventFromJson);
  }

  // A remote ledger has no local committer to hook: one waiter thread long-polls for everyone.
  void notifyEvents(uint64_t after, int64_t timeoutMs, std::function<void()> ready) override {
    waiters_.add(after, timeoutMs, std::move(ready));
  }

 private:
  template <typename F>
  Result<json> call(F&& fn) {
    std::unique_ptr<net::HttpClient> c;
    {
      std::lock_guard lk(mu_);
      if (!pool_.empty()) {
        c = std::move(pool_.back());
        pool_.pop_back();
      }
    }
    if (!c) {
      net::ClientOptions o;
      o.timeout = std::chrono::milliseconds(90'000);  // long polls wait up to 60 s
      ASSIGN_OR_RETURN(c, net::HttpClient::create(url_, o));
    }
    Result<json> r = fn(*c);
    std::lock_guard lk(mu_);
    if (pool_.size() < 8) pool_.push_back(std::move(c));
    return r;
  }

  template <typename T>
  Result<T> get(const std::string& target, Result<T> (*parse)(const json&)) {
    ASSIGN_OR_RETURN(json j, call([&](net::HttpClient& c) { return c.getJson(target); }));
    return parse(j);
  }

  template <typename T>
  Result<std::vector<T>> list(const std::string& target, const char* key,
                              Result<T> (*parse)(const json&)) {
    ASSIGN_OR_RETURN(json j, call([&](net::HttpClient& c) { return c.getJson(target); }));
    if (!j.is_object() || !j.contains(key) || !j[key].is_array())
      return internalError(url_ + target + ": reply has no '" + key + "' array");
    std::vector<T> out;
    for (const auto& item : j[key]) {
      ASSIGN_OR_RETURN(T v, parse(item));
      out.push_back(std::move(v));
    }
    return out;
  }

  // The callers of notifyEvents. The thread starts on first use (the CLI never needs it) and
  // polls in slices of at most kSliceMs, so destruction waits at most that long.
  class Waiters {
   public:
    explicit Waiters(RemoteLedger& ledger) : ledger_(ledger) {}
    ~Waiters() {
      {
        std::lock_guard lk(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      if (thread_.joinable()) thread_.join();
    }

    void add(uint64_t after, int64_t timeoutMs, std::function<void()> ready) {
      {
        std::lock_guard lk(mu_);
        list_.push_back({after,
                         Clock::now() + std::chrono::milliseconds(std::max<int64_t>(0, timeoutMs)),
                         std::move(ready)});
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
      }
      cv_.notify_all();
    }

   private:
    using Clock = std::chrono::steady_clock;
    static constexpr int64_t kSliceMs = 1'000;
    struct Waiter {
      uint64_t after;
      Clock::time_point deadline;
      std::function<void()> ready;
    };

    void run() {
      std::unique_lock lk(mu_);
      while (true) {
        cv_.wait(lk, [&] { return stop_ || !list_.empty(); });
        if (stop_) return;
        uint64_t after = list_.front().after;
        Clock::time_point first = list_.front().deadline;
        for (const auto& w : list_) {
          after = std::min(after, w.after);
          first = std::min(first, w.deadline);
        }
        lk.unlock();
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(first - Clock::now()).count();
        const int64_t waitMs = std::clamp<int64_t>(left, 0, kSliceMs);
        uint64_t head = 0;  // an event with this seq exists (0: none seen)
        auto r = ledger_.events(after, 1, waitMs);
        if (r.isOk() && !r->empty()) head = r->back().seq;
        lk.lock();
        if (!r.isOk())  // the node is unreachable: do not spin; deadlines still fire below
          cv_.wait_for(lk, std::chrono::milliseconds(std::min<int64_t>(waitMs, 200)),
                       [&] { return stop_; });
        std::vector<std::function<void()>> fire;
        const auto now = Clock::now();
        std::erase_if(list_, [&](Waiter& w) {
          if (head <= w.after && now < w.deadline) return false;
          fire.push_back(std::move(w.ready));
          return true;
        });
        lk.unlock();
        for (auto& f : fire) f();
        lk.lock();
      }
    }

    RemoteLedger& ledger_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::vector<Waiter> list_;
    std::thread thread_;
  };

  // Submitted transactions, sent in submission order: one POST /ledger/v1/txs/batch at a time
  // with everything queued meanwhile (up to kMaxBatch), whose results come back in order and go
  // to each caller. The node submits a batch's transactions in order. When the request itself
  // fails (node unreachable), every transaction of that batch gets the error: whether the node
  // applied them is then unknown, as with any lost answer. Callbacks run on the sender thread
  // and must not wait for another submission. Starts on first use.
  class Sender {
   public:
    explicit Sender(RemoteLedger& ledger) : ledger_(ledger) {}
    ~Sender() {
      {
        std::lock_guard lk(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      if (thread_.joinable()) thread_.join();
      for (auto& item : queue_) item.second(unavailable("ledger client is shutting down"));
    }

    void add(SignedTx tx, SubmitCallback done) {
      {
        std::lock_guard lk(mu_);
        if (stop_) return done(unavailable("ledger client is shutting down"));
        queue_.emplace_back(std::move(tx), std::move(done));
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
      }
      cv_.notify_all();
    }

   private:
    static constexpr size_t kMaxBatch = 256;  // the node accepts up to 1,000 by default

    void run() {
      std::unique_lock lk(mu_);
      while (true) {
        cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        std::vector<std::pair<SignedTx, SubmitCallback>> batch;
        while (!queue_.empty() && batch.size() < kMaxBatch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        lk.unlock();
        send(batch);
        lk.lock();
      }
    }

    void send(std::vector<std::pair<SignedTx, SubmitCallback>>& batch) {
      json txs = json::array();
      for (const auto& [tx, done] : batch) txs.push_back(toJson(tx));
      auto r = ledger_.call([&](net::HttpClient& c) {
        return c.postJson("/ledger/v1/txs/batch", {{"txs", std::move(txs)}});
      });
      const json* results = nullptr;
      if (r.isOk() && r->contains("results") && (*r)["results"].is_array() &&
          (*r)["results"].size() == batch.size())
        results = &(*r)["results"];
      for (size_t i = 0; i < batch.size(); ++i) {
        auto& done = batch[i].second;
        if (!r.isOk()) {
          done(r.status());
        } else if (!results) {
          done(internalError(ledger_.url_ + "/ledger/v1/txs/batch: reply has no result per tx"));
        } else if (const json& one = (*results)[i]; one.contains("receipt")) {
          done(receiptFromJson(one["receipt"]));
        } else {
          const json err = one.value("error", json::object());
          done(Status(codeFromName(err.value("code", "internal")),
                      err.value("message", "the node refused the transaction")));
        }
      }
    }

    RemoteLedger& ledger_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::deque<std::pair<SignedTx, SubmitCallback>> queue_;
    std::thread thread_;
  };

  std::string url_;
  std::mutex mu_;
  std::vector<std::unique_ptr<net::HttpClient>> pool_;
  Waiters waiters_{*this};  // after the pool: their threads stop before it goes
  Sender sender_{*this};
};

}  // namespace

Result<std::unique_ptr<Ledger>> createRemoteLedger(const LedgerConfig& config) {
  if (config.url.empty()) return invalidArgument("http ledger: a node URL is required");
  // Validate the URL up front so a typo fails at start-up, not on first use.
  ASSIGN_OR_RETURN(auto probe, net::HttpClient::create(config.url));
  (void)probe;
  return std::unique_ptr<Ledger>(std::make_unique<RemoteLedger>(config.url));
}

}  // namespace mercato::ledger::remote
