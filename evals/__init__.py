"""torchscout's evals: tool quality, research quality against baselines, and the LLM side.

Run ``python evals/run.py --suite quick|full|llm``; results land in ``evals/results/``.
"""
