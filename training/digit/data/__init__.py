"""Reading the digit model's training data (MNIST IDX files)."""
