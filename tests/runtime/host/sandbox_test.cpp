// The tenant sandbox tried from inside real containers (label runc: root, runc, busybox-static).
// Each test runs `runc run` of a busybox rootfs with sandbox_probe (sandbox_probe.c, static)
// copied in as /bin/probe; the probe prints "<op> ok" or "<op> errno=N" per operation.
//
// The reference runs (no seccomp section, or extra capabilities) show that each probe does
// succeed without the filter here, so a refusal under the default profile comes from seccomp and
// not from the kernel's own configuration.
#include <unistd.h>

#include <filesystem>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <sys/mount.h>

#include "common/subprocess.hpp"
#include "runtime/runc/host/metering.hpp"
#include "runtime/runc/host/oci_spec.hpp"
#include "runtime/runc/host/runc.hpp"
#include "runtime/runc/host/shim.hpp"
#include "runtime/runc/host/userns.hpp"
#include "test_util.hpp"

namespace mercato::runtime::host {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using testing::TempDir;

// "key value" and "key=value" lines of a run's output: the probe's "<op> ok" / "<op> errno=N"
// and the scripts' "name=$?" lines. A later line with the same key wins.
std::map<std::string, std::string> parseLines(const std::string& out) {
  std::map<std::string, std::string> m;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    auto sep = line.find_first_of(" =\t");
    if (sep == std::string::npos) continue;
    std::string key = line.substr(0, sep);
    std::string value = line.substr(sep + 1);
    while (!value.empty() && (value[0] == ' ' || value[0] == '\t')) value.erase(0, 1);
    m[key] = value;
  }
  return m;
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = testing::runcUnavailableReason();
    if (!why.empty()) GTEST_SKIP() << "sandbox tests: " << why;
    rootfs_ = dir_ / "rootfs";
    testing::buildBusyboxRootfs(rootfs_);
    fs::create_directories(fs::path(rootfs_) / "mnt");
    fs::copy_file(MERCATO_SANDBOX_PROBE, rootfs_ + "/bin/probe",
                  fs::copy_options::overwrite_existing);
    runc_ = Runc(kDefaultRuncBinary, dir_ / "runc-root");
  }
  void TearDown() override {
    for (const auto& id : ids_) {
      (void)runc_.remove(id, /*force=*/true);
      (void)removeCgroup("/mercato/" + id);
    }
  }

  // Writes the bundle of a container running `sh -c script`; `tweak` edits the config and
  // `edit` the generated spec (to simulate a failure of runc's own hardening).
  std::string bundle(const std::string& id, const std::string& script,
                     const std::function<void(ContainerConfig&)>& tweak,
                     const std::function<void(json&)>& edit) {
    ids_.push_back(id);
    ContainerConfig c;
    c.id = id;
    c.rootfs = rootfs_;
    c.args = {"sh", "-c", script};
    if (tweak) tweak(c);
    auto spec = makeOciSpec(c);
    EXPECT_TRUE(spec.isOk()) << spec.status().toString();
    if (!spec.isOk()) return "";
    if (edit) edit(*spec);
    std::string dir = dir_ / id;
    EXPECT_TRUE(writeBundleConfig(dir, *spec).isOk());
    return dir;
  }

  // Runs `sh -c script` in a fresh container to completion (runc run, no shim) and returns the
  // parsed output; the raw output is kept in lastOutput_ for failure messages.
  std::map<std::string, std::string> run(const std::string& script,
                                         const std::function<void(ContainerConfig&)>& tweak = {},
                                         const std::function<void(json&)>& edit = {}) {
    std::string id = testing::uniqueName();
    std::string dir = bundle(id, script, tweak, edit);
    if (dir.empty()) return {};
    ProcessSpec p;
    p.argv = {runc_.binary(), "--root", runc_.root(), "run", "--bundle", dir, id};
    p.timeout = 60s;
    auto r = runProcess(p);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    if (!r.isOk()) return {};
    lastOutput_ =
        "exit " + std::to_string(r->exitCode) + "\n--- stdout\n" + r->out + "--- stderr\n" + r->err;
    EXPECT_FALSE(r->timedOut) << lastOutput_;
    return parseLines(r->out);
  }

  TempDir dir_;
  std::string rootfs_;
  Runc runc_;
  std::vector<std::string> ids_;
  std::string lastOutput_;
};

