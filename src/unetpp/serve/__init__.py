"""`unetpp serve`: the shipped model behind an HTTP API and a web page (FastAPI + uvicorn, or Ray Serve).

Requests are batched across clients by the one batch driver (core/driver.py) fed as a stream (serve/batcher.py).
"""
