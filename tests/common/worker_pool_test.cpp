// WorkerPool: a job that throws is logged and the pool keeps running the next jobs (before
// issue 12 an exception on a worker reached std::terminate and took the node down).
#include "common/worker_pool.hpp"

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

namespace mercato {
namespace {

TEST(WorkerPoolTest, AThrowingJobIsLoggedAndThePoolKeepsRunning) {
  std::ostringstream logged;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(logged));
  spdlog::set_default_logger(logger);
  {
    WorkerPool pool(1, 16);  // one thread: the later jobs run on the thread that saw the throw
    ASSERT_TRUE(pool.post([] { throw std::runtime_error("boom in a job"); }));
    ASSERT_TRUE(pool.post([] { throw 42; }));
    std::promise<int> done;
    auto answer = done.get_future();
    ASSERT_TRUE(pool.post([&] { done.set_value(7); }));
    ASSERT_EQ(answer.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_EQ(answer.get(), 7);
  }
  spdlog::set_default_logger(previous);
  EXPECT_NE(logged.str().find("boom in a job"), std::string::npos) << logged.str();
  EXPECT_NE(logged.str().find("non-exception"), std::string::npos) << logged.str();
}

}  // namespace
}  // namespace mercato
