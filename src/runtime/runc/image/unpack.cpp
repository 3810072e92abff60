#include "runtime/runc/image/unpack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <set>
#include <vector>

namespace mercato::runtime::image {
namespace {

constexpr size_t kMaxDepth = 128;
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaque = ".wh..wh..opq";

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    reset(o.release());
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int f = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = f;
  }

 private:
  int fd_ = -1;
};

std::string join(const std::vector<std::string>& comps, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i) s += '/';
    s += comps[i];
  }
  return s;
}

std::string errnoText(int e) { return std::strerror(e); }

// Removes `name` in `dirfd` (recursively for directories) without following symlinks.
Status removeAt(int dirfd, const std::string& name, int depth = 0) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::ok();
    return internalError("stat " + name + ": " + errnoText(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    if (depth > 4096) return internalError("directory tree too deep to remove at " + name);
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return internalError("open " + name + ": " + errnoText(errno));
    DIR* d = ::fdopendir(fd);
    if (!d) {
      ::close(fd);
      return internalError("fdopendir " + name);
    }
    std::vector<std::string> children;
    while (dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n != "." && n != "..") children.emplace_back(n);
    }
    Status st2;
    for (const auto& c : children) {
      st2 = removeAt(::dirfd(d), c, depth + 1);
      if (!st2.isOk()) break;
    }
    ::closedir(d);
    RETURN_IF_ERROR(st2);
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0)
      return internalError("rmdir " + name + ": " + errnoText(errno));
    return Status::ok();
  }
  if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT)
    return internalError("unlink " + name + ": " + errnoText(errno));
  return Status::ok();
}

struct DirFixup {
  std::vector<std::string> comps;
  mode_t mode;
  uid_t uid;
  gid_t gid;
  timespec mtime;
};

class Applier {
 public:
  Applier(int rootFd, UnpackBudget& budget, std::string what)
      : rootFd_(rootFd), budget_(budget), what_(std::move(what)), asRoot_(::geteuid() == 0) {}

