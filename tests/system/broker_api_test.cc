// System tests of bourse-broker over real HTTP: the PLC operations, capacity,
// accounts, node guard endpoints, ledger proofs, OpenAPI coverage, metrics,
// SIGTERM drain.
#include <gtest/gtest.h>

#include <set>

#include "core/clock.h"
#include "ledger/entry.h"
#include "ledger/merkle.h"
#include "ledger/rcap.h"
#include "tests/system/broker_process.h"

namespace bourse::systest {
namespace {

using nlohmann::json;

class BrokerApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = BrokerProcess::Create();
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    proc_ = std::move(p).value();
    auto w = World::Seed(proc_->url(), proc_->admin_key());
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    world_ = std::move(w).value();
  }
  std::unique_ptr<BrokerProcess> proc_;
  std::unique_ptr<World> world_;
};

TEST_F(BrokerApiTest, SliceLifecycleBindAndNodeGuardFlow) {
  World& w = *world_;
  clients::Client user = w.As(w.user);
  auto s = user.Call("POST", "/v1/slices", {{"name", "mit_web"}, {"description", "demo"}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)["owners"][0], w.user.public_key().ToText());
  int64_t now = core::SystemClock::Get().NowSeconds();
  EXPECT_NEAR((*s)["expires"].get<int64_t>(), now + 14 * 86400, 5);

  ASSERT_TRUE(user.Call("GET", "/v1/slices/mit_web").ok());  // fills the read cache
  ASSERT_TRUE(
      user.Call("PUT", "/v1/slices/mit_web/state", {{"boot_script", "#!/bin/sh\necho hi\n"}}).ok());
  EXPECT_EQ((*user.Call("GET", "/v1/slices/mit_web"))["boot_script"], "#!/bin/sh\necho hi\n");
  ASSERT_TRUE(user.Call("PUT", "/v1/slices/mit_web/resources",
                        {{"resources", {{"share", 2}, {"disk_mib", 100}, {"mem_mib", 256}}}})
                  .ok());
  ASSERT_TRUE(user.Call("POST", "/v1/slices/mit_web/instantiate", {{"nodes", {"n1"}}}).ok());
  auto owners = user.Call(
      "PUT", "/v1/slices/mit_web/owners",
      {{"owners", {w.user.public_key().ToText(), w.agent.public_key().ToText()}},
       {"ssh_keys",
        {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILbiWK3xGInZa2C5gGitF9RpH9hOYBP+CeSyUiuNIuUE "
         "alice@mit"}}});
  ASSERT_TRUE(owners.ok()) << owners.status().ToString();
  EXPECT_EQ((*owners)["ssh_keys"][0]["owner"], w.user.public_key().ToText());
  // renew: asking for a year grants 8 weeks.
  auto renewed = user.Call("POST", "/v1/slices/mit_web/renew", {{"expires", now + 365 * 86400}});
  ASSERT_TRUE(renewed.ok());
  EXPECT_NEAR((*renewed)["expires"].get<int64_t>(), now + 56 * 86400, 5);

  // The admin splits the broker's pool on n1 and hands a piece to alice.
  clients::Client admin = w.As(w.admin);
  auto split = admin.Call("POST", "/v1/rcaps/root-n1/split",
                          {{"children",
                            {{{"id", "piece-1"},
                              {"holder", w.user.public_key().ToText()},
                              {"res",
                               {{"cpu_mcores", 500},
                                {"mem_mib", 256},
                                {"disk_mib", 100},
                                {"net_min_kbps", 100},
                                {"net_max_kbps", 1000}}},
                              {"not_before", now - 10},
                              {"not_after", now + 86400}}}}});
  ASSERT_TRUE(split.ok()) << split.status().ToString();
  json chain = {w.root1, (*split)["rcaps"][0]};
  auto bound = user.Call("POST", "/v1/slices/mit_web/bindings", {{"chain", chain}});
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  EXPECT_EQ((*bound)["state"], "active");
  // Double bind refused: 409, the capacity book's "bound at most once".
  auto again = user.Call("POST", "/v1/slices/mit_web/bindings", {{"chain", chain}});
  EXPECT_EQ(again.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("already bound"), std::string::npos)
      << again.status().message();

  // Holdings and pools.
  auto hold = user.Call("GET", "/v1/holdings/" + w.user.public_key().ToText());
  ASSERT_TRUE(hold.ok());
  EXPECT_EQ((*hold)["rcaps"].size(), 1u);
  auto pools = user.Call("GET", "/v1/pools");
  ASSERT_TRUE(pools.ok());
  EXPECT_EQ((*pools)["pools"].size(), 2u);

  // The node guard's view: only node n1's key may read n1's bindings.
  clients::Client n1 = w.As(w.n1);
  auto b = n1.CallSigned("GET", "/v1/nodes/n1/bindings");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ((*b)["bindings"].size(), 1u);
  EXPECT_EQ((*b)["bindings"][0]["slice"], "mit_web");
  EXPECT_EQ((*b)["bindings"][0]["boot_script"], "#!/bin/sh\necho hi\n");
  EXPECT_EQ((*b)["bindings"][0]["chain"].size(), 2u);
  EXPECT_EQ((*b)["bindings"][0]["owners"].size(), 2u);
  clients::Client n2 = w.As(w.n2);
  EXPECT_EQ(n2.CallSigned("GET", "/v1/nodes/n1/bindings").status().code(),
            core::StatusCode::kPermissionDenied);
  EXPECT_EQ(user.CallSigned("GET", "/v1/nodes/n1/bindings").status().code(),
            core::StatusCode::kPermissionDenied);

  // Redemptions (idempotent) and usage (idempotent by id).
  json red = {{"redemptions",
               {{{"rcap", "piece-1"},
                 {"slice", "mit_web"},
                 {"state", "active"},
                 {"reason", nullptr},
                 {"detail", ""},
                 {"ts", now}}}}};
  auto r1 = n1.Call("POST", "/v1/nodes/n1/redemptions", red);
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  auto size1 = admin.Call("GET", "/v1/ledger/head");
  auto r2 = n1.Call("POST", "/v1/nodes/n1/redemptions", red);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ((*r2)["recorded"], 1);
  EXPECT_EQ((*admin.Call("GET", "/v1/ledger/head"))["size"], (*size1)["size"]);
  json usage = {{"reports",
                 {{{"id", "u1"},
                   {"slice", "mit_web"},
                   {"rcap", "piece-1"},
                   {"from", now - 60},
                   {"to", now},
                   {"cpu_usec", 123},
                   {"net_tx_bytes", 456},
                   {"disk_used_mib", 7}}}}};
  auto u1 = n1.Call("POST", "/v1/nodes/n1/usage", usage);
  ASSERT_TRUE(u1.ok()) << u1.status().ToString();
  EXPECT_EQ((*u1)["acked"], json({"u1"}));
  auto size2 = (*admin.Call("GET", "/v1/ledger/head"))["size"];
  ASSERT_TRUE(n1.Call("POST", "/v1/nodes/n1/usage", usage).ok());
  EXPECT_EQ((*admin.Call("GET", "/v1/ledger/head"))["size"], size2);
  // A node cannot report for another node.
  EXPECT_EQ(n2.Call("POST", "/v1/nodes/n1/usage", usage).status().code(),
            core::StatusCode::kPermissionDenied);

  // Delete: the binding disappears for the node guard.
  ASSERT_TRUE(user.Call("DELETE", "/v1/slices/mit_web").ok());
  auto b2 = n1.CallSigned("GET", "/v1/nodes/n1/bindings");
  ASSERT_TRUE(b2.ok());
  EXPECT_TRUE((*b2)["bindings"].empty());
  EXPECT_EQ(user.Call("GET", "/v1/slices/mit_web").status().code(), core::StatusCode::kNotFound);
}

