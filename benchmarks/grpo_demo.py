"""CPU demonstration of decoupled GRPO on a real app: a tiny planner learns which plan solves each KAlgebra task.

    .venv/bin/python benchmarks/grpo_demo.py [--tasks 4] [--updates 40] [--group 16] [--png grpo_demo.png]

A random tiny planner cannot write expressions, so the choice space is made learnable: the
task text offers lettered candidate steps (the one-step solutions of all demo tasks, arranged
so that each letter is the right answer for exactly one task) and the planner names one letter. ``CandidateLetterGrounder``, a
grounder that needs no model, stands in for UI-TARS: it turns the named candidate into its
GUI action. Everything else is the real Stage 1 path: oracle episodes of training tasks are
recorded on a real KAlgebra desktop, their first states become step samples
(:mod:`coda_agent.data`), :class:`~coda_agent.grpo.DecoupledGRPOTrainer` (TRL's
``GRPOTrainer``) updates the planner, and :class:`~coda_agent.rewards.EnvOutcomeReward`
scores every grounded action by executing it in KAlgebra and running the task's evaluator.

Before GRPO the planner gets a short format warm-up: supervised replies with every letter
equally often, so it answers with a letter but has no preference among them (the mean
reward starts near 1 / number of candidates). The mean group reward per update is printed
and plotted, and per update every task's group mean and the letters its group named.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import string
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

#: Training tasks whose solution is one typed line (``\n`` presses Enter), in the order the demo takes them.
DEMO_TASKS = ("kalgebra/power-of-two", "kalgebra/factorial-ten", "kalgebra/assign-sum", "kalgebra/natural-log",
              "kalgebra/exp-two", "kalgebra/cube-root")
CHOOSE = "\nReply with the letter of the candidate step that does the task, and nothing else."
SCREEN = (1280, 800)
PIXELS = 112 * 112 * 4


class CandidateLetterGrounder:
    """Stands in for the UI-TARS executor in this demo only: the letter a plan names -> that candidate's action.

    The candidates are read from the observation's instruction (lines ``X. <step>  =>  <action>``
    are not shown to the planner; the grounder keeps its own table per instruction).
    """

    def __init__(self, table: Mapping[str, Mapping[str, str]]):
        self.table = table

    def ground_batch(self, plans: Sequence[str], observations: Sequence[Mapping[str, Any]]) -> list[Any]:
        from coda_agent.cerebellum import Grounding

        results = []
        for plan, observation in zip(plans, observations, strict=True):
            choices = self.table[observation["instruction"]]
            match = re.match(r"\s*([A-Z])\b", plan)
            action = choices.get(match.group(1)) if match else None
            results.append(Grounding(plan, plan, action=action, error=None if action else "names no candidate"))
        return results


def candidate_instructions(tasks: Sequence[Any], seed: int) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Per task: the instruction with lettered candidates, and the grounder's letter -> action table.

    The answer letters are balanced: each letter is the right one for exactly one task (a
    rotation drawn from ``seed``; the wrong candidates are shuffled around it), so no letter
    is right more often than another and a letter preference earns nothing. Only reading
    the task tells the letters apart.
    """
    solutions = [task.oracle[0][len('type("'):-2] for task in tasks]
    rng = random.Random(seed)
    letters = string.ascii_uppercase[:len(tasks)]
    shift = rng.randrange(len(tasks))
    texts, table = {}, {}
    for index, task in enumerate(tasks):
        others = [i for i in range(len(tasks)) if i != index]
        rng.shuffle(others)
        order = others[:]
        order.insert((index + shift) % len(tasks), index)
        lines = [f'{letter}. Type {solutions[i]} and press Enter.' for letter, i in zip(letters, order)]
        text = task.instruction + "\nCandidate steps:\n" + "\n".join(lines) + CHOOSE
        texts[task.id] = text
        table[text] = {letter: f'type("{solutions[i]}\\n")' for letter, i in zip(letters, order)}
    return texts, table


def per_task_report(reward: Any, group: int, printer: Any) -> Any:
    """``reward`` that also prints, per update, every task's group mean and the letters its group named."""
    from coda_agent.rewards import completion_text

    updates = [0]

    def env_outcome(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float | None]:
        rewards = reward(prompts, completions, **columns)
        updates[0] += 1
        parts = []
        for start in range(0, len(rewards), group):
            scores = [r or 0.0 for r in rewards[start:start + group]]
            named = "".join((completion_text(c).strip() or "-")[:1] for c in completions[start:start + group])
            task = columns["task_id"][start].split("/")[-1]
            parts.append(f"{task} {sum(scores) / len(scores):.2f} {named}")
        printer(f"[demo] update {updates[0]}: " + " | ".join(parts))
        return rewards

    return env_outcome


def record_oracle_states(task_ids: Sequence[str], folder: Path) -> tuple[list[Any], list[Any]]:
    """Oracle episodes on a real KAlgebra desktop: their first steps as step samples, and the tasks as played
    (the variant of each task's parameters that its episode seed draws)."""
    import gymnasium as gym

    import sciboard_gym  # noqa: F401  (registers the envs)
    from baselines.oracle import OracleAgent
    from coda_agent.data import find_episodes, step_samples
    from sciboard_gym.episode import run_episode
    from sciboard_gym.trajectory import TrajectoryRecorder

    env = gym.make("SciBoard-KAlgebra-v0", screen_size=SCREEN)
    played = []
    try:
        for index, task_id in enumerate(task_ids):
            env.reset(seed=index, options={"task": task_id})
            task = env.unwrapped.task  # the same seed draws the same variant again in run_episode
            result = run_episode(env, OracleAgent(task), task=task_id, seed=index,
                                 recorder=TrajectoryRecorder(folder / task_id.replace("/", "_")))
            if not result.success:
                raise RuntimeError(f"the oracle failed {task_id}: {result.checks}")
            played.append(task)
    finally:
        env.close()
    return [s for s in step_samples(find_episodes(folder)) if s.step == 1], played


