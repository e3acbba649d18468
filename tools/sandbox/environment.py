"""The environment a confined child gets: an allow-list, and nothing that looks like a secret.

A variable reaches the child when its name is on the allow-list below (the locale, PATH, Python's
and torch's own switches, CUDA, threading, offline flags, ...) **and** does not look like a
secret (``*_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*PASSWORD*``, cloud credentials such as
``AWS_*``, ``AZURE_*``, ``GOOGLE_APPLICATION_CREDENTIALS``). A name the user lists in the
``sandbox_env_allow`` setting always passes: that is how a job gets ``HF_TOKEN`` or a proxy
on purpose. Proxies pass by themselves only to a child that has the network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

ALLOWED_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TERM", "TZ", "SHELL", "COLUMNS", "LINES",
    "NO_COLOR", "FORCE_COLOR", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "LD_LIBRARY_PATH",
    "PYTHONPATH", "PYTHONHASHSEED", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONWARNINGS",
    "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONFAULTHANDLER", "MPLBACKEND", "MPLCONFIGDIR",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
})
ALLOWED_PREFIXES = ("LC_", "TORCHSCOUT_", "TORCH_", "PYTORCH_", "TORCHINDUCTOR_", "TRITON_", "CUDA_", "CUDNN_",
                    "NVIDIA_", "NCCL_", "OMP_", "MKL_", "OPENBLAS_", "KMP_", "GOMP_", "HF_", "TRANSFORMERS_",
                    "TOKENIZERS_", "WANDB_", "TQDM_")
NETWORK_NAMES = frozenset({"http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                           "NO_PROXY", "ALL_PROXY"})
PACKAGE_PREFIXES = ("PIP_", "UV_")

SECRET_PATTERN = re.compile(
    r"(_KEY|_KEYS|_TOKEN|_TOKENS|_SECRET|_SECRETS|_CREDENTIALS|_PASS|_PWD)$|PASSWORD|PASSWD|SECRET|"
    r"^(AWS|AZURE|ARM|GCP|GCLOUD|GOOGLE_APPLICATION_CREDENTIALS|GITHUB_TOKEN|GH_TOKEN)(_|$)|"
    r"^(NETRC|SSH_AUTH_SOCK|GPG_AGENT_INFO|DBUS_SESSION_BUS_ADDRESS)$|"
    # doors to a process outside the sandbox: W&B's service of the caller, any socket named by a variable
    r"^WANDB_{1,2}SERVICE|_(SOCK|SOCKET)$",
    re.IGNORECASE,
)


def looks_secret(name: str) -> bool:
    """A name that, by convention, holds a credential or a door out (an agent's or a service's socket)."""
    return bool(SECRET_PATTERN.search(name))


def _allowed(name: str, network: bool, packages: bool) -> bool:
    if name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES):
        return True
    if network and name in NETWORK_NAMES:
        return True
    return packages and name.startswith(PACKAGE_PREFIXES)


def child_environment(source: Mapping[str, str], *, user_allowed: Iterable[str] = (), network: bool = False,
                      packages: bool = False) -> dict[str, str]:
    """The variables of ``source`` a confined child may see (see the module docstring)."""
    allowed_by_user = set(user_allowed)
    return {name: value for name, value in source.items()
            if name in allowed_by_user or (_allowed(name, network, packages) and not looks_secret(name))}


def dropped_names(source: Mapping[str, str], kept: Mapping[str, str]) -> list[str]:
    """The names left out (for a doctor line or a debug message; never the values)."""
    return sorted(set(source) - set(kept))


def cache_environment(state_dir: Path) -> dict[str, str]:
    """Caches a confined child can keep between jobs (matplotlib's and fontconfig's font lists, ...).

    The home folder is out of the child's reach, so without these every plot would rebuild the font
    cache (a second or more) and every run recompile its kernels. They live in the workspace's state
    folder, which the child may write.
    """
    cache = state_dir / "cache"
    (cache / "matplotlib").mkdir(parents=True, exist_ok=True)
    return {"XDG_CACHE_HOME": str(cache), "MPLCONFIGDIR": str(cache / "matplotlib"),
            # CUDA's kernel cache and torch.compile's (they would go to ~/.nv and a private /tmp)
            "CUDA_CACHE_PATH": str(cache / "nv"), "TRITON_CACHE_DIR": str(cache / "triton"),
            "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor")}
