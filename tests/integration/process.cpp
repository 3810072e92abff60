#include "process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "net/client.hpp"

namespace mercato::testing {

DaemonProcess::DaemonProcess(std::string binary, std::string dataDir,
                             std::vector<std::string> extraArgs)
    : binary_(std::move(binary)), dataDir_(std::move(dataDir)), args_(std::move(extraArgs)) {}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) kill9();
}

bool DaemonProcess::start() {
  std::filesystem::remove(std::filesystem::path(dataDir_) / "node.json");
  std::vector<std::string> argv{binary_,       "--data-dir",  dataDir_, "--listen",
                                "127.0.0.1:0", "--log-level", "warn"};
  argv.insert(argv.end(), args_.begin(), args_.end());
  pid_ = fork();
  if (pid_ == 0) {
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execv(binary_.c_str(), cargv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::ifstream in(std::filesystem::path(dataDir_) / "node.json");
    if (in) {
      auto j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_object() && j.contains("url")) {
        url_ = j["url"].get<std::string>();
        auto c = net::HttpClient::create(url_);
        if (c.isOk()) {
          auto r = (*c)->request("GET", "/healthz");
          if (r.isOk() && r->status == 200) return true;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

void DaemonProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

int DaemonProcess::terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace mercato::testing
