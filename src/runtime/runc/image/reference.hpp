// Image references as docker understands them: [registry/]repository[:tag][@sha256:digest].
//
// "busybox" is docker.io/library/busybox:latest. The first path component is a registry host when
// it contains '.' or ':' or is "localhost". Repository components are lowercase alphanumerics
// joined by '.', '_', '__' or dashes; a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; the digest must
// be sha256. A reference with a digest and no tag keeps the tag empty.
//
// Thread-safety: value types and pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace mercato::runtime::image {

inline constexpr std::string_view kDefaultRegistry = "docker.io";

struct Reference {
  std::string registry;    // "docker.io", "127.0.0.1:5000", "ghcr.io"
  std::string repository;  // "library/busybox", "mercato/sample"
  std::string tag;         // "latest" unless a digest was given without a tag
  std::string digest;      // "sha256:<hex>" or empty

  // Canonical form: "docker.io/library/busybox:latest", "host/repo:tag@sha256:..".
  std::string toString() const;
  // "registry/repository", the name without tag and digest.
  std::string name() const;
  // The host to talk to: docker.io is served by registry-1.docker.io.
  std::string apiHost() const;
  // Tag or digest, whichever identifies the manifest to fetch (the digest wins).
  std::string manifestSelector() const { return digest.empty() ? tag : digest; }
};

// Parses a reference; the error says which part is wrong ("tag", "repository", "digest") and why.
Result<Reference> parseReference(std::string_view text);

// "http" for loopback registries (localhost, 127.0.0.0/8, ::1) and the hosts listed in
// `insecureRegistries` (compared as host[:port], or host alone); "https" otherwise.
std::string registryScheme(std::string_view registryHost,
                           const std::vector<std::string>& insecureRegistries);

}  // namespace mercato::runtime::image
