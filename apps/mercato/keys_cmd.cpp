// mercato keys create|show|list
#include <unistd.h>

#include <filesystem>

#include "crypto/address.hpp"
#include "crypto/keystore.hpp"
#include "mercato/cli.hpp"

namespace mercato::cli {

namespace fs = std::filesystem;

void addKeysCommands(CLI::App& app, Context& ctx, int& exitCode) {
  auto* keys = app.add_subcommand("keys", "Manage local signing keys (HOME/keys/NAME.key)");
  keys->require_subcommand(1);

  auto* create = keys->add_subcommand("create", "Create a new Ed25519 key");
  static bool encrypt = false, force = false;
  create->add_flag("--encrypt", encrypt,
                   "Encrypt with a passphrase (MERCATO_PASSPHRASE, or asked on a terminal)");
  create->add_flag("--force", force, "Overwrite an existing key of the same name");
  create->callback([&] {
    crypto::initCrypto();
    const std::string path = ctx.keyPath(ctx.globals().key);
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    if (ec) {
      exitCode = ctx.fail(unavailable("cannot create " + fs::path(path).parent_path().string() +
                                      ": " + ec.message()));
      return;
    }
    crypto::KeystoreOptions opts;
    if (encrypt) {
      if (const char* p = std::getenv("MERCATO_PASSPHRASE"); p && *p) {
        opts.passphrase = p;
      } else if (isatty(STDIN_FILENO)) {
        std::string a = getpass("new passphrase: ");
        std::string b = getpass("repeat passphrase: ");
        if (a != b || a.empty()) {
          exitCode = ctx.fail(invalidArgument("passphrases are empty or do not match"));
          return;
        }
        opts.passphrase = a;
      } else {
        exitCode = ctx.fail(invalidArgument("--encrypt needs MERCATO_PASSPHRASE or a terminal"));
        return;
      }
    }
    auto id = crypto::Identity::generate();
    if (Status s = crypto::saveKeystore(path, id, opts, force); !s.isOk()) {
      exitCode = ctx.fail(s);
      return;
    }
    nlohmann::json j = {{"name", ctx.globals().key},
                        {"address", id.address()},
                        {"publicKey", id.publicKey().hex()},
                        {"path", path},
                        {"encrypted", opts.passphrase.has_value()}};
    ctx.print(j, "created key '" + ctx.globals().key + "'\naddress     " + id.address() +
                     "\npublic key  " + id.publicKey().hex() + "\nfile        " + path);
  });

  auto* show = keys->add_subcommand("show", "Show the address and public key of a key");
  show->callback([&] {
    auto id = ctx.loadKey();
    if (!id.isOk()) {
      exitCode = ctx.fail(id.status());
      return;
    }
    nlohmann::json j = {{"name", ctx.globals().key},
                        {"address", id->address()},
                        {"publicKey", id->publicKey().hex()}};
    ctx.print(j, "name        " + ctx.globals().key + "\naddress     " + id->address() +
                     "\npublic key  " + id->publicKey().hex());
  });

  auto* list = keys->add_subcommand("list", "List local keys");
  list->callback([&] {
    const fs::path dir = fs::path(ctx.home()) / "keys";
    nlohmann::json arr = nlohmann::json::array();
    Table t({"NAME", "ADDRESS", "ENCRYPTED"});
    std::error_code ec;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".key") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      auto enc = crypto::keystoreIsEncrypted(f.string());
      std::string address = "?";
      try {
        std::ifstream in(f);
        address = nlohmann::json::parse(in).value("address", "?");
      } catch (...) {
      }
      const bool encrypted = enc.isOk() && *enc;
      arr.push_back({{"name", f.stem().string()}, {"address", address}, {"encrypted", encrypted}});
      t.row({f.stem().string(), address, encrypted ? "yes" : "no"});
    }
    ctx.print(arr, t.render());
  });
}

}  // namespace mercato::cli
