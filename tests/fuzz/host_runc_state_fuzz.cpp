// Fuzzes the parsers of child-process output in the runc host primitives: `runc list` and
// `runc state` JSON, CNI plugin results and errors, and the shim's exit file. The first byte
// picks the parser so one corpus covers all of them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/runc/host/network.hpp"
#include "runtime/runc/host/runc.hpp"
#include "runtime/runc/host/shim.hpp"

using namespace mercato::runtime::host;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0:
      (void)parseRuncList(text);
      break;
    case 1:
      (void)parseRuncState(text);
      break;
    case 2:
      (void)parseCniResult(text, "mcb-0000abcd");
      break;
    case 3:
      (void)describeCniError(text);
      break;
    case 4:
      (void)parseExitInfo(text);
      (void)shimOptionsFromJson(text);
      break;
  }
  return 0;
}
