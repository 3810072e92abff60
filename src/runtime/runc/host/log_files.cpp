#include "runtime/runc/host/log_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <thread>

namespace mercato::runtime::host {

namespace {
std::string errnoText() { return strerror(errno); }
}  // namespace

Result<RotatingLogWriter> RotatingLogWriter::open(std::string basePath, uint64_t maxBytes,
                                                  int maxFiles) {
  if (maxBytes == 0 || maxFiles < 1)
    return invalidArgument("log " + basePath + ": maxBytes must be > 0 and maxFiles >= 1");
  int fd = ::open(basePath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return internalError("open log " + basePath + ": " + errnoText());
  struct stat st {};
  fstat(fd, &st);
  return RotatingLogWriter(std::move(basePath), maxBytes, maxFiles, fd,
                           static_cast<uint64_t>(st.st_size));
}

RotatingLogWriter::RotatingLogWriter(std::string base, uint64_t maxBytes, int maxFiles, int fd,
                                     uint64_t size)
    : base_(std::move(base)), maxBytes_(maxBytes), maxFiles_(maxFiles), fd_(fd), size_(size) {}

RotatingLogWriter::RotatingLogWriter(RotatingLogWriter&& o) noexcept
    : base_(std::move(o.base_)),
      maxBytes_(o.maxBytes_),
      maxFiles_(o.maxFiles_),
      fd_(o.fd_),
      size_(o.size_) {
  o.fd_ = -1;
}

RotatingLogWriter& RotatingLogWriter::operator=(RotatingLogWriter&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    base_ = std::move(o.base_);
    maxBytes_ = o.maxBytes_;
    maxFiles_ = o.maxFiles_;
    fd_ = o.fd_;
    size_ = o.size_;
    o.fd_ = -1;
  }
  return *this;
}

RotatingLogWriter::~RotatingLogWriter() {
  if (fd_ >= 0) ::close(fd_);
}

Status RotatingLogWriter::rotate() {
  ::close(fd_);
  fd_ = -1;
  if (maxFiles_ == 1) {
    ::unlink(base_.c_str());
  } else {
    std::string oldest = base_ + "." + std::to_string(maxFiles_ - 1);
    ::unlink(oldest.c_str());
    for (int i = maxFiles_ - 2; i >= 1; --i) {
      std::string from = base_ + "." + std::to_string(i);
      std::string to = base_ + "." + std::to_string(i + 1);
      ::rename(from.c_str(), to.c_str());  // a missing file is fine
    }
    std::string first = base_ + ".1";
    if (::rename(base_.c_str(), first.c_str()) != 0 && errno != ENOENT)
      return internalError("rotate log " + base_ + ": " + errnoText());
  }
  fd_ = ::open(base_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) return internalError("open log " + base_ + ": " + errnoText());
  size_ = 0;
  return Status::ok();
}

Status RotatingLogWriter::write(std::string_view data) {
  if (fd_ < 0) return failedPrecondition("log " + base_ + " is closed");
  while (!data.empty()) {
    uint64_t room = size_ < maxBytes_ ? maxBytes_ - size_ : 0;
    size_t take = data.size();
    if (take > room) {
      // Cut at the last newline that fits; if none fits and the file already has content,
      // rotate first so the line starts a fresh file.
      std::string_view fits = data.substr(0, room);
      size_t nl = fits.rfind('\n');
      if (nl != std::string_view::npos) {
        take = nl + 1;
      } else if (size_ > 0) {
        RETURN_IF_ERROR(rotate());
        continue;
      } else {
        take = room;  // a line longer than maxBytes: split it
      }
    }
    size_t off = 0;
    while (off < take) {
      ssize_t w = ::write(fd_, data.data() + off, take - off);
      if (w < 0) {
        if (errno == EINTR) continue;
        return internalError("write log " + base_ + ": " + errnoText());
      }
      off += static_cast<size_t>(w);
    }
    size_ += take;
    data.remove_prefix(take);
    if (size_ >= maxBytes_ && !data.empty()) RETURN_IF_ERROR(rotate());
  }
  return Status::ok();
}

std::vector<std::string> logFiles(const std::string& basePath) {
  std::vector<std::string> rotated;
  for (int i = 1;; ++i) {
    std::string p = basePath + "." + std::to_string(i);
    if (::access(p.c_str(), F_OK) != 0) break;
    rotated.push_back(p);
  }
  std::vector<std::string> out(rotated.rbegin(), rotated.rend());
  if (::access(basePath.c_str(), F_OK) == 0) out.push_back(basePath);
  return out;
}

Result<std::vector<std::string>> tailLines(const std::string& basePath, size_t n) {
  if (n == 0) return std::vector<std::string>{};
  // The files, oldest first, are one stream; read it backwards in blocks from the newest file.
  std::vector<std::string> files = logFiles(basePath);
  std::deque<std::string> lines;  // newest last
  std::string pending;            // the start of a line whose beginning is not read yet
  bool atStreamEnd = true;
  char buf[65536];
  for (auto it = files.rbegin(); it != files.rend() && lines.size() < n; ++it) {
    int fd = ::open(it->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // rotated away between listing and opening
    struct stat st {};
    fstat(fd, &st);
    off_t pos = st.st_size;
    while (pos > 0 && lines.size() < n) {
      off_t start = pos > static_cast<off_t>(sizeof buf) ? pos - static_cast<off_t>(sizeof buf) : 0;
      ssize_t r = ::pread(fd, buf, static_cast<size_t>(pos - start), start);
      if (r <= 0) break;
      pos = start;
      std::string_view block(buf, static_cast<size_t>(r));
      if (atStreamEnd) {
        // The final '\n' ends the last line; it doesn't start an empty one.
        if (block.back() == '\n') block.remove_suffix(1);
        atStreamEnd = false;
      }
      while (lines.size() < n) {
        size_t nl = block.rfind('\n');
        if (nl == std::string_view::npos) {
          pending.insert(0, block);
          break;
        }
        lines.push_front(std::string(block.substr(nl + 1)) + pending);
        pending.clear();
        block = block.substr(0, nl);
      }
    }
    ::close(fd);
  }
  if (!pending.empty() && lines.size() < n) lines.push_front(pending);
  return std::vector<std::string>(lines.begin(), lines.end());
}

Status follow(const std::string& basePath, const FollowOptions& options,
              const std::function<void(std::string_view)>& onChunk,
              const std::function<bool()>& stop) {
  int fd = -1;
  ino_t ino = 0;
  bool firstOpen = true;
  char buf[65536];
  auto readToEnd = [&]() {
    while (true) {
      ssize_t r = ::read(fd, buf, sizeof buf);
      if (r > 0) {
        onChunk(std::string_view(buf, static_cast<size_t>(r)));
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      break;
    }
  };
  while (true) {
    if (fd < 0) {
      fd = ::open(basePath.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        struct stat st {};
        fstat(fd, &st);
        ino = st.st_ino;
        if (firstOpen) {
          off_t off =
              options.fromOffset < 0 ? st.st_size : std::min<off_t>(options.fromOffset, st.st_size);
          ::lseek(fd, off, SEEK_SET);
        }
      }
      // fromOffset applies only to a file that existed when follow started; one that appears
      // later is read from its beginning.
      firstOpen = false;
    }
    if (fd >= 0) {
      readToEnd();
      struct stat cur {};
      if (::stat(basePath.c_str(), &cur) == 0 && cur.st_ino != ino) {
        // Rotated: finish the old file (already at its end unless written since), switch.
        readToEnd();
        ::close(fd);
        fd = -1;
        continue;
      }
      off_t pos = ::lseek(fd, 0, SEEK_CUR);
      struct stat st {};
      fstat(fd, &st);
      if (st.st_size < pos) ::lseek(fd, 0, SEEK_SET);  // truncated
    }
    if (stop()) break;
    std::this_thread::sleep_for(options.pollInterval);
  }
  if (fd >= 0) ::close(fd);
  return Status::ok();
}

Status followLines(const std::string& basePath, const FollowOptions& options,
                   const std::function<void(std::string_view)>& onLine,
                   const std::function<bool()>& stop) {
  std::string partial;
  Status st = follow(
      basePath, options,
      [&](std::string_view chunk) {
        partial.append(chunk);
        size_t start = 0, nl;
        while ((nl = partial.find('\n', start)) != std::string::npos) {
          onLine(std::string_view(partial).substr(start, nl - start));
          start = nl + 1;
        }
        partial.erase(0, start);
      },
      stop);
  if (!partial.empty()) onLine(partial);
  return st;
}

}  // namespace mercato::runtime::host
