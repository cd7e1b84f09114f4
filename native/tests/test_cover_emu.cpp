// The γ-cover search (kernels/select.cuh) on the SIMT emulator over many chunks per instance: the path the pipeline
// takes from T = 8K on (one CTA per 8192 elements, the last CTA to arrive decides), which fp_validate's sizes never
// reach. Counts must equal the float64 reference's cover_count, ties and zeros included.
#include "../emu/emu.h"
#include "../src/kernels/select.cuh"
#include "../reference/reference.h"
#include "check.h"

#include <cstring>
#include <random>

using namespace flexprefill;

namespace {

// Runs the 8 passes the way pipeline.cu's cover() does; returns (vertical, slash) counts per head.
std::vector<int> gpu_counts(const std::vector<float>& x, int heads, int64_t n, double gamma) {
    std::vector<CoverState> st(2 * heads);
    std::memset(st.data(), 0, sizeof(CoverState) * st.size());
    std::vector<flexprefill_head_info> info(heads);
    CoverArgs a{};
    a.base0 = x.data();
    a.base1 = x.data() + (size_t)heads * n;
    a.n = n;
    a.per_head = 2;
    a.gamma = gamma;
    a.state = st.data();
    a.heads = info.data();
    const int chunks = (int)std::min<int64_t>(256, std::max<int64_t>(1, (n + 8191) / 8192));
    a.chunk = (int)((n + chunks - 1) / chunks);
    for (int pass = 0; pass < 8; pass++) {
        a.pass = pass;
        launch(cover_pass_kernel<256>, dim3(chunks, 2 * heads), 256, 0, nullptr, a);
    }
    std::vector<int> out;
    for (int h = 0; h < heads; h++) {
        out.push_back(info[h].vertical_count);
        out.push_back(info[h].slash_count);
    }
    return out;
}

} // namespace

TEST(cover_over_many_chunks_matches_the_reference_count) {
    std::mt19937_64 rng(7);
    for (int64_t n : {24581LL, 100000LL, 300001LL}) {
        const int heads = 3;
        std::vector<float> x(2 * heads * n);
        for (int i = 0; i < 2 * heads; i++) {
            float* row = x.data() + (size_t)i * n;
            std::exponential_distribution<double> e(1.0);
            double sum = 0;
            for (int64_t j = 0; j < n; j++) {
                double y = std::pow(e(rng), 4.0 + i % heads); // heavy tails: a few large entries
                if (rng() % 7 == 0) y = 0.5;                   // many exact ties
                if (i == heads) y = 1.0;                       // one distribution uniform: the threshold inside a tie
                if (rng() % 11 == 0) y = 0;                    // zeros
                row[j] = (float)y;
                sum += row[j];
            }
            for (int64_t j = 0; j < n; j++) row[j] = (float)(row[j] / sum);
        }
        for (double gamma : {0.9, 0.95}) {
            const std::vector<int> got = gpu_counts(x, heads, n, gamma);
            for (int i = 0; i < 2 * heads; i++) {
                const int h = i % heads, which = i / heads;
                const float* row = x.data() + (size_t)i * n;
                const int ref = fpref::cover_count(std::vector<double>(row, row + n), gamma);
                CHECK(got[2 * h + which] == ref);
            }
        }
    }
}

int main() { return check::run_all(); }
