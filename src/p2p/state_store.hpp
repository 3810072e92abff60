// The p2p service's durable state: the node's display name, the last identity-record sequence
// number it signed, and the networks it has joined (private ones as their keys). One JSON file,
// DATA_DIR/p2p/state.json, written atomically with mode 0600 because it holds network keys:
//   {"version":1, "name":"...", "recordSeq":N, "public":true, "networks":["mnet1...", ...]}
//
// Thread-safety: pure functions over a file; the caller serializes writes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace mercato::p2p {

struct P2pState {
  std::string name;
  uint64_t recordSeq = 0;
  bool publicJoined = true;
  std::vector<std::string> networkKeys;  // shareable key text of each private network
};

// A missing file is the default state (public network joined); a corrupt one is an error that
// names the file.
Result<P2pState> loadP2pState(const std::string& path);
Status saveP2pState(const std::string& path, const P2pState& state);

}  // namespace mercato::p2p
