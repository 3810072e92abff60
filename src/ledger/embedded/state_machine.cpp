#include "ledger/embedded/state_machine.hpp"

#include <algorithm>

#include "common/strings.hpp"
#include "crypto/hash.hpp"
#include "ledger/embedded/market_rules.hpp"

namespace mercato::ledger::embedded {

using nlohmann::json;

namespace {

// Storage layout 2 (docs/architecture.md, "Storage layout"). Every write a transfer makes is
// either an append (txlog, events) or lands on a page the transaction dirties anyway (the
// sender's `accounts` row), so a group commit writes few random pages:
//  - accounts.recent holds the seqs of the account's newest log entries (varint deltas); every
//    kRecentSpill of them move to tx_accounts at once, all on the same page.
//  - the hash -> seq index (tx_hashes) is keyed by the hash's first 8 bytes and filled in sorted
//    slices by TxHashIndex, not one random insert per transaction.
// Layout 1 (before 2026-11-23) had no accounts.recent, a UNIQUE index on txlog.hash and no
// tx_hashes; migrate() converts it.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS accounts(
  address TEXT PRIMARY KEY, balance INTEGER NOT NULL, nonce INTEGER NOT NULL, recent BLOB)
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS providers(
  owner TEXT PRIMARY KEY, active INTEGER NOT NULL, record TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS escrows(
  id TEXT PRIMARY KEY, publisher TEXT NOT NULL, provider TEXT NOT NULL, state TEXT NOT NULL,
  close_deadline INTEGER NOT NULL, record TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS escrows_publisher ON escrows(publisher);
CREATE INDEX IF NOT EXISTS escrows_provider ON escrows(provider);
CREATE INDEX IF NOT EXISTS escrows_closing ON escrows(state, close_deadline);
CREATE TABLE IF NOT EXISTS txlog(
  seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, entry_hash TEXT NOT NULL,
  time INTEGER NOT NULL, kind TEXT NOT NULL, sender TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tx_accounts(
  address TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY(address, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tx_hashes(
  prefix INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY(prefix, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY, tx_seq INTEGER NOT NULL, time INTEGER NOT NULL, type TEXT NOT NULL,
  data TEXT NOT NULL);
)sql";

constexpr int kLayout = 2;

// An account's newest log entries stay in its row until this many have collected.
constexpr size_t kRecentSpill = 16;

bool hasColumn(SQLite::Database& db, const std::string& table, const std::string& column) {
  SQLite::Statement q(db, "SELECT 1 FROM pragma_table_info(?) WHERE name = ?");
  q.bind(1, table);
  q.bind(2, column);
  return q.executeStep();
}

std::string metaValue(SQLite::Database& db, const std::string& key) {
  if (!db.tableExists("meta")) return "";
  SQLite::Statement q(db, "SELECT value FROM meta WHERE key = ?");
  q.bind(1, key);
  return q.executeStep() ? q.getColumn(0).getString() : "";
}

// Brings a layout-1 database to layout 2 in one transaction: adds accounts.recent, rebuilds
// txlog without its UNIQUE(hash) index and builds tx_hashes from the log.
void migrate(SQLite::Database& db) {
  const bool existing = db.tableExists("txlog");
  const std::string layout = metaValue(db, "layout");
  if (layout == std::to_string(kLayout)) return;
  if (!layout.empty())
    throw std::runtime_error("ledger database has storage layout " + layout +
                             "; this build reads layouts 1 and " + std::to_string(kLayout));
  SQLite::Transaction t(db);
  if (existing) {
    if (!hasColumn(db, "accounts", "recent"))
      db.exec("ALTER TABLE accounts ADD COLUMN recent BLOB");
    db.exec(R"sql(
CREATE TABLE txlog_v2(
  seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, entry_hash TEXT NOT NULL,
  time INTEGER NOT NULL, kind TEXT NOT NULL, sender TEXT NOT NULL, body TEXT NOT NULL);
INSERT INTO txlog_v2 SELECT seq, hash, entry_hash, time, kind, sender, body FROM txlog;
DROP TABLE txlog;
ALTER TABLE txlog_v2 RENAME TO txlog;
)sql");
  }
  db.exec(kSchema);
  if (existing) {
    SQLite::Statement ins(db, "INSERT OR IGNORE INTO tx_hashes(prefix, seq) VALUES(?, ?)");
    SQLite::Statement q(db, "SELECT seq, hash FROM txlog ORDER BY seq");
    while (q.executeStep()) {
      const auto prefix = txHashPrefix(q.getColumn(1).getString());
      if (!prefix) throw std::runtime_error("txlog entry has a malformed hash");
      ins.bind(1, static_cast<int64_t>(*prefix));
      ins.bind(2, q.getColumn(0).getInt64());
      ins.exec();
      ins.reset();
    }
  }
  db.exec("INSERT OR REPLACE INTO meta(key, value) VALUES('layout', '" + std::to_string(kLayout) +
          "'), ('hash_index_seq', (SELECT COALESCE(MAX(seq), 0) FROM txlog))");
  t.commit();
}

// accounts.recent: LEB128 varints, the first seq absolute, then the differences.
std::vector<uint64_t> decodeRecent(const void* data, size_t size) {
  std::vector<uint64_t> out;
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t prev = 0, v = 0;
  int shift = 0;
  for (size_t i = 0; i < size; ++i) {
    v |= static_cast<uint64_t>(p[i] & 0x7f) << shift;
    if (p[i] & 0x80) {
      shift += 7;
      if (shift > 63) throw std::runtime_error("corrupt accounts.recent value");
      continue;
    }
    prev += v;
    out.push_back(prev);
    v = 0;
    shift = 0;
  }
  if (shift != 0) throw std::runtime_error("corrupt accounts.recent value");
  return out;
}

void appendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

std::string encodeRecent(const std::vector<uint64_t>& seqs) {
  std::string out;
  uint64_t prev = 0;
  for (uint64_t s : seqs) {
    appendVarint(out, s - prev);
    prev = s;
  }
  return out;
}

const std::string kZeroHash(64, '0');

}  // namespace

json toJson(const GenesisParams& g) {
  json alloc = json::array();
  for (const auto& [addr, amount] : g.allocations)
    alloc.push_back({{"address", addr}, {"amount", amount}});
  json j = {{"chain", g.chainId},
            {"devMode", g.devMode},
            {"closeGraceMs", g.closeGraceMs},
            {"mintCap", g.mintCap},
            {"allocations", alloc}};
  if (g.bidDeposit) j["bidDeposit"] = *g.bidDeposit;
  if (g.maxOrderTtlMs) j["maxOrderTtlMs"] = *g.maxOrderTtlMs;
  return j;
}

Result<GenesisParams> genesisFromJson(const json& j) {
  const std::string w = "genesis";
  GenesisParams g;
  ASSIGN_OR_RETURN(g.chainId, jsonString(j, "chain", w));
  if (!j.contains("devMode") || !j["devMode"].is_boolean())
    return invalidArgument("genesis.devMode: expected true or false");
  g.devMode = j["devMode"].get<bool>();
  ASSIGN_OR_RETURN(g.closeGraceMs, jsonInt(j, "closeGraceMs", w));
  ASSIGN_OR_RETURN(g.mintCap, jsonInt(j, "mintCap", w));
  if (!j.contains("allocations") || !j["allocations"].is_array())
    return invalidArgument("genesis.allocations: expected an array");
  for (const auto& a : j["allocations"]) {
    ASSIGN_OR_RETURN(std::string addr, jsonString(a, "address", "genesis.allocations[]"));
    ASSIGN_OR_RETURN(Micros amount, jsonInt(a, "amount", "genesis.allocations[]"));
    g.allocations.emplace_back(addr, amount);
  }
  if (j.contains("bidDeposit")) {
    ASSIGN_OR_RETURN(g.bidDeposit, jsonInt(j, "bidDeposit", w));
  }
  if (j.contains("maxOrderTtlMs")) {
    ASSIGN_OR_RETURN(g.maxOrderTtlMs, jsonInt(j, "maxOrderTtlMs", w));
  }
  return g;
}

struct StateMachine::Impl {
  explicit Impl(SQLite::Database& d)
      : db(d),
        selProvider(db, "SELECT record FROM providers WHERE owner = ?"),
        putProvider(db, "INSERT OR REPLACE INTO providers(owner, active, record) VALUES(?,?,?)"),
        selEscrow(db, "SELECT record FROM escrows WHERE id = ?"),
        putEscrow(db,
                  "INSERT OR REPLACE INTO escrows(id, publisher, provider, state, close_deadline, "
                  "record) VALUES(?,?,?,?,?,?)"),
        insLog(db,
               "INSERT INTO txlog(seq, hash, entry_hash, time, kind, sender, body) "
               "VALUES(?,?,?,?,?,?,?)"),
        insTouch(db, "INSERT OR IGNORE INTO tx_accounts(address, seq) VALUES(?,?)"),
        insEvent(db, "INSERT INTO events(seq, tx_seq, time, type, data) VALUES(?,?,?,?,?)"),
        savepoint(db, "SAVEPOINT apply"),
        release(db, "RELEASE apply"),
        rollback(db, "ROLLBACK TO apply") {
    loadHead();
  }

  // The account statements name layout-2 columns, so they are prepared on first use: a
  // read-only view of a layout-1 database (offline verify before a daemon migrated it) never
  // prepares them.
  struct AccountStatements {
    explicit AccountStatements(SQLite::Database& db)
        : sel(db, "SELECT balance, nonce, recent FROM accounts WHERE address = ?"),
          put(db,
              "INSERT OR REPLACE INTO accounts(address, balance, nonce, recent) VALUES(?,?,?,?)") {}
    SQLite::Statement sel, put;
  };
  AccountStatements& accountStmts() {
    if (!accountStatements) accountStatements = std::make_unique<AccountStatements>(db);
    return *accountStatements;
  }

  SQLite::Database& db;
  SQLite::Statement selProvider, putProvider, selEscrow, putEscrow, insLog, insTouch, insEvent,
      savepoint, release, rollback;
  std::unique_ptr<AccountStatements> accountStatements;
  std::unique_ptr<SQLite::Statement> selDue;  // dueClosings(), prepared on first use
  GenesisParams params;
  bool paramsLoaded = false;
  uint64_t head = 0;
  std::string headHash = kZeroHash;
  uint64_t eventHead = 0;

  // Per-apply scratch.
  std::vector<Event> events;
  std::vector<std::string> touched;

  void loadHead() {
    SQLite::Statement q(db, "SELECT seq, entry_hash FROM txlog ORDER BY seq DESC LIMIT 1");
    if (q.executeStep()) {
      head = static_cast<uint64_t>(q.getColumn(0).getInt64());
      headHash = q.getColumn(1).getString();
    } else {
      head = 0;
      headHash = kZeroHash;
    }
    SQLite::Statement e(db, "SELECT COALESCE(MAX(seq), 0) FROM events");
    e.executeStep();
    eventHead = static_cast<uint64_t>(e.getColumn(0).getInt64());
  }

  static void exec(SQLite::Statement& s) {
    s.exec();
    s.reset();
    s.clearBindings();
  }

  // An accounts row as stored: the consensus fields plus the account's newest log entries
  // (not part of the state root).
  struct Row {
    Account account;
    std::vector<uint64_t> recent;
    bool modified = false;  // to be written back
  };
  // Accounts read or changed by the transaction being applied; the modified ones are written
  // once, in commitEntry().
  std::map<std::string, Row> dirty;

  std::optional<Row> loadRow(const std::string& addr) {
    auto& q = accountStmts().sel;
    q.reset();
    q.bind(1, addr);
    if (!q.executeStep()) {
      q.reset();
      return std::nullopt;
    }
    Row r{
        Account{addr, q.getColumn(0).getInt64(), static_cast<uint64_t>(q.getColumn(1).getInt64())},
        {}};
    const SQLite::Column recent = q.getColumn(2);
    if (!recent.isNull()) r.recent = decodeRecent(recent.getBlob(), recent.getBytes());
    q.reset();
    return r;
  }
  std::optional<Account> getAccount(const std::string& addr) {
    if (auto it = dirty.find(addr); it != dirty.end()) return it->second.account;
    auto row = loadRow(addr);
    if (!row) return std::nullopt;
    Account a = row->account;
    dirty.emplace(addr, std::move(*row));
    return a;
  }
  void storeAccount(const Account& a) {
    auto it = dirty.find(a.address);
    if (it == dirty.end()) {
      auto row = loadRow(a.address);
      it = dirty.emplace(a.address, row ? std::move(*row) : Row{a, {}}).first;
    }
    it->second.account = a;
    it->second.modified = true;
    touched.push_back(a.address);
  }
  // Records log entry `seq` in the history of every touched account: in the account's row
  // while it has fewer than kRecentSpill pending, then all at once in tx_accounts.
  void recordTouches(uint64_t seq) {
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (const auto& addr : touched) {
      auto it = dirty.find(addr);
      if (it == dirty.end()) {
        auto row = loadRow(addr);
        if (!row) {  // no accounts row to hold it (not expected): index it directly
          insertTouch(addr, seq);
          continue;
        }
        it = dirty.emplace(addr, std::move(*row)).first;
      }
      it->second.modified = true;
      auto& recent = it->second.recent;
      recent.push_back(seq);
      if (recent.size() >= kRecentSpill) {
        for (uint64_t s : recent) insertTouch(addr, s);
        recent.clear();
      }
    }
  }
  void insertTouch(const std::string& addr, uint64_t seq) {
    auto& q = insTouch;
    q.bind(1, addr);
    q.bind(2, static_cast<int64_t>(seq));
    exec(q);
  }
  void flushAccounts() {
    auto& q = accountStmts().put;
    for (const auto& [addr, row] : dirty) {
      if (!row.modified) continue;
      q.bind(1, addr);
      q.bind(2, static_cast<int64_t>(row.account.balance));
      q.bind(3, static_cast<int64_t>(row.account.nonce));
      if (row.recent.empty()) {
        q.bind(4);
      } else {
        const std::string blob = encodeRecent(row.recent);
        q.bind(4, blob.data(), static_cast<int>(blob.size()));
      }
      exec(q);
    }
    dirty.clear();
  }
  Status credit(const std::string& addr, Micros amount) {
    Account a = getAccount(addr).value_or(Account{addr, 0, 0});
    ASSIGN_OR_RETURN(a.balance, checkedAdd(a.balance, amount));
    storeAccount(a);
    return Status::ok();
  }
  Status debit(const std::string& addr, Micros amount) {
    auto a = getAccount(addr);
    if (!a) return notFound("account " + addr + " is unknown: it has never received funds");
    if (a->balance < amount)
      return failedPrecondition("overdraft: account " + addr + " has " + formatAmount(a->balance) +
                                " " + std::string(kTokenSymbol) + ", needs " +
                                formatAmount(amount));
    a->balance -= amount;
    storeAccount(*a);
    return Status::ok();
  }

  std::optional<ProviderRecord> getProvider(const std::string& owner) {
    selProvider.reset();
    selProvider.bind(1, owner);
    if (!selProvider.executeStep()) return std::nullopt;
    auto p = providerFromJson(json::parse(selProvider.getColumn(0).getString()));
    selProvider.reset();
    if (!p.isOk()) throw std::runtime_error("corrupt provider row: " + p.status().message());
    return *p;
  }
  void storeProvider(const ProviderRecord& p) {
    putProvider.bind(1, p.owner);
    putProvider.bind(2, p.active ? 1 : 0);
    putProvider.bind(3, toJson(p).dump());
    exec(putProvider);
  }

  std::optional<Escrow> getEscrow(const std::string& id) {
    selEscrow.reset();
    selEscrow.bind(1, id);
    if (!selEscrow.executeStep()) return std::nullopt;
    auto e = escrowFromJson(json::parse(selEscrow.getColumn(0).getString()));
    selEscrow.reset();
    if (!e.isOk()) throw std::runtime_error("corrupt escrow row: " + e.status().message());
    return *e;
  }
  void storeEscrow(const Escrow& e) {
    putEscrow.bind(1, e.id);
    putEscrow.bind(2, e.publisher);
    putEscrow.bind(3, e.provider);
    putEscrow.bind(4, escrowStateName(e.state));
    putEscrow.bind(5, static_cast<int64_t>(e.closeDeadline));
    putEscrow.bind(6, toJson(e).dump());
    exec(putEscrow);
  }

  void event(int64_t time, const std::string& type, json data) {
    Event e;
    e.time = time;
    e.type = type;
    e.data = std::move(data);
    events.push_back(std::move(e));
  }

  Micros supply() {
    SQLite::Statement q(db, "SELECT value FROM meta WHERE key = 'supply'");
    if (!q.executeStep()) return 0;
    return std::stoll(q.getColumn(0).getString());
  }
  void setSupply(Micros s) {
    SQLite::Statement q(db, "INSERT OR REPLACE INTO meta(key, value) VALUES('supply', ?)");
    q.bind(1, std::to_string(s));
    q.exec();
  }

  // Appends the log entry and the events collected during this apply; returns the receipt.
  Applied commitEntry(const std::string& kind, const std::string& sender, const std::string& hash,
                      const std::string& body, int64_t time, json result) {
    const uint64_t seq = head + 1;
    recordTouches(seq);
    flushAccounts();
    auto eh = crypto::Hasher()
                  .field(headHash)
                  .u64(seq)
                  .u64(static_cast<uint64_t>(time))
                  .field(kind)
                  .field(hash)
                  .finish();
    const std::string entryHash = crypto::hashHex(eh);
    insLog.bind(1, static_cast<int64_t>(seq));
    insLog.bind(2, hash);
    insLog.bind(3, entryHash);
    insLog.bind(4, static_cast<int64_t>(time));
    insLog.bind(5, kind);
    insLog.bind(6, sender);
    insLog.bind(7, body);
    exec(insLog);
    uint64_t ev = eventHead;
    for (auto& e : events) {
      e.seq = ++ev;
      e.txSeq = seq;
      insEvent.bind(1, static_cast<int64_t>(e.seq));
      insEvent.bind(2, static_cast<int64_t>(seq));
      insEvent.bind(3, static_cast<int64_t>(time));
      insEvent.bind(4, e.type);
      insEvent.bind(5, e.data.dump());
      exec(insEvent);
    }
    Applied out;
    out.receipt.hash = hash;
    out.receipt.seq = seq;
    out.receipt.time = time;
    out.receipt.result = std::move(result);
    out.events = std::move(events);
    events.clear();
    touched.clear();
    // Heads move only after the caller releases the savepoint; see finishOk().
    pendingHead = seq;
    pendingHeadHash = entryHash;
    pendingHash = hash;
    pendingEventHead = ev;
    return out;
  }
  uint64_t pendingHead = 0, pendingEventHead = 0;
  std::string pendingHeadHash;
  void finishOk() {
    head = pendingHead;
    headHash = pendingHeadHash;
    eventHead = pendingEventHead;
    if (trackLogged)
      if (auto p = txHashPrefix(pendingHash)) logged.emplace_back(*p, head);
  }
  std::string pendingHash;
  // (hash prefix, seq) of every entry applied since takeLogged(), whatever its kind.
  bool trackLogged = false;
  std::vector<std::pair<uint64_t, uint64_t>> logged;

  // Runs `body` inside a savepoint: on error or exception, rolls everything back.
  template <typename F>
  Result<Applied> atomically(F&& body) {
    events.clear();
    touched.clear();
    dirty.clear();
    savepoint.exec();
    savepoint.reset();
    try {
      Result<Applied> r = body();
      if (r.isOk()) {
        release.exec();
        release.reset();
        finishOk();
      } else {
        dirty.clear();
        rollback.exec();
        rollback.reset();
        release.exec();
        release.reset();
      }
      return r;
    } catch (const std::exception& e) {
      dirty.clear();
      try {
        rollback.reset();
        rollback.exec();
        rollback.reset();
        release.reset();
        release.exec();
        release.reset();
      } catch (...) {
      }
      if (accountStatements) accountStatements->sel.reset();
      selProvider.reset();
      selEscrow.reset();
      return internalError(std::string("ledger storage error: ") + e.what());
    }
  }

  void finalize(Escrow& e, int64_t time) {
    const Micros refund = e.balance();
    if (refund > 0) (void)credit(e.publisher, refund);
    e.refunded += refund;
    e.state = EscrowState::kClosed;
    e.closedAt = time;
    storeEscrow(e);
    event(time, "escrow.closed",
          {{"escrow", e.id},
           {"publisher", e.publisher},
           {"provider", e.provider},
           {"refunded", refund},
           {"claimed", e.claimed}});
  }

  Result<json> applyKind(const SignedTx& s, int64_t t);

  // Market rules, created on first use (read-only views never need them).
  std::unique_ptr<MarketRules> marketRules;
  MarketRules& market() {
    if (!marketRules) marketRules = std::make_unique<MarketRules>(db, false);
    return *marketRules;
  }
  MarketParams marketParams() const {
    return {params.effectiveBidDeposit(), params.effectiveMaxOrderTtlMs()};
  }
};

namespace {
// What MarketRules may touch, routed through the apply's scratch state.
class ImplAccess final : public LedgerAccess {
 public:
  explicit ImplAccess(StateMachine::Impl& impl) : impl_(impl) {}
  Status credit(const std::string& a, Micros amount) override { return impl_.credit(a, amount); }
  Status debit(const std::string& a, Micros amount) override { return impl_.debit(a, amount); }
  std::optional<ProviderRecord> provider(const std::string& owner) override {
    return impl_.getProvider(owner);
  }
  std::optional<Escrow> escrow(const std::string& id) override { return impl_.getEscrow(id); }
  void storeEscrow(const Escrow& e) override { impl_.storeEscrow(e); }
  void touch(const std::string& a) override { impl_.touched.push_back(a); }
  void event(int64_t time, const std::string& type, json data) override {
    impl_.event(time, type, std::move(data));
  }

 private:
  StateMachine::Impl& impl_;
};
}  // namespace

Result<json> StateMachine::Impl::applyKind(const SignedTx& s, int64_t t) {
  const Tx& tx = s.tx;
  if (MarketRules::handles(tx.kind)) {
    ImplAccess access(*this);
    return market().apply(s, t, marketParams(), access);
  }
  switch (tx.kind) {
    case TxKind::kTransfer: {
      const auto& b = std::get<TransferBody>(tx.body);
      if (b.to == tx.from) return invalidArgument("tx.body.to: cannot transfer to yourself");
      RETURN_IF_ERROR(debit(tx.from, b.amount));
      RETURN_IF_ERROR(credit(b.to, b.amount));
      event(t, "account.transfer", {{"from", tx.from}, {"to", b.to}, {"amount", b.amount}});
      return json{{"to", b.to}, {"amount", b.amount}};
    }
    case TxKind::kMint: {
      const auto& b = std::get<MintBody>(tx.body);
      if (!params.devMode)
        return permissionDenied("mint is only allowed on a dev-mode ledger (chain " +
                                params.chainId + " is not)");
      if (b.amount > params.mintCap)
        return invalidArgument("tx.body.amount: a mint may create at most " +
                               formatAmount(params.mintCap) + " " + std::string(kTokenSymbol));
      Micros sup = supply();
      ASSIGN_OR_RETURN(Micros newSupply, checkedAdd(sup, b.amount));
      RETURN_IF_ERROR(credit(b.to, b.amount));
      setSupply(newSupply);
      event(t, "account.mint", {{"to", b.to}, {"amount", b.amount}, {"by", tx.from}});
      return json{{"to", b.to}, {"amount", b.amount}};
    }
    case TxKind::kProviderRegister:
    case TxKind::kProviderUpdate: {
      const auto& b = std::get<ProviderBody>(tx.body);
      auto existing = getProvider(tx.from);
      const bool active = existing && existing->active;
      if (tx.kind == TxKind::kProviderRegister && active)
        return alreadyExists("provider " + tx.from +
                             " is already registered; use provider.update to change it");
      if (tx.kind == TxKind::kProviderUpdate && !active)
        return notFound("provider " + tx.from + " is not registered");
      ProviderRecord p;
      p.owner = tx.from;
      p.nodeKey = b.nodeKey;
      p.gatewayUrl = b.gatewayUrl;
      p.attributes = b.attributes;
      p.capacity = b.capacity;
      p.prices = b.prices;
      p.active = true;
      p.registeredAt = active ? existing->registeredAt : t;
      p.updatedAt = t;
      storeProvider(p);
      const char* type =
          tx.kind == TxKind::kProviderRegister ? "provider.registered" : "provider.updated";
      event(t, type, {{"provider", tx.from}, {"gatewayUrl", p.gatewayUrl}});
      return json{{"provider", tx.from}};
    }
    case TxKind::kProviderDeregister: {
      auto p = getProvider(tx.from);
      if (!p || !p->active) return notFound("provider " + tx.from + " is not registered");
      p->active = false;
      p->updatedAt = t;
      storeProvider(*p);
      event(t, "provider.deregistered", {{"provider", tx.from}});
      return json{{"provider", tx.from}};
    }
    case TxKind::kEscrowOpen: {
      const auto& b = std::get<EscrowOpenBody>(tx.body);
      auto p = getProvider(b.provider);
      if (!p || !p->active)
        return notFound("tx.body.provider: " + b.provider + " is not a registered provider");
      if (b.expectTerms && !(*b.expectTerms == p->prices))
        return failedPrecondition("tx.body.expectTerms: provider " + b.provider + " now charges " +
                                  toJson(p->prices).dump() + "; the escrow was not opened");
      RETURN_IF_ERROR(debit(tx.from, b.deposit));
      Escrow e;
      e.id = escrowIdFor(tx.from, tx.nonce);
      if (getEscrow(e.id)) return alreadyExists("escrow " + e.id + " already exists");
      e.publisher = tx.from;
      e.provider = b.provider;
      e.terms = p->prices;
      e.deposited = b.deposit;
      e.openedAt = t;
      storeEscrow(e);
      touched.push_back(b.provider);
      event(t, "escrow.opened",
            {{"escrow", e.id},
             {"publisher", e.publisher},
             {"provider", e.provider},
             {"deposit", b.deposit},
             {"terms", toJson(e.terms)}});
      return json{{"escrow", e.id}, {"terms", toJson(e.terms)}, {"state", "open"}};
    }
    case TxKind::kEscrowDeposit: {
      const auto& b = std::get<EscrowDepositBody>(tx.body);
      auto e = getEscrow(b.escrow);
      if (!e) return notFound("tx.body.escrow: escrow " + b.escrow + " does not exist");
      if (e->publisher != tx.from)
        return permissionDenied("escrow " + e->id + " belongs to publisher " + e->publisher +
                                ", not " + tx.from);
      if (e->state == EscrowState::kClosing || e->state == EscrowState::kClosed)
        return failedPrecondition("escrow " + e->id + " is " + escrowStateName(e->state) +
                                  " and takes no more deposits");
      RETURN_IF_ERROR(debit(tx.from, b.amount));
      ASSIGN_OR_RETURN(e->deposited, checkedAdd(e->deposited, b.amount));
      Micros paid = 0;
      if (e->state == EscrowState::kExhausted) {
        // Pay what the provider is still owed before the escrow can serve again.
        paid = std::min(e->owed - e->claimed, e->balance());
        e->claimed += paid;
        if (paid > 0) RETURN_IF_ERROR(credit(e->provider, paid));
        if (e->claimed >= e->owed) {
          e->state = EscrowState::kOpen;
          event(t, "escrow.reopened", {{"escrow", e->id}, {"provider", e->provider}});
        }
      }
      storeEscrow(*e);
      event(t, "escrow.deposited",
            {{"escrow", e->id},
             {"amount", b.amount},
             {"paidOutstanding", paid},
             {"provider", e->provider}});
      return json{{"escrow", e->id},
                  {"deposited", e->deposited},
                  {"balance", e->balance()},
                  {"state", escrowStateName(e->state)}};
    }
    case TxKind::kEscrowClaim: {
      const auto& b = std::get<EscrowClaimBody>(tx.body);
      auto e = getEscrow(b.escrow);
      if (!e) return notFound("tx.body.escrow: escrow " + b.escrow + " does not exist");
      if (e->provider != tx.from)
        return permissionDenied("escrow " + e->id + " belongs to provider " + e->provider + "; " +
                                tx.from + " cannot claim from it");
      if (e->state == EscrowState::kClosed)
        return failedPrecondition("escrow " + e->id + " is closed");
      if (e->state == EscrowState::kClosing && t >= e->closeDeadline)
        return failedPrecondition("escrow " + e->id + ": the grace period for a final claim ended");
      for (const auto& f : kUsageFields) {
        const int64_t before = e->usage.*f.member, after = b.usage.*f.member;
        if (after < before)
          return failedPrecondition("tx.body.usage." + std::string(f.name) + " went down from " +
                                    std::to_string(before) + " to " + std::to_string(after) +
                                    ": claims carry cumulative usage");
      }
      e->usage = b.usage;
      e->owed = computeOwed(e->terms, e->usage);
      const Micros due = e->owed - e->claimed;
      const Micros paid = std::max<Micros>(0, std::min(due, e->balance()));
      e->claimed += paid;
      if (paid > 0) RETURN_IF_ERROR(credit(e->provider, paid));
      const bool exhausted = e->owed > e->claimed;
      if (exhausted && e->state == EscrowState::kOpen) {
        e->state = EscrowState::kExhausted;
        event(t, "escrow.exhausted",
              {{"escrow", e->id},
               {"provider", e->provider},
               {"publisher", e->publisher},
               {"unpaid", e->owed - e->claimed}});
      }
      storeEscrow(*e);
      touched.push_back(e->publisher);
      event(t, "escrow.claimed",
            {{"escrow", e->id},
             {"provider", e->provider},
             {"paid", paid},
             {"owed", e->owed},
             {"claimed", e->claimed}});
      return json{{"escrow", e->id},
                  {"paid", paid},
                  {"owed", e->owed},
                  {"claimed", e->claimed},
                  {"unpaid", e->owed - e->claimed},
                  {"state", escrowStateName(e->state)}};
    }
    case TxKind::kEscrowClose: {
      const auto& b = std::get<EscrowCloseBody>(tx.body);
      auto e = getEscrow(b.escrow);
      if (!e) return notFound("tx.body.escrow: escrow " + b.escrow + " does not exist");
      const bool byPublisher = e->publisher == tx.from;
      const bool byProvider = e->provider == tx.from;
      if (!byPublisher && !byProvider)
        return permissionDenied("escrow " + e->id + " belongs to " + e->publisher + " and " +
                                e->provider + "; " + tx.from + " cannot close it");
      if (e->state == EscrowState::kClosed)
        return failedPrecondition("escrow " + e->id + " is already closed");
      if (e->state == EscrowState::kClosing && byPublisher)
        return failedPrecondition("escrow " + e->id + " is already closing");
      touched.push_back(e->publisher);
      touched.push_back(e->provider);
      if (byProvider || params.closeGraceMs == 0) {
        // The provider gives up its claim to the rest; nothing to wait for.
        finalize(*e, t);
      } else {
        e->state = EscrowState::kClosing;
        e->closeDeadline = t + params.closeGraceMs;
        storeEscrow(*e);
        event(t, "escrow.closing",
              {{"escrow", e->id}, {"provider", e->provider}, {"closeDeadline", e->closeDeadline}});
      }
      return json{{"escrow", e->id},
                  {"state", escrowStateName(e->state)},
                  {"closeDeadline", e->closeDeadline},
                  {"refunded", e->refunded}};
    }
    case TxKind::kOrderCreate:  // MarketRules::handles() took these above
    case TxKind::kOrderClose:
    case TxKind::kBidCreate:
    case TxKind::kBidClose:
    case TxKind::kLeaseCreate:
    case TxKind::kAuditorAttest:
      break;
  }
  return internalError("unhandled transaction kind");
}

std::optional<uint64_t> txHashPrefix(std::string_view hexHash) {
  if (hexHash.size() < 16) return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 0; i < 16; ++i) {
    const char c = hexHash[i];
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

StateMachine::StateMachine(SQLite::Database& db, bool createSchema) {
  if (createSchema) {
    migrate(db);
    MarketRules schema(db, true);  // creates the market tables
  }
  impl_ = std::make_unique<Impl>(db);
}

std::vector<uint64_t> StateMachine::entriesTouching(const std::string& address, uint64_t after,
                                                    size_t limit) {
  std::vector<uint64_t> out;
  SQLite::Statement q(impl_->db,
                      "SELECT seq FROM tx_accounts WHERE address = ? AND seq > ? ORDER BY seq "
                      "LIMIT ?");
  q.bind(1, address);
  q.bind(2, static_cast<int64_t>(after));
  q.bind(3, static_cast<int64_t>(limit));
  while (q.executeStep()) out.push_back(static_cast<uint64_t>(q.getColumn(0).getInt64()));
  SQLite::Statement r(impl_->db, "SELECT recent FROM accounts WHERE address = ?");
  r.bind(1, address);
  if (r.executeStep() && !r.getColumn(0).isNull()) {
    const SQLite::Column c = r.getColumn(0);
    for (uint64_t s : decodeRecent(c.getBlob(), c.getBytes()))
      if (s > after) out.push_back(s);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.size() > limit) out.resize(limit);
  return out;
}

StateMachine::~StateMachine() = default;

bool StateMachine::initialized() { return impl_->head > 0; }

Result<GenesisParams> StateMachine::loadGenesis() {
  try {
    SQLite::Statement q(impl_->db, "SELECT body FROM txlog WHERE seq = 1 AND kind = 'genesis'");
    if (!q.executeStep()) return failedPrecondition("ledger database has no genesis entry");
    ASSIGN_OR_RETURN(impl_->params, genesisFromJson(json::parse(q.getColumn(0).getString())));
    impl_->paramsLoaded = true;
    return impl_->params;
  } catch (const std::exception& e) {
    return internalError(std::string("reading genesis: ") + e.what());
  }
}

Result<Applied> StateMachine::applyGenesis(const GenesisParams& params, int64_t timeMs) {
  if (initialized()) return failedPrecondition("ledger already has a genesis entry");
  return impl_->atomically([&]() -> Result<Applied> {
    Micros supply = 0;
    for (const auto& [addr, amount] : params.allocations) {
      RETURN_IF_ERROR(impl_->credit(addr, amount));
      ASSIGN_OR_RETURN(supply, checkedAdd(supply, amount));
    }
    impl_->setSupply(supply);
    impl_->params = params;
    impl_->paramsLoaded = true;
    const std::string body = canonicalJson(toJson(params)).value();
    impl_->event(timeMs, "ledger.genesis", {{"chain", params.chainId}});
    return impl_->commitEntry("genesis", "", crypto::hashHex(crypto::blake2b256(body)), body,
                              timeMs, json{{"chain", params.chainId}});
  });
}

Result<Applied> StateMachine::apply(const SignedTx& s, int64_t timeMs) {
  if (!impl_->paramsLoaded) return failedPrecondition("ledger is not initialized");
  return impl_->atomically([&]() -> Result<Applied> {
    const Tx& tx = s.tx;
    if (tx.chainId != impl_->params.chainId)
      return invalidArgument("tx.chain '" + tx.chainId + "': this ledger is '" +
                             impl_->params.chainId + "'");
    std::optional<Account> existing = impl_->getAccount(tx.from);
    // Only a faucet mint or a provider registration may come from an account the ledger has
    // never seen; everything else needs funds or prior state.
    if (!existing && tx.kind != TxKind::kMint && tx.kind != TxKind::kProviderRegister)
      return notFound("account " + tx.from + " is unknown: it has never received funds");
    Account self = existing.value_or(Account{tx.from, 0, 0});
    if (tx.nonce != self.nonce + 1)
      return failedPrecondition("tx.nonce " + std::to_string(tx.nonce) + ": expected " +
                                std::to_string(self.nonce + 1) + " for " + tx.from +
                                (tx.nonce <= self.nonce ? " (already used: replay rejected)" : ""));
    self.nonce = tx.nonce;
    impl_->storeAccount(self);
    ASSIGN_OR_RETURN(json result, impl_->applyKind(s, timeMs));
    const std::string body = wireText(s);
    return impl_->commitEntry(std::string(txKindName(tx.kind)), tx.from, s.hash, body, timeMs,
                              std::move(result));
  });
}

std::vector<std::string> StateMachine::dueClosings(int64_t timeMs) {
  std::vector<std::string> out;
  // Runs before every group commit: prepared once (preparing it each time was ~2% of the
  // daemon's CPU under load).
  if (!impl_->selDue)
    impl_->selDue = std::make_unique<SQLite::Statement>(
        impl_->db,
        "SELECT id FROM escrows WHERE state = 'closing' AND close_deadline <= ? "
        "ORDER BY close_deadline, id");
  SQLite::Statement& q = *impl_->selDue;
  q.reset();
  q.bind(1, static_cast<int64_t>(timeMs));
  while (q.executeStep()) out.push_back(q.getColumn(0).getString());
  q.reset();
  return out;
}

Result<Applied> StateMachine::finalizeClosing(const std::string& id, int64_t timeMs) {
  return impl_->atomically([&]() -> Result<Applied> {
    auto e = impl_->getEscrow(id);
    if (!e) return notFound("escrow " + id + " does not exist");
    if (e->state != EscrowState::kClosing || e->closeDeadline > timeMs)
      return failedPrecondition("escrow " + id + " is not due for finalization");
    impl_->touched.push_back(e->publisher);
    impl_->touched.push_back(e->provider);
    impl_->finalize(*e, timeMs);
    const std::string body = canonicalJson(json{{"escrow", id}}).value();
    return impl_->commitEntry("escrow.finalize", "",
                              crypto::hashHex(crypto::blake2b256("finalize:" + body)), body, timeMs,
                              json{{"escrow", id}, {"refunded", e->refunded}});
  });
}

std::vector<std::string> StateMachine::dueMarketExpiries(int64_t timeMs) {
  return impl_->market().dueExpiries(timeMs);
}

Result<Applied> StateMachine::expireMarket(const std::string& id, int64_t timeMs) {
  return impl_->atomically([&]() -> Result<Applied> {
    ImplAccess access(*impl_);
    ASSIGN_OR_RETURN(json body, impl_->market().expire(id, timeMs, access));
    const std::string kind = body.contains("order") ? "order.expire" : "bid.expire";
    const std::string text = canonicalJson(body).value();
    return impl_->commitEntry(kind, "", crypto::hashHex(crypto::blake2b256("expire:" + text)), text,
                              timeMs, body);
  });
}

Status StateMachine::replayEntry(const TxRecord& entry) {
  Result<Applied> applied = internalError("unreached");
  if (entry.kind == "genesis") {
    ASSIGN_OR_RETURN(GenesisParams g, genesisFromJson(entry.body));
    applied = applyGenesis(g, entry.time);
  } else if (entry.kind == "escrow.finalize") {
    ASSIGN_OR_RETURN(std::string id, jsonString(entry.body, "escrow", "entry.body"));
    applied = finalizeClosing(id, entry.time);
  } else if (entry.kind == "order.expire" || entry.kind == "bid.expire") {
    const char* key = entry.kind == "order.expire" ? "order" : "bid";
    ASSIGN_OR_RETURN(std::string id, jsonString(entry.body, key, "entry.body"));
    applied = expireMarket(id, entry.time);
  } else {
    ASSIGN_OR_RETURN(SignedTx s, decodeSignedTx(entry.body));
    RETURN_IF_ERROR(verifySignature(s));
    applied = apply(s, entry.time);
  }
  const std::string where = "log entry " + std::to_string(entry.seq) + " (" + entry.kind + ")";
  if (!applied.isOk()) return applied.status().withContext(where + " does not replay");
  if (applied->receipt.seq != entry.seq)
    return internalError(where + ": replay produced seq " + std::to_string(applied->receipt.seq));
  if (impl_->headHash != entry.entryHash)
    return internalError(where + ": chain hash mismatch (log says " + entry.entryHash +
                         ", replay gives " + impl_->headHash + ")");
  return Status::ok();
}

std::string StateMachine::stateRoot() {
  crypto::Hasher h;
  h.field("mercato-state-v1");
  SQLite::Statement a(impl_->db, "SELECT address, balance, nonce FROM accounts ORDER BY address");
  while (a.executeStep())
    h.field(a.getColumn(0).getString())
        .u64(static_cast<uint64_t>(a.getColumn(1).getInt64()))
        .u64(static_cast<uint64_t>(a.getColumn(2).getInt64()));
  h.field("providers");
  SQLite::Statement p(impl_->db, "SELECT owner, record FROM providers ORDER BY owner");
  while (p.executeStep()) h.field(p.getColumn(0).getString()).field(p.getColumn(1).getString());
  h.field("escrows");
  SQLite::Statement e(impl_->db, "SELECT id, record FROM escrows ORDER BY id");
  while (e.executeStep()) h.field(e.getColumn(0).getString()).field(e.getColumn(1).getString());
  MarketRules::hashInto(impl_->db, h);
  h.field("supply").u64(static_cast<uint64_t>(impl_->supply()));
  return crypto::hashHex(h.finish());
}

void StateMachine::resync() {
  impl_->loadHead();
  impl_->logged.clear();
}

void StateMachine::trackLogged() { impl_->trackLogged = true; }

std::vector<std::pair<uint64_t, uint64_t>> StateMachine::takeLogged() {
  return std::exchange(impl_->logged, {});
}

Micros StateMachine::totalSupply() { return impl_->supply(); }
uint64_t StateMachine::headSeq() { return impl_->head; }
std::string StateMachine::headHash() { return impl_->headHash; }
uint64_t StateMachine::eventSeq() { return impl_->eventHead; }

}  // namespace mercato::ledger::embedded
