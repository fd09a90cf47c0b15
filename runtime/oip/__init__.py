"""The Open Inference Protocol (KServe v2) REST routes beside ``/score``: ``front.py``
(routes, answers), ``names.py`` (which model names and versions the image answers to),
``tensors.py`` (request tensors checked, run()'s value as output tensors), ``inputs.py``
(tensors -> the 2017 driver's arguments, and the model metadata's inputs).
See runtime/README.md, "Open Inference Protocol".
"""
