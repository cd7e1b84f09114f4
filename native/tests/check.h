// A few lines of test scaffolding (no test framework is assumed on the CI or GPU machines).
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace check {

inline int& failures() { static int n = 0; return n; }
inline std::vector<std::pair<std::string, std::function<void()>>>& registry() {
    static std::vector<std::pair<std::string, std::function<void()>>> r;
    return r;
}
struct Register {
    Register(const char* name, std::function<void()> f) { registry().emplace_back(name, std::move(f)); }
};
inline int run_all() {
    int failed_tests = 0;
    for (auto& [name, f] : registry()) {
        const int before = failures();
        f();
        const bool ok = failures() == before;
        std::printf("%s %s\n", ok ? "PASS" : "FAIL", name.c_str());
        failed_tests += ok ? 0 : 1;
    }
    std::printf("%zu tests, %d failed\n", registry().size(), failed_tests);
    return failed_tests ? 1 : 0;
}

} // namespace check

#define TEST(name)                                                                                                     \
    static void name();                                                                                                \
    static check::Register reg_##name(#name, name);                                                                    \
    static void name()
#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) { std::printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); check::failures()++; } \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                                                          \
    do {                                                                                                               \
        const double a_ = (a), b_ = (b);                                                                               \
        if (!(std::fabs(a_ - b_) <= (tol))) {                                                                          \
            std::printf("  %s:%d: %s = %.12g, expected %.12g (tol %g)\n", __FILE__, __LINE__, #a, a_, b_, (double)(tol)); \
            check::failures()++;                                                                                       \
        }                                                                                                              \
    } while (0)
