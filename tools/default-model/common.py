"""Shared pieces of the default-model recipe: the pre-tokenizer, the byte-level BPE encoder, the special tokens and the
Llama-3 chat format. Pure Python (plus the `regex` module) so that the same code runs on a CPU box and on the GPU
machine, and so that the training data is tokenized exactly as Hugging Face `tokenizers` does it (checked against the
real library by golden.mjs)."""
import json
import os

import regex

# Llama-3's split pattern with one change: every digit is its own piece (Llama-3 groups up to three), so copying a
# number is a per-token induction task. Lookahead only, no lookbehind: .NET's Tiktoken loader compiles it as is.
PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_PIECE = regex.compile(PRETOKENIZE_REGEX)

VOCAB_SIZE = 8192
NUM_SPECIAL = 256
FIRST_SPECIAL = VOCAB_SIZE - NUM_SPECIAL  # 7936: ordinary tokens below, Llama-3.1's 256 special tokens above

# Llama-3.1's special-token layout (128000 + i there, FIRST_SPECIAL + i here).
_NAMED_SPECIALS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
]
SPECIAL_TOKENS = _NAMED_SPECIALS + [
    f"<|reserved_special_token_{i}|>" for i in range(3, 3 + NUM_SPECIAL - len(_NAMED_SPECIALS))
]
SPECIAL_IDS = {name: FIRST_SPECIAL + i for i, name in enumerate(SPECIAL_TOKENS)}
BOS = SPECIAL_IDS["<|begin_of_text|>"]
EOT = SPECIAL_IDS["<|eot_id|>"]
EOS_IDS = [SPECIAL_IDS["<|end_of_text|>"], SPECIAL_IDS["<|eom_id|>"], EOT]
START_HEADER = SPECIAL_IDS["<|start_header_id|>"]
END_HEADER = SPECIAL_IDS["<|end_header_id|>"]
PAD = SPECIAL_IDS["<|finetune_right_pad_id|>"]

_SPECIAL_SPLIT = regex.compile("(" + "|".join(regex.escape(s) for s in SPECIAL_TOKENS) + ")")


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map used by the ByteLevel pre-tokenizer and decoder."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def pieces(text):
    """The pre-tokenizer: regex pieces of a text without special tokens, as UTF-8 bytes."""
    return [p.encode("utf-8") for p in _PIECE.findall(text)]


class Tokenizer:
    """Byte-level BPE encoder with tiktoken semantics (a piece found whole in the vocabulary is one token; otherwise
    the adjacent pair whose concatenation has the lowest id merges first). The tokenizer.json written by
    train_tokenizer.py lists every such pair as a merge, ranked by the id of its result, with ignore_merges, so
    Hugging Face's BPE gives the same ids."""

    def __init__(self, ranks):
        self.ranks = ranks  # bytes -> id, ordinary tokens only
        self.decoder = {i: b for b, i in ranks.items()}
        for name, i in SPECIAL_IDS.items():
            self.decoder[i] = name.encode("utf-8")
        self._cache = {}

    @staticmethod
    def load(folder):
        with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
            data = json.load(f)
        ranks = {}
        for token, i in data["model"]["vocab"].items():
            ranks[bytes(CHAR_TO_BYTE[c] for c in token)] = i
        return Tokenizer(ranks)

    def _encode_piece(self, piece):
        hit = self.ranks.get(piece)
        if hit is not None:
            return [hit]
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        parts = [piece[i:i + 1] for i in range(len(piece))]
        while len(parts) > 1:
            best, best_rank = -1, None
            for i in range(len(parts) - 1):
                r = self.ranks.get(parts[i] + parts[i + 1])
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best < 0:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        ids = [self.ranks[p] for p in parts]
        if len(self._cache) < 500_000:
            self._cache[piece] = ids
        return ids

    def encode_ordinary(self, text):
        out = []
        for p in pieces(text):
            out.extend(self._encode_piece(p))
        return out

    def encode(self, text):
        """Encodes text in which special tokens are written out (as Hugging Face does with added tokens)."""
        out = []
        for i, part in enumerate(_SPECIAL_SPLIT.split(text)):
            if i % 2 == 1:
                out.append(SPECIAL_IDS[part])
            elif part:
                out.extend(self.encode_ordinary(part))
        return out

    def decode(self, ids):
        return b"".join(self.decoder[i] for i in ids).decode("utf-8", errors="replace")


# Llama-3 chat format: <|begin_of_text|> then, per message,
# <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>; the generation prompt opens an assistant header.
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + (message['content'] | trim) + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}"
)


def encode_chat(tok, messages, add_generation_prompt=True):
    """Token ids and a loss mask (1 on the assistant's content and its <|eot_id|>) for a list of (role, content)."""
    ids, mask = [BOS], [0]
    for role, content in messages:
        head = [START_HEADER] + tok.encode_ordinary(role) + [END_HEADER] + tok.encode_ordinary("\n\n")
        body = tok.encode_ordinary(content.strip()) + [EOT]
        ids += head + body
        mask += [0] * len(head) + [1 if role == "assistant" else 0] * len(body)
    if add_generation_prompt:
        head = [START_HEADER] + tok.encode_ordinary("assistant") + [END_HEADER] + tok.encode_ordinary("\n\n")
        ids += head
        mask += [0] * len(head)
    return ids, mask
