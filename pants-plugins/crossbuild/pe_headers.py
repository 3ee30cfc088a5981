"""A small PE32+ header reader, enough to check a launcher's machine, subsystem and imports."""

from __future__ import annotations

import struct


def pe_facts(data: bytes) -> dict:
    """machine, timestamp, subsystem, imported DLLs, delay-import directory, debug entries
    ((type, TimeDateStamp) each) and section names of a PE32+ image."""
    if data[:2] != b"MZ":
        raise ValueError("not a PE image: no MZ header")
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe:pe + 4] != b"PE\0\0":
        raise ValueError("not a PE image: no PE signature")
    machine, nsections, timestamp, _, _, optional_size, _ = struct.unpack_from("<HHIIIHH", data, pe + 4)
    opt = pe + 24
    magic = struct.unpack_from("<H", data, opt)[0]
    if magic != 0x20B:
        raise ValueError(f"not a PE32+ image (optional header magic {magic:#x})")
    subsystem = struct.unpack_from("<H", data, opt + 68)[0]
    ndirs = struct.unpack_from("<I", data, opt + 108)[0]
    dirs = [struct.unpack_from("<II", data, opt + 112 + 8 * i) for i in range(ndirs)]
    sections = []
    for i in range(nsections):
        name, vsize, va, rawsize, rawptr = struct.unpack_from("<8sIIII", data, opt + optional_size + 40 * i)
        sections.append((name.rstrip(b"\0").decode(), vsize, va, rawsize, rawptr))

    def offset(rva: int) -> int:
        for _, vsize, va, rawsize, rawptr in sections:
            if va <= rva < va + max(vsize, rawsize):
                return rva - va + rawptr
        raise ValueError(f"rva {rva:#x} in no section")

    imports = []
    if dirs[1][0]:
        at = offset(dirs[1][0])
        while True:
            descriptor = struct.unpack_from("<5I", data, at)
            if not any(descriptor):
                break
            name_at = offset(descriptor[3])
            imports.append(data[name_at:data.index(b"\0", name_at)].decode())
            at += 20
    debug = []  # (type, TimeDateStamp) of each IMAGE_DEBUG_DIRECTORY entry
    if ndirs > 6 and dirs[6][0]:
        at = offset(dirs[6][0])
        for i in range(dirs[6][1] // 28):
            _, stamp, _, _, kind = struct.unpack_from("<IIHHI", data, at + 28 * i)
            debug.append((kind, stamp))
    return {
        "machine": machine, "timestamp": timestamp, "subsystem": subsystem, "imports": imports,
        "delay_imports": dirs[13] if ndirs > 13 else (0, 0), "debug": debug,
        "sections": [s[0] for s in sections],
    }
