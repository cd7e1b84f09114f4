// The C API: the only place that validates parameters. Computes the call's layout (sizes, workspace offsets) and
// hands it to the pipeline, which trusts it.
#include "internal.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace flexprefill {

namespace {
thread_local std::string g_last_error;

uint64_t align256(uint64_t x) { return (x + 255) & ~uint64_t(255); }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
} // namespace

flexprefill_status fail(flexprefill_status status, const char* file, int line, const char* fmt, ...) {
    char msg[512];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, args);
    va_end(args);
    const char* base = std::strrchr(file, '/');
    char full[640];
    std::snprintf(full, sizeof full, "%s (%s:%d)", msg, base ? base + 1 : file, line);
    g_last_error = full;
    return status;
}

namespace {

flexprefill_status validate_heads(const flexprefill_params* p) {
    if (p->heads_kv < 1 || p->heads_q < 1 || p->heads_q % p->heads_kv != 0)
        return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "heads_q (%d) must be a positive multiple of heads_kv (%d)",
                       p->heads_q, p->heads_kv);
    if (p->head_dim != 64 && p->head_dim != 128)
        return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "head_dim is %d; supported: 64, 128", p->head_dim);
    return FLEXPREFILL_OK;
}

// Pointers, alignment and strides of a call that touches the device.
flexprefill_status validate_pointers(const flexprefill_params* p, bool need_output, bool need_workspace) {
    if (!p->q || !p->k || !p->v) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "q, k and v must be device pointers (one is NULL)");
    if (need_output && !p->out) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "out is NULL");
    if (need_workspace && !p->workspace) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "workspace is NULL");
    if (reinterpret_cast<uintptr_t>(p->workspace) % 256 != 0)
        return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "workspace must be 256-byte aligned");
    const uintptr_t ptrs[] = {reinterpret_cast<uintptr_t>(p->q), reinterpret_cast<uintptr_t>(p->k),
                              reinterpret_cast<uintptr_t>(p->v), reinterpret_cast<uintptr_t>(p->out)};
    for (uintptr_t ptr : ptrs)
        if (ptr % 16 != 0) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "q, k, v and out must be 16-byte aligned");
    const int64_t strides[] = {p->q_row_stride, p->q_head_stride, p->k_row_stride, p->k_head_stride,
                               p->v_row_stride, p->v_head_stride, p->out_row_stride, p->out_head_stride};
    const char* names[] = {"q_row_stride", "q_head_stride", "k_row_stride", "k_head_stride",
                           "v_row_stride", "v_head_stride", "out_row_stride", "out_head_stride"};
    for (int i = 0; i < 8; i++) {
        if (strides[i] < p->head_dim)
            return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "%s is %lld; it must be >= head_dim (%d)", names[i],
                           (long long)strides[i], p->head_dim);
        if (strides[i] % 8 != 0)
            return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "%s is %lld; it must be a multiple of 8 (16-byte rows)",
                           names[i], (long long)strides[i]);
    }
    if (p->lse && p->lse_head_stride < p->seq_q)
        return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "lse_head_stride is %lld; it must be >= seq_q (%d)",
                       (long long)p->lse_head_stride, p->seq_q);
    return FLEXPREFILL_OK;
}

flexprefill_status validate(const flexprefill_params* p, bool need_pointers, bool need_output) {
    if (!p) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "params is NULL");
    if (p->batch != 1) return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "batch is %d; only batch 1 is supported", p->batch);
    if (p->seq_q < 1) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "seq_q is %d; it must be >= 1", p->seq_q);
    if (p->seq_k < p->seq_q)
        return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "seq_k (%d) must be >= seq_q (%d)", p->seq_k, p->seq_q);
    if (flexprefill_status s = validate_heads(p)) return s;
    if (p->block_size != 64 && p->block_size != 128)
        return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "block_size is %d; supported: 64, 128", p->block_size);
    if (!(p->gamma > 0.0f && p->gamma <= 1.0f))
        return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "gamma is %g; it must be in (0, 1]", (double)p->gamma);
    if (!(p->tau >= 0.0f && p->tau <= 1.0f))
        return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "tau is %g; it must be in [0, 1]", (double)p->tau);
    if (p->min_budget < 0) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "min_budget is %d; it must be >= 0", p->min_budget);
    if (p->max_budget < 0) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "max_budget is %d; it must be >= 0 (0 = none)", p->max_budget);
    if (p->mode != FLEXPREFILL_MODE_AUTO && p->mode != FLEXPREFILL_MODE_DENSE)
        return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "mode is %d; expected 0 (auto) or 1 (dense)", p->mode);
    if (p->variant < 0 || p->variant > 5)
        return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "variant is %d; expected 0 to 5", p->variant);
    const int64_t nb = ceil_div(p->seq_k, p->block_size);
    if (nb > 16384)
        return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "seq_k %d gives %lld key blocks; at most 16384 are supported",
                       p->seq_k, (long long)nb);
    return need_pointers ? validate_pointers(p, need_output, true) : FLEXPREFILL_OK;
}

