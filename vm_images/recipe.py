"""Image recipes: the shared base plus one TOML file per app, and the hash that names a build."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
#: What the builder writes into every image (part of every image's hash).
GUEST_CONFIG = Path(__file__).resolve().parent / "guest_config.py"
#: Bump when the builder changes what it writes into an image (invalidates every cached image).
BUILDER_VERSION = 1


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

    def digest(self, installer: Path | None = None) -> str:
        """A short hash of the recipe files, the guest configuration, the builder version and the installer."""
        h = hashlib.sha256(f"builder-{BUILDER_VERSION}\n".encode())
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


def apps() -> list[str]:
    """The apps that have a recipe."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.toml") if p.stem != "base")


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
    )


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
