// catchingExceptions: the boundary between libraries that throw (SQLiteCpp, nlohmann-json) and
// our Status/Result code. Runs `f` and turns an exception into kInternal
// "<where>: <what>: <exception text>". Used by each SQLite-backed store.
#pragma once

#include <exception>
#include <string>
#include <utility>

#include "common/status.hpp"

namespace mercato {

template <typename F>
auto catchingExceptions(const char* where, const char* what, F&& f) -> decltype(f()) {
  try {
    return std::forward<F>(f)();
  } catch (const std::exception& e) {
    return internalError(std::string(where) + ": " + what + ": " + e.what());
  }
}

}  // namespace mercato
