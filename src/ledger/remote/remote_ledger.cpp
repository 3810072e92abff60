#include "ledger/remote/remote_ledger.hpp"

#include <mutex>

#include "net/client.hpp"

namespace mercato::ledger::remote {

using nlohmann::json;

namespace {

class RemoteLedger final : public Ledger {
 public:
  explicit RemoteLedger(std::string url) : url_(std::move(url)) {}

  void submit(SignedTx tx, SubmitCallback done) override {
    auto r = call([&](net::HttpClient& c) { return c.postJson("/ledger/v1/txs", toJson(tx)); });
    if (!r.isOk()) return done(r.status());
    done(receiptFromJson(*r));
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

  void notifyEvents(uint64_t after, int64_t timeoutMs, std::function<void()> ready) override {
    // A remote ledger has no local committer to hook: long-poll once, then call back.
    (void)events(after, 1, timeoutMs);
    ready();
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

  std::string url_;
  std::mutex mu_;
  std::vector<std::unique_ptr<net::HttpClient>> pool_;
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
