// Hopper (sm_90a) warpgroup MMA: the shared-memory operand layout, matrix descriptors and the two wgmma shapes the
// sm_90 attention kernel needs. Everything here exists only when compiling for sm_90a (FP_SM90); other targets and
// the emulator never include the kernel that uses it.
//
// Operand tiles in shared memory: [rows x 128] bf16 stored as two 64-column panels of [rows x 128 bytes] (panel p
// holds columns 64p..64p+63), each row's eight 16-byte chunks swizzled as chunk c -> c ^ (row & 7): the 128-byte
// swizzle the wgmma descriptors name, so the hardware reads conflict-free. Tiles start on 1024-byte boundaries (the
// swizzle repeats every 8 rows of 128 bytes).
//   K-major operand (Q as A, K as B of S = Q Kᵀ): 8-row groups 1024 bytes apart (stride byte offset); the k-th 16
//   columns start 32·(k % 4) bytes into panel k / 4.
//   MN-major operand (V as B of O = P V, transposed): 16 keys of a k-step are two 8-row groups from 2048·k bytes; the
//   second 64 output columns are the next panel (leading byte offset), 8-row groups 1024 bytes apart (stride offset).
#pragma once
#include "common.cuh"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FP_SM90 1
#endif

namespace flexprefill::sm90 {

constexpr int kPanelRowBytes = 128;

// Byte offset of 16-byte chunk `chunk` (0..15 over 128 bf16 columns) of `row` in a ROWS-row two-panel tile.
template <int ROWS>
__device__ __forceinline__ int panel_offset(int row, int chunk) {
    return (chunk >> 3) * (ROWS * kPanelRowBytes) + row * kPanelRowBytes + (((chunk & 7) ^ (row & 7)) << 4);
}

// Loads rows [0, ROWS) of a [rows x 128] bf16 tile, row i from base + (row0 + i) * row_stride when
// valid_lo <= i < valid_hi (else zeros), into the two-panel layout. All THREADS threads take part.
template <int ROWS, int THREADS>
__device__ __forceinline__ void load_panels_async(unsigned char* tile, const __nv_bfloat16* base, int64_t row0,
                                                  int64_t row_stride, int valid_lo, int valid_hi) {
#pragma unroll
    for (int i = threadIdx.x; i < ROWS * 16; i += THREADS) {
        const int r = i >> 4, c = i & 15;
        const bool ok = r >= valid_lo && r < valid_hi;
        const __nv_bfloat16* g = base + (ok ? (row0 + r) * row_stride + c * 8 : 0);
        cp_async16(tile + panel_offset<ROWS>(r, c), g, ok ? 16 : 0);
    }
}

#ifdef FP_SM90
// Shared-memory matrix descriptor: start address, leading / stride byte offsets, 128-byte swizzle.
__device__ __forceinline__ uint64_t smem_desc(const void* p, uint32_t lbo_bytes, uint32_t sbo_bytes) {
    const uint32_t a = smem_addr(p);
    return (uint64_t)((a & 0x3FFFF) >> 4) | (uint64_t)((lbo_bytes >> 4) & 0x3FFF) << 16 |
           (uint64_t)((sbo_bytes >> 4) & 0x3FFF) << 32 | 1ull << 62;
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
// Makes this thread's completed cp.async writes visible to the async proxy that wgmma reads shared memory through.
__device__ __forceinline__ void fence_async_shared() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Keeps the compiler from moving accumulator reads or writes across an in-flight wgmma.
template <int R>
__device__ __forceinline__ void fence_operands(float (&d)[R]) {
#pragma unroll
    for (int i = 0; i < R; i++) asm volatile("" : "+f"(d[i])::"memory");
}

// d[64x128] (+)= A[64x16] · B[16x128], both from shared memory, K-major. accumulate = 0 overwrites d.
// d's layout per thread (warp w of the warpgroup, g = lane / 4, t = lane % 4): d[4j + e] is row 16w + g + 8·(e / 2),
// column 8j + 2t + (e % 2).
__device__ __forceinline__ void wgmma_m64n128k16_ss(float (&d)[64], uint64_t a, uint64_t b, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"
                 " %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31,"
                 " %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47,"
                 " %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                   "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
                   "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
                   "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
                   "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
                   "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
                   "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "l"(a), "l"(b), "r"(accumulate));
}

// d[64x128] += A[64x16] · B[16x128], A from registers (the m16n8k16 A-fragment layout per warp: a[0] row g cols
// 2t..2t+1, a[1] row g+8, a[2] row g cols 2t+8.., a[3] row g+8 cols 2t+8..), B from shared memory, MN-major.
__device__ __forceinline__ void wgmma_m64n128k16_rs(float (&d)[64], const uint32_t (&a)[4], uint64_t b) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"
                 " %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31,"
                 " %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47,"
                 " %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                   "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
                   "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
                   "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
                   "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
                   "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
                   "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
                   "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}
#endif

} // namespace flexprefill::sm90
