"""torchscout's entry points: the command line and the research graph.

- ``app`` / ``main``: the ``torchscout`` CLI (built in ``torchscout.graphs.cli``; the console
  script calls ``torchscout.graphs.cli:main`` directly, so commands do not pay for building the graph);
- ``graph``: the compiled research graph, a module-level name as ``langgraph.json``
  (``./app.py:graph``) and ``langgraph dev`` expect it;
- ``checkpointer``: the workspace's checkpoint database for the server (``langgraph.json``'s
  ``checkpointer``), so server runs and CLI runs are one list of runs.

    python -m torchscout.app --help
"""

from __future__ import annotations

from torchscout.graphs.checkpointing import server_checkpointer as checkpointer
from torchscout.graphs.cli import app, main
from torchscout.graphs.graph import build_graph

graph = build_graph()

__all__ = ["app", "checkpointer", "graph", "main"]

if __name__ == "__main__":
    main()