TEST_F(BrokerApiTest, AccountsMintTransferHistory) {
  World& w = *world_;
  clients::Client user = w.As(w.user);
  std::string alice = w.user.public_key().ToText();
  std::string pool = w.agent.public_key().ToText();
  auto t = user.Call("POST", "/v1/accounts/transfer", {{"to", pool}, {"amount", "12.5"}});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)["balance"], "987.500000000");
  auto a = user.Call("GET", "/v1/accounts/" + alice);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)["balance"], "987.500000000");
  EXPECT_EQ((*a)["escrow"], "0.000000000");
  auto h = user.Call("GET", "/v1/accounts/" + alice + "/history");
  ASSERT_TRUE(h.ok());
  ASSERT_EQ((*h)["entries"].size(), 2u);
  EXPECT_EQ((*h)["entries"][0]["type"], "mint");
  EXPECT_EQ((*h)["entries"][1]["type"], "transfer");
  // Only admin mints; overdraft refused.
  EXPECT_EQ(
      user.Call("POST", "/v1/accounts/mint", {{"to", alice}, {"amount", "1"}}).status().code(),
      core::StatusCode::kPermissionDenied);
  EXPECT_EQ(user.Call("POST", "/v1/accounts/transfer", {{"to", pool}, {"amount", "5000"}})
                .status()
                .code(),
            core::StatusCode::kFailedPrecondition);
}

