// Synthetic attention inputs with the structure FlexPrefill exploits: attention sinks (the first keys), vertical
// stripes (a few keys every query likes), locality (a rotary-like positional component shared by q and k), on top of
// Gaussian noise; strengths vary per head so that both vertical-slash and query-aware heads appear.
// Values are rounded to bf16 (returned as float), the precision the kernels see.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
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

// splitmix64 with Box-Muller: small, portable, the same stream on every compiler.
struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed) {}
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    float uniform() { return (float)((next() >> 11) * (1.0 / 9007199254740992.0)); }
    float normal() {
        const double u1 = ((next() >> 11) + 1) * (1.0 / 9007199254740993.0), u2 = (next() >> 11) * (1.0 / 9007199254740992.0);
        return (float)(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }
};

struct Inputs {
    int S, T, Hq, Hkv, D;
    std::vector<float> q, k, v; // q [S][Hq][D], k/v [T][Hkv][D]
};

inline Inputs make(int S, int T, int Hq, int Hkv, int D, uint64_t seed) {
    Inputs in{S, T, Hq, Hkv, D, {}, {}, {}};
    Rng rng(seed);
    in.q.resize((size_t)S * Hq * D);
    in.k.resize((size_t)T * Hkv * D);
    in.v.resize((size_t)T * Hkv * D);
    const int G = Hq / Hkv;
    std::vector<char> stripe(T, 0);
    for (int t = 1; t < T; t++) stripe[t] = rng.uniform() < 0.01f;
    const int half = D / 4; // dims [0, half) carry the positional component
    for (int t = 0; t < T; t++)
        for (int h = 0; h < Hkv; h++) {
            float* k = &in.k[((size_t)t * Hkv + h) * D];
            float* v = &in.v[((size_t)t * Hkv + h) * D];
            for (int d = 0; d < D; d++) { k[d] = 0.5f * rng.normal(); v[d] = rng.normal(); }
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
            for (int d = 0; d < D; d++) q[d] = (flavour == 3 ? 0.3f : 0.5f) * rng.normal();
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
