"""Trains the default model from scratch: plain-text LM on the public-domain corpus mixed with synthetic long-context
retrieval tasks in the Llama-3 chat format (loss on the assistant turns only), with a length curriculum, for a fixed
wall-clock budget. Writes a Hugging Face folder (config.json + model.safetensors, bf16).

Usage (GPU): python3 train.py --tokenizer models/default --out models/default --minutes 8
Usage (CPU): see the exact command in models/default/README.md"""
import argparse
import collections
import json
import math
import multiprocessing as mp
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import model as llama  # noqa: E402
import tasks  # noqa: E402

def copy_row(maker, tok, rng, length):
    """Dense induction practice: a haystack with needles (A), then spans of A that start at random places (B). Every
    token of B after a span's first is predictable only by finding the span in A by content and copying on, which
    is what answering a needle question is (the answer repeats the needle sentence verbatim)."""
    n_a = int(length * rng.uniform(0.45, 0.7))
    needles = [tasks.NEEDLE.format(key=maker.key(), value=maker.value()) for _ in range(rng.randint(1, 6))]
    text, _ = maker.haystack(n_a + 16, needles)
    a = tok.encode_ordinary(text)[:n_a]
    ids, mask = [common.BOS] + a, [0] * (len(a) + 1)
    while len(ids) < length:
        s = rng.randrange(0, max(1, len(a) - 8))
        span = a[s:s + rng.randint(8, 48)]
        ids += span
        mask += [0] + [1] * (len(span) - 1)
    return ids[:length], mask[:length]


def rows(maker, tok, corpus, rng, length, n, lm_fraction, dense=False, copy_fraction=0.0):
    """n rows of exactly `length` tokens: (ids, target mask, is-LM flag). Task rows supervise the assistant turns;
    LM rows every token; copy rows the copied spans."""
    ids_out, mask_out, lm_out = [], [], []
    for _ in range(n):
        r = rng.random()
        lm = r < lm_fraction
        lm_out.append(lm)
        if not lm and r < lm_fraction + copy_fraction:
            ids, mask = copy_row(maker, tok, rng, length)
        elif lm:
            ids = [common.BOS] + tok.encode_ordinary(corpus.lm_text(rng, length * 6))[: length - 1]
            mask = [0] + [1] * (len(ids) - 1)
        else:
            messages, _ = maker.sample(length, dense)
            ids, mask = common.encode_chat(tok, messages, add_generation_prompt=False)
        ids, mask = ids[:length], mask[:length]
        pad = length - len(ids)
        ids_out.append(ids + [common.PAD] * pad)
        mask_out.append(mask + [0] * pad)
    return torch.tensor(ids_out), torch.tensor(mask_out, dtype=torch.bool), torch.tensor(lm_out)


_worker = {}


def _worker_init(text_dir, tokenizer, seed):
    torch.set_num_threads(1)
    tok = common.Tokenizer.load(tokenizer)
    corpus = tasks.Corpus(text_dir)
    _worker.update(tok=tok, corpus=corpus, maker=tasks.TaskMaker(corpus, tok, held_out=False, seed=seed))


def _worker_batch(job):
    seed, length, n_rows, lm_fraction, dense, copy_fraction = job
    w = _worker
    w["maker"].rng.seed(seed)
    return rows(w["maker"], w["tok"], w["corpus"], random.Random(seed), length, n_rows, lm_fraction, dense,
                copy_fraction)


