#!/usr/bin/python3
"""The REST peer: a TorchScript model served the way a Python project commonly deploys one (FastAPI + uvicorn),
speaking the same KServe v2 HTTP/JSON inference protocol as tickinfer's endpoint, for benchmarks against it
(scripts/bench_rest.sh, scripts/wrk_infer.lua).

  POST /v2/models/{m}/infer   {"id"?, "parameters"?, "inputs": [{"name": "features", "shape": [rows, width] | [width],
                              "datatype": "FP32", "data": flat row-major or nested}], "outputs"?: [{"name": "outputs"}]}
                              -> {"model_name", "model_version", "id"?, "outputs": [{"name": "outputs",
                                  "datatype": "FP32", "shape": [rows, out_width], "data": [...]}]}
                              400 {"error": reason} for a bad request, 404 for another model
  GET  /v2/health/ready       200 once the model is loaded (and warmed up); /v2/health/live: 200

The model is an archive written by scripts/export_model.py: its "tickinfer.json" extra file gives the name, the
version and the input and output widths. Usage:

  /usr/bin/python3 scripts/peer_rest.py --model build/models/mlp.pt --port 8000 [--host 127.0.0.1] [--workers 1]

Run it with /usr/bin/python3: Debian's python3-torch, python3-fastapi and uvicorn live there (another python3 may
be first on PATH). Each worker is a process with its own copy of the model; --torch-threads (default 1) bounds
each one's intra-op threads so that workers do not oversubscribe the cores.
"""

import argparse
import json
import math
import os
import socket
import sys
from typing import Any, List, Optional

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, StrictInt, StrictStr
from uvicorn.supervisors import Multiprocess

METADATA_FILE = "tickinfer.json"
INPUT_NAME = "features"  # as tickinfer's model metadata (GET /v2/models/{m}) names the tensors
OUTPUT_NAME = "outputs"
ENV = "TICKINFER_PEER_REST_CONFIG"  # the configuration, as JSON, for the worker processes


class InferInput(BaseModel):
    name: StrictStr
    shape: List[StrictInt]
    datatype: StrictStr
    data: List[Any]  # flat row-major numbers, or nested as the shape: torch.tensor checks the numbers
    parameters: Optional[dict] = None


class RequestedOutput(BaseModel):
    name: StrictStr
    parameters: Optional[dict] = None


class InferRequest(BaseModel):
    id: Optional[StrictStr] = None
    parameters: Optional[dict] = None
    inputs: List[InferInput]
    outputs: Optional[List[RequestedOutput]] = None


class BadRequest(Exception):
    pass


def load(path: str):
    extra = {METADATA_FILE: ""}
    model = torch.jit.load(path, map_location="cpu", _extra_files=extra)
    model.eval()
    meta = json.loads(extra[METADATA_FILE]) if extra[METADATA_FILE] else {}
    if not meta.get("input_names") or not meta.get("output_names"):
        sys.exit(f"peer_rest: {path} has no {METADATA_FILE} with input_names and output_names "
                 "(export it with scripts/export_model.py)")
    if meta.get("state_names"):
        sys.exit(f"peer_rest: {path} is a sequence model (state_names): only stateless models are served")
    return model, meta


