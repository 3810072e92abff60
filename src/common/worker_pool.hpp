// WorkerPool: a fixed set of threads running queued jobs, for blocking work (runc, SQLite,
// ledger round trips) that must stay off event loops. The queue is bounded: post() refuses
// work beyond it so a flood of requests turns into 429s instead of memory growth.
//
// A job that throws never takes the process down: the exception is logged and the worker goes
// on with the next job. Callers that owe someone an answer (an HTTP writer) catch inside the job
// themselves and answer 500; this is the last line.
//
// Thread-safety: post() from any thread. The destructor finishes queued jobs, then joins.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

namespace mercato {

class WorkerPool {
 public:
  WorkerPool(int threads, size_t maxQueue) : maxQueue_(maxQueue) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  }
  ~WorkerPool() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False when the queue is full or the pool is stopping (the job is not run).
  bool post(std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      if (stopping_ || queue_.size() >= maxQueue_) return false;
      queue_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
  }

 private:
  void run() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      try {
        job();
      } catch (const std::exception& e) {
        spdlog::error("worker pool: a job threw: {}", e.what());
      } catch (...) {
        spdlog::error("worker pool: a job threw a non-exception");
      }
    }
  }

  size_t maxQueue_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace mercato
