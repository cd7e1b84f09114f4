// What the GPU harnesses (dev/validate*.cu, also built for the emulator) share: the count of failed checks, checks
// that stop on a CUDA or library error, a check that counts and goes on, and bf16 bits as float.
#pragma once
#include "../include/flexprefill.h"

#ifndef FLEXPREFILL_EMULATE
#include <cuda_runtime.h>
#endif

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

int g_failures = 0;

#define CUDA_OK(call)                                                                                                  \
    do {                                                                                                               \
        cudaError_t e_ = (call);                                                                                       \
        if (e_ != cudaSuccess) { std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); std::exit(1); } \
    } while (0)
#define FP_OK(call)                                                                                                    \
    do {                                                                                                               \
        flexprefill_status s_ = (call);                                                                                \
        if (s_ != FLEXPREFILL_OK) { std::printf("flexprefill status %d: %s\n", (int)s_, flexprefill_last_error()); std::exit(1); } \
    } while (0)
#define EXPECT(cond, ...)                                                                                              \
    do {                                                                                                               \
        if (!(cond)) { std::printf("  FAIL: " __VA_ARGS__); std::printf("\n"); g_failures++; }                       \
    } while (0)

// True, after saying why, when no CUDA device is visible: the harness then exits 77, ctest's skip.
inline bool no_cuda_device() {
    if (flexprefill_cuda_available()) return false;
    std::printf("skipped: no CUDA device (%s)\n", flexprefill_version());
    return true;
}

inline float bf16_to_float(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

} // namespace
