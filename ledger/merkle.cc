#include "ledger/merkle.h"

#include <bit>
#include <cstring>

#include "core/encoding.h"

namespace bourse::ledger {
namespace {

using core::Result;
using core::Status;

// Largest power of two strictly less than n (n >= 2).
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

bool IsPow2(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

// MTH of leaves [begin, end) from complete aligned subtrees.
Result<Hash> Mth(const SubtreeSource& src, uint64_t begin, uint64_t end) {
  uint64_t n = end - begin;
  if (IsPow2(n) && begin % n == 0) {
    return src.Subtree(std::countr_zero(n), begin / n);
  }
  uint64_t k = SplitPoint(n);
  BOURSE_ASSIGN_OR_RETURN(Hash left, Mth(src, begin, begin + k));
  BOURSE_ASSIGN_OR_RETURN(Hash right, Mth(src, begin + k, end));
  return NodeHash(left, right);
}

Status PathRec(const SubtreeSource& src, uint64_t m, uint64_t begin, uint64_t end,
               std::vector<Hash>* out) {
  uint64_t n = end - begin;
  if (n == 1) return Status::Ok();
  uint64_t k = SplitPoint(n);
  if (m < k) {
    BOURSE_RETURN_IF_ERROR(PathRec(src, m, begin, begin + k, out));
    BOURSE_ASSIGN_OR_RETURN(Hash h, Mth(src, begin + k, end));
    out->push_back(h);
  } else {
    BOURSE_RETURN_IF_ERROR(PathRec(src, m - k, begin + k, end, out));
    BOURSE_ASSIGN_OR_RETURN(Hash h, Mth(src, begin, begin + k));
    out->push_back(h);
  }
  return Status::Ok();
}

Status SubProofRec(const SubtreeSource& src, uint64_t m, uint64_t begin, uint64_t end, bool b,
                   std::vector<Hash>* out) {
  uint64_t n = end - begin;
  if (m == n) {
    if (!b) {
      BOURSE_ASSIGN_OR_RETURN(Hash h, Mth(src, begin, end));
      out->push_back(h);
    }
    return Status::Ok();
  }
  uint64_t k = SplitPoint(n);
  if (m <= k) {
    BOURSE_RETURN_IF_ERROR(SubProofRec(src, m, begin, begin + k, b, out));
    BOURSE_ASSIGN_OR_RETURN(Hash h, Mth(src, begin + k, end));
    out->push_back(h);
  } else {
    BOURSE_RETURN_IF_ERROR(SubProofRec(src, m - k, begin + k, end, false, out));
    BOURSE_ASSIGN_OR_RETURN(Hash h, Mth(src, begin, begin + k));
    out->push_back(h);
  }
  return Status::Ok();
}

// A SubtreeSource over explicit leaf hashes (reference paths, tests).
class LeafArraySource final : public SubtreeSource {
 public:
  explicit LeafArraySource(std::span<const Hash> leaves) : leaves_(leaves) {}
  Result<Hash> Subtree(int level, uint64_t index) const override {
    uint64_t n = uint64_t{1} << level;
    uint64_t begin = index * n;
    if (begin + n > leaves_.size()) return core::Internal("subtree out of range");
    return Build(begin, n);
  }

 private:
  Hash Build(uint64_t begin, uint64_t n) const {
    if (n == 1) return leaves_[begin];
    return NodeHash(Build(begin, n / 2), Build(begin + n / 2, n / 2));
  }
  std::span<const Hash> leaves_;
};

std::string Short(const Hash& h) { return HashToHex(h).substr(0, 16); }

}  // namespace

Hash LeafHash(std::span<const uint8_t> data) {
  core::Sha256Hasher h;
  h.UpdateByte(0x00);
  h.Update(data);
  return h.Finish();
}

Hash LeafHash(std::string_view data) { return LeafHash(core::AsBytes(data)); }

Hash NodeHash(const Hash& left, const Hash& right) {
  uint8_t buf[65];
  buf[0] = 0x01;
  std::memcpy(buf + 1, left.data(), 32);
  std::memcpy(buf + 33, right.data(), 32);
  return core::Sha256(std::span<const uint8_t>(buf, sizeof buf));
}

Hash EmptyTreeRoot() { return core::Sha256(std::string_view()); }

Result<Hash> HashFromHex(std::string_view hex) {
  if (hex.size() != 64) return core::InvalidArgument("hash: expected 64 hex digits");
  Hash h;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return core::InvalidArgument("hash: expected lowercase hex digits");
    h[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return h;
}

std::string HashToHex(const Hash& h) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(64, '0');
  for (size_t i = 0; i < 32; ++i) {
    out[2 * i] = kDigits[h[i] >> 4];
    out[2 * i + 1] = kDigits[h[i] & 15];
  }
  return out;
}

Hash RootFromLeafHashes(std::span<const Hash> leaf_hashes) {
  if (leaf_hashes.empty()) return EmptyTreeRoot();
  LeafArraySource src(leaf_hashes);
  return *RootAt(src, leaf_hashes.size());
}

std::vector<Hash> InclusionPathFromLeafHashes(std::span<const Hash> leaf_hashes, uint64_t index) {
  LeafArraySource src(leaf_hashes);
  auto p = InclusionPath(src, index, leaf_hashes.size());
  return p.ok() ? *p : std::vector<Hash>{};
}

std::vector<Hash> ConsistencyPathFromLeafHashes(std::span<const Hash> leaf_hashes, uint64_t first) {
  LeafArraySource src(leaf_hashes);
  auto p = ConsistencyPath(src, first, leaf_hashes.size());
  return p.ok() ? *p : std::vector<Hash>{};
}

Result<Hash> RootAt(const SubtreeSource& src, uint64_t size) {
  if (size == 0) return EmptyTreeRoot();
  return Mth(src, 0, size);
}

Result<std::vector<Hash>> InclusionPath(const SubtreeSource& src, uint64_t index, uint64_t size) {
  if (index >= size) {
    return core::InvalidArgument("inclusion proof: seq " + std::to_string(index) +
                                 " is not below size " + std::to_string(size));
  }
  std::vector<Hash> out;
  BOURSE_RETURN_IF_ERROR(PathRec(src, index, 0, size, &out));
  return out;
}

Result<std::vector<Hash>> ConsistencyPath(const SubtreeSource& src, uint64_t first,
                                          uint64_t second) {
  if (first > second) {
    return core::InvalidArgument("consistency proof: first " + std::to_string(first) +
                                 " is above second " + std::to_string(second));
  }
  std::vector<Hash> out;
  if (first == 0 || first == second) return out;
  BOURSE_RETURN_IF_ERROR(SubProofRec(src, first, 0, second, true, &out));
  return out;
}

Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                       std::span<const Hash> path, const Hash& root) {
  if (index >= size) {
    return core::Unauthenticated("inclusion proof: index " + std::to_string(index) +
                                 " is not below size " + std::to_string(size));
  }
  uint64_t fn = index, sn = size - 1;
  Hash r = leaf_hash;
  for (size_t i = 0; i < path.size(); ++i) {
    const Hash& p = path[i];
    if (sn == 0) {
      return core::Unauthenticated("inclusion proof: path longer than the tree allows (" +
                                   std::to_string(path.size()) + " hashes)");
    }
    if ((fn & 1) || fn == sn) {
      r = NodeHash(p, r);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return core::Unauthenticated("inclusion proof: path too short (" + std::to_string(path.size()) +
                                 " hashes)");
  }
  if (r != root) {
    return core::Unauthenticated("inclusion proof: computed root " + Short(r) +
                                 "... does not match " + Short(root) + "...");
  }
  return Status::Ok();
}

Status VerifyConsistency(uint64_t first, uint64_t second, const Hash& first_root,
                         const Hash& second_root, std::span<const Hash> path) {
  if (first > second) {
    return core::Unauthenticated("consistency proof: first size above second");
  }
  if (first == second) {
    if (!path.empty())
      return core::Unauthenticated("consistency proof: equal sizes need an empty path");
    if (first_root != second_root) {
      return core::Unauthenticated("consistency proof: equal sizes with different roots");
    }
    return Status::Ok();
  }
  if (first == 0) {
    if (!path.empty())
      return core::Unauthenticated("consistency proof: from 0 needs an empty path");
    if (first_root != EmptyTreeRoot()) {
      return core::Unauthenticated("consistency proof: the empty tree's root is wrong");
    }
    return Status::Ok();
  }
  if (path.empty()) return core::Unauthenticated("consistency proof: empty path");
  std::vector<Hash> p;
  p.reserve(path.size() + 1);
  if (IsPow2(first)) p.push_back(first_root);
  p.insert(p.end(), path.begin(), path.end());
  uint64_t fn = first - 1, sn = second - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = p[0], sr = p[0];
  for (size_t i = 1; i < p.size(); ++i) {
    const Hash& c = p[i];
    if (sn == 0) {
      return core::Unauthenticated("consistency proof: path longer than the trees allow");
    }
    if ((fn & 1) || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return core::Unauthenticated("consistency proof: path does not reach the second root");
  }
  if (fr != first_root) {
    return core::Unauthenticated("consistency proof: first root does not match (computed " +
                                 Short(fr) + "...)");
  }
  if (sr != second_root) {
    return core::Unauthenticated("consistency proof: second root does not match (computed " +
                                 Short(sr) + "...)");
  }
  return Status::Ok();
}

nlohmann::json InclusionProofToJson(uint64_t seq, uint64_t size, std::span<const Hash> path) {
  nlohmann::json arr = nlohmann::json::array();
  for (const Hash& h : path) arr.push_back(HashToHex(h));
  return nlohmann::json{{"seq", seq}, {"size", size}, {"path", std::move(arr)}};
}

nlohmann::json ConsistencyProofToJson(uint64_t first, uint64_t second, std::span<const Hash> path) {
  nlohmann::json arr = nlohmann::json::array();
  for (const Hash& h : path) arr.push_back(HashToHex(h));
  return nlohmann::json{{"first", first}, {"second", second}, {"path", std::move(arr)}};
}

Result<std::vector<Hash>> ProofPathFromJson(const nlohmann::json& path_array) {
  if (!path_array.is_array()) return core::InvalidArgument("path: must be an array");
  if (path_array.size() > 128) return core::InvalidArgument("path: too long");
  std::vector<Hash> out;
  for (size_t i = 0; i < path_array.size(); ++i) {
    const auto& v = path_array[i];
    std::string field = "path[" + std::to_string(i) + "]";
    if (!v.is_string()) return core::InvalidArgument(field + ": must be a string");
    auto h = HashFromHex(v.get_ref<const std::string&>());
    if (!h.ok()) return h.status().WithContext(field);
    out.push_back(*h);
  }
  return out;
}

Result<MerkleFrontier> MerkleFrontier::Load(const SubtreeSource& src, uint64_t size) {
  MerkleFrontier f;
  uint64_t offset = 0;
  for (int level = 63; level >= 0; --level) {
    uint64_t n = uint64_t{1} << level;
    if (size & n) {
      BOURSE_ASSIGN_OR_RETURN(Hash h, src.Subtree(level, offset >> level));
      f.stack_.push_back(h);
      offset += n;
    }
  }
  f.size_ = size;
  return f;
}

void MerkleFrontier::Append(const Hash& leaf_hash, std::vector<Node>* closed) {
  Hash h = leaf_hash;
  int level = 0;
  uint64_t idx = size_;
  if (closed) closed->push_back({0, idx, h});
  uint64_t s = size_;
  while (s & 1) {
    h = NodeHash(stack_.back(), h);
    stack_.pop_back();
    s >>= 1;
    ++level;
    idx >>= 1;
    if (closed) closed->push_back({level, idx, h});
  }
  stack_.push_back(h);
  ++size_;
}

Hash MerkleFrontier::Root() const {
  if (stack_.empty()) return EmptyTreeRoot();
  Hash r = stack_.back();
  for (size_t i = stack_.size() - 1; i-- > 0;) r = NodeHash(stack_[i], r);
  return r;
}

}  // namespace bourse::ledger
