#include "core/resource_vector.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "core/canonical_json.h"
#include "core/json_codec.h"

namespace bourse::core {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

ResourceVector Rv(int64_t cpu, int64_t mem, int64_t disk, int64_t net_min, int64_t net_max) {
  return ResourceVector{.cpu_mcores = cpu,
                        .mem_mib = mem,
                        .disk_mib = disk,
                        .net_min_kbps = net_min,
                        .net_max_kbps = net_max};
}

void ExpectInvalid(const Status& st, std::string_view needle) {
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find(needle), std::string::npos)
      << "\"" << st.message() << "\" lacks \"" << needle << "\"";
}

TEST(ResourceVectorTest, ValidateAcceptsSaneVectors) {
  EXPECT_TRUE(ResourceVector{}.Validate().ok());
  EXPECT_TRUE(Rv(2000, 4096, 10240, 1000, 10000).Validate().ok());
  EXPECT_TRUE(Rv(0, 0, 0, 5, 5).Validate().ok());
  EXPECT_TRUE(Rv(kMax, kMax, kMax, kMax, kMax).Validate().ok());
}

TEST(ResourceVectorTest, ValidateNamesTheNegativeComponent) {
  ExpectInvalid(Rv(-1, 0, 0, 0, 0).Validate(), "cpu_mcores is negative");
  ExpectInvalid(Rv(0, -1, 0, 0, 0).Validate(), "mem_mib is negative");
  ExpectInvalid(Rv(0, 0, -5, 0, 0).Validate(), "disk_mib is negative (-5)");
  ExpectInvalid(Rv(0, 0, 0, -1, 0).Validate(), "net_min_kbps is negative");
  ExpectInvalid(Rv(0, 0, 0, 0, -1).Validate(), "net_max_kbps is negative");
  ExpectInvalid(Rv(0, 0, 0, 2, 1).Validate(), "net_min_kbps (2) exceeds net_max_kbps (1)");
}

TEST(ResourceVectorTest, FitsWithinIsComponentWise) {
  const ResourceVector parent = Rv(2000, 4096, 10240, 1000, 10000);
  EXPECT_TRUE(parent.FitsWithin(parent));
  EXPECT_TRUE(ResourceVector{}.FitsWithin(parent));
  EXPECT_TRUE(Rv(1000, 4096, 0, 1000, 5000).FitsWithin(parent));
  EXPECT_FALSE(Rv(2001, 0, 0, 0, 0).FitsWithin(parent));
  EXPECT_FALSE(Rv(0, 4097, 0, 0, 0).FitsWithin(parent));
  EXPECT_FALSE(Rv(0, 0, 10241, 0, 0).FitsWithin(parent));
  EXPECT_FALSE(Rv(0, 0, 0, 1001, 1001).FitsWithin(parent));
  // A ceiling above the parent's: the quantities fit, the vector does not.
  const ResourceVector high_ceiling = Rv(1, 1, 1, 1, 10001);
  EXPECT_FALSE(high_ceiling.FitsWithin(parent));
  EXPECT_TRUE(high_ceiling.QuantitiesFitWithin(parent));
  EXPECT_FALSE(Rv(0, 0, 0, 1001, 1001).QuantitiesFitWithin(parent));
  // Not a total order: neither fits within the other.
  EXPECT_FALSE(Rv(1, 2, 0, 0, 0).FitsWithin(Rv(2, 1, 0, 0, 0)));
  EXPECT_FALSE(Rv(2, 1, 0, 0, 0).FitsWithin(Rv(1, 2, 0, 0, 0)));
}

TEST(ResourceVectorTest, IsZero) {
  EXPECT_TRUE(ResourceVector{}.IsZero());
  EXPECT_FALSE(Rv(0, 0, 0, 0, 1).IsZero());
  EXPECT_FALSE(Rv(1, 0, 0, 0, 0).IsZero());
}

TEST(ResourceVectorTest, PlusAddsQuantitiesAndKeepsTheLargerCeiling) {
  auto r = Rv(1000, 1024, 10, 100, 5000).Plus(Rv(500, 1024, 5, 50, 8000));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Rv(1500, 2048, 15, 150, 8000));
  EXPECT_EQ(*Rv(1, 1, 1, 1, 9).Plus(Rv(1, 1, 1, 1, 2)), Rv(2, 2, 2, 2, 9));
}

TEST(ResourceVectorTest, PlusOverflowIsAnError) {
  ExpectInvalid(Rv(kMax, 0, 0, 0, 0).Plus(Rv(1, 0, 0, 0, 0)).status(), "cpu_mcores overflows");
  ExpectInvalid(Rv(0, kMax, 0, 0, 0).Plus(Rv(0, 1, 0, 0, 0)).status(), "mem_mib overflows");
  ExpectInvalid(Rv(0, 0, kMax, 0, 0).Plus(Rv(0, 0, kMax, 0, 0)).status(), "disk_mib overflows");
  ExpectInvalid(Rv(0, 0, 0, kMax, kMax).Plus(Rv(0, 0, 0, 1, 1)).status(), "net_min_kbps overflows");
  // The ceiling is a max, never a sum: no overflow there.
  EXPECT_TRUE(Rv(0, 0, 0, 0, kMax).Plus(Rv(0, 0, 0, 0, kMax)).ok());
}

