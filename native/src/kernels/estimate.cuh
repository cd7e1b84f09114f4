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
// The [Hq, P, T] score matrix is never stored: pass 1 (probe_stats_kernel) computes per-row max and sum of exp over
// each CTA's key range (grid Hq / HEADS x nsplit, partial (m, l) per split; HEADS = 2 query heads of one KV group
// per CTA when G is even), pass 2 (probe_sums_kernel, grid Hq x nsplit) merges the partials and
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
// read from shared memory (-256 of the ~1400 ldmatrix wavefronts a tile). Pass 1 v2 (this): two query heads of a
// KV group per CTA (G even), so each K fragment read from shared memory serves two MMAs and each K tile comes from
// L2 once per two heads: per 128 probe rows and 64-key tile, ldmatrix 1280 -> 768 wavefronts, cp.async 16 -> 8 KB
// (L2 -> SM traffic of the pass 1.07 -> 0.54 GB at 128K); 96 KB of shared memory and 64 accumulators a thread, two
// CTAs per SM (128 registers, no spills). L1 of both distributions ~5e-8 against float64 (was ~1e-7). H200, session 5 call 2:
// pass 2 1.15 -> 0.84 ms, pass 1 0.61 -> 0.54 ms. mean_rows_kernel v2: 16-byte loads (see the kernel).
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

// Pass 1: HEADS Q tiles and two K tiles (bf16).
template <int D, int WARPS, int HEADS>
constexpr int probe_stats_smem_bytes() { return (HEADS * WARPS * 16 * D + 2 * 64 * D) * 2; }
// Pass 2: a Q tile and two K tiles (bf16), the slash accumulator of its key range and the reduction buffers
// (per-warp diagonal rows, per-warp diagonal sums, per-warp column sums; fp32).
template <int D, int WARPS>
constexpr int probe_sums_smem_bytes(int split_len) {
    return (WARPS * 16 * D + 2 * 64 * D) * 2 + (split_len + WARPS * 16 + probe_reduce_floats<WARPS>()) * 4;
}

// warp_qk (common.cuh) for the HEADS query heads of a CTA at once: S[hh] = Qtile[hh][this warp's 16 rows] . Ktile^T;
// each K fragment read from shared memory serves HEADS MMAs.
template <int D, int HEADS>
__device__ __forceinline__ void warp_qk_heads(float (&s)[HEADS][8][4], const __nv_bfloat16* qtile, int qtile_elems,
                                              const __nv_bfloat16* ktile, int warp, int lane) {
#pragma unroll
    for (int hh = 0; hh < HEADS; hh++)
#pragma unroll
        for (int n = 0; n < 8; n++) s[hh][n][0] = s[hh][n][1] = s[hh][n][2] = s[hh][n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        uint32_t af[HEADS][4];
#pragma unroll
        for (int hh = 0; hh < HEADS; hh++)
            ldmatrix_x4(af[hh][0], af[hh][1], af[hh][2], af[hh][3],
                        qtile + hh * qtile_elems + tile_offset<D>(warp * 16 + (lane & 15), kk * 2 + (lane >> 4)));
#pragma unroll
        for (int np = 0; np < 4; np++) {
            uint32_t b0, b1, b2, b3;
            const int key = np * 16 + (lane & 7) + ((lane >> 4) << 3);
            ldmatrix_x4(b0, b1, b2, b3, ktile + tile_offset<D>(key, kk * 2 + ((lane >> 3) & 1)));
#pragma unroll
            for (int hh = 0; hh < HEADS; hh++) {
                mma_bf16(s[hh][2 * np], af[hh], b0, b1);
                mma_bf16(s[hh][2 * np + 1], af[hh], b2, b3);
            }
        }
    }
}

// Both passes walk the CTA's keys as 64-key tiles in two buffers (ktile, tile t in buffer t & 1): starts loading tile
// t + 1 (from key jb + 64) when there is one, then waits until tile t (from key jb) has landed for every thread.
template <int D, int THREADS>
__device__ __forceinline__ void next_key_tile(__nv_bfloat16* ktile, const __nv_bfloat16* kbase, const ProbeArgs& a, int jb,
                                              int t, int ntiles) {
    if (t + 1 < ntiles) {
        load_tile_async<D, THREADS>(ktile + ((t + 1) & 1) * 64 * D, kbase, jb + 64, a.k_rs, 64, 0, min(64, a.T - jb - 64));
        cp_async_commit();
        cp_async_wait<1>();
    } else {
        cp_async_wait<0>();
    }
    __syncthreads();
}

