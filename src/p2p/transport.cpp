#include "p2p/transport.hpp"

#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <map>
#include <thread>

#include "p2p/guard.hpp"

namespace mercato::p2p {

namespace asio = boost::asio;
using udp = asio::ip::udp;

namespace {

Result<udp::endpoint> parseEndpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return invalidArgument("endpoint '" + text + "': expected ip:port");
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return invalidArgument("endpoint '" + text + "': '" + host + "' is not an IP address");
  const std::string portText = text.substr(colon + 1);
  int port = 0;
  for (char c : portText) {
    if (c < '0' || c > '9' || port > 65535)
      return invalidArgument("endpoint '" + text + "': bad port");
    port = port * 10 + (c - '0');
  }
  if (port > 65535) return invalidArgument("endpoint '" + text + "': port over 65535");
  return udp::endpoint(addr, static_cast<uint16_t>(port));
}

std::string endpointText(const udp::endpoint& ep) {
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped())
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  if (addr.is_v6()) return "[" + addr.to_string() + "]:" + std::to_string(ep.port());
  return addr.to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

Status validateEndpoint(const std::string& endpoint) { return parseEndpoint(endpoint).status(); }

struct UdpTransport::Impl {
  Impl(TransportOptions o, const crypto::Identity& id, Clock& c, MetricsRegistry* m)
      : options(std::move(o)),
        identity(id),
        clock(c),
        socket(io),
        work(asio::make_work_guard(io)),
        guard(4096, options.maxSkewMs),
        limiter(options.ratePerSec, options.burst) {
    MetricsRegistry* reg = m ? m : &ownMetrics;
    for (DropReason r : kAllDropReasons) {
      drops[static_cast<int>(r)] = reg->counter(
          "mercato_p2p_dropped_total{reason=\"" + std::string(dropReasonName(r)) + "\"}",
          "Incoming p2p datagrams dropped, by reason");
    }
    acceptedCounter = reg->counter("mercato_p2p_messages_accepted_total",
                                   "Incoming p2p messages that passed every check");
    sentCounter = reg->counter("mercato_p2p_packets_sent_total", "Outgoing p2p datagrams");
    sentBytesCounter = reg->counter("mercato_p2p_bytes_sent_total", "Outgoing p2p bytes");
    recvBytesCounter = reg->counter("mercato_p2p_bytes_received_total", "Incoming p2p bytes");
    // Start the sequence at the wall clock in microseconds, so a restarted node keeps counting
    // upwards and its peers' replay windows accept it.
    seq = static_cast<uint64_t>(clock.nowMillis()) * 1000;
  }

  void receive() {
    socket.async_receive_from(asio::buffer(buffer.data(), buffer.size()), from,
                              [this](const boost::system::error_code& ec, size_t n) {
                                if (ec == asio::error::operation_aborted || !socket.is_open())
                                  return;
                                if (!ec) handle(n);
                                receive();
                              });
  }

  void handle(size_t n) {
    recvBytesCounter->inc(n);
    const std::string source = endpointText(from);
    if (n > options.maxPacketBytes) return count(DropReason::kOversized, source, "");
    const int64_t nowMicros =
        std::chrono::duration_cast<std::chrono::microseconds>(clock.steadyNow().time_since_epoch())
            .count();
    if (!limiter.allow(source, nowMicros)) return count(DropReason::kRateLimited, source, "");
    OpenResult r = openPacket(std::string_view(buffer.data(), n), joined, options.maxPacketBytes);
    if (!r.opened) return count(r.reason, source, r.detail);
    Message& m = r.opened->message;
    if (!guard.accept(m.sender, m.seq, m.timeMs, clock.nowMillis()))
      return count(DropReason::kReplayed, source, std::string(msgTypeName(m.type)));
    acceptedCounter->inc();
    if (handler) handler(*r.opened->network, std::move(m), source);
  }

  void count(DropReason r, const std::string& source, const std::string& detail) {
    drops[static_cast<int>(r)]->inc();
    spdlog::debug("p2p: dropped a datagram from {}: {} {}", source, dropReasonName(r), detail);
  }

  TransportOptions options;
  const crypto::Identity& identity;
  Clock& clock;
  MetricsRegistry ownMetrics;
  asio::io_context io;
  udp::socket socket;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;
  std::atomic<std::thread::id> ioThreadId{};
  std::atomic<bool> stopped{false};
  std::vector<char> buffer;
  udp::endpoint from;
  std::map<NetworkId, Network> networks;
  JoinedNetworks joined;  // pointers into `networks`, for the decoder

