"""Training: ``python -m training pass|digit|all`` trains both digitpass models and
publishes them to the model repository (docs/model-repository.md)."""
