// Facade, downstream side (see facade_core.hpp): accepting client connections, reading their
// requests, routing them, proxying them to an upstream instance (or waiting for one to start),
// relaying bodies in both directions and tunnelling upgraded connections. This is the hot path:
// per request it takes the deployment's lock twice (pick an upstream, release it) and allocates
// nothing for header inspection.
#include "provider/facade/facade_core.hpp"
#include "provider/facade/forwarding.hpp"
#include "provider/facade/routing.hpp"

namespace mercato::provider::facade_detail {

// ---------------------------------------------------------------------------------------------
// Downstream connections.

asio::awaitable<void> Core::acceptLoop() {
  asio::steady_timer backoff(acceptor_->get_executor());
  for (;;) {
    error_code ec;
    IoThread& io = *io_[nextIo_++ % io_.size()];
    tcp::socket socket = co_await acceptor_->async_accept(io.ioc, asio::redirect_error(kAwait, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open() || stopping_) co_return;
      spdlog::warn("facade: accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::redirect_error(kAwait, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(io.ioc, session(io, std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        spdlog::error("facade: connection failed: {}", x.what());
      }
    });
  }
}

asio::awaitable<void> Core::session(IoThread& io, tcp::socket socket) {
  error_code ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) co_return;
  const std::string remoteIp = peer.address().to_string();
  beast::tcp_stream client(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    if (buffer.size() == 0) {  // between requests: the idle timeout applies
      client.expires_after(std::chrono::milliseconds(options_.clientIdleTimeoutMs));
      const size_t n =
          co_await client.async_read_some(buffer.prepare(4096), asio::redirect_error(kAwait, ec));
      if (ec) break;
      buffer.commit(n);
    }
    RequestParser parser;
    parser.header_limit(static_cast<uint32_t>(options_.maxHeaderBytes));
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    client.expires_after(std::chrono::milliseconds(options_.headerTimeoutMs));
    const size_t headerBytes =
        co_await http::async_read_header(client, buffer, parser, asio::redirect_error(kAwait, ec));
    if (ec) {
      if (ec == http::error::header_limit) {
        co_await sendError(client, parser, 431, codeName(Code::kTooLarge),
                           "request header exceeds the limit of " +
                               std::to_string(options_.maxHeaderBytes) + " bytes");
      } else if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
                 ec != http::error::end_of_stream && ec != http::error::partial_message &&
                 ec != http::error::need_more) {
        co_await sendError(client, parser, 400, codeName(Code::kInvalidArgument),
                           "malformed HTTP request: " + ec.message());
      }
      break;
    }
    size_t fields = 0;
    for (auto it = parser.get().begin(); it != parser.get().end(); ++it) ++fields;
    if (fields > options_.maxHeaderCount) {
      co_await sendError(client, parser, 431, codeName(Code::kTooLarge),
                         "request has " + std::to_string(fields) + " header fields, the limit is " +
                             std::to_string(options_.maxHeaderCount));
      break;
    }
    const bool keep = co_await handle(io, client, buffer, parser, remoteIp, headerBytes);
    if (!keep) break;
  }
  client.socket().shutdown(tcp::socket::shutdown_both, ec);
  client.close();
}

asio::awaitable<bool> Core::sendError(beast::tcp_stream& client, const RequestParser& parser,
                                      int status, std::string_view code, std::string_view message,
                                      std::string_view location) {
  http::response<http::string_body> res{static_cast<http::status>(status), 11};
  res.set(http::field::content_type, "application/json");
  if (!location.empty()) res.set(http::field::location, std::string(location));
  res.body() = nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump();
  // An unread request body would desynchronize the connection: close it instead.
  const bool keep = parser.is_header_done() && parser.is_done() && parser.get().keep_alive();
  res.keep_alive(keep);
  res.prepare_payload();
  client.expires_after(std::chrono::milliseconds(options_.headerTimeoutMs));
  error_code ec;
  co_await http::async_write(client, res, asio::redirect_error(kAwait, ec));
  co_return keep && !ec;
}

