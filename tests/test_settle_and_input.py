"""Settle on DAMAGE events and typing through XTEST: the logic without a desktop, and on a live KAlgebra
the observation a step returns is the screen the user would see (no stale frames), and the non-ASCII
characters the tasks use are typed as written."""

from __future__ import annotations

import numpy as np
import pytest

from sciboard_guest import inputs
from sciboard_guest.a11y import MAX_ANSWERS, MIN_ANSWERS, Accessibility
from sciboard_guest.app_cpu import TreeCpu, process_tree
from sciboard_guest.settle import (
    COMPUTING_SHARE,
    BlinkFilter,
    ChangedFrames,
    Computing,
    changed_box,
    is_caret,
    wait_until_quiet,
)
from sciboard_gym import actions
from sciboard_gym.staleness import is_stale, same_but_a_caret
from sciboard_gym.tasks import load_app_tasks


class FakeDamage:
    """A clock and the times at which the X server reports drawing."""

    def __init__(self, damage_at: list[float]):
        self.now = 0.0
        self.pending = sorted(damage_at)

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        if self.pending and self.pending[0] <= self.now + seconds:
            self.now = max(self.now, self.pending.pop(0))
            return True
        self.now += seconds
        return False


@pytest.mark.parametrize("damage_at,first_change,expect", [
    ([], 0.0, 0.06),  # nothing drawn: one quiet window
    ([], 0.5, 0.5),  # nothing drawn: the app's first-change wait
    ([0.02, 0.04, 0.1], 0.0, 0.16),  # a quiet window after the last drawing
    ([0.3], 0.5, 0.36),  # a late first drawing within the first-change wait is waited for
    ([0.3], 0.0, 0.06),  # ... but not without it: a plain quiet window ends first
])
def test_settle_ends_a_quiet_window_after_the_last_drawing(damage_at, first_change, expect):
    fake = FakeDamage(damage_at)
    settled, waited = wait_until_quiet(fake.wait, 0.06, 3.0, first_change, clock=fake.clock)
    assert settled and waited == pytest.approx(expect)


def test_settle_gives_up_at_the_timeout_on_a_screen_that_keeps_drawing():
    fake = FakeDamage([0.01 * i for i in range(1, 1000)])
    settled, waited = wait_until_quiet(fake.wait, 0.06, 1.0, clock=fake.clock)
    assert not settled and waited == pytest.approx(1.0, abs=0.02)


def test_time_a_frozen_guest_lost_is_not_quiet_time():
    """A VM whose virtual CPU the host does not schedule for 2 s: the guest's clock jumps, nothing in the
    guest ran meanwhile, and the app draws the input's effect only afterwards. The settle waits for it."""
    fake = FakeDamage([2.1])

    def wait(seconds: float) -> bool:
        if fake.now < 0.05:  # the freeze hits the first wait
            fake.now += 2.0
            return False
        return fake.wait(seconds)

    settled, waited = wait_until_quiet(wait, 0.3, 5.0, clock=fake.clock)
    assert settled and waited == pytest.approx(2.1 + 0.3, abs=0.01)


class FakeApp:
    """An app on the accessibility bus whose n-th answer takes ``latencies[n]`` seconds of a fake clock
    (None: the call times out after 3 s; "left": it fails at once, the app has left the bus)."""

    def __init__(self, clock: list[float], latencies: list[float | None | str]):
        self.clock, self.latencies, self.tries = clock, latencies, 0

    def answers(self) -> bool:
        latency = self.latencies[min(self.tries, len(self.latencies) - 1)]
        self.tries += 1
        if latency == "left":  # refused at once: the app is no longer on the bus
            return False
        self.clock[0] += 3.0 if latency is None else latency
        return latency is not None


