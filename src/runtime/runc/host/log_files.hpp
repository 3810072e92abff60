// Rotating log files: the writer the shim pumps a container's stdout/stderr into, and the
// readers the backend serves logs from.
//
// Layout: `<base>` is the live file; rotation renames `<base>` -> `<base>.1` -> ... ->
// `<base>.<maxFiles-1>` and drops the oldest, so at most maxFiles files exist and none grows
// beyond maxBytes (a single line longer than maxBytes is split). Rotation is by rename, so a
// reader holding the old file keeps reading it to its end before switching (follow()).
//
// Thread-safety: a RotatingLogWriter is used by one thread. The readers are free functions,
// safe to call concurrently with the writer (in this or another process).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace mercato::runtime::host {

class RotatingLogWriter {
 public:
  // Opens (appending to) `basePath`. REQUIRES: maxBytes > 0, maxFiles >= 1.
  static Result<RotatingLogWriter> open(std::string basePath, uint64_t maxBytes, int maxFiles);
  RotatingLogWriter(RotatingLogWriter&&) noexcept;
  RotatingLogWriter& operator=(RotatingLogWriter&&) noexcept;
  ~RotatingLogWriter();

  // Appends, rotating first when the chunk doesn't fit. Splits at the last newline that fits,
  // so lines stay whole whenever they are shorter than maxBytes.
  Status write(std::string_view data);
  const std::string& basePath() const { return base_; }

 private:
  RotatingLogWriter(std::string base, uint64_t maxBytes, int maxFiles, int fd, uint64_t size);
  Status rotate();
  std::string base_;
  uint64_t maxBytes_;
  int maxFiles_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// The existing files of a log, oldest first: <base>.N ... <base>.1, <base>.
std::vector<std::string> logFiles(const std::string& basePath);

// The last n lines across the rotated files (a final line without '\n' counts). Missing files
// give an empty result.
Result<std::vector<std::string>> tailLines(const std::string& basePath, size_t n);

struct FollowOptions {
  // Byte offset in the live file to start at; -1: its current end.
  int64_t fromOffset = 0;
  std::chrono::milliseconds pollInterval{200};
};

// Streams what is appended to `basePath` until stop() returns true (checked every poll).
// Survives rotation (the inode at basePath changes: the old file is read to its end, then the
// new one from 0) and truncation (size below our offset: restart at 0). onChunk receives raw
// bytes in order. The file may not exist yet; follow waits for it.
Status follow(const std::string& basePath, const FollowOptions& options,
              const std::function<void(std::string_view)>& onChunk,
              const std::function<bool()>& stop);

// Like follow(), but calls onLine with each complete line (without '\n'); a partial last line
// is delivered when stop() ends the follow.
Status followLines(const std::string& basePath, const FollowOptions& options,
                   const std::function<void(std::string_view)>& onLine,
                   const std::function<bool()>& stop);

}  // namespace mercato::runtime::host
