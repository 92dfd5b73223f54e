"""The rules, one module per symptom group; importing this package registers them all.

The import list is explicit so that ``grep`` finds every rule: a module that
is not listed here does not run.
"""

from __future__ import annotations

from summary_doctor.rules import activations as activations
from summary_doctor.rules import api as api
from summary_doctor.rules import classes as classes
from summary_doctor.rules import dataset as dataset
from summary_doctor.rules import dynamics as dynamics
from summary_doctor.rules import gradients as gradients
from summary_doctor.rules import graph as graph
from summary_doctor.rules import graph_loss as graph_loss
from summary_doctor.rules import graph_sharing as graph_sharing
from summary_doctor.rules import graph_structure as graph_structure
from summary_doctor.rules import hparams as hparams
from summary_doctor.rules import init as init
from summary_doctor.rules import label_errors as label_errors
from summary_doctor.rules import learning_rate as learning_rate
from summary_doctor.rules import preprocess as preprocess
from summary_doctor.rules import ranks as ranks
from summary_doctor.rules import samples as samples
from summary_doctor.rules import shuffle as shuffle
from summary_doctor.rules import weights as weights
