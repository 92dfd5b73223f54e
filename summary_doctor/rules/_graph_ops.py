"""What MindSpore calls things in a computation graph: the op vocabulary the graph rules rely on.

Collected from MindSpore's ``nn`` and ``ops`` sources (1.x and 2.x) and checked
on the 2.10 fixtures (``fixtures/README.md``). A new optimizer or layer op that
is not listed here is simply not recognised: add it here, in one place.
"""

from __future__ import annotations

#: Nodes that order execution and carry no value of their own.
BOOKKEEPING = frozenset({"UpdateState", "MakeTuple", "Depend", "Load", "TupleGetItem"})
#: Nodes that pass their first input's values on (maybe reshaped or cast): "what feeds X" looks through them.
SEE_THROUGH = frozenset(
    {"Load", "Depend", "TupleGetItem", "Cast", "Reshape", "Flatten", "ExpandDims", "Squeeze", "Transpose"}
    | {"Identity", "StopGradient", "Contiguous"}
)
#: Optimizer primitives that write a parameter given as their input 0 (``mindspore.nn.optim``, 1.x and 2.x).
#: Left out: AdamNoUpdateParam and LARSUpdate (they return an update, the parameter is written elsewhere)
#: and FusedAdaFactor (the parameter is not input 0).
UPDATE_OPS = frozenset(
    {"ApplyMomentum", "Adam", "AdamWeightDecay", "SGD", "Lamb"}
    | {"ApplyAdagrad", "ApplyAdagradV2", "ApplyAdadelta", "ApplyAdaMax", "ApplyRMSProp", "ApplyCenteredRMSProp"}
    | {"ApplyFtrl", "ApplyProximalAdagrad", "ApplyGradientDescent", "ApplyAdamWithAmsgrad", "ApplyAdamWithAmsgradV2"}
    | {"FusedSparseAdam", "FusedSparseLazyAdam", "FusedSparseFtrl", "FusedSparseProximalAdagrad"}
    | {"SparseApplyFtrl", "SparseApplyProximalAdagrad", "SparseApplyAdagrad"}
)
#: Writes into a parameter; an update node when it sits in the optimizer's scope (Rprop, ASGD, ...).
ASSIGN_OPS = frozenset({"Assign", "AssignSub", "AssignAdd"})
#: Optimizer classes of ``mindspore.nn``, recognised as scope segments (``optimizer-Momentum``).
OPTIMIZER_CLASSES = frozenset(
    {"Momentum", "Adam", "AdamWeightDecay", "AdamOffload", "LazyAdam", "AdaMax", "SGD", "Lamb", "LARS"}
    | {"RMSProp", "Adagrad", "Adadelta", "FTRL", "ProximalAdagrad", "Rprop", "ASGD", "AdaFactor", "THOR"}
)
#: Ops that use a parameter as a layer's weight, with the input positions of that weight (None: any input).
WEIGHT_OPS: dict[str, tuple[int, ...] | None] = {
    "MatMul": None,
    "BatchMatMul": None,
    "Dense": (1, 2),
    "Conv2D": (1,),
    "Conv3D": (1,),
    "Conv2DTranspose": (1,),
    "Conv3DTranspose": (1,),
    "Conv2DBackpropInput": (1,),
    "DepthwiseConv2dNative": (1,),
    "Gather": (0,),
    "GatherV2": (0,),
    "SparseGatherV2": (0,),
    "EmbeddingLookup": (0,),
    "BiasAdd": (1,),
    "PReLU": (1,),
}
#: Table look-ups: a parameter read by one of these is an embedding table.
LOOKUP_OPS = frozenset({"Gather", "GatherV2", "SparseGatherV2", "EmbeddingLookup"})
#: Ops that hold a layer's weight matrix or kernel (not its bias).
KERNEL_OPS = frozenset(WEIGHT_OPS) - {"BiasAdd", "PReLU"}
