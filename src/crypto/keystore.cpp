#include "crypto/keystore.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/strings.hpp"
#include "crypto/address.hpp"

namespace mercato::crypto {

namespace {

using nlohmann::json;

constexpr int kVersion = 1;
// Bounds on the Argon2id cost read from a file, so a hostile keystore cannot demand terabytes of
// memory or hours of CPU. The upper bounds are libsodium's SENSITIVE limits.
constexpr unsigned long long kMaxOpsLimit = crypto_pwhash_OPSLIMIT_SENSITIVE;
constexpr size_t kMaxMemLimit = crypto_pwhash_MEMLIMIT_SENSITIVE;

// Wipes a buffer holding secret material when it goes out of scope.
template <typename Buf>
struct Wipe {
  Buf& buf;
  ~Wipe() { sodium_memzero(buf.data(), buf.size()); }
};
template <typename Buf>
Wipe(Buf&) -> Wipe<Buf>;

Status errnoStatus(const std::string& what, const std::string& path) {
  return unavailable(what + " " + path + ": " + std::strerror(errno));
}

Status writeAll(int fd, const std::string& data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errnoStatus("cannot write", path);
    }
    off += static_cast<size_t>(n);
  }
  return Status::ok();
}

std::string tempPathFor(const std::string& path) {
  std::array<uint8_t, 8> rnd{};
  randombytes_buf(rnd.data(), rnd.size());
  return path + ".tmp-" + toHex(std::span<const uint8_t>(rnd));
}

void fsyncParentDir(const std::string& path) {
  auto dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: the rename itself already happened
  ::fsync(fd);
  ::close(fd);
}

// Writes `data` to `path` with mode 0600 via a temp file in the same directory, so a reader
// never sees a partial keystore and the secret is never briefly world-readable.
Status writeFileAtomic(const std::string& path, std::string& data, bool overwrite) {
  std::string tmp = tempPathFor(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errnoStatus("cannot create", tmp);
  // The umask can only remove bits, but be exact anyway.
  Status st = ::fchmod(fd, 0600) == 0 ? Status::ok() : errnoStatus("cannot chmod", tmp);
  if (st.isOk()) st = writeAll(fd, data, tmp);
  if (st.isOk() && ::fsync(fd) != 0) st = errnoStatus("cannot fsync", tmp);
  if (::close(fd) != 0 && st.isOk()) st = errnoStatus("cannot close", tmp);
  if (st.isOk()) {
    if (overwrite) {
      if (::rename(tmp.c_str(), path.c_str()) != 0) st = errnoStatus("cannot rename onto", path);
    } else if (::link(tmp.c_str(), path.c_str()) != 0) {
      // link() fails atomically when `path` exists, unlike rename().
      st = errno == EEXIST ? alreadyExists("keystore " + path + " already exists")
                           : errnoStatus("cannot create", path);
    } else {
      ::unlink(tmp.c_str());
    }
  }
  if (!st.isOk()) {
    ::unlink(tmp.c_str());
    return st;
  }
  fsyncParentDir(path);
  return Status::ok();
}

Result<std::string> readFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return notFound("keystore " + path + " does not exist");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return errnoStatus("cannot open keystore", path);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return errnoStatus("cannot read keystore", path);
  return data;
}

// Reads and checks the parts common to both kinds of keystore.
struct ParsedKeystore {
  json doc;
  PublicKey publicKey;
  std::string kdf;
};

Result<std::string> stringField(const json& doc, const std::string& path, const char* name) {
  auto it = doc.find(name);
  if (it == doc.end() || !it->is_string()) {
    return invalidArgument("keystore " + path + ": field \"" + name + "\": expected a string");
  }
  return it->get<std::string>();
}

template <size_t N>
Result<std::vector<uint8_t>> hexField(const json& doc, const std::string& path, const char* name) {
  ASSIGN_OR_RETURN(std::string text, stringField(doc, path, name));
  auto bytes = fromHex(text);
  sodium_memzero(text.data(), text.size());
  if (!bytes.isOk() || bytes->size() != N) {
    return invalidArgument("keystore " + path + ": field \"" + name + "\": expected " +
                           std::to_string(N) + " bytes of hex");
  }
  return std::move(bytes).value();
}

