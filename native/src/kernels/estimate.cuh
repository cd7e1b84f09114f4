// Stage 1, estimate (contract rules 2, 4 inputs, 7 inputs): the probe attention of the last P = bs queries over all T
// keys, reduced on the fly to the vertical and slash distributions, plus the pooled keys k̄ and queries q̄ / q̂.
//
//   probe rows i in [0, P): position p_i = T - P + i, query row S - P + i, scaled by 1/sqrt(D) (folded into exp2)
//   vertical[h][j] = (1/P) sum_i A[i][j]            fp32 [Hq][T], written once by the CTA that owns key j
//   slash[h][o]    = (1/P) sum_i A[i][p_i - o]      fp32 [Hq][T], shared-memory accumulator per CTA, then atomics
//   kbar[kvh][b][d] mean key of block b (true length for the last block)       fp32 [Hkv][nb][D]
//   qhat[h][d]      mean probe query, scaled by 1/sqrt(D)                       fp32 [Hq][D]
//   qbar[h][r-r0][d] mean query of block r over the positions of this call    fp32 [Hq][rows][D] (query-aware heads)
//
// The [Hq, P, T] score matrix is never stored: pass 1 (probe_kernel<.., false>) computes per-row max and sum of
// exp over each CTA's key range (grid Hq x nsplit, partial (m, l) per split), pass 2 merges the partials and
// recomputes the scores tile by tile (bf16 mma.sync m16n8k16, fp32 accumulate, K tiles of 64 keys double-buffered
// with cp.async), turning them into probabilities that are column-summed (vertical) and diagonal-summed (slash).
// Pass 2 reduces in registers first: columns over the warp's 16 rows by shuffles (reduce-scatter), diagonals by
// adding in the thread the two elements of each diagonal it holds and writing the rest to a per-warp buffer laid out
// by diagonal; then small sums over 8 rows and over the warps (no atomics: v1's shared-memory atomics cost 1.9 ms of
// pass 2's 2.5 ms at T = 128K on an H200).
//
// Versions (H200, T = 128K, Hq 32, D 128; docs/benchmarks.md): v1 shared-memory atomics: pass 1 0.68 ms, pass 2
// 2.52 ms; v2 the probability tile (every probability stored, then read twice by one thread per column / diagonal:
// 128-long serial sums, three barriers per tile): 1.16 ms; v3 four partial sums per column / diagonal: 1.29 ms,
// reverted. v4 (this, pass 2): per 64-key tile and CTA, shared-memory traffic of the reduction ~1100 -> ~580
// wavefronts (column sums by 14 shuffles a warp; 18 stores a thread instead of 32; longest serial sum 24 instead of
// 128), two barriers per tile instead of three, and the Q fragments held in registers (32 for D 128), so only K is
// read from shared memory (-256 of the ~1400 ldmatrix wavefronts a tile). Validated on native/emu (L1 of both
// distributions ~5e-8, was ~1e-7); not yet measured on a GPU.
#pragma once
#include "common.cuh"
#include <cfloat>

