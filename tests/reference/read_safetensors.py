#!/usr/bin/env python3
"""Independent safetensors reader (json + struct only, no safetensors/torch) used by
tests/test_safetensors.cpp to check that files ethos writes follow the format.

Usage: read_safetensors.py FILE
Prints JSON: {"data_start": int, "metadata": {...}, "tensors": [{"name", "dtype", "shape",
"data_offsets", "values"}...]} with tensors in data-offset order and values flattened
(BF16/F16 widened to float, BOOL as true/false). Exits 1 with a message on a malformed file.
"""
import json
import struct
import sys

# dtype -> (element size, struct format character or None for BF16)
FORMATS = {
    "F64": (8, "d"), "F32": (4, "f"), "F16": (2, "e"), "BF16": (2, None),
    "I64": (8, "q"), "I32": (4, "i"), "I16": (2, "h"), "I8": (1, "b"),
    "U8": (1, "B"), "BOOL": (1, "?"),
}


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def decode(dtype, raw):
    size, fmt = FORMATS[dtype]
    count = len(raw) // size
    if fmt is None:  # bf16: the upper half of an IEEE float32
        halves = struct.unpack("<%dH" % count, raw)
        return [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in halves]
    return list(struct.unpack("<%d%s" % (count, fmt), raw))


def main():
    if len(sys.argv) != 2:
        fail("usage: read_safetensors.py FILE")
    blob = open(sys.argv[1], "rb").read()
    if len(blob) < 8:
        fail("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        fail("header length past end of file")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors = []
    for name, info in header.items():
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        numel = 1
        for d in shape:
            numel *= d
        if end - begin != numel * FORMATS[dtype][0] or end > len(data):
            fail("tensor %s: bad data_offsets" % name)
        tensors.append({"name": name, "dtype": dtype, "shape": shape, "data_offsets": [begin, end],
                        "values": decode(dtype, data[begin:end])})
    tensors.sort(key=lambda t: t["data_offsets"])
    covered = 0
    for t in tensors:
        if t["data_offsets"][0] != covered:
            fail("tensor %s does not start where the previous one ends" % t["name"])
        covered = t["data_offsets"][1]
    if covered != len(data):
        fail("data section not fully covered")
    print(json.dumps({"data_start": 8 + n, "metadata": metadata, "tensors": tensors}))


if __name__ == "__main__":
    main()
