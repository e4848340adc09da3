// The #6 benchmark script end to end, briefly: bench/scripts/orders.sh starts
// a real broker on a temporary database, seeds it, opens a market and runs
// broker_load (signed orders over its event-loop HTTP client) for 1 second.
// Checks the last line is the JSON summary with no failed request. (Speed is
// measured by the script itself, never asserted here.)
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

namespace {

std::string RunScript(const std::string& mix) {
  std::string cmd = std::string("bash ") + BOURSE_SOURCE_DIR + "/bench/scripts/orders.sh " +
                    BOURSE_BINARY_DIR + " 4 1 " + mix + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(BrokerLoadTest, OrdersAndReadsRunCleanAgainstARealBroker) {
  if (!std::filesystem::exists(std::string(BOURSE_BINARY_DIR) + "/bench/broker_load")) {
    GTEST_SKIP() << "bench/broker_load not built in this build (BOURSE_BUILD_BENCH=OFF)";
  }
  for (const char* mix : {"orders", "reads", "writes"}) {
    std::string out = RunScript(mix);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    std::string last = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
    auto j = nlohmann::json::parse(last, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << mix << ": " << out;
    EXPECT_EQ(j["mix"], mix);
    EXPECT_EQ(j["errors"], 0) << out;
    EXPECT_GT(j["ops"].get<int64_t>(), 0) << out;
    EXPECT_TRUE(j.contains("ops_per_s") && j.contains("p50_ms") && j.contains("p99_ms"));
  }
}

}  // namespace
