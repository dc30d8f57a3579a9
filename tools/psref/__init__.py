"""PyTorch reference implementations (DiffPS heads, PSDiff, PretrainPS backbones) for PSEdge.

Developer tools: need torch/torchvision (tools/requirements-export.txt). See tools/psref/README.md.
"""
