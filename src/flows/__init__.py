"""The command layer: one module per flow an entry point runs, putting the libraries' pieces together.

- :mod:`.train`: ``train.py`` (a training run, float or QAT).
- :mod:`.eval`: ``eval.py`` (a checkpoint or exported file on a dataset split).
- :mod:`.export`: ``export.py`` (float exports; :mod:`.export_int8` for QAT / PTQ int8 files).
- :mod:`.infer`: ``infer.py`` (top-k predictions on images).
- :mod:`.quant_report`: ``python -m src.quant.report`` (per-layer quantization report).
- :mod:`.model` and :mod:`.network`: opening any model file, and building a checkpoint's network, for the flows
  above; what the model is comes from :func:`src.record.reconcile`.

Libraries (``src.train``, ``src.quant``, ``src.deploy``, ``src.convert``, ``src.data``, ``src.models``) never import
this package (``python -m src.tools.structure`` checks it).
"""