  void rebuildJoined() {
    joined.clear();
    for (const auto& [id, net] : networks) joined.push_back(&net);
  }
  ReplayGuard guard;
  RateLimiter limiter;
  Handler handler;
  uint64_t seq = 0;
  uint16_t boundPort = 0;
  std::string bound;
  Counter* drops[static_cast<int>(DropReason::kReplayed) + 1] = {};
  Counter* acceptedCounter = nullptr;
  Counter* sentCounter = nullptr;
  Counter* sentBytesCounter = nullptr;
  Counter* recvBytesCounter = nullptr;
};

UdpTransport::UdpTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

UdpTransport::~UdpTransport() { stop(); }

Result<std::unique_ptr<UdpTransport>> UdpTransport::create(TransportOptions options,
                                                           const crypto::Identity& identity,
                                                           Clock& clock, MetricsRegistry* metrics) {
  if (options.maxPacketBytes < 256 || options.maxPacketBytes > 65'000)
    return invalidArgument("p2p: maxPacketBytes: expected 256 to 65000");
  if (options.ratePerSec <= 0 || options.burst < 1)
    return invalidArgument("p2p: rate limit: expected a positive rate and a burst >= 1");
  ASSIGN_OR_RETURN(udp::endpoint ep, parseEndpoint(options.listen));
  auto impl = std::make_unique<Impl>(std::move(options), identity, clock, metrics);
  impl->buffer.resize(impl->options.maxPacketBytes + 1);
  boost::system::error_code ec;
  impl->socket.open(ep.protocol(), ec);
  if (!ec) impl->socket.bind(ep, ec);
  if (ec) return unavailable("p2p: cannot bind UDP " + impl->options.listen + ": " + ec.message());
  // Room for bursts of gossip while the I/O thread is busy verifying signatures.
  impl->socket.set_option(udp::socket::receive_buffer_size(1 << 20), ec);
  auto local = impl->socket.local_endpoint(ec);
  impl->boundPort = local.port();
  impl->bound = endpointText(local);
  return std::unique_ptr<UdpTransport>(new UdpTransport(std::move(impl)));
}

void UdpTransport::setHandler(Handler handler) { impl_->handler = std::move(handler); }

void UdpTransport::start() {
  if (impl_->thread.joinable()) return;
  impl_->receive();
  impl_->thread = std::thread([this] {
    impl_->ioThreadId = std::this_thread::get_id();
    for (;;) {  // a handler that throws is logged; it must not std::terminate the node
      try {
        impl_->io.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("p2p: I/O thread caught: {}", e.what());
      }
    }
  });
}

void UdpTransport::stop() {
  if (impl_->stopped.exchange(true)) return;
  asio::post(impl_->io, [this] {
    boost::system::error_code ec;
    impl_->socket.close(ec);
  });
  impl_->work.reset();
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  boost::system::error_code ec;
  impl_->socket.close(ec);
}

void UdpTransport::post(std::function<void()> fn) {
  if (impl_->stopped) return;
  asio::post(impl_->io, std::move(fn));
}

bool UdpTransport::onIoThread() const {
  return impl_->ioThreadId.load() == std::this_thread::get_id();
}

void UdpTransport::addNetwork(const Network& net) {
  impl_->networks.insert_or_assign(net.id(), net);
  impl_->rebuildJoined();
}

void UdpTransport::removeNetwork(const NetworkId& id) {
  impl_->networks.erase(id);
  impl_->rebuildJoined();
}

const Network* UdpTransport::network(const NetworkId& id) const {
  auto it = impl_->networks.find(id);
  return it == impl_->networks.end() ? nullptr : &it->second;
}

Status UdpTransport::send(const Network& net, const std::string& endpoint, Message m) {
  m.seq = ++impl_->seq;
  m.timeMs = impl_->clock.nowMillis();
  ASSIGN_OR_RETURN(std::string packet, sealPacket(net, impl_->identity, std::move(m)));
  return sendRaw(endpoint, std::move(packet));
}

Status UdpTransport::sendRaw(const std::string& endpoint, std::string bytes) {
  ASSIGN_OR_RETURN(udp::endpoint ep, parseEndpoint(endpoint));
  boost::system::error_code ec;
  if (impl_->socket.local_endpoint(ec).protocol() != ep.protocol()) {
    if (ep.address().is_v4() && impl_->socket.local_endpoint(ec).address().is_v6())
      ep = udp::endpoint(asio::ip::make_address_v6(asio::ip::v4_mapped, ep.address().to_v4()),
                         ep.port());
    else
      return invalidArgument("endpoint " + endpoint + ": address family differs from the socket");
  }
  // Datagrams are small and the socket buffer is large: a synchronous send does not block in
  // practice, and a full buffer just loses the datagram, as UDP may.
  impl_->socket.send_to(asio::buffer(bytes), ep, 0, ec);
  if (ec) {
    spdlog::debug("p2p: send to {} failed: {}", endpoint, ec.message());
    return Status::ok();
  }
  impl_->sentCounter->inc();
  impl_->sentBytesCounter->inc(bytes.size());
  return Status::ok();
}

uint16_t UdpTransport::port() const { return impl_->boundPort; }
std::string UdpTransport::localEndpoint() const { return impl_->bound; }
uint64_t UdpTransport::dropped(DropReason r) const {
  return r == DropReason::kNone ? 0 : impl_->drops[static_cast<int>(r)]->value();
}
void UdpTransport::countDrop(DropReason r) {
  if (r != DropReason::kNone) impl_->drops[static_cast<int>(r)]->inc();
}
uint64_t UdpTransport::accepted() const { return impl_->acceptedCounter->value(); }
uint64_t UdpTransport::sentPackets() const { return impl_->sentCounter->value(); }
uint64_t UdpTransport::sentBytes() const { return impl_->sentBytesCounter->value(); }

}  // namespace mercato::p2p
