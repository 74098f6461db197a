"""The plugin host: loads built-ins and entry points once, and builds components by name.

Built-in plugins are ordinary modules listed in :data:`DEFAULT_PLUGINS`; third-party
packages are found through the ``coldlab`` entry-point group. Set
``COLDLAB_LOAD_PLUGINS=pkg1,pkg2`` to load only those third-party distributions
(an empty value loads none); built-ins always load.

A plugin that fails to import, raises in one of its hooks, or registers a name that
is taken is recorded in :attr:`PluginInfo.error`, warned about, and its components are
skipped; every other plugin keeps working.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
import warnings
from collections.abc import Iterable
from typing import Any

import pluggy

from coldlab import hookspecs
from coldlab.errors import ColdlabError, PluginLoadWarning
from coldlab.params import describe, suggest, validate

DEFAULT_PLUGINS: tuple[str, ...] = (
    "coldlab.default_plugins.schedules",
    "coldlab.default_plugins.noise_degradations",
    "coldlab.default_plugins.zoom",
    "coldlab.default_plugins.blur",
    "coldlab.default_plugins.priors",
    "coldlab.default_plugins.gmm",
    "coldlab.default_plugins.networks",
    "coldlab.default_plugins.samplers",
    "coldlab.default_plugins.datasets",
    "coldlab.default_plugins.metrics",
    "coldlab.default_plugins.executors",
    "coldlab.default_plugins.autoencoders",
    "coldlab.default_plugins.trackers",
)

BUILTIN = "coldlab"


@dataclasses.dataclass
class PluginInfo:
    """What ``coldlab plugins`` shows about one plugin."""

    name: str
    package: str
    version: str
    components: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    error: str | None = None
    module: str = ""  # the plugin's module name: exceptions raised in it (or below it) are blamed on it


@dataclasses.dataclass
class Entry:
    """One registered component."""

    kind: str
    name: str
    cls: type[Any]
    plugin: str


class Registry:
    """Components by kind and name, plus the plugins they came from."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Entry]] = {kind: {} for kind in hookspecs.KINDS}
        self.plugins: list[PluginInfo] = []

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def get(self, kind: str, name: str) -> Entry:
        """The entry for ``name``; an unknown name lists what exists and suggests the closest."""
        if kind not in self.entries:
            raise ColdlabError(f"unknown component kind {kind!r}", hint="kinds: " + ", ".join(self.entries))
        try:
            return self.entries[kind][name]
        except KeyError:
            known = self.names(kind)
            failed = [p.name for p in self.plugins if p.error]
            broken = f"; plugin(s) {', '.join(failed)} failed to load: see `coldlab plugins`" if failed else ""
            raise ColdlabError(
                f"unknown {kind} {name!r}{suggest(name, known)}",
                hint=f"registered {kind}s: {', '.join(known) or 'none'}{broken}",
            ) from None

    def _split(self, kind: str, spec: Any) -> tuple[str, dict[str, Any]]:
        """(name, parameter values) of a component given as a name or a table."""
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ColdlabError(
                f"a {kind} must be a name or a table with a 'name' key, got {spec!r}",
                hint=f'write {kind} = {{ name = "{(self.names(kind) or ["..."])[0]}" }}',
            )
        values = dict(spec)
        return values.pop("name"), values

    def build(self, kind: str, spec: str | dict[str, Any], **context: Any) -> Any:
        """Build a component from a name or a ``{"name": ..., param: value}`` table.

        Parameters are validated against the component's ``Params`` dataclass;
        nested components (fields declared with ``kind=``) are built first.
        ``context`` (for networks: ``shape``, ``num_classes``) goes to the constructor.
        Errors are :class:`ColdlabError` whose ``where`` names the offending key.
        """
        name, values = self._split(kind, spec)
        entry = self.get(kind, name)
        params_cls: type = entry.cls.Params
        clean, nested = validate(params_cls, values, component=f"{kind} {name!r}")
        for key, nested_kind in nested.items():
            raw = clean.get(key, getattr(params_cls(), key))
            try:
                clean[key] = self.build(nested_kind, raw)
            except ColdlabError as err:
                raise err.at(key) from None
        try:
            params = params_cls(**clean)
            component = entry.cls(params, **context)
        except ColdlabError:
            raise
        except (ValueError, TypeError) as err:
            raise ColdlabError(f"{kind} {name!r}{self.origin(entry)} rejected its parameters: {err}") from err
        except Exception as err:  # a broken component must not take the host down
            raise ColdlabError(
                f"{kind} {name!r}{self.origin(entry)} failed to build: {type(err).__name__}: {err}",
                hint=f"a bug in the component: report it to its authors, or choose another {kind}",
            ) from err
        component.component_name = name
        component.component_kind = kind
        return component

    def resolve(self, kind: str, spec: str | dict[str, Any]) -> dict[str, Any]:
        """The full table of a component: its name and every parameter, defaults filled in.

        Validates like :meth:`build` (nested components too) without constructing anything,
        so it is cheap for large networks; the result is plain JSON-friendly data.
        """
        name, values = self._split(kind, spec)
        params_cls: type = self.get(kind, name).cls.Params
        clean, nested = validate(params_cls, values, component=f"{kind} {name!r}")
        try:
            params_cls(**clean)
        except (ValueError, TypeError) as err:
            raise ColdlabError(f"{kind} {name!r}{self.origin(self.get(kind, name))} rejected its parameters: {err}") from None
        full = {"name": name, **dataclasses.asdict(params_cls())}
        full.update(clean)
        for key, nested_kind in nested.items():
            try:
                full[key] = self.resolve(nested_kind, full[key])
            except ColdlabError as err:
                raise err.at(key) from None
        return full

    def plugin(self, name: str) -> PluginInfo | None:
        return next((p for p in self.plugins if p.name == name), None)

    def origin(self, entry: Entry) -> str:
        """`` (from plugin package P V)`` for a third-party component, else empty."""
        info = self.plugin(entry.plugin)
        if info is None or info.package == BUILTIN:
            return ""
        return f" (from plugin package {info.package} {info.version})"

    def blame(self, exc: BaseException) -> PluginInfo | None:
        """The third-party plugin whose code raised ``exc`` (the innermost such frame), if any."""
        modules = []
        tb = exc.__traceback__
        while tb is not None:
            modules.append(str(tb.tb_frame.f_globals.get("__name__", "")))
            tb = tb.tb_next
        for module in reversed(modules):
            for info in self.plugins:
                if info.package != BUILTIN and info.module and (module == info.module or module.startswith(info.module + ".")):
                    return info
        return None

    def describe(self, kind: str, name: str) -> list[dict[str, Any]]:
        return describe(self.get(kind, name).cls.Params)

    def as_json(self) -> dict[str, Any]:
        return {
            "components": {kind: self.names(kind) for kind in self.entries},
            "plugins": [dataclasses.asdict(p) for p in self.plugins],
        }


