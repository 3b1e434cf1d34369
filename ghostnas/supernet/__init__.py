"""Weight-sharing supernet: elastic weights over a search space (elastic.py) and their training
(training.py); the search's evaluator over them is search.evaluators.SupernetEvaluator."""

from .elastic import SuperNet, load_supernet, recalibrate
from .training import SUPERNET_PROTOCOLS, SupernetProtocol, get_supernet_protocol, train_supernet

__all__ = ["SUPERNET_PROTOCOLS", "SuperNet", "SupernetProtocol", "get_supernet_protocol", "load_supernet",
           "recalibrate", "train_supernet"]