def format_warmup(model: Any, processor: Any, rows: Sequence[Mapping[str, Any]], letters: str, steps: int,
                  learning_rate: float) -> None:
    """Supervised replies with every letter equally often: the format, not the answer."""
    import torch

    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    model.train()
    for _ in range(steps):
        for row in rows:
            prompt = processor.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
            texts = [prompt + f"{letter}<|im_end|>" for letter in letters]
            batch = processor(text=texts, images=[list(row["images"])] * len(letters), return_tensors="pt")
            # the last two tokens (the letter, <|im_end|>) are the targets: logits of the three positions before
            logits = model(**batch, logits_to_keep=3).logits[:, :-1]
            targets = batch["input_ids"][:, -2:]
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
            loss.backward()
            optimiser.step()
            optimiser.zero_grad()
    model.eval()


def run_demo(tasks: int = 4, updates: int = 40, group: int = 16, warmup_steps: int = 20, learning_rate: float = 4e-4,
             seed: int = 0, epsilon_high: float = 0.28, out: Path | None = None, printer: Any = print) -> list[float]:
    """Run the demonstration; returns the mean group reward of every update."""
    import torch
    from trl import GRPOConfig

    from coda_agent import Cerebrum, TransformersBackend
    from coda_agent.grpo import DecoupledGRPOTrainer, planner_rows
    from coda_agent.rewards import EnvOutcomeReward, make_local_env
    from coda_agent.tiny import cached_tiny_qwen25vl
    torch.manual_seed(seed)
    out = Path(out or tempfile.mkdtemp(prefix="grpo-demo-"))
    started = time.monotonic()
    recorded, chosen = record_oracle_states(DEMO_TASKS[:tasks], out / "episodes")
    texts, table = candidate_instructions(chosen, seed)
    samples = [replace(s, instruction=texts[s.task_id]) for s in recorded]
    printer(f"[demo] {len(samples)} recorded states from oracle episodes in {time.monotonic() - started:.1f} s")

    planner = TransformersBackend(str(cached_tiny_qwen25vl()), dtype="float32")
    rows = planner_rows(samples, Cerebrum(planner, max_pixels=PIXELS))
    format_warmup(planner.model, planner.processor, rows, string.ascii_uppercase[:tasks], warmup_steps, 1e-3)

    import datasets

    reward = EnvOutcomeReward(lambda app, size: make_local_env(app, size), printer=printer)
    config = GRPOConfig(output_dir=str(out / "trainer"), per_device_train_batch_size=group * len(rows),
                        num_generations=group, max_completion_length=2, max_steps=updates,
                        learning_rate=learning_rate, lr_scheduler_type="constant", temperature=1.0, beta=0.0,
                        epsilon_high=epsilon_high,
                        logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=seed,
                        gradient_checkpointing=False, disable_tqdm=True)
    trainer = DecoupledGRPOTrainer(model=planner.model, processing_class=planner.processor, args=config,
                                   reward_funcs=[per_task_report(reward, group, printer)], train_dataset=datasets.Dataset.from_list(rows),
                                   executor=CandidateLetterGrounder(table))
    try:
        trainer.train()
    finally:
        reward.close()
    curve = [float(e["reward"]) for e in trainer.state.log_history if "reward" in e]
    printer(f"[demo] {len(curve)} updates, {reward.evaluations} env evaluations ({reward.seconds:.0f} s in the env)")
    printer("[demo] mean group reward per update: " + " ".join(f"{r:.2f}" for r in curve))
    return curve


def plot(curve: Sequence[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3)
    axes.axhline(0.8, color="grey", linestyle="--", linewidth=0.8)
    axes.set(xlabel="GRPO update", ylabel="mean group reward (env outcome)", ylim=(-0.02, 1.02), title=title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=4, help=f"training tasks (at most {len(DEMO_TASKS)})")
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--group", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=4e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epsilon-high", type=float, default=0.28,
                        help="upper clip of the policy ratio (DAPO clip-higher; 0.2 is the symmetric clip)")
    parser.add_argument("--png", default="grpo_demo.png")
    parser.add_argument("--out", help="folder for episodes and trainer output (default: a temporary folder)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    curve = run_demo(args.tasks, args.updates, args.group, learning_rate=args.learning_rate, seed=args.seed,
                     epsilon_high=args.epsilon_high,
                     out=Path(args.out) if args.out else None)
    first = sum(curve[:3]) / min(3, len(curve))
    reached = next((i + 1 for i, r in enumerate(curve) if r >= 0.8), None)
    print(f"[demo] mean reward over the first 3 updates {first:.2f}; first update at >= 0.8: {reached}; "
          f"last {curve[-1]:.2f}; {time.monotonic() - started:.0f} s in all")
    plot(curve, Path(args.png), f"Decoupled GRPO, tiny planner, KAlgebra ({args.tasks} tasks, G={args.group})")
    print(f"[demo] learning curve saved to {args.png}")


if __name__ == "__main__":
    main()