// Pass 1: per probe row, the max (log2 units) and the sum of exp2 over this CTA's key range, for HEADS query heads
// of one KV group (grid Hq / HEADS x nsplit): the K tiles are loaded once for the HEADS heads.
template <int D, int WARPS, int HEADS>
__global__ void __launch_bounds__(WARPS * 32) probe_stats_kernel(ProbeArgs a) {
    constexpr int THREADS = WARPS * 32, P = WARPS * 16;
    FP_DYNAMIC_SMEM(smem);
    __nv_bfloat16* qtile = reinterpret_cast<__nv_bfloat16*>(smem); // HEADS tiles of P x D
    __nv_bfloat16* ktile = qtile + HEADS * P * D;                    // two buffers of 64 x D

    const int h0 = blockIdx.x * HEADS, split = blockIdx.y, kvh = h0 / a.G;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
    const int j0 = split * a.split_len, j1 = min(a.T, j0 + a.split_len);
    const int p0 = a.T - P;
    const int ntiles = (j1 - j0 + 63) / 64;
    const __nv_bfloat16* kbase = a.k + (int64_t)kvh * a.k_hs;

#pragma unroll
    for (int hh = 0; hh < HEADS; hh++)
        load_tile_async<D, THREADS>(qtile + hh * P * D, a.q + (int64_t)(h0 + hh) * a.q_hs, a.S - P, a.q_rs, P, 0, P);
    load_tile_async<D, THREADS>(ktile, kbase, j0, a.k_rs, 64, 0, min(64, a.T - j0));
    cp_async_commit();

    const int row[2] = {warp * 16 + g, warp * 16 + g + 8};
    float m[HEADS][2], l[HEADS][2]; // running max (log2 units) and sum
#pragma unroll
    for (int hh = 0; hh < HEADS; hh++) {
        m[hh][0] = m[hh][1] = -INFINITY;
        l[hh][0] = l[hh][1] = 0.f;
    }

    for (int t = 0; t < ntiles; t++) {
        const int jb = j0 + t * 64;
        next_key_tile<D, THREADS>(ktile, kbase, a, jb, t, ntiles);
        float s[HEADS][8][4];
        warp_qk_heads<D, HEADS>(s, qtile, P * D, ktile + (t & 1) * 64 * D, warp, lane);
        const bool need_mask = jb + 63 > p0; // only the last tiles hold keys after a probe row (or past T)
#pragma unroll
        for (int hh = 0; hh < HEADS; hh++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int pos = p0 + row[e];
                float tmax = -INFINITY;
#pragma unroll
                for (int n = 0; n < 8; n++)
#pragma unroll
                    for (int c = 0; c < 2; c++) {
                        float& x = s[hh][n][2 * e + c];
                        if (need_mask && jb + n * 8 + 2 * t4 + c > pos) x = -INFINITY;
                        tmax = fmaxf(tmax, x);
                    }
                // the max over raw scores, the scale folded into the exponent's FFMA
                const float mnew = fmaxf(m[hh][e], tmax * a.scale_log2);
                if (mnew != -INFINITY) {
                    float sum = 0.f;
#pragma unroll
                    for (int n = 0; n < 8; n++)
                        sum += exp2f(fmaf(s[hh][n][2 * e], a.scale_log2, -mnew)) +
                               exp2f(fmaf(s[hh][n][2 * e + 1], a.scale_log2, -mnew));
                    l[hh][e] = l[hh][e] * exp2f(m[hh][e] - mnew) + sum;
                    m[hh][e] = mnew;
                }
            }
        __syncthreads(); // the other K buffer is loaded next
    }

#pragma unroll
    for (int hh = 0; hh < HEADS; hh++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            float mv = m[hh][e], lv = l[hh][e];
#pragma unroll
            for (int x = 1; x <= 2; x <<= 1) {
                const float mo = __shfl_xor_sync(0xffffffffu, mv, x);
                const float lo = __shfl_xor_sync(0xffffffffu, lv, x);
                const float mn = fmaxf(mv, mo);
                if (mn != -INFINITY) {
                    lv = lv * exp2f(mv - mn) + lo * exp2f(mo - mn);
                    mv = mn;
                }
            }
            if (t4 == 0) {
                float* pm = a.part + ((int64_t)(h0 + hh) * a.nsplit + split) * 2 * P;
                pm[row[e]] = mv;
                pm[P + row[e]] = lv;
            }
        }
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

// Pass 2: the probabilities of this CTA's key range (one query head, grid Hq x nsplit) summed into vertical (the
// CTA owns its keys) and slash (a shared-memory accumulator of its offsets, then atomics).
template <int D, int WARPS>
__global__ void __launch_bounds__(WARPS * 32) probe_sums_kernel(ProbeArgs a) {
    constexpr int THREADS = WARPS * 32, P = WARPS * 16;
    FP_DYNAMIC_SMEM(smem);
    __nv_bfloat16* qtile = reinterpret_cast<__nv_bfloat16*>(smem);
    __nv_bfloat16* ktile = qtile + P * D; // two buffers of 64 x D
    float* slash_acc = reinterpret_cast<float*>(ktile + 2 * 64 * D);
    float* zbuf = slash_acc + a.split_len + P;          // [WARPS][8][kProbeZStride] diagonal rows
    float* wbuf = zbuf + WARPS * 8 * kProbeZStride;     // [WARPS][kProbeWStride] the warps' diagonal sums
    float* colbuf = wbuf + WARPS * kProbeWStride;       // [WARPS][64] the warps' column sums

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
    float m[2] = {-INFINITY, -INFINITY}; // the row's max over all keys (log2 units)
    float fac[2] = {0.f, 0.f};           // 1 / (the row's sum * P)
    const int o_base = p0 - j1 + 1;                           // slash_acc[i] holds offset o_base + i
    const int acc_len = j1 - j0 + P - 1;
    {
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
    uint32_t qf[D / 16][4]; // this warp's Q fragments

    for (int t = 0; t < ntiles; t++) {
        const int jb = j0 + t * 64;
        next_key_tile<D, THREADS>(ktile, kbase, a, jb, t, ntiles);
        float s[8][4];
        if (t == 0) load_q_frags<D>(qf, qtile, warp, lane);
        warp_qk_frags<D>(s, qf, ktile + (t & 1) * 64 * D, lane);

        {
            // probabilities, masked to 0 (only the last tiles hold keys after a probe row), in place
            const bool need_mask = jb + 63 > p0;
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int pos = p0 + row[e];
#pragma unroll
                for (int n = 0; n < 8; n++)
#pragma unroll
                    for (int c = 0; c < 2; c++) {
                        const bool masked = need_mask && jb + n * 8 + 2 * t4 + c > pos;
                        s[n][2 * e + c] = masked ? 0.f : exp2f(fmaf(s[n][2 * e + c], a.scale_log2, -m[e])) * fac[e];
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

    {
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

constexpr int kMeanThreads = 128;

// One CTA of kMeanThreads per (group, head): D / 8 threads per row, each loading 8 columns as one 16-byte access
// (rows are 16-byte aligned: api.cpp), kMeanThreads / (D / 8) rows at a time, then a sum over those row slices.
// v1: one thread per column, one 2-byte load per row (4 in flight); v2 (this): 16-byte loads, 4 rows in flight
// per thread: the three launches at 128K 0.16 -> 0.12 ms on an H200.
template <int D>
__global__ void __launch_bounds__(kMeanThreads) mean_rows_kernel(MeanArgs a) {
    constexpr int LANES = D / 8, RPI = kMeanThreads / LANES;
    __shared__ float red[RPI][D];
    const int gi = blockIdx.x, h = blockIdx.y;
    if (a.only_pattern >= 0 && a.heads[h].pattern != a.only_pattern) return;
    int lo, hi;
    if (a.group_len == 0) {
        lo = a.clip_lo; hi = a.clip_hi;
    } else {
        const int start = (a.g0 + gi) * a.group_len;
        lo = max(start, a.clip_lo);
        hi = min(start + a.group_len, a.clip_hi);
    }
    const int col = (threadIdx.x % LANES) * 8, rsub = threadIdx.x / LANES;
    const __nv_bfloat16* p = a.src + (int64_t)h * a.hs + col;
    float acc[8] = {};
#pragma unroll 4
    for (int pos = lo + rsub; pos < hi; pos += RPI) {
        float f[8];
        load_bf16x8(p + (int64_t)(pos - a.pos_offset) * a.rs, f);
#pragma unroll
        for (int j = 0; j < 8; j++) acc[j] += f[j];
    }
#pragma unroll
    for (int j = 0; j < 8; j++) red[rsub][col + j] = acc[j];
    __syncthreads();
    for (int d = threadIdx.x; d < D; d += kMeanThreads) {
        float sum = 0.f;
#pragma unroll
        for (int r = 0; r < RPI; r++) sum += red[r][d];
        const int n = hi - lo;
        a.dst[((int64_t)h * a.ngroups + gi) * D + d] = n > 0 ? a.scale * sum / (float)n : 0.f;
    }
}

} // namespace flexprefill
