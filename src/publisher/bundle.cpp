#include "publisher/bundle.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "common/strings.hpp"
#include "crypto/address.hpp"
#include "crypto/envelope.hpp"
#include "runtime/runc/image/oci_layout.hpp"

namespace mercato::bundle {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::string_view kHeaderEntry = "bundle.json";
constexpr std::string_view kImagePrefix = "images/";
constexpr std::string_view kImageSuffix = ".tar";
constexpr size_t kCopyChunk = 1 << 20;

struct ArchiveWriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

bool isLowerHex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// ---- writing ------------------------------------------------------------------------------

// Collects the archive in memory and reports progress.
struct Sink {
  std::string out;
  std::function<void(uint64_t)> progress;
  bool tooLarge = false;
};

la_ssize_t sinkWrite(archive*, void* ctx, const void* buf, size_t n) {
  auto* s = static_cast<Sink*>(ctx);
  if (s->out.size() + n > kMaxPlainBundleBytes) {
    s->tooLarge = true;
    return -1;
  }
  s->out.append(static_cast<const char*>(buf), n);
  if (s->progress) s->progress(s->out.size());
  return static_cast<la_ssize_t>(n);
}

class TarWriter {
 public:
  Status open(Sink* sink) {
    a_.reset(archive_write_new());
    if (!a_) return internalError("bundle: cannot allocate a tar writer");
    if (archive_write_set_format_ustar(a_.get()) != ARCHIVE_OK ||
        archive_write_open(a_.get(), sink, nullptr, sinkWrite, nullptr) != ARCHIVE_OK)
      return error("cannot start the tar archive");
    sink_ = sink;
    return Status::ok();
  }

  Status beginEntry(const std::string& name, uint64_t size) {
    if (size >= kMaxPlainBundleBytes)
      return tooLarge("bundle: " + name + " is " + std::to_string(size) +
                      " bytes; a bundle holds "
                      "at most " +
                      std::to_string(kMaxPlainBundleBytes) + " (use a registry image: instead)");
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    archive_entry_set_mtime(e.get(), 0, 0);
    if (archive_write_header(a_.get(), e.get()) != ARCHIVE_OK)
      return error("cannot write the header of " + name);
    return Status::ok();
  }

  Status data(const char* p, size_t n) {
    if (archive_write_data(a_.get(), p, n) != static_cast<la_ssize_t>(n))
      return error("cannot write tar data");
    return Status::ok();
  }

  Status addBytes(const std::string& name, std::string_view bytes) {
    RETURN_IF_ERROR(beginEntry(name, bytes.size()));
    return data(bytes.data(), bytes.size());
  }

  // Streams a file from disk, refusing it if it changes size underneath us.
  Status addFile(const std::string& name, const std::string& path) {
    std::error_code ec;
    uint64_t size = fs::file_size(path, ec);
    if (ec) return internalError("bundle: cannot stat " + path + ": " + ec.message());
    std::ifstream in(path, std::ios::binary);
    if (!in) return internalError("bundle: cannot open " + path);
    RETURN_IF_ERROR(beginEntry(name, size));
    std::vector<char> buf(kCopyChunk);
    uint64_t done = 0;
    while (done < size) {
      in.read(buf.data(),
              static_cast<std::streamsize>(std::min<uint64_t>(buf.size(), size - done)));
      std::streamsize n = in.gcount();
      if (n <= 0) return internalError("bundle: " + path + " shrank while being read");
      RETURN_IF_ERROR(data(buf.data(), static_cast<size_t>(n)));
      done += static_cast<uint64_t>(n);
    }
    return Status::ok();
  }

  Status close() {
    if (archive_write_close(a_.get()) != ARCHIVE_OK) return error("cannot finish the tar archive");
    return Status::ok();
  }

