"""Read PyTorch ``torch.save`` files into NumPy arrays without importing PyTorch.

Two container formats exist:

* zip (PyTorch >= 1.6): ``<archive>/data.pkl`` plus one raw little-endian storage per tensor under
  ``<archive>/data/<key>``;
* legacy (older releases, e.g. the 2020 GhostNet weights): a stream of pickles — magic number, protocol version,
  system info, the object pickle, the list of storage keys — followed by each storage as an int64 element count
  and its raw bytes.

Every pickle in both formats (the legacy format's magic number, version and storage-key list included) goes
through :class:`RestrictedUnpickler`. Only the tensor/parameter rebuild functions, ``collections.OrderedDict`` and
the torch storage types resolve to real objects (our own NumPy-backed stand-ins). Any other global named in the pickle
(``argparse.Namespace`` in a training checkpoint's ``args``, a pickled ``nn.Module``, ...) becomes an inert
:class:`Opaque` record; nothing from the file is ever executed, and an ``Opaque`` that ends up inside the state
dict being converted is reported as an error by the caller.
"""
import collections
import inspect
import io
import pickle
import struct
import zipfile

import numpy as np

from src.errors import ProjectError

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001

# torch storage class name -> NumPy dtype (bfloat16 has no NumPy dtype: read as uint16, widened later).
STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16, "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class TorchReadError(ProjectError, ValueError):
    """The file is not a readable ``torch.save`` checkpoint."""


class Opaque:
    """Inert record of a pickled object whose class is not on the allow-list (never executed)."""

    def __init__(self, qualname, *args, **kwargs):
        self.qualname = qualname
        self.args = args
        self.kwargs = kwargs
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<opaque {self.qualname}>"


def _opaque_class(qualname):
    """A class whose construction (REDUCE/NEWOBJ) only records ``qualname`` and the arguments."""
    def new(cls, *args, **kwargs):
        del kwargs
        obj = object.__new__(cls)
        Opaque.__init__(obj, qualname, *args)
        return obj
    return type("Opaque", (Opaque,), {"__new__": new, "__init__": lambda self, *a, **k: None})


class StorageType:
    """Stand-in for ``torch.<X>Storage``: carries the element dtype."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class Storage:
    """A flat typed buffer; ``data`` is filled when the raw bytes are read (immediately for zip files)."""

    def __init__(self, storage_type, base=None, offset=0, size=None):
        self.storage_type = storage_type
        self.base, self.offset, self.size = base, offset, size
        self.data = None

    def array(self):
        """The flat NumPy view of this storage (views resolve through their root storage)."""
        if self.base is not None:
            return self.base.array()[self.offset:self.offset + self.size]
        if self.data is None:
            raise TorchReadError("storage referenced by the pickle has no data in the file")
        return self.data


class LazyTensor:
    """A tensor recorded by ``_rebuild_tensor_v2``; :meth:`materialize` turns it into an ndarray."""

    def __init__(self, storage, offset, size, stride):
        if not (isinstance(storage, Storage) and _ints(offset) and _ints(*size) and _ints(*stride)):
            raise TorchReadError(f"bad tensor record: offset {offset!r}, size {size!r}, stride {stride!r}")
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialize(self):
        """Copy out the strided view. Bounds are checked first: ``as_strided`` itself would read past the buffer."""
        flat = self.storage.array()
        if len(self.size) != len(self.stride) or min(self.stride, default=0) < 0:
            raise TorchReadError(f"bad tensor geometry size={self.size} stride={self.stride}")
        if 0 not in self.size:
            last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
            if self.offset < 0 or last >= flat.size:
                raise TorchReadError(f"tensor of size {self.size} overruns its storage ({flat.size} elements)")
        base = flat[self.offset:] if flat.size else flat
        out = np.lib.stride_tricks.as_strided(base, shape=self.size,
                                              strides=[s * flat.itemsize for s in self.stride]).copy()
        if self.storage.storage_type.name == "BFloat16Storage":
            out = (out.astype(np.uint32) << 16).view(np.float32)
        return out


def _ints(*values):
    """True when every value is a plain integer (a pickle can hold anything where a tensor record has ints)."""
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    del requires_grad, backward_hooks, metadata
    return LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    del requires_grad, backward_hooks
    return data


ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the allow-listed globals; storages come from ``load_storage``."""

    def __init__(self, file, load_storage):
        super().__init__(file)
        self.load_storage = load_storage

    def find_class(self, module, name):
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name)
        return _opaque_class(f"{module}.{name}")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid:
            raise TorchReadError(f"unsupported persistent id {pid!r}")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module":
            raise TorchReadError("the file holds a pickled nn.Module; save and convert its state_dict() instead")
        if kind != "storage" or len(pid) < 2 or not isinstance(pid[1], StorageType) or self.load_storage is None:
            raise TorchReadError(f"unsupported persistent id {kind!r} (only tensor storages can be read)")
        try:
            inspect.signature(self.load_storage).bind(*pid[1:])
        except TypeError:
            raise TorchReadError(f"storage record with {len(pid) - 1} fields does not fit this format") from None
        return self.load_storage(*pid[1:])

    def load(self):
        """The next object of the stream; malformed pickle data (which makes the allow-listed stand-ins raise
        anything) is a :class:`TorchReadError`. Only here: the file drives the calls while it is unpickled."""
        try:
            return super().load()
        except TorchReadError:
            raise
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError, KeyError, IndexError,
                AttributeError) as exc:
            raise TorchReadError(f"malformed pickle data ({type(exc).__name__}: {exc})") from exc


