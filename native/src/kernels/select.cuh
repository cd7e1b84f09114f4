// Stage 2, select (contract rules 3-9), all on the GPU with no host round trip:
//
// cover_pass_kernel: γ-cover count of a distribution x (rule 3): T_x = the smallest t with
//   sum(top-t of x) >= target. Instead of a sort, a threshold search on the float bit pattern (x >= 0, so bit order
//   is value order): each of 8 passes splits the current 16^(8-p)-wide bit range into 16 sub-ranges and
//   accumulates, for each k, the count and the float64 sum of the elements >= the k-th boundary, picking the largest
//   boundary whose S(θ) still reaches the target (pass 0's first sub-range is everything, so it also gives the
//   target: γ·Σx, or γ·rows for the query-aware map). After 8 passes θ is exact: every element > θ is in, and of
//   the elements equal to θ as many as the target needs (T_x = C(θ+1) + ceil((target - S(θ+1)) / θ)). Grid (chunks, instances); the last CTA of a pass to
//   arrive (threadfence + counter) decides for its instance, so one launch per pass.
//   Instances: 2 per head for (vertical, slash) and 1 per query-aware head for the map of rule 8. For the map the
//   selected set is {entries > θ} ∪ {entries == θ}: exact ties at the threshold are all taken (the contract's
//   "ties aside").
// select_kernel (one CTA per head, one warp per block): pooled block scores vb / band scores sb in float64 (rule 4),
//   k̄·q̂ logits, JS distance (rule 7) and the pattern, K_v / K_s with the clamps (rule 3).
// topk_kernel (grid over blocks and heads): top-K with the forced entries by exact rank counting (score +inf for
//   block 0 and band 0, ties -> smaller index: rule 5); csr.cuh maps band u to diagonals u and u+1 (rule 6).
// qa_map_kernel: P = softmax_row(q̄[r] · k̄[c] / sqrt(D)) over c <= r for query-aware heads (rule 8), fp32,
//   [Hq][rows][nb] with 0 above the diagonal; 32 rows per CTA (4 per warp), k̄ chunks of 32 blocks through shared
//   memory (v1: 8 rows per CTA, 0.19 ms at 128K on an H200).
//
// Versions (validated on native/emu and the GPU: counts, budgets, patterns and CSR identical to the float64 reference):
//   v1 select_kernel also ranked (one thread per block, scores from global memory, 32 CTAs): 0.32 ms at 128K on an
//   H200; v2 (this) pooling by warps, ranking in topk_kernel over the grid.
//   cover_pass_kernel v1: 16 launches (2 covers x 8 passes) 0.62 ms at 128K, ~39 us each for ~8 MB read; v2 (this):
//   8 loads in flight per thread instead of one (the loop waited one L2 round trip per element: 32 per thread), the
//   16 bins summed over a warp by a reduce-scatter (48 shuffles a warp instead of 240, which cost ~8 us per launch
//   at 8 CTAs per SM), the last CTA's decision from one read of the state into registers (v1 re-read the volatile
//   state in a serial loop: ~15 dependent L2 round trips). Same arithmetic (float64 bins, same decision): counts
//   checked on native/emu and the GPU; 0.61 -> 0.43 ms on an H200 (~27 us a launch, session 5 call 2). Not kept
//   (call 3): the vertical / slash cover as one launch of one 512-thread CTA per instance running all 8 passes took
//   0.50 ms alone (latency-bound: one SM per instance), against ~0.2 ms for its 8 launches over the grid.
#pragma once
#include "common.cuh"
#include "estimate.cuh" // fold_bins

