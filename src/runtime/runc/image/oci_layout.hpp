// OCI image layouts (https://github.com/opencontainers/image-spec/blob/main/image-layout.md):
// a writer that builds a one-layer image from a directory, and a reader that resolves which
// manifest of a layout an import means.
//
// A layout directory holds `oci-layout`, `index.json` and `blobs/sha256/<hex>`; a layout tarball
// is the same tree in an uncompressed tar. The publisher bundles images this way and tests build
// their sample image with it. pushLayout() uploads a built image through a RegistryClient.
//
// Thread-safety: free functions; concurrent calls must use different output paths.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "runtime/runc/image/manifest.hpp"
#include "runtime/runc/image/reference.hpp"
#include "runtime/runc/image/registry_client.hpp"

namespace mercato::runtime::image {

inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

// An image written into a layout directory. Every blob is at layoutDir/blobs/sha256/<hex>.
struct BuiltImage {
  std::string layoutDir;
  Descriptor manifest;  // kOciManifest
  Descriptor config;    // kOciConfig
  std::vector<Descriptor> layers;
  std::string blobPath(const std::string& digest) const;
};

struct BuildOptions {
  ImageConfig config;          // entrypoint/cmd/env/workdir/user/ports; os/arch default linux/amd64
  std::string refName;         // annotation org.opencontainers.image.ref.name in index.json
  bool keepOwnership = false;  // false: every entry is owned by 0:0 (what a publisher wants)
  int64_t mtime = 0;           // every entry's mtime, for reproducible layers
};

// Builds a single-layer (tar+gzip) image of everything under `sourceDir` into the layout
// directory `layoutDir` (created; an existing index.json is replaced). Device nodes and sockets
// in sourceDir are refused; hardlinks, symlinks, modes are kept.
Result<BuiltImage> buildImage(const std::string& sourceDir, const std::string& layoutDir,
                              const BuildOptions& options);

// Writes the layout directory as an uncompressed tar file.
Status writeLayoutTarball(const std::string& layoutDir, const std::string& tarPath);

// Pushes layers, config, then the manifest under target.tag (or by digest when the tag is
// empty) to target's registry and repository. Returns the manifest digest.
Result<std::string> pushLayout(const BuiltImage& image, RegistryClient& client,
                               const Reference& target);

// Finds the image manifest that an import of `layoutDir` means. With a refName, the index entry
// whose ref.name annotation equals it (or its tag); without one, the only entry, else the
// entry for `platform`. A nested index is followed (its blob hash verified).
Result<Descriptor> resolveLayoutManifest(const std::string& layoutDir, const std::string& refName,
                                         const Platform& platform);

}  // namespace mercato::runtime::image
