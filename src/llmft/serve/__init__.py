"""`llmft serve`: an OpenAI-compatible server on the generation engine (``llmft.generate``).

run.py starts it (load, engine, app, uvicorn); app.py has the routes; schemas.py the OpenAI request and
response shapes; errors.py OpenAI's error object; prompts.py renders requests as the run was trained;
engine.py batches requests on one worker thread; bridge.py joins the engine's thread to the event loop.
Nothing heavy is imported here: ``llmft --help`` stays free of torch and FastAPI.
"""
