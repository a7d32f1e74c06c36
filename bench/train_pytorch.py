#!/usr/bin/python3
"""The model `qkv train` trains by default, trained by PyTorch on the CPU, for a side-by-side
tokens/s comparison (docs/benchmarks.md): a pre-norm character-level GPT (L=4, H=4, E=128, T=128,
feed-forward 4E with exact GELU, biases in every Linear but the head), B=16 sequences per step,
AdamW (betas 0.9, 0.95, weight decay 0.1 on the matrices), gradient clipping at 1, warm-up and
cosine learning rate, on the same corpus (Debian's fortunes) with the same held-out split.

usage: /usr/bin/python3 bench/train_pytorch.py [--steps 300] [--threads 2] [--corpus FILE]
Prints one line: steps, tokens/s over the training steps, final training loss.
Needs Debian's python3-torch (PyTorch 1.13).
"""
import argparse
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

FORTUNES = "/usr/share/games/fortunes"


def corpus_bytes(path):
    if path:
        return open(path, "rb").read()
    names = sorted(n for n in os.listdir(FORTUNES)
                   if not n.endswith((".dat", ".u8")) and os.path.isfile(os.path.join(FORTUNES, n)))
    return b"".join(open(os.path.join(FORTUNES, n), "rb").read() for n in names)


class Block(nn.Module):
    def __init__(self, E, H, T):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(E), nn.LayerNorm(E)
        self.attn = nn.MultiheadAttention(E, H, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(E, 4 * E), nn.Linear(4 * E, E)
        self.register_buffer("causal", torch.ones(T, T, dtype=torch.bool).triu(1))

    def forward(self, x):
        h = self.ln_1(x)
        T = x.shape[1]
        x = x + self.attn(h, h, h, attn_mask=self.causal[:T, :T], need_weights=False)[0]
        return x + self.fc2(F.gelu(self.fc1(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, V, L, H, E, T):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, E), nn.Embedding(T, E)
        self.h = nn.ModuleList(Block(E, H, T) for _ in range(L))
        self.ln_f = nn.LayerNorm(E)
        self.lm_head = nn.Linear(E, V, bias=False)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--corpus", default="")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--embed", type=int, default=128)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)

    text = corpus_bytes(a.corpus)
    symbols = sorted(set(text))
    lookup = torch.zeros(256, dtype=torch.long)
    lookup[torch.tensor(symbols)] = torch.arange(len(symbols))
    tokens = lookup[torch.frombuffer(bytearray(text), dtype=torch.uint8).long()]
    train = tokens[: int(len(tokens) * 0.9)]
    B, T = a.batch, a.context

    model = GPT(len(symbols), a.layers, a.heads, a.embed, T)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": rest, "weight_decay": 0.0}], lr=2e-3, betas=(0.9, 0.95),
                            eps=1e-8)
    total, warmup, lr, min_lr = 4000, 100, 2e-3, 2e-4

    def rate(step):
        if step < warmup:
            return lr * (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * t))

    offsets = torch.arange(T + 1)
    seconds, loss = 0.0, float("nan")
    for step in range(a.steps):
        t0 = time.perf_counter()
        starts = torch.randint(0, len(train) - T - 1, (B,))
        window = train[starts[:, None] + offsets]
        x, y = window[:, :-1], window[:, 1:]
        for g in opt.param_groups:
            g["lr"] = rate(step)
        logits = model(x)
        loss_t = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss_t.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss = loss_t.item()
        seconds += time.perf_counter() - t0
    print(f"pytorch {torch.__version__} train: {a.steps} steps, {a.steps * B * T / seconds:.0f} "
          f"tokens/s over the training steps, {a.threads} threads, loss {loss:.3f}")


if __name__ == "__main__":
    main()