// Runs each probe op ("op" or "op arg") of `ops` in turn.
std::string probes(const std::vector<std::string>& ops) {
  std::string s;
  for (const auto& op : ops) s += "probe " + op + "; ";
  return s;
}

void addCapability(json& spec, const std::string& cap) {
  for (const char* set : {"bounding", "effective", "permitted"})
    spec["process"]["capabilities"][set].push_back(cap);
}

TEST_F(SandboxTest, DefaultProfileRefusesTheEscapeRoutes) {
  const std::string hostPid = std::to_string(getpid());
  auto m =
      run("grep '^Seccomp:' /proc/self/status; " +
          probes({"unshare_user",    "unshare_mount",    "unshare_net", "clone_newuser",
                  "clone_newns",     "clone3",           "setns",       "mount_tmpfs /mnt",
                  "fsopen",          "keyctl",           "add_key",     "bpf",
                  "perf_event_open", "userfaultfd",      "io_uring",    "ptrace 1",
                  "ptrace_child",    "process_vm_readv", "kcmp",        "personality 0x0040000",
                  "vsock",           "kexec_load",       "init_module"}) +
          // The same through busybox, as a tenant's shell would try it.
          // An x32 syscall: its ABI is not in the filter, so the thread is killed (SIGSYS).
          "probe x32_getpid; echo x32_exit=$?; "
          "unshare -U -r true 2>/dev/null; echo busybox_unshare_U_r=$?; "
          "unshare -m true 2>/dev/null; echo busybox_unshare_m=$?; "
          "unshare -n true 2>/dev/null; echo busybox_unshare_n=$?; "
          "mount -t tmpfs none /mnt 2>/dev/null; echo busybox_mount=$?; "
          // The pid namespace: only the container's own processes are visible (no host process
          // to ptrace in the first place).
          "[ -e /proc/" +
          hostPid +
          " ] && echo host_pid_visible=yes || echo host_pid_visible=no; "
          "echo processes=$(ls -d /proc/[0-9]* | wc -l)");
  EXPECT_EQ(m["Seccomp:"], "2") << lastOutput_;
  for (const char* op :
       {"unshare_user", "unshare_mount",    "unshare_net", "clone_newuser", "clone_newns",
        "setns",        "mount_tmpfs",      "fsopen",      "keyctl",        "add_key",
        "bpf",          "perf_event_open",  "userfaultfd", "io_uring",      "ptrace",
        "ptrace_child", "process_vm_readv", "kcmp",        "personality",   "vsock",
        "kexec_load",   "init_module"})
    EXPECT_EQ(m[op], "errno=1") << op << "\n" << lastOutput_;
  EXPECT_EQ(m["clone3"], "errno=38") << lastOutput_;  // ENOSYS, so libc falls back to clone
  for (const char* cmd :
       {"busybox_unshare_U_r", "busybox_unshare_m", "busybox_unshare_n", "busybox_mount"})
    EXPECT_NE(m[cmd], "0") << cmd << "\n" << lastOutput_;
#if defined(__x86_64__)
  EXPECT_EQ(m["x32_exit"], "159") << lastOutput_;  // 128 + SIGSYS
#endif
  EXPECT_EQ(m["host_pid_visible"], "no") << lastOutput_;
  // sh, the probe's subshell... : a handful, never the host's hundreds.
  ASSERT_FALSE(m["processes"].empty()) << lastOutput_;
  EXPECT_LE(std::stoi(m["processes"]), 10) << lastOutput_;
}

