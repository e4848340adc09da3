#include "ledger/audit.h"

#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/canonical_json.h"
#include "core/json_codec.h"
#include "core/mutex.h"
#include "ledger/accounts.h"
#include "ledger/internal/account_rules.h"
#include "ledger/internal/capacity_rules.h"
#include "ledger/internal/rcap_rules.h"
#include "ledger/internal/timeline.h"
#include "ledger/key_changes.h"
#include "ledger/redemption_book.h"
#include "ledger/sliver_settings.h"
#include "storage/sqlite.h"

namespace bourse::ledger {

using core::Money;
using core::Result;
using core::Status;

std::string Violation::ToString() const {
  std::string w = where == "head"    ? "tree head at size "
                  : where == "final" ? "end of ledger at "
                                     : "seq ";
  return w + std::to_string(seq) + ": " + rule + ": " + detail;
}

namespace {

class MemoryView final : public internal::AccountView {
 public:
  Result<Money> GetBalance(const std::string& a) override {
    auto it = balances.find(a);
    return it == balances.end() ? Money() : it->second;
  }
  Status SetBalance(const std::string& a, const Money& m) override {
    if (m.is_negative()) return core::FailedPrecondition("negative balance for " + a);
    balances[a] = m;
    return Status::Ok();
  }
  Result<std::optional<EscrowState>> GetEscrow(const std::string& id) override {
    auto it = escrows.find(id);
    if (it == escrows.end()) return std::optional<EscrowState>();
    return std::optional<EscrowState>(it->second);
  }
  Status PutEscrow(const EscrowState& e) override {
    if (e.remaining.is_negative()) return core::FailedPrecondition("negative escrow " + e.id);
    escrows[e.id] = e;
    return Status::Ok();
  }
  Result<bool> IsAdmin(const std::string& k) override { return admins.count(k) > 0; }
  Result<bool> HasAdmins() override { return !admins.empty(); }
  Status AddAdmin(const std::string& k) override {
    admins.insert(k);
    return Status::Ok();
  }
  Status AddMinted(const Money& m) override {
    BOURSE_ASSIGN_OR_RETURN(minted, minted.Add(m));
    return Status::Ok();
  }

  std::unordered_map<std::string, Money> balances;
  std::unordered_map<std::string, EscrowState> escrows;
  std::unordered_set<std::string> admins;
  Money minted;
};

// The capacity book in memory: what CapacityLog keeps in SQLite, replayed.
class MemoryCapacityView final : public internal::CapacityView {
 public:
  struct Ticket {
    Rcap rcap;
    internal::Timeline children;
    size_t live_children = 0;  // recorded children not released
    std::optional<std::string> bound;
    bool released = false;
  };
  struct Node {
    core::ResourceVector capacity;
    internal::Timeline roots;
  };
  std::unordered_map<std::string, Ticket> tickets;
  std::unordered_map<std::string, Node> nodes;

  Result<std::optional<Rcap>> GetRcap(const std::string& id) override {
    auto it = tickets.find(id);
    if (it == tickets.end()) return std::optional<Rcap>();
    return std::optional<Rcap>(it->second.rcap);
  }
  Result<internal::Timeline*> ChildrenUse(const std::string& id) override {
    auto it = tickets.find(id);
    if (it == tickets.end()) return core::NotFound("rcap " + id + " is not recorded");
    return &it->second.children;
  }
  Result<bool> HasChildren(const std::string& id) override {
    auto it = tickets.find(id);
    return it != tickets.end() && it->second.live_children > 0;
  }
  Result<bool> IsReleased(const std::string& id) override {
    auto it = tickets.find(id);
    return it != tickets.end() && it->second.released;
  }
  Result<std::optional<std::string>> BoundTo(const std::string& id) override {
    auto it = tickets.find(id);
    if (it == tickets.end()) return std::optional<std::string>();
    return it->second.bound;
  }
  Result<std::optional<core::ResourceVector>> NodeCapacity(const std::string& node) override {
    auto it = nodes.find(node);
    if (it == nodes.end()) return std::optional<core::ResourceVector>();
    return std::optional<core::ResourceVector>(it->second.capacity);
  }
  Result<internal::Timeline*> RootsUse(const std::string& node) override {
    auto it = nodes.find(node);
    if (it == nodes.end()) return core::NotFound("node " + node + " is not registered");
    return &it->second.roots;
  }
  Status PutRcap(const Rcap& r) override {
    if (r.parent) {
      auto it = tickets.find(*r.parent);
      if (it != tickets.end()) ++it->second.live_children;
    }
    tickets.emplace(r.id, Ticket{r, {}, 0, std::nullopt, false});
    return Status::Ok();
  }
  Status PutBound(const Rcap& r, const std::string& slice) override {
    auto it = tickets.find(r.id);
    if (it == tickets.end()) return core::NotFound("rcap " + r.id + " is not recorded");
    it->second.bound = slice;
    return Status::Ok();
  }
  Status PutNode(const std::string& node, const core::ResourceVector& cap) override {
    nodes.emplace(node, Node{cap, {}});
    return Status::Ok();
  }
  Status PutReleased(const Rcap& r) override {
    auto it = tickets.find(r.id);
    if (it == tickets.end()) return core::NotFound("rcap " + r.id + " is not recorded");
    it->second.released = true;
    auto up = r.parent ? tickets.find(*r.parent) : tickets.end();
    if (up != tickets.end()) --up->second.live_children;
    return Status::Ok();
  }
};

// Who holds which key, replayed: every key a principal, site or node was
// registered with (principal_added, admin_added, site_added, node_added),
// and the current key of each site's PI and of each node, as the key
// changes (key_changes.h) move them. Admins are the account rules' (`admins`).
class MemoryKeyView final : public KeyView {
 public:
  explicit MemoryKeyView(const std::unordered_set<std::string>& admins) : admins_(admins) {}

