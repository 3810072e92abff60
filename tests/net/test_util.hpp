// Helpers for the net tests: a started server on 127.0.0.1:0, and a raw POSIX socket for
// sending bytes no well-behaved client would send.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "net/client.hpp"
#include "net/server.hpp"

namespace mercato::net::testing {

inline ClientOptions withTimeout(std::chrono::milliseconds timeout) {
  ClientOptions options;
  options.timeout = timeout;
  return options;
}

inline ClientOptions pinned(const crypto::PublicKey& key) {
  ClientOptions options;
  options.timeout = std::chrono::seconds(5);
  options.pinnedKey = key;
  return options;
}

inline ServerOptions listenOn(std::string address) {
  ServerOptions options;
  options.listen = std::move(address);
  return options;
}

inline std::unique_ptr<HttpServer> startServer(Router router, ServerOptions options = {}) {
  options.listen = "127.0.0.1:0";
  auto server = HttpServer::create(std::move(options), std::move(router));
  EXPECT_TRUE(server.isOk()) << server.status().toString();
  if (!server.isOk()) return nullptr;
  (*server)->start();
  return std::move(server).value();
}

// A blocking TCP connection with a receive timeout, for raw protocol tests.
class RawSocket {
 public:
  explicit RawSocket(uint16_t port,
                     std::chrono::milliseconds recvTimeout = std::chrono::milliseconds(3000)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{};
    tv.tv_sec = recvTimeout.count() / 1000;
    tv.tv_usec = (recvTimeout.count() % 1000) * 1000;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawSocket() { ::close(fd_); }
  bool connected() const { return connected_; }

  bool send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads until the peer closes, `until` appears, or the receive timeout. `closed` tells
  // whether the peer closed (read returned 0 or reset).
  std::string read(const std::string& until = "", bool* closed = nullptr) {
    std::string out;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        if (closed) *closed = true;
        return out;
      }
      if (n < 0) {  // timeout
        if (closed) *closed = false;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
      if (!until.empty() && out.find(until) != std::string::npos) {
        if (closed) *closed = false;
        return out;
      }
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// Runs work on background threads and joins them when destroyed.
class Workers {
 public:
  ~Workers() { join(); }
  template <class F>
  void run(F f) {
    threads_.emplace_back(std::move(f));
  }
  void join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  std::vector<std::thread> threads_;
};

}  // namespace mercato::net::testing
