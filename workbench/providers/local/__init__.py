"""The embedded models: GGUF files shipped in PyPI packages, run in-process by llama.cpp.

- `specs`: the registry, one `LocalModelSpec` per model (package, how to locate or assemble its
  file, chat or base, context window, repair command); add a model here and nowhere else.
- `gguf`: the loaded llama.cpp model, one generation at a time on the one llama.cpp thread, with
  streaming and exact token counts.
- `provider`: the LiteLLM custom provider that serves `local/...` model ids.
"""
