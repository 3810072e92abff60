// RemoteLedger: the Ledger backend that talks to a ledger-host node's /ledger/v1 HTTP API
// (docs/protocols.md). Used by the CLI and by nodes that do not host the ledger.
//
// Thread-safety: thread-safe; it keeps a small pool of keep-alive HTTP connections.
#pragma once

#include <memory>

#include "ledger/ledger.hpp"

namespace mercato::ledger::remote {

Result<std::unique_ptr<Ledger>> createRemoteLedger(const LedgerConfig& config);

}  // namespace mercato::ledger::remote
