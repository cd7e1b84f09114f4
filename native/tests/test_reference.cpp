// CPU tests of the float64 reference: hand-built known answers for each rule and invariants on odd sizes and GQA.
#include "../reference/reference.h"
#include "check.h"
#include "synthetic.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace fpref;

TEST(cover_count_takes_the_smallest_prefix_that_reaches_gamma) {
    const std::vector<double> x = {0.5, 0.125, 0.25, 0.125};
    CHECK(cover_count(x, 0.75) == 2);  // 0.5 + 0.25 reaches 0.75 exactly
    CHECK(cover_count(x, 0.76) == 3);
    CHECK(cover_count(x, 1.0) == 4);
    CHECK(cover_count(x, 0.1) == 1);
}

TEST(top_k_forces_index_zero_and_breaks_ties_by_smaller_index) {
    const std::vector<double> s = {0.1, 0.9, 0.5, 0.9};
    auto a = top_k_forced(s, 2);
    CHECK(a[0] && a[1] && !a[2] && !a[3]);
    auto b = top_k_forced(s, 3);
    CHECK(b[0] && b[1] && !b[2] && b[3]);
    auto c = top_k_forced(s, 0);
    CHECK(!c[0] && !c[1] && !c[2] && !c[3]);
}

TEST(js_distance_is_zero_for_equal_and_sqrt_ln2_for_disjoint_distributions) {
    CHECK_NEAR(js_distance({0.25, 0.75}, {0.25, 0.75}), 0.0, 1e-15);
    CHECK_NEAR(js_distance({1.0, 0.0}, {0.0, 1.0}), std::sqrt(std::log(2.0)), 1e-15);
}

TEST(dense_fallback_follows_rule_1) {
    Problem p;
    p.bs = 128; p.min_budget = 0;
    p.S = p.T = 256; CHECK(p.dense());
    p.S = p.T = 257; CHECK(!p.dense());
    p.min_budget = 1024;
    p.S = p.T = 1024; CHECK(p.dense());
    p.S = p.T = 1025; CHECK(!p.dense());
    p.min_budget = 1000; // rounds up to 8 blocks
    p.S = p.T = 1024; CHECK(p.dense());
}

TEST(probe_over_identical_keys_is_uniform_over_the_visible_keys) {
    const int T = 300, D = 8, P = 64;
    std::vector<float> q(T * D), k(T * D, 0.25f), v(T * D, 1.f);
    for (int i = 0; i < T * D; i++) q[i] = (float)((i * 37) % 11) / 7.f;
    Problem p;
    p.S = p.T = T; p.Hq = p.Hkv = 1; p.D = D; p.bs = P;
    p.q = q.data(); p.k = k.data(); p.v = v.data();
    std::vector<double> vert, slash;
    probe(p, 0, vert, slash);
    double sv = 0, ss = 0;
    for (int j = 0; j < T; j++) {
        double expect = 0, expect_s = 0;
        for (int i = 0; i < P; i++) {
            const int pos = T - P + i;
            if (j <= pos) expect += 1.0 / (pos + 1) / P;
            if (j <= pos) expect_s += 1.0 / (pos + 1) / P; // offset j exists for every row with pos >= j
        }
        CHECK_NEAR(vert[j], expect, 1e-12);
        CHECK_NEAR(slash[j], expect_s, 1e-12);
        sv += vert[j];
        ss += slash[j];
    }
    CHECK_NEAR(sv, 1.0, 1e-12);
    CHECK_NEAR(ss, 1.0, 1e-12);
}

// Hand-built distributions through the stage-level entry: vertical mass on key 0 only, slash mass 0.32 spread over
// band 0 and 0.68 over band 1: T_s = 64 + 54 -> K_s = 2 -> bands {0, 1} -> block diagonals {0, 1, 2}.
TEST(a_selected_band_selects_its_two_block_diagonals) {
    const int T = 640, bs = 64, D = 8;
    std::vector<float> q(T * D, 0.f), k(T * D, 0.f), v(T * D, 0.f);
    Problem p;
    p.S = p.T = T; p.Hq = p.Hkv = 1; p.D = D; p.bs = bs; p.gamma = 0.95; p.tau = 0; p.min_budget = 0;
    p.q = q.data(); p.k = k.data(); p.v = v.data();
    std::vector<std::vector<double>> vert(1, std::vector<double>(T, 0.0)), slash(1, std::vector<double>(T, 0.0));
    vert[0][0] = 1.0;
    for (int o = 0; o < 64; o++) slash[0][o] = 0.32 / 64;
    for (int o = 64; o < 128; o++) slash[0][o] = 0.68 / 64;
    Selection sel = select(p, &vert, &slash);
    const HeadSelection& h = sel.heads[0];
    CHECK(h.pattern == VerticalSlash);
    CHECK(h.tv == 1 && h.kv == 1);
    CHECK(h.ts == 118 && h.ks == 2);
    for (int r = 0; r < p.nb(); r++) {
        std::vector<int> expect;
        for (int c = 0; c <= r; c++)
            if (c == 0 || r - c <= 2) expect.push_back(c);
        std::vector<int> got(h.col_idx.begin() + h.row_ptr[r], h.col_idx.begin() + h.row_ptr[r + 1]);
        CHECK(got == expect);
    }
}

