// C API tests that need no GPU: validation messages, workspace sizing, layout and the dense rule; without CUDA,
// calls that need a device report FLEXPREFILL_ERROR_NO_CUDA with a message.
#include "../include/flexprefill.h"
#include "../reference/reference.h"
#include "check.h"

#include <cstring>
#include <string>

static flexprefill_params base(int S, int T) {
    flexprefill_params p;
    flexprefill_params_init(&p);
    p.seq_q = S; p.seq_k = T; p.heads_q = 32; p.heads_kv = 8; p.head_dim = 128;
    p.q_row_stride = p.out_row_stride = 32 * 128; p.q_head_stride = p.out_head_stride = 128;
    p.k_row_stride = p.v_row_stride = 8 * 128; p.k_head_stride = p.v_head_stride = 128;
    p.lse_head_stride = S;
    return p;
}

static bool error_mentions(const char* word) { return std::strstr(flexprefill_last_error(), word) != nullptr; }

TEST(defaults_match_the_paper) {
    flexprefill_params p;
    flexprefill_params_init(&p);
    CHECK(p.batch == 1 && p.block_size == 128 && p.min_budget == 1024 && p.max_budget == 0);
    CHECK(p.gamma == 0.95f && p.tau == 0.1f && p.mode == FLEXPREFILL_MODE_AUTO);
}

TEST(struct_sizes_are_those_the_bindings_mirror) {
    int32_t params = 0, heads = 0;
    flexprefill_abi_sizes(&params, &heads);
    CHECK(params == 192 && heads == 48);
}

TEST(invalid_parameters_are_rejected_with_a_message_naming_them) {
    uint64_t bytes = 0;
    auto p = base(4096, 4096);
    p.heads_kv = 5;
    CHECK(flexprefill_workspace_size(&p, &bytes) == FLEXPREFILL_ERROR_INVALID_ARGUMENT);
    CHECK(error_mentions("heads_q") && error_mentions("api.cpp:"));
    p = base(4096, 4096); p.gamma = 0.f;
    CHECK(flexprefill_workspace_size(&p, &bytes) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("gamma"));
    p = base(4096, 2048);
    CHECK(flexprefill_workspace_size(&p, &bytes) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("seq_k"));
    p = base(4096, 4096); p.batch = 2;
    CHECK(flexprefill_workspace_size(&p, &bytes) == FLEXPREFILL_ERROR_UNSUPPORTED && error_mentions("batch"));
    p = base(4096, 4096); p.head_dim = 96;
    CHECK(flexprefill_workspace_size(&p, &bytes) == FLEXPREFILL_ERROR_UNSUPPORTED && error_mentions("head_dim"));
    p = base(4096, 4096); p.block_size = 32;
    CHECK(flexprefill_workspace_size(&p, &bytes) == FLEXPREFILL_ERROR_UNSUPPORTED && error_mentions("block_size"));
    CHECK(flexprefill_workspace_size(nullptr, &bytes) == FLEXPREFILL_ERROR_INVALID_ARGUMENT);
    p = base(4096, 4096);
    CHECK(flexprefill_forward(&p) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("NULL"));
}

TEST(a_successful_call_clears_the_last_error) {
    auto p = base(4096, 4096);
    p.gamma = 2.f;
    uint64_t bytes = 0;
    CHECK(flexprefill_workspace_size(&p, &bytes) != FLEXPREFILL_OK);
    p.gamma = 0.9f;
    CHECK(flexprefill_workspace_size(&p, &bytes) == FLEXPREFILL_OK);
    CHECK(std::string(flexprefill_last_error()).empty());
    CHECK(bytes > 0);
}

TEST(workspace_grows_with_the_sequence_and_dense_calls_need_little) {
    uint64_t small = 0, big = 0, dense = 0;
    auto p = base(8192, 8192);
    CHECK(flexprefill_workspace_size(&p, &small) == FLEXPREFILL_OK);
    p = base(65536, 65536);
    CHECK(flexprefill_workspace_size(&p, &big) == FLEXPREFILL_OK);
    p = base(1000, 1000);
    CHECK(flexprefill_workspace_size(&p, &dense) == FLEXPREFILL_OK);
    CHECK(big > small && small > dense && dense <= 4096);
}

