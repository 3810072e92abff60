#include "runtime/runc/image/oci_layout.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "runtime/runc/image/digest.hpp"

namespace mercato::runtime::image {
namespace fs = std::filesystem;
namespace {

struct ArchiveWriter {
  archive* a = archive_write_new();
  ~ArchiveWriter() {
    if (a) archive_write_free(a);
  }
  std::string error() const {
    const char* e = archive_error_string(a);
    return e ? e : "unknown libarchive error";
  }
};

Status copyFileInto(archive* a, const std::string& path, const std::string& what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return internalError(what + ": cannot open " + path + ": " + std::strerror(errno));
  std::vector<char> buf(1 << 20);
  Status st;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = internalError(what + ": cannot read " + path + ": " + std::strerror(errno));
      break;
    }
    if (n == 0) break;
    if (archive_write_data(a, buf.data(), static_cast<size_t>(n)) < 0) {
      const char* e = archive_error_string(a);
      st = internalError(what + ": cannot write archive data: " + (e ? e : "?"));
      break;
    }
  }
  ::close(fd);
  return st;
}

// Writes `root`'s tree (sorted, paths relative, no leading "./") as a pax tar into `a`.
Status writeTree(archive* a, const std::string& root, bool keepOwnership, int64_t mtime,
                 const std::string& what) {
  std::vector<fs::path> paths;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec))
    paths.push_back(it->path());
  if (ec) return internalError(what + ": cannot walk " + root + ": " + ec.message());
  std::sort(paths.begin(), paths.end());
  std::map<std::pair<dev_t, ino_t>, std::string> seen;
  for (const auto& p : paths) {
    std::string rel = p.lexically_relative(root).generic_string();
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0)
      return internalError(what + ": cannot stat " + p.string() + ": " + std::strerror(errno));
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, rel.c_str());
    archive_entry_set_perm(e, st.st_mode & 07777);
    archive_entry_set_uid(e, keepOwnership ? st.st_uid : 0);
    archive_entry_set_gid(e, keepOwnership ? st.st_gid : 0);
    archive_entry_set_mtime(e, mtime, 0);
    bool data = false;
    if (S_ISDIR(st.st_mode)) {
      archive_entry_set_filetype(e, AE_IFDIR);
    } else if (S_ISLNK(st.st_mode)) {
      archive_entry_set_filetype(e, AE_IFLNK);
      std::string target(4096, '\0');
      ssize_t n = ::readlink(p.c_str(), target.data(), target.size());
      if (n < 0) {
        archive_entry_free(e);
        return internalError(what + ": readlink " + p.string() + ": " + std::strerror(errno));
      }
      target.resize(static_cast<size_t>(n));
      archive_entry_set_symlink(e, target.c_str());
    } else if (S_ISREG(st.st_mode)) {
      archive_entry_set_filetype(e, AE_IFREG);
      auto key = std::make_pair(st.st_dev, st.st_ino);
      if (st.st_nlink > 1 && seen.count(key)) {
        archive_entry_set_hardlink(e, seen[key].c_str());
        archive_entry_set_size(e, 0);
      } else {
        if (st.st_nlink > 1) seen[key] = rel;
        archive_entry_set_size(e, st.st_size);
        data = true;
      }
    } else if (S_ISFIFO(st.st_mode)) {
      archive_entry_set_filetype(e, AE_IFIFO);
    } else {
      archive_entry_free(e);
      return invalidArgument(what + ": " + p.string() +
                             " is a device node or socket; images may not contain those");
    }
    int r = archive_write_header(a, e);
    archive_entry_free(e);
    if (r < ARCHIVE_WARN) {
      const char* err = archive_error_string(a);
      return internalError(what + ": cannot write tar header for " + rel + ": " +
                           (err ? err : "?"));
    }
    if (data) RETURN_IF_ERROR(copyFileInto(a, p.string(), what));
  }
  return Status::ok();
}

Status writeFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return internalError("cannot write " + path);
  return Status::ok();
}

Result<std::string> readFile(const std::string& path, uint64_t maxBytes) {
  std::error_code ec;
  auto n = fs::file_size(path, ec);
  if (ec) return notFound("cannot read " + path + ": " + ec.message());
  if (n > maxBytes)
    return tooLarge(path + " is larger than " + std::to_string(maxBytes) + " bytes");
  std::ifstream in(path, std::ios::binary);
  std::string s(n, '\0');
  in.read(s.data(), static_cast<std::streamsize>(n));
  if (!in) return internalError("cannot read " + path);
  return s;
}

