// mercato deployments list | status ID | logs ID [-f] [--tail N] [--service S]
//                  | exec ID [-i] [-t] [--service S] -- CMD... | topup ID AMOUNT | close ID
// plus the local deployment records (deployments.hpp).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/money.hpp"
#include "mercato/cli.hpp"
#include "mercato/deployments.hpp"
#include "mercato/exec_session.hpp"

namespace mercato::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
std::string recordsPath(const std::string& home) {
  return (fs::path(home) / "deployments.json").string();
}

std::vector<std::string> stringList(const json& j, const char* key) {
  std::vector<std::string> out;
  if (j.contains(key) && j[key].is_array())
    for (const auto& v : j[key])
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

std::string joinLines(const std::vector<std::string>& v, const std::string& indent) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "\n" + indent : "") + v[i];
  return out.empty() ? "-" : out;
}
}  // namespace

json toJson(const DeploymentRecord& r) {
  return {{"id", r.id},
          {"name", r.name},
          {"provider", r.provider},
          {"gatewayUrl", r.gatewayUrl},
          {"nodeKey", r.nodeKey},
          {"escrowId", r.escrowId},
          {"urls", r.urls},
          {"components", r.components},
          {"createdAtMs", r.createdAtMs},
          {"receipt", r.receipt}};
}

Result<std::vector<DeploymentRecord>> loadDeploymentRecords(const std::string& home) {
  const std::string path = recordsPath(home);
  std::vector<DeploymentRecord> out;
  if (!fs::exists(path)) return out;
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("deployments") || !j["deployments"].is_array())
    return invalidArgument(path + ": expected {\"deployments\": [...]}; fix or remove the file");
  for (const auto& d : j["deployments"]) {
    if (!d.is_object()) continue;
    DeploymentRecord r;
    r.id = d.value("id", "");
    r.name = d.value("name", "");
    r.provider = d.value("provider", "");
    r.gatewayUrl = d.value("gatewayUrl", "");
    r.nodeKey = d.value("nodeKey", "");
    r.escrowId = d.value("escrowId", "");
    r.urls = stringList(d, "urls");
    r.components = stringList(d, "components");
    r.createdAtMs = d.value("createdAtMs", int64_t{0});
    r.receipt = d.value("receipt", json::object());
    if (!r.id.empty()) out.push_back(std::move(r));
  }
  return out;
}

Status saveDeploymentRecord(const std::string& home, const DeploymentRecord& rec) {
  ASSIGN_OR_RETURN(auto all, loadDeploymentRecords(home));
  std::erase_if(all, [&](const DeploymentRecord& r) { return r.id == rec.id; });
  all.push_back(rec);
  json arr = json::array();
  for (const auto& r : all) arr.push_back(toJson(r));
  std::error_code ec;
  fs::create_directories(home, ec);
  const std::string path = recordsPath(home), tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json{{"deployments", arr}}.dump(2) << "\n";
    if (!out) return internalError("writing " + tmp + " failed");
  }
  fs::rename(tmp, path, ec);
  if (ec) return internalError("renaming " + tmp + " to " + path + ": " + ec.message());
  return Status::ok();
}

Result<DeploymentRecord> findDeploymentRecord(const std::string& home, const std::string& id) {
  ASSIGN_OR_RETURN(auto all, loadDeploymentRecords(home));
  std::vector<const DeploymentRecord*> hits;
  for (const auto& r : all) {
    if (r.id == id) return r;
    if (r.id.starts_with(id)) hits.push_back(&r);
  }
  if (hits.size() == 1) return *hits[0];
  if (hits.size() > 1) return invalidArgument("deployment id '" + id + "' is ambiguous");
  return notFound("no deployment '" + id + "' in " + recordsPath(home) +
                  " (deployments made with `mercato deploy` from this home are listed there)");
}

struct GatewayEndpoint {
  std::string url;
  crypto::PublicKey nodeKey;
};

