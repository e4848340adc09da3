// The pooling agent's config file (clients/agent/config.h, docs/agent.md "Configuration"):
// every key read, bad lines refused naming the key and the line, missing required keys named,
// and the exact price of an item scaled from the configured price.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "clients/agent/config.h"

namespace bourse::agent {
namespace {

const char kMinimal[] =
    "broker_url = http://127.0.0.1:8080\n"
    "key = /etc/bourse/agent.pem\n"
    "state_dir = /var/lib/bourse-agent\n"
    "sites = mit, ucb\n"
    "price = 0.5\n"
    "unit = cpu_mcores=1000,mem_mib=1024\n";

core::Money M(const char* s) { return core::Money::Parse(s).value(); }

// The message of Parse(text)'s error ("" when it parsed).
std::string ErrorOf(const std::string& text) {
  auto c = AgentConfig::Parse(text);
  return c.ok() ? "" : c.status().message();
}

// kMinimal without the line that sets `key`.
std::string Without(const std::string& key) {
  std::string text, all = kMinimal;
  for (size_t pos = 0; pos < all.size();) {
    size_t nl = all.find('\n', pos);
    std::string line = all.substr(pos, nl - pos + 1);
    if (line.rfind(key + " ", 0) != 0) text += line;
    pos = nl + 1;
  }
  return text;
}

bool Has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(AgentConfigTest, MinimalFileGetsTheDefaults) {
  auto c = AgentConfig::Parse(kMinimal);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->broker_url, "http://127.0.0.1:8080");
  EXPECT_EQ(c->key, "/etc/bourse/agent.pem");
  EXPECT_EQ(c->state_dir, "/var/lib/bourse-agent");
  EXPECT_EQ(c->sites, (std::vector<std::string>{"mit", "ucb"}));
  EXPECT_EQ(c->markets, (std::vector<std::string>{"auto"}));
  EXPECT_EQ(c->policy, "fixed");
  EXPECT_EQ(c->price, M("0.5"));
  EXPECT_EQ(c->unit, (core::ResourceVector{.cpu_mcores = 1000, .mem_mib = 1024}));
  EXPECT_FALSE(c->floor);
  EXPECT_FALSE(c->ceiling);
  EXPECT_EQ(c->command_timeout_ms, 2000);
  EXPECT_EQ(c->reprice_period_s, 10);
  EXPECT_TRUE(c->rfq);
  EXPECT_FALSE(c->buy);
  EXPECT_FALSE(c->buy_budget);
  EXPECT_TRUE(c->params.empty());
  EXPECT_EQ(DecimalParam(*c, "utilisation_k").value(), M("1"));
  EXPECT_EQ(DecimalParam(*c, "demand_step").value(), M("0.1"));
  EXPECT_EQ(DecimalParam(*c, "demand_min").value(), M("0.25"));
  EXPECT_EQ(DecimalParam(*c, "demand_max").value(), M("4"));
  EXPECT_EQ(DecimalParam(*c, "decay_min").value(), M("0.2"));
  EXPECT_EQ(DecimalParam(*c, "buy_below").value(), M("0.8"));
  EXPECT_EQ(IntParam(*c, "demand_window_s").value(), 300);
  EXPECT_EQ(IntParam(*c, "decay_horizon_s").value(), 3600);
  EXPECT_FALSE(IntParam(*c, "buy_below").ok());
  EXPECT_FALSE(DecimalParam(*c, "nonsense").ok());
}

TEST(AgentConfigTest, EveryKeyIsRead) {
  auto c = AgentConfig::Parse(
      "# a pooling agent\n"
      "broker_url = http://b:1\n"
      "key = k.pem\n"
      "state_dir = /s\n"
      "\n"
      "sites = a\n"
      "markets = m1, m2 ,m3\n"
      "policy = command\n"
      "price = 2.25\n"
      "unit = cpu_mcores=500,net_min_kbps=1000,net_max_kbps=10000\n"
      "floor = 1\n"
      "ceiling = 3.000000001\n"
      "command = /usr/bin/price --fast\n"
      "command_timeout_ms = 150\n"
      "reprice_period_s = 30\n"
      "rfq = false\n"
      "buy = true\n"
      "buy_budget = 100\n"
      "utilisation_k = 2.5\n"
      "demand_step = 0.05\n"
      "demand_window_s = 60\n"
      "demand_min = 0.5\n"
      "demand_max = 2\n"
      "decay_horizon_s = 600\n"
      "decay_min = 0.1\n"
      "buy_below = 0.9\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sites, (std::vector<std::string>{"a"}));
  EXPECT_EQ(c->markets, (std::vector<std::string>{"m1", "m2", "m3"}));
  EXPECT_EQ(c->policy, "command");
  EXPECT_EQ(c->price, M("2.25"));
  EXPECT_EQ(c->unit.net_max_kbps, 10000);
  EXPECT_EQ(*c->floor, M("1"));
  EXPECT_EQ(*c->ceiling, M("3.000000001"));
  EXPECT_EQ(c->command, "/usr/bin/price --fast");
  EXPECT_EQ(c->command_timeout_ms, 150);
  EXPECT_EQ(c->reprice_period_s, 30);
  EXPECT_FALSE(c->rfq);
  EXPECT_TRUE(c->buy);
  EXPECT_EQ(*c->buy_budget, M("100"));
  EXPECT_EQ(DecimalParam(*c, "utilisation_k").value(), M("2.5"));
  EXPECT_EQ(DecimalParam(*c, "demand_step").value(), M("0.05"));
  EXPECT_EQ(IntParam(*c, "demand_window_s").value(), 60);
  EXPECT_EQ(DecimalParam(*c, "demand_min").value(), M("0.5"));
  EXPECT_EQ(DecimalParam(*c, "demand_max").value(), M("2"));
  EXPECT_EQ(IntParam(*c, "decay_horizon_s").value(), 600);
  EXPECT_EQ(DecimalParam(*c, "decay_min").value(), M("0.1"));
  EXPECT_EQ(DecimalParam(*c, "buy_below").value(), M("0.9"));
  EXPECT_EQ(c->params.size(), 8u);
}

TEST(AgentConfigTest, ExplicitMarketsNeedNoSites) {
  std::string text = "broker_url=u\nkey=k\nstate_dir=s\nprice=1\nunit=mem_mib=1\nmarkets=m1\n";
  auto c = AgentConfig::Parse(text);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->sites.empty());
  EXPECT_TRUE(Has(ErrorOf("broker_url=u\nkey=k\nstate_dir=s\nprice=1\nunit=mem_mib=1\n"),
                  "config: sites: missing"));
}

TEST(AgentConfigTest, BadValuesNameTheKeyAndLine) {
  const std::pair<std::string, std::string> cases[] = {
      {"policy = cheapest",
       "line 2: policy: \"cheapest\" is not fixed, utilisation, demand, "
       "decay or command"},
      {"price = 1.5e3", "line 2: price: \"1.5e3\""},
      {"price = -1", "line 2: price"},
      {"floor = 0.0000000001", "line 2: floor"},
      {"ceiling = 0", "line 2: ceiling: must be more than 0"},
      {"unit = gpu=1", "line 2: unit: unknown resource \"gpu\""},
      {"unit = cpu_mcores=-5", "line 2: unit: cpu_mcores"},
      {"unit = net_max_kbps=100", "line 2: unit: needs a quantity"},
      {"command_timeout_ms = 0", "line 2: command_timeout_ms: \"0\" is not an integer in [1, "},
      {"command_timeout_ms = soon", "line 2: command_timeout_ms"},
      {"reprice_period_s = 10s", "line 2: reprice_period_s"},
      {"rfq = yes", "line 2: rfq: \"yes\" is not true or false"},
      {"buy = 1", "line 2: buy"},
      {"buy_budget = lots", "line 2: buy_budget"},
      {"markets = auto, m1", "line 2: markets: auto stands alone"},
      {"markets = ,", "line 2: markets: empty"},
      {"command =", "line 2: command: empty"},
      {"utilisation_k = -1", "line 2: utilisation_k: \"-1\" is not a decimal in [0, 1000]"},
      {"demand_step = 1", "line 2: demand_step"},
      {"demand_step = 10%", "line 2: demand_step"},
      {"demand_window_s = 0", "line 2: demand_window_s: \"0\" is not an integer >= 1"},
      {"demand_min = 0", "line 2: demand_min"},
      {"demand_max = 0.5", "line 2: demand_max"},
      {"decay_horizon_s = 1.5", "line 2: decay_horizon_s"},
      {"decay_min = 1.5", "line 2: decay_min"},
      {"buy_below = 2", "line 2: buy_below"},
      {"colour = blue", "line 2: unknown key \"colour\""},
      {"just words", "config line 2: expected key = value"},
      {"= 3", "config line 2: expected key = value"},
  };
  for (const auto& [line, want] : cases) {
    std::string key = line.substr(0, line.find(' '));
    std::string text = "# the line under test\n" + line + "\n" + Without(key);
    std::string got = ErrorOf(text);
    EXPECT_TRUE(Has(got, want)) << line << " -> " << got;
    EXPECT_TRUE(Has(got, "config line 2")) << line << " -> " << got;
  }
  EXPECT_TRUE(Has(ErrorOf(std::string(kMinimal) + "price = 2\n"),
                  "config line 7: price: set twice (first on line 5)"));
}

TEST(AgentConfigTest, MissingRequiredKeysAreNamed) {
  const char* keys[] = {"broker_url", "key", "state_dir", "price", "unit"};
  for (const char* key : keys) {
    EXPECT_TRUE(Has(ErrorOf(Without(key)), std::string("config: ") + key + ": missing")) << key;
  }
  // The command policy needs a command, not a price.
  std::string no_price = "broker_url=u\nkey=k\nstate_dir=s\nsites=a\nunit=mem_mib=1\n";
  EXPECT_TRUE(Has(ErrorOf(no_price + "policy=command\n"), "config: command: missing"));
  EXPECT_EQ(ErrorOf(no_price + "policy=command\ncommand=/bin/true\n"), "");
  EXPECT_TRUE(
      Has(ErrorOf(std::string(kMinimal) + "floor=2\nceiling=1\n"), "floor: 2 is above ceiling 1"));
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "demand_min=1\ndemand_max=1\n"), "");
}

