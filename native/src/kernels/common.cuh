// Shared device helpers: bf16 tensor-core MMA (m16n8k16, sm_80+), ldmatrix, cp.async with zero fill, and the
// swizzled shared-memory layout of [rows x D] bf16 tiles that all tile kernels use.
//
// Tile layout: row-major, D bf16 per row (128 or 256 bytes), split into 16-byte chunks; chunk c of row r is stored at
// chunk position c ^ (r & 7). ldmatrix reads 8 rows at the same logical chunk: without the XOR all 8 would hit the
// same banks (rows are a multiple of 128 bytes apart); with it they land in 8 different 16-byte bank groups.
#pragma once
#include "../internal.h"
#include <cstdint>
#ifndef FLEXPREFILL_EMULATE
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#define FP_DYNAMIC_SMEM(name) extern __shared__ __align__(128) unsigned char name[]
#endif

namespace flexprefill {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

template <int D>
__device__ __forceinline__ int tile_offset(int row, int chunk) { // in bf16 elements
    return row * D + ((chunk ^ (row & 7)) << 3);
}

// Launches kernel<<<grid, block, smem, stream>>>(args...) (or runs it on the SIMT emulator, emu/emu.h).
template <typename... KArgs, typename... Args>
inline void launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args... args) {
#ifdef FLEXPREFILL_EMULATE
    (void)stream;
    emu::launch(grid, block, smem, [&] { kernel(args...); });
#else
    kernel<<<grid, block, smem, stream>>>(args...);
#endif
}

#ifdef FLEXPREFILL_EMULATE
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) { emu::cp_async16(smem, gmem, src_bytes); }
__device__ __forceinline__ void cp_async_commit() { emu::cp_async_commit(); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { emu::cp_async_wait(N); }
__device__ __forceinline__ void ldmatrix_x4(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, const void* p) {
    emu::ldmatrix_x4(r0, r1, r2, r3, p, false);
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, const void* p) {
    emu::ldmatrix_x4(r0, r1, r2, r3, p, true);
}
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    emu::mma_bf16(d, a, b0, b1);
}
#else
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy; bytes beyond src_bytes (0 or 16) are zero-filled.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(smem_addr(p)));
}

// d += a * b, a: 16x16 bf16 (row), b: 16x8 bf16 (col), d: 16x8 fp32.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

#endif

// Eight consecutive bf16 (16-byte aligned) as fp32, and back: one 16-byte access on the GPU; element by element on
// the emulator (host C++ may not read bf16 storage through a 16-byte type).
__device__ __forceinline__ void load_bf16x8(const __nv_bfloat16* p, float (&f)[8]) {
#ifdef FLEXPREFILL_EMULATE
    for (int j = 0; j < 8; j++) f[j] = __bfloat162float(p[j]);
#else
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const __nv_bfloat162* v = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const float2 x = __bfloat1622float2(v[j]);
        f[2 * j] = x.x;
        f[2 * j + 1] = x.y;
    }
#endif
}
__device__ __forceinline__ void store_bf16x8(__nv_bfloat16* p, const float (&f)[8]) {
#ifdef FLEXPREFILL_EMULATE
    for (int j = 0; j < 8; j++) p[j] = __float2bfloat16_rn(f[j]);
#else
    uint4 raw;
    __nv_bfloat162* v = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
    for (int j = 0; j < 4; j++) v[j] = __floats2bfloat162_rn(f[2 * j], f[2 * j + 1]);
    *reinterpret_cast<uint4*>(p) = raw;
#endif
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}

// Loads `rows` rows of D bf16 into a swizzled tile: tile row i comes from base + (row0 + i) * row_stride when
// valid_lo <= i < valid_hi, else it is zero-filled. All threads of the block take part; the caller commits and waits.
template <int D, int THREADS>
__device__ __forceinline__ void load_tile_async(__nv_bfloat16* tile, const __nv_bfloat16* base, int64_t row0,
                                                int64_t row_stride, int rows, int valid_lo, int valid_hi) {
    constexpr int kChunks = D / 8;
    for (int i = threadIdx.x; i < rows * kChunks; i += THREADS) {
        const int r = i / kChunks, c = i % kChunks;
        const bool ok = r >= valid_lo && r < valid_hi;
        const __nv_bfloat16* g = base + (ok ? (row0 + r) * row_stride + c * 8 : 0);
        cp_async16(tile + tile_offset<D>(r, c), g, ok ? 16 : 0);
    }
}

// S[16 x 64] (this warp's 16 rows of a 64-key tile) = Qtile[rows w*16.., :] . Ktile^T, fp32 accumulators in the
// m16n8 layout: s[n][0..1] = (row g, keys 8n+2t, +1), s[n][2..3] = (row g+8, same keys), g = lane/4, t = lane%4.
template <int D>
__device__ __forceinline__ void warp_qk(float (&s)[8][4], const __nv_bfloat16* qtile, const __nv_bfloat16* ktile,
                                        int warp, int lane) {
#pragma unroll
    for (int n = 0; n < 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        uint32_t a[4];
        ldmatrix_x4(a[0], a[1], a[2], a[3], qtile + tile_offset<D>(warp * 16 + (lane & 15), kk * 2 + (lane >> 4)));
#pragma unroll
        for (int np = 0; np < 4; np++) { // two 8-key n-tiles per ldmatrix
            uint32_t b0, b1, b2, b3;
            const int key = np * 16 + (lane & 7) + ((lane >> 4) << 3);
            ldmatrix_x4(b0, b1, b2, b3, ktile + tile_offset<D>(key, kk * 2 + ((lane >> 3) & 1)));
            mma_bf16(s[2 * np], a, b0, b1);
            mma_bf16(s[2 * np + 1], a, b2, b3);
        }
    }
}

} // namespace flexprefill
