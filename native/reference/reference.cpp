// Float64 reference of the selection contract; plain loops, one rule per function, no tricks.
#include "reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace fpref {

int64_t Problem::causal() const {
    int64_t n = 0;
    for (int r = r0(); r < nb(); r++) n += r + 1;
    return n;
}

bool Problem::dense() const { return S <= std::max(2 * bs, mb() * bs); }

void probe(const Problem& p, int h, std::vector<double>& vertical, std::vector<double>& slash) {
    const int P = p.bs, kvh = h / (p.Hq / p.Hkv);
    const double scale = 1.0 / std::sqrt((double)p.D);
    vertical.assign(p.T, 0.0);
    slash.assign(p.T, 0.0);
    std::vector<double> sc(p.T);
    for (int i = 0; i < P; i++) {
        const int pos = p.T - P + i, s = p.S - P + i;
        double mx = -std::numeric_limits<double>::infinity();
        for (int j = 0; j <= pos; j++) {
            double acc = 0;
            for (int d = 0; d < p.D; d++) acc += p.qv(s, h, d) * p.kv(j, kvh, d);
            sc[j] = acc * scale;
            mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (int j = 0; j <= pos; j++) sum += std::exp(sc[j] - mx);
        for (int j = 0; j <= pos; j++) {
            const double a = std::exp(sc[j] - mx) / sum / P;
            vertical[j] += a;
            slash[pos - j] += a;
        }
    }
}

int cover_count(const std::vector<double>& x, double gamma) {
    std::vector<double> s(x);
    std::sort(s.begin(), s.end(), std::greater<double>());
    double total = 0;
    for (double v : x) total += v;
    const double target = gamma * total;
    double acc = 0;
    for (size_t t = 0; t < s.size(); t++) {
        acc += s[t];
        if (acc >= target) return (int)t + 1;
    }
    return (int)s.size();
}

std::vector<char> top_k_forced(const std::vector<double>& score, int k) {
    const int n = (int)score.size();
    std::vector<int> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    auto key = [&](int i) { return i == 0 ? std::numeric_limits<double>::infinity() : score[i]; };
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return key(a) > key(b); });
    std::vector<char> sel(n, 0);
    for (int i = 0; i < std::min(k, n); i++) sel[idx[i]] = 1;
    return sel;
}

double js_distance(const std::vector<double>& p, const std::vector<double>& q) {
    double js = 0;
    for (size_t i = 0; i < p.size(); i++) {
        const double m = 0.5 * (p[i] + q[i]);
        if (p[i] > 0) js += 0.5 * p[i] * std::log(p[i] / m);
        if (q[i] > 0) js += 0.5 * q[i] * std::log(q[i] / m);
    }
    return std::sqrt(std::max(js, 0.0));
}

HeadSelection dense_selection(const Problem& p) {
    HeadSelection hs;
    hs.pattern = Dense;
    hs.js = std::numeric_limits<double>::quiet_NaN();
    hs.row_ptr.push_back(0);
    for (int r = p.r0(); r < p.nb(); r++) {
        for (int c = 0; c <= r; c++) hs.col_idx.push_back(c);
        hs.row_ptr.push_back((int)hs.col_idx.size());
    }
    return hs;
}

namespace {

// Mean over positions [lo, hi) of rows of q (is_query) or k, as doubles.
std::vector<double> mean_rows(const Problem& p, bool is_query, int h, int lo, int hi) {
    std::vector<double> m(p.D, 0.0);
    for (int pos = lo; pos < hi; pos++)
        for (int d = 0; d < p.D; d++) m[d] += is_query ? p.qv(pos - (p.T - p.S), h, d) : p.kv(pos, h, d);
    for (double& x : m) x /= (hi - lo);
    return m;
}

} // namespace

