"""Prompt texts for the planner (Cerebrum) and the executor (Cerebellum). Our own wording."""

from __future__ import annotations

PLANNER_SYSTEM = """You operate a scientific desktop application for a user, one step at a time.
A separate executor carries out your steps: it sees the same screen and turns one plain-language
instruction into one mouse or keyboard action. You decide WHAT to do next; it decides WHERE to click.

Answer in exactly this form:
Thought: <what the screen shows, what has been done, and the single next step, naming the
screen element to act on and any text to type>
Action: <that next step in one short imperative sentence>

When the task is complete, write `Action: done()`. If it cannot be completed, write `Action: fail()`.
If the task asks a question, give the answer with `Action: answer("<the answer>")`; these three
end the task and are not sent to the executor."""

PLANNER_TURN = """Task: {instruction}

Steps so far (oldest first):
{history}

{screens}
What is the next step?"""

NO_HISTORY = "(none yet: this is the first step)"

#: The GUI actions of the UI-TARS action space, one per line (executor and specialist prompts list them).
UITARS_GUI_ACTIONS = """click(start_box='(x,y)')
left_double(start_box='(x,y)')
right_single(start_box='(x,y)')
drag(start_box='(x1,y1)', end_box='(x2,y2)')
hotkey(key='ctrl s')  # keys separated by spaces, lower case
type(content='text')  # end with \\n to press Enter afterwards
scroll(start_box='(x,y)', direction='down')  # or 'up'
wait()
"""

EXECUTOR_UITARS = """You are a GUI executor. Look at the screenshot and carry out the instruction below
with exactly one action.

Reply in this form:
Thought: <one sentence about where the target is>
Action: <one action>

Actions (coordinates are pixels of the screenshot as you see it, x to the right, y down):
""" + UITARS_GUI_ACTIONS + """finished()

Instruction: {plan}"""

EXECUTOR_UITARS_RELATIVE = EXECUTOR_UITARS.replace(
    "coordinates are pixels of the screenshot as you see it",
    "coordinates are relative, 0-1000 across the screenshot's width and height",
)


def history_lines(entries: list[str]) -> str:
    """Numbered history lines, or a note that there are none."""
    return "\n".join(f"{i}. {line}" for i, line in enumerate(entries, 1)) if entries else NO_HISTORY

JUDGE_SYSTEM = """You review the steps of an agent that operates a scientific desktop application.
For one step you see the task, the steps taken before it, the screen before the action, the action
and, when it was executed, the screen after it. Decide whether the action was a correct next step
towards completing the task: it acts on the right element, types the right text, or ends the task
only when the task is really complete (done) or answers it correctly (answer).

The action language:
{actions}

Answer in exactly this form:
Verdict: correct   (or: Verdict: wrong)
Correction: <when wrong, the correct action in the action language; otherwise leave it out>"""

JUDGE_TURN = """Task: {instruction}

Steps so far (oldest first):
{history}

The screen is {width}x{height} pixels. The action to review: {action}
"""

JUDGE_QUESTION = "Was this action a correct next step?"
