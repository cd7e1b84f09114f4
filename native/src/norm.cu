// RMSNorm behind flexprefill_rms_norm (kernels/rms_norm.cuh), on the caller's stream.
#include "internal.h"
#include "kernels/rms_norm.cuh"

namespace flexprefill {

flexprefill_status run_rms_norm(const RmsNormCall& c) {
    RmsNormArgs a{static_cast<const __nv_bfloat16*>(c.x), static_cast<const __nv_bfloat16*>(c.weight),
                  static_cast<__nv_bfloat16*>(c.y), c.x_row_stride, c.y_row_stride, c.hidden, c.eps};
    cudaGetLastError(); // clear a stale error from an earlier, unrelated launch
    launch(rms_norm_kernel<kRmsNormThreads>, (unsigned)c.rows, kRmsNormThreads, 0, static_cast<cudaStream_t>(c.stream), a);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return FP_FAIL(FLEXPREFILL_ERROR_CUDA, "launch of rms norm: %s", cudaGetErrorString(err));
    return FLEXPREFILL_OK;
}

} // namespace flexprefill
