"""The project tool: create_pytorch_project_scaffold (``project.py``) and its file templates."""