Result<unsigned long long> uintField(const json& doc, const std::string& path, const char* name,
                                     unsigned long long min, unsigned long long max) {
  auto it = doc.find(name);
  if (it == doc.end() || !it->is_number_unsigned()) {
    return invalidArgument("keystore " + path + ": field \"" + name +
                           "\": expected a non-negative integer");
  }
  auto v = it->get<unsigned long long>();
  if (v < min || v > max) {
    return invalidArgument("keystore " + path + ": field \"" + name + "\": " + std::to_string(v) +
                           " is outside [" + std::to_string(min) + ", " + std::to_string(max) +
                           "]");
  }
  return v;
}

Result<ParsedKeystore> parseKeystore(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, readFile(path));
  Wipe wipeText{text};
  ParsedKeystore ks;
  try {
    ks.doc = json::parse(text);
  } catch (const json::parse_error& e) {
    return invalidArgument("keystore " + path + " is not valid JSON (byte " +
                           std::to_string(e.byte) + ")");
  }
  if (!ks.doc.is_object()) {
    return invalidArgument("keystore " + path + ": expected a JSON object");
  }
  auto version = ks.doc.find("version");
  if (version == ks.doc.end() || !version->is_number_integer() ||
      version->get<long long>() != kVersion) {
    std::string got = version == ks.doc.end() ? "none" : version->dump();
    return failedPrecondition("keystore " + path + ": unsupported version " + got +
                              " (this build reads version " + std::to_string(kVersion) + ")");
  }
  ASSIGN_OR_RETURN(std::string pkHex, stringField(ks.doc, path, "public_key"));
  auto pk = PublicKey::fromHex(pkHex);
  if (!pk.isOk()) return pk.status().withContext("keystore " + path);
  ks.publicKey = *pk;
  ASSIGN_OR_RETURN(std::string address, stringField(ks.doc, path, "address"));
  if (address != addressFromPublicKey(ks.publicKey)) {
    return invalidArgument("keystore " + path + ": address does not match public_key");
  }
  ASSIGN_OR_RETURN(ks.kdf, stringField(ks.doc, path, "kdf"));
  if (ks.kdf != "none" && ks.kdf != "argon2id") {
    return invalidArgument("keystore " + path + ": field \"kdf\": unknown \"" + ks.kdf +
                           "\" (expected \"none\" or \"argon2id\")");
  }
  return ks;
}

// Derives the 32-byte AEAD key from the passphrase. The caller wipes `key`.
Status deriveKey(std::array<uint8_t, crypto_aead_xchacha20poly1305_ietf_KEYBYTES>& key,
                 const std::string& passphrase, const uint8_t* salt, unsigned long long opslimit,
                 size_t memlimit) {
  if (crypto_pwhash(key.data(), key.size(), passphrase.data(), passphrase.size(), salt, opslimit,
                    memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return resourceExhausted("argon2id: not enough memory for memlimit " +
                             std::to_string(memlimit));
  }
  return Status::ok();
}

}  // namespace

Status saveKeystore(const std::string& path, const Identity& id, const KeystoreOptions& opts,
                    bool overwrite) {
  initCrypto();
  if (!overwrite) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
      return alreadyExists("keystore " + path + " already exists");
    }
  }
  const PublicKey& pk = id.publicKey();
  json doc = {
      {"version", kVersion}, {"address", addressFromPublicKey(pk)}, {"public_key", pk.hex()}};
  if (!opts.passphrase) {
    doc["kdf"] = "none";
    doc["seed"] = toHex(std::span<const uint8_t>(id.seed()));
  } else {
    if (opts.opslimit < crypto_pwhash_OPSLIMIT_MIN || opts.opslimit > kMaxOpsLimit ||
        opts.memlimit < crypto_pwhash_MEMLIMIT_MIN || opts.memlimit > kMaxMemLimit) {
      return invalidArgument("keystore: argon2id opslimit/memlimit out of range");
    }
    std::array<uint8_t, crypto_pwhash_SALTBYTES> salt{};
    std::array<uint8_t, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES> nonce{};
    randombytes_buf(salt.data(), salt.size());
    randombytes_buf(nonce.data(), nonce.size());
    std::array<uint8_t, crypto_aead_xchacha20poly1305_ietf_KEYBYTES> key{};
    Wipe wipeKey{key};
    RETURN_IF_ERROR(deriveKey(key, *opts.passphrase, salt.data(), opts.opslimit, opts.memlimit));
    std::array<uint8_t, crypto_sign_SEEDBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES> ct{};
    unsigned long long ctLen = 0;
    // The public key is associated data: swapping it (and the matching address) fails to open.
    crypto_aead_xchacha20poly1305_ietf_encrypt(ct.data(), &ctLen, id.seed().data(),
                                               id.seed().size(), pk.bytes.data(), pk.bytes.size(),
                                               nullptr, nonce.data(), key.data());
    doc["kdf"] = "argon2id";
    doc["opslimit"] = opts.opslimit;
    doc["memlimit"] = opts.memlimit;
    doc["salt"] = toHex(std::span<const uint8_t>(salt));
    doc["nonce"] = toHex(std::span<const uint8_t>(nonce));
    doc["ciphertext"] = toHex(std::span<const uint8_t>(ct.data(), ctLen));
  }
  std::string text = doc.dump(2) + "\n";
  Wipe wipeText{text};
  if (doc.contains("seed")) {
    auto& seedHex = doc["seed"].get_ref<std::string&>();
    sodium_memzero(seedHex.data(), seedHex.size());
  }
  return writeFileAtomic(path, text, overwrite);
}

