// Rotating log writer, tail across rotated files, and follow across rotation/truncation.
#include "runtime/runc/host/log_files.hpp"

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace mercato::runtime::host {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::TempDir;

TEST(RotatingLogWriter, RotatesBySizeKeepingLinesWhole) {
  TempDir dir;
  std::string base = dir / "stdout.log";
  auto w = RotatingLogWriter::open(base, 20, 3);
  ASSERT_TRUE(w.isOk());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(w->write("line-" + std::to_string(i) + "\n").isOk());
  auto files = logFiles(base);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0], base + ".2");
  EXPECT_EQ(files[2], base);
  for (const auto& f : files) EXPECT_LE(fs::file_size(f), 20u);
  EXPECT_FALSE(fs::exists(base + ".3"));
  // 7 bytes a line, 2 lines a file: the newest three files hold lines 4..9.
  EXPECT_EQ(testing::readFile(base + ".2"), "line-4\nline-5\n");
  EXPECT_EQ(testing::readFile(base), "line-8\nline-9\n");
  auto tail = tailLines(base, 3);
  ASSERT_TRUE(tail.isOk());
  EXPECT_EQ(*tail, (std::vector<std::string>{"line-7", "line-8", "line-9"}));
  tail = tailLines(base, 100);
  ASSERT_TRUE(tail.isOk());
  EXPECT_EQ(tail->size(), 6u);
  EXPECT_EQ(tail->front(), "line-4");
}

TEST(RotatingLogWriter, SplitsOverlongLinesAndChunksAcrossFiles) {
  TempDir dir;
  std::string base = dir / "out.log";
  auto w = RotatingLogWriter::open(base, 8, 5);
  ASSERT_TRUE(w.isOk());
  ASSERT_TRUE(w->write("abcdefghijklmnopqrst\nxy\n").isOk());
  std::string all;
  for (const auto& f : logFiles(base)) {
    EXPECT_LE(fs::file_size(f), 8u);
    all += testing::readFile(f);
  }
  EXPECT_EQ(all, "abcdefghijklmnopqrst\nxy\n");
  auto tail = tailLines(base, 2);
  ASSERT_TRUE(tail.isOk());
  EXPECT_EQ(*tail, (std::vector<std::string>{"abcdefghijklmnopqrst", "xy"}));
}

TEST(RotatingLogWriter, MaxFilesOneTruncatesAndReopenAppends) {
  TempDir dir;
  std::string base = dir / "one.log";
  {
    auto w = RotatingLogWriter::open(base, 10, 1);
    ASSERT_TRUE(w.isOk());
    ASSERT_TRUE(w->write("12345\n").isOk());
  }
  {
    auto w = RotatingLogWriter::open(base, 10, 1);  // appends, knows the current size
    ASSERT_TRUE(w.isOk());
    ASSERT_TRUE(w->write("abc\n").isOk());
    EXPECT_EQ(testing::readFile(base), "12345\nabc\n");
    ASSERT_TRUE(w->write("zz\n").isOk());
  }
  EXPECT_EQ(logFiles(base).size(), 1u);
  EXPECT_EQ(testing::readFile(base), "zz\n");
  EXPECT_FALSE(RotatingLogWriter::open(base, 0, 1).isOk());
  EXPECT_FALSE(RotatingLogWriter::open(dir / "no/such/dir/x.log", 10, 1).isOk());
}

TEST(TailLines, EdgeCases) {
  TempDir dir;
  std::string base = dir / "t.log";
  auto none = tailLines(base, 5);
  ASSERT_TRUE(none.isOk());
  EXPECT_TRUE(none->empty());
  testing::writeFile(base + ".1", "a\nb\npart");
  testing::writeFile(base, "ial\nc\n\nd");  // a line split across the rotation, an empty line
  auto t = tailLines(base, 10);
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ(*t, (std::vector<std::string>{"a", "b", "partial", "c", "", "d"}));
  t = tailLines(base, 0);
  ASSERT_TRUE(t.isOk());
  EXPECT_TRUE(t->empty());
  // A big file read in several blocks.
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "row " + std::to_string(i) + "\n";
  testing::writeFile(base, big);
  fs::remove(base + ".1");
  t = tailLines(base, 2);
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ(*t, (std::vector<std::string>{"row 19998", "row 19999"}));
}

TEST(Follow, SurvivesRotationAndTruncation) {
  TempDir dir;
  std::string base = dir / "f.log";
  testing::writeFile(base, "old\n");
  auto w = RotatingLogWriter::open(base, 16, 3);
  ASSERT_TRUE(w.isOk());
  std::vector<std::string> lines;
  std::mutex mu;
  std::atomic<bool> stop{false};
  std::thread follower([&] {
    FollowOptions o;
    o.fromOffset = 4;  // skip "old\n"
    o.pollInterval = 5ms;
    (void)followLines(
        base, o,
        [&](std::string_view l) {
          std::lock_guard<std::mutex> lk(mu);
          lines.emplace_back(l);
        },
        [&] { return stop.load(); });
  });
  auto waitFor = [&](size_t n) {
    for (int i = 0; i < 400; ++i) {
      {
        std::lock_guard<std::mutex> lk(mu);
        if (lines.size() >= n) return;
      }
      std::this_thread::sleep_for(5ms);
    }
  };
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(w->write("msg-" + std::to_string(i) + "\n").isOk());  // rotates every 2 lines
    waitFor(static_cast<size_t>(i + 1));
  }
  // Truncation (copytruncate-style): start again at 0.
  fs::resize_file(base, 0);
  std::this_thread::sleep_for(30ms);
  testing::writeFile(base, "after-truncate\n");
  waitFor(7);
  stop = true;
  follower.join();
  std::vector<std::string> want = {"msg-0", "msg-1", "msg-2",         "msg-3",
                                   "msg-4", "msg-5", "after-truncate"};
  EXPECT_EQ(lines, want);
}

TEST(Follow, WaitsForFileAndStartsAtEnd) {
  TempDir dir;
  std::string base = dir / "late.log";
  std::string got;
  std::atomic<bool> stop{false};
  std::thread follower([&] {
    FollowOptions o;
    o.fromOffset = -1;
    o.pollInterval = 5ms;
    (void)follow(
        base, o, [&](std::string_view c) { got.append(c); }, [&] { return stop.load(); });
  });
  std::this_thread::sleep_for(30ms);
  testing::writeFile(base, "first\n");  // created after follow started: read from its start?
  std::this_thread::sleep_for(50ms);
  stop = true;
  follower.join();
  // fromOffset -1 applies to the file as first seen; a file that appears later is read whole.
  EXPECT_EQ(got, "first\n");
}

}  // namespace
}  // namespace mercato::runtime::host
