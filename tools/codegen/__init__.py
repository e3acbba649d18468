"""The internal LLM and the one pipeline every generated file goes through.

- ``llm.py`` (+ ``llm_cache.py``): the chat model from settings, calls with retries and a SQLite cache;
- ``pipeline.py``: prompt -> code -> static check -> validation in the sandbox -> repair -> atomic write;
- ``safety.py``: the cheap static check (a first filter with clear messages; the boundary is the
  kernel sandbox of ``tools/sandbox/``, where the validation child runs).
"""
