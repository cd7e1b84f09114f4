// Stage 3, CSR (contract rules 6, 8, 9, 10): per head, the existing query block rows r0..nb-1 become
//   row_ptr [Hq][rows + 1] (relative to the head), col_idx [Hq][causal] (head h's columns start at h * causal),
// with columns ascending and unique: (r, c), c <= r, is in when vertical block c is selected, or block diagonal
// r - c is selected, or (query-aware heads) the map entry P[r][c] >= the head's threshold. The diagonal is always
// in (band 0 is forced; rule 9 is checked again here so that a head with min_budget 0 still has it).
// Three launches: count each row with ballots (one warp per row, rows spread over the grid), a block-wide scan per
// head, then write each row with ballot compaction.
//
// Versions (H200, T = 128K, Hq 32): v1 one CTA per head for all three steps, 0.33-0.41 ms; v2 (this) the rows
// spread over the grid.
#pragma once
#include "common.cuh"

namespace flexprefill {

struct CsrArgs {
    const unsigned char* vsel; // [Hq][nb]
    const unsigned char* bands; // [Hq][nb] selected bands: diagonal d is in when band d or band d - 1 is (rule 6)
    const float* map;          // [Hq][rows][nb] or null
    flexprefill_head_info* heads;
    int32_t* row_ptr;          // [Hq][rows + 1]
    int32_t* col_idx;          // [Hq][causal]
    int r0, rows, nb;
    int64_t causal;
};

// Whether block (r, c) of head h is in its set; vs / ds are the head's vertical / diagonal masks in shared memory.
__device__ __forceinline__ bool csr_selected(const CsrArgs& a, const unsigned char* vs, const unsigned char* ds, bool qa,
                                             unsigned int theta, int h, int i, int r, int c) {
    if (c > r) return false;
    if (vs[c] || ds[r - c] || c == r) return true;
    return qa && __float_as_uint(a.map[((int64_t)h * a.rows + i) * a.nb + c]) >= theta;
}

// Grid (ceil(rows / WARPS), Hq), one warp per row. WRITE = false: row_ptr[i + 1] = the row's count (ballots);
// WRITE = true (after csr_scan_kernel): the row's columns at row_ptr[i] by ballot compaction.
template <int THREADS, bool WRITE>
__global__ void __launch_bounds__(THREADS) csr_rows_kernel(CsrArgs a) {
    FP_DYNAMIC_SMEM(sel); // vsel [nb], diagonals [nb]
    constexpr int WARPS = THREADS / 32;
    const int h = blockIdx.y, nb = a.nb, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    unsigned char* vs = sel;
    unsigned char* ds = sel + nb;
    for (int c = threadIdx.x; c < nb; c += THREADS) {
        vs[c] = a.vsel[(int64_t)h * nb + c];
        const unsigned char* band = a.bands + (int64_t)h * nb;
        ds[c] = band[c] || (c >= 1 && band[c - 1]);
    }
    __syncthreads();
    const int i = blockIdx.x * WARPS + warp;
    if (i >= a.rows) return;
    const bool qa = a.map && a.heads[h].pattern == FLEXPREFILL_PATTERN_QUERY_AWARE;
    const unsigned int theta = a.heads[h].qa_threshold;
    int32_t* rp = a.row_ptr + (int64_t)h * (a.rows + 1);
    const int r = a.r0 + i;
    if constexpr (!WRITE) {
        int cnt = 0;
        for (int c0 = 0; c0 <= r; c0 += 32)
            cnt += __popc(__ballot_sync(0xffffffffu, csr_selected(a, vs, ds, qa, theta, h, i, r, c0 + lane)));
        if (lane == 0) rp[i + 1] = cnt;
    } else {
        int32_t* ci = a.col_idx + (int64_t)h * a.causal;
        int pos = rp[i];
        for (int c0 = 0; c0 <= r; c0 += 32) {
            const int c = c0 + lane;
            const bool in = csr_selected(a, vs, ds, qa, theta, h, i, r, c);
            const unsigned int m = __ballot_sync(0xffffffffu, in);
            if (in) ci[pos + __popc(m & ((1u << lane) - 1))] = c;
            pos += __popc(m);
        }
    }
}

// One CTA per head: row_ptr[0] = 0 and the inclusive scan of the counts row_ptr[1..rows]; the head's block counts.
template <int THREADS>
__global__ void __launch_bounds__(THREADS) csr_scan_kernel(CsrArgs a) {
    __shared__ int scan[THREADS / 32];
    __shared__ int carry;
    constexpr int WARPS = THREADS / 32;
    const int h = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int32_t* rp = a.row_ptr + (int64_t)h * (a.rows + 1);
    if (threadIdx.x == 0) { rp[0] = 0; carry = 0; }
    __syncthreads();
    for (int base = 1; base <= a.rows; base += THREADS) {
        const int idx = base + threadIdx.x;
        int v = idx <= a.rows ? rp[idx] : 0;
        for (int o = 1; o < 32; o <<= 1) {
            const int n = __shfl_up_sync(0xffffffffu, v, o);
            if (lane >= o) v += n;
        }
        if (lane == 31) scan[warp] = v;
        __syncthreads();
        if (warp == 0) {
            int w = lane < WARPS ? scan[lane] : 0;
            for (int o = 1; o < 32; o <<= 1) {
                const int n = __shfl_up_sync(0xffffffffu, w, o);
                if (lane >= o) w += n;
            }
            if (lane < WARPS) scan[lane] = w;
        }
        __syncthreads();
        const int total = v + (warp > 0 ? scan[warp - 1] : 0) + carry;
        if (idx <= a.rows) rp[idx] = total;
        __syncthreads();
        if (threadIdx.x == THREADS - 1) carry = total;
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        a.heads[h].computed_blocks = rp[a.rows];
        a.heads[h].causal_blocks = a.causal;
    }
}

// Dense calls: every head computes every causal block.
__global__ void dense_heads_kernel(flexprefill_head_info* heads, int Hq, int64_t causal) {
    const int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= Hq) return;
    flexprefill_head_info hi{};
    hi.pattern = FLEXPREFILL_PATTERN_DENSE;
    hi.computed_blocks = causal;
    hi.causal_blocks = causal;
    hi.js_distance = __int_as_float(0x7fc00000);
    heads[h] = hi;
}

} // namespace flexprefill
