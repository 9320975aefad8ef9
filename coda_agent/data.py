"""Trajectory datasets: recorded episode folders as step samples and Hugging Face datasets.

An episode folder is what :class:`sciboard_gym.trajectory.TrajectoryRecorder` writes
(``episode.json``, ``steps.jsonl``, ``frame_NNNN.png``); ``sciboard run`` and the comparison
runs write them. Each executed action becomes one :class:`StepSample`: the state it was taken
in (screenshots, the planner's history lines), what the agent said and did, the episode's
outcome and, when known, the correct action (the label)::

    from coda_agent.data import find_episodes, step_samples, to_dataset
    samples = step_samples(find_episodes(["runs/"]), only_success=True)
    to_dataset(samples).save_to_disk("steps")        # datasets.load_from_disk("steps") reads it back

Labels: a successful oracle run labels each of its steps with the action itself; a
``labels.json`` file in the folder (written by :class:`coda_agent.judge.Judge`) labels the
steps a judge looked at.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from coda_agent.backends.base import Message
from coda_agent.cerebrum import Cerebrum, history_line, parse_plan
from coda_agent.images import model_image
from sciboard_gym import actions
from sciboard_gym.trajectory import atomic_write_json, load_trajectory

if TYPE_CHECKING:
    import datasets

LABELS_FILE = "labels.json"
ORACLE_AGENT = "OracleAgent"


class TrajectoryError(ValueError):
    """An episode folder that cannot be read; the message names the folder and the problem."""


@dataclass
class Episode:
    """One recorded episode: its summary (``episode.json``) and its step records (``steps.jsonl``)."""

    folder: Path
    summary: dict[str, Any]
    steps: list[dict[str, Any]]
    labels: dict[int, str] = field(default_factory=dict)
    label_source: str | None = None

    @property
    def task_id(self) -> str:
        return str(self.summary["task_id"])

    @property
    def app(self) -> str:
        return self.task_id.partition("/")[0]

    @property
    def instruction(self) -> str:
        return str(self.summary.get("instruction", ""))

    @property
    def success(self) -> bool:
        return bool(self.summary.get("success"))

    @property
    def seed(self) -> int | None:
        seed = self.summary.get("seed", self.summary.get("reset_info", {}).get("seed"))
        return None if seed is None else int(seed)

    @property
    def agent(self) -> str | None:
        return self.summary.get("agent")

    @property
    def finished(self) -> bool:
        return self.summary.get("status") == "finished"

    def frame(self, index: int) -> Image.Image:
        """Frame ``index`` as an RGB image (0 = the reset observation, i = after action i)."""
        name = self.summary.get("first_frame") if index == 0 else self.steps[index - 1].get("frame")
        if not name:
            raise TrajectoryError(f"{self.folder}: frame {index} was not recorded (run without --no-frames)")
        try:
            with Image.open(self.folder / name) as image:
                return image.convert("RGB")
        except OSError as err:
            raise TrajectoryError(f"{self.folder}: cannot read frame {index} ({name}): {err}") from None

    def executed_actions(self) -> list[str]:
        """The GUI actions the env executed, in order (rejected actions executed nothing)."""
        return [executed for record in self.steps if (executed := _executed(record))]

    def is_oracle_run(self) -> bool:
        """True for a successful run of the task's known solution (recorded by the oracle agent, or
        one whose executed actions are exactly the task's oracle)."""
        if not self.success:
            return False
        if self.agent == ORACLE_AGENT:
            return True
        from sciboard_gym.tasks import TaskError, get_task

        try:
            oracle = [actions.parse(text).to_string() for text in get_task(self.task_id).oracle]
        except (TaskError, actions.ActionError):
            return False
        return self.executed_actions() == oracle


@dataclass
class StepSample:
    """One action of a recorded episode in the state it was taken in (see the module docstring)."""

    task_id: str
    app: str
    instruction: str
    seed: int | None
    episode_dir: str
    step: int
    history: list[str]
    screenshot: Image.Image
    prev_screenshot: Image.Image | None
    thought: str | None
    plan: str | None
    planner_reply: str | None
    action: str
    prefix: list[str]
    episode_success: bool
    label: str | None


