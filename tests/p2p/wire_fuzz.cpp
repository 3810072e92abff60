// libFuzzer target: one UDP datagram into the p2p wire decoder, as the transport sees it, with
// the public network and one private network joined (so both the plaintext and the AEAD paths
// run). Whatever decodes is pushed through the identity-record decoder and its JSON view, which
// must never throw. The corpus (tests/fuzz/corpus/p2p_wire_fuzz) holds valid packets of every
// type, made with the private key below.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "p2p/identity_record.hpp"
#include "p2p/wire.hpp"

using namespace mercato::p2p;

// A fixed private network "fuzz" (the key is public on purpose: this is a test fixture).
static constexpr std::string_view kFuzzNetworkKey =
    "mnet1aecgm5l2pkvnhlh5kn3favn3doy3y52zyxtduvsyysl2q24kr4wbhlqfj6rnv7mqfkxq";

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Network pub = Network::publicNetwork();
  static const Network priv = Network::fromKeyText(kFuzzNetworkKey).value();
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  static const JoinedNetworks joined = {&pub, &priv};
  OpenResult r = openPacket(in, joined);
  // Records are also fed raw, so the record decoder is fuzzed even without valid signatures.
  for (std::string_view bytes :
       {r.opened ? std::string_view(r.opened->message.record) : std::string_view(), in}) {
    auto rec = IdentityRecord::decode(bytes);
    if (rec.isOk()) {
      (void)rec->verify();
      (void)rec->toJson().dump();
    }
  }
  return 0;
}
