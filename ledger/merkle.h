// Merkle tree hashing, proofs and their verification exactly as RFC 9162 §2.1
// (the same as RFC 6962): leaf = SHA-256(0x00 || data), interior =
// SHA-256(0x01 || left || right), the empty tree's root = SHA-256("").
//
//   Hash leaf = LeafHash(AsBytes(canonical_entry));
//   BOURSE_RETURN_IF_ERROR(VerifyInclusion(seq, size, leaf, path, head.root));
//   BOURSE_RETURN_IF_ERROR(VerifyConsistency(old.size, now.size, old.root, now.root, path));
//
// Proof generation works over a SubtreeSource that returns the hash of any
// complete, aligned subtree (level L, index i covers leaves [i*2^L, (i+1)*2^L));
// the store keeps every such hash so proofs cost O(log n) lookups.
//
// Thread safety: pure functions; MerkleFrontier is a value type.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/sha256.h"
#include "core/status.h"

namespace bourse::ledger {

using Hash = core::Digest;

Hash LeafHash(std::span<const uint8_t> data);
Hash LeafHash(std::string_view data);
Hash NodeHash(const Hash& left, const Hash& right);
Hash EmptyTreeRoot();

std::string HashToHex(const Hash& h);
// Errors: invalid_argument unless 64 hex digits.
core::Result<Hash> HashFromHex(std::string_view hex);

// Root of the tree over `leaf_hashes` (reference, O(n)).
Hash RootFromLeafHashes(std::span<const Hash> leaf_hashes);
// RFC 9162 §2.1.3.1 / §2.1.4.1 over explicit leaf hashes (reference, O(n)).
std::vector<Hash> InclusionPathFromLeafHashes(std::span<const Hash> leaf_hashes, uint64_t index);
std::vector<Hash> ConsistencyPathFromLeafHashes(std::span<const Hash> leaf_hashes, uint64_t first);

// Hash of a complete aligned subtree. Errors are passed through.
class SubtreeSource {
 public:
  virtual ~SubtreeSource() = default;
  virtual core::Result<Hash> Subtree(int level, uint64_t index) const = 0;
};
// Root of the first `size` leaves. O(log size) lookups.
core::Result<Hash> RootAt(const SubtreeSource& src, uint64_t size);
// Errors: invalid_argument unless index < size.
core::Result<std::vector<Hash>> InclusionPath(const SubtreeSource& src, uint64_t index,
                                              uint64_t size);
// Errors: invalid_argument unless first <= second. first == 0 or first ==
// second gives an empty path.
core::Result<std::vector<Hash>> ConsistencyPath(const SubtreeSource& src, uint64_t first,
                                                uint64_t second);

// RFC 9162 §2.1.3.2. Errors: unauthenticated naming what does not match
// (index >= size, wrong path length, root mismatch).
core::Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                             std::span<const Hash> path, const Hash& root);
// RFC 9162 §2.1.4.2, including the rule that the path must be consumed
// exactly. first == second requires an empty path and equal roots; first == 0
// requires an empty path (and first_root == EmptyTreeRoot()).
// Errors: unauthenticated naming what does not match.
core::Status VerifyConsistency(uint64_t first, uint64_t second, const Hash& first_root,
                               const Hash& second_root, std::span<const Hash> path);

// Proof JSON as DESIGN §7:
//   {"seq":I,"size":N,"path":["<hex>",...]} and {"first":M,"second":N,"path":[...]}.
nlohmann::json InclusionProofToJson(uint64_t seq, uint64_t size, std::span<const Hash> path);
nlohmann::json ConsistencyProofToJson(uint64_t first, uint64_t second, std::span<const Hash> path);
// Errors: invalid_argument naming the field.
core::Result<std::vector<Hash>> ProofPathFromJson(const nlohmann::json& path_array);

// The right edge of a growing tree: the roots of the complete subtrees that
// make up the first size() leaves (at most 64). Appending reports every
// complete subtree it closes, so a store can persist them.
class MerkleFrontier {
 public:
  struct Node {
    int level;
    uint64_t index;
    Hash hash;
  };
  MerkleFrontier() = default;
  // Rebuilds the frontier of a tree of `size` leaves from its stored subtrees.
  static core::Result<MerkleFrontier> Load(const SubtreeSource& src, uint64_t size);

  // Appends one leaf hash; `closed` (if not null) receives the leaf node and
  // every interior node completed by it, lowest level first.
  void Append(const Hash& leaf_hash, std::vector<Node>* closed = nullptr);
  uint64_t size() const { return size_; }
  Hash Root() const;

 private:
  uint64_t size_ = 0;
  std::vector<Hash> stack_;  // complete subtree roots, largest first
};

}  // namespace bourse::ledger
