// RMSNorm as transformers computes it for bf16 models, one launch instead of the eight element-wise kernels the
// same formula costs in eager libtorch (the decode steps' largest remaining share of launches):
//   y = bf16( w · bf16( x · rsqrt(mean(x²) + eps) ) ),  x, w in fp32, over the last dimension.
// One CTA per row, 16-byte loads (hidden a multiple of 8), a block reduction of Σx² in fp32.
#pragma once
#include "common.cuh"

namespace flexprefill {

struct RmsNormArgs {
    const __nv_bfloat16* x;
    const __nv_bfloat16* w;
    __nv_bfloat16* y;
    int64_t x_rs, y_rs; // row strides, elements
    int hidden;
    float eps;
};

constexpr int kRmsNormThreads = 256;

template <int THREADS>
__global__ void __launch_bounds__(THREADS) rms_norm_kernel(RmsNormArgs a) {
    __shared__ float partial[THREADS / 32];
    const __nv_bfloat16* x = a.x + (int64_t)blockIdx.x * a.x_rs;
    __nv_bfloat16* y = a.y + (int64_t)blockIdx.x * a.y_rs;
    float ss = 0.f;
    for (int i = threadIdx.x * 8; i < a.hidden; i += THREADS * 8) {
        float f[8];
        load_bf16x8(x + i, f);
#pragma unroll
        for (int j = 0; j < 8; j++) ss += f[j] * f[j];
    }
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = ss;
    __syncthreads();
    float total = 0.f;
#pragma unroll
    for (int w = 0; w < THREADS / 32; w++) total += partial[w];
    const float inv = rsqrtf(total / (float)a.hidden + a.eps);
    for (int i = threadIdx.x * 8; i < a.hidden; i += THREADS * 8) {
        float fx[8], fw[8];
        load_bf16x8(x + i, fx);
        load_bf16x8(a.w + i, fw);
#pragma unroll
        for (int j = 0; j < 8; j++) // the cast back to bf16, then the scale (transformers: weight * normed.to(dtype))
            fx[j] = fw[j] * __bfloat162float(__float2bfloat16_rn(fx[j] * inv));
        store_bf16x8(y + i, fx);
    }
}

} // namespace flexprefill
