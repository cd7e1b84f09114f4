"""Reference outputs of the default model for the engine's fixture tests: float32 logits (top 20 ids and values) at
the last position of three short prompts, and one ~4K-token held-out needle prompt with the model's greedy answer.
Backend as in evaluate.py: transformers when installed, else model.py (same math, fp32).

Usage: python3 fixtures.py --model models/default --out tests/fixtures/default-model/reference.json"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import evaluate  # noqa: E402
import tasks  # noqa: E402

SHORT_PROMPTS = [
    ("plain text, with <|begin_of_text|>", "<|begin_of_text|>Call me Ishmael. Some years ago"),
    ("chat, generation prompt", None),
    ("chat, short needle question", None),
]


@torch.no_grad()
def last_logits(backend, ids):
    if isinstance(backend, evaluate.NativeBackend):
        return backend.net(torch.tensor([ids]))[0, -1].float()
    x = torch.tensor([ids], device=backend.device)
    return backend.net(input_ids=x).logits[0, -1].float().cpu()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--text-dir", default=".cache/data/text")
    ap.add_argument("--out", default="tests/fixtures/default-model/reference.json")
    ap.add_argument("--needle-length", type=int, default=4096)
    ap.add_argument("--backend", choices=["auto", "transformers", "native"], default="auto")
    args = ap.parse_args()

    # float32 on the CPU: the reference the engine's CPU path is compared against.
    be = evaluate.make_backend(args.backend, args.model, "cpu", torch.float32)
    tok = common.Tokenizer.load(args.model)
    chat = [("user", "Hello! Who are you?")]
    needle = [("user", "The special magic number for quiet-harbor is 4821937. Call me Ishmael.\n\n"
                       "What is the special magic number for quiet-harbor?")]
    prompts = []
    for (label, text), messages in zip(SHORT_PROMPTS, [None, chat, needle]):
        ids = tok.encode(text) if text else common.encode_chat(tok, messages, add_generation_prompt=True)[0]
        logits = last_logits(be, ids)
        top = torch.topk(logits, 20)
        prompts.append({"label": label, "text": tok.decode(ids), "ids": ids,
                        "top_ids": top.indices.tolist(), "top_logits": [round(v, 5) for v in top.values.tolist()]})

    maker = tasks.TaskMaker(tasks.Corpus(args.text_dir), tok, held_out=True, seed=4096)
    ids, key, value = evaluate.needle_prompt(maker, tok, args.needle_length, depth=0.5)
    answer_ids = be.generate(ids, 40)
    result = {
        "model": os.path.basename(os.path.abspath(args.model)),
        "reference": be.name + " on cpu, float32 weights upcast from the bf16 file",
        "logits_at_last_position": prompts,
        "needle": {"prompt_ids": ids, "prompt_tokens": len(ids), "key": key, "value": value,
                   "greedy_answer_ids": answer_ids, "greedy_answer": tok.decode(answer_ids),
                   "correct": value in tok.decode(answer_ids)},
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, separators=(",", ":"))
    print(f"{args.out}: {len(prompts)} logit prompts, needle {len(ids)} tokens -> {result['needle']['greedy_answer']!r}")


if __name__ == "__main__":
    main()
