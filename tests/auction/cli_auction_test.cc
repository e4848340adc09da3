// `bourse auction replay` and `bourse auction clear`: the built CLI run on
// files in a temporary directory, output compared byte for byte.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

class AuctionCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bourse-auction-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  static std::string Read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // Runs `bourse auction <args>` (stdin from `stdin_file` if given); returns
  // the exit code and fills out_ / err_.
  int Run(const std::string& args, const std::string& stdin_file = "") {
    std::string cmd = std::string(BOURSE_BINARY_DIR "/clients/bourse") + " auction " + args + " >" +
                      (dir_ / "out").string() + " 2>" + (dir_ / "err").string();
    if (!stdin_file.empty()) cmd += " <" + stdin_file;
    int rc = std::system(cmd.c_str());
    out_ = Read(dir_ / "out");
    err_ = Read(dir_ / "err");
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }

  fs::path dir_;
  std::string out_, err_;
};

TEST_F(AuctionCliTest, ReplayPrintsTradesInExecutionOrderAndRejectionsOnStderr) {
  std::string in = Write("ops.jsonl", R"(
{"op":"place","id":"o1","owner":"a","side":"buy","type":"limit","tif":"gtc","qty":10,"price":"1.5"}
{"op":"place","id":"o2","owner":"b","side":"sell","type":"limit","tif":"gtc","qty":5,"price":"1.4"}
{"op":"place","id":"o2","owner":"b","side":"sell","type":"limit","tif":"gtc","qty":5,"price":"1.4"}
{"op":"cancel","id":"o2"}
{"op":"place","id":"o3","owner":"b","side":"buy","type":"limit","tif":"gtc","qty":2,"price":"1.5"}
{"op":"reduce","id":"o1","qty":4}
{"op":"place","id":"o4","owner":"c","side":"sell","type":"market","tif":"ioc","qty":3}
{"op":"cancel","id":"o4"}
{"op":"move","id":"o3","price":"1.25"}
{"op":"place","id":"o5","owner":"d","side":"sell","type":"limit","tif":"ioc","qty":9,"price":"1"}
{"op":"reduce","id":"o1","qty":1}
{"op":"place","id":"o6","owner":"d","side":"sell","type":"market","tif":"ioc","qty":1,"price":"1"}
{"op":"place","id":"o7","owner":"d","side":"sell","type":"limit","tif":"gtc","qty":0,"price":"1"}
{"op":"explode","id":"o8"}
not json
)");
  ASSERT_EQ(Run("replay " + in), 0) << err_;
  EXPECT_EQ(out_,
            "{\"buy\":\"o1\",\"sell\":\"o2\",\"qty\":5,\"price\":\"1.5\"}\n"
            "{\"buy\":\"o1\",\"sell\":\"o4\",\"qty\":1,\"price\":\"1.5\"}\n"
            "{\"buy\":\"o3\",\"sell\":\"o4\",\"qty\":2,\"price\":\"1.5\"}\n");
  // o2 reused; cancel of o2 (filled); market o4 never rested; move of o3
  // (filled by o4); reduce of o1 (filled); market with a price; qty 0; an
  // unknown op; a line that is not JSON.
  EXPECT_NE(err_.find("line 4: rejected \"o2\": duplicate_id"), std::string::npos) << err_;
  EXPECT_NE(err_.find("line 5: rejected \"o2\": not_resting"), std::string::npos) << err_;
  EXPECT_NE(err_.find("line 9: rejected \"o4\": not_resting"), std::string::npos) << err_;
  EXPECT_NE(err_.find("line 10: rejected \"o3\": not_resting"), std::string::npos) << err_;
  EXPECT_NE(err_.find("line 12: rejected \"o1\": not_resting"), std::string::npos) << err_;
  EXPECT_NE(err_.find("line 13: rejected \"o6\": price: a market order has no price"),
            std::string::npos)
      << err_;
  EXPECT_NE(err_.find("line 14: rejected \"o7\": qty"), std::string::npos) << err_;
  EXPECT_NE(err_.find("line 15: rejected \"o8\": op: unknown operation"), std::string::npos)
      << err_;
  EXPECT_NE(err_.find("line 16: rejected: invalid JSON"), std::string::npos) << err_;
}

TEST_F(AuctionCliTest, ReplayMoveTradesAtOnceAndReadsStdin) {
  std::string in = Write("ops.jsonl",
                         "{\"op\":\"place\",\"id\":\"s\",\"owner\":\"a\",\"side\":\"sell\","
                         "\"type\":\"limit\",\"tif\":\"gtc\",\"qty\":4,\"price\":\"2\"}\n"
                         "{\"op\":\"place\",\"id\":\"b\",\"owner\":\"b\",\"side\":\"buy\","
                         "\"type\":\"limit\",\"tif\":\"gtc\",\"qty\":6,\"price\":\"1\"}\n"
                         "{\"op\":\"move\",\"id\":\"b\",\"price\":\"2.5\"}\n"
                         "{\"op\":\"reduce\",\"id\":\"b\",\"qty\":1}\n"
                         "{\"op\":\"place\",\"id\":\"x\",\"owner\":\"c\",\"side\":\"sell\","
                         "\"type\":\"limit\",\"tif\":\"gtc\",\"qty\":5,\"price\":\"2.5\"}\n");
  ASSERT_EQ(Run("replay -", in), 0) << err_;
  EXPECT_EQ(out_,
            "{\"buy\":\"b\",\"sell\":\"s\",\"qty\":4,\"price\":\"2\"}\n"
            "{\"buy\":\"b\",\"sell\":\"x\",\"qty\":1,\"price\":\"2.5\"}\n");
  EXPECT_EQ(err_, "");
}

