#include "common/clock.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <vector>

namespace mercato {
namespace {

TEST(FakeClock, MovesOnlyWhenAdvanced) {
  FakeClock c;
  auto t0 = c.now();
  auto s0 = c.steadyNow();
  EXPECT_EQ(c.now(), t0);
  c.advance(Millis(1500));
  EXPECT_EQ(c.now() - t0, Millis(1500));
  EXPECT_EQ(c.steadyNow() - s0, Millis(1500));
  EXPECT_EQ(c.nowMillis(), std::chrono::duration_cast<Millis>(c.now().time_since_epoch()).count());
}

TEST(FakeClock, FiresTimersInDeadlineOrderAtTheirTime) {
  FakeClock c;
  std::vector<std::pair<int, int64_t>> fired;
  const int64_t start = c.nowMillis();
  c.callAfter(Millis(300), [&] { fired.emplace_back(3, c.nowMillis() - start); });
  c.callAfter(Millis(100), [&] { fired.emplace_back(1, c.nowMillis() - start); });
  TimerId cancelled = c.callAfter(Millis(200), [&] { fired.emplace_back(2, 0); });
  c.cancel(cancelled);
  c.advance(Millis(250));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0], std::make_pair(1, int64_t{100}));
  c.advance(Millis(100));
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[1], std::make_pair(3, int64_t{300}));
  EXPECT_EQ(c.pendingTimers(), 0u);
}

TEST(FakeClock, TimerScheduledByCallbackFiresInSameAdvance) {
  FakeClock c;
  int count = 0;
  std::function<void()> tick = [&] {
    if (++count < 5) c.callAfter(Millis(10), tick);
  };
  c.callAfter(Millis(10), tick);
  c.advance(Millis(100));
  EXPECT_EQ(count, 5);
}

TEST(SystemClock, CallAfterFiresOnTimerThread) {
  SystemClock c;
  std::promise<void> p;
  auto start = c.steadyNow();
  c.callAfter(Millis(20), [&] { p.set_value(); });
  ASSERT_EQ(p.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_GE(c.steadyNow() - start, Millis(20));
  std::atomic<bool> ran{false};
  TimerId id = c.callAfter(Millis(50), [&] { ran = true; });
  c.cancel(id);
  std::promise<void> later;
  c.callAfter(Millis(80), [&] { later.set_value(); });
  later.get_future().wait();
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace mercato