def _materialize(obj):
    """Replace every :class:`LazyTensor` inside dicts/lists/tuples by its ndarray."""
    if isinstance(obj, LazyTensor):
        return obj.materialize()
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _materialize(v)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def _load_zip(path):
    with zipfile.ZipFile(path) as zf:
        pkls = [n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkls) != 1:
            raise TorchReadError(f"{path}: zip file without exactly one data.pkl (not a torch.save file)")
        root = pkls[0][:-len("data.pkl")]
        order = "little"
        if root + "byteorder" in zf.namelist():
            order = zf.read(root + "byteorder").decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise TorchReadError(f"{path}: byteorder record {order[:20]!r} is neither 'little' nor 'big'")
        storages = {}

        def load_storage(storage_type, key, location, numel=None):
            del location, numel
            if key not in storages:
                storage = Storage(storage_type)
                try:
                    raw = zf.read(f"{root}data/{key}")
                except KeyError as exc:
                    raise TorchReadError(f"{path}: storage {key} missing from the archive") from exc
                dtype = storage_type.dtype.newbyteorder("<" if order == "little" else ">")
                if len(raw) % dtype.itemsize:
                    raise TorchReadError(f"{path}: storage {key} size is not a multiple of {dtype.itemsize}")
                storage.data = np.frombuffer(raw, dtype=dtype).astype(storage_type.dtype)
                storages[key] = storage
            return storages[key]

        return RestrictedUnpickler(io.BytesIO(zf.read(pkls[0])), load_storage).load()


def _load_legacy(path):
    with open(path, "rb") as f:
        try:
            magic = RestrictedUnpickler(f, None).load()
        except TorchReadError as exc:  # the first pickle does not even parse: not a torch file
            raise TorchReadError(f"{path}: not a torch.save file") from exc
        if magic != LEGACY_MAGIC:
            raise TorchReadError(f"{path}: not a torch.save file (bad magic number)")
        if RestrictedUnpickler(f, None).load() != LEGACY_PROTOCOL:
            raise TorchReadError(f"{path}: unsupported legacy protocol version")
        sys_info = RestrictedUnpickler(f, None).load()
        little = not isinstance(sys_info, dict) or sys_info.get("little_endian", True)
        roots = {}

        def load_storage(storage_type, root_key, location, numel, view_metadata):
            del location
            root = roots.setdefault(root_key, Storage(storage_type))
            root.size = numel
            if view_metadata is None:
                return root
            _, offset, size = view_metadata
            return Storage(storage_type, base=root, offset=offset, size=size)

        result = RestrictedUnpickler(f, load_storage).load()
        keys = RestrictedUnpickler(f, None).load()
        if not isinstance(keys, list) or not all(isinstance(k, (str, int)) for k in keys):
            raise TorchReadError(f"{path}: bad storage key list")
        for key in keys:
            if key not in roots:
                raise TorchReadError(f"{path}: storage {key} listed but never referenced")
            storage = roots[key]
            dtype = storage.storage_type.dtype.newbyteorder("<" if little else ">")
            header = f.read(8)
            if len(header) != 8:
                raise TorchReadError(f"{path}: truncated storage data")
            (numel,) = struct.unpack("<q" if little else ">q", header)
            raw = f.read(numel * dtype.itemsize)
            if numel < 0 or len(raw) != numel * dtype.itemsize:
                raise TorchReadError(f"{path}: truncated storage data")
            storage.data = np.frombuffer(raw, dtype=dtype).astype(storage.storage_type.dtype)
        return result


def load_torch_file(path):
    """Load a ``torch.save`` file (zip or legacy format) with every tensor as a NumPy array.

    Returns the unpickled object (usually a dict / OrderedDict); parameters become plain arrays, bfloat16
    becomes float32.
    """
    try:
        obj = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
    except TorchReadError as exc:
        if str(exc).startswith(path):
            raise
        raise TorchReadError(f"{path}: {exc}") from exc
    except zipfile.BadZipFile as exc:  # a cut or damaged archive
        raise TorchReadError(f"{path}: unreadable torch file (damaged zip archive: {exc})") from exc
    return _materialize(obj)