def _catching_up(monkeypatch, *latencies: list[float | None | str], deadline: float = 100.0):
    import sciboard_guest.a11y as a11y_module

    clock = [0.0]
    monkeypatch.setattr(a11y_module.time, "monotonic", lambda: clock[0])
    fakes = [FakeApp(clock, each) for each in latencies]
    a11y = Accessibility.__new__(Accessibility)  # no bus: only the waiting logic
    monkeypatch.setattr(a11y, "apps", lambda: fakes)
    return a11y.caught_up(deadline, prompt=0.05), [fake.tries for fake in fakes]


def test_an_idle_app_is_asked_a_few_times_in_a_row(monkeypatch):
    assert _catching_up(monkeypatch, [0.001], [0.001]) == (True, [MIN_ANSWERS, MIN_ANSWERS])


def test_an_app_busy_with_the_input_is_asked_again_until_it_answers_promptly(monkeypatch):
    """The first answer comes before the click's handler runs; the next ones wait for it."""
    assert _catching_up(monkeypatch, [0.001, 2.0, 2.0, 0.5, 0.001]) == (True, [5])


def test_an_app_that_is_always_busy_still_lets_the_step_end(monkeypatch):
    assert _catching_up(monkeypatch, [0.4]) == (True, [MAX_ANSWERS])


def test_catching_up_gives_up_at_the_deadline_on_an_app_that_never_answers(monkeypatch):
    assert _catching_up(monkeypatch, [None], deadline=10.0) == (False, [4])


def test_an_app_that_left_the_bus_is_not_waited_for(monkeypatch):
    """A step that quit the app: its calls fail at once, and the others are still asked."""
    assert _catching_up(monkeypatch, [0.0, "left"], [0.001]) == (True, [2, MIN_ANSWERS])


def test_a_blinking_caret_is_not_drawing():
    assert is_caret(1, 17) and is_caret(2, 30)
    assert not is_caret(9, 17) and not is_caret(1, 400) and not is_caret(120, 40)


def test_a_caret_blinking_in_place_is_a_blink_from_its_third_redraw():
    blinks = BlinkFilter()
    caret = (12, 1019, 10, 19)  # KAlgebra's input line: 10x19 px every 0.5 s
    assert [blinks.is_blink(caret, 0.5 * i) for i in range(1, 7)] == [False, False, True, True, True, True]


def test_a_caret_whose_whole_line_is_repainted_is_a_blink():
    blinks = BlinkFilter()
    line = (1538, 964, 378, 17)  # GRASS's wx console repaints the caret's line every 0.5 s
    assert [blinks.is_blink(line, 0.5 * i) for i in range(1, 6)] == [False, False, True, True, True]


def test_drawing_that_looks_like_a_caret_still_counts():
    blinks = BlinkFilter()
    # A typed character's echo: the same size, somewhere new each time.
    assert not any(blinks.is_blink((100 + 9 * i, 40, 9, 18), 0.3 * i) for i in range(8))
    # One spot redrawn in quick succession (a button pressed and released) is not a timer.
    assert not any(blinks.is_blink((500, 500, 14, 14), 5.0 + 0.05 * i) for i in range(6))
    # A keystroke repainting a blinking caret's line off the blink's beat.
    line = (1538, 964, 378, 17)
    assert [blinks.is_blink(line, t) for t in (8.0, 8.5, 9.0, 9.2)] == [False, False, True, False]
    # A caret that stood still long ago and is redrawn again starts over.
    for t in (10.0, 10.5, 11.0):
        blinks.is_blink((12, 1019, 10, 19), t)
    assert not blinks.is_blink((12, 1019, 10, 19), 20.0)
    # Areas taller than a text line are never blinks, however regular (Stellarium's idle frames).
    assert not any(blinks.is_blink((0, 19, 1920, 1061), 30 + 0.5 * i) for i in range(6))


def _frame(*boxes: tuple[int, int, int, int]) -> bytes:
    """A 64x48 frame of 4-byte pixels, black but for the white boxes (x, y, width, height)."""
    pixels = np.zeros((48, 64), dtype=np.uint32)
    for x, y, width, height in boxes:
        pixels[y:y + height, x:x + width] = 0xFFFFFF
    return pixels.tobytes()