asio::awaitable<bool> Core::handle(IoThread& io, beast::tcp_stream& client,
                                   beast::flat_buffer& buffer, RequestParser& parser,
                                   const std::string& remoteIp, size_t headerBytes) {
  auto& req = parser.get();
  const std::string_view target = sv(req.target());
  if (target.empty() || target.front() != '/') {
    co_return co_await sendError(client, parser, 400, codeName(Code::kInvalidArgument),
                                 "request target must be an absolute path");
  }
  const std::string hostKey = facade_routing::hostKey(sv(req[http::field::host]), options_.domain);
  std::shared_ptr<Deployment> dep = hostKey.empty() ? nullptr : findByHost(hostKey);
  std::string upstreamTarget(target);
  std::string prefix;
  if (!dep) {
    facade_routing::PathRoute route = facade_routing::parsePathRoute(target);
    if (!route.deployment.empty()) dep = findById(route.deployment);
    if (dep && route.redirect) {
      co_return co_await sendError(client, parser, 308, "redirect",
                                   "the deployment's root is " + *route.redirect, *route.redirect);
    }
    if (dep) {
      upstreamTarget = std::move(route.target);
      prefix = "/d/" + route.deployment;
    }
  }
  if (!dep) {
    co_return co_await sendError(client, parser, 404, codeName(Code::kNotFound),
                                 "no deployment is routed at host '" +
                                     std::string(sv(req[http::field::host])) + "' or path " +
                                     std::string(target.substr(0, 200)));
  }
  std::optional<std::string> unpaid;
  if (dep->unpaid.load(std::memory_order_acquire)) {
    std::lock_guard lock(dep->mu);
    unpaid = dep->paymentRequired;
  }
  if (unpaid) {
    co_return co_await sendError(client, parser, 402, codeName(Code::kPaymentRequired), *unpaid);
  }
  co_return co_await proxy(io, client, buffer, parser, remoteIp, headerBytes, std::move(dep),
                           std::move(upstreamTarget), std::move(prefix));
}

// Picks the least loaded ready upstream of `dep` into `lease` (and asks for one more instance
// when in-flight requests per instance pass targetConcurrency), or waits in the cold-start
// queue. Without an upstream it answers the client itself (404 removed; 503 queue full, start
// timeout or failure), sets `keepClient` to what that answer allows and returns false.
asio::awaitable<bool> Core::acquireUpstream(beast::tcp_stream& client, const RequestParser& parser,
                                            const std::shared_ptr<Deployment>& dep,
                                            SteadyClock::time_point started, Lease& lease,
                                            bool& keepClient) {
  error_code ec;
  std::shared_ptr<Waiter> waiter;
  for (;;) {
    enum { kPicked, kWait, kFull, kGone } outcome;
    {
      std::lock_guard lock(dep->mu);
      if (dep->removed) {
        outcome = kGone;
      } else if (!dep->ready.empty()) {
        UpstreamSlot* best = &dep->ready.front();
        for (UpstreamSlot& slot : dep->ready) {
          if (slot.inFlight < best->inFlight) best = &slot;
        }
        ++best->inFlight;
        ++dep->inFlight;
        dep->lastRequestMs = clock_.nowMillis();
        lease.core = this;
        lease.dep = dep;
        lease.key = best->key;
        lease.address = best->address;
        lease.started = started;
        outcome = kPicked;
        const int ready = static_cast<int>(dep->ready.size());
        if (dep->inFlight > dep->config.targetConcurrency * ready &&
            dep->desired < dep->config.maxReplicas && !dep->opRunning) {
          dep->desired = std::max(dep->desired, ready) + 1;
          startOpLocked(dep);
        }
      } else if (dep->queue.size() >= options_.queueLimit) {
        outcome = kFull;
      } else {
        waiter = std::make_shared<Waiter>(client.get_executor());
        dep->queue.push_back(waiter);
        if (dep->queueMetric) dep->queueMetric->set(static_cast<int64_t>(dep->queue.size()));
        std::weak_ptr<Core> weak = weak_from_this();
        waiter->clockTimer = clock_.callAfter(Millis(options_.coldStartTimeoutMs),
                                              [weak, dep, w = std::weak_ptr<Waiter>(waiter)] {
                                                auto core = weak.lock();
                                                auto waiter = w.lock();
                                                if (core && waiter)
                                                  core->onColdStartTimeout(dep, waiter);
                                              });
        if (dep->desired < std::max(dep->config.minReplicas, 1)) {
          dep->desired = std::max(dep->config.minReplicas, 1);
          if (dep->coldStartsMetric) dep->coldStartsMetric->inc();
        }
        dep->refreshWanted = true;
        startOpLocked(dep);
        outcome = kWait;
      }
    }
    if (outcome == kPicked) co_return true;
    if (outcome == kGone) {
      keepClient = co_await sendError(client, parser, 404, codeName(Code::kNotFound),
                                      "the deployment was removed");
      co_return false;
    }
    if (outcome == kFull) {
      keepClient = co_await sendError(client, parser, 503, codeName(Code::kUnavailable),
                                      "the app is starting and its queue is full (" +
                                          std::to_string(options_.queueLimit) +
                                          " waiting requests); retry shortly");
      co_return false;
    }
    Waiter::State state;
    std::string message;
    for (;;) {
      {
        std::lock_guard lock(dep->mu);
        state = waiter->state;
        message = waiter->message;
      }
      if (state != Waiter::State::kWaiting) break;
      waiter->timer.expires_at(asio::steady_timer::time_point::max());
      co_await waiter->timer.async_wait(asio::redirect_error(kAwait, ec));
    }
    clock_.cancel(waiter->clockTimer);
    waiter.reset();
    if (state == Waiter::State::kTimedOut) {
      keepClient = co_await sendError(
          client, parser, 503, codeName(Code::kUnavailable),
          "the app did not start within " + std::to_string(options_.coldStartTimeoutMs) + " ms");
      co_return false;
    }
    if (state == Waiter::State::kFailed) {
      keepClient = co_await sendError(client, parser, 503, codeName(Code::kUnavailable), message);
      co_return false;
    }
    if (state == Waiter::State::kRemoved) {
      keepClient = co_await sendError(client, parser, 404, codeName(Code::kNotFound), message);
      co_return false;
    }
  }
}

