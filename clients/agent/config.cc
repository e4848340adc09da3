#include "clients/agent/config.h"

#include <fstream>
#include <iterator>
#include <set>

#include "core/key_value.h"

namespace bourse::agent {
namespace {

// A policy parameter: an integer in [min, max], or a decimal whose nano-credit count is in
// [min, max] (so 0.1 is 100'000'000).
struct ParamSpec {
  const char* name;
  bool is_int;
  int64_t def, min, max;
};
constexpr int64_t kOne = core::Money::kNanosPerCredit;
constexpr int64_t kMaxI = std::numeric_limits<int64_t>::max();
constexpr ParamSpec kParams[] = {
    {"utilisation_k", false, kOne, 0, 1000 * kOne},
    {"demand_step", false, kOne / 10, 1, kOne - 1},
    {"demand_window_s", true, 300, 1, kMaxI},
    {"demand_min", false, kOne / 4, 1, kOne},
    {"demand_max", false, 4 * kOne, kOne, 1000 * kOne},
    {"decay_horizon_s", true, 3600, 1, kMaxI},
    {"decay_min", false, kOne / 5, 1, kOne},
    {"buy_below", false, kOne * 8 / 10, 1, kOne},
};

const ParamSpec* FindParam(std::string_view name) {
  for (const ParamSpec& p : kParams) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

std::string Range(const ParamSpec& p) {
  if (p.is_int) return "an integer >= " + std::to_string(p.min);
  return "a decimal in [" + core::Money::FromNanos(p.min).ToMinimalString() + ", " +
         core::Money::FromNanos(p.max).ToMinimalString() + "]";
}

// The value of `p` written as `text`, as nanos (decimal) or the integer. Errors: invalid_argument
// "\"text\" is not <range>" (without the key; callers add it).
core::Result<int64_t> ParamValue(const ParamSpec& p, const std::string& text) {
  core::KeyValueLine l{0, p.name, text};
  int64_t v = 0;
  if (p.is_int) {
    auto i = l.Int(p.min, p.max);
    if (!i.ok()) return core::InvalidArgument("\"" + text + "\" is not " + Range(p));
    return *i;
  }
  auto m = core::Money::Parse(text);
  if (!m.ok() || m->nanos() < p.min || m->nanos() > p.max) {
    return core::InvalidArgument("\"" + text + "\" is not " + Range(p));
  }
  v = m->nanos().convert_to<int64_t>();
  return v;
}

core::Status SetAmount(std::optional<core::Money>& out, const core::KeyValueLine& l) {
  BOURSE_ASSIGN_OR_RETURN(core::Money m, l.Amount());
  if (m.is_negative()) return l.Error("\"" + l.value + "\" is negative");
  out = m;
  return core::Status::Ok();
}

// One `key = value` line into `c`. Errors: invalid_argument naming the line and key.
core::Status ApplyLine(AgentConfig& c, const core::KeyValueLine& l,
                       std::optional<core::Money>& price, bool& unit_set) {
  const std::string& k = l.key;
  if (k == "broker_url") {
    c.broker_url = l.value;
  } else if (k == "key") {
    c.key = l.value;
  } else if (k == "state_dir") {
    c.state_dir = l.value;
  } else if (k == "sites") {
    c.sites = l.List();
  } else if (k == "markets") {
    c.markets = l.List();
    if (c.markets.empty()) return l.Error("empty; list market ids or write auto");
    for (const std::string& m : c.markets) {
      if (m == "auto" && c.markets.size() > 1) return l.Error("auto stands alone");
    }
  } else if (k == "policy") {
    BOURSE_ASSIGN_OR_RETURN(c.policy,
                            l.OneOf({"fixed", "utilisation", "demand", "decay", "command"}));
  } else if (k == "price") {
    BOURSE_RETURN_IF_ERROR(SetAmount(price, l));
    if (price->is_zero()) return l.Error("must be more than 0");
  } else if (k == "unit") {
    BOURSE_ASSIGN_OR_RETURN(c.unit, l.Resources());
    core::ResourceVector q = c.unit;
    q.net_max_kbps = 0;
    if (q.IsZero())
      return l.Error("needs a quantity (cpu_mcores, mem_mib, disk_mib or net_min_kbps)");
    unit_set = true;
  } else if (k == "floor") {
    BOURSE_RETURN_IF_ERROR(SetAmount(c.floor, l));
  } else if (k == "ceiling") {
    BOURSE_RETURN_IF_ERROR(SetAmount(c.ceiling, l));
    if (c.ceiling->is_zero()) return l.Error("must be more than 0");
  } else if (k == "command") {
    if (l.value.empty()) return l.Error("empty");
    c.command = l.value;
  } else if (k == "command_timeout_ms") {
    BOURSE_ASSIGN_OR_RETURN(c.command_timeout_ms, l.Int(1, 600'000));
  } else if (k == "reprice_period_s") {
    BOURSE_ASSIGN_OR_RETURN(c.reprice_period_s, l.Int(1, 86'400));
  } else if (k == "rfq") {
    BOURSE_ASSIGN_OR_RETURN(c.rfq, l.Bool());
  } else if (k == "buy") {
    BOURSE_ASSIGN_OR_RETURN(c.buy, l.Bool());
  } else if (k == "buy_budget") {
    BOURSE_RETURN_IF_ERROR(SetAmount(c.buy_budget, l));
  } else if (const ParamSpec* p = FindParam(k)) {
    auto v = ParamValue(*p, l.value);
    if (!v.ok()) return l.Error(v.status().message());
    c.params[k] = l.value;
  } else {
    return l.UnknownKey();
  }
  return core::Status::Ok();
}

core::Status Missing(std::string_view key, std::string_view why = "") {
  return core::InvalidArgument("config: " + std::string(key) + ": missing" + std::string(why));
}

// What no single line can check: required keys and how keys fit together.
core::Status CheckWhole(AgentConfig& c, const std::optional<core::Money>& price, bool unit_set) {
  if (c.broker_url.empty()) return Missing("broker_url");
  if (c.key.empty()) return Missing("key");
  if (c.state_dir.empty()) return Missing("state_dir");
  if (!unit_set) return Missing("unit");
  if (price) c.price = *price;
  if (!price && c.policy != "command")
    return Missing("price", " (needed by policy " + c.policy + ")");
  if (c.policy == "command" && c.command.empty()) return Missing("command", " (policy = command)");
  if (c.markets.empty()) c.markets = {"auto"};
  if (c.markets == std::vector<std::string>{"auto"} && c.sites.empty()) {
    return Missing("sites", " (markets = auto works the open markets of its sites)");
  }
  if (c.floor && c.ceiling && *c.floor > *c.ceiling) {
    return core::InvalidArgument("config: floor: " + c.floor->ToMinimalString() +
                                 " is above ceiling " + c.ceiling->ToMinimalString());
  }
  if (c.params.count("demand_min") || c.params.count("demand_max")) {
    BOURSE_ASSIGN_OR_RETURN(core::Money lo, DecimalParam(c, "demand_min"));
    BOURSE_ASSIGN_OR_RETURN(core::Money hi, DecimalParam(c, "demand_max"));
    if (lo > hi) return core::InvalidArgument("config: demand_min: above demand_max");
  }
  return core::Status::Ok();
}

}  // namespace

core::Result<AgentConfig> AgentConfig::Parse(std::string_view text) {
  AgentConfig c;
  std::optional<core::Money> price;
  bool unit_set = false;
  std::map<std::string, int64_t> first_line;
  BOURSE_ASSIGN_OR_RETURN(std::vector<core::KeyValueLine> lines, core::ParseKeyValueLines(text));
  for (const core::KeyValueLine& l : lines) {
    auto [it, fresh] = first_line.emplace(l.key, l.line_no);
    if (!fresh) return l.Error("set twice (first on line " + std::to_string(it->second) + ")");
    BOURSE_RETURN_IF_ERROR(ApplyLine(c, l, price, unit_set));
  }
  BOURSE_RETURN_IF_ERROR(CheckWhole(c, price, unit_set));
  return c;
}

core::Result<AgentConfig> AgentConfig::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::NotFound("config " + path + ": cannot read");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto c = Parse(text);
  if (!c.ok()) return c.status().WithContext(path);
  return c;
}

core::Result<core::Money> DecimalParam(const AgentConfig& c, std::string_view name) {
  const ParamSpec* p = FindParam(name);
  if (p == nullptr || p->is_int) {
    return core::InvalidArgument("policy parameter " + std::string(name) + ": not a decimal one");
  }
  auto it = c.params.find(std::string(name));
  if (it == c.params.end()) return core::Money::FromNanos(p->def);
  auto v = ParamValue(*p, it->second);
  if (!v.ok()) return v.status().WithContext(std::string(name));
  return core::Money::FromNanos(*v);
}

core::Result<int64_t> IntParam(const AgentConfig& c, std::string_view name) {
  const ParamSpec* p = FindParam(name);
  if (p == nullptr || !p->is_int) {
    return core::InvalidArgument("policy parameter " + std::string(name) + ": not an integer one");
  }
  auto it = c.params.find(std::string(name));
  if (it == c.params.end()) return p->def;
  auto v = ParamValue(*p, it->second);
  if (!v.ok()) return v.status().WithContext(std::string(name));
  return *v;
}

core::Result<core::Money> ScalePrice(const core::Money& per_unit_hour,
                                     const core::ResourceVector& unit,
                                     const core::ResourceVector& res, int64_t not_before,
                                     int64_t not_after) {
  using Rep = core::Money::Rep;
  if (not_after <= not_before) {
    return core::InvalidArgument("price: window [" + std::to_string(not_before) + ", " +
                                 std::to_string(not_after) + ") is empty");
  }
  BOURSE_RETURN_IF_ERROR(res.Validate());
  const std::pair<int64_t, int64_t> parts[] = {{res.cpu_mcores, unit.cpu_mcores},
                                               {res.mem_mib, unit.mem_mib},
                                               {res.disk_mib, unit.disk_mib},
                                               {res.net_min_kbps, unit.net_min_kbps}};
  Rep num = 0, den = 0;  // size = num / den, the largest res_i / unit_i
  for (const auto& [r, u] : parts) {
    if (u <= 0) continue;
    if (den == 0 || Rep(r) * den > num * Rep(u)) {
      num = r;
      den = u;
    }
  }
  if (den == 0) return core::InvalidArgument("price: the unit has no quantity to measure by");
  Rep seconds = Rep(not_after) - Rep(not_before);
  return per_unit_hour.MulFrac(num * seconds, den * 3600, core::Rounding::kCeil);
}

core::Result<core::Money> BasePrice(const AgentConfig& c, const core::ResourceVector& res,
                                    int64_t not_before, int64_t not_after) {
  return ScalePrice(c.price, c.unit, res, not_before, not_after);
}

}  // namespace bourse::agent
