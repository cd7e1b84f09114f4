// GPU harness for every stage (llm.c dev/cuda style): fresh synthetic inputs, odd sizes, GQA 1/4/8, D 64/128,
// bs 64/128, chunks (S < T), outputs poisoned with NaN before each run, and each stage judged against the float64
// reference (reference/reference.cpp):
//   estimate   vertical / slash distributions: L1 distance to the reference probe
//   select     given the GPU's distributions, the reference's counts, budgets, pattern and CSR must be identical
//              (query-aware map entries may differ only at near-ties: reported); end to end (reference probe too)
//              mismatches must disappear under a 1e-5 relative change of gamma (a near-tie), else they fail
//   attention  max error against the float64 reference over the GPU's CSR <= 2x the error of the dense kernel against
//              the float64 dense reference on the same rows; LSE within 1e-3
//   split      flexprefill_select + flexprefill_attend equals flexprefill_forward bit for bit
//   invariant  gamma = 1 selects every causal block, and the output equals the dense mode bit for bit
//   kernels    D = 128, bs = 128: the default kernel (sm_90a on compute 9.0) within 2x the mma.sync kernel's error;
//              on compute 9.0 the sm_90a variants (2 stages, free-running) bit for bit the default
//   layouts    K/V as [T, Hkv, D] and as [Hkv, T, D] (the .NET cache; the TMA kernel orders its tensor map by stride)
// Usage: fp_validate [--quick | --medium]. Exit 0 all passed, 1 a check failed, 77 no CUDA device (ctest skip).
#include "../reference/reference.h"
#include "../tests/synthetic.h"
#include "harness.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Case {
    int S, T, Hq, Hkv, D, bs;
    float gamma, tau;
    int min_budget;
    bool kv_heads_outer = false; // K and V stored [Hkv, T, D] (the .NET KV cache's layout) instead of [T, Hkv, D]
};

struct Device {
    void *q = nullptr, *k = nullptr, *v = nullptr, *out = nullptr, *out2 = nullptr, *ws = nullptr;
    float* lse = nullptr;
    uint64_t ws_bytes = 0;
    ~Device() { for (void* p : {q, k, v, out, out2, ws, (void*)lse}) if (p) cudaFree(p); }
};

std::vector<uint16_t> to_bits(const std::vector<float>& x) {
    std::vector<uint16_t> b(x.size());
    for (size_t i = 0; i < x.size(); i++) b[i] = synth::to_bf16_bits(x[i]);
    return b;
}

flexprefill_params make_params(const Case& c, Device& d) {
    flexprefill_params p;
    flexprefill_params_init(&p);
    p.q = d.q; p.k = d.k; p.v = d.v; p.out = d.out; p.lse = d.lse;
    p.seq_q = c.S; p.seq_k = c.T; p.heads_q = c.Hq; p.heads_kv = c.Hkv; p.head_dim = c.D; p.block_size = c.bs;
    p.q_row_stride = p.out_row_stride = (int64_t)c.Hq * c.D; p.q_head_stride = p.out_head_stride = c.D;
    p.k_row_stride = p.v_row_stride = (int64_t)c.Hkv * c.D; p.k_head_stride = p.v_head_stride = c.D;
    p.lse_head_stride = c.S;
    p.gamma = c.gamma; p.tau = c.tau; p.min_budget = c.min_budget;
    return p;
}

void ensure_workspace(Device& d, flexprefill_params& p) {
    uint64_t need = 0;
    FP_OK(flexprefill_workspace_size(&p, &need));
    if (need > d.ws_bytes) {
        if (d.ws) CUDA_OK(cudaFree(d.ws));
        CUDA_OK(cudaMalloc(&d.ws, need));
        d.ws_bytes = need;
    }
    p.workspace = d.ws;
    p.workspace_bytes = d.ws_bytes;
}

