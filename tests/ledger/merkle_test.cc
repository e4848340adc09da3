// RFC 6962 / RFC 9162 Merkle hashing, proofs and verification, checked against
// the published Certificate Transparency reference vectors (the 8-leaf tree).
#include "ledger/merkle.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/encoding.h"

namespace bourse::ledger {
namespace {

const char* kLeafData[] = {"",
                           "00",
                           "10",
                           "2021",
                           "3031",
                           "40414243",
                           "5051525354555657",
                           "606162636465666768696a6b6c6d6e6f"};

// Root of every prefix 1..8 (certificate-transparency merkle_tree_test.cc).
const char* kRoots[] = {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
                        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
                        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
                        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
                        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};

struct PathVector {
  uint64_t index;  // 0-based
  uint64_t size;
  std::vector<std::string> path;
};

const PathVector kInclusion[] = {
    {0,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5,
     8,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1,
     5,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {0, 1, {}},
};

struct ConsistencyVector {
  uint64_t first, second;
  std::vector<std::string> path;
};

const ConsistencyVector kConsistency[] = {
    {1, 1, {}},
    {1,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2,
     5,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {2,
     8,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
};

std::vector<Hash> ReferenceLeaves() {
  std::vector<Hash> out;
  for (const char* hex : kLeafData) out.push_back(LeafHash(*core::HexDecode(hex)));
  return out;
}

Hash H(const std::string& hex) { return *HashFromHex(hex); }

std::vector<std::string> Hexes(const std::vector<Hash>& v) {
  std::vector<std::string> out;
  for (const Hash& h : v) out.push_back(HashToHex(h));
  return out;
}

std::vector<Hash> Hashes(const std::vector<std::string>& v) {
  std::vector<Hash> out;
  for (const auto& s : v) out.push_back(H(s));
  return out;
}

TEST(MerkleTest, EmptyTreeRootIsSha256OfNothing) {
  EXPECT_EQ(HashToHex(EmptyTreeRoot()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HashToHex(RootFromLeafHashes({})), HashToHex(EmptyTreeRoot()));
}

TEST(MerkleTest, ReferenceRootOfEveryPrefix) {
  auto leaves = ReferenceLeaves();
  for (size_t n = 1; n <= 8; ++n) {
    EXPECT_EQ(HashToHex(RootFromLeafHashes(std::span(leaves).first(n))), kRoots[n - 1])
        << "size " << n;
  }
}

TEST(MerkleTest, FrontierMatchesReferenceRootsAndClosesSubtrees) {
  auto leaves = ReferenceLeaves();
  MerkleFrontier f;
  std::vector<MerkleFrontier::Node> closed;
  size_t nodes = 0;
  for (size_t n = 0; n < 8; ++n) {
    closed.clear();
    f.Append(leaves[n], &closed);
    nodes += closed.size();
    EXPECT_EQ(HashToHex(f.Root()), kRoots[n]) << "size " << n + 1;
  }
  EXPECT_EQ(nodes, 15u);  // 8 leaves + 4 + 2 + 1
  EXPECT_EQ(HashToHex(closed.back().hash), kRoots[7]);
  EXPECT_EQ(closed.back().level, 3);
}

TEST(MerkleTest, ReferenceInclusionPaths) {
  auto leaves = ReferenceLeaves();
  for (const auto& v : kInclusion) {
    auto path = InclusionPathFromLeafHashes(std::span(leaves).first(v.size), v.index);
    EXPECT_EQ(Hexes(path), v.path) << "leaf " << v.index << " of " << v.size;
    EXPECT_TRUE(
        VerifyInclusion(v.index, v.size, leaves[v.index], Hashes(v.path), H(kRoots[v.size - 1]))
            .ok());
  }
}

TEST(MerkleTest, ReferenceConsistencyPaths) {
  auto leaves = ReferenceLeaves();
  for (const auto& v : kConsistency) {
    auto path = ConsistencyPathFromLeafHashes(std::span(leaves).first(v.second), v.first);
    EXPECT_EQ(Hexes(path), v.path) << v.first << " -> " << v.second;
    EXPECT_TRUE(VerifyConsistency(v.first, v.second, H(kRoots[v.first - 1]),
                                  H(kRoots[v.second - 1]), Hashes(v.path))
                    .ok())
        << v.first << " -> " << v.second;
  }
}

std::vector<Hash> Synthetic(size_t n) {
  std::vector<Hash> out;
  for (size_t i = 0; i < n; ++i) out.push_back(LeafHash("leaf " + std::to_string(i)));
  return out;
}

TEST(MerkleTest, EveryInclusionProofVerifiesAndMangledOnesDoNot) {
  auto all = Synthetic(40);
  for (size_t n = 1; n <= all.size(); ++n) {
    auto leaves = std::span(all).first(n);
    Hash root = RootFromLeafHashes(leaves);
    for (size_t i = 0; i < n; ++i) {
      auto path = InclusionPathFromLeafHashes(leaves, i);
      ASSERT_TRUE(VerifyInclusion(i, n, leaves[i], path, root).ok()) << i << "/" << n;
      EXPECT_FALSE(VerifyInclusion(i, n, LeafHash("other"), path, root).ok());
      if (n > 1) {
        EXPECT_FALSE(VerifyInclusion((i + 1) % n, n, leaves[i], path, root).ok());
      }
      EXPECT_FALSE(VerifyInclusion(n, n, leaves[i], path, root).ok());
      if (!path.empty()) {
        auto flipped = path;
        flipped.back()[5] ^= 1;
        EXPECT_FALSE(VerifyInclusion(i, n, leaves[i], flipped, root).ok());
        auto shorter = path;
        shorter.pop_back();
        EXPECT_FALSE(VerifyInclusion(i, n, leaves[i], shorter, root).ok());
      }
      auto longer = path;
      longer.push_back(LeafHash("x"));
      EXPECT_FALSE(VerifyInclusion(i, n, leaves[i], longer, root).ok());
    }
  }
}

TEST(MerkleTest, EveryConsistencyProofVerifiesAndMangledOnesDoNot) {
  auto all = Synthetic(40);
  std::vector<Hash> roots;
  for (size_t n = 0; n <= all.size(); ++n)
    roots.push_back(RootFromLeafHashes(std::span(all).first(n)));
  for (size_t second = 0; second <= all.size(); ++second) {
    for (size_t first = 0; first <= second; ++first) {
      auto path = ConsistencyPathFromLeafHashes(std::span(all).first(second), first);
      ASSERT_TRUE(VerifyConsistency(first, second, roots[first], roots[second], path).ok())
          << first << " -> " << second;
      if (first == 0 || first == second) {
        EXPECT_TRUE(path.empty());
        continue;
      }
      EXPECT_FALSE(VerifyConsistency(first, second, roots[first - 1], roots[second], path).ok());
      EXPECT_FALSE(VerifyConsistency(first, second, roots[first], roots[second - 1], path).ok());
      auto flipped = path;
      flipped.front()[0] ^= 0x80;
      EXPECT_FALSE(VerifyConsistency(first, second, roots[first], roots[second], flipped).ok());
      auto shorter = path;
      shorter.pop_back();
      EXPECT_FALSE(VerifyConsistency(first, second, roots[first], roots[second], shorter).ok());
      // A path with hashes left over (not consuming the whole path) is refused.
      auto longer = path;
      longer.push_back(LeafHash("extra"));
      EXPECT_FALSE(VerifyConsistency(first, second, roots[first], roots[second], longer).ok());
    }
  }
}

TEST(MerkleTest, DegenerateConsistencyCases) {
  auto all = Synthetic(8);
  Hash r4 = RootFromLeafHashes(std::span(all).first(4));
  Hash r5 = RootFromLeafHashes(std::span(all).first(5));
  EXPECT_TRUE(VerifyConsistency(4, 4, r4, r4, {}).ok());
  EXPECT_FALSE(VerifyConsistency(4, 4, r4, r5, {}).ok());
  EXPECT_FALSE(VerifyConsistency(4, 4, r4, r4, std::vector<Hash>{r4}).ok());
  EXPECT_TRUE(VerifyConsistency(0, 5, EmptyTreeRoot(), r5, {}).ok());
  EXPECT_FALSE(VerifyConsistency(0, 5, r4, r5, {}).ok());
  EXPECT_FALSE(VerifyConsistency(5, 4, r5, r4, {}).ok());
  EXPECT_FALSE(VerifyConsistency(4, 5, r4, r5, {}).ok());  // empty path for m < n
}

TEST(MerkleTest, ProofJsonRoundTrip) {
  auto leaves = ReferenceLeaves();
  auto path = InclusionPathFromLeafHashes(leaves, 5);
  nlohmann::json j = InclusionProofToJson(5, 8, path);
  EXPECT_EQ(j["seq"], 5);
  EXPECT_EQ(j["size"], 8);
  auto back = ProofPathFromJson(j["path"]);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, path);
  EXPECT_FALSE(ProofPathFromJson(nlohmann::json::array({"zz"})).ok());
  EXPECT_FALSE(ProofPathFromJson(nlohmann::json::array({std::string(64, 'A')})).ok());
  nlohmann::json c = ConsistencyProofToJson(2, 8, path);
  EXPECT_EQ(c["first"], 2);
  EXPECT_EQ(c["second"], 8);
}

}  // namespace
}  // namespace bourse::ledger
