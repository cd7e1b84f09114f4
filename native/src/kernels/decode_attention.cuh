// Decode attention (flash-decoding): the one new query of each query head (position T - 1, so no mask) over all T
// cached keys, batch 1.
//
//   q   [Hq, D] bf16 (q + h*q_hs)          k, v [T, Hkv, D] bf16 (k + t*k_rs + kvh*k_hs)
//   out [Hq, D] bf16 (out + h*o_hs)        lse  [Hq] fp32 natural log (lse + h*lse_hs), optional
//
// decode_attention_kernel: grid (Hkv * chunks, nsplit), one warp per CTA. A CTA takes the query heads of one KV head
// (a chunk of at most 16 of its G heads: the M = 16 rows of one mma.sync m16n8k16, rows past G zero) and one split of
// split_len keys, and streams them as 64-key K/V tiles through a STAGES-deep cp.async ring (zero-filled past the
// split's end, masked to -inf in the scores): every K/V row is read once for all the heads of the chunk (the GQA
// shared load). S = Q Kᵀ and O += P V on bf16 tensor cores with fp32 accumulators, online softmax in fp32 with
// exp2 and log2(e)/sqrt(D) folded in (the same tile arithmetic as sparse_attention.cuh). With one split the CTA writes
// out and lse itself; otherwise it writes its normalised partial o and its log2-sum-exp into the workspace.
// decode_combine_kernel: one CTA per query head merges the splits, o = Σ_s w_s o_s with w_s = 2^(lse_s - lse),
// 16-byte loads of the partials.
//
// Why tensor cores although G ≤ 16 rows leave most of each MMA idle: a 64-key tile costs a warp 128 mma.sync and 72
// ldmatrix at D = 128, where CUDA cores would need some 3,700 instructions per lane for G = 4 (8-wide dot products,
// 16-lane shuffle reductions, conversions: an estimate), enough to make a 128K decode issue-bound, not memory-bound. One warp per CTA keeps the pipeline's barriers at __syncwarp; smem decides how many fit
// per SM (D 128: 2 stages 67 KB, 3 per SM; 3 stages 100 KB, 2 per SM; D 64: half) and the split count (api.cpp) aims at about 8
// CTAs per SM so the last wave is short.
//
// Versions: v1 (this), validated on native/emu and on an H200 against the float64 reference (dev/validate_decode.cu,
// T 1..131072, G 1-20, D 64/128; compute-sanitizer clean). H200, Hq 32 / Hkv 8 / D 128, one layer (docs/benchmarks.md):
// 2 / 3 / 4 stages 182 / 236 / 458 µs at T = 128K (2,952 GB/s with 2, of the 4.8 TB/s roofline's 112 µs), 56 / 67 /
// 121 µs at 32K, ~19 µs at 4K and below (launch-bound): the estimate held, 2 stages (3 warps per SM) is the default.
// Next: TMA bulk loads instead of per-lane cp.async, a CTA that shares one tile between two warps splitting D for
// P V, and the combine folded into the last CTA of each head.
#pragma once
#include "common.cuh"