  Status run(archive* a) {
    archive_entry* entry = nullptr;
    for (;;) {
      int r = archive_read_next_header(a, &entry);
      if (r == ARCHIVE_EOF) break;
      if (r == ARCHIVE_RETRY) continue;
      if (r < ARCHIVE_WARN) return bad("", std::string("unreadable archive: ") + archiveError(a));
      RETURN_IF_ERROR(applyEntry(a, entry));
    }
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      auto fd = openDir(it->comps, it->comps.size(), false);
      if (!fd.isOk()) continue;  // removed by a later whiteout
      int f = fd->get();
      if (asRoot_) (void)::fchown(f, it->uid, it->gid);
      ::fchmod(f, it->mode & 07777);
      timespec ts[2] = {it->mtime, it->mtime};
      ::futimens(f, ts);
    }
    return Status::ok();
  }

 private:
  static const char* archiveError(archive* a) {
    const char* e = archive_error_string(a);
    return e ? e : "unknown libarchive error";
  }

  Status bad(const std::string& path, const std::string& why) const {
    return invalidArgument(what_ + ": entry \"" + path.substr(0, 200) + "\": " + why);
  }

  Result<std::vector<std::string>> clean(const char* raw, const std::string& label) const {
    if (!raw) return bad("?", label + " is not valid in the archive's character set");
    std::string_view s = raw;
    if (s.empty()) return bad("", label + " is empty");
    if (s.front() == '/') return bad(std::string(s), label + " is absolute");
    std::vector<std::string> comps;
    size_t start = 0;
    while (start <= s.size()) {
      size_t slash = s.find('/', start);
      std::string_view c = s.substr(start, slash == s.npos ? s.npos : slash - start);
      if (c == "..") return bad(std::string(s), label + " has a \"..\" component");
      if (!c.empty() && c != ".") comps.emplace_back(c);
      if (slash == s.npos) break;
      start = slash + 1;
    }
    if (comps.size() > kMaxDepth)
      return bad(std::string(s), label + " is deeper than " + std::to_string(kMaxDepth));
    return comps;
  }

  // Opens the directory made of the first n components, never following a symlink. With create,
  // missing directories are made (0755, root-owned) and remembered as this layer's.
  Result<Fd> openDir(const std::vector<std::string>& comps, size_t n, bool create) {
    Fd cur(::dup(rootFd_));
    if (cur.get() < 0) return internalError("dup: " + errnoText(errno));
    for (size_t i = 0; i < n; ++i) {
      const std::string& c = comps[i];
      int fd = ::openat(cur.get(), c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT && create) {
        if (::mkdirat(cur.get(), c.c_str(), 0755) != 0 && errno != EEXIST)
          return internalError(what_ + ": mkdir " + join(comps, i + 1) + ": " + errnoText(errno));
        created_.insert(join(comps, i + 1));
        fd = ::openat(cur.get(), c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      }
      if (fd < 0) {
        int e = errno;
        struct stat st {};
        if (::fstatat(cur.get(), c.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
          return bad(join(comps, comps.size()), "path goes through the symlink \"" +
                                                    join(comps, i + 1) +
                                                    "\" (writing through symlinks is refused)");
        if (e == ENOENT) return notFound(join(comps, i + 1));
        if (e == ENOTDIR)
          return bad(join(comps, comps.size()),
                     "parent \"" + join(comps, i + 1) + "\" is not a directory");
        return internalError(what_ + ": open " + join(comps, i + 1) + ": " + errnoText(e));
      }
      cur.reset(fd);
    }
    return cur;
  }

  Status whiteout(const std::vector<std::string>& comps, const std::string& path) {
    const std::string& name = comps.back();
    size_t parentN = comps.size() - 1;
    if (name == kOpaque) {
      ASSIGN_OR_RETURN(Fd dir, openDir(comps, parentN, true));
      std::string prefix = join(comps, parentN);
      DIR* d = ::fdopendir(::dup(dir.get()));
      if (!d) return internalError(what_ + ": opendir " + prefix);
      std::vector<std::string> victims;
      ::rewinddir(d);
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        std::string full = prefix.empty() ? n : prefix + "/" + n;
        if (!created_.count(full)) victims.push_back(n);
      }
      ::closedir(d);
      for (const auto& v : victims) RETURN_IF_ERROR(removeAt(dir.get(), v));
      return Status::ok();
    }
    std::string target = name.substr(kWhiteoutPrefix.size());
    if (target.empty() || target == "." || target == "..")
      return bad(path, "whiteout names no file");
    auto dir = openDir(comps, parentN, false);
    if (!dir.isOk()) {
      if (dir.status().code() == Code::kNotFound) return Status::ok();  // nothing to hide
      return dir.status();
    }
    return removeAt(dir->get(), target);
  }

  Status applyEntry(archive* a, archive_entry* e) {
    if (++budget_.entries > budget_.maxEntries)
      return tooLarge(what_ + ": more than " + std::to_string(budget_.maxEntries) +
                      " entries in the image");
    ASSIGN_OR_RETURN(auto comps, clean(archive_entry_pathname(e), "path"));
    std::string path = join(comps, comps.size());
    if (comps.empty()) return Status::ok();  // "./": the rootfs itself keeps its own metadata
    const std::string& name = comps.back();
    if (name.compare(0, kWhiteoutPrefix.size(), kWhiteoutPrefix) == 0) return whiteout(comps, path);

    mode_t type = archive_entry_filetype(e);
    const char* hardlink = archive_entry_hardlink(e);
    if (!hardlink) {
      if (type == AE_IFCHR || type == AE_IFBLK)
        return bad(path, "device nodes are not allowed in image layers");
      if (type == AE_IFSOCK) return bad(path, "sockets are not allowed in image layers");
      if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && type != AE_IFIFO)
        return bad(path, "unsupported entry type");
    }
    ASSIGN_OR_RETURN(Fd parent, openDir(comps, comps.size() - 1, true));
    int pfd = parent.get();
    const char* cname = name.c_str();
    struct stat existing {};
    bool exists = ::fstatat(pfd, cname, &existing, AT_SYMLINK_NOFOLLOW) == 0;
    uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
    gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
    mode_t perm = archive_entry_perm(e) & 07777;
    timespec mtime{archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
    timespec times[2] = {mtime, mtime};
    created_.insert(path);

    if (hardlink) {
      ASSIGN_OR_RETURN(auto target, clean(hardlink, "hardlink target"));
      if (target.empty()) return bad(path, "hardlink target is the rootfs itself");
      auto tdir = openDir(target, target.size() - 1, false);
      if (!tdir.isOk()) {
        if (tdir.status().code() == Code::kNotFound)
          return bad(path,
                     "hardlink target \"" + join(target, target.size()) + "\" does not exist");
        return tdir.status();
      }
      struct stat ts {};
      if (::fstatat(tdir->get(), target.back().c_str(), &ts, AT_SYMLINK_NOFOLLOW) != 0)
        return bad(path, "hardlink target \"" + join(target, target.size()) + "\" does not exist");
      if (S_ISDIR(ts.st_mode)) return bad(path, "hardlink to a directory");
      if (join(target, target.size()) == path) return Status::ok();
      if (exists) RETURN_IF_ERROR(removeAt(pfd, name));
      if (::linkat(tdir->get(), target.back().c_str(), pfd, cname, 0) != 0)
        return internalError(what_ + ": link " + path + ": " + errnoText(errno));
      return Status::ok();
    }

    switch (type) {
      case AE_IFDIR: {
        if (exists && !S_ISDIR(existing.st_mode)) {
          RETURN_IF_ERROR(removeAt(pfd, name));
          exists = false;
        }
        if (!exists && ::mkdirat(pfd, cname, 0700) != 0)
          return internalError(what_ + ": mkdir " + path + ": " + errnoText(errno));
        dirs_.push_back({comps, perm, uid, gid, mtime});
        return Status::ok();
      }
      case AE_IFREG: {
        int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
        if (size < 0) return bad(path, "negative size");
        if (budget_.usedBytes + static_cast<uint64_t>(size) > budget_.maxBytes)
          return tooLarge(what_ + ": unpacking \"" + path + "\" would exceed the image quota of " +
                          std::to_string(budget_.maxBytes) + " bytes");
        budget_.usedBytes += static_cast<uint64_t>(size);
        if (exists) RETURN_IF_ERROR(removeAt(pfd, name));
        Fd f(::openat(pfd, cname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (f.get() < 0) return internalError(what_ + ": create " + path + ": " + errnoText(errno));
        const void* buf;
        size_t len;
        la_int64_t off;
        for (;;) {
          int r = archive_read_data_block(a, &buf, &len, &off);
          if (r == ARCHIVE_EOF) break;
          if (r < ARCHIVE_WARN)
            return bad(path, std::string("unreadable data: ") + archiveError(a));
          if (off < 0 || static_cast<uint64_t>(off) + len > static_cast<uint64_t>(size))
            return bad(path, "data beyond the declared size");
          const char* p = static_cast<const char*>(buf);
          while (len > 0) {
            ssize_t w = ::pwrite(f.get(), p, len, off);
            if (w < 0) {
              if (errno == EINTR) continue;
              return internalError(what_ + ": write " + path + ": " + errnoText(errno));
            }
            p += w;
            off += w;
            len -= static_cast<size_t>(w);
          }
        }
        if (::ftruncate(f.get(), size) != 0)
          return internalError(what_ + ": truncate " + path + ": " + errnoText(errno));
        if (asRoot_ && ::fchown(f.get(), uid, gid) != 0)
          return internalError(what_ + ": chown " + path + ": " + errnoText(errno));
        ::fchmod(f.get(), perm);
        ::futimens(f.get(), times);
        return Status::ok();
      }
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (!target || !*target) return bad(path, "symlink without a target");
        if (exists) RETURN_IF_ERROR(removeAt(pfd, name));
        if (::symlinkat(target, pfd, cname) != 0)
          return internalError(what_ + ": symlink " + path + ": " + errnoText(errno));
        if (asRoot_) (void)::fchownat(pfd, cname, uid, gid, AT_SYMLINK_NOFOLLOW);
        ::utimensat(pfd, cname, times, AT_SYMLINK_NOFOLLOW);
        return Status::ok();
      }
      case AE_IFIFO: {
        if (exists) RETURN_IF_ERROR(removeAt(pfd, name));
        if (::mkfifoat(pfd, cname, 0600) != 0)
          return internalError(what_ + ": mkfifo " + path + ": " + errnoText(errno));
        if (asRoot_) (void)::fchownat(pfd, cname, uid, gid, AT_SYMLINK_NOFOLLOW);
        ::fchmodat(pfd, cname, perm, 0);  // a FIFO we just made, not a symlink
        ::utimensat(pfd, cname, times, AT_SYMLINK_NOFOLLOW);
        return Status::ok();
      }
      default:
        return bad(path, "unsupported entry type");
    }
  }

  int rootFd_;
  UnpackBudget& budget_;
  std::string what_;
  bool asRoot_;
  std::set<std::string> created_;  // paths this layer made (kept by an opaque whiteout)
  std::vector<DirFixup> dirs_;
};

Status applyWith(const std::function<int(archive*)>& open, const std::string& rootfs,
                 UnpackBudget& budget, const std::string& what) {
  Fd root(::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0)
    return internalError("cannot open rootfs " + rootfs + ": " + errnoText(errno));
  archive* a = archive_read_new();
  if (!a) return internalError("archive_read_new failed");
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_empty(a);
  Status st;
  if (open(a) != ARCHIVE_OK) {
    const char* e = archive_error_string(a);
    st = invalidArgument(what + ": not a tar or tar+gzip layer: " + (e ? e : "unreadable"));
  } else {
    Applier applier(root.get(), budget, what);
    st = applier.run(a);
  }
  archive_read_free(a);
  return st;
}

}  // namespace

Status applyLayer(const std::string& layerPath, const std::string& rootfs, UnpackBudget& budget,
                  const std::string& what) {
  return applyWith(
      [&](archive* a) { return archive_read_open_filename(a, layerPath.c_str(), 1 << 20); }, rootfs,
      budget, what);
}

Status applyLayerBytes(const void* data, size_t size, const std::string& rootfs,
                       UnpackBudget& budget, const std::string& what) {
  return applyWith([&](archive* a) { return archive_read_open_memory(a, data, size); }, rootfs,
                   budget, what);
}

}  // namespace mercato::runtime::image
