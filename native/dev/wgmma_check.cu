// The sm_90a operand layouts of kernels/wgmma.cuh on one tile, against a float64 product on the host: one warpgroup
// computes S = A Bᵀ (A [64 x 128], B [128 x 128], both K-major from two-panel swizzled tiles, as Q Kᵀ in the attention
// kernel) and O = P V (P [64 x 128] from registers in the accumulator layout, V [128 x 128] read MN-major, as the
// kernel's P V). A layout error shows here as a large error in one product instead of somewhere in the attention.
// Usage: fp_wgmma_check. Exit 0 passed, 1 failed, 77 not a compute-capability-9.0 device (ctest skip).
#include "../src/kernels/wgmma.cuh"

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace {

using namespace flexprefill;
using namespace flexprefill::sm90;

// a [64 x 128], b [128 x 128], v [128 x 128] row-major bf16; s = a bᵀ and o = bf16(s) v, both fp32 [64 x 128].
__global__ void __launch_bounds__(128, 1) check_kernel(const __nv_bfloat16* a, const __nv_bfloat16* b, const __nv_bfloat16* v,
                                                       float* s_out, float* o_out) {
#ifdef FP_SM90
    extern __shared__ unsigned char raw[];
    unsigned char* as = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(raw) + 1023) & ~uintptr_t(1023));
    unsigned char* bs = as + 64 * 256;
    unsigned char* vs = bs + 128 * 256;
    load_panels_async<64, 128>(as, a, 0, 128, 0, 64);
    load_panels_async<128, 128>(bs, b, 0, 128, 0, 128);
    load_panels_async<128, 128>(vs, v, 0, 128, 0, 128);
    cp_async_commit();
    cp_async_wait<0>();
    fence_async_shared();
    __syncthreads();
    float s[64];
    wgmma_fence();
    for (int kk = 0; kk < 8; kk++) {
        wgmma_m64n128k16_ss(s, smem_desc(as + (kk >> 2) * 64 * 128 + (kk & 3) * 32, 16, 1024),
                            smem_desc(bs + (kk >> 2) * 128 * 128 + (kk & 3) * 32, 16, 1024), kk > 0);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_operands(s);
    const int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    for (int x = 0; x < 64; x++) {
        const int row = warp * 16 + g + 8 * ((x >> 1) & 1), col = 8 * (x >> 2) + 2 * t + (x & 1);
        s_out[row * 128 + col] = s[x];
    }
    float o[64];
    for (int x = 0; x < 64; x++) o[x] = 0.f;
    wgmma_fence();
    for (int kk = 0; kk < 8; kk++) {
        const uint32_t pa[4] = {pack_bf16(s[8 * kk], s[8 * kk + 1]), pack_bf16(s[8 * kk + 2], s[8 * kk + 3]),
                                pack_bf16(s[8 * kk + 4], s[8 * kk + 5]), pack_bf16(s[8 * kk + 6], s[8 * kk + 7])};
        wgmma_m64n128k16_rs(o, pa, smem_desc(vs + kk * 2048, 128 * 128, 1024));
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_operands(o);
    for (int x = 0; x < 64; x++) {
        const int row = warp * 16 + g + 8 * ((x >> 1) & 1), col = 8 * (x >> 2) + 2 * t + (x & 1);
        o_out[row * 128 + col] = o[x];
    }
#endif
}

float round_bf16(float x) { return __bfloat162float(__float2bfloat16(x)); }

} // namespace

int main() {
    int dev = 0, major = 0, minor = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) || major != 9 || minor != 0) {
        std::printf("skipped: needs a compute capability 9.0 device\n");
        return 77;
    }
    std::mt19937 rng(7);
    std::normal_distribution<float> nd;
    std::vector<__nv_bfloat16> a(64 * 128), b(128 * 128), v(128 * 128);
    std::vector<float> af(a.size()), bf(b.size()), vf(v.size());
    for (size_t i = 0; i < a.size(); i++) { a[i] = __float2bfloat16(0.3f * nd(rng)); af[i] = __bfloat162float(a[i]); }
    for (size_t i = 0; i < b.size(); i++) { b[i] = __float2bfloat16(0.3f * nd(rng)); bf[i] = __bfloat162float(b[i]); }
    for (size_t i = 0; i < v.size(); i++) { v[i] = __float2bfloat16(nd(rng)); vf[i] = __bfloat162float(v[i]); }
    __nv_bfloat16 *da, *db, *dv;
    float *ds, *dout;
    cudaMalloc(&da, a.size() * 2); cudaMalloc(&db, b.size() * 2); cudaMalloc(&dv, v.size() * 2);
    cudaMalloc(&ds, 64 * 128 * 4); cudaMalloc(&dout, 64 * 128 * 4);
    cudaMemcpy(da, a.data(), a.size() * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(db, b.data(), b.size() * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(dv, v.data(), v.size() * 2, cudaMemcpyHostToDevice);
    cudaMemset(ds, 0xFF, 64 * 128 * 4);
    cudaMemset(dout, 0xFF, 64 * 128 * 4);
    const int smem = 1024 + (64 + 128 + 128) * 256;
    cudaFuncSetAttribute(check_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    check_kernel<<<1, 128, smem>>>(da, db, dv, ds, dout);
    cudaError_t err = cudaDeviceSynchronize();
    if (err != cudaSuccess) { std::printf("FAILED: %s\n", cudaGetErrorString(err)); return 1; }
    std::vector<float> s(64 * 128), o(64 * 128);
    cudaMemcpy(s.data(), ds, s.size() * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(o.data(), dout, o.size() * 4, cudaMemcpyDeviceToHost);
    double es = 0, eo = 0, ns = 0, no = 0;
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 128; j++) {
            double ref = 0;
            for (int d = 0; d < 128; d++) ref += (double)af[i * 128 + d] * bf[j * 128 + d];
            es = std::fmax(es, std::fabs(s[i * 128 + j] - ref));
            ns = std::fmax(ns, std::fabs(ref));
        }
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 128; j++) {
            double ref = 0;
            for (int k = 0; k < 128; k++) ref += (double)round_bf16(s[i * 128 + k]) * vf[k * 128 + j];
            eo = std::fmax(eo, std::fabs(o[i * 128 + j] - ref));
            no = std::fmax(no, std::fabs(ref));
        }
    const bool ok = std::isfinite(es) && std::isfinite(eo) && es <= 1e-4 * ns + 1e-5 && eo <= 1e-4 * no + 1e-5;
    std::printf("wgmma layouts: S = A Bᵀ max err %.3g (max |S| %.3g), O = P V max err %.3g (max |O| %.3g): %s\n", es, ns,
                eo, no, ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
