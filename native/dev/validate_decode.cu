// GPU harness of decode attention (flexprefill_decode), llm.c dev/cuda style: fresh synthetic inputs, odd T, GQA
// 1/4/7/8/20 (20: two 16-head chunks per KV head), D 64/128, outputs poisoned with NaN before each run:
//   accuracy   max error against the float64 reference (reference.cpp's attention of the last position over every
//              key) <= 2x the error of the dense bf16 kernel (flexprefill_forward, dense mode, S = 1) on the same
//              inputs; LSE within 1e-3; nothing left unwritten
//   layouts    K/V as the .NET KV cache holds them ([Hkv, capacity, D]: row stride D, head stride capacity * D) and
//              as prefill takes them ([T, Hkv, D]) give the same bits
//   pipeline   every cp.async ring depth (variant 2, 3, 4) gives the same bits (same tiles, same order)
// then, on a GPU and without --quick, a timing table for Llama-3.1-8B's shape (Hq 32, Hkv 8, D 128): decode time vs
// T per pipeline depth and the K/V bandwidth reached (inputs rotated through >= 256 MiB so that L2 does not serve them).
// Usage: fp_validate_decode [--quick]. Exit 0 all passed, 1 a check failed, 77 no CUDA device (ctest skip).
#include "../reference/reference.h"
#include "../tests/synthetic.h"
#include "harness.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

struct Case {
    int T, Hq, Hkv, D;
};

// A device buffer freed at scope exit.
struct Buffer {
    void* p = nullptr;
    size_t bytes = 0;
    explicit Buffer(size_t n) : bytes(n) { if (n) CUDA_OK(cudaMalloc(&p, n)); }
    ~Buffer() { if (p) cudaFree(p); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
};

// K or V [T][Hkv][D] (synth's layout) as bf16 bits in the KV cache's [Hkv][capacity][D].
std::vector<uint16_t> cache_layout(const std::vector<float>& x, int T, int Hkv, int D, int capacity) {
    std::vector<uint16_t> b((size_t)Hkv * capacity * D, 0);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < Hkv; h++)
            for (int d = 0; d < D; d++)
                b[((size_t)h * capacity + t) * D + d] = synth::to_bf16_bits(x[((size_t)t * Hkv + h) * D + d]);
    return b;
}

std::vector<uint16_t> bits(const std::vector<float>& x) {
    std::vector<uint16_t> b(x.size());
    for (size_t i = 0; i < x.size(); i++) b[i] = synth::to_bf16_bits(x[i]);
    return b;
}

void upload(Buffer& dst, const std::vector<uint16_t>& src) {
    CUDA_OK(cudaMemcpy(dst.p, src.data(), src.size() * 2, cudaMemcpyHostToDevice));
}

flexprefill_params decode_params(const Case& c, const Buffer& q, const Buffer& k, const Buffer& v, const Buffer& out,
                                 const Buffer& lse, int capacity) {
    flexprefill_params p;
    flexprefill_params_init(&p);
    p.q = q.p; p.k = k.p; p.v = v.p; p.out = out.p; p.lse = static_cast<float*>(lse.p);
    p.seq_q = 1; p.seq_k = c.T; p.heads_q = c.Hq; p.heads_kv = c.Hkv; p.head_dim = c.D;
    p.q_row_stride = p.out_row_stride = (int64_t)c.Hq * c.D; p.q_head_stride = p.out_head_stride = c.D;
    p.lse_head_stride = 1;
    if (capacity > 0) { // [Hkv, capacity, D]
        p.k_row_stride = p.v_row_stride = c.D;
        p.k_head_stride = p.v_head_stride = (int64_t)capacity * c.D;
    } else {            // [T, Hkv, D]
        p.k_row_stride = p.v_row_stride = (int64_t)c.Hkv * c.D;
        p.k_head_stride = p.v_head_stride = c.D;
    }
    return p;
}

struct Result {
    std::vector<float> out, lse;
};

// Runs p with NaN-poisoned outputs (decode, or the dense prefill kernel when dense) and reads them back.
Result run(flexprefill_params p, const Case& c, Buffer& ws, bool dense) {
    uint64_t need = 0;
    if (dense) FP_OK(flexprefill_workspace_size(&p, &need));
    else FP_OK(flexprefill_decode_workspace_size(&p, &need));
    if (need > ws.bytes) {
        std::printf("  workspace of %llu bytes needed, %zu held\n", (unsigned long long)need, ws.bytes);
        std::exit(1);
    }
    p.workspace = need ? ws.p : nullptr;
    p.workspace_bytes = need ? ws.bytes : 0;
    const size_t n_out = (size_t)c.Hq * c.D;
    CUDA_OK(cudaMemset(p.out, 0xFF, n_out * 2));
    CUDA_OK(cudaMemset(p.lse, 0xFF, sizeof(float) * c.Hq));
    FP_OK(dense ? flexprefill_forward(&p) : flexprefill_decode(&p));
    CUDA_OK(cudaDeviceSynchronize());
    std::vector<uint16_t> b(n_out);
    CUDA_OK(cudaMemcpy(b.data(), p.out, n_out * 2, cudaMemcpyDeviceToHost));
    Result r;
    r.out.resize(n_out);
    for (size_t i = 0; i < n_out; i++) r.out[i] = bf16_to_float(b[i]);
    r.lse.resize(c.Hq);
    CUDA_OK(cudaMemcpy(r.lse.data(), p.lse, sizeof(float) * c.Hq, cudaMemcpyDeviceToHost));
    return r;
}