Result<GatewayEndpoint> gatewayEndpoint(Context& ctx, const DeploymentRecord& r) {
  // A provider may move its gateway (a restart on another port, a new address): the registry
  // has the current URL. The node key must still be the one that signed the receipt.
  std::string url = r.gatewayUrl;
  if (auto l = ctx.ledger(); l.isOk()) {
    if (auto p = (*l)->provider(r.provider); p.isOk() && p->nodeKey == r.nodeKey)
      url = p->gatewayUrl;
  }
  auto key = crypto::PublicKey::fromHex(r.nodeKey);
  if (!key.isOk()) return key.status().withContext("deployment " + r.id + ": nodeKey");
  return GatewayEndpoint{url, *key};
}

Result<std::unique_ptr<publisher::GatewayClient>> gatewayFor(Context& ctx,
                                                             const DeploymentRecord& r) {
  ASSIGN_OR_RETURN(crypto::Identity id, ctx.loadKey());
  ASSIGN_OR_RETURN(GatewayEndpoint ep, gatewayEndpoint(ctx, r));
  return publisher::GatewayClient::create(ep.url, ep.nodeKey, id);
}

void addDeploymentsCommands(CLI::App& app, Context& ctx, int& exitCode) {
  auto done = [&](const Status& s) {
    if (!s.isOk()) exitCode = ctx.fail(s);
  };
  auto* dep = app.add_subcommand("deployments", "Your deployments: status, logs, exec, payment");
  dep->require_subcommand(1);

  dep->add_subcommand("list", "List the deployments made from this home")->callback([&, done] {
    auto all = loadDeploymentRecords(ctx.home());
    if (!all.isOk()) return done(all.status());
    json arr = json::array();
    Table t({"ID", "NAME", "PROVIDER", "ESCROW", "URL", "CREATED"});
    for (const auto& r : *all) {
      arr.push_back(toJson(r));
      t.row({r.id, r.name, r.provider, r.escrowId, r.urls.empty() ? "-" : r.urls.front(),
             shortTime(r.createdAtMs)});
    }
    ctx.print(arr, t.render());
  });

  static std::string statusId;
  auto* st = dep->add_subcommand("status", "Instances, usage, cost so far, escrow and URLs");
  st->add_option("id", statusId, "Deployment id (or a unique prefix)")->required();
  st->callback([&, done] {
    auto rec = findDeploymentRecord(ctx.home(), statusId);
    if (!rec.isOk()) return done(rec.status());
    auto gw = gatewayFor(ctx, *rec);
    if (!gw.isOk()) return done(gw.status());
    auto l = ctx.ledger();
    if (!l.isOk()) return done(l.status());
    auto escrow = (*l)->escrow(rec->escrowId);
    if (!escrow.isOk()) return done(escrow.status());
    auto remote = (*gw)->status(rec->id);
    // The escrow alone still says a lot when the provider is down or removed the deployment.
    // --json: the gateway's status object, plus the ledger's escrow and the local record.
    json out = remote.isOk() && remote->is_object() ? *remote : json::object();
    if (!remote.isOk()) out["gatewayError"] = remote.status().toString();
    out["escrow"] = ledger::toJson(*escrow);
    out["record"] = toJson(*rec);
    std::string text = "deployment  " + rec->id + " (" + rec->name + ")\nprovider    " +
                       rec->provider + "\ngateway     " + rec->gatewayUrl;
    if (remote.isOk()) {
      text += "\nstate       " + remote->value("state", "?");
      if (auto reason = remote->value("reason", ""); !reason.empty()) text += " (" + reason + ")";
    } else {
      text += "\nstate       unknown: " + remote.status().message();
    }
    text += "\nurls        " +
            joinLines(remote.isOk() ? stringList(*remote, "urls") : rec->urls, "            ");
    const ledger::Escrow& e = *escrow;
    text += "\nusage       cpu " + std::to_string(e.usage.cpuMillis / 1000) + " s, memory " +
            std::to_string(e.usage.memMibSeconds) + " MiB-s, egress " +
            std::to_string(e.usage.egressBytes) + " B, " + std::to_string(e.usage.requests) +
            " requests, disk " + std::to_string(e.usage.storageMibSeconds) + " MiB-s (claimed)";
    if (remote.isOk() && remote->contains("metered") && (*remote)["metered"].is_object()) {
      auto m = ledger::usageFromJson((*remote)["metered"], "metered");
      if (m.isOk()) {
        text += "\nmetered     cpu " + std::to_string(m->cpuMillis / 1000) + " s, memory " +
                std::to_string(m->memMibSeconds) + " MiB-s, egress " +
                std::to_string(m->egressBytes) + " B, " + std::to_string(m->requests) +
                " requests, disk " + std::to_string(m->storageMibSeconds) +
                " MiB-s (so far, not all claimed yet)";
        text += "\ncost so far " + money(ledger::computeOwed(e.terms, *m)) + " (claimed " +
                money(e.claimed) + ")";
        out["costSoFar"] = ledger::computeOwed(e.terms, *m);
      }
    } else {
      text += "\ncost so far " + money(e.owed) + " (claimed " + money(e.claimed) + ")";
      out["costSoFar"] = e.owed;
    }
    text += "\nescrow      " + e.id + " " + ledger::escrowStateName(e.state) + ", balance " +
            money(e.balance()) + " of " + money(e.deposited) + " deposited";
    if (remote.isOk() && remote->contains("runtime") && (*remote)["runtime"].is_object()) {
      Table t({"INSTANCE", "SERVICE", "STATE", "READY", "RESTARTS", "STARTED"});
      int n = 0;
      for (const auto& svc : (*remote)["runtime"].value("services", json::array())) {
        for (const auto& i : svc.value("instances", json::array())) {
          ++n;
          t.row({i.value("id", ""), svc.value("name", ""), i.value("state", ""),
                 i.value("ready", false) ? "yes" : "no", std::to_string(i.value("restarts", 0)),
                 shortTime(i.value("startedAtMs", int64_t{0}))});
        }
      }
      text +=
          "\ninstances   " + std::to_string(n) + (n ? "\n\n" + t.render() : " (scaled to zero)");
    }
    ctx.print(out, text);
  });

  static std::string logsId, logsService;
  static bool logsFollow = false;
  static int logsTail = 100;
  auto* lg = dep->add_subcommand("logs", "Print (and follow) the deployment's logs");
  lg->add_option("id", logsId, "Deployment id")->required();
  lg->add_flag("-f,--follow", logsFollow, "Keep streaming new lines");
  lg->add_option("--tail", logsTail, "Start with the last N lines (default 100)");
  lg->add_option("--service", logsService, "Only this component's logs");
  lg->callback([&, done] {
    auto rec = findDeploymentRecord(ctx.home(), logsId);
    if (!rec.isOk()) return done(rec.status());
    auto gw = gatewayFor(ctx, *rec);
    if (!gw.isOk()) return done(gw.status());
    const bool asJson = ctx.globals().json;
    Status s =
        (*gw)->logs(rec->id, {logsTail, logsFollow, logsService}, [&](const publisher::LogLine& l) {
          if (asJson) {
            std::cout
                << json{{"instance", l.instance}, {"stream", l.stream}, {"text", l.text}}.dump()
                << std::endl;
          } else {
            (l.stream == "stderr" ? std::cerr : std::cout)
                << l.instance << " | " << l.text << std::endl;
          }
          return true;
        });
    done(s);
  });

  static std::string execId, execService;
  static std::vector<std::string> execArgs;
  static bool execStdin = false, execTty = false;
  auto* ex = dep->add_subcommand(
      "exec",
      "Run a command in an instance: exec ID [-i] [-t] -- CMD ARGS... Without -i/-t it runs to "
      "completion and prints its output (exit 1 when it fails); with them it is interactive and "
      "this command exits with the remote exit code");
  ex->add_option("id", execId, "Deployment id")->required();
  ex->add_option("--service", execService, "Component (default: the first one)");
  ex->add_flag("-i,--stdin", execStdin, "Attach stdin: an interactive session (WebSocket)");
  ex->add_flag("-t,--tty", execTty,
               "Allocate a terminal (raw mode locally; needs stdin to be a terminal)");
  ex->add_option("cmd", execArgs, "Command and arguments (after --)")->required();
  ex->callback([&, done] {
    auto rec = findDeploymentRecord(ctx.home(), execId);
    if (!rec.isOk()) return done(rec.status());
    std::string service = execService;
    if (service.empty() && !rec->components.empty()) service = rec->components.front();
    if (execStdin || execTty) {
      auto key = ctx.loadKey();
      if (!key.isOk()) return done(key.status());
      auto ep = gatewayEndpoint(ctx, *rec);
      if (!ep.isOk()) return done(ep.status());
      bool tty = execTty;
      if (tty && !::isatty(STDIN_FILENO)) {
        std::cerr << "mercato: stdin is not a terminal; running without a TTY\n";
        tty = false;
      }
      auto code = runInteractiveExec({ep->url, ep->nodeKey, rec->id, service, execArgs, tty}, *key);
      if (!code.isOk()) return done(code.status());
      exitCode = *code;
      return;
    }
    auto gw = gatewayFor(ctx, *rec);
    if (!gw.isOk()) return done(gw.status());
    auto r = (*gw)->exec(rec->id, service, execArgs);
    if (!r.isOk()) return done(r.status());
    if (ctx.globals().json) {
      ctx.print({{"exitCode", r->exitCode}, {"stdout", r->stdoutText}, {"stderr", r->stderrText}},
                "");
    } else {
      std::cout << r->stdoutText;
      std::cerr << r->stderrText;
      if (r->exitCode != 0) std::cerr << "exit code " << r->exitCode << "\n";
    }
    // The remote command's failure is a failure of this command (exit 1), not a usage error.
    if (r->exitCode != 0) exitCode = 1;
  });

  static std::string topupId, topupAmount;
  auto* tu = dep->add_subcommand("topup", "Deposit more into the deployment's escrow");
  tu->add_option("id", topupId, "Deployment id")->required();
  tu->add_option("amount", topupAmount, "Amount, e.g. 10")->required();
  tu->callback([&, done] {
    auto a = amountArg("amount", topupAmount);
    if (!a.isOk()) return done(a.status());
    auto rec = findDeploymentRecord(ctx.home(), topupId);
    if (!rec.isOk()) return done(rec.status());
    auto r = depositEscrow(ctx, rec->escrowId, *a);
    if (!r.isOk()) return done(r.status());
    ctx.print(toJson(*r), "deposited " + money(*a) + " into escrow " + rec->escrowId + " of " +
                              rec->id + " (state " + r->result.value("state", "") + ")\ntx  " +
                              r->hash);
  });

  static std::string closeId;
  auto* cl = dep->add_subcommand(
      "close", "Close the deployment's escrow: the provider removes the app, the rest is refunded");
  cl->add_option("id", closeId, "Deployment id")->required();
  cl->callback([&, done] {
    auto rec = findDeploymentRecord(ctx.home(), closeId);
    if (!rec.isOk()) return done(rec.status());
    auto r = closeEscrow(ctx, rec->escrowId);
    if (!r.isOk()) return done(r.status());
    ctx.print(toJson(*r), "escrow " + rec->escrowId + " of " + rec->id + " is " +
                              r->result.value("state", "") +
                              "; the provider removes the deployment and the remaining balance "
                              "is refunded after the grace period\ntx  " +
                              r->hash);
  });
}

}  // namespace mercato::cli