namespace flexprefill {

struct CoverArgs {
    const float* base0; // instance i of head i / per_head reads base0 (which 0) or base1 (which 1) + head * n
    const float* base1;
    int64_t n;
    int per_head;       // 2: (vertical, slash); 1: query-aware map
    int chunk;
    int pass;           // 0..7
    double gamma;
    double qa_rows;     // > 0: target = γ·rows (query-aware map)
    CoverState* state;
    flexprefill_head_info* heads;
};

template <int THREADS>
__device__ __forceinline__ double block_sum_double(double v, double* red) {
    for (int x = 16; x > 0; x >>= 1) v += __shfl_xor_sync(0xffffffffu, v, x);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < THREADS / 32 ? red[lane] : 0.0;
        for (int x = 16; x > 0; x >>= 1) v += __shfl_xor_sync(0xffffffffu, v, x);
        if (lane == 0) red[0] = v;
    }
    __syncthreads();
    return red[0];
}

template <int THREADS>
__device__ __forceinline__ double block_max_double(double v, double* red) {
    for (int x = 16; x > 0; x >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, x));
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < THREADS / 32 ? red[lane] : -INFINITY;
        for (int x = 16; x > 0; x >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, x));
        if (lane == 0) red[0] = v;
    }
    __syncthreads();
    return red[0];
}

// Sums 16 bins over the 32 lanes of a warp: afterwards v[0] of lanes 2b and 2b + 1 is the warp's total of bin b
// (16 shuffles per value type instead of 16 x 5 for a butterfly per bin).
template <typename V>
__device__ __forceinline__ void warp_reduce_scatter16(V (&v)[16], int lane) {
    fold_bins<8, 16>(v, lane);
    fold_bins<4, 8>(v, lane);
    fold_bins<2, 4>(v, lane);
    fold_bins<1, 2>(v, lane);
    v[0] += __shfl_xor_sync(0xffffffffu, v[0], 1);
}