// Max |r - ref| over every head (output, lse); a value that is not finite counts as infinite.
void errors(const Result& r, const std::vector<std::vector<double>>& ref_out, const std::vector<double>& ref_lse,
            int D, double& err_out, double& err_lse) {
    err_out = err_lse = 0;
    for (size_t h = 0; h < ref_out.size(); h++) {
        for (int d = 0; d < D; d++) {
            const double g = r.out[h * D + d];
            err_out = std::max(err_out, std::isfinite(g) ? std::fabs(g - ref_out[h][d]) : INFINITY);
        }
        const double gl = r.lse[h];
        err_lse = std::max(err_lse, std::isfinite(gl) ? std::fabs(gl - ref_lse[h]) : INFINITY);
    }
}

bool same_bits(const Result& a, const Result& b) {
    return std::memcmp(a.out.data(), b.out.data(), a.out.size() * 4) == 0 &&
           std::memcmp(a.lse.data(), b.lse.data(), a.lse.size() * 4) == 0;
}

void run_case(const Case& c, uint64_t seed) {
    const int before = g_failures;
    auto in = synth::make(1, c.T, c.Hq, c.Hkv, c.D, seed);
    const int capacity = (c.T + 37 + 7) / 8 * 8; // a cache with room left, as while decoding
    const std::vector<uint16_t> qb = bits(in.q);
    Buffer q(qb.size() * 2), out((size_t)c.Hq * c.D * 2), lse(sizeof(float) * c.Hq);
    Buffer kc((size_t)c.Hkv * capacity * c.D * 2), vc(kc.bytes), kp(in.k.size() * 2), vp(in.v.size() * 2);
    upload(q, qb);
    upload(kc, cache_layout(in.k, c.T, c.Hkv, c.D, capacity));
    upload(vc, cache_layout(in.v, c.T, c.Hkv, c.D, capacity));
    upload(kp, bits(in.k));
    upload(vp, bits(in.v));

    flexprefill_params p = decode_params(c, q, kc, vc, out, lse, capacity);
    uint64_t ws_bytes = 0, dense_bytes = 0;
    FP_OK(flexprefill_decode_workspace_size(&p, &ws_bytes));
    flexprefill_params pd = decode_params(c, q, kp, vp, out, lse, 0);
    pd.mode = FLEXPREFILL_MODE_DENSE;
    pd.block_size = 64;
    pd.variant = 2; // the mma.sync kernel on every GPU
    FP_OK(flexprefill_workspace_size(&pd, &dense_bytes));
    Buffer ws(std::max(ws_bytes, dense_bytes));
    std::printf("case T=%d Hq=%d Hkv=%d D=%d: workspace %llu bytes\n", c.T, c.Hq, c.Hkv, c.D,
                (unsigned long long)ws_bytes);

    fpref::Problem prob;
    prob.S = 1; prob.T = c.T; prob.Hq = c.Hq; prob.Hkv = c.Hkv; prob.D = c.D; prob.bs = 128;
    prob.q = in.q.data(); prob.k = in.k.data(); prob.v = in.v.data();
    const fpref::HeadSelection all = fpref::dense_selection(prob);
    std::vector<std::vector<double>> ref_out(c.Hq);
    std::vector<double> ref_lse(c.Hq);
    for (int h = 0; h < c.Hq; h++) {
        std::vector<double> rl;
        fpref::attention(prob, all, h, 0, 1, ref_out[h], rl);
        ref_lse[h] = rl[0];
    }

    const Result dense = run(pd, c, ws, true);
    double ed = 0, edl = 0;
    errors(dense, ref_out, ref_lse, c.D, ed, edl);
    Result first;
    for (int variant : {0, 2, 3, 4}) {
        flexprefill_params pv = p;
        pv.variant = variant;
        const Result r = run(pv, c, ws, false);
        double e = 0, el = 0;
        errors(r, ref_out, ref_lse, c.D, e, el);
        if (variant == 0) {
            first = r;
            std::printf("  accuracy: max error decode %.3g (lse %.3g), dense kernel %.3g (lse %.3g)\n", e, el, ed, edl);
            EXPECT(e <= 2 * ed + 1e-6 && el < 1e-3 && edl < 1e-3, "decode error beyond 2x the dense kernel's");
        } else {
            EXPECT(same_bits(r, first), "variant %d (%d stages) differs from the default", variant, variant);
        }
    }
    const Result prefill_layout = run(decode_params(c, q, kp, vp, out, lse, 0), c, ws, false);
    EXPECT(same_bits(prefill_layout, first), "K/V as [T, Hkv, D] give other bits than the cache layout");
    std::printf("  %s\n", g_failures == before ? "ok" : "FAILED");
}