  Result<bool> IsAdmin(const std::string& key) override { return admins_.count(key) > 0; }
  Result<std::optional<std::string>> SitePi(const std::string& site) override {
    auto it = sites.find(site);
    if (it == sites.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Result<std::optional<NodeKey>> Node(const std::string& node) override {
    auto it = nodes.find(node);
    if (it == nodes.end()) return std::optional<NodeKey>();
    return std::optional<NodeKey>(it->second);
  }
  Result<bool> KeyUsed(const std::string& key) override {
    return used.count(key) > 0 || admins_.count(key) > 0;
  }
  Status PutNodeKey(const std::string& node, const std::string&, const std::string& key) override {
    nodes[node].key = key;
    used.insert(key);
    return Status::Ok();
  }
  Status PutSitePi(const std::string& site, const std::string&, const std::string& pi) override {
    sites[site] = pi;
    used.insert(pi);
    return Status::Ok();
  }

  // The keys of a registration entry, read leniently: this is bookkeeping
  // for the key changes, not a check of the registration (an entry without
  // the members registers nothing here).
  void NoteRegistration(const std::string& type, const nlohmann::json& body) {
    auto text = [&](const char* m) -> std::string {
      return body.is_object() && body.contains(m) && body[m].is_string()
                 ? body[m].get<std::string>()
                 : std::string();
    };
    if (type == "principal_added") {
      if (!text("key").empty()) used.insert(text("key"));
    } else if (type == kEntryAdminAdded) {
      if (!text("admin").empty()) used.insert(text("admin"));
    } else if (type == "site_added") {
      if (text("site").empty() || text("pi").empty()) return;
      sites.emplace(text("site"), text("pi"));
      used.insert(text("pi"));
    } else if (type == kEntryNodeAdded) {
      if (text("node").empty() || text("key").empty()) return;
      nodes.emplace(text("node"), NodeKey{text("site"), text("key")});
      used.insert(text("key"));
    }
  }

  std::unordered_map<std::string, std::string> sites;  // site -> current PI key
  std::unordered_map<std::string, NodeKey> nodes;      // node -> site, current key
  std::unordered_set<std::string> used;

 private:
  const std::unordered_set<std::string>& admins_;
};

std::string RuleForCreditError(const Status& st) {
  switch (st.code()) {
    case core::StatusCode::kPermissionDenied:
      return "not_admin";
    case core::StatusCode::kFailedPrecondition:
      return "negative_balance";
    case core::StatusCode::kNotFound:
    case core::StatusCode::kAlreadyExists:
      return "escrow";
    default:
      return "credit_entry";
  }
}

// Verifies rcap signatures on worker threads while the replay goes on.
class SigVerifier {
 public:
  explicit SigVerifier(int threads) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Run(); });
  }
  ~SigVerifier() {
    {
      core::MutexLock lock(&mu_);
      stop_ = true;
    }
    cv_.SignalAll();
    for (auto& t : workers_) t.join();
  }
  void Submit(uint64_t seq, const Rcap& r) EXCLUDES(mu_) {
    core::MutexLock lock(&mu_);
    while (queue_.size() >= 4096) room_cv_.Wait(&mu_);
    queue_.push_back({seq, r});
    cv_.Signal();
  }
  // Waits for every submitted check; returns the lowest failing one.
  std::optional<std::pair<uint64_t, std::string>> Drain() EXCLUDES(mu_) {
    core::MutexLock lock(&mu_);
    while (!queue_.empty() || busy_ != 0) idle_cv_.Wait(&mu_);
    return bad_;
  }