def test_only_drawing_that_changes_the_frame_counts_for_an_app_that_redraws_on_a_timer():
    sky, ground_hidden = _frame(), _frame((0, 30, 64, 18))
    frames = iter([sky, sky, sky, ground_hidden, ground_hidden])
    reports = iter([True, True, True, True, False])  # four redraws reported, then none within the wait
    changed = ChangedFrames(lambda seconds: next(reports), lambda: next(frames), 64)  # the frame at the start: sky
    assert changed.wait(5.0) is True  # two unchanged redraws skipped, the third changed the frame
    assert changed.wait(5.0) is False  # an unchanged redraw, then quiet


def test_a_caret_blinking_in_a_repainted_editor_is_not_drawing():
    text = (4, 4, 20, 10)
    caret_on, caret_off = _frame(text, (25, 4, 2, 14)), _frame(text)
    typed = _frame(text, (25, 4, 6, 10), (32, 4, 2, 14))  # a character, the caret after it
    frames = iter([caret_on, caret_off, caret_on, caret_off, typed, typed])
    reports = iter([True, True, True, True, False])
    changed = ChangedFrames(lambda seconds: next(reports), lambda: next(frames), 64)
    assert changed.wait(5.0) is True  # three blinks skipped, then the typed character counts
    assert changed.wait(5.0) is False
    assert changed_box(caret_on, caret_off, 64) == (2, 14)
    assert changed_box(caret_off, typed, 64) == (9, 14) and changed_box(typed, typed, 64) is None


def test_an_app_computing_while_its_screen_is_quiet_is_not_settled():
    """A web view's renderer lays out a result for 80 ms (the screen quiet meanwhile), then draws it: the
    settle must not end in between, as the quiet window alone (0.04 s) would."""
    fake = FakeDamage([0.09])
    used = {"cpu": 0.0}

    def wait(seconds: float) -> bool:
        start = fake.now
        drawn = fake.wait(seconds)
        computing = max(min(fake.now, 0.08) - start, 0.0)  # the renderer runs from 0 to 0.08 s
        used["cpu"] += computing + 0.01 * COMPUTING_SHARE * (fake.now - start)  # plus an idle app's timers
        return drawn

    settled, waited = wait_until_quiet(Computing(wait, lambda: used["cpu"], clock=fake.clock).wait, 0.04, 3.0,
                                       clock=fake.clock)
    assert settled and waited == pytest.approx(0.13)
    assert wait_until_quiet(wait, 0.04, 3.0, clock=fake.clock)[1] == pytest.approx(0.04)  # without: too early


def test_the_cpu_condition_is_for_its_apps_on_a_fast_guest(monkeypatch):
    from sciboard_guest.apps import kalgebra, stellarium
    from sciboard_guest.server import watches_cpu

    monkeypatch.delenv("SCIBOARD_READY_SCALE", raising=False)
    assert watches_cpu(kalgebra.APP) and not watches_cpu(stellarium.APP) and not watches_cpu(None)
    monkeypatch.setenv("SCIBOARD_READY_SCALE", "6")  # a VM without KVM
    assert not watches_cpu(kalgebra.APP)


