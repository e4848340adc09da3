#include "core/encoding.h"

#include <gtest/gtest.h>

#include <string>

#include "core/random.h"

namespace bourse::core {
namespace {

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

void ExpectInvalid(const Status& st, std::string_view needle) {
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find(needle), std::string::npos)
      << "\"" << st.message() << "\" lacks \"" << needle << "\"";
}

TEST(Base64UrlTest, Rfc4648Vectors) {
  // RFC 4648 §10, with the padding removed (§3.2 allows it when the length is known).
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64UrlEncode(AsBytes(plain)), encoded);
    auto back = Base64UrlDecode(encoded);
    ASSERT_TRUE(back.ok()) << encoded << ": " << back.status().ToString();
    EXPECT_EQ(*back, B(plain));
  }
}

TEST(Base64UrlTest, UsesTheUrlAlphabet) {
  // Standard base64 of these bytes is "+/+/" and "-_8=" would be "+/8=".
  const Bytes a = {0xfb, 0xef, 0xbe};
  EXPECT_EQ(Base64UrlEncode(a), "----");
  const Bytes b = {0xff, 0xff, 0xff};
  EXPECT_EQ(Base64UrlEncode(b), "____");
  const Bytes c = {0xfb, 0xff};
  EXPECT_EQ(Base64UrlEncode(c), "-_8");
  EXPECT_EQ(*Base64UrlDecode("-_8"), c);
  EXPECT_EQ(*Base64UrlDecode("____"), b);
}

TEST(Base64UrlTest, RoundTripsRandomBytes) {
  DeterministicRandom rng(1);
  for (size_t n = 0; n < 200; ++n) {
    Bytes data(n);
    rng.Fill(data);
    const std::string text = Base64UrlEncode(data);
    EXPECT_EQ(text.size(), (n * 4 + 2) / 3);
    EXPECT_EQ(text.find('='), std::string::npos);
    auto back = Base64UrlDecode(text);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, data);
  }
}

TEST(Base64UrlTest, RefusesPadding) {
  for (std::string_view text : {"Zg==", "Zg=", "Zm8=", "Zm9vYg==", "=", "===="}) {
    auto r = Base64UrlDecode(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
  ExpectInvalid(Base64UrlDecode("Zg==").status(), "padding '=' is not allowed");
}

TEST(Base64UrlTest, RefusesCharactersOutsideTheAlphabet) {
  ExpectInvalid(Base64UrlDecode("Zm9v+A").status(), "invalid character at offset 4");
  ExpectInvalid(Base64UrlDecode("Zm9v/A").status(), "invalid character at offset 4");
  ExpectInvalid(Base64UrlDecode(" Zg").status(), "invalid character at offset 0");
  ExpectInvalid(Base64UrlDecode("Zm\n9vA").status(), "invalid character at offset 2");
  ExpectInvalid(Base64UrlDecode("Zm9v.A").status(), "invalid character");
  ExpectInvalid(Base64UrlDecode("Z\xc3\xa9").status(), "invalid character at offset 1");
  ExpectInvalid(Base64UrlDecode(std::string_view("Zg\0\0", 4)).status(), "invalid character");
}

TEST(Base64UrlTest, RefusesImpossibleLengths) {
  for (std::string_view text : {"Z", "Zm9vY", "Zm9vYmFyZ"}) {
    auto r = Base64UrlDecode(text);
    ASSERT_FALSE(r.ok()) << text;
    ExpectInvalid(r.status(), "impossible length");
  }
}

TEST(Base64UrlTest, RefusesNonZeroTrailingBits) {
  // "Zg" is "f"; "Zh".."Zv" decode to "f" too in a lax decoder.
  for (std::string_view text : {"Zh", "Zv", "Zm9", "Zm-", "AB", "AAB"}) {
    auto r = Base64UrlDecode(text);
    ASSERT_FALSE(r.ok()) << text;
    ExpectInvalid(r.status(), "non-zero trailing bits");
  }
  EXPECT_TRUE(Base64UrlDecode("AA").ok());
  EXPECT_TRUE(Base64UrlDecode("AAA").ok());
  EXPECT_TRUE(Base64UrlDecode("Zm8").ok());
}

TEST(Base64UrlTest, EveryByteStringHasExactlyOneTextForm) {
  // Every 2- and 3-character text either decodes and re-encodes to itself, or is refused.
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  int accepted = 0;
  for (char a : alphabet) {
    for (char b : alphabet) {
      for (std::string text : {std::string{a, b}, std::string{a, b, 'Q'}, std::string{a, b, 'R'}}) {
        auto r = Base64UrlDecode(text);
        if (r.ok()) {
          ++accepted;
          EXPECT_EQ(Base64UrlEncode(*r), text);
        }
      }
    }
  }
  // Two characters carry 12 bits for 1 byte: only 4 of the 64 second characters
  // leave the 4 spare bits zero (256 forms). "abQ" ('Q' = 010000) always leaves
  // its 2 spare bits zero (4096 forms); "abR" ('R' = 010001) never does.
  EXPECT_EQ(accepted, 256 + 4096);
}

TEST(HexTest, EncodeIsLowercase) {
  const Bytes data = {0x00, 0x01, 0xab, 0xcd, 0xef, 0xff};
  EXPECT_EQ(HexEncode(data), "0001abcdefff");
  EXPECT_EQ(HexEncode(Bytes{}), "");
}

TEST(HexTest, DecodeAcceptsBothCases) {
  EXPECT_EQ(*HexDecode("0001abcdefff"), (Bytes{0x00, 0x01, 0xab, 0xcd, 0xef, 0xff}));
  EXPECT_EQ(*HexDecode("ABCDEF"), (Bytes{0xab, 0xcd, 0xef}));
  EXPECT_EQ(*HexDecode(""), Bytes{});
  DeterministicRandom rng(2);
  Bytes data(100);
  rng.Fill(data);
  EXPECT_EQ(*HexDecode(HexEncode(data)), data);
}

TEST(HexTest, DecodeRefusesBadInput) {
  ExpectInvalid(HexDecode("abc").status(), "hex: odd length");
  ExpectInvalid(HexDecode("zz").status(), "hex: invalid character at offset 0");
  ExpectInvalid(HexDecode("00g0").status(), "hex: invalid character at offset 2");
  ExpectInvalid(HexDecode("0x00").status(), "invalid character");
  ExpectInvalid(HexDecode(" 0").status(), "invalid character");
  ExpectInvalid(HexDecode("-1").status(), "invalid character");
}

TEST(AsBytesTest, ViewsTheSameMemory) {
  std::string s = "abc";
  auto b = AsBytes(s);
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(static_cast<const void*>(b.data()), static_cast<const void*>(s.data()));
  EXPECT_EQ(b[2], 'c');
}

}  // namespace
}  // namespace bourse::core
