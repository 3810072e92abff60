/* sandbox_probe: tries one named operation from inside a container and prints
 * "<op> ok" or "<op> errno=<n>" (exit 0 / 1; 2 for a usage error). Used by sandbox_test.cpp,
 * which copies this static binary into a busybox rootfs: busybox has no applet for keyctl, bpf,
 * perf_event_open, userfaultfd, io_uring or ptrace. Each operation is the smallest call that
 * succeeds for an unconfined root process without extra capabilities on a Debian 12 kernel, so
 * the reference run (no seccomp) shows that the errno comes from the filter.
 *
 * Built static (plain C against glibc), so it runs in any rootfs. Every wait is bounded. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#define KCMP_VM_TYPE 1 /* KCMP_VM in linux/kcmp.h */

/* The first 64 bytes of struct clone_args (CLONE_ARGS_SIZE_VER0). */
struct probe_clone_args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static const char* op_name;

static int report(long rc) {
  if (rc < 0) {
    printf("%s errno=%d\n", op_name, errno);
    return 1;
  }
  printf("%s ok\n", op_name);
  return 0;
}

/* Reaps a child of ours within ~5 s; returns its wait status or -1. */
static int reap(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG | __WALL);
    if (r == pid) return st;
    if (r < 0) return -1;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, __WALL);
  return -1;
}

/* A raw clone(flags|SIGCHLD) whose child exits at once; the child does not touch libc state. */
static long raw_clone(unsigned long flags) {
  long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) syscall(SYS_exit, 0);
  if (pid > 0) reap((pid_t)pid);
  return pid;
}

static long do_clone3(void) {
  struct probe_clone_args args;
  memset(&args, 0, sizeof args);
  args.exit_signal = SIGCHLD;
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) syscall(SYS_exit, 0);
  if (pid > 0) reap((pid_t)pid);
  return pid;
}

/* PTRACE_ATTACH to pid, then detach. */
static long attach(pid_t pid) {
  if (ptrace(PTRACE_ATTACH, pid, 0, 0) != 0) return -1;
  int st;
  for (int i = 0; i < 500; ++i) {
    if (waitpid(pid, &st, WNOHANG | __WALL) == pid) break;
    usleep(10000);
  }
  ptrace(PTRACE_DETACH, pid, 0, 0);
  return 0;
}

/* Attaches to a child of ours (the one tracee that every ptrace policy allows). */
static long ptrace_child(void) {
  pid_t child = fork();
  if (child < 0) return -1;
  if (child == 0) {
    for (int i = 0; i < 100; ++i) usleep(100000); /* at most 10 s */
    _exit(0);
  }
  long rc = attach(child);
  int saved = errno;
  kill(child, SIGKILL);
  reap(child);
  errno = saved;
  return rc;
}

static long process_vm_read_self(void) {
  char src[8] = "probe", dst[8] = {0};
  struct iovec local = {dst, sizeof dst}, remote = {src, sizeof src};
  long n = syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0);
  if (n >= 0 && strcmp(dst, "probe") != 0) {
    errno = EIO;
    return -1;
  }
  return n;
}

static long do_bpf(void) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
  if (fd >= 0) close((int)fd);
  return fd;
}

static long do_perf(void) {
  struct perf_event_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_TASK_CLOCK;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
  if (fd >= 0) close((int)fd);
  return fd;
}

static long do_uring(void) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  long fd = syscall(SYS_io_uring_setup, 1, &p);
  if (fd >= 0) close((int)fd);
  return fd;
}

/* getpid through the 32-bit ABIs of an x86_64 kernel: x32 (the syscall number with bit 30 set)
 * and i386 (int 0x80, getpid is 20 there). Elsewhere: ENOSYS. */
static long x32_getpid(void) {
#if defined(__x86_64__)
  return syscall(0x40000000 | SYS_getpid);
#else
  errno = ENOSYS;
  return -1;
#endif
}

static long i386_getpid(void) {
#if defined(__x86_64__)
  long rc;
  __asm__ volatile("int $0x80" : "=a"(rc) : "a"(20L) : "memory");
  if (rc < 0 && rc > -4096) {
    errno = (int)-rc;
    return -1;
  }
  return rc;
#else
  errno = ENOSYS;
  return -1;
#endif
}

static long close_if_fd(long fd) {
  if (fd >= 0) close((int)fd);
  return fd;
}

static void* thread_main(void* arg) {
  *(int*)arg = 42;
  return NULL;
}

static long do_thread(void) {
  pthread_t t;
  int value = 0;
  int rc = pthread_create(&t, NULL, thread_main, &value);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  pthread_join(t, NULL);
  if (value != 42) {
    errno = EIO;
    return -1;
  }
  return 0;
}

static long do_fork(void) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) _exit(7);
  int st = reap(pid);
  if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 7) {
    errno = ECHILD;
    return -1;
  }
  return 0;
}