const char* kNodes = R"("nodes":[
 {"id":"n1","site":"s1","capacity":{"cpu_mcores":1000,"mem_mib":1024,"disk_mib":0,"net_min_kbps":0,"net_max_kbps":100}},
 {"id":"n2","site":"s2","capacity":{"cpu_mcores":1000,"mem_mib":1024,"disk_mib":0,"net_min_kbps":0,"net_max_kbps":100}}])";

std::string Res(int cpu) {
  return "{\"cpu_mcores\":" + std::to_string(cpu) +
         ",\"mem_mib\":0,\"disk_mib\":0,\"net_min_kbps\":0,\"net_max_kbps\":0}";
}

TEST_F(AuctionCliTest, ClearPrintsWinnersPaymentsAndWelfare) {
  std::string doc = std::string("{") + kNodes + R"(,"bids":[
 {"id":"b1","bidder":"x","limit":"10","bundles":[{"items":[{"node":"n1","res":)" +
                    Res(1000) +
                    R"(}]}]},
 {"id":"b2","bidder":"y","limit":"7.5","bundles":[{"items":[{"node":"n1","res":)" +
                    Res(500) +
                    R"(}]}]},
 {"id":"b3","bidder":"z","limit":"4","bundles":[{"items":[{"node":"n1","res":)" +
                    Res(1000) + R"(}]},{"count":1,"from":["n1","n2"],"min_sites":1,"res":)" +
                    Res(600) + R"(}]}]})";
  std::string in = Write("round.json", doc);
  ASSERT_EQ(Run("clear " + in), 0) << err_;
  EXPECT_EQ(
      out_,
      "{\"winners\":[{\"bid\":\"b1\",\"bundle\":0,\"nodes\":[\"n1\"],\"pay\":\"7.5\"},"
      "{\"bid\":\"b3\",\"bundle\":1,\"nodes\":[\"n2\"],\"pay\":\"0\"}],\"welfare\":\"14\","
      "\"optimal\":true,\"mechanism\":\"vcg\"}\n");
  ASSERT_EQ(Run("clear -", in), 0);
  EXPECT_NE(out_.find("\"welfare\":\"14\""), std::string::npos);
  // The greedy tier alone: b2 ranks first (7.5 / sqrt(0.5)) and blocks b1;
  // the local search swaps b1 in, so b1 pays its limit. The cpu relaxation
  // bounds welfare by 7.5 + 10 + 4 * 0.25 / 0.3 = 20.8333: gap 6.8333 / 20.8333.
  ASSERT_EQ(Run("clear " + in + " --budget 0"), 0) << err_;
  EXPECT_EQ(
      out_,
      "{\"winners\":[{\"bid\":\"b1\",\"bundle\":0,\"nodes\":[\"n1\"],\"pay\":\"10\"},"
      "{\"bid\":\"b3\",\"bundle\":1,\"nodes\":[\"n2\"],\"pay\":\"0\"}],\"welfare\":\"14\","
      "\"optimal\":false,\"gap\":0.328,\"mechanism\":\"greedy\"}\n");
  EXPECT_EQ(Run("clear " + in + " --budget soon"), 2);
  EXPECT_NE(err_.find("--budget"), std::string::npos) << err_;
  EXPECT_EQ(Run("clear " + in + " --budget -1"), 2);
}

TEST_F(AuctionCliTest, ClearRejectsBadInputNamingTheField) {
  std::string in = Write("bad.json", std::string("{") + kNodes + R"(,"bids":[
 {"id":"b1","bidder":"x","limit":"ten","bundles":[]}]})");
  EXPECT_EQ(Run("clear " + in), 1);
  EXPECT_NE(err_.find("bids[0].limit"), std::string::npos) << err_;
  in = Write("bad2.json", std::string("{") + kNodes + R"(,"bids":[
 {"id":"b1","bidder":"x","limit":"1","bundles":[{"count":3,"from":["n1","n2"],"res":)" +
                              Res(1) + "}]}]}");
  EXPECT_EQ(Run("clear " + in), 1);
  EXPECT_NE(err_.find("bids[0] (\"b1\").bundles[0].count"), std::string::npos) << err_;
  in = Write("bad3.json", "{\"nodes\":[],\"bids\":[],\"extra\":1}");
  EXPECT_EQ(Run("clear " + in), 1);
  EXPECT_NE(err_.find("extra"), std::string::npos) << err_;
  EXPECT_EQ(Run("clear " + (dir_ / "missing.json").string()), 1);
  EXPECT_EQ(Run("frobnicate x"), 2);
  EXPECT_EQ(Run("clear " + Write("empty.json", "{\"nodes\":[],\"bids\":[]}")), 0);
  EXPECT_EQ(out_, "{\"winners\":[],\"welfare\":\"0\",\"optimal\":true,\"mechanism\":\"vcg\"}\n");
}

}  // namespace
