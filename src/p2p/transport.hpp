// UdpTransport: the node's one UDP socket, shared by every network it has joined.
//
// Each datagram is checked in this order, and a failure drops it and counts it under its
// reason (mercato_p2p_dropped_total{reason=...} on /metrics): size (oversized), the sender
// address's token bucket (rate_limited), framing (malformed), network id (unknown_network),
// decryption (decrypt_failed), signature (bad_signature), then the sender's replay window and
// timestamp (replayed). What passes is handed to the Handler with the network it came in on
// and the address it came from. Outgoing messages get this node's next sequence number and the
// current time, and are signed (and encrypted) per network.
//
// Threads: one I/O thread runs the socket, and everything else in the p2p service is posted to
// it (post()), so the service's state has one owner. addNetwork/removeNetwork/send/network and
// the Handler run on that thread only. post(), stop(), port() and the counters are safe from any
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "common/status.hpp"
#include "crypto/keys.hpp"
#include "p2p/wire.hpp"

namespace mercato::p2p {

struct TransportOptions {
  std::string listen = "127.0.0.1:0";  // ip:port; port 0 picks a free port
  size_t maxPacketBytes = kMaxPacketBytes;
  double ratePerSec = 200;  // per source address
  double burst = 400;
  int64_t maxSkewMs = 60'000;  // accepted distance of a message's timestamp from now
};

class UdpTransport {
 public:
  using Handler =
      std::function<void(const Network& net, Message&& msg, const std::string& fromEndpoint)>;

  // Binds the socket. `identity`, `clock` and `metrics` must outlive the transport; `metrics`
  // may be null (the counters are then private). Fails on a bad or busy address.
  static Result<std::unique_ptr<UdpTransport>> create(TransportOptions options,
                                                      const crypto::Identity& identity,
                                                      Clock& clock, MetricsRegistry* metrics);
  ~UdpTransport();

  // REQUIRES: before start().
  void setHandler(Handler handler);
  // Starts the I/O thread. Returns immediately.
  void start();
  // Stops the I/O thread and closes the socket; posted work that has not run is dropped.
  // Idempotent.
  void stop();
  // Runs `fn` on the I/O thread.
  void post(std::function<void()> fn);
  bool onIoThread() const;

  // I/O thread only. Joining twice replaces; leaving an unknown network is a no-op.
  void addNetwork(const Network& net);
  void removeNetwork(const NetworkId& id);
  const Network* network(const NetworkId& id) const;
  // Seals `m` for `net` (setting seq and time) and sends it to "ip:port". Fails on a bad
  // endpoint or an oversized message; a send error of the socket is only logged (UDP).
  Status send(const Network& net, const std::string& endpoint, Message m);
  // Sends raw bytes (tests and tools).
  Status sendRaw(const std::string& endpoint, std::string bytes);

  uint16_t port() const;
  std::string localEndpoint() const;  // "ip:port" actually bound
  uint64_t dropped(DropReason r) const;
  // Counts a drop decided above the transport (an old identity record, a bad summary).
  void countDrop(DropReason r);
  uint64_t accepted() const;  // messages handed to the Handler
  uint64_t sentPackets() const;
  uint64_t sentBytes() const;

 private:
  struct Impl;
  explicit UdpTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parses "ip:port" or "[ipv6]:port"; the error says what is expected.
Status validateEndpoint(const std::string& endpoint);

}  // namespace mercato::p2p