/* A TCP round trip over the container's loopback. */
static long do_tcp(void) {
  int srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (srv < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  long rc = -1;
  int cli = -1, acc = -1;
  char buf[4] = {0};
  if (bind(srv, (struct sockaddr*)&a, sizeof a) != 0 || listen(srv, 1) != 0 ||
      getsockname(srv, (struct sockaddr*)&a, &len) != 0)
    goto out;
  cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (cli < 0 || connect(cli, (struct sockaddr*)&a, sizeof a) != 0) goto out;
  acc = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
  if (acc < 0 || write(cli, "pong", 4) != 4 || read(acc, buf, 4) != 4) goto out;
  if (memcmp(buf, "pong", 4) != 0) {
    errno = EIO;
    goto out;
  }
  rc = 0;
out:;
  int saved = errno;
  if (acc >= 0) close(acc);
  if (cli >= 0) close(cli);
  close(srv);
  errno = saved;
  return rc;
}

/* epoll + eventfd + timerfd: the event-loop basics. */
static long do_events(void) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int ev = eventfd(0, EFD_CLOEXEC);
  int tf = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  long rc = -1;
  if (ep < 0 || ev < 0 || tf < 0) goto out;
  struct epoll_event e = {.events = EPOLLIN, .data = {.fd = ev}};
  struct itimerspec its = {.it_value = {0, 1000000}};
  uint64_t one = 1;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) != 0 || timerfd_settime(tf, 0, &its, NULL) != 0 ||
      write(ev, &one, sizeof one) != sizeof one)
    goto out;
  struct epoll_event got;
  if (epoll_wait(ep, &got, 1, 1000) != 1 || got.data.fd != ev) {
    errno = ETIME;
    goto out;
  }
  rc = 0;
out:;
  int saved = errno;
  if (ep >= 0) close(ep);
  if (ev >= 0) close(ev);
  if (tf >= 0) close(tf);
  errno = saved;
  return rc;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: sandbox_probe OP [ARG]\n");
    return 2;
  }
  op_name = argv[1];
  const char* arg = argc > 2 ? argv[2] : NULL;
  const char* op = op_name;
  setvbuf(stdout, NULL, _IONBF, 0);

  if (!strcmp(op, "unshare_user")) return report(unshare(CLONE_NEWUSER));
  if (!strcmp(op, "unshare_mount")) return report(unshare(CLONE_NEWNS));
  if (!strcmp(op, "unshare_net")) return report(unshare(CLONE_NEWNET));
  if (!strcmp(op, "unshare_files")) return report(unshare(CLONE_FILES | CLONE_FS));
  if (!strcmp(op, "clone_newuser")) return report(raw_clone(CLONE_NEWUSER));
  if (!strcmp(op, "clone_newns")) return report(raw_clone(CLONE_NEWNS));
  if (!strcmp(op, "clone_plain")) return report(raw_clone(0));
  if (!strcmp(op, "clone3")) return report(do_clone3());
  if (!strcmp(op, "setns")) {
    int fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return report(-1);
    return report(setns(fd, CLONE_NEWUTS));
  }
  if (!strcmp(op, "mount_tmpfs")) return report(mount("none", arg ? arg : "/tmp", "tmpfs", 0, 0));
  if (!strcmp(op, "remount_proc_sys_rw"))
    return report(mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL));
  if (!strcmp(op, "bind_proc_sys"))
    return report(mount("/proc/sys", "/proc/sys", NULL, MS_BIND, NULL));
  if (!strcmp(op, "umount_proc_sys")) return report(umount2("/proc/sys", MNT_DETACH));
  if (!strcmp(op, "fsopen")) return report(close_if_fd(syscall(SYS_fsopen, "tmpfs", 0)));
  if (!strcmp(op, "keyctl"))
    return report(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1));
  if (!strcmp(op, "add_key"))
    return report(syscall(SYS_add_key, "user", "mercato-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING));
  if (!strcmp(op, "bpf")) return report(do_bpf());
  if (!strcmp(op, "perf_event_open")) return report(do_perf());
  if (!strcmp(op, "userfaultfd"))
    return report(close_if_fd(syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY)));
  if (!strcmp(op, "io_uring")) return report(do_uring());
  if (!strcmp(op, "ptrace")) {
    if (!arg) return 2;
    return report(attach((pid_t)atoi(arg)));
  }
  if (!strcmp(op, "ptrace_child")) return report(ptrace_child());
  if (!strcmp(op, "process_vm_readv")) return report(process_vm_read_self());
  if (!strcmp(op, "kcmp")) return report(syscall(SYS_kcmp, getpid(), getpid(), KCMP_VM_TYPE, 0, 0));
  if (!strcmp(op, "personality")) {
    if (!arg) return 2;
    return report(personality((unsigned long)strtoul(arg, NULL, 0)));
  }
  if (!strcmp(op, "kexec_load")) return report(syscall(SYS_kexec_load, 0, 0, NULL, 0));
  if (!strcmp(op, "init_module")) return report(syscall(SYS_init_module, NULL, 0, ""));
  if (!strcmp(op, "vsock")) return report(close_if_fd(socket(AF_VSOCK, SOCK_STREAM, 0)));
  if (!strcmp(op, "x32_getpid")) return report(x32_getpid());
  if (!strcmp(op, "i386_getpid")) return report(i386_getpid());
  if (!strcmp(op, "fork")) return report(do_fork());
  if (!strcmp(op, "thread")) return report(do_thread());
  if (!strcmp(op, "tcp")) return report(do_tcp());
  if (!strcmp(op, "events")) return report(do_events());
  fprintf(stderr, "sandbox_probe: unknown op '%s'\n", op);
  return 2;
}
