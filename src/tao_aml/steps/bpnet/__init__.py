"""Steps that wrap TAO 5.0 `bpnet` (BodyPoseNet) tasks of the TF1 container."""

EXECUTABLE = "bpnet"
