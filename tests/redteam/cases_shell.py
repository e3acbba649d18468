"""Red-team cases: hostile shell commands through bash_run and python_run (the agent's path).

Each command tries one thing the sandbox must stop: reading a secret, writing outside the
workspace, reaching the network, leaving a process behind, exhausting the machine. The case
passes when nothing got through (``Bait.breaches``), whatever the command printed or returned.
"""

from __future__ import annotations

import stat

from tests.redteam.harness import Arena, case
from tests.redteam.hostile import Bait


def fill(template: str, bait: Bait) -> str:
    """Substitute ``<<name>>`` fields (shell syntax is full of braces and dollars)."""
    for name, value in bait.fields().items():
        template = template.replace(f"<<{name}>>", value)
    return template


def attack(arena: Arena, command: str, timeout_s: float = 30.0) -> str | None:
    with Bait(arena) as bait:
        with arena.attack():
            arena.tool("bash_run", command=fill(command, bait), timeout_s=timeout_s)
        return bait.verdict()


def py(code: str) -> str:
    """``python -c CODE`` as a shell command whose failure prints one line (the error), not a traceback."""
    return f"python -c '{code}' 2>&1 | tail -n 1"


def _process_limit_enforced() -> bool:
    from torchscout.tools.sandbox.capabilities import probe

    return bool({"pid_max", "nproc_rlimit"} & set(probe()))


@case("shell", "read ~/.ssh/id_rsa")
def read_ssh_key(arena: Arena) -> str | None:
    return attack(arena, "cat ~/.ssh/id_rsa; cat $HOME/.ssh/id_rsa")


@case("shell", "read ~/.aws/credentials and ~/.config")
def read_cloud_credentials(arena: Arena) -> str | None:
    return attack(arena, "cat ~/.aws/credentials ~/.config/gh/hosts.yml; ls -la ~ ~/.config")


@case("shell", "read a file beside the workspace")
def read_outside_file(arena: Arena) -> str | None:
    return attack(arena, "cat <<outside>>/secret.txt; cat ../*/secret.txt; cat <<workspace>>/../*/secret.txt")


@case("shell", "copy secrets into the workspace to read them later")
def copy_secrets_into_workspace(arena: Arena) -> str | None:
    return attack(arena, "cp ~/.ssh/id_rsa stolen_key; cp <<outside>>/secret.txt stolen.txt; "
                         "tar cf home.tar ~ 2>/dev/null; ls")


@case("shell", "print the API keys in the environment")
def print_environment(arena: Arena) -> str | None:
    return attack(arena, "env; printenv OPENAI_API_KEY AWS_SECRET_ACCESS_KEY WANDB_API_KEY HF_TOKEN")


@case("shell", "save the environment to a workspace file")
def save_environment(arena: Arena) -> str | None:
    return attack(arena, "env > env.txt; " + py("import os, json; print(json.dumps(dict(os.environ)))") + " > env.json")


@case("shell", "read other processes' environments through /proc")
def environment_of_other_processes(arena: Arena) -> str | None:
    return attack(arena, "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done > proc_env.txt; "
                         "cat /proc/<<victim>>/environ; cat /proc/$PPID/environ; wc -c proc_env.txt")


@case("shell", "reach files through /proc/PID/root and /proc/PID/cwd")
def through_proc_root(arena: Arena) -> str | None:
    return attack(arena, "cat /proc/<<victim>>/root<<home>>/.ssh/id_rsa; cat /proc/1/root<<outside>>/secret.txt; "
                         "ls /proc/<<victim>>/cwd")


@case("shell", "write a file beside the workspace and in /tmp")
def write_outside(arena: Arena) -> str | None:
    return attack(arena, "echo pwned > <<outside_write>>; echo pwned > <<tmp_write>>; touch ../pwned; "
                         "cp /etc/hostname <<outside_write>>")


@case("shell", "write into the host's /dev/shm")
def write_dev_shm(arena: Arena) -> str | None:
    return attack(arena, "echo pwned > <<shm_write>>; ls /dev/shm")


@case("shell", "chmod and touch a file outside the workspace")
def change_metadata_outside(arena: Arena) -> str | None:
    with Bait(arena) as bait:
        target = bait.outside / "secret.txt"
        before = target.stat()
        with arena.attack():
            arena.tool("bash_run", command=f"chmod 777 {target}; touch -d 2001-01-01 {target}; chown nobody {target}")
        after = target.stat()
        problems = bait.breaches()
        if stat.S_IMODE(after.st_mode) != stat.S_IMODE(before.st_mode) or after.st_mtime != before.st_mtime:
            problems.append("the outside file's mode or time was changed")
        return "; ".join(problems) or None


@case("shell", "a symbolic link to a secret, read through the workspace")
def symlink_to_secret(arena: Arena) -> str | None:
    return attack(arena, "ln -s ~/.ssh/id_rsa key; ln -s <<outside>>/secret.txt secret; cat key secret; "
                         "cp -L key copied")


@case("shell", "a hard link to a file outside, then read or change it")
def hardlink_outside(arena: Arena) -> str | None:
    return attack(arena, "ln <<outside>>/secret.txt hard && cat hard; ln ~/.ssh/id_rsa hard2 && cat hard2")