 private:
  struct Task {
    uint64_t seq;
    Rcap rcap;
  };
  void Run() EXCLUDES(mu_) {
    core::MutexLock lock(&mu_);
    while (true) {
      while (!stop_ && queue_.empty()) cv_.Wait(&mu_);
      if (queue_.empty()) return;
      Task t = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
      room_cv_.Signal();
      lock.Unlock();
      bool ok = t.rcap.CheckSignature().ok();
      lock.Lock();
      --busy_;
      if (!ok && (!bad_ || t.seq < bad_->first)) {
        bad_ = std::make_pair(t.seq, "bad_signature: rcap " + t.rcap.id +
                                         ": signature by its issuer does not verify");
      }
      if (queue_.empty() && busy_ == 0) idle_cv_.SignalAll();
    }
  }
  core::Mutex mu_;
  core::CondVar cv_, room_cv_, idle_cv_;
  std::deque<Task> queue_ GUARDED_BY(mu_);
  int busy_ GUARDED_BY(mu_) = 0;
  bool stop_ GUARDED_BY(mu_) = false;
  std::optional<std::pair<uint64_t, std::string>> bad_ GUARDED_BY(mu_);
  std::vector<std::thread> workers_;  // set in the constructor, joined in the destructor
};

}  // namespace

struct LedgerAuditor::Impl {
  core::PublicKey key;
  AuditOptions options;
  MerkleFrontier frontier;
  std::string last_leaf_hex;
  int64_t last_ts = 0;
  std::map<uint64_t, TreeHead> pending_heads;
  std::map<uint64_t, Hash> head_roots;  // sizes of checked heads -> root
  uint64_t covered = 0;                 // largest checked head size
  bool any_head = false;
  MemoryView view;
  MemoryCapacityView capacity;
  MemoryKeyView keys{view.admins};
  SliverSettingsBook sliver_settings;
  std::unordered_map<std::string, MemoryCapacityView::Ticket>& tickets = capacity.tickets;
  static constexpr internal::CapacityRuleOptions kNoSig{.check_signatures = false};
  RedemptionBook book;
  std::unordered_set<std::string> expired;  // rcaps with an rcap_expired entry
  std::optional<Violation> violation;
  AuditSummary summary;

  std::unique_ptr<SigVerifier> verifier;

  Impl(core::PublicKey k, AuditOptions o) : key(std::move(k)), options(o) {
    if (options.check_rcap_signatures && options.signature_threads > 0) {
      verifier = std::make_unique<SigVerifier>(options.signature_threads);
    }
  }

  // Inline, or queued to the verifier (then checked for real before any
  // verdict is given).
  bool CheckSig(uint64_t seq, const Rcap& r) {
    if (!options.check_rcap_signatures) return true;
    if (verifier) {
      verifier->Submit(seq, r);
      return true;
    }
    if (!r.CheckSignature().ok()) {
      return Fail("entry", seq, "rcap",
                  "bad_signature: rcap " + r.id + ": signature by its issuer does not verify");
    }
    return true;
  }

  bool Fail(std::string where, uint64_t seq, std::string rule, std::string detail) {
    Violation v{std::move(where), seq, std::move(rule), std::move(detail)};
    if (verifier) {
      if (auto bad = verifier->Drain()) {
        // An entry at seq s comes before a head of size s+1 or more.
        bool earlier = v.where == "head" ? bad->first < v.seq : bad->first <= v.seq;
        if (earlier) v = Violation{"entry", bad->first, "rcap", bad->second};
      }
    }
    if (!violation || v.seq < violation->seq) violation = std::move(v);
    return false;
  }

  bool CheckHead(const TreeHead& h) {
    Status st = VerifyTreeHead(h, key);
    if (!st.ok()) return Fail("head", h.size, "tree_head", "signature does not verify");
    Hash root = frontier.Root();
    if (root != h.root) {
      return Fail("head", h.size, "tree_head",
                  "signed root " + HashToHex(h.root).substr(0, 16) +
                      "... does not match the entries' root " + HashToHex(root).substr(0, 16) +
                      "...");
    }
    head_roots[h.size] = h.root;
    covered = std::max(covered, h.size);
    any_head = true;
    ++summary.heads;
    return true;
  }

  bool FlushHeads() {
    while (!pending_heads.empty() && pending_heads.begin()->first == frontier.size()) {
      TreeHead h = pending_heads.begin()->second;
      pending_heads.erase(pending_heads.begin());
      if (!CheckHead(h)) return false;
    }
    return true;
  }

  Result<Rcap> RcapMember(const nlohmann::json& body, const char* key_name) {
    BOURSE_ASSIGN_OR_RETURN(const nlohmann::json* r, core::RequireMember(body, "body", key_name));
    return Rcap::FromJson(*r, std::string("body.") + key_name);
  }

  // A refusal of the capacity rule as a violation: the rule's own refusals
  // (failed_precondition) are "capacity", malformed or unknown rcaps "rcap".
  bool FailCapacity(uint64_t seq, const Status& st) {
    return Fail("entry", seq,
                st.code() == core::StatusCode::kFailedPrecondition ? "capacity" : "rcap",
                st.message());
  }

