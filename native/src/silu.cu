// SiLU·mul behind flexprefill_silu_mul (kernels/silu_mul.cuh), on the caller's stream.
#include "internal.h"
#include "kernels/silu_mul.cuh"

namespace flexprefill {

flexprefill_status run_silu_mul(const SiluMulCall& c) {
    SiluMulArgs a{static_cast<const __nv_bfloat16*>(c.gate_up), static_cast<__nv_bfloat16*>(c.out), c.in_row_stride,
                  c.out_row_stride, c.ffn};
    const unsigned chunks = (unsigned)((c.ffn + kSiluMulThreads * 8 - 1) / (kSiluMulThreads * 8));
    cudaGetLastError(); // clear a stale error from an earlier, unrelated launch
    launch(silu_mul_kernel<kSiluMulThreads>, dim3((unsigned)c.rows, chunks), kSiluMulThreads, 0,
           static_cast<cudaStream_t>(c.stream), a);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return FP_FAIL(FLEXPREFILL_ERROR_CUDA, "launch of silu mul: %s", cudaGetErrorString(err));
    return FLEXPREFILL_OK;
}

} // namespace flexprefill
