"""Prefill floor of one Llama-3.1-8B decoder layer in plain PyTorch: what the C# engine's TTFT is compared against.

One layer, bf16, random weights, timed op by op: CUDA events between the ops of one forward (past the first GEMM the
host runs ahead of the GPU, so an interval is its kernels' time), median over reps after a warm-up; once per prefill
the embedding, the rope tables, the final norm + last-row lm_head. The projection to all layers splits the floor into
linear layers (four GEMMs a layer + lm_head), dense attention (SDPA) and the rest, and divides the attention by each
--attention-speedup for a sparse-attention TTFT (issue #8's target: 3.5 s at 128K). Eager ops, as the engine runs
them; elementwise rows give GB/s over the least traffic the op needs, so what fusing could save shows.
GQA: --gqa repeat (default, as recorded) expands K/V before SDPA; --gqa enable passes enable_gqa=True, as the engine does.
--mlp-chunk R runs the MLP R rows at a time (the engine's memory saving); its rows are summed over the chunks.
Usage: python3 tools/bench/llama_prefill_floor.py [--sizes 8192,32768] [--mlp-chunk 16384] [--json FILE]
       python3 tools/bench/llama_prefill_floor.py --tiny --device cpu          (the same code on the CPU, seconds)
"""
import argparse
import contextlib
import json
import math
import statistics
import sys
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

LLAMA_8B = dict(layers=32, hidden=4096, heads=32, kv_heads=8, head_dim=128, ffn=14336, vocab=128256, eps=1e-5,
                theta=500000.0, factor=8.0, low=1.0, high=4.0, original=8192)
TINY = dict(LLAMA_8B, hidden=256, heads=4, kv_heads=2, head_dim=64, ffn=512, vocab=1000, original=64)
LM_HEAD, SDPA = "final norm + lm_head (last row)", "sdpa (causal)"
LINEAR = ("qkv proj", "o proj", "gate_up proj", "down proj")


def llama3_inv_freq(c):
    """Meta's llama3 scaling of theta^(-2i/D): wavelengths over original/low are slowed by the factor, those under
    original/high kept, and between them blended linearly in original/wavelength (the clamp makes the outer cases)."""
    inv = c.theta ** -(torch.arange(0, c.head_dim, 2, dtype=torch.float64) / c.head_dim)
    smooth = ((c.original * inv / (2 * math.pi) - c.low) / (c.high - c.low)).clamp(0, 1)
    return (inv / c.factor * (1 - smooth) + inv * smooth).float()


def rope_tables(inv, n, dtype, device):
    """cos, sin [N, D/2] of positions 0..N-1: transformers' [N, D] tables are these twice over."""
    angles = torch.arange(n, device=device, dtype=torch.float32)[:, None] * inv.to(device)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rope(x, cos, sin):
    """x cos + rotate_half(x) sin for x [N, H, D], rotate_half(x) = (-x2, x1), written half by half: on an H200
    twice as fast at 128K as roll(x, D/2) times a signed sin (8.6 ms a layer) or cat-based forms (5.2-7.2 ms)."""
    h, c, s = x.shape[-1] // 2, cos[:, None], sin[:, None]
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    torch.mul(x[..., :h], c, out=out[..., :h]).addcmul_(x[..., h:], s, value=-1)
    torch.mul(x[..., h:], c, out=out[..., h:]).addcmul_(x[..., :h], s)
    return out


class Marks:
    """t(name, result) marks the end of op `name` and hands its result on; ms() sums the time between marks per name
    (a chunked MLP adds to the same rows)."""

    def __init__(self, cuda):
        self.cuda, self.points = cuda, []

    def __call__(self, name, result=None):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
        self.points.append((name, event if self.cuda else time.perf_counter()))
        return result

    def ms(self):
        if self.cuda:
            torch.cuda.synchronize()
        out = {}
        for (_, a), (name, b) in zip(self.points, self.points[1:]):
            out[name] = out.get(name, 0.0) + (a.elapsed_time(b) if self.cuda else (b - a) * 1e3)
        return out


def once_per_prefill(c, w, inv, tokens, t):
    """Embedding and rope tables before the layers, final norm and lm_head of the last row after them."""
    t("start")
    x = t("embedding", w.embed.index_select(0, tokens))
    cos, sin = t("rope tables", rope_tables(inv, len(tokens), x.dtype, x.device))
    t(LM_HEAD, F.linear(F.rms_norm(x[-1:], (c.hidden,), w.norm, c.eps), w.lm_head).float())
    return x, cos, sin


