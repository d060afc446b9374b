"""Training: ``python -m training pass|points|digit|all`` trains the digitpass models and
publishes them to the model repository (docs/model-repository.md).

Shared code: ``cli`` (the parser), ``__main__`` (``main(args)``, ``run(argv)``), ``fit``
(full-batch loops), ``table`` (small CSV files), ``export``, ``gates`` (parity and
quality), ``release``, ``publish``, ``metadata``, ``plots``, ``runlog``, ``errors``. One
package per model: ``passing`` (the ``pass`` model; ``pass`` is a Python keyword),
``points`` and ``digit``.
"""
