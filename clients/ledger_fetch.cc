#include "clients/ledger_fetch.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "clients/client.h"

namespace bourse::clients {
namespace {

using ledger::Hash;
using ledger::TreeHead;
using ledger::Violation;
using nlohmann::json;

constexpr uint64_t kEntryPage = 10000;  // the broker's maximum per request
constexpr uint64_t kHeadPage = 1000;    // the broker's maximum per request

std::string N(uint64_t v) { return std::to_string(v); }

bool IsUint(const json& j, const char* name, uint64_t want) {
  return j.is_object() && j.contains(name) && j[name].is_number_unsigned() &&
         j[name].get<uint64_t>() == want;
}

// The ledger endpoints of DESIGN §7, each answer checked for shape (a
// malformed answer is invalid_argument naming the request).
class LedgerReader {
 public:
  explicit LedgerReader(const std::string& url) : c_(url) {}

  core::Result<core::PublicKey> Key() {
    const std::string path = "/v1/ledger/key";
    BOURSE_ASSIGN_OR_RETURN(json j, c_.Call("GET", path));
    if (!j.is_object() || !j.contains("key") || !j["key"].is_string()) {
      return Malformed(path, "no key");
    }
    auto k = core::PublicKey::FromText(j["key"].get<std::string>());
    if (!k.ok()) return Malformed(path, k.status().message());
    return *k;
  }

  core::Result<TreeHead> Head() {
    const std::string path = "/v1/ledger/head";
    BOURSE_ASSIGN_OR_RETURN(json j, c_.Call("GET", path));
    auto h = ledger::TreeHeadFromJson(j);
    if (!h.ok()) return Malformed(path, h.status().message());
    return *h;
  }

  // Published heads with size >= from, strictly increasing, at most limit.
  core::Result<std::vector<TreeHead>> Heads(uint64_t from, uint64_t limit) {
    const std::string path = "/v1/ledger/heads?from=" + N(from) + "&limit=" + N(limit);
    BOURSE_ASSIGN_OR_RETURN(json j, c_.Call("GET", path));
    if (!j.is_object() || !j.contains("heads") || !j["heads"].is_array() ||
        j["heads"].size() > limit) {
      return Malformed(path, "heads: must be an array of at most " + N(limit));
    }
    std::vector<TreeHead> out;
    for (const json& hj : j["heads"]) {
      auto h = ledger::TreeHeadFromJson(hj);
      if (!h.ok()) return Malformed(path, h.status().message());
      uint64_t min = out.empty() ? from : out.back().size + 1;
      if (h->size < min) return Malformed(path, "heads: sizes not increasing from " + N(from));
      out.push_back(*h);
    }
    return out;
  }

  // Entries [from, to) as served (JSON objects).
  core::Result<json> Entries(uint64_t from, uint64_t to) {
    const std::string path = "/v1/ledger/entries?from=" + N(from) + "&to=" + N(to);
    BOURSE_ASSIGN_OR_RETURN(json j, c_.Call("GET", path));
    if (!j.is_object() || !j.contains("entries") || !j["entries"].is_array() ||
        j["entries"].size() != to - from) {
      return Malformed(path, "entries: must be an array of " + N(to - from));
    }
    return std::move(j["entries"]);
  }

  core::Result<std::vector<Hash>> Inclusion(uint64_t seq, uint64_t size) {
    return Proof("inclusion", {"seq", seq}, {"size", size});
  }

  core::Result<std::vector<Hash>> Consistency(uint64_t first, uint64_t second) {
    return Proof("consistency", {"first", first}, {"second", second});
  }

