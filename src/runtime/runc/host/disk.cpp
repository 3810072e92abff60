#include "runtime/runc/host/disk.hpp"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "common/subprocess.hpp"

namespace mercato::runtime::host {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

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

std::mutex gTemplateMu;

// Formats (once per size) the template image every disk of that size is copied from.
Result<std::string> templateFor(const std::string& dir, int64_t bytes) {
  std::string path = dir + "/ext4-" + std::to_string(bytes) + ".img";
  std::lock_guard lock(gTemplateMu);
  if (fs::exists(path)) return path;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return internalError("cannot create " + dir + ": " + ec.message());
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  fs::remove(tmp, ec);
  {
    Fd f(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (f.fd < 0 || ::ftruncate(f.fd, bytes) != 0)
      return internalError(errnoText("create template " + tmp));
  }
  // No journal (the layer is scratch space that dies with the instance), no reserved blocks,
  // no resize inode, lazy inode tables: formatting touches as few blocks as possible.
  ProcessSpec spec;
  spec.argv = {"mkfs.ext4",
               "-q",
               "-F",
               "-O",
               "^has_journal,^resize_inode",
               "-E",
               "nodiscard,lazy_itable_init=1,lazy_journal_init=1",
               "-m",
               "0",
               "-L",
               "mercato-disk",
               tmp};
  spec.timeout = 60s;
  auto r = runProcess(spec);
  if (!r.isOk() || !r->ok()) {
    fs::remove(tmp, ec);
    return unavailable("mkfs.ext4 for a " + std::to_string(bytes) +
                       "-byte disk failed: " + (r.isOk() ? r->err : r.status().message()));
  }
  fs::rename(tmp, path, ec);
  if (ec) return internalError("cannot publish template " + path + ": " + ec.message());
  return path;
}

// Copies only the data extents of a sparse file (SEEK_DATA/SEEK_HOLE); the holes stay holes.
Status sparseCopy(const std::string& from, const std::string& to) {
  Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) return internalError(errnoText("open " + from));
  struct stat st {};
  if (::fstat(in.fd, &st) != 0) return internalError(errnoText("stat " + from));
  Fd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (out.fd < 0) return internalError(errnoText("create " + to));
  if (::ftruncate(out.fd, st.st_size) != 0) return internalError(errnoText("size " + to));
  off_t pos = 0;
  while (pos < st.st_size) {
    off_t data = ::lseek(in.fd, pos, SEEK_DATA);
    if (data < 0) break;  // ENXIO: only a hole is left
    off_t hole = ::lseek(in.fd, data, SEEK_HOLE);
    if (hole < 0) hole = st.st_size;
    loff_t src = data, dst = data;
    size_t left = static_cast<size_t>(hole - data);
    while (left > 0) {
      ssize_t n = ::copy_file_range(in.fd, &src, out.fd, &dst, left, 0);
      if (n <= 0) return internalError(errnoText("copy " + from + " to " + to));
      left -= static_cast<size_t>(n);
    }
    pos = hole;
  }
  return Status::ok();
}

// Attaches `image` to a free loop device (AUTOCLEAR) and mounts it; the device detaches itself
// when the filesystem is unmounted, or at once if the mount fails.
Status attachAndMount(const std::string& image, const std::string& mountPoint) {
  Fd backing(::open(image.c_str(), O_RDWR | O_CLOEXEC));
  if (backing.fd < 0) return internalError(errnoText("open " + image));
  Fd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (control.fd < 0) return unavailable(errnoText("open /dev/loop-control"));
  // Another process may take the device between GET_FREE and CONFIGURE: try again.
  for (int attempt = 0; attempt < 16; ++attempt) {
    int n = ::ioctl(control.fd, LOOP_CTL_GET_FREE);
    if (n < 0) return unavailable(errnoText("no free loop device"));
    std::string dev = "/dev/loop" + std::to_string(n);
    Fd loop(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
    if (loop.fd < 0) {
      if (errno == ENOENT) {  // devtmpfs has not made the node yet
        std::this_thread::sleep_for(1ms);
        continue;
      }
      return unavailable(errnoText("open " + dev));
    }
    struct loop_config cfg {};
    cfg.fd = static_cast<uint32_t>(backing.fd);
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (::ioctl(loop.fd, LOOP_CONFIGURE, &cfg) != 0) {
      if (errno == EBUSY) continue;
      return unavailable(errnoText("attach " + image + " to " + dev));
    }
    if (::mount(dev.c_str(), mountPoint.c_str(), "ext4", MS_NODEV | MS_NOSUID, "discard") != 0)
      return unavailable(errnoText("mount " + dev + " (" + image + ") on " + mountPoint));
    return Status::ok();  // closing `loop` now leaves the mount as the device's only user
  }
  return unavailable("no free loop device after 16 attempts");
}

}  // namespace

bool isMountPoint(const std::string& path) {
  struct stat self {
  }, parent{};
  if (::lstat(path.c_str(), &self) != 0) return false;
  if (::lstat((path + "/..").c_str(), &parent) != 0) return false;
  return self.st_dev != parent.st_dev || self.st_ino == parent.st_ino;
}

Status createDisk(const DiskRequest& r) {
  if (r.bytes < kMinDiskBytes)
    return invalidArgument("disk size " + std::to_string(r.bytes) + " bytes is below the " +
                           std::to_string(kMinDiskBytes >> 20) + " MiB minimum");
  struct statvfs vfs {};
  std::string hostDir = fs::path(r.imageFile).parent_path().string();
  if (::statvfs(hostDir.c_str(), &vfs) == 0) {
    int64_t avail = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
    if (avail < r.bytes)
      return resourceExhausted("disk of " + std::to_string(r.bytes >> 20) + " MiB does not fit: " +
                               std::to_string(avail >> 20) + " MiB free on the host");
  }
  ASSIGN_OR_RETURN(std::string tmpl, templateFor(r.templateDir, r.bytes));
  std::error_code ec;
  fs::remove(r.imageFile, ec);
  if (Status s = sparseCopy(tmpl, r.imageFile); !s.isOk()) {
    fs::remove(r.imageFile, ec);
    return s;
  }
  if (Status s = attachAndMount(r.imageFile, r.mountPoint); !s.isOk()) {
    fs::remove(r.imageFile, ec);
    return s;
  }
  if (::chown(r.mountPoint.c_str(), r.rootUid, r.rootGid) != 0) {
    Status s = internalError(errnoText("chown " + r.mountPoint));
    (void)removeDisk(r.mountPoint, r.imageFile);
    return s;
  }
  fs::remove_all(r.mountPoint + "/lost+found", ec);
  return Status::ok();
}

Status mountDisk(const std::string& imageFile, const std::string& mountPoint) {
  if (!fs::exists(imageFile)) return notFound("disk image " + imageFile + " is missing");
  if (isMountPoint(mountPoint)) return Status::ok();
  return attachAndMount(imageFile, mountPoint);
}

Status removeDisk(const std::string& mountPoint, const std::string& imageFile) {
  for (int i = 0; i < 8 && isMountPoint(mountPoint); ++i) {
    if (::umount2(mountPoint.c_str(), 0) != 0) {
      if (errno == EBUSY) {
        ::umount2(mountPoint.c_str(), MNT_DETACH);
      } else if (errno != EINVAL && errno != ENOENT) {
        return internalError(errnoText("unmount " + mountPoint));
      }
    }
  }
  if (isMountPoint(mountPoint)) return internalError(mountPoint + " is still mounted");
  std::error_code ec;
  fs::remove(imageFile, ec);
  if (ec) return internalError("cannot delete " + imageFile + ": " + ec.message());
  return Status::ok();
}

Result<DiskUsage> diskUsage(const std::string& mountPoint) {
  struct statfs st {};
  if (::statfs(mountPoint.c_str(), &st) != 0)
    return internalError(errnoText("statfs " + mountPoint));
  DiskUsage u;
  u.totalBytes = static_cast<int64_t>(st.f_blocks) * st.f_bsize;
  u.usedBytes = static_cast<int64_t>(st.f_blocks - st.f_bfree) * st.f_bsize;
  return u;
}

}  // namespace mercato::runtime::host