static void check_csr_invariants(const Problem& p, const HeadSelection& h) {
    CHECK((int)h.row_ptr.size() == p.rows() + 1);
    for (int i = 0; i < p.rows(); i++) {
        const int r = p.r0() + i;
        bool has_diag = false;
        for (int j = h.row_ptr[i]; j < h.row_ptr[i + 1]; j++) {
            CHECK(h.col_idx[j] >= 0 && h.col_idx[j] <= r);
            if (j > h.row_ptr[i]) CHECK(h.col_idx[j] > h.col_idx[j - 1]);
            has_diag |= h.col_idx[j] == r;
        }
        CHECK(has_diag);
        if (h.kv >= 1) CHECK(h.row_ptr[i + 1] > h.row_ptr[i] && h.col_idx[h.row_ptr[i]] == 0); // sink block
    }
    CHECK(h.nnz() <= p.causal());
}

TEST(selection_holds_the_csr_invariants_on_odd_sizes_and_gqa) {
    for (int hkv : {8, 2, 1})
        for (int T : {1025, 1100}) {
            const int Hq = 8, D = 32;
            auto in = synth::make(T, T, Hq, hkv, D, 7 + T + hkv);
            Problem p;
            p.S = p.T = T; p.Hq = Hq; p.Hkv = hkv; p.D = D; p.bs = 64; p.min_budget = 128; p.gamma = 0.9; p.tau = 0.1;
            p.q = in.q.data(); p.k = in.k.data(); p.v = in.v.data();
            Selection sel = select(p);
            int qa = 0;
            for (auto& h : sel.heads) {
                check_csr_invariants(p, h);
                CHECK(h.pattern != Dense);
                CHECK(h.kv >= p.mb() && h.ks >= p.mb());
                qa += h.pattern == QueryAware;
            }
            (void)qa;
        }
}

TEST(a_chunk_after_a_prefix_selects_only_its_own_rows) {
    const int T = 1500, S = 700, Hq = 4, D = 32;
    auto in = synth::make(S, T, Hq, 2, D, 11);
    Problem p;
    p.S = S; p.T = T; p.Hq = Hq; p.Hkv = 2; p.D = D; p.bs = 64; p.min_budget = 128; p.gamma = 0.95; p.tau = 0.1;
    p.q = in.q.data(); p.k = in.k.data(); p.v = in.v.data();
    CHECK(p.r0() == 12 && p.rows() == 12);
    Selection sel = select(p);
    for (auto& h : sel.heads) check_csr_invariants(p, h);
    std::vector<double> out, lse;
    const int n = attention(p, sel.heads[1], 1, 0, p.rows(), out, lse);
    CHECK(n == S); // every query of the chunk, none of the prefix
}

TEST(sparse_attention_with_every_block_equals_a_direct_dense_softmax) {
    const int T = 200, Hq = 4, Hkv = 2, D = 16;
    auto in = synth::make(T, T, Hq, Hkv, D, 3);
    Problem p;
    p.S = p.T = T; p.Hq = Hq; p.Hkv = Hkv; p.D = D; p.bs = 64;
    p.q = in.q.data(); p.k = in.k.data(); p.v = in.v.data();
    HeadSelection all = dense_selection(p);
    for (int h = 0; h < Hq; h++) {
        std::vector<double> out, lse;
        attention(p, all, h, 0, p.rows(), out, lse);
        for (int s = 0; s < T; s += 37) {
            // direct: softmax over keys 0..s
            std::vector<double> sc(s + 1);
            double mx = -1e300, sum = 0;
            for (int j = 0; j <= s; j++) {
                double a = 0;
                for (int d = 0; d < D; d++) a += p.qv(s, h, d) * p.kv(j, h / 2, d);
                sc[j] = a / std::sqrt((double)D);
                mx = std::max(mx, sc[j]);
            }
            for (double x : sc) sum += std::exp(x - mx);
            CHECK_NEAR(lse[s], mx + std::log(sum), 1e-12);
            for (int d = 0; d < D; d++) {
                double o = 0;
                for (int j = 0; j <= s; j++) o += std::exp(sc[j] - mx) / sum * p.vv(j, h / 2, d);
                CHECK_NEAR(out[(size_t)s * D + d], o, 1e-12);
            }
        }
    }
}

TEST(attention_of_constant_values_returns_the_constant_for_any_selection) {
    const int T = 333, D = 8;
    auto in = synth::make(T, T, 2, 1, D, 5);
    std::fill(in.v.begin(), in.v.end(), 0.375f);
    Problem p;
    p.S = p.T = T; p.Hq = 2; p.Hkv = 1; p.D = D; p.bs = 64; p.min_budget = 64; p.tau = 0.1;
    p.q = in.q.data(); p.k = in.k.data(); p.v = in.v.data();
    Selection sel = select(p);
    std::vector<double> out, lse;
    attention(p, sel.heads[0], 0, 0, p.rows(), out, lse);
    for (double o : out) CHECK_NEAR(o, 0.375, 1e-12);
}

int main() { return check::run_all(); }
