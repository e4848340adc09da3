#include "core/sha256.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "core/encoding.h"
#include "core/random.h"

namespace bourse::core {
namespace {

std::string H(const Digest& d) { return HexEncode(d); }

TEST(Sha256Test, NistVectors) {
  // FIPS 180-2 / NIST CSRC examples.
  EXPECT_EQ(H(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(H(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(H(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(H(Sha256(std::string(1'000'000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, SpanAndStringOverloadsAgree) {
  const std::string msg = "the same bytes";
  EXPECT_EQ(Sha256(msg), Sha256(AsBytes(msg)));
  const std::string with_nul("a\0b", 3);
  EXPECT_NE(Sha256(with_nul), Sha256("a"));
}

TEST(Sha256HasherTest, IncrementalEqualsOneShot) {
  const std::string msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  for (size_t cut = 0; cut <= msg.size(); ++cut) {
    Sha256Hasher h;
    h.Update(std::string_view(msg).substr(0, cut));
    h.Update(std::string_view(msg).substr(cut));
    EXPECT_EQ(h.Finish(), Sha256(msg)) << cut;
  }
  // Byte at a time, across several block boundaries.
  DeterministicRandom rng(3);
  Bytes data(1000);
  rng.Fill(data);
  Sha256Hasher h;
  for (uint8_t b : data) h.UpdateByte(b);
  EXPECT_EQ(h.Finish(), Sha256(data));
}

TEST(Sha256HasherTest, FinishResetsForReuse) {
  Sha256Hasher h;
  h.Update("abc");
  EXPECT_EQ(H(h.Finish()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(H(h.Finish()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  h.UpdateByte(0x00);  // RFC 9162 leaf prefix, as the ledger uses it
  h.Update("abc");
  std::string prefixed("\0abc", 4);
  EXPECT_EQ(h.Finish(), Sha256(prefixed));
}

TEST(Sha256Test, SafeFromManyThreads) {
  const Digest expected = Sha256("abc");
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (Sha256("abc") != expected) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace bourse::core
