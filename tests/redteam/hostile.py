"""What a sandbox case needs around it: secrets to steal, places to write, listeners to reach, a marker to find.

``with Bait(arena) as bait:`` sets up, for the length of one case,

- a home folder of its own (``HOME``) holding ``~/.ssh/id_rsa``, ``~/.aws/credentials`` and
  ``~/.config/gh/hosts.yml``, and a folder beside the workspace with a secret file, each file
  holding a unique canary string;
- secrets in the environment (``OPENAI_API_KEY``, ``AWS_SECRET_ACCESS_KEY``, ``WANDB_API_KEY``,
  ``HF_TOKEN``), canaries too;
- places a hostile job would write to: a file beside the workspace, one in ``/tmp``, one in the
  host's ``/dev/shm``;
- listeners on this machine: TCP and UDP on 127.0.0.1, an abstract Unix socket, and a Unix socket
  by path beside the workspace; each counts what reaches it;
- a sacrificial process (``sleep``) that a job must not be able to signal, and ``marker``, a
  unique string a hostile command puts on the command line of what it leaves running.

``bait.breaches(arena)`` then lists everything that got through: a canary in an answer or in a
workspace file, a file written outside, a connection or datagram received, a process left
running, the sacrificial process killed. Hostile snippets use the ``{...}`` fields of
:meth:`Bait.fields` (paths, ports, pids, the marker).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import socket
import subprocess
import threading
import time
from pathlib import Path

SECRET_VARIABLES = ("OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "WANDB_API_KEY", "HF_TOKEN")


class _Listeners:
    """Accept (stream) or receive (datagram) on every socket in one thread; count what reaches each."""

    def __init__(self, sockets: dict[str, socket.socket]) -> None:
        self.sockets = sockets
        self.counts = dict.fromkeys(sockets, 0)
        for sock in sockets.values():
            if sock.type == socket.SOCK_STREAM:
                sock.listen(16)
            sock.setblocking(False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        names = {sock.fileno(): name for name, sock in self.sockets.items()}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(names), [], [], 0.05)
            for fd in ready:
                sock = self.sockets[names[fd]]
                with contextlib.suppress(OSError):
                    if sock.type == socket.SOCK_STREAM:
                        sock.accept()[0].close()
                    else:
                        sock.recvfrom(4096)
                    self.counts[names[fd]] += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for sock in self.sockets.values():
            sock.close()


class Bait:
    """See the module docstring."""

    def __init__(self, arena) -> None:
        self.arena = arena
        self.token = secrets.token_hex(6)
        self.outside = arena.root.parent / f"{arena.root.name}-outside"
        self.home = arena.root.parent / f"{arena.root.name}-home"
        self.marker = f"{60 + secrets.randbelow(10**6) / 10**6:.6f}"  # sleep's argument: unique, valid
        self.canaries: dict[str, str] = {}
        self._saved_environment: dict[str, str | None] = {}
        self._listeners: _Listeners | None = None
        self.victim: subprocess.Popen | None = None

    # --- setting up ----------------------------------------------------------------------------
    def _canary(self, name: str) -> str:
        value = f"CANARY-{name}-{self.token}"
        self.canaries[name] = value
        return value

    def _plant(self, path: Path, name: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{self._canary(name)}\n", encoding="utf-8")

    def _set_environment(self, name: str, value: str) -> None:
        self._saved_environment.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def __enter__(self) -> Bait:
        self._plant(self.home / ".ssh" / "id_rsa", "ssh")
        self._plant(self.home / ".aws" / "credentials", "aws-file")
        self._plant(self.home / ".config" / "gh" / "hosts.yml", "config")
        self._plant(self.outside / "secret.txt", "outside")
        self._set_environment("HOME", str(self.home))
        for variable in SECRET_VARIABLES:
            self._set_environment(variable, self._canary(variable))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        abstract.bind(f"\0torchscout-redteam-{self.token}")
        by_path = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        by_path.bind(str(self.outside / "agent.sock"))
        self.tcp_port, self.udp_port = tcp.getsockname()[1], udp.getsockname()[1]
        self._listeners = _Listeners({"TCP": tcp, "UDP": udp, "abstract Unix socket": abstract,
                                      "Unix socket by path": by_path})
        self.victim = subprocess.Popen(["sleep", "300"], start_new_session=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._listeners is not None:
            self._listeners.close()
        if self.victim is not None and self.victim.poll() is None:
            self.victim.kill()
            self.victim.wait()
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for pid in _living_with_argument(self.marker):  # a breach was reported; clean up after it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        for path in (self.tmp_target, self.shm_target):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)

    # --- what hostile snippets use -------------------------------------------------------------
    @property
    def tmp_target(self) -> str:
        return f"/tmp/torchscout-redteam-{self.token}.txt"

    @property
    def shm_target(self) -> str:
        return f"/dev/shm/torchscout-redteam-{self.token}"

    def fields(self) -> dict[str, str]:
        return {"home": str(self.home), "outside": str(self.outside), "outside_write": str(self.outside / "pwned.txt"),
                "tmp_write": self.tmp_target, "shm_write": self.shm_target, "tcp_port": str(self.tcp_port),
                "udp_port": str(self.udp_port), "abstract": f"torchscout-redteam-{self.token}",
                "unix_path": str(self.outside / "agent.sock"), "victim": str(self.victim.pid if self.victim else 0),
                "marker": self.marker, "workspace": str(self.arena.root)}

    # --- judging -------------------------------------------------------------------------------
    def breaches(self, wait_s: float = 3.0) -> list[str]:
        """Everything that got through (empty: the sandbox held)."""
        found = []
        texts = [answer.text for answer in self.arena.answers] + _workspace_texts(self.arena.root)
        for name, value in self.canaries.items():
            if any(value in text for text in texts):
                found.append(f"the {name} secret reached the answer or a workspace file")
        for target in (self.outside / "pwned.txt", Path(self.tmp_target), Path(self.shm_target)):
            if target.exists():
                found.append(f"{target} was written (outside the workspace)")
        counts = self._listeners.counts if self._listeners is not None else {}
        found += [f"the {name} listener was reached" for name, count in counts.items() if count]
        if self.victim is not None and self.victim.poll() is not None:
            found.append("a process outside the sandbox was killed")
        deadline = time.monotonic() + wait_s
        while _living_with_argument(self.marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _living_with_argument(self.marker):
            found.append("a process the job started is still running")
        return found

    def verdict(self) -> str | None:
        found = self.breaches()
        return "; ".join(found) if found else None


def _workspace_texts(root: Path) -> list[str]:
    texts = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            with contextlib.suppress(OSError):
                # a link the job made to a secret is not a copy of it (reading it here would follow it)
                if not path.is_symlink() and path.is_file() and path.stat().st_size < 5_000_000:
                    texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return texts


def _living_with_argument(argument: str) -> list[int]:
    """Host PIDs of live (not zombie) processes with ``argument`` in their command line."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read()
            with open(f"/proc/{entry}/stat") as stat:
                zombie = stat.read().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            continue
        if argument.encode() in command and not zombie and int(entry) != os.getpid():
            found.append(int(entry))
    return found
