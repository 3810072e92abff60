#include "crypto/keystore.hpp"

#include <gtest/gtest.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/strings.hpp"

namespace mercato::crypto {
namespace {

namespace fs = std::filesystem;

class KeystoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "mercato-keystore-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static KeystoreOptions fastOptions(std::optional<std::string> passphrase) {
    KeystoreOptions o;
    o.passphrase = std::move(passphrase);
    o.opslimit = crypto_pwhash_OPSLIMIT_MIN;
    o.memlimit = crypto_pwhash_MEMLIMIT_MIN;
    return o;
  }

  static std::string readAll(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  static void writeAll(const std::string& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
  }

  fs::path dir_;
};

TEST_F(KeystoreTest, PlainRoundtrip) {
  Identity id = Identity::generate();
  std::string p = path("plain.json");
  ASSERT_TRUE(saveKeystore(p, id, fastOptions(std::nullopt)).isOk());
  auto loaded = loadKeystore(p);
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  EXPECT_EQ(loaded->publicKey(), id.publicKey());
  EXPECT_TRUE(std::equal(loaded->seed().begin(), loaded->seed().end(), id.seed().begin()));
  auto enc = keystoreIsEncrypted(p);
  ASSERT_TRUE(enc.isOk());
  EXPECT_FALSE(*enc);

  auto doc = nlohmann::json::parse(readAll(p));
  EXPECT_EQ(doc["version"], 1);
  EXPECT_EQ(doc["kdf"], "none");
  EXPECT_EQ(doc["address"], id.address());
  EXPECT_EQ(doc["public_key"], id.publicKey().hex());
  EXPECT_EQ(doc["seed"].get<std::string>().size(), 64u);
}

TEST_F(KeystoreTest, EncryptedRoundtrip) {
  Identity id = Identity::generate();
  std::string p = path("enc.json");
  ASSERT_TRUE(saveKeystore(p, id, fastOptions("correct horse")).isOk());
  auto loaded = loadKeystore(p, std::string("correct horse"));
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  EXPECT_EQ(loaded->publicKey(), id.publicKey());
  auto enc = keystoreIsEncrypted(p);
  ASSERT_TRUE(enc.isOk());
  EXPECT_TRUE(*enc);

  std::string text = readAll(p);
  auto doc = nlohmann::json::parse(text);
  EXPECT_EQ(doc["kdf"], "argon2id");
  EXPECT_FALSE(doc.contains("seed"));
  EXPECT_EQ(doc["salt"].get<std::string>().size(), 32u);
  EXPECT_EQ(doc["nonce"].get<std::string>().size(), 48u);
  EXPECT_EQ(doc["opslimit"], crypto_pwhash_OPSLIMIT_MIN);
  EXPECT_EQ(doc["memlimit"], crypto_pwhash_MEMLIMIT_MIN);
  // The seed never appears in the clear.
  EXPECT_EQ(text.find(toHex(std::span<const uint8_t>(id.seed()))), std::string::npos);
}

TEST_F(KeystoreTest, FileModeIs0600) {
  Identity id = Identity::generate();
  for (const char* name : {"a.json", "b.json"}) {
    std::string p = path(name);
    auto opts = fastOptions(std::string(name) == "a.json" ? std::nullopt
                                                          : std::optional<std::string>("pw"));
    ASSERT_TRUE(saveKeystore(p, id, opts).isOk());
    struct stat st {};
    ASSERT_EQ(::stat(p.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << name;
  }
  // No temp files are left behind.
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 2u);
}

TEST_F(KeystoreTest, RefusesToOverwriteUnlessAsked) {
  Identity a = Identity::generate();
  Identity b = Identity::generate();
  std::string p = path("k.json");
  ASSERT_TRUE(saveKeystore(p, a, fastOptions(std::nullopt)).isOk());
  Status again = saveKeystore(p, b, fastOptions(std::nullopt));
  EXPECT_EQ(again.code(), Code::kAlreadyExists);
  EXPECT_EQ(loadKeystore(p)->publicKey(), a.publicKey());
  ASSERT_TRUE(saveKeystore(p, b, fastOptions(std::nullopt), /*overwrite=*/true).isOk());
  EXPECT_EQ(loadKeystore(p)->publicKey(), b.publicKey());
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(KeystoreTest, WrongPassphrase) {
  std::string p = path("enc.json");
  ASSERT_TRUE(saveKeystore(p, Identity::generate(), fastOptions("right")).isOk());
  auto r = loadKeystore(p, std::string("wrong"));
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kUnauthenticated);
  EXPECT_NE(r.status().message().find("wrong passphrase"), std::string::npos);
}

TEST_F(KeystoreTest, MissingPassphrase) {
  std::string p = path("enc.json");
  ASSERT_TRUE(saveKeystore(p, Identity::generate(), fastOptions("right")).isOk());
  auto r = loadKeystore(p);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("passphrase is required"), std::string::npos);
}

TEST_F(KeystoreTest, MissingFile) {
  auto r = loadKeystore(path("nope.json"));
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_FALSE(keystoreIsEncrypted(path("nope.json")).isOk());
}

TEST_F(KeystoreTest, NotJson) {
  std::string p = path("bad.json");
  writeAll(p, "{\"version\": 1,");
  auto r = loadKeystore(p);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not valid JSON"), std::string::npos);
  writeAll(p, "[1,2]");
  EXPECT_EQ(loadKeystore(p).status().code(), Code::kInvalidArgument);
}

TEST_F(KeystoreTest, WrongVersion) {
  std::string p = path("k.json");
  ASSERT_TRUE(saveKeystore(p, Identity::generate(), fastOptions(std::nullopt)).isOk());
  auto doc = nlohmann::json::parse(readAll(p));
  doc["version"] = 2;
  writeAll(p, doc.dump());
  auto r = loadKeystore(p);
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("unsupported version 2"), std::string::npos)
      << r.status().toString();
}

