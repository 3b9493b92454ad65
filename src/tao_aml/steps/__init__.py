"""Code that runs inside Azure ML components.

Everything below this package runs in the TAO 5.0 container (Python 3.8, PyYAML 5.4) or the CPU
data environment: standard library plus PyYAML and Pillow only, and no azure-ai-ml.
Each step module has `build_parser()` and `main(argv=None) -> int` and runs as
`python -m tao_aml.steps.<module> ...`.
"""
