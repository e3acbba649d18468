"""Keep a child's output bounded: its head and its tail, in memory, whatever it prints.

A command such as ``yes`` writes a gigabyte in seconds; nothing of it goes to disk and at most
``head_bytes + tail_bytes`` stay in memory. The text shown says how much was cut.
"""

from __future__ import annotations

MAX_OUTPUT_CHARS = 20_000


class BoundedOutput:
    """The first and last ``limit // 2`` bytes of everything fed to it, and the total count."""

    def __init__(self, limit: int = MAX_OUTPUT_CHARS) -> None:
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk[-self.half:]
            del self.tail[:-self.half]

    @property
    def cut(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        """All of it, or the head and the tail around a line saying how much was cut."""
        head = self.head.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        if not self.cut:
            return head + tail
        marker = f"\n... [{self.cut:,} bytes of output cut; the first and last {self.half:,} are shown] ...\n"
        return head + marker + tail

    def tail_text(self, chars: int) -> str:
        """The last ``chars`` characters (a failed job's error message wants the end, not the start)."""
        text = self.text()
        return text if len(text) <= chars else "..." + text[-chars:]
