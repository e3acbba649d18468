"""The one training script of a project: ``train.py``, rendered from ``templates/project/train.py.tmpl``.

A scaffolded project and a project exported from a research run (``torchscout export``) get the
same script: the same command line, loop, evaluation and atomic checkpoint. They differ only in
the data loaders rendered into it: every project can load ``synthetic`` data (its
``configs/base.yaml`` and tests use it), and an export adds the loader of the research dataset
(``digits``, ``text_classification``, ``mnist``, ...), with the normalisation the run used.

Each loader is a fragment under ``templates/data_loaders/`` and an entry of :data:`DATA_KINDS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from torchscout.tools.lookup import Registry
from torchscout.tools.scaffold.rendering import read_template, render

# per-channel (mean, std) of a dataset's images: what the torchvision loader normalises with
Normalisation = tuple[Sequence[float], Sequence[float]]


@dataclass(frozen=True)
class DataLoaderTemplate:
    function: str  # the loader's name in train.py
    fragments: tuple[str, ...]  # templates/data_loaders/<fragment>.py.tmpl it needs, in order
    needs_normalisation: bool = False  # renders the dataset's mean and std into train.py


DATA_KINDS: Registry[DataLoaderTemplate] = Registry("data kind")
DATA_KINDS.add("synthetic", DataLoaderTemplate("load_synthetic", ("synthetic",)),
               description="class prototypes plus noise (src/data/synthetic.py), no download")
DATA_KINDS.add("digits", DataLoaderTemplate("load_digits", ("digits",)),
               description="scikit-learn's bundled 8x8 digits, stratified seeded holdout, normalised with the "
                           "training split's mean and std (exactly as the research run saw them)")
DATA_KINDS.add("text_classification",
               DataLoaderTemplate("load_text_classification", ("holdout", "text_classification")),
               description="a CSV/JSONL of text,label encoded with tokenizer_file, truncated/padded to "
                           "max_length, seeded holdout")
DATA_KINDS.add("mnist", DataLoaderTemplate("load_torchvision", ("torchvision",), needs_normalisation=True),
               description="torchvision's MNIST from data_root, normalised with the training images' statistics")
DATA_KINDS.add("cifar10", DataLoaderTemplate("load_torchvision", ("torchvision",), needs_normalisation=True),
               description="torchvision's CIFAR-10 from data_root, normalised with the training images' statistics")
DATA_KINDS.add("dummy", DataLoaderTemplate("load_dummy", ("holdout", "dummy")),
               description="seeded random inputs and labels")

ALWAYS = ("synthetic",)


def _ordered(kinds: Iterable[str]) -> list[str]:
    chosen = [*ALWAYS, *kinds]
    for kind in chosen:
        DATA_KINDS.check(kind)
    return list(dict.fromkeys(chosen))


def train_script_values(data_kinds: Iterable[str] = (),
                        normalisation: Mapping[str, Normalisation] | None = None) -> dict[str, str]:
    """The placeholders of train.py.tmpl (all but ``project_name``) for a project that loads ``data_kinds``.

    ``synthetic`` is always included. A kind whose loader normalises images (mnist, cifar10) needs
    its statistics in ``normalisation``; an unknown kind raises UnknownNameError.
    """
    kinds = _ordered(data_kinds)
    loaders = {kind: DATA_KINDS.get(kind) for kind in kinds}
    fragments = dict.fromkeys(name for loader in loaders.values() for name in loader.fragments)
    statistics = {kind: [list(values) for values in (normalisation or {}).get(kind, ())]
                  for kind, loader in loaders.items() if loader.needs_normalisation}
    missing = [kind for kind, values in statistics.items() if not values]
    if missing:
        raise ValueError(f"data kinds {missing} need their image statistics: pass normalisation={{kind: (mean, std)}}")
    code = render("".join(read_template(f"data_loaders/{name}.py.tmpl") for name in fragments),
                  {"normalisation": repr(statistics)})
    return {
        "data_kinds": "".join(f"- {kind}: {DATA_KINDS.entry(kind).description}.\n" for kind in kinds),
        "data_loaders": code.rstrip("\n") + "\n",
        "data_loader_table": "\n".join(f'    "{kind}": {loader.function},' for kind, loader in loaders.items()),
    }


def render_train_script(project_name: str, data_kinds: Iterable[str] = (),
                        normalisation: Mapping[str, Normalisation] | None = None) -> str:
    """The train.py of a project named ``project_name`` that loads ``data_kinds`` (and synthetic data)."""
    values = {"project_name": project_name, **train_script_values(data_kinds, normalisation)}
    return render(read_template("project/train.py.tmpl"), values)