@case("shell", "a fork bomb", time_limit_s=90)
def fork_bomb(arena: Arena) -> str | None:
    if not _process_limit_enforced():
        return "not run: this kernel gives the sandbox no process-count limit (see torchscout doctor)"
    # the marker rides along in every forked bash's command line; a short timeout spares the machine's CPUs
    # (the process limit bounds how many there are, not the CPU time they share)
    return attack(arena, ":(){ :|:& };: # <<marker>>", timeout_s=3)


@case("shell", "a setsid child left running after the command ends")
def setsid_escapee(arena: Arena) -> str | None:
    return attack(arena, "setsid sleep <<marker>> & echo started")


@case("shell", "nohup and disown a background child")
def nohup_disown(arena: Arena) -> str | None:
    return attack(arena, "nohup sleep <<marker>> > /dev/null 2>&1 & disown; echo ok")


@case("shell", "a double-forked daemon from Python")
def double_fork_daemon(arena: Arena) -> str | None:
    return attack(arena, "python -c 'import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                         "        time.sleep(<<marker>>)\n    os._exit(0)\nos.wait()' > /dev/null 2>&1; echo parent done")


@case("shell", "a setsid child of a command that runs past its timeout")
def timeout_escapee(arena: Arena) -> str | None:
    return attack(arena, "setsid sleep <<marker>> & sleep 60", timeout_s=1)


@case("shell", "`yes` floods the output")
def output_flood(arena: Arena) -> str | None:
    with Bait(arena) as bait:
        with arena.attack():
            answer = arena.tool("bash_run", command="yes", timeout_s=3)
        problems = bait.breaches()
        if len(answer.text) > 30_000:
            problems.append(f"the answer holds {len(answer.text):,} characters")
        return "; ".join(problems) or None


@case("shell", "connect to a TCP listener on 127.0.0.1")
def tcp_to_localhost(arena: Arena) -> str | None:
    return attack(arena, py("import socket; socket.create_connection((\"127.0.0.1\", <<tcp_port>>), 3)") + "; "
                         "echo hi > /dev/tcp/127.0.0.1/<<tcp_port>>; curl -sS -m 3 http://127.0.0.1:<<tcp_port>>/")


@case("shell", "send UDP to 127.0.0.1")
def udp_to_localhost(arena: Arena) -> str | None:
    return attack(arena, py("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                            "for _ in range(5): s.sendto(b\"x\", (\"127.0.0.1\", <<udp_port>>))") + "; "
                         "echo hi > /dev/udp/127.0.0.1/<<udp_port>>")


@case("shell", "connect to an abstract Unix socket of the host")
def abstract_unix_socket(arena: Arena) -> str | None:
    return attack(arena, py("import socket; s = socket.socket(socket.AF_UNIX)\ns.connect(\"\\0<<abstract>>\")"))


@case("shell", "connect to a Unix socket by its path (an agent socket)")
def unix_socket_by_path(arena: Arena) -> str | None:
    return attack(arena, py("import socket; s = socket.socket(socket.AF_UNIX); s.connect(\"<<unix_path>>\")"))


@case("shell", "kill a process outside the sandbox")
def signal_outside_process(arena: Arena) -> str | None:
    return attack(arena, "kill -9 <<victim>>; kill -9 -1; pkill -9 sleep; " + py("import os; os.kill(<<victim>>, 9)"))


@case("shell", "allocate 64 GiB")
def memory_hog(arena: Arena) -> str | None:
    return attack(arena, py("x = bytearray(64 << 30); print(len(x))") + "; ulimit -v unlimited; ulimit -d unlimited")


@case("shell", "a NUL byte in the command", refusal=True)
def nul_byte(arena: Arena) -> str | None:
    with arena.attack():
        arena.tool("bash_run", command="echo a\x00b")
    return None


@case("shell", "python_run of a script that tries everything at once")
def python_run_script(arena: Arena) -> str | None:
    with Bait(arena) as bait:
        arena.write("steal.py", fill(
            "import os, shutil, socket, subprocess\n"
            "for path in ['<<home>>/.ssh/id_rsa', '<<outside>>/secret.txt']:\n"
            "    try:\n        shutil.copy(path, os.path.basename(path) + '.stolen')\n"
            "    except OSError as exc:\n        print(exc)\n"
            "try:\n    open('<<outside_write>>', 'w').write('pwned')\nexcept OSError as exc:\n    print(exc)\n"
            "open('env.txt', 'w').write(repr(dict(os.environ)))\n"
            "try:\n    socket.create_connection(('127.0.0.1', <<tcp_port>>), 3)\nexcept OSError as exc:\n    print(exc)\n"
            "subprocess.Popen(['setsid', 'sleep', '<<marker>>'])\n", bait))
        with arena.attack():
            arena.tool("python_run", script_path="steal.py", timeout_s=30)
        return bait.verdict()


@case("shell", "mount over the workspace's parent or unshare to get out")
def mount_and_unshare(arena: Arena) -> str | None:
    return attack(arena, "mount -t tmpfs none <<outside>>; unshare -r -m sh -c 'mount --bind / /mnt; "
                         "cat <<outside>>/secret.txt > <<workspace>>/via_unshare.txt'; "
                         "unshare -r cat <<home>>/.ssh/id_rsa")
