"""The application around the aligner library: training, evaluation, the knowledge-variant study,
segmentation transfer and pictures. It imports ``anatomy_vlm.alignment`` (and the other library
packages); the library never imports it (as ``open_clip_train`` stands beside ``open_clip``).

- ``config``: ``RunConfig`` (one YAML: model, preprocess, loss, knowledge, train) and ``load_config``
- ``data``: the phantom splits a run uses and the one ``DataLoader`` helper
- ``trainer``: the three-stage trainer (DDP, schedule, metrics CSV, curve, checkpoint)
- ``evaluation`` and ``metrics``: region mAP/IoU, AUC/BMAC/F1/ECE, region-wise and zero-shot AUC
- ``run``: one command from a config to a trained, evaluated model; ``study``: knowledge arms
- ``segmentation``: the transfer protocol; ``pictures``: overlays, explanation subgraphs, curves
"""
