#include "runtime/runc/host/userns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace mercato::runtime::host {

namespace fs = std::filesystem;

namespace {

constexpr long kNsfsMagic = 0x6e736673;

struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

// Writes `data` to an existing file without buffering (the /proc map files take one write).
bool writeAll(const std::string& path, const std::string& data) {
  Fd f(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (f.fd < 0) return false;
  return ::write(f.fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
}

// A forked child that enters namespaces and then waits, so that the parent can read its
// /proc/<pid>/ns files. The child runs only async-signal-safe calls: `enter` must be one of them.
class NsChild {
 public:
  // enterFd >= 0: the child first joins that user namespace; flags: what it then unshares.
  Status start(int enterFd, int flags) {
    if (::pipe2(ready_, O_CLOEXEC) != 0 || ::pipe2(go_, O_CLOEXEC) != 0)
      return internalError(errnoText("pipe"));
    pid_ = ::fork();
    if (pid_ < 0) return internalError(errnoText("fork"));
    if (pid_ == 0) {
      ::close(ready_[0]);
      ::close(go_[1]);
      char r = 'x';
      if (enterFd >= 0 && ::setns(enterFd, CLONE_NEWUSER) != 0) ::_exit(10);
      if (::unshare(flags) != 0) ::_exit(11);
      if (::write(ready_[1], &r, 1) != 1) ::_exit(12);
      ::close(ready_[1]);
      char c;
      (void)!::read(go_[0], &c, 1);
      ::_exit(0);
    }
    ::close(ready_[1]);
    ready_[1] = -1;
    ::close(go_[0]);
    go_[0] = -1;
    char c;
    if (::read(ready_[0], &c, 1) != 1) {
      int code = finish();
      return internalError("namespace helper failed (" +
                           std::string(code == 10   ? "setns into the user namespace"
                                       : code == 11 ? "unshare"
                                                    : "start") +
                           ", exit " + std::to_string(code) + ")");
    }
    return Status::ok();
  }
  std::string nsPath(const char* kind) const {
    return "/proc/" + std::to_string(pid_) + "/ns/" + kind;
  }
  std::string procPath(const char* file) const {
    return "/proc/" + std::to_string(pid_) + "/" + file;
  }
  // Lets the child exit and reaps it; returns its exit code (-1 if it did not start).
  int finish() {
    if (go_[1] >= 0) {
      char g = 'g';
      (void)!::write(go_[1], &g, 1);
      ::close(go_[1]);
      go_[1] = -1;
    }
    int code = -1;
    if (pid_ > 0) {
      int st = 0;
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
      code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      pid_ = -1;
    }
    return code;
  }
  ~NsChild() {
    finish();
    for (int fd : {ready_[0], ready_[1], go_[0], go_[1]})
      if (fd >= 0) ::close(fd);
  }

 private:
  pid_t pid_ = -1;
  int ready_[2] = {-1, -1};
  int go_[2] = {-1, -1};
};

Status bindNsFile(const std::string& nsFile, const std::string& target) {
  if (::mount(nsFile.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0)
    return internalError(errnoText("bind-mount " + nsFile + " on " + target));
  return Status::ok();
}

std::string claimPath(const std::string& dir, uint32_t base) {
  return dir + "/" + std::to_string(base);
}

// A claim file: the owner's data dir, then the owner label.
bool readClaim(const std::string& path, std::string& ownerDir, std::string& owner) {
  std::ifstream in(path);
  if (!in) return false;
  std::getline(in, ownerDir);
  std::getline(in, owner);
  return true;
}

class ClaimsLock {
 public:
  explicit ClaimsLock(const std::string& dir)
      : fd_(::open((dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (fd_.fd >= 0) ::flock(fd_.fd, LOCK_EX);
  }
  bool held() const { return fd_.fd >= 0; }

 private:
  Fd fd_;
};

}  // namespace

Result<IdRange> claimIdRange(const std::string& claimsDir, const std::string& ownerDir,
                             const std::string& owner) {
  if (ownerDir.find('\n') != std::string::npos || owner.find('\n') != std::string::npos)
    return invalidArgument("id range owner may not contain a newline");
  std::error_code ec;
  fs::create_directories(claimsDir, ec);
  if (ec) return internalError("cannot create " + claimsDir + ": " + ec.message());
  ClaimsLock lock(claimsDir);
  if (!lock.held()) return internalError(errnoText("cannot lock " + claimsDir + "/.lock"));
  std::set<uint32_t> taken;
  for (const auto& e : fs::directory_iterator(claimsDir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.size() > 10 ||
        name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    uint32_t base = static_cast<uint32_t>(std::stoull(name));
    std::string dir, who;
    // A claim of a data dir that no longer exists owns no files any more: reclaim it.
    if (readClaim(e.path().string(), dir, who) && !dir.empty() && !fs::exists(dir)) {
      fs::remove(e.path(), ec);
      continue;
    }
    taken.insert(base);
  }
  for (uint32_t i = 0; i < kIdPoolRanges; ++i) {
    uint32_t base = kIdPoolStart + i * kIdRangeSize;
    if (taken.count(base)) continue;
    std::string path = claimPath(claimsDir, base);
    std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << ownerDir << "\n" << owner << "\n";
      out.flush();
      if (!out) return internalError("cannot write " + tmp);
    }
    fs::rename(tmp, path, ec);
    if (ec) return internalError("cannot create claim " + path + ": " + ec.message());
    return IdRange{base, kIdRangeSize};
  }
  return resourceExhausted("no free uid/gid range: all " + std::to_string(kIdPoolRanges) +
                           " ranges under " + claimsDir + " are claimed");
}

Status releaseIdRange(const std::string& claimsDir, const IdRange& range) {
  ClaimsLock lock(claimsDir);
  std::error_code ec;
  fs::remove(claimPath(claimsDir, range.hostBase), ec);
  if (ec)
    return internalError("cannot release id range " + std::to_string(range.hostBase) + ": " +
                         ec.message());
  return Status::ok();
}

Result<std::string> idRangeOwner(const std::string& claimsDir, const IdRange& range) {
  std::string dir, owner;
  if (!readClaim(claimPath(claimsDir, range.hostBase), dir, owner))
    return notFound("id range " + std::to_string(range.hostBase) + " is not claimed");
  return owner;
}

Result<std::vector<IdRangeClaim>> listIdRangeClaims(const std::string& claimsDir) {
  std::vector<IdRangeClaim> out;
  std::error_code ec;
  if (!fs::exists(claimsDir, ec)) return out;
  ClaimsLock lock(claimsDir);
  for (const auto& e : fs::directory_iterator(claimsDir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.size() > 10 ||
        name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    IdRangeClaim c;
    c.range = IdRange{static_cast<uint32_t>(std::stoull(name)), kIdRangeSize};
    if (readClaim(e.path().string(), c.ownerDir, c.owner)) out.push_back(std::move(c));
  }
  if (ec) return internalError("cannot list " + claimsDir + ": " + ec.message());
  return out;
}

bool isNamespaceFile(const std::string& path) {
  struct statfs st {};
  return ::statfs(path.c_str(), &st) == 0 && static_cast<long>(st.f_type) == kNsfsMagic;
}

Status createUserns(const std::string& path, const IdRange& range) {
  if (range.size == 0) return invalidArgument("user namespace: empty id range");
  if (isNamespaceFile(path)) return alreadyExists("user namespace " + path + " exists");
  {
    Fd f(::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0444));
    if (f.fd < 0) return internalError(errnoText("create " + path));
  }
  NsChild child;
  Status st = child.start(-1, CLONE_NEWUSER);
  if (st.isOk()) {
    std::string map = "0 " + std::to_string(range.hostBase) + " " + std::to_string(range.size);
    if (!writeAll(child.procPath("uid_map"), map) || !writeAll(child.procPath("gid_map"), map))
      st = internalError(errnoText("user namespace: writing the id map " + map));
  }
  if (st.isOk()) st = bindNsFile(child.nsPath("user"), path);
  child.finish();
  if (!st.isOk()) ::unlink(path.c_str());
  return st;
}

Status removeUserns(const std::string& path) {
  for (int i = 0; i < 4 && isNamespaceFile(path); ++i)
    if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL)
      return internalError(errnoText("unmount " + path));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return internalError(errnoText("delete " + path));
  return Status::ok();
}

Status createNetnsInUserns(const std::string& netnsFile, const std::string& usernsPath) {
  Fd userns(::open(usernsPath.c_str(), O_RDONLY | O_CLOEXEC));
  if (userns.fd < 0) return internalError(errnoText("open user namespace " + usernsPath));
  NsChild child;
  RETURN_IF_ERROR(child.start(userns.fd, CLONE_NEWNET));
  Status st = bindNsFile(child.nsPath("net"), netnsFile);
  child.finish();
  return st;
}

Status idmapBind(const std::string& source, const std::string& target,
                 const std::string& usernsPath) {
  Fd userns(::open(usernsPath.c_str(), O_RDONLY | O_CLOEXEC));
  if (userns.fd < 0) return internalError(errnoText("open user namespace " + usernsPath));
  Fd tree(static_cast<int>(
      ::syscall(SYS_open_tree, AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  if (tree.fd < 0) return failedPrecondition(errnoText("open_tree " + source));
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns.fd);
  if (::syscall(SYS_mount_setattr, tree.fd, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0)
    return failedPrecondition(
        errnoText("id-mapped mount of " + source + " (the kernel or filesystem can't id-map)"));
  if (::syscall(SYS_move_mount, tree.fd, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) !=
      0)
    return internalError(errnoText("move_mount to " + target));
  return Status::ok();
}

}  // namespace mercato::runtime::host
