"""Small structure files we author ourselves (no downloads), written into the episode's HOME.

``zinc_site.pdb``: a zinc ion with four waters on tetrahedral positions at 2.05 Å.
``water_box.pdb``: eight waters on the corners of a 3.1 Å cube, O-H 0.96 Å.
``ligands.sdf``: two small molecules (methane, ammonia) as separate SD records.
"""

from __future__ import annotations

import math

ZN_O = 2.05
OH = 0.96


def _pdb_atom(serial: int, name: str, resn: str, chain: str, resi: int, xyz: tuple[float, float, float],
              element: str, hetatm: bool = True) -> str:
    record = "HETATM" if hetatm else "ATOM  "
    padded = f" {name:<3}" if len(name) < 4 else name
    x, y, z = xyz
    return (f"{record}{serial:5d} {padded:<4} {resn:>3} {chain}{resi:4d}    "
            f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00          {element:>2}")


def _water(serial: int, resi: int, chain: str, o: tuple[float, float, float],
           direction: tuple[float, float, float]) -> list[str]:
    """One HOH with its hydrogens pointing away from ``direction`` (a unit vector)."""
    dx, dy, dz = direction
    half = math.radians(104.5) / 2
    # two hydrogens in the plane spanned by the direction and a perpendicular vector
    px, py, pz = (-dy, dx, 0.0) if abs(dz) < 0.9 else (0.0, -dz, dy)
    norm = math.sqrt(px * px + py * py + pz * pz)
    px, py, pz = px / norm, py / norm, pz / norm
    lines = [_pdb_atom(serial, "O", "HOH", chain, resi, o, "O")]
    for index, sign in enumerate((1, -1), start=1):
        hx = o[0] + OH * (dx * math.cos(half) + sign * px * math.sin(half))
        hy = o[1] + OH * (dy * math.cos(half) + sign * py * math.sin(half))
        hz = o[2] + OH * (dz * math.cos(half) + sign * pz * math.sin(half))
        lines.append(_pdb_atom(serial + index, f"H{index}", "HOH", chain, resi, (hx, hy, hz), "H"))
    return lines


def zinc_site() -> str:
    """Zn2+ at the origin, four HOH oxygens at ``ZN_O`` Å on the tetrahedron's vertices."""
    lines = [_pdb_atom(1, "ZN", "ZN", "A", 1, (0.0, 0.0, 0.0), "ZN")]
    serial = 2
    for resi, (sx, sy, sz) in enumerate(((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)), start=2):
        unit = (sx / math.sqrt(3), sy / math.sqrt(3), sz / math.sqrt(3))
        o = (unit[0] * ZN_O, unit[1] * ZN_O, unit[2] * ZN_O)
        lines += _water(serial, resi, "A", o, unit)
        serial += 3
    return "\n".join(lines + ["END", ""])


def water_box() -> str:
    """Eight waters on the corners of a cube with 3.1 Å edges, centred on the origin."""
    lines, serial, resi = [], 1, 1
    for sx in (-1, 1):
        for sy in (-1, 1):
            for sz in (-1, 1):
                o = (1.55 * sx, 1.55 * sy, 1.55 * sz)
                unit = (sx / math.sqrt(3), sy / math.sqrt(3), sz / math.sqrt(3))
                lines += _water(serial, resi, "W", o, unit)
                serial, resi = serial + 3, resi + 1
    return "\n".join(lines + ["END", ""])


def _sd_record(title: str, atoms: list[tuple[str, float, float, float]], bonds: list[tuple[int, int]]) -> str:
    lines = [title, "  SciBoard", "", f"{len(atoms):3d}{len(bonds):3d}  0  0  0  0  0  0  0  0999 V2000"]
    lines += [f"{x:10.4f}{y:10.4f}{z:10.4f} {el:<3} 0  0  0  0  0  0  0  0  0  0  0  0" for el, x, y, z in atoms]
    lines += [f"{a:3d}{b:3d}  1  0  0  0  0" for a, b in bonds]
    return "\n".join(lines + ["M  END", "$$$$", ""])


def ligands() -> str:
    """Methane (C-H 1.09 Å) and ammonia (N-H 1.01 Å), tetrahedral, 6 Å apart."""
    t = 1 / math.sqrt(3)
    corners = ((t, t, t), (t, -t, -t), (-t, t, -t), (-t, -t, t))
    methane = [("C", 0.0, 0.0, 0.0)] + [("H", 1.09 * a, 1.09 * b, 1.09 * c) for a, b, c in corners]
    ammonia = [("N", 6.0, 0.0, 0.0)] + [("H", 6.0 + 1.01 * a, 1.01 * b, 1.01 * c) for a, b, c in corners[:3]]
    return (_sd_record("methane", methane, [(1, i) for i in range(2, 6)])
            + _sd_record("ammonia", ammonia, [(1, i) for i in range(2, 5)]))


#: file name -> builder; setup steps can only write these.
FILES = {"zinc_site.pdb": zinc_site, "water_box.pdb": water_box, "ligands.sdf": ligands}
