#include "manifest/manifest.hpp"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/units.hpp"
#include "runtime/runc/image/reference.hpp"

namespace mercato::manifest {

namespace {

constexpr std::string_view kNameRule =
    "expected 1-32 characters of a-z, 0-9 and '-', starting and ending with a letter or digit";

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool validName(std::string_view s, size_t maxLen) {
  if (s.empty() || s.size() > maxLen) return false;
  for (char c : s)
    if (!isLowerAlnum(c) && c != '-') return false;
  return isLowerAlnum(s.front()) && isLowerAlnum(s.back());
}

bool validEnvName(std::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Maps field paths to source lines, so that checks run after parsing (validateManifest) can
// still say where a field was. An unknown path falls back to its nearest recorded ancestor.
class Locator {
 public:
  explicit Locator(std::string source = "") : source_(std::move(source)) {}
  void record(const std::string& path, int line) {
    if (line > 0) lines_.emplace(path, line);
  }
  std::string prefix(std::string path) const {
    std::string where = source_.empty() ? "" : source_ + ": ";
    for (;;) {
      auto it = lines_.find(path);
      if (it != lines_.end()) {
        where = source_ + ":" + std::to_string(it->second) + ": ";
        break;
      }
      size_t cut = path.find_last_of(".[");
      if (cut == std::string::npos || cut == 0) break;
      path.resize(cut);
    }
    return where;
  }
  Status error(const std::string& path, const std::string& msg) const {
    return invalidArgument(prefix(path) + (path.empty() ? "" : path + ": ") + msg);
  }

 private:
  std::string source_;
  std::map<std::string, int> lines_;
};

std::string join(const std::vector<std::string_view>& v) {
  std::string out;
  for (auto s : v) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

std::string sub(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}
std::string idx(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

Status validateImpl(const Manifest& m, bool allowBundledWithoutPath, const Locator& loc) {
  if (!validName(m.name, kMaxNameLength))
    return loc.error("name",
                     "'" + m.name + "' is not a valid name (" + std::string(kNameRule) + ")");
  if (m.components.empty()) return loc.error("components", "at least one component is required");
  if (m.components.size() > kMaxComponents)
    return loc.error("components", std::to_string(m.components.size()) + " components; at most " +
                                       std::to_string(kMaxComponents) + " are allowed");
  std::map<std::string, size_t> names;
  std::optional<size_t> exposedAt;
  for (size_t i = 0; i < m.components.size(); ++i) {
    const Component& c = m.components[i];
    const std::string p = idx("components", i);
    if (!validName(c.name, kMaxNameLength))
      return loc.error(sub(p, "name"),
                       "'" + c.name + "' is not a valid name (" + std::string(kNameRule) + ")");
    if (auto [it, fresh] = names.emplace(c.name, i); !fresh)
      return loc.error(sub(p, "name"), "'" + c.name + "' is already the name of components[" +
                                           std::to_string(it->second) + "]");
    if (!c.image.empty() && !c.bundlePath.empty())
      return loc.error(p,
                       "has both image and bundle; give exactly one (image: a registry "
                       "reference, bundle: a local OCI layout or tarball)");
    if (c.image.empty() && c.bundlePath.empty() && !allowBundledWithoutPath)
      return loc.error(p,
                       "needs an image (a registry reference such as "
                       "127.0.0.1:5000/mercato/sample:v1) or a bundle (a local OCI layout "
                       "directory or tarball)");
    if (!c.image.empty()) {
      auto ref = runtime::image::parseReference(c.image);
      if (!ref.isOk())
        return loc.error(sub(p, "image"),
                         "'" + c.image + "' is not an image reference: " + ref.status().message());
    }
    if (c.command.size() > kMaxArgs)
      return loc.error(sub(p, "command"), "at most " + std::to_string(kMaxArgs) + " entries");
    if (c.args.size() > kMaxArgs)
      return loc.error(sub(p, "args"), "at most " + std::to_string(kMaxArgs) + " entries");
    for (size_t k = 0; k < c.command.size(); ++k)
      if (c.command[k].find('\0') != std::string::npos)
        return loc.error(idx(sub(p, "command"), k), "contains a NUL character");
    for (size_t k = 0; k < c.args.size(); ++k)
      if (c.args[k].find('\0') != std::string::npos)
        return loc.error(idx(sub(p, "args"), k), "contains a NUL character");
    if (c.env.size() > kMaxEnvVars)
      return loc.error(sub(p, "env"), std::to_string(c.env.size()) + " variables; at most " +
                                          std::to_string(kMaxEnvVars) + " are allowed");
    std::map<std::string, size_t> envNames;
    for (size_t k = 0; k < c.env.size(); ++k) {
      const EnvVar& e = c.env[k];
      const std::string ep = idx(sub(p, "env"), k);
      if (!validEnvName(e.name))
        return loc.error(sub(ep, "name"), "'" + e.name +
                                              "' is not a valid variable name (expected letters, "
                                              "digits and '_', not starting with a digit)");
      if (auto [it, fresh] = envNames.emplace(e.name, k); !fresh)
        return loc.error(sub(ep, "name"), "'" + e.name + "' is already set by env[" +
                                              std::to_string(it->second) + "]");
      // The value itself is never quoted: it may be a secret.
      if (e.value.size() > kMaxEnvValueBytes)
        return loc.error(sub(ep, "value"),
                         "longer than " + std::to_string(kMaxEnvValueBytes) + " bytes");
      if (e.value.find('\0') != std::string::npos)
        return loc.error(sub(ep, "value"), "contains a NUL character");
    }
    if (c.cpuMillis < kMinCpuMillis || c.cpuMillis > kMaxCpuMillis)
      return loc.error(sub(p, "resources.cpu"),
                       formatCpu(c.cpuMillis) + " is out of range (expected " +
                           formatCpu(kMinCpuMillis) + " to " + formatCpu(kMaxCpuMillis) + ")");
    if (c.memoryBytes < kMinMemoryBytes || c.memoryBytes > kMaxMemoryBytes)
      return loc.error(sub(p, "resources.memory"), formatBytes(c.memoryBytes) +
                                                       " is out of range (expected " +
                                                       formatBytes(kMinMemoryBytes) + " to " +
                                                       formatBytes(kMaxMemoryBytes) + ")");
    if (c.storageBytes < kMinStorageBytes || c.storageBytes > kMaxStorageBytes)
      return loc.error(sub(p, "resources.storage"), formatBytes(c.storageBytes) +
                                                        " is out of range (expected " +
                                                        formatBytes(kMinStorageBytes) + " to " +
                                                        formatBytes(kMaxStorageBytes) + ")");
    if (c.expose) {
      if (exposedAt)
        return loc.error(sub(p, "expose"),
                         "only one component per application may be exposed, "
                         "and components[" +
                             std::to_string(*exposedAt) + "] (" + m.components[*exposedAt].name +
                             ") already is");
      exposedAt = i;
      if (c.expose->port == 0)
        return loc.error(sub(p, "expose.port"), "0 is not a port (expected 1 to 65535)");
      if (!c.expose->hostname.empty() && !validName(c.expose->hostname, 63))
        return loc.error(sub(p, "expose.hostname"),
                         "'" + c.expose->hostname +
                             "' is not a DNS label (expected 1-63 characters of a-z, 0-9 and "
                             "'-', starting and ending with a letter or digit)");
    }
    const Scaling& s = c.scaling;
    const std::string sp = sub(p, "scaling");
    if (s.max < 1 || s.max > kMaxReplicas)
      return loc.error(sub(sp, "max"), std::to_string(s.max) + " is out of range (expected 1 to " +
                                           std::to_string(kMaxReplicas) + ")");
    if (s.min < 0 || s.min > s.max)
      return loc.error(sub(sp, "min"), std::to_string(s.min) +
                                           " is out of range (expected 0 to max, " +
                                           std::to_string(s.max) + ")");
    if (s.targetConcurrency < 1 || s.targetConcurrency > kMaxTargetConcurrency)
      return loc.error(sub(sp, "targetConcurrency"),
                       std::to_string(s.targetConcurrency) + " is out of range (expected 1 to " +
                           std::to_string(kMaxTargetConcurrency) + ")");
    if (s.idleTimeoutMs < kMinIdleTimeoutMs || s.idleTimeoutMs > kMaxIdleTimeoutMs)
      return loc.error(sub(sp, "idleTimeout"), formatDurationMs(s.idleTimeoutMs) +
                                                   " is out of range (expected 1s to 168h)");
  }
  return Status::ok();
}

// ---- YAML ---------------------------------------------------------------------------------

class YamlReader {
 public:
  explicit YamlReader(const std::string& source) : source_(source), loc_(source) {}
  Locator& locator() { return loc_; }

  int lineOf(const YAML::Node& n) const {
    return n.Mark().is_null() ? 0 : static_cast<int>(n.Mark().line) + 1;
  }
  Status error(const YAML::Node& n, const std::string& path, const std::string& msg) const {
    int line = lineOf(n);
    std::string where = line > 0 ? source_ + ":" + std::to_string(line) + ": " : source_ + ": ";
    return invalidArgument(where + (path.empty() ? "" : path + ": ") + msg);
  }
  void record(const YAML::Node& n, const std::string& path) { loc_.record(path, lineOf(n)); }

  static std::string kindOf(const YAML::Node& n) {
    switch (n.Type()) {
      case YAML::NodeType::Map:
        return "a mapping";
      case YAML::NodeType::Sequence:
        return "a list";
      case YAML::NodeType::Scalar:
        return "a scalar";
      default:
        return "nothing";
    }
  }

  // Requires a mapping whose keys are all in `allowed`, each once.
  Status checkMap(const YAML::Node& n, const std::string& path,
                  const std::vector<std::string_view>& allowed) {
    record(n, path);
    if (!n.IsMap())
      return error(n, path, "expected a mapping with keys " + join(allowed) + ", got " + kindOf(n));
    std::set<std::string> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      const YAML::Node k = it->first;  // a copy: `it->first` lives in a temporary
      if (!k.IsScalar()) return error(k, path, "keys must be plain strings");
      const std::string& key = k.Scalar();
      bool known = false;
      for (auto a : allowed) known = known || a == key;
      if (!known)
        return error(k, path.empty() ? key : path + "." + key,
                     "unknown key (allowed here: " + join(allowed) + ")");
      if (!seen.insert(key).second) return error(k, sub(path, key), "duplicate key");
    }
    return Status::ok();
  }

  // The value of `key` when present and not null.
  static std::optional<YAML::Node> field(const YAML::Node& map, const std::string& key) {
    YAML::Node v = map[key];
    if (!v.IsDefined() || v.IsNull()) return std::nullopt;
    return v;
  }

  // Strings never echo the value: an env value may be a secret.
  Result<std::string> str(const YAML::Node& n, const std::string& path) {
    record(n, path);
    if (!n.IsScalar()) return error(n, path, "expected a string, got " + kindOf(n));
    return n.Scalar();
  }

  Result<int64_t> integer(const YAML::Node& n, const std::string& path) {
    record(n, path);
    if (!n.IsScalar()) return error(n, path, "expected an integer, got " + kindOf(n));
    const std::string& s = n.Scalar();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size())
      return error(n, path, "expected an integer, got '" + s + "'");
    return v;
  }

  Result<int64_t> bounded(const YAML::Node& n, const std::string& path, int64_t lo, int64_t hi) {
    ASSIGN_OR_RETURN(int64_t v, integer(n, path));
    if (v < lo || v > hi)
      return error(n, path,
                   std::to_string(v) + " is out of range (expected " + std::to_string(lo) + " to " +
                       std::to_string(hi) + ")");
    return v;
  }

  Result<bool> boolean(const YAML::Node& n, const std::string& path) {
    record(n, path);
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
      return error(n, path, "expected true or false, got '" + s + "'");
    }
    return error(n, path, "expected true or false, got " + kindOf(n));
  }

  Result<std::vector<std::string>> strList(const YAML::Node& n, const std::string& path) {
    record(n, path);
    if (!n.IsSequence())
      return error(
          n, path,
          "expected a list of strings, got " + kindOf(n) + " (write [\"/bin/app\", \"--flag\"])");
    if (n.size() > kMaxArgs)
      return error(n, path, "at most " + std::to_string(kMaxArgs) + " entries");
    std::vector<std::string> out;
    for (size_t i = 0; i < n.size(); ++i) {
      ASSIGN_OR_RETURN(std::string s, str(n[i], idx(path, i)));
      out.push_back(std::move(s));
    }
    return out;
  }

  Result<Component> component(const YAML::Node& n, const std::string& p) {
    RETURN_IF_ERROR(checkMap(
        n, p,
        {"name", "image", "bundle", "command", "args", "env", "resources", "expose", "scaling"}));
    Component c;
    c.line = lineOf(n);
    c.cpuMillis = kDefaultCpuMillis;
    c.memoryBytes = kDefaultMemoryBytes;
    if (auto v = field(n, "name")) {
      ASSIGN_OR_RETURN(c.name, str(*v, sub(p, "name")));
    } else {
      return error(n, sub(p, "name"), "missing (every component needs a name)");
    }
    if (auto v = field(n, "image")) {
      ASSIGN_OR_RETURN(c.image, str(*v, sub(p, "image")));
      if (c.image.empty()) return error(*v, sub(p, "image"), "is empty");
    }
    if (auto v = field(n, "bundle")) {
      ASSIGN_OR_RETURN(c.bundlePath, str(*v, sub(p, "bundle")));
      if (c.bundlePath.empty()) return error(*v, sub(p, "bundle"), "is empty");
    }
    if (auto v = field(n, "command")) {
      ASSIGN_OR_RETURN(c.command, strList(*v, sub(p, "command")));
    }
    if (auto v = field(n, "args")) {
      ASSIGN_OR_RETURN(c.args, strList(*v, sub(p, "args")));
    }
    if (auto v = field(n, "env")) {
      const std::string ep = sub(p, "env");
      record(*v, ep);
      if (!v->IsSequence())
        return error(*v, ep, "expected a list of {name, value, secret}, got " + kindOf(*v));
      if (v->size() > kMaxEnvVars)
        return error(*v, ep, "at most " + std::to_string(kMaxEnvVars) + " variables");
      for (size_t i = 0; i < v->size(); ++i) {
        const YAML::Node e = (*v)[i];
        const std::string vp = idx(ep, i);
        RETURN_IF_ERROR(checkMap(e, vp, {"name", "value", "secret"}));
        EnvVar var;
        if (auto x = field(e, "name")) {
          ASSIGN_OR_RETURN(var.name, str(*x, sub(vp, "name")));
        } else {
          return error(e, sub(vp, "name"), "missing");
        }
        if (auto x = field(e, "value")) {
          ASSIGN_OR_RETURN(var.value, str(*x, sub(vp, "value")));
        }
        if (auto x = field(e, "secret")) {
          ASSIGN_OR_RETURN(var.secret, boolean(*x, sub(vp, "secret")));
        }
        c.env.push_back(std::move(var));
      }
    }
    if (auto v = field(n, "resources")) {
      const std::string rp = sub(p, "resources");
      RETURN_IF_ERROR(checkMap(*v, rp, {"cpu", "memory", "storage"}));
      if (auto x = field(*v, "cpu")) {
        ASSIGN_OR_RETURN(std::string text, str(*x, sub(rp, "cpu")));
        auto cpu = parseCpu(text);
        if (!cpu.isOk())
          return error(*x, sub(rp, "cpu"),
                       "'" + text + "' is not a CPU quantity (expected 500m, 0.5 or 2)");
        c.cpuMillis = *cpu;
      }
      if (auto x = field(*v, "memory")) {
        ASSIGN_OR_RETURN(std::string text, str(*x, sub(rp, "memory")));
        auto mem = parseBytes(text);
        if (!mem.isOk())
          return error(*x, sub(rp, "memory"),
                       "'" + text + "' is not a memory quantity (expected 128Mi, 1Gi or 500M)");
        c.memoryBytes = *mem;
      }
      if (auto x = field(*v, "storage")) {
        ASSIGN_OR_RETURN(std::string text, str(*x, sub(rp, "storage")));
        auto bytes = parseBytes(text);
        if (!bytes.isOk())
          return error(*x, sub(rp, "storage"),
                       "'" + text + "' is not a storage quantity (expected 512Mi, 1Gi or 10G)");
        c.storageBytes = *bytes;
      }
    }
    if (auto v = field(n, "expose")) {
      const std::string xp = sub(p, "expose");
      RETURN_IF_ERROR(checkMap(*v, xp, {"port", "hostname"}));
      Expose ex;
      if (auto x = field(*v, "port")) {
        ASSIGN_OR_RETURN(int64_t port, bounded(*x, sub(xp, "port"), 1, 65535));
        ex.port = static_cast<uint16_t>(port);
      } else {
        return error(*v, sub(xp, "port"), "missing (the HTTP port the component listens on)");
      }
      if (auto x = field(*v, "hostname")) {
        ASSIGN_OR_RETURN(ex.hostname, str(*x, sub(xp, "hostname")));
      }
      c.expose = ex;
    }
    if (auto v = field(n, "scaling")) {
      const std::string sp = sub(p, "scaling");
      RETURN_IF_ERROR(checkMap(*v, sp, {"min", "max", "targetConcurrency", "idleTimeout"}));
      if (auto x = field(*v, "min")) {
        ASSIGN_OR_RETURN(int64_t min, bounded(*x, sub(sp, "min"), 0, kMaxReplicas));
        c.scaling.min = static_cast<int>(min);
      }
      if (auto x = field(*v, "max")) {
        ASSIGN_OR_RETURN(int64_t max, bounded(*x, sub(sp, "max"), 1, kMaxReplicas));
        c.scaling.max = static_cast<int>(max);
      }
      if (auto x = field(*v, "targetConcurrency")) {
        ASSIGN_OR_RETURN(int64_t tc,
                         bounded(*x, sub(sp, "targetConcurrency"), 1, kMaxTargetConcurrency));
        c.scaling.targetConcurrency = static_cast<int>(tc);
      }
      if (auto x = field(*v, "idleTimeout")) {
        ASSIGN_OR_RETURN(std::string text, str(*x, sub(sp, "idleTimeout")));
        auto ms = parseDurationMs(text);
        if (!ms.isOk()) return error(*x, sub(sp, "idleTimeout"), ms.status().message());
        c.scaling.idleTimeoutMs = *ms;
      }
    }
    return c;
  }

  Result<Manifest> manifest(const YAML::Node& root) {
    if (!root.IsDefined() || root.IsNull())
      return invalidArgument(source_ +
                             ":1: the manifest is empty (expected kind: Application, name and "
                             "components)");
    RETURN_IF_ERROR(checkMap(root, "", {"kind", "name", "components"}));
    auto kind = field(root, "kind");
    if (!kind) return error(root, "kind", "missing (expected kind: Application)");
    ASSIGN_OR_RETURN(std::string k, str(*kind, "kind"));
    if (k != "Application")
      return error(*kind, "kind", "'" + k + "' is not supported (expected Application)");
    Manifest m;
    auto name = field(root, "name");
    if (!name) return error(root, "name", "missing (the application's name)");
    ASSIGN_OR_RETURN(m.name, str(*name, "name"));
    auto comps = field(root, "components");
    if (!comps) return error(root, "components", "missing (a list of components)");
    record(*comps, "components");
    if (!comps->IsSequence())
      return error(*comps, "components", "expected a list of components, got " + kindOf(*comps));
    if (comps->size() > kMaxComponents)
      return error(*comps, "components",
                   std::to_string(comps->size()) + " components; at most " +
                       std::to_string(kMaxComponents) + " are allowed");
    for (size_t i = 0; i < comps->size(); ++i) {
      ASSIGN_OR_RETURN(Component c, component((*comps)[i], idx("components", i)));
      m.components.push_back(std::move(c));
    }
    return m;
  }

 private:
  std::string source_;
  Locator loc_;
};

// ---- JSON ---------------------------------------------------------------------------------

using nlohmann::json;

class JsonReader {
 public:
  static Status err(const std::string& path, const std::string& msg) {
    return invalidArgument(path + ": " + msg);
  }
  static Status checkObject(const json& j, const std::string& path,
                            const std::vector<std::string_view>& allowed) {
    if (!j.is_object())
      return err(path.empty() ? "manifest" : path, "expected an object with keys " + join(allowed));
    for (auto it = j.begin(); it != j.end(); ++it) {
      bool known = false;
      for (auto a : allowed) known = known || a == it.key();
      if (!known)
        return err(sub(path, it.key()), "unknown key (allowed here: " + join(allowed) + ")");
    }
    return Status::ok();
  }
  static Result<std::string> str(const json& j, const std::string& key, const std::string& path,
                                 bool required) {
    auto it = j.find(key);
    if (it == j.end()) {
      if (required) return err(sub(path, key), "missing");
      return std::string();
    }
    if (!it->is_string()) return err(sub(path, key), "expected a string");
    return it->get<std::string>();
  }
  static Result<int64_t> integer(const json& j, const std::string& key, const std::string& path,
                                 int64_t lo, int64_t hi) {
    auto it = j.find(key);
    if (it == j.end()) return err(sub(path, key), "missing");
    if (!it->is_number_integer()) return err(sub(path, key), "expected an integer");
    if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(hi))
      return err(sub(path, key), "out of range");
    int64_t v = it->get<int64_t>();
    if (v < lo || v > hi)
      return err(sub(path, key), std::to_string(v) + " is out of range (expected " +
                                     std::to_string(lo) + " to " + std::to_string(hi) + ")");
    return v;
  }
  static Result<std::vector<std::string>> strList(const json& j, const std::string& key,
                                                  const std::string& path) {
    std::vector<std::string> out;
    auto it = j.find(key);
    if (it == j.end()) return out;
    if (!it->is_array()) return err(sub(path, key), "expected an array of strings");
    if (it->size() > kMaxArgs)
      return err(sub(path, key), "at most " + std::to_string(kMaxArgs) + " entries");
    for (size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string()) return err(idx(sub(path, key), i), "expected a string");
      out.push_back((*it)[i].get<std::string>());
    }
    return out;
  }

