// The auction half of `mercato deploy --auction`: put an order on the ledger for the manifest,
// collect bids for the wait period, pick one (cheapest, score, or the user from a table) and
// accept it. The accepted bid's lease escrow then funds the usual sealed-bundle deployment.
#pragma once

#include <map>
#include <string>

#include "common/status.hpp"
#include "crypto/keys.hpp"
#include "ledger/ledger.hpp"
#include "manifest/manifest.hpp"
#include "mercato/cli.hpp"

namespace mercato::cli {

struct AuctionOptions {
  std::string select = "cheapest";  // cheapest | score | manual
  int64_t waitMs = 10'000;
  Micros deposit = 0;  // the order's deposit, which becomes the lease's escrow
  ledger::PriceCaps maxPrice;
  std::map<std::string, std::string> attributes;
  bool tty = false;  // progress and the manual table on stderr
};

struct AuctionWin {
  std::string order;
  ledger::Bid bid;
  ledger::ProviderRecord provider;
  std::string escrowId;  // == the lease id
  Micros deposit = 0;
};

// Runs the auction. On any failure after the order exists, the order is closed (its deposit
// refunded) and the error says so.
Result<AuctionWin> runAuction(Context& ctx, ledger::Ledger& l, const crypto::Identity& id,
                              const manifest::Manifest& m, const AuctionOptions& opts);

}  // namespace mercato::cli
