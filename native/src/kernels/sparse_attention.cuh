// Stage 4, block-sparse attention (contract rule 11): FlashAttention-2 style forward over each head's CSR.
//
//   one CTA per (query block row r, head h), BM = bs query rows (WARPS = bs / 16 warps, 16 rows each)
//   walks the row's key blocks in ascending order as 64-key tiles: S = Q Kᵀ (bf16 mma.sync m16n8k16 from ldmatrix
//   fragments), online softmax in fp32 (exp2 with log2(e)/sqrt(D) folded in), O += P V (P re-packed from the S
//   accumulators into A fragments, V through ldmatrix.trans); K/V tiles double-buffered with cp.async (zero-filled
//   past T). The causal mask (key position > query position -> -inf, absolute positions) is applied only on tiles
//   that reach past the first query position of the block, i.e. the diagonal block (and the straddling ones when
//   S < T); tiles wholly above every query of the block are skipped.
//   out bf16 [S, Hq, D] (rows of this call only), lse fp32 natural log [Hq, S].
//   dense = true: every block c <= r (no CSR): the dense baseline and the rule-1 fallback.
// Scheduling: blockIdx.x enumerates rows from the last (the most blocks) to the first, heads fastest, so heavy rows
// start first and the G query heads of a KV head run side by side (their K/V tiles are shared through L2).
//
// GQA: each CTA already reuses a K/V tile for 128 query rows; one tile load for several heads of a group (query-head
// pairs over the union of their blocks) was measured on the sm_90a TMA kernel and lost in every row (its Versions).
// The G heads of a group run as adjacent CTAs on the same row and share K/V through L2.
// Versions (bit-identical to the dense mode when every block is selected; H200 timings in docs/benchmarks.md):
//   v1 per-head CTAs, GQA sharing through L2 ordering only (this file). MIN_BLOCKS = 1 (variant 1): 172 registers,
//      no spills, one CTA (8 warps) per SM; MIN_BLOCKS = 2 (variant 2): 128 registers, ~100 bytes of spills, two CTAs
//      per SM (ptxas, sm_80, D 128, bs 128); 237-247 TFLOP/s on computed blocks, dense mode 566 ms at 128K.
#pragma once
#include "common.cuh"

