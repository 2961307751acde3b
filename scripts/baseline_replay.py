#!/usr/bin/env python3
"""The peer: how a team without tickinfer would deploy the same model on a LOBSTER feed.

Python reads the LOBSTER message and orderbook files line by line, computes the features of
configs/*.toml per event with the same definitions as tickinfer's C++ FeatureEngine (docs/REPLAY.md),
and calls the TorchScript model once per event (torch.jit.load, eval, no_grad). It reports events/s and
per-event latency and can write predictions in tickinfer-replay's CSV format.

Latency is measured as tickinfer-replay measures it: as fast as possible (--speed 0), from the line read to
the prediction; paced (--speed S: as recorded x S), from the event's scheduled arrival (the start plus its
recorded offset / S) to the prediction, so time spent behind on earlier events counts, as it does for
`tickinfer-replay --speed S`.

  baseline_replay.py --model M.pt --config configs/default.toml MESSAGE.csv [ORDERBOOK.csv]
      [--limit N] [--speed S] [--predictions P.csv] [--json REPORT.json]
  baseline_replay.py --write-schema SCHEMA.json --config configs/default.toml   # for export_model.py --schema

--write-schema needs no torch: it writes {"names", "hash", "canonical"} exactly as
`tickinfer-replay --write-schema` does (the hash is FNV-1a 64 over the canonical text).
"""

import argparse
import collections
import json
import os
import sys
import time
import tomllib

CANONICAL_HEADER = "tickinfer-features/1\n"
KINDS = ("mid", "spread", "microprice", "imbalance", "ofi", "trade_flow", "return")
WINDOWED = ("ofi", "trade_flow", "return")
DEFAULT_CAPACITY = 4096
LOBSTER_EMPTY_ASK = 9999999999
LOBSTER_EMPTY_BID = -9999999999
LOBSTER_PRICE_SCALE = 10000


class ConfigError(Exception):
    pass


# ---- the feature schema (mirrors lib/src/features/config.cpp and schema.cpp) ----

def parse_config(path):
    with open(path, "rb") as f:
        root = tomllib.load(f)
    for key in root:
        if key != "features":
            raise ConfigError(f"{path}: unknown top-level key '{key}' (known: features)")
    features = root.get("features")
    if not isinstance(features, list) or not features:
        raise ConfigError(f"{path}: no [[features]] (an array of tables) given")
    specs, seen = [], set()
    for i, table in enumerate(features):
        name = table.get("name")
        where = f"{path}: features[{i}] '{name if isinstance(name, str) else ''}'"
        if not isinstance(name, str):
            raise ConfigError(f"{where}: missing 'name' (a string)")
        kind = table.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{where}: unknown kind '{kind}' (known: {', '.join(KINDS)})")
        spec = {"name": name, "kind": kind, "levels": 1, "unit": "price", "events": 0, "window_ns": 0,
                "capacity": 0, "zscore": None, "clip": None}
        for key, value in table.items():
            if key in ("name", "kind"):
                continue
            if key == "zscore":
                spec["zscore"] = (float(value["mean"]), float(value["std"]))
            elif key == "clip":
                spec["clip"] = (float(value[0]), float(value[1]))
            elif key == "unit" and kind in ("spread", "microprice"):
                spec["unit"] = value
            elif key == "levels" and kind == "imbalance":
                spec["levels"] = int(value)
            elif key == "events" and kind in WINDOWED:
                spec["events"] = int(value)
            elif key == "window_us" and kind in WINDOWED:
                spec["window_ns"] = int(value) * 1000
            elif key == "capacity" and kind in WINDOWED:
                spec["capacity"] = int(value)
            else:
                raise ConfigError(f"{where}: key '{key}' is unknown or does not apply to kind '{kind}'")
        if kind in WINDOWED and spec["window_ns"] and not spec["capacity"]:
            spec["capacity"] = DEFAULT_CAPACITY
        if name in seen:
            raise ConfigError(f"{where}: duplicate name")
        seen.add(name)
        specs.append(spec)
    return specs


def canonical_line(s):
    kind = s["kind"]
    if kind in ("spread", "microprice"):
        params = "unit=" + s["unit"]
    elif kind == "imbalance":
        params = f"levels={s['levels']}"
    elif kind in WINDOWED:
        params = f"events={s['events']}" if s["events"] else f"window_ns={s['window_ns']},capacity={s['capacity']}"
    else:
        params = "-"
    z = "zscore=none" if s["zscore"] is None else "zscore=%.17g,%.17g" % s["zscore"]
    c = "clip=none" if s["clip"] is None else "clip=%.17g,%.17g" % s["clip"]
    return f"{s['name']}|{kind}|{params}|{z}|{c}"


def canonical_text(specs):
    return CANONICAL_HEADER + "".join(canonical_line(s) + "\n" for s in specs)