Result<Identity> loadKeystore(const std::string& path,
                              const std::optional<std::string>& passphrase) {
  initCrypto();
  try {
    ASSIGN_OR_RETURN(ParsedKeystore ks, parseKeystore(path));
    std::vector<uint8_t> seed;
    Wipe wipeSeed{seed};
    if (ks.kdf == "none") {
      ASSIGN_OR_RETURN(seed, hexField<crypto_sign_SEEDBYTES>(ks.doc, path, "seed"));
      auto& seedHex = ks.doc["seed"].get_ref<std::string&>();
      sodium_memzero(seedHex.data(), seedHex.size());
    } else {
      if (!passphrase) {
        return failedPrecondition("keystore " + path +
                                  " is encrypted: a passphrase is required to load it");
      }
      ASSIGN_OR_RETURN(
          unsigned long long opslimit,
          uintField(ks.doc, path, "opslimit", crypto_pwhash_OPSLIMIT_MIN, kMaxOpsLimit));
      ASSIGN_OR_RETURN(
          unsigned long long memlimit,
          uintField(ks.doc, path, "memlimit", crypto_pwhash_MEMLIMIT_MIN, kMaxMemLimit));
      ASSIGN_OR_RETURN(auto salt, hexField<crypto_pwhash_SALTBYTES>(ks.doc, path, "salt"));
      ASSIGN_OR_RETURN(auto nonce, hexField<crypto_aead_xchacha20poly1305_ietf_NPUBBYTES>(
                                       ks.doc, path, "nonce"));
      ASSIGN_OR_RETURN(auto ct,
                       hexField<crypto_sign_SEEDBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES>(
                           ks.doc, path, "ciphertext"));
      std::array<uint8_t, crypto_aead_xchacha20poly1305_ietf_KEYBYTES> key{};
      Wipe wipeKey{key};
      RETURN_IF_ERROR(
          deriveKey(key, *passphrase, salt.data(), opslimit, static_cast<size_t>(memlimit)));
      seed.resize(crypto_sign_SEEDBYTES);
      unsigned long long seedLen = 0;
      if (crypto_aead_xchacha20poly1305_ietf_decrypt(
              seed.data(), &seedLen, nullptr, ct.data(), ct.size(), ks.publicKey.bytes.data(),
              ks.publicKey.bytes.size(), nonce.data(), key.data()) != 0) {
        return unauthenticated("keystore " + path +
                               ": wrong passphrase (or the file was modified)");
      }
    }
    ASSIGN_OR_RETURN(Identity id, Identity::fromSeed(seed));
    if (id.publicKey() != ks.publicKey) {
      return invalidArgument("keystore " + path +
                             ": public_key does not match the seed (corrupted file?)");
    }
    return id;
  } catch (const json::exception& e) {
    return invalidArgument("keystore " + path + ": malformed: " + e.what());
  }
}

Result<bool> keystoreIsEncrypted(const std::string& path) {
  try {
    auto parsed = parseKeystore(path);
    if (!parsed.isOk()) return parsed.status();
    return parsed->kdf == "argon2id";
  } catch (const json::exception& e) {
    return invalidArgument("keystore " + path + ": malformed: " + e.what());
  }
}

}  // namespace mercato::crypto
