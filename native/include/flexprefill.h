/*
 * libflexprefill: FlexPrefill sparse-attention prefill on CUDA (estimate -> select -> CSR -> block-sparse attention),
 * and flash-decoding attention for the decode steps (flexprefill_decode).
 *
 * The C API the flash-attention way: one POD parameter struct, a few functions that return a status, and a
 * thread-local last-error string naming file:line. src/api.cpp is the only place that validates; the library never
 * prints and never exits. The selection rules are those of docs/flexprefill.md (the shared selection contract).
 *
 * Shapes (batch 1): queries are the last S positions T-S..T-1 of a T-token sequence.
 *   q   [S, Hq, D]   bf16   element (s, h, d) at q + s*q_row_stride + h*q_head_stride + d
 *   k,v [T, Hkv, D]  bf16   likewise with k_row_stride / k_head_stride (v_...)
 *   out [S, Hq, D]   bf16   likewise with out_row_stride / out_head_stride
 *   lse [Hq, S]      fp32   natural-log log-sum-exp of each query row, lse + h*lse_head_stride + s (optional)
 * Strides count elements, the last dimension (D) is contiguous. Head h uses KV head h / (Hq / Hkv).
 * All device work runs on `stream` (NULL: the legacy default stream); no call allocates device memory: the caller
 * passes a workspace of at least flexprefill_workspace_size() bytes, which also keeps the last selection for the
 * inspection functions.
 */
#ifndef FLEXPREFILL_H
#define FLEXPREFILL_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define FLEXPREFILL_API __declspec(dllexport)
#else
#define FLEXPREFILL_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum flexprefill_status {
    FLEXPREFILL_OK = 0,
    FLEXPREFILL_ERROR_INVALID_ARGUMENT = 1, /* a parameter is out of range; the message names it */
    FLEXPREFILL_ERROR_UNSUPPORTED = 2,      /* valid, but not implemented here (head_dim, block_size, ...): fall back */
    FLEXPREFILL_ERROR_WORKSPACE_TOO_SMALL = 3,
    FLEXPREFILL_ERROR_CUDA = 4,             /* a CUDA call failed; the message holds CUDA's */
    FLEXPREFILL_ERROR_NO_CUDA = 5,          /* library built without CUDA, or no device */
} flexprefill_status;

typedef enum flexprefill_mode {
    FLEXPREFILL_MODE_AUTO = 0,  /* FlexPrefill, dense fallback for short inputs (contract rule 1) */
    FLEXPREFILL_MODE_DENSE = 1, /* every causal block through the same kernel (the dense baseline / invariant) */
} flexprefill_mode;

typedef enum flexprefill_pattern {
    FLEXPREFILL_PATTERN_DENSE = 0,
    FLEXPREFILL_PATTERN_VERTICAL_SLASH = 1,
    FLEXPREFILL_PATTERN_QUERY_AWARE = 2,
} flexprefill_pattern;

typedef struct flexprefill_params {
    const void* q;
    const void* k;
    const void* v;
    void* out;
    float* lse;        /* may be NULL */
    void* workspace;   /* device memory, 256-byte aligned */
    void* stream;      /* cudaStream_t */
    uint64_t workspace_bytes;
    int64_t q_row_stride, q_head_stride;
    int64_t k_row_stride, k_head_stride;
    int64_t v_row_stride, v_head_stride;
    int64_t out_row_stride, out_head_stride;
    int64_t lse_head_stride;
    int32_t batch;      /* must be 1 */
    int32_t seq_q;      /* S */
    int32_t seq_k;      /* T >= S */
    int32_t heads_q;    /* Hq, a multiple of Hkv */
    int32_t heads_kv;   /* Hkv */
    int32_t head_dim;   /* D: 64 or 128 */
    int32_t block_size; /* bs: 64 or 128 */
    int32_t min_budget; /* tokens, >= 0 */
    int32_t max_budget; /* tokens; 0 = no cap */
    int32_t mode;       /* flexprefill_mode */
    int32_t variant;    /* sparse kernel: 0 default (on compute 9.0 with D 128 and bs 128 the sm_90a TMA kernel with
                           3 stages, or the sm_90a cp.async one when the TMA unit cannot take the strides; else
                           mma.sync v2), 1 / 2 mma.sync v1 / v2, 3 sm_90a cp.async, 4 sm_90a TMA with 2 stages, 5 with
                           free-running consumers (UNSUPPORTED where they cannot run); see src/kernels */
    float gamma;        /* (0, 1] */
    float tau;          /* [0, 1]; 0 disables query-aware heads */
    int32_t reserved;   /* 0 */
} flexprefill_params;

