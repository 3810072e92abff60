#include "runtime/runc/image/manifest.hpp"

#include <nlohmann/json.hpp>

#include "runtime/runc/image/digest.hpp"

namespace mercato::runtime::image {
namespace {

using nlohmann::json;

Result<json> parseJson(std::string_view bytes, std::string_view what) {
  if (bytes.size() > kMaxManifestBytes)
    return tooLarge(std::string(what) + " is " + std::to_string(bytes.size()) +
                    " bytes, more than the " + std::to_string(kMaxManifestBytes) + " accepted");
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalidArgument(std::string(what) + " is not valid JSON");
  if (!j.is_object()) return invalidArgument(std::string(what) + " is not a JSON object");
  return j;
}

Result<std::string> getString(const json& obj, const char* key, const std::string& path,
                              bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return invalidArgument(path + "." + key + ": missing");
    return std::string();
  }
  if (!it->is_string()) return invalidArgument(path + "." + key + ": expected a string");
  return it->get<std::string>();
}

Result<std::vector<std::string>> getStringArray(const json& obj, const char* key,
                                                const std::string& path) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return invalidArgument(path + "." + key + ": expected an array of strings");
  for (size_t i = 0; i < it->size(); ++i) {
    if (!(*it)[i].is_string())
      return invalidArgument(path + "." + key + "[" + std::to_string(i) + "]: expected a string");
    out.push_back((*it)[i].get<std::string>());
  }
  return out;
}

Result<Descriptor> parseDescriptor(const json& j, const std::string& path) {
  if (!j.is_object()) return invalidArgument(path + ": expected an object");
  Descriptor d;
  ASSIGN_OR_RETURN(d.mediaType, getString(j, "mediaType", path, false));
  ASSIGN_OR_RETURN(d.digest, getString(j, "digest", path, true));
  RETURN_IF_ERROR(validateDigest(d.digest, path + ".digest"));
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() ||
      (size->is_number_integer() && !size->is_number_unsigned() && size->get<int64_t>() < 0))
    return invalidArgument(path + ".size: expected a non-negative integer");
  d.size = size->get<uint64_t>();
  if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
    d.hasPlatform = true;
    ASSIGN_OR_RETURN(d.platform.os, getString(*p, "os", path + ".platform", true));
    ASSIGN_OR_RETURN(d.platform.architecture,
                     getString(*p, "architecture", path + ".platform", true));
    ASSIGN_OR_RETURN(d.platform.variant, getString(*p, "variant", path + ".platform", false));
  }
  if (auto a = j.find("annotations"); a != j.end() && a->is_object()) {
    for (auto& [k, v] : a->items())
      if (v.is_string()) d.annotations[k] = v.get<std::string>();
  }
  return d;
}

Status checkSchemaVersion(const json& j, std::string_view what) {
  auto it = j.find("schemaVersion");
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() != 2)
    return invalidArgument(std::string(what) +
                           ".schemaVersion: expected 2 (schema 1 manifests are not supported)");
  return Status::ok();
}

bool isKnownLayer(std::string_view mt) {
  return mt == kOciLayerTar || mt == kOciLayerGzip || mt == kDockerLayerGzip ||
         mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" ||
         mt == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}

}  // namespace

std::string Platform::toString() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

bool isIndexMediaType(std::string_view mt) { return mt == kOciIndex || mt == kDockerManifestList; }
bool isManifestMediaType(std::string_view mt) {
  return mt == kOciManifest || mt == kDockerManifest;
}

std::string detectManifestMediaType(std::string_view contentType, std::string_view bytes) {
  std::string ct(contentType.substr(0, contentType.find(';')));
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  if (isIndexMediaType(ct) || isManifestMediaType(ct)) return ct;
  json j = json::parse(bytes, nullptr, false);
  if (!j.is_object()) return ct;
  if (auto it = j.find("mediaType"); it != j.end() && it->is_string()) {
    auto mt = it->get<std::string>();
    if (isIndexMediaType(mt) || isManifestMediaType(mt)) return mt;
  }
  if (j.contains("manifests")) return std::string(kOciIndex);
  if (j.contains("layers")) return std::string(kOciManifest);
  return ct;
}

