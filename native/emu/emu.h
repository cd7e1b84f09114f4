// A small SIMT emulator that runs the CUDA kernels of src/kernels/ unchanged on the CPU, so that their indexing,
// fragment layouts, masks, barriers and reductions are tested on machines without a GPU (CI, ctest).
//
// Every CUDA thread is a fiber (own stack, cooperative switch); the fibers of one CTA run on one OS thread, CTAs one
// after another. __syncthreads waits for every live thread of the CTA, warp intrinsics (shuffles, ballot, ldmatrix,
// mma.sync) for the 32 lanes of the warp; the matrix instructions follow the fragment layouts of the PTX ISA
// (m16n8k16 bf16, ldmatrix .x4 and .x4.trans). cp.async copies are queued per thread and land at cp.async.wait_group,
// so reading a tile before its wait sees the poison that fills shared memory at the start of each CTA (0xFF bytes:
// NaN in fp32 and bf16). Device memory is host memory. Not emulated: timing, inter-CTA concurrency (CTAs run in
// order, so a kernel relying on two CTAs running at once would hang; none does), memory-model subtleties.
//
// Included first (-include emu/emu.h, FLEXPREFILL_EMULATE defined) when pipeline.cu and dev/validate.cu are compiled
// as C++ by emu/*.cpp.
#pragma once
#ifndef FLEXPREFILL_EMULATE
#define FLEXPREFILL_EMULATE 1
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <type_traits>
#include <vector>

// ---- language -------------------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __shared__ static
#define __restrict__

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 { unsigned x, y, z; };

namespace emu {

struct Fiber;
struct Cta;
Fiber* current();
void block_barrier();
void warp_barrier();
int lane();
struct WarpState;
WarpState& warp_state();
unsigned char* dynamic_smem();

} // namespace emu

#define threadIdx (::emu::thread_index())
#define blockIdx (::emu::block_index())
#define blockDim (::emu::block_dim())
#define gridDim (::emu::grid_dim())
#define FP_DYNAMIC_SMEM(name) unsigned char* name = ::emu::dynamic_smem()

namespace emu {
const uint3& thread_index();
const uint3& block_index();
const uint3& block_dim();
const uint3& grid_dim();
} // namespace emu

template <class A, class B>
inline std::common_type_t<A, B> min(A a, B b) { return b < a ? b : a; }
template <class A, class B>
inline std::common_type_t<A, B> max(A a, B b) { return a < b ? b : a; }

// ---- bf16 -------------------------------------------------------------------------------------------------------
struct __nv_bfloat16 {
    uint16_t bits;
};
struct __nv_bfloat162 {
    __nv_bfloat16 x, y;
};
inline float __bfloat162float(__nv_bfloat16 h) {
    uint32_t u = (uint32_t)h.bits << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return {(uint16_t)((u >> 16) | 0x40)}; // NaN stays NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return {(uint16_t)(u >> 16)};
}
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {__float2bfloat16_rn(a), __float2bfloat16_rn(b)}; }

struct alignas(16) float4 {
    float x, y, z, w;
};
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); } // CUDA's; the GPU's is approximate (2 ulp)

// ---- bit casts, atomics, fences -------------------------------------------------------------------------------
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline float __fdiv_rn(float a, float b) { return a / b; }
template <class T>
inline T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; } // fibers never preempt each other
inline void __threadfence() {}
inline void __syncthreads() { emu::block_barrier(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::warp_barrier(); }

// ---- warp collectives -----------------------------------------------------------------------------------------
namespace emu {

struct WarpState {
    uint64_t slot[32];
    const void* addr[32];
    uint32_t a[32][4], b[32][2];
    float c[32][4], d[32][4];
    bool done;
};

template <class T, class F>
inline T shuffle(T v, F src_lane) {
    static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
    WarpState& w = warp_state();
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    w.slot[lane()] = bits;
    warp_barrier();
    const int src = src_lane(lane());
    uint64_t got = w.slot[(src >= 0 && src < 32) ? src : lane()];
    warp_barrier();
    T out;
    std::memcpy(&out, &got, sizeof(T));
    return out;
}

} // namespace emu

template <class T>
inline T __shfl_xor_sync(unsigned, T v, int m) { return emu::shuffle(v, [m](int l) { return l ^ m; }); }
template <class T>
inline T __shfl_up_sync(unsigned, T v, unsigned d) {
    return emu::shuffle(v, [d](int l) { return l >= (int)d ? l - (int)d : l; });
}
inline unsigned __ballot_sync(unsigned, int pred) {
    emu::WarpState& w = emu::warp_state();
    w.slot[emu::lane()] = pred ? 1 : 0;
    emu::warp_barrier();
    unsigned m = 0;
    for (int i = 0; i < 32; i++) m |= (w.slot[i] ? 1u : 0u) << i;
    emu::warp_barrier();
    return m;
}

// ---- runtime API ----------------------------------------------------------------------------------------------
typedef int cudaError_t;
typedef void* cudaStream_t;
enum { cudaSuccess = 0, cudaErrorInvalidValue = 1 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice, cudaMemcpyHostToHost };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
struct cudaDeviceProp { char name[256]; int multiProcessorCount, major, minor; }; // compute capability 0.0: no sm_90a
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount };

inline cudaError_t cudaMalloc(void** p, size_t n) {
    *p = std::aligned_alloc(256, (n + 255) / 256 * 256);
    if (*p) std::memset(*p, 0xA5, n); // device memory starts as garbage
    return *p ? cudaSuccess : cudaErrorInvalidValue;
}
template <class T>
inline cudaError_t cudaMalloc(T** p, size_t n) { return cudaMalloc(reinterpret_cast<void**>(p), n); }
inline cudaError_t cudaFree(void* p) { std::free(p); return cudaSuccess; }
inline cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) { std::memcpy(d, s, n); return cudaSuccess; }
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind, cudaStream_t = nullptr) {
    std::memcpy(d, s, n);
    return cudaSuccess;
}
inline cudaError_t cudaMemset(void* d, int v, size_t n) { std::memset(d, v, n); return cudaSuccess; }
inline cudaError_t cudaMemsetAsync(void* d, int v, size_t n, cudaStream_t = nullptr) { std::memset(d, v, n); return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t) { return "emulated"; }
inline cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr, int) { *v = 1; return cudaSuccess; } // one SM
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
    std::snprintf(p->name, sizeof p->name, "SIMT emulator (CPU)");
    p->multiProcessorCount = 1;
    p->major = p->minor = 0;
    return cudaSuccess;
}
template <class K>
inline cudaError_t cudaFuncSetAttribute(K, cudaFuncAttribute, int) { return cudaSuccess; }

namespace emu {
// Runs `body` once per thread of every CTA of the grid.
void launch(dim3 grid, dim3 block, size_t smem, const std::function<void()>& body);
// cp.async emulation (see common.cuh)
void cp_async16(void* smem, const void* gmem, int src_bytes);
void cp_async_commit();
void cp_async_wait(int keep);
void ldmatrix_x4(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, const void* p, bool trans);
void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
} // namespace emu
