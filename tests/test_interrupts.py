"""A Ctrl-C that library code swallows still stops a resumable run at its next safe point."""

from __future__ import annotations

import os
import signal

import pytest

from coda_agent.interrupts import honour_interrupt, remembered_interrupts


def _swallowed_sigint() -> None:
    """What a C extension's import does with an interrupt that lands in it: clears it."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
    except KeyboardInterrupt:
        pass


def test_a_swallowed_interrupt_is_raised_again_at_the_next_safe_point():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), remembered_interrupts():
        honour_interrupt()  # nothing pending: no effect
        _swallowed_sigint()
        honour_interrupt()
        pytest.fail("the remembered interrupt was not raised")
    assert signal.getsignal(signal.SIGINT) is before
    honour_interrupt()  # the run is over: nothing is left pending


def test_nested_blocks_keep_the_interrupt_for_the_outer_one():
    with pytest.raises(KeyboardInterrupt), remembered_interrupts():
        with remembered_interrupts():
            _swallowed_sigint()
        honour_interrupt()
