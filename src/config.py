"""One configuration system for every entry point: ``default_config.yaml`` + a recipe YAML + ``--key value``.

The YAML has shared top-level keys and one section per entry point (``train:``, ``eval:``, ``export:``,
``infer:``). An entry point sees the shared keys overlaid with its own section, so ``--batch_size`` means the
training batch in ``train.py`` and the exported batch in ``export.py``. Several ``--config`` files layer in order
(later files override earlier ones), then ``--key value`` overrides them all. Types come from the defaults; an
unknown key (also one under another entry point's section that this entry point does not know) or a wrongly typed
value is a :class:`ConfigError` naming the key and the closest valid ones. Floats may be written as ``1e-5``
(YAML 1.1 would read that as a string).
"""
import difflib
import os
import re
import sys

import yaml

from .errors import ROOT, ConfigError, ProjectError
from .files import atomic_write

DEFAULT_CONFIG = os.path.join(ROOT, "default_config.yaml")
SECTIONS = ("train", "eval", "export", "infer")


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-5`` / ``3E+2`` (no dot, which YAML 1.1 requires) as floats."""


EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789."))


def _load(text):
    return yaml.load(text, Loader=_Loader)


class Config(dict):
    """A dict with attribute access; ``explicit`` holds the keys a recipe or the command line set."""

    explicit = frozenset()

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError as exc:
            raise AttributeError(key) from exc

    def __setattr__(self, key, value):
        if key == "explicit":
            object.__setattr__(self, key, value)
        else:
            self[key] = value


def _read_yaml(path):
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = _load(f) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must contain a mapping of keys to values")
    return data


def _flatten(data, section):
    """Shared keys overlaid with ``section``'s keys; other sections dropped."""
    flat = {k: v for k, v in data.items() if k not in SECTIONS}
    flat.update(data.get(section) or {})
    return flat


def _recipe_keys(data, section, defaults_data):
    """A recipe's keys for ``section``. Top-level keys that belong to another entry point (a flat config saved
    by an older version) and the ``config`` record are dropped, so any saved config loads in every entry point."""
    flat = _flatten(data, section)
    elsewhere = {k for s in SECTIONS if s != section for k in (defaults_data.get(s) or {})}
    own = set(_flatten(defaults_data, section))
    return {k: v for k, v in flat.items() if k != "config" and (k in own or k not in elsewhere)}


def _check_sections(data, defaults_data, path):
    """Every key under an entry point's section must be one of that entry point's keys (else it would be dropped
    silently by the entry points that skip the section and ignored by the one that reads it)."""
    for section in SECTIONS:
        keys = data.get(section) or {}
        if not isinstance(keys, dict):
            raise ConfigError(f"{path}: '{section}:' must be a mapping of keys to values")
        valid = _flatten(defaults_data, section)
        for key in keys:
            if key not in valid:
                owners = [s for s in SECTIONS if key in (defaults_data.get(s) or {})]
                where = f"it belongs under '{owners[0]}:'" if owners else str(_unknown(key, list(valid)))
                raise ConfigError(f"{path}: '{key}' under '{section}:' is not a key of {section}.py ({where})")


def _help_text(path):
    """``key: default  # comment`` lines of the YAML, for ``--help``."""
    with open(path, encoding="utf-8") as f:
        return "".join(f.readlines())


def _unknown(key, valid):
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join('--' + c for c in close)}?" if close else "; see --help for valid keys"
    return ConfigError(f"unknown config key '{key}'{hint}")


def _coerce(key, raw, default):
    """Parse a command-line string to the type of ``default``."""
    try:
        value = _load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        return raw
    elif isinstance(default, list):
        if isinstance(value, list):
            return value
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):  # a, b,c or one item: a list
            return [_load(item.strip()) for item in str(raw).split(",")]
    else:
        return value
    raise ConfigError(f"--{key} expects {type(default).__name__} (default {default!r}), got {raw!r}")


def _check_types(cfg, defaults, source):
    for key, value in cfg.items():
        if key not in defaults:
            raise _unknown(key, list(defaults)) from None
        default = defaults[key]
        if default is None or value is None or isinstance(value, type(default)):
            continue
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            cfg[key] = float(value)
            continue
        raise ConfigError(f"{source}: '{key}' expects {type(default).__name__}, got {value!r}")


def load_config(section, argv=None, defaults_path=DEFAULT_CONFIG):
    """Resolve the configuration of entry point ``section`` from defaults, ``--config FILE`` and overrides.

    ``argv`` items are ``--key value``, ``--key=value`` or a bare ``--flag`` (boolean true). ``--help`` prints the
    documented defaults and exits.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(f"usage: {section}.py [--config FILE] [--key value ...]\n\nKeys and defaults "
              f"(shared, then per entry point; {section}.py reads the shared keys and its '{section}:' section):\n")
        print(_help_text(defaults_path))
        raise SystemExit(0)
    defaults_data = _read_yaml(defaults_path)
    defaults = _flatten(defaults_data, section)
    cfg = Config(defaults)
    overrides, recipes = [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(f"unexpected argument '{arg}': options are --key value (see --help)")
        key, eq, value = arg[2:].partition("=")
        key = key.replace("-", "_")
        if not eq:
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value = argv[i + 1]
                i += 1
            elif isinstance(defaults.get(key), bool):
                value = "true"
            else:
                raise ConfigError(f"--{key} needs a value")
        if key == "config":
            recipes.append(value)
        else:
            overrides.append((key, value))
        i += 1
    explicit = set()
    for recipe in recipes:
        data = _read_yaml(recipe)
        _check_sections(data, defaults_data, recipe)
        recipe_cfg = _recipe_keys(data, section, defaults_data)
        _check_types(recipe_cfg, defaults, recipe)
        cfg.update(recipe_cfg)
        explicit.update(recipe_cfg)
    if recipes:
        cfg["config"] = ", ".join(recipes)
    for key, value in overrides:
        if key not in defaults:
            raise _unknown(key, list(defaults))
        cfg[key] = _coerce(key, value, defaults[key])
        explicit.add(key)
    cfg.explicit = frozenset(explicit)
    return cfg


def save_config(cfg, path, section, defaults_path=DEFAULT_CONFIG):
    """Write the resolved configuration of entry point ``section`` as YAML in the defaults' layout (shared keys at
    the top, the entry point's own keys under ``section:``), so it loads back with ``--config`` in every entry
    point. Written atomically; the ``config`` record (which recipe was used) is not a key and is left out."""
    shared = set(_flatten(_read_yaml(defaults_path), "__none__"))
    data = {k: v for k, v in cfg.items() if k in shared}
    data[section] = {k: v for k, v in cfg.items() if k not in shared and k != "config"}
    with atomic_write(path, "w") as f:
        yaml.safe_dump(data, f, sort_keys=True)


def run_cli(main, section, argv=None):
    """Run ``main(cfg)`` with the resolved config; the project's own errors become one stderr line and exit
    code 2. Any other exception is a bug and keeps its traceback."""
    try:
        cfg = load_config(section, argv)
        return main(cfg)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
