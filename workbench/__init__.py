"""Prompt Workbench: versioned Jinja prompts, datasets, sweeps, ratings and DSPy optimization.

The core package never imports streamlit (only `workbench.ui` does); heavy libraries (litellm,
dspy, llama_cpp) are imported lazily where they are used.
"""

__version__ = "0.1.0"