  // Records children of `parent` after every rule of capacity_rules.h.
  bool AddChildren(uint64_t seq, const std::string& parent, std::span<const Rcap> children) {
    for (const Rcap& c : children) {
      if (!tickets.count(parent)) {
        return Fail("entry", seq, "rcap",
                    "rcap " + c.id + ": parent " + parent + " was never issued");
      }
      if (tickets.count(c.id)) {
        return Fail("entry", seq, "rcap", "rcap id " + c.id + " issued twice");
      }
      if (!CheckSig(seq, c)) return false;
    }
    Status st = internal::ApplyChildren(capacity, parent, children, kNoSig);
    if (!st.ok()) return FailCapacity(seq, st);
    summary.rcaps += children.size();
    return true;
  }

  bool RequireKnown(uint64_t seq, const Rcap& r) {
    auto it = tickets.find(r.id);
    if (it == tickets.end() || !(it->second.rcap == r)) {
      return Fail("entry", seq, "rcap", "rcap " + r.id + " was not issued with this content");
    }
    return true;
  }

  // rcap_expired {"node":N,"rcap":R,"slice":S} (or the older {"rcap":R}):
  // R recorded with this content, written at or after R's not_after (the
  // entry's ts is last_ts), once; S is the slice R is bound to, N its node.
  bool ApplyExpired(uint64_t seq, const nlohmann::json& body) {
    auto malformed = [&](const Status& st) { return Fail("entry", seq, "rcap", st.message()); };
    Status st = core::CheckObjectFields(body, "body", {"rcap", "slice", "node"});
    if (!st.ok()) return malformed(st);
    auto r = RcapMember(body, "rcap");
    if (!r.ok()) return malformed(r.status());
    if (!RequireKnown(seq, *r)) return false;
    if (body.contains("node") && body["node"] != r->node) {
      return Fail("entry", seq, "rcap", "body.node: must be the rcap's node " + r->node);
    }
    if (body.contains("slice")) {
      auto bound = capacity.BoundTo(r->id);
      if (!bound.ok() || !*bound || body["slice"] != **bound) {
        return Fail("entry", seq, "rcap",
                    "body.slice: rcap " + r->id + " is not bound to that slice");
      }
    }
    if (last_ts < r->interval.not_after * 1000) {
      return Fail("entry", seq, "rcap",
                  "rcap " + r->id + " expired at ts " + std::to_string(last_ts) +
                      ", before its not_after " + std::to_string(r->interval.not_after));
    }
    if (!expired.insert(r->id).second) {
      return Fail("entry", seq, "rcap", "rcap " + r->id + " expired twice");
    }
    return true;
  }

  bool ApplyRcapEntry(uint64_t seq, const std::string& type, const nlohmann::json& body) {
    auto malformed = [&](const Status& st) { return Fail("entry", seq, "rcap", st.message()); };
    if (type == kEntryRcapExpired) return ApplyExpired(seq, body);
    if (type == kEntryRcapIssued || type == kEntryRcapDelegated) {
      Status st = core::CheckObjectFields(body, "body", {"rcap"});
      if (!st.ok()) return malformed(st);
      auto r = RcapMember(body, "rcap");
      if (!r.ok()) return malformed(r.status());
      if (type == kEntryRcapDelegated) {
        if (!r->parent) return Fail("entry", seq, "rcap", "rcap " + r->id + " has no parent");
        return AddChildren(seq, *r->parent, std::span<const Rcap>(&*r, 1));
      }
      if (r->parent)
        return Fail("entry", seq, "rcap", "rcap_issued: rcap " + r->id + " has a parent");
      if (!CheckSig(seq, *r)) return false;
      if (tickets.count(r->id))
        return Fail("entry", seq, "rcap", "rcap id " + r->id + " issued twice");
      Status ist = internal::ApplyRoot(capacity, *r, kNoSig);
      if (!ist.ok()) return FailCapacity(seq, ist);
      ++summary.rcaps;
      return true;
    }
    if (type == kEntryRcapSplit) {
      Status st = core::CheckObjectFields(body, "body", {"parent", "children"});
      if (!st.ok()) return malformed(st);
      auto p = core::RequireMember(body, "body", "parent");
      if (!p.ok()) return malformed(p.status());
      auto parent = core::StringFromJson(**p, "body.parent", kMaxRcapIdLength);
      if (!parent.ok()) return malformed(parent.status());
      auto ch = core::RequireMember(body, "body", "children");
      if (!ch.ok()) return malformed(ch.status());
      if (!(*ch)->is_array() || (*ch)->empty()) {
        return Fail("entry", seq, "rcap", "body.children: must be a non-empty array");
      }
      std::vector<Rcap> children;
      for (size_t i = 0; i < (*ch)->size(); ++i) {
        auto c = Rcap::FromJson((**ch)[i], "body.children[" + std::to_string(i) + "]");
        if (!c.ok()) return malformed(c.status());
        if (!c->parent || *c->parent != *parent) {
          return Fail("entry", seq, "rcap",
                      "body.children[" + std::to_string(i) + "]: parent is not " + *parent);
        }
        children.push_back(std::move(*c));
      }
      return AddChildren(seq, *parent, children);
    }
    if (type == kEntryRcapBound) {
      Status st = core::CheckObjectFields(body, "body", {"rcap", "slice"});
      if (!st.ok()) return malformed(st);
      auto r = RcapMember(body, "rcap");
      if (!r.ok()) return malformed(r.status());
      auto sl = core::RequireMember(body, "body", "slice");
      if (!sl.ok()) return malformed(sl.status());
      if (!(*sl)->is_string()) return Fail("entry", seq, "rcap", "body.slice: must be a string");
      if (!RequireKnown(seq, *r)) return false;
      Status bst = internal::ApplyBind(capacity, *r, (*sl)->get<std::string>());
      if (!bst.ok()) return FailCapacity(seq, bst);
      return true;
    }
    if (type == kEntryRcapReleased) {
      Status st = core::CheckObjectFields(body, "body", {"rcap"});
      if (!st.ok()) return malformed(st);
      auto r = RcapMember(body, "rcap");
      if (!r.ok()) return malformed(r.status());
      if (!RequireKnown(seq, *r)) return false;
      Status rst = internal::ApplyRelease(capacity, *r, key);
      if (!rst.ok()) return FailCapacity(seq, rst);
      return true;
    }
    if (type == kEntryRcapRedeemed) {
      Status st = core::CheckObjectFields(body, "body", {"rcap", "node"});
      if (!st.ok()) return malformed(st);
      auto r = RcapMember(body, "rcap");
      if (!r.ok()) return malformed(r.status());
      auto n = core::RequireMember(body, "body", "node");
      if (!n.ok()) return malformed(n.status());
      if (!(*n)->is_string() || (*n)->get_ref<const std::string&>() != r->node) {
        return Fail("entry", seq, "rcap", "body.node: must be the rcap's node " + r->node);
      }
      if (!RequireKnown(seq, *r)) return false;
      std::vector<Rcap> rev;
      const Rcap* cur = &tickets.find(r->id)->second.rcap;
      while (true) {
        rev.push_back(*cur);
        if (!cur->parent || rev.size() > kMaxChainLength) break;
        auto it = tickets.find(*cur->parent);
        if (it == tickets.end()) break;
        cur = &it->second.rcap;
      }
      std::vector<Rcap> chain(rev.rbegin(), rev.rend());
      auto v = book.Redeem(chain);
      if (!v.ok()) {
        return Fail("entry", seq, "capacity",
                    std::string(RefusalReasonName(v.refusal().reason)) + ": " + v.refusal().detail);
      }
      return true;
    }
    return true;
  }

