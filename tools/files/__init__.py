"""The file tools: read_file, write_file, append_to_file, list_directory, create_directory.

The plain functions (which raise instead of returning ``Error: ...``) are re-exported here, so
``torchscout.tools.files.read_file`` is the function and ``torchscout.tools.read_file`` the tool.
"""

from torchscout.tools.files.operations import (
    append_to_file,
    create_directory,
    list_directory,
    read_file,
    write_file,
)

__all__ = ["append_to_file", "create_directory", "list_directory", "read_file", "write_file"]
