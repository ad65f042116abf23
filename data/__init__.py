"""Data sets: the built-in digits, CIFAR and ImageNet from local files."""