  // The stateless half of replaying an entry (parse, format, canonical
  // form); may run on another thread.
  struct Parsed {
    Hash leaf{};
    std::optional<Entry> entry;
    std::optional<Violation> error;  // seq filled in by Apply when 0
  };
  static Parsed ParseStage(std::string_view text, const Hash& leaf) {
    Parsed p;
    p.leaf = leaf;
    auto bad = [&](const std::string& msg) {
      p.error = Violation{"entry", 0, "entry_format", msg};
      return std::move(p);
    };
    auto j = core::ParseJson(text);
    if (!j.ok()) return bad(j.status().message());
    auto e = EntryFromJson(std::move(*j));
    if (!e.ok()) return bad(e.status().message());
    auto canon = CanonicalEntry(*e);
    if (!canon.ok()) return bad(canon.status().message());
    if (*canon != text) return bad("entry is not in canonical JSON");
    p.entry = std::move(*e);
    return p;
  }

  bool Apply(Parsed&& p) {
    if (violation) return false;
    uint64_t seq = frontier.size();
    if (p.error) return Fail(p.error->where, seq, p.error->rule, p.error->detail);
    Entry& e = *p.entry;
    const Hash& leaf = p.leaf;
    if (e.seq != seq) {
      return Fail(
          "entry", seq, "hash_chain",
          "entry claims seq " + std::to_string(e.seq) + " at position " + std::to_string(seq));
    }
    if (e.prev != last_leaf_hex) {
      return Fail(
          "entry", seq, "hash_chain",
          "prev " + (e.prev.empty() ? std::string("\"\"") : e.prev.substr(0, 16) + "...") +
              " is not the previous entry's leaf hash " +
              (last_leaf_hex.empty() ? std::string("\"\"") : last_leaf_hex.substr(0, 16) + "..."));
    }
    if (e.ts < last_ts) {
      return Fail(
          "entry", seq, "timestamp",
          "ts " + std::to_string(e.ts) + " is before the previous " + std::to_string(last_ts));
    }
    frontier.Append(leaf);
    last_leaf_hex = HashToHex(leaf);
    last_ts = e.ts;
    ++summary.entries;
    ++summary.types[e.type];
    if (internal::IsCreditEntryType(e.type)) {
      Status st = internal::ApplyCreditEntry(view, e.type, e.body);
      if (!st.ok()) return Fail("entry", seq, RuleForCreditError(st), e.type + ": " + st.message());
    } else if (e.type.rfind("rcap_", 0) == 0) {
      if (!ApplyRcapEntry(seq, e.type, e.body)) return false;
    } else if (e.type == kEntryNodeAdded) {
      auto n = internal::ParseNodeEntry(e.body);
      if (!n.ok()) return Fail("entry", seq, "capacity", "node_added: " + n.status().message());
      Status st = internal::ApplyNode(capacity, n->node, n->capacity);
      if (!st.ok()) return Fail("entry", seq, "capacity", "node_added: " + st.message());
    } else if (e.type == kEntryNodeKeyChanged || e.type == kEntrySitePiChanged) {
      Status st = ApplyKeyChangeEntry(keys, e.type, e.body);
      if (!st.ok()) return Fail("entry", seq, "key_change", e.type + ": " + st.message());
    } else if (e.type == kEntrySiteSliverLimitsSet || e.type == kEntrySliceResourcesSet ||
               e.type == kEntrySliceInstantiated || e.type == kEntrySliceNodesRemoved) {
      if (!ApplySliverSettings(seq, e)) return false;
    }
    keys.NoteRegistration(e.type, e.body);
    sliver_settings.Note(e.type, e.body);
    return FlushHeads();
  }

