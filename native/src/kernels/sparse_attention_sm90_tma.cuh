// Stage 4 on Hopper, warp-specialised (contract rule 11): the block-sparse forward of sparse_attention_sm90.cuh with
// its loads on the TMA unit and the two consumer warpgroups taking turns on the tensor cores.
//
//   one CTA per (query block row r, head h), bs = 128 query rows, D = 128, three warpgroups:
//   producer (warpgroup 0, one thread, 40 registers): TMA loads of Q once and of each listed key block's K and V into
//     a STAGES-deep ring, [128 x 64]-element boxes with the 128-byte swizzle (the two-panel layout of wgmma.cuh); a
//     `full` mbarrier per stage counts the bytes in, an `empty` one (8 consumer warps) frees the stage.
//   consumers (warpgroups 1 and 2, 64 query rows each, 232 registers): per key block t, S = Q Kᵀ and O += P V as
//     wgmma m64n128k16 (P from registers), fp32 online softmax, causal mask on the diagonal block only. In its turn
//     (named barriers: the two warpgroups alternate) a consumer issues S(t + 1) and P(t) V(t) back to back; outside
//     it, it does block t + 1's softmax while the other consumer's products run.
//   Scheduling, outputs, LSE and the zero rows of a partial or straddling block as in sparse_attention.cuh (TMA fills
//   rows outside the tensor with zeros).
// Shared memory: Q 32 KB + STAGES x (K 32 KB + V 32 KB) + barriers; 3 stages (the default) take 226 KB of the
// 227 KB a CTA may have. Tensor maps are built per call on the host (pipeline.cu); strides the TMA unit cannot take
// (not multiples of 16 bytes) fall back to the cp.async kernel.
// Versions (H200, Llama-3.1-8B shapes, docs/benchmarks.md; TFLOP/s on computed blocks, dense mode at 128K):
//   v1 the loop's last step inside it (S(t + 1) issued under a branch): ptxas C7520 serialised the wgmma: 289-309,
//      478 ms (the cp.async kernel: 399 ms).
//   v2 the last step peeled, 2 stages: 338-447, 315-325 ms with ping-pong (variant 4); free-running consumers 388 ms.
//   v3 3 stages: 416-556, 264 ms (cuDNN SDPA: 250 ms). With 2 a stage is refilled only once both consumers are
//      done with it, one block period before it is needed: too little to hide a 64 KB load.
//   v4 (this) the softmax with the scale folded into the exponent's FFMA (wgmma_softmax.cuh): 442-581, 255 ms
//      (SDPA 249 ms in the same run).
//   Not kept (session 5 call 1, commit 5809a98): query-head pairs, one K/V load for two heads of a group (a CTA per
//   (row, pair, half of the rows), consumer c computing head 2j + c over the union of the pair's blocks): 4% slower
//   than single heads in dense mode, where both compute the same blocks (274 vs 264 ms), and 1.5-1.8x slower on the
//   structured inputs from 16K, whose unions hold 1.5-1.9x the blocks. The group's heads already share K/V tiles
//   through L2: their CTAs run side by side.
#pragma once
#include "tma.cuh"
#include "wgmma_softmax.cuh"

