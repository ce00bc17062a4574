"""Module-level ``__getattr__`` (PEP 562) that hands out placeholder classes raising on use."""


def module_getattr(module_name):
    """``__getattr__`` for ``module_name``: public names become placeholder classes, private ones stay missing."""
    def __getattr__(name):
        if name.startswith("_"):
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

        def __init__(self, *args, **kwargs):
            raise NotImplementedError(f"{module_name}.{name} is a test stand-in (tests/torchvision_stub)")

        return type(name, (), {"__init__": __init__, "__module__": module_name})
    return __getattr__
