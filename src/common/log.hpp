// Logging setup over spdlog. Modules log through spdlog's default logger (spdlog::info etc.);
// main() picks the format once at start-up.
//
// Thread-safety: initLogging() is called once before other threads start.
#pragma once

#include <string>

#include "common/status.hpp"

namespace mercato {

enum class LogFormat { kText, kJson };

// "text" or "json".
Result<LogFormat> parseLogFormat(const std::string& name);
// Installs a stderr logger in the chosen format. `level` is an spdlog level name
// ("debug", "info", "warn", ...).
Status initLogging(LogFormat format, const std::string& level);

// Logs a warning "<context>: <message>" when `s` failed, for work whose failure the caller can
// only report (cleanup, best-effort persistence); returns whether it succeeded.
bool warnIfError(const Status& s, std::string_view context);

// Escapes a string for inclusion inside a JSON string literal.
std::string jsonEscape(std::string_view s);

}  // namespace mercato
