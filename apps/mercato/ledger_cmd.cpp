// mercato ledger info|balance|transfer|mint|history|events|verify
#include <iostream>

#include "common/money.hpp"
#include "crypto/address.hpp"
#include "ledger/embedded/embedded_ledger.hpp"
#include "mercato/cli.hpp"

namespace mercato::cli {

using nlohmann::json;

namespace {

void printReceipt(Context& ctx, const ledger::TxReceipt& r, const std::string& what) {
  ctx.print(toJson(r), what + "\ntx    " + r.hash + "\nseq   " + std::to_string(r.seq));
}

// Verifies a remote node: fetch the whole log page by page, replay it locally, compare roots.
Status verifyRemote(Context& ctx, json& report) {
  ASSIGN_OR_RETURN(ledger::Ledger * l, ctx.ledger());
  ASSIGN_OR_RETURN(ledger::LedgerInfo before, l->info());
  ledger::embedded::LogReplayer replayer;
  uint64_t after = 0;
  while (after < before.headSeq) {
    ASSIGN_OR_RETURN(auto page, l->transactions(after, 1000));
    if (page.empty()) break;
    for (const auto& e : page) {
      if (e.seq > before.headSeq) break;
      RETURN_IF_ERROR(replayer.add(e));
      after = e.seq;
    }
  }
  // Compare against the root the node reported for the same head: if the node moved on while we
  // were reading, ask again for the root at our head by replaying only up to it.
  if (replayer.entries() != before.headSeq)
    return internalError("node reported head " + std::to_string(before.headSeq) + " but served " +
                         std::to_string(replayer.entries()) + " entries");
  if (replayer.headHash() != before.headHash)
    return internalError("chain head mismatch: node says " + before.headHash + ", log gives " +
                         replayer.headHash());
  const std::string root = replayer.stateRoot();
  if (root != before.stateRoot)
    return internalError("state root mismatch at seq " + std::to_string(before.headSeq) +
                         ": node says " + before.stateRoot + ", replay gives " + root);
  report = {{"ok", true},
            {"entries", replayer.entries()},
            {"headHash", before.headHash},
            {"stateRoot", root}};
  return Status::ok();
}
}  // namespace

void addLedgerCommands(CLI::App& app, Context& ctx, int& exitCode) {
  auto* lg = app.add_subcommand("ledger", "Accounts, transfers and the transaction log");
  lg->require_subcommand(1);
  auto done = [&](const Status& s) {
    if (!s.isOk()) exitCode = ctx.fail(s);
  };

  lg->add_subcommand("info", "Chain id, head, supply and state root")->callback([&, done] {
    auto l = ctx.ledger();
    if (!l.isOk()) return done(l.status());
    auto i = (*l)->info();
    if (!i.isOk()) return done(i.status());
    ctx.print(toJson(*i), "chain         " + i->chainId + (i->devMode ? " (dev)" : "") +
                              "\nhead          " + std::to_string(i->headSeq) + " " + i->headHash +
                              "\nsupply        " + money(i->totalSupply) + "\nstate root    " +
                              i->stateRoot + "\nclose grace   " + std::to_string(i->closeGraceMs) +
                              " ms");
  });

  static std::string balanceAddr;
  auto* bal = lg->add_subcommand("balance", "Balance and nonce of an account (default: your key)");
  bal->add_option("address", balanceAddr, "Account address");
  bal->callback([&, done] {
    std::string addr = balanceAddr;
    if (addr.empty()) {
      auto id = ctx.loadKey();
      if (!id.isOk()) return done(id.status());
      addr = id->address();
    } else if (Status s = crypto::validateAddress(addr); !s.isOk()) {
      return done(invalidArgument("address: " + s.message()));
    }
    auto l = ctx.ledger();
    if (!l.isOk()) return done(l.status());
    auto a = (*l)->account(addr);
    if (!a.isOk()) return done(a.status());
    json j = toJson(*a);
    j["balanceText"] = formatAmount(a->balance);
    ctx.print(j, "address  " + a->address + "\nbalance  " + money(a->balance) + "\nnonce    " +
                     std::to_string(a->nonce));
  });

  static std::string to, amount;
  auto* tr = lg->add_subcommand("transfer", "Send tokens to another account");
  tr->add_option("to", to, "Recipient address")->required();
  tr->add_option("amount", amount, "Amount, e.g. 12.5")->required();
  tr->callback([&, done] {
    if (Status s = crypto::validateAddress(to); !s.isOk())
      return done(invalidArgument("to: " + s.message()));
    auto a = amountArg("amount", amount);
    if (!a.isOk()) return done(a.status());
    auto r = ctx.submit(ledger::TxKind::kTransfer, ledger::TransferBody{to, *a});
    if (!r.isOk()) return done(r.status());
    printReceipt(ctx, *r, "sent " + money(*a) + " to " + to);
  });

  static std::string mintAmount, mintTo;
  auto* mint = lg->add_subcommand("mint", "Mint tokens (dev-mode ledgers only: the faucet)");
  mint->add_option("amount", mintAmount, "Amount, e.g. 1000")->required();
  mint->add_option("--to", mintTo, "Recipient (default: your key)");
  mint->callback([&, done] {
    auto a = amountArg("amount", mintAmount);
    if (!a.isOk()) return done(a.status());
    std::string dest = mintTo;
    if (dest.empty()) {
      auto id = ctx.loadKey();
      if (!id.isOk()) return done(id.status());
      dest = id->address();
    } else if (Status s = crypto::validateAddress(dest); !s.isOk()) {
      return done(invalidArgument("--to: " + s.message()));
    }
    auto r = ctx.submit(ledger::TxKind::kMint, ledger::MintBody{dest, *a});
    if (!r.isOk()) return done(r.status());
    printReceipt(ctx, *r, "minted " + money(*a) + " to " + dest);
  });

  static std::string histAddr;
  static size_t histLimit = 50;
  static uint64_t histAfter = 0;
  auto* hist = lg->add_subcommand("history", "Transactions touching an account (default: yours)");
  hist->add_option("address", histAddr, "Account address; 'all' for the whole log");
  hist->add_option("--limit", histLimit, "At most this many entries");
  hist->add_option("--after", histAfter, "Only entries after this sequence number");
  hist->callback([&, done] {
    std::string addr = histAddr;
    if (addr == "all") {
      addr.clear();
    } else if (addr.empty()) {
      auto id = ctx.loadKey();
      if (!id.isOk()) return done(id.status());
      addr = id->address();
    }
    auto l = ctx.ledger();
    if (!l.isOk()) return done(l.status());
    auto txs = (*l)->transactions(histAfter, histLimit, addr);
    if (!txs.isOk()) return done(txs.status());
    json arr = json::array();
    Table t({"SEQ", "TIME", "KIND", "FROM", "DETAIL", "HASH"});
    for (const auto& r : *txs) {
      arr.push_back(toJson(r));
      std::string detail;
      const json body = r.body.contains("tx") ? r.body["tx"].value("body", json::object()) : r.body;
      if (body.contains("amount")) detail = money(body["amount"].get<int64_t>());
      if (body.contains("deposit")) detail = money(body["deposit"].get<int64_t>());
      if (body.contains("to")) detail += " -> " + body["to"].get<std::string>();
      if (body.contains("escrow"))
        detail += (detail.empty() ? "" : " ") + body["escrow"].get<std::string>();
      t.row({std::to_string(r.seq), shortTime(r.time), r.kind, r.sender.empty() ? "-" : r.sender,
             detail, r.hash.substr(0, 16)});
    }
    ctx.print(arr, t.render());
  });

  static uint64_t evAfter = 0;
  static bool follow = false;
  auto* ev = lg->add_subcommand("events", "Ledger events after a cursor");
  ev->add_option("--after", evAfter, "Cursor: show events after this sequence number");
  ev->add_flag("--follow", follow, "Keep waiting for new events");
  ev->callback([&, done] {
    auto l = ctx.ledger();
    if (!l.isOk()) return done(l.status());
    uint64_t cursor = evAfter;
    do {
      auto evs = (*l)->events(cursor, 500, follow ? 30'000 : 0);
      if (!evs.isOk()) return done(evs.status());
      for (const auto& e : *evs) {
        if (ctx.globals().json)
          std::cout << toJson(e).dump() << "\n";
        else
          std::cout << e.seq << "  " << shortTime(e.time) << "  " << e.type << "  " << e.data.dump()
                    << "\n";
        cursor = e.seq;
      }
      std::cout.flush();
    } while (follow);
  });

  static std::string verifyDir;
  auto* ver = lg->add_subcommand(
      "verify", "Replay the log from genesis and check the chain and the state root");
  ver->add_option("--data-dir", verifyDir,
                  "Verify a node's data dir offline instead of asking --node");
  ver->callback([&, done] {
    json report;
    if (!verifyDir.empty()) {
      auto r = ledger::embedded::verifyLedgerDatabase(
          ledger::embedded::ledgerDbPath((std::filesystem::path(verifyDir) / "ledger").string()));
      if (!r.isOk()) return done(r.status());
      report = {{"ok", true},
                {"entries", r->entries},
                {"headHash", r->headHash},
                {"stateRoot", r->replayedRoot}};
    } else if (Status s = verifyRemote(ctx, report); !s.isOk()) {
      return done(s);
    }
    ctx.print(report, "ledger verified: " + std::to_string(report["entries"].get<uint64_t>()) +
                          " entries, chain intact, state root " +
                          report["stateRoot"].get<std::string>());
  });
}

}  // namespace mercato::cli
