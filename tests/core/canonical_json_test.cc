#include "core/canonical_json.h"

#include <gtest/gtest.h>

#include <string>

namespace bourse::core {
namespace {

using nlohmann::json;

std::string Canon(const json& j) {
  auto r = CanonicalJson(j);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.value_or("<error>");
}

// Parses JSON text strictly and returns its canonical form.
std::string CanonText(std::string_view text) {
  auto j = ParseJson(text);
  EXPECT_TRUE(j.ok()) << j.status().ToString();
  if (!j.ok()) return "<parse error>";
  return Canon(*j);
}

void ExpectInvalid(const Status& st, std::string_view needle) {
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find(needle), std::string::npos)
      << "\"" << st.message() << "\" lacks \"" << needle << "\"";
}

// ---------------------------------------------------------------- RFC 8785

TEST(CanonicalJsonRfc8785Test, SortingExample) {
  // RFC 8785 §3.2.3: members sorted by the UTF-16 code units of their keys.
  const std::string input = R"({
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\ud83d\ude00": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis"
  })";
  const std::string expected =
      "{\"\\r\":\"Carriage Return\","
      "\"1\":\"One\","
      "\"\xc2\x80\":\"Control\","
      "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\","
      "\"\xe2\x82\xac\":\"Euro Sign\","
      "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
      "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}";
  EXPECT_EQ(CanonText(input), expected);
}

TEST(CanonicalJsonRfc8785Test, StringEscapingExample) {
  // RFC 8785 §3.2.2.2 / Appendix: the "string" and "literals" members of the
  // §3.2.4 sample (its "numbers" are floats, outside the subset).
  const std::string input =
      R"({"string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]})";
  const std::string expected =
      "{\"literals\":[null,true,false],\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
  EXPECT_EQ(CanonText(input), expected);
}

TEST(CanonicalJsonRfc8785Test, IntegersInsideTheSubset) {
  // RFC 8785 §3.2.2.3 serialises numbers as ECMAScript does; for integers
  // within +/-(2^53-1) that is the plain decimal form, and -0 becomes 0.
  EXPECT_EQ(CanonText("[0, -0, 1, -1, 9007199254740991, -9007199254740991, 100]"),
            "[0,0,1,-1,9007199254740991,-9007199254740991,100]");
}

// ---------------------------------------------------------------- rules

TEST(CanonicalJsonTest, KeyOrderAndNoWhitespace) {
  json j = {{"b", 1}, {"a", {{"z", true}, {"y", nullptr}}}, {"aa", json::array({3, 2, 1})}};
  EXPECT_EQ(Canon(j), R"({"a":{"y":null,"z":true},"aa":[3,2,1],"b":1})");
  // Upper case sorts before lower case (code-unit order), "" first.
  json k = {{"b", 0}, {"B", 0}, {"", 0}, {"a", 0}, {"_", 0}, {"A", 0}};
  EXPECT_EQ(Canon(k), R"({"":0,"A":0,"B":0,"_":0,"a":0,"b":0})");
}

TEST(CanonicalJsonTest, Utf16OrderDiffersFromUtf8Order) {
  // In UTF-8 bytes U+E000 (EE..) < U+FF01 (EF..) < U+1F600 (F0..); in UTF-16 code
  // units U+1F600 is the surrogate pair D83D DE00 and sorts before E000 and FF01.
  json j = {{"\xef\xbc\x81", 1}, {"\xf0\x9f\x98\x80", 2}, {"\xee\x80\x80", 3}};
  EXPECT_EQ(Canon(j), "{\"\xf0\x9f\x98\x80\":2,\"\xee\x80\x80\":3,\"\xef\xbc\x81\":1}");
  // Prefixes sort first.
  json p = {{"ab", 1}, {"a", 2}, {"abc", 3}};
  EXPECT_EQ(Canon(p), R"({"a":2,"ab":1,"abc":3})");
}

