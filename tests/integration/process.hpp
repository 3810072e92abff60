// Test support: run a real mercatod as a child process and find its URL (DATA_DIR/node.json).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace mercato::testing {

class DaemonProcess {
 public:
  DaemonProcess(std::string binary, std::string dataDir, std::vector<std::string> extraArgs);
  ~DaemonProcess();  // SIGKILLs a still-running child
  // Starts the child and waits (up to 15 s) until /healthz answers. Returns false on failure.
  bool start();
  void kill9();
  // SIGTERM and wait; returns the exit status (or -1).
  int terminate();
  const std::string& url() const { return url_; }
  pid_t pid() const { return pid_; }

 private:
  std::string binary_, dataDir_;
  std::vector<std::string> args_;
  pid_t pid_ = -1;
  std::string url_;
};

}  // namespace mercato::testing