namespace flexprefill::sm90 {

constexpr int kTmaThreads = 384;
constexpr int kTmaTileBytes = 128 * 128 * 2;
template <int STAGES>
constexpr int tma_smem_bytes() { return 1024 + kTmaTileBytes * (1 + 2 * STAGES) + 64 * 8; }

#ifndef FLEXPREFILL_EMULATE
// Q, K and V as 3-D tensor maps over (d, head, row) or, when the head stride is the larger one (a [heads, rows, D]
// cache), over (d, row, head): heads_outer says which, per tensor.
struct TmaMaps {
    CUtensorMap q, k, v;
    int q_heads_outer, k_heads_outer, v_heads_outer;
};

#ifdef FP_SM90
// Box of 64 d-values x 128 rows from `row`, of head `head`, starting at d = d0.
__device__ __forceinline__ void tma_rows(void* dst, const CUtensorMap* map, bool heads_outer, int d0, int head, int row,
                                         uint64_t* bar) {
    if (heads_outer) tma_load_3d(dst, map, d0, row, head, bar);
    else tma_load_3d(dst, map, d0, head, row, bar);
}
#endif

// PINGPONG: the consumers take turns issuing their products (named barriers); false lets them run free (benchmarks).
// STAGES: depth of the K/V ring.
template <bool PINGPONG, int STAGES>
__global__ void __launch_bounds__(kTmaThreads, 1) sparse_attention_tma_kernel(const __grid_constant__ TmaMaps maps, AttnArgs a) {
#ifdef FP_SM90
    constexpr int BM = 128, D = 128, PANEL = BM * kPanelRowBytes;
    extern __shared__ unsigned char raw_smem[];
    unsigned char* qs = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(raw_smem) + 1023) & ~uintptr_t(1023));
    unsigned char* ring = qs + kTmaTileBytes; // stage b: K at ring + 2b·tile, V after it
    uint64_t* bars = reinterpret_cast<uint64_t*>(ring + 2 * STAGES * kTmaTileBytes);
    uint64_t* qbar = bars;                    // Q landed
    uint64_t* full = bars + 1;                // [STAGES]: stage's K and V landed
    uint64_t* empty = bars + 1 + STAGES;      // [STAGES]: both consumers are done with the stage
    auto kbuf = [&](int b) { return ring + 2 * b * kTmaTileBytes; };
    auto vbuf = [&](int b) { return ring + (2 * b + 1) * kTmaTileBytes; };

    const int i = a.rows - 1 - (int)(blockIdx.x / a.Hq), h = blockIdx.x % a.Hq, kvh = h / a.G;
    const int r = a.r0 + i;
    const int first_pos = a.T - a.S;
    const int blk_pos = r * BM;
    const int q_lo = max(blk_pos, first_pos), q_hi = min(blk_pos + BM, a.T);
    const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;

    const KeyRow keys = key_row(a, h, i, r);
    const int n = keys.n;

    if (threadIdx.x == 0) {
        mbar_init(qbar, 1);
        for (int b = 0; b < STAGES; b++) { mbar_init(full + b, 1); mbar_init(empty + b, 8); }
        mbar_fence_init();
    }
    __syncthreads();

    if (wg == 0) {
        regs_decrease<40>();
        if (threadIdx.x != 0) return;
        mbar_arrive_expect_tx(qbar, kTmaTileBytes);
        for (int p = 0; p < 2; p++) tma_rows(qs + p * PANEL, &maps.q, maps.q_heads_outer, 64 * p, h, blk_pos - first_pos, qbar);
        for (int t = 0; t < n; t++) {
            const int b = t % STAGES;
            if (t >= STAGES) mbar_wait(empty + b, (t / STAGES - 1) & 1);
            mbar_arrive_expect_tx(full + b, 2 * kTmaTileBytes);
            const int key0 = keys[t] * BM;
            for (int p = 0; p < 2; p++) {
                tma_rows(kbuf(b) + p * PANEL, &maps.k, maps.k_heads_outer, 64 * p, kvh, key0, full + b);
                tma_rows(vbuf(b) + p * PANEL, &maps.v, maps.v_heads_outer, 64 * p, kvh, key0, full + b);
            }
        }
        return;
    }

    regs_increase<232>();
    const int c = wg - 1, row0 = blk_pos + 64 * c; // consumer 0 or 1: query rows 64c .. 64c + 63 of the block
    auto my_turn = [&] { named_sync(1 + c, 256); };
    auto their_turn = [&] { named_arrive(2 - c, 256); };
    if (PINGPONG && c == 1) their_turn(); // consumer 0 goes first

    float o[64];
#pragma unroll
    for (int x = 0; x < 64; x++) o[x] = 0.f;
    SoftmaxRows rows;
    const int pos[2] = {row0 + warp * 16 + g, row0 + warp * 16 + g + 8};
    const unsigned char* qa = qs + c * 64 * kPanelRowBytes; // this consumer's 64 rows in each Q panel

    float s[64], alpha[2];
    uint32_t pa[8][4];
    auto issue_qk = [&](int t) {
        const unsigned char* kt = kbuf(t % STAGES);
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            const int off = (kk >> 2) * PANEL + (kk & 3) * 32;
            wgmma_m64n128k16_ss(s, smem_desc(qa + off, 16, 1024), smem_desc(kt + off, 16, 1024), kk > 0);
        }
        wgmma_commit();
    };
    auto issue_pv = [&](int t) {
        const unsigned char* vt = vbuf(t % STAGES);
#pragma unroll
        for (int kk = 0; kk < 8; kk++) wgmma_m64n128k16_rs(o, pa[kk], smem_desc(vt + kk * 2048, PANEL, 1024));
        wgmma_commit();
    };
    // Block t's softmax (the mask only on a block reaching past this consumer's first row).
    auto softmax = [&](int t) {
        const int key0 = keys[t] * BM;
        online_softmax(s, rows, alpha, a.scale_log2, key0 + BM - 1 > row0, key0, t4, pos);
    };

    mbar_wait(qbar, 0);
    mbar_wait(full, 0);
    if constexpr (PINGPONG) my_turn();
    wgmma_fence();
    issue_qk(0);
    if constexpr (PINGPONG) their_turn();
    wgmma_wait<0>();
    fence_operands(s);
    softmax(0);
    rescale_and_pack(o, s, alpha, pa);
    // Step t (all but the last) enters with P(t) in pa and O rescaled for it; the last step has no S(t + 1). The loop
    // and the last step are written apart so that no wgmma is issued under a branch (ptxas serialises those, C7520).
    for (int t = 0; t + 1 < n; t++) {
        mbar_wait(full + (t + 1) % STAGES, ((t + 1) / STAGES) & 1);
        if constexpr (PINGPONG) my_turn();
        wgmma_fence();
        issue_qk(t + 1);
        issue_pv(t);
        if constexpr (PINGPONG) their_turn();
        wgmma_wait<1>();
        fence_operands(s);
        softmax(t + 1);
        wgmma_wait<0>();
        fence_operands(o);
        if (lane == 0) mbar_arrive(empty + t % STAGES);
        rescale_and_pack(o, s, alpha, pa);
    }
    if constexpr (PINGPONG) my_turn();
    wgmma_fence();
    issue_pv(n - 1);
    if (PINGPONG && c == 0) their_turn(); // consumer 1's last turn hands over to no one
    wgmma_wait<0>();
    fence_operands(o);

    store_rows(a, o, rows, pos, q_lo, q_hi, h, t4);
#endif
}
#endif

} // namespace flexprefill::sm90