def _dist_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _third_party() -> list[tuple[str, str, Any]]:
    """(entry point name, distribution name, entry point) for the ``coldlab`` group."""
    only = os.environ.get("COLDLAB_LOAD_PLUGINS")
    allowed = None if only is None else {p.strip() for p in only.split(",") if p.strip()}
    found = []
    for ep in importlib.metadata.entry_points(group="coldlab"):
        dist = ep.dist.name if ep.dist is not None else ep.name
        if allowed is not None and dist not in allowed and ep.name not in allowed:
            continue
        found.append((ep.name, dist, ep))
    return found


class PluginHost:
    """Owns the pluggy manager and the :class:`Registry` built from it."""

    def __init__(self, extra_plugins: Iterable[Any] = (), *, entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager("coldlab")
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self._infos: dict[str, PluginInfo] = {}
        self._failed: list[PluginInfo] = []
        version = _dist_version("coldlab")
        for module_name in DEFAULT_PLUGINS:
            module = importlib.import_module(module_name)
            self._register(module, module_name, BUILTIN, version)
        if entry_points:
            for ep_name, dist, ep in _third_party():
                try:
                    module = ep.load()
                except Exception as err:  # a broken plugin must not take the host down
                    self._fail(PluginInfo(ep_name, dist, _dist_version(dist)), f"import failed: {type(err).__name__}: {err}")
                    continue
                self._register(module, ep_name, dist, _dist_version(dist))
        for i, plugin in enumerate(extra_plugins):
            name = getattr(plugin, "__name__", f"plugin-{i}")
            self._register(plugin, name, getattr(plugin, "__package__", None) or name, "local")
        self._collect()

    def _fail(self, info: PluginInfo, error: str) -> None:
        info.error = error
        info.components = {}
        if self._infos.get(info.name) is not info:
            self._failed.append(info)
        warnings.warn(f"coldlab plugin {info.name!r} ({info.package}) skipped: {error}", PluginLoadWarning, stacklevel=3)

    def _register(self, plugin: Any, name: str, package: str, version: str) -> None:
        info = PluginInfo(name=name, package=package, version=version, module=str(getattr(plugin, "__name__", "")))
        if name in self._infos:
            self._fail(info, f"a plugin named {name!r} is already loaded")
            return
        try:
            self.pm.register(plugin, name=name)
        except Exception as err:
            self._fail(info, f"registration failed: {err}")
            return
        unknown = sorted(hc.name for hc in self.pm.get_hookcallers(plugin) or [] if not hc.has_spec())
        if unknown:
            self.pm.unregister(plugin)
            self._fail(info, f"unknown hook(s) {', '.join(unknown)}; coldlab's hooks are {', '.join(hookspecs.KINDS.values())}")
            return
        self._infos[name] = info

    def _collect(self) -> None:
        """Call every plugin's hooks, one plugin at a time, committing only what succeeds."""
        for info in self._infos.values():
            if info.error:
                continue
            plugin = self.pm.get_plugin(info.name)
            staged: list[Entry] = []
            try:
                for kind, hook_name in hookspecs.KINDS.items():
                    impls = [i for i in getattr(self.pm.hook, hook_name).get_hookimpls() if i.plugin is plugin]
                    if not impls:
                        continue
                    impl = impls[0].function

                    def register(component_name: str, cls: type, _kind: str = kind, _staged: list[Entry] = staged, _plugin: str = info.name) -> None:
                        if not isinstance(component_name, str) or not component_name:
                            raise TypeError(f"register() needs a non-empty name, got {component_name!r}")
                        if not hasattr(cls, "Params"):
                            raise TypeError(f"{_kind} {component_name!r} has no Params dataclass")
                        _staged.append(Entry(_kind, component_name, cls, _plugin))

                    impl(register=register)
                taken = [e for e in staged if e.name in self.registry.entries[e.kind]]
                names = [(e.kind, e.name) for e in staged]
                repeated = {n for n in names if names.count(n) > 1}
                if taken or repeated:
                    clash = taken[0] if taken else next(e for e in staged if (e.kind, e.name) in repeated)
                    owner = self.registry.entries[clash.kind].get(clash.name)
                    by = f"plugin {owner.plugin!r}" if owner else "this plugin twice"
                    raise ColdlabError(f"{clash.kind} {clash.name!r} is already registered by {by}")
            except Exception as err:
                self._fail(info, f"{type(err).__name__}: {err}" if not isinstance(err, ColdlabError) else str(err))
                continue
            for e in staged:
                self.registry.entries[e.kind][e.name] = e
                info.components.setdefault(e.kind, []).append(e.name)
        self.registry.plugins = list(self._infos.values()) + self._failed


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide host, loaded on first use."""
    global _HOST
    if _HOST is None:
        _HOST = PluginHost()
    return _HOST


def get_registry() -> Registry:
    return get_host().registry


def reset() -> None:
    """Forget the loaded host (tests use this after changing ``COLDLAB_LOAD_PLUGINS``)."""
    global _HOST
    _HOST = None


def build(kind: str, spec: str | dict[str, Any], **context: Any) -> Any:
    """Build a component by name from the process-wide registry."""
    return get_registry().build(kind, spec, **context)
