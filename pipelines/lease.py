"""One writer per output: a lease file created atomically beside the output, renewed while the run lives.

The lease of ``<parent>/<name>`` (a dated partition ``ds=...`` or an undated output such as a model) is
``<parent>/_leases/<name>.lease``, a small JSON file: owner (the run's commit token), job, host, pid, start
and expiry. It is created with an exclusive create (``FS.create_exclusive``), so of two runs that
reach the same output and date the second fails at once, naming the holder. A live run renews its leases
every ``ttl / 3`` seconds; a dead run's lease can be taken over once it has expired, or at once when its
process is gone from this host. Takeover moves the expired file aside under a unique name first, so of
two runs taking over the same lease only one succeeds.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from typing import Any

from pipelines.errors import UserError
from pipelines.fs import FS

LEASE_DIR = "_leases"
DEFAULT_TTL_S = float(os.environ.get("PIPELINES_LEASE_TTL_S", 600))


class LeaseHeld(UserError):
    """Another run is writing the same output and date."""


def lease_path(target: str) -> str:
    parent, name = target.rstrip("/").rsplit("/", 1)
    return f"{parent}/{LEASE_DIR}/{name}.lease"


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _process_gone(holder: dict[str, Any]) -> bool:
    """The holder ran on this host and its process no longer exists (or is a zombie nobody has reaped yet:
    a killed job whose parent died too, in a container whose init does not reap)."""
    pid = holder.get("pid")
    if holder.get("host") != platform.node() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def describe(holder: dict[str, Any]) -> str:
    return (
        f"job {holder.get('job')} (run {str(holder.get('owner'))[:12]}, host {holder.get('host')}, "
        f"pid {holder.get('pid')}, since {_iso(holder.get('started', 0))}, "
        f"lease until {_iso(holder.get('expires', 0))})"
    )


class Lease:
    """The lease of one output target for one owner; ``acquire`` raises ``LeaseHeld`` when another run has it."""

    def __init__(self, fs: FS, target: str, owner: str, job: str, ttl_s: float = DEFAULT_TTL_S):
        self.fs, self.target, self.owner, self.job, self.ttl_s = fs, target, owner, job, ttl_s
        self.path = lease_path(target)
        self.started = time.time()
        self.held = False

    def _body(self) -> bytes:
        now = time.time()
        return json.dumps(
            {
                "owner": self.owner,
                "job": self.job,
                "target": self.target,
                "host": platform.node(),
                "pid": os.getpid(),
                "started": self.started,
                "expires": now + self.ttl_s,
            }
        ).encode("utf-8")

    def _read(self, path: str | None = None) -> dict[str, Any] | None:
        try:
            data = json.loads(self.fs.read_text(path or self.path))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else {}

    def acquire(self) -> None:
        for _ in range(3):
            if self.fs.create_exclusive(self.path, self._body()):
                self.held = True
                return
            holder = self._read()
            if holder is None:  # released between our create and read: try again
                continue
            if holder.get("owner") == self.owner:
                self.held = True
                return
            if time.time() < float(holder.get("expires", 0)) and not _process_gone(holder):
                raise LeaseHeld(
                    f"{self.target} is being written by {describe(holder)}; this run stops without touching it"
                )
            self._take_over(holder)
        raise LeaseHeld(f"{self.target}: could not take the lease {self.path} (other runs keep taking it)")

    def _take_over(self, expired: dict[str, Any]) -> None:
        """Move the dead run's lease aside; if what moved is not the lease we judged dead, put it back."""
        aside = f"{self.path}.{self.owner}.expired"
        try:
            self.fs.rename(self.path, aside)
        except OSError:
            return  # someone else moved it first
        if self._read(aside) != expired:
            self.fs.create_exclusive(self.path, self.fs.read_text(aside).encode("utf-8"))
        self.fs.delete(aside, recursive=False)

    def renew(self) -> None:
        """Push the expiry forward while this run still holds the lease."""
        if self.held and (self._read() or {}).get("owner") == self.owner:
            self.fs.write_bytes(self.path, self._body())

    def release(self) -> None:
        if self.held and (self._read() or {}).get("owner") == self.owner:
            self.fs.delete(self.path, recursive=False)
            self.fs.delete(self.path.rsplit("/", 1)[0], recursive=False)  # the lease directory, if empty
        self.held = False


class LeaseKeeper:
    """The leases of one run, renewed by a daemon thread until ``release_all``."""

    def __init__(self, fs: FS, owner: str, job: str, ttl_s: float = DEFAULT_TTL_S):
        self.fs, self.owner, self.job, self.ttl_s = fs, owner, job, ttl_s
        self.leases: dict[str, Lease] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, target: str) -> Lease:
        """Take the lease of ``target`` (once; re-entrant for this run)."""
        if target not in self.leases:
            lease = Lease(self.fs, target, self.owner, self.job, self.ttl_s)
            lease.acquire()
            self.leases[target] = lease
            self._start()
        return self.leases[target]

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._renew_loop, name="lease-renewal", daemon=True)
            self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            for lease in list(self.leases.values()):
                try:
                    lease.renew()
                except Exception:  # noqa: BLE001 - a failed renewal is retried on the next tick
                    pass

    def release_all(self) -> None:
        self._stop.set()
        for lease in self.leases.values():
            lease.release()
        self.leases.clear()
