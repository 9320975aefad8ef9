"""Agent specs: the one way agents are named on the command line and in comparisons.

A spec is one of

- a short name: ``oracle``, ``random``, or the name of a TOML file shipped in
  ``baselines/agents/`` (``coda-tiny``, ``generalist-qwen25vl``, ``coda-vllm``, ...);
- a path to a TOML file naming the class and its backends (see docs/comparing.md);
- ``module:Class`` for a third-party agent class;
- any of these prefixed with ``LABEL=`` to choose the name shown in tables.

:func:`resolve` checks a spec (reads the TOML, imports the class) without loading any model;
:meth:`AgentSpec.build` makes a fresh agent for one episode. Model backends are loaded once
per process and shared by every episode (and every role that names the same model).
"""

from __future__ import annotations

import importlib
import inspect
import tomllib
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sciboard_gym.agent import Agent
from sciboard_gym.tasks import Task

BUILTIN_CLASSES = ("oracle", "random", "generalist", "specialist", "coda")
#: Backend options by backend kind; every other key of a model table goes to the agent's role.
LOCAL_BACKEND_KEYS = frozenset({"device", "dtype", "attn_implementation", "trust_remote_code"})
HTTP_BACKEND_KEYS = frozenset({"api_key", "timeout", "concurrency", "retries"})
#: ``model = "tiny"`` names the tiny random Qwen2.5-VL built offline by :mod:`coda_agent.tiny`.
TINY_MODEL = "tiny"

_backends: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}


class AgentSpecError(ValueError):
    """An agent spec that cannot be used; the message says what was wrong and what is accepted."""


@dataclass(frozen=True)
class EpisodeContext:
    """What an agent may need to know before its episode: the task, the screen, a seed."""

    task: Task
    screen_size: tuple[int, int]
    seed: int


@dataclass(frozen=True)
class AgentSpec:
    """A resolved spec: a label, the class (built-in name or ``module:Class``) and its options."""

    name: str
    source: str
    cls: str
    options: dict[str, Any] = field(default_factory=dict)

    def build(self, context: EpisodeContext) -> Agent:
        """A fresh agent for one episode (models come from the per-process backend cache)."""
        options = dict(self.options)
        if self.cls == "oracle":
            from baselines.oracle import OracleAgent

            return OracleAgent(context.task)
        if self.cls == "random":
            from baselines.random_agent import RandomAgent

            return RandomAgent(context.screen_size, seed=_agent_seed(self.name, context), **options)
        if self.cls == "generalist":
            from baselines.generalist import GeneralistAgent

            model = options.pop("model")
            return GeneralistAgent(_backend(model), **_role_options(model, "model"), **options)
        if self.cls == "specialist":
            from baselines.specialist import SpecialistAgent

            model = options.pop("model")
            return SpecialistAgent(_backend(model), **_role_options(model, "model"), **options)
        if self.cls == "coda":
            from coda_agent import Cerebellum, Cerebrum, CODAAgent

            planner, executor = options.pop("planner"), options.pop("executor")
            return CODAAgent(Cerebrum(_backend(planner), **_role_options(planner, "planner")),
                             Cerebellum(_backend(executor), **_role_options(executor, "executor")))
        return _build_custom(self.cls, options, context)


def _agent_seed(name: str, context: EpisodeContext) -> int:
    return zlib.crc32(f"{name}|{context.task.id}|{context.seed}".encode())


def shipped_specs() -> dict[str, Path]:
    """Short names of the TOML specs shipped with the package, and their files."""
    folder = resources.files("baselines") / "agents"
    return {Path(str(item)).stem: Path(str(item)) for item in folder.iterdir() if str(item).endswith(".toml")}


def short_names() -> list[str]:
    return ["oracle", "random", *sorted(shipped_specs())]


def resolve(spec: str) -> AgentSpec:
    """Check ``spec`` and return what it names; raises :class:`AgentSpecError` with the accepted forms."""
    text = spec.strip()
    label = None
    head, sep, rest = text.partition("=")
    if sep and head and ":" not in head and "/" not in head and rest:
        label, text = head.strip(), rest.strip()
    if text in ("oracle", "random"):
        return AgentSpec(label or text, spec, text)
    shipped = shipped_specs()
    if text in shipped:
        return _from_toml(shipped[text], spec, label)
    if text.endswith(".toml"):
        path = Path(text).expanduser()
        if not path.is_file():
            raise AgentSpecError(f"agent spec file {text!r} does not exist")
        return _from_toml(path, spec, label)
    if ":" in text:
        _import_agent_class(text)
        return AgentSpec(label or text.rpartition(":")[2], spec, text)
    raise AgentSpecError(f"unknown agent {text!r}: use a short name ({', '.join(short_names())}), "
                         "a TOML spec file (path ending in .toml) or a third-party class as module:Class")


