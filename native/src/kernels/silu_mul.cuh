// SwiGLU's activation in one launch: out = silu(gate) · up over rows of gate_up = [gate | up] (the fused gate/up
// projection), where eager libtorch runs two kernels, silu (reads F, writes F) and the product (reads 2F, writes F):
// 3F bf16 moved per row instead of 5F, and one launch instead of two.
// Roundings as PyTorch's bf16 eager F.silu(gate) * up (CPU and CUDA alike):
//   out = bf16( bf16(g / (1 + exp(-g))) · u ),  g, u in fp32; the product of two bf16 is exact in fp32.
// The division is IEEE (__fdiv_rn); exp is ex2.approx under the library's --use_fast_math (relative error ~1e-6
// against libtorch's expf), so an output may sit one bf16 step from PyTorch's where silu lands next to a rounding tie.
// Denormal inputs flush to zero (ftz). Grid: x = rows, y = chunks of THREADS · 8 columns; each thread converts 8
// columns with 16-byte loads and one 16-byte store (F a multiple of 8). Out may be gate_up itself (the gate half):
// a thread reads its columns before it writes them.
#pragma once
#include "common.cuh"

namespace flexprefill {

struct SiluMulArgs {
    const __nv_bfloat16* gate_up; // [rows, 2F]: gate columns 0 … F-1, up F … 2F-1
    __nv_bfloat16* out;           // [rows, F]
    int64_t in_rs, out_rs;        // row strides, elements
    int ffn;                      // F
};

constexpr int kSiluMulThreads = 256;

template <int THREADS>
__global__ void __launch_bounds__(THREADS) silu_mul_kernel(SiluMulArgs a) {
    const int col = (blockIdx.y * THREADS + threadIdx.x) * 8;
    if (col >= a.ffn) return;
    const __nv_bfloat16* gate = a.gate_up + (int64_t)blockIdx.x * a.in_rs + col;
    float g[8], u[8];
    load_bf16x8(gate, g);
    load_bf16x8(gate + a.ffn, u);
#pragma unroll
    for (int j = 0; j < 8; j++) { // silu rounded to bf16 as F.silu returns it, then the product
        // Above 2^126 a divisor's reciprocal is subnormal, and div.rn.ftz flushes it (1 + exp(-g) for g < -87.3):
        // both operands are scaled by 2^-64 there, exactly, so the quotient is the same.
        const float d = 1.0f + expf(-g[j]);
        const float q = d > 0x1p100f ? __fdiv_rn(g[j] * 0x1p-64f, d * 0x1p-64f) : __fdiv_rn(g[j], d);
        const float silu = __bfloat162float(__float2bfloat16_rn(q));
        g[j] = silu * u[j];
    }
    store_bf16x8(a.out + (int64_t)blockIdx.x * a.out_rs + col, g);
}

} // namespace flexprefill