TEST_F(BrokerApiTest, LedgerEndpointsVerifyAsRfc9162) {
  clients::Client c(proc_->url());
  auto head = c.Call("GET", "/v1/ledger/head");
  ASSERT_TRUE(head.ok());
  auto key = c.Call("GET", "/v1/ledger/key");
  ASSERT_TRUE(key.ok());
  auto th = ledger::TreeHeadFromJson(*head);
  ASSERT_TRUE(th.ok()) << th.status().ToString();
  auto pub = core::PublicKey::FromText((*key)["key"].get<std::string>());
  ASSERT_TRUE(pub.ok());
  EXPECT_TRUE(ledger::VerifyTreeHead(*th, *pub).ok());
  uint64_t n = th->size;
  ASSERT_GT(n, 5u);
  auto entries = c.Send("GET", "/v1/ledger/entries?from=0&to=" + std::to_string(n), "", false);
  ASSERT_TRUE(entries.ok());
  std::vector<ledger::Hash> leaves;
  for (const json& e : entries->json["entries"]) {
    auto entry = ledger::EntryFromJson(e);
    ASSERT_TRUE(entry.ok()) << entry.status().ToString();
    leaves.push_back(ledger::LeafHash(*ledger::CanonicalEntry(*entry)));
  }
  ASSERT_EQ(leaves.size(), n);
  EXPECT_EQ(ledger::RootFromLeafHashes(leaves), th->root);
  for (uint64_t i = 0; i < n; ++i) {
    auto p = c.Call("GET", "/v1/ledger/proof/inclusion?seq=" + std::to_string(i) +
                               "&size=" + std::to_string(n));
    ASSERT_TRUE(p.ok());
    auto path = ledger::ProofPathFromJson((*p)["path"]);
    ASSERT_TRUE(path.ok());
    EXPECT_TRUE(ledger::VerifyInclusion(i, n, leaves[i], *path, th->root).ok()) << i;
  }
  for (uint64_t m = 1; m <= n; ++m) {
    auto p = c.Call("GET", "/v1/ledger/proof/consistency?first=" + std::to_string(m) +
                               "&second=" + std::to_string(n));
    ASSERT_TRUE(p.ok());
    auto path = ledger::ProofPathFromJson((*p)["path"]);
    ASSERT_TRUE(path.ok());
    std::vector<ledger::Hash> prefix(leaves.begin(), leaves.begin() + m);
    EXPECT_TRUE(
        ledger::VerifyConsistency(m, n, ledger::RootFromLeafHashes(prefix), th->root, *path).ok())
        << m;
  }
}

// Every served route is documented in /openapi.json and every documented
// route is served (probed: a documented route never answers "no such endpoint").
TEST_F(BrokerApiTest, OpenApiMatchesServedRoutes) {
  clients::Client c(proc_->url());
  auto doc = c.Call("GET", "/openapi.json");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["openapi"], "3.1.0");
  std::set<std::string> documented;
  for (auto& [path, ops] : (*doc)["paths"].items()) {
    for (auto& [method, op] : ops.items()) {
      std::string m = method;
      for (char& ch : m) ch = static_cast<char>(std::toupper(ch));
      documented.insert(m + " " + path);
      EXPECT_TRUE(op.contains("responses")) << path;
      // Probe with placeholders filled in.
      std::string concrete = path;
      size_t pos;
      while ((pos = concrete.find('{')) != std::string::npos) {
        concrete.replace(pos, concrete.find('}', pos) - pos + 1, "x_probe");
      }
      // A stream (GET /v1/events) is probed with a query it refuses at once.
      if (op["responses"].begin()->contains("content") &&
          (*op["responses"].begin())["content"].contains("text/event-stream")) {
        concrete += "?topics=x_probe";
      }
      auto r = c.Send(m, concrete, op.contains("requestBody") ? "{}" : "", false);
      ASSERT_TRUE(r.ok());
      EXPECT_NE(r->error_message().rfind("no such endpoint", 0), 0u) << m << " " << path;
      EXPECT_NE(r->status, 405) << m << " " << path;
    }
  }
  EXPECT_GE(documented.size(), 35u);
  // The served set: the metrics name each matched route by its pattern; after
  // the probes above every served route has been hit at least once.
  auto metrics = c.Send("GET", "/metrics", "", false);
  ASSERT_TRUE(metrics.ok());
  std::set<std::string> served;
  size_t at = 0;
  const std::string needle = "bourse_http_requests_total{route=\"";
  while ((at = metrics->body.find(needle, at)) != std::string::npos) {
    at += needle.size();
    std::string route = metrics->body.substr(at, metrics->body.find('"', at) - at);
    if (route.find(' ') != std::string::npos) served.insert(route);
  }
  for (const std::string& r : served)
    EXPECT_TRUE(documented.count(r)) << "served, undocumented: " << r;
  for (const std::string& r : documented)
    EXPECT_TRUE(served.count(r)) << "documented, not served: " << r;
  // An undocumented path is not served.
  auto none = c.Send("GET", "/v1/not-a-route", "", false);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->status, 404);
}