template <int THREADS>
__global__ void __launch_bounds__(THREADS) cover_pass_kernel(CoverArgs a) {
    constexpr int kBatch = 8; // loads in flight per thread: the chunk's 32 elements per thread in 4 round trips, not 32
    const int inst = blockIdx.y, head = inst / a.per_head, which = inst % a.per_head;
    if (a.per_head == 1 && a.heads[head].pattern != FLEXPREFILL_PATTERN_QUERY_AWARE) return;
    CoverState& st = a.state[inst];
    const float* x = (which ? a.base1 : a.base0) + (int64_t)head * a.n;
    const int64_t i0 = (int64_t)blockIdx.x * a.chunk, i1 = min(a.n, i0 + a.chunk);
    __shared__ double red_s[16][THREADS / 32];
    __shared__ unsigned int red_c[16][THREADS / 32];
    __shared__ bool last;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

    {
        const int shift = 28 - 4 * a.pass;
        const unsigned long long lo = st.lo, width = 16ull << shift;
        double s[16];
        unsigned int c[16];
#pragma unroll
        for (int k = 0; k < 16; k++) { s[k] = 0.0; c[k] = 0; }
        for (int64_t base = i0 + threadIdx.x; base < i1; base += kBatch * THREADS) {
            float xv[kBatch];
#pragma unroll
            for (int q = 0; q < kBatch; q++) {
                const int64_t i = base + (int64_t)q * THREADS;
                xv[q] = i < i1 ? x[i] : 0.f;
            }
#pragma unroll
            for (int q = 0; q < kBatch; q++) {
                const unsigned long long u = __float_as_uint(xv[q]);
                if (base + (int64_t)q * THREADS >= i1 || u < lo || u >= lo + width) continue;
                const unsigned int d = (unsigned int)((u - lo) >> shift);
#pragma unroll
                for (int k = 0; k < 16; k++)
                    if (d >= (unsigned)k) { s[k] += (double)xv[q]; c[k]++; }
            }
        }
        warp_reduce_scatter16(s, lane);
        warp_reduce_scatter16(c, lane);
        if ((lane & 1) == 0) { red_s[lane >> 1][warp] = s[0]; red_c[lane >> 1][warp] = c[0]; }
        __syncthreads();
        if (threadIdx.x < 16) {
            double sv = 0.0;
            unsigned int cv = 0;
            for (int w = 0; w < THREADS / 32; w++) { sv += red_s[threadIdx.x][w]; cv += red_c[threadIdx.x][w]; }
            if (cv) { atomicAdd(&st.bin_sum[threadIdx.x], sv); atomicAdd(&st.bin_cnt[threadIdx.x], cv); }
        }
    }
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(&st.arrived, 1u) == gridDim.x - 1;
    __syncthreads();
    if (!last || threadIdx.x != 0) return;
    __threadfence();
    // the decision, from one read of the state (all loads issued together, then registers only)
    volatile CoverState& vs = st;
    double bin_sum[16];
    unsigned int bin_cnt[16];
#pragma unroll
    for (int j = 0; j < 16; j++) { bin_sum[j] = vs.bin_sum[j]; bin_cnt[j] = vs.bin_cnt[j]; }
    double hi_sum = vs.hi_sum;
    unsigned int hi_cnt = vs.hi_cnt, lo = vs.lo;
    // pass 0 spans every bit pattern, so its first bin holds the whole sum: the target (the state starts zeroed)
    const double target = a.pass == 0 ? (a.qa_rows > 0 ? a.gamma * a.qa_rows : a.gamma * bin_sum[0]) : vs.target;
    if (a.pass == 0) vs.target = target;
    {
        const int shift = 28 - 4 * a.pass;
        int k = 0;
#pragma unroll
        for (int j = 1; j < 16; j++)
            if (hi_sum + bin_sum[j] >= target) k = j; // S(θ_j) falls with j: the largest j that reaches the target
        const unsigned int cnt_at = hi_cnt + bin_cnt[k]; // C(θ_k)
        if (k < 15) {
#pragma unroll
            for (int j = 0; j < 15; j++)
                if (j == k) { hi_sum = hi_sum + bin_sum[j + 1]; hi_cnt = hi_cnt + bin_cnt[j + 1]; }
        }
        lo = lo + ((unsigned int)k << shift);
        vs.hi_sum = hi_sum;
        vs.hi_cnt = hi_cnt;
        vs.lo = lo;
        if (a.pass == 7) {
            const unsigned int theta = lo;
            const float v = __uint_as_float(theta);
            const unsigned int eq = cnt_at - hi_cnt;
            double need = v > 0.f ? ceil((target - hi_sum) / (double)v) : (double)eq;
            need = fmin(fmax(need, 1.0), (double)eq);
            const int count = (int)(hi_cnt + (unsigned int)need);
            if (a.per_head == 2) {
                if (which == 0) a.heads[head].vertical_count = count;
                else a.heads[head].slash_count = count;
            } else {
                a.heads[head].qa_threshold = theta;
                a.heads[head].qa_entries = (int)cnt_at;
            }
        }
    }
    for (int j = 0; j < 16; j++) { vs.bin_sum[j] = 0.0; vs.bin_cnt[j] = 0; }
    vs.arrived = 0;
}

struct SelectArgs {
    const float* vertical; // [Hq][T]
    const float* slash;    // [Hq][T]
    const float* kbar;     // [Hkv][nb][D]
    const float* qhat;     // [Hq][D]
    double* pooled;        // [Hq][3][nb]: vb, sb, q̂·k̄ logits
    unsigned char* vsel;   // [Hq][nb] selected key blocks
    unsigned char* bands;  // [Hq][nb] selected bands
    flexprefill_head_info* heads;
    int T, bs, nb, mb, cap, G, D;
    float tau;
    bool query_aware;
};

