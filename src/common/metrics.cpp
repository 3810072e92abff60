#include "common/metrics.hpp"

#include <algorithm>
#include <set>
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

namespace {

// The labels of `lbl` ("a=\"1\",b=\"2\"") without those named in `drop`. Label values are quoted
// and may hold escaped quotes and commas, so the split honours quoting.
std::string dropLabels(const std::string& lbl, const std::set<std::string>& drop) {
  if (drop.empty() || lbl.empty()) return lbl;
  std::string out, part;
  bool quoted = false, escaped = false;
  auto flush = [&] {
    const std::string key = part.substr(0, part.find('='));
    if (!part.empty() && !drop.count(key)) out += (out.empty() ? "" : ",") + part;
    part.clear();
  };
  for (char c : lbl) {
    if (escaped) {
      escaped = false;
    } else if (c == '\\' && quoted) {
      escaped = true;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      flush();
      continue;
    }
    part += c;
  }
  flush();
  return out;
}

struct HistogramSum {
  const std::vector<double>* bounds = nullptr;
  std::vector<uint64_t> cumulative;
  double sum = 0;
  uint64_t count = 0;
};

}  // namespace

std::string MetricsRegistry::render(const RenderOptions& options) const {
  std::lock_guard lk(mu_);
  std::ostringstream out;
  const auto& drop = options.foldLabels;
  for (const auto& [base, fam] : families_) {
    out << "# HELP " << base << " " << fam.help << "\n# TYPE " << base << " " << fam.type << "\n";
    // Series that differ only in a folded label are summed into one (ordered for stable output).
    std::map<std::string, uint64_t> counters;
    for (const auto& [name, c] : counters_)
      if (baseName(name) == base) counters[dropLabels(labels(name), drop)] += c->value();
    for (const auto& [lbl, v] : counters) out << withLabel(base, "", lbl, "") << " " << v << "\n";
    std::map<std::string, int64_t> gauges;
    for (const auto& [name, g] : gauges_)
      if (baseName(name) == base) gauges[dropLabels(labels(name), drop)] += g->value();
    for (const auto& [lbl, v] : gauges) out << withLabel(base, "", lbl, "") << " " << v << "\n";
    std::map<std::string, HistogramSum> histograms;
    for (const auto& [name, h] : histograms_) {
      if (baseName(name) != base) continue;
      std::vector<uint64_t> cum;
      double sum;
      uint64_t count;
      h->snapshot(cum, sum, count);
      auto& acc = histograms[dropLabels(labels(name), drop)];
      if (!acc.bounds) {
        acc.bounds = &h->bounds();
        acc.cumulative.assign(cum.size(), 0);
      } else if (*acc.bounds != h->bounds()) {
        continue;  // series of one family with other buckets cannot be summed; leave it out
      }
      for (size_t i = 0; i < cum.size(); ++i) acc.cumulative[i] += cum[i];
      acc.sum += sum;
      acc.count += count;
    }
    for (const auto& [lbl, h] : histograms) {
      for (size_t i = 0; i < h.bounds->size(); ++i) {
        std::ostringstream le;
        le << "le=\"" << (*h.bounds)[i] << "\"";
        out << withLabel(base, "_bucket", lbl, le.str()) << " " << h.cumulative[i] << "\n";
      }
      out << withLabel(base, "_bucket", lbl, "le=\"+Inf\"") << " " << h.cumulative.back() << "\n";
      out << withLabel(base, "_sum", lbl, "") << " " << h.sum << "\n";
      out << withLabel(base, "_count", lbl, "") << " " << h.count << "\n";
    }
  }
  return out.str();
}

}  // namespace mercato
