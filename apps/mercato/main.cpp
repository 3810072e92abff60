// mercato: the CLI for nodes, providers and the ledger; the publisher client.
// Every command takes --json, --node URL and --home DIR. Exit codes are in cli.hpp.
#include <CLI/CLI.hpp>

#include <csignal>

#include "crypto/keys.hpp"
#include "mercato/cli.hpp"

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  mercato::crypto::initCrypto();
  mercato::cli::Globals g;
  CLI::App app{"mercato: publish apps on an open compute marketplace"};
  app.require_subcommand(1);
  app.fallthrough();
  app.add_flag("--json", g.json, "Machine-readable JSON output");
  app.add_option("--node", g.node, "Node URL (default $MERCATO_NODE or http://127.0.0.1:7400)");
  app.add_option("--home", g.home, "Client home with keys/ (default $MERCATO_HOME or ~/.mercato)");
  app.add_option("--key", g.key, "Name of the key to use (default 'default')");
  mercato::cli::Context ctx(g);
  int exitCode = 0;
  mercato::cli::addKeysCommands(app, ctx, exitCode);
  mercato::cli::addLedgerCommands(app, ctx, exitCode);
  mercato::cli::addRegistryCommands(app, ctx, exitCode);
  mercato::cli::addDeployCommands(app, ctx, exitCode);
  mercato::cli::addDeploymentsCommands(app, ctx, exitCode);
  mercato::cli::addMarketCommands(app, ctx, exitCode);
  mercato::cli::addP2pCommands(app, ctx, exitCode);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return exitCode;
}
