// mercato identity show|set-name, networks create|join|leave|list, peers list|show: the p2p
// role of a node, over its /p2p/v1 API (docs/p2p.md). Changes need the node's admin token:
// $MERCATO_ADMIN_TOKEN, or the file named by --token-file (default ./.mercato/admin.token, the
// token of a node started in the current directory).
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "mercato/cli.hpp"
#include "net/client.hpp"

namespace mercato::cli {

namespace {

namespace fs = std::filesystem;

struct P2pArgs {
  std::string tokenFile;
  std::string name, key, network, peer;
  bool isPrivate = false;
};

Result<std::string> adminToken(const P2pArgs& a) {
  if (const char* t = std::getenv("MERCATO_ADMIN_TOKEN"); t && *t) return std::string(t);
  const std::string path = a.tokenFile.empty() ? "./.mercato/admin.token" : a.tokenFile;
  std::ifstream in(path);
  std::string token;
  if (!in || !std::getline(in, token) || token.empty())
    return invalidArgument(
        "this needs the node's admin token: set MERCATO_ADMIN_TOKEN or pass "
        "--token-file DATA_DIR/admin.token (could not read " +
        path + ")");
  return token;
}

// One request to the node's /p2p/v1 API; a non-2xx answer becomes its Status.
Result<nlohmann::json> call(Context& ctx, const std::string& method, const std::string& target,
                            const nlohmann::json& body = nullptr, const P2pArgs* admin = nullptr) {
  ASSIGN_OR_RETURN(auto client,
                   net::HttpClient::create(
                       ctx.nodeUrl(), net::ClientOptions::withTimeout(std::chrono::seconds(10))));
  net::Headers headers;
  if (admin) {
    ASSIGN_OR_RETURN(std::string token, adminToken(*admin));
    headers["Authorization"] = "Bearer " + token;
  }
  if (!body.is_null()) headers["Content-Type"] = "application/json";
  ASSIGN_OR_RETURN(net::HttpResponse r,
                   client->request(method, target, body.is_null() ? "" : body.dump(), headers));
  if (r.status == 404 && r.body.find("\"error\"") == std::string::npos)
    return unimplemented("the node at " + ctx.nodeUrl() + " does not run the p2p role");
  if (r.status < 200 || r.status >= 300) return net::statusFromErrorResponse(r.status, r.body);
  try {
    return nlohmann::json::parse(r.body);
  } catch (const std::exception& e) {
    return internalError(std::string("bad JSON from the node: ") + e.what());
  }
}

std::string rttText(int64_t micros) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", static_cast<double>(micros) / 1000.0);
  return buf;
}

std::string joined(const nlohmann::json& arr) {
  std::string out;
  for (const auto& v : arr) out += (out.empty() ? "" : ",") + v.get<std::string>();
  return out.empty() ? "-" : out;
}

std::string identityText(const nlohmann::json& j) {
  return "name       " + j.value("name", "") + "\npeer id    " + j.value("peerId", "") +
         "\nendpoint   " + j.value("endpoint", "") + "\naddresses  " + joined(j["addresses"]) +
         "\nroles      " + joined(j["roles"]) + "\nseq        " + std::to_string(j.value("seq", 0));
}

}  // namespace

