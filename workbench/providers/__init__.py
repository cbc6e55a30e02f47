"""Model providers: which models exist, and the one path every call to a model takes.

- `catalog`: the models file (`data/models.toml`), keys by env-var name, prices, concurrency.
- `completion`: `complete` / `acomplete` through LiteLLM, with the workbench's error contract.
- `redact`: strips API keys from provider messages before they are stored or exported.
- `local/`: the embedded GGUF models run by llama.cpp, exposed to LiteLLM as `local/...`.
"""
