"""Needle-in-a-haystack accuracy of a model folder on held-out needles (keys, values and haystack text never used in
training), at fixed context lengths. A prompt is the quick-start form that the samples use:

    <|begin_of_text|><|start_header_id|>user<|end_header_id|>\\n\\n{document with the needle sentence inserted between
    two sentences}\\n\\nWhat is the special magic number for {key}?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n

Correct = the first number in the greedy answer is the needle's 7-digit value. Backend `transformers`
(LlamaForCausalLM, dense SDPA attention) when it is installed, else `native` (model.py: the same math in plain
PyTorch, used on machines without transformers). Writes a JSON with every prompt's result and prints a markdown table.

Usage: python3 evaluate.py --model models/default --lengths 1024,4096,8192,16384 --prompts 50 --out eval.json"""
import argparse
import json
import os
import sys
import time

import regex
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import tasks  # noqa: E402


def needle_prompt(maker, tok, length, depth, n_distractors=0):
    """Prompt ids of at most `length - 32` tokens (room for the answer) with one needle at fractional `depth`."""
    key, value = maker.key(), maker.value()
    needles = [tasks.NEEDLE.format(key=key, value=value)]
    for _ in range(n_distractors):
        needles.append(tasks.NEEDLE.format(key=maker.key(), value=maker.value()))
    question = tasks.QUESTION.format(key=key)
    budget = length - 32 - 40
    state = maker.rng.getstate()
    while True:
        maker.rng.setstate(state)  # same haystack start each try, only shorter
        body, _ = maker.haystack(budget, needles, [depth] + [maker.rng.random() for _ in needles[1:]])
        ids, _ = common.encode_chat(tok, [("user", body + "\n\n" + question)], add_generation_prompt=True)
        if len(ids) <= length - 32:
            return ids, key, value
        budget -= max(8, len(ids) - (length - 32))


class NativeBackend:
    name = "native (model.py, fp32)"

    def __init__(self, folder, device):
        import model as llama
        self.net = llama.load_hf(folder, dtype=torch.float32, device=device)

    def generate(self, ids, max_new):
        return self.net.generate(ids, max_new, set(common.EOS_IDS))


class TransformersBackend:
    def __init__(self, folder, device, dtype):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        self.device = device
        self.net = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation="sdpa").to(device).eval()
        self.hf_tok = AutoTokenizer.from_pretrained(folder)
        self.name = f"transformers {__import__('transformers').__version__} ({dtype}, sdpa)"

    def check_template(self, ids, content):
        hf = self.hf_tok.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                             tokenize=True)
        hf = hf["input_ids"] if isinstance(hf, dict) or hasattr(hf, "keys") else hf
        assert list(hf) == ids, "chat template / tokenizer differ from the recipe's encoding"

    @torch.no_grad()
    def generate(self, ids, max_new):
        x = torch.tensor([ids], device=self.device)
        out = self.net.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new, do_sample=False,
                                eos_token_id=common.EOS_IDS, pad_token_id=common.PAD)
        gen = out[0, len(ids):].tolist()
        return [t for t in gen if t not in common.EOS_IDS and t != common.PAD]


def make_backend(name, folder, device, dtype):
    """`auto`: transformers when it is installed, else model.py (same math; NativeBackend computes in fp32)."""
    if name == "auto":
        try:
            import transformers  # noqa: F401
            name = "transformers"
        except ImportError:
            name = "native"
    return TransformersBackend(folder, device, dtype) if name == "transformers" else NativeBackend(folder, device)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--text-dir", default=".cache/data/text")
    ap.add_argument("--lengths", default="1024,4096,8192,16384,32768,65536")
    ap.add_argument("--prompts", default="50", help="one count, or one per length: 50,50,50,20")
    ap.add_argument("--distractors", type=int, default=0, help="extra needles with other keys (multi-key)")
    ap.add_argument("--backend", choices=["auto", "transformers", "native"], default="auto")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    be = make_backend(args.backend, args.model, args.device, getattr(torch, args.dtype))
    tok = common.Tokenizer.load(args.model)
    corpus = tasks.Corpus(args.text_dir)
    lengths = [int(x) for x in args.lengths.split(",")]
    counts = [int(x) for x in args.prompts.split(",")]
    counts = counts + [counts[-1]] * (len(lengths) - len(counts))
    results = {"backend": be.name, "device": args.device, "distractors": args.distractors, "lengths": {}}
    print(f"backend {be.name} on {args.device}", flush=True)
    for length, n in zip(lengths, counts):
        maker = tasks.TaskMaker(corpus, tok, held_out=True, seed=args.seed * 1000003 + length)
        rows, t0 = [], time.time()
        for i in range(n):
            depth = i / max(1, n - 1)
            ids, key, value = needle_prompt(maker, tok, length, depth, args.distractors)
            if i == 0 and hasattr(be, "check_template"):
                be.check_template(ids, tok.decode(ids).split("<|end_header_id|>\n\n", 1)[1].rsplit("<|eot_id|>", 1)[0])
            answer = tok.decode(be.generate(ids, 40))
            got = regex.search(r"\d+", answer)
            ok = got is not None and got.group(0) == value
            rows.append({"depth": round(depth, 3), "prompt_tokens": len(ids), "key": key, "value": value,
                         "answer": answer, "correct": ok})
        acc = sum(r["correct"] for r in rows) / max(1, n)
        results["lengths"][str(length)] = {"prompts": n, "accuracy": acc, "seconds": time.time() - t0, "rows": rows}
        print(f"{length:6d} tokens: {acc * 100:5.1f}% of {n}  ({time.time() - t0:.0f} s)  e.g. {rows[0]['answer']!r}",
              flush=True)
        if args.out:
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)
    print("\n| context | prompts | exact digits |\n|---:|---:|---:|")
    for length, r in results["lengths"].items():
        print(f"| {int(length) // 1024}K | {r['prompts']} | {r['accuracy'] * 100:.0f}% |")


if __name__ == "__main__":
    main()
