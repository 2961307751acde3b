#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/: small, hand-made, valid (and a few nearly valid)
inputs in each target's input format (see the comment at the top of each fuzz/<target>_fuzz.cpp). Recorded
market data is never copied into the repository; scripts/fuzz.sh adds excerpts of it at run time when the
workspace has it. The weights seed needs torch (python3-torch). Deterministic: rerunning rewrites the same files.

  fuzz/make_seeds.py            # all targets
  fuzz/make_seeds.py moldudp64  # only those named
"""
import io
import json
import os
import struct
import sys
import zipfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def split2(first, second):
    first = first.encode() if isinstance(first, str) else first
    second = second.encode() if isinstance(second, str) else second
    return struct.pack("<H", len(first)) + first + second


LOBSTER_MESSAGES = ("34200.000000001,1,10,100,1000000,1\n"
                    "34200.5,1,11,50,1000100,1\n"
                    "34201,1,12,30,1000300,-1\n"
                    "34201.25,4,11,20,1000100,1\n"
                    "34202,3,12,30,1000300,-1\n"
                    "34203,5,0,10,1000200,-1\n"
                    "34204,7,-1,0,-1,-1\n")
LOBSTER_BOOK = ("9999999999,0,1000000,100\n"
                "9999999999,0,1000100,50\n"
                "1000300,30,1000100,50\n"
                "1000300,30,1000100,30\n"
                "9999999999,0,1000100,30\n"
                "9999999999,0,1000100,30\n"
                "9999999999,0,1000100,30\n")


def lobster():
    write("lobster", "messages_stop", b"\x00" + LOBSTER_MESSAGES.encode())
    write("lobster", "messages_skip_blocks", b"\x05" + LOBSTER_MESSAGES.encode())
    write("lobster", "with_book", b"\x02" + split2(LOBSTER_MESSAGES, LOBSTER_BOOK))
    write("lobster", "with_book_skip", b"\x03" + split2(LOBSTER_MESSAGES, LOBSTER_BOOK.replace("30\n", "3x\n", 1)))
    write("lobster", "bad_lines", b"\x01" + b"34200,1,10,100,1000000,2\n34199,9,1,1,1,1\n34300,1,1\n")


TRADES = ("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
          "binance-futures,BTCUSDT,1582329602111000,1582329602115000,42377944,buy,9682,0.132\n"
          "binance-futures,BTCUSDT,1582329602112000,1582329602116000,42377945,sell,9681.92,0.003\n"
          "binance-futures,ETHUSDT,1582329602113000,1582329602117000,7,unknown,265.5,1\n")
QUOTES = ("exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount\n"
          "binance-futures,BTCUSDT,1582329602111000,1582329602115000,1.5,9682.01,9682,2.25\n"
          "binance-futures,BTCUSDT,1582329602112000,1582329602116000,,,9681.5,0.5\n")


def tardis():
    write("tardis", "trades", b"\x00" + TRADES.encode())
    write("tardis", "trades_local_skip", b"\x03" + TRADES.encode())
    write("tardis", "quotes", b"\x00" + QUOTES.encode())
    write("tardis", "quotes_decimals", bytes([0x80 | (4 << 2)]) + QUOTES.encode())
    write("tardis", "bad_values", b"\x01" + (TRADES + "binance-futures,BTCUSDT,1,1,1,left,1e5,0.000000001\n").encode())


def itch_msg(body):
    return struct.pack(">H", len(body)) + body


def itch_head(kind, locate, ts):
    return kind + struct.pack(">HH", locate, 0) + ts.to_bytes(6, "big")


def itch():
    ts = 34_200_000_000_000
    msgs = [
        itch_head(b"S", 0, ts) + b"O",
        itch_head(b"R", 1, ts) + b"AAPL    " + b"Q" + b"N" + struct.pack(">I", 100) + b"N" + b"C" + b"Z " + b"P"
        + b"N" + b"N" + b"1" + b"N" + struct.pack(">I", 0) + b"N",
        itch_head(b"H", 1, ts + 1) + b"AAPL    " + b"T" + b" " + b"    ",
        itch_head(b"A", 1, ts + 2) + struct.pack(">QcI", 10, b"B", 100) + b"AAPL    " + struct.pack(">I", 1_000_000),
        itch_head(b"F", 1, ts + 3) + struct.pack(">QcI", 11, b"S", 50) + b"AAPL    " + struct.pack(">I", 1_000_100)
        + b"MPID",
        itch_head(b"E", 1, ts + 4) + struct.pack(">QIQ", 10, 20, 1),
        itch_head(b"C", 1, ts + 5) + struct.pack(">QIQcI", 10, 10, 2, b"Y", 1_000_000),
        itch_head(b"X", 1, ts + 6) + struct.pack(">QI", 10, 5),
        itch_head(b"U", 1, ts + 7) + struct.pack(">QQII", 11, 12, 40, 1_000_200),
        itch_head(b"D", 1, ts + 8) + struct.pack(">Q", 12),
        itch_head(b"P", 1, ts + 9) + struct.pack(">QcI", 0, b"B", 10) + b"AAPL    " + struct.pack(">IQ", 1_000_050, 3),
        itch_head(b"Q", 1, ts + 10) + struct.pack(">Q", 100) + b"AAPL    " + struct.pack(">IQ", 1_000_000, 4) + b"O",
        itch_head(b"S", 0, ts + 11) + b"C",
    ]
    data = b"".join(itch_msg(m) for m in msgs)
    write("itch", "session", b"\x00" + data)
    write("itch", "session_skip_blocks", b"\x03" + data)
    write("itch", "truncated", b"\x01" + data[:-5])
    write("itch", "bad_length", b"\x01" + struct.pack(">H", 7) + msgs[0] + data)


def crc32c(data, crc=0):
    """CRC32C (Castagnoli, reflected 0x82F63B78), as the capture format checks it."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def capture_file(events, symbols, *, count=None, levels=0, flags=0, block=1024):
    """A version-2 capture (lib/include/tickinfer/feed/capture.hpp): header, symbol table, records, then one
    CRC32C per block of `block` records; header_crc covers the header and table with that field zeroed."""
    header_bytes = 64 + 64 * len(symbols)

    def head(crc):
        return b"TICKCAP\x00" + struct.pack("<IIQIIIIII", 2, 80, len(events) if count is None else count,
                                            len(symbols), header_bytes, levels, flags, block, crc) + b"\x00" * 16

    table = b"".join(struct.pack("<IIqq", i, 0, ps, qs) + name.encode().ljust(40, b"\x00")
                     for i, (name, ps, qs) in enumerate(symbols))
    crc = crc32c(head(0) + table)
    records = [struct.pack("<qQQqqqqqqIBBBB", *e) for e in events]
    blocks = b"".join(struct.pack("<I", crc32c(b"".join(records[i:i + block])))
                      for i in range(0, len(records), block))
    return head(crc) + table + b"".join(records) + blocks


