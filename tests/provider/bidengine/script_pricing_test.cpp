// The script strategy on real subprocesses: what the script gets, each way a script can fail
// (timeout with its helpers killed, garbage, crash, non-zero exit, flood of output), and the
// concurrency limit.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "provider/bidengine/pricing.hpp"
#include "test_util.hpp"

namespace mercato::provider::bidengine {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

constexpr int64_t kGi = int64_t{1} << 30;

std::string readAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// True while `pid` exists and is not a zombie.
bool alive(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return false;
  auto close = stat.rfind(')');
  return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] != 'Z';
}

class ScriptPricingTest : public ::testing::Test {
 protected:
  Result<ledger::Prices> run(const std::string& body, int64_t timeoutMs = 2000) {
    PricingConfig c;
    c.strategy = "script";
    c.rates = {100, 50, 10'000, 1'000};
    c.script.path = dir_.script("price.sh", body);
    c.script.timeoutMs = timeoutMs;
    auto s = createPricing(c);
    if (!s.isOk()) return s.status();
    return (*s)->price(in_);
  }
  TempDir dir_;
  PricingInput in_{"o1", "mer1publisher", {{"web", 500, kGi, 0, 2}}, {300, {}, {}, {}}};
};

TEST_F(ScriptPricingTest, GetsTheOrderOnStdinAndItsNumberBecomesPrices) {
  const std::string seen = dir_.path("stdin.json");
  // 1 CPU + 2 GiB for an hour at the rates costs 0.36 + 0.36 = 0.72 MER; ask for 1.44.
  auto p = run("cat > " + seen + "\necho 1.44");
  ASSERT_TRUE(p.isOk()) << p.status().message();
  EXPECT_EQ(*p, (ledger::Prices{200, 100, 20'000, 2'000}));
  auto j = nlohmann::json::parse(readAll(seen));
  EXPECT_EQ(j["owner"], "mer1publisher");
  EXPECT_EQ(j["order"], "o1");
  EXPECT_EQ(j["resources"][0]["count"], 2);
  EXPECT_EQ(j["total"]["memory"], 2 * kGi);
  EXPECT_EQ(j["maxPrice"]["cpuSecond"], 300);
  EXPECT_EQ(j["hourlyAtRates"], 720'000);
}

TEST_F(ScriptPricingTest, MayAnswerWithAPricesObject) {
  auto p = run(R"(echo '{"cpuSecond": 7, "memGibSecond": 8, "egressGib": 9, "requests1k": 10}')");
  ASSERT_TRUE(p.isOk()) << p.status().message();
  EXPECT_EQ(*p, (ledger::Prices{7, 8, 9, 10}));
}

TEST_F(ScriptPricingTest, TimeoutKillsTheScriptAndItsHelpers) {
  const std::string pidFile = dir_.path("helper.pid");
  const auto t0 = std::chrono::steady_clock::now();
  auto p = run("sleep 30 &\necho $! > " + pidFile + "\nsleep 30\necho 1", 300);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(p.isOk());
  EXPECT_EQ(p.status().code(), Code::kDeadlineExceeded) << p.status().message();
  EXPECT_EQ(pricingFailureReason(p.status()), "pricing_timeout");
  EXPECT_LT(took, std::chrono::seconds(2));
  pid_t helper = std::stoi(readAll(pidFile));
  // SIGKILL is delivered asynchronously; the helper is gone within moments.
  for (int i = 0; i < 200 && alive(helper); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(alive(helper)) << "the script's background helper survived the timeout";
}

TEST_F(ScriptPricingTest, GarbageCrashExitAndFloodAreErrorsWithReasons) {
  auto garbage = run("cat >/dev/null; echo 'cheap!'");
  EXPECT_EQ(pricingFailureReason(garbage.status()), "pricing_bad_output");
  EXPECT_THAT(garbage.status().message(), HasSubstr("cheap!"));
  auto empty = run("exit 0");
  EXPECT_EQ(pricingFailureReason(empty.status()), "pricing_bad_output");
  auto crash = run("echo dying >&2; kill -SEGV $$");
  EXPECT_EQ(pricingFailureReason(crash.status()), "pricing_crashed");
  EXPECT_THAT(crash.status().message(), HasSubstr("signal 11"));
  EXPECT_THAT(crash.status().message(), HasSubstr("dying"));
  auto exit3 = run("echo 1.0; exit 3");
  EXPECT_EQ(pricingFailureReason(exit3.status()), "pricing_exit_status");
  EXPECT_THAT(exit3.status().message(), HasSubstr("exit status 3"));
  auto flood = run("yes 1");
  EXPECT_EQ(pricingFailureReason(flood.status()), "pricing_bad_output");
  EXPECT_THAT(flood.status().message(), HasSubstr("more than"));
  // A script that never reads stdin still works (and the daemon survives the broken pipe).
  EXPECT_TRUE(run("echo 1").isOk());
}

TEST_F(ScriptPricingTest, ConfigErrorsAreCaughtAtCreate) {
  PricingConfig c;
  c.strategy = "script";
  c.rates = {100, 50, 0, 0};
  EXPECT_THAT(createPricing(c).status().message(), HasSubstr("script.path is required"));
  c.script.path = dir_.path("missing.sh");
  EXPECT_THAT(createPricing(c).status().message(), HasSubstr("not executable"));
  c.script.path = dir_.write("plain.sh", "echo 1\n");  // not executable
  EXPECT_FALSE(createPricing(c).isOk());
  c.script.path = "relative.sh";
  EXPECT_THAT(createPricing(c).status().message(), HasSubstr("absolute"));
}

TEST_F(ScriptPricingTest, AtMostConcurrencyScriptsRunAtOnce) {
  PricingConfig c;
  c.strategy = "script";
  c.rates = {100, 50, 0, 0};
  c.script.concurrency = 2;
  c.script.timeoutMs = 10'000;
  const std::string log = dir_.path("log");
  // Each run appends "+" when it starts and "-" when it ends; the prefix sums are the number
  // running at each moment. The log is appended with O_APPEND, atomic for short writes.
  c.script.path =
      dir_.script("slow.sh", "printf + >> " + log + "\nsleep 0.2\nprintf - >> " + log + "\necho 1");
  auto s = createPricing(c);
  ASSERT_TRUE(s.isOk()) << s.status().message();
  std::vector<std::future<Result<ledger::Prices>>> runs;
  for (int i = 0; i < 6; ++i)
    runs.push_back(std::async(std::launch::async, [&] { return (*s)->price(in_); }));
  for (auto& r : runs) EXPECT_TRUE(r.get().isOk());
  const std::string events = readAll(log);
  ASSERT_EQ(events.size(), 12u);
  int running = 0, peak = 0;
  for (char ch : events) peak = std::max(peak, running += ch == '+' ? 1 : -1);
  EXPECT_EQ(peak, 2) << events;
}

TEST_F(ScriptPricingTest, AScriptRemovedAfterTheConfigLoadedIsNotFound) {
  PricingConfig c;
  c.strategy = "script";
  c.rates = {100, 50, 10'000, 1'000};
  c.script.path = dir_.script("gone.sh", "echo 1");
  auto s = createPricing(c);
  ASSERT_TRUE(s.isOk()) << s.status().message();
  ASSERT_EQ(::unlink(c.script.path.c_str()), 0);
  auto r = (*s)->price(in_);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().message();
  EXPECT_THAT(r.status().message(), HasSubstr("gone.sh"));
}

}  // namespace
}  // namespace mercato::provider::bidengine
