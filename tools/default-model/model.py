"""A Llama (LlamaForCausalLM-compatible) decoder in plain PyTorch, for training and for evaluation where transformers
is not installed. Same math and parameter names as transformers' Llama: RMSNorm in fp32, rotate-half RoPE,
grouped-query attention, SiLU-gated MLP, tied embeddings. Works on PyTorch 1.13 (CPU) and 2.x (CUDA, SDPA)."""
import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

_HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def default_config(**overrides):
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": 8192,
        "hidden_size": 256,
        "intermediate_size": 768,
        "num_hidden_layers": 6,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 128,
        "hidden_act": "silu",
        "max_position_embeddings": 131072,
        "rope_theta": 500000.0,
        "rope_scaling": None,
        "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0},  # transformers 5 spelling of the same
        "rms_norm_eps": 1e-5,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": True,
        "initializer_range": 0.02,
        "bos_token_id": 7936,
        "eos_token_id": [7937, 7944, 7945],
        "torch_dtype": "bfloat16",
        "dtype": "bfloat16",
        "use_cache": True,
    }
    cfg.update(overrides)
    return cfg


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rope_tables(positions, head_dim, theta, device):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def apply_rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


def causal_attention(q, k, v, q_offset=0, chunk=2048):
    """q [B,H,T,D], k/v [B,H,S,D] (KV heads already repeated); query i sits at key position q_offset + i."""
    T, S = q.shape[2], k.shape[2]
    if _HAS_SDPA and q_offset == 0 and T == S:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    scale = 1.0 / math.sqrt(q.shape[-1])
    outs = []
    for s in range(0, T, chunk):  # query chunks keep the score matrix small at long context
        qc = q[:, :, s:s + chunk]
        end = min(S, q_offset + s + qc.shape[2])  # keys past the chunk's last query are all masked: skip them
        scores = torch.matmul(qc, k[:, :, :end].transpose(-1, -2)).float() * scale
        qpos = torch.arange(s, s + qc.shape[2], device=q.device)[:, None] + q_offset
        kpos = torch.arange(end, device=q.device)[None, :]
        scores = scores.masked_fill(kpos > qpos, float("-inf"))
        outs.append(torch.matmul(scores.softmax(-1).to(v.dtype), v[:, :, :end]))
    return torch.cat(outs, dim=2)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, d = cfg["hidden_size"], cfg["head_dim"]
        self.nh, self.nkv, self.d = cfg["num_attention_heads"], cfg["num_key_value_heads"], d
        self.q_proj = nn.Linear(h, self.nh * d, bias=False)
        self.k_proj = nn.Linear(h, self.nkv * d, bias=False)
        self.v_proj = nn.Linear(h, self.nkv * d, bias=False)
        self.o_proj = nn.Linear(self.nh * d, h, bias=False)

    def qkv(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.d).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.d).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.d).transpose(1, 2)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def forward(self, x, cos, sin, cache=None):
        B, T, _ = x.shape
        q, k, v = self.qkv(x, cos, sin)
        offset = 0
        if cache is not None:
            if "k" in cache:
                offset = cache["k"].shape[2]
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        y = causal_attention(q, k, v, q_offset=offset)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.nh * self.d))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, i = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, cache=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class Llama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Inner(cfg)
        std = cfg["initializer_range"]
        for name, p in self.named_parameters():
            if p.dim() == 2:
                # Residual-branch outputs start smaller (GPT-2 style) so deep stacks train stably from step 0.
                scale = 1 / math.sqrt(2 * cfg["num_hidden_layers"]) if name.endswith(("o_proj.weight", "down_proj.weight")) else 1
                nn.init.normal_(p, std=std * scale)

    def hidden(self, ids, positions=None, caches=None):
        if positions is None:
            start = caches[0]["k"].shape[2] if caches and "k" in caches[0] else 0
            positions = torch.arange(start, start + ids.shape[1], device=ids.device)
        cos, sin = rope_tables(positions, self.cfg["head_dim"], self.cfg["rope_theta"], ids.device)
        x = self.model.embed_tokens(ids)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, None if caches is None else caches[i])
        return self.model.norm(x)

    def logits(self, h):
        return F.linear(h, self.model.embed_tokens.weight)

    def forward(self, ids, caches=None):
        return self.logits(self.hidden(ids, caches=caches))

    @torch.no_grad()
    def generate(self, ids, max_new_tokens, stop_ids, chunk=4096):
        """Greedy decoding with a KV cache; the prompt is prefilled in chunks (long prompts on small machines)."""
        caches = [dict() for _ in self.model.layers]
        x = torch.tensor([ids], device=self.model.embed_tokens.weight.device)
        for s in range(0, x.shape[1], chunk):
            h = self.hidden(x[:, s:s + chunk], caches=caches)
        out = []
        for _ in range(max_new_tokens):
            nxt = int(self.logits(h[:, -1]).argmax(-1))
            if nxt in stop_ids:
                break
            out.append(nxt)
            h = self.hidden(torch.tensor([[nxt]], device=x.device), caches=caches)
        return out


# ---- Hugging Face folder I/O (safetensors written by hand: no extra dependency) ----------------------------------
_DTYPES = {torch.bfloat16: "BF16", torch.float32: "F32", torch.float16: "F16"}
_FROM = {v: k for k, v in _DTYPES.items()}


def save_safetensors(tensors, path):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = (t.view(torch.int16) if t.dtype in (torch.bfloat16, torch.float16) else t).numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        dtype = _FROM[meta["dtype"]]
        carrier = torch.int16 if dtype in (torch.bfloat16, torch.float16) else dtype
        t = torch.frombuffer(bytearray(data[a:b]), dtype=carrier).view(dtype) if b > a else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(meta["shape"])
    return out


def save_hf(model, folder, dtype=torch.bfloat16):
    os.makedirs(folder, exist_ok=True)
    state = {k: v.to(dtype) for k, v in model.state_dict().items()}
    save_safetensors(state, os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(model.cfg, f, indent=2)


def load_hf(folder, dtype=torch.float32, device="cpu"):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    model = Llama(cfg)
    state = load_safetensors(os.path.join(folder, "model.safetensors"))
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    return model.to(device=device, dtype=dtype).eval()
