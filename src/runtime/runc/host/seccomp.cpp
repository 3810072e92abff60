#include "runtime/runc/host/seccomp.hpp"

#include <algorithm>
#include <map>

namespace mercato::runtime::host {
namespace detail {
// seccomp_default.json, generated into the build tree by seccomp_embed.cmake.
extern const char kSeccompDefaultJson[];
}  // namespace detail

namespace {
using nlohmann::json;

// Keys of the source document that are ours, not the OCI section's.
constexpr const char* kCommentKey = "comment";
constexpr const char* kDeniedKey = "denied";
constexpr const char* kRelaxableKey = "relaxable";

// One OCI LinuxSyscall rule without its comment; checks the fields runc needs.
Result<json> cleanRule(const json& rule, const std::string& where) {
  if (!rule.is_object()) return internalError(where + ": expected an object");
  const auto names = rule.find("names");
  if (names == rule.end() || !names->is_array() || names->empty())
    return internalError(where + ".names: expected a non-empty array of syscall names");
  for (const auto& n : *names)
    if (!n.is_string() || n.get_ref<const std::string&>().empty())
      return internalError(where + ".names: expected syscall names, got " + n.dump());
  const auto action = rule.find("action");
  if (action == rule.end() || !action->is_string())
    return internalError(where + ".action: expected an SCMP_ACT_* string");
  json out = rule;
  out.erase(kCommentKey);
  return out;
}

struct Profile {
  Status status;  // not OK if the embedded document is malformed
  json source;
  json base;                           // the OCI section with no group relaxed
  std::map<std::string, json> groups;  // group -> its extra rules (already cleaned)
};

Profile load() {
  Profile p;
  try {
    p.source = json::parse(detail::kSeccompDefaultJson);
  } catch (const json::exception& e) {
    p.status = internalError(std::string("seccomp_default.json: ") + e.what());
    return p;
  }
  auto fail = [&](Status s) {
    p.status = Status(s.code(), "seccomp_default.json: " + s.message());
    return p;
  };
  if (!p.source.is_object()) return fail(internalError("expected an object"));
  if (!p.source.contains("defaultAction") || !p.source["defaultAction"].is_string())
    return fail(internalError("defaultAction: expected an SCMP_ACT_* string"));
  const auto syscalls = p.source.find("syscalls");
  if (syscalls == p.source.end() || !syscalls->is_array())
    return fail(internalError("syscalls: expected an array of rules"));

  p.base = p.source;
  for (const char* k : {kCommentKey, kDeniedKey, kRelaxableKey}) p.base.erase(k);
  json rules = json::array();
  for (size_t i = 0; i < syscalls->size(); ++i) {
    auto r = cleanRule((*syscalls)[i], "syscalls[" + std::to_string(i) + "]");
    if (!r.isOk()) return fail(r.status());
    rules.push_back(std::move(*r));
  }
  p.base["syscalls"] = std::move(rules);

  if (const auto relax = p.source.find(kRelaxableKey); relax != p.source.end()) {
    if (!relax->is_object()) return fail(internalError("relaxable: expected an object of groups"));
    for (const auto& [name, group] : relax->items()) {
      std::string where = "relaxable." + name + ".syscalls";
      if (!group.is_object() || !group.contains("syscalls") || !group["syscalls"].is_array())
        return fail(internalError(where + ": expected an array of rules"));
      json extra = json::array();
      for (size_t i = 0; i < group["syscalls"].size(); ++i) {
        auto r = cleanRule(group["syscalls"][i], where + "[" + std::to_string(i) + "]");
        if (!r.isOk()) return fail(r.status());
        extra.push_back(std::move(*r));
      }
      p.groups.emplace(name, std::move(extra));
    }
  }
  return p;
}

const Profile& profile() {
  static const Profile p = load();
  return p;
}

}  // namespace

Result<json> seccompProfile(const std::vector<std::string>& allowGroups) {
  const Profile& p = profile();
  if (!p.status.isOk()) return p.status;
  json out = p.base;
  std::vector<std::string> added;
  for (const auto& g : allowGroups) {
    auto it = p.groups.find(g);
    if (it == p.groups.end()) {
      std::string known;
      for (const auto& [name, rules] : p.groups) known += (known.empty() ? "" : ", ") + name;
      return invalidArgument("unknown seccomp group '" + g + "' (known groups: " + known + ")");
    }
    if (std::find(added.begin(), added.end(), g) != added.end()) continue;
    added.push_back(g);
    for (const auto& rule : it->second) out["syscalls"].push_back(rule);
  }
  return out;
}

std::vector<std::string> seccompRelaxableGroups() {
  std::vector<std::string> names;
  for (const auto& [name, rules] : profile().groups) names.push_back(name);
  return names;
}

Result<json> seccompProfileSource() {
  const Profile& p = profile();
  if (!p.status.isOk()) return p.status;
  return p.source;
}

}  // namespace mercato::runtime::host