TEST(layout_and_dense_rule_agree_with_the_reference) {
    for (int S : {97, 256, 1024, 1025, 4097})
        for (int T : {S, S + 300}) {
            auto p = base(S, T);
            p.block_size = 64;
            int32_t rows = 0, dense = 0;
            int64_t causal = 0;
            CHECK(flexprefill_layout(&p, &rows, &causal) == FLEXPREFILL_OK);
            CHECK(flexprefill_is_dense(&p, &dense) == FLEXPREFILL_OK);
            fpref::Problem r;
            r.S = S; r.T = T; r.bs = 64; r.min_budget = 1024;
            CHECK(rows == r.rows() && causal == r.causal() && (dense == 1) == r.dense());
        }
    auto p = base(8192, 8192);
    p.mode = FLEXPREFILL_MODE_DENSE;
    int32_t dense = 0;
    CHECK(flexprefill_is_dense(&p, &dense) == FLEXPREFILL_OK && dense == 1);
}

TEST(device_calls_without_cuda_say_why) {
    if (flexprefill_cuda_available()) return; // covered by the GPU harness
    auto p = base(4096, 4096);
    alignas(256) static unsigned char fake[256];
    p.q = p.k = p.v = p.out = fake;
    p.workspace = fake;
    uint64_t bytes = 0;
    flexprefill_workspace_size(&p, &bytes);
    p.workspace_bytes = bytes;
    CHECK(flexprefill_forward(&p) == FLEXPREFILL_ERROR_NO_CUDA && error_mentions("cuda"));
    CHECK(std::strlen(flexprefill_version()) > 0);
}

static flexprefill_params decode_base(int T) {
    auto p = base(1, T);
    p.lse_head_stride = 1;
    p.k_row_stride = p.v_row_stride = 128; // the KV cache's [Hkv, capacity, D] with capacity 200,000
    p.k_head_stride = p.v_head_stride = 200000LL * 128;
    return p;
}

TEST(decode_parameters_are_rejected_with_a_message_naming_them) {
    uint64_t bytes = 0;
    auto p = decode_base(4096);
    p.seq_q = 2;
    CHECK(flexprefill_decode_workspace_size(&p, &bytes) == FLEXPREFILL_ERROR_UNSUPPORTED && error_mentions("seq_q"));
    p = decode_base(0);
    CHECK(flexprefill_decode_workspace_size(&p, &bytes) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("seq_k"));
    p = decode_base(4096); p.batch = 2;
    CHECK(flexprefill_decode_workspace_size(&p, &bytes) == FLEXPREFILL_ERROR_UNSUPPORTED && error_mentions("batch"));
    p = decode_base(4096); p.heads_kv = 5;
    CHECK(flexprefill_decode_workspace_size(&p, &bytes) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("heads_q"));
    p = decode_base(4096); p.head_dim = 96;
    CHECK(flexprefill_decode_workspace_size(&p, &bytes) == FLEXPREFILL_ERROR_UNSUPPORTED && error_mentions("head_dim"));
    p = decode_base(4096); p.variant = 1;
    CHECK(flexprefill_decode_workspace_size(&p, &bytes) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("variant"));
    p = decode_base(4096);
    CHECK(flexprefill_decode(&p) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("NULL"));
    alignas(256) static unsigned char fake[256];
    p.q = p.k = p.v = p.out = fake;
    p.k_head_stride = 100;
    CHECK(flexprefill_decode(&p) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("k_head_stride"));
}

TEST(decode_ignores_the_selection_parameters) {
    uint64_t bytes = 0;
    auto p = decode_base(4096);
    p.block_size = 32; p.gamma = 0.f; p.tau = 5.f; p.min_budget = -1; p.mode = 7;
    CHECK(flexprefill_decode_workspace_size(&p, &bytes) == FLEXPREFILL_OK);
}

TEST(decode_workspace_is_empty_for_one_split_and_never_shrinks_as_the_cache_grows) {
    uint64_t bytes = 1, previous = 0;
    for (int T : {1, 77, 256}) {
        auto p = decode_base(T);
        CHECK(flexprefill_decode_workspace_size(&p, &bytes) == FLEXPREFILL_OK && bytes == 0);
    }
    for (int T = 1; T <= 140000; T += 97) {
        auto p = decode_base(T);
        CHECK(flexprefill_decode_workspace_size(&p, &bytes) == FLEXPREFILL_OK);
        CHECK(bytes >= previous);
        previous = bytes;
    }
    CHECK(previous > 0 && previous < (8u << 20)); // partials of a few hundred splits at most, not a copy of K/V
}