def load_episode(folder: str | Path) -> Episode:
    """Read an episode folder (``episode.json``, ``steps.jsonl`` and, if present, ``labels.json``)."""
    folder = Path(folder)
    try:
        summary, steps = load_trajectory(folder)
    except FileNotFoundError:
        raise TrajectoryError(f"{folder}: not an episode folder (no episode.json)") from None
    except (OSError, ValueError) as err:
        raise TrajectoryError(f"{folder}: unreadable episode: {err}") from None
    if not isinstance(summary, dict) or "task_id" not in summary:
        raise TrajectoryError(f"{folder}: episode.json has no task_id")
    steps = sorted(steps, key=lambda record: int(record.get("step", 0)))
    if [int(record.get("step", 0)) for record in steps] != list(range(1, len(steps) + 1)):
        raise TrajectoryError(f"{folder}: steps.jsonl does not number its steps 1, 2, 3, ...")
    episode = Episode(folder, summary, steps)
    labels_path = folder / LABELS_FILE
    if labels_path.exists():
        try:
            data = json.loads(labels_path.read_text())
            episode.labels = {int(step): str(label) for step, label in data["steps"].items()}
            episode.label_source = str(data.get("source", "judge"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise TrajectoryError(f"{labels_path}: unreadable labels: {err}") from None
    elif episode.is_oracle_run():
        episode.labels = {record["step"]: record["action"] for record in steps}
        episode.label_source = "oracle"
    return episode


def save_labels(folder: str | Path, labels: dict[int, str], source: str) -> None:
    """Write ``labels.json`` (step number -> correct action) into an episode folder."""
    atomic_write_json(Path(folder) / LABELS_FILE, {"source": source, "steps": {str(k): v for k, v in labels.items()}})


def find_episodes(roots: str | Path | Iterable[str | Path]) -> list[Path]:
    """Every finished episode folder under ``roots`` (searched recursively), sorted."""
    roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
    found: set[Path] = set()
    for root in map(Path, roots):
        if not root.exists():
            raise TrajectoryError(f"{root}: no such folder")
        for marker in ([root / "episode.json"] if (root / "episode.json").exists() else root.rglob("episode.json")):
            try:
                finished = json.loads(marker.read_text()).get("status") == "finished"
            except (OSError, ValueError, AttributeError):
                warnings.warn(f"skipping {marker.parent}: unreadable episode.json", stacklevel=2)
                continue
            if finished:
                found.add(marker.parent)
    return sorted(found)


def step_samples(episodes: Iterable[Episode | str | Path], *, only_success: bool = False,
                 apps: Sequence[str] | None = None) -> list[StepSample]:
    """The step samples of ``episodes`` (folders or loaded episodes), optionally only successful
    episodes and only some apps. Episodes without frames are skipped with a warning."""
    samples: list[StepSample] = []
    for item in episodes:
        episode = item if isinstance(item, Episode) else load_episode(item)
        if (only_success and not episode.success) or (apps is not None and episode.app not in apps):
            continue
        try:
            samples.extend(episode_samples(episode))
        except TrajectoryError as err:
            warnings.warn(f"skipping episode: {err}", stacklevel=2)
    return samples


def episode_samples(episode: Episode) -> list[StepSample]:
    """One sample per recorded step of ``episode``."""
    frames = [episode.frame(i) for i in range(len(episode.steps))]
    samples: list[StepSample] = []
    history: list[str] = []
    prefix: list[str] = []
    for index, record in enumerate(episode.steps):
        agent = record.get("agent") or {}
        samples.append(StepSample(
            task_id=episode.task_id, app=episode.app, instruction=episode.instruction, seed=episode.seed,
            episode_dir=str(episode.folder), step=index + 1, history=list(history), screenshot=frames[index],
            prev_screenshot=frames[index - 1] if index else None, thought=agent.get("thought"),
            plan=agent.get("plan"), planner_reply=agent.get("planner_reply"), action=_executed(record) or
            str(record["action"]), prefix=list(prefix), episode_success=episode.success,
            label=episode.labels.get(index + 1)))
        history.append(step_history_line(record))
        if executed := _executed(record):
            prefix.append(executed)
    return samples


def step_history_line(record: dict[str, Any]) -> str:
    """The Cerebrum history line a recorded step leaves behind (as :class:`coda_agent.CODAAgent` writes it).

    Steps without a planner reply (oracle, random or other agents) read as ``Action: <action>``.
    """
    agent = record.get("agent") or {}
    reply = agent.get("planner_reply")
    plan = parse_plan(reply if reply is not None else f"Action: {record['action']}")
    info = record.get("info") or {}
    if plan.terminal:
        outcome = None
    elif agent.get("grounding_error"):
        outcome = f"the executor failed: {agent['grounding_error']}"
    elif info.get("action_error") and reply is None:
        outcome = f"the action failed: {info['action_error']}"
    else:
        outcome = f"executed {record['action']}"
    return history_line(plan, outcome)


def planner_conversation(sample: StepSample, cerebrum: Cerebrum) -> list[Message]:
    """The prompt ``cerebrum`` builds in the sample's state (its instruction, history and screens).

    The planner's state is replaced by the sample's, as if it had played the steps before it.
    """
    cerebrum.reset(sample.instruction)
    cerebrum.history = list(sample.history)
    cerebrum.previous = None if sample.prev_screenshot is None else model_image(sample.prev_screenshot,
                                                                                cerebrum.max_pixels)
    return cerebrum.conversation({"screenshot": sample.screenshot, "instruction": sample.instruction})


def planner_target(sample: StepSample) -> str:
    """The planner reply a sample teaches: the recorded ``Thought: ... Action: ...`` reply, else the
    label or the executed action written as the action of a reply."""
    if sample.planner_reply and sample.planner_reply.strip():
        return sample.planner_reply.strip()
    return f"Action: {sample.label or sample.action}"


def _executed(record: dict[str, Any]) -> str | None:
    info = record.get("info") or {}
    if info.get("action_error"):
        return None
    return info.get("executed") or (str(record["action"]) if "executed" not in info else None)


def features() -> datasets.Features:
    """The ``datasets`` schema of step samples (screenshots as ``datasets.Image``)."""
    import datasets

    text, number = datasets.Value("string"), datasets.Value("int64")
    return datasets.Features({
        "task_id": text, "app": text, "instruction": text, "seed": number, "episode_dir": text, "step": number,
        "history": datasets.List(text), "screenshot": datasets.Image(), "prev_screenshot": datasets.Image(),
        "thought": text, "plan": text, "planner_reply": text, "action": text, "prefix": datasets.List(text),
        "episode_success": datasets.Value("bool"), "label": text,
    })


def to_dataset(samples: Sequence[StepSample]) -> datasets.Dataset:
    """A Hugging Face dataset with one row per sample (images as ``datasets.Image`` features)."""
    import datasets

    names = [f.name for f in fields(StepSample)]
    columns = {name: [getattr(sample, name) for sample in samples] for name in names}
    return datasets.Dataset.from_dict(columns, features=features())


def from_dataset(dataset: datasets.Dataset) -> list[StepSample]:
    """Step samples back from a dataset made by :func:`to_dataset` (e.g. after ``load_from_disk``)."""
    names = [f.name for f in fields(StepSample)]
    missing = [name for name in names if name not in dataset.column_names]
    if missing:
        raise TrajectoryError(f"not a step-sample dataset: missing columns {missing}")
    samples = []
    for row in dataset:
        values = {name: row[name] for name in names}
        for key in ("screenshot", "prev_screenshot"):
            if values[key] is not None:
                values[key] = values[key].convert("RGB")
        samples.append(StepSample(**values))
    return samples
