"""torch_zip_check.py FILE — reads a torch.save zip as PyTorch would, with the standard library
only (zipfile, pickle), and prints one line per tensor: name|dtype|shape|crc32 of its bytes.
Used by tests/train/test_torch_export.c to check cameo's torch writer (train/torch_export.c)
against an independent reader: every entry's CRC (zipfile.testzip), the records torch.load
needs, the pickle's globals limited to those torch.load(weights_only=True) allows, each tensor
contiguous from offset 0 of a storage of exactly its size. Where PyTorch is importable it also
loads the file with torch.load(weights_only=True) and checks every tensor's bytes against the
above ("torch: N tensors equal" on stderr). Exit 1 with a message on any failure.
"""
import collections
import io
import pickle
import sys
import zipfile
import zlib

SIZES = {"BFloat16Storage": ("bf16", 2), "FloatStorage": ("f32", 4), "HalfStorage": ("f16", 2),
         "DoubleStorage": ("f64", 8)}


def fail(msg):
    print(f"torch_zip_check: {msg}", file=sys.stderr)
    sys.exit(1)


class Storage:
    def __init__(self, kind):
        self.kind = kind


def rebuild(storage, offset, size, stride, requires_grad, hooks):
    dtype, data = storage
    n = 1
    for s in size:
        n *= s
    want = []
    acc = 1
    for s in reversed(size):
        want.insert(0, acc)
        acc *= s
    if offset != 0 or list(stride) != want or len(data) != n * SIZES[dtype][1]:
        fail(f"a tensor is not contiguous from offset 0 of its own storage: offset {offset}, size {size}, "
             f"stride {stride}, {len(data)} bytes")
    if requires_grad is not False or not isinstance(hooks, collections.OrderedDict) or hooks:
        fail("requires_grad / backward hooks are not (False, OrderedDict())")
    return (dtype, tuple(size), data)


def main():
    path = sys.argv[1]
    z = zipfile.ZipFile(path)
    bad = z.testzip()
    if bad:
        fail(f"{path}: entry {bad} fails its CRC")
    names = z.namelist()
    prefix = names[0].split("/")[0]
    if any(not n.startswith(prefix + "/") for n in names):
        fail("records outside one folder")
    for rec in ("data.pkl", "byteorder", "version"):
        if f"{prefix}/{rec}" not in names:
            fail(f"no {rec} record")
    if z.read(f"{prefix}/byteorder") != b"little":
        fail("byteorder is not 'little'")
    for info in z.infolist():
        if info.compress_type != zipfile.ZIP_STORED:
            fail(f"{info.filename} is compressed")

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return rebuild
            if module == "torch" and name in SIZES:
                return Storage(name)
            fail(f"global {module}.{name} is not one torch.load(weights_only=True) allows here")

        def persistent_load(self, pid):
            if not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage" or pid[3] != "cpu":
                fail(f"persistent id {pid!r}")
            kind, key, numel = pid[1].kind, pid[2], pid[4]
            data = z.read(f"{prefix}/data/{key}")
            if len(data) != numel * SIZES[kind][1]:
                fail(f"storage {key}: {len(data)} bytes for {numel} elements of {kind}")
            return (kind, data)

    obj = Reader(io.BytesIO(z.read(f"{prefix}/data.pkl"))).load()
    if not isinstance(obj, dict):
        fail("the top level is not a dict")
    rows = []
    for part, sd in obj.items():
        if not isinstance(sd, collections.OrderedDict):
            fail(f"{part} is not an OrderedDict")
        for key, (kind, shape, data) in sd.items():
            rows.append((f"{part}.{key}", SIZES[kind][0], shape, data))
            print(f"{part}.{key}|{SIZES[kind][0]}|{','.join(map(str, shape))}|{zlib.crc32(data):08x}")
    try:
        import torch
    except ImportError:
        return 0
    t = torch.load(path, map_location="cpu", weights_only=True)
    n = 0
    for name, _, shape, data in rows:
        part, key = name.split(".", 1)
        v = t[part][key]
        if tuple(v.shape) != shape or v.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() != data:
            fail(f"torch.load: {name} differs")
        n += 1
    print(f"torch: {n} tensors equal", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