def capture():
    events = [(34_200_000_000_000 + i, 10 + i, 0, 1_000_000 + i, 100, 0, 0, 0, 0, i % 2, 1 + i % 5, 1 + i % 2, 0, 0)
              for i in range(3)]
    symbols = [("AMZN", 10_000, 1), ("BTCUSDT", 100_000_000, 100_000_000)]
    write("capture", "two_symbols", capture_file(events, symbols))
    write("capture", "empty", capture_file([], []))
    write("capture", "unfinished", capture_file(events[:1], symbols[:1], count=2**64 - 1))


def zips():
    def archive(members):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, text in members:
                info = zipfile.ZipInfo(name, date_time=(2012, 6, 21, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, text)
        return buf.getvalue()

    write("zip", "lobster_sample", archive([("AMZN_2012-06-21_34200000_57600000_message_1.csv", LOBSTER_MESSAGES),
                                            ("AMZN_2012-06-21_34200000_57600000_orderbook_1.csv", LOBSTER_BOOK)]))
    write("zip", "messages_only", archive([("GOOG_2012-06-21_34200000_57600000_message_10.csv", LOBSTER_MESSAGES)]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo("readme.txt", date_time=(2012, 6, 21, 0, 0, 0)), "stored, not deflated\n")
    write("zip", "stored", buf.getvalue())


FEATURES = """[[features]]
name = "spread_bps"
kind = "spread"
unit = "bps"
zscore = { mean = 1.5, std = 1.0 }
clip = [-5.0, 5.0]

[[features]]
name = "imbalance_5"
kind = "imbalance"
levels = 5

[[features]]
name = "ofi_10"
kind = "ofi"
events = 10

[[features]]
name = "trade_flow_1s"
kind = "trade_flow"
window_us = 1_000_000
capacity = 1024

[[features]]
name = "return_1s"
kind = "return"
window_us = 1_000_000
capacity = 64
"""


def feature_config():
    write("feature_config", "several", FEATURES)
    write("feature_config", "one", '[[features]]\nname = "mid"\nkind = "mid"\n')
    write("feature_config", "microprice", '[[features]]\nname = "m"\nkind = "microprice"\nunit = "bps"\n')
    write("feature_config", "unknown_kind", '[[features]]\nname = "x"\nkind = "vwap"\n')


def metadata():
    meta = {"format_version": 1, "name": "mlp", "version": 3, "input_names": ["a", "b"], "output_names": ["y"],
            "feature_schema_hash": "fnv1a64:0123456789abcdef",
            "golden": {"inputs": [[0.5, -1.25], [0.0, 2.0]], "outputs": [[0.125], [-0.75]]}}
    write("metadata", "full", json.dumps(meta))
    write("metadata", "minimal", json.dumps({k: meta[k] for k in ("format_version", "name", "input_names",
                                                                    "output_names")}))
    write("metadata", "truncated", json.dumps(meta)[:40])


def weights():
    try:
        import torch
    except ImportError:
        print("make_seeds: no torch: weights seeds not rewritten", file=sys.stderr)
        return
    torch.manual_seed(0)
    for name, value in [("dict", {"0.weight": torch.randn(2, 3), "0.bias": torch.zeros(2)}),
                        ("not_a_dict", [torch.ones(1)]),
                        ("non_tensor", {"w": 1.5})]:
        buf = io.BytesIO()
        torch.save(value, buf)
        write("weights", name, buf.getvalue())


def http():
    head = "Host: localhost\r\n"
    write("http", "get_metrics", "GET /metrics HTTP/1.1\r\n" + head + "\r\n")
    write("http", "get_model", "GET /v2/models/m?x=1 HTTP/1.1\r\n" + head + "\r\n")
    write("http", "get_versions_encoded", "GET /v2/models/%6d/versions HTTP/1.1\r\n" + head + "\r\n")
    write("http", "get_ready_http10", "GET /v2/health/ready HTTP/1.0\r\n\r\n")
    write("http", "post_pin_token", "POST /v2/models/m/pin/3 HTTP/1.1\r\n" + head +
          "Authorization: Bearer fuzz-token\r\nContent-Length: 0\r\n\r\n")
    write("http", "post_reload_wrong_token", "POST /v2/models/m/reload/7 HTTP/1.1\r\n" + head +
          "Authorization: bearer fuzz-tokem\r\nContent-Length: 2\r\n\r\n{}")
    write("http", "post_chunked", "POST /v2/models/m/unpin HTTP/1.1\r\n" + head +
          "Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n")
    write("http", "wrong_method", "DELETE /v2/health/live HTTP/1.1\r\n" + head + "\r\n")
    write("http", "bad_field", "GET / HTTP/1.1\r\nno colon\r\n\r\n")


def mold_packet(session, sequence, messages, count=None):
    """A MoldUDP64 downstream packet: session (10 bytes), sequence (u64 BE), count (u16 BE), blocks."""
    head = session.ljust(10, b" ") + struct.pack(">QH", sequence, len(messages) if count is None else count)
    return head + b"".join(struct.pack(">H", len(m)) + m for m in messages)


def mold_input(flags, datagrams):
    """fuzz/moldudp64_fuzz.cpp's input: flags byte, then each datagram as a 2-byte LE length + its bytes."""
    return bytes([flags]) + b"".join(struct.pack("<H", len(d)) + d for d in datagrams)


def moldudp64():
    ts = 34_200_000_000_000
    msgs = [itch_head(b"S", 0, ts) + b"O",
            itch_head(b"X", 1, ts + 1) + struct.pack(">QI", 10, 5),
            itch_head(b"D", 1, ts + 2) + struct.pack(">Q", 12),
            itch_head(b"E", 1, ts + 3) + struct.pack(">QIQ", 10, 20, 1),
            itch_head(b"S", 0, ts + 4) + b"C"]
    s = b"NASDAQ01"
    write("moldudp64", "in_sequence", mold_input(1, [mold_packet(s, 1, []), mold_packet(s, 1, msgs[:3]),
                                                     mold_packet(s, 4, msgs[3:]), mold_packet(s, 6, [], 0xFFFF)]))
    write("moldudp64", "gap_duplicate_overlap",
          mold_input(1, [mold_packet(s, 1, msgs[:2]), mold_packet(s, 5, msgs[:2]), mold_packet(s, 5, msgs[:2]),
                         mold_packet(s, 4, msgs[:4]), mold_packet(s, 12, []), mold_packet(b"NASDAQ02", 1, msgs[:1])]))
    write("moldudp64", "malformed_then_valid",
          mold_input(1, [mold_packet(s, 1, msgs[:2], count=3),             # count past the blocks
                         mold_packet(s, 1, msgs[:2])[:-4],                  # block overrun
                         mold_packet(s, 1, msgs[:2]) + b"\x00",             # trailing byte
                         mold_packet(s, 1, [msgs[0], b"", msgs[1]]),         # zero-length message
                         mold_packet(s, 0, msgs[:1]),                       # sequence 0
                         b"\x01" + mold_packet(s, 1, msgs[:1])[1:],         # session byte not printable
                         mold_packet(s, 1, [])[:13],                        # short header
                         mold_packet(s, 1, msgs)]))
    write("moldudp64", "join_mid_stream", mold_input(0, [mold_packet(s, 1000, msgs[:2]), mold_packet(s, 1001, msgs),
                                                         mold_packet(s, 999, msgs[:1])]))


TARGETS = {"lobster": lobster, "tardis": tardis, "itch": itch, "moldudp64": moldudp64, "capture": capture,
           "zip": zips, "feature_config": feature_config, "metadata": metadata, "weights": weights, "http": http}

if __name__ == "__main__":
    for name in sys.argv[1:] or TARGETS:
        TARGETS[name]()