TEST(decode_checks_the_workspace_and_without_cuda_says_why) {
    alignas(256) static unsigned char fake[256];
    auto p = decode_base(4096);
    p.q = p.k = p.v = p.out = fake;
    CHECK(flexprefill_decode(&p) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("workspace"));
    p.workspace = fake;
    p.workspace_bytes = 256;
    CHECK(flexprefill_decode(&p) == FLEXPREFILL_ERROR_WORKSPACE_TOO_SMALL && error_mentions("needs"));
    if (flexprefill_cuda_available()) return; // runs in the GPU harness
    p = decode_base(100); // one split: no workspace
    p.q = p.k = p.v = p.out = fake;
    CHECK(flexprefill_decode(&p) == FLEXPREFILL_ERROR_NO_CUDA && error_mentions("cuda"));
}

TEST(rms_norm_names_each_limit_and_without_cuda_says_why) {
    alignas(16) static unsigned char buf[4096];
    void* x = buf;
    CHECK(flexprefill_rms_norm(nullptr, x, x, 1, 64, 64, 64, 1e-5f, nullptr) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("NULL"));
    CHECK(flexprefill_rms_norm(x, x, x, 0, 64, 64, 64, 1e-5f, nullptr) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("rows"));
    CHECK(flexprefill_rms_norm(x, x, x, 1, 60, 64, 64, 1e-5f, nullptr) == FLEXPREFILL_ERROR_UNSUPPORTED && error_mentions("hidden"));
    CHECK(flexprefill_rms_norm(x, x, x, 1, 64, 32, 64, 1e-5f, nullptr) == FLEXPREFILL_ERROR_UNSUPPORTED && error_mentions("strides"));
    CHECK(flexprefill_rms_norm(buf + 2, x, x, 1, 64, 64, 64, 1e-5f, nullptr) == FLEXPREFILL_ERROR_UNSUPPORTED && error_mentions("aligned"));
    CHECK(flexprefill_rms_norm(x, x, x, 1, 64, 64, 64, 0.0f, nullptr) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("eps"));
    if (flexprefill_cuda_available()) return; // runs in the GPU harness
    CHECK(flexprefill_rms_norm(x, x, x, 1, 64, 64, 64, 1e-5f, nullptr) == FLEXPREFILL_ERROR_NO_CUDA && error_mentions("cuda"));
}

TEST(silu_mul_names_each_limit_and_without_cuda_says_why) {
    alignas(16) static unsigned char buf[4096];
    void* x = buf;
    void* apart = buf + 1024; // 64 gate_up elements (ffn 32) end at byte 128
    CHECK(flexprefill_silu_mul(nullptr, apart, 1, 32, 64, 32, nullptr) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("NULL"));
    CHECK(flexprefill_silu_mul(x, apart, 0, 32, 64, 32, nullptr) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("rows"));
    CHECK(flexprefill_silu_mul(x, apart, 1, 36, 72, 40, nullptr) == FLEXPREFILL_ERROR_UNSUPPORTED && error_mentions("ffn"));
    CHECK(flexprefill_silu_mul(x, apart, 1, 32, 48, 32, nullptr) == FLEXPREFILL_ERROR_UNSUPPORTED && error_mentions("strides"));
    CHECK(flexprefill_silu_mul(x, apart, 1, 32, 64, 36, nullptr) == FLEXPREFILL_ERROR_UNSUPPORTED && error_mentions("strides"));
    CHECK(flexprefill_silu_mul(buf + 2, apart, 1, 32, 64, 32, nullptr) == FLEXPREFILL_ERROR_UNSUPPORTED && error_mentions("aligned"));
    CHECK(flexprefill_silu_mul(x, buf + 64, 1, 32, 64, 32, nullptr) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("overlaps"));
    CHECK(flexprefill_silu_mul(x, x, 2, 32, 64, 32, nullptr) == FLEXPREFILL_ERROR_INVALID_ARGUMENT && error_mentions("overlaps"));
    if (flexprefill_cuda_available()) return; // runs in the GPU harness
    CHECK(flexprefill_silu_mul(x, x, 2, 32, 64, 64, nullptr) == FLEXPREFILL_ERROR_NO_CUDA && error_mentions("cuda")); // in place
    CHECK(flexprefill_silu_mul(x, apart, 1, 32, 64, 32, nullptr) == FLEXPREFILL_ERROR_NO_CUDA && error_mentions("cuda"));
}

int main() { return check::run_all(); }
