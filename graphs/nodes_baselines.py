"""The classical-baselines step: scikit-learn one-liners fitted once per run, before the search.

It runs after ``setup`` (and before the tokenizers and the first proposal) so the report and
``result.json`` can put the neural models next to logistic regression / ridge and gradient-boosted
trees scored on the same split. A problem with the data here is only noted: the evaluations meet
the same data and report it where it belongs.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from torchscout.agent.baselines import run_baselines
from torchscout.graphs.budget import RunContext
from torchscout.graphs.common import decision, timed
from torchscout.graphs.evaluate import metrics_requested
from torchscout.graphs.events import emit
from torchscout.graphs.state import ResearchState, task_of
from torchscout.tools.errors import ToolError, UserCodeError


@timed
def baselines(state: ResearchState, runtime: Runtime[RunContext]) -> ResearchState:
    """Fit the classical baselines of the task on its training split and score them on val (and test)."""
    task = task_of(state)
    try:
        records, note = run_baselines(task, metrics_requested(task))
    except (ToolError, UserCodeError) as exc:
        records, note = [], f"Classical baselines skipped: {str(exc).splitlines()[0][:300]}"
    emit(state["run_dir"], "decision", text=note)
    return {"baselines": records, "decisions": [decision("baselines", note)]}