 private:
  static core::Status Malformed(const std::string& path, const std::string& why) {
    return core::InvalidArgument("GET " + path + ": malformed answer: " + why);
  }
  // GET /v1/ledger/proof/KIND?A=a&B=b, whose answer must echo a and b.
  using Arg = std::pair<const char*, uint64_t>;
  core::Result<std::vector<Hash>> Proof(const std::string& kind, Arg a, Arg b) {
    const std::string path = "/v1/ledger/proof/" + kind + "?" + a.first + "=" + N(a.second) + "&" +
                             b.first + "=" + N(b.second);
    BOURSE_ASSIGN_OR_RETURN(json j, c_.Call("GET", path));
    if (!IsUint(j, a.first, a.second) || !IsUint(j, b.first, b.second) || !j.contains("path")) {
      return Malformed(path, "not the proof asked for");
    }
    auto p = ledger::ProofPathFromJson(j["path"]);
    if (!p.ok()) return Malformed(path, p.status().message());
    return *p;
  }
  Client c_;
};

// The leaf hash of a served entry that must have `seq`.
core::Result<Hash> LeafOf(const json& served, uint64_t seq) {
  auto e = ledger::EntryFromJson(served);
  if (!e.ok()) return core::InvalidArgument("entry seq " + N(seq) + ": " + e.status().message());
  if (e->seq != seq) return core::InvalidArgument("entry seq " + N(seq) + ": served seq differs");
  BOURSE_ASSIGN_OR_RETURN(std::string canonical, ledger::CanonicalEntry(*e));
  return ledger::LeafHash(canonical);
}

// The key to trust: `expected` when given (a verdict when the broker serves
// another), else the one the broker serves.
core::Result<core::PublicKey> ResolveKey(LedgerReader& r,
                                         const std::optional<core::PublicKey>& expected,
                                         core::Status* verdict) {
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey served, r.Key());
  if (!expected) return served;
  if (!(served == *expected)) {
    *verdict = core::Unauthenticated("the broker serves ledger key " + served.ToText() +
                                     ", not the expected " + expected->ToText());
  }
  return *expected;
}

// The root of the first `size` leaves (TrustedRoot in the header); `now` is
// the current head, its signature already checked. Check failures go to
// *verdict; errors are the broker's or the transport's.
core::Status RootAt(LedgerReader& r, const core::PublicKey& key, const TreeHead& now, uint64_t size,
                    TrustedRoot* out, core::Status* verdict) {
  if (size > now.size) {
    return core::InvalidArgument("size " + N(size) + " is beyond the ledger size " + N(now.size));
  }
  out->size = size;
  out->source = "signed head";
  if (size == now.size) {
    out->root = now.root;
    return core::Status::Ok();
  }
  BOURSE_ASSIGN_OR_RETURN(std::vector<TreeHead> heads, r.Heads(size, 1));
  if (!heads.empty() && heads[0].size == size) {
    out->root = heads[0].root;
    *verdict = ledger::VerifyTreeHead(heads[0], key);
    return core::Status::Ok();
  }
  ledger::MerkleFrontier frontier;
  for (uint64_t from = 0; from < size; from += kEntryPage) {
    uint64_t to = std::min(size, from + kEntryPage);
    BOURSE_ASSIGN_OR_RETURN(json entries, r.Entries(from, to));
    for (uint64_t i = from; i < to; ++i) {
      BOURSE_ASSIGN_OR_RETURN(Hash leaf, LeafOf(entries[i - from], i));
      frontier.Append(leaf);
    }
  }
  out->root = frontier.Root();
  out->source = "entries, consistent with the head of size " + N(now.size);
  BOURSE_ASSIGN_OR_RETURN(std::vector<Hash> path, r.Consistency(size, now.size));
  core::Status st = ledger::VerifyConsistency(size, now.size, out->root, now.root, path);
  if (!st.ok()) {
    *verdict = core::Unauthenticated("the root of the first " + N(size) +
                                     " entries is not consistent with the signed head of size " +
                                     N(now.size) + ": " + st.message());
  }
  return core::Status::Ok();
}

// The current head, signature checked (into *verdict).
core::Result<TreeHead> SignedHead(LedgerReader& r, const core::PublicKey& key,
                                  core::Status* verdict) {
  BOURSE_ASSIGN_OR_RETURN(TreeHead now, r.Head());
  if (verdict->ok()) *verdict = ledger::VerifyTreeHead(now, key);
  return now;
}

}  // namespace

core::Result<HeadCheck> CheckHead(const std::string& url,
                                  const std::optional<core::PublicKey>& expected_key) {
  LedgerReader r(url);
  HeadCheck hc;
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey key, ResolveKey(r, expected_key, &hc.verdict));
  hc.key = key.ToText();
  BOURSE_ASSIGN_OR_RETURN(hc.head, SignedHead(r, key, &hc.verdict));
  return hc;
}

