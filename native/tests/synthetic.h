// Synthetic attention inputs with the structure FlexPrefill exploits: attention sinks (the first keys), vertical
// stripes (a few keys every query likes), locality (a rotary-like positional component shared by q and k), on top of
// Gaussian noise; strengths vary per head so that both vertical-slash and query-aware heads appear.
// Values are rounded to bf16 (returned as float), the precision the kernels see.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace synth {

inline float round_bf16(float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    u += 0x7fffu + ((u >> 16) & 1u); // round to nearest even
    u &= 0xffff0000u;
    float y;
    std::memcpy(&y, &u, 4);
    return y;
}

inline uint16_t to_bf16_bits(float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    return (uint16_t)(u >> 16); // x is already bf16-exact
}

struct Inputs {
    int S, T, Hq, Hkv, D;
    std::vector<float> q, k, v; // q [S][Hq][D], k/v [T][Hkv][D]
};

inline Inputs make(int S, int T, int Hq, int Hkv, int D, uint64_t seed) {
    Inputs in{S, T, Hq, Hkv, D, {}, {}, {}};
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> n01(0.f, 1.f);
    std::uniform_real_distribution<float> u01(0.f, 1.f);
    in.q.resize((size_t)S * Hq * D);
    in.k.resize((size_t)T * Hkv * D);
    in.v.resize((size_t)T * Hkv * D);
    const int G = Hq / Hkv;
    std::vector<char> stripe(T, 0);
    for (int t = 1; t < T; t++) stripe[t] = u01(rng) < 0.01f;
    const int half = D / 4; // dims [0, half) carry the positional component
    for (int t = 0; t < T; t++)
        for (int h = 0; h < Hkv; h++) {
            float* k = &in.k[((size_t)t * Hkv + h) * D];
            float* v = &in.v[((size_t)t * Hkv + h) * D];
            for (int d = 0; d < D; d++) { k[d] = 0.5f * n01(rng); v[d] = n01(rng); }
            for (int f = 0; f < half / 2; f++) {
                const float w = std::pow(0.6f, (float)f);
                k[2 * f] += 1.5f * std::cos(w * t);
                k[2 * f + 1] += 1.5f * std::sin(w * t);
            }
            if (t < 4) k[D - 1] += 6.f;       // sink direction
            if (stripe[t]) k[D - 2] += 5.f;   // stripe direction
        }
    for (int s = 0; s < S; s++) {
        const int pos = T - S + s;
        for (int h = 0; h < Hq; h++) {
            float* q = &in.q[((size_t)s * Hq + h) * D];
            const int flavour = (h % G + h / G) % 4; // 0 local, 1 sink, 2 stripes, 3 diffuse
            for (int d = 0; d < D; d++) q[d] = (flavour == 3 ? 0.3f : 0.5f) * n01(rng);
            const float loc = flavour == 0 ? 1.5f : flavour == 3 ? 0.f : 0.6f;
            for (int f = 0; f < half / 2; f++) {
                const float w = std::pow(0.6f, (float)f);
                q[2 * f] += loc * std::cos(w * pos);
                q[2 * f + 1] += loc * std::sin(w * pos);
            }
            q[D - 1] += flavour == 1 ? 2.5f : 0.8f;
            q[D - 2] += flavour == 2 ? 2.5f : 0.5f;
        }
    }
    for (auto* a : {&in.q, &in.k, &in.v})
        for (float& x : *a) x = round_bf16(x);
    return in;
}

} // namespace synth
