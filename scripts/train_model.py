#!/usr/bin/env python3
"""Trains a small MLP on features that tickinfer's C++ pipeline computed, and exports it for tickinfer.

Training features == inference features by construction: the input is what
`tickinfer-replay DATA --dump-features FEATURES.csv` wrote (header "index,ts_ns,mid,<feature names>").
The label is the mid-price move over the next --horizon events, in basis points. The split is
chronological (first 70% train, last 30% test). The export follows scripts/export_model.py: TorchScript
plus metadata (feature names and schema hash of --config, golden vectors from test rows).

  tickinfer-replay AMZN_..._message_1.csv --dump-features amzn.csv
  train_model.py --features amzn.csv --config configs/default.toml --out amzn_mlp.pt

With --checkpoint-dir DIR it also writes a checkpoint at the end of every epoch, the way a serving process can
take it mid-session: DIR/NAME_epochN.pt (version N) written under a .tmp name, flushed and renamed into place,
its sha256sum sidecar NAME_epochN.pt.sha256 renamed in just before it. A run that dies at epoch 49 keeps epochs 1-48;
`tickinfer-replay --model-dir DIR` (or any CheckpointWatcher + ModelRegistry) serves each epoch as it lands.
"""

import argparse
import hashlib
import json
import os
import sys
import time
from typing import Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_model  # noqa: E402  (re-executes with PYTHONHASHSEED=0 for byte-identical archives)
from baseline_replay import parse_config, schema_hash  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


class Standardised(nn.Module):
    """Scales inputs with the training split's mean and std, then runs the MLP."""

    def __init__(self, mean, std, hidden: int):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        width = len(mean)
        self.net = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