  // Best-effort sliver settings and site limits (sliver_settings.h): a site's
  // limits are set by the admin or by that site's PI.
  bool ApplySliverSettings(uint64_t seq, const Entry& e) {
    std::string by = e.body.is_object() && e.body.contains("by") && e.body["by"].is_string()
                         ? e.body["by"].get<std::string>()
                         : "";
    bool admin = keys.IsAdmin(by).value_or(false);
    if (e.type == kEntrySiteSliverLimitsSet && !admin) {
      std::string site = e.body.contains("site") && e.body["site"].is_string()
                             ? e.body["site"].get<std::string>()
                             : "";
      auto pi = keys.SitePi(site);
      if (!pi.ok() || !*pi || **pi != by) {
        return Fail("entry", seq, "sliver_settings",
                    e.type + ": " + by + " is neither an admin nor the PI of site " + site);
      }
    }
    Status st = sliver_settings.Apply(e.type, e.body, e.ts, admin);
    if (!st.ok()) return Fail("entry", seq, "sliver_settings", e.type + ": " + st.message());
    return true;
  }

  bool Add(std::string_view text, const Hash& leaf) {
    if (violation) return false;
    return Apply(ParseStage(text, leaf));
  }
};

LedgerAuditor::LedgerAuditor(core::PublicKey ledger_key, AuditOptions options)
    : impl_(std::make_unique<Impl>(std::move(ledger_key), options)) {}
LedgerAuditor::~LedgerAuditor() = default;

bool LedgerAuditor::AddEntryText(std::string_view text) { return impl_->Add(text, LeafHash(text)); }

bool LedgerAuditor::AddEntryTextWithLeaf(std::string_view text, const Hash& leaf) {
  return impl_->Add(text, leaf);
}

bool LedgerAuditor::AddEntry(const Entry& entry) {
  auto c = CanonicalEntry(entry);
  if (!c.ok()) return impl_->Fail("entry", entry.seq, "entry_format", c.status().message());
  return AddEntryText(*c);
}

bool LedgerAuditor::AddHead(const TreeHead& head) {
  if (impl_->violation) return false;
  uint64_t n = impl_->frontier.size();
  if (head.size == n) return impl_->CheckHead(head);
  if (head.size > n) {
    impl_->pending_heads[head.size] = head;
    return true;
  }
  auto it = impl_->head_roots.find(head.size);
  if (it == impl_->head_roots.end()) {
    return impl_->Fail("head", head.size, "tree_head",
                       "head given after the replay passed its size; feed heads in order");
  }
  Status st = VerifyTreeHead(head, impl_->key);
  if (!st.ok()) return impl_->Fail("head", head.size, "tree_head", "signature does not verify");
  if (it->second != head.root) {
    return impl_->Fail("head", head.size, "tree_head", "two signed heads disagree on the root");
  }
  return true;
}

bool LedgerAuditor::AddViolation(Violation v) {
  return impl_->Fail(std::move(v.where), v.seq, std::move(v.rule), std::move(v.detail));
}

