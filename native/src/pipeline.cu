// The CUDA pipeline behind the C API: estimate -> select -> CSR -> sparse attention, all launched on the caller's
// stream with no host synchronisation and no allocation (buffers live in the caller's workspace, see Layout).
#include "internal.h"
#include "kernels/common.cuh"
#include "kernels/csr.cuh"
#include "kernels/estimate.cuh"
#include "kernels/select.cuh"
#include "kernels/sparse_attention.cuh"
#ifndef FLEXPREFILL_EMULATE
#include "kernels/sparse_attention_sm90.cuh"
#include "kernels/sparse_attention_sm90_tma.cuh"
#endif

#include <cmath>

namespace flexprefill {

namespace {

#define FP_CUDA(call)                                                                                                  \
    do {                                                                                                               \
        cudaError_t err_ = (call);                                                                                     \
        if (err_ != cudaSuccess) return FP_FAIL(FLEXPREFILL_ERROR_CUDA, "%s: %s", #call, cudaGetErrorString(err_));    \
    } while (0)
#define FP_LAUNCHED(what)                                                                                              \
    do {                                                                                                               \
        cudaError_t err_ = cudaGetLastError();                                                                         \
        if (err_ != cudaSuccess) return FP_FAIL(FLEXPREFILL_ERROR_CUDA, "launch of %s: %s", what, cudaGetErrorString(err_)); \
    } while (0)

template <typename T>
T* at(const flexprefill_params& p, uint64_t off) {
    return reinterpret_cast<T*>(static_cast<unsigned char*>(p.workspace) + off);
}

// Raises the dynamic shared-memory limit of a kernel once per process (per kernel instantiation).
template <typename K>
cudaError_t allow_smem(K kernel, int bytes) {
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

template <int D, int WARPS>
flexprefill_status launch_probe(const flexprefill_params& p, const Layout& L, cudaStream_t st) {
    ProbeArgs a{};
    a.q = static_cast<const __nv_bfloat16*>(p.q);
    a.k = static_cast<const __nv_bfloat16*>(p.k);
    a.q_rs = p.q_row_stride; a.q_hs = p.q_head_stride; a.k_rs = p.k_row_stride; a.k_hs = p.k_head_stride;
    a.S = L.S; a.T = L.T; a.G = L.G; a.split_len = L.split_len; a.nsplit = L.nsplit;
    a.scale_log2 = kLog2e / std::sqrt((float)D);
    a.part = at<float>(p, L.off_part);
    a.vertical = at<float>(p, L.off_vertical);
    a.slash = at<float>(p, L.off_slash);
    // pass 1 takes two query heads of a KV group per CTA when the group size is even (each K tile loaded once for both)
    const bool pairs = L.G % 2 == 0;
    auto pass1 = pairs ? probe_stats_kernel<D, WARPS, 2> : probe_stats_kernel<D, WARPS, 1>;
    const int smem1 = pairs ? probe_stats_smem_bytes<D, WARPS, 2>() : probe_stats_smem_bytes<D, WARPS, 1>();
    const int smem2 = probe_sums_smem_bytes<D, WARPS>(L.split_len);
    FP_CUDA(allow_smem(pass1, smem1));
    FP_CUDA(allow_smem(probe_sums_kernel<D, WARPS>, smem2));
    FP_CUDA(cudaMemsetAsync(a.slash, 0, sizeof(float) * (size_t)L.Hq * L.T, st));
    launch(pass1, dim3(L.Hq / (pairs ? 2 : 1), L.nsplit), WARPS * 32, smem1, st, a);
    FP_LAUNCHED("probe pass 1");
    launch(probe_sums_kernel<D, WARPS>, dim3(L.Hq, L.nsplit), WARPS * 32, smem2, st, a);
    FP_LAUNCHED("probe pass 2");
    return FLEXPREFILL_OK;
}

AttnArgs attention_args(const flexprefill_params& p, const Layout& L, bool dense) {
    AttnArgs a{};
    a.q = static_cast<const __nv_bfloat16*>(p.q);
    a.k = static_cast<const __nv_bfloat16*>(p.k);
    a.v = static_cast<const __nv_bfloat16*>(p.v);
    a.out = static_cast<__nv_bfloat16*>(p.out);
    a.lse = p.lse;
    a.q_rs = p.q_row_stride; a.q_hs = p.q_head_stride; a.k_rs = p.k_row_stride; a.k_hs = p.k_head_stride;
    a.v_rs = p.v_row_stride; a.v_hs = p.v_head_stride; a.o_rs = p.out_row_stride; a.o_hs = p.out_head_stride;
    a.lse_hs = p.lse_head_stride;
    a.S = L.S; a.T = L.T; a.G = L.G; a.Hq = L.Hq; a.bs = L.bs; a.r0 = L.r0; a.rows = L.rows;
    a.row_ptr = dense ? nullptr : at<int32_t>(p, L.off_rowptr);
    a.col_idx = dense ? nullptr : at<int32_t>(p, L.off_colidx);
    a.causal = L.causal;
    a.scale_log2 = kLog2e / std::sqrt((float)L.D);
    return a;
}

template <int D, int WARPS, int MIN_BLOCKS>
flexprefill_status launch_attention(const flexprefill_params& p, const Layout& L, cudaStream_t st, bool dense) {
    constexpr int smem = attn_smem_bytes<D, WARPS>();
    FP_CUDA(allow_smem(sparse_attention_kernel<D, WARPS, MIN_BLOCKS>, smem));
    launch(sparse_attention_kernel<D, WARPS, MIN_BLOCKS>, (unsigned)L.rows * L.Hq, WARPS * 32, smem, st,
           attention_args(p, L, dense));
    FP_LAUNCHED("sparse attention");
    return FLEXPREFILL_OK;
}

// The sm_90a kernel runs on compute capability 9.0 exactly (its SASS is arch-specific), for D = 128 and bs = 128.
bool hopper_kernel_applies(const Layout& L) {
#ifdef FLEXPREFILL_EMULATE
    (void)L;
    return false;
#else
    int dev = 0, major = 0, minor = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return major == 9 && minor == 0 && L.D == 128 && L.bs == 128;
#endif
}

#ifndef FLEXPREFILL_EMULATE
// cuTensorMapEncodeTiled through the runtime's driver entry point (no link-time dependency on libcuda).
using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

EncodeTiled encode_tiled() {
    static const EncodeTiled fn = [] {
        void* f = nullptr;
        cudaDriverEntryPointQueryResult found{};
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &found) != cudaSuccess ||
            found != cudaDriverEntryPointSuccess) {
            cudaGetLastError();
            return EncodeTiled{};
        }
        return reinterpret_cast<EncodeTiled>(f);
    }();
    return fn;
}

// A [rows, heads, 128] bf16 tensor (strides in elements) as a tensor map of 64 x 1 x 128 boxes with the 128-byte
// swizzle, dimensions ordered by stride (the TMA unit wants them ascending). False when the TMA unit cannot take it.
bool head_map(CUtensorMap& map, int& heads_outer, const void* base, int64_t rows, int64_t heads, int64_t row_stride,
              int64_t head_stride) {
    const EncodeTiled encode = encode_tiled();
    if (!encode || reinterpret_cast<uintptr_t>(base) % 16 || (row_stride * 2) % 16 || (head_stride * 2) % 16) return false;
    heads_outer = head_stride > row_stride || heads == 1;
    const cuuint64_t dims[3] = {128, (cuuint64_t)(heads_outer ? rows : heads), (cuuint64_t)(heads_outer ? heads : rows)};
    const cuuint64_t strides[2] = {(cuuint64_t)(heads_outer ? row_stride : head_stride) * 2,
                                   (cuuint64_t)(heads_outer ? head_stride : row_stride) * 2};
    const cuuint32_t box[3] = {64, heads_outer ? 128u : 1u, heads_outer ? 1u : 128u}, unit[3] = {1, 1, 1};
    return encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(base), dims, strides, box, unit,
                  CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// The tensor maps of the warp-specialised TMA kernel when the tensors suit the TMA unit; false otherwise.
bool tma_maps(const flexprefill_params& p, const Layout& L, sm90::TmaMaps& m) {
    return head_map(m.q, m.q_heads_outer, p.q, L.S, L.Hq, p.q_row_stride, p.q_head_stride) &&
           head_map(m.k, m.k_heads_outer, p.k, L.T, L.Hkv, p.k_row_stride, p.k_head_stride) &&
           head_map(m.v, m.v_heads_outer, p.v, L.T, L.Hkv, p.v_row_stride, p.v_head_stride);
}

// A TMA kernel instantiation and its shared memory: the default (ping-pong, 3 stages), variant 4 (2 stages) or 5
// (free-running consumers).
struct TmaKernel {
    void (*kernel)(const sm90::TmaMaps, AttnArgs);
    int smem;
};

TmaKernel tma_kernel(int variant) {
    using namespace sm90;
    if (variant == 4) return {sparse_attention_tma_kernel<true, 2>, tma_smem_bytes<2>()};
    if (variant == 5) return {sparse_attention_tma_kernel<false, 3>, tma_smem_bytes<3>()};
    return {sparse_attention_tma_kernel<true, 3>, tma_smem_bytes<3>()};
}
#endif

flexprefill_status launch_attention_sm90(const flexprefill_params& p, const Layout& L, cudaStream_t st, bool dense) {
#ifdef FLEXPREFILL_EMULATE
    (void)p; (void)L; (void)st; (void)dense;
    return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "the sm_90a attention kernel does not run on the emulator");
#else
    sm90::TmaMaps maps{};
    const bool tma = p.variant != 3 && tma_maps(p, L, maps);
    if (p.variant >= 4 && !tma)
        return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "variants 4 and 5 (TMA kernels): the TMA unit cannot take these tensors "
                       "(16-byte aligned pointers and strides needed) or cuTensorMapEncodeTiled is missing");
    if (tma) {
        const TmaKernel k = tma_kernel(p.variant);
        FP_CUDA(allow_smem(k.kernel, k.smem));
        launch(k.kernel, (unsigned)L.rows * L.Hq, sm90::kTmaThreads, k.smem, st, maps, attention_args(p, L, dense));
        FP_LAUNCHED("sparse attention (sm_90a, TMA)");
        return FLEXPREFILL_OK;
    }
    FP_CUDA(allow_smem(sm90::sparse_attention_kernel, sm90::kAttnSmem));
    launch(sm90::sparse_attention_kernel, (unsigned)L.rows * L.Hq, sm90::kAttnThreads, sm90::kAttnSmem, st,
           attention_args(p, L, dense));
    FP_LAUNCHED("sparse attention (sm_90a)");
    return FLEXPREFILL_OK;
#endif
}

template <int D>
flexprefill_status launch_mean(const flexprefill_params& p, cudaStream_t st, MeanArgs a, dim3 grid) {
    launch(mean_rows_kernel<D>, grid, kMeanThreads, 0, st, a);
    FP_LAUNCHED("mean rows");
    return FLEXPREFILL_OK;
}

flexprefill_status mean(const flexprefill_params& p, const Layout& L, cudaStream_t st, MeanArgs a, dim3 grid) {
    return L.D == 64 ? launch_mean<64>(p, st, a, grid) : launch_mean<128>(p, st, a, grid);
}

flexprefill_status cover(const flexprefill_params& p, cudaStream_t st, CoverArgs a, int instances) {
    constexpr int kThreads = 256;
    const int chunks = (int)std::min<int64_t>(256, std::max<int64_t>(1, (a.n + 8191) / 8192));
    a.chunk = (int)((a.n + chunks - 1) / chunks);
    for (int pass = 0; pass < 8; pass++) {
        a.pass = pass;
        launch(cover_pass_kernel<kThreads>, dim3(chunks, instances), kThreads, 0, st, a);
        FP_LAUNCHED("cover pass");
    }
    return FLEXPREFILL_OK;
}

flexprefill_status select_stage(const flexprefill_params& p, const Layout& L, cudaStream_t st) {
    auto* heads = at<flexprefill_head_info>(p, L.off_heads);
    const float scale = 1.f / std::sqrt((float)L.D);
    // k̄ per key block, q̂ over the probe
    MeanArgs km{static_cast<const __nv_bfloat16*>(p.k), p.k_row_stride, p.k_head_stride, 0, L.bs, 0, L.T, 0, L.nb,
                1.f, at<float>(p, L.off_kbar), heads, -1};
    if (auto s = mean(p, L, st, km, dim3(L.nb, L.Hkv))) return s;
    MeanArgs qh{static_cast<const __nv_bfloat16*>(p.q), p.q_row_stride, p.q_head_stride, 0, 0, L.T - L.P, L.T,
                L.T - L.S, 1, scale, at<float>(p, L.off_qhat), heads, -1};
    if (auto s = mean(p, L, st, qh, dim3(1, L.Hq))) return s;

    flexprefill_status s = L.D == 64 ? (L.bs == 64 ? launch_probe<64, 4>(p, L, st) : launch_probe<64, 8>(p, L, st))
                                     : (L.bs == 64 ? launch_probe<128, 4>(p, L, st) : launch_probe<128, 8>(p, L, st));
    if (s) return s;

    auto* state = at<CoverState>(p, L.off_cover);
    FP_CUDA(cudaMemsetAsync(state, 0, sizeof(CoverState) * 3 * (size_t)L.Hq, st));
    CoverArgs ca{};
    ca.base0 = at<float>(p, L.off_vertical);
    ca.base1 = at<float>(p, L.off_slash);
    ca.n = L.T;
    ca.per_head = 2;
    ca.gamma = p.gamma;
    ca.qa_rows = 0;
    ca.state = state;
    ca.heads = heads;
    if (auto e = cover(p, st, ca, 2 * L.Hq)) return e;

    SelectArgs sa{};
    sa.vertical = ca.base0; sa.slash = ca.base1;
    sa.kbar = at<float>(p, L.off_kbar); sa.qhat = at<float>(p, L.off_qhat);
    sa.pooled = at<double>(p, L.off_pooled);
    sa.vsel = at<unsigned char>(p, L.off_vsel); sa.bands = at<unsigned char>(p, L.off_bands);
    sa.heads = heads;
    sa.T = L.T; sa.bs = L.bs; sa.nb = L.nb; sa.mb = L.mb; sa.cap = L.cap; sa.G = L.G; sa.D = L.D;
    sa.tau = p.tau; sa.query_aware = L.query_aware;
    launch(select_kernel<1024>, L.Hq, 1024, 0, st, sa);
    FP_LAUNCHED("select");
    launch(topk_kernel<256>, dim3((L.nb + 255) / 256, L.Hq), 256, 0, st, sa);
    FP_LAUNCHED("top-k");

    float* map = nullptr;
    if (L.query_aware) {
        MeanArgs qb{static_cast<const __nv_bfloat16*>(p.q), p.q_row_stride, p.q_head_stride, L.r0, L.bs, L.T - L.S,
                    L.T, L.T - L.S, L.rows, 1.f, at<float>(p, L.off_qbar), heads, FLEXPREFILL_PATTERN_QUERY_AWARE};
        if (auto e = mean(p, L, st, qb, dim3(L.rows, L.Hq))) return e;
        map = at<float>(p, L.off_qamap);
        QaMapArgs qa{at<float>(p, L.off_qbar), sa.kbar, map, heads, L.r0, L.rows, L.nb, L.G, scale};
        const dim3 grid((L.rows + kQaRows - 1) / kQaRows, L.Hq);
        if (L.D == 64) launch(qa_map_kernel<64>, grid, 256, 0, st, qa);
        else launch(qa_map_kernel<128>, grid, 256, 0, st, qa);
        FP_LAUNCHED("query-aware map");
        CoverArgs cq = ca;
        cq.base0 = cq.base1 = map;
        cq.n = (int64_t)L.rows * L.nb;
        cq.per_head = 1;
        cq.qa_rows = L.rows;
        cq.state = state + 2 * L.Hq;
        if (auto e = cover(p, st, cq, L.Hq)) return e;
    }

    CsrArgs cs{sa.vsel, sa.bands, map, heads, at<int32_t>(p, L.off_rowptr), at<int32_t>(p, L.off_colidx),
               L.r0, L.rows, L.nb, L.causal};
    constexpr int kCsrThreads = 256;
    const dim3 row_grid((L.rows + kCsrThreads / 32 - 1) / (kCsrThreads / 32), L.Hq);
    FP_CUDA(allow_smem(csr_rows_kernel<kCsrThreads, false>, 2 * L.nb));
    FP_CUDA(allow_smem(csr_rows_kernel<kCsrThreads, true>, 2 * L.nb));
    launch(csr_rows_kernel<kCsrThreads, false>, row_grid, kCsrThreads, 2 * L.nb, st, cs);
    FP_LAUNCHED("csr count");
    launch(csr_scan_kernel<1024>, L.Hq, 1024, 0, st, cs);
    FP_LAUNCHED("csr scan");
    launch(csr_rows_kernel<kCsrThreads, true>, row_grid, kCsrThreads, 2 * L.nb, st, cs);
    FP_LAUNCHED("csr write");
    return FLEXPREFILL_OK;
}

} // namespace

