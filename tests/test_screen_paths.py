"""The three ways the guest reads a frame agree: its own Xvfb's memory map, and on an X server it
attaches to, mss (XShmGetImage) or python-xlib's XGetImage when mss is missing."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from sciboard_guest.protocol import FRAMEBUFFER
from sciboard_guest.screen import Screen

pytestmark = pytest.mark.desktop


@pytest.fixture()
def xvfb(tmp_path):
    """An Xvfb with a memory-mapped framebuffer and one red 200x100 window at (300, 200)."""
    from Xlib import X, display

    fbdir = tmp_path / FRAMEBUFFER.parent
    fbdir.mkdir()
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "640x480x24", "-fbdir", str(fbdir),
                             "-nolisten", "tcp"], pass_fds=(write_fd,), stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        name = f":{pipe.readline().strip()}"
    conn = display.Display(name)
    screen = conn.screen()
    red = screen.default_colormap.alloc_color(0xFFFF, 0, 0).pixel
    window = screen.root.create_window(300, 200, 200, 100, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
                                       background_pixel=red, override_redirect=True)
    window.map()
    conn.sync()
    time.sleep(0.3)
    yield name, fbdir
    conn.close()
    proc.terminate()
    proc.wait(timeout=10)


def test_mapped_mss_and_xlib_frames_are_the_same(xvfb, monkeypatch):
    name, fbdir = xvfb
    mapped = Screen(name, fbdir, {})
    with_mss = Screen(name, None, {})
    assert with_mss._mss is not None
    monkeypatch.setitem(sys.modules, "mss", None)  # as where mss is not installed: ``import mss`` raises ImportError
    with_xlib = Screen(name, None, {})
    assert with_xlib._mss is None
    frames = [s.rgb() for s in (mapped, with_mss, with_xlib)]
    for screen in (mapped, with_mss, with_xlib):
        screen.close()
    assert frames[0].shape == (480, 640, 3)
    assert (frames[0][250, 400] == [255, 0, 0]).all() and (frames[0][10, 10] != [255, 0, 0]).any()
    assert np.array_equal(frames[0], frames[1]) and np.array_equal(frames[0], frames[2])
