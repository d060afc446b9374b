"""``digit``: an MLP on MNIST, 28x28 image -> one of ten digits."""
