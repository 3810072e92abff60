#include "common/metrics.hpp"

#include <algorithm>
#include <sstream>

namespace mercato {
namespace {
std::string baseName(const std::string& name) { return name.substr(0, name.find('{')); }
std::string labels(const std::string& name) {
  auto p = name.find('{');
  return p == std::string::npos ? "" : name.substr(p + 1, name.size() - p - 2);
}
std::string withLabel(const std::string& base, const std::string& suffix, const std::string& lbl,
                      const std::string& extra) {
  std::string all = lbl;
  if (!extra.empty()) all += (all.empty() ? "" : ",") + extra;
  return base + suffix + (all.empty() ? "" : "{" + all + "}");
}
}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i] = 0;
}

void Histogram::observe(double seconds) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sumMicros_.fetch_add(static_cast<uint64_t>(std::max(0.0, seconds) * 1e6),
                       std::memory_order_relaxed);
}

void Histogram::snapshot(std::vector<uint64_t>& cumulative, double& sum, uint64_t& count) const {
  cumulative.assign(bounds_.size() + 1, 0);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    cumulative[i] = acc;
  }
  count = acc;
  sum = static_cast<double>(sumMicros_.load(std::memory_order_relaxed)) / 1e6;
}

Counter* MetricsRegistry::counter(const std::string& name, const std::string& help) {
  std::lock_guard lk(mu_);
  families_.try_emplace(baseName(name), Family{"counter", help});
  auto& slot = counters_[name];
  if (!slot) slot = std::make_unique<Counter>();
  return slot.get();
}

Gauge* MetricsRegistry::gauge(const std::string& name, const std::string& help) {
  std::lock_guard lk(mu_);
  families_.try_emplace(baseName(name), Family{"gauge", help});
  auto& slot = gauges_[name];
  if (!slot) slot = std::make_unique<Gauge>();
  return slot.get();
}

Histogram* MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      std::vector<double> bounds) {
  std::lock_guard lk(mu_);
  families_.try_emplace(baseName(name), Family{"histogram", help});
  auto& slot = histograms_[name];
  if (!slot) slot = std::make_unique<Histogram>(std::move(bounds));
  return slot.get();
}

std::string MetricsRegistry::render() const {
  std::lock_guard lk(mu_);
  std::ostringstream out;
  for (const auto& [base, fam] : families_) {
    out << "# HELP " << base << " " << fam.help << "\n# TYPE " << base << " " << fam.type << "\n";
    for (const auto& [name, c] : counters_)
      if (baseName(name) == base) out << name << " " << c->value() << "\n";
    for (const auto& [name, g] : gauges_)
      if (baseName(name) == base) out << name << " " << g->value() << "\n";
    for (const auto& [name, h] : histograms_) {
      if (baseName(name) != base) continue;
      std::vector<uint64_t> cum;
      double sum;
      uint64_t count;
      h->snapshot(cum, sum, count);
      const std::string lbl = labels(name);
      for (size_t i = 0; i < h->bounds().size(); ++i) {
        std::ostringstream le;
        le << "le=\"" << h->bounds()[i] << "\"";
        out << withLabel(base, "_bucket", lbl, le.str()) << " " << cum[i] << "\n";
      }
      out << withLabel(base, "_bucket", lbl, "le=\"+Inf\"") << " " << cum.back() << "\n";
      out << withLabel(base, "_sum", lbl, "") << " " << sum << "\n";
      out << withLabel(base, "_count", lbl, "") << " " << count << "\n";
    }
  }
  return out.str();
}

}  // namespace mercato
