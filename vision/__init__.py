"""Image classification on CIFAR-10/100 and ImageNet-1k with HGRN-DeiT and a Transformer baseline, trained
with the DeiT recipe (upstream HGRN/script_im.sh running OpenNLPLab/im classification/main.py).
Entry point: ``python -m vision fit --config vision/configs/<name>.yaml``; see vision/README.md."""