/* What the last selection chose for one head (inspection; filled on the device, read with flexprefill_read_heads). */
typedef struct flexprefill_head_info {
    int32_t pattern;        /* flexprefill_pattern */
    int32_t vertical_count; /* T_v: tokens covering gamma of the vertical distribution (0 when dense) */
    int32_t slash_count;    /* T_s likewise for the slash distribution */
    int32_t vertical_blocks;/* K_v after clamping */
    int32_t slash_bands;    /* K_s after clamping */
    int32_t qa_entries;     /* query-aware map entries selected (0 unless query-aware) */
    int64_t computed_blocks;/* nnz of the head's CSR */
    int64_t causal_blocks;  /* sum over existing rows r of (r + 1) */
    float js_distance;      /* sqrt(JS(a_est, a_true)); NaN when dense */
    uint32_t qa_threshold;  /* float bits of the smallest selected query-aware entry */
} flexprefill_head_info;

/* Fills defaults: gamma 0.95, tau 0.1, min_budget 1024, block_size 128, batch 1, mode AUTO; pointers NULL. */
FLEXPREFILL_API void flexprefill_params_init(flexprefill_params* p);

/* The message of the last failed call on this thread ("" when none), with file:line. */
FLEXPREFILL_API const char* flexprefill_last_error(void);

/* Library version, e.g. "0.1.0 (cuda sm_90a,sm_80)" or "0.1.0 (no cuda)". */
FLEXPREFILL_API const char* flexprefill_version(void);

/* sizeof(flexprefill_params) and sizeof(flexprefill_head_info): lets a binding check its mirror of the structs. */
FLEXPREFILL_API void flexprefill_abi_sizes(int32_t* params_bytes, int32_t* head_info_bytes);

/* 1 when built with CUDA and a device is visible, else 0 (never fails). */
FLEXPREFILL_API int32_t flexprefill_cuda_available(void);

/* Bytes of workspace the call described by p needs (pointers are not read). */
FLEXPREFILL_API flexprefill_status flexprefill_workspace_size(const flexprefill_params* p, uint64_t* bytes);

/* 1 when p would run dense (contract rule 1 or mode DENSE), 0 otherwise; validates like the others. */
FLEXPREFILL_API flexprefill_status flexprefill_is_dense(const flexprefill_params* p, int32_t* dense);

/* The whole pipeline: estimate, select, CSR, block-sparse attention; writes out (and lse when set). */
FLEXPREFILL_API flexprefill_status flexprefill_forward(const flexprefill_params* p);

/* Stages 1-3 only (estimate, select, CSR) into the workspace; out and lse are not touched (may be NULL). */
FLEXPREFILL_API flexprefill_status flexprefill_select(const flexprefill_params* p);

/* Stage 4 only: block-sparse attention over the selection a flexprefill_select with the same params left in the
   workspace. Select, read the heads, then attend: a caller can see the density before paying for attention (and run
   a faster dense kernel instead when the selection is nearly dense). */
FLEXPREFILL_API flexprefill_status flexprefill_attend(const flexprefill_params* p);

/* Number of existing query block rows (nb - floor((T-S)/bs)) and the CSR capacity per head (causal blocks). */
FLEXPREFILL_API flexprefill_status flexprefill_layout(const flexprefill_params* p, int32_t* rows, int64_t* causal_blocks);