TEST(ResourceVectorTest, MinusSubtractsQuantitiesAndKeepsTheCeiling) {
  auto r = Rv(2000, 4096, 10240, 1000, 10000).Minus(Rv(500, 1024, 240, 1000, 20000));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Rv(1500, 3072, 10000, 0, 10000));
  EXPECT_TRUE(Rv(5, 5, 5, 5, 5).Minus(Rv(5, 5, 5, 5, 5))->IsZero() == false);  // ceiling kept
  EXPECT_EQ(*Rv(5, 5, 5, 5, 5).Minus(Rv(5, 5, 5, 5, 5)), Rv(0, 0, 0, 0, 5));
}

TEST(ResourceVectorTest, MinusRefusesANegativeResultNamingTheComponent) {
  const ResourceVector a = Rv(10, 10, 10, 10, 10);
  ExpectInvalid(a.Minus(Rv(11, 0, 0, 0, 0)).status(), "cpu_mcores would go negative (10 - 11)");
  ExpectInvalid(a.Minus(Rv(0, 11, 0, 0, 0)).status(), "mem_mib would go negative");
  ExpectInvalid(a.Minus(Rv(0, 0, 11, 0, 0)).status(), "disk_mib would go negative");
  ExpectInvalid(a.Minus(Rv(0, 0, 0, 11, 11)).status(), "net_min_kbps would go negative");
  // Overflow of the subtraction itself (a negative subtrahend from outside).
  ExpectInvalid(Rv(kMax, 0, 0, 0, 0).Minus(Rv(-1, 0, 0, 0, 0)).status(), "cpu_mcores");
  ExpectInvalid(
      Rv(0, 0, 0, 0, 0).Minus(Rv(0, std::numeric_limits<int64_t>::min(), 0, 0, 0)).status(),
      "mem_mib");
}

TEST(ResourceVectorTest, Times) {
  EXPECT_EQ(*Rv(1, 2, 3, 4, 100).Times(3), Rv(3, 6, 9, 12, 100));
  EXPECT_EQ(*Rv(1, 2, 3, 4, 100).Times(0), Rv(0, 0, 0, 0, 100));
  ExpectInvalid(Rv(1, 2, 3, 4, 100).Times(-1).status(), "negative multiplier");
  ExpectInvalid(Rv(kMax / 2 + 1, 0, 0, 0, 0).Times(2).status(), "cpu_mcores overflows");
  ExpectInvalid(Rv(0, 0, 0, 1LL << 40, 1LL << 40).Times(1LL << 30).status(),
                "net_min_kbps overflows");
  EXPECT_TRUE(Rv(kMax / 2, 0, 0, 0, 0).Times(2).ok());
}

TEST(ResourceVectorTest, ToString) {
  EXPECT_EQ(Rv(2000, 4096, 0, 0, 0).ToString(),
            "cpu_mcores=2000 mem_mib=4096 disk_mib=0 net_min_kbps=0 net_max_kbps=0");
}

// ---------------------------------------------------------------- JSON codec

TEST(ResourceVectorJsonTest, RoundTripAndCanonicalBytes) {
  const ResourceVector rv = Rv(2000, 4096, 10240, 1000, 10000);
  nlohmann::json j = ResourceVectorToJson(rv);
  EXPECT_EQ(*CanonicalJson(j),
            R"({"cpu_mcores":2000,"disk_mib":10240,"mem_mib":4096,"net_max_kbps":10000,)"
            R"("net_min_kbps":1000})");
  auto back = ResourceVectorFromJson(j, "res");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, rv);
  // From text through the strict parser too.
  auto parsed =
      ParseJson(R"({"net_max_kbps":5,"net_min_kbps":5,"disk_mib":3,"mem_mib":2,"cpu_mcores":1})");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*ResourceVectorFromJson(*parsed, "res"), Rv(1, 2, 3, 5, 5));
  // The largest accepted component is 2^53 - 1.
  const ResourceVector big =
      Rv(kMaxSafeInteger, kMaxSafeInteger, kMaxSafeInteger, kMaxSafeInteger, kMaxSafeInteger);
  EXPECT_EQ(*ResourceVectorFromJson(ResourceVectorToJson(big), "res"), big);
}

nlohmann::json Good() {
  return nlohmann::json{
      {"cpu_mcores", 1}, {"mem_mib", 2}, {"disk_mib", 3}, {"net_min_kbps", 4}, {"net_max_kbps", 5}};
}