 private:
  Status error(const std::string& what) {
    if (sink_ && sink_->tooLarge)
      return tooLarge("bundle: larger than " + std::to_string(kMaxPlainBundleBytes) +
                      " bytes (use a registry image: for large images)");
    const char* detail = a_ ? archive_error_string(a_.get()) : nullptr;
    return internalError("bundle: " + what + (detail ? std::string(": ") + detail : ""));
  }

  std::unique_ptr<archive, ArchiveWriteDeleter> a_;
  Sink* sink_ = nullptr;
};

// A temporary file removed when it goes out of scope.
struct TempFile {
  std::string path;
  ~TempFile() {
    if (!path.empty()) {
      std::error_code ec;
      fs::remove(path, ec);
    }
  }
};

// A publisher-side sanity check, so a wrong file fails before the upload rather than at the
// provider's import: the tarball must hold an OCI layout's oci-layout and index.json.
Status checkLayoutTarball(const std::string& component, const std::string& path) {
  std::unique_ptr<archive, ArchiveReadDeleter> a(archive_read_new());
  if (!a) return internalError("bundle: cannot allocate a tar reader");
  archive_read_support_format_tar(a.get());
  const std::string what = "bundle: component '" + component + "': " + path;
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK)
    return invalidArgument(what + " is not a tar archive (expected an OCI image layout tarball)");
  bool layoutFile = false, index = false;
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
      return invalidArgument(what + " is not a readable tar archive");
    std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    if (name.rfind("./", 0) == 0) name.erase(0, 2);
    layoutFile = layoutFile || name == "oci-layout";
    index = index || name == "index.json";
    archive_read_data_skip(a.get());
  }
  if (!layoutFile || !index)
    return invalidArgument(what +
                           " is not an OCI image layout tarball (it has no oci-layout or "
                           "index.json; e.g. skopeo copy docker://IMAGE oci-archive:image.tar)");
  return Status::ok();
}

// ---- reading ------------------------------------------------------------------------------

Status malformed(const std::string& msg) { return invalidArgument("bundle: " + msg); }

// Entry names: exactly "bundle.json" or "images/<component>.tar"; anything that could escape
// the image dir is called out as traversal.
bool looksLikeTraversal(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.find('\\') != std::string_view::npos) return true;
  for (const auto& part : split(name, '/'))
    if (part == "..") return true;
  return false;
}

Result<std::string> jsonString(const json& j, const char* key, bool allowEmpty = false) {
  auto it = j.find(key);
  if (it == j.end()) return invalidArgument(std::string("bundle.json: ") + key + ": missing");
  if (!it->is_string())
    return invalidArgument(std::string("bundle.json: ") + key + ": expected a string");
  std::string s = it->get<std::string>();
  if (s.empty() && !allowEmpty)
    return invalidArgument(std::string("bundle.json: ") + key + ": is empty");
  return s;
}

// Removes written images unless released (on success).
struct ImageCleanup {
  std::vector<std::string> paths;
  bool keep = false;
  ~ImageCleanup() {
    if (keep) return;
    std::error_code ec;
    for (const auto& p : paths) fs::remove(p, ec);
  }
};

