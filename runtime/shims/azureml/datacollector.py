"""The original import path of the model data collector, served by moma's runtime:
``from azureml.datacollector import ModelDataCollector`` (see runtime/README.md,
"Data collection"). The one absolute import of ``runtime`` allowed: this shim is not
part of the ``runtime`` package, it sits beside it on PYTHONPATH.
"""

from runtime.datacollection import ModelDataCollector

__all__ = ["ModelDataCollector"]