asio::awaitable<bool> Core::proxy(IoThread& io, beast::tcp_stream& client,
                                  beast::flat_buffer& buffer, RequestParser& parser,
                                  const std::string& remoteIp, size_t headerBytes,
                                  std::shared_ptr<Deployment> dep, std::string target,
                                  std::string prefix) {
  error_code ec;
  auto& req = parser.get();
  const auto started = SteadyClock::now();

  // 1. An upstream: the least loaded ready one, or wait in the cold-start queue.
  Lease lease;
  if (bool keep = false; !co_await acquireUpstream(client, parser, dep, started, lease, keep))
    co_return keep;
  dep->ingress += static_cast<int64_t>(headerBytes);

  // 2. The upstream request header.
  const ForwardedRequest fwd = prepareUpstreamRequest(req, remoteIp, target, prefix);
  const bool clientKeepAlive = fwd.keepAlive;
  const unsigned clientVersion = fwd.version;
  const bool upgrade = fwd.upgrade, expectContinue = fwd.expectContinue;
  const bool idempotent = fwd.idempotent, isHead = fwd.isHead;

  // 3. Send it (retrying once on a stale pooled connection), then read the response header.
  std::unique_ptr<beast::tcp_stream> conn;
  beast::flat_buffer upBuf;
  std::optional<ResponseParser> rp;
  bool bodyStarted = false;
  const auto upstreamTimeout = std::chrono::milliseconds(options_.upstreamTimeoutMs);
  for (int attempt = 0;; ++attempt) {
    bool pooled = false;
    if (auto it = io.pool.find(lease.key); it != io.pool.end() && !it->second.empty()) {
      conn = std::move(it->second.back());
      it->second.pop_back();
      pooled = true;
    } else {
      conn = std::make_unique<beast::tcp_stream>(io.ioc);
      const auto address = asio::ip::make_address(lease.address.ip, ec);
      if (!ec) {
        conn->expires_after(kConnectTimeout);
        co_await conn->async_connect(tcp::endpoint(address, lease.address.port),
                                     asio::redirect_error(kAwait, ec));
      }
      if (ec) {
        spdlog::warn("facade: {}: cannot connect to {}: {}", dep->config.deployment, lease.key,
                     ec.message());
        {
          std::lock_guard lock(dep->mu);
          dep->refreshWanted = true;  // the instance may be gone: look again
          startOpLocked(dep);
        }
        co_return co_await sendError(client, parser, 502, "bad_gateway",
                                     "cannot connect to the app's instance: " + ec.message());
      }
      conn->socket().set_option(tcp::no_delay(true), ec);
    }
    bool writeFailed = false;
    http::request_serializer<http::buffer_body> sr{req};
    conn->expires_after(upstreamTimeout);
    if (parser.is_done()) {  // no body: the whole request in one write
      req.body().data = nullptr;
      req.body().size = 0;
      req.body().more = false;
      co_await http::async_write(*conn, sr, asio::redirect_error(kAwait, ec));
      if (ec == http::error::need_buffer) ec = {};
    } else {
      co_await http::async_write_header(*conn, sr, asio::redirect_error(kAwait, ec));
    }
    if (ec) writeFailed = true;
    if (!ec) {
      if (!parser.is_done()) {
        bodyStarted = true;
        if (expectContinue && clientVersion >= 11) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          client.expires_after(upstreamTimeout);
          co_await asio::async_write(client, asio::buffer(kContinue),
                                     asio::redirect_error(kAwait, ec));
          if (ec) co_return false;
        }
        const size_t chunkSize = relayChunkSize(parser.content_length());
        std::unique_ptr<char[]> chunk(new char[chunkSize]);
        do {
          if (!parser.is_done()) {
            req.body().data = chunk.get();
            req.body().size = chunkSize;
            client.expires_after(upstreamTimeout);
            const size_t n =
                co_await http::async_read(client, buffer, parser, asio::redirect_error(kAwait, ec));
            if (ec == http::error::need_buffer) ec = {};
            if (ec) co_return false;  // the client went away or sent a broken body
            dep->ingress += static_cast<int64_t>(n);
            req.body().size = chunkSize - req.body().size;
            req.body().data = chunk.get();
            req.body().more = !parser.is_done();
          } else {
            req.body().data = nullptr;
            req.body().size = 0;
            req.body().more = false;
          }
          conn->expires_after(upstreamTimeout);
          co_await http::async_write(*conn, sr, asio::redirect_error(kAwait, ec));
          if (ec == http::error::need_buffer) ec = {};
          if (ec) break;
        } while (!parser.is_done() || !sr.is_done());
        if (ec) writeFailed = true;
      }
    }
    if (!ec) {
      rp.emplace();
      rp->body_limit(std::numeric_limits<uint64_t>::max());
      rp->header_limit(64 << 10);
      if (isHead) rp->skip(true);
      conn->expires_after(upstreamTimeout);
      co_await http::async_read_header(*conn, upBuf, *rp, asio::redirect_error(kAwait, ec));
      // Interim responses (100 Continue, 103 Early Hints) other than 101: skip them.
      while (!ec && rp->get().result_int() >= 100 && rp->get().result_int() < 200 &&
             rp->get().result() != http::status::switching_protocols) {
        rp.emplace();
        rp->body_limit(std::numeric_limits<uint64_t>::max());
        rp->header_limit(64 << 10);
        if (isHead) rp->skip(true);
        co_await http::async_read_header(*conn, upBuf, *rp, asio::redirect_error(kAwait, ec));
      }
    }
    if (!ec) break;
    const bool retry = attempt == 0 && pooled && !bodyStarted && isStaleConnectionError(ec) &&
                       (idempotent || writeFailed);
    conn.reset();
    upBuf.clear();
    if (retry) continue;
    if (bodyStarted && !parser.is_done()) co_return false;  // cannot answer mid-body
    if (ec == beast::error::timeout) {
      co_return co_await sendError(
          client, parser, 504, codeName(Code::kDeadlineExceeded),
          "the app did not answer within " + std::to_string(options_.upstreamTimeoutMs) + " ms");
    }
    co_return co_await sendError(client, parser, 502, "bad_gateway",
                                 "the app's instance failed: " + ec.message());
  }

  // 4. The response.
  dep->requests += 1;
  if (dep->requestsMetric) dep->requestsMetric->inc();
  auto& res = rp->get();
  if (upgrade && res.result() == http::status::switching_protocols) {
    http::response_serializer<http::buffer_body> rsr{res};
    client.expires_after(upstreamTimeout);
    const size_t n =
        co_await http::async_write_header(client, rsr, asio::redirect_error(kAwait, ec));
    if (ec) co_return false;
    dep->egress += static_cast<int64_t>(n);
    co_await tunnel(client, buffer, *conn, upBuf, *dep);
    co_return false;
  }
  const bool upstreamReusable = rp->keep_alive() && !rp->need_eof();
  bool keepClient = clientKeepAlive && parser.is_done();
  stripHopByHop(res, false);
  const bool bodyless = isHead || res.result_int() == 204 || res.result_int() == 304;
  if (clientVersion < 11) {
    // An HTTP/1.0 client can't read chunks: send the body raw and close to end it.
    if (res.chunked()) {
      res.chunked(false);
      keepClient = false;
    }
    res.version(10);
  } else if (rp->need_eof() && !bodyless) {
    res.chunked(true);  // the upstream ends its body by closing; the client gets chunks
  }
  if (clientVersion < 11 && !res.has_content_length()) keepClient = false;
  res.keep_alive(keepClient);

  http::response_serializer<http::buffer_body> rsr{res};
  size_t n = 0;
  // When the body (or its first part) is already buffered, the header goes out with it in one
  // write; otherwise the header goes now, so that a slow or streaming body doesn't hold it.
  if (isHead || (!rp->is_done() && upBuf.size() == 0)) {
    client.expires_after(upstreamTimeout);
    n = co_await http::async_write_header(client, rsr, asio::redirect_error(kAwait, ec));
    if (ec) co_return false;
    dep->egress += static_cast<int64_t>(n);
  }
  if (isHead) {
    if (upstreamReusable && upBuf.size() == 0) {
      auto& slot = io.pool[lease.key];
      if (slot.size() < kPoolPerUpstream) {
        conn->expires_never();
        slot.push_back(std::move(conn));
      }
    }
    co_return keepClient;
  }
  const size_t chunkSize = relayChunkSize(rp->content_length());
  std::unique_ptr<char[]> chunk(new char[chunkSize]);
  do {
    if (!rp->is_done()) {
      res.body().data = chunk.get();
      res.body().size = chunkSize;
      conn->expires_after(upstreamTimeout);
      co_await http::async_read(*conn, upBuf, *rp, asio::redirect_error(kAwait, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return false;  // a truncated body must not look complete: close the client
      res.body().size = chunkSize - res.body().size;
      res.body().data = chunk.get();
      res.body().more = !rp->is_done();
    } else {
      res.body().data = nullptr;
      res.body().size = 0;
      res.body().more = false;
    }
    client.expires_after(upstreamTimeout);
    n = co_await http::async_write(client, rsr, asio::redirect_error(kAwait, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return false;
    dep->egress += static_cast<int64_t>(n);
  } while (!rp->is_done() || !rsr.is_done());

  if (upstreamReusable && upBuf.size() == 0) {
    auto& slot = io.pool[lease.key];
    if (slot.size() < kPoolPerUpstream) {
      conn->expires_never();
      slot.push_back(std::move(conn));
    }
  }
  co_return keepClient;
}

// After a 101: bytes both ways until either side closes. No timeout: WebSockets idle.
asio::awaitable<void> Core::tunnel(beast::tcp_stream& client, beast::flat_buffer& clientBuf,
                                   beast::tcp_stream& upstream, beast::flat_buffer& upstreamBuf,
                                   Deployment& dep) {
  error_code ec;
  client.expires_never();
  upstream.expires_never();
  tcp::socket& a = client.socket();
  tcp::socket& b = upstream.socket();
  if (clientBuf.size() > 0) {
    const size_t n =
        co_await asio::async_write(b, clientBuf.data(), asio::redirect_error(kAwait, ec));
    dep.ingress += static_cast<int64_t>(n);
    clientBuf.consume(clientBuf.size());
  }
  if (!ec && upstreamBuf.size() > 0) {
    const size_t n =
        co_await asio::async_write(a, upstreamBuf.data(), asio::redirect_error(kAwait, ec));
    dep.egress += static_cast<int64_t>(n);
    upstreamBuf.consume(upstreamBuf.size());
  }
  if (ec) co_return;

  auto pump = [](tcp::socket& from, tcp::socket& to,
                 std::atomic<int64_t>& counter) -> asio::awaitable<void> {
    std::array<char, 16 << 10> buf;
    error_code ec;
    for (;;) {
      const size_t n =
          co_await from.async_read_some(asio::buffer(buf), asio::redirect_error(kAwait, ec));
      if (ec) break;
      co_await asio::async_write(to, asio::buffer(buf.data(), n), asio::redirect_error(kAwait, ec));
      if (ec) break;
      counter += static_cast<int64_t>(n);
    }
  };
  auto done = std::make_shared<asio::steady_timer>(client.get_executor(),
                                                   asio::steady_timer::time_point::max());
  auto finished = std::make_shared<bool>(false);
  asio::co_spawn(client.get_executor(), pump(b, a, dep.egress),
                 [done, finished](std::exception_ptr) {
                   *finished = true;
                   done->cancel();
                 });
  co_await pump(a, b, dep.ingress);
  a.shutdown(tcp::socket::shutdown_both, ec);
  b.shutdown(tcp::socket::shutdown_both, ec);
  a.cancel(ec);
  b.cancel(ec);
  while (!*finished) co_await done->async_wait(asio::redirect_error(kAwait, ec));
}

}  // namespace mercato::provider::facade_detail
