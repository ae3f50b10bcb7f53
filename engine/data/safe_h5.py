"""Reading an untrusted HDF5 file as data only: no other file is ever opened or read through it.

HDF5 can make a dataset read bytes from elsewhere: *external storage* (a dataset's data kept in other files,
say ``/etc/passwd`` or ``/dev/zero``), *external links* (a name resolved in another HDF5 file) and *virtual
datasets* (data mapped from other files). A dataset file needs none of these, and following them would let a
file disclose other files' contents or read without end, so they are refused. Soft links are followed only to
paths inside the same file, one path component at a time (an intermediate component can be a link too), with
at most :data:`MAX_LINK_HOPS` soft links per name, so a loop ends in a sentence rather than a traceback.

Nothing here reads a dataset's data: :func:`open_dataset` finds a dataset by name and checks that its data
lies inside the file; the caller checks its declared shape and dtype against its limits before reading.
h5py is imported by the caller (it is optional).
"""

from __future__ import annotations

from typing import Any, Optional

#: Soft links followed while resolving one name (a longer chain is treated as a loop).
MAX_LINK_HOPS = 16


class H5Problem(ValueError):
    """An HDF5 file is not plain data; the message is the problem, to follow "Dataset file PATH "."""


def _cut(text: str, most: int = 120) -> str:
    """A file's own text for a message: non-printable characters escaped, cut to ``most`` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= most else text[:most] + "…"


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _resolve(h5py: Any, f: Any, name: str) -> Optional[Any]:
    """The object at absolute path ``name`` of file ``f`` through hard links and in-file soft links only, or
    None when nothing is there (a dangling soft link counts as nothing)."""
    pending = _parts(name)
    node = f["/"]
    hops = 0
    while pending:
        part = pending.pop(0)
        if not isinstance(node, h5py.Group):
            return None
        try:
            link = node.get(part, getlink=True)  # looks at the link itself, resolves nothing
        except (TypeError, KeyError, OSError, ValueError, RuntimeError):
            raise H5Problem(f"has a link of a kind that is not read at {name}") from None
        if link is None:
            return None
        if isinstance(link, h5py.ExternalLink):
            raise H5Problem(
                f"has {name} as an external link to another file ({_cut(link.filename)}), which is "
                f"not followed; store the data in the file itself"
            )
        if isinstance(link, h5py.SoftLink):
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise H5Problem(f"has a soft-link loop (or a chain of more than {MAX_LINK_HOPS} soft links) at {name}")
            target = str(link.path)
            base = [] if target.startswith("/") else _parts(node.name)
            pending = base + _parts(target) + pending
            node = f["/"]
            continue
        if not isinstance(link, h5py.HardLink):
            raise H5Problem(f"has a link of a kind that is not read at {name}")
        try:
            node = node[part]  # a hard link: an object of this file
        except (KeyError, OSError, ValueError, RuntimeError):
            return None
    return node


def open_dataset(h5py: Any, f: Any, name: str) -> Optional[Any]:
    """The h5py Dataset named ``name`` in the open file ``f``, checked to hold its data in the file itself, or
    None when ``name`` is not a dataset. Raises :class:`H5Problem` for external links, soft-link loops,
    external storage and virtual datasets."""
    obj = _resolve(h5py, f, name)
    if not isinstance(obj, h5py.Dataset):
        return None
    if obj.is_virtual:
        raise H5Problem(
            f"has {name} as a virtual dataset (data mapped from other files), which is not read; "
            f"store the data in the file itself"
        )
    try:
        external = obj.id.get_create_plist().get_external_count()
    except (OSError, ValueError, RuntimeError):
        raise H5Problem(f"has a dataset {name} whose storage cannot be inspected") from None
    if external > 0:
        raise H5Problem(f"has {name} stored in external files, which are not read; store the data in the file itself")
    return obj


def string_kind(h5py: Any, dset: Any) -> Optional[str]:
    """'vlen' for variable-length strings, 'fixed' for fixed-length ones, None for anything else."""
    info = h5py.check_string_dtype(dset.dtype)
    if info is None:
        return "fixed" if dset.dtype.kind == "S" else None
    return "vlen" if info.length is None else "fixed"


__all__ = ["H5Problem", "MAX_LINK_HOPS", "open_dataset", "string_kind"]