core::Result<InclusionCheck> CheckInclusion(const std::string& url, uint64_t seq,
                                            std::optional<uint64_t> size,
                                            const std::optional<core::PublicKey>& expected_key) {
  LedgerReader r(url);
  InclusionCheck ic;
  ic.seq = seq;
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey key, ResolveKey(r, expected_key, &ic.verdict));
  BOURSE_ASSIGN_OR_RETURN(TreeHead now, SignedHead(r, key, &ic.verdict));
  uint64_t n = size.value_or(now.size);
  if (n > now.size) {
    return core::InvalidArgument("size " + N(n) + " is beyond the ledger size " + N(now.size));
  }
  if (seq >= n) return core::InvalidArgument("seq " + N(seq) + " must be below the size " + N(n));
  if (!ic.verdict.ok()) return ic;
  BOURSE_RETURN_IF_ERROR(RootAt(r, key, now, n, &ic.at, &ic.verdict));
  if (!ic.verdict.ok()) return ic;
  BOURSE_ASSIGN_OR_RETURN(json entry, r.Entries(seq, seq + 1));
  BOURSE_ASSIGN_OR_RETURN(ic.leaf, LeafOf(entry[0], seq));
  BOURSE_ASSIGN_OR_RETURN(ic.path, r.Inclusion(seq, n));
  core::Status st = ledger::VerifyInclusion(seq, n, ic.leaf, ic.path, ic.at.root);
  if (!st.ok()) {
    ic.verdict = core::Unauthenticated("entry seq " + N(seq) + " in the tree of size " + N(n) +
                                       ": " + st.message());
  }
  return ic;
}

core::Result<ConsistencyCheck> CheckConsistency(
    const std::string& url, uint64_t first, uint64_t second,
    const std::optional<core::PublicKey>& expected_key) {
  if (first > second) {
    return core::InvalidArgument("first size " + N(first) + " must be <= the second " + N(second));
  }
  LedgerReader r(url);
  ConsistencyCheck cc;
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey key, ResolveKey(r, expected_key, &cc.verdict));
  BOURSE_ASSIGN_OR_RETURN(TreeHead now, SignedHead(r, key, &cc.verdict));
  if (second > now.size) {
    return core::InvalidArgument("size " + N(second) + " is beyond the ledger size " + N(now.size));
  }
  if (!cc.verdict.ok()) return cc;
  BOURSE_RETURN_IF_ERROR(RootAt(r, key, now, first, &cc.first, &cc.verdict));
  if (!cc.verdict.ok()) return cc;
  BOURSE_RETURN_IF_ERROR(RootAt(r, key, now, second, &cc.second, &cc.verdict));
  if (!cc.verdict.ok()) return cc;
  BOURSE_ASSIGN_OR_RETURN(cc.path, r.Consistency(first, second));
  core::Status st =
      ledger::VerifyConsistency(first, second, cc.first.root, cc.second.root, cc.path);
  if (!st.ok()) {
    cc.verdict = core::Unauthenticated("the tree of size " + N(first) +
                                       " is not a prefix of the tree of size " + N(second) + ": " +
                                       st.message());
  }
  return cc;
}

namespace {

// One AuditUrl run against the snapshot head H (see the header).
class UrlAudit {
 public:
  UrlAudit(const std::string& url, const core::PublicKey& key, const TreeHead& snapshot,
           const ledger::AuditOptions& options, const UrlAuditOptions& url_options)
      : r_(url),
        key_(key),
        snap_(snapshot),
        opt_(url_options),
        rng_(url_options.rng != nullptr ? url_options.rng : &system_rng_),
        auditor_(key, options) {
    report_.key = key.ToText();
  }

  core::Result<UrlAuditReport> Run() {
    ChooseSampleSeqs();
    BOURSE_RETURN_IF_ERROR(Replay());
    if (auditor_.ok() && !saw_snapshot_) {
      auditor_.AddViolation({"head", snap_.size, "published_heads",
                             "the served head is not among the published heads"});
    }
    // H as served must be the published head of its size (checked by the
    // replay); one that differs is checked too, and refused.
    if (auditor_.ok() && !(published_snapshot_ == snap_)) auditor_.AddHead(snap_);
    auditor_.Finish();
    report_.violation = auditor_.violation();
    report_.summary = auditor_.summary();
    if (report_.ok()) BOURSE_RETURN_IF_ERROR(CheckInclusions());
    if (report_.ok()) BOURSE_RETURN_IF_ERROR(CheckSampledPairs());
    if (report_.ok()) BOURSE_RETURN_IF_ERROR(CheckHeadsAfter());
    return std::move(report_);
  }

