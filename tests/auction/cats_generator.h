// Seeded CATS-like combinatorial rounds for tests and benchmarks: one
// generator for every size, from the exhaustive comparisons' tiny rounds to
// the 10,000-bid benchmark.
//
//   BOURSE_ASSIGN_OR_RETURN(Round r, testkit::GenerateCatsRound(
//       {.bids = 100, .nodes = 30, .nodes_per_site = 4, .seed = 7}));
//   testkit::CatsParams only_counts{.bids = 25, .nodes = 10, .mix = {0, 0, 1}};
//
// After CATS (Leyton-Brown, Pearson and Shoham, "Towards a universal test
// suite for combinatorial auction algorithms", EC 2000), adapted to bourse's
// multi-unit nodes:
// - Nodes sit on a grid (row width ceil(sqrt(nodes))) whose edges are the four
//   neighbours plus, for one node in five, an edge to a random node (CATS'
//   "additional neighbour"). Sites are runs of `nodes_per_site` consecutive
//   nodes ("s0" = n0..n3, ...). Each node is of one of three classes (small,
//   large, slow-link: cpu, mem, disk, net_min capacities and a net_max
//   ceiling), so a request fits some nodes and not others.
// - Each node has a common value c in [1, 100]; each bid has a private
//   deviation p in [-c/2, c/2] per node it looks at. A bid asks, on every node
//   of a bundle, for the same request vector (a task shape: cpu, mem, disk,
//   net_min and a net_max ceiling), sometimes twice on one node. An item is
//   worth (c + p) times the request's share of a small node; a bundle is worth
//   the sum over its items times |bundle|^0.2 (complementarity).
// - Bid kinds, drawn by the `mix` weights:
//   regions:   bundles grown from a random node to random grid neighbours
//              (each further node with probability 0.6, at most 6);
//   arbitrary: the same growth, the next node drawn with probability
//              proportional to its summed random affinity to the bundle
//              (CATS' "arbitrary": a complete graph with random weights);
//              above 64 nodes, among 64 sampled candidates;
//   count:     "count of these nodes in >= min_sites sites": `from` is a
//              region (or, half the time, an arbitrary set) of count + 0-7
//              nodes, count 1-4, min_sites usually 1-3 (at most the sites
//              `from` spans, except 1 bundle in 20, which asks for more and
//              can never be allocated). Worth count times the mean node value,
//              times count^0.2, plus 10% per required site.
// - 1-3 XOR bundles per bid (probabilities 0.5, 0.3, 0.2): substitutes of the
//   same kind from another start (a count bid's alternative is a bundle of
//   items with probability 0.3); as a bid has one limit, an alternative is
//   kept only when it asks for other nodes than the bid's other bundles and
//   the bidder values it within 25% of the first bundle (CATS keeps
//   substitutes of similar value), tried 5 times.
// - The limit is the first bundle's value in nano-credits (never below 1), so
//   limits have no common divisor beyond chance.
// The same parameters give the same round on every machine: splitmix64 draws
// and integer arithmetic only (values in milli-credits times shares in
// millionths; |bundle|^0.2 from a table).
//
// Thread safety: a pure function.
#pragma once

#include <cstdint>
#include <string>

#include "auction/combinatorial.h"
#include "core/status.h"

namespace bourse::auction::testkit {

// Relative weights of the bid kinds (each >= 0, not all 0).
struct CatsMix {
  int regions = 1;
  int arbitrary = 1;
  int count = 1;
};

struct CatsParams {
  int bids = 100;          // >= 0
  int nodes = 30;          // >= 1
  int nodes_per_site = 4;  // >= 1
  uint64_t seed = 1;
  CatsMix mix;
};

// Errors: invalid_argument naming the parameter out of range.
core::Result<Round> GenerateCatsRound(const CatsParams& params);

// The parameters of the tiny round of a seed, small enough for the
// exhaustive reference (tests/auction/exhaustive.h): 1 to max_bids bids over
// 1-5 nodes in sites of 1-3 nodes, the bid kinds mixed or one kind alone.
CatsParams TinyCatsParams(uint64_t seed, int max_bids = 12);

// A readable dump of a round (nodes with sites and capacities, bids with
// limits and bundles), for failure messages: a failing seed's round can be
// rebuilt by hand from it.
std::string DescribeRound(const Round& round);

}  // namespace bourse::auction::testkit