TEST_F(BrokerApiTest, MetricsAndRequestIds) {
  clients::Client c(proc_->url());
  auto r = c.Send("GET", "/healthz", "", false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(r->headers["X-Request-Id"].empty());
  auto m = c.Send("GET", "/metrics", "", false);
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->body.find("bourse_http_request_duration_seconds_bucket{route=\"GET /healthz\""),
            std::string::npos);
  EXPECT_NE(m->body.find("bourse_ledger_size "), std::string::npos);
  EXPECT_NE(m->body.find("bourse_ledger_commit_duration_seconds_count "), std::string::npos);
}

TEST_F(BrokerApiTest, SigtermDrainsAndExitsZeroKeepingState) {
  {
    clients::Client user = world_->As(world_->user);
    ASSERT_TRUE(user.Call("POST", "/v1/slices", {{"name", "mit_keep"}}).ok());
  }  // closes the keep-alive connection, so the drain does not wait for it
  EXPECT_EQ(proc_->Terminate(), 0);
  ASSERT_TRUE(proc_->Start().ok());
  clients::Client again(proc_->url());
  EXPECT_TRUE(again.Call("GET", "/v1/slices/mit_keep").ok());
}

TEST(BrokerProcessTest, RateLimitAnswers429) {
  auto p = BrokerProcess::Create({"--rate-limit", "5"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  clients::Client admin((*p)->url(), (*p)->admin_key());
  int limited = 0;
  for (int i = 0; i < 40; ++i) {
    auto r = admin.Send("POST", "/v1/accounts/mint", "{}", true);
    ASSERT_TRUE(r.ok());
    if (r->status == 429) {
      ++limited;
      EXPECT_EQ(r->error_code(), "resource_exhausted");
    }
  }
  EXPECT_GT(limited, 0);
}

TEST(BrokerProcessTest, ServesTlsWithCertAndKey) {
  char tmpl[] = "/tmp/bourse-tls-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=127.0.0.1 -keyout " +
      dir + "/key.pem -out " + dir + "/cert.pem > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  {
    auto p =
        BrokerProcess::Create({"--tls-cert", dir + "/cert.pem", "--tls-key", dir + "/key.pem"});
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ((*p)->url().rfind("https://", 0), 0u);
    clients::Client c((*p)->url());
    auto head = c.Call("GET", "/v1/ledger/head");
    ASSERT_TRUE(head.ok()) << head.status().ToString();
    clients::Client admin((*p)->url(), (*p)->admin_key());
    auto minted = admin.Call("POST", "/v1/accounts/mint",
                             {{"to", (*p)->admin_key().public_key().ToText()}, {"amount", "1"}});
    EXPECT_TRUE(minted.ok()) << minted.status().ToString();  // a signed write over TLS
    auto plain =
        clients::Client("http://" + (*p)->url().substr(8)).Send("GET", "/healthz", "", false);
    EXPECT_FALSE(plain.ok() && plain->status == 200);  // plain HTTP is not served
  }
  std::filesystem::remove_all(dir);
}

TEST(BrokerProcessTest, InitRefusesExistingDatabaseAndStartRequiresInit) {
  auto p = BrokerProcess::Create();
  ASSERT_TRUE(p.ok());
  std::string cmd = BrokerBinary() + " init --db " + (*p)->db() + " > /dev/null 2>&1";
  EXPECT_NE(std::system(cmd.c_str()), 0);
  std::string serve =
      BrokerBinary() + " --db " + (*p)->dir() + "/missing.db --listen 127.0.0.1:0 > /dev/null 2>&1";
  EXPECT_NE(std::system(serve.c_str()), 0);
  struct stat st;
  ASSERT_EQ(stat(((*p)->db() + ".admin-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace bourse::systest