namespace flexprefill {

struct ProbeArgs {
    const __nv_bfloat16* q;
    const __nv_bfloat16* k;
    int64_t q_rs, q_hs, k_rs, k_hs;
    int S, T, G, split_len, nsplit;
    float scale_log2; // log2(e) / sqrt(D)
    float* part;      // [Hq][nsplit][2][P]: row max (log2 units) and row sum
    float* vertical;  // [Hq][T]
    float* slash;     // [Hq][T], zeroed before pass 2
};

// One halving step of a warp's reduce-scatter of 16 per-lane bins: lanes with bit `M` of the lane index set keep
// the upper HALF of the bins in slots 0..HALF-1 and send the lower half, the others the reverse.
template <int HALF, int M, typename V>
__device__ __forceinline__ void fold_bins(V (&v)[16], int lane) {
    const bool up = (lane & M) != 0;
#pragma unroll
    for (int j = 0; j < HALF; j++) {
        const V send = up ? v[j] : v[j + HALF], keep = up ? v[j + HALF] : v[j];
        v[j] = keep + __shfl_xor_sync(0xffffffffu, send, M);
    }
}


// Pass 2's per-warp diagonal buffer: 8 rows (k = 2 t4 + c, see probe_kernel) of the 79 tile-local diagonals
// delta = row - column in [-63, 15] of the warp's 16 x 64 probabilities, diagonal delta at position delta + 63. The
// row stride 85 (= 5 mod 16) puts the 32 lanes of each store on 32 different banks.
constexpr int kProbeDiagLen = 79, kProbeZStride = 85, kProbeWStride = 80;
template <int WARPS>
constexpr int probe_reduce_floats() { return WARPS * (8 * kProbeZStride + kProbeWStride + 64); }

// Q tile and two K tiles (bf16); pass 2 adds the slash accumulator of its key range and the reduction buffers
// (per-warp diagonal rows, per-warp diagonal sums, per-warp column sums; fp32).
template <int D, int WARPS, bool SECOND>
constexpr int probe_smem_bytes(int split_len) {
    return (WARPS * 16 * D + 2 * 64 * D) * 2 + (SECOND ? (split_len + WARPS * 16 + probe_reduce_floats<WARPS>()) * 4 : 0);
}

// This warp's A fragments of the Q tile (16 rows x D), loaded once: pass 2 then reads only K from shared memory.
template <int D>
__device__ __forceinline__ void load_q_frags(uint32_t (&qf)[D / 16][4], const __nv_bfloat16* qtile, int warp, int lane) {
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        ldmatrix_x4(qf[kk][0], qf[kk][1], qf[kk][2], qf[kk][3],
                    qtile + tile_offset<D>(warp * 16 + (lane & 15), kk * 2 + (lane >> 4)));
}

// warp_qk (common.cuh) with the Q fragments in registers.
template <int D>
__device__ __forceinline__ void warp_qk_frags(float (&s)[8][4], const uint32_t (&qf)[D / 16][4],
                                              const __nv_bfloat16* ktile, int lane) {
#pragma unroll
    for (int n = 0; n < 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
        for (int np = 0; np < 4; np++) {
            uint32_t b0, b1, b2, b3;
            const int key = np * 16 + (lane & 7) + ((lane >> 4) << 3);
            ldmatrix_x4(b0, b1, b2, b3, ktile + tile_offset<D>(key, kk * 2 + ((lane >> 3) & 1)));
            mma_bf16(s[2 * np], qf[kk], b0, b1);
            mma_bf16(s[2 * np + 1], qf[kk], b2, b3);
        }
    }
}

template <int D, int WARPS, bool SECOND>
__global__ void __launch_bounds__(WARPS * 32) probe_kernel(ProbeArgs a) {
    constexpr int THREADS = WARPS * 32, P = WARPS * 16;
    FP_DYNAMIC_SMEM(smem);
    __nv_bfloat16* qtile = reinterpret_cast<__nv_bfloat16*>(smem);
    __nv_bfloat16* ktile = qtile + P * D; // two buffers of 64 x D
    float* slash_acc = reinterpret_cast<float*>(ktile + 2 * 64 * D);
    float* zbuf = slash_acc + a.split_len + P;          // pass 2: [WARPS][8][kProbeZStride] diagonal rows
    float* wbuf = zbuf + WARPS * 8 * kProbeZStride;     //         [WARPS][kProbeWStride] the warps' diagonal sums
    float* colbuf = wbuf + WARPS * kProbeWStride;       //         [WARPS][64] the warps' column sums

    const int h = blockIdx.x, split = blockIdx.y, kvh = h / a.G;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
    const int j0 = split * a.split_len, j1 = min(a.T, j0 + a.split_len);
    const int p0 = a.T - P;
    const int ntiles = (j1 - j0 + 63) / 64;
    const __nv_bfloat16* kbase = a.k + (int64_t)kvh * a.k_hs;

    load_tile_async<D, THREADS>(qtile, a.q + (int64_t)h * a.q_hs, a.S - P, a.q_rs, P, 0, P);
    load_tile_async<D, THREADS>(ktile, kbase, j0, a.k_rs, 64, 0, min(64, a.T - j0));
    cp_async_commit();

    const int row[2] = {warp * 16 + g, warp * 16 + g + 8};
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}; // pass 1: running max (log2 units) and sum
    float fac[2] = {0.f, 0.f};                                // pass 2: 1 / (l * P)
    const int o_base = p0 - j1 + 1;                           // slash_acc[i] holds offset o_base + i
    const int acc_len = j1 - j0 + P - 1;
    if constexpr (SECOND) {
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const float* pm = a.part + ((int64_t)h * a.nsplit) * 2 * P;
            float mm = -INFINITY;
            for (int s = 0; s < a.nsplit; s++) mm = fmaxf(mm, pm[(s * 2) * P + row[e]]);
            float ll = 0.f;
            for (int s = 0; s < a.nsplit; s++) {
                const float ms = pm[(s * 2) * P + row[e]];
                if (ms != -INFINITY) ll += pm[(s * 2 + 1) * P + row[e]] * exp2f(ms - mm);
            }
            m[e] = mm;
            fac[e] = 1.f / (ll * (float)P);
        }
        for (int i = threadIdx.x; i < acc_len; i += THREADS) slash_acc[i] = 0.f;
        // the diagonal rows' ends that no tile writes must read as 0
        for (int i = threadIdx.x; i < WARPS * 8 * kProbeZStride; i += THREADS) zbuf[i] = 0.f;
    }
    uint32_t qf[SECOND ? D / 16 : 1][4]; // pass 2: this warp's Q fragments (pass 1 keeps reading them from the tile)

    for (int t = 0; t < ntiles; t++) {
        const int jb = j0 + t * 64;
        if (t + 1 < ntiles) {
            load_tile_async<D, THREADS>(ktile + ((t + 1) & 1) * 64 * D, kbase, jb + 64, a.k_rs, 64, 0,
                                        min(64, a.T - jb - 64));
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        float s[8][4];
        if constexpr (SECOND) {
            if (t == 0) load_q_frags<D>(qf, qtile, warp, lane);
            warp_qk_frags<D>(s, qf, ktile + (t & 1) * 64 * D, lane);
        } else {
            warp_qk<D>(s, qtile, ktile + (t & 1) * 64 * D, warp, lane);
        }

        if constexpr (!SECOND) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int pos = p0 + row[e];
                float tmax = -INFINITY;
#pragma unroll
                for (int n = 0; n < 8; n++)
#pragma unroll
                    for (int c = 0; c < 2; c++) {
                        const int key = jb + n * 8 + 2 * t4 + c;
                        float x = key <= pos ? s[n][2 * e + c] * a.scale_log2 : -INFINITY;
                        s[n][2 * e + c] = x;
                        tmax = fmaxf(tmax, x);
                    }
                const float mnew = fmaxf(m[e], tmax);
                if (mnew != -INFINITY) {
                    float sum = 0.f;
#pragma unroll
                    for (int n = 0; n < 8; n++) sum += exp2f(s[n][2 * e] - mnew) + exp2f(s[n][2 * e + 1] - mnew);
                    l[e] = l[e] * exp2f(m[e] - mnew) + sum;
                    m[e] = mnew;
                }
            }
            __syncthreads(); // the other K buffer is loaded next
        } else {
            // probabilities, masked to 0, in place
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int pos = p0 + row[e];
#pragma unroll
                for (int n = 0; n < 8; n++)
#pragma unroll
                    for (int c = 0; c < 2; c++) {
                        const int key = jb + n * 8 + 2 * t4 + c;
                        s[n][2 * e + c] = key <= pos ? exp2f(s[n][2 * e + c] * a.scale_log2 - m[e]) * fac[e] : 0.f;
                    }
            }
            // vertical: rows g and g + 8 in the thread, then the warp's 8 row groups g by a reduce-scatter over
            // lane bits 4, 3, 2 (g = lane / 4): v[j] ends as the warp's sum of tile column 8 g + 2 t4 + j
            {
                float v[16];
#pragma unroll
                for (int n = 0; n < 8; n++)
#pragma unroll
                    for (int c = 0; c < 2; c++) v[2 * n + c] = s[n][c] + s[n][2 + c];
                fold_bins<8, 16>(v, lane);
                fold_bins<4, 8>(v, lane);
                fold_bins<2, 4>(v, lane);
                colbuf[warp * 64 + 8 * g + 2 * t4] = v[0];
                colbuf[warp * 64 + 8 * g + 2 * t4 + 1] = v[1];
            }
            // slash: the element (row g + 8, n-tile n + 1) lies on the diagonal of (row g, n-tile n), so the thread
            // first adds those pairs: u(m, c) on warp-local diagonal delta = g - 2 t4 - c - 8 m, m in [-1, 7]. For
            // fixed k = 2 t4 + c the 8 lanes g and 9 slots m cover delta in [-56 - k, 15 - k] once each: row k of
            // the warp's diagonal buffer, then summed over k (each lane three diagonals), then over the warps.
            {
                float* z = zbuf + warp * 8 * kProbeZStride;
#pragma unroll
                for (int mi = 0; mi < 9; mi++)
#pragma unroll
                    for (int c = 0; c < 2; c++) {
                        const int mm = mi - 1, k = 2 * t4 + c;
                        const float u = (mm >= 0 ? s[mm][c] : 0.f) + (mm + 1 <= 7 ? s[mm + 1][2 + c] : 0.f);
                        z[k * kProbeZStride + g - k - 8 * mm + 63] = u;
                    }
                __syncwarp();
                for (int q = lane; q < kProbeDiagLen; q += 32) {
                    float sum = 0.f;
#pragma unroll
                    for (int k = 0; k < 8; k++) sum += z[k * kProbeZStride + q];
                    wbuf[warp * kProbeWStride + q] = sum;
                }
            }
            __syncthreads();
            // one thread per key column (vertical, written once: this CTA owns the key) and per tile diagonal
            // d = row - column in [-63, P - 1] (warp w's delta = d - 16 w; offset o = p0 - jb + d into the slash
            // accumulator): no atomics. No barrier after: the next tile writes these buffers only after its first.
            for (int task = threadIdx.x; task < 64 + P + 63; task += THREADS) {
                float sum = 0.f;
                if (task < 64) {
#pragma unroll
                    for (int w = 0; w < WARPS; w++) sum += colbuf[w * 64 + task];
                    if (jb + task < j1) a.vertical[(int64_t)h * a.T + jb + task] = sum;
                } else {
                    const int d = task - 64 - 63;
#pragma unroll
                    for (int w = 0; w < WARPS; w++) {
                        const int q = d - 16 * w + 63;
                        if (q >= 0 && q < kProbeDiagLen) sum += wbuf[w * kProbeWStride + q];
                    }
                    slash_acc[(p0 - jb + d) - o_base] += sum;
                }
            }
        }
    }

    if constexpr (!SECOND) {
#pragma unroll
        for (int e = 0; e < 2; e++) {
#pragma unroll
            for (int x = 1; x <= 2; x <<= 1) {
                const float mo = __shfl_xor_sync(0xffffffffu, m[e], x);
                const float lo = __shfl_xor_sync(0xffffffffu, l[e], x);
                const float mn = fmaxf(m[e], mo);
                if (mn != -INFINITY) {
                    l[e] = l[e] * exp2f(m[e] - mn) + lo * exp2f(mo - mn);
                    m[e] = mn;
                }
            }
            if (t4 == 0) {
                float* pm = a.part + ((int64_t)h * a.nsplit + split) * 2 * P;
                pm[row[e]] = m[e];
                pm[P + row[e]] = l[e];
            }
        }
    } else {
        __syncthreads();
        for (int i = threadIdx.x; i < acc_len; i += THREADS) {
            const int o = o_base + i;
            const float val = slash_acc[i];
            if (o >= 0 && o < a.T && val != 0.f) atomicAdd(&a.slash[(int64_t)h * a.T + o], val);
        }
    }
}

