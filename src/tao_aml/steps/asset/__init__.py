"""The model asset: its assembly (register_model), the DeepStream/Triton bundle, the model card, ONNX checks,
prediction previews and the run report.
"""
