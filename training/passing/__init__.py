"""``pass``: logistic regression from hours studied to P(pass) (``pass`` is a keyword)."""
