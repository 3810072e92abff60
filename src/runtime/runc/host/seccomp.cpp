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

// Whether an architecture belongs to the host's family: the native ABI and the 32-bit ones its
// kernel may run. runc compiles the whole filter once per listed architecture at every container
// start, so a foreign one only costs time.
bool inHostFamily(const std::string& arch) {
#if defined(__x86_64__) || defined(__i386__)
  return arch == "SCMP_ARCH_X86_64" || arch == "SCMP_ARCH_X86" || arch == "SCMP_ARCH_X32";
#elif defined(__aarch64__) || defined(__arm__)
  return arch == "SCMP_ARCH_AARCH64" || arch == "SCMP_ARCH_ARM";
#else
  (void)arch;
  return true;
#endif
}

// The architectures of `list` that are in the host's family.
Result<std::vector<std::string>> hostArchitectures(const json& list, const std::string& where) {
  if (!list.is_array()) return internalError(where + ": expected an array of SCMP_ARCH_* names");
  std::vector<std::string> out;
  for (const auto& a : list) {
    if (!a.is_string())
      return internalError(where + ": expected SCMP_ARCH_* names, got " + a.dump());
    if (inHostFamily(a)) out.push_back(a);
  }
  return out;
}

struct Group {
  json rules = json::array();              // extra syscall rules, cleaned
  std::vector<std::string> architectures;  // extra architectures of the host's family
};

struct Profile {
  Status status;  // not OK if the embedded document is malformed
  json source;
  json base;  // the OCI section with no group relaxed
  std::map<std::string, Group> groups;
};

Result<Group> loadGroup(const std::string& name, const json& group) {
  const std::string where = "relaxable." + name;
  if (!group.is_object() || (!group.contains("syscalls") && !group.contains("architectures")))
    return internalError(where + ": expected syscalls and/or architectures");
  Group g;
  if (group.contains("syscalls")) {
    if (!group["syscalls"].is_array())
      return internalError(where + ".syscalls: expected an array of rules");
    for (size_t i = 0; i < group["syscalls"].size(); ++i) {
      ASSIGN_OR_RETURN(json rule, cleanRule(group["syscalls"][i],
                                            where + ".syscalls[" + std::to_string(i) + "]"));
      g.rules.push_back(std::move(rule));
    }
  }
  if (group.contains("architectures")) {
    ASSIGN_OR_RETURN(g.architectures,
                     hostArchitectures(group["architectures"], where + ".architectures"));
  }
  return g;
}

Status loadInto(Profile& p) {
  try {
    p.source = json::parse(detail::kSeccompDefaultJson);
  } catch (const json::exception& e) {
    return internalError(e.what());
  }
  if (!p.source.is_object()) return internalError("expected an object");
  if (!p.source.contains("defaultAction") || !p.source["defaultAction"].is_string())
    return internalError("defaultAction: expected an SCMP_ACT_* string");
  const auto syscalls = p.source.find("syscalls");
  if (syscalls == p.source.end() || !syscalls->is_array())
    return internalError("syscalls: expected an array of rules");
  if (!p.source.contains("architectures"))
    return internalError("architectures: expected an array of SCMP_ARCH_* names");

  p.base = p.source;
  for (const char* k : {kCommentKey, kDeniedKey, kRelaxableKey}) p.base.erase(k);
  ASSIGN_OR_RETURN(auto arches, hostArchitectures(p.source["architectures"], "architectures"));
  p.base["architectures"] = arches;
  json rules = json::array();
  for (size_t i = 0; i < syscalls->size(); ++i) {
    ASSIGN_OR_RETURN(json rule, cleanRule((*syscalls)[i], "syscalls[" + std::to_string(i) + "]"));
    rules.push_back(std::move(rule));
  }
  p.base["syscalls"] = std::move(rules);

  if (const auto relax = p.source.find(kRelaxableKey); relax != p.source.end()) {
    if (!relax->is_object()) return internalError("relaxable: expected an object of groups");
    for (const auto& [name, group] : relax->items()) {
      ASSIGN_OR_RETURN(Group g, loadGroup(name, group));
      p.groups.emplace(name, std::move(g));
    }
  }
  return Status::ok();
}

const Profile& profile() {
  static const Profile p = [] {
    Profile loaded;
    Status s = loadInto(loaded);
    if (!s.isOk()) loaded.status = s.withContext("seccomp_default.json");
    return loaded;
  }();
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
      for (const auto& [name, group] : p.groups) known += (known.empty() ? "" : ", ") + name;
      return invalidArgument("unknown seccomp group '" + g + "' (known groups: " + known + ")");
    }
    if (std::find(added.begin(), added.end(), g) != added.end()) continue;
    added.push_back(g);
    for (const auto& rule : it->second.rules) out["syscalls"].push_back(rule);
    auto& arches = out["architectures"];
    for (const auto& arch : it->second.architectures)
      if (std::find(arches.begin(), arches.end(), arch) == arches.end()) arches.push_back(arch);
  }
  return out;
}

std::vector<std::string> seccompRelaxableGroups() {
  std::vector<std::string> names;
  for (const auto& [name, group] : profile().groups) names.push_back(name);
  return names;
}

Result<json> seccompProfileSource() {
  const Profile& p = profile();
  if (!p.status.isOk()) return p.status;
  return p.source;
}

}  // namespace mercato::runtime::host
