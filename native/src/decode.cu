// Decode attention behind flexprefill_decode: the flash-decoding kernel and, with more than one split, the combine
// (kernels/decode_attention.cuh), on the caller's stream with no allocation and no host synchronisation.
#include "internal.h"
#include "kernels/decode_attention.cuh"

#include <cmath>

namespace flexprefill {

namespace {

// The error of the launch just made (or an earlier asynchronous one), as a status naming the kernel.
flexprefill_status launched(const char* what) {
    const cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess) return FLEXPREFILL_OK;
    return FP_FAIL(FLEXPREFILL_ERROR_CUDA, "launch of %s: %s", what, cudaGetErrorString(err));
}

template <int D, int STAGES>
flexprefill_status launch_decode(const DecodeArgs& a, const DecodeLayout& L, cudaStream_t st) {
    constexpr int smem = decode_smem_bytes<D, STAGES>();
    const cudaError_t err =
        cudaFuncSetAttribute(decode_attention_kernel<D, STAGES>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (err != cudaSuccess)
        return FP_FAIL(FLEXPREFILL_ERROR_CUDA, "%d bytes of shared memory for the decode kernel: %s", smem,
                       cudaGetErrorString(err));
    launch(decode_attention_kernel<D, STAGES>, dim3(L.Hkv * L.chunks, L.nsplit), 32, smem, st, a);
    if (flexprefill_status s = launched("decode attention")) return s;
    if (L.nsplit == 1) return FLEXPREFILL_OK;
    launch(decode_combine_kernel<D>, L.Hq, kCombineThreads, combine_smem_bytes<D>(L.nsplit), st, a);
    return launched("decode combine");
}

template <int D>
flexprefill_status launch_with_stages(const DecodeArgs& a, const DecodeLayout& L, cudaStream_t st) {
    if (L.stages == 2) return launch_decode<D, 2>(a, L, st);
    if (L.stages == 4) return launch_decode<D, 4>(a, L, st);
    return launch_decode<D, 3>(a, L, st);
}

} // namespace

int32_t multiprocessor_count() {
    int device = 0, count = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || count < 1) {
        cudaGetLastError();
        return 132;
    }
    return count;
}

flexprefill_status run_decode(const flexprefill_params& p, const DecodeLayout& L) {
    cudaGetLastError(); // clear a stale error from an earlier, unrelated launch
    DecodeArgs a{};
    a.q = static_cast<const __nv_bfloat16*>(p.q);
    a.k = static_cast<const __nv_bfloat16*>(p.k);
    a.v = static_cast<const __nv_bfloat16*>(p.v);
    a.out = static_cast<__nv_bfloat16*>(p.out);
    a.lse = p.lse;
    a.q_hs = p.q_head_stride; a.k_rs = p.k_row_stride; a.k_hs = p.k_head_stride;
    a.v_rs = p.v_row_stride; a.v_hs = p.v_head_stride; a.o_hs = p.out_head_stride; a.lse_hs = p.lse_head_stride;
    a.T = L.T; a.G = L.G; a.chunks = L.chunks; a.split_len = L.split_len; a.nsplit = L.nsplit;
    a.scale_log2 = kLog2e / std::sqrt((float)L.D);
    if (L.nsplit > 1) {
        unsigned char* ws = static_cast<unsigned char*>(p.workspace);
        a.part_lse = reinterpret_cast<float*>(ws + L.off_lse);
        a.part_o = reinterpret_cast<float*>(ws + L.off_o);
    }
    cudaStream_t st = static_cast<cudaStream_t>(p.stream);
    return L.D == 64 ? launch_with_stages<64>(a, L, st) : launch_with_stages<128>(a, L, st);
}

} // namespace flexprefill
