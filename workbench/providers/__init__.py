"""Model providers: which models exist, and the one path every call to a model takes.

- `catalog`: the models file (`data/models.toml`), keys by env-var name, prices, concurrency.
- `completion`: `complete` / `acomplete` through LiteLLM, with the workbench's error contract.
- `features`: structured output and tools on that path: can the model do it (else a clear fatal
  error), and the tool calls of a reply, streamed or whole.
- `pricing`: token usage with its cached / reasoning details, and what it costs (LiteLLM's prices
  or the models file's, cache prices included).
- `redact`: strips API keys from provider messages before they are stored or exported.
- `local/`: the embedded GGUF models run by llama.cpp, exposed to LiteLLM as `local/...`.
"""