def layer(c, w, x, cos, sin, cache, t, args):
    """One pre-norm decoder layer on x [N, hidden]; its keys and values go to cache [2, Hkv, N, D]."""
    n, d, hq, hkv, chunk = x.shape[0], c.head_dim, c.heads, c.kv_heads, args.mlp_chunk or x.shape[0]
    t("start")
    h = t("input rmsnorm", F.rms_norm(x, (c.hidden,), w.ln1, c.eps))
    qkv = t("qkv proj", F.linear(h, w.qkv))                                       # [N, (Hq + 2 Hkv) D]
    qk = t("rope (q, k)", rope(qkv[:, :(hq + hkv) * d].view(n, hq + hkv, d), cos, sin))  # q and k in one go
    cache[0].copy_(qk[:, hq:].transpose(0, 1))
    t("kv cache write", cache[1].copy_(qkv[:, (hq + hkv) * d:].view(n, hkv, d).transpose(0, 1)))
    del h, qkv
    q, kv = qk[:, :hq].transpose(0, 1)[None], cache                               # q: [1, Hq, N, D]
    if args.gqa == "repeat":
        kv = t("kv repeat (gqa)", [z.repeat_interleave(hq // hkv, dim=0) for z in cache])  # k, v: [Hq, N, D]
    y = t(SDPA, F.scaled_dot_product_attention(q, kv[0][None], kv[1][None], is_causal=True,
                                               enable_gqa=args.gqa == "enable"))
    del q, qk, kv
    y = y[0].transpose(0, 1).reshape(n, hq * d)  # [N, Hq D]: a view, cuDNN and flash write [N, Hq, D] for this q
    h = t("o proj", F.linear(y, w.o))
    t("residual add", h.add_(x))
    del y
    h2 = t("post-attn rmsnorm", F.rms_norm(h, (c.hidden,), w.ln2, c.eps))
    for r in range(0, n, chunk):
        gu = t("gate_up proj", F.linear(h2[r:r + chunk], w.gate_up))             # [R, 2 FFN]: gate, up
        a = t("silu*mul", F.silu(gu[:, :c.ffn]).mul_(gu[:, c.ffn:]))
        del gu
        down = t("down proj", F.linear(a, w.down))
        t("residual add 2", h[r:r + chunk].add_(down))
        del a, down
    return h


def work(c, n, b):
    """Least work of each op: ("flop", FLOPs) for matmuls and attention, ("byte", bytes moved) otherwise."""
    hd, ff, d, hq, hkv = c.hidden, c.ffn, c.head_dim, c.heads, c.kv_heads
    mm = lambda k, m: ("flop", 2 * n * k * m)  # noqa: E731
    return {"embedding": ("byte", 2 * n * hd * b), "rope tables": ("byte", n * d * b),
            LM_HEAD: ("byte", c.vocab * hd * b), "input rmsnorm": ("byte", 2 * n * hd * b),
            "qkv proj": mm(hd, (hq + 2 * hkv) * d), "rope (q, k)": ("byte", (2 * (hq + hkv) + 1) * n * d * b),
            "kv cache write": ("byte", 4 * n * hkv * d * b), "kv repeat (gqa)": ("byte", 2 * n * (hkv + hq) * d * b),
            SDPA: ("flop", 4 * hq * d * n * (n + 1) // 2),
            "o proj": mm(hq * d, hd), "residual add": ("byte", 3 * n * hd * b),
            "post-attn rmsnorm": ("byte", 2 * n * hd * b), "gate_up proj": mm(hd, 2 * ff),
            "silu*mul": ("byte", 3 * n * ff * b), "down proj": mm(ff, hd), "residual add 2": ("byte", 3 * n * hd * b)}


def rate(kind, amount, ms):
    per_s = amount / (ms * 1e-3) / (1e12 if kind == "flop" else 1e9)
    return (f"{per_s:,.0f}" if per_s >= 10 else f"{per_s:.2f}") + (" TFLOP/s" if kind == "flop" else " GB/s")


def measure(c, w, inv, n, args, cuda):
    """Median ms of each op of one layer and of the once-per-prefill ops; the layer's peak memory (CUDA)."""
    reps = args.reps or max(2, 81920 // n)
    cache = torch.empty(2, c.kv_heads, n, c.head_dim, dtype=args.dtype, device=args.device)
    tokens = torch.randint(c.vocab, (n,), device=args.device)
    once, ops, peak, base = [], [], 0, 0
    backend = args.sdpa_backend.upper()
    with contextlib.nullcontext() if backend == "AUTO" else sdpa_kernel(SDPBackend.__members__[backend]):
        for _ in range(1 + reps):                                                 # the first is the warm-up
            t = Marks(cuda)
            x, cos, sin = once_per_prefill(c, w, inv, tokens, t)
            once.append(t.ms())
            if cuda:
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            t = Marks(cuda)
            layer(c, w, x, cos, sin, cache, t, args)
            ops.append(t.ms())
            peak = max(peak, torch.cuda.max_memory_allocated() if cuda else 0)
    med = lambda runs: {k: statistics.median(r[k] for r in runs[1:]) for k in runs[0]}  # noqa: E731
    return med(ops), med(once), reps, peak, base


def report(c, n, ops, once, reps, peak, base, args):
    """Prints the op table and the projection for N; returns the numbers for --json."""
    wk, layer_ms = work(c, n, args.dtype.itemsize), sum(ops.values())
    mem = f"; peak {peak / 2**30:.1f} GiB, {(peak - base) / 2**30:.1f} over weights, input, KV cache" if peak else ""
    print(f"\nN = {n:,}: one decoder layer, median of {reps} after a warm-up{mem}")
    print("| op | ms/layer | share | achieved |\n|---|---:|---:|---:|")
    for name, ms in ops.items():
        print(f"| {name} | {ms:.3f} | {ms / layer_ms:.1%} | {rate(*wk[name], ms)} |")
    print(f"| **layer** | **{layer_ms:.2f}** | 100% | |")
    for name, ms in once.items():
        print(f"| once: {name} | {ms:.3f} | | {rate(*wk[name], ms)} |")
    ttft = c.layers * layer_ms + sum(once.values())
    linear, attention = c.layers * sum(ops[k] for k in LINEAR) + once[LM_HEAD], c.layers * ops[SDPA]
    sparse = {f: ttft - attention + attention / f for f in args.attention_speedup}
    print(f"{c.layers} layers: TTFT floor {ttft:,.0f} ms = linear {linear:,.0f} + attention {attention:,.0f} + rest "
          f"{ttft - linear - attention:,.0f}; sparse attention " + "".join(
              f"{f:g}x faster {ms:,.0f} ms, " for f, ms in sparse.items()) + f"none at all {ttft - attention:,.0f} ms")
    return dict(n=n, reps=reps, ops_ms=ops, once_ms=once, layer_ms=layer_ms, ttft_floor_ms=ttft, linear_ms=linear,
                attention_ms=attention, rest_ms=ttft - linear - attention, peak_bytes=peak,
                peak_over_baseline_bytes=peak - base if peak else 0,
                sparse_ttft_ms={str(f): v for f, v in sparse.items()})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", help="prompt lengths N (default 8192,32768,65536,131072; --tiny 128,256)")
    ap.add_argument("--reps", type=int, default=0, help="timed forwards per N (default max(2, 81920 // N))")
    ap.add_argument("--mlp-chunk", type=int, default=0, help="rows per MLP chunk (default: all rows at once)")
    ap.add_argument("--gqa", choices=("repeat", "enable"), default="repeat")
    ap.add_argument("--sdpa-backend", default="auto", choices=["auto", *(b.lower() for b in SDPBackend.__members__)])
    ap.add_argument("--attention-speedup", default="4.0,5.2", help="sparse-attention speed-ups to project")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="hidden 256, 4/2 heads of 64, FFN 512, vocab 1000")
    ap.add_argument("--json", help="write every number to this file")
    args = ap.parse_args()
    args.dtype, args.attention_speedup = torch.bfloat16, [float(f) for f in args.attention_speedup.split(",")]
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        sys.exit(f"llama_prefill_floor: no CUDA device (torch {torch.__version__}, CUDA build {torch.version.cuda}); "
                 "--device cpu --tiny runs the same code on the CPU")
    c = SimpleNamespace(**(TINY if args.tiny else LLAMA_8B))
    sizes = [int(s) for s in (args.sizes or ("128,256" if args.tiny else "8192,32768,65536,131072")).split(",")]
    torch.manual_seed(0)
    rand = lambda *shape: torch.randn(*shape, dtype=args.dtype, device=args.device).mul_(0.02)  # noqa: E731
    ones = lambda: torch.ones(c.hidden, dtype=args.dtype, device=args.device)  # noqa: E731
    w = SimpleNamespace(embed=rand(c.vocab, c.hidden), lm_head=rand(c.vocab, c.hidden), norm=ones(), ln1=ones(),
                        ln2=ones(), qkv=rand((c.heads + 2 * c.kv_heads) * c.head_dim, c.hidden),
                        o=rand(c.hidden, c.heads * c.head_dim), gate_up=rand(2 * c.ffn, c.hidden),
                        down=rand(c.hidden, c.ffn))
    where = torch.cuda.get_device_name() if cuda else "cpu"
    print(f"llama_prefill_floor: {where}, torch {torch.__version__}, bf16, gqa {args.gqa}, sdpa {args.sdpa_backend}, "
          f"mlp chunk {args.mlp_chunk or 'none'}, {c.layers} layers of hidden {c.hidden}")
    results = [report(c, n, *measure(c, w, llama3_inv_freq(c), n, args, cuda), args) for n in sizes]
    print("\n| N | layer ms | TTFT floor ms | linear ms | attention ms | rest ms | " +
          "".join(f"sparse {f:g}x ms | " for f in args.attention_speedup) + "peak GiB |")
    print("|---:" * (7 + len(args.attention_speedup)) + "|")
    for r in results:
        ms = [r["ttft_floor_ms"], r["linear_ms"], r["attention_ms"], r["rest_ms"], *r["sparse_ttft_ms"].values()]
        peak = f"{r['peak_bytes'] / 2**30:.1f}" if r["peak_bytes"] else "-"
        print(f"| {r['n']:,} | {r['layer_ms']:.1f} | " + "".join(f"{v:,.0f} | " for v in ms) + f"{peak} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(device=where, torch=torch.__version__, config=vars(c), gqa=args.gqa, sdpa=args.sdpa_backend,
                           mlp_chunk=args.mlp_chunk, results=results), f, indent=1)


if __name__ == "__main__":
    main()