TEST_F(SandboxTest, OrdinaryProgramsStillWork) {
  auto m = run(probes({"fork", "thread", "tcp", "events", "clone_plain", "unshare_files",
                       "personality 0xffffffff"}) +
               "ls / >/dev/null; echo ls=$?; "
               "echo piped | cat >/dev/null; echo pipe=$?; "
               "(sleep 0.05 & wait); echo background=$?; "
               "sh -c 'exit 3'; echo subshell=$?; "
               "touch /tmp/f && mv /tmp/f /tmp/g && rm /tmp/g; echo files=$?; "
               "date >/dev/null; echo date=$?; "
               "ps >/dev/null; echo ps=$?; "
               "hostname >/dev/null; echo hostname=$?");
  for (const char* op :
       {"fork", "thread", "tcp", "events", "clone_plain", "unshare_files", "personality"})
    EXPECT_EQ(m[op], "ok") << op << "\n" << lastOutput_;
  for (const char* cmd : {"ls", "pipe", "background", "files", "date", "ps", "hostname"})
    EXPECT_EQ(m[cmd], "0") << cmd << "\n" << lastOutput_;
  EXPECT_EQ(m["subshell"], "3") << lastOutput_;
}

// runc exec (the gateway's shell and exec) enters with the same filter as the container.
TEST_F(SandboxTest, ExecIsFilteredToo) {
  std::string id = testing::uniqueName();
  std::string dir = bundle(id, "sleep 30", {}, {});
  ASSERT_FALSE(dir.empty());
  ShimOptions o;
  o.shimBinary = MERCATO_SHIM_BINARY;
  o.runcRoot = runc_.root();
  o.id = id;
  o.bundleDir = dir;
  o.stdoutLog = dir + "/stdout.log";
  o.stderrLog = dir + "/stderr.log";
  o.exitFile = dir + "/exit.json";
  auto filled = withShimDefaults(o);
  ASSERT_TRUE(filled.isOk()) << filled.status().toString();
  auto started = startContainer(*filled);
  ASSERT_TRUE(started.isOk()) << started.status().toString();
  ExecOptions ex;
  ex.args = {"sh", "-c",
             "grep '^Seccomp:' /proc/self/status /proc/1/status | sed 's/.*://'; " +
                 probes({"unshare_user", "mount_tmpfs /mnt", "keyctl", "fork"})};
  ex.timeout = 30s;
  auto r = runc_.exec(id, ex);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  auto m = parseLines(r->stdoutData);
  EXPECT_EQ(r->stdoutData.substr(0, r->stdoutData.find("unshare_user")), "\t2\n\t2\n")
      << r->stdoutData;
  EXPECT_EQ(m["unshare_user"], "errno=1") << r->stdoutData;
  EXPECT_EQ(m["mount_tmpfs"], "errno=1") << r->stdoutData;
  EXPECT_EQ(m["keyctl"], "errno=1") << r->stdoutData;
  EXPECT_EQ(m["fork"], "ok") << r->stdoutData;
  EXPECT_TRUE(runc_.kill(id, SIGKILL).isOk());
}

// Without the seccomp section the same probes succeed here: the errnos above are the filter's.
TEST_F(SandboxTest, ReferenceWithoutSeccompIsOpen) {
  auto m =
      run("grep '^Seccomp:' /proc/self/status; " +
              probes({"unshare_user", "clone_newuser", "clone3", "keyctl", "add_key", "userfaultfd",
                      "ptrace_child", "process_vm_readv", "kcmp", "personality 0x0040000"}),
          [](ContainerConfig& c) { c.seccomp = false; });
  EXPECT_EQ(m["Seccomp:"], "0") << lastOutput_;
  for (const char* op : {"unshare_user", "clone_newuser", "clone3", "keyctl", "add_key",
                         "userfaultfd", "ptrace_child", "process_vm_readv", "kcmp", "personality"})
    EXPECT_EQ(m[op], "ok") << op << "\n" << lastOutput_;
}

