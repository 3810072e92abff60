#include "mercato/cli.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <future>
#include <iostream>

#include "common/money.hpp"
#include "crypto/keystore.hpp"
#include "net/client.hpp"

namespace mercato::cli {

namespace fs = std::filesystem;

std::string Table::render() const {
  std::vector<size_t> w(header_.size(), 0);
  auto widen = [&](const std::vector<std::string>& r) {
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  };
  widen(header_);
  for (const auto& r : rows_) widen(r);
  std::string out;
  auto line = [&](const std::vector<std::string>& r) {
    std::string l;
    for (size_t i = 0; i < w.size(); ++i) {
      const std::string cell = i < r.size() ? r[i] : "";
      l += cell;
      if (i + 1 < w.size()) l += std::string(w[i] - cell.size() + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line(header_);
  for (const auto& r : rows_) line(r);
  return out;
}

std::string Context::home() const {
  if (!g_.home.empty()) return g_.home;
  if (const char* h = std::getenv("MERCATO_HOME"); h && *h) return h;
  const char* user = std::getenv("HOME");
  return (fs::path(user ? user : ".") / ".mercato").string();
}

std::string Context::nodeUrl() const {
  if (!g_.node.empty()) return g_.node;
  if (const char* n = std::getenv("MERCATO_NODE"); n && *n) return n;
  return "http://127.0.0.1:7400";
}

std::string Context::keyPath(const std::string& name) const {
  return (fs::path(home()) / "keys" / (name + ".key")).string();
}

Result<crypto::Identity> Context::loadKey() {
  const std::string path = keyPath(g_.key);
  if (!fs::exists(path))
    return invalidArgument("no key named '" + g_.key + "' in " + home() +
                           "/keys (create one with `mercato keys create`)");
  ASSIGN_OR_RETURN(bool encrypted, crypto::keystoreIsEncrypted(path));
  std::optional<std::string> pass;
  if (encrypted) {
    if (const char* p = std::getenv("MERCATO_PASSPHRASE"); p && *p) {
      pass = p;
    } else if (isatty(STDIN_FILENO)) {
      const char* p2 = getpass(("passphrase for key '" + g_.key + "': ").c_str());
      if (p2) pass = p2;
    } else {
      return invalidArgument("key '" + g_.key +
                             "' is encrypted: set MERCATO_PASSPHRASE or run on a terminal");
    }
  }
  return crypto::loadKeystore(path, pass);
}

Result<ledger::Ledger*> Context::ledger() {
  if (!ledger_) {
    ledger::LedgerConfig c;
    c.backend = "http";
    c.url = nodeUrl();
    ASSIGN_OR_RETURN(ledger_, ledger::createLedger(c));
  }
  return ledger_.get();
}

Result<ledger::TxReceipt> Context::submit(ledger::TxKind kind, ledger::TxBody body) {
  ASSIGN_OR_RETURN(crypto::Identity id, loadKey());
  return submitAs(id, kind, std::move(body));
}

Result<ledger::TxReceipt> Context::submitAs(const crypto::Identity& id, ledger::TxKind kind,
                                            ledger::TxBody body, std::optional<uint64_t> nonce) {
  ASSIGN_OR_RETURN(ledger::Ledger * l, ledger());
  ASSIGN_OR_RETURN(ledger::LedgerInfo info, l->info());
  if (!nonce) {
    ASSIGN_OR_RETURN(nonce, l->nextNonce(id.address()));
  }
  ledger::Tx tx{info.chainId, kind, id.address(), *nonce, std::move(body)};
  return l->submitAndWait(ledger::signTx(std::move(tx), id));
}

Result<ledger::TxReceipt> openEscrow(Context& ctx, const crypto::Identity& id,
                                     const ledger::ProviderRecord& provider, Micros deposit,
                                     std::optional<uint64_t> nonce) {
  ledger::EscrowOpenBody b{provider.owner, deposit, provider.prices};
  return ctx.submitAs(id, ledger::TxKind::kEscrowOpen, b, nonce);
}

Result<ledger::TxReceipt> depositEscrow(Context& ctx, const std::string& escrowId, Micros amount) {
  return ctx.submit(ledger::TxKind::kEscrowDeposit, ledger::EscrowDepositBody{escrowId, amount});
}

Result<ledger::TxReceipt> closeEscrow(Context& ctx, const std::string& escrowId) {
  return ctx.submit(ledger::TxKind::kEscrowClose, ledger::EscrowCloseBody{escrowId});
}

std::string money(Micros m) { return formatAmount(m) + " " + std::string(kTokenSymbol); }

void Context::print(const nlohmann::json& j, const std::string& human) {
  if (g_.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << human;
    if (!human.empty() && human.back() != '\n') std::cout << "\n";
  }
}

int exitCodeFor(const Status& s) {
  switch (s.code()) {
    case Code::kOk:
      return 0;
    case Code::kUnavailable:
    case Code::kDeadlineExceeded:
    case Code::kInternal:
    case Code::kUnimplemented:
      return 3;
    default:
      return 1;
  }
}

int Context::fail(const Status& s) {
  if (g_.json) {
    std::cerr << nlohmann::json{{"error",
                                 {{"code", std::string(codeName(s.code()))},
                                  {"message", s.message()}}}}
                     .dump()
              << "\n";
  } else {
    std::cerr << "error: " << s.message() << " (" << codeName(s.code()) << ")\n";
  }
  return exitCodeFor(s);
}

Result<Micros> amountArg(const std::string& flag, const std::string& text) {
  auto r = parseAmount(text);
  if (!r.isOk()) return r.status().withContext(flag);
  return r;
}

std::string shortTime(int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string priceLine(const ledger::Prices& p) {
  return formatAmount(p.cpuSecond) + "/cpu-s " + formatAmount(p.memGibSecond) + "/GiB-s " +
         formatAmount(p.egressGib) + "/GiB-egress " + formatAmount(p.requests1k) + "/1k-req " +
         formatAmount(p.storageGibHour) + "/GiB-h-disk";
}

std::vector<std::optional<int64_t>> gatewayRttsMs(
    const std::vector<ledger::ProviderRecord>& providers) {
  std::vector<std::future<std::optional<int64_t>>> probes;
  for (const auto& p : providers)
    probes.push_back(std::async(std::launch::async, [p]() -> std::optional<int64_t> {
      net::ClientOptions o = net::ClientOptions::withTimeout(std::chrono::milliseconds(2000));
      if (auto key = crypto::PublicKey::fromHex(p.nodeKey); key.isOk()) o.pinnedKey = *key;
      auto http = net::HttpClient::create(p.gatewayUrl, o);
      if (!http.isOk()) return std::nullopt;
      std::optional<int64_t> best;
      for (int i = 0; i < 3; ++i) {  // the first includes connecting (and the TLS handshake)
        auto t0 = std::chrono::steady_clock::now();
        auto r = (*http)->request("GET", "/healthz");
        if (!r.isOk() || r->status != 200) return best;
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
        if (i > 0 && (!best || us < *best)) best = us;
      }
      return best ? std::optional<int64_t>((*best + 999) / 1000) : std::nullopt;
    }));
  std::vector<std::optional<int64_t>> out;
  for (auto& f : probes) out.push_back(f.get());
  return out;
}

Result<size_t> askChoice(const std::string& table, const std::string& prompt, size_t n,
                         const std::string& noTerminal) {
  if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO)) return invalidArgument(noTerminal);
  std::cerr << table;
  for (;;) {
    std::cerr << prompt << " [1-" << n << "]: " << std::flush;
    std::string line;
    if (!std::getline(std::cin, line)) return invalidArgument("nothing chosen (end of input)");
    try {
      size_t k = std::stoul(line);
      if (k >= 1 && k <= n) return k - 1;
    } catch (const std::exception&) {
    }
    std::cerr << "'" << line << "' is not a number between 1 and " << n << "\n";
  }
}

}  // namespace mercato::cli