Result<OpenedBundle> parsePlain(std::string_view tarBytes, const std::string& imageDir,
                                uint64_t maxImageBytes,
                                const std::optional<std::string>& expectedPublisher) {
  std::unique_ptr<archive, ArchiveReadDeleter> a(archive_read_new());
  if (!a) return internalError("bundle: cannot allocate a tar reader");
  archive_read_support_format_tar(a.get());
  if (archive_read_open_memory(a.get(), tarBytes.data(), tarBytes.size()) != ARCHIVE_OK)
    return malformed(std::string("not a tar archive: ") +
                     (archive_error_string(a.get()) ? archive_error_string(a.get()) : "unknown"));

  OpenedBundle out;
  bool haveHeader = false;
  std::set<std::string> seen;
  ImageCleanup cleanup;
  std::vector<std::pair<std::string, std::string>> renames;  // partial -> final
  std::vector<char> buf(kCopyChunk);

  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
      return malformed(std::string("corrupt tar archive: ") +
                       (archive_error_string(a.get()) ? archive_error_string(a.get()) : "unknown"));
    const char* rawName = archive_entry_pathname(e);
    if (!rawName) return malformed("a tar entry has no name");
    const std::string name(rawName);
    if (looksLikeTraversal(name))
      return malformed("entry '" + name + "' is a path traversal (absolute, '..' or '\\')");
    if (!seen.insert(name).second) return malformed("duplicate entry '" + name + "'");
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) != nullptr ||
        archive_entry_symlink(e) != nullptr)
      return malformed("entry '" + name + "' is not a regular file");
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
      return malformed("entry '" + name + "' has no size");
    const uint64_t size = static_cast<uint64_t>(archive_entry_size(e));

    if (name == kHeaderEntry) {
      if (size > kMaxBundleJsonBytes)
        return malformed("bundle.json is " + std::to_string(size) + " bytes; at most " +
                         std::to_string(kMaxBundleJsonBytes) + " are allowed");
      std::string text(size, '\0');
      la_ssize_t n = archive_read_data(a.get(), text.data(), text.size());
      if (n < 0 || static_cast<uint64_t>(n) != size) return malformed("bundle.json is truncated");
      json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) return malformed("bundle.json is not valid JSON");
      ASSIGN_OR_RETURN(out.header, headerFromJson(j));
      if (expectedPublisher && *expectedPublisher != out.header.publisher)
        return permissionDenied("bundle: signed by " + *expectedPublisher +
                                " but bundle.json.publisher is " + out.header.publisher);
      haveHeader = true;
      continue;
    }
    if (!haveHeader) {
      if (name.rfind(kImagePrefix, 0) == 0)
        return malformed("entry '" + name + "' comes before bundle.json (it must be first)");
      return malformed("unknown entry '" + name +
                       "' (a bundle holds bundle.json and images/<component>.tar)");
    }
    if (name.size() <= kImagePrefix.size() + kImageSuffix.size() ||
        name.rfind(kImagePrefix, 0) != 0 ||
        name.compare(name.size() - kImageSuffix.size(), kImageSuffix.size(), kImageSuffix) != 0)
      return malformed("unknown entry '" + name +
                       "' (a bundle holds bundle.json and images/<component>.tar)");
    const std::string component =
        name.substr(kImagePrefix.size(), name.size() - kImagePrefix.size() - kImageSuffix.size());
    const manifest::Component* comp = nullptr;
    for (const auto& c : out.header.manifest.components)
      if (c.name == component) comp = &c;
    if (!comp)
      return malformed("entry '" + name + "': the manifest has no component '" + component + "'");
    if (!comp->bundled())
      return malformed("entry '" + name + "': component '" + component + "' uses image " +
                       comp->image + ", not a bundled image");
    if (size > maxImageBytes)
      return tooLarge("bundle: image of component '" + component + "' is " + std::to_string(size) +
                      " bytes; this provider accepts at most " + std::to_string(maxImageBytes));

    std::error_code ec;
    fs::create_directories(imageDir, ec);
    if (ec) return internalError("bundle: cannot create " + imageDir + ": " + ec.message());
    const std::string finalPath = (fs::path(imageDir) / (component + ".tar")).string();
    const std::string partial = finalPath + ".partial";
    cleanup.paths.push_back(partial);
    {
      std::ofstream f(partial, std::ios::binary | std::ios::trunc);
      if (!f) return internalError("bundle: cannot write " + partial);
      uint64_t done = 0;
      for (;;) {
        la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
        if (n < 0) return malformed("image of component '" + component + "' is truncated");
        if (n == 0) break;
        done += static_cast<uint64_t>(n);
        if (done > maxImageBytes || done > size)
          return tooLarge("bundle: image of component '" + component + "' exceeds " +
                          std::to_string(std::min<uint64_t>(maxImageBytes, size)) + " bytes");
        f.write(buf.data(), n);
        if (!f) return internalError("bundle: cannot write " + partial);
      }
      if (done != size) return malformed("image of component '" + component + "' is truncated");
      f.close();
      if (!f) return internalError("bundle: cannot write " + partial);
    }
    renames.emplace_back(partial, finalPath);
    out.imagePaths[component] = finalPath;
  }
  if (!haveHeader) return malformed("bundle.json is missing");
  for (const auto& c : out.header.manifest.components)
    if (c.bundled() && !out.imagePaths.count(c.name))
      return malformed("component '" + c.name + "' is bundled but images/" + c.name +
                       ".tar is missing");
  for (const auto& [from, to] : renames) {
    std::error_code ec;
    fs::rename(from, to, ec);
    if (ec) {
      for (const auto& [f2, t2] : renames) cleanup.paths.push_back(t2);
      return internalError("bundle: cannot move " + from + " to " + to + ": " + ec.message());
    }
    cleanup.paths.push_back(to);  // removed if a later rename fails
  }
  cleanup.keep = true;
  return out;
}

}  // namespace

