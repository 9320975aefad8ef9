"""coda_agent: the CODA agent (Cerebrum planner + Cerebellum executor) and its model backends.

::

    from coda_agent import CODAAgent, Cerebrum, Cerebellum, TransformersBackend
    planner = Cerebrum(TransformersBackend("Qwen/Qwen2.5-VL-32B-Instruct", dtype="bfloat16", device="auto"))
    executor = Cerebellum(TransformersBackend("ByteDance-Seed/UI-TARS-1.5-7B", dtype="bfloat16", device="cuda"))
    agent = CODAAgent(planner, executor)
"""

from coda_agent.agent import CODAAgent, CODAStep
from coda_agent.backends import Backend, BackendError, Message, OpenAIBackend, TransformersBackend, make_backend
from coda_agent.cerebellum import Cerebellum, Grounding, GroundingError
from coda_agent.cerebrum import Cerebrum, PlanStep, parse_plan
from coda_agent.uitars import CoordinateFrame, parse_uitars

__all__ = ["Backend", "BackendError", "CODAAgent", "CODAStep", "Cerebellum", "Cerebrum", "CoordinateFrame",
           "Grounding", "GroundingError", "Message", "OpenAIBackend", "PlanStep", "TransformersBackend",
           "make_backend", "parse_plan", "parse_uitars"]
