"""Official SMPL model files (licensed by MPI, never shipped), read without running their code.

SMPL 1.0/1.1 ``.pkl`` files are Python 2 pickles of a dict holding numpy arrays, a scipy sparse
``J_regressor`` and chumpy arrays. A pickle can name any importable callable, so they are read
by :class:`RestrictedUnpickler`, which admits only numpy's array reconstruction, the sparse
matrix classes and chumpy's ``Ch``; the last two are replaced by inert stand-ins (chumpy itself
is never imported: it is broken on Python 3.11), then turned into numpy arrays. Anything else
the pickle asks for is refused before it can run. The arrays are converted once to a cached
``.npz`` (``<cache>/smpl/``), which is what later runs read. The ``.npz`` form of the files
(SMPL's own keys, no pickled objects) is accepted too.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import copyreg
import hashlib
import io
import os
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
from numpy.core import multiarray

from ..atomic import atomic_path
from ..errors import HMNError
from ..paths import cache_dir
from .model import SMPL_ARRAY_KEYS

GENDERS = ("neutral", "male", "female")
# Official file names per gender (lower-cased): SMPL_<GENDER>.pkl/.npz as smplx expects them,
# and the names of the SMPL 1.0/1.1 downloads.
_FILE_PATTERNS = {
    gender: re.compile(rf"^(smpl_{gender}\.(pkl|npz)|basicmodel_{short}_lbs_10_207_0_v1\.[01]\.0\.pkl)$")
    for gender, short in (("neutral", "neutral"), ("male", "m"), ("female", "f"))
}
_SMPL_VERTICES = 6890
_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
}


class _ChumpyArray:
    """Stand-in for ``chumpy.ch.Ch``: keeps the pickled state; its value is ``state["x"]``."""

    def __setstate__(self, state: dict) -> None:
        self.state = state


class _CscMatrix:
    """Stand-in for scipy's csc_matrix: keeps the pickled state (data, indices, indptr, shape)."""

    def __setstate__(self, state: dict) -> None:
        self.state = state


class _CsrMatrix(_CscMatrix):
    """Stand-in for scipy's csr_matrix."""


_ALLOWED: dict[tuple[str, str], object] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
    ("builtins", "object"): object,
    ("builtins", "set"): set,  # chumpy's pickled state holds (empty) sets
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles written by Python 3 store bytes
    ("chumpy.ch", "Ch"): _ChumpyArray,
}
for _core in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_core, "_reconstruct")] = multiarray._reconstruct
    _ALLOWED[(_core, "scalar")] = multiarray.scalar
for _kind, _stand_in in (("csc", _CscMatrix), ("csr", _CsrMatrix)):
    for _module in (f"scipy.sparse.{_kind}", f"scipy.sparse._{_kind}"):
        _ALLOWED[(_module, f"{_kind}_matrix")] = _stand_in


class RefusedPickle(pickle.UnpicklingError):
    """The pickle named something outside :data:`_ALLOWED`."""


class RestrictedUnpickler(pickle.Unpickler):
    """Loads only numpy arrays, sparse matrices and chumpy arrays (as stand-ins)."""

    def find_class(self, module: str, name: str) -> object:
        # Python 2 names (__builtin__, copy_reg) mapped as pickle's own find_class does.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickle(f"{module}.{name}") from None


def _to_array(value: object, key: str, source: Path) -> np.ndarray:
    if isinstance(value, _ChumpyArray):
        if "x" not in value.state:
            raise HMNError(source, f"{key}: a chumpy object without an array value")
        return np.asarray(value.state["x"])
    if isinstance(value, _CscMatrix):
        from scipy import sparse

        state = value.state
        shape = state.get("_shape", state.get("shape"))
        data = (state["data"], state["indices"], state["indptr"])
        kind = sparse.csr_matrix if isinstance(value, _CsrMatrix) else sparse.csc_matrix
        return kind(data, shape=shape).toarray()
    return np.asarray(value)