// Moves `file` to layoutDir/blobs/sha256/<hex of its digest>; returns the descriptor.
Result<Descriptor> storeBlob(const std::string& layoutDir, const std::string& file,
                             std::string mediaType) {
  ASSIGN_OR_RETURN(FileDigest d, sha256File(file));
  std::string dest = layoutDir + "/blobs/sha256/" + digestHex(d.digest);
  std::error_code ec;
  fs::rename(file, dest, ec);
  if (ec) return internalError("cannot move " + file + " to " + dest + ": " + ec.message());
  Descriptor out;
  out.mediaType = std::move(mediaType);
  out.digest = d.digest;
  out.size = d.size;
  return out;
}

Result<Descriptor> storeBytes(const std::string& layoutDir, std::string_view bytes,
                              std::string mediaType) {
  std::string tmp = layoutDir + "/blobs/.tmp-bytes";
  RETURN_IF_ERROR(writeFile(tmp, bytes));
  return storeBlob(layoutDir, tmp, std::move(mediaType));
}

}  // namespace

std::string BuiltImage::blobPath(const std::string& digest) const {
  return layoutDir + "/blobs/sha256/" + digestHex(digest);
}

Result<BuiltImage> buildImage(const std::string& sourceDir, const std::string& layoutDir,
                              const BuildOptions& options) {
  std::string what = "building an image from " + sourceDir;
  std::error_code ec;
  if (!fs::is_directory(sourceDir, ec)) return notFound(what + ": not a directory");
  fs::create_directories(layoutDir + "/blobs/sha256", ec);
  if (ec) return internalError(what + ": cannot create " + layoutDir + ": " + ec.message());
  BuiltImage img;
  img.layoutDir = layoutDir;

  // 1. The uncompressed tar, whose sha256 is the layer's diff_id.
  std::string tarPath = layoutDir + "/blobs/.tmp-layer.tar";
  {
    ArchiveWriter w;
    archive_write_set_format_pax_restricted(w.a);
    if (archive_write_open_filename(w.a, tarPath.c_str()) != ARCHIVE_OK)
      return internalError(what + ": cannot create " + tarPath + ": " + w.error());
    Status st = writeTree(w.a, sourceDir, options.keepOwnership, options.mtime, what);
    if (archive_write_close(w.a) != ARCHIVE_OK && st.isOk())
      st = internalError(what + ": cannot finish " + tarPath + ": " + w.error());
    if (!st.isOk()) {
      fs::remove(tarPath, ec);
      return st;
    }
  }
  auto diffId = sha256File(tarPath);
  if (!diffId.isOk()) return diffId.status();
  // 2. gzip it (libarchive's raw format + gzip filter; no timestamp in the gzip header).
  std::string gzPath = layoutDir + "/blobs/.tmp-layer.tar.gz";
  {
    ArchiveWriter w;
    archive_write_set_format_raw(w.a);
    archive_write_add_filter_gzip(w.a);
    archive_write_set_filter_option(w.a, "gzip", "timestamp", nullptr);
    if (archive_write_open_filename(w.a, gzPath.c_str()) != ARCHIVE_OK)
      return internalError(what + ": cannot create " + gzPath + ": " + w.error());
    archive_entry* e = archive_entry_new();
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_pathname(e, "layer.tar");
    archive_entry_set_size(e, static_cast<la_int64_t>(diffId->size));
    int r = archive_write_header(w.a, e);
    archive_entry_free(e);
    Status st = r < ARCHIVE_WARN ? internalError(what + ": gzip: " + w.error())
                                 : copyFileInto(w.a, tarPath, what);
    if (archive_write_close(w.a) != ARCHIVE_OK && st.isOk())
      st = internalError(what + ": cannot finish " + gzPath + ": " + w.error());
    fs::remove(tarPath, ec);
    if (!st.isOk()) {
      fs::remove(gzPath, ec);
      return st;
    }
  }
  ASSIGN_OR_RETURN(Descriptor layer, storeBlob(layoutDir, gzPath, std::string(kOciLayerGzip)));
  img.layers.push_back(layer);

  ImageConfig config = options.config;
  if (config.os.empty()) config.os = "linux";
  if (config.architecture.empty()) config.architecture = "amd64";
  config.diffIds = {diffId->digest};
  ASSIGN_OR_RETURN(img.config,
                   storeBytes(layoutDir, serializeImageConfig(config), std::string(kOciConfig)));
  Manifest m;
  m.mediaType = std::string(kOciManifest);
  m.config = img.config;
  m.layers = img.layers;
  ASSIGN_OR_RETURN(img.manifest,
                   storeBytes(layoutDir, serializeManifest(m), std::string(kOciManifest)));

  nlohmann::json entry = {{"mediaType", img.manifest.mediaType},
                          {"digest", img.manifest.digest},
                          {"size", img.manifest.size},
                          {"platform", {{"os", config.os}, {"architecture", config.architecture}}}};
  if (!options.refName.empty())
    entry["annotations"] = {{std::string(kRefNameAnnotation), options.refName}};
  nlohmann::json index = {{"schemaVersion", 2},
                          {"mediaType", std::string(kOciIndex)},
                          {"manifests", nlohmann::json::array({entry})}};
  RETURN_IF_ERROR(writeFile(layoutDir + "/index.json", index.dump()));
  RETURN_IF_ERROR(writeFile(layoutDir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  img.manifest.annotations =
      entry.contains("annotations")
          ? std::map<std::string, std::string>{{std::string(kRefNameAnnotation), options.refName}}
          : std::map<std::string, std::string>{};
  return img;
}

Status writeLayoutTarball(const std::string& layoutDir, const std::string& tarPath) {
  ArchiveWriter w;
  archive_write_set_format_pax_restricted(w.a);
  if (archive_write_open_filename(w.a, tarPath.c_str()) != ARCHIVE_OK)
    return internalError("cannot create " + tarPath + ": " + w.error());
  Status st = writeTree(w.a, layoutDir, false, 0, "writing layout tarball " + tarPath);
  if (archive_write_close(w.a) != ARCHIVE_OK && st.isOk())
    st = internalError("cannot finish " + tarPath + ": " + w.error());
  if (!st.isOk()) {
    std::error_code ec;
    fs::remove(tarPath, ec);
  }
  return st;
}

Result<std::string> pushLayout(const BuiltImage& image, RegistryClient& client,
                               const Reference& target) {
  for (const auto& l : image.layers)
    RETURN_IF_ERROR(client.pushBlob(target, l.digest, image.blobPath(l.digest)));
  RETURN_IF_ERROR(
      client.pushBlob(target, image.config.digest, image.blobPath(image.config.digest)));
  ASSIGN_OR_RETURN(std::string bytes,
                   readFile(image.blobPath(image.manifest.digest), kMaxManifestBytes));
  return client.pushManifest(target, target.tag, image.manifest.mediaType, bytes);
}

Result<Descriptor> resolveLayoutManifest(const std::string& layoutDir, const std::string& refName,
                                         const Platform& platform) {
  std::string what = "OCI layout " + layoutDir;
  auto marker = readFile(layoutDir + "/oci-layout", 4096);
  if (!marker.isOk()) return invalidArgument(what + ": no oci-layout file (not an OCI layout)");
  nlohmann::json m = nlohmann::json::parse(*marker, nullptr, false);
  if (!m.is_object() || !m.contains("imageLayoutVersion") || !m["imageLayoutVersion"].is_string())
    return invalidArgument(what + ": oci-layout has no imageLayoutVersion");
  auto indexBytes = readFile(layoutDir + "/index.json", kMaxManifestBytes);
  if (!indexBytes.isOk()) return invalidArgument(what + ": no readable index.json");
  auto index = parseIndex(*indexBytes);
  if (!index.isOk()) return index.status().withContext(what + ": index.json");
  if (index->manifests.empty()) return notFound(what + ": index.json lists no images");

  const Descriptor* chosen = nullptr;
  if (!refName.empty()) {
    std::string tag;
    if (auto ref = parseReference(refName); ref.isOk()) tag = ref->tag;
    std::string names;
    for (const auto& d : index->manifests) {
      auto it = d.annotations.find(std::string(kRefNameAnnotation));
      if (it == d.annotations.end()) continue;
      if (it->second == refName || (!tag.empty() && it->second == tag)) {
        chosen = &d;
        break;
      }
      names += (names.empty() ? "" : ", ") + it->second;
    }
    if (!chosen && index->manifests.size() == 1 && names.empty()) chosen = &index->manifests[0];
    if (!chosen)
      return notFound(what + ": no image named \"" + refName +
                      "\" (names: " + (names.empty() ? "none" : names) + ")");
  } else if (index->manifests.size() == 1) {
    chosen = &index->manifests[0];
  } else {
    ASSIGN_OR_RETURN(Descriptor d, selectPlatform(*index, platform));
    for (const auto& x : index->manifests)
      if (x.digest == d.digest) chosen = &x;
  }
  Descriptor out = *chosen;
  if (isIndexMediaType(out.mediaType)) {
    ASSIGN_OR_RETURN(
        std::string bytes,
        readFile(layoutDir + "/blobs/sha256/" + digestHex(out.digest), kMaxManifestBytes));
    if (sha256Digest(bytes) != out.digest)
      return invalidArgument(what + ": nested index " + out.digest + " does not match its digest");
    ASSIGN_OR_RETURN(Index nested, parseIndex(bytes));
    ASSIGN_OR_RETURN(out, selectPlatform(nested, platform));
  }
  if (!out.mediaType.empty() && !isManifestMediaType(out.mediaType))
    return invalidArgument(what + ": entry " + out.digest + " has media type " + out.mediaType +
                           ", not an image manifest");
  return out;
}

}  // namespace mercato::runtime::image