bool cuda_available() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return n > 0;
}

const char* backend_description() { return "cuda " FLEXPREFILL_CUDA_ARCHS; }

flexprefill_status run_pipeline(const flexprefill_params& p, const Layout& L, bool select, bool attention) {
    cudaStream_t st = static_cast<cudaStream_t>(p.stream);
    cudaGetLastError(); // clear a stale error from an earlier, unrelated launch
    if (!select) {
        // attention over the selection already in the workspace (flexprefill_attend)
    } else if (L.dense) {
        launch(dense_heads_kernel, (L.Hq + 127) / 128, 128, 0, st, at<flexprefill_head_info>(p, L.off_heads), L.Hq, L.causal);
        FP_LAUNCHED("dense heads");
    } else if (auto s = select_stage(p, L, st)) {
        return s;
    }
    if (!attention) return FLEXPREFILL_OK;
    const bool dense = L.dense;
    const bool hopper = hopper_kernel_applies(L);
    if (p.variant >= 3 && !hopper)
        return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "variants 3 to 5 (sm_90a kernels) need compute capability 9.0, D 128 and bs 128");
    if (p.variant >= 3 || (p.variant == 0 && hopper)) return launch_attention_sm90(p, L, st, dense);
    if (L.D == 64) return L.bs == 64 ? launch_attention<64, 4, 2>(p, L, st, dense) : launch_attention<64, 8, 2>(p, L, st, dense);
    if (L.bs == 64) return launch_attention<128, 4, 2>(p, L, st, dense);
    return p.variant == 1 ? launch_attention<128, 8, 1>(p, L, st, dense) : launch_attention<128, 8, 2>(p, L, st, dense);
}

flexprefill_status copy_to_host(const flexprefill_params& p, void* dst, uint64_t off, uint64_t bytes) {
    cudaStream_t st = static_cast<cudaStream_t>(p.stream);
    FP_CUDA(cudaMemcpyAsync(dst, static_cast<unsigned char*>(p.workspace) + off, bytes, cudaMemcpyDeviceToHost, st));
    FP_CUDA(cudaStreamSynchronize(st));
    return FLEXPREFILL_OK;
}

} // namespace flexprefill