TEST_F(KeystoreTest, TamperedFilesAreRejected) {
  Identity id = Identity::generate();
  Identity other = Identity::generate();
  std::string plain = path("plain.json");
  std::string enc = path("enc.json");
  ASSERT_TRUE(saveKeystore(plain, id, fastOptions(std::nullopt)).isOk());
  ASSERT_TRUE(saveKeystore(enc, id, fastOptions("pw")).isOk());
  const auto plainDoc = nlohmann::json::parse(readAll(plain));
  const auto encDoc = nlohmann::json::parse(readAll(enc));

  // Another key's public key and address on a plain seed: public key mismatch.
  auto doc = plainDoc;
  doc["public_key"] = other.publicKey().hex();
  doc["address"] = other.address();
  writeAll(plain, doc.dump());
  auto r = loadKeystore(plain);
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("public_key does not match the seed"), std::string::npos)
      << r.status().toString();

  // Address that does not belong to the public key.
  doc = plainDoc;
  doc["address"] = other.address();
  writeAll(plain, doc.dump());
  EXPECT_FALSE(loadKeystore(plain).isOk());

  // A flipped ciphertext byte, or a swapped public key (associated data), fails to open.
  doc = encDoc;
  std::string ct = doc["ciphertext"];
  ct[0] = ct[0] == '0' ? '1' : '0';
  doc["ciphertext"] = ct;
  writeAll(enc, doc.dump());
  EXPECT_EQ(loadKeystore(enc, std::string("pw")).status().code(), Code::kUnauthenticated);

  doc = encDoc;
  doc["public_key"] = other.publicKey().hex();
  doc["address"] = other.address();
  writeAll(enc, doc.dump());
  EXPECT_EQ(loadKeystore(enc, std::string("pw")).status().code(), Code::kUnauthenticated);

  // Wrong types, bad hex, absurd Argon2 costs: clean errors, no exceptions.
  for (auto [field, value] :
       std::vector<std::pair<std::string, nlohmann::json>>{{"salt", "zz"},
                                                           {"nonce", 5},
                                                           {"opslimit", "many"},
                                                           {"memlimit", 1ull << 50},
                                                           {"kdf", "scrypt"},
                                                           {"public_key", nullptr}}) {
    doc = encDoc;
    doc[field] = value;
    writeAll(enc, doc.dump());
    auto bad = loadKeystore(enc, std::string("pw"));
    ASSERT_FALSE(bad.isOk()) << field;
    EXPECT_EQ(bad.status().code(), Code::kInvalidArgument) << field << bad.status().toString();
  }
}

}  // namespace
}  // namespace mercato::crypto
