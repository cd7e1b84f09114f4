// The SIMT emulator's runtime: fibers, the per-CTA scheduler with block and warp barriers, deferred cp.async,
// ldmatrix and mma.sync by their PTX fragment layouts. See emu.h.
#include "emu.h"

#include <cassert>
#include <memory>

#if !defined(__x86_64__)
#error "the SIMT emulator's context switch is written for x86-64"
#endif

// Saves the callee-saved registers on the current stack, stores the stack pointer to *from, loads `to`, restores.
extern "C" void emu_switch(void** from, void* to);
asm(R"(
.text
.globl emu_switch
.type emu_switch,@function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size emu_switch,.-emu_switch
)");

namespace emu {

namespace {

constexpr size_t kStackBytes = 96 * 1024;

enum class State { Runnable, AtBlockBarrier, AtWarpBarrier, Done };

struct PendingCopy {
    void* dst;
    const void* src;
    int bytes;
};

} // namespace

struct Fiber {
    void* sp = nullptr;
    uint3 tid{};
    int linear = 0;
    State state = State::Runnable;
    unsigned barrier_gen = 0;
    std::vector<std::vector<PendingCopy>> groups{1};
};

struct Cta {
    std::vector<Fiber> fibers;
    std::vector<WarpState> warps;
    std::vector<unsigned> warp_gen;
    uint3 block{}, grid{}, dim{};
    std::vector<unsigned char> smem;
    const std::function<void()>* body = nullptr;
    void* scheduler_sp = nullptr;
    Fiber* cur = nullptr;
    unsigned block_gen = 0;
};

namespace {

Cta* g_cta = nullptr;
std::vector<std::unique_ptr<unsigned char[]>> g_stacks;

void fiber_main() {
    Cta& c = *g_cta;
    (*c.body)();
    c.cur->state = State::Done;
    emu_switch(&c.cur->sp, c.scheduler_sp);
    std::abort(); // never resumed
}

void* prepare_stack(unsigned char* base) {
    uintptr_t top = reinterpret_cast<uintptr_t>(base + kStackBytes) & ~uintptr_t(15);
    auto* sp = reinterpret_cast<uint64_t*>(top);
    *--sp = 0;                                            // alignment slot (a fake return address of fiber_main)
    *--sp = reinterpret_cast<uint64_t>(&fiber_main);      // where the first switch "returns"
    for (int i = 0; i < 6; i++) *--sp = 0;                // rbp rbx r12 r13 r14 r15
    return sp;
}

void yield_to_scheduler() {
    Cta& c = *g_cta;
    emu_switch(&c.cur->sp, c.scheduler_sp);
}

void run_cta(Cta& c) {
    const int n = (int)c.fibers.size();
    for (int i = 0; i < n; i++) c.fibers[i].sp = prepare_stack(g_stacks[i].get());
    for (;;) {
        bool progressed = false, alive = false;
        for (int i = 0; i < n; i++) {
            Fiber& f = c.fibers[i];
            if (f.state != State::Runnable) { alive |= f.state != State::Done; continue; }
            alive = true;
            c.cur = &f;
            emu_switch(&c.scheduler_sp, f.sp);
            progressed = true;
        }
        if (!alive) return;
        // Release barriers whose participants have all arrived (exited threads count as arrived).
        bool all_block = true;
        for (auto& f : c.fibers)
            if (f.state == State::Runnable || f.state == State::AtWarpBarrier) { all_block = false; break; }
        if (all_block) {
            bool any = false;
            for (auto& f : c.fibers)
                if (f.state == State::AtBlockBarrier) { f.state = State::Runnable; any = true; }
            if (any) { c.block_gen++; continue; }
        }
        bool released = false;
        for (size_t w = 0; w < c.warps.size(); w++) {
            bool all = true, some = false;
            for (int l = 0; l < 32 && (int)w * 32 + l < n; l++) {
                const State s = c.fibers[w * 32 + l].state;
                if (s == State::AtWarpBarrier) some = true;
                else if (s != State::Done) all = false;
            }
            if (all && some) {
                for (int l = 0; l < 32 && (int)w * 32 + l < n; l++)
                    if (c.fibers[w * 32 + l].state == State::AtWarpBarrier) c.fibers[w * 32 + l].state = State::Runnable;
                c.warp_gen[w]++;
                released = true;
            }
        }
        if (!released && !progressed) {
            std::fprintf(stderr, "emu: deadlock in CTA (%u,%u,%u): threads wait at barriers that cannot complete\n",
                         c.block.x, c.block.y, c.block.z);
            std::abort();
        }
    }
}

} // namespace

Fiber* current() { return g_cta->cur; }
const uint3& thread_index() { return g_cta->cur->tid; }
const uint3& block_index() { return g_cta->block; }
const uint3& block_dim() { return g_cta->dim; }
const uint3& grid_dim() { return g_cta->grid; }
unsigned char* dynamic_smem() { return g_cta->smem.data(); }
int lane() { return g_cta->cur->linear % 32; }
WarpState& warp_state() { return g_cta->warps[g_cta->cur->linear / 32]; }

void block_barrier() {
    g_cta->cur->state = State::AtBlockBarrier;
    yield_to_scheduler();
}

void warp_barrier() {
    g_cta->cur->state = State::AtWarpBarrier;
    yield_to_scheduler();
}

void launch(dim3 grid, dim3 block, size_t smem, const std::function<void()>& body) {
    const int n = (int)(block.x * block.y * block.z);
    while ((int)g_stacks.size() < n) g_stacks.emplace_back(new unsigned char[kStackBytes]);
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                Cta c;
                c.fibers.resize(n);
                for (int i = 0; i < n; i++) {
                    c.fibers[i].linear = i;
                    c.fibers[i].tid = {i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
                }
                c.warps.resize((n + 31) / 32);
                c.warp_gen.assign(c.warps.size(), 0);
                c.block = {bx, by, bz};
                c.grid = {grid.x, grid.y, grid.z};
                c.dim = {block.x, block.y, block.z};
                c.smem.assign(smem, 0xFF); // poison: NaN in fp32 and bf16
                c.body = &body;
                g_cta = &c;
                run_cta(c);
                g_cta = nullptr;
            }
}

void cp_async16(void* smem, const void* gmem, int src_bytes) {
    g_cta->cur->groups.back().push_back({smem, gmem, src_bytes});
}

void cp_async_commit() { g_cta->cur->groups.emplace_back(); }

void cp_async_wait(int keep) {
    auto& groups = g_cta->cur->groups;
    // groups.back() is the open (uncommitted) group; the committed ones before it complete oldest first.
    const int committed = (int)groups.size() - 1;
    const int complete = committed - keep;
    for (int i = 0; i < complete; i++) {
        for (const PendingCopy& p : groups[i]) {
            std::memset(p.dst, 0, 16);
            if (p.bytes > 0) std::memcpy(p.dst, p.src, p.bytes);
        }
    }
    if (complete > 0) groups.erase(groups.begin(), groups.begin() + complete);
}

void ldmatrix_x4(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, const void* p, bool trans) {
    WarpState& w = warp_state();
    const int t = lane();
    w.addr[t] = p;
    warp_barrier();
    uint32_t r[4];
    for (int j = 0; j < 4; j++) {
        uint16_t lo, hi;
        if (!trans) { // thread t: row t/4 of matrix j, elements 2(t%4), 2(t%4)+1
            const auto* row = static_cast<const uint16_t*>(w.addr[j * 8 + t / 4]);
            lo = row[2 * (t % 4)];
            hi = row[2 * (t % 4) + 1];
        } else {      // thread t: rows 2(t%4), 2(t%4)+1 of matrix j, element t/4
            lo = static_cast<const uint16_t*>(w.addr[j * 8 + 2 * (t % 4)])[t / 4];
            hi = static_cast<const uint16_t*>(w.addr[j * 8 + 2 * (t % 4) + 1])[t / 4];
        }
        r[j] = (uint32_t)lo | ((uint32_t)hi << 16);
    }
    warp_barrier();
    r0 = r[0]; r1 = r[1]; r2 = r[2]; r3 = r[3];
}

namespace {
float bf16_lo(uint32_t x) { return __bfloat162float({(uint16_t)(x & 0xffff)}); }
float bf16_hi(uint32_t x) { return __bfloat162float({(uint16_t)(x >> 16)}); }
} // namespace

// m16n8k16, A row-major 16x16, B "col" 16x8, C/D 16x8 fp32; g = lane/4, t = lane%4:
//   a0 (g, 2t..2t+1) a1 (g+8, 2t..) a2 (g, 2t+8..) a3 (g+8, 2t+8..); b0 (k 2t..2t+1, n g) b1 (k 2t+8.., n g);
//   c0 c1 (g, 2t, 2t+1) c2 c3 (g+8, 2t, 2t+1)
void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    WarpState& w = warp_state();
    const int t = lane();
    for (int i = 0; i < 4; i++) { w.a[t][i] = a[i]; w.c[t][i] = d[i]; }
    w.b[t][0] = b0;
    w.b[t][1] = b1;
    w.done = false;
    warp_barrier();
    if (!w.done) {
        float A[16][16], B[16][8], C[16][8];
        for (int l = 0; l < 32; l++) {
            const int g = l / 4, q = l % 4;
            A[g][2 * q] = bf16_lo(w.a[l][0]); A[g][2 * q + 1] = bf16_hi(w.a[l][0]);
            A[g + 8][2 * q] = bf16_lo(w.a[l][1]); A[g + 8][2 * q + 1] = bf16_hi(w.a[l][1]);
            A[g][2 * q + 8] = bf16_lo(w.a[l][2]); A[g][2 * q + 9] = bf16_hi(w.a[l][2]);
            A[g + 8][2 * q + 8] = bf16_lo(w.a[l][3]); A[g + 8][2 * q + 9] = bf16_hi(w.a[l][3]);
            B[2 * q][g] = bf16_lo(w.b[l][0]); B[2 * q + 1][g] = bf16_hi(w.b[l][0]);
            B[2 * q + 8][g] = bf16_lo(w.b[l][1]); B[2 * q + 9][g] = bf16_hi(w.b[l][1]);
            C[g][2 * q] = w.c[l][0]; C[g][2 * q + 1] = w.c[l][1];
            C[g + 8][2 * q] = w.c[l][2]; C[g + 8][2 * q + 1] = w.c[l][3];
        }
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++) {
                float acc = C[i][j];
                for (int kk = 0; kk < 16; kk++) acc += A[i][kk] * B[kk][j];
                C[i][j] = acc;
            }
        for (int l = 0; l < 32; l++) {
            const int g = l / 4, q = l % 4;
            w.d[l][0] = C[g][2 * q]; w.d[l][1] = C[g][2 * q + 1];
            w.d[l][2] = C[g + 8][2 * q]; w.d[l][3] = C[g + 8][2 * q + 1];
        }
        w.done = true;
    }
    for (int i = 0; i < 4; i++) d[i] = w.d[t][i];
    warp_barrier();
}

} // namespace emu
