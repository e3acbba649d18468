"""The research StateGraph (PRD section 8) and the settings every run streams it with.

    setup -> baselines -> [tokenizer] -> propose -> assemble* -> inspect -> quick_eval* (screen) -> halve
          -> quick_eval* (rung 1, the best of the screen) -> halve -> [quick_eval* (rung 2, longer) -> halve ...]
          -> refine -> (propose | optimizers)
    optimizers -> optimizer_eval* -> confirm -> confirm_eval* -> select -> [approve_full_train]
          -> [full_train] -> analyze -> END

``*`` marks fan-out nodes: one task per candidate or evaluation, sent with ``Send``, so with
``durability="sync"`` a crash loses only the evaluations in flight. ``approve_full_train`` runs
only when the task gates ``full_train`` (``approve: [full_train]``): it pauses the run with
``interrupt()`` until ``torchscout resume NAME --approve yes|no`` or, on a LangGraph server,
``Command(resume="yes"|"no")`` on the run's thread (see ``graphs.approval``).

The graph's input is :class:`~torchscout.graphs.state.ResearchInput` (``{"task", "run_name"}``;
``setup`` builds the rest), its output :class:`~torchscout.graphs.state.ResearchOutput`, its context
schema :class:`~torchscout.graphs.budget.ResearchContext` (empty: the CLI's clock is internal).
"""

from __future__ import annotations

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import RetryPolicy

from torchscout.agent.task import Task
from torchscout.graphs import nodes_baselines, nodes_final, nodes_rounds, nodes_search, routing
from torchscout.graphs.budget import ResearchContext
from torchscout.graphs.evaluate import TRANSIENT_ERRORS
from torchscout.graphs.executor import graph_threads
from torchscout.graphs.state import ResearchInput, ResearchOutput, ResearchState

# Transient infrastructure errors get a few more tries; a candidate's own errors are recorded instead.
TRANSIENT_RETRY = RetryPolicy(max_attempts=3, initial_interval=1.0, retry_on=TRANSIENT_ERRORS)


def recursion_limit(task: Task) -> int:
    """Supersteps a run can need, with room to spare: per round propose, assemble, inspect, a screen,
    two per further rung (evaluations, halve), refine; rounds at most max_rounds, or without it the
    hard cap on rounds (the time budget or patience ends such a run long before)."""
    per_round = 2 * task.budget.max_rungs + 6
    return 40 + per_round * task.budget.rounds_cap


def run_config(run_name: str, task: Task | None = None, checkpoint_id: str | None = None) -> RunnableConfig:
    """The RunnableConfig of a research run: thread = run name, a thread for each evaluation that may run."""
    configurable = {"thread_id": run_name}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    config = RunnableConfig(configurable=configurable, recursion_limit=recursion_limit(task) if task is not None else 200)
    if task is not None:
        # the executor's slots limit the evaluations at once; the pool only has to hold them (and the
        # checkpoint writes the sync runner submits to it too: with 1 thread it would deadlock)
        config["max_concurrency"] = graph_threads(task)
    return config


def build_graph(checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    """The compiled research graph; pass a checkpointer to make runs resumable (see checkpointing)."""
    builder = StateGraph(ResearchState, context_schema=ResearchContext, input_schema=ResearchInput,
                         output_schema=ResearchOutput)
    search, final = nodes_search, nodes_final
    builder.add_node("setup", search.setup, retry_policy=TRANSIENT_RETRY)
    builder.add_node("baselines", nodes_baselines.baselines, retry_policy=TRANSIENT_RETRY)
    builder.add_node("tokenizer", search.tokenizer, retry_policy=TRANSIENT_RETRY)
    builder.add_node("propose", search.propose, retry_policy=TRANSIENT_RETRY)
    builder.add_node("assemble", search.assemble, retry_policy=TRANSIENT_RETRY)
    builder.add_node("inspect", search.inspect, retry_policy=TRANSIENT_RETRY)
    builder.add_node("quick_eval", search.evaluate, retry_policy=TRANSIENT_RETRY)
    builder.add_node("halve", nodes_rounds.halve)
    builder.add_node("refine", nodes_rounds.refine)
    builder.add_node("optimizers", final.optimizers, retry_policy=TRANSIENT_RETRY)
    builder.add_node("optimizer_eval", search.evaluate, retry_policy=TRANSIENT_RETRY)
    builder.add_node("confirm", final.confirm)
    builder.add_node("confirm_eval", search.evaluate, retry_policy=TRANSIENT_RETRY)
    builder.add_node("select", final.select)
    builder.add_node("approve_full_train", final.approve_full_train)
    builder.add_node("full_train", final.full_train, retry_policy=TRANSIENT_RETRY)
    builder.add_node("analyze", final.analyze, retry_policy=TRANSIENT_RETRY)

    builder.add_edge(START, "setup")
    builder.add_edge("setup", "baselines")
    builder.add_conditional_edges("baselines", routing.after_setup, ["tokenizer", "propose"])
    builder.add_edge("tokenizer", "propose")
    builder.add_conditional_edges("propose", routing.after_propose, ["assemble", "inspect", "optimizers"])
    builder.add_edge("assemble", "inspect")
    builder.add_conditional_edges("inspect", routing.after_inspect, ["quick_eval", "halve"])
    builder.add_edge("quick_eval", "halve")
    builder.add_conditional_edges("halve", routing.after_halve, ["quick_eval", "halve", "refine"])
    builder.add_conditional_edges("refine", routing.after_refine, ["propose", "optimizers"])
    builder.add_conditional_edges("optimizers", routing.after_optimizers, ["optimizer_eval", "confirm"])
    builder.add_edge("optimizer_eval", "confirm")
    builder.add_conditional_edges("confirm", routing.after_confirm, ["confirm_eval", "select"])
    builder.add_edge("confirm_eval", "select")
    builder.add_conditional_edges("select", routing.after_select, ["approve_full_train", "full_train", "analyze"])
    builder.add_conditional_edges("approve_full_train", routing.after_full_train_gate, ["full_train", "analyze"])
    builder.add_edge("full_train", "analyze")
    builder.add_edge("analyze", END)
    return builder.compile(checkpointer=checkpointer, name="torchscout-research")
