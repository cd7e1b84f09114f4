// Float64 CPU reference of every FlexPrefill stage, written straight from the selection contract
// (docs/flexprefill.md): the oracle of the ctest tests and of the GPU harness in native/dev/.
// Layouts (dense, float values of the bf16 inputs): q [S][Hq][D], k and v [T][Hkv][D].
#pragma once
#include <cstdint>
#include <vector>

namespace fpref {

enum Pattern { Dense = 0, VerticalSlash = 1, QueryAware = 2 };

struct Problem {
    int S = 0, T = 0, Hq = 0, Hkv = 0, D = 0, bs = 128;
    double gamma = 0.95, tau = 0.1;
    int min_budget = 1024, max_budget = 0; // tokens; max_budget 0 = none
    const float* q = nullptr;
    const float* k = nullptr;
    const float* v = nullptr;

    int nb() const { return (T + bs - 1) / bs; }
    int r0() const { return (T - S) / bs; }
    int rows() const { return nb() - r0(); }
    int mb() const { return (min_budget + bs - 1) / bs; }
    int64_t causal() const;
    bool dense() const; // contract rule 1
    double qv(int s, int h, int d) const { return q[((int64_t)s * Hq + h) * D + d]; }
    double kv(int t, int h, int d) const { return k[((int64_t)t * Hkv + h) * D + d]; }
    double vv(int t, int h, int d) const { return v[((int64_t)t * Hkv + h) * D + d]; }
};

struct HeadSelection {
    Pattern pattern = Dense;
    double js = 0;
    int tv = 0, ts = 0, kv = 0, ks = 0; // cover counts and clamped block budgets
    int qa_entries = 0;
    std::vector<int> row_ptr, col_idx;  // CSR over rows r0..nb-1
    int64_t nnz() const { return row_ptr.empty() ? 0 : row_ptr.back(); }
};

struct Selection {
    std::vector<HeadSelection> heads;
};

// Rule 2: probe distributions of head h (length T each).
void probe(const Problem& p, int h, std::vector<double>& vertical, std::vector<double>& slash);
// Rule 3: smallest t >= 1 with the top-t sum >= gamma * sum (sorted descending, float64).
int cover_count(const std::vector<double>& x, double gamma);
// Rule 5: mask of the k highest scores, index 0 forced (+inf), ties -> smaller index.
std::vector<char> top_k_forced(const std::vector<double>& score, int k);
// Rule 7: sqrt(JS(p, q)), natural log, 0 ln 0 = 0.
double js_distance(const std::vector<double>& p, const std::vector<double>& q);
// Rules 1-10 for every head. When vertical/slash are given ([Hq][T]), they replace the probe (stage-level tests).
Selection select(const Problem& p, const std::vector<std::vector<double>>* vertical = nullptr,
                 const std::vector<std::vector<double>>* slash = nullptr);
// Rule 11 for head h, existing rows [row_begin, row_end) of its CSR (indices into the rows r0..nb-1):
// out [(positions of those rows that exist)][D], lse likewise; positions in order. Returns the number of queries.
int attention(const Problem& p, const HeadSelection& sel, int h, int row_begin, int row_end, std::vector<double>& out,
              std::vector<double>& lse);
// Dense causal CSR of the problem (every c <= r).
HeadSelection dense_selection(const Problem& p);

} // namespace fpref