namespace flexprefill {

struct DecodeArgs {
    const __nv_bfloat16* q;
    const __nv_bfloat16* k;
    const __nv_bfloat16* v;
    __nv_bfloat16* out;
    float* lse;                   // may be null
    int64_t q_hs, k_rs, k_hs, v_rs, v_hs, o_hs, lse_hs;
    int T, G, chunks, split_len, nsplit;
    float scale_log2;             // log2(e) / sqrt(D)
    float* part_o;                // [Hq][nsplit][D], each split's o / l (nsplit > 1)
    float* part_lse;              // [Hq][nsplit], each split's m + log2(l) (log2 units)
};

constexpr int kDecodeRows = 16; // query heads per CTA: the M of one m16n8k16 MMA

template <int D, int STAGES>
constexpr int decode_smem_bytes() { return (kDecodeRows * D + STAGES * 2 * 64 * D) * 2; }

template <int D, int STAGES>
__global__ void __launch_bounds__(32) decode_attention_kernel(DecodeArgs a) {
    static_assert(STAGES >= 2, "the ring needs a tile in flight while one is read");
    FP_DYNAMIC_SMEM(smem);
    __nv_bfloat16* qtile = reinterpret_cast<__nv_bfloat16*>(smem);
    __nv_bfloat16* ktile = qtile + kDecodeRows * D; // STAGES x 64 x D
    __nv_bfloat16* vtile = ktile + STAGES * 64 * D;

    const int kvh = blockIdx.x / a.chunks, chunk = blockIdx.x % a.chunks, split = blockIdx.y;
    const int h0 = kvh * a.G + chunk * kDecodeRows, rows = min(kDecodeRows, a.G - chunk * kDecodeRows);
    const int j0 = split * a.split_len, j1 = min(a.T, j0 + a.split_len);
    const int ntiles = (j1 - j0 + 63) / 64;
    const int lane = threadIdx.x, g = lane / 4, t4 = lane % 4;

    const __nv_bfloat16* kb = a.k + (int64_t)kvh * a.k_hs;
    const __nv_bfloat16* vb = a.v + (int64_t)kvh * a.v_hs;
    // query rows of the chunk, zero rows past its last head; committed with tile 0
    load_tile_async<D, 32>(qtile, a.q + (int64_t)h0 * a.q_hs, 0, a.q_hs, kDecodeRows, 0, rows);
    auto load_kv = [&](int t) {
        const int key0 = j0 + t * 64, buf = t % STAGES;
        load_tile_async<D, 32>(ktile + buf * 64 * D, kb, key0, a.k_rs, 64, 0, j1 - key0);
        load_tile_async<D, 32>(vtile + buf * 64 * D, vb, key0, a.v_rs, 64, 0, j1 - key0);
    };
    // One commit group per tile (empty past the last), so that tile t is always group t.
    for (int t = 0; t < STAGES - 1; t++) {
        if (t < ntiles) load_kv(t);
        cp_async_commit();
    }

    float o[D / 8][4];
#pragma unroll
    for (int d = 0; d < D / 8; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

    for (int t = 0; t < ntiles; t++) {
        cp_async_wait<STAGES - 2>();
        __syncwarp(); // tile t visible to every lane; every lane is done with tile t - 1, whose buffer is refilled now
        if (t + STAGES - 1 < ntiles) load_kv(t + STAGES - 1);
        cp_async_commit();

        const int buf = t % STAGES, key0 = j0 + t * 64;
        float s[8][4];
        warp_qk<D>(s, qtile, ktile + buf * 64 * D, 0, lane);
        const bool tail = key0 + 64 > j1;
#pragma unroll
        for (int e = 0; e < 2; e++) { // row g (e = 0) and row g + 8 (e = 1)
            float tmax = -INFINITY;
#pragma unroll
            for (int n = 0; n < 8; n++)
#pragma unroll
                for (int c = 0; c < 2; c++) {
                    float x = s[n][2 * e + c] * a.scale_log2;
                    if (tail && key0 + n * 8 + 2 * t4 + c >= j1) x = -INFINITY;
                    s[n][2 * e + c] = x;
                    tmax = fmaxf(tmax, x);
                }
            tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
            tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
            const float mnew = fmaxf(m[e], tmax); // finite: every tile holds at least one key
            const float alpha = exp2f(m[e] - mnew);
            m[e] = mnew;
            float sum = 0.f;
#pragma unroll
            for (int n = 0; n < 8; n++)
#pragma unroll
                for (int c = 0; c < 2; c++) {
                    const float p = exp2f(s[n][2 * e + c] - mnew);
                    s[n][2 * e + c] = p;
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
    }

#pragma unroll
    for (int e = 0; e < 2; e++) {
        l[e] += __shfl_xor_sync(0xffffffffu, l[e], 1);
        l[e] += __shfl_xor_sync(0xffffffffu, l[e], 2);
        const int row = g + 8 * e;
        if (row >= rows) continue;
        const int h = h0 + row;
        const float inv = 1.f / l[e];
        if (a.nsplit == 1) {
            __nv_bfloat16* dst = a.out + (int64_t)h * a.o_hs + 2 * t4;
#pragma unroll
            for (int d = 0; d < D / 8; d++)
                *reinterpret_cast<__nv_bfloat162*>(dst + d * 8) =
                    __floats2bfloat162_rn(o[d][2 * e] * inv, o[d][2 * e + 1] * inv);
            if (a.lse && t4 == 0) a.lse[(int64_t)h * a.lse_hs] = (m[e] + log2f(l[e])) * kLn2;
        } else {
            float* dst = a.part_o + ((int64_t)h * a.nsplit + split) * D + 2 * t4;
#pragma unroll
            for (int d = 0; d < D / 8; d++) {
                dst[d * 8] = o[d][2 * e] * inv;
                dst[d * 8 + 1] = o[d][2 * e + 1] * inv;
            }
            if (t4 == 0) a.part_lse[(int64_t)h * a.nsplit + split] = m[e] + log2f(l[e]);
        }
    }
}

constexpr int kCombineThreads = 128;

// Shared memory of the combine: ROWS partial sums of D floats, then one weight per split.
template <int D>
constexpr int combine_smem_bytes(int nsplit) { return (kCombineThreads / (D / 4)) * D * 4 + nsplit * 4; }

template <int D>
__global__ void __launch_bounds__(kCombineThreads) decode_combine_kernel(DecodeArgs a) {
    constexpr int COLS = D / 4, ROWS = kCombineThreads / COLS; // a thread owns 4 columns of every ROWS-th split
    FP_DYNAMIC_SMEM(smem);
    float* acc = reinterpret_cast<float*>(smem); // [ROWS][D]
    float* weight = acc + ROWS * D;              // [nsplit]
    const int h = blockIdx.x;
    const float* lse = a.part_lse + (int64_t)h * a.nsplit;

    if (threadIdx.x < 32) {
        const int lane = threadIdx.x;
        float mx = -INFINITY;
        for (int s = lane; s < a.nsplit; s += 32) mx = fmaxf(mx, lse[s]);
        for (int x = 16; x > 0; x >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, x));
        float sum = 0.f;
        for (int s = lane; s < a.nsplit; s += 32) {
            weight[s] = exp2f(lse[s] - mx);
            sum += weight[s];
        }
        for (int x = 16; x > 0; x >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, x);
        const float inv = 1.f / sum;
        for (int s = lane; s < a.nsplit; s += 32) weight[s] *= inv;
        if (a.lse && lane == 0) a.lse[(int64_t)h * a.lse_hs] = (mx + log2f(sum)) * kLn2;
    }
    __syncthreads();

    const int col = threadIdx.x % COLS, row = threadIdx.x / COLS;
    const float* po = a.part_o + (int64_t)h * a.nsplit * D + col * 4;
    float4 sum = {0.f, 0.f, 0.f, 0.f};
#pragma unroll 4
    for (int s = row; s < a.nsplit; s += ROWS) {
        const float w = weight[s];
        const float4 x = *reinterpret_cast<const float4*>(po + (int64_t)s * D);
        sum.x += w * x.x; sum.y += w * x.y; sum.z += w * x.z; sum.w += w * x.w;
    }
    reinterpret_cast<float4*>(acc)[row * COLS + col] = sum;
    __syncthreads();
    if (row != 0) return;
    for (int r = 1; r < ROWS; r++) {
        const float4 x = reinterpret_cast<const float4*>(acc)[r * COLS + col];
        sum.x += x.x; sum.y += x.y; sum.z += x.z; sum.w += x.w;
    }
    __nv_bfloat16* dst = a.out + (int64_t)h * a.o_hs + col * 4;
    *reinterpret_cast<__nv_bfloat162*>(dst) = __floats2bfloat162_rn(sum.x, sum.y);
    *reinterpret_cast<__nv_bfloat162*>(dst + 2) = __floats2bfloat162_rn(sum.z, sum.w);
}

} // namespace flexprefill
