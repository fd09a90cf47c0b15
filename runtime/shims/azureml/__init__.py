"""``azureml``: only so that 2017 drivers' ``from azureml.datacollector import
ModelDataCollector`` works inside moma images (``runtime/shims`` is on PYTHONPATH).

The path is extended pkgutil-style, so ``azureml.*`` packages installed in the image
(azureml-core and friends) still import from site-packages beside this one.
"""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)