Layout make_layout(const flexprefill_params& p) {
    Layout L{};
    L.S = p.seq_q; L.T = p.seq_k; L.Hq = p.heads_q; L.Hkv = p.heads_kv; L.G = L.Hq / L.Hkv; L.D = p.head_dim;
    L.bs = p.block_size; L.P = L.bs;
    L.nb = (int32_t)ceil_div(L.T, L.bs);
    L.r0 = (L.T - L.S) / L.bs;
    L.rows = L.nb - L.r0;
    L.mb = (int32_t)ceil_div(p.min_budget, L.bs);
    L.cap = L.nb;
    if (p.max_budget > 0) L.cap = (int32_t)std::min<int64_t>(L.nb, ceil_div(p.max_budget, L.bs));
    L.causal = 0;
    for (int64_t r = L.r0; r < L.nb; r++) L.causal += r + 1;
    const int64_t threshold = std::max<int64_t>(2 * L.bs, (int64_t)L.mb * L.bs);
    L.dense = p.mode == FLEXPREFILL_MODE_DENSE || L.S <= threshold;
    L.query_aware = p.tau > 0.0f;
    // About 1024 probe CTAs at long T, at least 256 keys each, at most 2048 (the slash accumulator lives in shared
    // memory beside pass 2's probability tile: two CTAs per SM).
    int64_t len = ceil_div(ceil_div((int64_t)L.T * L.Hq, 1024), 64) * 64;
    L.split_len = (int32_t)std::min<int64_t>(2048, std::max<int64_t>(256, len));
    L.nsplit = (int32_t)ceil_div(L.T, L.split_len);

    uint64_t off = 0;
    auto take = [&](uint64_t bytes) { uint64_t at = off; off = align256(off + bytes); return at; };
    L.off_heads = take(sizeof(flexprefill_head_info) * L.Hq);
    if (!L.dense) {
        L.off_cover = take(sizeof(CoverState) * 3 * (uint64_t)L.Hq);
        L.off_pooled = take(sizeof(double) * 3 * (uint64_t)L.Hq * L.nb);
        L.off_part = take(sizeof(float) * 2 * (uint64_t)L.Hq * L.nsplit * L.P);
        L.off_vertical = take(sizeof(float) * (uint64_t)L.Hq * L.T);
        L.off_slash = take(sizeof(float) * (uint64_t)L.Hq * L.T);
        L.off_kbar = take(sizeof(float) * (uint64_t)L.Hkv * L.nb * L.D);
        L.off_qhat = take(sizeof(float) * (uint64_t)L.Hq * L.D);
        L.off_vsel = take((uint64_t)L.Hq * L.nb);
        L.off_bands = take((uint64_t)L.Hq * L.nb);
        if (L.query_aware) {
            L.off_qbar = take(sizeof(float) * (uint64_t)L.Hq * L.rows * L.D);
            L.off_qamap = take(sizeof(float) * (uint64_t)L.Hq * L.rows * L.nb);
        }
        L.off_rowptr = take(sizeof(int32_t) * (uint64_t)L.Hq * (L.rows + 1));
        L.off_colidx = take(sizeof(int32_t) * (uint64_t)L.Hq * L.causal);
    }
    L.total = off;
    return L;
}

flexprefill_status check_workspace(const flexprefill_params& p, uint64_t need) {
    if (p.workspace_bytes < need)
        return FP_FAIL(FLEXPREFILL_ERROR_WORKSPACE_TOO_SMALL, "workspace has %llu bytes; this call needs %llu",
                       (unsigned long long)p.workspace_bytes, (unsigned long long)need);
    if (!cuda_available())
        return FP_FAIL(FLEXPREFILL_ERROR_NO_CUDA, "no CUDA device is available (libflexprefill: %s)", backend_description());
    return FLEXPREFILL_OK;
}

flexprefill_status check_workspace(const flexprefill_params& p, const Layout& L) { return check_workspace(p, L.total); }