TEST(CanonicalJsonTest, StringEscapes) {
  std::string all_controls;
  for (int c = 0; c < 0x20; ++c) all_controls.push_back(static_cast<char>(c));
  EXPECT_EQ(Canon(json(all_controls)),
            "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
            "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019"
            "\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\"");
  EXPECT_EQ(Canon(json("a\"b\\c")), R"("a\"b\\c")");
  EXPECT_EQ(Canon(json("a/b")), R"("a/b")");   // '/' is not escaped
  EXPECT_EQ(Canon(json("\x7f")), "\"\x7f\"");  // DEL is not a control here
  EXPECT_EQ(Canon(json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");  // non-ASCII stays raw
  EXPECT_EQ(Canon(json("\xe2\x80\xa8")), "\"\xe2\x80\xa8\"");  // U+2028 raw too
  // Escapes apply to keys as well.
  EXPECT_EQ(Canon(json{{"a\nb", 1}}), "{\"a\\nb\":1}");
}

TEST(CanonicalJsonTest, NestedStructuresAndLiterals) {
  json j = json::parse(R"({"v":1,"res":{"cpu_mcores":2000,"mem_mib":0},"parent":null,
                           "list":[[],{},[{"x":[true,false,null]}]],"s":""})");
  EXPECT_EQ(Canon(j),
            R"({"list":[[],{},[{"x":[true,false,null]}]],"parent":null,"res":{"cpu_mcores":2000,)"
            R"("mem_mib":0},"s":"","v":1})");
  EXPECT_EQ(Canon(json::object()), "{}");
  EXPECT_EQ(Canon(json::array()), "[]");
  EXPECT_EQ(Canon(json(nullptr)), "null");
  EXPECT_EQ(Canon(json(true)), "true");
  EXPECT_EQ(Canon(json("")), "\"\"");
}

TEST(CanonicalJsonTest, CanonicalFormIsAFixedPoint) {
  const std::string text =
      R"({"z":[1,{"b":"\u00e9","a":"\u001f"}],"a":{"\ud83d\ude00":null,"\ufb33":-5}})";
  const std::string once = CanonText(text);
  EXPECT_EQ(CanonText(once), once);
}

TEST(CanonicalJsonTest, AppendAppends) {
  std::string out = "prefix:";
  ASSERT_TRUE(AppendCanonicalJson(json{{"a", 1}}, &out).ok());
  EXPECT_EQ(out, R"(prefix:{"a":1})");
}

// ---------------------------------------------------------------- refusals

TEST(CanonicalJsonTest, RefusesFloatsEvenWholeOnes) {
  for (double d : {1.0, 0.5, -0.0, 1e30, 0.0}) {
    auto r = CanonicalJson(json{{"x", d}});
    ASSERT_FALSE(r.ok()) << d;
    ExpectInvalid(r.status(), "$.x: floating-point numbers are not allowed");
  }
}

TEST(CanonicalJsonTest, RefusesIntegersOutsideTheSafeRange) {
  EXPECT_EQ(Canon(json(kMaxSafeInteger)), "9007199254740991");
  EXPECT_EQ(Canon(json(-kMaxSafeInteger)), "-9007199254740991");
  EXPECT_EQ(Canon(json(static_cast<uint64_t>(kMaxSafeInteger))), "9007199254740991");
  ExpectInvalid(CanonicalJson(json(kMaxSafeInteger + 1)).status(),
                "$: integer 9007199254740992 is outside +/-(2^53-1)");
  ExpectInvalid(CanonicalJson(json(-kMaxSafeInteger - 1)).status(),
                "integer -9007199254740992 is outside");
  ExpectInvalid(CanonicalJson(json(std::numeric_limits<uint64_t>::max())).status(),
                "integer 18446744073709551615 is outside");
  ExpectInvalid(CanonicalJson(json(std::numeric_limits<int64_t>::min())).status(), "outside");
}

TEST(CanonicalJsonTest, ErrorsNameThePath) {
  json j = {{"res", {{"cpu_mcores", 1.5}}}};
  ExpectInvalid(CanonicalJson(j).status(), "canonical json: $.res.cpu_mcores:");
  json a = {{"list", json::array({1, 2, json{{"deep", json::array({0, 1ULL << 60})}}})}};
  ExpectInvalid(CanonicalJson(a).status(), "$.list[2].deep[1]: integer");
}

TEST(CanonicalJsonTest, RefusesInvalidUtf8) {
  const std::vector<std::string> bad = {
      "\xff",              // never valid
      "\x80",              // lone continuation byte
      "\xc3",              // truncated 2-byte sequence
      "\xe2\x82",          // truncated 3-byte sequence
      "a\xf0\x9f\x98",     // truncated 4-byte sequence
      "\xc0\xaf",          // overlong '/'
      "\xe0\x80\xaf",      // overlong
      "\xf0\x80\x80\xaf",  // overlong
      "\xed\xa0\x80",      // a UTF-16 surrogate (U+D800)
      "\xed\xbf\xbf",      // U+DFFF
      "\xf4\x90\x80\x80",  // beyond U+10FFFF
      "\xf8\x88\x80\x80\x80",
      "\xc3\x28",  // bad continuation
  };
  for (const auto& s : bad) {
    auto r = CanonicalJson(json{{"name", s}});
    ASSERT_FALSE(r.ok()) << "accepted bytes of length " << s.size();
    ExpectInvalid(r.status(), "$.name: string is not valid UTF-8");
    auto k = CanonicalJson(json{{s, 1}});
    ASSERT_FALSE(k.ok());
    ExpectInvalid(k.status(), "key is not valid UTF-8");
  }
  // The boundaries that are valid.
  for (const std::string s :
       {"\x7f", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
        "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"}) {
    EXPECT_TRUE(CanonicalJson(json(s)).ok());
  }
}

TEST(CanonicalJsonTest, RefusesBinary) {
  json b = json::binary({1, 2, 3});
  ExpectInvalid(CanonicalJson(json{{"b", b}}).status(), "$.b: value has no JSON form");
}

// ---------------------------------------------------------------- strict parser

TEST(ParseJsonTest, ParsesOrdinaryDocuments) {
  auto r = ParseJson(R"( {"a": [1, -2, "x", null, true, {"b": {}}], "c": "\u00e9"} )");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["a"][1], -2);
  EXPECT_EQ((*r)["c"], "\xc3\xa9");
  EXPECT_TRUE(ParseJson("[]").ok());
  EXPECT_TRUE(ParseJson("0").ok());
  EXPECT_TRUE(ParseJson("\"s\"").ok());
  EXPECT_EQ(*ParseJson("18446744073709551615"), json(std::numeric_limits<uint64_t>::max()));
}

