"""Exceptions of netlink_nft: everything the library raises derives from `NftError`.

Invalid model values raise `InvalidValue` / `InvalidType` (also `ValueError` / `TypeError`). Operating-system
failures (socket, send, receive, entering a namespace) are re-raised as `NetlinkIOError`, which is also an
`OSError` with the same `errno`, so code that catches `OSError` keeps working.
"""

from __future__ import annotations

import errno as errno_codes
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netlink_nft._batch import Message


class NftError(Exception):
    """Base class of netlink_nft errors."""


class InvalidValue(NftError, ValueError):
    """A model value that cannot be built or encoded (a bad address, overlapping ranges, ...); also a
    `ValueError`."""


class InvalidType(NftError, TypeError):
    """A model value of the wrong kind (a concatenated key for a single-field set, ...); also a `TypeError`."""


class BatchTooLarge(NftError):
    """The encoded batch does not fit in one netlink datagram of this socket; nothing was sent."""


class OutcomeUnknown(NftError):
    """The kernel's answer to a transaction could not be read completely (re-read the state to find out)."""


class NetlinkIOError(NftError, OSError):
    """A system call on the netlink socket or on a namespace file failed (`errno` as the call reported it)."""


class NamespaceNotFound(NetlinkIOError, FileNotFoundError):
    """The network namespace path does not exist (it is never created)."""


class RequestError(NetlinkIOError):
    """The kernel answered a GET request with an error (`errno`, e.g. ENOENT for a missing table)."""


class DumpInterrupted(NftError):
    """Every attempt to read a table consistently was interrupted by a concurrent writer."""


class KernelTooOld(NftError):
    """The kernel lacks nf_tables features the rulesets need (see `netlink_nft.KERNEL_FLOOR`)."""


def io_error(exc: OSError, context: str) -> NetlinkIOError:
    """`exc` as a `NetlinkIOError` (a `NamespaceNotFound` for a missing file), saying what was being done."""
    code = exc.errno or errno_codes.EIO
    text = f"{context}: {os.strerror(code)}"
    if isinstance(exc, FileNotFoundError):
        return NamespaceNotFound(code, text)
    return NetlinkIOError(code, text)


@dataclass(frozen=True)
class MessageError:
    """One message the kernel rejected. `message` is None for a batch-level error (BATCH_BEGIN)."""

    message: Message | None
    errno: int
    offset: int | None  # byte offset of the offending attribute from the start of the message (extended ack)

    def __str__(self) -> str:
        where = self.message.describe() if self.message is not None else "batch"
        name = errno_codes.errorcode.get(self.errno, str(self.errno))
        at = f", attribute at offset {self.offset}" if self.offset is not None else ""
        return f"{where}: {name} ({os.strerror(self.errno)}){at}"


class TransactionError(NftError):
    """The kernel rejected the transaction: nothing of it was applied. `errors` lists every failing message."""

    def __init__(self, errors: tuple[MessageError, ...]) -> None:
        self.errors = errors
        lines = "\n  ".join(str(e) for e in errors)
        super().__init__(f"nf_tables transaction aborted, {len(errors)} failing message(s):\n  {lines}")

    @property
    def generation_changed(self) -> bool:
        """True if the batch was refused because the ruleset generation moved on (optimistic concurrency)."""
        return any(e.message is None and e.errno == errno_codes.ERESTART for e in self.errors)