// Mean of D-vectors over row groups: group gi of head h covers positions [lo, hi) with
//   lo = max((g0 + gi) * group_len, clip_lo), hi = min(lo_unclipped + group_len, clip_hi)
// (or exactly [clip_lo, clip_hi) when group_len == 0), source row = position - pos_offset.
// dst[(h * ngroups + gi) * D + d] = scale * mean. When only_pattern >= 0, heads whose pattern differs are skipped.
struct MeanArgs {
    const __nv_bfloat16* src;
    int64_t rs, hs;
    int g0, group_len, clip_lo, clip_hi, pos_offset, ngroups;
    float scale;
    float* dst;
    const flexprefill_head_info* heads;
    int only_pattern;
};

template <int D>
__global__ void __launch_bounds__(D) mean_rows_kernel(MeanArgs a) {
    const int gi = blockIdx.x, h = blockIdx.y, d = threadIdx.x;
    if (a.only_pattern >= 0 && a.heads[h].pattern != a.only_pattern) return;
    int lo, hi;
    if (a.group_len == 0) {
        lo = a.clip_lo; hi = a.clip_hi;
    } else {
        const int start = (a.g0 + gi) * a.group_len;
        lo = max(start, a.clip_lo);
        hi = min(start + a.group_len, a.clip_hi);
    }
    const __nv_bfloat16* p = a.src + (int64_t)h * a.hs + d;
    float acc0 = 0.f, acc1 = 0.f, acc2 = 0.f, acc3 = 0.f;
    int pos = lo;
    for (; pos + 4 <= hi; pos += 4) {
        const int64_t r = pos - a.pos_offset;
        acc0 += __bfloat162float(p[r * a.rs]);
        acc1 += __bfloat162float(p[(r + 1) * a.rs]);
        acc2 += __bfloat162float(p[(r + 2) * a.rs]);
        acc3 += __bfloat162float(p[(r + 3) * a.rs]);
    }
    for (; pos < hi; pos++) acc0 += __bfloat162float(p[(int64_t)(pos - a.pos_offset) * a.rs]);
    const int n = hi - lo;
    a.dst[((int64_t)h * a.ngroups + gi) * D + d] = n > 0 ? a.scale * ((acc0 + acc1) + (acc2 + acc3)) / (float)n : 0.f;
}

} // namespace flexprefill
