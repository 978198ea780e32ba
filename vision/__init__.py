"""Image classification on CIFAR-10/100 and ImageNet-1k with HGRN-DeiT and a Transformer baseline, trained
with the DeiT recipe (reference/hgrn.md sections 2.2 and 4.2). Entry point: ``python -m vision fit --config
vision/configs/<name>.yaml``; see vision/README.md."""