template <int THREADS>
__global__ void __launch_bounds__(THREADS) select_kernel(SelectArgs a) {
    __shared__ double red[32];
    const int h = blockIdx.x, kvh = h / a.G, nb = a.nb;
    double* vb = a.pooled + (int64_t)h * 3 * nb;
    double* sb = vb + nb;
    double* z = sb + nb;
    const float* vert = a.vertical + (int64_t)h * a.T;
    const float* sl = a.slash + (int64_t)h * a.T;
    const float* qh = a.qhat + (int64_t)h * a.D;
    // one warp per block: coalesced sums over its keys and the q̂·k̄ dot product, reduced across the lanes
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    double zmax = -INFINITY;
    for (int c = warp; c < nb; c += THREADS / 32) {
        const int j0 = c * a.bs, j1 = min(a.T, j0 + a.bs);
        double sv = 0.0, ss = 0.0, zz = 0.0;
        for (int j = j0 + lane; j < j1; j += 32) { sv += (double)vert[j]; ss += (double)sl[j]; }
        const float* kb = a.kbar + ((int64_t)kvh * nb + c) * a.D;
        for (int d = lane; d < a.D; d += 32) zz += (double)qh[d] * (double)kb[d];
        for (int o = 16; o > 0; o >>= 1) {
            sv += __shfl_xor_sync(0xffffffffu, sv, o);
            ss += __shfl_xor_sync(0xffffffffu, ss, o);
            zz += __shfl_xor_sync(0xffffffffu, zz, o);
        }
        if (lane == 0) { vb[c] = sv; sb[c] = ss; z[c] = zz; }
        zmax = fmax(zmax, zz);
    }
    zmax = block_max_double<THREADS>(zmax, red); // also a barrier: vb, sb, z are visible to the block
    double esum = 0.0;
    for (int c = threadIdx.x; c < nb; c += THREADS) esum += exp(z[c] - zmax);
    esum = block_sum_double<THREADS>(esum, red);
    double js = 0.0;
    for (int c = threadIdx.x; c < nb; c += THREADS) {
        const double p = exp(z[c] - zmax) / esum, q = vb[c], m = 0.5 * (p + q);
        if (p > 0) js += 0.5 * p * log(p / m);
        if (q > 0) js += 0.5 * q * log(q / m);
    }
    js = block_sum_double<THREADS>(js, red);
    const double dist = sqrt(fmax(js, 0.0));

    flexprefill_head_info& hi = a.heads[h];
    int kv = hi.vertical_count / a.bs + 1, ks = hi.slash_count / a.bs + 1;
    kv = min(max(kv, a.mb), a.cap);
    ks = min(max(ks, a.mb), a.cap);
    const bool qa = a.query_aware && dist < (double)a.tau;
    if (qa) kv = ks = max(1, min(a.mb, a.cap)); // the forced entries stay even when min_budget is 0

    if (threadIdx.x == 0) {
        hi.pattern = qa ? FLEXPREFILL_PATTERN_QUERY_AWARE : FLEXPREFILL_PATTERN_VERTICAL_SLASH;
        hi.vertical_blocks = kv;
        hi.slash_bands = ks;
        hi.js_distance = (float)dist;
        if (!qa) { hi.qa_entries = 0; hi.qa_threshold = 0; }
    }
}

// Top-K by exact rank counting over the pooled scores select_kernel left (rule 5): grid (ceil(nb / THREADS), Hq), one
// thread per block c counting the blocks that outrank it, the scores streamed through shared memory in tiles.
// Writes vsel (rank < K_v) and bands (rank < K_s; csr.cuh turns bands into block diagonals, rule 6).
template <int THREADS>
__global__ void __launch_bounds__(THREADS) topk_kernel(SelectArgs a) {
    __shared__ double tile_v[THREADS], tile_s[THREADS];
    const int h = blockIdx.y, nb = a.nb, c = blockIdx.x * THREADS + threadIdx.x;
    const double* vb = a.pooled + (int64_t)h * 3 * nb;
    const double* sb = vb + nb;
    const int kv = a.heads[h].vertical_blocks, ks = a.heads[h].slash_bands;
    // block 0 and band 0 are forced: score +inf; padding -inf never outranks anything
    auto score = [&](const double* x, int i) { return i >= nb ? -INFINITY : i == 0 ? INFINITY : x[i]; };
    const double sv = score(vb, c), ss = score(sb, c);
    int rv = 0, rs = 0;
    for (int o0 = 0; o0 < nb; o0 += THREADS) {
        __syncthreads();
        tile_v[threadIdx.x] = score(vb, o0 + threadIdx.x);
        tile_s[threadIdx.x] = score(sb, o0 + threadIdx.x);
        __syncthreads();
        for (int j = 0; j < THREADS; j++) {
            const int o = o0 + j;
            const double ov = tile_v[j], os = tile_s[j];
            rv += (ov > sv || (ov == sv && o < c)) ? 1 : 0;
            rs += (os > ss || (os == ss && o < c)) ? 1 : 0;
        }
    }
    if (c >= nb) return;
    a.vsel[(int64_t)h * nb + c] = rv < kv ? 1 : 0;
    a.bands[(int64_t)h * nb + c] = rs < ks ? 1 : 0;
}

