"""Steps that wrap TAO 5.0 `detectnet_v2` tasks (TF1 container) and TAO Deploy's engine builder."""

EXECUTABLE = "detectnet_v2"