class StandardisedGru(nn.Module):
    """A GRU over ticks on standardised inputs: forward(x, h) -> (y, h'). tickinfer keeps h per symbol (the metadata's
    state_names), so each instrument's prediction follows its own history."""

    def __init__(self, mean, std, hidden: int):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.cell = nn.GRUCell(len(mean), hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h_next = self.cell((x - self.mean) / self.std, h)
        return self.head(h_next), h_next


def run_sequence(model, x):
    """The GRU over rows `x` in order from a zero state: its predictions, and the state before each row."""
    h = torch.zeros(1, model.cell.hidden_size)
    preds, states = [], []
    with torch.no_grad():
        for row in torch.from_numpy(x):
            states.append(h[0].clone())
            y, h = model(row.unsqueeze(0), h)
            preds.append(float(y[0, 0]))
    return np.array(preds, dtype=np.float32), torch.stack(states)


def train_gru_epoch(model, optimiser, x, y, gen, window=32, batch=64):
    """One epoch of truncated back-propagation through time: random windows of `window` consecutive rows, each
    from a zero state, every step's prediction in the loss. Returns the mean squared error."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(np.clip(y, -20, 20))
    starts = torch.randperm(len(x) - window, generator=gen)
    total, steps = 0.0, 0
    for first in range(0, len(starts) - batch + 1, batch * window):
        idx = starts[first:first + batch]
        h = torch.zeros(len(idx), model.cell.hidden_size)
        optimiser.zero_grad()
        loss = 0.0
        for t in range(window):
            pred, h = model(xt[idx + t], h)
            loss = loss + nn.functional.mse_loss(pred.squeeze(1), yt[idx + t])
        loss = loss / window
        loss.backward()
        optimiser.step()
        total += loss.item()
        steps += 1
    return total / max(steps, 1)


def load_features(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
    if header[:3] != ["index", "ts_ns", "mid"]:
        sys.exit(f"{path}: not a tickinfer-replay --dump-features CSV (header starts {header[:3]})")
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    return header[3:], data[:, 2], data[:, 3:].astype(np.float32)


def fsync_path(path):
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def fsync_dir(path):
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path, write):
    """write(tmp_path), fsync it, rename it to `path` (watchers ignore *.tmp), fsync the directory."""
    tmp = path + ".tmp"
    write(tmp)
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_dir(path)


def write_checkpoint(model, directory, name, epoch, names, output_names, specs, golden, extra):
    """One epoch's checkpoint. The archive is written under a .tmp name and hashed there; its sha256sum sidecar is
    renamed into place first, then the archive: a watcher sees the archive only complete, with its sidecar already
    there to verify it (ChecksumPolicy kIfPresent and kRequire alike)."""
    path = os.path.join(directory, f"{name}_epoch{epoch}.pt")
    was_training = model.training
    model.eval()
    g_in, g_out, state_names = golden(model)
    meta = export_model.metadata(name, epoch, names, output_names, schema_hash(specs), g_in, g_out)
    if state_names:
        meta["state_names"] = state_names
    meta["training"] = extra
    tmp = path + ".tmp"
    export_model.save(model, tmp, json.dumps(meta))
    fsync_path(tmp)
    with open(tmp, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()

    def sidecar(sidecar_tmp):
        with open(sidecar_tmp, "w") as f:
            f.write(f"{digest}  {os.path.basename(path)}\n")

    write_atomically(path + ".sha256", sidecar)
    os.replace(tmp, path)
    fsync_dir(path)
    model.train(was_training)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", required=True, help="CSV from tickinfer-replay --dump-features")
    parser.add_argument("--config", required=True, help="the feature config the CSV was dumped with")
    parser.add_argument("--out", help="TorchScript archive to write at the end (needed unless --checkpoint-dir)")
    parser.add_argument("--checkpoint-dir", help="also write DIR/NAME_epochN.pt (+ .sha256) after every epoch")
    parser.add_argument("--epoch-pause", type=float, default=0.0,
                        help="seconds to wait after each epoch's checkpoint (to watch a serving process take them)")
    parser.add_argument("--horizon", type=int, default=50, help="label: mid move over the next N events")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--arch", choices=["mlp", "gru"], default="mlp",
                        help="mlp: one row in, one prediction out; gru: a sequence model whose state tickinfer keeps "
                             "per symbol (forward(x, h) -> (y, h'), trained by truncated BPTT over 32-row windows)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--version", type=int, default=1, help="model version written to the metadata")
    parser.add_argument("--name", default="lobster_mlp")
    args = parser.parse_args()
    if not args.out and not args.checkpoint_dir:
        parser.error("give --out, --checkpoint-dir or both")
    if args.checkpoint_dir and not os.path.isdir(args.checkpoint_dir):
        sys.exit(f"{args.checkpoint_dir}: not a directory")

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    specs = parse_config(args.config)
    names = [s["name"] for s in specs]
    columns, mid, x = load_features(args.features)
    if columns != names:
        sys.exit(f"{args.features}: feature columns {columns} differ from {args.config}'s {names}")
    k = args.horizon
    if len(mid) <= 2 * k:
        sys.exit(f"{args.features}: {len(mid)} rows is too few for horizon {k}")
    y = ((mid[k:] - mid[:-k]) / mid[:-k] * 1e4).astype(np.float32)  # bps move over the next k events
    x = x[:-k]
    split = int(0.7 * len(y))
    x_train, y_train, x_test, y_test = x[:split], y[:split], x[split:], y[split:]
    golden_rows = x_test[:: max(1, len(x_test) // export_model.GOLDEN_ROWS)][: export_model.GOLDEN_ROWS].tolist()
    output_names = [f"mid_move_bps_{k}"]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std > 1e-6, std, 1.0).astype(np.float32)

    gru = args.arch == "gru"
    model = (StandardisedGru if gru else Standardised)(mean.tolist(), std.tolist(), args.hidden)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(np.clip(y_train, -20, 20)).unsqueeze(1)
    gen = torch.Generator().manual_seed(args.seed)

    def golden(m):
        if not gru:
            g_in, g_out = export_model.golden(m, x.shape[1], args.seed, golden_rows)
            return g_in, g_out, None
        # Packed rows (features then state in, outputs then new state out), each with the state the test sequence
        # really had before it.
        picks = list(range(0, len(x_test), max(1, len(x_test) // export_model.GOLDEN_ROWS)))[: export_model.GOLDEN_ROWS]
        _, states = run_sequence(m, x_test[: picks[-1] + 1])
        rows = torch.from_numpy(x_test[picks])
        with torch.no_grad():
            out, h_next = m(rows, states[picks])
        g_in = torch.cat([rows, states[picks]], 1).tolist()
        return g_in, torch.cat([out, h_next], 1).tolist(), [f"h{i}" for i in range(args.hidden)]

    for epoch in range(args.epochs):
        model.train()
        if gru:
            mse = train_gru_epoch(model, optimiser, x_train, y_train, gen)
        else:
            order = torch.randperm(len(xt), generator=gen)
            total = 0.0
            for start in range(0, len(order), 256):
                idx = order[start:start + 256]
                optimiser.zero_grad()
                loss = nn.functional.mse_loss(model(xt[idx]), yt[idx])
                loss.backward()
                optimiser.step()
                total += loss.item() * len(idx)
            mse = total / len(order)
        print(f"epoch {epoch + 1}/{args.epochs}: train mse {mse:.4f}", flush=True)
        if args.checkpoint_dir:
            path = write_checkpoint(model, args.checkpoint_dir, args.name, epoch + 1, names, output_names, specs,
                                    golden, {"epoch": epoch + 1, "train_mse": mse})
            print(f"{path}: checkpoint of epoch {epoch + 1}", flush=True)
            if args.epoch_pause > 0:
                time.sleep(args.epoch_pause)
    model.eval()

    if gru:
        pred, _ = run_sequence(model, x_test)
    else:
        with torch.no_grad():
            pred = model(torch.from_numpy(x_test)).squeeze(1).numpy()
    moved = y_test != 0
    hit = float(np.mean(np.sign(pred[moved]) == np.sign(y_test[moved]))) if moved.any() else 0.0
    # None, not NaN, when either side is constant (e.g. a synthetic feed whose mid never moves): JSON has no NaN.
    corr = float(np.corrcoef(pred, y_test)[0, 1]) if pred.std() > 0 and y_test.std() > 0 else None
    stats = {"rows": int(len(y)), "train": int(split), "test": int(len(y_test)), "horizon_events": k,
             "test_mse": float(np.mean((pred - y_test) ** 2)), "test_mse_predict_zero": float(np.mean(y_test ** 2)),
             "test_correlation": corr, "test_sign_accuracy_when_mid_moved": hit}
    print(json.dumps(stats))

    if args.out:
        g_in, g_out, state_names = golden(model)
        meta = export_model.metadata(args.name, args.version, names, output_names, schema_hash(specs), g_in, g_out)
        if state_names:
            meta["state_names"] = state_names
        meta["training"] = stats  # extra field: the loader ignores it, people reading the archive do not
        export_model.save(model, args.out, json.dumps(meta))
        print(f"{args.out}: {args.name} v{args.version}, {len(names)} features, schema {schema_hash(specs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
