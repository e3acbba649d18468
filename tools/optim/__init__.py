"""The optimizer tool: pytorch_optimizer_configurator and build_optimizer.

- ``configurator.py``: the tool and ``build_optimizer`` (a registered name or a spec -> optimizer);
- ``specs.py``: optimizer specs and which classes are known; ``groups.py``: param groups by regex;
- ``custom.py`` + ``validation.py``: LLM-written optimizers, validated before they are registered.
"""
