"""The internal LLM and the one pipeline every generated file goes through.

- ``llm.py`` (+ ``llm_cache.py``): the chat model from settings, ``ask``/``accept`` and a SQLite cache of used answers;
- ``llm_call.py``: the one call layer (deadline, idle timeout on streamed replies, the only retries, token caps);
- ``llm_usage.py``: call records, the limits and sinks a caller puts around calls, fallback notices;
- ``llm_json.py``: every JSON object in a reply, the first usable one; ``llm_bounded.py``: agent mode's model;
- ``pipeline.py``: prompt -> code -> static check -> validation in the sandbox -> repair -> atomic write;
- ``safety.py``: the cheap static check (a first filter with clear messages; the boundary is the
  kernel sandbox of ``tools/sandbox/``, where the validation child runs).
"""