Selection select(const Problem& p, const std::vector<std::vector<double>>* vertical_in,
                 const std::vector<std::vector<double>>* slash_in) {
    Selection out;
    const int nb = p.nb(), r0 = p.r0(), G = p.Hq / p.Hkv, mb = p.mb();
    int cap = nb;
    if (p.max_budget > 0) cap = std::min(nb, (p.max_budget + p.bs - 1) / p.bs);
    if (p.dense()) {
        for (int h = 0; h < p.Hq; h++) out.heads.push_back(dense_selection(p));
        return out;
    }
    const double scale = 1.0 / std::sqrt((double)p.D);
    std::vector<std::vector<double>> kbar(p.Hkv);
    for (int g = 0; g < p.Hkv; g++)
        for (int b = 0; b < nb; b++) {
            auto m = mean_rows(p, false, g, b * p.bs, std::min(p.T, (b + 1) * p.bs));
            kbar[g].insert(kbar[g].end(), m.begin(), m.end());
        }
    for (int h = 0; h < p.Hq; h++) {
        const int kvh = h / G;
        HeadSelection hs;
        std::vector<double> vertical, slash;
        if (vertical_in) { vertical = (*vertical_in)[h]; slash = (*slash_in)[h]; }
        else probe(p, h, vertical, slash);
        hs.tv = cover_count(vertical, p.gamma);
        hs.ts = cover_count(slash, p.gamma);
        int kv = std::min(std::max(hs.tv / p.bs + 1, mb), cap);
        int ks = std::min(std::max(hs.ts / p.bs + 1, mb), cap);
        std::vector<double> vb(nb, 0.0), sb(nb, 0.0);
        for (int j = 0; j < p.T; j++) { vb[j / p.bs] += vertical[j]; sb[j / p.bs] += slash[j]; }
        // rule 7: estimated vs true block distribution
        auto qhat = mean_rows(p, true, h, p.T - p.bs, p.T);
        std::vector<double> z(nb), est(nb);
        double zmax = -std::numeric_limits<double>::infinity(), esum = 0;
        for (int b = 0; b < nb; b++) {
            double acc = 0;
            for (int d = 0; d < p.D; d++) acc += qhat[d] * scale * kbar[kvh][(size_t)b * p.D + d];
            z[b] = acc;
            zmax = std::max(zmax, acc);
        }
        for (int b = 0; b < nb; b++) esum += std::exp(z[b] - zmax);
        for (int b = 0; b < nb; b++) est[b] = std::exp(z[b] - zmax) / esum;
        hs.js = js_distance(est, vb);
        const bool qa = p.tau > 0 && hs.js < p.tau;
        hs.pattern = qa ? QueryAware : VerticalSlash;
        if (qa) kv = ks = std::max(1, std::min(mb, cap)); // the forced entries stay even when min_budget is 0
        hs.kv = kv;
        hs.ks = ks;
        const auto vsel = top_k_forced(vb, kv);
        const auto bsel = top_k_forced(sb, ks);
        std::vector<char> dsel(nb, 0);
        for (int s = 0; s < nb; s++) dsel[s] = bsel[s] || (s >= 1 && bsel[s - 1]);
        // rule 8: query-aware map over the existing rows
        const int rows = p.rows();
        std::vector<std::vector<char>> qsel(rows);
        if (qa) {
            struct Entry { double v; int r, c; };
            std::vector<Entry> entries;
            for (int i = 0; i < rows; i++) {
                const int r = r0 + i;
                auto qb = mean_rows(p, true, h, std::max(r * p.bs, p.T - p.S), std::min((r + 1) * p.bs, p.T));
                std::vector<double> lg(r + 1);
                double mx = -std::numeric_limits<double>::infinity(), sum = 0;
                for (int c = 0; c <= r; c++) {
                    double acc = 0;
                    for (int d = 0; d < p.D; d++) acc += qb[d] * kbar[kvh][(size_t)c * p.D + d];
                    lg[c] = acc * scale;
                    mx = std::max(mx, lg[c]);
                }
                for (int c = 0; c <= r; c++) sum += std::exp(lg[c] - mx);
                for (int c = 0; c <= r; c++) entries.push_back({std::exp(lg[c] - mx) / sum, r, c});
                qsel[i].assign(r + 1, 0);
            }
            std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
                if (a.v != b.v) return a.v > b.v;
                if (a.r != b.r) return a.r < b.r;
                return a.c < b.c;
            });
            const double target = p.gamma * rows;
            double acc = 0;
            for (const Entry& e : entries) {
                qsel[e.r - r0][e.c] = 1;
                hs.qa_entries++;
                acc += e.v;
                if (acc >= target) break;
            }
        }
        // rules 6, 9, 10
        hs.row_ptr.push_back(0);
        for (int i = 0; i < rows; i++) {
            const int r = r0 + i;
            for (int c = 0; c <= r; c++)
                if (vsel[c] || dsel[r - c] || c == r || (qa && qsel[i][c])) hs.col_idx.push_back(c);
            hs.row_ptr.push_back((int)hs.col_idx.size());
        }
        out.heads.push_back(std::move(hs));
    }
    return out;
}

int attention(const Problem& p, const HeadSelection& sel, int h, int row_begin, int row_end, std::vector<double>& out,
              std::vector<double>& lse) {
    const int kvh = h / (p.Hq / p.Hkv), r0 = p.r0();
    const double scale = 1.0 / std::sqrt((double)p.D);
    out.clear();
    lse.clear();
    int n = 0;
    std::vector<double> sc, acc(p.D);
    std::vector<int> keys;
    for (int i = row_begin; i < row_end; i++) {
        const int r = r0 + i;
        for (int pos = std::max(r * p.bs, p.T - p.S); pos < std::min((r + 1) * p.bs, p.T); pos++) {
            const int s = pos - (p.T - p.S);
            keys.clear();
            for (int j = sel.row_ptr[i]; j < sel.row_ptr[i + 1]; j++) {
                const int c = sel.col_idx[j];
                for (int key = c * p.bs; key < std::min((c + 1) * p.bs, p.T); key++)
                    if (key <= pos) keys.push_back(key);
            }
            sc.assign(keys.size(), 0.0);
            double mx = -std::numeric_limits<double>::infinity();
            for (size_t x = 0; x < keys.size(); x++) {
                double a = 0;
                for (int d = 0; d < p.D; d++) a += p.qv(s, h, d) * p.kv(keys[x], kvh, d);
                sc[x] = a * scale;
                mx = std::max(mx, sc[x]);
            }
            double sum = 0;
            std::fill(acc.begin(), acc.end(), 0.0);
            for (size_t x = 0; x < keys.size(); x++) {
                const double w = std::exp(sc[x] - mx);
                sum += w;
                for (int d = 0; d < p.D; d++) acc[d] += w * p.vv(keys[x], kvh, d);
            }
            for (int d = 0; d < p.D; d++) out.push_back(acc[d] / sum);
            lse.push_back(mx + std::log(sum));
            n++;
        }
    }
    return n;
}

} // namespace fpref