 private:
  using Pair = std::pair<TreeHead, TreeHead>;

  void ChooseSampleSeqs() {
    if (snap_.size == 0) return;
    samples_[0] = Hash{};
    samples_[snap_.size - 1] = Hash{};
    for (int i = 0; i < opt_.inclusion_samples; ++i) samples_[rng_->Uniform(snap_.size)] = Hash{};
  }

  // Entries [0, H.size) in pages, each page preceded by the published heads
  // up to its end (checked by the auditor as the replay reaches them).
  core::Status Replay() {
    for (uint64_t from = 0; from < snap_.size && auditor_.ok(); from += kEntryPage) {
      uint64_t to = std::min(snap_.size, from + kEntryPage);
      BOURSE_RETURN_IF_ERROR(FeedHeadsUpTo(to));
      if (!auditor_.ok()) break;
      BOURSE_ASSIGN_OR_RETURN(json entries, r_.Entries(from, to));
      for (uint64_t seq = from; seq < to; ++seq) {
        auto entry = ledger::EntryFromJson(std::move(entries[seq - from]));
        if (!entry.ok()) {
          auditor_.AddViolation({"entry", seq, "entry_format", entry.status().message()});
          break;
        }
        auto sample = samples_.find(seq);
        if (sample != samples_.end()) {
          auto canonical = ledger::CanonicalEntry(*entry);
          if (canonical.ok()) sample->second = ledger::LeafHash(*canonical);
        }
        if (!auditor_.AddEntry(*entry)) break;
      }
    }
    if (auditor_.ok()) BOURSE_RETURN_IF_ERROR(FeedHeadsUpTo(snap_.size));
    return core::Status::Ok();
  }

  // Feeds the published heads of size <= min(n, H.size), fetching pages.
  core::Status FeedHeadsUpTo(uint64_t n) {
    while (auditor_.ok()) {
      if (pos_ == page_.size()) {
        if (heads_done_) return core::Status::Ok();
        BOURSE_ASSIGN_OR_RETURN(page_, r_.Heads(next_from_, kHeadPage));
        pos_ = 0;
        report_.heads_fetched += page_.size();
        if (page_.size() < kHeadPage) heads_done_ = true;
        if (page_.empty()) return core::Status::Ok();
        next_from_ = page_.back().size + 1;
      }
      const TreeHead& h = page_[pos_];
      if (h.size > snap_.size) {
        heads_done_ = true;
        pos_ = page_.size();
        return core::Status::Ok();
      }
      if (h.size > n) return core::Status::Ok();
      ++pos_;
      if (h.size == snap_.size) {
        saw_snapshot_ = true;
        published_snapshot_ = h;
      }
      if (prev_) OfferPair(*prev_, h);
      prev_ = h;
      auditor_.AddHead(h);
    }
    return core::Status::Ok();
  }

  // The first and last pair of consecutive heads, and a reservoir sample.
  void OfferPair(const TreeHead& a, const TreeHead& b) {
    uint64_t i = pairs_seen_++;
    if (i == 0) first_pair_ = Pair{a, b};
    last_pair_ = Pair{a, b};
    size_t k = static_cast<size_t>(std::max(0, opt_.consistency_samples));
    if (reservoir_.size() < k) {
      reservoir_.push_back({a, b});
    } else if (k > 0) {
      uint64_t j = rng_->Uniform(i + 1);
      if (j < k) reservoir_[j] = {a, b};
    }
  }

  core::Status CheckInclusions() {
    for (const auto& [seq, leaf] : samples_) {
      BOURSE_ASSIGN_OR_RETURN(std::vector<Hash> path, r_.Inclusion(seq, snap_.size));
      ++report_.inclusion_proofs;
      core::Status st = ledger::VerifyInclusion(seq, snap_.size, leaf, path, snap_.root);
      if (!st.ok()) {
        report_.violation = Violation{"entry", seq, "inclusion",
                                      "the broker's inclusion proof in the head of size " +
                                          N(snap_.size) + " does not verify: " + st.message()};
        return core::Status::Ok();
      }
    }
    return core::Status::Ok();
  }