  static Result<Component> component(const json& j, const std::string& p) {
    RETURN_IF_ERROR(checkObject(
        j, p, {"name", "image", "command", "args", "env", "resources", "expose", "scaling"}));
    Component c;
    ASSIGN_OR_RETURN(c.name, str(j, "name", p, true));
    ASSIGN_OR_RETURN(std::string image, str(j, "image", p, true));
    if (image.rfind("bundle:", 0) == 0) {
      if (image != "bundle:" + c.name)
        return err(sub(p, "image"), "a bundled image must be written \"bundle:" + c.name + "\"");
    } else if (image.empty()) {
      return err(sub(p, "image"), "is empty");
    } else {
      c.image = std::move(image);
    }
    ASSIGN_OR_RETURN(c.command, strList(j, "command", p));
    ASSIGN_OR_RETURN(c.args, strList(j, "args", p));
    if (auto it = j.find("env"); it != j.end()) {
      const std::string ep = sub(p, "env");
      if (!it->is_array()) return err(ep, "expected an array of {name, value, secret}");
      if (it->size() > kMaxEnvVars)
        return err(ep, "at most " + std::to_string(kMaxEnvVars) + " variables");
      for (size_t i = 0; i < it->size(); ++i) {
        const json& e = (*it)[i];
        const std::string vp = idx(ep, i);
        RETURN_IF_ERROR(checkObject(e, vp, {"name", "value", "secret"}));
        EnvVar var;
        ASSIGN_OR_RETURN(var.name, str(e, "name", vp, true));
        ASSIGN_OR_RETURN(var.value, str(e, "value", vp, false));
        if (auto s = e.find("secret"); s != e.end()) {
          if (!s->is_boolean()) return err(sub(vp, "secret"), "expected true or false");
          var.secret = s->get<bool>();
        }
        c.env.push_back(std::move(var));
      }
    }
    {
      const std::string rp = sub(p, "resources");
      auto it = j.find("resources");
      if (it == j.end()) return err(rp, "missing");
      RETURN_IF_ERROR(checkObject(*it, rp, {"cpuMillis", "memoryBytes", "storageBytes"}));
      ASSIGN_OR_RETURN(c.cpuMillis, integer(*it, "cpuMillis", rp, 0, kMaxCpuMillis));
      ASSIGN_OR_RETURN(c.memoryBytes, integer(*it, "memoryBytes", rp, 0, kMaxMemoryBytes));
      // Optional: manifests from before disk quotas get the default.
      if (it->contains("storageBytes")) {
        ASSIGN_OR_RETURN(c.storageBytes, integer(*it, "storageBytes", rp, 0, kMaxStorageBytes));
      }
    }
    if (auto it = j.find("expose"); it != j.end()) {
      const std::string xp = sub(p, "expose");
      RETURN_IF_ERROR(checkObject(*it, xp, {"port", "hostname"}));
      Expose ex;
      ASSIGN_OR_RETURN(int64_t port, integer(*it, "port", xp, 1, 65535));
      ex.port = static_cast<uint16_t>(port);
      ASSIGN_OR_RETURN(ex.hostname, str(*it, "hostname", xp, false));
      c.expose = ex;
    }
    {
      const std::string sp = sub(p, "scaling");
      auto it = j.find("scaling");
      if (it == j.end()) return err(sp, "missing");
      RETURN_IF_ERROR(checkObject(*it, sp, {"min", "max", "targetConcurrency", "idleTimeoutMs"}));
      ASSIGN_OR_RETURN(int64_t min, integer(*it, "min", sp, 0, kMaxReplicas));
      ASSIGN_OR_RETURN(int64_t max, integer(*it, "max", sp, 1, kMaxReplicas));
      ASSIGN_OR_RETURN(int64_t tc, integer(*it, "targetConcurrency", sp, 1, kMaxTargetConcurrency));
      ASSIGN_OR_RETURN(c.scaling.idleTimeoutMs,
                       integer(*it, "idleTimeoutMs", sp, kMinIdleTimeoutMs, kMaxIdleTimeoutMs));
      c.scaling.min = static_cast<int>(min);
      c.scaling.max = static_cast<int>(max);
      c.scaling.targetConcurrency = static_cast<int>(tc);
    }
    return c;
  }
};

}  // namespace

