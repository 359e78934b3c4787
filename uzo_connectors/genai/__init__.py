"""GenAI: an OpenAI-compatible client, a response cache and the prompt mapper.

- ``config.OpenAIConfig``: base URL (OpenAI, Azure OpenAI, vLLM, Ollama...), API key.
- ``client.OpenAIClient``: chat completions, embeddings, models; retries honouring
  Retry-After, SSRF-checked base URL, token usage accounting.
- ``mapper.map_prompts``: a prompt template over rows with a concurrency limit,
  retries, a response cache (``cache.ResponseCache``) and token totals; the engine's
  ``llm`` node calls it (see the ``mapper`` module docstring for the API).
- ``connector.OpenAIConnector``: the ``openai`` connector type.
"""