// forward, select and attend: the same checks, then the stages asked for (the output is needed only for attention).
flexprefill_status run_stages(const flexprefill_params* p, bool select, bool attention) {
    g_last_error.clear();
    if (flexprefill_status s = validate(p, true, attention)) return s;
    Layout L = make_layout(*p);
    if (flexprefill_status s = check_workspace(*p, L)) return s;
    return run_pipeline(*p, L, select, attention);
}

// flexprefill_decode's checks: one query, any T >= 1; the selection parameters are not read.
flexprefill_status validate_decode(const flexprefill_params* p, bool need_pointers) {
    if (!p) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "params is NULL");
    if (p->batch != 1) return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "batch is %d; decode attention takes batch 1", p->batch);
    if (p->seq_q != 1)
        return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "seq_q is %d; decode attention takes one query (seq_q 1)", p->seq_q);
    if (p->seq_k < 1) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "seq_k is %d; it must be >= 1", p->seq_k);
    if (flexprefill_status s = validate_heads(p)) return s;
    if (p->variant != 0 && (p->variant < 2 || p->variant > 4))
        return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT,
                       "variant is %d; decode takes 0 (default) or 2, 3, 4 (pipeline stages)", p->variant);
    return need_pointers ? validate_pointers(p, true, false) : FLEXPREFILL_OK;
}

// The split of T over CTAs: about 8 CTAs per SM (2-4 waves of the 2-4 that fit one SM, kernels/decode_attention.cuh),
// at least 256 keys each (below that a split's partial write and its share of the combine outweigh its keys).
DecodeLayout make_decode_layout(const flexprefill_params& p) {
    constexpr int64_t kCtasPerSm = 8, kMinSplit = 256;
    DecodeLayout L{};
    L.T = p.seq_k; L.Hq = p.heads_q; L.Hkv = p.heads_kv; L.G = L.Hq / L.Hkv; L.D = p.head_dim;
    L.chunks = (int32_t)ceil_div(L.G, 16);
    L.stages = p.variant == 0 ? 2 : p.variant; // 2: fastest on an H200 at every T (kernels/decode_attention.cuh)
    const int64_t target = std::max<int64_t>(1, ceil_div(kCtasPerSm * multiprocessor_count(), (int64_t)L.Hkv * L.chunks));
    L.split_len = (int32_t)std::max<int64_t>(kMinSplit, ceil_div(ceil_div(L.T, target), 64) * 64);
    L.nsplit = (int32_t)ceil_div(L.T, L.split_len);
    // Sized for the most splits of any T' <= T (never more than target, nor than ceil(T' / kMinSplit)), so that the
    // workspace never shrinks as T grows.
    const int64_t most = std::min<int64_t>(target, ceil_div(L.T, kMinSplit));
    uint64_t off = 0;
    auto take = [&](uint64_t bytes) { uint64_t at = off; off = align256(off + bytes); return at; };
    if (most > 1) {
        L.off_lse = take(sizeof(float) * (uint64_t)L.Hq * most);
        L.off_o = take(sizeof(float) * (uint64_t)L.Hq * most * L.D);
    }
    L.total = off;
    return L;
}

} // namespace
} // namespace flexprefill

using namespace flexprefill;

extern "C" {

void flexprefill_params_init(flexprefill_params* p) {
    if (!p) return;
    std::memset(p, 0, sizeof *p);
    p->batch = 1;
    p->gamma = 0.95f;
    p->tau = 0.1f;
    p->min_budget = 1024;
    p->block_size = 128;
    p->mode = FLEXPREFILL_MODE_AUTO;
}

const char* flexprefill_last_error(void) { return g_last_error.c_str(); }

const char* flexprefill_version(void) {
    static std::string v = std::string("0.1.0 (") + backend_description() + ")";
    return v.c_str();
}

void flexprefill_abi_sizes(int32_t* params_bytes, int32_t* head_info_bytes) {
    if (params_bytes) *params_bytes = (int32_t)sizeof(flexprefill_params);
    if (head_info_bytes) *head_info_bytes = (int32_t)sizeof(flexprefill_head_info);
}

int32_t flexprefill_cuda_available(void) { return cuda_available() ? 1 : 0; }

flexprefill_status flexprefill_workspace_size(const flexprefill_params* p, uint64_t* bytes) {
    g_last_error.clear();
    if (flexprefill_status s = validate(p, false, false)) return s;
    if (!bytes) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "bytes is NULL");
    *bytes = make_layout(*p).total;
    return FLEXPREFILL_OK;
}

