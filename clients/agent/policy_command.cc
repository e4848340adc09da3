// command: an executable gets Situation::ToJson() (plus "params") on stdin and prints one JSON
// object {"prices": ["1.5" | null, ...], "values": {"<item id>": "1.2" | null, ...}}. A
// timeout, a non-zero exit, a signal, output that is not that object, a price list of the
// wrong length or a price that is not a positive decimal string: no offers this time (every
// price nullopt, Failed() true: the agent leaves its offers as they are) and one log line saying
// which. The command is split on spaces and run
// without a shell (core of it in subprocess.h).
#include <map>
#include <sstream>

#include "clients/agent/policy_common.h"
#include "clients/agent/subprocess.h"

namespace bourse::agent::internal {
namespace {

// A positive decimal string, or null (= nullopt). False when it is anything else.
bool ReadPrice(const nlohmann::json& j, std::optional<core::Money>* out) {
  if (j.is_null()) {
    *out = std::nullopt;
    return true;
  }
  if (!j.is_string()) return false;
  auto m = core::Money::Parse(j.get<std::string>());
  if (!m.ok() || !m->is_positive()) return false;
  *out = *m;
  return true;
}

class CommandPolicy : public Policy {
 public:
  CommandPolicy(Limits limits, PolicyLog log, std::vector<std::string> argv, SubprocessLimits run,
                nlohmann::json params)
      : limits_(std::move(limits)),
        log_(std::move(log)),
        argv_(std::move(argv)),
        run_(run),
        params_(std::move(params)) {}
  std::string_view name() const override { return "command"; }

  std::vector<std::optional<core::Money>> Price(const Situation& s) override {
    values_.clear();
    values_now_ = s.now_s;
    failed_.assign(s.items.size(), false);
    std::vector<std::optional<core::Money>> none(s.items.size());
    std::vector<std::optional<core::Money>> prices;
    if (std::string why = Run(s, &prices); !why.empty()) {
      log_("policy command: " + argv_[0] + ": " + why + "; no offers this time");
      values_.clear();
      failed_.assign(s.items.size(), true);
      return none;
    }
    for (size_t i = 0; i < prices.size(); ++i) {
      if (!prices[i]) continue;
      auto c = limits_.Clamp(s.items[i], *prices[i]);
      if (!c.ok()) log_("policy command: item " + s.items[i].id + ": " + c.status().message());
      prices[i] = c.ok() ? std::optional<core::Money>(*c) : std::nullopt;
      failed_[i] = !c.ok();
    }
    return prices;
  }

  bool Failed(size_t i) const override { return i < failed_.size() && failed_[i]; }

  std::optional<core::Money> Value(const Situation& s, const Item& item) override {
    if (values_now_ != s.now_s) Price(s);
    auto it = values_.find(item.id);
    return it == values_.end() ? std::nullopt : it->second;
  }

 private:
  // Runs the command on `s`; "" and `prices` filled, or what went wrong.
  std::string Run(const Situation& s, std::vector<std::optional<core::Money>>* prices) {
    nlohmann::json input = s.ToJson();
    input["params"] = params_;
    auto r = RunSubprocess(argv_, input.dump(), run_);
    if (!r.ok()) return r.status().message();
    if (r->end != SubprocessEnd::kExited || r->code != 0) return r->Describe(run_);
    nlohmann::json out = nlohmann::json::parse(r->out, nullptr, false);
    if (out.is_discarded() || !out.is_object()) return "output is not one JSON object";
    const auto p = out.find("prices");
    if (p == out.end() || !p->is_array()) return "output has no \"prices\" array";
    if (p->size() != s.items.size()) {
      return "\"prices\" has " + std::to_string(p->size()) + " entries for " +
             std::to_string(s.items.size()) + " items";
    }
    prices->resize(p->size());
    for (size_t i = 0; i < p->size(); ++i) {
      if (!ReadPrice((*p)[i], &(*prices)[i])) {
        return "prices[" + std::to_string(i) + "]: " + (*p)[i].dump(-1).substr(0, 80) +
               " is not a positive decimal string or null";
      }
    }
    return ReadValues(out);
  }

  std::string ReadValues(const nlohmann::json& out) {
    const auto v = out.find("values");
    if (v == out.end() || v->is_null()) return "";
    if (!v->is_object()) return "\"values\" is not an object";
    for (const auto& [id, j] : v->items()) {
      std::optional<core::Money> m;
      if (!ReadPrice(j, &m)) {
        values_.clear();
        return "values[\"" + id.substr(0, 80) + "\"] is not a positive decimal string or null";
      }
      values_[id] = m;
    }
    return "";
  }

  Limits limits_;
  PolicyLog log_;
  std::vector<std::string> argv_;
  SubprocessLimits run_;
  nlohmann::json params_;
  int64_t values_now_ = -1;  // the situation values_ answers for
  std::map<std::string, std::optional<core::Money>> values_;
  std::vector<bool> failed_;  // per item of the last Price()
};

}  // namespace

core::Result<std::unique_ptr<Policy>> MakeCommandPolicy(const AgentConfig& c, PolicyLog log) {
  BOURSE_ASSIGN_OR_RETURN(Limits limits, Limits::FromConfig(c));
  std::vector<std::string> argv;
  std::istringstream words(c.command);
  for (std::string w; words >> w;) argv.push_back(w);
  if (argv.empty()) return core::InvalidArgument("policy command: command is empty");
  if (c.command_timeout_ms <= 0) {
    return core::InvalidArgument("policy command: command_timeout_ms must be more than 0");
  }
  nlohmann::json params = nlohmann::json::object();
  for (const auto& [k, v] : c.params) params[k] = v;
  SubprocessLimits run{.timeout_ms = c.command_timeout_ms, .max_stdout = 1 << 20};
  return std::unique_ptr<Policy>(new CommandPolicy(std::move(limits), std::move(log),
                                                   std::move(argv), run, std::move(params)));
}

}  // namespace bourse::agent::internal
