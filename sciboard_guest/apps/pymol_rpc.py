"""Talking to one PyMOL's XML-RPC server (``pymol -R``) and validating what we send it.

PyMOL tries ports 9123-9127 and takes the first free one, so several desktops can
run PyMOL side by side; we find the port our PyMOL actually listens on through
``/proc`` (the listening sockets held by the app's processes) instead of guessing.
Every call goes to a fixed method name chosen by our code; arguments that come from
task files are checked here first.
"""

from __future__ import annotations

import http.client
import os
import re
import xmlrpc.client
from pathlib import Path
from typing import Any

from sciboard_guest.app_cpu import process_tree
from sciboard_guest.apps import AppError, BadArgument

NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
#: Selection expressions: words, numbers, operators, parentheses, PyMOL's /obj//chain/resi/name macros.
SELECTION_RE = re.compile(r"[A-Za-z0-9_ .+\-*()/:<>=']{1,200}")
#: The characters a PyMOL selection expression may not contain even inside the allowed set.
_FORBIDDEN = (";", "`", "\n", "\\", "\"")


def check_name(value: str, what: str = "name") -> str:
    """A PyMOL object or selection name (letters, digits, underscore; starts with a letter)."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise BadArgument(f"{what} must match {NAME_RE.pattern}, got {value!r}")
    return value


def check_selection(value: str) -> str:
    """A PyMOL selection expression from a small safe alphabet (no command separators, no quotes)."""
    if not isinstance(value, str) or not SELECTION_RE.fullmatch(value) or any(c in value for c in _FORBIDDEN):
        raise BadArgument(f"selection must match {SELECTION_RE.pattern}, got {value!r}")
    return value


class _Transport(xmlrpc.client.Transport):
    """An XML-RPC transport with a socket timeout, so a hung PyMOL cannot hang the guest."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        connection = super().make_connection(host)
        connection.timeout = self.timeout
        return connection


def proxy(port: int, timeout: float = 20.0) -> xmlrpc.client.ServerProxy:
    return xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/", transport=_Transport(timeout), allow_none=True)


def listening_ports(pids: list[int]) -> list[int]:
    """TCP ports on 127.0.0.1/any that sockets held by ``pids`` listen on."""
    inodes: set[str] = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            links = [os.readlink(fd) for fd in fd_dir.iterdir()]
        except OSError:
            continue
        inodes.update(link[8:-1] for link in links if link.startswith("socket:["))
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(set(ports))


def find_port(app_pid: int | None) -> int:
    """The XML-RPC port of the PyMOL started as ``app_pid`` (raises AppError when it has none yet)."""
    if app_pid is None:
        raise AppError("PyMOL is not running")
    # The Debian ``pymol`` wrapper runs python as a child: its ports are the tree's.
    ports = [p for p in listening_ports(process_tree(app_pid)) if 9123 <= p <= 9127]
    if not ports:
        raise AppError("PyMOL's XML-RPC server is not listening (all of ports 9123-9127 may be taken)")
    return ports[0]
