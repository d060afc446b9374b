"""Models: the repository contract, what a model kind is, loading, and the registry.

``repository`` and ``outputs`` are the contract shared with ``training/``: they import
nothing but numpy and pydantic, so the training side can publish through them.
"""
