"""The one confined runner for everything that runs code the agent or an LLM wrote.

Kernel mechanisms, standard library only (the launcher imports nothing else):
- ``landlock.py``: Landlock rules through ctypes (files; TCP; signal and socket scoping);
- ``namespaces.py``: user, PID, mount, IPC and network namespaces, a read-only root, private /dev/shm;
- ``confine.py``: the order they are applied in, resource limits, and (for commands) the supervisor
  that kills the whole process tree at the deadline and reaps what a job leaves behind;
- ``child.py``: the body of a confined Python job; ``output.py``: bounded head-and-tail output.

Policy and entry points:
- ``policy.py``: what each kind of job may read, write and reach, from the settings;
- ``environment.py``: the allow-listed environment without secrets;
- ``capabilities.py``: what this kernel enforces (``torchscout doctor``), ``sandbox: required``;
- ``runner.py`` + ``server_client.py`` + ``server.py``: Python jobs through a warm fork server;
- ``commands.py`` + ``launcher.py``: commands (bash_run, python_run, pip) through the launcher;
- ``allocator.py``: glibc's allocator thresholds for the processes that train (every job,
  torchrun's workers): a training step reuses the pages the last one freed.
"""
