// Shared plumbing of the `mercato` CLI: global flags, key loading, the ledger client, signing
// and output (aligned tables for people, --json for scripts).
//
// Exit codes (docs/operations.md): 0 success; 1 the node rejected the request (4xx) or the
// object does not exist; 2 bad usage or local input; 3 the node is unreachable or failed (5xx).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "crypto/keys.hpp"
#include "ledger/ledger.hpp"

namespace mercato::cli {

struct Globals {
  bool json = false;
  std::string node;  // --node, else $MERCATO_NODE, else http://127.0.0.1:7400
  std::string home;  // --home, else $MERCATO_HOME, else ~/.mercato
  std::string key = "default";
};

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  std::string render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

class Context {
 public:
  explicit Context(Globals& g) : g_(g) {}
  Globals& globals() { return g_; }
  std::string home() const;
  std::string nodeUrl() const;
  std::string keyPath(const std::string& name) const;
  Result<crypto::Identity> loadKey();
  Result<ledger::Ledger*> ledger();
  // Builds, signs and submits a transaction from the current key; waits for the receipt.
  Result<ledger::TxReceipt> submit(ledger::TxKind kind, ledger::TxBody body);
  // The same from an already loaded key; `nonce` unset = the account's next nonce.
  Result<ledger::TxReceipt> submitAs(const crypto::Identity& id, ledger::TxKind kind,
                                     ledger::TxBody body, std::optional<uint64_t> nonce = {});

  // Prints `j` as JSON when --json, else the human rendering.
  void print(const nlohmann::json& j, const std::string& human);
  // Prints the error to stderr and returns the exit code for it.
  int fail(const Status& s);

 private:
  Globals& g_;
  std::unique_ptr<ledger::Ledger> ledger_;
};

int exitCodeFor(const Status& s);
// Parses an amount flag ("12.5"), failing with the flag's name in the message.
Result<Micros> amountArg(const std::string& flag, const std::string& text);
std::string shortTime(int64_t ms);
// "12.5 MER"
std::string money(Micros m);
// "0.0001/cpu-s 0.00002/GiB-s 0.05/GiB-egress 0.001/1k-req"
std::string priceLine(const ledger::Prices& p);

// Best of three GET <gateway>/healthz round trips to each provider, probed in parallel and
// pinned to its node key (the first request, which connects, is not counted); rounded up to
// whole ms; unset = unreachable. Used by `deploy --select latency|manual` and auction scoring.
std::vector<std::optional<int64_t>> gatewayRttsMs(
    const std::vector<ledger::ProviderRecord>& providers);
// Shows `table` on the terminal and asks for a number in [1, n] until one is given; returns it
// 0-based. Fails with `noTerminal` without a terminal, and at end of input.
Result<size_t> askChoice(const std::string& table, const std::string& prompt, size_t n,
                         const std::string& noTerminal);

// Escrow transactions, shared by `escrow open|deposit|close` and `deploy`/`deployments`.
// openEscrow pins the provider's current prices as the expected terms, so a price change in
// between fails the open instead of charging more. With `nonce` set the escrow id is known
// before the open lands (ledger::escrowIdFor(publisher, nonce)).
Result<ledger::TxReceipt> openEscrow(Context& ctx, const crypto::Identity& id,
                                     const ledger::ProviderRecord& provider, Micros deposit,
                                     std::optional<uint64_t> nonce = {});
Result<ledger::TxReceipt> depositEscrow(Context& ctx, const std::string& escrowId, Micros amount);
Result<ledger::TxReceipt> closeEscrow(Context& ctx, const std::string& escrowId);

// Command groups; each adds its subcommands and sets callbacks that store the exit code.
void addKeysCommands(CLI::App& app, Context& ctx, int& exitCode);
void addLedgerCommands(CLI::App& app, Context& ctx, int& exitCode);
void addRegistryCommands(CLI::App& app, Context& ctx, int& exitCode);
void addDeployCommands(CLI::App& app, Context& ctx, int& exitCode);
void addDeploymentsCommands(CLI::App& app, Context& ctx, int& exitCode);
void addMarketCommands(CLI::App& app, Context& ctx, int& exitCode);  // orders, bids, provider
void addP2pCommands(CLI::App& app, Context& ctx, int& exitCode);

}  // namespace mercato::cli
