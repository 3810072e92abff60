// The client side of the gateway's interactive exec (docs/protocols.md, "Interactive exec"),
// used by `mercato deployments exec -i/-t`: local stdin goes to the remote process, its output
// comes back to stdout/stderr, and with a TTY the local terminal is put in raw mode (restored on
// every exit path) and window-size changes are forwarded.
//
// Thread-safety: one call at a time per process (it owns the terminal and SIGWINCH).
#pragma once

#include <string>
#include <vector>

#include "common/status.hpp"
#include "crypto/keys.hpp"

namespace mercato::cli {

struct InteractiveExec {
  std::string gatewayUrl;
  crypto::PublicKey nodeKey;  // the gateway's certificate must carry it
  std::string deployment;
  std::string service;
  std::vector<std::string> args;
  bool tty = false;
};

// Runs the session to its end and returns the remote exit code. Errors: the gateway's refusal
// (kPermissionDenied, kResourceExhausted, kFailedPrecondition: no running instance, ...), a
// connection lost before the exit code arrived (kUnavailable), an idle timeout
// (kDeadlineExceeded).
Result<int> runInteractiveExec(const InteractiveExec& request, const crypto::Identity& identity);

}  // namespace mercato::cli
