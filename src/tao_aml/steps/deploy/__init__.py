"""Steps of the TAO Deploy container (TensorRT): engine generation, engine evaluation and inference."""
