"""Synthetic long-context tasks (RULER-style) written as Llama-3 chat turns, and the plain-text corpus they hide in.

Held out for evaluation: the last 10% of every text (haystack), key words whose hash falls in the eval bucket, and
7-digit values divisible by 13. Training never sees any of them as keys, values or haystack."""
import hashlib
import os
import random

import regex

TEXTS = ["moby-dick.txt", "sotu.txt", "bible.txt"]

NEEDLE = "The special magic number for {key} is {value}."
QUESTION = "What is the special magic number for {key}?"
ANSWER = "The special magic number for {key} is {value}."
INSTRUCTION = "Read the text below and remember the special magic numbers hidden in it."

_VERSE_REF = regex.compile(r"^[0-9A-Za-z]+\d+:\d+ ", regex.M)
_SENTENCE_END = regex.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def _stable_bucket(word, buckets=100):
    return int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % buckets


def is_eval_value(v):
    return v % 13 == 0


class Corpus:
    """Sentences of the public-domain texts, split into a training part and a held-out part, and key words."""

    def __init__(self, text_dir):
        self.train, self.eval, self.lm_train = [], [], []
        counts = {}
        for name in TEXTS:
            path = os.path.join(text_dir, name)
            with open(path, encoding="utf-8") as f:
                raw = f.read()
            if name == "bible.txt":
                raw = _VERSE_REF.sub("", raw)  # the "Ge1:1 " references would flood the haystack with digits
            flat = " ".join(raw.split())
            sentences = [s for s in _SENTENCE_END.split(flat) if 3 <= len(s) <= 600]
            cut = int(len(sentences) * 0.9)
            self.train.append(sentences[:cut])
            self.eval.append(sentences[cut:])
            # Plain-text LM samples keep the original line structure (paragraphs, newlines).
            self.lm_train.append(raw[: int(len(raw) * 0.9)])
            for w in regex.findall(r"\b[a-z]{4,9}\b", flat):
                counts[w] = counts.get(w, 0) + 1
        words = sorted(w for w, c in counts.items() if c >= 8)
        self.train_words = [w for w in words if _stable_bucket(w) >= 15]
        self.eval_words = [w for w in words if _stable_bucket(w) < 15]

    def haystack_sentences(self, rng, held_out):
        """An endless run of consecutive sentences from a random place in one text."""
        pool = self.eval if held_out else self.train
        text = rng.choice(pool)
        i = rng.randrange(len(text))
        while True:
            yield text[i]
            i = (i + 1) % len(text)

    def lm_text(self, rng, chars):
        text = rng.choice(self.lm_train)
        start = rng.randrange(max(1, len(text) - chars))
        return text[start:start + chars]