def fnv1a64(data: bytes) -> int:
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def schema_hash(specs):
    return "fnv1a64:%016x" % fnv1a64(canonical_text(specs).encode())


# ---- the features (mirrors lib/src/features/engine.cpp, operation for operation) ----

class FeatureEngine:
    def __init__(self, specs, price_scale, qty_scale):
        self.specs = specs
        self.price_scale = float(price_scale)
        self.qty_scale = float(qty_scale)
        self.rings = [collections.deque() for _ in specs]
        self.sums = [0] * len(specs)
        self.seen_top = False
        self.prev_two_sided = False
        self.bid = self.ask = self.bid_qty = self.ask_qty = 0

    def _sum(self, i, spec, ts, value):
        ring = self.rings[i]
        if spec["window_ns"]:
            while ring and ring[0][0] <= ts - spec["window_ns"]:
                self.sums[i] -= ring.popleft()[1]
            if len(ring) == spec["capacity"]:
                self.sums[i] -= ring.popleft()[1]
        elif len(ring) == spec["events"]:
            self.sums[i] -= ring.popleft()[1]
        ring.append((ts, value))
        self.sums[i] += value
        return self.sums[i]

    def _mid_then(self, i, spec, ts, mid):
        ring = self.rings[i]
        limit = spec["capacity"] if spec["window_ns"] else spec["events"] + 1
        if len(ring) == limit:
            ring.popleft()
        ring.append((ts, mid))
        if spec["window_ns"]:
            while len(ring) >= 2 and ring[1][0] <= ts - spec["window_ns"]:
                ring.popleft()
        return ring[0][1]

    def update(self, ts, bids, asks, signed_trade):
        """bids/asks: [(price, qty), ...] best first, after the event; signed_trade: + buyer-initiated."""
        two_sided = bool(bids) and bool(asks)
        ofi = 0
        if two_sided:
            (bid, bq), (ask, aq) = bids[0], asks[0]
            if self.prev_two_sided:
                if bid >= self.bid:
                    ofi += bq
                if bid <= self.bid:
                    ofi -= self.bid_qty
                if ask <= self.ask:
                    ofi -= aq
                if ask >= self.ask:
                    ofi += self.ask_qty
            self.bid, self.ask, self.bid_qty, self.ask_qty = bid, ask, bq, aq
            self.seen_top = True
        self.prev_two_sided = two_sided
        ps = self.price_scale
        mid = float(self.bid + self.ask) * 0.5 / ps if self.seen_top else 0.0
        out = []
        for i, s in enumerate(self.specs):
            kind = s["kind"]
            if kind == "mid":
                v = mid
            elif kind == "spread":
                v = float(self.ask - self.bid) / ps
                if s["unit"] == "bps":
                    v = v / mid * 1e4 if mid != 0.0 else 0.0
            elif kind == "microprice":
                total = self.bid_qty + self.ask_qty
                micro = ((float(self.bid) * float(self.ask_qty) + float(self.ask) * float(self.bid_qty))
                         / float(total) / ps) if total > 0 else mid
                v = micro
                if s["unit"] == "bps":
                    v = (micro - mid) / mid * 1e4 if mid != 0.0 else 0.0
            elif kind == "imbalance":
                b = sum(q for _, q in bids[:s["levels"]])
                a = sum(q for _, q in asks[:s["levels"]])
                v = float(b - a) / float(b + a) if b + a > 0 else 0.0
            elif kind == "ofi":
                v = float(self._sum(i, s, ts, ofi)) / self.qty_scale
            elif kind == "trade_flow":
                v = float(self._sum(i, s, ts, signed_trade)) / self.qty_scale
            else:  # return
                then = self._mid_then(i, s, ts, mid)
                v = (mid / then - 1.0) * 1e4 if then != 0.0 else 0.0
            if s["zscore"] is not None:
                v = (v - s["zscore"][0]) / s["zscore"][1]
            if s["clip"] is not None:
                v = min(max(v, s["clip"][0]), s["clip"][1])
            out.append(v)
        return out


# ---- LOBSTER ----

def parse_time_ns(text):
    whole, _, frac = text.partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


def book_from_row(fields):
    """LOBSTER row (ask price, ask size, bid price, bid size per level) -> (bids, asks), best first."""
    bids, asks = [], []
    for j in range(0, len(fields), 4):
        ap, aq, bp, bq = int(fields[j]), int(fields[j + 1]), int(fields[j + 2]), int(fields[j + 3])
        if ap != LOBSTER_EMPTY_ASK and len(asks) == j // 4:
            asks.append((ap, aq))
        if bp != LOBSTER_EMPTY_BID and len(bids) == j // 4:
            bids.append((bp, bq))
    return bids, asks


