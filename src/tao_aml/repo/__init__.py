"""What the repository says, read on the user's machine: pipelines and their inputs, profiles, the YAML
model, validation, spec checks, run checks, the step graph and GPU-time and price estimates.
"""
