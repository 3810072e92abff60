#include "ledger/ledger.hpp"

#include <future>

#include "ledger/embedded/embedded_ledger.hpp"
#include "ledger/remote/remote_ledger.hpp"

namespace mercato::ledger {

Result<TxReceipt> Ledger::submitAndWait(SignedTx tx) {
  std::promise<Result<TxReceipt>> p;
  auto f = p.get_future();
  submit(std::move(tx), [&p](Result<TxReceipt> r) { p.set_value(std::move(r)); });
  return f.get();
}

Result<uint64_t> Ledger::nextNonce(const std::string& address) {
  auto a = account(address);
  if (a.isOk()) return a->nonce + 1;
  if (a.status().code() == Code::kNotFound) return uint64_t{1};
  return a.status();
}

namespace {
using Factory = Result<std::unique_ptr<Ledger>> (*)(const LedgerConfig&);
struct Backend {
  const char* name;
  Factory create;
};
// The explicit, ordered backend table.
constexpr Backend kBackends[] = {
    {"embedded", &embedded::createEmbeddedLedger},
    {"http", &remote::createRemoteLedger},
};
}  // namespace

Result<std::unique_ptr<Ledger>> createLedger(const LedgerConfig& config) {
  std::string known;
  for (const auto& b : kBackends) {
    if (config.backend == b.name) return b.create(config);
    known += (known.empty() ? "" : ", ") + std::string(b.name);
  }
  return invalidArgument("ledger backend '" + config.backend + "': expected one of " + known);
}

}  // namespace mercato::ledger