struct QaMapArgs {
    const float* qbar; // [Hq][rows][D], unscaled
    const float* kbar; // [Hkv][nb][D]
    float* map;        // [Hq][rows][nb]
    const flexprefill_head_info* heads;
    int r0, rows, nb, G;
    float scale;       // 1/sqrt(D)
};

constexpr int kQaRows = 32; // map rows per CTA: 8 warps x 4 rows, so each k̄ tile read from L2 serves 32 rows

template <int D>
__global__ void __launch_bounds__(256) qa_map_kernel(QaMapArgs a) {
    constexpr int PER_WARP = kQaRows / 8;
    __shared__ float qs[kQaRows][D];
    __shared__ float ks[32][D + 1];
    const int h = blockIdx.y;
    if (a.heads[h].pattern != FLEXPREFILL_PATTERN_QUERY_AWARE) return;
    const int kvh = h / a.G, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int ibase = blockIdx.x * kQaRows;
    for (int x = threadIdx.x; x < kQaRows * D; x += 256) {
        const int rr = ibase + x / D;
        qs[x / D][x % D] = rr < a.rows ? a.qbar[((int64_t)h * a.rows + rr) * D + x % D] : 0.f;
    }
    const int rmax = min(a.r0 + ibase + kQaRows - 1, a.nb - 1);
    const float* kb = a.kbar + (int64_t)kvh * a.nb * D;
    // this warp's rows: warp, warp + 8, warp + 16, warp + 24 of the CTA's 32
    auto row_of = [&](int k) { return a.map + ((int64_t)h * a.rows + ibase + warp + 8 * k) * a.nb; };
    for (int c0 = 0; c0 <= rmax; c0 += 32) {
        __syncthreads();
        for (int x = threadIdx.x; x < 32 * D; x += 256) {
            const int c = c0 + x / D;
            ks[x / D][x % D] = c < a.nb ? kb[(int64_t)c * D + x % D] : 0.f;
        }
        __syncthreads();
        const int c = c0 + lane;
        float acc[PER_WARP] = {};
#pragma unroll 16
        for (int d = 0; d < D; d++) {
            const float kv = ks[lane][d];
#pragma unroll
            for (int k = 0; k < PER_WARP; k++) acc[k] += qs[warp + 8 * k][d] * kv;
        }
#pragma unroll
        for (int k = 0; k < PER_WARP; k++) {
            const int i = ibase + warp + 8 * k;
            if (i < a.rows && c <= a.r0 + i) row_of(k)[c] = acc[k] * a.scale;
        }
    }
    __syncwarp();
    for (int k = 0; k < PER_WARP; k++) {
        const int i = ibase + warp + 8 * k, r = a.r0 + i;
        if (i >= a.rows) break;
        float* row = row_of(k);
        float mx = -INFINITY;
        for (int c = lane; c <= r; c += 32) mx = fmaxf(mx, row[c]);
        for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        float sum = 0.f;
        for (int c = lane; c <= r; c += 32) sum += expf(row[c] - mx);
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        const float inv = 1.f / sum;
        for (int c = lane; c < a.nb; c += 32) row[c] = c <= r ? expf(row[c] - mx) * inv : 0.f;
    }
}

} // namespace flexprefill