def create_app() -> FastAPI:
    config = json.loads(os.environ[ENV])
    torch.set_num_threads(config["torch_threads"])
    model, meta = load(config["model"])
    name = meta.get("name", os.path.splitext(os.path.basename(config["model"]))[0])
    version = str(meta.get("version", 1))
    width = len(meta["input_names"])
    out_width = len(meta["output_names"])
    max_rows = config["max_rows"]
    with torch.inference_mode():  # warm-up: the first TorchScript call optimizes the graph
        for rows in (1, 1, 8):
            model(torch.zeros(rows, width))

    app = FastAPI(title="tickinfer REST peer", docs_url=None, redoc_url=None, openapi_url=None)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"error": message})

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError):  # pydantic's refusals: 400, as tickinfer
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
        if first.get("type") == "value_error.jsondecode":
            return error(400, f"malformed JSON: {first['msg']}")
        where = ".".join(str(part) for part in first["loc"] if part != "body")
        return error(400, f"{where}: {first['msg']}" if where else first["msg"])

    @app.get("/v2/health/live")
    async def live():
        return Response(status_code=200)

    @app.get("/v2/health/ready")
    async def ready():
        return Response(status_code=200)  # the app exists only once the model is loaded and warm

    def features(request: InferRequest) -> torch.Tensor:
        if len(request.inputs) != 1:
            raise BadRequest(f"expected exactly one input ('{INPUT_NAME}'), got {len(request.inputs)}")
        tensor = request.inputs[0]
        if tensor.name != INPUT_NAME:
            raise BadRequest(f"unknown input '{tensor.name[:64]}' (known: '{INPUT_NAME}')")
        if tensor.datatype != "FP32":
            raise BadRequest(f"input '{INPUT_NAME}' has datatype '{tensor.datatype[:64]}': only FP32 is supported")
        shape = tensor.shape
        if len(shape) not in (1, 2) or any(d < 0 for d in shape):
            raise BadRequest(f"input '{INPUT_NAME}' has shape {shape}: expected [rows, {width}] or [{width}]")
        rows = shape[0] if len(shape) == 2 else 1
        if shape[-1] != width:
            raise BadRequest(f"input '{INPUT_NAME}' has shape {shape}: width {shape[-1]}, the model's is {width}")
        if rows == 0:
            raise BadRequest(f"input '{INPUT_NAME}' has shape {shape}: zero rows")
        if rows > max_rows:
            raise BadRequest(f"input '{INPUT_NAME}' has {rows} rows, more than the limit of {max_rows}")
        try:
            x = torch.tensor(tensor.data, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as e:
            raise BadRequest(f"input '{INPUT_NAME}': data is not numbers nested as the shape: {e}")
        if x.dim() == 2:
            if len(shape) != 2 or tuple(x.shape) != (rows, width):
                raise BadRequest(f"input '{INPUT_NAME}': data of shape {list(x.shape)}, shape {shape}")
        elif x.dim() != 1 or x.numel() != rows * width:
            raise BadRequest(f"input '{INPUT_NAME}' has {x.numel()} values in data, shape {shape} "
                             f"needs {rows * width}")
        if not bool(torch.isfinite(x).all()):
            raise BadRequest(f"input '{INPUT_NAME}': data holds a number that is not a finite FP32 number")
        return x.reshape(rows, width)

    @app.post("/v2/models/{model_name}/infer")
    async def infer(model_name: str, request: InferRequest):
        # async: the forward runs on the event loop, one request at a time per worker, without a thread hop.
        if model_name != name:
            return error(404, f"unknown model '{model_name[:128]}' (serving '{name}')")
        try:
            x = features(request)
            for output in request.outputs or []:
                if output.name != OUTPUT_NAME:
                    raise BadRequest(f"unknown output '{output.name[:64]}' (known: '{OUTPUT_NAME}')")
        except BadRequest as e:
            return error(400, str(e))
        with torch.inference_mode():
            y = model(x)
        body = {"model_name": name, "model_version": version}
        if request.id is not None:
            body["id"] = request.id
        # float32 values as Python floats: the exact value, printed shortest for the double, reads back the same.
        data = y.reshape(-1).tolist()
        if not all(math.isfinite(v) for v in data):
            return error(500, "the model produced NaN or Inf")
        body["outputs"] = [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [x.shape[0], out_width],
                            "data": data}]
        return JSONResponse(content=body)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a TorchScript archive from scripts/export_model.py")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--max-rows", type=int, default=256, help="rows a request may carry (default 256)")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads per worker (default 1)")
    parser.add_argument("--access-log", action="store_true", help="log every request (off: it costs throughput)")
    args = parser.parse_args()
    if not os.path.isfile(args.model):
        sys.exit(f"peer_rest: no model file {args.model}")
    os.environ[ENV] = json.dumps({"model": os.path.abspath(args.model), "max_rows": args.max_rows,
                                  "torch_threads": args.torch_threads})
    # An import string and a factory, so that every worker process loads its own model.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    config = uvicorn.Config("peer_rest:create_app", factory=True, host=args.host, port=args.port,
                            workers=args.workers, access_log=args.access_log,
                            log_level="info" if args.access_log else "warning")
    server = uvicorn.Server(config)
    if args.workers == 1:
        server.run()  # asyncio binds from getaddrinfo: accepted sockets get TCP_NODELAY
        sys.exit(0 if server.started else 3)
    # The supervisor's own Config.bind_socket() leaves the socket's proto at 0, so asyncio never sets TCP_NODELAY
    # on the connections it accepts and every keep-alive request after the first waits ~40 ms for the client's
    # delayed ACK (Kludex/uvicorn#3149, open). Bind it as TCP here instead.
    family, kind, proto, _, address = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM,
                                                          proto=socket.IPPROTO_TCP)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    Multiprocess(config, target=server.run, sockets=[sock]).run()


if __name__ == "__main__":
    main()