bool LedgerAuditor::Finish() {
  Impl& s = *impl_;
  if (s.verifier) {
    if (auto bad = s.verifier->Drain()) return s.Fail("entry", bad->first, "rcap", bad->second);
  }
  if (s.violation) return false;
  uint64_t n = s.frontier.size();
  if (!s.pending_heads.empty()) {
    const TreeHead& h = s.pending_heads.begin()->second;
    return s.Fail("head", h.size, "tree_head",
                  "signed head covers " + std::to_string(h.size) + " entries but only " +
                      std::to_string(n) + " exist");
  }
  if (!s.any_head) return s.Fail("final", n, "tree_head", "no signed tree head at all");
  if (s.covered < n) {
    return s.Fail("entry", s.covered, "tree_head",
                  "entries " + std::to_string(s.covered) + ".." + std::to_string(n - 1) +
                      " are not covered by any signed tree head");
  }
  Money bal, esc;
  for (const auto& [a, m] : s.view.balances) {
    if (m.is_negative()) return s.Fail("final", n, "negative_balance", "account " + a);
    auto r = bal.Add(m);
    if (!r.ok()) return s.Fail("final", n, "conservation", "overflow summing balances");
    bal = *r;
  }
  for (const auto& [id, e] : s.view.escrows) {
    auto r = esc.Add(e.remaining);
    if (!r.ok()) return s.Fail("final", n, "conservation", "overflow summing escrow");
    esc = *r;
  }
  s.summary.accounts = s.view.balances.size();
  s.summary.minted = s.view.minted;
  s.summary.balances = bal;
  s.summary.escrowed = esc;
  auto total = bal.Add(esc);
  if (!total.ok() || *total != s.view.minted) {
    return s.Fail("final", n, "conservation",
                  "balances " + bal.ToString() + " + escrow " + esc.ToString() + " != minted " +
                      s.view.minted.ToString());
  }
  return true;
}

bool LedgerAuditor::ok() const { return !impl_->violation; }
const std::optional<Violation>& LedgerAuditor::violation() const { return impl_->violation; }
const AuditSummary& LedgerAuditor::summary() const { return impl_->summary; }
Hash LedgerAuditor::CurrentRoot() const { return impl_->frontier.Root(); }

// ---- AuditStore ---------------------------------------------------------

namespace {

// A read-only connection on the store (large mmap and cache: the audit reads
// the whole file). A file that is not a database is not a ledger store.
Result<std::unique_ptr<storage::Connection>> OpenForAudit(const std::string& path) {
  storage::ConnectionOptions co;
  co.read_only = true;
  co.cache_kib = 65536;
  co.mmap_bytes = 1073741824;
  co.wal = false;
  auto c = storage::Connection::Open(path, co);
  if (c.status().code() == core::StatusCode::kFailedPrecondition) {
    return core::NotFound("ledger store " + path + ": not a ledger store (no ledger_meta key)");
  }
  return c;
}

// The key the store records, checked against `expected_key` when given;
// nullopt (with report->violation set) when they disagree or it is unreadable.
Result<std::optional<core::PublicKey>> AuditKey(storage::Connection& db, const std::string& path,
                                                const std::optional<core::PublicKey>& expected_key,
                                                AuditReport* report) {
  auto meta = db.Prepare("SELECT v FROM ledger_meta WHERE k='key'");
  auto row = meta.ok() ? meta->Step() : core::Result<bool>(meta.status());
  if (!row.ok() || !*row) {
    return core::NotFound("ledger store " + path + ": not a ledger store (no ledger_meta key)");
  }
  std::string key_text = meta->Text(0);
  std::optional<core::PublicKey> key = expected_key;
  if (!key) {
    auto k = core::PublicKey::FromText(key_text);
    if (!k.ok()) {
      report->violation =
          Violation{"final", 0, "ledger_key", "recorded key: " + k.status().message()};
      return std::optional<core::PublicKey>();
    }
    key = *k;
  } else if (key->ToText() != key_text) {
    report->key = key->ToText();
    report->violation =
        Violation{"final", 0, "ledger_key",
                  "the store records key " + key_text + ", expected " + key->ToText()};
    return std::optional<core::PublicKey>();
  }
  report->key = key->ToText();
  return key;
}

// The store's heads (rows size, ts, root, sig in size order), given to the
// auditor as the replay reaches them: a head of size N after N entries.
class HeadFeed {
 public:
  HeadFeed(storage::Statement heads, LedgerAuditor* auditor)
      : heads_(std::move(heads)), auditor_(auditor) {
    row_ = heads_.Step();
  }
  // Feeds every head of size <= n; false when the auditor refused one.
  bool UpTo(uint64_t n) {
    while (row_.ok() && *row_ && static_cast<uint64_t>(heads_.Int(0)) <= n) {
      TreeHead h;
      h.size = static_cast<uint64_t>(heads_.Int(0));
      h.ts = heads_.Int(1);
      if (heads_.Bytes(2) != 32 || heads_.Bytes(3) != 64) {
        auditor_->AddViolation(
            Violation{"head", h.size, "tree_head", "malformed root or signature"});
        return false;
      }
      std::memcpy(h.root.data(), heads_.Blob(2), 32);
      std::memcpy(h.sig.data(), heads_.Blob(3), 64);
      if (!auditor_->AddHead(h)) return false;
      row_ = heads_.Step();
    }
    return true;
  }
  // A read error met on the way (ok otherwise).
  const Status& error() const { return row_.status(); }

 private:
  storage::Statement heads_;
  LedgerAuditor* auditor_;
  Result<bool> row_ = false;
};

}  // namespace

