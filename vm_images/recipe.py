"""Image recipes: the shared base plus one TOML file per app, and the hash that names a build.

Every app built from Debian packages alone shares one disk, the *desktop layer*: the base plus all
those apps' packages in one filesystem (the same package set as the local desktop tree). Each such
app's image is a thin qcow2 overlay on it that only adds the app's own settings (memory). Apps that
take the user's installer (ChimeraX, Celestia) are built on their own.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
#: What the builder writes into every image (part of every image's hash).
GUEST_CONFIG = Path(__file__).resolve().parent / "guest_config.py"
#: Bump when the builder changes what it writes into an image (invalidates every cached image).
BUILDER_VERSION = 2
#: The name of the shared desktop layer under the images directory.
DESKTOP_LAYER = "desktop"


class RecipeError(ValueError):
    """A recipe is missing or malformed, or its installer argument is wrong."""


@dataclass(frozen=True)
class Recipe:
    """Everything one image is built from."""

    app: str
    suite: str
    mirrors: tuple[str, ...]
    kernel: str
    packages: tuple[str, ...]
    #: What the local desktop tree needs of this recipe: everything but the kernel and the boot services.
    desktop_packages: tuple[str, ...]
    dpkg_exclude: tuple[str, ...]
    dpkg_include: tuple[str, ...]
    memory_mib: int
    installer_required: bool = False
    installer_suffixes: tuple[str, ...] = ()
    installer_hint: str = ""
    sources: tuple[Path, ...] = field(default=(), compare=False)
    recipes_dir: Path = field(default=RECIPES_DIR, compare=False)

    @property
    def on_desktop_layer(self) -> bool:
        """True when the image is an overlay of the shared desktop layer (no installer needed)."""
        return not self.installer_required and self.app != DESKTOP_LAYER

    def digest(self, installer: Path | None = None) -> str:
        """A short hash of the recipe files, the guest configuration, the builder version and the installer.

        An image on the desktop layer hashes the layer's digest and its own recipe.
        """
        if self.on_desktop_layer:
            h = hashlib.sha256(f"{layer_digest(self.recipes_dir)}\n{self.app}\n".encode())
            h.update(self.sources[-1].read_bytes())
            return h.hexdigest()[:16]
        h = hashlib.sha256(f"builder-{BUILDER_VERSION}\n".encode())
        if self.app == DESKTOP_LAYER:  # the base and the packages: the apps' own settings are not in the layer
            h.update("\n".join(self.packages).encode() + b"\0")
            for source in (self.sources[0], GUEST_CONFIG):
                h.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
            return h.hexdigest()[:16]
        for source in (*self.sources, GUEST_CONFIG):
            h.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
        if installer is not None:
            h.update(b"installer\0" + _file_sha256(installer).encode())
        return h.hexdigest()[:16]

    def check_installer(self, installer: Path | None) -> None:
        """Raise :class:`RecipeError` unless ``installer`` fits what the recipe asks for."""
        if installer is None:
            if self.installer_required:
                raise RecipeError(f"the {self.app} image needs the installer file you downloaded: "
                                  f"pass it with --installer. {self.installer_hint}")
            return
        if not self.installer_required:
            raise RecipeError(f"the {self.app} image is built from Debian packages only; it takes no installer")
        if not installer.is_file():
            raise RecipeError(f"installer {installer} is not a file")
        if not installer.name.endswith(self.installer_suffixes):
            raise RecipeError(f"installer {installer.name} must end with one of {list(self.installer_suffixes)}. "
                              f"{self.installer_hint}")


def apps(recipes_dir: Path = RECIPES_DIR) -> list[str]:
    """The apps that have a recipe."""
    return sorted(p.stem for p in recipes_dir.glob("*.toml") if p.stem != "base")


def layer_apps(recipes_dir: Path = RECIPES_DIR) -> list[str]:
    """The apps whose images share the desktop layer: every recipe built from Debian packages alone."""
    return [app for app in apps(recipes_dir) if not load(app, recipes_dir).installer_required]


def desktop_layer(recipes_dir: Path = RECIPES_DIR) -> Recipe:
    """The recipe of the shared desktop layer: the base plus the packages of every :func:`layer_apps` app."""
    recipes = [load(app, recipes_dir) for app in layer_apps(recipes_dir)]
    if not recipes:
        raise RecipeError(f"no recipe in {recipes_dir} builds from Debian packages alone")
    first = recipes[0]
    return Recipe(
        app=DESKTOP_LAYER, suite=first.suite, mirrors=first.mirrors, kernel=first.kernel,
        packages=tuple(dict.fromkeys(p for r in recipes for p in r.packages)),
        desktop_packages=tuple(dict.fromkeys(p for r in recipes for p in r.desktop_packages)),
        dpkg_exclude=first.dpkg_exclude, dpkg_include=first.dpkg_include,
        memory_mib=max(r.memory_mib for r in recipes),
        sources=(first.sources[0], *(r.sources[-1] for r in recipes)), recipes_dir=recipes_dir,
    )


def layer_digest(recipes_dir: Path = RECIPES_DIR) -> str:
    """The digest of the shared desktop layer (changes with the base or any layer app's recipe)."""
    return desktop_layer(recipes_dir).digest()


def load(app: str, recipes_dir: Path = RECIPES_DIR) -> Recipe:
    """The recipe for ``app`` merged with the shared base."""
    base_path, app_path = recipes_dir / "base.toml", recipes_dir / f"{app}.toml"
    if app == "base" or not app_path.is_file():
        raise RecipeError(f"no VM image recipe for {app!r}; known: {', '.join(apps())}")
    try:
        base = tomllib.loads(base_path.read_text())
        spec = tomllib.loads(app_path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise RecipeError(f"bad recipe for {app}: {err}") from err
    if spec.get("app") != app:
        raise RecipeError(f"{app_path} must say app = {app!r}")
    installer = spec.get("installer", {})
    return Recipe(
        app=app,
        suite=base["suite"],
        mirrors=tuple(base["mirrors"]),
        kernel=base["kernel"],
        packages=tuple(dict.fromkeys([base["kernel"], *base.get("boot_packages", []), *base["packages"],
                                       *spec.get("packages", [])])),
        desktop_packages=tuple(dict.fromkeys([*base["packages"], *spec.get("packages", [])])),
        dpkg_exclude=tuple(base.get("dpkg_exclude", [])),
        dpkg_include=tuple(base.get("dpkg_include", [])),
        memory_mib=int(spec.get("memory_mib", 1536)),
        installer_required=bool(installer.get("required", False)),
        installer_suffixes=tuple(installer.get("suffixes", ())),
        installer_hint=installer.get("hint", ""),
        sources=(base_path, app_path),
        recipes_dir=recipes_dir,
    )


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
