"""The internal LLM and the one pipeline every generated file goes through.

- ``llm.py`` (+ ``llm_cache.py``): the chat model from settings, calls with retries and a SQLite cache;
- ``pipeline.py``: prompt -> code -> static check -> validation in the sandbox -> repair -> atomic write;
- ``safety.py``: the cheap static check; ``sandbox.py`` + ``sandbox_server.py``: the validation child.
"""
