"""The shell tools: bash_run and python_run (``commands.py``)."""