def signed_trade(msg_type, size, direction):
    # 4: a visible order was executed, 5: a hidden one; `direction` is the resting order's side, so the
    # aggressor is the other side.
    return -direction * size if msg_type in (4, 5) else 0


def orderbook_for(message_path):
    at = message_path.rfind("_message_")
    if at < 0:
        sys.exit(f"{message_path}: give the orderbook file too (no '_message_' in the name)")
    return message_path[:at] + "_orderbook_" + message_path[at + len("_message_"):]


def percentile(sorted_values, q):
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def replay(args):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    specs = parse_config(args.config)
    model = torch.jit.load(args.model).eval()
    engine = FeatureEngine(specs, LOBSTER_PRICE_SCALE, 1)
    orderbook = args.data[1] if len(args.data) > 1 else orderbook_for(args.data[0])
    latencies, rows = [], []
    n = 0
    inverse_speed = 1.0 / args.speed if args.speed > 0 else 0.0
    first_ts = None
    clock = time.perf_counter_ns
    start = clock()
    with open(args.data[0]) as messages, open(orderbook) as books, torch.no_grad():
        for msg_line, book_line in zip(messages, books):
            if args.limit and n >= args.limit:
                break
            t0 = clock()
            m = msg_line.rstrip("\n").split(",")
            ts = parse_time_ns(m[0])
            if inverse_speed:
                if first_ts is None:
                    first_ts, start = ts, clock()
                t0 = start + int((ts - first_ts) * inverse_speed)  # the scheduled arrival
                gap = t0 - clock()
                if gap > 5_000_000:  # as tickinfer-replay waits: busy, but for gaps over 5 ms, sleeping to 2 ms before
                    time.sleep((gap - 2_000_000) * 1e-9)
                while clock() < t0:
                    pass
            bids, asks = book_from_row(book_line.rstrip("\n").split(","))
            features = engine.update(ts, bids, asks, signed_trade(int(m[1]), int(m[3]), int(m[5])))
            x = torch.from_numpy(np.asarray(features, dtype=np.float32)).unsqueeze(0)
            y = model(x)[0].tolist()
            latencies.append(clock() - t0)
            if args.predictions:
                rows.append((n, ts, y))
            n += 1
    seconds = (clock() - start) * 1e-9
    lat = sorted(latencies)
    report = {
        "tool": "baseline_replay.py",
        "events": n,
        "seconds": seconds,
        "events_per_s": n / seconds if seconds > 0 else 0.0,
        "speed": args.speed,
        "latency_from": "scheduled arrival" if inverse_speed else "line read",
        "latency_ns": {"p50_ns": percentile(lat, 0.5), "p90_ns": percentile(lat, 0.9),
                       "p99_ns": percentile(lat, 0.99), "p999_ns": percentile(lat, 0.999),
                       "max_ns": lat[-1] if lat else 0},
        "schema_hash": schema_hash(specs),
    }
    if args.predictions:
        with open(args.predictions, "w") as f:
            f.write("index,ts_ns,status," + ",".join(f"y{k}" for k in range(len(rows[0][2]) if rows else 1)) + "\n")
            for i, ts, y in rows:
                f.write(f"{i},{ts},ok," + ",".join("%.9g" % v for v in y) + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    print(f"baseline_replay.py: {n} events in {seconds:.2f} s: {report['events_per_s']:.0f} events/s; "
          f"latency ({report['latency_from']} -> prediction) us: p50 {report['latency_ns']['p50_ns'] / 1e3:.1f}  "
          f"p99 {report['latency_ns']['p99_ns'] / 1e3:.1f}  max {report['latency_ns']['max_ns'] / 1e3:.1f}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="*", help="LOBSTER MESSAGE.csv [ORDERBOOK.csv]")
    parser.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "..", "configs", "default.toml"))
    parser.add_argument("--model", help="TorchScript archive")
    parser.add_argument("--limit", type=int, default=0, help="events to replay (0: all)")
    parser.add_argument("--speed", type=float, default=0.0,
                        help="0: as fast as possible; S: as recorded x S, latency from each event's scheduled arrival")
    parser.add_argument("--predictions", help="write predictions CSV (tickinfer-replay's format)")
    parser.add_argument("--json", help="write a JSON report")
    parser.add_argument("--write-schema", help="write the config's schema JSON {names, hash, canonical} and exit")
    args = parser.parse_args()
    try:
        if args.write_schema:
            specs = parse_config(args.config)
            with open(args.write_schema, "w") as f:
                json.dump({"names": [s["name"] for s in specs], "hash": schema_hash(specs),
                           "canonical": canonical_text(specs)}, f, indent=2)
            return 0
    except ConfigError as e:
        sys.exit(str(e))
    if not args.data or not args.model:
        parser.error("give the LOBSTER data and --model (or --write-schema)")
    return replay(args)


if __name__ == "__main__":
    sys.exit(main())
