// Metrics in the Prometheus text exposition format (version 0.0.4).
//
// A MetricsRegistry owns named counters, gauges and histograms; components get stable pointers
// to them at wiring time and update them lock-free on hot paths. render() produces the body of
// GET /metrics, whole or with some labels summed away (RenderOptions::foldLabels).
//
// Thread-safety: registration and render() take a mutex; updates are atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace mercato {

class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void add(int64_t d) { v_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Fixed buckets, in seconds.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double seconds);
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative count per bound, then +Inf; the sum; the count.
  void snapshot(std::vector<uint64_t>& cumulative, double& sum, uint64_t& count) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sumMicros_{0};
};

class MetricsRegistry {
 public:
  // Returns the metric registered under `name` (creating it on first use). `name` follows the
  // Prometheus rules; labels may be appended in braces: `mercato_http_requests_total{code="200"}`.
  Counter* counter(const std::string& name, const std::string& help);
  Gauge* gauge(const std::string& name, const std::string& help);
  Histogram* histogram(const std::string& name, const std::string& help,
                       std::vector<double> bounds = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                     0.5, 1, 2.5, 5});
  struct RenderOptions {
    // Labels summed away: series that differ only in them are rendered as one total. The node
    // folds `deployment` for callers without the admin token, so tenants' ids stay private.
    std::set<std::string> foldLabels;
  };
  std::string render(const RenderOptions& options) const;
  std::string render() const { return render(RenderOptions{}); }

 private:
  struct Family {
    std::string type, help;
  };
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;  // base name -> type/help
  std::map<std::string, std::unique_ptr<Counter>> counters_;
  std::map<std::string, std::unique_ptr<Gauge>> gauges_;
  std::map<std::string, std::unique_ptr<Histogram>> histograms_;
};

}  // namespace mercato
