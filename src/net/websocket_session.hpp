// Private to mercato_net (included by server.cpp only): the server side of one WebSocket
// connection after a route's WebSocketHandler accepted the upgrade.
//
// Structure: the connection's session coroutine becomes the reader (it delivers each message to
// WebSocketCallbacks::onMessage), and a writer coroutine on the same strand drains the outgoing
// queue that WebSocketConnection::send() fills from any thread. Both share a WsChannel (a
// mutex-protected queue); a sender wakes the writer by posting a cancel of its timer, as the
// HTTP Exchange does. The reader waits for the writer before the stream goes away.
//
// Thread-safety: WsChannel and WsConnection are safe from any thread; serveWebSocket runs on
// the connection's strand.
#pragma once

#include <utility>

#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "net/beast_aliases.hpp"
#include "net/server.hpp"

namespace mercato::net::detail {

namespace websocket = beast::websocket;

struct WsChannel {
  explicit WsChannel(const asio::any_io_executor& ex) : timer(ex) {}
  static std::shared_ptr<WsChannel> make(const asio::any_io_executor& ex) {
    auto ch = std::make_shared<WsChannel>(ex);
    ch->self = ch;
    return ch;
  }

  struct Out {
    std::string data;
    bool binary;
  };
  asio::steady_timer timer;  // the writer sleeps on it; touched on the strand only
  std::mutex mu;             // guards the fields below
  std::deque<Out> out;
  bool closeRequested = false;
  int closeCode = 1000;
  std::string closeReason;
  bool ended = false;  // the connection is over: nothing more goes out

  // Under mu: wakes the writer (from any thread).
  void wakeLocked() {
    asio::post(timer.get_executor(), [this, keep = self.lock()] { timer.cancel(); });
  }
  std::weak_ptr<WsChannel> self;

  void end() {
    std::lock_guard lock(mu);
    ended = true;
    wakeLocked();
  }
};

class WsConnection final : public WebSocketConnection {
 public:
  explicit WsConnection(std::shared_ptr<WsChannel> ch) : ch_(std::move(ch)) {}
  bool send(std::string data, bool binary) override {
    std::lock_guard lock(ch_->mu);
    if (ch_->ended || ch_->closeRequested) return false;
    ch_->out.push_back({std::move(data), binary});
    ch_->wakeLocked();
    return true;
  }
  void close(int code, std::string reason) override {
    std::lock_guard lock(ch_->mu);
    if (ch_->ended || ch_->closeRequested) return;
    ch_->closeRequested = true;
    ch_->closeCode = code;
    ch_->closeReason = std::move(reason);
    ch_->wakeLocked();
  }
  bool closed() const override {
    std::lock_guard lock(ch_->mu);
    return ch_->ended || ch_->closeRequested;
  }

 private:
  std::shared_ptr<WsChannel> ch_;
};

// Writes queued messages until the channel ends or a close was requested (then sends the close
// frame). Returns when nothing more will be written.
template <class Ws>
asio::awaitable<void> webSocketWriter(Ws& ws, std::shared_ptr<WsChannel> ch) {
  boost::system::error_code ec;
  for (;;) {
    std::deque<WsChannel::Out> batch;
    bool closing = false;
    int code = 1000;
    std::string reason;
    {
      std::lock_guard lock(ch->mu);
      if (ch->ended) co_return;
      batch.swap(ch->out);
      closing = ch->closeRequested;
      code = ch->closeCode;
      reason = ch->closeReason;
      if (batch.empty() && !closing) ch->timer.expires_at(asio::steady_timer::time_point::max());
    }
    if (batch.empty() && !closing) {
      co_await ch->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    for (auto& m : batch) {
      ws.binary(m.binary);
      co_await ws.async_write(asio::buffer(m.data), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        ch->end();
        co_return;
      }
    }
    if (closing) {
      websocket::close_reason cr(static_cast<websocket::close_code>(code));
      cr.reason = reason.substr(0, 120);  // a control frame carries at most 125 bytes
      co_await ws.async_close(cr, asio::redirect_error(asio::use_awaitable, ec));
      ch->end();
      co_return;
    }
  }
}

// Runs one accepted WebSocket on `stream` until it ends. `upgrade` is the client's request
// header (for the handshake). `channel` must have been created on the connection's strand.
template <class Stream>
asio::awaitable<void> serveWebSocket(Stream& stream, http::request<http::empty_body> upgrade,
                                     std::shared_ptr<WsChannel> channel,
                                     WebSocketCallbacks callbacks,
                                     std::chrono::milliseconds handshakeTimeout,
                                     size_t maxMessageBytes) {
  boost::system::error_code ec;
  beast::get_lowest_layer(stream).expires_never();  // the websocket stream keeps its own time
  websocket::stream<Stream&> ws(stream);
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = handshakeTimeout;
  timeouts.idle_timeout = websocket::stream_base::none();  // the application decides idleness
  timeouts.keep_alive_pings = false;
  ws.set_option(timeouts);
  ws.read_message_max(maxMessageBytes);
  co_await ws.async_accept(upgrade, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    channel->end();
    if (callbacks.onClose) callbacks.onClose();
    co_return;
  }

  // The writer runs beside the reader; `writerDone` wakes the reader once it has finished.
  auto writerDone = std::make_shared<asio::steady_timer>(channel->timer.get_executor(),
                                                         asio::steady_timer::time_point::max());
  auto finished = std::make_shared<bool>(false);
  asio::co_spawn(channel->timer.get_executor(), webSocketWriter(ws, channel),
                 [writerDone, finished](std::exception_ptr) {
                   *finished = true;
                   writerDone->cancel();
                 });

  beast::flat_buffer buffer;
  for (;;) {
    co_await ws.async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    if (callbacks.onMessage) {
      try {
        callbacks.onMessage(beast::buffers_to_string(buffer.data()), ws.got_binary());
      } catch (const std::exception& e) {
        spdlog::error("http: websocket message handler threw: {}", e.what());
      }
    }
    buffer.consume(buffer.size());
  }
  channel->end();
  if (!*finished) {
    // A writer blocked in a write to a peer that stopped reading: cut the transport.
    beast::get_lowest_layer(stream).socket().cancel(ec);
  }
  while (!*finished) {
    co_await writerDone->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (callbacks.onClose) callbacks.onClose();
}

}  // namespace mercato::net::detail
