#!/usr/bin/env python3
"""Independent TensorBoard event file reader (struct only: no TensorFlow, tensorboard or protobuf),
used by tests/test_tensorboard.cpp to check the files ethos writes.

Usage: read_tfevents.py FILE
Checks each TFRecord's framing (u64 length, masked CRC-32C of the length, data, masked CRC-32C
of the data), decodes each Event with the protobuf wire format and prints JSON:
  {"file_version": str, "scalars": [{"tag", "step", "value", "wall_time"}...]}
Exits 1 with a message on a malformed file.
"""
import json
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def varint(buf, i):
    shift = value = 0
    while True:
        if i >= len(buf):
            fail("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def fields(buf):
    """(field number, wire type, value) of a message: ints for varints, bytes for the rest."""
    i = 0
    out = []
    while i < len(buf):
        key, i = varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(buf, i)
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            fail("unsupported wire type %d" % wire)
        out.append((field, wire, v))
    return out


def main():
    data = open(sys.argv[1], "rb").read()
    i = 0
    version = None
    scalars = []
    while i < len(data):
        if i + 12 > len(data):
            fail("truncated record header at byte %d" % i)
        header = data[i:i + 8]
        (length,) = struct.unpack("<Q", header)
        (crc,) = struct.unpack("<I", data[i + 8:i + 12])
        if crc != masked(header):
            fail("bad length CRC at byte %d" % i)
        body = data[i + 12:i + 12 + length]
        (crc,) = struct.unpack("<I", data[i + 12 + length:i + 16 + length])
        if len(body) != length or crc != masked(body):
            fail("bad data CRC at byte %d" % i)
        i += 16 + length
        wall, step, summary = 0.0, 0, None
        for field, wire, v in fields(body):
            if field == 1 and wire == 1:
                (wall,) = struct.unpack("<d", v)
            elif field == 2 and wire == 0:
                step = v
            elif field == 3 and wire == 2:
                version = v.decode()
            elif field == 5 and wire == 2:
                summary = v
        if summary is None:
            continue
        for field, wire, value in fields(summary):
            if field != 1:
                continue
            tag, number = None, None
            for f, w, v in fields(value):
                if f == 1 and w == 2:
                    tag = v.decode()
                elif f == 2 and w == 5:
                    (number,) = struct.unpack("<f", v)
            scalars.append({"tag": tag, "step": step, "value": number, "wall_time": wall})
    print(json.dumps({"file_version": version, "scalars": scalars}))


if __name__ == "__main__":
    main()
