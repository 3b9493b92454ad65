"""Running TAO: command lines, the MPI launch, status.json and live metrics, MLflow tracking, pruning flags
and the model files steps hand each other.
"""