// Runs forward (split: select, then attend) with NaN-poisoned outputs; returns out (as float) and lse.
void run_forward(flexprefill_params& p, Device& d, const Case& c, std::vector<float>& out, std::vector<float>& lse,
                 bool split = false) {
    const size_t n_out = (size_t)c.S * c.Hq * c.D;
    ensure_workspace(d, p);
    CUDA_OK(cudaMemset(p.out, 0xFF, n_out * 2));
    CUDA_OK(cudaMemset(d.lse, 0xFF, sizeof(float) * c.S * c.Hq));
    if (split) {
        FP_OK(flexprefill_select(&p));
        FP_OK(flexprefill_attend(&p));
    } else {
        FP_OK(flexprefill_forward(&p));
    }
    CUDA_OK(cudaDeviceSynchronize());
    std::vector<uint16_t> bits(n_out);
    CUDA_OK(cudaMemcpy(bits.data(), p.out, n_out * 2, cudaMemcpyDeviceToHost));
    out.resize(n_out);
    for (size_t i = 0; i < n_out; i++) out[i] = bf16_to_float(bits[i]);
    lse.resize((size_t)c.S * c.Hq);
    CUDA_OK(cudaMemcpy(lse.data(), d.lse, sizeof(float) * lse.size(), cudaMemcpyDeviceToHost));
}

fpref::HeadSelection read_head(const flexprefill_params& p, const fpref::Problem& prob, int h) {
    fpref::HeadSelection hs;
    hs.row_ptr.resize(prob.rows() + 1);
    hs.col_idx.resize(prob.causal());
    FP_OK(flexprefill_read_csr(&p, h, hs.row_ptr.data(), hs.col_idx.data(), (int64_t)hs.col_idx.size()));
    hs.col_idx.resize(hs.row_ptr.back());
    return hs;
}

// Max |gpu - ref| over the sampled rows of head h, for output and lse.
void attention_error(const fpref::Problem& prob, const fpref::HeadSelection& sel, int h, const std::vector<int>& rows,
                     const std::vector<float>& out, const std::vector<float>& lse, double& err_out, double& err_lse) {
    for (int i : rows) {
        std::vector<double> ro, rl;
        const int n = fpref::attention(prob, sel, h, i, i + 1, ro, rl);
        const int r = prob.r0() + i, first = std::max(r * prob.bs, prob.T - prob.S) - (prob.T - prob.S);
        for (int x = 0; x < n; x++) {
            const int s = first + x;
            for (int d = 0; d < prob.D; d++) {
                const double g = out[((size_t)s * prob.Hq + h) * prob.D + d];
                err_out = std::max(err_out, std::isfinite(g) ? std::fabs(g - ro[(size_t)x * prob.D + d]) : INFINITY);
            }
            const double gl = lse[(size_t)h * prob.S + s];
            err_lse = std::max(err_lse, std::isfinite(gl) ? std::fabs(gl - rl[x]) : INFINITY);
        }
    }
}

bool same_csr(const fpref::HeadSelection& a, const fpref::HeadSelection& b) {
    return a.row_ptr == b.row_ptr && a.col_idx == b.col_idx;
}

bool g_hopper = false; // compute capability 9.0: the sm_90a variants run