def _identify(content: dict, source: Path) -> None:
    """Raise a clear error for model files that are not SMPL bodies."""
    keys = set(content)
    template = content.get("v_template")
    num_vertices = getattr(getattr(template, "state", {}).get("x", template), "shape", (0,))[0]
    if keys & {"hands_components", "hands_mean"} or num_vertices == 778:
        raise HMNError(source, "this is a MANO hand model, not an SMPL body model")
    if keys & {"lmk_faces_idx", "dynamic_lmk_faces_idx"} or num_vertices == 10475:
        raise HMNError(source, "this is an SMPL-X model; use an SMPL body model file (6890 vertices)")
    if "hands_componentsl" in keys or "hands_meanl" in keys:
        raise HMNError(source, "this is an SMPL+H model; use an SMPL body model file")
    if template is not None and num_vertices != _SMPL_VERTICES:
        raise HMNError(source, f"its template has {num_vertices} vertices, an SMPL body has {_SMPL_VERTICES}")


def read_smpl_pickle(path: Path) -> dict[str, np.ndarray]:
    """SMPL's arrays from an official ``.pkl``, read by :class:`RestrictedUnpickler`."""
    raw = _read_bytes(path)
    try:
        content = RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except RefusedPickle as exc:
        raise HMNError(
            path,
            f"refused: the pickle asks for {exc}, which an SMPL model file never contains "
            "(it could run code); nothing was executed",
        ) from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError) as exc:
        if isinstance(exc, EOFError) or "truncated" in str(exc):
            raise HMNError(path, "the file is truncated or damaged (the pickle ends early)") from None
        raise HMNError(path, f"not a readable SMPL pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(content, dict):
        raise HMNError(path, f"not an SMPL model file (the pickle holds a {type(content).__name__})")
    _identify(content, path)
    return {key: _to_array(content[key], key, path) for key in SMPL_ARRAY_KEYS if key in content}


def read_smpl_npz(path: Path) -> dict[str, np.ndarray]:
    """SMPL's arrays from an ``.npz`` (no pickled objects allowed)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            content = {key: data[key] for key in data.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise HMNError(
                path, "the .npz holds pickled objects; refusing it (use the official .pkl)"
            ) from None
        raise HMNError(path, f"not a readable .npz ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise HMNError(path, f"the .npz is truncated or damaged ({exc})") from None
    _identify(content, path)
    return {key: content[key] for key in SMPL_ARRAY_KEYS if key in content}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise HMNError(path, f"cannot read the SMPL model file ({exc.strerror or exc})") from None
    if not raw:
        raise HMNError(path, "the SMPL model file is empty")
    for magic, what in _MAGIC.items():
        if raw.startswith(magic):
            raise HMNError(path, f"this is {what}, not an SMPL model file")
    return raw


def find_smpl_file(path: Path, gender: str) -> Path:
    """``path`` itself if it is a file, else the ``gender`` model file inside the folder ``path``."""
    if gender not in GENDERS:
        raise HMNError(path, f"unknown gender {gender!r}: choose one of {', '.join(GENDERS)}")
    if path.is_file():
        return path
    if not path.is_dir():
        raise HMNError(path, "no such SMPL model file or folder")
    matches = sorted(
        p for p in path.rglob("*") if p.is_file() and _FILE_PATTERNS[gender].match(p.name.lower())
    )
    if not matches:
        raise HMNError(path, f"no {gender} SMPL model file here (expected SMPL_{gender.upper()}.pkl or .npz)")
    return matches[0]


def load_smpl_arrays(path: str | os.PathLike, gender: str = "neutral") -> tuple[Path, dict[str, np.ndarray]]:
    """(the model file, its SMPL arrays), from the cached conversion when there is one.

    The cache key is the file's SHA-256, so a replaced file is converted again.
    """
    source = find_smpl_file(Path(path), gender)
    raw = _read_bytes(source)
    if raw.startswith(b"PK"):  # a zip: the .npz form, whatever its name
        return source, read_smpl_npz(source)
    cached = cache_dir() / "smpl" / f"{source.stem}-{hashlib.sha256(raw).hexdigest()[:16]}.npz"
    if cached.is_file():
        return source, read_smpl_npz(cached)
    arrays = read_smpl_pickle(source)
    converted = {key: np.asarray(value, dtype=np.float32) for key, value in arrays.items()}
    for key in ("kintree_table", "f"):
        if key in arrays:
            converted[key] = np.asarray(arrays[key]).astype(np.int64)
    with atomic_path(cached) as tmp:
        np.savez(tmp, **converted)
    return source, converted