#ifndef FLEXPREFILL_EMULATE
// Decode time vs T for Llama-3.1-8B's attention (Hq 32, Hkv 8, D 128, one layer), K/V in the cache layout.
void timing_table() {
    const int Hq = 32, Hkv = 8, D = 128, reps = 50;
    std::printf("\ndecode attention, Hq %d Hkv %d D %d, one layer (x32 for a Llama-3.1-8B token)\n", Hq, Hkv, D);
    std::printf("| T | splits | 2 stages us | 3 stages us | 4 stages us | best GB/s | x32 layers ms |\n");
    std::printf("|---|---|---|---|---|---|---|\n");
    for (int T : {1024, 4096, 16384, 32768, 65536, 131072}) {
        const Case c{T, Hq, Hkv, D};
        const size_t kv_bytes = (size_t)Hkv * T * D * 2;
        const int copies = (int)std::max<size_t>(1, ((size_t)256 << 20) / (2 * kv_bytes) + 1);
        std::vector<uint16_t> host((size_t)Hkv * T * D);
        synth::Rng rng(T);
        for (auto& x : host) x = synth::to_bf16_bits(synth::round_bf16(rng.uniform() - 0.5f)); // cheaper than normal()
        std::vector<Buffer*> ks, vs;
        for (int i = 0; i < copies; i++) {
            ks.push_back(new Buffer(kv_bytes));
            vs.push_back(new Buffer(kv_bytes));
            upload(*ks.back(), host);
            upload(*vs.back(), host);
        }
        Buffer q((size_t)Hq * D * 2), out((size_t)Hq * D * 2), lse(sizeof(float) * Hq);
        CUDA_OK(cudaMemcpy(q.p, host.data(), q.bytes, cudaMemcpyHostToDevice));
        flexprefill_params p = decode_params(c, q, *ks[0], *vs[0], out, lse, T);
        uint64_t ws_bytes = 0;
        FP_OK(flexprefill_decode_workspace_size(&p, &ws_bytes));
        Buffer ws(ws_bytes);
        p.workspace = ws.p;
        p.workspace_bytes = ws_bytes;
        const int splits = ws_bytes ? (int)(ws_bytes / (sizeof(float) * Hq * (D + 1))) : 1; // an upper bound
        double us[3], best = 1e30;
        cudaEvent_t e0, e1;
        CUDA_OK(cudaEventCreate(&e0));
        CUDA_OK(cudaEventCreate(&e1));
        for (int stages = 2; stages <= 4; stages++) {
            p.variant = stages;
            for (int i = 0; i < 3; i++) FP_OK(flexprefill_decode(&p)); // warm-up
            CUDA_OK(cudaEventRecord(e0));
            for (int i = 0; i < reps; i++) {
                p.k = ks[i % copies]->p;
                p.v = vs[i % copies]->p;
                FP_OK(flexprefill_decode(&p));
            }
            CUDA_OK(cudaEventRecord(e1));
            CUDA_OK(cudaEventSynchronize(e1));
            float ms = 0;
            CUDA_OK(cudaEventElapsedTime(&ms, e0, e1));
            us[stages - 2] = 1000.0 * ms / reps;
            best = std::min(best, us[stages - 2]);
        }
        std::printf("| %d | <= %d | %.1f | %.1f | %.1f | %.0f | %.2f |\n", T, splits, us[0], us[1], us[2],
                    2.0 * kv_bytes / (best * 1e3), 32 * best / 1000);
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
        for (Buffer* b : ks) delete b;
        for (Buffer* b : vs) delete b;
    }
}
#endif

} // namespace

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    if (no_cuda_device()) return 77;
    cudaDeviceProp prop{};
    CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    std::printf("%s (%d SMs), %s\n", prop.name, prop.multiProcessorCount, flexprefill_version());
    std::vector<Case> cases;
    if (quick) { // sizes the CPU emulator gets through: one split (T <= 256) up to five (T 1025, one SM)
        for (int T : {1, 77, 300, 1025})
            for (int D : {64, 128})
                for (int G : {1, 4, 8}) cases.push_back({T, 2 * G, 2, D});
        cases.push_back({333, 40, 2, 64}); // G 20: two chunks of query heads per KV head
        cases.push_back({600, 28, 4, 128}); // G 7 (Qwen2.5-7B)
    } else {
        for (int T : {1, 77, 4096, 131072})
            for (int D : {64, 128})
                for (int G : {1, 4, 8}) cases.push_back({T, 2 * G, 2, D});
        cases.push_back({4097, 40, 2, 64});
        cases.push_back({32771, 28, 4, 128});
        cases.push_back({131072, 32, 8, 128}); // Llama-3.1-8B
    }
    uint64_t seed = 77;
    for (const Case& c : cases) run_case(c, seed++);
    std::printf("%s: %d check(s) failed\n", g_failures ? "FAILED" : "PASSED", g_failures);
#ifndef FLEXPREFILL_EMULATE
    if (!quick && !g_failures) timing_table();
#endif
    return g_failures ? 1 : 0;
}
