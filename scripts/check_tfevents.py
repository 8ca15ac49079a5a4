#!/usr/bin/env python3
"""check_tfevents.py — checks cameo's TensorBoard event files with independent readers.

usage: python3 scripts/check_tfevents.py RUN/tb [...]
       CAMEO_TEST_KEEP=1 build/tests/test_metrics   # prints "kept DIR"; then check DIR/tb

With the `tensorboard` package installed, its EventAccumulator loads every file and the scalar
and image tags are listed. Without it, the TFRecord framing is checked here (crc32c of the length and of
the data) and each record is parsed as a tensorflow Event with google.protobuf, the message
types being built from a hand-written descriptor of event.proto's fields cameo writes.
Exit 0 when every file reads cleanly.
"""
import glob
import os
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(c):
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def event_class():
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fd = descriptor_pb2.FileDescriptorProto(name="cameo_event.proto", package="tensorflow", syntax="proto3")
    F = descriptor_pb2.FieldDescriptorProto
    img = fd.message_type.add(name="SummaryImage")
    img.field.add(name="height", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    img.field.add(name="width", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    img.field.add(name="colorspace", number=3, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    img.field.add(name="encoded_image_string", number=4, type=F.TYPE_BYTES, label=F.LABEL_OPTIONAL)
    val = fd.message_type.add(name="SummaryValue")
    val.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    val.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL)
    val.field.add(name="image", number=4, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL, type_name=".tensorflow.SummaryImage")
    summ = fd.message_type.add(name="Summary")
    summ.field.add(name="value", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED, type_name=".tensorflow.SummaryValue")
    ev = fd.message_type.add(name="Event")
    ev.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    ev.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    ev.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    ev.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL, type_name=".tensorflow.Summary")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    desc = pool.FindMessageTypeByName("tensorflow.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def check_file(path, Event):
    data = open(path, "rb").read()
    pos, n, tags = 0, 0, {}
    while pos < len(data):
        if len(data) - pos < 12:
            raise ValueError(f"{path}: truncated header at {pos}")
        (length,) = struct.unpack_from("<Q", data, pos)
        (lcrc,) = struct.unpack_from("<I", data, pos + 8)
        if lcrc != masked(crc32c(data[pos:pos + 8])):
            raise ValueError(f"{path}: length crc mismatch at {pos}")
        body = data[pos + 12:pos + 12 + length]
        (dcrc,) = struct.unpack_from("<I", data, pos + 12 + length)
        if dcrc != masked(crc32c(body)):
            raise ValueError(f"{path}: data crc mismatch at {pos}")
        e = Event()
        e.ParseFromString(body)
        if n == 0 and e.file_version != "brain.Event:2":
            raise ValueError(f"{path}: first record is not file_version brain.Event:2")
        for v in e.summary.value:
            if v.HasField("image"):  # a PNG of the stated size
                png = v.image.encoded_image_string
                w, h = struct.unpack(">II", png[16:24]) if png[:8] == b"\x89PNG\r\n\x1a\n" else (-1, -1)
                if (w, h) != (v.image.width, v.image.height):
                    raise ValueError(f"{path}: image {v.tag} at step {e.step}: PNG {w}x{h}, stated {v.image.width}x{v.image.height}")
                tags.setdefault(v.tag, []).append((e.step, float(len(png))))
            else:
                tags.setdefault(v.tag, []).append((e.step, v.simple_value))
        pos += 12 + length + 4
        n += 1
    return n, tags


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    files = []
    for a in sys.argv[1:]:
        files += sorted(glob.glob(os.path.join(a, "events.out.tfevents.*"))) if os.path.isdir(a) else [a]
    if not files:
        print("no event files found")
        return 1
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        EventAccumulator = None
    if EventAccumulator:
        for f in files:
            acc = EventAccumulator(f)
            acc.Reload()
            print(f"{f}: tensorboard reads scalars {acc.Tags()['scalars']}, images {acc.Tags()['images']}")
        return 0
    Event = event_class()
    for f in files:
        n, tags = check_file(f, Event)
        summary = ", ".join(f"{t} x{len(v)} (last {v[-1][1]:.4g} @ {v[-1][0]})" for t, v in tags.items())
        print(f"{f}: {n} records, CRCs ok; {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
