// Schema versions (issue #14): a database written by the code before
// versions existed (commit 838e1e1, fixture tests/broker/data) opens, keeps
// its data and is brought to the current versions; a database newer than the
// code is refused with a clear error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "broker/broker.h"
#include "core/keys.h"
#include "storage/sqlite.h"

namespace bourse::broker {
namespace {

namespace fs = std::filesystem;

const std::string kData = std::string(BOURSE_SOURCE_DIR) + "/tests/broker/data/";

class SchemaMigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bourse-migrate-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    db_ = (dir_ / "bourse.db").string();
    // A clone does not keep file modes: the key is copied with mode 0600.
    const fs::path key_file = dir_ / "ledger-key.pem";
    fs::copy_file(kData + "db_838e1e1.ledger-key.pem", key_file);
    fs::permissions(key_file, fs::perms::owner_read | fs::perms::owner_write,
                    fs::perm_options::replace);
    auto key = core::PrivateKey::LoadPem(key_file.string());
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    key_.emplace(*key);
    // The old database, rebuilt from its dump.
    std::ifstream f(kData + "db_838e1e1.sql");
    std::stringstream ss;
    ss << f.rdbuf();
    ASSERT_FALSE(ss.str().empty());
    auto c = Conn();
    ASSERT_TRUE(c->Exec(ss.str()).ok());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<storage::Connection> Conn() {
    storage::ConnectionOptions o;
    o.create = true;
    auto c = storage::Connection::Open(db_, o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  int64_t Count(const std::string& sql) {
    auto c = Conn();
    auto s = c->Prepare(sql);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return -1;
    auto row = s->Step();
    EXPECT_TRUE(row.ok() && *row);
    return s->Int(0);
  }
  core::Result<std::unique_ptr<Broker>> OpenBroker() {
    BrokerOptions o;
    o.db_path = db_;
    o.ledger_key = *key_;
    o.markets.tick_ms = 0;
    return Broker::Open(o);
  }

  fs::path dir_;
  std::string db_;
  std::optional<core::PrivateKey> key_;
};

TEST_F(SchemaMigrationTest, DatabaseOfThePreviousVersionOpensAndIsMigrated) {
  ASSERT_EQ(Count("SELECT count(*) FROM b_principals"), 6);
  ASSERT_EQ(Count("SELECT count(*) FROM ledger_entries"), 16);
  {
    auto b = OpenBroker();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ((*b)->LedgerSize(), 16);
  }
  auto c = Conn();
  EXPECT_EQ(*storage::SchemaVersion(*c, "ledger"), 1);
  EXPECT_EQ(*storage::SchemaVersion(*c, "broker"), 9);
  // Migration 9: the node guards' sliver logs, none yet.
  EXPECT_EQ(Count("SELECT count(*) FROM b_sliver_log_reports"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM b_sliver_logs"), 0);
  // Migration 8: the sites' best-effort sliver limits, none set (the defaults).
  EXPECT_EQ(Count("SELECT count(*) FROM b_sliver_limits"), 0);
  // Migration 7: the keys rotations replaced, none yet.
  EXPECT_EQ(Count("SELECT count(*) FROM b_retired_keys"), 0);
  // Migration 6: the node guards' sliver reports, none yet.
  EXPECT_EQ(Count("SELECT count(*) FROM b_sliver_reports"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM b_slivers"), 0);
  // Migration 5: the capacity book's rcap_released, empty.
  EXPECT_EQ(Count("SELECT count(*) FROM rcap_released"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM b_slices WHERE url=''"),
            Count("SELECT count(*) FROM b_slices"));  // migration 3: url, empty for old slices
  // Migration 4: no binding's end is recorded yet (the next tick writes it).
  EXPECT_EQ(Count("SELECT count(*) FROM b_bindings WHERE expired_seq IS NULL"),
            Count("SELECT count(*) FROM b_bindings"));
  EXPECT_EQ(*storage::SchemaVersion(*c, "markets"), 4);
  // The data survived; the one-time backfill's marker table is gone.
  EXPECT_EQ(Count("SELECT count(*) FROM b_principals"), 6);
  EXPECT_EQ(Count("SELECT count(*) FROM b_nodes"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM rcap_bound"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM sqlite_master WHERE name='b_migrations'"), 0);
  // Opening again changes nothing.
  auto again = OpenBroker();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
}

TEST_F(SchemaMigrationTest, BindingsAreBackfilledWhenTheOldMarkerIsMissing) {
  {
    auto c = Conn();
    ASSERT_TRUE(c->Exec("DELETE FROM rcap_bound; DROP TABLE b_migrations").ok());
  }
  auto b = OpenBroker();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  b->reset();
  EXPECT_EQ(Count("SELECT count(*) FROM rcap_bound"), 1);
}

TEST_F(SchemaMigrationTest, NewerDatabaseIsRefused) {
  {
    auto b = OpenBroker();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
  }
  {
    auto c = Conn();
    ASSERT_TRUE(c->Exec("UPDATE storage_schema SET version=99 WHERE component='broker'").ok());
  }
  auto b = OpenBroker();
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(b.status().message().find("broker schema version 99 is newer than this program knows"),
            std::string::npos)
      << b.status().message();
  {
    auto c = Conn();
    ASSERT_TRUE(c->Exec("UPDATE storage_schema SET version=1 WHERE component='broker';"
                        "UPDATE storage_schema SET version=7 WHERE component='ledger'")
                    .ok());
  }
  b = OpenBroker();
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("ledger schema version 7 is newer"), std::string::npos)
      << b.status().message();
}

// The markets' tables (m_*) are a schema of their own ("markets"): a market
// written before versions were recorded is loaded as it was, and a newer
// markets schema is refused.
TEST_F(SchemaMigrationTest, MarketsOfThePreviousVersionAreKept) {
  {
    auto c = Conn();
    ASSERT_TRUE(c->Exec("INSERT INTO m_markets VALUES('mkt_old','demo-n1','demo',"
                        "'{\"cpu_mcores\":1000,\"disk_mib\":0,\"mem_mib\":0,"
                        "\"net_max_kbps\":0,\"net_min_kbps\":0}',1796600000,1796603600,"
                        "1796600000,'','closed','ed25519:x',1796552009000)")
                    .ok());
  }
  {
    auto b = OpenBroker();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    auto m = (*b)->markets().MarketSummary("mkt_old");
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ((*m)["market"]["node"], "demo-n1");
    EXPECT_EQ((*m)["market"]["state"], "closed");
    EXPECT_EQ((*m)["market"]["unit"]["cpu_mcores"], 1000);
  }
  EXPECT_EQ(*storage::SchemaVersion(*Conn(), "markets"), 4);
  {
    auto c = Conn();
    ASSERT_TRUE(c->Exec("UPDATE storage_schema SET version=5 WHERE component='markets'").ok());
  }
  auto b = OpenBroker();
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("markets schema version 5 is newer"), std::string::npos)
      << b.status().message();
}

// What markets migration 4 added, taken away again (a file of version 3).
constexpr const char* kUndoMarketsV4 =
    "DROP INDEX m_round_bids_bidder; ALTER TABLE m_rounds DROP COLUMN bid_terms;";

// Markets schema 3 on a file at markets version 2: the live-orders index
// loses prio (a move then updates its order's row alone).
TEST_F(SchemaMigrationTest, MarketsVersionTwoGetsTheLiveOrdersIndexWithoutPrio) {
  {
    auto b = OpenBroker();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
  }
  {
    auto c = Conn();
    ASSERT_TRUE(c->Exec(std::string(kUndoMarketsV4) +
                        "DROP INDEX m_orders_live;"
                        "CREATE INDEX m_orders_live ON m_orders(market, state, prio);"
                        "UPDATE storage_schema SET version=2 WHERE component='markets';")
                    .ok());
  }
  EXPECT_EQ(Count("SELECT count(*) FROM pragma_index_info('m_orders_live')"), 3);
  auto b = OpenBroker();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(*storage::SchemaVersion(*Conn(), "markets"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM pragma_index_info('m_orders_live')"), 2);
}

// Markets schema 4 on a file at markets version 3: rounds count their bids'
// terms (an open round starts from 0) and bids are indexed per bidder.
TEST_F(SchemaMigrationTest, MarketsVersionThreeCountsRoundTerms) {
  {
    auto b = OpenBroker();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
  }
  {
    auto c = Conn();
    ASSERT_TRUE(c->Exec(std::string(kUndoMarketsV4) +
                        "UPDATE storage_schema SET version=3 WHERE component='markets';"
                        "INSERT INTO m_rounds VALUES('rnd_v3','open',1796600000,1796600000,"
                        "1796603600,'[]','null','ed25519:x',1796552009000)")
                    .ok());
  }
  auto b = OpenBroker();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(*storage::SchemaVersion(*Conn(), "markets"), 4);
  EXPECT_EQ(Count("SELECT bid_terms FROM m_rounds WHERE id='rnd_v3'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM pragma_index_info('m_round_bids_bidder')"), 2);
}

// Markets schema 2 (requests for quote) on a file at markets version 1: its
// markets are kept and the RFQ tables appear, empty and usable.
TEST_F(SchemaMigrationTest, MarketsVersionOneGainsTheRfqTables) {
  {
    auto b = OpenBroker();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
  }
  {
    auto c = Conn();
    ASSERT_TRUE(c->Exec(std::string(kUndoMarketsV4) +
                        "DROP TABLE m_rfq_quotes; DROP TABLE m_rfqs;"
                        "UPDATE storage_schema SET version=1 WHERE component='markets';"
                        "INSERT INTO m_markets VALUES('mkt_v1','demo-n1','demo',"
                        "'{\"cpu_mcores\":1000,\"disk_mib\":0,\"mem_mib\":0,"
                        "\"net_max_kbps\":0,\"net_min_kbps\":0}',1796600000,1796603600,"
                        "1796600000,'','closed','ed25519:x',1796552009000)")
                    .ok());
  }
  auto b = OpenBroker();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(*storage::SchemaVersion(*Conn(), "markets"), 4);
  EXPECT_TRUE((*b)->markets().MarketSummary("mkt_v1").ok());
  EXPECT_EQ(Count("SELECT count(*) FROM m_rfqs"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM m_rfq_quotes"), 0);
  auto list = (*b)->markets().ListRfqs(std::nullopt, std::nullopt, "", 0);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_TRUE((*list)["rfqs"].empty());
}

}  // namespace
}  // namespace bourse::broker