Result<AuditReport> AuditStore(const std::string& path,
                               const std::optional<core::PublicKey>& expected_key,
                               AuditOptions options) {
  struct stat stbuf;
  if (::stat(path.c_str(), &stbuf) != 0)
    return core::NotFound("ledger store " + path + ": no such file");
  BOURSE_ASSIGN_OR_RETURN(std::unique_ptr<storage::Connection> db, OpenForAudit(path));

  AuditReport report;
  BOURSE_ASSIGN_OR_RETURN(std::optional<core::PublicKey> key,
                          AuditKey(*db, path, expected_key, &report));
  if (!key) return report;

  // Heads come through their own connection, interleaved by the replay: a
  // head of size N is checked after N entries.
  BOURSE_ASSIGN_OR_RETURN(std::unique_ptr<storage::Connection> hdb, OpenForAudit(path));
  BOURSE_ASSIGN_OR_RETURN(
      storage::Statement entries,
      db->Prepare("SELECT e.seq, e.data, n.hash FROM ledger_entries e LEFT JOIN ledger_nodes n"
                  " ON n.id = e.seq * 2 ORDER BY e.seq"));
  BOURSE_ASSIGN_OR_RETURN(
      storage::Statement heads,
      hdb->Prepare("SELECT size, ts, root, sig FROM ledger_heads ORDER BY size"));
  LedgerAuditor auditor(*key, options);
  LedgerAuditor::Impl& impl = *auditor.impl_;
  HeadFeed feed(std::move(heads), &auditor);

  // Producer: reads rows, checks them against the stored leaves and parses
  // them (the stateless half); the caller's thread replays them in order.
  using Parsed = LedgerAuditor::Impl::Parsed;
  struct Chunk {
    std::vector<Parsed> items;
    bool last = false;
    Status read_error;
  };
  std::mutex mu;
  std::condition_variable cv_full, cv_empty;
  std::deque<Chunk> chunks;
  // Chunks the replay is done with go back to the producer to be destroyed
  // there: their JSON trees were allocated on the producer's thread, and
  // freeing them on another thread makes glibc's malloc take the producer
  // arena's lock for every node (that contention cost more than the parsing).
  std::vector<Chunk> spent;
  std::atomic<bool> abandon{false};
  std::thread producer([&] {
    uint64_t count = 0;
    Chunk cur;
    auto push = [&](Chunk&& c) {
      std::vector<Chunk> to_free;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv_full.wait(lock, [&] { return chunks.size() < 16 || abandon; });
        chunks.push_back(std::move(c));
        cv_empty.notify_one();
        to_free.swap(spent);
      }
    };
    Result<bool> row = true;
    bool stop = false;
    while (!stop && !abandon && (row = entries.Step()).ok() && *row) {
      uint64_t row_seq = static_cast<uint64_t>(entries.Int(0));
      std::string_view text = entries.TextView(1);
      Parsed item;
      if (row_seq != count) {
        item.error =
            Violation{"entry", count, "hash_chain",
                      "entry " + std::to_string(count) + " is missing (next stored row is " +
                          std::to_string(row_seq) + ")"};
        stop = true;
      } else {
        Hash leaf = LeafHash(text);
        if (entries.Bytes(2) == 32 && std::memcmp(entries.Blob(2), leaf.data(), 32) != 0) {
          item.error = Violation{"entry", count, "hash_chain",
                                 "entry does not hash to the stored leaf (entry altered)"};
          stop = true;
        } else {
          item = LedgerAuditor::Impl::ParseStage(text, leaf);
        }
      }
      cur.items.push_back(std::move(item));
      ++count;
      if (cur.items.size() == 512) {
        push(std::move(cur));
        cur = Chunk();
      }
    }
    if (!stop && !abandon && !row.ok()) cur.read_error = row.status();
    cur.last = true;
    push(std::move(cur));
  });
  Status read_error;
  bool going = true;
  uint64_t count = 0;
  while (going) {
    Chunk c;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv_empty.wait(lock, [&] { return !chunks.empty(); });
      c = std::move(chunks.front());
      chunks.pop_front();
      cv_full.notify_one();
    }
    for (Parsed& item : c.items) {
      if (!feed.UpTo(count)) {
        going = false;
        break;
      }
      if (item.error && item.error->rule == "hash_chain") {
        auditor.AddViolation(*item.error);
        going = false;
        break;
      }
      if (!impl.Apply(std::move(item))) {
        going = false;
        break;
      }
      ++count;
    }
    if (c.last) {
      read_error = c.read_error;
      break;
    }
    std::lock_guard<std::mutex> lock(mu);
    spent.push_back(std::move(c));
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    abandon = true;
    cv_full.notify_all();
  }
  producer.join();
  BOURSE_RETURN_IF_ERROR(read_error);
  if (!auditor.violation() && going) {
    if (feed.UpTo(UINT64_MAX)) {
      BOURSE_RETURN_IF_ERROR(feed.error());
      auditor.Finish();
    }
  }
  if (!report.violation && auditor.violation()) report.violation = auditor.violation();
  report.summary = auditor.summary();
  return report;
}

}  // namespace bourse::ledger
