"""HTTP and GenAI connector tests against a local FastAPI server on 127.0.0.1."""
