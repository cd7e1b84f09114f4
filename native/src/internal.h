// Internal interface between api.cpp (validation, layout, errors) and the CUDA pipeline (pipeline.cu) or its
// CPU-only stand-in (no_cuda.cpp). Everything here has already been validated by api.cpp.
#pragma once
#include "flexprefill.h"
#include <cstdint>

namespace flexprefill {

// Sizes derived once per call, and where each buffer lives inside the caller's workspace (byte offsets).
struct Layout {
    int32_t S, T, Hq, Hkv, G, D, bs;
    int32_t nb;      // key blocks: ceil(T / bs)
    int32_t r0;      // first existing query block row: floor((T - S) / bs)
    int32_t rows;    // nb - r0
    int32_t P;       // probe rows (= bs)
    int32_t mb;      // ceil(min_budget / bs)
    int32_t cap;     // nb, or min(nb, ceil(max_budget / bs))
    int64_t causal;  // sum_{r=r0}^{nb-1} (r + 1): CSR capacity per head
    bool dense;      // contract rule 1 or mode DENSE
    bool query_aware;// tau > 0
    int32_t split_len, nsplit; // probe key range per CTA (multiple of 64) and how many of them
    uint64_t off_heads, off_cover, off_pooled, off_part, off_vertical, off_slash, off_kbar, off_qbar, off_qhat, off_vsel, off_bands,
        off_qamap, off_rowptr, off_colidx, total;
};

// State of one γ-cover threshold search (select.cuh), kept in the workspace between its passes.
struct CoverState {
    double target, hi_sum;
    double bin_sum[16];
    unsigned int bin_cnt[16];
    unsigned int lo, hi_cnt, arrived, pad;
};

// Sets the thread-local last error; returns status for `return fail(...)` chains.
flexprefill_status fail(flexprefill_status status, const char* file, int line, const char* fmt, ...);
#define FP_FAIL(status, ...) ::flexprefill::fail(status, __FILE__, __LINE__, __VA_ARGS__)

// Implemented by pipeline.cu (CUDA) or no_cuda.cpp.
bool cuda_available();
const char* backend_description();
// select: estimate, select and CSR into the workspace; attention: the sparse kernel over the workspace's CSR.
flexprefill_status run_pipeline(const flexprefill_params& p, const Layout& L, bool select, bool attention);
flexprefill_status copy_to_host(const flexprefill_params& p, void* dst, uint64_t workspace_offset, uint64_t bytes);

// Decode attention (flexprefill_decode): sizes and the workspace of the partial results per split.
struct DecodeLayout {
    int32_t T, Hq, Hkv, G, D;
    int32_t chunks;    // CTAs per KV head and split: ceil(G / 16), the query heads one MMA holds
    int32_t split_len; // keys per CTA, a multiple of 64
    int32_t nsplit;    // ceil(T / split_len); 1: the kernel writes out itself, no workspace
    int32_t stages;    // cp.async ring depth: 2, 3 or 4
    uint64_t off_lse, off_o, total; // [Hq][nsplit] log2-sum-exp and [Hq][nsplit][D] o of each split (fp32)
};

// Implemented by decode.cu (also under the emulator) or no_cuda.cpp.
int32_t multiprocessor_count(); // of the current device; a nominal 132 when there is none
flexprefill_status run_decode(const flexprefill_params& p, const DecodeLayout& L);

// One flexprefill_rms_norm call, validated.
struct RmsNormCall {
    const void* x;
    const void* weight;
    void* y;
    int64_t rows, x_row_stride, y_row_stride;
    int32_t hidden;
    float eps;
    void* stream;
};
// Implemented by norm.cu (also under the emulator) or no_cuda.cpp.
flexprefill_status run_rms_norm(const RmsNormCall& c);

// One flexprefill_silu_mul call, validated.
struct SiluMulCall {
    const void* gate_up;
    void* out;
    int64_t rows;
    int32_t ffn;
    int64_t in_row_stride, out_row_stride;
    void* stream;
};
// Implemented by silu.cu (also under the emulator) or no_cuda.cpp.
flexprefill_status run_silu_mul(const SiluMulCall& c);

} // namespace flexprefill
