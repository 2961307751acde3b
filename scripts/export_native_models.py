#!/ usr / bin / env python3
"""Exports TorchScript modules that exercise every operator of tickinfer's native engine, plus modules it must
refuse, for tests/native_torchscript_test.cpp. Plain torch.jit.script archives (no tickinfer metadata): the test
compares the native plan with LibTorch's forward on the same module.

  export_native_models.py --out-dir DIR [--onnx]

Writes DIR/<name>.pt and DIR/manifest.txt ("<name> <input width> <expect: ok|refused> [refusal substring]").
--onnx also writes DIR/onnx/<name>.onnx (torch.onnx.export, opset 17, dynamic batch axis, checked with
onnx.checker) with tickinfer's metadata (golden vectors from the export) in metadata_props["tickinfer.json"],
each next to <name>.pt (the same module as TorchScript), and hostile files for the loader's bad-input tests.
"""

import argparse
import os
import sys

if os.environ.get("PYTHONHASHSEED") != "0":
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, "PYTHONHASHSEED": "0"})

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402


class Mlp(nn.Module):
    def __init__(self, width=32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Activations(nn.Module):
    """Every activation, each behind its own linear layer so none is folded away."""

    def __init__(self, width=12):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(12)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.layers[0](x), 0.05)
        x = F.elu(self.layers[1](x), 0.7)
        x = F.selu(self.layers[2](x))
        x = F.gelu(self.layers[3](x))
        x = F.gelu(self.layers[4](x), approximate="tanh")
        x = F.silu(self.layers[5](x))
        x = torch.tanh(self.layers[6](x))
        x = torch.sigmoid(self.layers[7](x))
        x = F.hardtanh(self.layers[8](x) * 3.0, -0.5, 0.5)
        x = torch.clamp(self.layers[9](x), min=-0.25)
        x = torch.relu(self.layers[10](x))
        return self.layers[11](x)


class Norms(nn.Module):
    """Normalisation baked in, layer norm, batch norm (eval), dropout, softmax."""

    def __init__(self, width=16):
        super().__init__()
        self.register_buffer("mean", torch.randn(width))
        self.register_buffer("std", torch.rand(width) + 0.5)
        self.fc1 = nn.Linear(width, 24)
        self.ln = nn.LayerNorm(24)
        self.bn = nn.BatchNorm1d(24)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(24, 5)
        with torch.no_grad():
            self.bn.running_mean.copy_(torch.randn(24))
            self.bn.running_var.copy_(torch.rand(24) + 0.5)
            self.bn.weight.copy_(torch.randn(24))
            self.bn.bias.copy_(torch.randn(24))
            self.ln.weight.copy_(torch.randn(24))
            self.ln.bias.copy_(torch.randn(24))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        x = F.gelu(self.ln(self.fc1(x)))
        x = self.drop(self.bn(x))
        return torch.softmax(self.fc2(x), dim=1)


class LogSoftmaxHead(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.fc = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.fc(x), dim=-1)


class Concat(nn.Module):
    def __init__(self, width=6):
        super().__init__()
        self.hidden = nn.Linear(width, 10)
        self.out = nn.Linear(width + 10, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.hidden(x))
        return self.out(torch.cat([x, h], dim=1))


