// YAML configuration loading. Errors name the file, line and field path.
//
// Thread-safety: pure functions; YAML::Node values are not shared across threads.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "common/status.hpp"

namespace mercato {

// Parses a YAML file; a syntax error becomes "FILE:LINE:COL: message".
Result<YAML::Node> loadYamlFile(const std::string& path);
// Parses YAML text; `origin` names it in errors.
Result<YAML::Node> parseYaml(const std::string& text, const std::string& origin);

// "FILE:LINE: " for a node that came from a file (yaml-cpp marks are 0-based).
std::string yamlWhere(const std::string& origin, const YAML::Node& node);

// Reads an optional scalar field. Absent -> `fallback`. Present but of the wrong type ->
// an error naming origin:line and the field path.
Result<std::string> yamlString(const YAML::Node& parent, const std::string& key,
                               const std::string& path, const std::string& origin,
                               const std::string& fallback);
Result<int64_t> yamlInt(const YAML::Node& parent, const std::string& key, const std::string& path,
                        const std::string& origin, int64_t fallback);
Result<bool> yamlBool(const YAML::Node& parent, const std::string& key, const std::string& path,
                      const std::string& origin, bool fallback);

// Reads an optional list of scalars. Absent -> `fallback`. Not a list, or an entry that is not a
// scalar -> an error naming origin:line and the field path; `what` says what an entry should be.
Result<std::vector<std::string>> yamlStringList(const YAML::Node& parent, const std::string& key,
                                                const std::string& path, const std::string& origin,
                                                const std::vector<std::string>& fallback,
                                                const std::string& what);

// Fails when the mapping `n` has a key outside `allowed`, naming origin:line, the key and the
// allowed ones (typos must not pass silently). An absent or null node is fine.
Status yamlOnlyKeys(const YAML::Node& n, std::initializer_list<const char*> allowed,
                    const std::string& path, const std::string& origin);

}  // namespace mercato
