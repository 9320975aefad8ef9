"""Run the CODA agent on SciBoard envs and print one JSON line per episode.

Models are hub ids or folders (loaded with transformers) or OpenAI-compatible servers
written ``http://host:port/v1#served-name``. Examples::

    python -m coda_agent.run --env SciBoard-KAlgebra-v0 --episodes 5 \\
        --planner Qwen/Qwen2.5-VL-32B-Instruct --planner-device auto --dtype bfloat16 \\
        --executor ByteDance-Seed/UI-TARS-1.5-7B --executor-device cuda:0
    python -m coda_agent.run --env SciBoard-KAlgebra-v0 --mode plan \\
        --planner http://127.0.0.1:8000/v1#planner --executor http://127.0.0.1:8001/v1#executor
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from coda_agent.agent import CODAAgent
from coda_agent.backends import Backend, make_backend
from coda_agent.cerebellum import Cerebellum
from coda_agent.cerebrum import Cerebrum
from coda_agent.images import DEFAULT_MAX_PIXELS, EXECUTOR_MAX_PIXELS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m coda_agent.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="SciBoard-KAlgebra-v0", help="a SciBoard env id")
    parser.add_argument("--mode", choices=("gui", "plan"), default="gui",
                        help="gui: the agent sends GUI actions; plan: the planner is the agent and a PlanActions "
                             "wrapper grounds its plans with the executor")
    parser.add_argument("--planner", required=True, help="hub id, folder, or http://host:port/v1#name")
    parser.add_argument("--executor", required=True, help="hub id, folder, or http://host:port/v1#name")
    parser.add_argument("--planner-device", default="cpu", help="cpu, cuda, cuda:N or auto (local models)")
    parser.add_argument("--executor-device", default="cpu", help="cpu, cuda, cuda:N or auto (local models)")
    parser.add_argument("--dtype", default="auto", help="auto, bfloat16, float16 or float32 (local models)")
    parser.add_argument("--coordinates", choices=("absolute", "relative"), default="absolute",
                        help="executor coordinates: absolute (UI-TARS-1.5) or relative 0-1000 (UI-TARS 1.0)")
    parser.add_argument("--planner-max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--executor-max-pixels", type=int, default=EXECUTOR_MAX_PIXELS)
    parser.add_argument("--max-new-tokens", type=int, default=512, help="planner reply budget")
    parser.add_argument("--executor-max-new-tokens", type=int, default=128, help="executor reply budget")
    parser.add_argument("--temperature", type=float, default=0.0, help="planner temperature")
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--task", action="append", help="task id (repeatable); default: sampled by seed")
    parser.add_argument("--split", choices=("train", "test"), help="sample tasks from this split")
    parser.add_argument("--max-steps", type=int, help="override the tasks' step limits")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import gymnasium as gym

    import sciboard_gym  # noqa: F401  (registers the envs)
    from sciboard_gym.episode import run_episode
    from sciboard_gym.wrappers import PlanActions

    args = parse_args(argv)
    backends: dict[tuple[str, str], Backend] = {}

    def backend(spec: str, device: str) -> Backend:
        local = {} if spec.startswith(("http://", "https://")) else {"device": device, "dtype": args.dtype}
        key = (spec, device if local else "")
        if key not in backends:
            backends[key] = make_backend(spec, **local)
        return backends[key]

    cerebrum = Cerebrum(backend(args.planner, args.planner_device), max_new_tokens=args.max_new_tokens,
                        temperature=args.temperature, max_pixels=args.planner_max_pixels)
    cerebellum = Cerebellum(backend(args.executor, args.executor_device), coordinates=args.coordinates,
                            max_pixels=args.executor_max_pixels, max_new_tokens=args.executor_max_new_tokens)
    env = gym.make(args.env, split=args.split, max_steps=args.max_steps)
    agent: Any = CODAAgent(cerebrum, cerebellum)
    if args.mode == "plan":
        env, agent = PlanActions(env, cerebellum), cerebrum
    successes = 0
    try:
        for episode in range(args.episodes):
            task = args.task[episode % len(args.task)] if args.task else None
            executed: list[str | None] = []

            def collect(_step: int, _action: str, info: dict[str, Any], into: list[str | None] = executed) -> None:
                into.append(info.get("executed"))

            result = run_episode(env, agent, task, args.seed + episode, on_step=collect)
            successes += result.success
            print(json.dumps(result.to_dict() | {"executed": executed}), flush=True)
    finally:
        env.close()
    print(json.dumps({"episodes": args.episodes, "successes": successes}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
