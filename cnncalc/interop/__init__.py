"""Importers (PyTorch, ONNX, Darknet, Keras) and exporters (PyTorch and Keras code, ONNX).
Every importer maps its source to a graph of cnncalc statements (``graph.Op``); one emitter
turns any such graph into a spec a person can read."""
