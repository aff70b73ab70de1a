#!/usr/bin/env python3
"""Flow flood: a SYN to a new port for each of N flows, then one real module exchange.

Writes a classic pcap (Ethernet, microseconds): N TCP SYNs from 10.x.y.z to 192.0.2.1, each
from its own address and port (no answer: a scan, or a SYN flood), one every microsecond,
then the packets of a real capture (captures/plaintext-proxy.pcap: the go command fetching two
modules from a plain-HTTP proxy), shifted to follow the flood. The capture must still give the
module exchanges, and modtrace's memory must stay bounded whatever N is.

  benches/flood.py OUT.pcap [--flows 1000000] [--tail captures/plaintext-proxy.pcap]
"""
import argparse
import struct
import sys


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn_frame(i: int) -> bytes:
    src = bytes([10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF])
    dst = bytes([192, 0, 2, 1])
    sport = 1024 + (i % 60000)
    tcp = struct.pack("!HHIIBBHHH", sport, 8080, i * 7919 & 0xFFFFFFFF, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip + tcp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--flows", type=int, default=1_000_000)
    ap.add_argument("--tail", default="captures/plaintext-proxy.pcap")
    a = ap.parse_args()
    with open(a.tail, "rb") as f:
        tail = f.read()
    magic = struct.unpack("<I", tail[:4])[0]
    if magic != 0xA1B2C3D4:
        sys.exit(f"{a.tail}: expected a little-endian microsecond pcap")
    linktype = struct.unpack("<I", tail[20:24])[0]
    if linktype != 1:
        sys.exit(f"{a.tail}: expected Ethernet framing")
    t0 = 1_700_000_000
    with open(a.out, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for i in range(a.flows):
            frame = syn_frame(i)
            sec, usec = t0 + i // 1_000_000, i % 1_000_000
            out.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
            out.write(frame)
        # The real exchange follows the flood, its own spacing kept.
        off, first, start = 24, None, t0 + a.flows // 1_000_000 + 1
        while off + 16 <= len(tail):
            sec, usec, incl, orig = struct.unpack("<IIII", tail[off : off + 16])
            t = sec * 1_000_000 + usec
            if first is None:
                first = t
            t = start * 1_000_000 + (t - first)
            out.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, incl, orig))
            out.write(tail[off + 16 : off + 16 + incl])
            off += 16 + incl
    return 0


if __name__ == "__main__":
    sys.exit(main())
