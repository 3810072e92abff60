// The /ledger/v1 HTTP API over any Ledger: what a ledger-host node serves.
//
//   GET  /ledger/v1/info                      chain id, head, supply, state root
//   POST /ledger/v1/txs                       submit one signed transaction -> receipt
//   POST /ledger/v1/txs/batch                 {"txs":[...]} -> {"results":[{receipt}|{error}]}
//   GET  /ledger/v1/txs?after=&limit=&address=   the hash-chained log
//   GET  /ledger/v1/txs/{hash}
//   GET  /ledger/v1/accounts/{address}
//   GET  /ledger/v1/providers[?all=1]         the registry (active only unless all=1)
//   GET  /ledger/v1/providers/{address}
//   GET  /ledger/v1/escrows?publisher=&provider=&state=
//   GET  /ledger/v1/escrows/{id}
//   GET  /ledger/v1/events?after=N&limit=&wait=MS   long poll; &stream=1 for NDJSON streaming
//
// docs/protocols.md documents the bodies. Submissions are answered only once durable.
//
// Thread-safety: handlers run on the server's I/O threads and the ledger's committer thread;
// the Ledger is thread-safe and must outlive the server.
#pragma once

#include "ledger/ledger.hpp"
#include "net/server.hpp"

namespace mercato::ledger {

struct ServiceOptions {
  int64_t maxWaitMs = 60'000;  // cap on a long poll
  size_t maxPage = 1000;       // cap on list sizes
  size_t maxBatch = 1000;      // cap on transactions per batch submission
  int64_t streamHeartbeatMs = 15'000;
};

void registerLedgerRoutes(net::Router& router, Ledger& ledger, ServiceOptions options = {});

}  // namespace mercato::ledger
