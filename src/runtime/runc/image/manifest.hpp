// OCI / Docker schema-2 manifests, image indexes (manifest lists) and image configs: parsing of
// untrusted JSON into validated structs, platform selection, and serialisation for the writer.
//
// Every parser bounds what it accepts (digests must be sha256, sizes non-negative, layer media
// types known) and reports the field path of what was wrong. Fuzzed by image_manifest_fuzz.
//
// Thread-safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace mercato::runtime::image {

inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";

// Largest manifest, index or config we accept (registries cap manifests at 4 MiB).
inline constexpr uint64_t kMaxManifestBytes = 4 << 20;

struct Platform {
  std::string os = "linux", architecture = "amd64", variant;
  std::string toString() const;  // "linux/arm64/v8"
};

struct Descriptor {
  std::string mediaType;
  std::string digest;
  uint64_t size = 0;
  Platform platform;  // only meaningful in an index
  bool hasPlatform = false;
  std::map<std::string, std::string> annotations;
};

struct Manifest {
  std::string mediaType;  // kOciManifest or kDockerManifest
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct Index {
  std::string mediaType;  // kOciIndex or kDockerManifestList
  std::vector<Descriptor> manifests;
};

// The parts of an image config that the runtime uses.
struct ImageConfig {
  std::vector<std::string> entrypoint, cmd, env;
  std::string workingDir, user;
  std::vector<uint16_t> exposedPorts;  // tcp ports from "8080/tcp"; udp ports are not listed
  std::string os, architecture, variant;
  std::vector<std::string> diffIds;  // rootfs.diff_ids
};

bool isIndexMediaType(std::string_view mediaType);
bool isManifestMediaType(std::string_view mediaType);

// The media type of a manifest document: the registry's Content-Type when it is one we know,
// else the document's own "mediaType", else guessed from its shape ("manifests" → index).
std::string detectManifestMediaType(std::string_view contentType, std::string_view bytes);

Result<Manifest> parseManifest(std::string_view bytes);
Result<Index> parseIndex(std::string_view bytes);
Result<ImageConfig> parseImageConfig(std::string_view bytes);

// Picks the manifest for `wanted` from an index. An empty wanted.variant accepts any variant
// (preferring none, then "v8" on arm64). No match is kNotFound listing the platforms available.
Result<Descriptor> selectPlatform(const Index& index, const Platform& wanted);

// Serialisation (canonical enough to be stable: nlohmann's sorted keys, no whitespace).
std::string serializeImageConfig(const ImageConfig& config);
std::string serializeManifest(const Manifest& manifest);

}  // namespace mercato::runtime::image
