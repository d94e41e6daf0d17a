"""Regenerate the golden files: the batch messages `nft --debug=mnl -f` sends for each case of `cases.py`.

Run as root from the repository root:  .venv/bin/python -m tests.golden.netlink_nft.regenerate
Each `<case>.golden` holds one line per message between BATCH_BEGIN and BATCH_END: the nf_tables message type
and the hex of everything after the netlink header (nfgenmsg and attributes), rebuilt from libmnl's dump.
"""

from __future__ import annotations

import re
import struct
import subprocess
import tempfile
from pathlib import Path

from tests.golden.netlink_nft.cases import CASES
from tests.support.netns import throwaway_netns

HERE = Path(__file__).parent
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TYPE = re.compile(r"^\|\s*(\d+)\s*\|\s*[A-Z-]+\s*\|\s+\|\s+type \| flags")
_EXTRA = re.compile(r"^\|\s*((?:[0-9a-f]{2} ){3}[0-9a-f]{2})\s*\|\s+\|\s+extra header")
_ATTR = re.compile(r"^\|(\d{5})\|([N-])([B-])\|(\d{5})\|")
_DATA = re.compile(r"^\|\s*((?:[0-9a-f]{2} ){3}[0-9a-f]{2})\s*\|\s+\|\s+data")
BATCH_BEGIN, BATCH_END = 0x10, 0x11


def parse_mnl(dump: str) -> list[tuple[int, bytes]]:
    """(nlmsg type, payload after the 16-byte header) for each message libmnl printed."""
    messages: list[tuple[int, bytearray]] = []
    for raw in dump.splitlines():
        line = _ANSI.sub("", raw)
        if m := _TYPE.match(line):
            messages.append((int(m.group(1)), bytearray()))
        elif m := _EXTRA.match(line):
            messages[-1][1].extend(bytes.fromhex(m.group(1)))
        elif m := _ATTR.match(line):
            flags = (0x8000 if m.group(2) == "N" else 0) | (0x4000 if m.group(3) == "B" else 0)
            messages[-1][1].extend(struct.pack("=HH", int(m.group(1)), int(m.group(4)) | flags))
        elif m := _DATA.match(line):
            messages[-1][1].extend(bytes.fromhex(m.group(1)))
    return [(kind, bytes(payload)) for kind, payload in messages]


def batch_messages(dump: str) -> list[tuple[int, bytes]]:
    """The messages strictly inside the (last) batch: nft first sends cache requests outside it."""
    messages = parse_mnl(dump)
    begin = max(i for i, (kind, _) in enumerate(messages) if kind == BATCH_BEGIN)
    end = next(i for i, (kind, _) in enumerate(messages) if kind == BATCH_END and i > begin)
    return messages[begin + 1 : end]


def format_golden(messages: list[tuple[int, bytes]]) -> str:
    return "".join(f"{kind:#06x} {payload.hex()}\n" for kind, payload in messages)


def parse_golden(text: str) -> list[tuple[int, bytes]]:
    return [(int(kind, 16), bytes.fromhex(payload)) for kind, payload in (line.split() for line in text.splitlines())]


def main() -> None:
    for name, (_, text) in CASES.items():
        with throwaway_netns("nft-golden") as ns, tempfile.NamedTemporaryFile("w", suffix=".nft") as f:
            f.write(text)
            f.flush()
            proc = subprocess.run(
                ["ip", "netns", "exec", ns, "nft", "--debug=mnl", "-f", f.name],
                capture_output=True,
                text=True,
                check=True,
            )
        (HERE / f"{name}.golden").write_text(format_golden(batch_messages(proc.stdout + proc.stderr)))
        print(f"wrote {name}.golden")


if __name__ == "__main__":
    main()