TEST(ResourceVectorJsonTest, RefusesBadInputNamingTheField) {
  struct Case {
    nlohmann::json j;
    std::string needle;
  };
  std::vector<Case> cases;
  {
    auto j = Good();
    j.erase("mem_mib");
    cases.push_back({j, "res.mem_mib: missing"});
  }
  {
    auto j = Good();
    j["gpu"] = 1;
    cases.push_back({j, "res.gpu: unknown field"});
  }
  {
    auto j = Good();
    j["cpu_mcores"] = "1000";
    cases.push_back({j, "res.cpu_mcores: must be an integer"});
  }
  {
    auto j = Good();
    j["cpu_mcores"] = 1.0;  // a float, even a whole one
    cases.push_back({j, "res.cpu_mcores: must be an integer"});
  }
  {
    auto j = Good();
    j["disk_mib"] = 2.5;
    cases.push_back({j, "res.disk_mib: must be an integer"});
  }
  {
    auto j = Good();
    j["disk_mib"] = true;
    cases.push_back({j, "res.disk_mib: must be an integer"});
  }
  {
    auto j = Good();
    j["disk_mib"] = nullptr;
    cases.push_back({j, "res.disk_mib: must be an integer"});
  }
  {
    auto j = Good();
    j["mem_mib"] = -1;
    cases.push_back({j, "res.mem_mib: -1 is outside [0, 9007199254740991]"});
  }
  {
    auto j = Good();
    j["mem_mib"] = kMaxSafeInteger + 1;
    cases.push_back({j, "res.mem_mib: 9007199254740992 is outside"});
  }
  {
    auto j = Good();
    j["mem_mib"] = std::numeric_limits<uint64_t>::max();
    cases.push_back({j, "res.mem_mib: 18446744073709551615 is too large"});
  }
  {
    auto j = Good();
    j["net_min_kbps"] = 6;
    cases.push_back({j, "res: resources: net_min_kbps (6) exceeds net_max_kbps (5)"});
  }
  cases.push_back({nlohmann::json::array({1, 2, 3, 4, 5}), "res: must be a JSON object"});
  cases.push_back({nlohmann::json("cpu"), "res: must be a JSON object"});
  cases.push_back({nlohmann::json(nullptr), "res: must be a JSON object"});
  for (const auto& c : cases) {
    auto r = ResourceVectorFromJson(c.j, "res");
    ASSERT_FALSE(r.ok()) << "accepted " << c.j.dump();
    ExpectInvalid(r.status(), c.needle);
  }
}

TEST(ResourceVectorJsonTest, FieldNameNestsAndMayBeEmpty) {
  auto j = Good();
  j["cpu_mcores"] = -3;
  auto r = ResourceVectorFromJson(j, "offer.res");
  ExpectInvalid(r.status(), "offer.res.cpu_mcores: -3");
  auto r2 = ResourceVectorFromJson(j, "");
  ExpectInvalid(r2.status(), "cpu_mcores: -3");
}

TEST(JsonCodecTest, MoneyTravelsAsAString) {
  auto m = *Money::Parse("12.5");
  EXPECT_EQ(MoneyToJson(m), nlohmann::json("12.500000000"));
  EXPECT_EQ(*MoneyFromJson(nlohmann::json("12.5"), "limit"), m);
  ExpectInvalid(MoneyFromJson(nlohmann::json(12.5), "limit").status(),
                "limit: money must be a decimal string");
  ExpectInvalid(MoneyFromJson(nlohmann::json(12), "limit").status(),
                "limit: money must be a decimal string");
  ExpectInvalid(MoneyFromJson(nlohmann::json("1e3"), "limit").status(),
                "limit: money: exponents are not allowed");
}

TEST(JsonCodecTest, FieldHelpers) {
  nlohmann::json obj = {{"a", 1}, {"b", "x"}};
  EXPECT_TRUE(CheckObjectFields(obj, "req", {"a", "b", "c"}).ok());
  ExpectInvalid(CheckObjectFields(obj, "req", {"a"}), "req.b: unknown field");
  ExpectInvalid(CheckObjectFields(nlohmann::json(1), "", {"a"}), "body: must be a JSON object");

  EXPECT_EQ(*IntFromJson(nlohmann::json(5), "n", 0, 10), 5);
  EXPECT_EQ(*IntFromJson(nlohmann::json(-5), "n", -10, 10), -5);
  ExpectInvalid(IntFromJson(nlohmann::json(11), "n", 0, 10).status(), "n: 11 is outside [0, 10]");
  ExpectInvalid(IntFromJson(nlohmann::json(5.0), "n", 0, 10).status(), "n: must be an integer");
  ExpectInvalid(IntFromJson(nlohmann::json("5"), "n", 0, 10).status(), "n: must be an integer");

  EXPECT_EQ(*StringFromJson(nlohmann::json("hi"), "s"), "hi");
  ExpectInvalid(StringFromJson(nlohmann::json(1), "s").status(), "s: must be a string");
  ExpectInvalid(StringFromJson(nlohmann::json("hello"), "s", 4).status(), "s: longer than 4 bytes");

  auto member = RequireMember(obj, "req", "a");
  ASSERT_TRUE(member.ok());
  EXPECT_EQ(**member, nlohmann::json(1));
  ExpectInvalid(RequireMember(obj, "req", "z").status(), "req.z: missing");
  ExpectInvalid(RequireMember(nlohmann::json::array(), "req", "a").status(),
                "req: must be a JSON object");
}

}  // namespace
}  // namespace bourse::core
