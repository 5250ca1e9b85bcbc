"""Commands that build the demo benchmarks and evaluate models on them."""


def register(subparsers):
    pass