void addP2pCommands(CLI::App& app, Context& ctx, int& exitCode) {
  static P2pArgs a;
  auto run = [&ctx, &exitCode](std::function<Result<nlohmann::json>()> fn,
                               std::function<std::string(const nlohmann::json&)> human) {
    auto r = fn();
    if (!r.isOk()) {
      exitCode = ctx.fail(r.status());
      return;
    }
    ctx.print(*r, human(*r));
  };

  auto* identity = app.add_subcommand("identity", "This node's p2p identity (name, peer id)");
  identity->require_subcommand(1);
  identity->add_subcommand("show", "Show the node's peer id, name, addresses and roles")
      ->callback(
          [&ctx, run] { run([&] { return call(ctx, "GET", "/p2p/v1/identity"); }, identityText); });
  auto* setName = identity->add_subcommand("set-name", "Set the name peers see (needs admin)");
  setName->add_option("NAME", a.name, "New name (1 to 64 bytes)")->required();
  setName->add_option("--token-file", a.tokenFile, "The node's DATA_DIR/admin.token");
  setName->callback([&ctx, run] {
    run(
        [&] {
          return call(ctx, "POST", "/p2p/v1/identity", {{"name", a.name}}, &a);
        },
        identityText);
  });

  auto* networks = app.add_subcommand("networks", "The p2p networks this node is in");
  networks->require_subcommand(1);
  auto* create = networks->add_subcommand("create", "Create a private network; prints its key");
  create->add_option("NAME", a.name, "Local name: 1-32 of a-z 0-9 . _ -")->required();
  create->add_flag("--private", a.isPrivate, "A private network with a shared key (required)");
  create->add_option("--token-file", a.tokenFile, "The node's DATA_DIR/admin.token");
  create->callback([&ctx, &exitCode, run] {
    if (!a.isPrivate) {
      exitCode = ctx.fail(invalidArgument(
          "only private networks can be created (add --private); there is one public network, "
          "joined with `mercato networks join public`"));
      return;
    }
    run(
        [&] {
          return call(ctx, "POST", "/p2p/v1/networks", {{"name", a.name}}, &a);
        },
        [](const nlohmann::json& j) {
          return "created private network '" + j.value("name", "") + "'\nid   " +
                 j.value("id", "") + "\nkey  " + j.value("key", "") +
                 "\nShare the key with the partners who should join (mercato networks join KEY); "
                 "anyone holding it can read and join the network.";
        });
  });
  auto* join = networks->add_subcommand("join", "Join a private network by its key (or 'public')");
  join->add_option("KEY", a.key, "The network key (mnet1...) or 'public'")->required();
  join->add_option("--token-file", a.tokenFile, "The node's DATA_DIR/admin.token");
  join->callback([&ctx, run] {
    nlohmann::json body =
        a.key == "public" ? nlohmann::json{{"name", "public"}} : nlohmann::json{{"key", a.key}};
    run([&] { return call(ctx, "POST", "/p2p/v1/networks", body, &a); },
        [](const nlohmann::json& j) { return "joined network '" + j.value("name", "") + "'"; });
  });
  auto* leave = networks->add_subcommand("leave", "Leave a network");
  leave->add_option("NAME", a.name, "Network name")->required();
  leave->add_option("--token-file", a.tokenFile, "The node's DATA_DIR/admin.token");
  leave->callback([&ctx, run] {
    run([&] { return call(ctx, "DELETE", "/p2p/v1/networks/" + a.name, nullptr, &a); },
        [](const nlohmann::json& j) { return "left network '" + j.value("left", "") + "'"; });
  });
  networks->add_subcommand("list", "List the networks this node is in")->callback([&ctx, run] {
    run([&] { return call(ctx, "GET", "/p2p/v1/networks"); },
        [](const nlohmann::json& arr) {
          Table t({"NAME", "KIND", "PEERS", "THRESHOLD", "ID"});
          for (const auto& n : arr)
            t.row({n.value("name", ""), n.value("private", false) ? "private" : "public",
                   std::to_string(n.value("peers", 0)), rttText(n.value("thresholdMicros", 0)),
                   n.value("id", "")});
          return t.render();
        });
  });

  auto* peers = app.add_subcommand("peers", "Nodes this node has discovered");
  peers->require_subcommand(1);
  auto* list = peers->add_subcommand("list", "List known peers (name, id, address, RTT, ...)");
  list->add_option("--network", a.network, "Only the peers of this network");
  list->callback([&ctx, run] {
    const std::string target =
        "/p2p/v1/peers" + (a.network.empty() ? "" : "?network=" + net::urlEncode(a.network));
    run([&] { return call(ctx, "GET", target); },
        [](const nlohmann::json& arr) {
          Table t({"NAME", "PEER ID", "ADDRESS", "RTT", "NETWORKS", "ROLES"});
          for (const auto& p : arr)
            t.row({p.value("name", "").empty() ? "-" : p.value("name", ""), p.value("peerId", ""),
                   p.value("endpoint", ""), rttText(p.value("rttMicros", int64_t{0})),
                   joined(p["networks"]), joined(p["roles"])});
          return t.render();
        });
  });
  auto* show = peers->add_subcommand("show", "A known node's record and summary (repository)");
  show->add_option("PEER_ID", a.peer, "Peer id (mpeer1...)")->required();
  show->callback([&ctx, run] {
    run([&] { return call(ctx, "GET", "/p2p/v1/nodes/" + a.peer); },
        [](const nlohmann::json& j) { return j.dump(2); });
  });
}

}  // namespace mercato::cli
