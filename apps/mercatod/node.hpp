// Node: one running mercatod — its identity, its HTTP server and the roles its config enables.
//
// start() loads or creates the node identity (DATA_DIR/node.key, mode 0600), opens the ledger
// when the node hosts it, binds the HTTP server, and writes DATA_DIR/node.json
// ({"url","nodeKey","address","pid"}) so scripts and tests can find a node started on port 0.
// stop() shuts down in reverse order: no new requests, then the ledger drains its queue.
//
// Thread-safety: start()/stop() from the owning thread only.
#pragma once

#include <memory>

#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "crypto/keys.hpp"
#include "ledger/ledger.hpp"
#include "mercatod/node_config.hpp"
#include "net/server.hpp"
#include "p2p/service.hpp"
#include "provider/provider.hpp"
#include "runtime/runtime.hpp"
#include "runtime/service.hpp"

namespace mercato::node {

class Node {
 public:
  Node(NodeConfig config, Clock& clock);
  ~Node();
  Status start();
  void stop();
  std::string url() const;
  const crypto::Identity& identity() const { return *identity_; }

 private:
  NodeConfig config_;
  Clock& clock_;
  MetricsRegistry metrics_;
  std::unique_ptr<crypto::Identity> identity_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<runtime::Runtime> runtime_;
  std::unique_ptr<runtime::RuntimeService> runtimeService_;
  std::unique_ptr<ledger::Ledger> remoteLedger_;  // when another node hosts the ledger
  std::unique_ptr<provider::Provider> provider_;
  std::unique_ptr<p2p::P2pService> p2p_;
  std::unique_ptr<net::HttpServer> server_;
};

}  // namespace mercato::node