Result<Manifest> parseManifest(std::string_view bytes) {
  ASSIGN_OR_RETURN(json j, parseJson(bytes, "manifest"));
  RETURN_IF_ERROR(checkSchemaVersion(j, "manifest"));
  Manifest m;
  ASSIGN_OR_RETURN(m.mediaType, getString(j, "mediaType", "manifest", false));
  if (m.mediaType.empty()) m.mediaType = std::string(kOciManifest);
  if (!isManifestMediaType(m.mediaType))
    return invalidArgument("manifest.mediaType: \"" + m.mediaType +
                           "\" is not an image manifest (expected " + std::string(kOciManifest) +
                           " or " + std::string(kDockerManifest) + ")");
  auto cfg = j.find("config");
  if (cfg == j.end()) return invalidArgument("manifest.config: missing");
  ASSIGN_OR_RETURN(m.config, parseDescriptor(*cfg, "manifest.config"));
  if (m.config.size > kMaxManifestBytes)
    return tooLarge("manifest.config.size: " + std::to_string(m.config.size) +
                    " bytes is more than the " + std::to_string(kMaxManifestBytes) + " accepted");
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array())
    return invalidArgument("manifest.layers: expected an array");
  if (layers->size() > 1000) return invalidArgument("manifest.layers: more than 1000 layers");
  for (size_t i = 0; i < layers->size(); ++i) {
    std::string path = "manifest.layers[" + std::to_string(i) + "]";
    ASSIGN_OR_RETURN(Descriptor d, parseDescriptor((*layers)[i], path));
    if (d.mediaType.empty()) d.mediaType = std::string(kOciLayerGzip);
    if (!isKnownLayer(d.mediaType))
      return unimplemented(path + ".mediaType: layer type \"" + d.mediaType +
                           "\" is not supported (tar and tar+gzip are)");
    m.layers.push_back(std::move(d));
  }
  return m;
}

Result<Index> parseIndex(std::string_view bytes) {
  ASSIGN_OR_RETURN(json j, parseJson(bytes, "index"));
  RETURN_IF_ERROR(checkSchemaVersion(j, "index"));
  Index idx;
  ASSIGN_OR_RETURN(idx.mediaType, getString(j, "mediaType", "index", false));
  if (idx.mediaType.empty()) idx.mediaType = std::string(kOciIndex);
  if (!isIndexMediaType(idx.mediaType))
    return invalidArgument("index.mediaType: \"" + idx.mediaType + "\" is not an image index");
  auto ms = j.find("manifests");
  if (ms == j.end() || !ms->is_array())
    return invalidArgument("index.manifests: expected an array");
  if (ms->size() > 10000) return invalidArgument("index.manifests: more than 10000 entries");
  for (size_t i = 0; i < ms->size(); ++i) {
    ASSIGN_OR_RETURN(Descriptor d,
                     parseDescriptor((*ms)[i], "index.manifests[" + std::to_string(i) + "]"));
    idx.manifests.push_back(std::move(d));
  }
  return idx;
}

Result<ImageConfig> parseImageConfig(std::string_view bytes) {
  ASSIGN_OR_RETURN(json j, parseJson(bytes, "image config"));
  ImageConfig c;
  ASSIGN_OR_RETURN(c.os, getString(j, "os", "config", false));
  ASSIGN_OR_RETURN(c.architecture, getString(j, "architecture", "config", false));
  ASSIGN_OR_RETURN(c.variant, getString(j, "variant", "config", false));
  if (auto cfg = j.find("config"); cfg != j.end() && !cfg->is_null()) {
    if (!cfg->is_object()) return invalidArgument("config.config: expected an object");
    ASSIGN_OR_RETURN(c.entrypoint, getStringArray(*cfg, "Entrypoint", "config.config"));
    ASSIGN_OR_RETURN(c.cmd, getStringArray(*cfg, "Cmd", "config.config"));
    ASSIGN_OR_RETURN(c.env, getStringArray(*cfg, "Env", "config.config"));
    ASSIGN_OR_RETURN(c.workingDir, getString(*cfg, "WorkingDir", "config.config", false));
    ASSIGN_OR_RETURN(c.user, getString(*cfg, "User", "config.config", false));
    if (auto ports = cfg->find("ExposedPorts"); ports != cfg->end() && ports->is_object()) {
      for (auto& [k, v] : ports->items()) {
        auto slash = k.find('/');
        std::string num = k.substr(0, slash);
        std::string proto = slash == std::string::npos ? "tcp" : k.substr(slash + 1);
        if (proto != "tcp") continue;
        if (num.empty() || num.size() > 5 || num.find_first_not_of("0123456789") != num.npos)
          return invalidArgument("config.config.ExposedPorts: \"" + k + "\" is not <port>/<proto>");
        unsigned long p = std::stoul(num);
        if (p == 0 || p > 65535)
          return invalidArgument("config.config.ExposedPorts: port " + num + " is out of range");
        c.exposedPorts.push_back(static_cast<uint16_t>(p));
      }
    }
  }
  if (auto rootfs = j.find("rootfs"); rootfs != j.end() && rootfs->is_object()) {
    ASSIGN_OR_RETURN(c.diffIds, getStringArray(*rootfs, "diff_ids", "config.rootfs"));
    for (size_t i = 0; i < c.diffIds.size(); ++i)
      RETURN_IF_ERROR(
          validateDigest(c.diffIds[i], "config.rootfs.diff_ids[" + std::to_string(i) + "]"));
  }
  return c;
}