TEST(ParseJsonTest, RefusesDuplicateKeys) {
  for (std::string_view text :
       {R"({"a":1,"a":2})", R"({"a":1,"b":{"c":1,"c":1}})", R"([{"x":{}},{"y":1,"y":1}])"}) {
    auto r = ParseJson(text);
    ASSERT_FALSE(r.ok()) << text;
    ExpectInvalid(r.status(), "duplicate key");
  }
  // The same key in sibling objects is fine.
  EXPECT_TRUE(ParseJson(R"([{"a":1},{"a":2}])").ok());
  EXPECT_TRUE(ParseJson(R"({"a":{"a":{"a":1}}})").ok());
  JsonParseOptions lax;
  lax.allow_duplicate_keys = true;
  auto r = ParseJson(R"({"a":1,"a":2})", lax);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["a"], 2);
}

TEST(ParseJsonTest, RefusesFloatsUnlessAllowed) {
  for (std::string_view text :
       {"1.0", "[0.5]", R"({"x":1e2})", "-0.0", "1E-7", "123456789012345678901234567890"}) {
    auto r = ParseJson(text);
    ASSERT_FALSE(r.ok()) << text;
    ExpectInvalid(r.status(), "floating-point numbers are not allowed");
  }
  JsonParseOptions floats;
  floats.allow_floats = true;
  auto r = ParseJson(R"({"x":1.5})", floats);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["x"], 1.5);
  // Even when allowed, an out-of-range number is malformed.
  EXPECT_FALSE(ParseJson("1e400", floats).ok());
}

TEST(ParseJsonTest, RefusesDeepNesting) {
  auto nest = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_TRUE(ParseJson(nest(64)).ok());
  auto r = ParseJson(nest(65));
  ASSERT_FALSE(r.ok());
  ExpectInvalid(r.status(), "nesting deeper than 64");
  // A hostile depth neither crashes nor takes long.
  EXPECT_FALSE(ParseJson(nest(1'000'000)).ok());
  std::string objects;
  for (int i = 0; i < 70; ++i) objects += "{\"a\":";
  objects += "1" + std::string(70, '}');
  ExpectInvalid(ParseJson(objects).status(), "nesting deeper than 64");
  JsonParseOptions shallow;
  shallow.max_depth = 2;
  EXPECT_TRUE(ParseJson("[[1]]", shallow).ok());
  EXPECT_FALSE(ParseJson("[[[1]]]", shallow).ok());
}

TEST(ParseJsonTest, MalformedTextNamesTheByteOffset) {
  struct Case {
    std::string text;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {R"({"a":})", "invalid JSON at byte 5"},
      {R"({"a":1,})", "invalid JSON at byte 7"},
      {"[1,2",
       "invalid JSON at byte 4: syntax error while parsing array - unexpected end of input"},
      {"", "invalid JSON at byte 0"},
      {"   ", "invalid JSON at byte"},
      {"{} x", "invalid JSON at byte 3"},
      {"[01]", "invalid JSON at byte"},
      {"NaN", "invalid JSON at byte 0"},
      {"[Infinity]", "invalid JSON at byte"},
      {"{'a':1}", "invalid JSON at byte 1"},
      {"[1] // comment", "invalid JSON at byte"},
      {"\"\xff\"", "invalid JSON at byte"},     // invalid UTF-8
      {"\"\\ud800\"", "invalid JSON at byte"},  // lone surrogate
      {"\"a\nb\"", "invalid JSON at byte"},     // raw control character
      {"\"\\x41\"", "invalid JSON at byte"},    // not a JSON escape
      {"{\"a\" 1}", "invalid JSON at byte"},
      {"[1 2]", "invalid JSON at byte"},
      {"tru", "invalid JSON at byte"},
  };
  for (const auto& c : cases) {
    auto r = ParseJson(c.text);
    ASSERT_FALSE(r.ok()) << "accepted: " << c.text;
    ExpectInvalid(r.status(), c.needle);
  }
}

TEST(ParseJsonTest, EmbeddedNulAndTrailingGarbageAreRefused) {
  // nlohmann alone reads NUL as the end of input and would accept these as "{}".
  auto r = ParseJson(std::string_view("{}\0{\"evil\":1}", 13));
  ASSERT_FALSE(r.ok());
  ExpectInvalid(r.status(), "invalid JSON at byte 2: NUL byte");
  EXPECT_FALSE(ParseJson(std::string_view("{}\0", 3)).ok());
  EXPECT_FALSE(ParseJson(std::string_view("[\0]", 3)).ok());
  EXPECT_FALSE(ParseJson(std::string_view("\"a\0\"", 4)).ok());
  EXPECT_FALSE(ParseJson("{}{}").ok());
}

}  // namespace
}  // namespace bourse::core