class Batches:
    """Builds batches in worker processes, a few steps ahead of the GPU (building one in Python takes longer than a
    training step of this model on a GPU). A batch asked for at a new curriculum length may still come from the
    queue at the old one: the curriculum boundaries move by a few steps, nothing more."""

    def __init__(self, args, workers):
        self.args = args
        self.pool = mp.get_context("spawn").Pool(workers, _worker_init, (args.text_dir, args.tokenizer, args.seed))
        self.pending = collections.deque()
        self.depth = 2 * workers
        self.next_seed = args.seed * 1_000_003

    def next(self, length):
        a = self.args
        while len(self.pending) < self.depth:
            self.next_seed += 1
            job = (self.next_seed, length, max(1, a.batch_tokens // length), a.lm_fraction, a.dense, a.copy_fraction)
            self.pending.append(self.pool.apply_async(_worker_batch, (job,)))
        return self.pending.popleft().get()

    def close(self):
        self.pool.terminate()


def parse_curriculum(spec):
    stages = []
    for part in spec.split(","):
        frac, length = part.split(":")
        stages.append((float(frac), int(length)))
    return stages


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text-dir", default=".cache/data/text")
    ap.add_argument("--tokenizer", default="models/default", help="folder with tokenizer.json")
    ap.add_argument("--out", default="models/default")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--curriculum", default="0:512,0.15:1024,0.35:2048,0.55:4096,0.75:8192,0.9:16384",
                    help="fraction_of_time:sequence_length,...")
    ap.add_argument("--batch-tokens", type=int, default=131072)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--lm-fraction", type=float, default=0.15)
    ap.add_argument("--copy-fraction", type=float, default=0.3, help="share of rows that are copy_row practice")
    ap.add_argument("--dense", action="store_true", help="many questions per example (small-compute runs)")
    ap.add_argument("--lm-positions", type=float, default=0.25, help="share of LM positions that get a loss")
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--intermediate", type=int, default=768)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--workers", type=int, default=min(12, max(0, (os.cpu_count() or 1) - 2)),
                    help="processes that build batches ahead of the GPU (0: build them in the training loop)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log", default="")
    ap.add_argument("--save-every-minutes", type=float, default=10.0)
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    log_file = open(args.log, "a") if args.log else None

    def log(msg):
        print(msg, flush=True)
        if log_file:
            log_file.write(msg + "\n")
            log_file.flush()

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    tok = common.Tokenizer.load(args.tokenizer)
    corpus = tasks.Corpus(args.text_dir)
    maker = tasks.TaskMaker(corpus, tok, held_out=False, seed=args.seed)
    digit_ids = torch.tensor([tok.ranks[str(d).encode()] for d in range(10)], device=dev)

    cfg = llama.default_config(num_hidden_layers=args.layers, hidden_size=args.hidden,
                               intermediate_size=args.intermediate, num_attention_heads=args.heads,
                               num_key_value_heads=args.kv_heads)
    net = llama.Llama(cfg).to(dev)
    n_params = sum(p.numel() for p in net.parameters())
    log(f"params {n_params / 1e6:.2f}M  config {json.dumps({k: cfg[k] for k in ('hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'rope_theta')})}")
    decay = [p for p in net.parameters() if p.dim() == 2]
    no_decay = [p for p in net.parameters() if p.dim() < 2]
    opt_kwargs = {"lr": args.lr, "betas": (0.9, 0.95)}
    if cuda:
        opt_kwargs["fused"] = True
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            **opt_kwargs)

    stages = parse_curriculum(args.curriculum)
    batches = Batches(args, args.workers) if args.workers > 0 else None
    budget = args.minutes * 60
    t0 = time.time()
    last_save = t0
    step, tokens_seen, window_tokens, window_t = 0, 0, 0, time.time()
    stats = {"task_loss": 0.0, "task_n": 0, "lm_loss": 0.0, "lm_n": 0, "digit_ok": 0, "digit_n": 0}
    while True:
        elapsed = time.time() - t0
        frac = elapsed / budget
        if frac >= 1:
            break
        length = [l for f, l in stages if f <= frac][-1]
        if batches:
            ids, mask, is_lm = batches.next(length)
            length = ids.shape[1]
        else:
            ids, mask, is_lm = rows(maker, tok, corpus, rng, length, max(1, args.batch_tokens // length),
                                    args.lm_fraction, args.dense, args.copy_fraction)
        ids, mask, is_lm = ids.to(dev), mask.to(dev), is_lm.to(dev)[:, None]
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=cuda):
            h = net.hidden(ids[:, :-1])
        target = ids[:, 1:]
        sel = mask[:, 1:].clone()
        if args.lm_positions < 1:
            keep = torch.rand(sel.shape, device=dev) < args.lm_positions
            sel = sel & (keep | ~is_lm)
        hs, ts = h[sel], target[sel]
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=cuda):
            logits = net.logits(hs)
        loss_each = F.cross_entropy(logits.float(), ts, reduction="none")
        lm_rows = is_lm.expand_as(sel)[sel]
        loss = loss_each.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()

        with torch.no_grad():
            stats["task_loss"] += float(loss_each[~lm_rows].sum())
            stats["task_n"] += int((~lm_rows).sum())
            stats["lm_loss"] += float(loss_each[lm_rows].sum())
            stats["lm_n"] += int(lm_rows.sum())
            is_digit = (ts[:, None] == digit_ids[None, :]).any(-1) & ~lm_rows
            stats["digit_ok"] += int((logits.argmax(-1) == ts)[is_digit].sum())
            stats["digit_n"] += int(is_digit.sum())
        step += 1
        tokens_seen += ids.numel()
        window_tokens += ids.numel()
        if step % 10 == 0 or step == 1:
            if cuda:
                torch.cuda.synchronize()
            now = time.time()
            log(f"step {step:5d}  t {now - t0:6.0f}s  len {length:5d}  lr {lr:.2e}  "
                f"task {stats['task_loss'] / max(1, stats['task_n']):.3f}  lm {stats['lm_loss'] / max(1, stats['lm_n']):.3f}  "
                f"digit-acc {stats['digit_ok'] / max(1, stats['digit_n']):.3f}  "
                f"{window_tokens / (now - window_t):,.0f} tok/s  seen {tokens_seen / 1e6:.1f}M")
            stats = {k: 0 for k in stats}
            window_tokens, window_t = 0, now
        if time.time() - last_save > args.save_every_minutes * 60:
            llama.save_hf(net, args.out)
            last_save = time.time()
    if batches:
        batches.close()
    llama.save_hf(net, args.out)
    log(f"done: {step} steps, {tokens_seen / 1e6:.1f}M tokens, {(time.time() - t0) / 60:.1f} min -> {args.out}")


if __name__ == "__main__":
    main()
