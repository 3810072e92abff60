#include "common/config.hpp"

#include <fstream>
#include <sstream>

namespace mercato {

Result<YAML::Node> parseYaml(const std::string& text, const std::string& origin) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return invalidArgument(origin + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

Result<YAML::Node> loadYamlFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return notFound("cannot open config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parseYaml(ss.str(), path);
}

std::string yamlWhere(const std::string& origin, const YAML::Node& node) {
  if (node.Mark().is_null()) return origin + ": ";
  return origin + ":" + std::to_string(node.Mark().line + 1) + ": ";
}

namespace {
template <typename T>
Result<T> yamlScalar(const YAML::Node& parent, const std::string& key, const std::string& path,
                     const std::string& origin, T fallback, const char* expected) {
  if (!parent.IsMap()) return fallback;
  YAML::Node n = parent[key];
  if (!n.IsDefined() || n.IsNull()) return fallback;
  const std::string field = path.empty() ? key : path + "." + key;
  if (!n.IsScalar())
    return invalidArgument(yamlWhere(origin, n) + field + ": expected " + expected);
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    return invalidArgument(yamlWhere(origin, n) + field + ": expected " + expected + ", got '" +
                           n.Scalar() + "'");
  }
}
}  // namespace

Result<std::string> yamlString(const YAML::Node& parent, const std::string& key,
                               const std::string& path, const std::string& origin,
                               const std::string& fallback) {
  return yamlScalar<std::string>(parent, key, path, origin, fallback, "a string");
}
Result<int64_t> yamlInt(const YAML::Node& parent, const std::string& key, const std::string& path,
                        const std::string& origin, int64_t fallback) {
  return yamlScalar<int64_t>(parent, key, path, origin, fallback, "an integer");
}
Result<bool> yamlBool(const YAML::Node& parent, const std::string& key, const std::string& path,
                      const std::string& origin, bool fallback) {
  return yamlScalar<bool>(parent, key, path, origin, fallback, "true or false");
}

Result<std::vector<std::string>> yamlStringList(const YAML::Node& parent, const std::string& key,
                                                const std::string& path, const std::string& origin,
                                                const std::vector<std::string>& fallback,
                                                const std::string& what) {
  if (!parent.IsDefined() || !parent.IsMap()) return fallback;
  const YAML::Node list = parent[key];
  if (!list.IsDefined() || list.IsNull()) return fallback;
  const std::string field = path.empty() ? key : path + "." + key;
  if (!list.IsSequence())
    return invalidArgument(yamlWhere(origin, list) + field + ": expected a list of " + what);
  std::vector<std::string> out;
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].IsScalar())
      return invalidArgument(yamlWhere(origin, list[i]) + field + "[" + std::to_string(i) +
                             "]: expected " + what);
    out.push_back(list[i].Scalar());
  }
  return out;
}

Status yamlOnlyKeys(const YAML::Node& n, std::initializer_list<const char*> allowed,
                    const std::string& path, const std::string& file) {
  if (!n.IsDefined() || n.IsNull()) return Status::ok();
  if (!n.IsMap())
    return invalidArgument(yamlWhere(file, n) + (path.empty() ? "top level" : path) +
                           ": expected a mapping");
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!it->first.IsScalar())
      return invalidArgument(yamlWhere(file, it->first) + (path.empty() ? "top level" : path) +
                             ": keys must be plain names, not sequences or mappings");
    const std::string key = it->first.Scalar();
    bool ok = false;
    for (const char* a : allowed) ok = ok || key == a;
    if (!ok) {
      std::string all;
      for (const char* a : allowed) all += (all.empty() ? "" : ", ") + std::string(a);
      return invalidArgument(yamlWhere(file, it->first) + (path.empty() ? "" : path + ".") + key +
                             ": unknown setting (expected one of " + all + ")");
    }
  }
  return Status::ok();
}

}  // namespace mercato