// A provider's relaxation (RuntimeConfig::sandbox.seccompAllow) reaches the container; the
// other groups stay blocked.
TEST_F(SandboxTest, PtraceRelaxedByTheProvider) {
  auto m = run("grep '^Seccomp:' /proc/self/status; " +
                   probes({"ptrace_child", "ptrace 1", "process_vm_readv", "kcmp", "unshare_user",
                           "bpf", "io_uring", "personality 0x0040000"}),
               [](ContainerConfig& c) { c.seccompAllow = {"ptrace"}; });
  EXPECT_EQ(m["Seccomp:"], "2") << lastOutput_;
  for (const char* op : {"ptrace_child", "ptrace", "process_vm_readv", "kcmp"})
    EXPECT_EQ(m[op], "ok") << op << "\n" << lastOutput_;
  for (const char* op : {"unshare_user", "bpf", "io_uring", "personality"})
    EXPECT_EQ(m[op], "errno=1") << op << "\n" << lastOutput_;
}

// The x32 group puts the ABI back in the filter: the same syscall reaches the kernel (which
// runs it, or answers ENOSYS where x32 is not built in).
TEST_F(SandboxTest, X32RelaxedByTheProvider) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "x32 is an x86_64 ABI";
#endif
  auto m = run("probe x32_getpid; echo x32_exit=$?",
               [](ContainerConfig& c) { c.seccompAllow = {"x32"}; });
  EXPECT_TRUE(m["x32_getpid"] == "ok" || m["x32_getpid"] == "errno=38") << lastOutput_;
  EXPECT_NE(m["x32_exit"], "159") << lastOutput_;
}

// runc 1.1.5 lacks the 2025 fixes of its masked-path handling (docs/runc-host.md). Simulate the
// masking failing altogether: no maskedPaths, no readonlyPaths. The tenant still can't mount a
// fresh procfs, bind or remount /proc/sys, or make the namespaces that would let it.
TEST_F(SandboxTest, MaskingFailureStillAllowsNoMount) {
  auto noMasks = [](json& spec) {
    spec["linux"].erase("maskedPaths");
    spec["linux"].erase("readonlyPaths");
  };
  auto m = run(
      // The simulation took: /proc/sys and /proc/kcore are no longer mount points.
      "echo masks=$(grep -c -e ' /proc/sys ' -e ' /proc/kcore ' /proc/self/mountinfo); " +
          probes({"mount_tmpfs /mnt", "bind_proc_sys", "remount_proc_sys_rw", "fsopen",
                  "unshare_user", "unshare_mount", "clone_newuser"}) +
          "mount -t proc proc /mnt 2>/dev/null; echo busybox_mount_proc=$?; "
          "mount -o remount,ro /proc 2>/dev/null; echo busybox_remount_proc=$?",
      {}, noMasks);
  EXPECT_EQ(m["masks"], "0") << lastOutput_;
  for (const char* op : {"mount_tmpfs", "bind_proc_sys", "remount_proc_sys_rw", "fsopen",
                         "unshare_user", "unshare_mount", "clone_newuser"})
    EXPECT_EQ(m[op], "errno=1") << op << "\n" << lastOutput_;
  EXPECT_NE(m["busybox_mount_proc"], "0") << lastOutput_;
  EXPECT_NE(m["busybox_remount_proc"], "0") << lastOutput_;
}

