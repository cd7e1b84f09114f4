// Stage 4 on Hopper (contract rule 11): the block-sparse forward of sparse_attention.cuh with warpgroup MMA.
//
//   one CTA per (query block row r, head h), bs = 128 query rows, D = 128: two warpgroups of 64 rows each
//   walks the row's key blocks in ascending order, one whole 128-key block per step:
//     S = Q Kᵀ   wgmma m64n128k16 x 8, Q and K from shared memory (K-major, 128-byte swizzle, wgmma.cuh)
//     online softmax in fp32 on the S accumulators (exp2, log2(e)/sqrt(D) folded in), causal mask on the diagonal
//     block only (and the straddling ones when S < T)
//     O += P V   wgmma m64n128k16 x 8, P from registers (the S accumulators re-packed to bf16 A fragments, the same
//                layout as mma.sync's), V from shared memory read transposed (MN-major)
//   K/V blocks double-buffered with cp.async by all 256 threads (zero-filled past T), a proxy fence before wgmma
//   reads them. Scheduling, outputs and LSE as in sparse_attention.cuh: heavy rows first, heads fastest.
// Shared memory: Q 32 KB + 2 x (K 32 KB + V 32 KB) = 160 KB: one CTA per SM. The two warpgroups meet at a barrier
// every block (the K/V buffers are shared); softmax does not overlap the tensor cores (no producer warps, no
// ping-pong between the warpgroups).
// Versions (H200, docs/benchmarks.md; TFLOP/s on computed blocks, Llama-3.1-8B shapes):
//   v1 (this) 300-340 (dense mode 399 ms at 128K, cuDNN SDPA 242 ms, the mma.sync kernel 566 ms). The default is now
//      the warp-specialised TMA kernel (sparse_attention_sm90_tma.cuh, 325 ms); this one serves strides the TMA unit
//      cannot take (variant 3).
//   v2 S(t + 1) issued before block t's softmax, two S register sets, 3 stages: 308-341; ptxas C7515 serialised the
//      wgmma (O was rescaled while S(t + 1) was in flight).
//   v3 FA3's in-warpgroup order (S(t + 1) and P(t) V(t) back to back, softmax of t + 1 under P V), 3 stages, 214
//      registers, no serialisation: 305-329, dense mode 420 ms. Neither overlap paid off while every thread issued
//      the loads and two barriers a block kept the warpgroups in step: removed here; the TMA kernel does both.
#pragma once
#include "wgmma.cuh"
#include "wgmma_softmax.cuh"

namespace flexprefill::sm90 {

constexpr int kAttnThreads = 256;
constexpr int kTileBytes = 128 * 128 * 2;                 // one [128 x 128] bf16 operand tile
constexpr int kAttnSmem = 1024 + kTileBytes * 5;          // alignment slack, Q, 2 x (K, V)

__global__ void __launch_bounds__(kAttnThreads, 1) sparse_attention_kernel(AttnArgs a) {
#ifdef FP_SM90
    constexpr int BM = 128, D = 128;
    extern __shared__ unsigned char raw_smem[];
    unsigned char* qs = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(raw_smem) + 1023) & ~uintptr_t(1023));
    unsigned char* ks = qs + kTileBytes;     // buffer b at ks + 2b·kTileBytes, its V right after
    auto kbuf = [&](int b) { return ks + 2 * b * kTileBytes; };
    auto vbuf = [&](int b) { return ks + (2 * b + 1) * kTileBytes; };

    const int i = a.rows - 1 - (int)(blockIdx.x / a.Hq), h = blockIdx.x % a.Hq, kvh = h / a.G;
    const int r = a.r0 + i;
    const int first_pos = a.T - a.S;
    const int blk_pos = r * BM;
    const int q_lo = max(blk_pos, first_pos), q_hi = min(blk_pos + BM, a.T);
    const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;

    const KeyRow keys = key_row(a, h, i, r);
    const int n = keys.n;

    const __nv_bfloat16* kb = a.k + (int64_t)kvh * a.k_hs;
    const __nv_bfloat16* vb = a.v + (int64_t)kvh * a.v_hs;
    load_panels_async<BM, kAttnThreads>(qs, a.q + (int64_t)h * a.q_hs, blk_pos - first_pos, a.q_rs, q_lo - blk_pos,
                                        q_hi - blk_pos);
    auto load_kv = [&](int t, int b) {
        const int key0 = keys[t] * BM;
        const int valid = min(BM, a.T - key0);
        load_panels_async<BM, kAttnThreads>(kbuf(b), kb, key0, a.k_rs, 0, valid);
        load_panels_async<BM, kAttnThreads>(vbuf(b), vb, key0, a.v_rs, 0, valid);
    };
    load_kv(0, 0);
    cp_async_commit();

    float o[64];
#pragma unroll
    for (int x = 0; x < 64; x++) o[x] = 0.f;
    SoftmaxRows rows;
    const int pos[2] = {blk_pos + wg * 64 + warp * 16 + g, blk_pos + wg * 64 + warp * 16 + g + 8};
    const unsigned char* qa = qs + wg * 64 * kPanelRowBytes; // this warpgroup's 64 rows in each Q panel

    for (int t = 0; t < n; t++) {
        if (t + 1 < n) {
            load_kv(t + 1, (t + 1) & 1);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        fence_async_shared();
        __syncthreads();
        const unsigned char* kt = kbuf(t & 1);
        const unsigned char* vt = vbuf(t & 1);
        const int key0 = keys[t] * BM;

        float s[64];
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            const int off = (kk >> 2) * (BM * kPanelRowBytes) + (kk & 3) * 32;
            wgmma_m64n128k16_ss(s, smem_desc(qa + off, 16, 1024), smem_desc(kt + off, 16, 1024), kk > 0);
        }
        wgmma_commit();
        wgmma_wait<0>();
        fence_operands(s);

        float alpha[2];
        uint32_t pa[8][4];
        online_softmax(s, rows, alpha, a.scale_log2, key0 + BM - 1 > blk_pos + wg * 64, key0, t4, pos);
        rescale_and_pack(o, s, alpha, pa);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < 8; kk++)
            wgmma_m64n128k16_rs(o, pa[kk], smem_desc(vt + kk * 2048, BM * kPanelRowBytes, 1024));
        wgmma_commit();
        wgmma_wait<0>();
        fence_operands(o);
        __syncthreads(); // both warpgroups are done with this buffer before the next load overwrites it
    }

    store_rows(a, o, rows, pos, q_lo, q_hi, h, t4);
#endif
}

} // namespace flexprefill::sm90
