"""Reading the accessibility tree (AT-SPI) of the desktop's apps."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_NODES = 4000
#: How many calls an app must answer in a row before a step's settle trusts it has taken its input in,
#: and how many at most while its answers come slowly (see :meth:`Accessibility.caught_up`).
MIN_ANSWERS, MAX_ANSWERS = 3, 6
#: A call that fails sooner than this was refused (the app has left the bus), not timed out.
REFUSED = 0.5


@dataclass
class Node:
    """A snapshot of one accessible: role, name, text, value, bounding box, children."""

    role: str
    name: str
    text: str = ""
    value: float | None = None
    box: tuple[int, int, int, int] | None = None
    showing: bool = False
    children: list[Node] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role, "name": self.name, "text": self.text, "value": self.value,
            "box": list(self.box) if self.box else None, "showing": self.showing,
            "children": [c.to_dict() for c in self.children],
        }

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, role: str | None = None, name: str | None = None) -> Iterator[Node]:
        for node in self.walk():
            if (role is None or node.role == role) and (name is None or node.name == name):
                yield node


class Element:
    """A live accessible, read lazily (each property is one D-Bus round trip, cached)."""

    def __init__(self, atspi: Any, acc: Any):
        self._atspi, self._acc = atspi, acc
        self._cache: dict[str, Any] = {}

    def _get(self, key: str, read: Any) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = read()
            except Exception:  # noqa: BLE001  (the accessible vanished or does not implement it)
                self._cache[key] = None
        return self._cache[key]

    @property
    def role(self) -> str:
        return self._get("role", self._acc.get_role_name) or ""

    @property
    def name(self) -> str:
        return self._get("name", self._acc.get_name) or ""

    @property
    def pid(self) -> int | None:
        return self._get("pid", self._acc.get_process_id)

    @property
    def text(self) -> str:
        def read() -> str:
            iface = self._acc.get_text_iface()
            if iface is None:
                return ""
            Text = self._atspi.Text
            return Text.get_text(iface, 0, min(Text.get_character_count(iface), 4000)) or ""

        return self._get("text", read) or ""

    @property
    def value(self) -> float | None:
        def read() -> float | None:
            iface = self._acc.get_value_iface()
            return None if iface is None else self._atspi.Value.get_current_value(iface)

        return self._get("value", read)

    @property
    def showing(self) -> bool:
        return bool(self._get("showing", lambda: self._acc.get_state_set().contains(self._atspi.StateType.SHOWING)))

    @property
    def focused(self) -> bool:
        """True when this element has the keyboard focus."""
        return bool(self._get("focused", lambda: self._acc.get_state_set().contains(self._atspi.StateType.FOCUSED)))

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        def read() -> tuple[int, int, int, int] | None:
            iface = self._acc.get_component_iface()
            if iface is None:
                return None
            ext = self._atspi.Component.get_extents(iface, self._atspi.CoordType.SCREEN)
            return (ext.x, ext.y, ext.width, ext.height)

        return self._get("box", read)

    def answers(self) -> bool:
        """Whether the app behind this element answers a call now (not from the client's cache): a
        toolkit answers accessibility calls on its main thread. False when the call failed or timed out."""
        try:
            self._acc.clear_cache()
            self._acc.get_child_count()
        except Exception:  # noqa: BLE001  (GLib.Error: a timeout, or the app left the bus)
            return False
        return True

    @property
    def children(self) -> list[Element]:
        def read() -> list[Element]:
            out = []
            for i in range(min(self._acc.get_child_count(), 5000)):
                child = self._acc.get_child_at_index(i)
                if child is not None:
                    out.append(Element(self._atspi, child))
            return out

        return self._get("children", read) or []

    def find(self, role: str | None = None, name: str | None = None, max_depth: int = 12,
             skip_roles: tuple[str, ...] = ("list", "combo box", "menu bar", "page tab list")) -> Iterator[Element]:
        """Depth-first search; does not descend into ``skip_roles`` (big, rarely needed subtrees)."""
        stack: list[tuple[Element, int]] = [(self, 0)]
        while stack:
            node, depth = stack.pop()
            if (role is None or node.role == role) and (name is None or node.name == name):
                yield node
            if depth < max_depth and (node is self or node.role not in skip_roles):
                stack.extend((child, depth + 1) for child in reversed(node.children))

    def snapshot(self, budget: list[int], only_showing: bool = False) -> Node | None:
        """Copy this subtree into plain :class:`Node` objects (at most ``budget[0]`` nodes);
        with ``only_showing``, hidden subtrees (other tabs, closed menus) are skipped."""
        if budget[0] <= 0:
            return None
        budget[0] -= 1
        showing = self.showing
        if only_showing and not showing and self.role != "application":
            return None
        node = Node(role=self.role, name=self.name, text=self.text, value=self.value, box=self.box,
                    showing=showing)
        for child in self.children:
            sub = child.snapshot(budget, only_showing)
            if sub is not None:
                node.children.append(sub)
        return node


class Accessibility:
    """Access to the AT-SPI registry of one desktop (its session bus in ``env``)."""

    def __init__(self, env: dict[str, str]):
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = env["DBUS_SESSION_BUS_ADDRESS"]
        os.environ["DISPLAY"] = env["DISPLAY"]
        if env.get("XAUTHORITY"):
            os.environ["XAUTHORITY"] = env["XAUTHORITY"]
        import gi

        gi.require_version("Atspi", "2.0")
        from gi.repository import Atspi

        Atspi.set_timeout(3000, 10000)
        self._atspi = Atspi
        #: Processes whose apps are left out everywhere (a spare app waiting in the background).
        self.ignored_pids: frozenset[int] = frozenset()

    def apps(self) -> list[Element]:
        """The apps on this desktop's bus, but for those of :attr:`ignored_pids`."""
        desktop = self._atspi.get_desktop(0)
        found = []
        for i in range(desktop.get_child_count()):
            child = desktop.get_child_at_index(i)
            if child is not None:
                found.append(Element(self._atspi, child))
        return [app for app in found if app.pid not in self.ignored_pids] if self.ignored_pids else found

    def app(self, name: str, pid: int | None = None) -> Element | None:
        """The application called ``name`` on the bus (of process ``pid`` when given)."""
        matches = [a for a in self.apps() if a.name == name and (pid is None or a.pid == pid)]
        return matches[-1] if matches else None

    def caught_up(self, deadline: float, prompt: float) -> bool:
        """Wait until every app on this desktop's bus has taken in the input sent before, or ``deadline``
        (monotonic) passes; whether they all did.

        A toolkit answers accessibility calls on its main thread, between the input events queued there
        (GTK dispatches one event per turn of its main loop). Each app is asked :data:`MIN_ANSWERS` times
        in a row, each call sent after the last answer, so the events queued with the input (pointer
        motion, press, release) have been dispatched; then again while an answer took longer than
        ``prompt`` seconds (the main thread was busy, perhaps with that input's handler), at most
        :data:`MAX_ANSWERS` times, so an app that is always busy (drawing frames) still lets a step end.
        """
        for app in self.apps():
            answers = 0
            while answers < MAX_ANSWERS:
                if time.monotonic() >= deadline:
                    return False
                asked = time.monotonic()
                if not app.answers():
                    if time.monotonic() - asked < REFUSED:  # an error at once, not a timeout: the app left the bus
                        break
                    continue
                answers += 1
                if answers >= MIN_ANSWERS and time.monotonic() - asked <= prompt:
                    break
        return True

    def snapshot(self, app: str | None = None, max_nodes: int = MAX_NODES, only_showing: bool = False) -> Node:
        """The tree of ``app`` (or of the whole desktop) as plain :class:`Node` objects."""
        root = Node(role="desktop", name="")
        budget = [max_nodes]
        for element in self.apps():
            if app is None or element.name == app:
                node = element.snapshot(budget, only_showing)
                if node is not None:
                    root.children.append(node)
        return root


def render_text(root: Node, only_showing: bool = True) -> str:
    """A compact, prompt-ready text rendering of a tree: one line per node."""
    lines: list[str] = []

    def visit(node: Node, depth: int) -> None:
        if only_showing and node.role not in ("desktop", "application") and not node.showing:
            return
        label = f"[{node.role}] {node.name!r}"
        if node.text and node.text != node.name:
            label += f" text={node.text[:200]!r}"
        if node.value is not None:
            label += f" value={node.value:g}"
        if node.box:
            label += " @({},{},{},{})".format(*node.box)
        lines.append("  " * depth + label)
        for child in node.children:
            visit(child, depth + 1)

    visit(root, 0)
    return "\n".join(lines)
