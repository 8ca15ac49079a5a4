// upload.h — host-to-device copies that overlap the device's queued work: the bytes go through a
// small ring of pinned host buffers and device buffers, cross on the device's copy stream while
// the compute stream runs, and are moved into place on the compute stream (a device-to-device
// copy queued behind a wait for the upload). op_to_device's host-to-device path.
// defines: upload_to_device
#pragma once
#include <stddef.h>
#include "autograd/tensor.h"

// dst (device memory of dev) = src (host memory, n bytes). Returns once src may be reused;
// compute-stream work queued afterwards sees the data. Small copies (< 64 KiB), or no staging
// memory to be had, take the backend's plain memcpy_h2d. A CPU dev is a memcpy.
void upload_to_device(cm_device dev, void *dst, const void *src, size_t n);
