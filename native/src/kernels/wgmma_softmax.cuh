// What the two sm_90a attention kernels do to one consumer warpgroup's 64-row tile between its products: the online
// softmax of S, rescaling O and re-packing P as bf16 A fragments, and the final normalised store.
// Register view of a 64 x 128 fp32 wgmma accumulator (m64n128, the same layout as mma.sync's C fragments): the thread
// at (warp w of the warpgroup, lane 4g + t4) holds rows 16w + g (e = 0) and 16w + g + 8 (e = 1), columns
// 8j + 2·t4 + {0, 1} at x[4j + 2e + {0, 1}], j = 0..15.
#pragma once
#include "sparse_attention.cuh"

namespace flexprefill::sm90 {

// The running max (log2 units, scale folded in) and sum of the thread's two rows.
struct SoftmaxRows {
    float m[2] = {-INFINITY, -INFINITY};
    float l[2] = {0.f, 0.f};
};

// Online softmax of the key block from key0 (scores s in place become probabilities), updating st; alpha[e] is what
// row e's O must be rescaled by. need_mask: the block reaches past the first query row of the tile (pos[e]: the
// positions of the thread's rows), where keys after the query are masked. The max is taken over the raw scores and the
// scale folded into the exponent's FFMA: one multiply per score fewer than scaling first.
__device__ __forceinline__ void online_softmax(float (&s)[64], SoftmaxRows& st, float (&alpha)[2], float scale_log2,
                                               bool need_mask, int key0, int t4, const int (&pos)[2]) {
#pragma unroll
    for (int e = 0; e < 2; e++) {
        float tmax = -INFINITY;
#pragma unroll
        for (int j = 0; j < 16; j++)
#pragma unroll
            for (int c = 0; c < 2; c++) {
                float& x = s[4 * j + 2 * e + c];
                if (need_mask && key0 + 8 * j + 2 * t4 + c > pos[e]) x = -INFINITY;
                tmax = fmaxf(tmax, x);
            }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
        const float mnew = fmaxf(st.m[e], tmax * scale_log2);
        const float msafe = mnew == -INFINITY ? 0.f : mnew;
        alpha[e] = exp2f(st.m[e] - msafe);
        st.m[e] = mnew;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < 16; j++)
#pragma unroll
            for (int c = 0; c < 2; c++) {
                const float p = exp2f(fmaf(s[4 * j + 2 * e + c], scale_log2, -msafe));
                s[4 * j + 2 * e + c] = p;
                sum += p;
            }
        st.l[e] = st.l[e] * alpha[e] + sum;
    }
}

// O *= alpha, and the probabilities re-packed as the bf16 A fragments of O += P V (k-step kk: keys 16kk..16kk+15).
__device__ __forceinline__ void rescale_and_pack(float (&o)[64], const float (&s)[64], const float (&alpha)[2],
                                                 uint32_t (&pa)[8][4]) {
#pragma unroll
    for (int j = 0; j < 16; j++) {
        o[4 * j] *= alpha[0]; o[4 * j + 1] *= alpha[0];
        o[4 * j + 2] *= alpha[1]; o[4 * j + 3] *= alpha[1];
    }
#pragma unroll
    for (int kk = 0; kk < 8; kk++) {
        pa[kk][0] = pack_bf16(s[8 * kk], s[8 * kk + 1]);
        pa[kk][1] = pack_bf16(s[8 * kk + 2], s[8 * kk + 3]);
        pa[kk][2] = pack_bf16(s[8 * kk + 4], s[8 * kk + 5]);
        pa[kk][3] = pack_bf16(s[8 * kk + 6], s[8 * kk + 7]);
    }
}

// out = O / l for the thread's rows that belong to this call (positions q_lo..q_hi - 1), and their natural-log LSE.
__device__ __forceinline__ void store_rows(const AttnArgs& a, const float (&o)[64], SoftmaxRows& st, const int (&pos)[2],
                                           int q_lo, int q_hi, int h, int t4) {
    const int first_pos = a.T - a.S;
#pragma unroll
    for (int e = 0; e < 2; e++) {
        st.l[e] += __shfl_xor_sync(0xffffffffu, st.l[e], 1);
        st.l[e] += __shfl_xor_sync(0xffffffffu, st.l[e], 2);
        if (pos[e] < q_lo || pos[e] >= q_hi) continue;
        const float inv = 1.f / st.l[e];
        const int64_t srow = pos[e] - first_pos;
        __nv_bfloat16* dst = a.out + srow * a.o_rs + (int64_t)h * a.o_hs + 2 * t4;
#pragma unroll
        for (int j = 0; j < 16; j++)
            *reinterpret_cast<__nv_bfloat162*>(dst + 8 * j) = __floats2bfloat162_rn(o[4 * j + 2 * e] * inv, o[4 * j + 2 * e + 1] * inv);
        if (a.lse && t4 == 0) a.lse[(int64_t)h * a.lse_hs + srow] = (st.m[e] + log2f(st.l[e])) * kLn2;
    }
}

} // namespace flexprefill::sm90
