// The `bourse` CLI (DESIGN §8) run as a process, as a user would: the real
// binary against a real broker process (tests/system/broker_process.h) on a
// real SQLite file, with real keys and signatures. Checks each command's
// --json output, the exit codes of wrong uses (2 usage, 1 refused, 3 broker
// down), `key new`, the profile resolution order and the tables' exact text.
// WalkthroughTest is the end-to-end story (issue #15); the other tests cover
// what it does not.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "tests/system/broker_process.h"

namespace bourse {
namespace {

using nlohmann::json;
using systest::BourseBinary;
using systest::BrokerProcess;

struct Out {
  int code = -1;
  std::string out, err;
  json j() const { return json::parse(out, nullptr, false); }
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// "2026-12-06T16:30:00+00:00": a unix time as FormatTime prints it under TZ=UTC.
std::string Rfc3339Utc(int64_t unix_s) {
  char when[64];
  std::time_t t = unix_s;
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S+00:00", std::gmtime(&t));
  return when;
}

// A printed time's relative age ("(4s ago)", "(now)") depends on how long the
// test took; fixed-text checks compare it as "(AGE)", and the timestamp in
// front of it exactly.
std::string NormalizeAges(const std::string& s) {
  static const std::regex kAge(R"(\((\d+[smhd] ago|now)\))");
  return std::regex_replace(s, kAge, "(AGE)");
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bourse-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    unsetenv("BOURSE_URL");
    unsetenv("BOURSE_KEY");
    unsetenv("BOURSE_PROFILE");
    setenv("XDG_CONFIG_HOME", (dir_ + "/cfg").c_str(), 1);
    setenv("TZ", "UTC", 1);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Runs `bourse ARGS` in dir_ (ARGS as shell words); env: "A=b C=d" prefix.
  Out Bourse(const std::string& args, const std::string& env = "") {
    std::string cmd = "cd " + dir_ + " && env " + env + " " + BourseBinary() + " " + args +
                      " >out.txt 2>err.txt </dev/null";
    int st = std::system(cmd.c_str());
    Out r;
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.out = Slurp(dir_ + "/out.txt");
    r.err = Slurp(dir_ + "/err.txt");
    return r;
  }

  // Starts a broker and copies its admin key to dir_/admin.pem.
  void StartBroker() {
    auto b = BrokerProcess::Create();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(b).value();
    ASSERT_TRUE(broker_->admin_key().SavePem(dir_ + "/admin.pem").ok());
    url_ = "--url " + broker_->url();
  }

  // Runs `bourse ARGS --json`, expecting success, nothing on stderr and one
  // JSON document on stdout; returns it.
  json Json(const std::string& args) {
    Out r = Bourse(args + " --json");
    EXPECT_EQ(r.code, 0) << args << ": " << r.err;
    EXPECT_EQ(r.err, "") << args;
    json j = r.j();
    EXPECT_FALSE(j.is_discarded()) << args << ": " << r.out;
    return j.is_discarded() ? json::object() : j;
  }

  // Runs `bourse ARGS`, expecting exit `code`, nothing on stdout and stderr
  // starting with "error: " + `error`.
  void Wrong(const std::string& args, int code, const std::string& error) {
    Out r = Bourse(args);
    EXPECT_EQ(r.code, code) << args << ": " << r.err;
    EXPECT_EQ(r.err.rfind("error: " + error, 0), 0u) << args << ": " << r.err;
    EXPECT_EQ(r.out, "") << args;
  }

  std::string NewKey(const std::string& file) {
    Out r = Bourse("key new " + file);
    EXPECT_EQ(r.code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }

  // Site mit (PI pi.pem), node n1 (n1.pem) of capacity `res`, user alice
  // (alice.pem), and root g1 = all of `res` for a week in the broker's pool.
  void SeedSite(const std::string& res) {
    ASSERT_EQ(Bourse(url_ + " --key admin.pem site add mit --pi pi.pem").code, 0);
    const std::string op = url_ + " --key pi.pem ";
    ASSERT_EQ(Bourse(op + "node add mit n1 --key n1.pem --res " + res).code, 0);
    ASSERT_EQ(Bourse(op + "principal add alice.pem --kind user --name alice --site mit").code, 0);
    ASSERT_EQ(Bourse(op + "grant n1 --res " + res + " --from now --until +7d --id g1").code, 0);
  }

  std::string dir_, url_;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(CliTest, UsageErrorsExitTwoWithAUsageLine) {
  for (const char* args : {"", "frob", "site", "site frob", "slice create", "grant n1 --res x"}) {
    Out r = Bourse(args);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_NE(r.err.find("usage: bourse"), std::string::npos) << args << ": " << r.err;
    EXPECT_EQ(r.out, "") << args;
  }
  EXPECT_NE(Bourse("frob").err.find("unknown command \"frob\""), std::string::npos);
  EXPECT_NE(Bourse("site frob").err.find("unknown command \"frob\""), std::string::npos);
}

TEST_F(CliTest, HelpListsCommandsWithAnExample) {
  Out r = Bourse("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* noun :
       {"key", "config", "site", "node", "principal", "grant", "rcap", "holdings", "account",
        "mint", "transfer", "slice", "ledger", "auction", "broker", "completion"}) {
    EXPECT_NE(r.out.find("\n  " + std::string(noun) + " "), std::string::npos) << noun;
  }
  EXPECT_NE(r.out.find("example: bourse"), std::string::npos);
  r = Bourse("slice --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("bindings"), std::string::npos);
  EXPECT_NE(r.out.find("example: bourse slice"), std::string::npos);
}

TEST_F(CliTest, CompletionComesFromTheCommandTree) {
  Out r = Bourse("completion bash");
  ASSERT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("complete -o default -F _bourse bourse"), std::string::npos);
  EXPECT_NE(r.out.find("[\"bourse slice\"]=\"--help -h create"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[\"bourse grant\"]=\"--help -h --res --from --until --to --id\""),
            std::string::npos);
  EXPECT_NE(r.out.find("[\"bourse orders\"]=\"--help -h --market --all\""), std::string::npos);
  EXPECT_NE(r.out.find("[\"bourse share list\"]=\"--help -h --node --all\""), std::string::npos);
  // The script works in bash: completing `bourse sl` offers `slice`.
  std::ofstream(dir_ + "/c.sh") << r.out
                                << "COMP_WORDS=(bourse sl); COMP_CWORD=1; _bourse; "
                                   "echo \"${COMPREPLY[@]}\"\n"
                                   "COMP_WORDS=(bourse --json slice b); COMP_CWORD=3; _bourse; "
                                   "echo \"${COMPREPLY[@]}\"\n"
                                   "COMP_WORDS=(bourse grant n1 --u); COMP_CWORD=3; _bourse; "
                                   "echo \"${COMPREPLY[@]}\"\n";
  int st = std::system(("bash " + dir_ + "/c.sh > " + dir_ + "/c.out").c_str());
  EXPECT_EQ(st, 0);
  EXPECT_EQ(Slurp(dir_ + "/c.out"), "slice\nboot-script bind bindings\n--until --url\n");
}

TEST_F(CliTest, KeyNewIsPrivateAndNeverOverwrites) {
  Out r = Bourse("key new a.pem");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(r.out.rfind("ed25519:", 0), 0u);
  struct stat st {};
  ASSERT_EQ(stat((dir_ + "/a.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string before = Slurp(dir_ + "/a.pem");
  r = Bourse("key new a.pem");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("error: already_exists: a.pem exists"), std::string::npos) << r.err;
  EXPECT_EQ(Slurp(dir_ + "/a.pem"), before);
  r = Bourse("key pub a.pem --json");
  EXPECT_EQ(r.code, 0);
  auto j = r.j();
  EXPECT_EQ(j["key"], Bourse("key pub a.pem").out.substr(0, 51));
}

TEST_F(CliTest, ProfileResolutionOrder) {
  NewKey("k1.pem");
  NewKey("k2.pem");
  ASSERT_EQ(Bourse("config set one --url http://one:1 --key k1.pem").code, 0);
  ASSERT_EQ(Bourse("config set two --url http://two:2 --key k2.pem").code, 0);
  auto show = [&](const std::string& args, const std::string& env = "") {
    Out r = Bourse("config show --json " + args, env);
    EXPECT_EQ(r.code, 0) << r.err;
    return r.j();
  };
  EXPECT_EQ(show("")["url"], "http://one:1");  // the first profile set becomes current
  ASSERT_EQ(Bourse("config use two").code, 0);
  EXPECT_EQ(show("")["url"], "http://two:2");
  EXPECT_EQ(show("", "BOURSE_PROFILE=one")["url"], "http://one:1");
  EXPECT_EQ(show("--profile two", "BOURSE_PROFILE=one")["url"], "http://two:2");
  json j = show("", "BOURSE_URL=http://env:3");
  EXPECT_EQ(j["url"], "http://env:3");
  EXPECT_EQ(j["url_from"], "BOURSE_URL");
  EXPECT_EQ(j["key_from"], "profile two");
  j = show("--url http://flag:4", "BOURSE_URL=http://env:3 BOURSE_KEY=k1.pem");
  EXPECT_EQ(j["url"], "http://flag:4");
  EXPECT_EQ(j["key"], "k1.pem");
  EXPECT_EQ(j["public_key"], Bourse("key pub k1.pem").out.substr(0, 51));
  EXPECT_EQ(Bourse("config use three").code, 1);
}

// The README walkthrough's three roles through the CLI alone, as one story
// against a real broker process (issue #15 "Checks"): a site operator (keys,
// site, node, grant, a market), a service (principal, credits, slice with a
// boot script, buy, sell from what it bought, acquire --slice, a round bid, a
// share bid, bindings, renew, delete) and an auditor (verify, head, proofs),
// checking each step's --json; then wrong uses, each with its exit code and
// its `error: <code>:` line, the last one with the broker killed.
class WalkthroughTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    ASSERT_NO_FATAL_FAILURE(StartBroker());
    from_ = std::time(nullptr) + 3600;
    window_ = " --from " + std::to_string(from_) + " --until " + std::to_string(from_ + 86400);
    admin_ = url_ + " --key admin.pem ";
    op_ = url_ + " --key pi.pem ";
    svc_ = url_ + " --key svc.pem ";
  }

  void SiteOperator() {
    pi_ = NewKey("pi.pem");
    std::string n1 = NewKey("n1.pem");
    json j = Json(admin_ + "site add mit --pi pi.pem");
    EXPECT_EQ(j["name"], "mit");
    EXPECT_EQ(j["pi"], pi_);
    j = Json(op_ + "node add mit n1 --key n1.pem --res cpu_mcores=4000,mem_mib=8192");
    EXPECT_EQ(j["id"], "n1");
    EXPECT_EQ(j["site"], "mit");
    EXPECT_EQ(j["key"], n1);
    EXPECT_EQ(j["capacity"]["cpu_mcores"], 4000);
    EXPECT_EQ(j["capacity"]["mem_mib"], 8192);
    j = Json(op_ + "grant n1 --res cpu_mcores=4000,mem_mib=8192 --from now --until +7d --id g1");
    EXPECT_EQ(j["pooled"], true);
    EXPECT_EQ(j["rcap"]["id"], "g1");
    EXPECT_EQ(j["rcap"]["issuer"], pi_);
    EXPECT_EQ(j["rcap"]["node"], "n1");
    EXPECT_EQ(j["rcap"]["res"]["cpu_mcores"], 4000);
    j = Json(op_ + "market create --node n1 --unit cpu_mcores=100" + window_);
    m_ = j["market"]["id"];
    EXPECT_EQ(j["market"]["node"], "n1");
    EXPECT_EQ(j["market"]["unit"]["cpu_mcores"], 100);
    EXPECT_EQ(j["market"]["not_before"], from_);
    j = Json(admin_ + "sell " + m_ + " 10 --price 2 --rcap g1");  // the pool's capacity
    EXPECT_EQ(j["order"]["side"], "sell");
    EXPECT_EQ(j["order"]["remaining"], 10);
    EXPECT_EQ(j["order"]["price"], "2.000000000");
  }

  void ServiceJoinsAndTrades() {
    std::string svc = NewKey("svc.pem");
    json j = Json(admin_ + "principal add svc.pem --kind user --name svc --site mit");
    EXPECT_EQ(j["key"], svc);
    EXPECT_EQ(j["kind"], "user");
    j = Json(admin_ + "mint svc.pem 100");
    EXPECT_EQ(j["to"], svc);
    EXPECT_EQ(j["balance"], "100.000000000");
    j = Json(svc_ + "slice create mit_web --description 'web cache' --url https://mit.example/web");
    EXPECT_EQ(j["name"], "mit_web");
    EXPECT_EQ(j["creator"], svc);
    EXPECT_EQ(j["description"], "web cache");
    EXPECT_EQ(j["url"], "https://mit.example/web");
    std::ofstream(dir_ + "/boot.sh") << "#!/bin/sh\necho hi\n";
    j = Json(svc_ + "slice boot-script mit_web boot.sh");
    EXPECT_EQ(j["boot_script"], "#!/bin/sh\necho hi\n");
    j = Json(svc_ + "buy " + m_ + " 2 --price 2");
    EXPECT_EQ(j["order"]["state"], "filled");
    EXPECT_EQ(j["order"]["filled"], 2);
    ASSERT_EQ(j["trades"].size(), 1u);
    EXPECT_EQ(j["trades"][0]["qty"], 2);
    EXPECT_EQ(j["trades"][0]["price"], "2.000000000");
    EXPECT_EQ(j["trades"][0]["buyer"], svc);
    bought_ = j["trades"][0]["rcap"];
    j = Json(svc_ + "holdings");
    ASSERT_EQ(j["rcaps"].size(), 1u);
    EXPECT_EQ(j["rcaps"][0]["id"], bought_);
    EXPECT_EQ(j["rcaps"][0]["res"]["cpu_mcores"], 200);
    j = Json(url_ + " rcap show " + bought_);  // root g1, the pool's escrow, the buyer's child
    ASSERT_EQ(j["chain"].size(), 3u);
    EXPECT_EQ(j["chain"][0]["id"], "g1");
    EXPECT_EQ(j["chain"][2]["holder"], svc);
    j = Json(svc_ + "sell " + m_ + " 1 --price 3 --rcap " + bought_);  // the CLI signs the escrow
    sell_ = j["order"]["id"];
    EXPECT_EQ(j["order"]["owner"], svc);
    EXPECT_EQ(j["order"]["side"], "sell");
    EXPECT_EQ(j["order"]["remaining"], 1);
    EXPECT_EQ(j["order"]["price"], "3.000000000");
    j = Json(svc_ + "orders");
    ASSERT_EQ(j["orders"].size(), 1u);  // the resting sell; the filled buy only with --all
    EXPECT_EQ(j["orders"][0]["id"], sell_);
    EXPECT_EQ(j["orders"][0]["market"], m_);
    j = Json(svc_ + "orders --all --market " + m_);
    ASSERT_EQ(j["orders"].size(), 2u);
    EXPECT_EQ(j["orders"][1]["state"], "filled");
  }

  void ServiceAcquiresAndBids() {
    json j = Json(svc_ + "acquire --res cpu_mcores=200 --nodes 1" + window_ +
                  " --max-price 50 --slice mit_web");
    EXPECT_EQ(j["paid"], "4.000000000");  // 2 units of the pool at 2; its own ask at 3 skipped
    EXPECT_EQ(j["nodes"], json::array({"n1"}));
    ASSERT_EQ(j["bindings"].size(), 1u);
    std::string leaf = j["chains"][0].back()["id"];
    j = Json(url_ + " slice bindings mit_web");
    ASSERT_EQ(j["bindings"].size(), 1u);
    EXPECT_EQ(j["bindings"][0]["leaf"], leaf);
    EXPECT_EQ(j["bindings"][0]["node"], "n1");
    j = Json(admin_ + "round open --offers g1 --from +2h --until +3h --close +1h");
    round_ = j.contains("round") ? j["round"]["id"] : j["id"];
    j = Json(url_ + " round list");
    ASSERT_EQ(j["rounds"].size(), 1u);
    EXPECT_EQ(j["rounds"][0]["id"], round_);
    EXPECT_EQ(j["rounds"][0]["state"], "open");
    std::ofstream(dir_ + "/b.json") << R"([{"items":[{"node":"n1","res":{"cpu_mcores":100,)"
                                    << R"("mem_mib":0,"disk_mib":0,"net_min_kbps":0,)"
                                    << R"("net_max_kbps":0}}]}])";
    j = Json(svc_ + "round bid " + round_ + " --limit 3 --bundles b.json");
    EXPECT_EQ(j["bid"]["state"], "sealed");
    EXPECT_EQ(Json(url_ + " round show " + round_)["round"]["bids"], 1);
    j = Json(svc_ + "share bid n1 --slice mit_web --rate 0.01 --budget 5");
    std::string bid = j["bid"]["id"];
    EXPECT_EQ(j["bid"]["state"], "active");
    EXPECT_EQ(j["bid"]["rate"], "0.010000000");
    j = Json(svc_ + "share list --node n1");
    ASSERT_EQ(j["bids"].size(), 1u);
    EXPECT_EQ(j["bids"][0]["id"], bid);
    EXPECT_EQ(j["bids"][0]["slice"], "mit_web");
    j = Json(url_ + " share table n1");
    ASSERT_EQ(j["shares"].size(), 1u);
    EXPECT_EQ(j["shares"][0]["slice"], "mit_web");
    EXPECT_EQ(j["shares"][0]["cpu_weight"], 10000);
    // 100 minted - 4 bought - 4 acquired - 5 share budget - 3 round limit escrowed.
    EXPECT_EQ(Json(svc_ + "account")["balance"], "84.000000000");
    EXPECT_EQ(Json(svc_ + "share withdraw " + bid)["bid"]["state"], "withdrawn");
    EXPECT_EQ(Json(svc_ + "share list")["bids"], json::array());
    EXPECT_EQ(Json(svc_ + "share list --all")["bids"][0]["state"], "withdrawn");
    j = Json(svc_ + "slice renew mit_web --until +3d");
    EXPECT_NEAR(j["expires"].get<int64_t>(), std::time(nullptr) + 3 * 86400, 60);
    EXPECT_EQ(Json(svc_ + "slice delete mit_web")["deleted"], "mit_web");
  }

  void Auditor() {
    const std::string at = " --url " + broker_->url();
    json v = Json("ledger verify" + at);
    EXPECT_EQ(v["ok"], true);
    EXPECT_EQ(v["minted"], "100.000000000");
    EXPECT_GT(v["inclusion_proofs"].get<int64_t>(), 0);
    json h = Json("ledger head" + at);
    EXPECT_EQ(h["verified"], true);
    EXPECT_EQ(h["key"], v["key"]);
    uint64_t size = h["size"];
    EXPECT_GE(size, v["entries"].get<uint64_t>());
    json p = Json("ledger proof inclusion 3" + at);
    EXPECT_EQ(p["ok"], true);
    EXPECT_EQ(p["seq"], 3);
    EXPECT_EQ(p["size"], size);
    EXPECT_EQ(p["root"], h["root"]);
    p = Json("ledger proof consistency 4 " + std::to_string(size) + at);
    EXPECT_EQ(p["ok"], true);
    EXPECT_EQ(p["second_root"], h["root"]);
  }

  void WrongUses() {
    struct Case {
      std::string args;
      int code;
      std::string error;
    };
    const std::string m = m_;
    const Case cases[] = {
        {op_ + "grant n1 --res cpu_mcores=1 --from yesterday --until +2h", 2,
         "invalid_argument: --from: \"yesterday\" is not unix seconds, RFC 3339, now or "
         "+N(s|m|h|d)\n"},
        {op_ + "grant n1 --res cpu=1 --from now --until +2h", 2,
         "invalid_argument: --res: unknown resource \"cpu\""},
        {op_ + "grant n1 --res cpu_mcores=lots --from now --until +2h", 2,
         "invalid_argument: --res: cpu_mcores"},
        {svc_ + "buy mk_nope 1 --price 1", 1, "not_found: "},
        {svc_ + "buy " + m + " 1000 --price 1", 1, "insufficient_funds: "},
        {svc_ + "mint svc.pem 5", 1, "permission_denied: "},  // only the admin mints
        {svc_ + "slice frob", 2, "invalid_argument: unknown command \"frob\" for `bourse slice`"},
        {svc_ + "slice create", 2, "invalid_argument: NAME is required"},
        {svc_ + "slice create mit_x --url 'ftp://x y'", 1, "invalid_argument: url: "},
        {"key new svc.pem", 1, "already_exists: svc.pem exists"},
        {svc_ + "sell " + m + " 1 --price 3 --rcap g1", 1, "permission_denied: "},  // the pool's
        {svc_ + "mint ed25519:nope 1", 2, "invalid_argument: TO: "},
        {svc_ + "transfer pi.pem 1.0000000001", 2, "invalid_argument: AMOUNT: "},
        {svc_ + "acquire --res cpu_mcores=100 --nodes 2" + window_ + " --max-price 50", 1,
         "failed_precondition: "},  // one node only
        {svc_ + "round bid " + round_ + " --limit 3 --bundles nofile", 2,
         "invalid_argument: --bundles: cannot read nofile"},
        {admin_ + "round clear " + round_, 1, "failed_precondition: "},      // before its close
        {url_ + " orders", 2, "invalid_argument: no key: give --key FILE"},  // whose orders?
        {svc_ + "slice show mit_web", 1, "not_found: "},                     // deleted
    };
    for (const Case& c : cases) Wrong(c.args, c.code, c.error);
    broker_->Kill9();
    Wrong(url_ + " site list", 3,
          "unavailable: cannot reach " + broker_->url() +
              ": connection refused or host unreachable\n");
  }

  int64_t from_ = 0;
  std::string window_, admin_, op_, svc_, pi_, m_, bought_, round_;
  int64_t sell_ = 0;
};

TEST_F(WalkthroughTest, SiteOperatorServiceAndAuditorThroughTheCliAlone) {
  ASSERT_NO_FATAL_FAILURE(SiteOperator());
  ASSERT_NO_FATAL_FAILURE(ServiceJoinsAndTrades());
  ASSERT_NO_FATAL_FAILURE(ServiceAcquiresAndBids());
  ASSERT_NO_FATAL_FAILURE(Auditor());
  WrongUses();
}

// Credits and pool splits, which the walkthrough does not use: transfer (and
// too little credit for it), account history, an admin splitting the pool to
// a user, a split beyond its parent; the node list's table text.
TEST_F(CliTest, TransferPoolSplitAndNodeTable) {
  StartBroker();
  NewKey("pi.pem");
  std::string n1 = NewKey("n1.pem"), alice = NewKey("alice.pem");
  const std::string admin = url_ + " --key admin.pem ", user = url_ + " --key alice.pem ";
  SeedSite("cpu_mcores=4000,mem_mib=8192");
  ASSERT_EQ(Bourse(admin + "mint alice.pem 100.5").code, 0);
  Wrong(user + "transfer pi.pem 1000", 1, "failed_precondition: insufficient funds: ");
  json j = Json(user + "transfer pi.pem 0.5");
  EXPECT_EQ(j["amount"], "0.500000000");
  EXPECT_EQ(j["balance"], "100.000000000");
  EXPECT_EQ(Json(user + "account")["balance"], "100.000000000");
  j = Json(user + "account history");
  ASSERT_EQ(j["entries"].size(), 2u);
  EXPECT_EQ(j["entries"][1]["type"], "transfer");
  j = Json(admin + "rcap split g1 --to alice.pem --res cpu_mcores=500,mem_mib=512 --id p1");
  EXPECT_EQ(j["rcaps"][0]["holder"], alice);
  Wrong(user + "rcap split p1 --to pi.pem --res cpu_mcores=900", 1,
        "failed_precondition: exceeds_parent: ");
  Out r = Bourse(url_ + " node list");
  EXPECT_EQ(r.out,
            "ID  SITE  CAPACITY                      KEY\n"
            "n1  mit   cpu_mcores=4000,mem_mib=8192  " +
                n1 + "\n");
}

// Key rotation (docs/cli.md "node rekey", "site rekey"): the site's PI
// rotates a node's key, the node's old key is refused, the PI rotates its
// own key and grants with the new one; the completion offers the verbs.
TEST_F(CliTest, NodeAndSiteRekey) {
  StartBroker();
  NewKey("pi.pem");
  NewKey("n1.pem");
  NewKey("alice.pem");
  std::string n1b = NewKey("n1b.pem"), pi2 = NewKey("pi2.pem");
  SeedSite("cpu_mcores=4000,mem_mib=8192");
  const std::string op = url_ + " --key pi.pem ";
  Out r = Bourse(op + "node rekey n1 --key n1b.pem");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "node n1: key is now " + n1b +
                       " (set node_key in its guard's config and restart the guard)\n");
  EXPECT_EQ(Json(url_ + " node show n1")["key"], n1b);
  // The node's old key is no principal now; a node never rekeys itself.
  r = Bourse(url_ + " --key n1.pem broker call POST /v1/nodes/n1/usage '{\"reports\":[]}'");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("unauthenticated: key " + std::string("ed25519:")), std::string::npos)
      << r.err;
  Wrong(url_ + " --key n1b.pem node rekey n1 --key alice.pem", 1, "permission_denied: ");
  Wrong(op + "node rekey n1 --key alice.pem", 1, "already_exists: ");
  Wrong(op + "node rekey n9 --key " + pi2, 1, "not_found: ");
  EXPECT_EQ(Bourse(op + "node rekey n1").code, 2);  // --key is required
  // The PI rotates its own key (--json: the change as the ledger records it).
  json j = Json(op + "site rekey mit --pi pi2.pem");
  EXPECT_EQ(j["site"], "mit");
  EXPECT_EQ(j["pi"], pi2);
  EXPECT_EQ(j["by"], j["old"]);
  Wrong(op + "grant n1 --res cpu_mcores=100 --from now --until +1d", 1, "unauthenticated: ");
  const std::string op2 = url_ + " --key pi2.pem ";
  EXPECT_EQ(Bourse(op2 + "grant n1 --res cpu_mcores=100 --from +7d --until +8d --id g2").code, 0);
  EXPECT_EQ(Json("ledger verify --url " + broker_->url())["ok"], true);
  r = Bourse("completion bash");
  EXPECT_NE(r.out.find("[\"bourse node rekey\"]=\"--help -h --key\""), std::string::npos);
  EXPECT_NE(r.out.find("[\"bourse site rekey\"]=\"--help -h --pi\""), std::string::npos);
}

// The slice verbs the walkthrough does not use (a slice name without its
// site, owners, bind of a held rcap, instantiate, list) and the bindings
// table's text.
TEST_F(CliTest, SliceOwnersBindAndBindingsTable) {
  StartBroker();
  NewKey("pi.pem");
  NewKey("n1.pem");
  std::string alice = NewKey("alice.pem");
  const std::string admin = url_ + " --key admin.pem ", user = url_ + " --key alice.pem ";
  SeedSite("cpu_mcores=2000");
  int64_t until = std::time(nullptr) + 2 * 3600 + 1800;
  Out r = Bourse(admin +
                 "rcap split g1 --to alice.pem --res cpu_mcores=500 --id p1 --from now "
                 "--until " +
                 std::to_string(until));
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(Bourse(user + "slice create mit_web").code, 0);
  Wrong(user + "slice create nosite --json", 1, "invalid_argument: ");
  EXPECT_EQ(Json(user + "slice owners mit_web alice.pem")["owners"], json::array({alice}));
  // --ssh-key: the caller's keys from a .pub file; kept when the owners change without it.
  const std::string pub =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILbiWK3xGInZa2C5gGitF9RpH9hOYBP+CeSyUiuNIuUE alice@mit";
  std::ofstream(dir_ + "/alice.pub") << "# mine\n" << pub << "\n";
  json mine = json::array({{{"owner", alice}, {"key", pub}}});
  EXPECT_EQ(Json(user + "slice owners mit_web alice.pem --ssh-key alice.pub")["ssh_keys"], mine);
  EXPECT_EQ(Json(user + "slice owners mit_web alice.pem")["ssh_keys"], mine);
  std::ofstream(dir_ + "/bad.pub") << "command=\"sh\" " << pub << "\n";
  Wrong(user + "slice owners mit_web alice.pem --ssh-key bad.pub", 1,
        "invalid_argument: ssh_keys[0].key: ssh key: unknown key type");
  Wrong(user + "slice owners mit_web alice.pem --ssh-key missing.pub", 2, "");
  EXPECT_EQ(Json(user + "slice bind mit_web p1")["leaf"], "p1");
  // n1 registered no disk: the default 64 MiB best-effort disk does not fit
  // it, and the broker says so; without a disk the slice fits.
  Wrong(user + "slice instantiate mit_web n1 --json", 1,
        "failed_precondition: resources.disk_mib: 64 MiB is larger than node n1's disk of 0 MiB");
  EXPECT_EQ(Json(user + "slice resources mit_web --disk-mib 0 --share 2")["resources"],
            json({{"share", 2}, {"disk_mib", 0}, {"mem_mib", 256}}));
  EXPECT_EQ(Json(user + "slice instantiate mit_web n1")["nodes"], json::array({"n1"}));
  Wrong(user + "slice resources mit_web --share 11 --json", 1,
        "invalid_argument: resources.share: 11 is above the site's limit of 10");
  EXPECT_EQ(Json(url_ + " --key pi.pem site sliver-limits mit --max-share 2")["max_share"], 2);
  EXPECT_EQ(Json(url_ + " site sliver-limits mit")["max_disk_mib"], 1024);
  EXPECT_EQ(Json(url_ + " slice list")["slices"][0]["name"], "mit_web");
  json j = Json(url_ + " slice bindings mit_web");
  ASSERT_EQ(j["bindings"].size(), 1u);
  std::string state = j["bindings"][0]["state"];
  std::string when = Rfc3339Utc(until);
  r = Bourse(url_ + " slice bindings mit_web");
  std::string pad(std::max<size_t>(5, state.size()) - state.size(), ' ');
  EXPECT_EQ(r.out, "LEAF  NODE  STATE" + std::string(std::max<size_t>(5, state.size()) - 5, ' ') +
                       "  UNTIL\np1    n1    " + state + pad + "  " + when + " (in 2h)\n");
}

TEST_F(CliTest, BrokerCallTakesFileStdinAndAnyCase) {
  StartBroker();
  std::string pi = NewKey("pi.pem");
  std::ofstream(dir_ + "/site.json") << json{{"name", "mit"}, {"pi", pi}}.dump();
  Out r = Bourse(url_ + " --key admin.pem broker call post /v1/sites @site.json -v");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.j()["name"], "mit");
  EXPECT_EQ(r.err, "HTTP 201 POST /v1/sites\n");
  std::string cmd = "cd " + dir_ + " && echo '{\"name\":\"x\"}' | " + BourseBinary() + " " + url_ +
                    " --key admin.pem broker call Post /v1/sites - > o.txt 2>e.txt";
  int st = std::system(cmd.c_str());
  EXPECT_EQ(WEXITSTATUS(st), 1);
  EXPECT_EQ(Slurp(dir_ + "/e.txt"), "error: invalid_argument: pi: missing\n");
  r = Bourse(url_ + " broker call GET /v1/sites/mit");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.j()["pi"], pi);
}

// A market's book and orders as fixed text, and what the walkthrough does not
// use: a sell beyond the rcap, trades, move, cancel, a market order, bad QTY
// and price.
TEST_F(CliTest, MarketBookOrdersMoveAndCancel) {
  StartBroker();
  NewKey("pi.pem");
  NewKey("n1.pem");
  std::string alice = NewKey("alice.pem");
  const std::string admin = url_ + " --key admin.pem ", op = url_ + " --key pi.pem ",
                    user = url_ + " --key alice.pem ";
  SeedSite("cpu_mcores=4000");
  ASSERT_EQ(Bourse(admin + "rcap split g1 --to alice.pem --res cpu_mcores=1000 --id s1").code, 0);
  ASSERT_EQ(Bourse(admin + "mint pi.pem 100").code, 0);
  Out r =
      Bourse(op + "market create --node n1 --unit cpu_mcores=100 --from +1h --until +1d --json");
  ASSERT_EQ(r.code, 0) << r.err;
  std::string m = r.j()["market"]["id"];
  Wrong(user + "sell " + m + " 30 --price 2 --rcap s1", 1,
        "failed_precondition: exceeds_parent: ");  // 3000 > 1000
  ASSERT_EQ(Bourse(user + "sell " + m + " 4 --price 2 --rcap s1").code, 0);
  ASSERT_EQ(Bourse(user + "sell " + m + " 2 --price 3.5 --rcap s1").code, 0);
  ASSERT_EQ(Bourse(op + "buy " + m + " 1 --price 1.25").code, 0);
  ASSERT_EQ(Bourse(op + "buy " + m + " 1 --price 2").code, 0);
  r = Bourse(url_ + " market book " + m);
  EXPECT_EQ(r.out,
            "SIDE  PRICE        QTY  ORDERS  SIZE\n"
            "ask   3.500000000  2    1       ####################\n"
            "ask   2.000000000  3    1       ##############################\n"
            "bid   1.250000000  1    1       ##########\n");
  r = Bourse(url_ + " market trades " + m + " --json");
  EXPECT_EQ(r.j()["trades"].size(), 1u);
  r = Bourse(op + "move " + m + " 3 1.5 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.j()["order"]["price"], "1.500000000");
  r = Bourse(op + "cancel " + m + " 3 --json");
  EXPECT_EQ(r.j()["order"]["state"], "cancelled");
  ASSERT_EQ(Bourse(op + "buy " + m + " 1").code, 0);  // a market order: no price
  // The orders table, as fixed text: the market id (random) and each order's
  // creation time come from --json, its age is normalised (NormalizeAges).
  r = Bourse(op + "orders --all --json");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(r.j()["orders"].size(), 3u);
  std::string t[3];
  for (int i = 0; i < 3; ++i) {
    t[i] = Rfc3339Utc(r.j()["orders"][i]["created_ms"].get<int64_t>() / 1000) + " (AGE)";
  }
  r = Bourse(op + "orders --all");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string pad(m.size() - 6, ' ');
  auto row = [&m](const char* id, const char* cells, const std::string& created) {
    return std::string(id) + "   " + m + "  " + cells + "  " + created + "\n";
  };
  EXPECT_EQ(NormalizeAges(r.out),
            "ID  MARKET" + pad +
                "  SIDE  QTY  PRICE        FILLED  REMAINING  STATE                  CREATED\n" +
                row("5", "buy   1    market       1       0          filled               ", t[0]) +
                row("4", "buy   1    2.000000000  1       0          filled               ", t[1]) +
                row("3", "buy   1    1.500000000  0       0          cancelled (requested)", t[2]));
  r = Bourse(url_ + " orders alice.pem --market " + m + " --json");  // the resting ones
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(r.j()["orders"].size(), 2u);
  EXPECT_EQ(r.j()["orders"][0]["owner"], alice);
  EXPECT_EQ(r.j()["orders"][1]["remaining"], 2);
  EXPECT_EQ(Bourse(url_ + " market book nowhere").code, 1);
  EXPECT_EQ(Bourse(op + "buy " + m + " 0 --price 1").code, 2);
  EXPECT_EQ(Bourse(op + "buy " + m + " 1 --price 1.0000000001").code, 2);
}

// `bourse rfq`: a buyer opens a manual RFQ, a seller quotes from an rcap it
// holds (the CLI signs the escrow), an admin quotes from the pool, the
// buyer sees the sealed prices (signed reads) and accepts one.
TEST_F(CliTest, RfqOpenQuoteListShowAccept) {
  StartBroker();
  NewKey("pi.pem");
  NewKey("n1.pem");
  NewKey("alice.pem");
  std::string bob = NewKey("bob.pem");
  const std::string admin = url_ + " --key admin.pem ", user = url_ + " --key alice.pem ",
                    seller = url_ + " --key bob.pem ";
  SeedSite("cpu_mcores=4000");
  ASSERT_EQ(Bourse(url_ + " --key pi.pem principal add bob.pem --kind user --name bob --site mit")
                .code,
            0);
  ASSERT_EQ(Bourse(admin + "rcap split g1 --to bob.pem --res cpu_mcores=1000 --id s1").code, 0);
  ASSERT_EQ(Bourse(admin + "mint alice.pem 100").code, 0);
  json opened = Json(user +
                     "rfq open --res cpu_mcores=500 --nodes 1 --from +1h --until +1d "
                     "--max-price 40 --close +30m --manual");
  std::string id = opened["rfq"]["id"];
  EXPECT_EQ(opened["rfq"]["award"], "manual");
  EXPECT_EQ(opened["rfq"]["max_price"], "40.000000000");
  json q = Json(seller + "rfq quote " + id + " --price 30 --rcap s1@n1");
  EXPECT_EQ(q["quote"]["seller"], bob);
  EXPECT_EQ(q["quote"]["nodes"], json::array({"n1"}));
  std::string pool_q = Json(admin + "rfq quote " + id + " --price 25 --rcap g1@n1")["quote"]["id"];
  Out r = Bourse(url_ + " rfq list");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("ID ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(id), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("open"), std::string::npos) << r.out;
  json anon = Json(url_ + " rfq show " + id);  // unsigned: prices sealed
  ASSERT_EQ(anon["rfq"]["quotes"].size(), 2u);
  EXPECT_TRUE(anon["rfq"]["quotes"][0]["price"].is_null());
  json mine = Json(user + "rfq show " + id);  // the buyer sees them
  EXPECT_EQ(mine["rfq"]["quotes"][1]["price"], "25.000000000");
  r = Bourse(user + "rfq show " + id);
  EXPECT_NE(r.out.find("25.000000000"), std::string::npos) << r.out;
  Wrong(seller + "rfq accept " + id + " " + pool_q, 1, "permission_denied: ");
  r = Bourse(user + "rfq accept " + id + " " + pool_q);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "rfq " + id + " awarded to quote " + pool_q + " at 25.000000000: 1 chain(s)\n");
  Wrong(user + "rfq accept " + id + " " + pool_q, 1, "failed_precondition: ");
  json shown = Json(url_ + " rfq show " + id);
  EXPECT_EQ(shown["rfq"]["state"], "awarded");
  EXPECT_EQ(shown["rfq"]["quotes"][0]["state"], "lost");
  EXPECT_EQ(Json(url_ + " rfq list --state awarded")["rfqs"].size(), 1u);
  EXPECT_EQ(Bourse(user + "rfq open --res cpu_mcores=500 --nodes 0 --from +1h --until +1d "
                          "--max-price 1")
                .code,
            2);
}

// `bourse broker seed-demo` (the dashboard test's and the benches' seed; the
// README's walkthrough runs on the living testbed, tests/testbed/).
TEST_F(CliTest, SeedDemoSeedsASiteNodesAUserAndABoundSlice) {
  StartBroker();
  Out r = Bourse(url_ + " --key admin.pem broker seed-demo --dir keys");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/keys/alice.pem"));
  std::string nodes = Bourse(url_ + " node list --site demo").out;
  EXPECT_NE(nodes.find("demo-n1"), std::string::npos) << nodes;
  EXPECT_NE(nodes.find("demo-n2"), std::string::npos) << nodes;
  std::string bindings = Bourse(url_ + " slice bindings demo_hello").out;
  EXPECT_NE(bindings.find("demo-piece-1"), std::string::npos) << bindings;
  json account = Json(url_ + " account keys/alice.pem");
  EXPECT_EQ(account["balance"], "1000.000000000") << account.dump();
}

}  // namespace
}  // namespace bourse