flexprefill_status flexprefill_is_dense(const flexprefill_params* p, int32_t* dense) {
    g_last_error.clear();
    if (flexprefill_status s = validate(p, false, false)) return s;
    if (!dense) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "dense is NULL");
    *dense = make_layout(*p).dense ? 1 : 0;
    return FLEXPREFILL_OK;
}

flexprefill_status flexprefill_layout(const flexprefill_params* p, int32_t* rows, int64_t* causal_blocks) {
    g_last_error.clear();
    if (flexprefill_status s = validate(p, false, false)) return s;
    if (!rows || !causal_blocks) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "rows or causal_blocks is NULL");
    Layout L = make_layout(*p);
    *rows = L.rows;
    *causal_blocks = L.causal;
    return FLEXPREFILL_OK;
}

flexprefill_status flexprefill_forward(const flexprefill_params* p) { return run_stages(p, true, true); }

flexprefill_status flexprefill_select(const flexprefill_params* p) { return run_stages(p, true, false); }

flexprefill_status flexprefill_attend(const flexprefill_params* p) { return run_stages(p, false, true); }

flexprefill_status flexprefill_read_heads(const flexprefill_params* p, flexprefill_head_info* heads) {
    g_last_error.clear();
    if (flexprefill_status s = validate(p, false, false)) return s;
    if (!p->workspace) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "workspace is NULL");
    if (!heads) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "heads is NULL");
    Layout L = make_layout(*p);
    if (flexprefill_status s = check_workspace(*p, L)) return s;
    return copy_to_host(*p, heads, L.off_heads, sizeof(flexprefill_head_info) * L.Hq);
}

flexprefill_status flexprefill_read_csr(const flexprefill_params* p, int32_t head, int32_t* row_ptr, int32_t* col_idx,
                                        int64_t col_capacity) {
    g_last_error.clear();
    if (flexprefill_status s = validate(p, false, false)) return s;
    if (!p->workspace) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "workspace is NULL");
    if (!row_ptr || !col_idx) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "row_ptr or col_idx is NULL");
    Layout L = make_layout(*p);
    if (head < 0 || head >= L.Hq) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "head %d is not in [0, %d)", head, L.Hq);
    if (flexprefill_status s = check_workspace(*p, L)) return s;
    if (L.dense) { // the kernel walks every causal block; the CSR is implied
        if (col_capacity < L.causal)
            return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "col_capacity %lld < %lld blocks", (long long)col_capacity,
                           (long long)L.causal);
        int64_t n = 0;
        for (int32_t i = 0; i < L.rows; i++) {
            row_ptr[i] = (int32_t)n;
            for (int32_t c = 0; c <= L.r0 + i; c++) col_idx[n++] = c;
        }
        row_ptr[L.rows] = (int32_t)n;
        return FLEXPREFILL_OK;
    }
    const uint64_t rp_bytes = sizeof(int32_t) * (uint64_t)(L.rows + 1);
    if (flexprefill_status s = copy_to_host(*p, row_ptr, L.off_rowptr + rp_bytes * head, rp_bytes)) return s;
    const int64_t nnz = row_ptr[L.rows];
    if (nnz > col_capacity)
        return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "col_capacity %lld < %lld selected blocks", (long long)col_capacity,
                       (long long)nnz);
    return copy_to_host(*p, col_idx, L.off_colidx + sizeof(int32_t) * (uint64_t)L.causal * head, sizeof(int32_t) * nnz);
}

flexprefill_status flexprefill_read_estimates(const flexprefill_params* p, float* vertical, float* slash) {
    g_last_error.clear();
    if (flexprefill_status s = validate(p, false, false)) return s;
    if (!p->workspace) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "workspace is NULL");
    if (!vertical || !slash) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "vertical or slash is NULL");
    Layout L = make_layout(*p);
    if (L.dense) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "a dense call (S = %d) has no estimates", L.S);
    if (flexprefill_status s = check_workspace(*p, L)) return s;
    const uint64_t bytes = sizeof(float) * (uint64_t)L.Hq * L.T;
    if (flexprefill_status s = copy_to_host(*p, vertical, L.off_vertical, bytes)) return s;
    return copy_to_host(*p, slash, L.off_slash, bytes);
}