int64_t Manifest::peakCpuMillis() const {
  int64_t sum = 0;
  for (const auto& c : components) sum += c.cpuMillis * c.scaling.max;
  return sum;
}

int64_t Manifest::peakStorageBytes() const {
  int64_t sum = 0;
  for (const auto& c : components) sum += c.storageBytes * c.scaling.max;
  return sum;
}

int64_t Manifest::peakMemoryBytes() const {
  int64_t sum = 0;
  for (const auto& c : components) sum += c.memoryBytes * c.scaling.max;
  return sum;
}

const Component* Manifest::exposed() const {
  for (const auto& c : components)
    if (c.expose) return &c;
  return nullptr;
}

Status validateManifest(const Manifest& m, bool allowBundledWithoutPath) {
  return validateImpl(m, allowBundledWithoutPath, Locator());
}

Result<int64_t> parseDurationMs(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return invalidArgument("'" + std::string(text) + "' is not a duration: " + why +
                           " (expected 30s, 5m, 1500ms, 1h or 1h30m)");
  };
  if (text.empty()) return bad("empty");
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    int64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (n > kMaxIdleTimeoutMs * 1000) return bad("too large");
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    if (i == start) return bad("expected a number");
    size_t unitStart = i;
    while (i < text.size() && text[i] >= 'a' && text[i] <= 'z') ++i;
    std::string_view unit = text.substr(unitStart, i - unitStart);
    int64_t scale = 0;
    if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "h")
      scale = 3'600'000;
    else if (unit.empty())
      return bad("a unit is required");
    else
      return bad("unknown unit '" + std::string(unit) + "'");
    if (n > (int64_t{1} << 40) / scale) return bad("too large");
    total += n * scale;
    if (total > (int64_t{1} << 40)) return bad("too large");
  }
  return total;
}

