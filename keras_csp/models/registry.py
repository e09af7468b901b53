"""The model registry: `register_model`, `list_models()`, `create_model(name, **kwargs)`.

Model modules register their functions here with `@register_model(name)`; neither imports the
other. The modules that provide models are listed in PROVIDERS and imported on the first look-up,
so `create_model("csppeleenet_efm")` finds a detector without the zoo knowing about detection.
"""
import difflib
import importlib

_REGISTRY = {}
PROVIDERS = ("keras_csp.models.zoo", "keras_csp.detection.models")


def _load_providers():
    for module in PROVIDERS:
        importlib.import_module(module)


def register_model(name, plain_twin=None):
    """Register a model function under `name` (lower case); `plain_twin` names its non-CSP twin."""
    def wrap(fn):
        fn.model_name = name
        fn.plain_twin = plain_twin
        _REGISTRY[name] = fn
        return fn
    return wrap


def list_models(csp_only=False):
    _load_providers()
    names = sorted(_REGISTRY)
    return [n for n in names if _REGISTRY[n].plain_twin] if csp_only else names


def get_model_fn(name):
    _load_providers()
    key = str(name).lower().replace("-", "_")
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, _REGISTRY, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known models: {', '.join(sorted(_REGISTRY))}"
        raise ValueError(f"unknown model name {name!r}{hint}")
    return _REGISTRY[key]


def create_model(name, **kwargs):
    return get_model_fn(name)(**kwargs)


def plain_twin_of(name):
    return get_model_fn(name).plain_twin
