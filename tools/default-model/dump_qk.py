"""Dumps real post-RoPE queries and keys (and the values) of the default model at long context, for the FlexPrefill kernel tests and
benchmarks (real attention structure: sinks, local and retrieval heads), as raw little-endian bf16 files.

The prompt is a held-out needle task in the chat format (a public-domain haystack with 4 needles and a question at the
end), so the last queries retrieve. Files in --out (not committed; regenerate):
  q_layer{L}.bf16  [num_attention_heads, T, head_dim]   post-RoPE queries of layer L
  k_layer{L}.bf16  [num_key_value_heads, T, head_dim]   post-RoPE keys of layer L (GQA: query head h uses h // group)
  v_layer{L}.bf16  [num_key_value_heads, T, head_dim]   values of layer L
  meta.json        shapes, dtype, layers, rope_theta, scale 1/sqrt(head_dim), the prompt's token ids, needle depths

Usage: python3 dump_qk.py --model models/default --tokens 65536 --layers 1,3 --out .cache/qk [--device cuda]"""
import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import model as llama  # noqa: E402
import tasks  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--text-dir", default=".cache/data/text")
    ap.add_argument("--tokens", type=int, default=32768)
    ap.add_argument("--layers", default="1", help="comma-separated layer indices")
    ap.add_argument("--out", default=".cache/qk")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--chunk", type=int, default=4096, help="prefill chunk (keys of earlier chunks come from the cache)")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()

    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    net = llama.load_hf(args.model, dtype=dtype, device=args.device)
    tok = common.Tokenizer.load(args.model)
    maker = tasks.TaskMaker(tasks.Corpus(args.text_dir), tok, held_out=True, seed=args.seed)
    messages, answers = maker.niah(args.tokens - 64, n_keys=4)
    ids, _ = common.encode_chat(tok, messages[:1], add_generation_prompt=True)
    ids = ids[: args.tokens]
    layers = [int(x) for x in args.layers.split(",")]
    captured = {l: ([], [], []) for l in layers}

    def hook(index, original):
        def qkv(x, cos, sin):
            q, k, v = original(x, cos, sin)
            for store, t in zip(captured[index], (q, k, v)):
                store.append(t[0].to(torch.bfloat16).cpu())
            return q, k, v
        return qkv

    for l in layers:
        attn = net.model.layers[l].self_attn
        attn.qkv = hook(l, attn.qkv)
    caches = [dict() for _ in net.model.layers]
    x = torch.tensor([ids], device=args.device)
    with torch.no_grad():
        for s in range(0, len(ids), args.chunk):
            h = net.hidden(x[:, s:s + args.chunk], caches=caches)
        for l in layers:
            del net.model.layers[l].self_attn.qkv  # decoding below is not part of the dump
        out = []
        for _ in range(40):
            nxt = int(net.logits(h[:, -1]).argmax(-1))
            if nxt in common.EOS_IDS:
                break
            out.append(nxt)
            h = net.hidden(torch.tensor([[nxt]], device=args.device), caches=caches)
        answer = tok.decode(out)
    os.makedirs(args.out, exist_ok=True)
    cfg = net.cfg
    shapes = {}
    for l in layers:
        shapes[l] = {}
        for name, parts in zip("qkv", captured[l]):
            t = torch.cat(parts, dim=1).contiguous()
            t.view(torch.int16).numpy().tofile(os.path.join(args.out, f"{name}_layer{l}.bf16"))
            shapes[l][name] = list(t.shape)
    meta = {"model": os.path.abspath(args.model), "tokens": len(ids), "layers": layers, "shapes": shapes,
            "dtype": "bf16 little-endian", "layout": "[heads, tokens, head_dim], row-major",
            "num_attention_heads": cfg["num_attention_heads"], "num_key_value_heads": cfg["num_key_value_heads"],
            "head_dim": cfg["head_dim"], "rope_theta": cfg["rope_theta"], "scale": 1 / math.sqrt(cfg["head_dim"]),
            "causal": True, "expected_answer": answers[0], "model_answer": answer, "token_ids": ids}
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f)
    print(f"{len(ids)} tokens, layers {layers} -> {args.out}; model answered {answer!r} (expected {answers[0]!r})")


if __name__ == "__main__":
    main()
