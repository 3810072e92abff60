// ExecSessions: the gateway's interactive exec (docs/protocols.md, "Interactive exec"). Each
// WebSocket the gateway accepted on /gateway/v1/deployments/{id}/exec/ws (after authorizing the
// owner or an "exec" macaroon) is bridged to one runtime::ExecSession: the client's first
// message says what to run; binary frames carry stdin (client -> provider) and stdout/stderr
// (provider -> client) with a one-byte channel prefix; text frames carry control messages
// (resize, eof, terminate; started, exit, error). A malformed or unknown client message ends
// the session: an error frame, then the close.
//
// Limits: at most `maxSessions` at once and `maxSessionsPerPublisher` of one deployment owner
// (the upgrade is refused with 429 above either), and a
// session with no traffic either way for `idleTimeoutMs` (on the injected Clock) is told so,
// its process is killed and the WebSocket closed.
//
// Threads: WebSocket callbacks arrive on the gateway's I/O threads and must not block, so the
// start of a process and the teardown of a session (which joins its thread) run on a small
// worker pool owned here. Output and exit arrive on each session's own thread.
// Thread-safety: every method may be called from any thread. The destructor closes every
// session and waits for their teardown.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/clock.hpp"
#include "common/status.hpp"
#include "net/server.hpp"
#include "provider/exec_messages.hpp"
#include "runtime/runtime.hpp"

namespace mercato {
class WorkerPool;
}

namespace mercato::provider {

struct ExecLimits {
  size_t maxSessions = 16;
  size_t maxSessionsPerPublisher = 4;  // of maxSessions, for the sessions of one publisher
  int64_t idleTimeoutMs = 15 * 60 * 1000;
  size_t maxArgs = 256;
};

class ExecSessions {
 public:
  ExecSessions(runtime::Runtime& runtime, Clock& clock, ExecLimits limits);
  ~ExecSessions();

  // For an authorized upgrade on deployment `id`: reserves a slot (kResourceExhausted when
  // full, kUnimplemented when the backend has no interactive exec) and returns the callbacks
  // that run the protocol on `connection`.
  // `publisher` is the deployment owner's address (the per-publisher cap counts by it).
  Result<net::WebSocketCallbacks> open(const std::string& deployment, const std::string& publisher,
                                       std::shared_ptr<net::WebSocketConnection> connection);
  size_t active() const;
  // Terminates every session and waits until all are torn down.
  void closeAll();

  struct Bridge;

 private:
  void finished(Bridge* bridge);  // a bridge is fully torn down

  runtime::Runtime& runtime_;
  Clock& clock_;
  ExecLimits limits_;
  std::unique_ptr<WorkerPool> pool_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::shared_ptr<Bridge>> bridges_;
};

}  // namespace mercato::provider
