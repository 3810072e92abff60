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

// Issue 12, finding 11: the public view sums the per-deployment series, so no id is listed and
// the totals are still right.
TEST(Metrics, FoldedLabelsAreSummedAway) {
  MetricsRegistry r;
  r.counter("mercato_req_total{deployment=\"d-aaa\",code=\"200\"}", "Requests")->inc(3);
  r.counter("mercato_req_total{deployment=\"d-bbb\",code=\"200\"}", "Requests")->inc(4);
  r.counter("mercato_req_total{deployment=\"d-bbb\",code=\"500\"}", "Requests")->inc(1);
  r.counter("mercato_req_total{note=\"a,deployment=\\\"x\\\"\"}", "Requests")->inc(9);
  r.gauge("mercato_queue{deployment=\"d-aaa\"}", "Queue")->set(2);
  r.gauge("mercato_queue{deployment=\"d-bbb\"}", "Queue")->set(5);
  auto* a = r.histogram("mercato_lat_seconds{deployment=\"d-aaa\"}", "Latency", {0.1});
  auto* b = r.histogram("mercato_lat_seconds{deployment=\"d-bbb\"}", "Latency", {0.1});
  a->observe(0.05);
  b->observe(0.05);
  b->observe(1);

  const std::string full = r.render();
  EXPECT_NE(full.find("d-aaa"), std::string::npos);
  const std::string pub = r.render({.foldLabels = {"deployment"}});
  EXPECT_EQ(pub.find("d-aaa"), std::string::npos) << pub;
  EXPECT_EQ(pub.find("d-bbb"), std::string::npos) << pub;
  EXPECT_NE(pub.find("mercato_req_total{code=\"200\"} 7\n"), std::string::npos) << pub;
  EXPECT_NE(pub.find("mercato_req_total{code=\"500\"} 1\n"), std::string::npos) << pub;
  // A comma or the word inside a quoted value is not a label of its own.
  EXPECT_NE(pub.find("mercato_req_total{note=\"a,deployment=\\\"x\\\"\"} 9\n"),
            std::string::npos)
      << pub;
  EXPECT_NE(pub.find("mercato_queue 7\n"), std::string::npos) << pub;
  EXPECT_NE(pub.find("mercato_lat_seconds_bucket{le=\"0.1\"} 2\n"), std::string::npos) << pub;
  EXPECT_NE(pub.find("mercato_lat_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << pub;
  EXPECT_NE(pub.find("mercato_lat_seconds_count 3\n"), std::string::npos) << pub;
}

}  // namespace
}  // namespace mercato