def _from_toml(path: Path, source: str, label: str | None) -> AgentSpec:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise AgentSpecError(f"{path}: not a readable TOML file: {err}") from err
    cls = data.pop("class", None)
    name = str(data.pop("name", None) or path.stem)
    data.pop("description", None)
    if not isinstance(cls, str):
        raise AgentSpecError(f"{path}: needs class = one of {', '.join(BUILTIN_CLASSES)} or 'module:Class'")
    needs = {"generalist": ("model",), "specialist": ("model",), "coda": ("planner", "executor")}.get(cls, ())
    if cls not in BUILTIN_CLASSES:
        if ":" not in cls:
            raise AgentSpecError(f"{path}: unknown class {cls!r}; use one of {', '.join(BUILTIN_CLASSES)} "
                                 "or 'module:Class'")
        _import_agent_class(cls)
        return AgentSpec(label or name, source, cls, dict(data.get("options", {})))
    for role in needs:
        table = data.get(role)
        if not isinstance(table, dict) or not isinstance(table.get("model"), str):
            raise AgentSpecError(f"{path}: class {cls!r} needs a [{role}] table with model = "
                                 "'hub id, folder, http://host:port/v1#served-name or tiny'")
        _role_options(table, role, where=str(path))
    extra = set(data) - set(needs) - {"options"}
    if extra:
        raise AgentSpecError(f"{path}: unknown keys {sorted(extra)}")
    options = {role: dict(data[role]) for role in needs}
    options.update(data.get("options", {}))
    return AgentSpec(label or name, source, cls, options)


def _is_http(model: str) -> bool:
    return model.startswith(("http://", "https://"))


def _role_options(table: dict[str, Any], role: str, where: str = "agent spec") -> dict[str, Any]:
    """The options of a model table meant for the agent's role (not the backend)."""
    other = LOCAL_BACKEND_KEYS if _is_http(table["model"]) else HTTP_BACKEND_KEYS
    wrong = sorted(set(table) & other)
    if wrong:
        kind = "an HTTP" if _is_http(table["model"]) else "a local"
        raise AgentSpecError(f"{where}: [{role}] {wrong} do not apply to {kind} model")
    return {k: v for k, v in table.items() if k != "model" and k not in LOCAL_BACKEND_KEYS | HTTP_BACKEND_KEYS}


def _backend(table: dict[str, Any]) -> Any:
    """The backend a model table names, loaded once per process."""
    from coda_agent.backends import make_backend

    model = str(table["model"])
    keys = HTTP_BACKEND_KEYS if _is_http(model) else LOCAL_BACKEND_KEYS
    options = {k: v for k, v in table.items() if k in keys}
    if model == TINY_MODEL:
        from coda_agent.tiny import cached_tiny_qwen25vl

        model = str(cached_tiny_qwen25vl())
    key = (model, tuple(sorted(options.items())))
    if key not in _backends:
        _backends[key] = make_backend(model, **options)
    return _backends[key]


def _import_agent_class(target: str) -> type:
    module_name, _, class_name = target.partition(":")
    if not module_name or not class_name:
        raise AgentSpecError(f"agent class {target!r} must be written module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise AgentSpecError(f"cannot import module {module_name!r} for agent {target!r}: {err}") from err
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        raise AgentSpecError(f"module {module_name!r} has no class {class_name!r}")
    if not (callable(getattr(cls, "reset", None)) and callable(getattr(cls, "act", None))):
        raise AgentSpecError(f"{target} is not an agent: it needs reset(instruction) and act(observation) methods")
    return cls


def _build_custom(target: str, options: dict[str, Any], context: EpisodeContext) -> Agent:
    """A third-party agent: its constructor gets the spec's options plus whichever of
    ``task``, ``screen_size`` and ``seed`` it accepts."""
    cls = _import_agent_class(target)
    parameters = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    offered = {"task": context.task, "screen_size": context.screen_size, "seed": context.seed}
    extra = {k: v for k, v in offered.items() if k not in options and (takes_any or k in parameters)}
    agent: Agent = cls(**options, **extra)
    return agent