class MatmulForms(nn.Module):
    """addmm, matmul + add, rsub, division by a constant, flatten/reshape/view, elementwise between values."""

    def __init__(self, width=10):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(width, 14) * 0.3)
        self.b1 = nn.Parameter(torch.randn(14))
        self.w2 = nn.Parameter(torch.randn(14, 14) * 0.3)
        self.b2 = nn.Parameter(torch.randn(14))
        self.w3 = nn.Parameter(torch.randn(14, 4) * 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.addmm(self.b1, x, self.w1)
        h = torch.flatten(h, 1)
        g = torch.matmul(h, self.w2) + self.b2
        g = g.reshape(-1, 14)
        s = torch.sigmoid(g)
        h = h * s - g / 2.0
        h = 1.0 - h
        h = h.view(-1, 14)
        return torch.mm(h, self.w3) + 0.5


class Unsupported(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.fc = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(self.fc(x), dim=1)


class ControlFlow(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.fc = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if x.size(0) > 1:
            y = y * 2.0
        return y


class BatchAxisMix(nn.Module):
    """Softmax over the batch axis: must be refused, not computed per row."""

    def __init__(self, width=8):
        super().__init__()
        self.fc = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.fc(x), dim=0)


class RandomMlp(nn.Module):
    """A random small MLP: depth, widths, activations and norms drawn from `rng` (seeded, printed in the manifest)."""

    ACTIVATIONS = ["relu", "tanh", "sigmoid", "gelu", "silu", "elu", "leaky_relu", "selu"]

    def __init__(self, width, rng):
        super().__init__()
        layers = []
        w = width
        for _ in range(rng.randint(1, 4)):
            out = rng.randint(1, 72)
            layers.append(nn.Linear(w, out, bias=rng.random() < 0.8))
            norm = rng.random()
            if norm < 0.2:
                layers.append(nn.LayerNorm(out))
            elif norm < 0.35:
                bn = nn.BatchNorm1d(out)
                with torch.no_grad():
                    bn.running_mean.normal_()
                    bn.running_var.uniform_(0.5, 2.0)
                layers.append(bn)
            act = rng.choice(self.ACTIVATIONS)
            layers.append({"relu": nn.ReLU(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "gelu": nn.GELU(),
                           "silu": nn.SiLU(), "elu": nn.ELU(), "leaky_relu": nn.LeakyReLU(0.1),
                           "selu": nn.SELU()}[act])
            if rng.random() < 0.3:
                layers.append(nn.Dropout(0.2))
            w = out
        layers.append(nn.Linear(w, rng.randint(1, 5)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


RANDOM_MODELS = 12

MODELS = [
    ("mlp", Mlp, 32, "ok", ""),
    ("activations", Activations, 12, "ok", ""),
    ("norms", Norms, 16, "ok", ""),
    ("log_softmax", LogSoftmaxHead, 8, "ok", ""),
    ("concat", Concat, 6, "ok", ""),
    ("matmul_forms", MatmulForms, 10, "ok", ""),
    ("unsupported_cumsum", Unsupported, 8, "refused", "unsupported operator aten::cumsum"),
    ("control_flow", ControlFlow, 8, "refused", "control flow or shapes that depend on the batch size"),
    ("softmax_batch_axis", BatchAxisMix, 8, "refused", "dim 0 is not the feature dimension"),
]


ONNX_MODELS = ["mlp", "activations", "norms", "log_softmax", "concat", "matmul_forms"]
ONNX_OPSET = 17


def metadata_json(name, module, width, outputs, seed=5):
    import json
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, width, generator=g)
    with torch.no_grad():
        y = module(x)
    return json.dumps({
        "format_version": 1, "name": name, "version": 1,
        "input_names": [f"f{i}" for i in range(width)], "output_names": [f"y{i}" for i in range(outputs)],
        "feature_schema_hash": "synthetic-v1",
        "golden": {"inputs": x.tolist(), "outputs": y.tolist()},
    })


def export_onnx(out_dir, name, module, width):
    import onnx
    path = os.path.join(out_dir, name + ".onnx")
    x = torch.randn(3, width)
    torch.onnx.export(module, (x,), path, opset_version=ONNX_OPSET, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    model = onnx.load(path)
    with torch.no_grad():
        outputs = module(x).shape[1]
    entry = model.metadata_props.add()
    entry.key = "tickinfer.json"
    entry.value = metadata_json(name, module, width, outputs)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return model


def export_hostile_onnx(out_dir, good):
    """Files the ONNX loader must refuse, each for one reason (tests/onnx_model_test.cpp)."""
    import copy
    import onnx
    from onnx import TensorProto, helper
    data = good.SerializeToString()
    with open(os.path.join(out_dir, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(os.path.join(out_dir, "not_onnx.onnx"), "wb") as f:
        f.write(b"PK\x03\x04 this is a zip header, not a protobuf ModelProto" * 4)

    def save(model, file_name, check=True):
        if check:
            onnx.checker.check_model(model)
        onnx.save(model, os.path.join(out_dir, file_name))

    m = copy.deepcopy(good)  # an operator the engine does not claim
    for node in m.graph.node:
        if node.op_type == "Relu":
            node.op_type = "Softplus"
            break
    save(m, "unsupported_op.onnx")

    m = copy.deepcopy(good)  # a non-float input
    m.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    save(m, "double_input.onnx", check=False)

    m = copy.deepcopy(good)  # a second input
    m.graph.input.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["batch", 3]))
    save(m, "second_input.onnx")

    m = copy.deepcopy(good)  # an initializer gone: its name is read but defined nowhere
    removed = m.graph.initializer[0].name
    del m.graph.initializer[0]
    save(m, "missing_initializer.onnx", check=False)

    m = copy.deepcopy(good)  # the dynamic axis second, the first fixed
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[0].ClearField("dim_param")
    dims[0].dim_value = 4
    dims[1].ClearField("dim_value")
    dims[1].dim_param = "batch"
    save(m, "batch_axis_second.onnx", check=False)

    m = copy.deepcopy(good)  # opset outside 13-17
    m.opset_import[0].version = 11
    save(m, "old_opset.onnx", check=False)

    m = copy.deepcopy(good)  # no tickinfer metadata
    del m.metadata_props[:]
    save(m, "no_metadata.onnx")

    m = copy.deepcopy(good)  # fails the checker: a node with an unknown input name and no producer
    m.graph.node[0].input[0] = "nobody_makes_this"
    save(m, "checker_fails.onnx", check=False)

    # Valid models whose metadata breaks the served model's interface, for the registry's hot-swap tests
    # (tests/hot_swap_test.cpp); mlp.onnx has mlp.pt's interface (f0..f31 -> y0, "synthetic-v1").
    import json

    def with_metadata(file_name, edit):
        m = copy.deepcopy(good)
        entry = next(p for p in m.metadata_props if p.key == "tickinfer.json")
        meta = json.loads(entry.value)
        edit(meta)
        entry.value = json.dumps(meta)
        save(m, file_name)

    with_metadata("schema_v2.onnx", lambda meta: meta.update(feature_schema_hash="synthetic-v1-other"))
    with_metadata("renamed_inputs.onnx", lambda meta: meta.update(input_names=[f"g{i}" for i in range(32)]))
    with_metadata("renamed_output.onnx", lambda meta: meta.update(output_names=["z0"]))

    def tamper_golden(meta):
        meta["golden"]["outputs"][2][0] += 1.0

    with_metadata("golden_mismatch.onnx", tamper_golden)
    return removed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--onnx", action="store_true", help="also export ONNX models and hostile ONNX files")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("TICKINFER_RANDOM_MLP_SEED", "20261201")),
                        help="seed of the random MLPs (env TICKINFER_RANDOM_MLP_SEED)")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    import random
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    print(f"export_native_models.py: random MLP seed {args.seed}")
    models = list(MODELS)
    for i in range(RANDOM_MODELS):
        width = rng.randint(1, 48)
        module = RandomMlp(width, rng)
        models.append((f"random_mlp_{i}_seed{args.seed}", lambda _w, m=module: m, width, "ok", ""))
    lines = []
    for name, cls, width, expect, reason in models:
        module = cls(width).eval()
        torch.jit.script(module).save(os.path.join(args.out_dir, name + ".pt"))
        lines.append(f"{name} {width} {expect} {reason}".rstrip())
        if args.onnx and (name in ONNX_MODELS or name.startswith("random_mlp_")):
            onnx_dir = os.path.join(args.out_dir, "onnx")
            os.makedirs(onnx_dir, exist_ok=True)
            torch.jit.script(module).save(os.path.join(onnx_dir, name + ".pt"))
            good = export_onnx(onnx_dir, name, module, width)
            if name == "mlp":
                export_hostile_onnx(onnx_dir, good)
    with open(os.path.join(args.out_dir, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
