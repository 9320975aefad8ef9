"""The three ways the guest reads a frame agree: its own Xvfb's memory map, and on an X server it
attaches to, mss (XShmGetImage) or python-xlib's XGetImage when mss is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from sciboard_guest.screen import Screen

pytestmark = pytest.mark.desktop


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
