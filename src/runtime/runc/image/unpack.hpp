// Layer unpacking: applies one image layer (tar or tar+gzip, detected by magic) to a rootfs
// directory, with OCI whiteouts, under a byte and entry budget.
//
// libarchive only *reads* the layer. Writing is our own, with every path resolved by openat()
// from a directory fd of the rootfs, one component at a time with O_NOFOLLOW. That is stricter
// than ARCHIVE_EXTRACT_SECURE_SYMLINKS|SECURE_NODOTDOT|SECURE_NOABSOLUTEPATHS and race-free:
//  - refused: absolute paths, any ".." component, any path whose parent is a symlink (so
//    `a -> /etc` followed by `a/passwd` fails: we never write through a symlink, even one that
//    would stay inside the rootfs; docker-built layers never need that), hardlinks whose target is
//    absolute, has "..", crosses a symlink or does not exist yet, char/block device nodes and
//    sockets, paths deeper than 128 components;
//  - allowed: regular files (sparse ok), directories, symlinks (their targets are data, resolved
//    later inside the container), hardlinks inside the rootfs, FIFOs (harmless: no device access);
//  - preserved: mode incl. setuid/setgid/sticky, uid/gid when running as root, mtime (directories
//    last, so later entries do not disturb them); xattrs and ACLs are not applied;
//  - whiteouts: `.wh.<name>` deletes <name> from lower layers, `.wh..wh..opq` empties its directory
//    of everything lower layers put there (entries of this layer stay). Whiteouts are not created.
// A failed layer leaves the rootfs half-written: the caller removes it (ImageStore does).
//
// Thread-safety: free functions with no shared state; concurrent calls on different rootfs dirs.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "common/status.hpp"

namespace mercato::runtime::image {

// Limits shared by all layers of one image. usedBytes counts regular-file data (declared sizes),
// entries counts every tar entry.
struct UnpackBudget {
  uint64_t maxBytes = std::numeric_limits<uint64_t>::max();
  uint64_t maxEntries = 1'000'000;
  uint64_t usedBytes = 0;
  uint64_t entries = 0;
};

// Applies the layer file at `layerPath` to the existing directory `rootfs`. Errors name the
// layer (`what`, e.g. its digest) and the offending entry. kTooLarge when the budget runs out.
Status applyLayer(const std::string& layerPath, const std::string& rootfs, UnpackBudget& budget,
                  const std::string& what = "layer");
// The same for a layer held in memory (tests, fuzzing).
Status applyLayerBytes(const void* data, size_t size, const std::string& rootfs,
                       UnpackBudget& budget, const std::string& what = "layer");

}  // namespace mercato::runtime::image
