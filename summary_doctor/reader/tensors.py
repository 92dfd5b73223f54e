"""Decode ``TensorProto`` messages into numpy arrays and their statistics.

MindSpore's ``TensorSummary`` puts every dtype into ``float_data`` (float32)
and records the original dtype in ``data_type``; other writers may use the
typed fields or ``raw_data``. We read whichever is filled, cast back to the
declared dtype when that is exact, and reshape to ``dims``.
"""

from __future__ import annotations

import numpy as np

from summary_doctor.reader.proto import summary_doctor_pb2 as pb

NUMPY_DTYPES: dict[int, np.dtype] = {
    pb.DT_BOOL: np.dtype(bool),
    pb.DT_INT8: np.dtype(np.int8),
    pb.DT_INT16: np.dtype(np.int16),
    pb.DT_INT32: np.dtype(np.int32),
    pb.DT_INT64: np.dtype(np.int64),
    pb.DT_UINT8: np.dtype(np.uint8),
    pb.DT_UINT16: np.dtype(np.uint16),
    pb.DT_UINT32: np.dtype(np.uint32),
    pb.DT_UINT64: np.dtype(np.uint64),
    pb.DT_FLOAT16: np.dtype(np.float16),
    pb.DT_FLOAT32: np.dtype(np.float32),
    pb.DT_FLOAT64: np.dtype(np.float64),
    pb.DT_COMPLEX64: np.dtype(np.complex64),
    pb.DT_COMPLEX128: np.dtype(np.complex128),
}


def dtype_name(data_type: int) -> str:
    """``DT_FLOAT32`` for 11; ``DT_<n>`` for values newer than our schema."""
    try:
        return pb.DataType.Name(data_type)
    except ValueError:
        return f"DT_{data_type}"


def _typed_values(tensor: pb.TensorProto) -> np.ndarray:
    for field, dtype in (
        ("float_data", np.float32),
        ("double_data", np.float64),
        ("int32_data", np.int32),
        ("int64_data", np.int64),
        ("uint64_data", np.uint64),
    ):
        values = getattr(tensor, field)
        if len(values):
            return np.fromiter(values, dtype=dtype, count=len(values))
    if tensor.raw_data:
        raw_dtype = NUMPY_DTYPES.get(tensor.data_type, np.dtype(np.uint8))
        usable = len(tensor.raw_data) - len(tensor.raw_data) % raw_dtype.itemsize
        return np.frombuffer(tensor.raw_data[:usable], dtype=raw_dtype.newbyteorder("<")).copy()
    return np.empty(0, dtype=np.float32)


def decode_tensor(tensor: pb.TensorProto) -> np.ndarray:
    """The tensor's values as a numpy array of its shape (flat if the shape disagrees)."""
    values = _typed_values(tensor)
    declared = NUMPY_DTYPES.get(tensor.data_type)
    exact = declared is not None and (declared.kind in "fc" or np.isfinite(values).all())
    if exact and declared != values.dtype and values.dtype.kind == "f":
        values = values.astype(declared)
    shape = tuple(int(d) for d in tensor.dims)
    if int(np.prod(shape, dtype=np.int64)) == values.size:
        values = values.reshape(shape)
    return values


def tensor_stats(values: np.ndarray) -> tuple[float, float, float, float, float, int]:
    """min, max, mean, std over finite values; zero fraction; non-finite count."""
    if values.size == 0:
        return (np.nan, np.nan, np.nan, np.nan, np.nan, 0)
    if values.dtype.kind in "fc":
        finite_mask = np.isfinite(values)
        finite = values[finite_mask].astype(np.float64)
        nonfinite = int(values.size - finite.size)
    else:
        finite = values.astype(np.float64).ravel()
        nonfinite = 0
    zero_fraction = float(np.count_nonzero(values == 0) / values.size)
    if finite.size == 0:
        return (np.nan, np.nan, np.nan, np.nan, zero_fraction, nonfinite)
    return (
        float(finite.min()),
        float(finite.max()),
        float(finite.mean()),
        float(finite.std()),
        zero_fraction,
        nonfinite,
    )
