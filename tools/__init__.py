"""torchscout's 15 tools as LangChain ``StructuredTool`` objects, named as in the PRD.

``torchscout.tools.<tool_name>`` is the tool object (``.invoke({...})`` returns plain
JSON-able data, or an ``Error: ...`` string for bad input); the plain functions behind them,
which raise instead, live in the modules (``torchscout.tools.files.read_file``, ...).
"""

from torchscout.tools.assembler import pytorch_model_assembler_tool as pytorch_model_assembler
from torchscout.tools.evaluation import pytorch_full_trainer_tool as pytorch_full_trainer
from torchscout.tools.evaluation import pytorch_quick_evaluator_tool as pytorch_quick_evaluator
from torchscout.tools.files import append_to_file_tool as append_to_file
from torchscout.tools.files import create_directory_tool as create_directory
from torchscout.tools.files import list_directory_tool as list_directory
from torchscout.tools.files import read_file_tool as read_file
from torchscout.tools.files import write_file_tool as write_file
from torchscout.tools.optimizers import pytorch_optimizer_configurator_tool as pytorch_optimizer_configurator
from torchscout.tools.packages import pip_install_pytorch_package_tool as pip_install_pytorch_package
from torchscout.tools.scaffold import create_pytorch_project_scaffold_tool as create_pytorch_project_scaffold
from torchscout.tools.shell import bash_run_tool as bash_run
from torchscout.tools.shell import python_run_tool as python_run
from torchscout.tools.summary import pytorch_model_summary_tool as pytorch_model_summary
from torchscout.tools.tokenizers import pytorch_tokenizer_manager_tool as pytorch_tokenizer_manager

# In the PRD's order (section 5).
ALL_TOOLS = [
    read_file,
    write_file,
    append_to_file,
    bash_run,
    python_run,
    list_directory,
    create_directory,
    pytorch_model_assembler,
    pytorch_model_summary,
    pytorch_quick_evaluator,
    pytorch_full_trainer,
    pytorch_optimizer_configurator,
    pytorch_tokenizer_manager,
    pip_install_pytorch_package,
    create_pytorch_project_scaffold,
]

TOOLS_BY_NAME = {tool.name: tool for tool in ALL_TOOLS}

__all__ = ["ALL_TOOLS", "TOOLS_BY_NAME", *TOOLS_BY_NAME]