void run_case(const Case& c, uint64_t seed, bool end_to_end) {
    std::printf("case S=%d T=%d Hq=%d Hkv=%d D=%d bs=%d gamma=%.2f tau=%.2f min_budget=%d%s\n", c.S, c.T, c.Hq, c.Hkv,
                c.D, c.bs, c.gamma, c.tau, c.min_budget, c.kv_heads_outer ? " kv [H, T, D]" : "");
    const int before = g_failures;
    auto in = synth::make(c.S, c.T, c.Hq, c.Hkv, c.D, seed);
    Device d;
    const size_t nq = in.q.size(), nk = in.k.size();
    CUDA_OK(cudaMalloc(&d.q, nq * 2));
    CUDA_OK(cudaMalloc(&d.k, nk * 2));
    CUDA_OK(cudaMalloc(&d.v, nk * 2));
    CUDA_OK(cudaMalloc(&d.out, nq * 2));
    CUDA_OK(cudaMalloc(&d.out2, nq * 2));
    CUDA_OK(cudaMalloc(&d.lse, sizeof(float) * c.S * c.Hq));
    auto qb = to_bits(in.q), kb = to_bits(in.k), vb = to_bits(in.v);
    if (c.kv_heads_outer) {
        auto transpose = [&](const std::vector<uint16_t>& x) {
            std::vector<uint16_t> y(x.size());
            for (int t = 0; t < c.T; t++)
                for (int h = 0; h < c.Hkv; h++)
                    std::memcpy(&y[((size_t)h * c.T + t) * c.D], &x[((size_t)t * c.Hkv + h) * c.D], c.D * 2);
            return y;
        };
        kb = transpose(kb);
        vb = transpose(vb);
    }
    CUDA_OK(cudaMemcpy(d.q, qb.data(), nq * 2, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(d.k, kb.data(), nk * 2, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(d.v, vb.data(), nk * 2, cudaMemcpyHostToDevice));

    fpref::Problem prob;
    prob.S = c.S; prob.T = c.T; prob.Hq = c.Hq; prob.Hkv = c.Hkv; prob.D = c.D; prob.bs = c.bs;
    prob.gamma = c.gamma; prob.tau = c.tau; prob.min_budget = c.min_budget;
    prob.q = in.q.data(); prob.k = in.k.data(); prob.v = in.v.data();

    flexprefill_params p = make_params(c, d);
    if (c.kv_heads_outer) {
        p.k_row_stride = p.v_row_stride = c.D;
        p.k_head_stride = p.v_head_stride = (int64_t)c.T * c.D;
    }
    std::vector<float> out, lse;
    run_forward(p, d, c, out, lse);
    size_t bad = 0;
    for (float x : out) bad += !std::isfinite(x);
    for (float x : lse) bad += !std::isfinite(x);
    EXPECT(bad == 0, "%zu outputs not written or not finite", bad);

    std::vector<flexprefill_head_info> heads(c.Hq);
    FP_OK(flexprefill_read_heads(&p, heads.data()));
    int32_t dense = 0;
    FP_OK(flexprefill_is_dense(&p, &dense));
    EXPECT((dense == 1) == prob.dense(), "dense rule differs from the reference");
    std::vector<fpref::HeadSelection> gpu_sel(c.Hq);
    for (int h = 0; h < c.Hq; h++) gpu_sel[h] = read_head(p, prob, h);

    if (!dense) {
        // estimate
        std::vector<float> vert((size_t)c.Hq * c.T), slash((size_t)c.Hq * c.T);
        FP_OK(flexprefill_read_estimates(&p, vert.data(), slash.data()));
        std::vector<std::vector<double>> gv(c.Hq), gs(c.Hq);
        for (int h = 0; h < c.Hq; h++) {
            gv[h].assign(vert.begin() + (size_t)h * c.T, vert.begin() + (size_t)(h + 1) * c.T);
            gs[h].assign(slash.begin() + (size_t)h * c.T, slash.begin() + (size_t)(h + 1) * c.T);
        }
        double l1 = 0;
        for (int h : {0, c.Hq / 2, c.Hq - 1}) {
            std::vector<double> rv, rs;
            fpref::probe(prob, h, rv, rs);
            double a = 0, b = 0;
            for (int j = 0; j < c.T; j++) { a += std::fabs(rv[j] - gv[h][j]); b += std::fabs(rs[j] - gs[h][j]); }
            l1 = std::max(l1, std::max(a, b));
        }
        std::printf("  estimate: max L1(vertical, slash) vs float64 = %.3g\n", l1);
        EXPECT(l1 < 1e-4, "estimator L1 distance %.3g >= 1e-4", l1);

        // select, stage level: same distributions in
        fpref::Selection ref = fpref::select(prob, &gv, &gs);
        int exact = 0, qa_heads = 0, qa_near = 0;
        for (int h = 0; h < c.Hq; h++) {
            const auto& r = ref.heads[h];
            const auto& g = heads[h];
            const bool counts = g.vertical_count == r.tv && g.slash_count == r.ts && g.vertical_blocks == r.kv &&
                                g.slash_bands == r.ks && g.pattern == (int)r.pattern;
            EXPECT(counts, "head %d: gpu (tv %d ts %d kv %d ks %d pattern %d) vs ref (tv %d ts %d kv %d ks %d pattern %d), js %.5f vs %.5f",
                   h, g.vertical_count, g.slash_count, g.vertical_blocks, g.slash_bands, g.pattern, r.tv, r.ts, r.kv,
                   r.ks, (int)r.pattern, g.js_distance, r.js);
            EXPECT(std::fabs(g.js_distance - r.js) < 1e-4, "head %d: js %.6f vs %.6f", h, g.js_distance, r.js);
            qa_heads += r.pattern == fpref::QueryAware;
            const bool same = same_csr(gpu_sel[h], r);
            exact += same;
            if (!same) {
                if (r.pattern == fpref::QueryAware && counts && std::abs(g.qa_entries - r.qa_entries) <= 2) qa_near++;
                else EXPECT(false, "head %d: CSR differs (gpu nnz %lld, ref %lld)", h, (long long)gpu_sel[h].nnz(), (long long)r.nnz());
            }
            EXPECT(g.computed_blocks == gpu_sel[h].nnz() && g.causal_blocks == prob.causal(), "head %d: block counts", h);
        }
        std::printf("  select (stage): %d/%d heads identical CSR, %d query-aware, %d query-aware near-ties\n", exact,
                    c.Hq, qa_heads, qa_near);

        if (end_to_end) {
            fpref::Selection full = fpref::select(prob);
            int e2e = 0, ties = 0;
            fpref::Problem lo = prob, hi = prob;
            lo.gamma = prob.gamma * (1 - 1e-5);
            hi.gamma = std::min(1.0, prob.gamma * (1 + 1e-5));
            fpref::Selection sl, sh;
            bool perturbed = false;
            for (int h = 0; h < c.Hq; h++) {
                if (same_csr(gpu_sel[h], full.heads[h])) { e2e++; continue; }
                if (!perturbed) { sl = fpref::select(lo); sh = fpref::select(hi); perturbed = true; }
                if (same_csr(gpu_sel[h], sl.heads[h]) || same_csr(gpu_sel[h], sh.heads[h]) ||
                    (full.heads[h].pattern == fpref::QueryAware && heads[h].pattern == 2)) ties++;
                else EXPECT(false, "head %d: end-to-end CSR differs beyond a near-tie", h);
            }
            std::printf("  select (end to end): %d/%d heads identical, %d near-ties\n", e2e, c.Hq, ties);
        }
    } else {
        for (int h = 0; h < c.Hq; h++)
            EXPECT(heads[h].pattern == FLEXPREFILL_PATTERN_DENSE && heads[h].computed_blocks == prob.causal(),
                   "head %d: dense call reports pattern %d", h, heads[h].pattern);
    }

    // attention: sparse vs its float64 reference, dense kernel vs the dense reference, same rows
    std::vector<int> rows = {0};
    if (prob.rows() > 1) rows.push_back(prob.rows() - 1);
    if (prob.rows() > 2) rows.push_back(prob.rows() / 2);
    flexprefill_params pd = p;
    pd.mode = FLEXPREFILL_MODE_DENSE;
    pd.out = d.out2;
    std::vector<float> out_dense, lse_dense;
    run_forward(pd, d, c, out_dense, lse_dense);
    fpref::HeadSelection all = fpref::dense_selection(prob);
    double es = 0, esl = 0, ed = 0, edl = 0, es_last = 0, ed_last = 0, unused = 0;
    const std::vector<int> last = {prob.rows() - 1}; // the sparsest row: where sparse and dense differ most
    for (int h : {0, c.Hq / 2, c.Hq - 1}) {
        attention_error(prob, gpu_sel[h], h, rows, out, lse, es, esl);
        attention_error(prob, all, h, rows, out_dense, lse_dense, ed, edl);
        attention_error(prob, gpu_sel[h], h, last, out, lse, es_last, unused);
        attention_error(prob, all, h, last, out_dense, lse_dense, ed_last, unused);
    }
    std::printf("  attention: max error sparse %.3g (lse %.3g, last row %.3g), dense kernel %.3g (lse %.3g, last row %.3g)\n",
                es, esl, es_last, ed, edl, ed_last);
    EXPECT(es <= 2 * ed + 1e-6 && es_last <= 2 * ed_last + 1e-6 && esl < 1e-3 && edl < 1e-3,
           "attention error beyond 2x dense");

    // kernels: the default kernel (sm_90a wgmma on compute 9.0) against the mma.sync kernel (variant 2), each against
    // the float64 reference on the same rows: an absolute anchor, since the checks above compare the kernel with itself
    if (c.D == 128 && c.bs == 128) {
        flexprefill_params p2 = p, pd2 = pd;
        p2.variant = pd2.variant = 2;
        std::vector<float> out2, lse2, out_dense2, lse_dense2;
        run_forward(p2, d, c, out2, lse2);
        run_forward(pd2, d, c, out_dense2, lse_dense2);
        double es2 = 0, esl2 = 0, ed2 = 0, edl2 = 0;
        for (int h : {0, c.Hq / 2, c.Hq - 1}) {
            attention_error(prob, gpu_sel[h], h, rows, out2, lse2, es2, esl2);
            attention_error(prob, all, h, rows, out_dense2, lse_dense2, ed2, edl2);
        }
        std::printf("  kernels: default sparse %.3g / dense %.3g, mma.sync sparse %.3g / dense %.3g\n", es, ed, es2, ed2);
        EXPECT(es <= 2 * es2 + 1e-6 && ed <= 2 * ed2 + 1e-6 && esl < 1e-3 && esl2 < 1e-3,
               "default kernel error beyond 2x the mma.sync kernel's");
    }

    // sm_90a variants: 4 (2 stages) and 5 (free-running consumers) do the default's arithmetic in another order of
    // issue: bit for bit the same outputs
    if (g_hopper && c.D == 128 && c.bs == 128) {
        double diff = 0;
        for (int variant : {4, 5}) {
            flexprefill_params pv = p, pdv = pd;
            pv.variant = pdv.variant = variant;
            std::vector<float> ov, lv, odv, ldv;
            run_forward(pv, d, c, ov, lv);
            run_forward(pdv, d, c, odv, ldv);
            for (size_t x = 0; x < ov.size(); x++)
                diff = std::max({diff, (double)std::fabs(ov[x] - out[x]), (double)std::fabs(odv[x] - out_dense[x])});
        }
        std::printf("  variants: 2 stages and free-running vs default, max |diff| %.3g\n", diff);
        EXPECT(diff == 0.0, "an sm_90a variant differs from the default kernel");
    }

    // split: select then attend is forward, bit for bit (the .NET backend looks at the density in between)
    {
        std::vector<float> out_split, lse_split;
        run_forward(p, d, c, out_split, lse_split, true);
        double diff = 0;
        for (size_t i = 0; i < out.size(); i++) diff = std::max(diff, (double)std::fabs(out_split[i] - out[i]));
        for (size_t i = 0; i < lse.size(); i++) diff = std::max(diff, (double)std::fabs(lse_split[i] - lse[i]));
        std::printf("  split: select + attend vs forward, max |diff| = %.3g\n", diff);
        EXPECT(diff == 0.0, "select + attend differs from forward");
    }

    // invariant: every block selected == dense, bit for bit
    if (!dense) {
        flexprefill_params pa = p;
        pa.gamma = 1.f; pa.tau = 0.f; pa.min_budget = 0;
        int32_t still_dense = 0;
        FP_OK(flexprefill_is_dense(&pa, &still_dense));
        if (!still_dense) {
            std::vector<float> out_all, lse_all;
            run_forward(pa, d, c, out_all, lse_all);
            std::vector<flexprefill_head_info> hall(c.Hq);
            FP_OK(flexprefill_read_heads(&pa, hall.data()));
            int full_heads = 0;
            for (auto& x : hall) full_heads += x.computed_blocks == x.causal_blocks;
            double diff = 0;
            for (size_t i = 0; i < out_all.size(); i++) diff = std::max(diff, (double)std::fabs(out_all[i] - out_dense[i]));
            std::printf("  invariant: gamma 1 -> %d/%d heads select every block, max |out - dense| = %.3g\n", full_heads,
                        c.Hq, diff);
            EXPECT(full_heads == c.Hq && diff == 0.0, "every-block selection differs from dense");
        }
    }
    std::printf("  %s\n", g_failures == before ? "ok" : "FAILED");
}

} // namespace

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    const bool medium = argc > 1 && std::strcmp(argv[1], "--medium") == 0; // sizes the CPU emulator gets through
    if (no_cuda_device()) return 77;
    cudaDeviceProp prop{};
    CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    std::printf("%s, %s\n", prop.name, flexprefill_version());
    g_hopper = prop.major == 9 && prop.minor == 0;
    std::vector<Case> cases;
    if (quick) {
        cases = {{97, 97, 4, 1, 128, 128, 0.95f, 0.1f, 1024},
                 {1025, 1025, 8, 2, 128, 128, 0.9f, 0.1f, 128},
                 {700, 1500, 8, 2, 64, 64, 0.95f, 0.1f, 128}};
    } else if (medium) {
        cases = {{1025, 1025, 8, 8, 128, 128, 0.95f, 0.1f, 128},
                 {1300, 1300, 8, 1, 128, 128, 0.9f, 0.1f, 256},
                 {1700, 1700, 8, 2, 128, 64, 0.95f, 0.0f, 128},
                 {900, 2100, 8, 2, 128, 128, 0.95f, 0.1f, 128},
                 {1111, 1111, 4, 4, 64, 128, 0.9f, 0.1f, 128}};
    } else {
        cases = {{97, 97, 32, 8, 128, 128, 0.95f, 0.1f, 1024},
                 {1025, 1025, 32, 8, 128, 128, 0.9f, 0.1f, 128},
                 {1025, 1025, 8, 8, 128, 128, 0.95f, 0.1f, 128},
                 {3000, 3000, 32, 4, 128, 128, 0.95f, 0.1f, 1024},
                 {4097, 4097, 32, 8, 128, 128, 0.95f, 0.1f, 1024},
                 {4097, 4097, 32, 8, 128, 128, 0.9f, 0.0f, 1024},
                 {2500, 2500, 16, 2, 64, 64, 0.9f, 0.1f, 256},
                 {2500, 2500, 16, 16, 64, 128, 0.95f, 0.1f, 256},
                 {1300, 4100, 32, 8, 128, 128, 0.95f, 0.1f, 512},
                 {1300, 4100, 32, 8, 128, 128, 0.95f, 0.1f, 512, true},
                 {4097, 4097, 32, 8, 128, 128, 0.9f, 0.1f, 1024, true},
                 {1000, 3000, 8, 1, 128, 64, 0.95f, 0.1f, 256}};
    }
    uint64_t seed = 1234;
    for (const Case& c : cases) run_case(c, seed++, c.T <= 4200);
    std::printf("%s: %d check(s) failed\n", g_failures ? "FAILED" : "PASSED", g_failures);
    return g_failures ? 1 : 0;
}