Result<Descriptor> selectPlatform(const Index& index, const Platform& wanted) {
  const Descriptor* best = nullptr;
  int bestScore = -1;
  for (const auto& d : index.manifests) {
    if (!isManifestMediaType(d.mediaType) && !d.mediaType.empty()) continue;
    if (!d.hasPlatform) continue;
    const auto& p = d.platform;
    if (p.os != wanted.os || p.architecture != wanted.architecture) continue;
    int score;
    if (!wanted.variant.empty()) {
      bool armDefault =
          wanted.architecture == "arm64" && wanted.variant == "v8" && p.variant.empty();
      if (p.variant != wanted.variant && !armDefault) continue;
      score = 2;
    } else {
      score = p.variant.empty() ? 2 : (p.architecture == "arm64" && p.variant == "v8" ? 1 : 0);
    }
    if (score > bestScore) {
      best = &d;
      bestScore = score;
    }
  }
  if (best) return *best;
  std::string available;
  for (const auto& d : index.manifests) {
    if (!d.hasPlatform) continue;
    if (!available.empty()) available += ", ";
    available += d.platform.toString();
  }
  if (available.empty()) available = "none";
  return notFound("no image for platform " + wanted.toString() +
                  " in the index; available: " + available);
}

std::string serializeImageConfig(const ImageConfig& c) {
  json cfg = json::object();
  if (!c.entrypoint.empty()) cfg["Entrypoint"] = c.entrypoint;
  if (!c.cmd.empty()) cfg["Cmd"] = c.cmd;
  if (!c.env.empty()) cfg["Env"] = c.env;
  if (!c.workingDir.empty()) cfg["WorkingDir"] = c.workingDir;
  if (!c.user.empty()) cfg["User"] = c.user;
  if (!c.exposedPorts.empty()) {
    json ports = json::object();
    for (auto p : c.exposedPorts) ports[std::to_string(p) + "/tcp"] = json::object();
    cfg["ExposedPorts"] = ports;
  }
  json j = {{"architecture", c.architecture.empty() ? "amd64" : c.architecture},
            {"os", c.os.empty() ? "linux" : c.os},
            {"created", "1970-01-01T00:00:00Z"},
            {"config", cfg},
            {"rootfs", {{"type", "layers"}, {"diff_ids", c.diffIds}}}};
  if (!c.variant.empty()) j["variant"] = c.variant;
  return j.dump();
}

std::string serializeManifest(const Manifest& m) {
  auto desc = [](const Descriptor& d) {
    json j = {{"mediaType", d.mediaType}, {"digest", d.digest}, {"size", d.size}};
    if (!d.annotations.empty()) j["annotations"] = d.annotations;
    return j;
  };
  json layers = json::array();
  for (const auto& l : m.layers) layers.push_back(desc(l));
  json j = {{"schemaVersion", 2},
            {"mediaType", m.mediaType.empty() ? std::string(kOciManifest) : m.mediaType},
            {"config", desc(m.config)},
            {"layers", layers}};
  return j.dump();
}

}  // namespace mercato::runtime::image
