// Bundles: what a publisher sends a provider to deploy an app (docs/protocols.md, "Bundle").
//
// The plain bundle is a deterministic ustar archive (libarchive):
//   bundle.json               {"version":1, "manifest", "escrowId", "publisher", "provider",
//                              "nonce", "createdAtMs"}   (always the first entry)
//   images/<component>.tar    an OCI image-layout tarball, one per `bundle:` component
// Entries are written in that order (images sorted by component), owned by 0:0, mode 0644,
// mtime 0, so the same inputs give the same bytes. The sealed bundle is
// crypto::sealEnvelope(publisher identity, provider node key, plain tar).
//
// Size: sealing and opening are in-memory (crypto::sealEnvelope takes and returns whole
// strings), so a bundle costs about twice its size in RAM on each side while it is processed.
// kMaxPlainBundleBytes (2 GiB) bounds it; in practice keep bundled images to a few hundred MiB,
// and prefer a registry `image:` for anything larger.
//
// The provider side trusts nothing: openSealedBundle and parsePlainBundle refuse unknown,
// duplicate, non-regular and path-traversing entries, images for components that are not
// bundled, missing images, oversize images, and any bundle.json field that is missing, unknown
// or of the wrong type. On failure no image file is left in imageDir.
//
// Thread-safety: free functions; concurrent calls must use different imageDirs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/status.hpp"
#include "crypto/keys.hpp"
#include "manifest/manifest.hpp"

namespace mercato::bundle {

inline constexpr int kBundleVersion = 1;
inline constexpr uint64_t kMaxPlainBundleBytes = 2ull << 30;
inline constexpr size_t kMaxBundleJsonBytes = 2 << 20;

struct BundleHeader {
  int version = kBundleVersion;
  manifest::Manifest manifest;
  std::string escrowId;
  std::string publisher;  // address; "" = filled in from the publisher identity when building
  std::string provider;   // address
  std::string nonce;      // 32 lowercase hex; "" = a fresh random one when building
  int64_t createdAtMs = 0;
};

// bundle.json's JSON form and its strict parser (errors: kInvalidArgument naming the field,
// "bundle.json: manifest.components[0].name: ..."). The parser validates the manifest.
nlohmann::json headerToJson(const BundleHeader& h);
Result<BundleHeader> headerFromJson(const nlohmann::json& j);

// Publisher side. Builds the plain tar (bundle.json + images/<c>.tar for every component whose
// manifest entry has `bundle:`: a layout directory is tarred with oci_layout's
// writeLayoutTarball, a file is taken as is and streamed from disk) and seals it to
// `providerNodeKey`. `progress`, when set, gets the cumulative plain bytes written.
// Errors: kInvalidArgument (invalid manifest or header, publisher != the identity's address),
// kNotFound (a bundle path that does not exist), kTooLarge (over kMaxPlainBundleBytes),
// kInternal (IO).
Result<std::string> buildSealedBundle(const crypto::Identity& publisher,
                                      const crypto::PublicKey& providerNodeKey, BundleHeader header,
                                      std::function<void(uint64_t)> progress = {});

struct OpenedBundle {
  BundleHeader header;
  crypto::PublicKey sender;  // the envelope's signer (zero from parsePlainBundle)
  std::map<std::string, std::string> imagePaths;  // component -> imageDir/<component>.tar
};

// Provider side. Opens the envelope with the provider's identity, checks that the signer's
// address is header.publisher, parses the plain bundle, and writes each bundled image to
// imageDir/<component>.tar (imageDir is created; each image at most maxImageBytes).
// Errors: kPermissionDenied (sealed to another key, signer != bundle.json.publisher),
// kUnauthenticated (modified ciphertext or signature), kInvalidArgument (malformed envelope,
// tar or bundle.json), kTooLarge (an image over maxImageBytes), kInternal (IO).
// Replay, escrow and capacity checks are the caller's (the gateway's).
Result<OpenedBundle> openSealedBundle(const crypto::Identity& provider, std::string_view sealed,
                                      const std::string& imageDir, uint64_t maxImageBytes);

// The tar + bundle.json part of openSealedBundle, on plain (already opened) bytes. Exposed for
// the fuzz target and for tests; it does not check the signer.
Result<OpenedBundle> parsePlainBundle(std::string_view tarBytes, const std::string& imageDir,
                                      uint64_t maxImageBytes);

}  // namespace mercato::bundle
