// The seccomp profile of tenant containers: the OCI `linux.seccomp` section that makeOciSpec()
// puts in every config.json.
//
// The profile is data, src/runtime/runc/host/seccomp_default.json, embedded into this library at
// build time. It denies every syscall by default (EPERM) and allows the ordinary ones of a Linux
// program; it blocks namespace creation, mount, keyrings, bpf, perf, userfaultfd, kexec, module
// loading, ptrace, io_uring and personality changes (the reasons per group are in the file and in
// docs/runc-host.md, "Seccomp"). A provider may relax named groups (`ptrace`, `personality`,
// `io_uring`) for all of its deployments through provider.yaml; a tenant's manifest never reaches
// this API.
//
// Thread-safety: pure functions; the embedded document is parsed once (thread-safe static init).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.hpp"

namespace mercato::runtime::host {

// The OCI linux.seccomp section: the default profile plus the rules of each group in
// `allowGroups` (order and duplicates don't matter). The result carries no comments or
// mercato-only keys. Fails with kInvalidArgument naming an unknown group and listing the known
// ones; kInternal if the embedded profile is malformed (a build defect).
Result<nlohmann::json> seccompProfile(const std::vector<std::string>& allowGroups = {});

// The names of the groups seccompProfile() can relax, sorted.
std::vector<std::string> seccompRelaxableGroups();

// The embedded document as written: comments, the OCI fields, `denied` (each blocked group with
// its syscall names and reason) and `relaxable`. For tests and documentation tools. kInternal if
// it does not parse.
Result<nlohmann::json> seccompProfileSource();

}  // namespace mercato::runtime::host