/* Copies the per-head results of the last forward/select on this workspace to host memory (synchronises the
 * stream). heads: Hq entries. */
FLEXPREFILL_API flexprefill_status flexprefill_read_heads(const flexprefill_params* p, flexprefill_head_info* heads);

/* Copies head h's CSR to the host: row_ptr [rows + 1] (relative to the head), col_idx [computed_blocks]
 * (col_capacity entries available). Rows are the existing query block rows r0..nb-1 in order. */
FLEXPREFILL_API flexprefill_status flexprefill_read_csr(const flexprefill_params* p, int32_t head, int32_t* row_ptr,
                                                        int32_t* col_idx, int64_t col_capacity);

/* Copies the probe distributions (vertical[Hq][T], slash[Hq][T], fp32) of the last non-dense selection. */
FLEXPREFILL_API flexprefill_status flexprefill_read_estimates(const flexprefill_params* p, float* vertical, float* slash);

/* Decode attention (flash-decoding): the one new query of each head, at position T - 1, over all T = seq_k >= 1 keys
 * (no mask), bf16 in, fp32 accumulation. Uses the shapes and strides above with seq_q = 1 (q [1, Hq, D], k/v
 * [T, Hkv, D], out [1, Hq, D], lse [Hq] optional); heads_q any multiple of heads_kv, head_dim 64 or 128, batch 1.
 * A KV cache [Hkv, capacity, D] is row stride D and head stride capacity * D. block_size, gamma, tau, the budgets and
 * mode are not read; variant picks the kernel's cp.async pipeline depth for benchmarks: 0 default (2), or 2, 3, 4.
 * The split of T over CTAs follows the device's SM count, so the workspace is asked for on the device that runs the
 * call; it never shrinks as T grows (a workspace sized at one T serves every shorter call), and it is 0 bytes when
 * T needs one split (workspace may then be NULL). */
FLEXPREFILL_API flexprefill_status flexprefill_decode_workspace_size(const flexprefill_params* p, uint64_t* bytes);

/* Decode attention on p->stream; writes out (and lse when set). */
FLEXPREFILL_API flexprefill_status flexprefill_decode(const flexprefill_params* p);

/* RMSNorm over the last dimension as transformers computes it for bf16 models, in one launch on `stream`:
 *   y = bf16(weight * bf16(x * rsqrt(mean(x^2) + eps))), x and weight read as fp32.
 * x, y [rows, hidden] bf16 (row strides in elements; y may be x), weight [hidden] bf16, all 16-byte aligned;
 * hidden a multiple of 8 up to 65536 (UNSUPPORTED otherwise: fall back). */
FLEXPREFILL_API flexprefill_status flexprefill_rms_norm(const void* x, const void* weight, void* y, int64_t rows,
                                                        int32_t hidden, int64_t x_row_stride, int64_t y_row_stride,
                                                        float eps, void* stream);

/* SwiGLU's activation in one launch on `stream`, with PyTorch's bf16 eager roundings of F.silu(gate) * up:
 *   out = bf16(bf16(g / (1 + exp(-g))) * u),  g and u read as fp32,
 * over rows of gate_up [rows, 2 * ffn] bf16 (gate in columns 0..ffn-1, up in ffn..2*ffn-1; row stride
 * in_row_stride >= 2 * ffn elements) into out [rows, ffn] bf16 (row stride out_row_stride >= ffn). out may be gate_up
 * itself (the gate half, out_row_stride = in_row_stride), else it must not overlap gate_up. Both 16-byte aligned,
 * strides multiples of 8; ffn a multiple of 8 up to 131072 (UNSUPPORTED otherwise: fall back). */
FLEXPREFILL_API flexprefill_status flexprefill_silu_mul(const void* gate_up, void* out, int64_t rows, int32_t ffn,
                                                        int64_t in_row_stride, int64_t out_row_stride, void* stream);

#ifdef __cplusplus
}
#endif
#endif