def test_an_apps_cpu_time_is_read_over_its_process_tree():
    import os
    import subprocess
    import sys
    import time

    busy = "import subprocess, sys; c = subprocess.Popen([sys.executable, '-c', 'while True: pass']); c.wait()"
    parent = subprocess.Popen([sys.executable, "-c", busy])
    try:
        deadline = time.monotonic() + 30
        while len(process_tree(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        cpu = TreeCpu(parent.pid)  # the parent waits, its child spins
        before = cpu()
        while cpu() - before < 0.1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(process_tree(parent.pid)) == 2 and cpu() - before >= 0.1
    finally:
        tree = process_tree(parent.pid)
        for pid in reversed(tree):
            subprocess.run(["kill", "-9", str(pid)], check=False)
        parent.wait()
    deadline = time.monotonic() + 30
    while any(os.path.exists(f"/proc/{pid}") for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.05)  # the orphaned child stays a zombie, its times readable, until init reaps it
    assert cpu() == 0.0  # gone processes count nothing


def test_a_staleness_check_ignores_only_a_caret_sliver():
    frame = np.zeros((120, 200, 3), np.uint8)
    caret, glyph, rule, two_carets = frame.copy(), frame.copy(), frame.copy(), frame.copy()
    caret[10:27, 67] = 255  # a caret blinking on (1 x 17 px)
    glyph[10:27, 67:71] = 255  # a typed character's echo
    rule[0:60, 5] = 255  # a line taller than a text line
    two_carets[10:27, 67] = two_carets[10:27, 150] = 255
    assert same_but_a_caret(frame, frame.copy()) and same_but_a_caret(frame, caret)
    assert not any(same_but_a_caret(frame, other) for other in (glyph, rule, two_carets))


def test_task_characters_have_keysyms():
    assert inputs.char_keysym("a") == ord("a")
    assert inputs.char_keysym("Å") == 0xC5 and inputs.char_keysym("°") == 0xB0  # Latin-1 keysyms
    assert inputs.char_keysym("λ") == 0x01000000 | ord("λ")  # beyond Latin-1: Unicode keysyms
    assert inputs.char_keysym("\t") == 0xFF09


class FakeDisplay:
    """An X connection with a tiny keyboard map that records XTEST input and remaps."""

    def __init__(self) -> None:
        self.display = type("D", (), {"info": type("I", (), {"min_keycode": 8, "max_keycode": 12})()})()
        self.map: dict[int, tuple[int, int]] = {8: (ord("a"), ord("A")), 9: (0xFFE1, 0), 10: (0xFF0D, 0),
                                                11: (0, 0), 12: (0, 0)}
        self.events: list[tuple[str, int]] = []

    def get_keyboard_mapping(self, first: int, count: int) -> list[tuple[int, int]]:
        return [self.map[code] for code in range(first, first + count)]

    def change_keyboard_mapping(self, first: int, keysyms: list[tuple[int, int]]) -> None:
        self.map[first] = keysyms[0]

    def sync(self) -> None:
        pass


def test_xtest_keyboard_binds_missing_characters_and_shifts_upper_level(monkeypatch):
    from Xlib import X
    from Xlib.ext import xtest

    fake = FakeDisplay()
    monkeypatch.setattr(xtest, "fake_input", lambda d, event, code: fake.events.append((event, code)))
    monkeypatch.setattr(inputs, "TYPE_DELAY", 0.0)
    keyboard = inputs.Keyboard(fake)
    keyboard.type("aAÅ\n")
    presses = [code for event, code in fake.events if event == X.KeyPress]
    bound = [code for code, syms in fake.map.items() if syms[0] == 0xC5]
    assert presses == [8, 9, 8, bound[0], 10]  # a; shift+a; Å on a spare keycode; Return
    fake.events.clear()
    keyboard.chord("shift+Return")
    assert fake.events == [(X.KeyPress, 9), (X.KeyPress, 10), (X.KeyRelease, 10), (X.KeyRelease, 9)]
    with pytest.raises(inputs.InputError, match="unknown key name"):
        keyboard.chord("NoSuchKey")


# --- on the live app -------------------------------------------------------------------------------------

@pytest.mark.desktop
@pytest.mark.xdist_group("kalgebra")
def test_kalgebra_resets_and_steps_return_the_settled_screen(live_env):
    env = live_env("kalgebra")
    stale, checked = [], 0
    tasks = load_app_tasks("kalgebra")
    setups = {step.name: task for task in reversed(tasks) for step in task.setup}  # a task per setup step
    for task in [*tasks[:3], *(t for t in setups.values() if t not in tasks[:3])]:
        observation, _ = env.reset(seed=0, options={"task": task.id})  # a relaunch, mostly from the spare
        checked += 1
        if is_stale(env.provider.client, observation["screenshot"]):
            stale.append((task.id, "reset"))
        for action in env.task.oracle:  # the drawn variant's oracle
            if actions.parse(action).terminal:
                break
            observation, *_ = env.step(action)
            checked += 1
            if is_stale(env.provider.client, observation["screenshot"]):
                stale.append((task.id, action))
    assert checked >= 12 and not stale, f"observations older than the settled screen after: {stale}"


@pytest.mark.desktop
@pytest.mark.xdist_group("kalgebra")
def test_a_step_waits_for_an_app_busy_when_its_input_arrives(live_env):
    """An app whose main thread is busy (here: stopped) for a second takes a typed key in late; the step
    must return the screen with its effect, not end after a quiet window in which the app could not draw."""
    import signal
    import threading

    import psutil

    env = live_env("kalgebra")
    env.reset(seed=0, options={"task": load_app_tasks("kalgebra")[0].id})
    app = next(p for p in psutil.Process().children(recursive=True) if p.name() == "kalgebra")
    app.send_signal(signal.SIGSTOP)
    resume = threading.Timer(1.0, app.send_signal, (signal.SIGCONT,))
    resume.start()
    try:
        observation, *_ = env.step('type("7")')
    finally:
        resume.join()
        app.send_signal(signal.SIGCONT)
    assert not is_stale(env.provider.client, observation["screenshot"])


@pytest.mark.desktop
@pytest.mark.xdist_group("kalgebra")
def test_non_ascii_task_characters_are_typed_as_written(live_env):
    env = live_env("kalgebra")
    env.reset(seed=0, options={"task": load_app_tasks("kalgebra")[0].id})
    text = "Å°é"  # the non-ASCII characters of the task files
    env.step(f'type("{text}")')
    assert text in env.provider.client.probe("texts")


@pytest.mark.desktop
@pytest.mark.xdist_group("texstudio")
def test_texstudio_resets_show_the_syntax_checks_marks(live_env):
    """TeXstudio marks a wrongly closed environment (or a table row's error) only at its editor's next
    repaint, half a second after a document opens: a reset must return the screen with the marks."""
    env = live_env("texstudio")
    stale = []
    for task in ("texstudio/protocol-fix-list", "texstudio/stations-fix-reference", "texstudio/stations-add-row"):
        observation, _ = env.reset(seed=0, options={"task": task})
        if is_stale(env.provider.client, observation["screenshot"]):
            stale.append(task)
    assert not stale, f"resets that returned the screen before TeXstudio drew its check marks: {stale}"


@pytest.mark.desktop
def test_waiting_for_a_repaint_counts_only_an_area_that_large(xvfb):
    """A 20x20 px window drawn does not end a wait for a 100x50 px repaint; a 150x80 px one does."""
    import threading

    from Xlib import X, display

    from sciboard_guest.settle import DamageMonitor

    name, _ = xvfb
    monitor, conn = DamageMonitor(name, {}), display.Display(name)
    monitor.wait(0.2)  # the damage reported as the monitor started

    def show(width: int, height: int) -> None:
        screen = conn.screen()
        window = screen.root.create_window(10, 10, width, height, 0, screen.root_depth, X.InputOutput,
                                           X.CopyFromParent, background_pixel=screen.white_pixel,
                                           override_redirect=True)
        window.map()
        conn.sync()

    try:
        for (width, height), expect in (((20, 20), False), ((150, 80), True)):
            timer = threading.Timer(0.1, show, (width, height))
            timer.start()
            assert monitor.wait_for_area(100, 50, 1.0) is expect
            timer.join()
    finally:
        monitor.close()
        conn.close()
