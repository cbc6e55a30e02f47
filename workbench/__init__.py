"""Prompt Workbench: versioned Jinja prompts, datasets, sweeps, ratings and DSPy optimization.

The core package never imports streamlit (only `workbench.ui` does); heavy libraries (litellm,
dspy, llama_cpp, mlflow) are imported lazily where they are used. `mlflow_sync/` is the optional
MLflow bridge (sweeps as runs, versions to and from its Prompt Registry).
"""

__version__ = "0.1.0"
