"""Model tools: the blueprint assembler and the model summary.

- ``blueprint.py``: the blueprint (model_config) model and its validation;
- ``shape_inference.py``: output shapes propagated through the layers (exact, no LLM);
- ``blueprint_compiler.py`` + ``blueprint_helpers.py``: the builtin compiler from blueprint to code;
- ``assembler.py``: pytorch_model_assembler (builtin compiler, LLM for unknown block types);
- ``model_validation.py``: import, instantiate and run a written model in the sandbox;
- ``summary*.py``: pytorch_model_summary (measurement, formatting, the optional LLM analysis).
"""