class TaskMaker:
    """Builds one chat example of about `length` tokens: (messages, answers). answers[i] is the expected content of
    the i-th assistant message (the last assistant message is left out of messages when generating for eval)."""

    def __init__(self, corpus, tok, held_out=False, seed=0):
        self.corpus, self.tok, self.held_out = corpus, tok, held_out
        self.rng = random.Random(seed)
        self._sentence_len = {}

    # ---- pieces -------------------------------------------------------------------------------------------------
    def key(self):
        words = self.corpus.eval_words if self.held_out else self.corpus.train_words
        return f"{self.rng.choice(words)}-{self.rng.choice(words)}"

    def value(self):
        while True:
            v = self.rng.randrange(1_000_000, 10_000_000)
            if is_eval_value(v) == self.held_out:
                return str(v)

    def ntok(self, s):
        n = self._sentence_len.get(s)
        if n is None:
            n = len(self.tok.encode_ordinary(" " + s))
            if len(self._sentence_len) < 2_000_000:
                self._sentence_len[s] = n
        return n

    def haystack(self, budget, inserts, depths=None):
        """Sentences totalling about `budget` tokens with `inserts` placed at fractional depths (random if None)."""
        sentences, total = [], 0
        for s in self.corpus.haystack_sentences(self.rng, self.held_out):
            n = self.ntok(s)
            if total + n > budget and sentences:
                break
            sentences.append(s)
            total += n
        if depths is None:
            depths = [self.rng.random() for _ in inserts]
        slots = sorted(zip((round(d * len(sentences)) for d in depths), range(len(inserts))))
        out, k = [], 0
        for i in range(len(sentences) + 1):
            while k < len(slots) and slots[k][0] == i:
                out.append(inserts[slots[k][1]])
                k += 1
            if i < len(sentences):
                out.append(sentences[i])
        return " ".join(out), [slots[j][1] for j in range(len(slots))]

    def _user(self, body, question):
        head = INSTRUCTION + "\n\n" if self.rng.random() < 0.5 else ""
        return head + body + "\n\n" + question

    # ---- tasks ----------------------------------------------------------------------------------------------------
    def niah(self, length, n_keys=1, n_queries=1, follow_ups=0, depth=None):
        """Needle(s) in a haystack: n_keys needles with distinct keys; the first user turn asks about n_queries of
        them at once, then `follow_ups` further user turns ask about one key each."""
        keys = list(dict.fromkeys(self.key() for _ in range(n_keys * 2)))[:n_keys]
        values = [self.value() for _ in keys]
        needles = [NEEDLE.format(key=k, value=v) for k, v in zip(keys, values)]
        reserve = 40 + 30 * (n_queries + 2 * follow_ups) + 20 * n_keys
        depths = None if depth is None else [depth] * len(needles)
        body, _ = self.haystack(length - reserve, needles, depths)
        asked = self.rng.sample(range(n_keys), n_queries)
        if n_queries == 1:
            q = QUESTION.format(key=keys[asked[0]])
        else:
            q = "What are the special magic numbers for " + _join([keys[i] for i in asked]) + "?"
        a = " ".join(ANSWER.format(key=keys[i], value=values[i]) for i in asked)
        messages, answers = [("user", self._user(body, q)), ("assistant", a)], [a]
        for _ in range(follow_ups):
            i = self.rng.randrange(n_keys)
            a = ANSWER.format(key=keys[i], value=values[i])
            messages += [("user", QUESTION.format(key=keys[i])), ("assistant", a)]
            answers.append(a)
        return messages, answers

    def multivalue(self, length, n_values=3):
        key = self.key()
        values = [self.value() for _ in range(n_values)]
        needles = [NEEDLE.format(key=key, value=v) for v in values]
        body, order = self.haystack(length - 60 - 12 * n_values, needles)
        ordered = [values[i] for i in order]
        q = f"What are all the special magic numbers for {key}?"
        a = f"The special magic numbers for {key} are {_join(ordered)}."
        return [("user", self._user(body, q)), ("assistant", a)], [a]

    def kv(self, length, follow_ups=3):
        """Key-value retrieval over a plain list of pairs (no haystack): dense and hard."""
        lines, total, pairs = [], 20, []
        while total < length - 40 * (follow_ups + 1) or len(pairs) < 4:
            k, v = self.key(), self.value()
            line = f"{k}: {v}"
            lines.append(line)
            pairs.append((k, v))
            total += len(self.tok.encode_ordinary(line)) + 1
        messages, answers = [], []
        for t in range(follow_ups + 1):
            k, v = self.rng.choice(pairs)
            a = f"The value of {k} is {v}."
            q = f"What is the value of {k}?"
            if t == 0:
                q = "Here is a list of keys and their values.\n\n" + "\n".join(lines) + "\n\n" + q
            messages += [("user", q), ("assistant", a)]
            answers.append(a)
        return messages, answers

    def variable_tracking(self, length, hops=3):
        names = list(dict.fromkeys("".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(5))
                                   for _ in range(hops + 3)))[:hops]
        value = self.value()
        chain = [f"VAR {names[0]} = {value}."] + [f"VAR {names[i]} = VAR {names[i - 1]}." for i in range(1, hops)]
        depths = sorted(self.rng.random() for _ in chain)
        body, _ = self.haystack(length - 80, chain, depths)
        q = f"Find all variables that are assigned the value {value}."
        a = f"The variables assigned the value {value} are {_join(names)}."
        return [("user", self._user(body, q)), ("assistant", a)], [a]

    def sample(self, length, dense=False):
        """One training example drawn from the task mix; needle and question counts grow with the length. `dense`
        asks many more questions per example (more supervised digits per token: faster on small compute)."""
        r = self.rng.random()
        most = max(2, min(8, length // 100))
        if dense:
            return self._sample_dense(length, r)
        if r < 0.25:
            return self.niah(length, n_keys=1, follow_ups=self.rng.choice([0, 0, 1]))
        if r < 0.55:
            n = self.rng.randint(2, most)
            return self.niah(length, n_keys=n, follow_ups=self.rng.randint(1, n))
        if r < 0.68:
            n = self.rng.randint(2, min(4, most))
            return self.niah(length, n_keys=n + self.rng.randint(0, 1), n_queries=n)
        if r < 0.78:
            return self.multivalue(length, self.rng.randint(2, min(4, most)))
        if r < 0.92:
            return self.kv(min(length, 512 + self.rng.randrange(1024)), follow_ups=self.rng.randint(2, most))
        return self.variable_tracking(length, self.rng.randint(2, min(4, most)))


    def _sample_dense(self, length, r):
        most = max(3, min(12, length // 60))
        if r < 0.2:
            return self.niah(length, n_keys=1, follow_ups=self.rng.randint(0, 2))
        if r < 0.65:
            n = self.rng.randint(2, most)
            return self.niah(length, n_keys=n, follow_ups=self.rng.randint(n, 2 * n))
        if r < 0.75:
            n = self.rng.randint(2, 3)
            return self.niah(length, n_keys=n + 1, n_queries=n, follow_ups=self.rng.randint(1, 3))
        if r < 0.8:
            return self.multivalue(length, self.rng.randint(2, 3))
        if r < 0.95:
            return self.kv(min(length, 512), follow_ups=self.rng.randint(most, 2 * most))
        return self.variable_tracking(length, self.rng.randint(2, 3))


def _join(items):
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
