#include "ledger/embedded/market_rules.hpp"

#include "common/strings.hpp"
#include "ledger/embedded/sql_filter.hpp"

namespace mercato::ledger::embedded {

using nlohmann::json;

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS orders(
  id TEXT PRIMARY KEY, publisher TEXT NOT NULL, state TEXT NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, record TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS orders_publisher ON orders(publisher);
CREATE INDEX IF NOT EXISTS orders_due ON orders(state, expires_at);
CREATE TABLE IF NOT EXISTS bids(
  id TEXT PRIMARY KEY, order_id TEXT NOT NULL, provider TEXT NOT NULL, state TEXT NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, record TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bids_order ON bids(order_id, state);
CREATE INDEX IF NOT EXISTS bids_provider ON bids(provider, state);
CREATE INDEX IF NOT EXISTS bids_due ON bids(state, expires_at);
CREATE TABLE IF NOT EXISTS leases(
  id TEXT PRIMARY KEY, publisher TEXT NOT NULL, provider TEXT NOT NULL,
  created_at INTEGER NOT NULL, record TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS leases_publisher ON leases(publisher);
CREATE INDEX IF NOT EXISTS leases_provider ON leases(provider);
CREATE TABLE IF NOT EXISTS attestations(
  provider TEXT NOT NULL, auditor TEXT NOT NULL, record TEXT NOT NULL,
  PRIMARY KEY(provider, auditor)) WITHOUT ROWID;
)sql";

template <typename T, typename Parse>
Result<T> one(SQLite::Database& db, const char* sql, const std::string& key, Parse parse,
              const std::string& missing) {
  SQLite::Statement q(db, sql);
  q.bind(1, key);
  if (!q.executeStep()) return notFound(missing);
  return parse(json::parse(q.getColumn(0).getString()));
}

template <typename T, typename Parse>
Result<std::vector<T>> many(SQLite::Statement& q, Parse parse) {
  std::vector<T> out;
  while (q.executeStep()) {
    ASSIGN_OR_RETURN(T v, parse(json::parse(q.getColumn(0).getString())));
    out.push_back(std::move(v));
  }
  return out;
}

std::string missingAttribute(const std::map<std::string, std::string>& have,
                             const std::map<std::string, std::string>& want) {
  for (const auto& [k, v] : want) {
    auto it = have.find(k);
    if (it == have.end()) return k + "=" + v + " (absent)";
    if (it->second != v) return k + "=" + v + " (has " + it->second + ")";
  }
  return "";
}

json bidEvent(const Bid& b, const std::string& reason = "") {
  json j = {{"bid", b.id}, {"order", b.order}, {"provider", b.provider}};
  if (!reason.empty()) j["reason"] = reason;
  return j;
}

}  // namespace

struct MarketRules::Impl {
  explicit Impl(SQLite::Database& d)
      : db(d),
        selOrder(db, "SELECT record FROM orders WHERE id = ?"),
        putOrder(db,
                 "INSERT OR REPLACE INTO orders(id, publisher, state, created_at, expires_at, "
                 "record) VALUES(?,?,?,?,?,?)"),
        selBid(db, "SELECT record FROM bids WHERE id = ?"),
        putBid(db,
               "INSERT OR REPLACE INTO bids(id, order_id, provider, state, created_at, "
               "expires_at, record) VALUES(?,?,?,?,?,?,?)"),
        openBidsOfOrder(db,
                        "SELECT record FROM bids WHERE order_id = ? AND state = 'open' "
                        "ORDER BY id"),
        openBidOfProvider(db,
                          // "+provider": through bids_order (an order has few bids), not
                          // bids_provider (a busy provider has thousands open).
                          "SELECT id FROM bids WHERE order_id = ? AND +provider = ? AND "
                          "state = 'open'"),
        putLease(db,
                 "INSERT INTO leases(id, publisher, provider, created_at, record) "
                 "VALUES(?,?,?,?,?)"),
        selAttestation(db, "SELECT record FROM attestations WHERE provider = ? AND auditor = ?"),
        putAttestation(db,
                       "INSERT OR REPLACE INTO attestations(provider, auditor, record) "
                       "VALUES(?,?,?)"),
        delAttestation(db, "DELETE FROM attestations WHERE provider = ? AND auditor = ?"),
        dueOrders(db,
                  "SELECT id FROM orders WHERE state = 'open' AND expires_at <= ? "
                  "ORDER BY expires_at, id"),
        dueBids(db,
                "SELECT b.id FROM bids b JOIN orders o ON o.id = b.order_id "
                "WHERE b.state = 'open' AND b.expires_at <= ?1 AND "
                "NOT (o.state = 'open' AND o.expires_at <= ?1) "
                "ORDER BY b.expires_at, b.id") {}

  SQLite::Database& db;
  SQLite::Statement selOrder, putOrder, selBid, putBid, openBidsOfOrder, openBidOfProvider,
      putLease, selAttestation, putAttestation, delAttestation;
  // dueExpiries() runs before every group commit: prepared once, not per commit.
  SQLite::Statement dueOrders, dueBids;

  static void run(SQLite::Statement& s) {
    s.exec();
    s.reset();
    s.clearBindings();
  }

  std::optional<Order> getOrder(const std::string& id) {
    selOrder.reset();
    selOrder.bind(1, id);
    if (!selOrder.executeStep()) return std::nullopt;
    auto o = orderFromJson(json::parse(selOrder.getColumn(0).getString()));
    selOrder.reset();
    if (!o.isOk()) throw std::runtime_error("corrupt order row: " + o.status().message());
    return *o;
  }
  void storeOrder(const Order& o) {
    putOrder.bind(1, o.id);
    putOrder.bind(2, o.publisher);
    putOrder.bind(3, orderStateName(o.state));
    putOrder.bind(4, static_cast<int64_t>(o.createdAt));
    putOrder.bind(5, static_cast<int64_t>(o.expiresAt));
    putOrder.bind(6, toJson(o).dump());
    run(putOrder);
  }
  std::optional<Bid> getBid(const std::string& id) {
    selBid.reset();
    selBid.bind(1, id);
    if (!selBid.executeStep()) return std::nullopt;
    auto b = bidFromJson(json::parse(selBid.getColumn(0).getString()));
    selBid.reset();
    if (!b.isOk()) throw std::runtime_error("corrupt bid row: " + b.status().message());
    return *b;
  }
  void storeBid(const Bid& b) {
    putBid.bind(1, b.id);
    putBid.bind(2, b.order);
    putBid.bind(3, b.provider);
    putBid.bind(4, bidStateName(b.state));
    putBid.bind(5, static_cast<int64_t>(b.createdAt));
    putBid.bind(6, static_cast<int64_t>(b.expiresAt));
    putBid.bind(7, toJson(b).dump());
    run(putBid);
  }
  std::vector<Bid> openBids(const std::string& orderId) {
    openBidsOfOrder.reset();
    openBidsOfOrder.bind(1, orderId);
    std::vector<Bid> out;
    while (openBidsOfOrder.executeStep()) {
      auto b = bidFromJson(json::parse(openBidsOfOrder.getColumn(0).getString()));
      if (!b.isOk()) throw std::runtime_error("corrupt bid row: " + b.status().message());
      out.push_back(std::move(*b));
    }
    openBidsOfOrder.reset();
    return out;
  }
  std::optional<std::map<std::string, std::string>> attested(const std::string& provider,
                                                             const std::string& auditor) {
    selAttestation.reset();
    selAttestation.bind(1, provider);
    selAttestation.bind(2, auditor);
    if (!selAttestation.executeStep()) return std::nullopt;
    auto a = attestationFromJson(json::parse(selAttestation.getColumn(0).getString()));
    selAttestation.reset();
    if (!a.isOk()) throw std::runtime_error("corrupt attestation row: " + a.status().message());
    return a->attributes;
  }

  // Closes a bid that is still open, returning its deposit to the provider.
  Status settleBid(Bid& b, BidState to, int64_t t, LedgerAccess& access,
                   const std::string& reason) {
    b.state = to;
    b.closedAt = t;
    storeBid(b);
    access.touch(b.provider);
    if (b.deposit > 0) RETURN_IF_ERROR(access.credit(b.provider, b.deposit));
    access.event(t, "bid." + bidStateName(to), bidEvent(b, reason));
    return Status::ok();
  }
  Status settleOpenBids(const std::string& orderId, BidState to, int64_t t, LedgerAccess& access,
                        const std::string& reason, const std::string& except = "") {
    for (Bid& b : openBids(orderId))
      if (b.id != except) RETURN_IF_ERROR(settleBid(b, to, t, access, reason));
    return Status::ok();
  }
  // Ends an open order: refunds its deposit and closes its open bids.
  Status endOrder(Order& o, OrderState to, BidState bidsTo, int64_t t, LedgerAccess& access) {
    o.state = to;
    o.closedAt = t;
    storeOrder(o);
    access.touch(o.publisher);
    RETURN_IF_ERROR(access.credit(o.publisher, o.deposit));
    const std::string type = "order." + orderStateName(to);
    access.event(t, type, {{"order", o.id}, {"publisher", o.publisher}, {"refunded", o.deposit}});
    return settleOpenBids(o.id, bidsTo, t, access, type);
  }

  Result<Order> liveOrder(const std::string& id, int64_t t, const std::string& field) {
    auto o = getOrder(id);
    if (!o) return notFound(field + ": order " + id + " does not exist");
    if (o->state != OrderState::kOpen)
      return failedPrecondition("order " + id + " is " + orderStateName(o->state) + ", not open");
    if (t >= o->expiresAt)
      return failedPrecondition("order " + id + " expired at " + std::to_string(o->expiresAt) +
                                " (ledger time is " + std::to_string(t) + ")");
    return *o;
  }

  Result<json> orderCreate(const SignedTx& s, const OrderCreateBody& b, int64_t t,
                           const MarketParams& p, LedgerAccess& access) {
    if (b.ttlMs > p.maxTtlMs)
      return invalidArgument("tx.body.ttlMs: " + std::to_string(b.ttlMs) +
                             " is longer than this ledger's maximum of " +
                             std::to_string(p.maxTtlMs) + " ms");
    Order o;
    o.id = orderIdFor(s.tx.from, s.tx.nonce);
    if (getOrder(o.id)) return alreadyExists("order " + o.id + " already exists");
    RETURN_IF_ERROR(access.debit(s.tx.from, b.deposit));
    o.publisher = s.tx.from;
    o.requirements = b.requirements;
    o.maxPrice = b.maxPrice;
    o.deposit = b.deposit;
    o.createdAt = t;
    o.expiresAt = t + b.ttlMs;
    storeOrder(o);
    access.event(t, "order.created",
                 {{"order", o.id},
                  {"publisher", o.publisher},
                  {"expiresAt", o.expiresAt},
                  {"deposit", o.deposit},
                  {"requirements", toJson(o.requirements)},
                  {"maxPrice", toJson(o.maxPrice)}});
    return json{{"order", o.id}, {"expiresAt", o.expiresAt}, {"state", "open"}};
  }

  Result<json> orderClose(const SignedTx& s, const OrderCloseBody& b, int64_t t,
                          LedgerAccess& access) {
    auto o = getOrder(b.order);
    if (!o) return notFound("tx.body.order: order " + b.order + " does not exist");
    if (o->publisher != s.tx.from)
      return permissionDenied("order " + o->id + " belongs to " + o->publisher + ", not " +
                              s.tx.from);
    if (o->state != OrderState::kOpen)
      return failedPrecondition("order " + o->id + " is " + orderStateName(o->state) +
                                " and cannot be closed");
    RETURN_IF_ERROR(endOrder(*o, OrderState::kClosed, BidState::kClosed, t, access));
    return json{{"order", o->id}, {"state", "closed"}, {"refunded", o->deposit}};
  }

  Result<json> bidCreate(const SignedTx& s, const BidCreateBody& b, int64_t t,
                         const MarketParams& p, LedgerAccess& access) {
    const std::string& provider = s.tx.from;
    auto rec = access.provider(provider);
    if (!rec || !rec->active)
      return failedPrecondition(provider + " is not a registered provider and cannot bid");
    ASSIGN_OR_RETURN(Order o, liveOrder(b.order, t, "tx.body.order"));
    if (b.ttlMs > p.maxTtlMs)
      return invalidArgument("tx.body.ttlMs: " + std::to_string(b.ttlMs) +
                             " is longer than this ledger's maximum of " +
                             std::to_string(p.maxTtlMs) + " ms");
    if (std::string over = priceOverCaps(b.price, o.maxPrice); !over.empty())
      return invalidArgument("tx.body.price." + over);
    if (std::string miss = missingAttribute(rec->attributes, o.requirements.attributes);
        !miss.empty())
      return failedPrecondition("order " + o.id + " requires attribute " + miss +
                                " of the provider");
    for (const auto& req : o.requirements.signedBy) {
      auto have = attested(provider, req.auditor);
      if (!have)
        return failedPrecondition("order " + o.id + " requires attributes signed by auditor " +
                                  req.auditor + ", who has attested nothing about " + provider);
      if (std::string miss = missingAttribute(*have, req.attributes); !miss.empty())
        return failedPrecondition("order " + o.id + " requires auditor " + req.auditor +
                                  " to have signed " + miss);
    }
    const Capacity need = o.requirements.total();
    if (need.cpu > rec->capacity.cpu || need.memory > rec->capacity.memory ||
        need.storage > rec->capacity.storage)
      return failedPrecondition("order " + o.id + " needs " + toJson(need).dump() +
                                ", more than provider capacity " + toJson(rec->capacity).dump());
    openBidOfProvider.reset();
    openBidOfProvider.bind(1, o.id);
    openBidOfProvider.bind(2, provider);
    const bool dup = openBidOfProvider.executeStep();
    std::string existing = dup ? openBidOfProvider.getColumn(0).getString() : "";
    openBidOfProvider.reset();
    if (dup)
      return alreadyExists(provider + " already has open bid " + existing + " on order " + o.id);
    Bid bid;
    bid.id = bidIdFor(provider, s.tx.nonce);
    if (getBid(bid.id)) return alreadyExists("bid " + bid.id + " already exists");
    RETURN_IF_ERROR(access.debit(provider, p.bidDeposit).withContext("bid deposit"));
    bid.order = o.id;
    bid.provider = provider;
    bid.price = b.price;
    bid.deposit = p.bidDeposit;
    bid.createdAt = t;
    bid.expiresAt = std::min(t + b.ttlMs, o.expiresAt);
    storeBid(bid);
    access.touch(o.publisher);
    access.event(t, "bid.created",
                 {{"bid", bid.id},
                  {"order", o.id},
                  {"provider", provider},
                  {"publisher", o.publisher},
                  {"price", toJson(bid.price)},
                  {"expiresAt", bid.expiresAt}});
    return json{{"bid", bid.id}, {"order", o.id}, {"expiresAt", bid.expiresAt}, {"state", "open"}};
  }

  Result<json> bidClose(const SignedTx& s, const BidCloseBody& b, int64_t t, LedgerAccess& access) {
    auto bid = getBid(b.bid);
    if (!bid) return notFound("tx.body.bid: bid " + b.bid + " does not exist");
    if (bid->provider != s.tx.from)
      return permissionDenied("bid " + bid->id + " belongs to " + bid->provider + ", not " +
                              s.tx.from);
    if (bid->state != BidState::kOpen)
      return failedPrecondition("bid " + bid->id + " is " + bidStateName(bid->state));
    RETURN_IF_ERROR(settleBid(*bid, BidState::kClosed, t, access, "closed by provider"));
    return json{{"bid", bid->id}, {"state", "closed"}, {"refunded", bid->deposit}};
  }

  Result<json> leaseCreate(const SignedTx& s, const LeaseCreateBody& b, int64_t t,
                           LedgerAccess& access) {
    auto bid = getBid(b.bid);
    if (!bid) return notFound("tx.body.bid: bid " + b.bid + " does not exist");
    auto o = getOrder(bid->order);
    if (!o) throw std::runtime_error("bid " + bid->id + " names missing order " + bid->order);
    if (o->publisher != s.tx.from)
      return permissionDenied("order " + o->id + " belongs to " + o->publisher + "; " + s.tx.from +
                              " cannot accept its bids");
    ASSIGN_OR_RETURN(Order live, liveOrder(o->id, t, "order"));
    if (bid->state != BidState::kOpen)
      return failedPrecondition("bid " + bid->id + " is " + bidStateName(bid->state));
    if (t >= bid->expiresAt) return failedPrecondition("bid " + bid->id + " has expired");
    auto rec = access.provider(bid->provider);
    if (!rec || !rec->active)
      return failedPrecondition("provider " + bid->provider + " is no longer registered");

    Escrow e;
    e.id = escrowIdFor(s.tx.from, s.tx.nonce);
    if (access.escrow(e.id)) return alreadyExists("escrow " + e.id + " already exists");
    e.publisher = live.publisher;
    e.provider = bid->provider;
    e.terms = bid->price;
    e.deposited = live.deposit;  // already debited when the order was created
    e.openedAt = t;
    access.storeEscrow(e);

    Lease lease{e.id, live.id, bid->id, live.publisher, bid->provider, bid->price, t};
    putLease.bind(1, lease.id);
    putLease.bind(2, lease.publisher);
    putLease.bind(3, lease.provider);
    putLease.bind(4, static_cast<int64_t>(t));
    putLease.bind(5, toJson(lease).dump());
    run(putLease);

    live.state = OrderState::kMatched;
    live.lease = lease.id;
    live.closedAt = t;
    storeOrder(live);
    access.touch(bid->provider);
    RETURN_IF_ERROR(settleBid(*bid, BidState::kWon, t, access, ""));
    RETURN_IF_ERROR(
        settleOpenBids(live.id, BidState::kLost, t, access, "another bid won", bid->id));
    access.event(
        t, "order.matched",
        {{"order", live.id}, {"lease", lease.id}, {"bid", bid->id}, {"provider", bid->provider}});
    access.event(t, "escrow.opened",
                 {{"escrow", e.id},
                  {"publisher", e.publisher},
                  {"provider", e.provider},
                  {"deposit", e.deposited},
                  {"terms", toJson(e.terms)},
                  {"lease", lease.id}});
    access.event(t, "lease.created",
                 {{"lease", lease.id},
                  {"order", live.id},
                  {"bid", bid->id},
                  {"publisher", lease.publisher},
                  {"provider", lease.provider},
                  {"price", toJson(lease.price)}});
    return json{{"lease", lease.id},
                {"escrow", e.id},
                {"provider", lease.provider},
                {"terms", toJson(e.terms)},
                {"state", "open"}};
  }

  Result<json> attest(const SignedTx& s, const AuditorAttestBody& b, int64_t t,
                      LedgerAccess& access) {
    if (b.provider == s.tx.from)
      return invalidArgument("tx.body.provider: an auditor cannot attest about itself");
    if (!access.provider(b.provider))
      return notFound("tx.body.provider: " + b.provider + " is not a registered provider");
    if (b.attributes.empty()) {
      delAttestation.bind(1, b.provider);
      delAttestation.bind(2, s.tx.from);
      run(delAttestation);
    } else {
      Attestation a{s.tx.from, b.provider, b.attributes, t};
      putAttestation.bind(1, b.provider);
      putAttestation.bind(2, s.tx.from);
      putAttestation.bind(3, toJson(a).dump());
      run(putAttestation);
    }
    access.touch(b.provider);
    json attrs = json::object();
    for (const auto& [k, v] : b.attributes) attrs[k] = v;
    access.event(t, b.attributes.empty() ? "auditor.revoked" : "auditor.attested",
                 {{"auditor", s.tx.from}, {"provider", b.provider}, {"attributes", attrs}});
    return json{{"auditor", s.tx.from}, {"provider", b.provider}, {"attributes", attrs}};
  }
};

MarketRules::MarketRules(SQLite::Database& db, bool createSchema) {
  if (createSchema) db.exec(kSchema);
  impl_ = std::make_unique<Impl>(db);
}

MarketRules::~MarketRules() = default;

bool MarketRules::handles(TxKind kind) {
  switch (kind) {
    case TxKind::kOrderCreate:
    case TxKind::kOrderClose:
    case TxKind::kBidCreate:
    case TxKind::kBidClose:
    case TxKind::kLeaseCreate:
    case TxKind::kAuditorAttest:
      return true;
    default:
      return false;
  }
}

Result<json> MarketRules::apply(const SignedTx& s, int64_t t, const MarketParams& p,
                                LedgerAccess& access) {
  switch (s.tx.kind) {
    case TxKind::kOrderCreate:
      return impl_->orderCreate(s, std::get<OrderCreateBody>(s.tx.body), t, p, access);
    case TxKind::kOrderClose:
      return impl_->orderClose(s, std::get<OrderCloseBody>(s.tx.body), t, access);
    case TxKind::kBidCreate:
      return impl_->bidCreate(s, std::get<BidCreateBody>(s.tx.body), t, p, access);
    case TxKind::kBidClose:
      return impl_->bidClose(s, std::get<BidCloseBody>(s.tx.body), t, access);
    case TxKind::kLeaseCreate:
      return impl_->leaseCreate(s, std::get<LeaseCreateBody>(s.tx.body), t, access);
    case TxKind::kAuditorAttest:
      return impl_->attest(s, std::get<AuditorAttestBody>(s.tx.body), t, access);
    default:
      return internalError("not a market transaction");
  }
}

std::vector<std::string> MarketRules::dueExpiries(int64_t t) {
  std::vector<std::string> out;
  for (SQLite::Statement* q : {&impl_->dueOrders, &impl_->dueBids}) {
    q->reset();
    q->bind(1, static_cast<int64_t>(t));
    while (q->executeStep()) out.push_back(q->getColumn(0).getString());
    q->reset();
  }
  return out;
}

Result<json> MarketRules::expire(const std::string& id, int64_t t, LedgerAccess& access) {
  if (startsWith(id, "ord_")) {
    auto o = impl_->getOrder(id);
    if (!o) return notFound("order " + id + " does not exist");
    if (o->state != OrderState::kOpen || o->expiresAt > t)
      return failedPrecondition("order " + id + " is not due to expire");
    RETURN_IF_ERROR(impl_->endOrder(*o, OrderState::kExpired, BidState::kExpired, t, access));
    return json{{"order", id}};
  }
  auto b = impl_->getBid(id);
  if (!b) return notFound("bid " + id + " does not exist");
  if (b->state != BidState::kOpen || b->expiresAt > t)
    return failedPrecondition("bid " + id + " is not due to expire");
  RETURN_IF_ERROR(impl_->settleBid(*b, BidState::kExpired, t, access, "expired"));
  return json{{"bid", id}};
}

void MarketRules::hashInto(SQLite::Database& db, crypto::Hasher& h) {
  const bool present = db.tableExists("orders");
  const std::pair<const char*, const char*> tables[] = {
      {"orders", "SELECT id, record FROM orders ORDER BY id"},
      {"bids", "SELECT id, record FROM bids ORDER BY id"},
      {"leases", "SELECT id, record FROM leases ORDER BY id"},
      {"attestations",
       "SELECT provider || '/' || auditor, record FROM attestations ORDER BY provider, auditor"},
  };
  for (const auto& [name, sql] : tables) {
    h.field(name);
    if (!present) continue;
    SQLite::Statement q(db, sql);
    while (q.executeStep()) h.field(q.getColumn(0).getString()).field(q.getColumn(1).getString());
  }
}

Result<Order> MarketRules::order(SQLite::Database& db, const std::string& id) {
  return one<Order>(db, "SELECT record FROM orders WHERE id = ?", id, orderFromJson,
                    "order " + id + " does not exist");
}

Result<std::vector<Order>> MarketRules::orders(SQLite::Database& db, const OrderFilter& f) {
  SqlFilter w;
  w.eq("publisher", f.publisher);
  const std::string state = f.state ? orderStateName(*f.state) : "";
  if (f.publisher.empty()) {
    w.eq("state", state);  // orders_due(state, ...)
  } else {
    w.unindexed("state", state);  // one publisher's orders are few; open orders may be many
  }
  SQLite::Statement q(db, w.sql("record", "orders", "ORDER BY created_at DESC, id LIMIT ?"));
  w.bind(q, static_cast<int64_t>(f.limit));
  return many<Order>(q, orderFromJson);
}

Result<Bid> MarketRules::bid(SQLite::Database& db, const std::string& id) {
  return one<Bid>(db, "SELECT record FROM bids WHERE id = ?", id, bidFromJson,
                  "bid " + id + " does not exist");
}

Result<std::vector<Bid>> MarketRules::bids(SQLite::Database& db, const BidFilter& f) {
  SqlFilter w;
  w.eq("order_id", f.order);
  if (f.order.empty()) {
    w.eq("provider", f.provider);
  } else {
    w.unindexed("provider", f.provider);  // one order's bids are few; a provider's are many
  }
  w.eq("state", f.state ? bidStateName(*f.state) : "");
  SQLite::Statement q(db, w.sql("record", "bids", "ORDER BY created_at DESC, id LIMIT ?"));
  w.bind(q, static_cast<int64_t>(f.limit));
  return many<Bid>(q, bidFromJson);
}

Result<Lease> MarketRules::lease(SQLite::Database& db, const std::string& id) {
  return one<Lease>(db, "SELECT record FROM leases WHERE id = ?", id, leaseFromJson,
                    "lease " + id + " does not exist");
}

Result<std::vector<Lease>> MarketRules::leases(SQLite::Database& db, const LeaseFilter& f) {
  SqlFilter w;
  w.eq("publisher", f.publisher).eq("provider", f.provider);
  SQLite::Statement q(db, w.sql("record", "leases", "ORDER BY created_at DESC, id LIMIT ?"));
  w.bind(q, static_cast<int64_t>(f.limit));
  return many<Lease>(q, leaseFromJson);
}

Result<std::vector<Attestation>> MarketRules::attestations(SQLite::Database& db,
                                                           const std::string& provider) {
  SQLite::Statement q(db, "SELECT record FROM attestations WHERE provider = ? ORDER BY auditor");
  q.bind(1, provider);
  return many<Attestation>(q, attestationFromJson);
}

Micros MarketRules::held(SQLite::Database& db) {
  Micros total = 0;
  for (const char* sql : {"SELECT record FROM orders WHERE state = 'open'",
                          "SELECT record FROM bids WHERE state = 'open'"}) {
    SQLite::Statement q(db, sql);
    while (q.executeStep())
      total += json::parse(q.getColumn(0).getString()).value("deposit", int64_t{0});
  }
  return total;
}

}  // namespace mercato::ledger::embedded
