"""Copy task folders out of a local LRA release tarball (``lra_release.gz``, a tar.gz).

Members sit under ``lra_release/lra_release/...``; this streams the archive once and writes the
wanted folders (``listops-1000``, ``tsv_data``, ``pathfinder32/<difficulty>``, ...) under the
data root with the leading ``lra_release`` components stripped.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm


def extract_from_release(release: Path, root: Path, folders: list[str], progress: bool = True) -> dict[str, int]:
    """Extract every member whose path contains one of ``folders`` (e.g. ``"pathfinder32/curv_contour_length_14"``).

    Returns the number of files written per folder; raises FileNotFoundError if one is absent.
    """
    if not release.is_file():
        raise FileNotFoundError(f"release archive not found: {release}")
    wanted = [PurePosixPath(f).parts for f in folders]
    written = {f: 0 for f in folders}
    root = root.resolve()
    with tarfile.open(release, "r|*") as tar, tqdm(desc=f"scan {release.name}", unit="file", disable=not progress) as bar:
        for member in tar:
            bar.update(1)
            if not member.isfile():
                continue
            parts = PurePosixPath(member.name).parts
            for folder, want in zip(folders, wanted):
                for i in range(len(parts) - len(want)):
                    if parts[i:i + len(want)] == want:
                        dest = (root / PurePosixPath(*parts[i:])).resolve()
                        if root not in dest.parents:
                            raise ValueError(f"refusing to write outside {root}: {member.name}")
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        src = tar.extractfile(member)
                        assert src is not None
                        with src, open(dest, "wb") as out:
                            shutil.copyfileobj(src, out)
                        written[folder] += 1
                        break
                else:
                    continue
                break
    missing = [f for f, n in written.items() if n == 0]
    if missing:
        raise FileNotFoundError(f"{release} has no member under {missing}")
    return written
