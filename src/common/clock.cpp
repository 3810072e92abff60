#include "common/clock.hpp"

namespace mercato {

int64_t Clock::nowMillis() const {
  return std::chrono::duration_cast<Millis>(now().time_since_epoch()).count();
}

SystemClock::SystemClock() : thread_([this] { run(); }) {}

SystemClock::~SystemClock() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

TimerId SystemClock::callAfter(Millis delay, std::function<void()> fn) {
  std::lock_guard lk(mu_);
  TimerId id = nextId_++;
  timers_.emplace(steadyNow() + delay, std::make_pair(id, std::move(fn)));
  cv_.notify_all();
  return id;
}

void SystemClock::cancel(TimerId id) {
  std::lock_guard lk(mu_);
  for (auto it = timers_.begin(); it != timers_.end(); ++it) {
    if (it->second.first == id) {
      timers_.erase(it);
      return;
    }
  }
}

void SystemClock::run() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    if (timers_.empty()) {
      cv_.wait(lk);
      continue;
    }
    auto due = timers_.begin()->first;
    if (std::chrono::steady_clock::now() < due) {
      cv_.wait_until(lk, due);
      continue;
    }
    auto fn = std::move(timers_.begin()->second.second);
    timers_.erase(timers_.begin());
    lk.unlock();
    fn();
    lk.lock();
  }
}

Clock& systemClock() {
  static SystemClock clock;
  return clock;
}

FakeClock::FakeClock(TimePoint start) : wall_(start), steady_(SteadyPoint(std::chrono::hours(1))) {}

TimePoint FakeClock::now() const {
  std::lock_guard lk(mu_);
  return wall_;
}

SteadyPoint FakeClock::steadyNow() const {
  std::lock_guard lk(mu_);
  return steady_;
}

TimerId FakeClock::callAfter(Millis delay, std::function<void()> fn) {
  std::lock_guard lk(mu_);
  TimerId id = nextId_++;
  timers_.emplace(steady_ + delay, std::make_pair(id, std::move(fn)));
  return id;
}

void FakeClock::cancel(TimerId id) {
  std::lock_guard lk(mu_);
  for (auto it = timers_.begin(); it != timers_.end(); ++it) {
    if (it->second.first == id) {
      timers_.erase(it);
      return;
    }
  }
}

void FakeClock::advance(Millis d) {
  std::unique_lock lk(mu_);
  const SteadyPoint target = steady_ + d;
  while (!timers_.empty() && timers_.begin()->first <= target) {
    auto node = timers_.extract(timers_.begin());
    // Time jumps to each timer's deadline so callbacks observe the time they were due.
    wall_ += node.key() - steady_;
    steady_ = node.key();
    lk.unlock();
    node.mapped().second();
    lk.lock();
  }
  wall_ += target - steady_;
  steady_ = target;
}

size_t FakeClock::pendingTimers() const {
  std::lock_guard lk(mu_);
  return timers_.size();
}

}  // namespace mercato