  // The broker's proof that head b extends head a; a violation otherwise.
  core::Status CheckPair(const TreeHead& a, const TreeHead& b) {
    BOURSE_ASSIGN_OR_RETURN(std::vector<Hash> path, r_.Consistency(a.size, b.size));
    ++report_.consistency_proofs;
    core::Status st = ledger::VerifyConsistency(a.size, b.size, a.root, b.root, path);
    if (!st.ok()) {
      report_.violation = Violation{
          "head", b.size, "consistency",
          "not consistent with the signed head of size " + N(a.size) + ": " + st.message()};
    }
    return core::Status::Ok();
  }

  core::Status CheckSampledPairs() {
    std::map<uint64_t, Pair> pairs;  // by the second head's size: no pair twice
    if (first_pair_) pairs.emplace(first_pair_->second.size, *first_pair_);
    if (last_pair_) pairs.emplace(last_pair_->second.size, *last_pair_);
    for (const Pair& p : reservoir_) pairs.emplace(p.second.size, p);
    for (const auto& [size, p] : pairs) {
      BOURSE_RETURN_IF_ERROR(CheckPair(p.first, p.second));
      if (!report_.ok()) break;
    }
    return core::Status::Ok();
  }

  // Heads published after H, pair by pair, then the newest head.
  core::Status CheckHeadsAfter() {
    TreeHead prev = snap_;
    uint64_t limit =
        std::clamp<uint64_t>(static_cast<uint64_t>(std::max(opt_.heads_after, 0)), 0, kHeadPage);
    std::vector<TreeHead> after;
    if (limit > 0) {
      BOURSE_ASSIGN_OR_RETURN(after, r_.Heads(snap_.size + 1, limit));
    }
    report_.heads_fetched += after.size();
    BOURSE_ASSIGN_OR_RETURN(TreeHead newest, r_.Head());
    if (after.empty() || newest.size > after.back().size) after.push_back(newest);
    for (const TreeHead& h : after) {
      if (!ledger::VerifyTreeHead(h, key_).ok()) {
        report_.violation = Violation{"head", h.size, "tree_head", "signature does not verify"};
        return core::Status::Ok();
      }
      if (h.size < prev.size || (h.size == prev.size && h.root != prev.root)) {
        report_.violation =
            Violation{"head", h.size, "consistency",
                      "the broker's newest head does not extend the head of size " + N(prev.size)};
        return core::Status::Ok();
      }
      if (h.size > prev.size) BOURSE_RETURN_IF_ERROR(CheckPair(prev, h));
      if (!report_.ok()) return core::Status::Ok();
      prev = h;
    }
    return core::Status::Ok();
  }

  LedgerReader r_;
  const core::PublicKey key_;
  const TreeHead snap_;
  const UrlAuditOptions opt_;
  core::SystemRandom system_rng_;
  core::RandomSource* rng_;
  ledger::LedgerAuditor auditor_;
  UrlAuditReport report_;
  std::map<uint64_t, Hash> samples_;  // sampled seq -> its replayed leaf hash
  std::vector<TreeHead> page_;        // heads fetched, not yet fed
  size_t pos_ = 0;
  uint64_t next_from_ = 0;
  bool heads_done_ = false;
  bool saw_snapshot_ = false;
  TreeHead published_snapshot_;  // the published head of size H.size
  std::optional<TreeHead> prev_;
  uint64_t pairs_seen_ = 0;
  std::optional<Pair> first_pair_, last_pair_;
  std::vector<Pair> reservoir_;
};

}  // namespace

core::Result<UrlAuditReport> AuditUrl(const std::string& url,
                                      const std::optional<core::PublicKey>& expected_key,
                                      const ledger::AuditOptions& options,
                                      const UrlAuditOptions& url_options) {
  LedgerReader r(url);
  core::Status key_verdict;
  BOURSE_ASSIGN_OR_RETURN(core::PublicKey key, ResolveKey(r, expected_key, &key_verdict));
  if (!key_verdict.ok()) {
    UrlAuditReport report;
    report.key = key.ToText();
    report.violation = Violation{"final", 0, "ledger_key", key_verdict.message()};
    return report;
  }
  BOURSE_ASSIGN_OR_RETURN(TreeHead snapshot, r.Head());
  UrlAudit audit(url, key, snapshot, options, url_options);
  return audit.Run();
}

}  // namespace bourse::clients
