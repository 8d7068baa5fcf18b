#!/usr/bin/env python3
"""Seeds fuzz/corpus/decode_pgoutput from the captured pgoutput fixtures.

Each seed is the selector byte the target reads first (bit 2: streaming_parallel,
bit 3: inside a stream block) followed by one captured frame.
"""
import glob
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "decode_pgoutput")
DATA = os.path.join(HERE, "..", "crates", "dbmazz", "src", "decode", "testdata")

os.makedirs(OUT, exist_ok=True)
count = 0
for path in sorted(glob.glob(os.path.join(DATA, "*.hex"))):
    name = os.path.basename(path)
    lines = [l for l in open(path).read().split("\n") if l and not l.startswith("#")]
    in_stream = False
    for index, line in enumerate(lines):
        frame = bytes.fromhex(line)
        selector = 0x04 if name.startswith("pg18") else 0
        if in_stream:
            selector |= 0x08
        in_stream = frame[:1] == b"S" or (in_stream and frame[:1] != b"E")
        with open(os.path.join(OUT, f"{name}-{index}"), "wb") as seed:
            seed.write(bytes([selector]) + frame)
        count += 1
print(f"{count} seeds in {OUT}")
