#include "auction/internal/wdp_mip.h"

#include <coin/CbcModel.hpp>
#include <coin/CbcSolver.hpp>
#include <coin/ClpSimplex.hpp>
#include <coin/CoinTime.hpp>
#include <coin/OsiClpSolverInterface.hpp>

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <string>
#include <utility>

namespace bourse::auction::internal {

namespace {

__extension__ typedef __int128 i128;

constexpr int kDims = 4;  // cpu_mcores, mem_mib, disk_mib, net_min_kbps

std::array<int64_t, kDims> Quantities(const core::ResourceVector& r) {
  return {r.cpu_mcores, r.mem_mib, r.disk_mib, r.net_min_kbps};
}

i128 Gcd(i128 a, i128 b) {
  while (b != 0) {
    i128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// CBC 2.10 keeps some global state (its message handlers' statics, CglProbing's
// shared tables): one solve at a time per process.
std::mutex& CbcMutex() {
  static std::mutex m;
  return m;
}

// What CbcMain1's branch and bound ended with, read in its callback right
// after the search (whereFrom 4): CbcMain1 runs the search on a copy of the
// model and, when it stops on the time limit, does not always copy the best
// solution back (the caller's model then had none, and every improvement on
// the start was lost).
struct SearchEnd {
  bool seen = false;
  std::vector<double> solution;  // empty: none found
  double best_possible = -HUGE_VAL;
  bool proven = false;
  bool stopped = false;         // on the time limit
  void clear() { *this = SearchEnd(); }
};
SearchEnd& Captured() {
  static SearchEnd end;  // under CbcMutex
  return end;
}
int CaptureAfterSearch(CbcModel* m, int where) {
  if (where != 4) return 0;
  SearchEnd& e = Captured();
  e.seen = true;
  if (m->bestSolution()) {
    e.solution.assign(m->bestSolution(), m->bestSolution() + m->getNumCols());
  }
  e.best_possible = m->getBestPossibleObjValue();
  e.proven = m->isProvenOptimal();
  e.stopped = m->isSecondsLimitReached();
  return 0;
}

struct Triplet {
  int row;
  int col;
  double value;
};

}  // namespace

struct WdpMip::Model {
  // One column set per (bid, bundle) that fits an empty round.
  struct Cols {
    int x = -1;                  // -1: the bundle cannot win at all
    std::vector<uint32_t> from;  // count request: nodes that can hold res alone
    std::vector<int> y;          // parallel to from
    std::vector<uint32_t> sites; // count request with min_sites >= 2: site ids
    std::vector<int> z;          // parallel to sites
  };
  const Round& round;
  std::vector<std::vector<Cols>> cols;  // [bid][bundle]
  std::vector<uint32_t> site_of;
  std::vector<double> upper;  // column upper bounds as loaded
  double unit = 1;            // nano-credits per objective unit
  bool exact = true;          // coefficients are integers below 2^53
  OsiClpSolverInterface base;  // the loaded problem, never solved itself

  explicit Model(const Round& r) : round(r) {}

  void Build(uint32_t excluded);
  std::vector<Pick> Read(const double* sol) const;
};

void WdpMip::Model::Build(uint32_t excluded) {
  const Round& r = round;
  const size_t nn = r.nodes.size();
  site_of.resize(nn);
  {
    std::vector<std::string> sites;
    for (size_t v = 0; v < nn; ++v) {
      auto it = std::find(sites.begin(), sites.end(), r.nodes[v].site);
      site_of[v] = static_cast<uint32_t>(it - sites.begin());
      if (it == sites.end()) sites.push_back(r.nodes[v].site);
    }
  }
  auto fits_alone = [&](uint32_t v, const std::array<int64_t, kDims>& q, int64_t net_max) {
    if (net_max > r.nodes[v].capacity.net_max_kbps) return false;
    auto cap = Quantities(r.nodes[v].capacity);
    for (int d = 0; d < kDims; ++d) {
      if (q[d] > cap[d]) return false;
    }
    return true;
  };

  // Objective unit: the gcd of the limits, so coefficients are integers.
  // Otherwise (sums of limits / gcd at or above 2^53) the limits are scaled
  // to doubles and no solve is reported optimal.
  i128 g = 0, most = 0;
  for (const RoundBid& b : r.bids) {
    g = Gcd(static_cast<i128>(b.limit.nanos()), g);
    most = std::max(most, static_cast<i128>(b.limit.nanos()));
  }
  if (g <= 0) g = 1;
  i128 total = 0;
  for (const RoundBid& b : r.bids) total += static_cast<i128>(b.limit.nanos()) / g;
  exact = total < (static_cast<i128>(1) << 53);
  unit = exact ? static_cast<double>(g) : static_cast<double>(most) / 1099511627776.0;  // 2^40

  std::vector<double> obj, lower;
  std::vector<Triplet> t;
  std::vector<double> row_lo, row_hi;
  auto new_col = [&](double o, double hi) {
    obj.push_back(o);
    lower.push_back(0);
    upper.push_back(hi);
    return static_cast<int>(obj.size()) - 1;
  };
  auto new_row = [&](double lo, double hi) {
    row_lo.push_back(lo);
    row_hi.push_back(hi);
    return static_cast<int>(row_lo.size()) - 1;
  };
  // Capacity entries per node and resource: (column, quantity).
  std::vector<std::array<std::vector<std::pair<int, int64_t>>, kDims>> use(nn);

  cols.resize(r.bids.size());
  std::vector<int> integers;
  for (size_t i = 0; i < r.bids.size(); ++i) {
    const RoundBid& bid = r.bids[i];
    const double coef =
        exact ? static_cast<double>(static_cast<i128>(bid.limit.nanos()) / g)
              : static_cast<double>(static_cast<i128>(bid.limit.nanos())) / unit;
    cols[i].resize(bid.bundles.size());
    if (i == excluded) continue;  // the round without this bid: no columns
    std::vector<int> xs;
    for (size_t k = 0; k < bid.bundles.size(); ++k) {
      const Bundle& b = bid.bundles[k];
      Cols& c = cols[i][k];
      if (b.is_count()) {
        const auto q = Quantities(b.res);
        for (uint32_t v : b.from) {
          if (fits_alone(v, q, b.res.net_max_kbps)) c.from.push_back(v);
        }
        std::vector<uint32_t> sites;
        for (uint32_t v : c.from) {
          if (std::find(sites.begin(), sites.end(), site_of[v]) == sites.end()) {
            sites.push_back(site_of[v]);
          }
        }
        if (static_cast<int64_t>(c.from.size()) < b.count ||
            static_cast<int64_t>(sites.size()) < b.min_sites) {
          c.from.clear();
          continue;
        }
        c.x = new_col(-coef, 1);
        integers.push_back(c.x);
        const int eq = new_row(0, 0);  // sum y - count x = 0
        t.push_back({eq, c.x, -static_cast<double>(b.count)});
        for (uint32_t v : c.from) {
          const int y = new_col(0, 1);
          integers.push_back(y);
          c.y.push_back(y);
          t.push_back({eq, y, 1});
          const int link = new_row(-DBL_MAX, 0);  // y - x <= 0
          t.push_back({link, y, 1});
          t.push_back({link, c.x, -1});
          for (int d = 0; d < kDims; ++d) {
            if (q[d] > 0) use[v][d].push_back({y, q[d]});
          }
        }
        if (b.min_sites >= 2) {
          c.sites = sites;
          const int cover = new_row(0, DBL_MAX);  // sum z - min_sites x >= 0
          t.push_back({cover, c.x, -static_cast<double>(b.min_sites)});
          for (uint32_t s : sites) {
            const int z = new_col(0, 1);
            c.z.push_back(z);
            t.push_back({cover, z, 1});
            const int row = new_row(-DBL_MAX, 0);  // z - sum_{v in s} y <= 0
            t.push_back({row, z, 1});
            for (size_t j = 0; j < c.from.size(); ++j) {
              if (site_of[c.from[j]] == s) t.push_back({row, c.y[j], -1});
            }
          }
        }
      } else {
        // Items aggregated per node; the bundle is out if any node cannot hold it.
        std::vector<std::pair<uint32_t, std::array<int64_t, kDims>>> need;
        bool possible = true;
        for (const BundleItem& it : b.items) {
          if (it.res.net_max_kbps > r.nodes[it.node].capacity.net_max_kbps) possible = false;
          auto q = Quantities(it.res);
          auto f = std::find_if(need.begin(), need.end(),
                                [&](const auto& n) { return n.first == it.node; });
          if (f == need.end()) {
            need.push_back({it.node, q});
          } else {
            for (int d = 0; d < kDims; ++d) {
              if (__builtin_add_overflow(f->second[d], q[d], &f->second[d])) possible = false;
            }
          }
        }
        for (const auto& [v, q] : need) possible = possible && fits_alone(v, q, 0);
        if (!possible) continue;
        c.x = new_col(-coef, 1);
        integers.push_back(c.x);
        for (const auto& [v, q] : need) {
          for (int d = 0; d < kDims; ++d) {
            if (q[d] > 0) use[v][d].push_back({c.x, q[d]});
          }
        }
      }
      xs.push_back(c.x);
    }
    if (xs.size() >= 2) {
      const int xor_row = new_row(-DBL_MAX, 1);
      for (int x : xs) t.push_back({xor_row, x, 1});
    }
  }
  // Capacity rows; rows that can never bind are left out. A row is divided
  // by the gcd of its quantities and capacity (integral coefficients help
  // CBC's preprocessing and cuts), or by the capacity when they stay large.
  for (size_t v = 0; v < nn; ++v) {
    const auto cap = Quantities(r.nodes[v].capacity);
    for (int d = 0; d < kDims; ++d) {
      i128 sum = 0;
      i128 g = cap[d];
      for (const auto& e : use[v][d]) {
        sum += e.second;
        g = Gcd(e.second, g);
      }
      if (sum <= cap[d]) continue;
      double div = static_cast<double>(g);
      if (cap[d] / g > (static_cast<i128>(1) << 40)) div = static_cast<double>(cap[d]);
      const int row = new_row(-DBL_MAX, std::floor(static_cast<double>(cap[d]) / div));
      if (div == static_cast<double>(cap[d])) row_hi[row] = 1;
      for (const auto& [col, q] : use[v][d]) {
        t.push_back({row, col, static_cast<double>(q) / div});
      }
    }
  }

  // Column-major arrays for loadProblem.
  const int ncols = static_cast<int>(obj.size());
  std::stable_sort(t.begin(), t.end(), [](const Triplet& a, const Triplet& b) { return a.col < b.col; });
  std::vector<CoinBigIndex> start(ncols + 1, 0);
  std::vector<int> index;
  std::vector<double> value;
  index.reserve(t.size());
  value.reserve(t.size());
  for (const Triplet& e : t) {
    ++start[e.col + 1];
    index.push_back(e.row);
    value.push_back(e.value);
  }
  for (int c = 0; c < ncols; ++c) start[c + 1] += start[c];

  base.messageHandler()->setLogLevel(0);
  base.getModelPtr()->messageHandler()->setLogLevel(0);
  base.loadProblem(ncols, static_cast<int>(row_lo.size()), start.data(), index.data(),
                   value.data(), lower.data(), upper.data(), obj.data(), row_lo.data(),
                   row_hi.data());
  for (int c : integers) base.setInteger(c);
  // Minimise the negated welfare: CBC 2.10 sets a MIP start's cutoff on the
  // wrong side for a maximisation (coin-or/Cbc#296, fixed after 2.10).
  base.setObjSense(1);
}

std::vector<Pick> WdpMip::Model::Read(const double* sol) const {
  std::vector<Pick> picks(round.bids.size());
  for (size_t i = 0; i < cols.size(); ++i) {
    for (size_t k = 0; k < cols[i].size(); ++k) {
      const Cols& c = cols[i][k];
      if (c.x < 0 || sol[c.x] < 0.5) continue;
      if (picks[i].bundle != kNoBundle) {
        // Two bundles of one bid: not a solution (the caller's check refuses it).
        picks[i].bundle = static_cast<uint32_t>(k);
        continue;
      }
      picks[i].bundle = static_cast<uint32_t>(k);
      const Bundle& b = round.bids[i].bundles[k];
      if (b.is_count()) {
        for (size_t j = 0; j < c.from.size(); ++j) {
          if (sol[c.y[j]] > 0.5) picks[i].nodes.push_back(c.from[j]);
        }
      } else {
        for (const BundleItem& it : b.items) {
          if (std::find(picks[i].nodes.begin(), picks[i].nodes.end(), it.node) ==
              picks[i].nodes.end()) {
            picks[i].nodes.push_back(it.node);
          }
        }
      }
    }
  }
  return picks;
}

WdpMip::WdpMip(const Round& round) : m_(std::make_unique<Model>(round)) {
  std::lock_guard<std::mutex> lock(CbcMutex());
  m_->Build(kNoBid);
}

WdpMip::~WdpMip() {
  std::lock_guard<std::mutex> lock(CbcMutex());
  m_.reset();
}

size_t WdpMip::columns() const { return m_->upper.size(); }

WdpMip::Size WdpMip::Estimate(const Round& round) {
  Size z;
  for (const RoundBid& bid : round.bids) {
    z.nonzeros += bid.bundles.size();  // the XOR row
    for (const Bundle& b : bid.bundles) {
      z.columns += 1;
      if (b.is_count()) {
        // y and z per node (at most), and their rows: count, link, site, capacity.
        z.columns += 2 * b.from.size();
        z.nonzeros += 1 + (3 + kDims) * b.from.size() + 2 * b.from.size();
      } else {
        z.nonzeros += kDims * b.items.size();
      }
    }
  }
  return z;
}

core::Result<WdpResult> WdpMip::Solve(uint32_t excluded, const std::vector<Pick>* start,
                                      double seconds, double lp_seconds) {
  std::lock_guard<std::mutex> lock(CbcMutex());
  // The round without a bid is a model of its own, built without the bid's
  // columns: fixing them to 0 in the round's model let CBC 2.10 prove wrong
  // optima (its cuts on the fixed columns; tests/auction/wdp_mip_test.cc,
  // seed 2002), and VCG payments came out too low.
  std::unique_ptr<Model> without;
  if (excluded != kNoBid) {
    without = std::make_unique<Model>(m_->round);
    without->Build(excluded);
  }
  Model& m = without ? *without : *m_;
  WdpResult out;
  if (start) out.picks = *start;
  if (!start) out.picks.assign(m.round.bids.size(), Pick{});
  if (m.upper.empty()) {  // no bundle can win: nothing to solve
    out.picks.assign(m.round.bids.size(), Pick{});
    out.optimal = true;
    out.bound_nanos = 0;
    return out;
  }
  // Each solve runs on a fresh copy of the loaded model (a solved CBC model
  // keeps its incumbent and cutoff).
  OsiClpSolverInterface solver(m.base);
  solver.messageHandler()->setLogLevel(0);
  // The budget binds the root LP too (CBC's own limit is checked only
  // between nodes): Clp stops at its maximum seconds.
  const double deadline = CoinGetTimeOfDay() + std::max(seconds, 0.0);
  auto left = [&] { return deadline - CoinGetTimeOfDay(); };
  if (left() <= 0) return out;
  ClpSimplex* clp = solver.getModelPtr();
  clp->messageHandler()->setLogLevel(0);
  const double lp_left = std::min(left(), std::max(lp_seconds, 0.0));
  clp->setMaximumWallSeconds(lp_left);
  clp->setMaximumSeconds(lp_left);
  solver.initialSolve();
  if (!solver.isProvenOptimal()) {
    // Stopped by the budget (or abandoned): no bound, the start stands.
    out.bound_nanos = HUGE_VAL;
    return out;
  }
  out.bound_nanos = std::fabs(solver.getObjValue()) * m.unit;  // the LP relaxation
  if (left() <= 0) return out;
  // Branch and cut by CBC's standalone driver (CbcMain1: its tuned default
  // cuts and heuristics), on the solved LP, within what is left.
  CbcModel model(solver);
  CbcSolverUsefulData data;
  CbcMain0(model, data);
  model.setLogLevel(0);
  model.messageHandler()->setLogLevel(0);
  model.setUseElapsedTime(true);
  // No mini branch and bound inside Clp (ClpSimplex::fathom), which CbcMain1
  // turns on for models of fewer than 500 rows and columns: it crashed the
  // process (SIGSEGV in ClpSimplex::fastDual2, CBC 2.10.8) on a 50 x 15 CATS
  // round, once in about 40 runs of ten rounds. -999 is CbcMain1's "off".
  model.setFastNodeDepth(-999);
  if (start) {
    // Only the columns the start sets to 1 (CBC completes the rest with a
    // small branch and bound). Giving every column a value skips that and
    // saves root time, but with it CBC proved a wrong optimum on a round of
    // limits near 10^14 that differ by 10^5 (a VCG re-solve of
    // WdpMipTest.LimitsWithUnitGcdClearExactly, seed 22).
    std::vector<std::pair<std::string, double>> mipstart;
    std::vector<bool> seen(m.upper.size(), false);
    auto set = [&](int col) {
      if (seen[col]) return;
      seen[col] = true;
      mipstart.push_back({solver.getColName(col), 1.0});
    };
    for (size_t i = 0; i < start->size() && i < m.cols.size(); ++i) {
      const Pick& p = (*start)[i];
      if (p.bundle == kNoBundle || p.bundle >= m.cols[i].size()) continue;
      const auto& c = m.cols[i][p.bundle];
      if (c.x < 0) continue;
      set(c.x);
      for (size_t j = 0; j < c.from.size(); ++j) {
        if (std::find(p.nodes.begin(), p.nodes.end(), c.from[j]) == p.nodes.end()) continue;
        set(c.y[j]);
        for (size_t s = 0; s < c.sites.size(); ++s) {
          if (c.sites[s] == m.site_of[c.from[j]]) set(c.z[s]);
        }
      }
    }
    model.setMIPStart(mipstart);
  }
  const std::string secs = std::to_string(std::max(left(), 0.001));
  // An integral objective: a solution within 1 of the bound is optimal.
  const char* gap = m.exact ? "0.5" : "0";
  // CBC's preprocessing cost more than it saved on CATS-like rounds of 50 and
  // 100 bids, and so do its cut generators within a 1 s budget (mean welfare
  // at 50 x 15: 94% of the optimum with CbcMain1's default cuts, 98% without;
  // docs/perf/auction.md). With cuts on (and the objective rescaled), Clp
  // aborted a sweep of tiny rounds (ClpNonLinearCost.cpp:1064, `lowerValue
  // <= upperValue`), and an earlier version proved wrong optima with them.
  // With a start (ClearRound always gives one: the improvement search's
  // best), CBC's primal heuristics (feasibility pump, RINS, diving) rarely
  // beat it and their root time delays the proof: off, and pseudo-costs are
  // trusted after one strong branching (-trust 1). On 50 x 15 CATS rounds
  // started from the improvement search, the proof of one round took 0.63 s
  // instead of 1.07 s, and 25 x 10 rounds got VCG payments on 19 of 20
  // instead of 14 (docs/perf/auction.md, session 15). Without a start the
  // heuristics stay on, so a solve cut short still has an allocation.
  std::vector<const char*> argv = {"bourse", "-log",      "0",    "-preprocess", "off",
                                   "-cuts",  "off",       "-sec", secs.c_str(),  "-allowableGap",
                                   gap,      "-ratioGap", "0"};
  if (start) {
    for (const char* a : {"-heuristicsOnOff", "off", "-trustPseudoCosts", "1"}) argv.push_back(a);
  }
  argv.push_back("-solve");
  argv.push_back("-quit");
  Captured().clear();
  CbcMain1(static_cast<int>(argv.size()), argv.data(), model, &CaptureAfterSearch, data);
  const SearchEnd& end = Captured();
  if (!end.seen) return out;  // CbcMain1 stopped before the search: the start and the LP bound
  if (!end.solution.empty()) out.picks = m.Read(end.solution.data());
  // A proof: CBC's status, a search not cut short, and its bound within the
  // allowed gap of the solution's own objective (summed here: the searched
  // copy's getObjValue() can read 1e50 while it holds a solution).
  double objective = 0;
  const double* cost = solver.getObjCoefficients();
  for (size_t c = 0; c < end.solution.size(); ++c) {
    objective += cost[c] * std::round(end.solution[c]);  // costs sit on integer columns only
  }
  const double bound = end.best_possible;
  const bool proven = end.proven && !end.stopped && !end.solution.empty() &&
                      std::fabs(bound - objective) < 1;
  out.optimal = m.exact && proven;
  // The bound of a search cut short is not taken (the root LP's stands):
  // CbcMain1's copy reports its incumbent's value as the best possible when
  // stopped by the time limit, which read as gap 0 on 50 x 15 rounds whose
  // optimum is 12% higher.
  if (proven) out.bound_nanos = std::min(out.bound_nanos, std::fabs(bound) * m.unit);
  return out;
}

}  // namespace bourse::auction::internal
