// InteractiveProcess: a child process with its stdin attached and its output streamed, for
// interactive exec (`runc exec` with the caller's input). Two modes:
//  - pipes: stdin, stdout and stderr are three pipes; closeInput() closes stdin (EOF).
//  - TTY: the child gets a new session whose controlling terminal is the slave side of a
//    pseudo-terminal we own; stdin/stdout/stderr are that terminal, output arrives on the master
//    (stdout and stderr merged), resize() sets the window size (the child gets SIGWINCH).
//    `runc exec --tty` in the foreground needs exactly this: it puts its own terminal in raw mode
//    and relays it to the container's console, resizing that console on SIGWINCH.
//
// One I/O thread per process polls the output, the queued input, a wake-up pipe and a pidfd
// (so a process that exits while a grandchild keeps its output open still ends the session).
// Like runProcess, the child closes every inherited descriptor above 2 and only calls
// async-signal-safe functions between fork and exec.
//
// Thread-safety: every method may be called from any thread; callbacks run on the I/O thread,
// in order. The destructor terminates a running child and joins the thread (when called from a
// callback, it detaches instead).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace mercato::runtime::host {

struct InteractiveOptions {
  std::vector<std::string> argv;  // argv[0] is an absolute path
  bool tty = false;
  uint16_t rows = 24;
  uint16_t cols = 80;
  // TTY mode: start the terminal in raw mode (no echo, no line editing, no CR/LF mapping). For a
  // child that relays the terminal to another one (runc exec --tty): the far end does all that,
  // and input written before the child switches modes itself must not be echoed twice.
  bool rawTerminal = false;
  // fd 1 (stdout, or the terminal) or 2 (stderr, pipes mode only).
  std::function<void(int fd, std::string_view data)> onOutput;
  // Once, last: the exit status, 128+N when killed by signal N.
  std::function<void(int status)> onExit;
  // How terminate() stops the work; the default SIGKILLs the child. The child is SIGKILLed
  // anyway when it still runs 2 s later.
  std::function<void(pid_t child)> onTerminate;
};

class InteractiveProcess {
 public:
  // Starts the child and its I/O thread. Fails (kInternal) when pipes, the pty or fork fail.
  static Result<std::unique_ptr<InteractiveProcess>> start(InteractiveOptions options);
  ~InteractiveProcess();
  InteractiveProcess(const InteractiveProcess&) = delete;
  InteractiveProcess& operator=(const InteractiveProcess&) = delete;

  pid_t pid() const;
  void write(std::string data);  // queued; never blocks
  void closeInput();             // pipes: EOF after the queued bytes; TTY: sends ^D
  Status resize(uint16_t rows, uint16_t cols);
  void terminate();

  struct State;  // shared with the I/O thread

 private:
  explicit InteractiveProcess(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace mercato::runtime::host
