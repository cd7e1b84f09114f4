// Stand-in for pipeline.cu, decode.cu, norm.cu and silu.cu when the library is built without CUDA: the C API still
// validates and sizes workspaces (tested on CPU-only machines), and every call that would touch a device says why it
// cannot.
#include "internal.h"

namespace flexprefill {

bool cuda_available() { return false; }

const char* backend_description() { return "no cuda: libflexprefill was built without nvcc"; }

flexprefill_status run_pipeline(const flexprefill_params&, const Layout&, bool, bool) {
    return FP_FAIL(FLEXPREFILL_ERROR_NO_CUDA, "%s", backend_description());
}

flexprefill_status copy_to_host(const flexprefill_params&, void*, uint64_t, uint64_t) {
    return FP_FAIL(FLEXPREFILL_ERROR_NO_CUDA, "%s", backend_description());
}

int32_t multiprocessor_count() { return 132; } // workspaces sized as for an H100 / H200

flexprefill_status run_decode(const flexprefill_params&, const DecodeLayout&) {
    return FP_FAIL(FLEXPREFILL_ERROR_NO_CUDA, "%s", backend_description());
}

flexprefill_status run_rms_norm(const RmsNormCall&) {
    return FP_FAIL(FLEXPREFILL_ERROR_NO_CUDA, "%s", backend_description());
}

flexprefill_status run_silu_mul(const SiluMulCall&) {
    return FP_FAIL(FLEXPREFILL_ERROR_NO_CUDA, "%s", backend_description());
}

} // namespace flexprefill