TEST(AgentConfigTest, LoadNamesTheFile) {
  auto dir =
      std::filesystem::temp_directory_path() / ("agent_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "agent.conf").string();
  std::ofstream(path) << kMinimal << "price = x\n";
  auto bad = AgentConfig::Load(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Has(bad.status().message(), path + ": config line 7: price"))
      << bad.status().ToString();
  std::ofstream(path) << kMinimal;
  EXPECT_TRUE(AgentConfig::Load(path).ok());
  auto none = AgentConfig::Load((dir / "absent.conf").string());
  EXPECT_EQ(none.status().code(), core::StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(AgentConfigTest, BasePriceIsExactAndRoundsUp) {
  AgentConfig c = AgentConfig::Parse(kMinimal).value();  // 0.5 per hour of 1000 mcores + 1 GiB
  core::ResourceVector one{.cpu_mcores = 1000, .mem_mib = 1024};
  EXPECT_EQ(BasePrice(c, one, 0, 3600).value(), M("0.5"));
  EXPECT_EQ(BasePrice(c, one, 0, 7200).value(), M("1"));
  // The size is the largest ratio: 500 mcores but 4 GiB is 4 units.
  core::ResourceVector memory_heavy{.cpu_mcores = 500, .mem_mib = 4096};
  EXPECT_EQ(BasePrice(c, memory_heavy, 100, 100 + 1800).value(), M("1"));
  // net_max_kbps is a ceiling, not a quantity: it does not change the size.
  core::ResourceVector wide = one;
  wide.net_max_kbps = 1'000'000;
  EXPECT_EQ(BasePrice(c, wide, 0, 3600).value(), M("0.5"));
  // 0.5 x 1/3 unit x 1 h = 0.1666...: rounded up to the nano-credit.
  core::ResourceVector third{.cpu_mcores = 333, .mem_mib = 0};
  EXPECT_EQ(BasePrice(c, third, 0, 3600).value(), M("0.1665"));
  core::ResourceVector thirds{.cpu_mcores = 1, .mem_mib = 0};
  EXPECT_EQ(BasePrice(c, thirds, 0, 1).value(), M("0.000000139"));  // 138.9 nanos, up
  EXPECT_FALSE(BasePrice(c, one, 10, 10).ok());
  EXPECT_FALSE(BasePrice(c, one, 10, 5).ok());
  EXPECT_EQ(ScalePrice(M("2"), c.unit, one, 0, 3600).value(), M("2"));
}

}  // namespace
}  // namespace bourse::agent