json headerToJson(const BundleHeader& h) {
  return {{"version", h.version},        {"manifest", manifest::toJson(h.manifest)},
          {"escrowId", h.escrowId},      {"publisher", h.publisher},
          {"provider", h.provider},      {"nonce", h.nonce},
          {"createdAtMs", h.createdAtMs}};
}

Result<BundleHeader> headerFromJson(const json& j) {
  static const std::set<std::string> kKeys = {"version",  "manifest", "escrowId",   "publisher",
                                              "provider", "nonce",    "createdAtMs"};
  if (!j.is_object())
    return invalidArgument(
        "bundle.json: expected an object with version, manifest, escrowId, "
        "publisher, provider, nonce, createdAtMs");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!kKeys.count(it.key()))
      return invalidArgument("bundle.json: " + it.key() +
                             ": unknown key (allowed: version, manifest, escrowId, publisher, "
                             "provider, nonce, createdAtMs)");
  BundleHeader h;
  auto v = j.find("version");
  if (v == j.end()) return invalidArgument("bundle.json: version: missing");
  if (!v->is_number_integer()) return invalidArgument("bundle.json: version: expected an integer");
  if (*v != kBundleVersion)
    return invalidArgument("bundle.json: version: " + v->dump() +
                           " is not supported (this build reads version " +
                           std::to_string(kBundleVersion) + ")");
  auto m = j.find("manifest");
  if (m == j.end()) return invalidArgument("bundle.json: manifest: missing");
  auto parsed = manifest::manifestFromJson(*m);
  if (!parsed.isOk()) return parsed.status().withContext("bundle.json: manifest");
  h.manifest = std::move(parsed).value();
  ASSIGN_OR_RETURN(h.escrowId, jsonString(j, "escrowId"));
  if (h.escrowId.size() > 128) return invalidArgument("bundle.json: escrowId: longer than 128");
  ASSIGN_OR_RETURN(h.publisher, jsonString(j, "publisher"));
  if (Status st = crypto::validateAddress(h.publisher); !st.isOk())
    return invalidArgument("bundle.json: publisher: " + st.message());
  ASSIGN_OR_RETURN(h.provider, jsonString(j, "provider"));
  if (Status st = crypto::validateAddress(h.provider); !st.isOk())
    return invalidArgument("bundle.json: provider: " + st.message());
  ASSIGN_OR_RETURN(h.nonce, jsonString(j, "nonce"));
  if (h.nonce.size() != 32 || !isLowerHex(h.nonce))
    return invalidArgument("bundle.json: nonce: expected 32 lowercase hex characters");
  auto t = j.find("createdAtMs");
  if (t == j.end()) return invalidArgument("bundle.json: createdAtMs: missing");
  if (!t->is_number_integer() || (t->is_number_unsigned() && t->get<uint64_t>() > INT64_MAX) ||
      t->get<int64_t>() < 0)
    return invalidArgument("bundle.json: createdAtMs: expected a non-negative integer");
  h.createdAtMs = t->get<int64_t>();
  return h;
}

