"""Exceptions raised by the transport."""

from __future__ import annotations

import errno as errno_codes
import os
from dataclasses import dataclass

from netlink_nft._batch import Message


class NftError(Exception):
    """Base class of netlink_nft errors."""


class BatchTooLarge(NftError):
    """The encoded batch does not fit in one netlink datagram of this socket; nothing was sent."""


class OutcomeUnknown(NftError):
    """The kernel's answer to a transaction could not be read completely (re-read the state to find out)."""


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