// The read-only /proc/sys holds through the seccomp profile alone even if the capability set
// were wrong (CAP_SYS_ADMIN granted); the reference shows that without the filter it does not.
TEST_F(SandboxTest, ReadonlyProcSysHoldsEvenWithSysAdmin) {
  auto sysAdmin = [](json& spec) { addCapability(spec, "CAP_SYS_ADMIN"); };
  const std::string script =
      probes({"umount_proc_sys", "remount_proc_sys_rw", "mount_tmpfs /mnt"}) +
      "echo mercato-probe > /proc/sys/kernel/hostname 2>/dev/null; "
      "echo write=$?";
  auto m = run(script, {}, sysAdmin);
  for (const char* op : {"umount_proc_sys", "remount_proc_sys_rw", "mount_tmpfs"})
    EXPECT_EQ(m[op], "errno=1") << op << "\n" << lastOutput_;
  EXPECT_NE(m["write"], "0") << lastOutput_;

  // Reference: same capabilities, no filter. (kernel.hostname is per UTS namespace: the write
  // changes only the container's own hostname.)
  auto ref = run(
      probes({"remount_proc_sys_rw", "mount_tmpfs /mnt"}) +
          "echo mercato-probe > /proc/sys/kernel/hostname; echo write=$?",
      [](ContainerConfig& c) { c.seccomp = false; }, sysAdmin);
  EXPECT_EQ(ref["remount_proc_sys_rw"], "ok") << lastOutput_;
  EXPECT_EQ(ref["mount_tmpfs"], "ok") << lastOutput_;
  EXPECT_EQ(ref["write"], "0") << lastOutput_;
}

// runc 1.1.5 lacks the 2025 fixes for its masking of /proc (CVE-2025-31133, -52565, -52881).
// Even with no masked or read-only path and no seccomp filter at all, the user namespace keeps
// container root out of the host's sysctls: /proc/sys belongs to the host's user namespace. The
// reference without the user namespace shows the same spec would have been open.
TEST_F(SandboxTest, UserNamespaceKeepsHostSysctlsReadOnlyWithoutMasksOrSeccomp) {
  const IdRange ids{kIdPoolStart + 16383u * kIdRangeSize, kIdRangeSize};  // the pool's last
  const std::string userns = dir_ / "userns";
  ASSERT_TRUE(createUserns(userns, ids).isOk());
  struct Cleanup {
    std::string userns, lower;
    ~Cleanup() {
      ::umount2(lower.c_str(), MNT_DETACH);
      (void)removeUserns(userns);
    }
  } cleanup{userns, dir_ / "lower"};
  fs::create_directories(dir_ / "lower");
  ASSERT_TRUE(idmapBind(rootfs_, dir_ / "lower", userns).isOk());
  auto open = [](json& spec) {
    spec["linux"].erase("maskedPaths");
    spec["linux"].erase("readonlyPaths");
  };
  const std::string script =
      "echo masks=$(grep -c ' /proc/sys ' /proc/self/mountinfo); "
      "echo 1 > /proc/sys/vm/drop_caches 2>/dev/null; echo drop_caches=$?; "
      "echo 1 > /proc/sys/kernel/sysrq 2>/dev/null; echo sysrq=$?; "
      "echo map=$(cat /proc/self/uid_map)";
  auto m = run(
      script,
      [&](ContainerConfig& c) {
        c.seccomp = false;
        c.rootfs = dir_ / "lower";
        c.usernsPath = userns;
        c.ids = ids;
      },
      open);
  EXPECT_EQ(m["masks"], "0") << lastOutput_;
  EXPECT_EQ(m["map"], "0 " + std::to_string(ids.hostBase) + " 65536") << lastOutput_;
  EXPECT_NE(m["drop_caches"], "0") << lastOutput_;
  EXPECT_NE(m["sysrq"], "0") << lastOutput_;

  // Reference: no user namespace, same open spec: the (harmless) drop_caches write goes through.
  auto ref = run(
      "echo 1 > /proc/sys/vm/drop_caches; echo drop_caches=$?",
      [](ContainerConfig& c) { c.seccomp = false; }, open);
  EXPECT_EQ(ref["drop_caches"], "0") << lastOutput_;
}

}  // namespace
}  // namespace mercato::runtime::host
