#include "common/metrics.hpp"

#include <gtest/gtest.h>

namespace mercato {
namespace {

TEST(Metrics, RendersPrometheusText) {
  MetricsRegistry r;
  r.counter("mercato_tx_total{code=\"2xx\"}", "Transactions")->inc(3);
  r.counter("mercato_tx_total{code=\"4xx\"}", "Transactions")->inc();
  r.gauge("mercato_head", "Head")->set(42);
  auto* h = r.histogram("mercato_latency_seconds", "Latency", {0.01, 0.1});
  h->observe(0.005);
  h->observe(0.05);
  h->observe(5);
  const std::string out = r.render();
  EXPECT_NE(out.find("# TYPE mercato_tx_total counter\n"), std::string::npos);
  EXPECT_NE(out.find("mercato_tx_total{code=\"2xx\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("mercato_tx_total{code=\"4xx\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("mercato_head 42\n"), std::string::npos);
  EXPECT_NE(out.find("mercato_latency_seconds_bucket{le=\"0.01\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("mercato_latency_seconds_bucket{le=\"0.1\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find("mercato_latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("mercato_latency_seconds_count 3\n"), std::string::npos);
  // Same name returns the same metric.
  EXPECT_EQ(r.gauge("mercato_head", "Head"), r.gauge("mercato_head", "Head"));
}

}  // namespace
}  // namespace mercato