namespace flexprefill {

struct AttnArgs {
    const __nv_bfloat16* q;
    const __nv_bfloat16* k;
    const __nv_bfloat16* v;
    __nv_bfloat16* out;
    float* lse;
    int64_t q_rs, q_hs, k_rs, k_hs, v_rs, v_hs, o_rs, o_hs, lse_hs;
    int S, T, G, Hq, bs, r0, rows;
    const int32_t* row_ptr; // [Hq][rows + 1] or null (dense)
    const int32_t* col_idx; // [Hq][causal]
    int64_t causal;
    float scale_log2;
};

// Row i (block row r) of head h's key blocks, ascending: its CSR columns, or every block 0..r when dense (no CSR).
struct KeyRow {
    const int32_t* cols;
    int n;
    __device__ __forceinline__ int operator[](int j) const { return cols ? cols[j] : j; }
};

__device__ __forceinline__ KeyRow key_row(const AttnArgs& a, int h, int i, int r) {
    if (!a.row_ptr) return {nullptr, r + 1};
    const int32_t* rp = a.row_ptr + (int64_t)h * (a.rows + 1);
    return {a.col_idx + (int64_t)h * a.causal + rp[i], rp[i + 1] - rp[i]};
}

template <int D, int WARPS>
constexpr int attn_smem_bytes() { return (WARPS * 16 * D + 4 * 64 * D) * 2; }

template <int D, int WARPS, int MIN_BLOCKS>
__global__ void __launch_bounds__(WARPS * 32, MIN_BLOCKS) sparse_attention_kernel(AttnArgs a) {
    constexpr int THREADS = WARPS * 32, BM = WARPS * 16, TPB = BM / 64; // tiles per key block (bs == BM)
    FP_DYNAMIC_SMEM(smem);
    __nv_bfloat16* qtile = reinterpret_cast<__nv_bfloat16*>(smem);
    __nv_bfloat16* ktile = qtile + BM * D; // 2 x 64 x D
    __nv_bfloat16* vtile = ktile + 2 * 64 * D;

    const int i = a.rows - 1 - (int)(blockIdx.x / a.Hq), h = blockIdx.x % a.Hq, kvh = h / a.G;
    const int r = a.r0 + i;
    const int first_pos = a.T - a.S;                  // position of query row 0
    const int blk_pos = r * BM;                       // position of tile row 0
    const int q_lo = max(blk_pos, first_pos), q_hi = min(blk_pos + BM, a.T);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;

    const KeyRow keys = key_row(a, h, i, r);
    const int n = keys.n;
    const int last_c = keys[n - 1];
    const int ntiles = (n - 1) * TPB + min(TPB, (q_hi - 1 - last_c * BM) / 64 + 1);

    const __nv_bfloat16* kb = a.k + (int64_t)kvh * a.k_hs;
    const __nv_bfloat16* vb = a.v + (int64_t)kvh * a.v_hs;
    load_tile_async<D, THREADS>(qtile, a.q + (int64_t)h * a.q_hs, blk_pos - first_pos, a.q_rs, BM, q_lo - blk_pos,
                                q_hi - blk_pos);
    auto load_kv = [&](int t, int buf) {
        const int key0 = keys[t / TPB] * BM + (t % TPB) * 64;
        const int valid = min(64, a.T - key0);
        load_tile_async<D, THREADS>(ktile + buf * 64 * D, kb, key0, a.k_rs, 64, 0, valid);
        load_tile_async<D, THREADS>(vtile + buf * 64 * D, vb, key0, a.v_rs, 64, 0, valid);
    };
    load_kv(0, 0);
    cp_async_commit();

    float o[D / 8][4];
#pragma unroll
    for (int d = 0; d < D / 8; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
    const int pos[2] = {blk_pos + warp * 16 + g, blk_pos + warp * 16 + g + 8};

    for (int t = 0; t < ntiles; t++) {
        if (t + 1 < ntiles) {
            load_kv(t + 1, (t + 1) & 1);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const int buf = t & 1;
        const int key0 = keys[t / TPB] * BM + (t % TPB) * 64;
        float s[8][4];
        warp_qk<D>(s, qtile, ktile + buf * 64 * D, warp, lane);
        const bool need_mask = key0 + 63 > blk_pos;
#pragma unroll
        for (int e = 0; e < 2; e++) {
            float tmax = -INFINITY;
#pragma unroll
            for (int nn = 0; nn < 8; nn++)
#pragma unroll
                for (int c = 0; c < 2; c++) {
                    float x = s[nn][2 * e + c] * a.scale_log2;
                    if (need_mask && key0 + nn * 8 + 2 * t4 + c > pos[e]) x = -INFINITY;
                    s[nn][2 * e + c] = x;
                    tmax = fmaxf(tmax, x);
                }
            tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
            tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
            const float mnew = fmaxf(m[e], tmax);
            const float msafe = mnew == -INFINITY ? 0.f : mnew;
            const float alpha = exp2f(m[e] - msafe);
            m[e] = mnew;
            float sum = 0.f;
#pragma unroll
            for (int nn = 0; nn < 8; nn++)
#pragma unroll
                for (int c = 0; c < 2; c++) {
                    const float p = exp2f(s[nn][2 * e + c] - msafe);
                    s[nn][2 * e + c] = p;
                    sum += p;
                }
            l[e] = l[e] * alpha + sum;
#pragma unroll
            for (int d = 0; d < D / 8; d++) { o[d][2 * e] *= alpha; o[d][2 * e + 1] *= alpha; }
        }
        const __nv_bfloat16* vt = vtile + buf * 64 * D;
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            const uint32_t pa[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                                    pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                    pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int dp = 0; dp < D / 16; dp++) {
                uint32_t b0, b1, b2, b3;
                ldmatrix_x4_trans(b0, b1, b2, b3,
                                  vt + tile_offset<D>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, dp * 2 + (lane >> 4)));
                mma_bf16(o[2 * dp], pa, b0, b1);
                mma_bf16(o[2 * dp + 1], pa, b2, b3);
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int e = 0; e < 2; e++) {
        l[e] += __shfl_xor_sync(0xffffffffu, l[e], 1);
        l[e] += __shfl_xor_sync(0xffffffffu, l[e], 2);
        const bool exists = pos[e] >= q_lo && pos[e] < q_hi;
        if (!exists) continue;
        const float inv = 1.f / l[e];
        const int64_t srow = pos[e] - first_pos;
        __nv_bfloat16* dst = a.out + srow * a.o_rs + (int64_t)h * a.o_hs + 2 * t4;
#pragma unroll
        for (int d = 0; d < D / 8; d++)
            *reinterpret_cast<__nv_bfloat162*>(dst + d * 8) =
                __floats2bfloat162_rn(o[d][2 * e] * inv, o[d][2 * e + 1] * inv);
        if (a.lse && t4 == 0) a.lse[(int64_t)h * a.lse_hs + srow] = (m[e] + log2f(l[e])) * kLn2;
    }
}

} // namespace flexprefill
