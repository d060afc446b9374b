"""The HTTP layer: the shared plain-ASGI layers, the model router, the operations routes.

Only this package and the app factory import FastAPI.
"""
