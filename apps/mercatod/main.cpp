// mercatod: the mercato node daemon. Runs the roles its configuration enables; `--dev` runs
// every role on this machine with an embedded dev ledger whose mint works as a faucet.
//
// Exit codes: 0 clean shutdown (SIGTERM/SIGINT), 1 start-up failure, 2 bad flags or config.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <unistd.h>
#include <csignal>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "crypto/keys.hpp"
#include "mercatod/node.hpp"

int main(int argc, char** argv) {
  CLI::App app{"mercatod: the mercato node daemon"};
  std::string configPath, dataDir, listen, logFormat = "text", logLevel = "info";
  bool dev = false, tls = false, runtimeRole = false, noProvider = false;
  std::string providerConfig, ledgerUrl;
  app.add_option("--config", configPath, "YAML config file (see docs/operations.md)");
  app.add_option("--data-dir", dataDir, "Data directory (default ./.mercato)");
  app.add_option("--listen", listen, "HOST:PORT to serve HTTP on (port 0 picks a free one)");
  app.add_flag("--dev", dev, "Run every role with an embedded dev ledger and faucet");
  app.add_flag("--runtime", runtimeRole,
               "Run workloads on this machine (runc backend; needs root) and serve /runtime/v1");
  app.add_option("--provider", providerConfig,
                 "Provider role with this provider.yaml (implies --runtime; docs/operations.md)");
  app.add_flag("--no-provider", noProvider,
               "With --dev: host only the ledger (no provider role even as root)");
  app.add_option("--ledger", ledgerUrl, "URL of the ledger host (when this node hosts none)");
  app.add_flag("--tls", tls, "Serve HTTPS with a certificate bound to the node key");
  app.add_option("--log-format", logFormat, "text or json")->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", logLevel, "trace, debug, info, warn, error");
  mercato::node::P2pFlags p2pFlags;
  mercato::node::addP2pFlags(app, p2pFlags);
  CLI11_PARSE(app, argc, argv);

  auto fmt = mercato::parseLogFormat(logFormat);
  if (mercato::Status s = mercato::initLogging(*fmt, logLevel); !s.isOk()) {
    std::fprintf(stderr, "mercatod: %s\n", s.message().c_str());
    return 2;
  }
  mercato::crypto::initCrypto();

  mercato::node::NodeConfig config;
  if (!configPath.empty()) {
    auto c = mercato::node::loadNodeConfig(configPath);
    if (!c.isOk()) {
      spdlog::error("mercatod: {}", c.status().message());
      return 2;
    }
    config = *c;
  }
  if (dev) {
    config.dev = true;
    config.ledgerHost = true;
  }
  if (!dataDir.empty()) config.dataDir = dataDir;
  if (!listen.empty()) config.listen = listen;
  if (tls) config.tls = true;
  if (runtimeRole) config.runtime = true;
  if (!providerConfig.empty()) {
    config.provider = true;
    config.providerConfigPath = providerConfig;
  }
  if (!ledgerUrl.empty()) {
    config.ledgerUrl = ledgerUrl;
    config.ledgerHost = false;  // another node hosts it
  }
  if (dev && !noProvider && ::geteuid() == 0 && !config.provider) {
    // Every role on one machine: the provider runs with the dev defaults.
    config.provider = true;
  }
  if (config.provider) config.runtime = true;
  mercato::node::applyP2pFlags(p2pFlags, dev, config.p2p);

  // Block the signals before any thread starts, then wait for them on this thread.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  mercato::node::Node node(config, mercato::systemClock());
  if (mercato::Status s = node.start(); !s.isOk()) {
    spdlog::error("mercatod: {}", s.toString());
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("mercatod: {} received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  node.stop();
  spdlog::info("mercatod: stopped");
  return 0;
}
