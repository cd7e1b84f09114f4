"""Trains the default model's byte-level BPE tokenizer (8192 ids: 7936 ordinary + Llama-3.1's 256 special tokens) on
the public-domain texts plus samples of the synthetic tasks, and writes tokenizer.json, tokenizer_config.json,
special_tokens_map.json and generation_config.json into the model folder.

Usage: python3 train_tokenizer.py --text-dir .cache/data/text --out models/default"""
import argparse
import collections
import heapq
import json
import os
import random
import time

import common
import tasks


class _CharCount:
    """Stand-in tokenizer for generating task text before a tokenizer exists (length ~ chars / 4)."""

    @staticmethod
    def encode_ordinary(s):
        return [0] * (len(s) // 4)


def _sample(maker, length):
    """The task mix the committed tokenizer was trained on (kept fixed here so that it is reproducible even when the
    training mix in tasks.py changes)."""
    r = maker.rng.random()
    if r < 0.30:
        return maker.niah(length, n_keys=1, follow_ups=maker.rng.choice([0, 0, 1]))
    if r < 0.55:
        n = maker.rng.randint(2, 8)
        return maker.niah(length, n_keys=n, follow_ups=maker.rng.randint(1, n))
    if r < 0.70:
        n = maker.rng.randint(2, 4)
        return maker.niah(length, n_keys=n + maker.rng.randint(0, 2), n_queries=n)
    if r < 0.80:
        return maker.multivalue(length, maker.rng.randint(2, 4))
    if r < 0.92:
        return maker.kv(min(length, 1024 + maker.rng.randrange(1024)), follow_ups=maker.rng.randint(2, 6))
    return maker.variable_tracking(length, maker.rng.randint(2, 4))


def corpus_text(text_dir, synthetic_chars, seed):
    parts = []
    for name in tasks.TEXTS:
        with open(os.path.join(text_dir, name), encoding="utf-8") as f:
            parts.append(f.read())
    maker = tasks.TaskMaker(tasks.Corpus(text_dir), _CharCount(), seed=seed)
    total, synthetic = 0, []
    while total < synthetic_chars:
        messages, _ = _sample(maker, random.Random(total).choice([256, 512, 1024]))
        for role, content in messages:
            synthetic.append(role + "\n\n" + content)
            total += len(content)
    return parts + synthetic


def train_bpe(texts, n_merges):
    """Classic BPE over pre-tokenizer pieces (bytes); returns the merged byte strings in merge order."""
    counts = collections.Counter()
    for t in texts:
        counts.update(common.pieces(t))
    words = [list(p) for p in counts]  # symbols as ids; 0..255 are the bytes
    freqs = list(counts.values())
    token_bytes = [bytes([b]) for b in range(256)]
    pair_count = collections.defaultdict(int)
    where = collections.defaultdict(set)
    for wi, syms in enumerate(words):
        for p in zip(syms, syms[1:]):
            pair_count[p] += freqs[wi]
            where[p].add(wi)
    heap = [(-c, token_bytes[p[0]] + b"\0" + token_bytes[p[1]], p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merged, id_of = [], {b: i for i, b in enumerate(token_bytes)}
    while len(merged) < n_merges and heap:
        neg, _, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg:
            continue  # stale entry
        if -neg < 2:
            break
        joined = token_bytes[pair[0]] + token_bytes[pair[1]]
        new_id = id_of.get(joined)
        if new_id is None:  # a string already made by another pair keeps its id
            new_id = len(token_bytes)
            token_bytes.append(joined)
            id_of[joined] = new_id
            merged.append(joined)
        changed = set()
        for wi in list(where[pair]):
            syms, f = words[wi], freqs[wi]
            if not any(syms[i] == pair[0] and syms[i + 1] == pair[1] for i in range(len(syms) - 1)):
                continue
            for p in zip(syms, syms[1:]):
                pair_count[p] -= f
                changed.add(p)
            out, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == pair[0] and syms[i + 1] == pair[1]:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            words[wi] = out
            for p in zip(out, out[1:]):
                pair_count[p] += f
                where[p].add(wi)
                changed.add(p)
        del pair_count[pair]
        for p in changed:
            c = pair_count.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, token_bytes[p[0]] + b"\0" + token_bytes[p[1]], p))
            elif p in pair_count:
                del pair_count[p]
    return merged


def to_chars(b):
    return "".join(common.BYTE_TO_CHAR[x] for x in b)


def write_tokenizer(out_dir, merged):
    ranks = {bytes([b]): b for b in range(256)}
    for b in merged:
        ranks[b] = len(ranks)
    assert len(ranks) == common.FIRST_SPECIAL, len(ranks)
    vocab = {to_chars(b): i for b, i in ranks.items()}
    # Every split of a token into two vocabulary tokens is a merge ranked by the token's id: Hugging Face's BPE then
    # merges exactly like tiktoken (lowest-id concatenation first), which is what the C# Tiktoken loader runs.
    merges = []
    for b, i in sorted(ranks.items(), key=lambda kv: kv[1]):
        for k in range(1, len(b)):
            if b[:k] in ranks and b[k:] in ranks:
                merges.append(to_chars(b[:k]) + " " + to_chars(b[k:]))
    added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for s, i in common.SPECIAL_IDS.items()]
    bos = "<|begin_of_text|>"
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": common.PRETOKENIZE_REGEX}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [common.BOS], "tokens": [bos]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": merges},
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": bos,
        "eos_token": "<|eot_id|>",
        "clean_up_tokenization_spaces": True,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072,
        "chat_template": common.CHAT_TEMPLATE,
        "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump({"bos_token": bos, "eos_token": "<|eot_id|>"}, f, indent=2)
    with open(os.path.join(out_dir, "generation_config.json"), "w", encoding="utf-8") as f:
        json.dump({"bos_token_id": common.BOS, "eos_token_id": common.EOS_IDS, "do_sample": False,
                   "max_new_tokens": 64}, f, indent=2)
    return len(merges)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text-dir", default=".cache/data/text")
    ap.add_argument("--out", default="models/default")
    ap.add_argument("--synthetic-chars", type=int, default=3_000_000)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    t0 = time.time()
    texts = corpus_text(args.text_dir, args.synthetic_chars, args.seed)
    merged = train_bpe(texts, common.FIRST_SPECIAL - 256)
    n = write_tokenizer(args.out, merged)
    print(f"tokenizer: {common.FIRST_SPECIAL} ordinary + {common.NUM_SPECIAL} special ids, {n} merges, "
          f"{time.time() - t0:.0f} s -> {args.out}/tokenizer.json")


if __name__ == "__main__":
    main()
