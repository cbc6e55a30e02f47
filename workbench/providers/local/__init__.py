"""The embedded models: GGUF files shipped in PyPI packages, run in-process by llama.cpp.

- `gguf`: the model specs (package, file, chat or base) and the loaded llama.cpp model.
- `provider`: the LiteLLM custom provider that serves `local/...` model ids.
"""