std::string formatDurationMs(int64_t ms) {
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

Result<Manifest> parseManifest(const std::string& yamlText, const std::string& source) {
  if (yamlText.size() > kMaxManifestBytes)
    return invalidArgument(source + ": the manifest is " + std::to_string(yamlText.size()) +
                           " bytes; at most " + std::to_string(kMaxManifestBytes) + " are allowed");
  YAML::Node root;
  try {
    root = YAML::Load(yamlText);
  } catch (const YAML::Exception& e) {
    return invalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  } catch (const std::exception& e) {
    return invalidArgument(source + ": not valid YAML: " + e.what());
  }
  try {
    YamlReader reader(source);
    ASSIGN_OR_RETURN(Manifest m, reader.manifest(root));
    RETURN_IF_ERROR(validateImpl(m, false, reader.locator()));
    return m;
  } catch (const std::exception& e) {
    // yaml-cpp may throw on node access in unusual documents (aliases, odd keys).
    return invalidArgument(source + ": cannot read the manifest: " + e.what());
  }
}

Result<Manifest> loadManifestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return notFound("cannot open manifest " + path);
  std::string text;
  text.resize(kMaxManifestBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  ASSIGN_OR_RETURN(Manifest m, parseManifest(text, path));
  // `bundle:` paths are relative to the manifest's directory, not to the caller's.
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  for (auto& c : m.components)
    if (!c.bundlePath.empty() && std::filesystem::path(c.bundlePath).is_relative())
      c.bundlePath = (dir / c.bundlePath).lexically_normal().string();
  return m;
}

json toJson(const Manifest& m, bool redactSecrets) {
  json comps = json::array();
  for (const auto& c : m.components) {
    json env = json::array();
    for (const auto& e : c.env)
      env.push_back({{"name", e.name},
                     {"value", e.secret && redactSecrets ? "***" : e.value},
                     {"secret", e.secret}});
    json jc = {{"name", c.name},
               {"image", c.bundled() ? "bundle:" + c.name : c.image},
               {"command", c.command},
               {"args", c.args},
               {"env", env},
               {"resources",
                {{"cpuMillis", c.cpuMillis},
                 {"memoryBytes", c.memoryBytes},
                 {"storageBytes", c.storageBytes}}},
               {"scaling",
                {{"min", c.scaling.min},
                 {"max", c.scaling.max},
                 {"targetConcurrency", c.scaling.targetConcurrency},
                 {"idleTimeoutMs", c.scaling.idleTimeoutMs}}}};
    if (c.expose) jc["expose"] = {{"port", c.expose->port}, {"hostname", c.expose->hostname}};
    comps.push_back(std::move(jc));
  }
  return {{"kind", "Application"}, {"name", m.name}, {"components", comps}};
}

Result<Manifest> manifestFromJson(const json& j) {
  using R = JsonReader;
  RETURN_IF_ERROR(R::checkObject(j, "", {"kind", "name", "components"}));
  ASSIGN_OR_RETURN(std::string kind, R::str(j, "kind", "", true));
  if (kind != "Application")
    return R::err("kind", "'" + kind + "' is not supported (expected Application)");
  Manifest m;
  ASSIGN_OR_RETURN(m.name, R::str(j, "name", "", true));
  auto it = j.find("components");
  if (it == j.end()) return R::err("components", "missing");
  if (!it->is_array()) return R::err("components", "expected an array");
  if (it->size() > kMaxComponents)
    return R::err("components", "at most " + std::to_string(kMaxComponents) + " components");
  for (size_t i = 0; i < it->size(); ++i) {
    ASSIGN_OR_RETURN(Component c, R::component((*it)[i], idx("components", i)));
    m.components.push_back(std::move(c));
  }
  RETURN_IF_ERROR(validateManifest(m, /*allowBundledWithoutPath=*/true));
  return m;
}

runtime::DeploymentSpec toDeploymentSpec(
    const Manifest& m, const std::string& deploymentId, const std::string& owner,
    const std::function<std::string(const Component&)>& layoutFor) {
  runtime::DeploymentSpec spec;
  spec.id = deploymentId;
  spec.owner = owner;
  spec.labels["mercato.app"] = m.name;
  for (const auto& c : m.components) {
    runtime::ServiceSpec s;
    s.name = c.name;
    s.kind = runtime::WorkloadKind::kService;
    if (c.bundled()) {
      s.image = "bundle:" + c.name;
      if (layoutFor) s.imageLayout = layoutFor(c);
    } else {
      s.image = c.image;
    }
    s.command = c.command;
    s.args = c.args;
    for (const auto& e : c.env) s.env.push_back({e.name, e.value, e.secret});
    s.resources.cpuMillis = c.cpuMillis;
    s.resources.memoryBytes = c.memoryBytes;
    s.resources.storageBytes = c.storageBytes;
    if (c.expose) s.ports.push_back({c.expose->port, "tcp", "http"});
    s.replicas = c.scaling.min;
    spec.services.push_back(std::move(s));
  }
  return spec;
}

}  // namespace mercato::manifest