Result<std::string> buildSealedBundle(const crypto::Identity& publisher,
                                      const crypto::PublicKey& providerNodeKey, BundleHeader header,
                                      std::function<void(uint64_t)> progress) {
  crypto::initCrypto();
  const std::string self = publisher.address();
  if (header.publisher.empty()) header.publisher = self;
  if (header.publisher != self)
    return invalidArgument("bundle: header.publisher " + header.publisher +
                           " is not the signing identity's address " + self);
  if (header.nonce.empty()) {
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    header.nonce = toHex(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
  }
  if (Status st = manifest::validateManifest(header.manifest); !st.isOk())
    return st.withContext("bundle: manifest");
  // The same checks the provider will make, so a publisher finds out before uploading.
  json hj = headerToJson(header);
  if (auto check = headerFromJson(hj); !check.isOk()) return check.status();
  const std::string headerText = hj.dump();

  // Resolve every bundled image before writing anything.
  std::vector<std::pair<std::string, std::string>> images;  // component -> file to stream
  std::vector<std::unique_ptr<TempFile>> temps;
  std::vector<const manifest::Component*> bundled;
  for (const auto& c : header.manifest.components)
    if (c.bundled()) bundled.push_back(&c);
  std::sort(bundled.begin(), bundled.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (const auto* c : bundled) {
    std::error_code ec;
    auto st = fs::status(c->bundlePath, ec);
    if (ec || !fs::exists(st))
      return notFound("bundle: component '" + c->name + "': bundle path " + c->bundlePath +
                      " does not exist (expected an OCI layout directory or its .tar)");
    if (fs::is_directory(st)) {
      auto tmp = std::make_unique<TempFile>();
      tmp->path = (fs::temp_directory_path() / ("mercato-bundle-" + std::to_string(getpid()) + "-" +
                                                header.nonce + "-" + c->name + ".tar"))
                      .string();
      if (Status w = runtime::image::writeLayoutTarball(c->bundlePath, tmp->path); !w.isOk())
        return w.withContext("bundle: component '" + c->name + "'");
      images.emplace_back(c->name, tmp->path);
      temps.push_back(std::move(tmp));
    } else if (fs::is_regular_file(st)) {
      RETURN_IF_ERROR(checkLayoutTarball(c->name, c->bundlePath));
      images.emplace_back(c->name, c->bundlePath);
    } else {
      return invalidArgument("bundle: component '" + c->name + "': " + c->bundlePath +
                             " is neither a directory nor a regular file");
    }
  }

  Sink sink;
  sink.progress = std::move(progress);
  TarWriter tar;
  RETURN_IF_ERROR(tar.open(&sink));
  RETURN_IF_ERROR(tar.addBytes(std::string(kHeaderEntry), headerText));
  for (const auto& [component, path] : images)
    RETURN_IF_ERROR(tar.addFile(std::string(kImagePrefix) + component + ".tar", path));
  RETURN_IF_ERROR(tar.close());
  temps.clear();

  return crypto::sealEnvelope(publisher, providerNodeKey, sink.out);
}

Result<OpenedBundle> parsePlainBundle(std::string_view tarBytes, const std::string& imageDir,
                                      uint64_t maxImageBytes) {
  return parsePlain(tarBytes, imageDir, maxImageBytes, std::nullopt);
}

Result<OpenedBundle> openSealedBundle(const crypto::Identity& provider, std::string_view sealed,
                                      const std::string& imageDir, uint64_t maxImageBytes) {
  auto opened = crypto::openEnvelope(provider, sealed);
  if (!opened.isOk()) return opened.status().withContext("bundle");
  const std::string signer = crypto::addressFromPublicKey(opened->sender);
  ASSIGN_OR_RETURN(OpenedBundle out, parsePlain(opened->payload, imageDir, maxImageBytes, signer));
  out.sender = opened->sender;
  return out;
}

}  // namespace mercato::bundle
