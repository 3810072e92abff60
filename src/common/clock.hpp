// Clock: the one source of time. Injected everywhere that reads time or waits, so tests run
// on a FakeClock and never sleep.
//
// now() is wall-clock time (what goes into ledger entries and logs); steadyNow() is monotonic
// (what timeouts and periods are measured on). callAfter() schedules a callback; on the
// SystemClock it fires on the clock's own timer thread, on the FakeClock inside advance().
// Callbacks must be short and must post real work to the owner's strand or pool.
//
// Thread-safety: all methods are safe to call from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace mercato {

using Millis = std::chrono::milliseconds;
using TimePoint = std::chrono::system_clock::time_point;
using SteadyPoint = std::chrono::steady_clock::time_point;
using TimerId = uint64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
  virtual SteadyPoint steadyNow() const = 0;
  // Runs `fn` once, `delay` from now. Returns an id for cancel().
  virtual TimerId callAfter(Millis delay, std::function<void()> fn) = 0;
  // Cancels a pending timer; a timer that already fired or is unknown is ignored.
  virtual void cancel(TimerId id) = 0;

  // Milliseconds since the Unix epoch.
  int64_t nowMillis() const;
  // Seconds since the Unix epoch.
  int64_t nowSeconds() const { return nowMillis() / 1000; }
};

// The real clock. Timers fire on one internal thread, in deadline order.
class SystemClock final : public Clock {
 public:
  SystemClock();
  ~SystemClock() override;
  TimePoint now() const override { return std::chrono::system_clock::now(); }
  SteadyPoint steadyNow() const override { return std::chrono::steady_clock::now(); }
  TimerId callAfter(Millis delay, std::function<void()> fn) override;
  void cancel(TimerId id) override;

 private:
  void run();
  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<SteadyPoint, std::pair<TimerId, std::function<void()>>> timers_;
  TimerId nextId_ = 1;
  bool stop_ = false;
  std::thread thread_;
};

// The process-wide SystemClock, for wiring in main(). Libraries take a Clock& instead.
Clock& systemClock();

// A clock that only moves when told. Timers fire synchronously inside advance(), on the
// calling thread, in deadline order; a timer scheduled by a callback fires in the same
// advance() if it falls due within it.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint(std::chrono::seconds(1'700'000'000)));
  TimePoint now() const override;
  SteadyPoint steadyNow() const override;
  TimerId callAfter(Millis delay, std::function<void()> fn) override;
  void cancel(TimerId id) override;
  // Moves time forward by `d`, firing every timer that falls due.
  void advance(Millis d);
  size_t pendingTimers() const;

 private:
  mutable std::mutex mu_;
  TimePoint wall_;
  SteadyPoint steady_;
  std::multimap<SteadyPoint, std::pair<TimerId, std::function<void()>>> timers_;
  TimerId nextId_ = 1;
};

}  // namespace mercato