flexprefill_status flexprefill_decode_workspace_size(const flexprefill_params* p, uint64_t* bytes) {
    g_last_error.clear();
    if (flexprefill_status s = validate_decode(p, false)) return s;
    if (!bytes) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "bytes is NULL");
    *bytes = make_decode_layout(*p).total;
    return FLEXPREFILL_OK;
}

flexprefill_status flexprefill_rms_norm(const void* x, const void* weight, void* y, int64_t rows, int32_t hidden,
                                        int64_t x_row_stride, int64_t y_row_stride, float eps, void* stream) {
    g_last_error.clear();
    if (!x || !weight || !y) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "x, weight and y must be device pointers (one is NULL)");
    if (rows < 1) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "rows is %lld; it must be >= 1", (long long)rows);
    if (rows > INT32_MAX) return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "rows is %lld; at most %d are supported", (long long)rows, INT32_MAX);
    if (hidden < 8 || hidden % 8 != 0 || hidden > 65536)
        return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "hidden is %d; supported: multiples of 8 up to 65536", hidden);
    if (x_row_stride < hidden || y_row_stride < hidden || x_row_stride % 8 != 0 || y_row_stride % 8 != 0)
        return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "row strides %lld / %lld must be multiples of 8 and >= hidden (%d)",
                       (long long)x_row_stride, (long long)y_row_stride, hidden);
    for (const void* ptr : {x, weight, static_cast<const void*>(y)})
        if (reinterpret_cast<uintptr_t>(ptr) % 16 != 0)
            return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "x, weight and y must be 16-byte aligned");
    if (!(eps > 0.0f) || !std::isfinite(eps)) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "eps is %g; it must be > 0", (double)eps);
    return run_rms_norm(RmsNormCall{x, weight, y, rows, x_row_stride, y_row_stride, hidden, eps, stream});
}

flexprefill_status flexprefill_silu_mul(const void* gate_up, void* out, int64_t rows, int32_t ffn, int64_t in_row_stride,
                                        int64_t out_row_stride, void* stream) {
    g_last_error.clear();
    if (!gate_up || !out) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "gate_up and out must be device pointers (one is NULL)");
    if (rows < 1) return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "rows is %lld; it must be >= 1", (long long)rows);
    if (rows > INT32_MAX) return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "rows is %lld; at most %d are supported", (long long)rows, INT32_MAX);
    if (ffn < 8 || ffn % 8 != 0 || ffn > 131072)
        return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "ffn is %d; supported: multiples of 8 up to 131072", ffn);
    if (in_row_stride < 2 * (int64_t)ffn || out_row_stride < ffn || in_row_stride % 8 != 0 || out_row_stride % 8 != 0)
        return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "row strides %lld / %lld must be multiples of 8 and >= 2 * ffn / ffn (%d)",
                       (long long)in_row_stride, (long long)out_row_stride, ffn);
    if (reinterpret_cast<uintptr_t>(gate_up) % 16 != 0 || reinterpret_cast<uintptr_t>(out) % 16 != 0)
        return FP_FAIL(FLEXPREFILL_ERROR_UNSUPPORTED, "gate_up and out must be 16-byte aligned");
    // the byte ranges the call touches; overlapping is allowed only as the in-place form
    const uintptr_t in0 = reinterpret_cast<uintptr_t>(gate_up), out0 = reinterpret_cast<uintptr_t>(out);
    const uintptr_t in1 = in0 + 2 * (uintptr_t)((rows - 1) * in_row_stride + 2 * (int64_t)ffn);
    const uintptr_t out1 = out0 + 2 * (uintptr_t)((rows - 1) * out_row_stride + ffn);
    if (in0 < out1 && out0 < in1 && !(out0 == in0 && out_row_stride == in_row_stride))
        return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT,
                       "out overlaps gate_up; it must be gate_up itself (with out_row_stride = in_row_stride) or apart");
    return run_silu_mul(SiluMulCall{gate_up, out, rows, ffn, in_row_stride, out_row_stride, stream});
}

flexprefill_status flexprefill_decode(const flexprefill_params* p) {
    g_last_error.clear();
    if (flexprefill_status s = validate_decode(p, true)) return s;
    const DecodeLayout L = make_decode_layout(*p);
    if (L.total > 0 && !p->workspace)
        return FP_FAIL(FLEXPREFILL_ERROR_INVALID_ARGUMENT, "workspace is NULL; this call needs %llu bytes",
                       (unsigned long long)L.total);
    if (flexprefill_status s = check_workspace(*p, L.total)) return s;
    return run_decode(*p, L);
}

} // extern "C"
