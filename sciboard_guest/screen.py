"""Reading the screen without encoding: raw frames and settle detection.

The guest's own Xvfb (on the local desktop and in a VM) keeps its framebuffer in
a memory-mapped XWD file (``-fbdir``); a frame is a slice of that map. An X server
the guest attaches to (``--display``) is read with ``mss`` (XShmGetImage, shared
memory) where it is installed, else with XGetImage through python3-xlib.
"""

from __future__ import annotations

import mmap
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np

from sciboard_guest.protocol import FRAMEBUFFER


class Screen:
    """Grabs frames from one X display as (H, W, 3) uint8 RGB arrays."""

    def __init__(self, display: str, fbdir: Path | None, env: dict[str, str]):
        self._display = display
        self._map: mmap.mmap | None = None
        self._xlib = None
        self._mss: Any = None
        if fbdir is not None:
            self._open_fbdir(Path(fbdir) / FRAMEBUFFER.name)
        else:
            self._open_xlib(env)

    def _open_fbdir(self, path: Path) -> None:
        with open(path, "rb") as handle:
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        header = struct.unpack(">25I", self._map[:100])
        header_size, width, height, bits, bytes_per_line, ncolors = (
            header[0], header[4], header[5], header[11], header[12], header[19])
        if bits != 32:
            raise RuntimeError(f"unsupported framebuffer depth {bits} bpp in {path}")
        self.width, self.height = width, height
        self._offset = header_size + ncolors * 12
        self._stride = bytes_per_line

    def _open_xlib(self, env: dict[str, str]) -> None:
        import os

        from Xlib import display as xdisplay

        os.environ.setdefault("XAUTHORITY", env.get("XAUTHORITY", ""))
        connection = xdisplay.Display(self._display)
        self._xlib = connection
        root = connection.screen().root
        geometry = root.get_geometry()
        self._root = root
        self.width, self.height = geometry.width, geometry.height
        try:
            import mss
        except ImportError:  # the guest's Debian tree has no python3-mss: XGetImage then
            return
        self._mss = mss.MSS(display=self._display)
        self._region = {"left": 0, "top": 0, "width": self.width, "height": self.height}

    def raw_bgrx(self) -> bytes | bytearray:
        """The current frame as BGRX bytes (4 per pixel), row stride == width * 4."""
        if self._map is not None:
            end = self._offset + self._stride * self.height
            return self._map[self._offset:end]
        if self._mss is not None:
            return self._mss.grab(self._region).raw
        from Xlib import X

        image = self._root.get_image(0, 0, self.width, self.height, X.ZPixmap, 0xFFFFFFFF)
        return image.data

    def rgb(self) -> np.ndarray:
        """The current frame as an (H, W, 3) uint8 RGB array (one copy: straight out of the map when mapped)."""
        if self._map is not None:
            source: bytes | mmap.mmap = self._map
            view = np.frombuffer(source, np.uint8, count=self._stride * self.height, offset=self._offset)
        else:
            view = np.frombuffer(self.raw_bgrx(), np.uint8)
        frame = view.reshape(self.height, -1, 4)[:, : self.width]
        rgb = frame[:, :, 2::-1].copy()
        del view, frame  # release the map's buffer (an exported buffer would block close())
        return rgb

    def settle(self, quiet: float = 0.2, timeout: float = 3.0, interval: float = 0.03,
               first_change: float = 0.0) -> tuple[bool, float]:
        """Wait until frames stop changing for ``quiet`` seconds (bounded by ``timeout``).

        While no frame has changed yet, a quiet screen is trusted only after ``first_change``
        seconds (an app that draws an input's effect late). Returns (settled, seconds waited).
        """
        start = time.monotonic()
        previous = self.raw_bgrx()
        stable_since = start
        changed = False
        while True:
            time.sleep(interval)
            now = time.monotonic()
            current = self.raw_bgrx()
            if current != previous:
                previous, stable_since, changed = current, now, True
            elif now - stable_since >= (quiet if changed else max(quiet, first_change)):
                return True, now - start
            if now - start >= timeout:
                return False, now - start

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._mss is not None:
            self._mss.close()
            self._mss = None
        if self._xlib is not None:
            self._xlib.close()
            self._xlib = None
