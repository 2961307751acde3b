#!/usr/bin/env python3
"""Exports TorchScript models with the tickinfer metadata (extra file "tickinfer.json").

The metadata carries golden vectors: a few random rows run through the model in eval mode, which
tickinfer::load_torchscript reproduces before it accepts the model.

  export_model.py --out-dir DIR --all                  # every reference/test model (CMake target tickinfer_test_models)
  export_model.py --out-dir DIR --model mlp --version 7 --seed 3 [--schema schema.json]

--schema FILE: JSON {"names": [...], "hash": "..."} sets the input names (hence the width) and
feature_schema_hash; the default is f0..f31 and "synthetic-v1".
"""

import argparse
import json
import os
import sys
import zipfile
from typing import Tuple

# TorchScript serialises some class attributes in set order, which follows string hashing: a fixed hash
# seed makes the archives byte-identical run to run. Re-exec before torch is imported (costs ~20 ms).
if os.environ.get("PYTHONHASHSEED") != "0":
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, "PYTHONHASHSEED": "0"})

import torch  # noqa: E402
from torch import nn  # noqa: E402

FORMAT_VERSION = 1
METADATA_FILE = "tickinfer.json"
DEFAULT_WIDTH = 32
DEFAULT_HASH = "synthetic-v1"
GOLDEN_ROWS = 4


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int = 64, outputs: int = 1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Deep(nn.Module):
    """Heavier model: three LayerNorm'd 256-wide blocks, 4 outputs."""

    def __init__(self, width: int, hidden: int = 256, outputs: int = 4):
        super().__init__()
        layers = []
        last = width
        for _ in range(3):
            layers += [nn.Linear(last, hidden), nn.LayerNorm(hidden), nn.ReLU()]
            last = hidden
        layers.append(nn.Linear(last, outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class NanModel(nn.Module):
    """An Mlp whose output is NaN for rows with feature 0 > 1000 (tests per-row non-finite handling)."""

    def __init__(self, width: int):
        super().__init__()
        self.mlp = Mlp(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(x)
        # Data-dependent, so freezing and optimize_for_inference cannot fold it away.
        return torch.where(x[:, 0:1] > 1000.0, torch.full_like(y, float("nan")), y)


class ThrowingModel(nn.Module):
    """An Mlp that raises inside forward when any row has feature 0 == -999 (tests forward failures)."""

    def __init__(self, width: int):
        super().__init__()
        self.mlp = Mlp(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x[:, 0] == -999.0).any()):
            raise RuntimeError("tickinfer test model: poisoned input (feature 0 == -999)")
        return self.mlp(x)


# Models that pass the golden check (run at the golden batch size, GOLDEN_ROWS) but misbehave elsewhere: what
# the checked warm-up must catch (tests/torchscript_test.cpp, tests/hot_swap_test.cpp).
class WrongRows(nn.Module):
    """One row short at batch sizes above the golden one."""

    def __init__(self, width: int):
        super().__init__()
        self.mlp = Mlp(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(x)
        if x.size(0) > 4:
            return y[1:]
        return y


class WrongWidth(nn.Module):
    """Two outputs per row at batch sizes above the golden one (the metadata declares one)."""

    def __init__(self, width: int):
        super().__init__()
        self.mlp = Mlp(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(x)
        if x.size(0) > 4:
            return torch.cat([y, y], 1)
        return y


class NanAtBatch(nn.Module):
    """NaN outputs at batch sizes above the golden one."""

    def __init__(self, width: int):
        super().__init__()
        self.mlp = Mlp(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(x)
        if x.size(0) > 4:
            return y + torch.full_like(y, float("nan"))
        return y


class BatchDependent(nn.Module):
    """Each row's output depends on the other rows of its batch (a batch-mean term)."""

    def __init__(self, width: int):
        super().__init__()
        self.mlp = Mlp(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x) + 0.5 * x.mean(0, keepdim=True)[:, 0:1]


class Stateful(nn.Module):
    """Drifts with every call (hidden state mutated in forward); its first call reproduces the golden outputs."""

    def __init__(self, width: int):
        super().__init__()
        self.mlp = Mlp(width)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.mlp(x) + 0.01 * float(self.calls - 1)

    def reset_state(self) -> None:
        self.calls = 0


ARCHITECTURES = {"mlp": Mlp, "deep": Deep, "nan_model": NanModel, "throwing_model": ThrowingModel,
                 "wrong_rows": WrongRows, "wrong_width": WrongWidth, "nan_at_batch": NanAtBatch,
                 "batch_dependent": BatchDependent, "stateful": Stateful}


def build(arch: str, width: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = ARCHITECTURES[arch](width)
    if arch == "deep":
        # Non-trivial LayerNorm affine parameters, so the golden check covers them too.
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, nn.LayerNorm):
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.1, 0.1)
    return model.eval()


def golden(model: nn.Module, width: int, seed: int, rows=None):
    gen = torch.Generator().manual_seed(seed + 1000)
    inputs = torch.randn(GOLDEN_ROWS, width, generator=gen) if rows is None else torch.tensor(rows)
    with torch.no_grad():
        outputs = model(inputs)
    # float32 -> Python float is exact, and json writes floats with repr(), so values round-trip bit-exactly.
    return inputs.tolist(), outputs.tolist()


def metadata(name, version, input_names, output_names, schema_hash, golden_inputs, golden_outputs) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "input_names": list(input_names),
        "output_names": list(output_names),
        "feature_schema_hash": schema_hash,
        "golden": {"inputs": golden_inputs, "outputs": golden_outputs},
    }


def save(model: nn.Module, path: str, meta_text) -> None:
    scripted = torch.jit.script(model)
    extra = {} if meta_text is None else {METADATA_FILE: meta_text}
    torch.jit.save(scripted, path, _extra_files=extra)


def export(out_dir, file_name, arch, *, name=None, version=1, seed=1, input_names=None, schema_hash=DEFAULT_HASH,
           golden_rows=None, tamper=None, raw_metadata=None, with_metadata=True):
    """Builds, scripts and saves one model; `tamper(meta)` edits the metadata dict (bad-file variants)."""
    input_names = input_names or [f"f{i}" for i in range(DEFAULT_WIDTH)]
    width = len(input_names)
    model = build(arch, width, seed)
    g_in, g_out = golden(model, width, seed, golden_rows)
    output_names = [f"y{i}" for i in range(len(g_out[0]))]
    meta = metadata(name or arch, version, input_names, output_names, schema_hash, g_in, g_out)
    if tamper is not None:
        tamper(meta)
    text = raw_metadata if raw_metadata is not None else json.dumps(meta)
    if hasattr(model, "reset_state"):
        model.reset_state()  # the golden run above counted as a call
    path = os.path.join(out_dir, file_name)
    save(model, path, text if with_metadata else None)
    return model


def save_weights(model: nn.Module, path: str) -> None:
    # A plain dict: LibTorch 1.13's pickle reader cannot rebuild the OrderedDict that state_dict() returns.
    torch.save(dict(model.state_dict()), path)


class GruTicks(nn.Module):
    """A GRU over ticks, the sequence model a pipeline keeps state for per instrument: forward(x, h) -> (y, h')."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.cell = nn.GRUCell(width, hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h_next = self.cell(x, h)
        return self.head(h_next), h_next


def export_sequence(out_dir, file_name, input_names, schema_hash, hidden=8, seed=7, name="gru"):
    """A sequence model: metadata `state_names` (one per state float); golden rows packed as features then state in,
    outputs then new state out (what tickinfer's runners stage and return per row)."""
    torch.manual_seed(seed)
    model = GruTicks(len(input_names), hidden).eval()
    gen = torch.Generator().manual_seed(seed + 1000)
    x = torch.randn(GOLDEN_ROWS, len(input_names), generator=gen)
    h = torch.randn(GOLDEN_ROWS, hidden, generator=gen) * 0.5
    with torch.no_grad():
        y, h_next = model(x, h)
    meta = metadata(name, 1, input_names, ["y0"], schema_hash, torch.cat([x, h], 1).tolist(),
                    torch.cat([y, h_next], 1).tolist())
    meta["state_names"] = [f"h{i}" for i in range(hidden)]
    save(model, os.path.join(out_dir, file_name), json.dumps(meta))
    return model


def export_all(out_dir: str, input_names, schema_hash) -> None:
    common = dict(input_names=input_names, schema_hash=schema_hash)
    width = len(input_names)

    mlp = export(out_dir, "mlp.pt", "mlp", version=1, seed=1, **common)
    mlp_v2 = export(out_dir, "mlp_v2.pt", "mlp", name="mlp", version=2, seed=2, **common)
    save_weights(mlp, os.path.join(out_dir, "mlp_weights.pt"))
    save_weights(mlp_v2, os.path.join(out_dir, "mlp_v2_weights.pt"))
    export(out_dir, "deep.pt", "deep", version=1, seed=3, **common)
    export(out_dir, "wide16.pt", "mlp", name="wide16", version=1, seed=4,
           input_names=[f"f{i}" for i in range(16)], schema_hash=schema_hash)
    export(out_dir, "nan_model.pt", "nan_model", version=1, seed=5, **common)
    export(out_dir, "throwing_model.pt", "throwing_model", version=1, seed=6, **common)
    export(out_dir, "no_metadata.pt", "mlp", seed=1, with_metadata=False, **common)
    export_sequence(out_dir, "gru.pt", input_names, schema_hash)

    # Bad-metadata variants for the loader's error paths (each a valid TorchScript archive).
    export(out_dir, "bad_json.pt", "mlp", seed=1, raw_metadata='{"format_version": 1, "name": "mlp", ', **common)
    export(out_dir, "missing_field.pt", "mlp", seed=1, tamper=lambda m: m.pop("feature_schema_hash"), **common)
    export(out_dir, "mistyped_field.pt", "mlp", seed=1, tamper=lambda m: m.update(version="one"), **common)
    export(out_dir, "wrong_format_version.pt", "mlp", seed=1, tamper=lambda m: m.update(format_version=99), **common)

    def tamper_golden(meta):
        meta["golden"]["outputs"][2][0] += 0.5

    export(out_dir, "golden_mismatch.pt", "mlp", seed=1, tamper=tamper_golden, **common)

    # NaN for a golden row: JSON cannot hold NaN, so the expected value is 0 and the loader must report
    # the non-finite output rather than a plain mismatch.
    trigger = [[5000.0] + [0.25] * (width - 1), [0.5] * width]

    def zero_nan(meta):
        meta["golden"]["outputs"] = [[0.0 if v != v else v for v in row] for row in meta["golden"]["outputs"]]

    export(out_dir, "nan_golden.pt", "nan_model", seed=5, golden_rows=trigger, tamper=zero_nan, **common)
    export_hot_swap_variants(out_dir, input_names, schema_hash)


def export_hot_swap_variants(out_dir: str, input_names, schema_hash) -> None:
    """Bad checkpoints for the hot-swap registry's refusal paths (tests/hot_swap_test.cpp)."""
    width = len(input_names)
    # A valid archive whose feature schema hash differs from the running model's.
    export(out_dir, "mlp_schema_v2.pt", "mlp", version=1, seed=1, input_names=input_names,
           schema_hash=schema_hash + "-other")

    def weights_variant(file_name, edit):
        state = dict(build("mlp", width, 1).state_dict())  # same weights as mlp.pt
        edit(state)
        torch.save(state, os.path.join(out_dir, file_name))

    def nan_weight(state):
        state["net.2.weight"][3, 5] = float("nan")

    weights_variant("mlp_nan_weights.pt", nan_weight)
    weights_variant("mlp_bad_shape_weights.pt", lambda s: s.update({"net.2.weight": s["net.2.weight"][:, :63]}))
    weights_variant("mlp_extra_key_weights.pt", lambda s: s.update({"net.6.weight": torch.zeros(1, 1)}))
    weights_variant("mlp_missing_key_weights.pt", lambda s: s.pop("net.4.bias"))
    weights_variant("mlp_wrong_dtype_weights.pt", lambda s: s.update({"net.0.bias": s["net.0.bias"].double()}))
    # What torch.save(model.state_dict()) writes: an OrderedDict, which LibTorch does not rebuild.
    torch.save(build("mlp", width, 1).state_dict(), os.path.join(out_dir, "mlp_ordered_dict_weights.pt"))
    # A whole pickled nn.Module: must never be loaded.
    torch.save(build("mlp", width, 1), os.path.join(out_dir, "pickled_module.pt"))

    # Same width and schema, another interface: input names changed (deep.pt changes the outputs).
    export(out_dir, "mlp_renamed_inputs.pt", "mlp", version=1, seed=2, input_names=[f"g{i}" for i in range(width)],
           schema_hash=schema_hash)
    # Correct at the golden batch size, wrong elsewhere: the checked warm-up refuses each.
    for arch in ("wrong_rows", "wrong_width", "nan_at_batch", "batch_dependent", "stateful"):
        export(out_dir, arch + ".pt", arch, version=1, seed=7, input_names=input_names, schema_hash=schema_hash)

    # Zip bombs: a member that inflates far beyond its file size. The metadata one is a valid archive whose
    # tickinfer.json is padded with 64 MiB of spaces (still valid JSON); the weights one holds a 64 MiB tensor.
    bomb = 64 << 20
    deflate_members(os.path.join(out_dir, "mlp.pt"), os.path.join(out_dir, "metadata_bomb.pt"),
                    pad={"/extra/" + METADATA_FILE: bomb})
    state = dict(build("mlp", width, 1).state_dict())
    state["big"] = torch.zeros(bomb // 4)
    plain = os.path.join(out_dir, ".weights_bomb_plain.pt")
    torch.save(state, plain)
    deflate_members(plain, os.path.join(out_dir, "weights_bomb.pt"), deflate_all=True)
    os.remove(plain)


def deflate_members(src: str, dst: str, pad=None, deflate_all=False) -> None:
    """Rewrites zip `src` as `dst`: members whose name ends with a key of `pad` get that many spaces appended and
    are deflated (as is every member with `deflate_all`); the rest are stored as they were."""
    pad = pad or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            extra = next((n for suffix, n in pad.items() if info.filename.endswith(suffix)), None)
            if extra is not None:
                data += b" " * extra
            deflate = deflate_all or extra is not None
            zout.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)


def read_schema(path):
    if path is None:
        return [f"f{i}" for i in range(DEFAULT_WIDTH)], DEFAULT_HASH
    with open(path, encoding="utf-8") as f:
        schema = json.load(f)
    names, schema_hash = schema.get("names"), schema.get("hash")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        sys.exit(f"{path}: 'names' must be a non-empty list of strings")
    if not isinstance(schema_hash, str) or not schema_hash:
        sys.exit(f"{path}: 'hash' must be a non-empty string")
    return names, schema_hash


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", required=True, help="directory for the .pt files (created if missing)")
    parser.add_argument("--all", action="store_true", help="export every reference and test model")
    parser.add_argument("--model", choices=sorted(ARCHITECTURES) + ["gru"],
                        help="export one architecture as NAME.pt (gru: a sequence model, forward(x, h) -> (y, h'))")
    parser.add_argument("--version", type=int, default=1, help="model version written to the metadata")
    parser.add_argument("--seed", type=int, default=1, help="seed for weights and golden inputs")
    parser.add_argument("--schema", help='JSON file {"names": [...], "hash": "..."}')
    parser.add_argument("--output", help="file name for --model (default NAME.pt, or NAME_vVERSION.pt if version > 1)")
    args = parser.parse_args()
    if args.all == (args.model is not None):
        parser.error("give exactly one of --all or --model")
    if args.version < 0:
        parser.error("--version must be >= 0")

    torch.set_num_threads(1)  # small models: threads only add start-up cost and nondeterminism
    os.makedirs(args.out_dir, exist_ok=True)
    input_names, schema_hash = read_schema(args.schema)
    if args.all:
        export_all(args.out_dir, input_names, schema_hash)
    else:
        file_name = args.output or (f"{args.model}.pt" if args.version <= 1 else f"{args.model}_v{args.version}.pt")
        if args.model == "gru":
            export_sequence(args.out_dir, file_name, input_names, schema_hash, seed=args.seed)
        else:
            export(args.out_dir, file_name, args.model, version=args.version, seed=args.seed, input_names=input_names,
                   schema_hash=schema_hash)
        print(os.path.join(args.out_dir, file_name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
