// Resource units: CPU in millicores, memory and storage in bytes. Text forms follow the
// Kubernetes quantity syntax: "500m", "2", "1.5" for CPU; "512Mi", "2Gi", "1G", "1048576"
// for bytes.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace mercato {

using Millicores = int64_t;
using Bytes = int64_t;

// "500m" -> 500, "2" -> 2000, "0.25" -> 250. Fails on negatives, sub-millicore precision,
// unknown suffixes.
Result<Millicores> parseCpu(std::string_view text);
// "512Mi" -> 536870912, "1G" -> 1e9, "1.5Gi" -> 1610612736, "100" -> 100.
// Binary (Ki Mi Gi Ti Pi Ei) and decimal (k M G T P E) suffixes. Fails on fractions of a byte.
Result<Bytes> parseBytes(std::string_view text);

// 500 -> "500m", 2000 -> "2".
std::string formatCpu(Millicores m);
// The largest binary unit that divides exactly: 536870912 -> "512Mi", 1000 -> "1000".
std::string formatBytes(Bytes b);

}  // namespace mercato
